#!/bin/sh
# Check systemd/*.socket and systemd/*.service with "systemd-analyze verify".
#
# The units are copied to a temporary directory with the ExecStart= binary
# replaced by the freshly built daemon ($EPMD_BIN, default ./epmd-c, made
# absolute), so verify also checks that the command exists and is
# executable. Template units (NAME@.socket, NAME@.service) are verified as
# instances, through systemd-analyze's FILE:ALIAS syntax, for an IPv4 and
# an IPv6 address. Documentation=man:epmd-c(8) is checked against the
# repository's man page when man(1) is installed.
#
# Exit status: 0 clean (no output at all from systemd-analyze), 77 when
# systemd-analyze is missing, 1 otherwise with its output on stderr.

set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
UNITS="$ROOT/systemd"
BIN=${EPMD_BIN:-$ROOT/epmd-c}
# Instances for the templates: IPv4 loopback, any, and [::1] escaped.
INSTANCES='127.0.0.1 0.0.0.0 \x5b::1\x5d'

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "verify-units: systemd-analyze is not installed" >&2
	exit 77
fi
case $BIN in
/*) ;;
*) BIN=$(pwd)/$BIN ;;
esac
if [ ! -x "$BIN" ]; then
	echo "verify-units: no daemon binary at $BIN (run make first)" >&2
	exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/epmdc-units.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' HUP INT TERM
case $TMP in
*:*)	# systemd-analyze would read a colon as FILE:ALIAS
	echo "verify-units: temporary directory $TMP contains ':'" >&2
	exit 1 ;;
esac

plain=''
templates=''
n=0
for f in "$UNITS"/*.socket "$UNITS"/*.service; do
	[ -f "$f" ] || continue
	name=$(basename "$f")
	# The binary path is the first word after ExecStart= and its prefixes.
	sed -E "s|^(ExecStart=[-@:+!]*)[^[:space:]]+|\\1$BIN|" "$f" \
	    >"$TMP/$name" || exit 1
	if grep -q '^ExecStart=' "$f" && ! grep '^ExecStart=' "$TMP/$name" |
	    grep -qF "=$BIN"; then
		echo "verify-units: could not rewrite ExecStart= in $name" >&2
		exit 1
	fi
	case $name in
	*@.*)	templates="$templates $name" ;;
	*)	plain="$plain $name" ;;
	esac
	n=$((n + 1))
done
if [ "$n" -eq 0 ]; then
	echo "verify-units: no units in $UNITS" >&2
	exit 1
fi

# Check the man page reference against the repository's page.
MANOPT='--man=no'
if command -v man >/dev/null 2>&1 && [ -d "$ROOT/man" ]; then
	mkdir -p "$TMP/man/man8" && cp "$ROOT"/man/*.8 "$TMP/man/man8/" \
	    2>/dev/null && MANOPT='--man=yes'
fi

status=0
out="$TMP/out"

# run LABEL ARGS...: one systemd-analyze verify; any output is a failure.
run() {
	label=$1
	shift
	(cd "$TMP" && MANPATH="$TMP/man" SYSTEMD_LOG_COLOR=0 \
	    systemd-analyze verify "$MANOPT" "$@") >"$out" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ] || [ -s "$out" ]; then
		echo "verify-units: systemd-analyze verify $label: exit $rc" >&2
		cat "$out" >&2
		status=1
	else
		echo "ok: $label"
	fi
}

if [ -n "$plain" ]; then
	set --
	for name in $plain; do
		set -- "$@" "$TMP/$name"
	done
	run "$(echo $plain)" "$@"
fi

if [ -n "$templates" ]; then
	for inst in $INSTANCES; do
		set --
		for name in $templates; do
			# NAME@.socket as NAME@INSTANCE.socket
			alias="${name%%@.*}@$inst.${name#*@.}"
			set -- "$@" "$TMP/$name:$alias"
		done
		run "templates as instance $inst" "$@"
	done
fi

exit $status
