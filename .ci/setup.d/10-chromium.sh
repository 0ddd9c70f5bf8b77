#!/usr/bin/env bash
# Debian's chromium for the serving tests: /docs must render offline in a real browser
# (Python playwright drives /usr/bin/chromium; no browser download). Idempotent.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "chromium: $(chromium --version 2>/dev/null || echo present)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
echo "chromium: $(chromium --version 2>/dev/null || echo installed)"
