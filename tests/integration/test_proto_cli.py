#!/usr/bin/env python3
"""PROTOCOL.md 4.5: the client, against the daemon under test.

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
from epmdtest import (check, cli, daemon, eq, is_closed, line, register_ok,
                      test)  # noqa: E402


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
        s, _ = register_ok(d, "foo")
        rc, out, _ = cli(d, "-kill")
        eq((rc, out),
           (1, b"Killing not allowed - living nodes in database.\n"),
           "epmd -kill")
        check(d.alive(), "daemon exited")
        s.close()


@test
def test_cli_stop_relaxed_prints_STOPPED_or_NOEXIST():
    with daemon("-relaxed_command_check") as d:
        s, _ = register_ok(d, "live1")
        eq(cli(d, "-stop", "live1")[:2], (0, b"STOPPED\n"), "stop live1")
        check(is_closed(s, 2.0), "node did not see EOF")
        eq(cli(d, "-stop", "nothere")[:2], (0, b"NOEXIST\n"), "stop nothere")
        s.close()


@test
def test_cli_stop_not_relaxed_responds_empty():
    with daemon() as d:
        s, _ = register_ok(d, "live3")
        eq(cli(d, "-stop", "live3")[:2],
           (1, b"epmd: local epmd responded with <>\n"), "stop live3")
        s.close()


@test
def test_cli_names_prints_header_line_and_body():
    with daemon() as d:
        s, _ = register_ok(d, "clia", port=5050)
        eq(cli(d, "-names")[:2],
           (0, b"epmd: up and running on port %d with data:\n" % d.port
            + line("clia", 5050)), "epmd -names")
        s.close()


if __name__ == "__main__":
    et.run_tests()
