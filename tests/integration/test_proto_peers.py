#!/usr/bin/env python3
"""PROTOCOL.md 2.1 and 2.2: which peers are local, and what the others may do.

The spec pinned against the daemon under test ($EPMD_BIN): one test per
behaviour, named for it, each with its own daemon on a free loopback port.
Tests marked @epmdc pin deliberate departures from the reference
(PROTOCOL.md 8.4) and skip with EPMD_REFERENCE_MODE=1, so that the rest
can run against the real epmd (EPMD_BIN=/usr/bin/epmd).
"""

import atexit
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

import epmdtest as et  # noqa: E402
from epmdtest import (alive2_body, check, daemon, eq, frame, hdr, is_closed,
                      line, listed, lookup, names, port2, read_until_close,
                      register_ok, test)  # noqa: E402
import netns  # noqa: E402
from netns import HOST_ADDR6  # noqa: E402


_peer = []      # the file's one remote peer, started on first use


@contextlib.contextmanager
def remote_daemon(*args):
    """(daemon, remote peer): the daemon under test in this file's network
    namespace pair, reachable from the peer at 198.51.100.1 and
    2001:db8::1 (and from loopback as usual), for the duration of a test."""
    ns = netns.shared()
    with netns.entered(ns), daemon(*args, address=netns.ADDRESSES) as d:
        if _peer and _peer[0].proc.poll() is None:
            _peer[0].aim(d)
        else:
            _peer[:] = [netns.Remote(ns, d)]
            atexit.register(_peer[0].close)
        yield d, _peer[0]


# --------------------------------------------------------------------------
# Addresses (2.1)

@test
def test_ipv6_loopback_registration_found_via_127_0_0_1():
    with daemon() as d:
        s, _ = register_ok(d, "six", host="::1", port=5030)
        eq(lookup(d, "six"), port2("six", 5030), "lookup via 127.0.0.1")
        eq(names(d, "::1"), hdr(d) + line("six", 5030), "NAMES via ::1")
        s.close()


@test
def test_source_127_0_0_2_is_local():
    with daemon() as d:
        with et.connect(d.port, source=("127.0.0.2", 0)) as q:
            q.sendall(frame(b"n"))
            eq(read_until_close(q), hdr(d), "NAMES from 127.0.0.2")
        s, _ = register_ok(d, "two", source=("127.0.0.2", 0), port=5031)
        check(listed(d, "two", 5031), "not listed")
        s.close()


# --------------------------------------------------------------------------
# Non-local peers (2.2): a genuinely remote peer in a network namespace

@test
def test_nonlocal_v4_names_answered():
    with remote_daemon("-relaxed_command_check") as (d, peer):
        s, _ = register_ok(d, "localnode", port=8000)
        eq(peer.request(frame(b"n")), hdr(d) + line("localnode", 8000),
           "NAMES")
        s.close()


@test
def test_nonlocal_v4_port_please2_answered():
    with remote_daemon("-relaxed_command_check") as (d, peer):
        s, _ = register_ok(d, "localnode", port=8000)
        eq(peer.request(frame(b"zlocalnode")), port2("localnode", 8000),
           "PORT2")
        eq(peer.request(frame(b"znothere")), b"\x77\x01", "PORT2 unknown")
        s.close()


@test
def test_nonlocal_v4_alive2_closed_silently_nothing_registered():
    with remote_daemon("-relaxed_command_check") as (d, peer):
        eq(peer.request(frame(alive2_body("remote"))), b"", "ALIVE2")
        eq(names(d), hdr(d), "registry untouched")


@test
def test_nonlocal_v4_dump_closed_silently():
    with remote_daemon("-relaxed_command_check") as (d, peer):
        eq(peer.request(frame(b"d")), b"", "DUMP")


@test
def test_nonlocal_v4_kill_closed_silently_daemon_keeps_running():
    with remote_daemon("-relaxed_command_check") as (d, peer):
        eq(peer.request(frame(b"k")), b"", "KILL")
        time.sleep(0.2)
        check(d.alive(), "daemon exited")
        eq(names(d), hdr(d), "NAMES still served")


@test
def test_nonlocal_v4_stop_closed_silently_node_kept():
    with remote_daemon("-relaxed_command_check") as (d, peer):
        s, _ = register_ok(d, "keep", port=8002)
        eq(peer.request(frame(b"skeep")), b"", "STOP")
        check(not is_closed(s, 0.3), "node connection closed")
        check(listed(d, "keep", 8002), "node lost")
        s.close()


@test
def test_nonlocal_v6_alive2_kill_stop_dump_closed_silently():
    with remote_daemon("-relaxed_command_check") as (d, peer):
        s, _ = register_ok(d, "six", host="::1", port=8003)
        for data in (frame(alive2_body("remote6")), frame(b"k"),
                     frame(b"ssix"), frame(b"d")):
            eq(peer.request(data, HOST_ADDR6), b"", f"v6 {data[2:3]!r}")
        time.sleep(0.2)
        check(d.alive(), "daemon exited")
        check(not is_closed(s, 0.2), "node connection closed")
        eq(names(d), hdr(d) + line("six", 8003), "registry untouched")
        s.close()


@test
def test_nonlocal_v6_names_and_port_please2_answered():
    with remote_daemon("-relaxed_command_check") as (d, peer):
        s, _ = register_ok(d, "six", host="::1", port=8003)
        eq(peer.request(frame(b"n"), HOST_ADDR6), hdr(d) + line("six", 8003),
           "NAMES")
        eq(peer.request(frame(b"zsix"), HOST_ADDR6), port2("six", 8003),
           "PORT2")
        s.close()


if __name__ == "__main__":
    et.run_tests()
