#!/usr/bin/env python3
"""Access control against a genuinely non-local peer (PROTOCOL.md 1.2, 2).

Each test builds two private network namespaces joined by a veth pair:

    "host" namespace                      "peer" namespace
    lo: 127.0.0.1, ::1                    lo
    vh: 198.51.100.1/24  <--- veth --->   vr: 198.51.100.2/24
    the daemon, the local clients         remote_client.py

The daemon runs with -address 198.51.100.1 (so it also listens on the
implicit 127.0.0.1 and ::1). The namespaces, the veth and the remote peer
are tests/lib/netns.py's (see there); each test makes its own pair and
deletes it in a finally block.

Every scenario runs against the daemon under test ($EPMD_BIN, "_epmd_c")
and the real OTP epmd ($REF_EPMD, "_reference"), except the per-peer cap,
an epmd-c extension. Not root, or no namespaces: every test is skipped.
"""

import os
import re
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import epmdtest as et  # noqa: E402
from netns import HOST_ADDR, Netns, Remote, reap_stale  # noqa: E402


# The two local nodes every scenario registers from loopback.
NODES = (
    # name, port, host it registers from, extra
    ("alpha", 5001, "127.0.0.1", b""),
    ("beta", 5002, "::1", b"xyz"),
)

FLOOD_COUNT = 5000
FLOOD_DEADLINE = 20.0
CAP = 50
CAP_IDLE = 200

# ------------------------------------------------------------------ scenario

def reference_mode():
    """True when the binary under test is the OTP epmd itself."""
    return et.REFERENCE_MODE or same_file(et.EPMD_BIN, et.REF_EPMD)


def same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class Scenario:
    """A daemon in the host namespace with the two NODES registered from
    loopback, and the remote peer ready."""

    def __init__(self, binary, args=()):
        self.binary = binary
        self.args = list(args)
        self.socks = {}

    def __enter__(self):
        self.ns = Netns().__enter__()
        try:
            self.d = et.Daemon(self.binary, address=HOST_ADDR,
                               args=self.args)
            for name, port, host, extra in NODES:
                s, reply = et.register(self.d.port, name, host, port=port,
                                       extra=extra)
                self.socks[name] = s
                et.eq(reply[:2], b"\x76\x00", f"register {name} from {host}")
            self.remote = Remote(self.ns, self.d)
            self.before = self.snapshot()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc):
        # Each step runs even if an earlier one fails; the namespaces go
        # last, once nothing of ours is left inside them.
        try:
            try:
                if getattr(self, "remote", None):
                    self.remote.close()
            finally:
                for s in self.socks.values():
                    s.close()
                if getattr(self, "d", None):
                    self.d.stop()
        finally:
            self.ns.__exit__(*exc)

    @property
    def port(self):
        return self.d.port

    def snapshot(self):
        """What loopback clients see of the registry."""
        return {
            "names": et.names(self.port),
            "names6": et.names(self.port, "::1"),
            "dump": et.dump(self.port),
            "lookups": {n: et.port_please(self.port, n)
                        for n, _p, _h, _e in NODES},
        }

    def check_untouched(self, intruders=()):
        """The daemon lives and loopback sees exactly the registry it saw
        before the remote peer started."""
        et.check(self.d.alive(),
                 f"daemon died (status {self.d.proc.returncode}): "
                 f"{self.d.stderr()[-2000:]}")
        after = self.snapshot()
        for key in ("names", "names6", "dump", "lookups"):
            et.eq(after[key], self.before[key], f"loopback {key} after")
        for name, port, _host, extra in NODES:
            et.eq(after["lookups"][name], et.port2(name, port, extra=extra),
                  f"lookup {name}")
            et.check(not et.is_closed(self.socks[name], 0.05),
                     f"registration socket of {name} was closed")
        text = after["names"][4:].decode("latin-1")
        et.eq(sorted(re.findall(r"^name (\S+) at port", text, re.M)),
              sorted(n for n, _p, _h, _e in NODES), "NAMES lines")
        for name in intruders:
            et.eq(et.port_please(self.port, name), b"\x77\x01",
                  f"lookup of remote-registered {name}")
            et.check(name.encode() not in after["dump"],
                     f"{name} appears in DUMP")


