#!/usr/bin/env bash
# The grader's default sandbox without a Docker engine: Debian's bubblewrap (`bwrap`), user/pid/net
# namespaces. Idempotent: nothing happens when bwrap is already on PATH. Run as root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
if command -v bwrap >/dev/null 2>&1; then
    log "bwrap $(bwrap --version | awk '{print $2}') already installed"
    exit 0
fi
apt_install bubblewrap
log "installed bwrap $(bwrap --version | awk '{print $2}')"
