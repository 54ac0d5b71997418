#!/bin/sh
# Install the Debian packages epmd-c needs, when they are missing.
# Usage: deps.sh build [test]. As root it installs with apt-get; otherwise
# it names what is missing and fails.
#
# The build set is checked with pkg-config (and the compiler on PATH)
# first: where the libraries are found, no package manager is asked. The
# test set is Debian's tools, checked with dpkg-query.
set -u

build_pkgs="gcc make pkg-config libevent-dev libsystemd-dev"
test_pkgs="check python3 erlang-base mandoc iproute2 systemd procps clang libclang-rt-14-dev
	   systemd-container dbus prometheus curl debhelper lintian fakeroot dpkg-dev
	   nftables iptables"

# Does the build find everything it needs without installing anything?
build_ready() {
	command -v "${CC:-cc}" >/dev/null 2>&1 &&
	    command -v make >/dev/null 2>&1 &&
	    command -v "${PKG_CONFIG:-pkg-config}" >/dev/null 2>&1 &&
	    "${PKG_CONFIG:-pkg-config}" --exists libevent_core libsystemd
}

want=""
for set in "$@"; do
	case "$set" in
	build) build_ready || want="$want $build_pkgs" ;;
	test) want="$want $test_pkgs" ;;
	*) echo "deps.sh: unknown set $set" >&2; exit 2 ;;
	esac
done
[ -z "$want" ] && exit 0

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "epmd-c: not a Debian system; install by hand:$want" >&2
	exit 1
fi
missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "epmd-c: missing Debian packages:$missing" >&2
	echo "epmd-c: run 'sudo make deps' or install them by hand" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "epmd-c: missing packages:$missing (no apt-get here)" >&2
	exit 1
fi
echo "epmd-c: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