def no_reply(results, labels):
    """Each remote request was closed by the daemon with nothing sent."""
    for label, r in zip(labels, results):
        et.check(r["error"] is None or r["error"].startswith("send:"),
                 f"remote {label}: {r['error']}")
        et.eq(r["reply"], "", f"remote {label}: reply bytes")
        et.check(r["closed"], f"remote {label}: daemon did not close "
                 f"within {r['elapsed']:.1f}s")


# ------------------------------------------------------------------- checks

def check_queries_answered(binary):
    """PORT_PLEASE2 and NAMES from 198.51.100.2 get the same bytes a
    loopback client gets."""
    with Scenario(binary) as sc:
        res = sc.remote.requests(et.frame(b"zalpha"), et.frame(b"zbeta"),
                                 et.frame(b"zunknown"), et.frame(b"n"))
        for r in res:
            et.check(r["error"] is None, f"remote request: {r['error']}")
            et.check(r["closed"], "daemon did not close after the reply")
        got = [bytes.fromhex(r["reply"]) for r in res]
        (an, ap, _ah, ax), (bn, bp, _bh, bx) = NODES
        et.eq(got[0], et.port2(an, ap, extra=ax), "remote PORT_PLEASE2 alpha")
        et.eq(got[1], et.port2(bn, bp, extra=bx), "remote PORT_PLEASE2 beta")
        et.eq(got[2], b"\x77\x01", "remote PORT_PLEASE2 unknown")
        et.eq(got[3][:4], struct.pack(">I", sc.port), "remote NAMES header")
        et.eq(got[3], sc.before["names"], "remote NAMES vs loopback NAMES")
        et.eq(got[3][4:], f"name beta at port {bp}\nname alpha at port "
              f"{ap}\n".encode(), "remote NAMES body (newest first)")
        sc.check_untouched()


def refused_requests():
    """(label, bytes) a remote peer must only ever see closed."""
    return [
        ("ALIVE2 v6", et.frame(et.alive2_body("intruder", port=6001))),
        ("ALIVE2 v5", et.frame(et.alive2_body("intruder5", port=6002,
                                              high=5))),
        ("ALIVE2 duplicate", et.frame(et.alive2_body("alpha", port=6003))),
        ("DUMP", et.frame(b"d")),
        ("KILL", et.frame(b"k")),
        ("STOP registered", et.frame(b"salpha")),
        ("STOP unknown", et.frame(b"snosuch")),
    ]


def check_privileged_refused(binary, relaxed):
    """ALIVE2, DUMP, KILL and STOP from 198.51.100.2: closed without a
    byte; nothing registered, stopped or killed. Loopback, by contrast, is
    answered (KILL: NO when strict; STOP: STOPPED when relaxed)."""
    args = ["-relaxed_command_check"] if relaxed else []
    with Scenario(binary, args) as sc:
        reqs = refused_requests()
        res = sc.remote.requests(*[data for _l, data in reqs])
        no_reply(res, [label for label, _d in reqs])
        sc.check_untouched(intruders=("intruder", "intruder5"))
        # The same daemon answers the same requests from loopback, so the
        # silence above is the access check, not a broken daemon.
        if relaxed:
            et.eq(et.request(sc.port, et.frame(b"salpha")), b"STOPPED",
                  "loopback STOP in relaxed mode")
            et.check(et.is_closed(sc.socks["alpha"], 2.0),
                     "alpha's registration was not closed by a local STOP")
        else:
            et.eq(et.request(sc.port, et.frame(b"k")), b"NO",
                  "loopback KILL with live nodes")
            et.check(sc.d.alive(), "daemon exited after KILL → NO")


