# apt-install.sh is sourced by the ensure-*.sh scripts. apt_install WHAT PACKAGE... installs
# Debian packages quietly, as root or through sudo, and on failure prints apt-get's output and
# exits naming WHAT. The caller defines log and die.

apt_install() {
	local what="$1"
	shift
	command -v apt-get >/dev/null 2>&1 ||
		die "$what is missing and apt-get is not available; install it with your package manager"
	local apt=(env DEBIAN_FRONTEND=noninteractive apt-get)
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 ||
			die "installing $what needs root: run this script as root or install sudo"
		apt=(sudo "${apt[@]}")
	fi
	log "installing $* (Debian packages)"
	local aptlog
	aptlog="$(mktemp)"
	if ! "${apt[@]}" update -qq >"$aptlog" 2>&1; then
		cat "$aptlog" >&2
		rm -f "$aptlog"
		die "apt-get update failed (see above)"
	fi
	if ! "${apt[@]}" install -y -qq --no-install-recommends "$@" >"$aptlog" 2>&1; then
		cat "$aptlog" >&2
		rm -f "$aptlog"
		die "apt-get install $* failed (see above)"
	fi
	rm -f "$aptlog"
}
