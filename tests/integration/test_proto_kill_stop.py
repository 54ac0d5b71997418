#!/usr/bin/env python3
"""PROTOCOL.md 1.10, 1.11 and 2.3: KILL, STOP and the relaxed command check.

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
from epmdtest import (check, cli, daemon, drop, dump, eq, frame, hdr,
                      is_closed, listed, names, register_ok, request, test)  # noqa: E402


# --------------------------------------------------------------------------
# KILL and STOP, not relaxed (1.10, 1.11)

@test
def test_kill_with_nodes_not_relaxed_gets_NO_and_daemon_keeps_running():
    with daemon() as d:
        s, _ = register_ok(d, "foo")
        eq(request(d, frame(b"k")), b"NO", "KILL")
        eq(request(d, frame(b"kxyz")), b"NO", "KILL + junk")
        time.sleep(0.2)
        check(d.alive(), "daemon exited")
        check(listed(d, "foo"), "foo lost")
        s.close()


@test
def test_kill_empty_daemon_replies_OK_and_exits_0():
    with daemon() as d:
        eq(request(d, frame(b"k")), b"OK", "KILL")
        eq(d.wait(5), 0, "exit status")


@test
def test_kill_with_only_old_unused_records_replies_OK():
    with daemon() as d:
        s, _ = register_ok(d, "old1")
        drop(d, s, "old1")
        eq(request(d, frame(b"k")), b"OK", "KILL")
        eq(d.wait(5), 0, "exit status")


@test
def test_stop_without_relaxed_closed_silently_node_kept():
    with daemon() as d:
        s, _ = register_ok(d, "foo")
        eq(request(d, frame(b"sfoo")), b"", "STOP")
        check(not is_closed(s, 0.3), "node connection closed")
        check(listed(d, "foo"), "foo lost")
        s.close()


# --------------------------------------------------------------------------
# Relaxed mode (1.10, 1.11, 2.3)

@test
def test_relaxed_stop_registered_node_replies_STOPPED_node_sees_eof():
    with daemon("-relaxed_command_check") as d:
        s, _ = register_ok(d, "victim", port=5060)
        eq(request(d, frame(b"svictim")), b"STOPPED", "STOP")
        check(is_closed(s, 2.0), "node did not see EOF")
        eq(names(d), hdr(d), "NAMES after STOP")
        check(b"old/unused name <victim>, port = 5060" in dump(d),
              "STOPped node not in old/unused")
        s.close()


@test
def test_relaxed_stop_unknown_name_replies_NOEXISTSTOPPED():
    with daemon("-relaxed_command_check") as d:
        eq(request(d, frame(b"snothere")), b"NOEXISTSTOPPED", "STOP unknown")


@test
def test_relaxed_stop_empty_name_closed_silently():
    with daemon("-relaxed_command_check") as d:
        eq(request(d, frame(b"s")), b"", "STOP with no name")


@test
def test_relaxed_stop_name_with_trailing_nul_stops_node():
    with daemon("-relaxed_command_check") as d:
        s, _ = register_ok(d, "n2", port=5061)
        eq(request(d, frame(b"sn2\0")), b"STOPPED", "sn2\\0")
        check(is_closed(s, 2.0), "node did not see EOF")
        s.close()


@test
def test_relaxed_kill_with_nodes_replies_OK_nodes_see_eof_exit_0():
    with daemon("-relaxed_command_check") as d:
        s1, _ = register_ok(d, "kn1", port=5070)
        s2, _ = register_ok(d, "kn2", port=5071, high=5)
        eq(request(d, frame(b"k")), b"OK", "KILL")
        check(is_closed(s1, 2.0) and is_closed(s2, 2.0), "nodes saw no EOF")
        eq(d.wait(5), 0, "exit status")
        s1.close()
        s2.close()


@test
def test_relaxed_cli_kill_with_live_node_prints_killed():
    with daemon("-relaxed_command_check") as d:
        s, _ = register_ok(d, "live2")
        eq(cli(d, "-kill")[:2], (0, b"Killed\n"), "epmd -kill")
        check(is_closed(s, 2.0), "node did not see EOF")
        eq(d.wait(5), 0, "daemon exit status")
        s.close()


@test
def test_relaxed_via_environment_variable_even_empty():
    with daemon(env={"ERL_EPMD_RELAXED_COMMAND_CHECK": ""}) as d:
        s, _ = register_ok(d, "envnode")
        eq(request(d, frame(b"senvnode")), b"STOPPED", "STOP")
        check(is_closed(s, 2.0), "node did not see EOF")
        s.close()


if __name__ == "__main__":
    et.run_tests()