def check_flood(binary):
    """FLOOD_COUNT connections of refused requests and garbage from the
    remote peer (relaxed daemon, so a KILL or STOP that slipped through would
    act). Meanwhile loopback lookups keep being answered; afterwards the
    registry is exactly as before."""
    with Scenario(binary, ["-relaxed_command_check"]) as sc:
        stop = threading.Event()
        local = {"ok": 0, "bad": [], "max": 0.0}
        want = et.port2(NODES[0][0], NODES[0][1], extra=NODES[0][3])

        def lookups():
            for _ in range(100000):
                if stop.is_set():
                    break
                t0 = time.monotonic()
                try:
                    got = et.port_please(sc.port, NODES[0][0])
                except OSError as e:
                    got = repr(e)
                dt = time.monotonic() - t0
                local["max"] = max(local["max"], dt)
                if got == want:
                    local["ok"] += 1
                elif len(local["bad"]) < 5:
                    local["bad"].append(got)
                stop.wait(0.005)

        t = threading.Thread(target=lookups, daemon=True)
        t.start()
        try:
            r = sc.remote.call("flood", call_timeout=FLOOD_DEADLINE + 10,
                               count=FLOOD_COUNT, deadline=FLOOD_DEADLINE,
                               batch=25, seed=4369, conn_timeout=2.0,
                               stop_on_violation=True,
                               names=[n for n, _p, _h, _e in NODES])
        finally:
            stop.set()
            t.join(10)
        sys.stderr.write(
            f"# flood {os.path.basename(binary)}: {r['done']} connections "
            f"in {r['elapsed']:.1f}s, resets {r['resets']}, local lookups "
            f"{local['ok']} ok, slowest {local['max'] * 1000:.0f} ms\n")
        et.eq(r["connect_errors"], 0, f"flood connect errors {r['samples']}")
        et.eq(r["replied"], 0, f"flood requests answered: {r['samples']}")
        et.eq(r["not_closed"], 0, f"flood requests left open: {r['samples']}")
        et.eq(r["done"], FLOOD_COUNT,
              f"flood connections completed in {FLOOD_DEADLINE}s")
        et.eq(local["bad"], [], "loopback lookups during the flood")
        et.check(local["ok"] > 0, "no loopback lookup completed")
        et.check(local["max"] < 2.0, f"slowest loopback lookup during the "
                 f"flood took {local['max']:.2f}s")
        sc.check_untouched(intruders=("remote0", "remote1", "remote2"))
        et.eq(re.findall(rb"remote\d+", sc.snapshot()["dump"]), [],
              "remote names in DUMP")


def check_per_peer_cap(binary):
    """-max_conns_per_peer 50: 200 idle connections from the remote peer
    are cut to at most 50; loopback is served promptly throughout; once
    the remote lets go, it is served again."""
    with Scenario(binary, ["-max_conns_per_peer", str(CAP)]) as sc:
        r = sc.remote.call("hold", count=CAP_IDLE, expect_max=CAP, settle=5)
        sys.stderr.write(f"# cap: {r}\n")
        et.eq(r["connect_errors"], 0, f"hold connect errors: "
              f"{r['last_error']}")
        et.check(r["open"] <= CAP, f"{r['open']} of the remote's "
                 f"{CAP_IDLE} idle connections still open, cap {CAP}")
        et.check(r["open"] >= CAP // 2, f"only {r['open']} of the remote's "
                 f"idle connections left open, cap {CAP}")
        et.eq(r["unexpected"], 0, "bytes sent on idle connections")
        # Loopback is not that peer: answered, and promptly.
        (an, ap, _ah, ax), (bn, bp, _bh, bx) = NODES
        slowest = 0.0
        for i in range(20):
            t0 = time.monotonic()
            host = "127.0.0.1" if i % 2 else "::1"
            et.eq(et.lookup(sc.port, an, host), et.port2(an, ap, extra=ax),
                  f"loopback lookup {i} under the cap")
            slowest = max(slowest, time.monotonic() - t0)
        et.check(slowest < 1.0, f"slowest loopback lookup {slowest:.2f}s")
        et.eq(et.names(sc.port), sc.before["names"], "loopback NAMES")
        s3, reply = et.register(sc.port, "gamma", port=5003)
        try:
            et.eq(reply[:2], b"\x76\x00", "loopback register under the cap")
        finally:
            s3.close()
        # A fresh remote lookup: served (under the cap) or refused.
        fresh = sc.remote.requests(et.frame(b"zalpha"))[0]
        et.check(fresh["reply"] in ("", et.port2(an, ap, extra=ax).hex()),
                 f"fresh remote lookup while capped: {fresh}")
        et.check(fresh["closed"], "fresh remote lookup left open")
        st = sc.remote.call("status", wait=0.3)
        et.check(st["open"] <= CAP, f"{st['open']} open after the lookup")
        # Let go; the peer's slots free up and it is served again.
        sc.remote.call("release")
        want = et.port2(an, ap, extra=ax).hex()

        def served():
            res = sc.remote.requests(et.frame(b"zalpha"), timeout=2.0)[0]
            return res["reply"] == want

        et.check(et.eventually(served, timeout=5.0, interval=0.1),
                 "remote lookup not served after releasing its connections")
        for name in (an, bn):
            et.check(not et.is_closed(sc.socks[name], 0.05),
                     f"{name}'s registration was closed")
        et.check(sc.d.alive(), "daemon died")


