#!/usr/bin/env bash
# The grader's default sandbox without a Docker engine: Debian's bubblewrap (`bwrap`), user/pid/net
# namespaces. Idempotent: nothing happens when bwrap is already on PATH. Run as root.
set -euo pipefail
log() { printf '[15-bubblewrap] %s\n' "$*"; }
if command -v bwrap >/dev/null 2>&1; then
    log "bwrap $(bwrap --version | awk '{print $2}') already installed"
    exit 0
fi
if [[ $EUID -ne 0 ]]; then
    log "must run as root to install bubblewrap (apt-get install bubblewrap)" >&2
    exit 1
fi
apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends bubblewrap >/dev/null
log "installed bwrap $(bwrap --version | awk '{print $2}')"
