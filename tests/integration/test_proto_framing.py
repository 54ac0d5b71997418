#!/usr/bin/env python3
"""PROTOCOL.md 1.1 and 1.2: framing and request codes.

The spec pinned against the daemon under test ($EPMD_BIN): one test per
behaviour, named for it, each with its own daemon on a free loopback port.
Tests marked @epmdc pin deliberate departures from the reference
(PROTOCOL.md 8.4) and skip with EPMD_REFERENCE_MODE=1, so that the rest
can run against the real epmd (EPMD_BIN=/usr/bin/epmd).
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

import epmdtest as et  # noqa: E402
from epmdtest import (SMILE, alive2_body, check, daemon, eq, frame, hdr, line,
                      listed, names, port2, read_exact, read_until_close,
                      register_ok, request, test)  # noqa: E402


# --------------------------------------------------------------------------
# Framing (1.1)

@test
def test_frame_length_zero_closed_silently():
    with daemon() as d:
        eq(request(d, b"\x00\x00"), b"", "00 00")
        eq(request(d, b"\x00\x00nnnn"), b"", "00 00 6e 6e 6e 6e")


@test
def test_frame_trailing_junk_after_request_fields_ignored():
    with daemon() as d:
        eq(request(d, b"\x00\x04nxyz"), hdr(d), "n + junk")
        eq(request(d, frame(b"dxyz")), hdr(d), "d + junk")


@test
def test_two_requests_in_one_write_closed_with_nothing():
    with daemon() as d:
        eq(request(d, frame(b"n") + frame(b"n")), b"", "two NAMES")
        eq(request(d, frame(alive2_body("pipe")) + frame(b"n")), b"",
           "ALIVE2 + NAMES")
        eq(names(d), hdr(d), "nothing registered")


@test
def test_request_plus_one_extra_byte_closed_with_nothing():
    with daemon() as d:
        eq(request(d, frame(b"n") + b"x"), b"", "NAMES + 1 byte")


@test
def test_frame_length_3057_answered():
    with daemon() as d:
        eq(request(d, frame(b"n" + b"x" * 3056)), hdr(d), "Length 3057")


@test
def test_frame_length_3057_alive2_accepted():
    with daemon() as d:
        body = alive2_body(SMILE * 255, port=5050, extra=b"e" * 1020)
        s = et.connect(d.port)
        s.sendall(frame(body + b"j" * (3057 - len(body))))
        eq(read_exact(s, 6)[:2], b"v\x00", "reply")
        check(listed(d, SMILE * 255, 5050), "not listed")
        s.close()


@test
def test_frame_length_3058_closed_with_nothing():
    with daemon() as d:
        eq(request(d, frame(b"n" + b"x" * 3057)), b"", "Length 3058")
        eq(request(d, b"\xff\xff"), b"", "Length 65535")
        check(d.alive(), "daemon died")


@test
def test_eof_mid_frame_closed_with_nothing():
    with daemon() as d:
        for part in (b"\x00", b"\x00\x03", b"\x00\x05nx"):
            with et.connect(d.port) as s:
                s.sendall(part)
                s.shutdown(socket.SHUT_WR)
                eq(read_until_close(s), b"", f"EOF after {part!r}")


@test
def test_request_dribbled_one_byte_at_a_time_is_served():
    with daemon() as d:
        k, _ = register_ok(d, "drib", port=5020)
        for data, want in ((frame(b"n"), hdr(d) + line("drib", 5020)),
                           (frame(b"zdrib"), port2("drib", 5020))):
            with et.connect(d.port) as s:
                for i in range(len(data)):
                    s.sendall(data[i:i + 1])
                    time.sleep(0.2)
                eq(read_until_close(s), want, f"dribbled {data!r}")
        k.close()


@test
def test_alive2_dribbled_one_byte_at_a_time_registers():
    with daemon() as d:
        data = frame(alive2_body("drib2", port=5021))
        s = et.connect(d.port)
        for i in range(len(data)):
            s.sendall(data[i:i + 1])
            time.sleep(0.05)
        eq(read_exact(s, 6)[:2], b"v\x00", "reply")
        check(listed(d, "drib2", 5021), "not listed")
        s.close()


# --------------------------------------------------------------------------
# Request codes (1.2)

@test
def test_legacy_alive_req_a_closed_silently():
    with daemon() as d:
        eq(request(d, frame(b"a\x13\x89foo")), b"", "a")
        eq(names(d), hdr(d), "nothing registered")


@test
def test_legacy_port_req_p_closed_silently():
    with daemon() as d:
        eq(request(d, frame(b"pfoo")), b"", "p")


@test
def test_unknown_request_codes_closed_silently():
    with daemon() as d:
        for code in (b"Y", b"\x00", b"!", b"N", b"w", b"y", b"v"):
            eq(request(d, frame(code + b"foo")), b"", f"code {code!r}")


if __name__ == "__main__":
    et.run_tests()
