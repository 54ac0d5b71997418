#!/usr/bin/env python3
"""Protocol integration tests: PROTOCOL.md pinned against the daemon
under test.

One test per behaviour, named for it. Each test starts its own daemon
($EPMD_BIN) on a free loopback port and talks to it over TCP.

Tests named test_epmdc_* pin the places where epmd-c deliberately departs
from the reference (PROTOCOL.md 8.4). With EPMD_REFERENCE_MODE=1 they are
skipped, so that the rest of the suite can be run against the real epmd
(EPMD_BIN=/usr/bin/epmd); run them against the reference without that
variable to see them fail there.

The non-local-peer tests need the fakepeer shim ($FAKEPEER_SO, default
build/fakepeer.so) and print a skip line without it.
"""

import os
import re
import resource
import selectors
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import epmdtest as et  # noqa: E402
from epmdtest import (Skip, alive2_body, check, eq, eventually,  # noqa: E402
                      frame, is_closed, read_exact, read_until_close, test)
from scripts import FakePorts, fakepeer_so  # noqa: E402

REFERENCE_MODE = os.environ.get("EPMD_REFERENCE_MODE") == "1"
ERR_V6 = bytes.fromhex("760100000063")
ERR_V5 = bytes.fromhex("79010063")
SMILE = "\U0001F600"          # 4 bytes in UTF-8
FAKE = FakePorts()


def epmdc(fn):
    """Register a test of a deliberate epmd-c behaviour (PROTOCOL.md 8.4)."""
    def wrapper():
        if REFERENCE_MODE:
            raise Skip("epmd-c departs from the reference here (PROTOCOL.md "
                       "8.4); EPMD_REFERENCE_MODE=1")
        fn()
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return test(wrapper)


# --------------------------------------------------------------------------
# Helpers

def daemon(*args, **kw):
    """The daemon under test on a free port, with -address 127.0.0.1."""
    if not os.access(et.EPMD_BIN, os.X_OK):
        raise Skip(f"EPMD_BIN {et.EPMD_BIN} is not executable")
    return et.Daemon(et.EPMD_BIN, args=list(args), **kw)


def fake_daemon(*args):
    """A daemon under the fakepeer shim (chosen source ports look remote)."""
    if fakepeer_so() is None:
        raise Skip("fakepeer shim missing; build build/fakepeer.so or set "
                   "FAKEPEER_SO")
    return daemon(*args, env=FAKE.env())


def hdr(d):
    """The 4-byte NAMES/DUMP header of daemon d."""
    return struct.pack(">I", d.port)


def req(d, data, host="127.0.0.1"):
    """Raw bytes on a new connection; everything until close.

    A send that fails because the daemon already closed (or reset) the
    connection counts as a close with nothing."""
    with et.connect(d.port, host) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        return read_until_close(s)


def fake_req(d, data, host="127.0.0.1"):
    """Like req, from a source port that the shim reports as remote."""
    with FAKE.connect(d.port, host) as s:
        s.sendall(data)
        return read_until_close(s)


def names(d, host="127.0.0.1"):
    return req(d, frame(b"n"), host)


def dump(d, host="127.0.0.1"):
    return req(d, frame(b"d"), host)


def lookup(d, name, host="127.0.0.1"):
    if isinstance(name, str):
        name = name.encode()
    return req(d, frame(b"z" + name), host)


def line(name, port):
    if isinstance(name, str):
        name = name.encode()
    return b"name " + name + b" at port %d\n" % port


def listed(d, name, port=5001):
    return line(name, port) in names(d)


def reg(d, name, host="127.0.0.1", source=None, **kw):
    """Send an ALIVE2 on a new connection; (socket, reply). Keep it open."""
    s = et.connect(d.port, host, source=source)
    s.sendall(frame(alive2_body(name, **kw)))
    return s, read_exact(s, 6 if kw.get("high", 6) >= 6 else 4)


def reg_ok(d, name, **kw):
    """Register and check success; (socket, creation)."""
    s, r = reg(d, name, **kw)
    if kw.get("high", 6) >= 6:
        eq(r[:2], b"v\x00", f"ALIVE2_X_RESP for {name!r}")
        eq(len(r), 6, "reply length")
        return s, struct.unpack(">I", r[2:6])[0]
    eq(r[:2], b"y\x00", f"ALIVE2_RESP for {name!r}")
    eq(len(r), 4, "reply length")
    return s, struct.unpack(">H", r[2:4])[0]


def drop(d, s, name, port=5001):
    """Close a registration and wait until NAMES no longer lists it."""
    s.close()
    check(eventually(lambda: not listed(d, name, port), 3.0),
          f"{name!r} still listed after its connection closed")


