#!/usr/bin/env python3
"""PROTOCOL.md 3: timeouts.

The spec pinned against the daemon under test ($EPMD_BIN): one test per
behaviour, named for it, each with its own daemon on a free loopback port.
Tests marked @epmdc pin deliberate departures from the reference
(PROTOCOL.md 8.4) and skip with EPMD_REFERENCE_MODE=1, so that the rest
can run against the real epmd (EPMD_BIN=/usr/bin/epmd).
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

import epmdtest as et  # noqa: E402
from epmdtest import (REFERENCE_MODE, check, close_times, daemon, eq, hdr,
                      is_closed, listed, read_until_close, register_ok, test)  # noqa: E402


# --------------------------------------------------------------------------
# Timeouts (3)

IDLE_LATEST = 3.5 if REFERENCE_MODE else 2.5


@test
def test_registered_connection_never_idle_timed_out():
    with daemon("-packet_timeout", "1") as d:
        s, _ = register_ok(d, "stay", port=5080)
        check(not is_closed(s, 3.5), "registered connection was closed")
        check(listed(d, "stay", 5080), "node lost")
        s.close()


@test
def test_idle_connection_without_data_closed_after_packet_timeout():
    with daemon("-packet_timeout", "1") as d:
        s = et.connect(d.port)
        done = close_times([s], 5.0)
        check(s in done, "not closed within 5 s")
        t, data = done[s]
        eq(data, b"", "data before close")
        check(1.0 <= t <= IDLE_LATEST, f"closed after {t:.2f} s")
        s.close()


@test
def test_idle_partial_request_closed_after_packet_timeout():
    with daemon("-packet_timeout", "1") as d:
        socks = []
        for part in (b"\x00", b"\x00\x03", b"\x00\x05nx"):
            s = et.connect(d.port)
            s.sendall(part)
            socks.append(s)
        done = close_times(socks, 5.0)
        for s, part in zip(socks, (b"\x00", b"\x00\x03", b"\x00\x05nx")):
            check(s in done, f"not closed within 5 s after {part!r}")
            t, data = done[s]
            eq(data, b"", f"data before close after {part!r}")
            check(1.0 <= t <= IDLE_LATEST,
                  f"closed {t:.2f} s after {part!r}")
            s.close()


@test
def test_every_received_byte_restarts_idle_timer():
    with daemon("-packet_timeout", "1") as d:
        data = b"\x00\x04nxyz"
        start = time.monotonic()
        with et.connect(d.port) as s:
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
                if i + 1 < len(data):
                    time.sleep(0.8)
            check(time.monotonic() - start > 3.5, "trickle too fast")
            eq(read_until_close(s), hdr(d), "trickled NAMES served")


if __name__ == "__main__":
    et.run_tests()
