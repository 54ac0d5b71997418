#!/usr/bin/env python3
"""The build: a plain make needs only pkg-config and the libraries, and a
build without libsystemd serves and refuses -systemd clearly."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from epmdtest import (ROOT, Daemon, check, eq, epmdc_only, names,  # noqa: E402
                      register, run, run_tests, test)

_nosd = {}


def nosd_binary():
    """epmd-c built with make SYSTEMD=no into a scratch directory (once)."""
    if "bin" not in _nosd:
        epmdc_only("a build test of epmd-c")
        out = tempfile.mkdtemp(prefix="epmdc-nosd-")
        p = subprocess.run(["make", "-s", "-C", ROOT, "SYSTEMD=no",
                            f"BUILD={out}", f"BIN={out}/epmd-c",
                            f"{out}/epmd-c"], capture_output=True, text=True,
                           timeout=300)
        check(p.returncode == 0, f"SYSTEMD=no build failed: {p.stderr}")
        _nosd["bin"] = os.path.join(out, "epmd-c")
        atexit.register(shutil.rmtree, out, ignore_errors=True)
    return _nosd["bin"]


@test
def test_plain_make_calls_no_package_manager():
    epmdc_only("a build test of epmd-c")
    for target in ("all", "install"):
        p = subprocess.run(["make", "-n", "-B", "-C", ROOT, target,
                            "DESTDIR=/nonexistent"],
                           capture_output=True, text=True, timeout=60)
        eq(p.returncode, 0, f"make -n {target}: {p.stderr}")
        for word in ("dpkg", "apt-get", "deps.sh"):
            check(word not in p.stdout, f"make {target} would run {word}")


@test(timeout=300)     # the first one builds
def test_build_without_libsystemd_links_no_libsystemd():
    binary = nosd_binary()
    p = subprocess.run(["ldd", binary], capture_output=True, text=True)
    check("libsystemd" not in p.stdout, p.stdout)
    check("libevent_core" in p.stdout, p.stdout)


@test(timeout=300)     # the first one builds
def test_build_without_libsystemd_serves():
    with Daemon(binary=nosd_binary()) as d:
        s, reply = register(d.port, "plain")
        eq(reply[:2], b"v\x00", "registration accepted")
        check(b"name plain at port 5001" in names(d.port), "NAMES lists it")
        s.close()


@test(timeout=300)     # the first one builds
def test_build_without_libsystemd_refuses_systemd_flag():
    rc, out, err = run([nosd_binary(), "-systemd"], timeout=10)
    eq(rc, 1, "exit status")
    check(b"no systemd support" in err, err)


if __name__ == "__main__":
    run_tests()
