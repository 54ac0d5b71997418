#!/usr/bin/env python3
"""The caps on non-local peers and their request deadline (README, "Limits
and defaults"; epmd-c's own, so the reference is not run).

A peer in another network namespace (tests/lib/netns.py) reaches the
daemon from 198.51.100.2; loopback clients stand for the host's own
nodes. Each test asserts what both sides see: the remote peer is held to
-max_conns_per_prefix, -max_remote_conns and -request_deadline, while
loopback requests keep being answered. Not root, or no namespaces: every
test is skipped.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import epmdtest as et  # noqa: E402
from netns import HOST_ADDR, Netns, Remote  # noqa: E402


class Remote1:
    """A daemon listening on HOST_ADDR with args, and the remote peer."""

    def __init__(self, *args):
        self.args = list(args)

    def __enter__(self):
        self.ns = Netns().__enter__()
        try:
            self.d = et.Daemon(address=HOST_ADDR, args=self.args)
            self.remote = Remote(self.ns, self.d)
        except BaseException:
            self.ns.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.remote.close()
            self.d.stop()
        finally:
            self.ns.__exit__(*exc)


def lookup_works(d):
    """A loopback lookup of a missing name gets the not-found reply."""
    return et.request(d.port, et.frame(b"z" + b"nobody"))[:2] == b"w\x01"


def reported(d, what):
    """The sum of "N <what>" over the daemon's pressure reports."""
    return sum(int(n) for n in re.findall(r"(\d+) " + re.escape(what),
                                          d.stderr()))


def closed_after(sock, limit):
    """Seconds until the daemon closes sock (a RemoteSocket), trickling one
    byte a second meanwhile; None if it stays open for limit seconds."""
    t0 = time.monotonic()
    for _ in range(int(limit) + 1):
        try:
            sock.sendall(b"a")
        except OSError:
            return time.monotonic() - t0
        _, state = sock.read(None, 1.0)
        if state == "closed":
            return time.monotonic() - t0
    return None


@et.epmdc(timeout=60)
def test_a_trickling_remote_request_is_closed_at_the_deadline():
    with Remote1("-request_deadline", "3") as r:
        with r.remote.connect() as s:
            # An ALIVE2 frame announcing 3000 bytes, one byte a second.
            s.sendall(b"\x0b\xb8x")
            took = closed_after(s, 10)
        et.check(took is not None, "a trickling remote request outlived "
                 "-request_deadline 3 by 7 s")
        et.check(took <= 6, f"closed after {took:.1f} s, deadline 3 s")
        et.check(r.d.alive(), "daemon died")


@et.epmdc(timeout=60)
def test_a_remote_request_made_in_time_is_answered():
    with Remote1("-request_deadline", "3") as r:
        reply = r.remote.request(et.frame(b"z" + b"nobody"))
        et.eq(reply, b"w\x01", "remote lookup within the deadline")


@et.epmdc(timeout=60)
def test_a_trickling_loopback_request_has_no_deadline():
    # OTP's suite sends a byte a second from loopback: it must still work.
    with et.Daemon(args=["-request_deadline", "1",
                         "-packet_timeout", "3"]) as d:
        s = et.connect(d.port)
        for b in et.frame(b"z" + b"abc"):
            s.sendall(bytes([b]))
            time.sleep(0.5)
        et.eq(et.read_until_close(s, 5.0), b"w\x01",
              "a loopback request that took 3 s")
        s.close()


@et.epmdc(timeout=60)
def test_the_prefix_cap_refuses_one_more_from_the_prefix():
    with Remote1("-max_conns_per_peer", "0", "-max_conns_per_prefix", "3",
                 "-peer_prefix4", "24") as r:
        got = r.remote.call("hold", count=5, expect_max=3, settle=5)
        et.eq(got["open"], 3, f"held from one /24 with a cap of 3: {got}")
        et.check(lookup_works(r.d), "loopback lookup with the prefix full")
        et.check(et.eventually(lambda: "198.51.100.0/24 holds 3" in
                               r.d.stderr(), 5),
                 f"no report naming the prefix: {r.d.stderr()[-2000:]}")
        # The first report comes at once, the rest at the period's end.
        et.check(et.eventually(lambda: reported(r.d, "refused over "
                                                "-max_conns_per_prefix") == 2,
                               8),
                 f"reports do not count 2 refusals: {r.d.stderr()[-2000:]}")


@et.epmdc(timeout=60)
def test_the_remote_cap_leaves_loopback_its_room():
    with Remote1("-max_conns_per_peer", "0", "-max_conns_per_prefix", "0",
                 "-max_remote_conns", "4") as r:
        got = r.remote.call("hold", count=12, expect_max=4, settle=5)
        et.eq(got["open"], 4, f"remote connections held: {got}")
        local = [et.connect(r.d.port) for _ in range(20)]
        try:
            s, _ = et.register_ok(r.d.port, "homenode")
            et.check(et.listed(r.d, "homenode"), "homenode not listed")
            s.close()
        finally:
            for c in local:
                c.close()


@et.epmdc(timeout=60)
def test_at_the_remote_cap_old_requests_make_room():
    with Remote1("-max_conns_per_peer", "0", "-max_conns_per_prefix", "0",
                 "-max_remote_conns", "3") as r:
        got = r.remote.call("hold", count=3, expect_max=3, settle=1)
        et.eq(got["open"], 3, f"remote connections held: {got}")
        time.sleep(2.5)
        reply = r.remote.request(et.frame(b"z" + b"nobody"))
        et.eq(reply, b"w\x01", "a new remote request at the cap")
        st = r.remote.call("status", wait=0.5)
        et.check(st["closed"] >= 1, f"no old request made room: {st}")
        et.check(et.eventually(lambda: reported(r.d, "closed to make room")
                               >= 1, 5),
            f"no report of the closes: {r.d.stderr()[-2000:]}")


@et.epmdc(timeout=60)
def test_a_young_request_is_not_closed_to_make_room():
    with Remote1("-max_conns_per_peer", "0", "-max_conns_per_prefix", "0",
                 "-max_remote_conns", "3") as r:
        got = r.remote.call("hold", count=3, expect_max=3, settle=0.2)
        et.eq(got["open"], 3, f"remote connections held: {got}")
        res = r.remote.requests(et.frame(b"z" + b"nobody"), timeout=2.0)[0]
        et.eq(bytes.fromhex(res["reply"]), b"", "refused at the cap")
        st = r.remote.call("status", wait=0.3)
        et.eq(st["open"], 3, f"young requests were closed: {st}")


if __name__ == "__main__":
    et.run_tests()
