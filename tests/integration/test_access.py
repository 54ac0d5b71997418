#!/usr/bin/env python3
"""Access lists from genuine remote peers: -names_from, -lookup_from,
-register_from, the defaults, and the -systemd exposure notices.

The daemon runs in the host namespace of access_net's topology, listening
on both remote networks (and the implicit loopbacks). Peer A is inside
198.51.100.0/24 and 2001:db8:a::/64, peer B (203.0.113.2, 2001:db8:b::2)
is outside them: it proves that "outside the prefix" is refused. A
refused request must get zero bytes and a close, and the daemon and its
registry must carry on. With EPMD_REFERENCE_MODE=1 only the defaults run
(the lists are an epmd-c extension).
"""

import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import access_net as an  # noqa: E402
import epmdtest as et  # noqa: E402

LAUNCHER = os.path.join(HERE, "..", "systemd", "listen_exec.py")
REFERENCE = os.environ.get("EPMD_REFERENCE_MODE") == "1"

NAMES = et.frame(b"n")
DUMP = et.frame(b"d")
KILL = et.frame(b"k")
LOCAL_NODE, LOCAL_PORT = "alpha", 5001


def lookup(name):
    return et.frame(b"z" + name.encode())


def alive2(name, port):
    return et.frame(et.alive2_body(name, port=port))


def stop(name):
    return et.frame(b"s" + name.encode())


def need_epmd_c():
    if REFERENCE:
        raise et.Skip("access lists are an epmd-c extension "
                      "(EPMD_REFERENCE_MODE=1)")


# ------------------------------------------------------------------ checks

def answered(r, what):
    """The reply bytes of a request that was served and closed."""
    et.check(r["error"] is None, f"{what}: {r['error']}")
    et.check(r["closed"], f"{what}: the daemon did not close")
    data = bytes.fromhex(r["reply"])
    et.check(len(data) > 0, f"{what}: no reply")
    return data


def refused(r, what):
    """Closed without a byte."""
    et.check(r["error"] is None or r["error"].startswith("send:"),
             f"{what}: {r['error']}")
    et.eq(r["reply"], "", f"{what}: reply bytes")
    et.check(r["closed"], f"{what}: not closed within "
             f"{r.get('elapsed', 0):.1f}s")


class Case:
    """A daemon on both remote networks with one node registered from
    loopback, and a peer in each network."""

    def __init__(self, args=(), binary=None):
        self.args = list(args)
        self.binary = binary

    def __enter__(self):
        self.topo = an.shared()
        self.d = et.Daemon(self.binary, address=an.ADDRESSES,
                           args=self.args)
        self.node = None
        try:
            self.node, reply = self.register_local(LOCAL_NODE, LOCAL_PORT)
            et.eq(reply[:2], b"\x76\x00", "local registration")
            self.a, self.b = an.peers(self.topo, self.d.port)
            self.a.reach()
            self.b.reach()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for p in (getattr(self, "a", None), getattr(self, "b", None)):
            if p is not None:
                p.close()
        if self.node is not None:
            self.node.close()
        self.d.stop()

    @property
    def port(self):
        return self.d.port

    def register_local(self, name, port, host="127.0.0.1"):
        s = et.connect(self.port, host)
        s.sendall(alive2(name, port))
        return s, et.read_exact(s, 6)

    def local(self, data, host="127.0.0.1"):
        return et.request(self.port, data, host)

    def names(self):
        return self.local(NAMES)

    def names_text(self):
        return self.names()[4:].decode("latin-1")

    def lookup_reply(self):
        return self.local(lookup(LOCAL_NODE))

    def carries_on(self):
        """The daemon lives and the registry is as it was."""
        et.check(self.d.alive(), f"daemon died: {self.d.stderr()[-2000:]}")
        et.check(f"name {LOCAL_NODE} at port {LOCAL_PORT}\n" in
                 self.names_text(), "local node gone")
        et.check(not et.is_closed(self.node, 0.05),
                 "local registration closed")

    def log(self):
        return self.d.stderr()


def assert_names_allowed(c, peer, host, what):
    et.eq(answered(peer.ask(NAMES, host=host)[0], what), c.names(), what)


def assert_names_refused(c, peer, host, what):
    refused(peer.ask(NAMES, host=host)[0], what)


