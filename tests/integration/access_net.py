"""Two remote networks for the access-list and listen-policy tests.

    peer A namespace           "host" namespace            peer B namespace
    va: 198.51.100.2/24  <-->  ha: 198.51.100.1/24
        2001:db8:a::2/64           2001:db8:a::1/64
                                   hb: 203.0.113.1/24  <-->  vb: 203.0.113.2/24
                                       2001:db8:b::1/64          2001:db8:b::2/64
    lo                         lo: 127.0.0.1, ::1          lo

Each peer's default routes point at the host, so either peer can reach any
host address, and the daemon sees it from its own address: A inside
198.51.100.0/24 (and 2001:db8:a::/64), B outside it. The namespace
primitives (ip(8), setns, the reaper of stale namespaces) and the remote
peer (remote_client.py, its "reach" and "requests" commands) are those of
tests/lib/netns.py.

One Topology is shared by a test file: created on first use, entered by
this process (so daemons and "local" clients started here live in the host
namespace), deleted at exit. Names carry our pid. Not root, or no ip(8):
the tests skip.
"""

import atexit
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import epmdtest as et  # noqa: E402

import netns as _lib  # noqa: E402  tests/lib/netns.py

HOST_A, PEER_A = "198.51.100.1", "198.51.100.2"
HOST_B, PEER_B = "203.0.113.1", "203.0.113.2"
HOST_A6, PEER_A6 = "2001:db8:a::1", "2001:db8:a::2"
HOST_B6, PEER_B6 = "2001:db8:b::1", "2001:db8:b::2"
NET_A, NET_B = "198.51.100.0/24", "203.0.113.0/24"
NET_A6, NET_B6 = "2001:db8:a::/64", "2001:db8:b::/64"
# -address for a daemon both peers can reach over IPv4 and IPv6.
ADDRESSES = ",".join([HOST_A, HOST_B, HOST_A6, HOST_B6])


def ip(*args):
    """ip(8), which must succeed; a failure skips the test."""
    rc, out = _lib._ip(*args)
    if rc != 0:
        raise et.Skip(f"cannot build the test networks: ip "
                      f"{' '.join(args)}: {out}")
    return out


class Topology:
    """The three namespaces and two veth pairs."""

    def __init__(self, tag):
        pid = os.getpid()
        # The names follow the netns library's pattern, so its reaper
        # removes what a killed run leaves behind.
        self.host = f"epmdc-{pid}-{tag}1-h"
        self.peer_a = f"epmdc-{pid}-{tag}1-p"
        self.peer_b = f"epmdc-{pid}-{tag}2-p"
        self.created = []
        self.orig_fd = None

    def create(self):
        if self.created:
            return self
        if os.geteuid() != 0:
            raise et.Skip("cannot create network namespaces: not root")
        try:
            for ns in (self.host, self.peer_a, self.peer_b):
                ip("netns", "add", ns)
                self.created.append(ns)
            for ns, hl, pl, (h4, p4, h6, p6) in (
                    (self.peer_a, "ha", "va",
                     (HOST_A, PEER_A, HOST_A6, PEER_A6)),
                    (self.peer_b, "hb", "vb",
                     (HOST_B, PEER_B, HOST_B6, PEER_B6))):
                ip("-n", self.host, "link", "add", hl, "type", "veth",
                   "peer", "name", pl, "netns", ns)
                ip("-n", self.host, "addr", "add", h4 + "/24", "dev", hl)
                ip("-n", self.host, "addr", "add", h6 + "/64", "dev", hl,
                   "nodad")
                ip("-n", ns, "addr", "add", p4 + "/24", "dev", pl)
                ip("-n", ns, "addr", "add", p6 + "/64", "dev", pl, "nodad")
                ip("-n", ns, "link", "set", "lo", "up")
                ip("-n", ns, "link", "set", pl, "up")
                ip("-n", self.host, "link", "set", hl, "up")
                ip("-n", ns, "route", "add", "default", "via", h4)
                ip("-n", ns, "-6", "route", "add", "default", "via", h6)
            ip("-n", self.host, "link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise
        return self

    def enter(self):
        if self.orig_fd is None:
            self.orig_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
            fd = os.open(f"/run/netns/{self.host}", os.O_RDONLY)
            try:
                _lib._setns(fd)
            finally:
                os.close(fd)
        return self

    def leave(self):
        if self.orig_fd is not None:
            try:
                _lib._setns(self.orig_fd)
            finally:
                os.close(self.orig_fd)
                self.orig_fd = None

    def delete(self):
        self.leave()
        for ns in self.created:
            rc, out = _lib._ip("netns", "del", ns)
            if rc != 0:
                sys.stderr.write(f"warning: ip netns del {ns}: {out}\n")
        self.created = []


_shared = None


def shared():
    """The file's Topology, created and entered on first use."""
    global _shared
    if _shared is None:
        if os.geteuid() == 0:
            _lib.reap_stale()
        _shared = Topology(os.getpid() % 7 + 90)
        atexit.register(_shared.delete)
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return _shared.create().enter()


class Peer(_lib.Remote):
    """remote_client.py in a peer namespace: connections to the daemon
    from that peer's own address, asked without waiting (start, then
    finish), so two peers can be asked at once."""

    def __init__(self, ns, port, host):
        super().__init__(ns, port, host, reach=False)

    def reach(self, host=None):
        """Wait until the daemon accepts connections from here."""
        self.call("reach", host=host or self.host, timeout=5)

    def start(self, *items, host=None, timeout=2.0):
        """Begin one connection per item (bytes); finish() collects."""
        wire = [{"data": d.hex(), "shut": False} for d in items]
        self.send("requests", items=wire, host=host or self.host,
                  timeout=timeout)
        return len(wire) * (2 * timeout + 1) + 10

    def finish(self, wait):
        return self.reply(wait, "requests")["results"]

    def ask(self, *items, host=None, timeout=2.0):
        """One connection per item; each result has "reply" (hex),
        "closed", "reset", "error" (None, "connect: ...", "send: ...")."""
        return self.finish(self.start(*items, host=host, timeout=timeout))


def peers(topo, port):
    """(A, B): a Peer in each remote network, aimed at HOST_A."""
    a = Peer(topo.peer_a, port, HOST_A)
    try:
        b = Peer(topo.peer_b, port, HOST_A)
    except BaseException:
        a.close()
        raise
    return a, b


def listening(port):
    """The set of "addr:port" this namespace listens on for port."""
    p = subprocess.run(["ss", "-ltnH", f"sport = :{port}"],
                       capture_output=True, text=True, timeout=10)
    return {line.split()[3] for line in p.stdout.splitlines()
            if len(line.split()) >= 4}
