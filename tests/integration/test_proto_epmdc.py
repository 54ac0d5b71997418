#!/usr/bin/env python3
"""PROTOCOL.md 8.4: where epmd-c deliberately departs from the reference.

The spec pinned against the daemon under test ($EPMD_BIN): one test per
behaviour, named for it, each with its own daemon on a free loopback port.
Tests marked @epmdc pin deliberate departures from the reference
(PROTOCOL.md 8.4) and skip with EPMD_REFERENCE_MODE=1, so that the rest
can run against the real epmd (EPMD_BIN=/usr/bin/epmd).
"""

import os
import resource
import signal
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

import epmdtest as et  # noqa: E402
from epmdtest import (ERR_V5, ERR_V6, SMILE, Skip, check, close_times, daemon,
                      drop, epmdc, eq, eventually, frame, hdr, is_closed, line,
                      listed, lookup, names, port2, raise_nofile, register,
                      register_ok)  # noqa: E402


# --------------------------------------------------------------------------
# PROTOCOL.md 8.4: where epmd-c deliberately departs from the reference

@epmdc
def test_epmdc_failed_registration_connection_closed_after_error_reply():
    with daemon() as d:
        s1, _ = register_ok(d, "foo")
        cases = [("duplicate v6", "foo", {}, ERR_V6),
                 ("duplicate v5", "foo", {"high": 5}, ERR_V5),
                 ("256 chars", "d" * 256, {}, ERR_V6),
                 ("bad UTF-8", b"\xff\xfe", {}, ERR_V6),
                 ("extra 1021", "ext", {"extra": b"e" * 1021}, ERR_V6)]
        for what, name, kw, want in cases:
            s, r = register(d, name, **kw)
            eq(r, want, what)
            check(is_closed(s, 2.0), f"{what}: connection left open")
            s.close()
        check(listed(d, "foo"), "the original registration was lost")
        s1.close()


@epmdc
def test_epmdc_255_char_name_can_be_looked_up():
    with daemon() as d:
        s, _ = register_ok(d, "c" * 255, port=5041)
        eq(lookup(d, "c" * 255), port2("c" * 255, 5041), "255-char lookup")
        eq(lookup(d, "e" * 255), b"\x77\x01", "255-char unknown name")
        s.close()
        s, _ = register_ok(d, SMILE * 255, port=5042)
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
            s, c = register_ok(d, name)
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
        s, _ = register_ok(d, "term")
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
        keeper, _ = register_ok(d, "keeper", port=5100)
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
        s, _ = register_ok(d, "after", port=5101)
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
                s, r = register(d, "m%04d" % i, port=10000 + i)
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