def assert_lookup_allowed(c, peer, host, what):
    et.eq(answered(peer.ask(lookup(LOCAL_NODE), host=host)[0], what),
          c.lookup_reply(), what)


def assert_lookup_refused(c, peer, host, what):
    refused(peer.ask(lookup(LOCAL_NODE), host=host)[0], what)


def assert_local_allowed_everything(c):
    """Loopback (both families) and the host's own address are local:
    NAMES, lookups, ALIVE2 and DUMP all work."""
    for host in ("127.0.0.1", "::1", an.HOST_A, an.HOST_B6):
        et.check(c.local(NAMES, host).startswith(
            struct.pack(">I", c.port)), f"local NAMES via {host}")
        et.eq(c.local(lookup(LOCAL_NODE), host)[:2], b"\x77\x00",
              f"local lookup via {host}")
        et.check(b"active name" in c.local(DUMP, host),
                 f"local DUMP via {host}")
    s, reply = c.register_local("viaown", 5077, an.HOST_A)
    with s:
        et.eq(reply[:2], b"\x76\x00", "ALIVE2 from the host's own address")


def assert_privileged_refused(c, peer, host, what):
    """ALIVE2 (when not listed), DUMP, KILL and STOP: zero bytes."""
    res = peer.ask(DUMP, KILL, stop(LOCAL_NODE), host=host)
    for label, r in zip(("DUMP", "KILL", "STOP"), res):
        refused(r, f"{what} {label}")
    c.carries_on()


# ------------------------------------------------------------------- tests

@et.test
def access_defaults_answer_queries_and_refuse_the_rest():
    """No lists: NAMES and lookups from anyone, as the reference; ALIVE2,
    DUMP, KILL and STOP only from local peers."""
    with Case() as c:
        for peer, label in ((c.a, "A"), (c.b, "B")):
            for host in (an.HOST_A, an.HOST_B6):
                assert_names_allowed(c, peer, host, f"{label} NAMES {host}")
                assert_lookup_allowed(c, peer, host, f"{label} lookup")
            refused(peer.ask(alive2("intruder", 6001))[0], f"{label} ALIVE2")
            assert_privileged_refused(c, peer, an.HOST_A, label)
        et.check("intruder" not in c.names_text(), "remote ALIVE2 took")
        assert_local_allowed_everything(c)


@et.test
def access_names_from_prefix_refuses_outside_the_prefix():
    need_epmd_c()
    with Case(["-names_from", an.NET_A]) as c:
        assert_names_allowed(c, c.a, an.HOST_A, "A NAMES")
        assert_names_refused(c, c.b, an.HOST_A, "B NAMES")
        assert_names_refused(c, c.b, an.HOST_B, "B NAMES to its own net")
        # Only NAMES is listed: B still looks up.
        assert_lookup_allowed(c, c.b, an.HOST_A, "B lookup")
        # IPv4 prefix: A over IPv6 is another address.
        assert_names_refused(c, c.a, an.HOST_A6, "A NAMES over IPv6")
        assert_local_allowed_everything(c)
        c.carries_on()
        et.check(re.search(r"NAMES from 203\.0\.113\.2:\d+ refused", c.log()),
                 f"no warning naming the peer: {c.log()}")


@et.test
def access_names_from_single_address():
    need_epmd_c()
    with Case(["-names_from", an.PEER_B]) as c:
        assert_names_allowed(c, c.b, an.HOST_A, "B NAMES")
        assert_names_refused(c, c.a, an.HOST_A, "A NAMES")


@et.test
def access_names_from_ipv6_prefix():
    need_epmd_c()
    with Case(["-names_from", an.NET_A6]) as c:
        assert_names_allowed(c, c.a, an.HOST_A6, "A NAMES over IPv6")
        assert_names_allowed(c, c.a, an.HOST_B6, "A NAMES to B's net")
        assert_names_refused(c, c.a, an.HOST_A, "A NAMES over IPv4")
        assert_names_refused(c, c.b, an.HOST_B6, "B NAMES over IPv6")


