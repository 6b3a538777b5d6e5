#!/usr/bin/env bash
# ensure-postgres.sh makes sure the PostgreSQL server programs (initdb, pg_ctl, postgres) are
# installed for the cluster test (e2e/cluster, `make test-cluster`). It installs the Debian
# package postgresql when initdb is missing and does nothing otherwise, so it is safe to run
# before every run. It does not start a server: the test starts its own, in a temporary
# directory, on a free port, and removes it afterwards.
#
# Usage: scripts/ensure-postgres.sh        (as root, or with sudo available)
#
# It prints the directory holding initdb, which the test also finds by itself (PATH, then
# /usr/lib/postgresql/<version>/bin, where Debian puts the server programs).
set -euo pipefail
. "$(dirname "$0")/apt-install.sh"

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

bindir() {
	if command -v initdb >/dev/null 2>&1; then
		dirname "$(command -v initdb)"
		return 0
	fi
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

if dir="$(bindir)"; then
	echo "$dir"
	exit 0
fi

# The package's post-install script creates and starts a "main" cluster on port 5432 where an
# init system runs; the test never uses it.
apt_install "PostgreSQL's initdb" postgresql

dir="$(bindir)" || die "initdb is still missing after installing postgresql"
log "installed $("$dir/postgres" --version)"
echo "$dir"
