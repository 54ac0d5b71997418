#!/usr/bin/env python3
"""Fast re-registration (OTP PR #11085): a name whose owner's connection
has already ended is taken over at once; only a live owner refuses.

The reference refuses when its loop has not yet read the old connection's
EOF (about 9 % of fast close-and-re-register cycles here); epmd-c looks at
the old connection without blocking and finishes it first.
"""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from epmdtest import (Daemon, alive2_body, check, epmdc, eq,  # noqa: E402
                      frame, names, port_please, read_exact, register,
                      run_tests, test)

CYCLES = 1000
BUDGET = 60.0   # seconds for the whole loop, whatever the machine


def creation(reply):
    """The creation of a 'v' (32-bit) ALIVE2 reply; None if refused."""
    eq(len(reply), 6, "ALIVE2_X_RESP length")
    eq(reply[0:1], b"v", "reply code")
    return None if reply[1] != 0 else struct.unpack(">I", reply[2:6])[0]


def close_and_reregister(d, how):
    """Run the close-and-re-register loop; returns (refusals, cycles)."""
    s, reply = register(d.port, "cycler")
    check(creation(reply) is not None, "first registration refused")
    refused = done = 0
    deadline = time.monotonic() + BUDGET
    while done < CYCLES and time.monotonic() < deadline:
        how(s)
        s, reply = register(d.port, "cycler")
        if creation(reply) is None:
            refused += 1
            s.close()
            # Wait for the old registration to go before the next cycle.
            while b"cycler" in names(d.port):
                time.sleep(0.001)
            s, reply = register(d.port, "cycler")
        done += 1
    s.close()
    return refused, done


def fin(s):
    s.close()


def rst(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def byte(s):
    s.sendall(b"x")
    s.shutdown(socket.SHUT_RDWR)
    s.close()


@epmdc
def test_reregister_after_close_is_never_refused():
    with Daemon() as d:
        refused, done = close_and_reregister(d, fin)
        eq(done, CYCLES, "cycles within the time budget")
        eq(refused, 0, f"refusals in {CYCLES} close-and-re-register cycles")


@epmdc
def test_reregister_after_reset_is_never_refused():
    with Daemon() as d:
        refused, done = close_and_reregister(d, rst)
        eq((refused, done), (0, CYCLES), "refusals, cycles after RST")


@epmdc
def test_reregister_after_data_on_old_connection_is_never_refused():
    with Daemon() as d:
        refused, done = close_and_reregister(d, byte)
        eq((refused, done), (0, CYCLES), "refusals, cycles after a byte")


@test
def test_live_owner_still_gets_error_reply():
    with Daemon() as d:
        owner, reply = register(d.port, "held")
        first = creation(reply)
        check(first is not None, "first registration refused")
        s, reply = register(d.port, "held", port=6001)
        eq(reply, b"v\x01\x00\x00\x00\x63", "duplicate gets result 1, creation 99")
        s.close()
        # The owner keeps its registration, port and all.
        found = port_please(d.port, "held")
        eq(found[:4], b"w\x00\x13\x89", "owner's port 5001 still served")
        owner.close()


@epmdc
def test_takeover_gives_a_new_creation_and_the_new_port():
    with Daemon() as d:
        old, reply = register(d.port, "moved", port=5001)
        c1 = creation(reply)
        old.close()
        new, reply = register(d.port, "moved", port=6002)
        c2 = creation(reply)
        check(c1 is not None and c2 is not None, "a registration was refused")
        check(c2 != c1, f"creation repeated: {c1} then {c2}")
        eq(port_please(d.port, "moved")[:4], b"w\x00\x17\x72", "new port 6002")
        check(b"name moved at port 6002" in names(d.port), "NAMES shows new port")
        new.close()


if __name__ == "__main__":
    run_tests()
