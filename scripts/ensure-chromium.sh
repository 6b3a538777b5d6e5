#!/usr/bin/env bash
# ensure-chromium.sh makes sure headless Chromium and chromedriver are
# installed for the browser test (e2e/browser_test.go). It installs the
# Debian packages chromium and chromium-driver when either binary is missing
# and does nothing otherwise, so it is safe to run before every test run.
#
# Usage: scripts/ensure-chromium.sh        (as root, or with sudo available)
set -euo pipefail

log() { printf 'ensure-chromium: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

have_all() {
	command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

if have_all; then
	exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
	die "chromium or chromedriver is missing and apt-get is not available; install Chromium and chromedriver with your package manager"

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 ||
		die "installing Chromium needs root: run this script as root or install sudo"
	sudo=(sudo)
fi

log "installing chromium and chromium-driver (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
aptlog="$(mktemp)"
trap 'rm -f "$aptlog"' EXIT

if ! "${sudo[@]}" apt-get update -qq >"$aptlog" 2>&1; then
	cat "$aptlog" >&2
	die "apt-get update failed (see above)"
fi
if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >"$aptlog" 2>&1; then
	cat "$aptlog" >&2
	die "apt-get install chromium chromium-driver failed (see above)"
fi

have_all || die "chromium and chromedriver are still not on PATH after installing the packages"
log "installed $(chromium --version 2>/dev/null || echo chromium)"
