#!/usr/bin/env bash
# Make a real Kubernetes node possible beside the fake ones (`shipml cluster up --real-node`), so the
# workflow tests that need containers (formerly kind-only) run on real pods in CI, and build kube-score
# for the manifest test.
#
# Run as root from the repository root, after 20-docker.sh (Docker brings containerd and runc) and
# 30-controlplane.sh (the Go toolchain and the module cache). Idempotent and cached: Debian packages are
# installed only when missing; kubelet, kube-proxy, pause, metrics-server and kube-score are built once
# into ~/.cache/shipml/controlplane/<version>/bin (plus the 0.2.0 image). Nothing is started here: the
# tests start the node and tear it down. The real node is on by default where it can run (root here);
# SHIPML_REAL_NODE=0 builds only kube-score and makes the tests, notebook 04 and lab04 use fake nodes.
#
#   SHIPML_CACHE_DIR   where the binaries and Go caches live (default ~/.cache/shipml)
#   SHIPML_REAL_NODE   0: no real node (default: on)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
log() { printf '[35-realnode] %s\n' "$*"; }
started=$SECONDS

if [[ $EUID -ne 0 ]]; then
    log "not root: no real node here (the real-node tests skip and say so)"
    exit 0
fi

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# containerd and runc normally come with docker.io (20-docker.sh); CNI plugins (bridge, host-local,
# portmap, firewall) and iproute2 for the node's network.
apt_install containerd runc containernetworking-plugins iproute2 iptables
[[ -d /proc/sys/net/bridge ]] || modprobe br_netfilter 2>/dev/null || log "br_netfilter not loaded: pods on one bridge may not reach Services"

cache=${SHIPML_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipml}
python=.venv/bin/python
go_toolchain=$("$python" -c 'from shipml.cluster.controlplane import versions; print(versions.GO_TOOLCHAIN)')
fetched=$cache/go/toolchain/$go_toolchain/bin
[[ -x $fetched/go ]] && export PATH=$fetched:$PATH   # fetched by 30-controlplane.sh when no Go was installed
[[ -x /usr/local/go/bin/go ]] && export PATH=$PATH:/usr/local/go/bin
if ! command -v go >/dev/null; then
    log "no Go toolchain: the real-node programs cannot be built (the tests will say so)"
    exit 0
fi

export SHIPML_CACHE_DIR=$cache
built=$SECONDS
if [[ ${SHIPML_REAL_NODE:-1} != 0 ]]; then
    nice .venv/bin/shipml cluster build-node
    # the second release the rolling update goes to (0.1.0 is built by 20-docker.sh; cached layers)
    timeout 10 docker info >/dev/null 2>&1 && nice .venv/bin/shipml docker build --release 0.2.0
    # what the tests will decide (doctor's line for the real node)
    .venv/bin/python -c 'from shipml.cluster.session import real_node_reason as r; print("[35-realnode] real node:", r() or "can run")'
else
    nice .venv/bin/shipml cluster build-node --kube-score-only
fi
log "build: $((SECONDS - built)) s"
log "done in $((SECONDS - started)) s"
