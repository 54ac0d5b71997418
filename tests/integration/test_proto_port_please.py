#!/usr/bin/env python3
"""PROTOCOL.md 1.7: PORT_PLEASE2.

The spec pinned against the daemon under test ($EPMD_BIN): one test per
behaviour, named for it, each with its own daemon on a free loopback port.
Tests marked @epmdc pin deliberate departures from the reference
(PROTOCOL.md 8.4) and skip with EPMD_REFERENCE_MODE=1, so that the rest
can run against the real epmd (EPMD_BIN=/usr/bin/epmd).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

import epmdtest as et  # noqa: E402
from epmdtest import (SMILE, daemon, drop, eq, lookup, port2, register_ok, test)  # noqa: E402


# --------------------------------------------------------------------------
# PORT_PLEASE2 (1.7)

@test
def test_port_please2_known_v6_node_full_reply():
    with daemon() as d:
        s, _ = register_ok(d, "foo", port=5001)
        eq(lookup(d, "foo"),
           bytes.fromhex("77 00 13 89 4d 00 00 06 00 05 00 03 66 6f 6f 00 00"),
           "zfoo")
        s.close()


@test
def test_port_please2_known_v5_hidden_node_full_reply():
    with daemon() as d:
        s, _ = register_ok(d, "bar", port=5002, node_type=72, high=5, low=5)
        eq(lookup(d, "bar"),
           bytes.fromhex("77 00 13 8a 48 00 00 05 00 05 00 03 62 61 72 00 00"),
           "zbar")
        s.close()


@test
def test_port_please2_trailing_nul_tolerated():
    with daemon() as d:
        s, _ = register_ok(d, "foo", port=5001)
        eq(lookup(d, b"foo\0"), port2("foo", 5001), "zfoo\\0")
        s.close()


@test
def test_port_please2_unknown_name_gets_77_01():
    with daemon() as d:
        eq(lookup(d, "xyz"), b"\x77\x01", "zxyz")


@test
def test_port_please2_old_unused_name_not_found():
    with daemon() as d:
        s, _ = register_ok(d, "gone1")
        drop(d, s, "gone1")
        eq(lookup(d, "gone1"), b"\x77\x01", "old/unused")


@test
def test_port_please2_is_case_sensitive():
    with daemon() as d:
        s, _ = register_ok(d, "Foo")
        eq(lookup(d, "foo"), b"\x77\x01", "foo vs Foo")
        s.close()


@test
def test_port_please2_empty_name_closed_silently():
    with daemon() as d:
        eq(lookup(d, b""), b"", "z")
        eq(lookup(d, b"\0"), b"", "z\\0")


@test
def test_port_please2_name_with_nul_closed_silently():
    with daemon() as d:
        s, _ = register_ok(d, "foo")
        eq(lookup(d, b"fo\0o"), b"", "zfo\\0o")
        eq(lookup(d, b"foo\0\0"), b"", "zfoo\\0\\0")
        s.close()


@test
def test_port_please2_invalid_utf8_closed_silently():
    with daemon() as d:
        for name in (b"\xff", b"\xc0\x80", b"\xed\xa0\x80"):
            eq(lookup(d, name), b"", f"z{name!r}")


@test
def test_port_please2_254_char_unknown_name_gets_77_01():
    with daemon() as d:
        eq(lookup(d, "a" * 254), b"\x77\x01", "254 chars")
        eq(lookup(d, SMILE * 254), b"\x77\x01", "254 four-byte chars")


@test
def test_port_please2_256_char_name_closed_silently():
    with daemon() as d:
        eq(lookup(d, "a" * 256), b"", "256 chars")


if __name__ == "__main__":
    et.run_tests()
