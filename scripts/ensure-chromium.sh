#!/usr/bin/env bash
# Make sure Debian's Chromium is installed, for the browser tests (Playwright drives it through
# executable_path=/usr/bin/chromium; no browser is ever downloaded). Idempotent and quiet:
# does nothing when /usr/bin/chromium already exists.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

$SUDO apt-get update -qq >/dev/null
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

if [ ! -x /usr/bin/chromium ]; then
    echo "ensure-chromium: /usr/bin/chromium is still missing after installing chromium" >&2
    exit 1
fi
