#!/usr/bin/env python3
"""PROTOCOL.md 1.6: how a registration ends.

The spec pinned against the daemon under test ($EPMD_BIN): one test per
behaviour, named for it, each with its own daemon on a free loopback port.
Tests marked @epmdc pin deliberate departures from the reference
(PROTOCOL.md 8.4) and skip with EPMD_REFERENCE_MODE=1, so that the rest
can run against the real epmd (EPMD_BIN=/usr/bin/epmd).
"""

import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

import epmdtest as et  # noqa: E402
from epmdtest import (alive2_body, check, daemon, drop, eq, eventually, frame,
                      hdr, listed, lookup, names, read_until_close,
                      register_ok, test)  # noqa: E402


# --------------------------------------------------------------------------
# Unregistration (1.6)

@test
def test_unregistration_by_eof():
    with daemon() as d:
        s, _ = register_ok(d, "eofnode", port=5003)
        drop(d, s, "eofnode", 5003)
        eq(lookup(d, "eofnode"), b"\x77\x01", "lookup after EOF")


@test
def test_unregistration_by_half_close():
    with daemon() as d:
        s, _ = register_ok(d, "halfnode", port=5004)
        s.shutdown(socket.SHUT_WR)
        eq(read_until_close(s), b"", "daemon closes after SHUT_WR")
        check(eventually(lambda: not listed(d, "halfnode", 5004), 3.0),
              "still listed")
        s.close()


@test
def test_unregistration_by_stray_byte():
    with daemon() as d:
        s, _ = register_ok(d, "straynode", port=5005)
        s.sendall(b"x")
        eq(read_until_close(s), b"", "daemon closes after a stray byte")
        check(eventually(lambda: not listed(d, "straynode", 5005), 3.0),
              "still listed")
        s.close()


@test
def test_unregistration_by_second_alive2_on_same_socket():
    with daemon() as d:
        s, _ = register_ok(d, "twice", port=5006)
        s.sendall(frame(alive2_body("twice2", port=5007)))
        eq(read_until_close(s), b"", "daemon closes, no reply")
        check(eventually(lambda: names(d) == hdr(d), 3.0), "still listed")
        s.close()


if __name__ == "__main__":
    et.run_tests()
