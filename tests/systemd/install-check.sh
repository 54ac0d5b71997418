#!/bin/sh
# make install into a scratch DESTDIR puts the binary, the man page and the
# units in place, with ExecStart= naming the installed binary.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
make -s -C "$top" install DESTDIR="$dest" PREFIX=/opt/epmdc \
    UNITDIR=/opt/epmdc/units >/dev/null
fail=0
for f in opt/epmdc/bin/epmd-c opt/epmdc/share/man/man8/epmd-c.8 \
    opt/epmdc/units/epmd-c.socket opt/epmdc/units/epmd-c.service \
    opt/epmdc/units/epmd-c@.socket opt/epmdc/units/epmd-c@.service; do
	[ -f "$dest/$f" ] || { echo "missing $f"; fail=1; }
done
[ -x "$dest/opt/epmdc/bin/epmd-c" ] || { echo "binary not executable"; fail=1; }
for u in "$dest"/opt/epmdc/units/*.service; do
	grep -q '^ExecStart=/opt/epmdc/bin/epmd-c -systemd $EPMD_C_OPTS$' "$u" ||
	    { echo "$u: ExecStart= not rewritten"; fail=1; }
done
exit $fail
