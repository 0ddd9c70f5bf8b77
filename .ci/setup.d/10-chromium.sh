#!/usr/bin/env bash
# Debian's chromium for the serving tests: /docs must render offline in a real browser
# (Python playwright drives /usr/bin/chromium; no browser download). Idempotent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
if command -v chromium >/dev/null 2>&1; then
    echo "chromium: $(chromium --version 2>/dev/null || echo present)"
    exit 0
fi
apt_install chromium fonts-liberation
echo "chromium: $(chromium --version 2>/dev/null || echo installed)"
