"""Genuinely non-local peers: two network namespaces joined by a veth.

    "host" namespace                      "peer" namespace
    lo: 127.0.0.1, ::1                    lo
    vh: 198.51.100.1/24                   vr: 198.51.100.2/24
        2001:db8::1/64   <--- veth --->       2001:db8::2/64
    the daemon, the local clients         remote_client.py

Entering a Netns moves this process (its main thread, and every thread and
child it starts afterwards) into the host namespace, so a daemon started
there, epmdtest's helpers and the "local" clients all live there; the
remote peer (Remote) runs under `ip netns exec` in the peer namespace and
talks JSON on its stdin/stdout. Nothing is added to the machine's own
namespace and no packet leaves the two namespaces. Names carry our pid, so
parallel runs cannot collide; both namespaces are deleted on exit (and
reap_stale() removes those of a run that was killed).

A daemon that should be reachable from the peer listens on HOST_ADDR (and
HOST_ADDR6): start it with address=ADDRESSES. Not root, or no ip(8): the
test is skipped.
"""

import atexit
import ctypes
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import epmdtest as et  # noqa: E402

HOST_ADDR = "198.51.100.1"
PEER_ADDR = "198.51.100.2"
HOST_ADDR6 = "2001:db8::1"
PEER_ADDR6 = "2001:db8::2"
# -address for a daemon the peer can reach over IPv4 and IPv6.
ADDRESSES = f"{HOST_ADDR},{HOST_ADDR6}"
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "remote_client.py")
CLONE_NEWNET = 0x40000000

_seq = 0


