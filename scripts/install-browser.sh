#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/browser), if it is missing.
# Playwright drives /usr/bin/chromium; its own browser download cannot reach the
# internet from here, so `playwright install` is never used. Safe to run again.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-browser.sh: $CHROMIUM is missing; run this script as root to install it" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y chromium  # its recommends bring the fonts pages render with
fi

# Debian's launcher script may print a harmless shell warning on stderr; keep it out.
"$CHROMIUM" --version 2>/dev/null
