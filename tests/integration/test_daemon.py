#!/usr/bin/env python3
"""The daemon's life as an operator sees it: logs, detaching, limits.

These are epmd-c behaviours (logging, the port-in-use notice, the raised
descriptor limit); with EPMD_REFERENCE_MODE=1 they skip.
"""

import os
import resource
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import epmdtest as et  # noqa: E402
from epmdtest import Daemon, Skip, check, eq, frame, test  # noqa: E402


def epmdc_only():
    et.epmdc_only("epmd-c behaviour")


@test
def test_foreground_logs_listeners_and_descriptor_limit():
    epmdc_only()
    with Daemon() as d:
        # The kernel accepts as soon as the sockets listen; the lines may
        # follow a moment later.
        want = (f"listening on 127.0.0.1:{d.port}",
                f"listening on [::1]:{d.port}", "descriptor limit")
        et.eventually(lambda: all(w in d.stderr() for w in want), 2.0)
        err = d.stderr()
    check(f"listening on 127.0.0.1:{d.port}" in err, err)
    check(f"listening on [::1]:{d.port}" in err, err)
    check("descriptor limit" in err, err)


@test
def test_descriptor_limit_is_raised_to_the_hard_limit():
    epmdc_only()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 256:
        raise Skip(f"hard limit {hard} too low to see a raise")

    def low():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    with Daemon(preexec=low) as d:
        with open(f"/proc/{d.pid}/limits") as f:
            line = [x for x in f if x.startswith("Max open files")][0]
        err = d.stderr()
    eq(int(line.split()[3]), hard, "soft limit after start")
    check(f"raised from 256 to {hard}" in err, err)


@test
def test_registration_and_unregistration_are_logged_with_the_node():
    epmdc_only()
    with Daemon() as d:
        s, r = et.register(d.port, "lognode", port=5555)
        eq(r[:2], b"\x76\x00", "registered")
        s.close()
        check(et.eventually(lambda: "unregistered lognode" in d.stderr()),
              d.stderr())
        err = d.stderr()
    check("registered lognode at port 5555" in err, err)


@test
def test_one_d_flag_does_not_log_every_request_two_do():
    epmdc_only()
    with Daemon(args=["-d"]) as d:
        et.port_please(d.port, "quiet")
        time.sleep(0.1)
        one = d.stderr()
    with Daemon(args=["-d", "-d"]) as d:
        et.port_please(d.port, "loud")
        check(et.eventually(lambda: "for loud" in d.stderr()), d.stderr())
        two = d.stderr()
    check("request 'z'" not in one, one)
    check("request 'z' (5 bytes) from 127.0.0.1:" in two, two)


@test
def test_control_bytes_in_names_are_escaped_in_logs():
    epmdc_only()
    with Daemon() as d:
        s, r = et.register(d.port, "evil\nnode", port=5556)
        eq(r[:2], b"\x76\x00", "registered")
        check(et.eventually(lambda: "evil\\x0anode" in d.stderr()),
              d.stderr())
        s.close()


@test
def test_refusal_floods_are_rate_limited_in_the_log():
    epmdc_only()
    with Daemon() as d:
        s, _ = et.register(d.port, "keeper")
        dup = et.frame(et.alive2_body("keeper"))
        start = time.monotonic()
        for _ in range(300):
            eq(et.request(d.port, frame(b"k")), b"NO", "KILL reply")
            eq(et.request(d.port, dup), bytes.fromhex("760100000063"),
               "duplicate ALIVE2 reply")
        secs = time.monotonic() - start
        time.sleep(1.1)
        # The next refusal, a second later, reports how many were held back.
        eq(et.request(d.port, frame(b"k")), b"NO", "KILL reply")
        err = d.stderr()
        s.close()
    kills = err.count("KILL from") - 1
    dups = err.count("registration of keeper refused")
    # 10 flood-prone lines a second at most, plus the summaries.
    check(kills + dups <= 10 * (int(secs) + 2), f"{kills} + {dups} lines")
    check(kills >= 1 and "similar messages not logged" in err, err[-500:])


@test
def test_long_names_are_cut_in_logs_but_the_reason_stays():
    epmdc_only()
    with Daemon() as d:
        name = b"\xff" * 1000      # invalid UTF-8: refused, logged escaped
        s, r = et.register(d.port, name)
        eq(r, bytes.fromhex("760100000063"), "error reply")
        check(et.eventually(lambda: ": invalid name" in d.stderr()),
              d.stderr()[-300:])
        s.close()


@test
def test_port_in_use_exits_0_with_a_notice_in_the_foreground():
    epmdc_only()
    with Daemon() as d:
        rc, out, err = et.run([et.EPMD_BIN, "-port", str(d.port),
                               "-address", "127.0.0.1"], timeout=10)
        check(d.alive(), "the first daemon died")
    eq(rc, 0, "exit status")
    check(b"already in use" in err, err)


@test
def test_sighup_in_the_foreground_shuts_down_cleanly():
    epmdc_only()
    with Daemon() as d:
        s, _ = et.register(d.port, "hupnode")
        d.proc.send_signal(signal.SIGHUP)
        eq(d.wait(), 0, "exit status after SIGHUP")
        check(et.is_closed(s), "the node's connection was not closed")


@test
def test_daemon_parent_exits_0_at_once_and_child_serves():
    epmdc_only()
    port = et.free_port()
    start = time.monotonic()
    rc, out, err = et.run([et.EPMD_BIN, "-port", str(port), "-address",
                           "127.0.0.1", "-daemon"], timeout=10)
    eq(rc, 0, "parent exit status")
    check(time.monotonic() - start < 2, "the parent did not exit at once")
    try:
        check(et.wait_port(port), "detached daemon does not listen")
        eq(et.names(port)[:4], port.to_bytes(4, "big"), "NAMES header")
    finally:
        rc, out, _ = et.run([et.EPMD_BIN, "-port", str(port), "-kill"])
    eq(out, b"Killed\n", "kill output")


if __name__ == "__main__":
    et.run_tests()