def check_fresh(c, t0, t1):
    """A first creation is now+1 (time(NULL) at registration, bumped)."""
    check(int(t0) - 1 <= c - 1 <= int(t1) + 2,
          f"creation {c} is not now+1 (time was {t0:.1f}..{t1:.1f})")


def v5(c):
    """The 16-bit creation reported for a 32-bit counter c."""
    return c % 3 + 1


def port2(name, port=5001, node_type=77, proto=0, high=6, low=5, extra=b""):
    """The expected PORT2_RESP for a registered node."""
    if isinstance(name, str):
        name = name.encode()
    return (struct.pack(">BBHBBHHH", 119, 0, port, node_type, proto, high,
                        low, len(name)) + name
            + struct.pack(">H", len(extra)) + extra)


def raw_alive2(nlen_field, rest):
    """An ALIVE2 frame with a forged Nlen field followed by rest."""
    return frame(bytes([120, 0x13, 0x89, 77, 0, 0, 6, 0, 5])
                 + nlen_field.to_bytes(2, "big") + rest)


def cli(d, *args):
    """Run the binary under test as a client against d."""
    return et.run([et.EPMD_BIN, "-port", str(d.port)] + list(args))


def close_times(socks, limit):
    """Watch sockets until each is closed by the peer or limit seconds pass.

    Returns {socket: (seconds after start, data received)}; open ones are
    missing."""
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    got = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        got[s] = b""
    done = {}
    while len(done) < len(socks):
        left = start + limit - time.monotonic()
        if left <= 0:
            break
        for key, _ in sel.select(left):
            s = key.fileobj
            try:
                chunk = s.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if chunk:
                got[s] += chunk
                continue
            done[s] = (time.monotonic() - start, got[s])
            sel.unregister(s)
    sel.close()
    for s in socks:
        s.settimeout(5.0)
    return done