def _ip(*args, timeout=10):
    """Run ip(8); returns (rc, combined output)."""
    p = subprocess.run(["ip", *args], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, (p.stdout + p.stderr).strip()


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def reap_stale():
    """Delete namespaces a killed run left behind (SIGKILL skips finally):
    only our own name pattern, only when the process that made them is
    gone."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        return
    rc, out = _ip("netns", "list")
    if rc != 0:
        return
    for text in out.splitlines():
        m = re.match(r"(epmdc-(\d+)-\d+-[hp])\b", text.strip())
        if not m or int(m.group(2)) == os.getpid():
            continue
        if not os.path.exists(f"/proc/{m.group(2)}"):
            _ip("netns", "del", m.group(1))


class Netns:
    """The two namespaces and the veth. `with Netns():` creates, enters,
    and on exit leaves and deletes them. create()/enter()/leave()/delete()
    let a file share one pair between tests (see shared())."""

    def __init__(self):
        global _seq
        _seq += 1
        base = f"epmdc-{os.getpid()}-{_seq}"
        self.host = base + "-h"
        self.peer = base + "-p"
        self.created = []
        self.orig_fd = None

    def _skip(self, what):
        self.delete()
        raise et.Skip(f"cannot create network namespaces: {what}")

    def create(self):
        """Make the namespaces and the veth (skips if it cannot)."""
        if self.created:
            return self
        if os.geteuid() != 0:
            raise et.Skip("cannot create network namespaces: not root")
        if not shutil.which("ip"):
            raise et.Skip("cannot create network namespaces: no ip(8)")
        for ns in (self.host, self.peer):
            rc, out = _ip("netns", "add", ns)
            if rc != 0:
                self._skip(f"ip netns add {ns}: {out}")
            self.created.append(ns)
        steps = [
            ("-n", self.host, "link", "add", "vh", "type", "veth",
             "peer", "name", "vr", "netns", self.peer),
            ("-n", self.host, "addr", "add", HOST_ADDR + "/24", "dev", "vh"),
            ("-n", self.peer, "addr", "add", PEER_ADDR + "/24", "dev", "vr"),
            ("-n", self.host, "addr", "add", HOST_ADDR6 + "/64", "dev", "vh",
             "nodad"),
            ("-n", self.peer, "addr", "add", PEER_ADDR6 + "/64", "dev", "vr",
             "nodad"),
            ("-n", self.host, "link", "set", "lo", "up"),
            ("-n", self.peer, "link", "set", "lo", "up"),
            ("-n", self.host, "link", "set", "vh", "up"),
            ("-n", self.peer, "link", "set", "vr", "up"),
        ]
        for step in steps:
            rc, out = _ip(*step)
            if rc != 0:
                self._skip(f"ip {' '.join(step)}: {out}")
        return self

    def enter(self):
        """Move this process into the host namespace."""
        if self.orig_fd is not None:
            return self
        try:
            self.orig_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
            fd = os.open(f"/run/netns/{self.host}", os.O_RDONLY)
            try:
                _setns(fd)
            finally:
                os.close(fd)
        except OSError as e:
            self.leave()
            self._skip(str(e))
        return self

    def leave(self):
        """Back to the namespace we came from."""
        if self.orig_fd is not None:
            try:
                _setns(self.orig_fd)
            finally:
                os.close(self.orig_fd)
                self.orig_fd = None

    def delete(self):
        """Delete both namespaces (the veth goes with them)."""
        for ns in self.created:
            rc, out = _ip("netns", "del", ns)
            if rc != 0:
                sys.stderr.write(f"warning: ip netns del {ns}: {out}\n")
        self.created = []

    def __enter__(self):
        return self.create().enter()

    def __exit__(self, *exc):
        try:
            self.leave()
        finally:
            self.delete()


_shared = None


def shared():
    """One Netns for the whole test file, created on first use and deleted
    at exit; enter and leave it per test (`with entered(shared()):`)."""
    global _shared
    if _shared is None:
        reap_stale()
        _shared = Netns()
        atexit.register(_shared.delete)
        # A runner's SIGTERM then unwinds through atexit too.
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return _shared.create()


class entered:
    """Within the with-block, this process is in ns's host namespace."""

    def __init__(self, ns):
        self.ns = ns

    def __enter__(self):
        return self.ns.enter()

    def __exit__(self, *exc):
        self.ns.leave()


class Remote:
    """remote_client.py running in the peer namespace, aimed at a daemon
    (or port) in the host namespace."""

    def __init__(self, ns, daemon, host=HOST_ADDR, reach=True):
        """ns: a Netns (its peer side) or a namespace's name."""
        self.host = host
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns if isinstance(ns, str) else ns.peer,
             sys.executable, CLIENT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err)
        self.buf = b""
        self.port = daemon if isinstance(daemon, int) else daemon.port
        if reach:
            self.aim(daemon)

    def aim(self, daemon):
        """Talk to daemon (or port) from now on, once it is reachable."""
        self.port = daemon if isinstance(daemon, int) else daemon.port
        self.call("reach", timeout=5)

    def send(self, op, **args):
        """Send one command without waiting for its reply."""
        cmd = {"op": op, "host": self.host, "port": self.port, **args}
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    def reply(self, timeout=30.0, op="command"):
        """The reply to the oldest command sent; raise if it failed."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"remote {op}: no answer in time")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(
                        f"remote client died: {self.stderr()}")
                self.buf += chunk
        text, self.buf = self.buf.split(b"\n", 1)
        reply = json.loads(text)
        if not reply.get("ok"):
            raise AssertionError(f"remote {op}: {reply.get('error')}")
        return reply

    def call(self, op, call_timeout=30.0, **args):
        """Send one command; return its reply, or raise."""
        self.send(op, **args)
        return self.reply(max(call_timeout, float(args.get("timeout") or 0))
                          + 5, op)

    def requests(self, *items, timeout=2.0, host=None):
        """One connection per item (bytes, or (bytes, half_close))."""
        wire = []
        for it in items:
            data, shut = it if isinstance(it, tuple) else (it, False)
            wire.append({"data": data.hex(), "shut": shut})
        r = self.call("requests", items=wire, timeout=timeout,
                      host=host or self.host,
                      call_timeout=len(wire) * (2 * timeout + 1))
        return r["results"]

    def request(self, data, host=None, timeout=5.0):
        """Like epmdtest.request, from the peer: the bytes until close."""
        r = self.requests(data, timeout=timeout, host=host)[0]
        et.check(r["error"] is None or r["error"].startswith("send:"),
                 f"remote request: {r['error']}")
        et.check(r["closed"], f"remote request {data[:8]!r}: daemon did not "
                 f"close within {timeout} s")
        return bytes.fromhex(r["reply"])

    def connect(self, host=None, timeout=5.0):
        """A RemoteSocket: a connection made and used by the peer."""
        return RemoteSocket(self, host or self.host, timeout)

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RemoteSocket:
    """One connection held by the remote peer, driven step by step."""

    def __init__(self, remote, host, timeout):
        self.remote = remote
        r = remote.call("open", host=host, timeout=timeout)
        self.k = r["k"]

    def sendall(self, data):
        r = self.remote.call("send", k=self.k, data=data.hex())
        if r.get("error"):
            raise OSError(r["error"])

    def shutdown(self, how=None):
        self.remote.call("shut", k=self.k)

    def read(self, n, timeout):
        """n bytes (all until close if n is None) or what came within
        timeout; returns (data, "read" | "open" | "closed")."""
        r = self.remote.call("read", k=self.k, n=n, timeout=timeout)
        return bytes.fromhex(r["data"]), r["state"]

    def close(self):
        if self.k is not None:
            self.remote.call("close", k=self.k)
            self.k = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def route_to_peer(ns, net):
    """Make every address of net (an IPv4 or IPv6 prefix, test ranges
    only) the peer's own: a local route in the peer namespace, so the
    peer can bind any of them (AnyIP), and a route via the peer in the
    host namespace, so the replies find their way back. Many source
    addresses for the price of two routes (tests/lib/flood.py). Skips the
    test if ip(8) refuses."""
    v6 = ":" in net
    fam = "-6" if v6 else "-4"
    via = PEER_ADDR6 if v6 else PEER_ADDR
    for step in (("-n", ns.peer, fam, "route", "replace", "local", net,
                  "dev", "lo"),
                 ("-n", ns.host, fam, "route", "replace", net, "via",
                  via)):
        rc, out = _ip(*step)
        if rc != 0:
            raise et.Skip(f"cannot route {net} to the peer: ip "
                          f"{' '.join(step)}: {out}")