@et.test
def access_names_from_two_items_of_both_families():
    need_epmd_c()
    with Case(["-names_from", f"{an.PEER_A6}, {an.NET_B}"]) as c:
        assert_names_allowed(c, c.a, an.HOST_A6, "A over IPv6")
        assert_names_refused(c, c.a, an.HOST_A, "A over IPv4")
        assert_names_allowed(c, c.b, an.HOST_A, "B over IPv4")
        assert_names_refused(c, c.b, an.HOST_A6, "B over IPv6")


@et.test
def access_names_from_none_leaves_local_peers():
    need_epmd_c()
    with Case(["-names_from", "none"]) as c:
        for peer, label in ((c.a, "A"), (c.b, "B")):
            assert_names_refused(c, peer, an.HOST_A, f"{label} NAMES")
            assert_lookup_allowed(c, peer, an.HOST_A, f"{label} lookup")
        assert_local_allowed_everything(c)


@et.test
def access_names_from_local_is_local_peers_only():
    need_epmd_c()
    with Case(["-names_from", "local"]) as c:
        assert_names_refused(c, c.a, an.HOST_A, "A NAMES")
        assert_names_refused(c, c.b, an.HOST_B6, "B NAMES")
        assert_local_allowed_everything(c)


@et.test
def access_names_from_any_is_everyone():
    need_epmd_c()
    with Case(["-names_from", "any"]) as c:
        assert_names_allowed(c, c.a, an.HOST_A, "A NAMES")
        assert_names_allowed(c, c.b, an.HOST_B6, "B NAMES")


@et.test
def access_lookup_from_prefix_refuses_outside_the_prefix():
    need_epmd_c()
    with Case(["-lookup_from", an.NET_B]) as c:
        assert_lookup_allowed(c, c.b, an.HOST_A, "B lookup")
        assert_lookup_refused(c, c.a, an.HOST_A, "A lookup")
        refused(c.a.ask(lookup("nosuch"))[0], "A lookup of an unknown name")
        assert_names_allowed(c, c.a, an.HOST_A, "A NAMES")
        c.carries_on()
        et.check(re.search(r"PORT_PLEASE2 from 198\.51\.100\.2:\d+ refused",
                           c.log()), f"no warning naming the peer: {c.log()}")


@et.test
def access_lookup_from_none_and_local():
    need_epmd_c()
    for lst in ("none", "local"):
        with Case(["-lookup_from", lst]) as c:
            assert_lookup_refused(c, c.a, an.HOST_A, f"{lst}: A lookup")
            assert_lookup_refused(c, c.b, an.HOST_B6, f"{lst}: B lookup")
            assert_local_allowed_everything(c)


@et.test
def access_register_from_prefix_lets_that_network_register():
    need_epmd_c()
    with Case(["-register_from", an.NET_A]) as c:
        # A's registration lives as long as its connection (3 s here).
        wait = c.a.start(alive2("remote_a", 6101), timeout=3.0)
        et.check(et.eventually(lambda: "remote_a" in c.names_text()),
                 f"A's node is not listed: {c.log()}")
        et.eq(c.local(lookup("remote_a"))[2:4], struct.pack(">H", 6101),
              "A's node port")
        r = c.a.finish(wait)[0]
        reply = bytes.fromhex(r["reply"])
        et.eq(reply[:2], b"\x76\x00", "A's ALIVE2 reply")
        et.eq(len(reply), 6, "A's ALIVE2 reply length")
        et.check(not r["closed"], "A's registration was closed")
        et.check(et.eventually(lambda: "remote_a" not in c.names_text()),
                 "A's node outlived its connection")
        refused(c.b.ask(alive2("remote_b", 6102))[0], "B ALIVE2")
        refused(c.a.ask(alive2("remote_a6", 6103), host=an.HOST_A6)[0],
                "A ALIVE2 over IPv6")
        et.check("remote_b" not in c.names_text(), "B's node registered")
        c.carries_on()


@et.test
def access_register_from_any_keeps_dump_kill_stop_local():
    need_epmd_c()
    with Case(["-register_from", "any", "-names_from", "any",
               "-lookup_from", "any", "-relaxed_command_check"]) as c:
        for peer, label in ((c.a, "A"), (c.b, "B")):
            assert_privileged_refused(c, peer, an.HOST_A, label)
            assert_privileged_refused(c, peer, an.HOST_B6, label + " v6")
        et.check(re.search(r"KILL from 203\.0\.113\.2:\d+ refused", c.log()),
                 f"no KILL warning: {c.log()}")


