#!/usr/bin/env bash
# Build trivy (Aqua Security's scanner, Apache-2.0) from the Go module proxy, for the image scan in
# tests/security/test_image_scan.py: secrets and misconfiguration of the serving image, offline.
#
# No release binary or container image can be downloaded here, but trivy is a Go module: it is built
# once at a pinned release with the Go toolchain, cached under ~/.cache/shipml/trivy/<version>/ and
# linked to /usr/local/bin/trivy. Its vulnerability database is downloaded from a container registry,
# which cannot be reached: only the `secret` and `misconfig` scanners run (both ship their rules in
# the binary), with --offline-scan --skip-db-update --skip-check-update. Idempotent.
#
# Environment: SHIPML_CACHE_DIR (default ~/.cache/shipml), SHIPML_TRIVY_VERSION, SHIPML_GO.
set -euo pipefail

log() { printf '[40-trivy] %s\n' "$*"; }
started=$SECONDS
version=${SHIPML_TRIVY_VERSION:-v0.74.0}
cache_root=${SHIPML_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipml}
binary="$cache_root/trivy/$version/trivy"
link=${SHIPML_TRIVY_LINK:-/usr/local/bin/trivy}

if [[ ! -x "$binary" ]]; then
    go=${SHIPML_GO:-$(command -v go || echo /usr/local/go/bin/go)}
    if [[ ! -x "$go" ]]; then
        log "no Go toolchain: cannot build trivy; the image-scan test fails with that reason" >&2
        exit 0
    fi
    log "building github.com/aquasecurity/trivy ${version} with $("$go" version | cut -d' ' -f3) (once, cached)"
    mkdir -p "$(dirname "$binary")"
    work=$(mktemp -d "$cache_root/trivy/build-XXXXXX")
    trap 'rm -rf "$work"' EXIT
    # Like compose v2: fetch the module's source through the proxy and build it as the main module
    # (its go.mod has replace directives, which `go install pkg@version` refuses).
    source=$(GOFLAGS=-mod=mod "$go" mod download -json "github.com/aquasecurity/trivy@${version}" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -d "$source" ]] || { log "go mod download gave no source folder" >&2; exit 1; }
    cp -r "$source" "$work/src" && chmod -R u+w "$work/src"
    # GOEXPERIMENT=jsonv2: trivy imports encoding/json/v2, still an experiment in Go 1.26.
    (cd "$work/src" && GOEXPERIMENT=jsonv2 GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local nice "$go" build -trimpath \
        -ldflags "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${version#v}" \
        -o "$work/trivy" ./cmd/trivy)
    mv "$work/trivy" "$binary"
fi
if [[ -w "$(dirname "$link")" ]]; then
    ln -sf "$binary" "$link"
fi
log "$("$binary" --version | head -1) ($binary) in $((SECONDS - started))s"
