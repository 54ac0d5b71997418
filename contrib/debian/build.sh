#!/bin/sh
# Build the Debian package of epmd-c: "make deb" runs this.
#
# contrib/debian is staged as debian/ in a scratch copy of the tree (the
# working tree itself never gets a debian/ directory or build products),
# dpkg-buildpackage -us -uc -b builds it there, and the binary package is
# copied to OUTDIR (default: the top directory) as
# epmd-c_<version>_<arch>.deb. lintian then checks it, when installed:
# any error or warning fails the build (the .deb stays, to be looked at).
#
# Usage: contrib/debian/build.sh [OUTDIR]
# Environment: DEB_BUILD_OPTIONS (e.g. nocheck) is passed through;
# LINTIAN=no skips the lintian check.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$top}
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in dpkg-buildpackage dh dpkg-parsechangelog; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "build.sh: $tool is missing (apt install debhelper dpkg-dev)" >&2
		exit 1
	}
done

version=$(dpkg-parsechangelog -l "$top/contrib/debian/changelog" -S Version)
arch=$(dpkg-architecture -q DEB_HOST_ARCH)
deb=epmd-c_${version}_${arch}.deb

scratch=$(mktemp -d "${TMPDIR:-/tmp}/epmd-c-deb.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
trap 'exit 1' HUP INT TERM

# The tree as committed plus uncommitted changes, without build products.
src=$scratch/epmd-c-$version
mkdir "$src"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$top" ls-files -z --cached --others --exclude-standard \
	    -x '*.deb' | (cd "$top" && xargs -0 cp --parents -t "$src" 2>/dev/null) || true
else
	tar -C "$top" --exclude=./build --exclude=./epmd-c --exclude='./*.deb' \
	    -cf - . | tar -C "$src" -xf -
fi
rm -rf "$src/debian"
cp -R "$top/contrib/debian" "$src/debian"
rm -f "$src/debian/build.sh"

(cd "$src" && dpkg-buildpackage -us -uc -b) > "$scratch/build.log" 2>&1 || {
	tail -n 60 "$scratch/build.log" >&2
	echo "build.sh: dpkg-buildpackage failed" >&2
	exit 1
}
cp "$scratch/$deb" "$out/$deb"

if [ "${LINTIAN:-yes}" != no ] && command -v lintian >/dev/null 2>&1; then
	if ! lintian --fail-on error,warning "$out/$deb"; then
		echo "build.sh: lintian found errors or warnings in $deb" >&2
		exit 1
	fi
fi
echo "$out/$deb"