@et.test
def access_local_peers_allowed_everything_whatever_the_lists():
    need_epmd_c()
    with Case(["-names_from", "none", "-lookup_from", "none",
               "-register_from", "none"]) as c:
        assert_local_allowed_everything(c)
        for peer, label in ((c.a, "A"), (c.b, "B")):
            assert_names_refused(c, peer, an.HOST_A, f"{label} NAMES")
            assert_lookup_refused(c, peer, an.HOST_A, f"{label} lookup")


@et.test
def access_refused_requests_get_zero_bytes_and_the_daemon_carries_on():
    need_epmd_c()
    count = 150
    with Case(["-names_from", an.NET_A, "-lookup_from", an.NET_A]) as c:
        before = c.names()
        start = time.monotonic()
        items = [NAMES if i % 2 else lookup(LOCAL_NODE) for i in range(count)]
        for i, r in enumerate(c.b.ask(*items, timeout=3.0)):
            refused(r, f"B request {i}")
        elapsed = time.monotonic() - start
        c.carries_on()
        et.eq(c.names(), before, "NAMES after the refusals")
        assert_names_allowed(c, c.a, an.HOST_A, "A NAMES after")
        lines = re.findall(r"(?:NAMES|PORT_PLEASE2) from 203\.0\.113\.2:\d+ "
                           r"refused", c.log())
        et.check(lines, "refusals not logged")
        # log_flood: at most 10 lines a second; the rest are counted, and
        # the count is logged with the next refusal in a later second.
        et.check(len(lines) <= 10 * (int(elapsed) + 2),
                 f"{len(lines)} refusal lines in {elapsed:.1f}s: not "
                 "rate-limited")
        if len(lines) < count:
            time.sleep(1.1)
            refused(c.b.ask(NAMES)[0], "B NAMES a second later")
            et.check(re.search(r"\d+ similar messages not logged", c.log()),
                     f"the suppressed lines were not counted: {c.log()}")


@et.test
def access_bad_item_is_fatal_and_named():
    need_epmd_c()
    for flag, value, item in (("-names_from", "10.0.0.0/33", "10.0.0.0/33"),
                              ("-lookup_from", "1.2.3", "1.2.3"),
                              ("-register_from", "fd00::/129", "fd00::/129"),
                              ("-names_from", "local,junk", "junk")):
        rc, out, err = et.run([et.EPMD_BIN, "-port", str(et.free_port()),
                               "-address", "127.0.0.1", flag, value],
                              timeout=10)
        text = err.decode("utf-8", "replace")
        et.eq(rc, 1, f"{flag} {value}: exit status ({text})")
        et.check(flag in text and f'"{item}"' in text,
                 f"{flag} {value}: message does not name it: {text!r}")
    rc, _out, err = et.run([et.EPMD_BIN, "-names_from",
                           "198.51.100.1,,198.51.100.2"], timeout=10)
    et.eq(rc, 1, "empty item: exit status")
    et.check(b"empty item" in err, f"empty item: {err!r}")


# -------------------------------------------------- dual-stack and systemd

class Activated:
    """epmd-c -systemd on sockets made by tests/systemd/listen_exec.py in
    the host namespace (specs like "[::]:P/dual", "198.51.100.1:P")."""

    def __init__(self, specs, args=(), env=None):
        self.errfile = tempfile.TemporaryFile()
        argv = [sys.executable, LAUNCHER]
        for s in specs:
            argv += ["-l", s]
        for k, v in (env or {}).items():
            argv += ["-E", f"{k}={v}"]
        argv += ["--", et.EPMD_BIN, "-systemd", *args]
        e = {k: v for k, v in os.environ.items()
             if not k.startswith(("LISTEN_", "ERL_EPMD_", "NOTIFY_"))}
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.errfile,
                                     stderr=self.errfile, env=e)

    def ready(self, port):
        if not et.eventually(lambda: "ready" in self.stderr() or
                             self.proc.poll() is not None, timeout=10):
            raise AssertionError(f"not ready: {self.stderr()}")
        et.check(self.proc.poll() is None, f"exited: {self.stderr()}")
        return self

    def stderr(self):
        self.errfile.seek(0)
        return self.errfile.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errfile.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@et.test
