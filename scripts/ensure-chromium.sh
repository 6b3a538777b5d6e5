#!/usr/bin/env bash
# ensure-chromium.sh makes sure headless Chromium and chromedriver are
# installed for the browser test (e2e/browser_test.go). It installs the
# Debian packages chromium and chromium-driver when either binary is missing
# and does nothing otherwise, so it is safe to run before every test run.
#
# Usage: scripts/ensure-chromium.sh        (as root, or with sudo available)
set -euo pipefail
. "$(dirname "$0")/apt-install.sh"

log() { printf 'ensure-chromium: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

have_all() {
	command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

if have_all; then
	exit 0
fi

apt_install "Chromium or chromedriver" chromium chromium-driver

have_all || die "chromium and chromedriver are still not on PATH after installing the packages"
log "installed $(chromium --version 2>/dev/null || echo chromium)"