def raise_nofile(want):
    """Raise our soft RLIMIT_NOFILE to at least want (or skip)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    if hard != resource.RLIM_INFINITY and hard < want:
        raise Skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


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
        s1, _ = reg_ok(d, "foo", port=5001)
        s2, _ = reg_ok(d, "bar", port=5002, node_type=72, high=5, low=5)
        eq(names(d),
           hdr(d) + b"name bar at port 5002\nname foo at port 5001\n",
           "NAMES")
        s1.close()
        s2.close()


@test
def test_names_with_200_nodes_newest_first():
    with daemon() as d:
        socks = [reg_ok(d, "n%03d" % i, port=7000 + i)[0] for i in range(200)]
        want = hdr(d) + b"".join(line("n%03d" % i, 7000 + i)
                                 for i in reversed(range(200)))
        eq(names(d), want, "NAMES with 200 nodes")
        for s in socks:
            s.close()


@test
def test_dump_lists_active_nodes_with_nul_after_each_line():
    with daemon() as d:
        s1, _ = reg_ok(d, "foo", port=5001)
        s2, _ = reg_ok(d, "bar", port=5002, high=5)
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
        s1, _ = reg_ok(d, "foo", port=5001)
        s2, _ = reg_ok(d, "bar", port=5002)
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


# --------------------------------------------------------------------------
# ALIVE2 (1.3, 1.4) and creation (1.5)

@test
def test_alive2_v6_gets_32bit_reply_with_creation_now_plus_1():
    with daemon() as d:
        t0 = time.time()
        s, c = reg_ok(d, "foo", port=5001)
        check_fresh(c, t0, time.time())
        check(not is_closed(s, 0.3), "registration connection must stay open")
        check(listed(d, "foo", 5001), "foo not listed")
        s.close()


@test
def test_alive2_v5_gets_16bit_reply_with_creation_mod_3_plus_1():
    with daemon() as d:
        s, short = reg_ok(d, "bar", port=5002, high=5, low=5)
        check(1 <= short <= 3, f"16-bit creation {short} not in 1..3")
        drop(d, s, "bar", 5002)
        s, c = reg_ok(d, "bar", port=5002)      # from the old list: prev+1
        eq(short, v5(c - 1), f"16-bit creation vs 32-bit {c} - 1")
        s.close()


@test
def test_alive2_duplicate_name_gets_error_creation_99():
    with daemon() as d:
        s1, _ = reg_ok(d, "foo", port=5001)
        s2, r = reg(d, "foo", port=5009)
        eq(r, ERR_V6, "duplicate v6")
        s2.close()
        s1.close()


@test
def test_alive2_duplicate_name_v5_gets_16bit_error_creation_99():
    with daemon() as d:
        s1, _ = reg_ok(d, "bar", high=5)
        s2, r = reg(d, "bar", high=5, low=5)
        eq(r, ERR_V5, "duplicate v5")
        s3, r = reg(d, "bar", high=6)
        eq(r, ERR_V6, "duplicate v6 of a v5 node")
        for s in (s1, s2, s3):
            s.close()


@test
def test_alive2_duplicate_leaves_original_registered():
    with daemon() as d:
        s1, _ = reg_ok(d, "foo", port=5001)
        s2, r = reg(d, "foo", port=5009)
        eq(r, ERR_V6, "duplicate")
        s2.close()
        time.sleep(0.2)
        eq(lookup(d, "foo"), port2("foo", 5001), "original still found")
        eq(names(d), hdr(d) + line("foo", 5001), "NAMES")
        s1.close()


@test
def test_alive2_reregistration_from_old_list_is_previous_plus_1():
    with daemon() as d:
        s, c1 = reg_ok(d, "foo")
        drop(d, s, "foo")
        s, c2 = reg_ok(d, "foo")
        eq(c2, c1 + 1, "second creation")
        drop(d, s, "foo")
        s, c3 = reg_ok(d, "foo")
        eq(c3, c2 + 1, "third creation")
        s.close()


@test
def test_alive2_v5_reregistrations_cycle_through_1_2_3():
    with daemon() as d:
        s, c = reg_ok(d, "foo")
        got = []
        for _ in range(3):
            drop(d, s, "foo")
            s, short = reg_ok(d, "foo", high=5)
            got.append(short)
        eq(got, [v5(c + 1), v5(c + 2), v5(c + 3)],
           f"16-bit creations after {c}")
        drop(d, s, "foo")
        s, c4 = reg_ok(d, "foo")
        eq(c4, c + 4, "32-bit creation after three 16-bit ones")
        s.close()


@test
def test_alive2_254_char_name_registers_and_is_found():
    with daemon() as d:
        s, _ = reg_ok(d, "b" * 254, port=5040)
        eq(lookup(d, "b" * 254), port2("b" * 254, 5040), "lookup")
        s.close()


@test
def test_alive2_255_char_name_registers():
    with daemon() as d:
        s, _ = reg_ok(d, "c" * 255, port=5041)
        check(listed(d, "c" * 255, 5041), "255-char name not listed")
        s.close()


@test
def test_alive2_256_char_name_gets_error():
    with daemon() as d:
        s, r = reg(d, "d" * 256)
        eq(r, ERR_V6, "256 chars")
        s.close()
        eq(names(d), hdr(d), "nothing registered")


@test
def test_alive2_255_four_byte_chars_register():
    with daemon() as d:
        s, _ = reg_ok(d, SMILE * 255, port=5042)
        check(listed(d, SMILE * 255, 5042), "1020-byte name not listed")
        s.close()


@test
def test_alive2_256_four_byte_chars_get_error():
    with daemon() as d:
        s, r = reg(d, SMILE * 256)
        eq(r, ERR_V6, "256 four-byte chars")
        s.close()


def _bad_utf8(name):
    with daemon() as d:
        s, r = reg(d, name)
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
        eq(req(d, frame(alive2_body(b"fo\0o"))), b"", "inner NUL")
        eq(names(d), hdr(d), "nothing registered")


@test
def test_alive2_name_with_trailing_nul_closed_silently():
    with daemon() as d:
        eq(req(d, frame(alive2_body(b"foo\0"))), b"", "trailing NUL")


@test
def test_alive2_empty_name_with_extra_registers_two_space_names_line():
    with daemon() as d:
        s, _ = reg_ok(d, b"", port=6006, extra=b"x")
        eq(names(d), hdr(d) + b"name  at port 6006\n", "NAMES")
        eq(lookup(d, b""), b"", "an empty name cannot be looked up")
        s.close()


@test
def test_alive2_empty_name_and_empty_extra_closed_silently():
    with daemon() as d:
        eq(req(d, frame(alive2_body(b""))), b"", "bsize 13")
        eq(names(d), hdr(d), "nothing registered")


@test
def test_alive2_extra_1020_bytes_accepted_and_echoed():
    with daemon() as d:
        s, _ = reg_ok(d, "ext20", port=5044, extra=b"e" * 1020)
        r = lookup(d, "ext20")
        eq(len(r), 14 + 5 + 1020, "PORT2_RESP length")
        eq(r, port2("ext20", 5044, extra=b"e" * 1020), "PORT2_RESP")
        s.close()


@test
def test_alive2_extra_1021_bytes_gets_error():
    with daemon() as d:
        s, r = reg(d, "ext21", extra=b"e" * 1021)
        eq(r, ERR_V6, "extra 1021")
        s.close()


@test
def test_alive2_extra_with_nuls_echoed_verbatim():
    with daemon() as d:
        s, _ = reg_ok(d, "nulx", port=5045, extra=b"ABC\0\0")
        r = lookup(d, "nulx")
        check(r.endswith(b"\x00\x05ABC\x00\x00"), f"reply {r!r}")
        s.close()


@test
def test_alive2_short_bodies_closed_silently():
    with daemon() as d:
        for n in (1, 9, 11, 12):
            eq(req(d, frame(alive2_body("x")[:n])), b"", f"body of {n} bytes")


@test
def test_alive2_name_length_beyond_data_closed_silently():
    with daemon() as d:
        eq(req(d, raw_alive2(10, b"abc\x00\x00")), b"", "Nlen 10, 3 bytes")


@test
def test_alive2_extra_length_beyond_data_closed_silently():
    with daemon() as d:
        eq(req(d, raw_alive2(3, b"abc\x00\x05xy")), b"", "Elen 5, 2 bytes")


@test
def test_alive2_missing_extra_length_closed_silently():
    with daemon() as d:
        eq(req(d, raw_alive2(3, b"abc")), b"", "no Elen")
        eq(req(d, raw_alive2(3, b"abc\x00")), b"", "half an Elen")


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
        s, short = reg_ok(d, "odd", port=0, node_type=0, high=0, low=9)
        check(1 <= short <= 3, f"creation {short}")
        r = lookup(d, "odd")
        eq(r[:10], bytes.fromhex("77000000000000000009"), "echoed fields")
        s.close()


@test
def test_alive2_extreme_fields_get_32bit_reply_and_are_echoed():
    with daemon() as d:
        s, _ = reg_ok(d, "maxf", port=65535, node_type=255, high=65535,
                      low=65535)
        r = lookup(d, "maxf")
        eq(r[:10], bytes.fromhex("7700ffffff00ffffffff"), "echoed fields")
        s.close()


@test
def test_alive2_node_type_and_protocol_not_validated():
    with daemon() as d:
        s, _ = reg_ok(d, "cnode", port=5049, node_type=104, proto=1, high=7,
                      low=1)
        eq(lookup(d, "cnode"), port2("cnode", 5049, 104, 1, 7, 1), "echo")
        s.close()


# --------------------------------------------------------------------------
# PORT_PLEASE2 (1.7)

@test
def test_port_please2_known_v6_node_full_reply():
    with daemon() as d:
        s, _ = reg_ok(d, "foo", port=5001)
        eq(lookup(d, "foo"),
           bytes.fromhex("77 00 13 89 4d 00 00 06 00 05 00 03 66 6f 6f 00 00"),
           "zfoo")
        s.close()


@test
def test_port_please2_known_v5_hidden_node_full_reply():
    with daemon() as d:
        s, _ = reg_ok(d, "bar", port=5002, node_type=72, high=5, low=5)
        eq(lookup(d, "bar"),
           bytes.fromhex("77 00 13 8a 48 00 00 05 00 05 00 03 62 61 72 00 00"),
           "zbar")
        s.close()


@test
def test_port_please2_trailing_nul_tolerated():
    with daemon() as d:
        s, _ = reg_ok(d, "foo", port=5001)
        eq(lookup(d, b"foo\0"), port2("foo", 5001), "zfoo\\0")
        s.close()


@test
def test_port_please2_unknown_name_gets_77_01():
    with daemon() as d:
        eq(lookup(d, "xyz"), b"\x77\x01", "zxyz")


@test
def test_port_please2_old_unused_name_not_found():
    with daemon() as d:
        s, _ = reg_ok(d, "gone1")
        drop(d, s, "gone1")
        eq(lookup(d, "gone1"), b"\x77\x01", "old/unused")


@test
def test_port_please2_is_case_sensitive():
    with daemon() as d:
        s, _ = reg_ok(d, "Foo")
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
        s, _ = reg_ok(d, "foo")
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


# --------------------------------------------------------------------------
# Framing (1.1)

@test
def test_frame_length_zero_closed_silently():
    with daemon() as d:
        eq(req(d, b"\x00\x00"), b"", "00 00")
        eq(req(d, b"\x00\x00nnnn"), b"", "00 00 6e 6e 6e 6e")


@test
def test_frame_trailing_junk_after_request_fields_ignored():
    with daemon() as d:
        eq(req(d, b"\x00\x04nxyz"), hdr(d), "n + junk")
        eq(req(d, frame(b"dxyz")), hdr(d), "d + junk")


@test
def test_two_requests_in_one_write_closed_with_nothing():
    with daemon() as d:
        eq(req(d, frame(b"n") + frame(b"n")), b"", "two NAMES")
        eq(req(d, frame(alive2_body("pipe")) + frame(b"n")), b"",
           "ALIVE2 + NAMES")
        eq(names(d), hdr(d), "nothing registered")


@test
def test_request_plus_one_extra_byte_closed_with_nothing():
    with daemon() as d:
        eq(req(d, frame(b"n") + b"x"), b"", "NAMES + 1 byte")


@test
def test_frame_length_3057_answered():
    with daemon() as d:
        eq(req(d, frame(b"n" + b"x" * 3056)), hdr(d), "Length 3057")


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
        eq(req(d, frame(b"n" + b"x" * 3057)), b"", "Length 3058")
        eq(req(d, b"\xff\xff"), b"", "Length 65535")
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
        k, _ = reg_ok(d, "drib", port=5020)
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
# Unknown and refused requests (1.2, 1.10, 1.11)

@test
def test_legacy_alive_req_a_closed_silently():
    with daemon() as d:
        eq(req(d, frame(b"a\x13\x89foo")), b"", "a")
        eq(names(d), hdr(d), "nothing registered")


@test
def test_legacy_port_req_p_closed_silently():
    with daemon() as d:
        eq(req(d, frame(b"pfoo")), b"", "p")


@test
def test_unknown_request_codes_closed_silently():
    with daemon() as d:
        for code in (b"Y", b"\x00", b"!", b"N", b"w", b"y", b"v"):
            eq(req(d, frame(code + b"foo")), b"", f"code {code!r}")


@test
def test_kill_with_nodes_not_relaxed_gets_NO_and_daemon_keeps_running():
    with daemon() as d:
        s, _ = reg_ok(d, "foo")
        eq(req(d, frame(b"k")), b"NO", "KILL")
        eq(req(d, frame(b"kxyz")), b"NO", "KILL + junk")
        time.sleep(0.2)
        check(d.alive(), "daemon exited")
        check(listed(d, "foo"), "foo lost")
        s.close()


@test
def test_kill_empty_daemon_replies_OK_and_exits_0():
    with daemon() as d:
        eq(req(d, frame(b"k")), b"OK", "KILL")
        eq(d.wait(5), 0, "exit status")


@test
def test_kill_with_only_old_unused_records_replies_OK():
    with daemon() as d:
        s, _ = reg_ok(d, "old1")
        drop(d, s, "old1")
        eq(req(d, frame(b"k")), b"OK", "KILL")
        eq(d.wait(5), 0, "exit status")


@test
def test_stop_without_relaxed_closed_silently_node_kept():
    with daemon() as d:
        s, _ = reg_ok(d, "foo")
        eq(req(d, frame(b"sfoo")), b"", "STOP")
        check(not is_closed(s, 0.3), "node connection closed")
        check(listed(d, "foo"), "foo lost")
        s.close()


# --------------------------------------------------------------------------
# Relaxed mode (1.10, 1.11, 2.3)

@test
def test_relaxed_stop_registered_node_replies_STOPPED_node_sees_eof():
    with daemon("-relaxed_command_check") as d:
        s, _ = reg_ok(d, "victim", port=5060)
        eq(req(d, frame(b"svictim")), b"STOPPED", "STOP")
        check(is_closed(s, 2.0), "node did not see EOF")
        eq(names(d), hdr(d), "NAMES after STOP")
        check(b"old/unused name <victim>, port = 5060" in dump(d),
              "STOPped node not in old/unused")
        s.close()


@test
def test_relaxed_stop_unknown_name_replies_NOEXISTSTOPPED():
    with daemon("-relaxed_command_check") as d:
        eq(req(d, frame(b"snothere")), b"NOEXISTSTOPPED", "STOP unknown")


@test
def test_relaxed_stop_empty_name_closed_silently():
    with daemon("-relaxed_command_check") as d:
        eq(req(d, frame(b"s")), b"", "STOP with no name")


@test
def test_relaxed_stop_name_with_trailing_nul_stops_node():
    with daemon("-relaxed_command_check") as d:
        s, _ = reg_ok(d, "n2", port=5061)
        eq(req(d, frame(b"sn2\0")), b"STOPPED", "sn2\\0")
        check(is_closed(s, 2.0), "node did not see EOF")
        s.close()


@test
def test_relaxed_kill_with_nodes_replies_OK_nodes_see_eof_exit_0():
    with daemon("-relaxed_command_check") as d:
        s1, _ = reg_ok(d, "kn1", port=5070)
        s2, _ = reg_ok(d, "kn2", port=5071, high=5)
        eq(req(d, frame(b"k")), b"OK", "KILL")
        check(is_closed(s1, 2.0) and is_closed(s2, 2.0), "nodes saw no EOF")
        eq(d.wait(5), 0, "exit status")
        s1.close()
        s2.close()


@test
def test_relaxed_cli_kill_with_live_node_prints_killed():
    with daemon("-relaxed_command_check") as d:
        s, _ = reg_ok(d, "live2")
        eq(cli(d, "-kill")[:2], (0, b"Killed\n"), "epmd -kill")
        check(is_closed(s, 2.0), "node did not see EOF")
        eq(d.wait(5), 0, "daemon exit status")
        s.close()


@test
def test_relaxed_via_environment_variable_even_empty():
    with daemon(env={"ERL_EPMD_RELAXED_COMMAND_CHECK": ""}) as d:
        s, _ = reg_ok(d, "envnode")
        eq(req(d, frame(b"senvnode")), b"STOPPED", "STOP")
        check(is_closed(s, 2.0), "node did not see EOF")
        s.close()


# --------------------------------------------------------------------------
# The client (4.5), against the daemon under test

@test
def test_cli_kill_empty_daemon_prints_killed_and_daemon_exits_0():
    with daemon() as d:
        rc, out, err = cli(d, "-kill")
        eq((rc, out), (0, b"Killed\n"), f"epmd -kill (stderr {err!r})")
        eq(d.wait(5), 0, "daemon exit status")


@test
def test_cli_kill_with_nodes_not_allowed():
    with daemon() as d:
        s, _ = reg_ok(d, "foo")
        rc, out, _ = cli(d, "-kill")
        eq((rc, out),
           (1, b"Killing not allowed - living nodes in database.\n"),
           "epmd -kill")
        check(d.alive(), "daemon exited")
        s.close()


@test
def test_cli_stop_relaxed_prints_STOPPED_or_NOEXIST():
    with daemon("-relaxed_command_check") as d:
        s, _ = reg_ok(d, "live1")
        eq(cli(d, "-stop", "live1")[:2], (0, b"STOPPED\n"), "stop live1")
        check(is_closed(s, 2.0), "node did not see EOF")
        eq(cli(d, "-stop", "nothere")[:2], (0, b"NOEXIST\n"), "stop nothere")
        s.close()


@test
def test_cli_stop_not_relaxed_responds_empty():
    with daemon() as d:
        s, _ = reg_ok(d, "live3")
        eq(cli(d, "-stop", "live3")[:2],
           (1, b"epmd: local epmd responded with <>\n"), "stop live3")
        s.close()


@test
def test_cli_names_prints_header_line_and_body():
    with daemon() as d:
        s, _ = reg_ok(d, "clia", port=5050)
        eq(cli(d, "-names")[:2],
           (0, b"epmd: up and running on port %d with data:\n" % d.port
            + line("clia", 5050)), "epmd -names")
        s.close()


# --------------------------------------------------------------------------
# Unregistration (1.6)

@test
def test_unregistration_by_eof():
    with daemon() as d:
        s, _ = reg_ok(d, "eofnode", port=5003)
        drop(d, s, "eofnode", 5003)
        eq(lookup(d, "eofnode"), b"\x77\x01", "lookup after EOF")


@test
def test_unregistration_by_half_close():
    with daemon() as d:
        s, _ = reg_ok(d, "halfnode", port=5004)
        s.shutdown(socket.SHUT_WR)
        eq(read_until_close(s), b"", "daemon closes after SHUT_WR")
        check(eventually(lambda: not listed(d, "halfnode", 5004), 3.0),
              "still listed")
        s.close()


@test
def test_unregistration_by_stray_byte():
    with daemon() as d:
        s, _ = reg_ok(d, "straynode", port=5005)
        s.sendall(b"x")
        eq(read_until_close(s), b"", "daemon closes after a stray byte")
        check(eventually(lambda: not listed(d, "straynode", 5005), 3.0),
              "still listed")
        s.close()


@test
def test_unregistration_by_second_alive2_on_same_socket():
    with daemon() as d:
        s, _ = reg_ok(d, "twice", port=5006)
        s.sendall(frame(alive2_body("twice2", port=5007)))
        eq(read_until_close(s), b"", "daemon closes, no reply")
        check(eventually(lambda: names(d) == hdr(d), 3.0), "still listed")
        s.close()


# --------------------------------------------------------------------------
# Addresses (2.1)

@test
def test_ipv6_loopback_registration_found_via_127_0_0_1():
    with daemon() as d:
        s, _ = reg_ok(d, "six", host="::1", port=5030)
        eq(lookup(d, "six"), port2("six", 5030), "lookup via 127.0.0.1")
        eq(names(d, "::1"), hdr(d) + line("six", 5030), "NAMES via ::1")
        s.close()


@test
def test_source_127_0_0_2_is_local():
    with daemon() as d:
        with et.connect(d.port, source=("127.0.0.2", 0)) as q:
            q.sendall(frame(b"n"))
            eq(read_until_close(q), hdr(d), "NAMES from 127.0.0.2")
        s, _ = reg_ok(d, "two", source=("127.0.0.2", 0), port=5031)
        check(listed(d, "two", 5031), "not listed")
        s.close()


# --------------------------------------------------------------------------
# Non-local peers (2.2), simulated with the fakepeer shim

@test
def test_nonlocal_v4_names_answered():
    with fake_daemon("-relaxed_command_check") as d:
        s, _ = reg_ok(d, "localnode", port=8000)
        eq(fake_req(d, frame(b"n")), hdr(d) + line("localnode", 8000), "NAMES")
        s.close()


@test
def test_nonlocal_v4_port_please2_answered():
    with fake_daemon("-relaxed_command_check") as d:
        s, _ = reg_ok(d, "localnode", port=8000)
        eq(fake_req(d, frame(b"zlocalnode")), port2("localnode", 8000),
           "PORT2")
        eq(fake_req(d, frame(b"znothere")), b"\x77\x01", "PORT2 unknown")
        s.close()


@test
def test_nonlocal_v4_alive2_closed_silently_nothing_registered():
    with fake_daemon("-relaxed_command_check") as d:
        eq(fake_req(d, frame(alive2_body("remote"))), b"", "ALIVE2")
        eq(names(d), hdr(d), "registry untouched")


@test
def test_nonlocal_v4_dump_closed_silently():
    with fake_daemon("-relaxed_command_check") as d:
        eq(fake_req(d, frame(b"d")), b"", "DUMP")


@test
def test_nonlocal_v4_kill_closed_silently_daemon_keeps_running():
    with fake_daemon("-relaxed_command_check") as d:
        eq(fake_req(d, frame(b"k")), b"", "KILL")
        time.sleep(0.2)
        check(d.alive(), "daemon exited")
        eq(names(d), hdr(d), "NAMES still served")


@test
def test_nonlocal_v4_stop_closed_silently_node_kept():
    with fake_daemon("-relaxed_command_check") as d:
        s, _ = reg_ok(d, "keep", port=8002)
        eq(fake_req(d, frame(b"skeep")), b"", "STOP")
        check(not is_closed(s, 0.3), "node connection closed")
        check(listed(d, "keep", 8002), "node lost")
        s.close()


@test
def test_nonlocal_v6_alive2_kill_stop_dump_closed_silently():
    with fake_daemon("-relaxed_command_check") as d:
        s, _ = reg_ok(d, "six", host="::1", port=8003)
        for data in (frame(alive2_body("remote6")), frame(b"k"),
                     frame(b"ssix"), frame(b"d")):
            eq(fake_req(d, data, "::1"), b"", f"v6 {data[2:3]!r}")
        time.sleep(0.2)
        check(d.alive(), "daemon exited")
        check(not is_closed(s, 0.2), "node connection closed")
        eq(names(d), hdr(d) + line("six", 8003), "registry untouched")
        s.close()


@test
def test_nonlocal_v6_names_and_port_please2_answered():
    with fake_daemon("-relaxed_command_check") as d:
        s, _ = reg_ok(d, "six", host="::1", port=8003)
        eq(fake_req(d, frame(b"n"), "::1"), hdr(d) + line("six", 8003),
           "NAMES")
        eq(fake_req(d, frame(b"zsix"), "::1"), port2("six", 8003), "PORT2")
        s.close()


# --------------------------------------------------------------------------
# Timeouts (3)

IDLE_LATEST = 3.5 if REFERENCE_MODE else 2.5


@test
def test_registered_connection_never_idle_timed_out():
    with daemon("-packet_timeout", "1") as d:
        s, _ = reg_ok(d, "stay", port=5080)
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


# --------------------------------------------------------------------------
# PROTOCOL.md 8.4: where epmd-c deliberately departs from the reference

@epmdc
def test_epmdc_failed_registration_connection_closed_after_error_reply():
    with daemon() as d:
        s1, _ = reg_ok(d, "foo")
        cases = [("duplicate v6", "foo", {}, ERR_V6),
                 ("duplicate v5", "foo", {"high": 5}, ERR_V5),
                 ("256 chars", "d" * 256, {}, ERR_V6),
                 ("bad UTF-8", b"\xff\xfe", {}, ERR_V6),
                 ("extra 1021", "ext", {"extra": b"e" * 1021}, ERR_V6)]
        for what, name, kw, want in cases:
            s, r = reg(d, name, **kw)
            eq(r, want, what)
            check(is_closed(s, 2.0), f"{what}: connection left open")
            s.close()
        check(listed(d, "foo"), "the original registration was lost")
        s1.close()


@epmdc
def test_epmdc_255_char_name_can_be_looked_up():
    with daemon() as d:
        s, _ = reg_ok(d, "c" * 255, port=5041)
        eq(lookup(d, "c" * 255), port2("c" * 255, 5041), "255-char lookup")
        eq(lookup(d, "e" * 255), b"\x77\x01", "255-char unknown name")
        s.close()
        s, _ = reg_ok(d, SMILE * 255, port=5042)
        eq(lookup(d, SMILE * 255), port2(SMILE * 255, 5042),
           "255 four-byte chars lookup")
        s.close()


@epmdc
def test_epmdc_creation_never_repeats_for_a_name_after_eviction():
    # With -d the old/unused list holds 5 records. The reference hands an
    # evicted record's counter, unbumped, to the next new name; by cycling
    # new names until that record is the oldest again, the first name gets
    # its own old creation back.
    with daemon("-d") as d:
        hist = {}

        def cycle(name):
            s, c = reg_ok(d, name)
            hist.setdefault(name, []).append(c)
            drop(d, s, name)
        for n in "ABCDEF":
            cycle(n)
        cycle("G")              # the list is over its limit: evicts A
        for n in "HIJKL":
            cycle(n)            # evict B..F; G's record is now the oldest
        cycle("A")              # a new name again
        cycle("A")              # and from the old list
        for name, cs in hist.items():
            check(all(b > a for a, b in zip(cs, cs[1:])),
                  f"creations of {name} not increasing: {cs}")


@epmdc
def test_epmdc_sigterm_exits_0_quickly_closing_connections():
    with daemon() as d:
        s, _ = reg_ok(d, "term")
        start = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        eq(d.wait(2), 0, "exit status after SIGTERM")
        check(time.monotonic() - start < 1.0, "SIGTERM exit took over 1 s")
        check(is_closed(s, 1.0), "node did not see EOF")
        s.close()


@epmdc
def test_epmdc_sigint_exits_0_quickly():
    with daemon() as d:
        start = time.monotonic()
        d.proc.send_signal(signal.SIGINT)
        eq(d.wait(2), 0, "exit status after SIGINT")
        check(time.monotonic() - start < 1.0, "SIGINT exit took over 1 s")


@epmdc
def test_epmdc_unregistered_idle_connection_closed_at_packet_timeout_plus_1():
    # Two connections, opened 0.1 s before and 0.1 s after a wall-clock
    # second: a daemon that counts whole seconds (the reference) sees them a
    # second apart and cannot close both 2 s after they fell silent.
    with daemon("-packet_timeout", "1") as d:
        boundary = int(time.time()) + 1
        socks, opened = [], []
        for at in (boundary - 0.1, boundary + 0.1):
            time.sleep(max(0.0, at - time.time()))
            socks.append(et.connect(d.port))
            opened.append(time.monotonic())
        base = time.monotonic()
        done = close_times(socks, 5.0)
        for s, t_open in zip(socks, opened):
            check(s in done, "not closed within 5 s")
            t = done[s][0] + base - t_open
            check(1.5 <= t <= 2.5, f"closed {t:.2f} s after the last byte")
            s.close()


@epmdc
def test_epmdc_survives_running_out_of_fds():
    def low_nofile():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    with daemon(preexec=low_nofile) as d:
        keeper, _ = reg_ok(d, "keeper", port=5100)
        flood = []
        try:
            for _ in range(100):
                flood.append(et.connect(d.port, timeout=5.0))
            time.sleep(0.5)
            check(d.alive(), "daemon died while out of descriptors")
        finally:
            for s in flood:
                s.close()
        check(eventually(lambda: d.alive() and
                         lookup(d, "keeper") == port2("keeper", 5100), 5.0),
              "lookup does not work after the flood")
        check(not is_closed(keeper, 0.2), "the registered node was harmed")
        s, _ = reg_ok(d, "after", port=5101)
        check(listed(d, "after", 5101), "new registration not listed")
        check(d.alive(), "daemon died")
        s.close()
        keeper.close()


@epmdc
def test_epmdc_1100_simultaneous_registered_nodes():
    raise_nofile(4096)
    with daemon() as d:
        socks = []
        try:
            for i in range(1100):
                s, r = reg(d, "m%04d" % i, port=10000 + i)
                socks.append(s)
                eq(r[:2], b"v\x00", f"registration {i}")
            got = names(d)
            want = hdr(d) + b"".join(line("m%04d" % i, 10000 + i)
                                     for i in reversed(range(1100)))
            eq(got == want, True, "NAMES lists all 1100 nodes newest first")
        finally:
            for s in socks:
                s.close()


@epmdc
def test_epmdc_names_header_is_the_port_connected_to():
    # -port P+65536 binds P; the reference reports P+65536 (PROTOCOL.md 1.8).
    if not os.access(et.EPMD_BIN, os.X_OK):
        raise Skip(f"EPMD_BIN {et.EPMD_BIN} is not executable")
    p = et.free_port()
    with et.Daemon(et.EPMD_BIN, port=p + 65536, wait=False) as d:
        check(et.wait_port(p), "daemon did not listen on the truncated port")
        eq(et.request(p, frame(b"n"))[:4], struct.pack(">I", p), "header")


if __name__ == "__main__":
    et.run_tests()
