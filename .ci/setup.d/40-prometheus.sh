#!/usr/bin/env bash
# Debian's prometheus (server + promtool) for the monitoring tests and notebook 06: a real Prometheus
# on loopback scrapes a real model server, and promtool checks and unit-tests deploy/monitoring/ rules.
# Only the binaries are used: the package's systemd service is never started (tests start their own
# on a free port with temporary storage). Idempotent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    echo "prometheus: $(prometheus --version 2>&1 | head -n1)"
    exit 0
fi
# policy-rc.d: do not start the packaged service (port 9090) inside CI or a container
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt_install prometheus
# in case an init system started it anyway: the kit never uses the packaged service
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true
    systemctl disable prometheus >/dev/null 2>&1 || true
fi
echo "prometheus: $(prometheus --version 2>&1 | head -n1)"
