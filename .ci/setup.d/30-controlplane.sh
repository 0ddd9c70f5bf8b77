#!/usr/bin/env bash
# Build and cache the fake-node Kubernetes control plane, so the `controlplane` tests and
# notebook 04 run against a real kube-apiserver, controller manager and scheduler (kwok nodes).
#
# Run as root from the repository root, after the venv is installed at .venv. Idempotent: the build
# is skipped when the binaries are cached. Cold: a Go toolchain download, ~1 GB of modules and a
# few minutes of compiling on 2 cores (budget 15 min); cached: a few seconds.
#
# Everything goes under the shipml cache (binaries, Go's build and module caches, the toolchain):
#   SHIPML_CACHE_DIR   default ${XDG_CACHE_HOME:-$HOME/.cache}/shipml
# Needs: kubectl on PATH (the tests and notebooks call it), openssl (installed here if missing),
# and the Go module proxy. Go itself is optional: when no Go >= 1.21 is installed, the pinned
# toolchain is fetched from the Go proxy (it serves Go toolchains as modules).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
started=$SECONDS

cache=${SHIPML_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipml}
python=.venv/bin/python
go_toolchain=$("$python" -c 'from shipml.cluster.controlplane import versions; print(versions.GO_TOOLCHAIN)')
goproxy=${GOPROXY:-https://proxy.golang.org}
goproxy=${goproxy%%,*}

command -v openssl >/dev/null && command -v curl >/dev/null || apt_install openssl curl ca-certificates
if ! command -v kubectl >/dev/null; then
    log "kubectl is not on PATH: the controlplane tests and notebook 04 will skip and say so"
    exit 0
fi

# A Go that understands GOTOOLCHAIN (1.21+); otherwise the pinned toolchain from the Go proxy.
go_ok() { "$1" env GOVERSION 2>/dev/null | grep -Eq '^go1\.(2[1-9]|[3-9][0-9])'; }
go_bin=$(command -v go || true)
[[ -z $go_bin && -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go
if [[ -z $go_bin ]] || ! go_ok "$go_bin"; then
    dest=$cache/go/toolchain/$go_toolchain
    if [[ ! -x $dest/bin/go ]]; then
        zip_url=$goproxy/golang.org/toolchain/@v/v0.0.1-$go_toolchain.linux-$(dpkg --print-architecture).zip
        log "fetching $go_toolchain from $zip_url"
        tmp=$(mktemp -d)
        curl -fsSL -o "$tmp/go.zip" "$zip_url"
        "$python" - "$tmp/go.zip" "$tmp/x" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        path = z.extract(info, sys.argv[2])
        if "/bin/" in info.filename or "/pkg/tool/" in info.filename:
            import os; os.chmod(path, 0o755)
PY
        mkdir -p "$(dirname "$dest")"
        rm -rf "$dest"
        mv "$tmp"/x/golang.org/toolchain@*/ "$dest"
        rm -rf "$tmp"
    fi
    go_bin=$dest/bin/go
fi
log "using $("$go_bin" version) (builds with GOTOOLCHAIN=$go_toolchain)"

export SHIPML_CACHE_DIR=$cache PATH=$(dirname "$go_bin"):$PATH
.venv/bin/shipml cluster build-controlplane
log "done in $((SECONDS - started)) s"
