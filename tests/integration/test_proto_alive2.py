#!/usr/bin/env python3
"""PROTOCOL.md 1.3 to 1.5: ALIVE2 requests, replies and creation.

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
from epmdtest import (ERR_V5, ERR_V6, SMILE, alive2_body, check, check_fresh,
                      daemon, drop, eq, frame, hdr, is_closed, line, listed,
                      lookup, names, port2, raw_alive2, read_exact, register,
                      register_ok, request, test, v5)  # noqa: E402


# --------------------------------------------------------------------------
# ALIVE2 (1.3, 1.4) and creation (1.5)

@test
def test_alive2_v6_gets_32bit_reply_with_creation_now_plus_1():
    with daemon() as d:
        t0 = time.time()
        s, c = register_ok(d, "foo", port=5001)
        check_fresh(c, t0, time.time())
        check(not is_closed(s, 0.3), "registration connection must stay open")
        check(listed(d, "foo", 5001), "foo not listed")
        s.close()


@test
def test_alive2_v5_gets_16bit_reply_with_creation_mod_3_plus_1():
    with daemon() as d:
        s, short = register_ok(d, "bar", port=5002, high=5, low=5)
        check(1 <= short <= 3, f"16-bit creation {short} not in 1..3")
        drop(d, s, "bar", 5002)
        s, c = register_ok(d, "bar", port=5002)      # from the old list: prev+1
        eq(short, v5(c - 1), f"16-bit creation vs 32-bit {c} - 1")
        s.close()


@test
def test_alive2_duplicate_name_gets_error_creation_99():
    with daemon() as d:
        s1, _ = register_ok(d, "foo", port=5001)
        s2, r = register(d, "foo", port=5009)
        eq(r, ERR_V6, "duplicate v6")
        s2.close()
        s1.close()


@test
def test_alive2_duplicate_name_v5_gets_16bit_error_creation_99():
    with daemon() as d:
        s1, _ = register_ok(d, "bar", high=5)
        s2, r = register(d, "bar", high=5, low=5)
        eq(r, ERR_V5, "duplicate v5")
        s3, r = register(d, "bar", high=6)
        eq(r, ERR_V6, "duplicate v6 of a v5 node")
        for s in (s1, s2, s3):
            s.close()


@test
def test_alive2_duplicate_leaves_original_registered():
    with daemon() as d:
        s1, _ = register_ok(d, "foo", port=5001)
        s2, r = register(d, "foo", port=5009)
        eq(r, ERR_V6, "duplicate")
        s2.close()
        time.sleep(0.2)
        eq(lookup(d, "foo"), port2("foo", 5001), "original still found")
        eq(names(d), hdr(d) + line("foo", 5001), "NAMES")
        s1.close()


@test
def test_alive2_reregistration_from_old_list_is_previous_plus_1():
    with daemon() as d:
        s, c1 = register_ok(d, "foo")
        drop(d, s, "foo")
        s, c2 = register_ok(d, "foo")
        eq(c2, c1 + 1, "second creation")
        drop(d, s, "foo")
        s, c3 = register_ok(d, "foo")
        eq(c3, c2 + 1, "third creation")
        s.close()


@test
def test_alive2_v5_reregistrations_cycle_through_1_2_3():
    with daemon() as d:
        s, c = register_ok(d, "foo")
        got = []
        for _ in range(3):
            drop(d, s, "foo")
            s, short = register_ok(d, "foo", high=5)
            got.append(short)
        eq(got, [v5(c + 1), v5(c + 2), v5(c + 3)],
           f"16-bit creations after {c}")
        drop(d, s, "foo")
        s, c4 = register_ok(d, "foo")
        eq(c4, c + 4, "32-bit creation after three 16-bit ones")
        s.close()


@test
def test_alive2_254_char_name_registers_and_is_found():
    with daemon() as d:
        s, _ = register_ok(d, "b" * 254, port=5040)
        eq(lookup(d, "b" * 254), port2("b" * 254, 5040), "lookup")
        s.close()


@test
def test_alive2_255_char_name_registers():
    with daemon() as d:
        s, _ = register_ok(d, "c" * 255, port=5041)
        check(listed(d, "c" * 255, 5041), "255-char name not listed")
        s.close()


@test
def test_alive2_256_char_name_gets_error():
    with daemon() as d:
        s, r = register(d, "d" * 256)
        eq(r, ERR_V6, "256 chars")
        s.close()
        eq(names(d), hdr(d), "nothing registered")


@test
def test_alive2_255_four_byte_chars_register():
    with daemon() as d:
        s, _ = register_ok(d, SMILE * 255, port=5042)
        check(listed(d, SMILE * 255, 5042), "1020-byte name not listed")
        s.close()


@test
def test_alive2_256_four_byte_chars_get_error():
    with daemon() as d:
        s, r = register(d, SMILE * 256)
        eq(r, ERR_V6, "256 four-byte chars")
        s.close()


def _bad_utf8(name):
    with daemon() as d:
        s, r = register(d, name)
        eq(r, ERR_V6, f"name {name!r}")
        s.close()
        eq(names(d), hdr(d), "nothing registered")


@test
def test_alive2_invalid_utf8_name_gets_error():
    _bad_utf8(b"\xff\xfe")


@test
def test_alive2_overlong_utf8_name_gets_error():
    _bad_utf8(b"x\xc0\x80")


@test
def test_alive2_surrogate_utf8_name_gets_error():
    _bad_utf8(b"\xed\xa0\x80")


@test
def test_alive2_code_point_above_10ffff_gets_error():
    _bad_utf8(b"\xf4\x90\x80\x80")


@test
def test_alive2_truncated_utf8_name_gets_error():
    _bad_utf8(b"ab\xe2\x82")


@test
def test_alive2_name_with_nul_closed_silently():
    with daemon() as d:
        eq(request(d, frame(alive2_body(b"fo\0o"))), b"", "inner NUL")
        eq(names(d), hdr(d), "nothing registered")


@test
def test_alive2_name_with_trailing_nul_closed_silently():
    with daemon() as d:
        eq(request(d, frame(alive2_body(b"foo\0"))), b"", "trailing NUL")


@test
def test_alive2_empty_name_with_extra_registers_two_space_names_line():
    with daemon() as d:
        s, _ = register_ok(d, b"", port=6006, extra=b"x")
        eq(names(d), hdr(d) + b"name  at port 6006\n", "NAMES")
        eq(lookup(d, b""), b"", "an empty name cannot be looked up")
        s.close()


@test
def test_alive2_empty_name_and_empty_extra_closed_silently():
    with daemon() as d:
        eq(request(d, frame(alive2_body(b""))), b"", "bsize 13")
        eq(names(d), hdr(d), "nothing registered")


@test
def test_alive2_extra_1020_bytes_accepted_and_echoed():
    with daemon() as d:
        s, _ = register_ok(d, "ext20", port=5044, extra=b"e" * 1020)
        r = lookup(d, "ext20")
        eq(len(r), 14 + 5 + 1020, "PORT2_RESP length")
        eq(r, port2("ext20", 5044, extra=b"e" * 1020), "PORT2_RESP")
        s.close()


@test
def test_alive2_extra_1021_bytes_gets_error():
    with daemon() as d:
        s, r = register(d, "ext21", extra=b"e" * 1021)
        eq(r, ERR_V6, "extra 1021")
        s.close()


@test
def test_alive2_extra_with_nuls_echoed_verbatim():
    with daemon() as d:
        s, _ = register_ok(d, "nulx", port=5045, extra=b"ABC\0\0")
        r = lookup(d, "nulx")
        check(r.endswith(b"\x00\x05ABC\x00\x00"), f"reply {r!r}")
        s.close()


@test
def test_alive2_short_bodies_closed_silently():
    with daemon() as d:
        for n in (1, 9, 11, 12):
            eq(request(d, frame(alive2_body("x")[:n])), b"", f"body of {n} bytes")


@test
def test_alive2_name_length_beyond_data_closed_silently():
    with daemon() as d:
        eq(request(d, raw_alive2(10, b"abc\x00\x00")), b"", "Nlen 10, 3 bytes")


@test
def test_alive2_extra_length_beyond_data_closed_silently():
    with daemon() as d:
        eq(request(d, raw_alive2(3, b"abc\x00\x05xy")), b"", "Elen 5, 2 bytes")


@test
def test_alive2_missing_extra_length_closed_silently():
    with daemon() as d:
        eq(request(d, raw_alive2(3, b"abc")), b"", "no Elen")
        eq(request(d, raw_alive2(3, b"abc\x00")), b"", "half an Elen")


@test
def test_alive2_trailing_junk_after_extra_ignored():
    with daemon() as d:
        s = et.connect(d.port)
        s.sendall(frame(alive2_body("junky", port=5047) + b"JUNK"))
        eq(read_exact(s, 6)[:2], b"v\x00", "reply")
        eq(lookup(d, "junky"), port2("junky", 5047), "lookup")
        s.close()


@test
def test_alive2_high_version_below_6_gets_16bit_reply_and_fields_echoed():
    with daemon() as d:
        s, short = register_ok(d, "odd", port=0, node_type=0, high=0, low=9)
        check(1 <= short <= 3, f"creation {short}")
        r = lookup(d, "odd")
        eq(r[:10], bytes.fromhex("77000000000000000009"), "echoed fields")
        s.close()


@test
def test_alive2_extreme_fields_get_32bit_reply_and_are_echoed():
    with daemon() as d:
        s, _ = register_ok(d, "maxf", port=65535, node_type=255, high=65535,
                      low=65535)
        r = lookup(d, "maxf")
        eq(r[:10], bytes.fromhex("7700ffffff00ffffffff"), "echoed fields")
        s.close()


@test
def test_alive2_node_type_and_protocol_not_validated():
    with daemon() as d:
        s, _ = register_ok(d, "cnode", port=5049, node_type=104, proto=1, high=7,
                      low=1)
        eq(lookup(d, "cnode"), port2("cnode", 5049, 104, 1, 7, 1), "echo")
        s.close()


if __name__ == "__main__":
    et.run_tests()