def closed_silently(s, timeout=3.0):
    """(bytes received, closed?) until the daemon closes s or timeout."""
    data = b""
    s.settimeout(timeout)
    for _ in range(1000):
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return data, True
        except socket.timeout:
            return data, False
        if not chunk:
            return data, True
        data += chunk
    return data, False


def check_own_address_rule(binary):
    """The non-loopback local-peer rule (2.1): a peer is local when its
    address equals the accepting socket's own address. From 198.51.100.1
    to the 198.51.100.1 listener: local, ALIVE2 accepted. From
    198.51.100.1 to the 127.0.0.1 listener: neither loopback nor equal, so
    refused."""
    with Scenario(binary) as sc:
        s = et.connect(sc.port, "127.0.0.1", source=(HOST_ADDR, 0))
        with s:
            s.sendall(et.frame(et.alive2_body("cross", port=5011)))
            et.eq(closed_silently(s), (b"", True),
                  "ALIVE2 from 198.51.100.1 to 127.0.0.1 (reply, closed)")
        s = et.connect(sc.port, "127.0.0.1", source=(HOST_ADDR, 0))
        with s:
            s.sendall(et.frame(b"n"))
            et.eq(closed_silently(s), (sc.before["names"], True),
                  "NAMES from 198.51.100.1 to 127.0.0.1 (reply, closed)")
        sc.check_untouched(intruders=("cross",))
        s = et.connect(sc.port, HOST_ADDR, source=(HOST_ADDR, 0))
        with s:
            s.sendall(et.frame(et.alive2_body("own", port=5010)))
            et.eq(et.read_exact(s, 6)[:2], b"\x76\x00",
                  "ALIVE2 from 198.51.100.1 to 198.51.100.1")
            et.check(b"name own at port 5010\n" in et.names(sc.port),
                     "own not listed")
        et.check(et.eventually(lambda: b"own" not in et.names(sc.port)),
                 "own still listed after its connection closed")


# -------------------------------------------------------------------- tests

def _dut():
    et.need_binary(et.EPMD_BIN, "daemon under test")
    return et.EPMD_BIN


def _ref():
    et.need_binary(et.REF_EPMD, "reference epmd")
    return et.REF_EPMD


def _define(name, fn):
    fn.__name__ = name
    et.test(fn)


for _label, _which in (("epmd_c", _dut), ("reference", _ref)):
    _define(f"remote_queries_answered_{_label}",
            lambda w=_which: check_queries_answered(w()))
    _define(f"remote_privileged_refused_{_label}",
            lambda w=_which: check_privileged_refused(w(), relaxed=False))
    _define(f"remote_privileged_refused_relaxed_{_label}",
            lambda w=_which: check_privileged_refused(w(), relaxed=True))
    _define(f"remote_flood_survived_{_label}",
            lambda w=_which: check_flood(w()))
    _define(f"own_address_is_local_{_label}",
            lambda w=_which: check_own_address_rule(w()))


@et.test
def remote_per_peer_cap_epmd_c():
    if reference_mode():
        raise et.Skip("-max_conns_per_peer is an epmd-c extension and "
                      "this is reference mode (EPMD_REFERENCE_MODE=1 or "
                      "EPMD_BIN is the OTP epmd)")
    check_per_peer_cap(_dut())


if __name__ == "__main__":
    # A runner's SIGTERM unwinds through the finally blocks, so the
    # namespaces and daemons go away with us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    reap_stale()
    et.run_tests()