def access_mapped_ipv4_on_dual_stack_listener_matches_ipv4_items():
    """Debian's epmd.socket is one [::]:4369 socket with BindIPv6Only=both:
    IPv4 peers arrive as ::ffff:a.b.c.d and must match IPv4 items."""
    need_epmd_c()
    topo = an.shared()
    port = et.free_port()
    with Activated([f"[::]:{port}/dual"],
                   ["-names_from", an.NET_A, "-register_from",
                    an.PEER_A]) as d:
        d.ready(port)
        with an.Peer(topo.peer_a, port, an.HOST_A) as a, \
                an.Peer(topo.peer_b, port, an.HOST_A) as b:
            a.reach()
            et.eq(answered(a.ask(NAMES)[0], "A NAMES (mapped)"),
                  et.request(port, NAMES), "A NAMES (mapped) vs local")
            refused(b.ask(NAMES)[0], "B NAMES (mapped)")
            wait = a.start(alive2("mapped_a", 6201), timeout=3.0)
            et.check(et.eventually(lambda: b"mapped_a" in
                                   et.request(port, NAMES)),
                     f"A's mapped registration missing: {d.stderr()}")
            et.eq(bytes.fromhex(a.finish(wait)[0]["reply"])[:2],
                  b"\x76\x00", "A ALIVE2 (mapped)")
            refused(b.ask(alive2("mapped_b", 6202))[0], "B ALIVE2 (mapped)")
        et.check(re.search(r"NAMES from \[::ffff:203\.0\.113\.2\]:\d+ "
                           r"refused", d.stderr()),
                 f"no warning for the mapped peer: {d.stderr()}")


@et.test
def access_systemd_logs_each_inherited_socket():
    need_epmd_c()
    an.shared()
    p1, p2 = et.free_port(), et.free_port()
    with Activated([f"127.0.0.1:{p1}", f"[::1]:{p2}"]) as d:
        d.ready(p1)
        for want in (f"127.0.0.1:{p1}", f"[::1]:{p2}"):
            et.check(re.search(r"listening on " + re.escape(want) +
                               r" \(from systemd, fd \d\)", d.stderr()),
                     f"{want} not logged: {d.stderr()}")
        et.check("ignored" not in d.stderr(), "a warning without -address")
        et.check("-names_from" not in d.stderr(),
                 f"loopback only, yet an exposure notice: {d.stderr()}")


@et.test
def access_systemd_warns_once_that_the_address_list_is_ignored():
    need_epmd_c()
    an.shared()
    port = et.free_port()
    for env, args, src in (({"ERL_EPMD_ADDRESS": "127.0.0.1"}, [],
                            "ERL_EPMD_ADDRESS"),
                           ({}, ["-address", "198.51.100.1"], "-address")):
        with Activated([f"127.0.0.1:{port}"], args, env) as d:
            d.ready(port)
            warn = [ln for ln in d.stderr().splitlines() if "ignored" in ln]
            et.eq(len(warn), 1, f"{src}: warnings {warn}")
            et.check(src in warn[0] and f"127.0.0.1:{port}" in warn[0],
                     f"{src}: the warning does not say what is served: "
                     f"{warn[0]}")


@et.test
def access_systemd_notice_when_names_open_on_an_exposed_listener():
    need_epmd_c()
    an.shared()
    port = et.free_port()
    for specs, args, want in (
            ([f"[::]:{port}/dual"], [], True),
            ([f"127.0.0.1:{port}", f"{an.HOST_A}:{port}"], [], True),
            ([f"[::]:{port}/dual"], ["-names_from", an.NET_A], False),
            ([f"127.0.0.1:{port}", f"[::1]:{port}"], [], False)):
        with Activated(specs, args) as d:
            d.ready(port)
            notes = [ln for ln in d.stderr().splitlines()
                     if "-names_from" in ln]
            et.eq(len(notes), 1 if want else 0,
                  f"{specs} {args}: notices {notes}")
            if want:
                et.check("NAMES" in notes[0], notes[0])


if __name__ == "__main__":
    et.run_tests()
