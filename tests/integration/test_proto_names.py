#!/usr/bin/env python3
"""PROTOCOL.md 1.8 and 1.9: NAMES and DUMP.

The spec pinned against the daemon under test ($EPMD_BIN): one test per
behaviour, named for it, each with its own daemon on a free loopback port.
Tests marked @epmdc pin deliberate departures from the reference
(PROTOCOL.md 8.4) and skip with EPMD_REFERENCE_MODE=1, so that the rest
can run against the real epmd (EPMD_BIN=/usr/bin/epmd).
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

import epmdtest as et  # noqa: E402
from epmdtest import (check, daemon, drop, dump, eq, hdr, line, names,
                      register_ok, test)  # noqa: E402


# --------------------------------------------------------------------------
# NAMES and DUMP (1.8, 1.9)

@test
def test_names_empty_daemon_replies_port_header_only():
    with daemon() as d:
        eq(names(d), hdr(d), "NAMES on an empty daemon")


@test
def test_dump_empty_daemon_replies_port_header_only():
    with daemon() as d:
        eq(dump(d), hdr(d), "DUMP on an empty daemon")


@test
def test_names_lists_active_nodes_newest_first():
    with daemon() as d:
        s1, _ = register_ok(d, "foo", port=5001)
        s2, _ = register_ok(d, "bar", port=5002, node_type=72, high=5, low=5)
        eq(names(d),
           hdr(d) + b"name bar at port 5002\nname foo at port 5001\n",
           "NAMES")
        s1.close()
        s2.close()


@test
def test_names_with_200_nodes_newest_first():
    with daemon() as d:
        socks = [register_ok(d, "n%03d" % i, port=7000 + i)[0] for i in range(200)]
        want = hdr(d) + b"".join(line("n%03d" % i, 7000 + i)
                                 for i in reversed(range(200)))
        eq(names(d), want, "NAMES with 200 nodes")
        for s in socks:
            s.close()


@test
def test_dump_lists_active_nodes_with_nul_after_each_line():
    with daemon() as d:
        s1, _ = register_ok(d, "foo", port=5001)
        s2, _ = register_ok(d, "bar", port=5002, high=5)
        r = dump(d)
        eq(r[:4], hdr(d), "DUMP header")
        body = r[4:].split(b"\0")
        eq(len(body), 3, f"DUMP lines in {r!r}")
        eq(body[2], b"", "DUMP ends with a NUL")
        check(re.fullmatch(rb"active name     <bar> at port 5002, fd = \d+\n",
                           body[0]), f"first line {body[0]!r}")
        check(re.fullmatch(rb"active name     <foo> at port 5001, fd = \d+\n",
                           body[1]), f"second line {body[1]!r}")
        s1.close()
        s2.close()


@test
def test_dump_after_unregistration_shows_old_unused_line():
    with daemon() as d:
        s1, _ = register_ok(d, "foo", port=5001)
        s2, _ = register_ok(d, "bar", port=5002)
        drop(d, s1, "foo", 5001)
        r = dump(d)
        body = r[4:].split(b"\0")
        eq(len(body), 3, f"DUMP lines in {r!r}")
        check(re.fullmatch(rb"active name     <bar> at port 5002, fd = \d+\n",
                           body[0]), f"active line {body[0]!r}")
        check(re.fullmatch(rb"old/unused name <foo>, port = 5001, fd = \d+ \n",
                           body[1]), f"old line {body[1]!r}")
        eq(names(d), hdr(d) + line("bar", 5002), "NAMES lists active only")
        s2.close()


if __name__ == "__main__":
    et.run_tests()
