"""Scripted conversations with a port mapper, for the differential tests.

A script is a list of steps. Each step is a small tuple built by one of the
functions below (Open, Send, Read, ...). A Runner plays a script against one
daemon and returns a transcript: one line per recorded outcome, with the
values that legitimately differ between two daemons masked (see MASKS). Two
transcripts of the same script, one per daemon, must be equal.

A step may run on a connection of a genuinely remote peer (remote=True):
the Runner then drives a netns.RemoteSocket of its netns.Remote, and
127.0.0.1 / ::1 mean the daemon's 198.51.100.1 / 2001:db8::1.
"""

import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import epmdtest as et  # noqa: E402
import netns  # noqa: E402

# What the transcripts mask, and why. Nothing else is masked.
MASKS = [
    ("creation values in ALIVE2 replies",
     "time-seeded; each is replaced by its rule: 'prev+N' relative to the "
     "same name's previous creation; for a name's first creation 'fresh' "
     "(not below now+1, with 2 s slack, and at most a day ahead: the "
     "reference gives two names registered in the same second the same "
     "value, epmd-c may run ahead of the clock to keep creations unique); "
     "for 16-bit replies the offset modulo 3 from the previous one"),
    ("'fd = N' in DUMP replies and -dump output",
     "descriptor numbers are implementation details (PROTOCOL.md 1.9)"),
    ("the 4-byte NAMES/DUMP port header and 'on port N' in CLI output",
     "each daemon runs on its own port; the header is first checked to equal "
     "that daemon's own port, then replaced by <PORT>"),
    ("reset versus orderly EOF",
     "a close with unread data (Length 3058) may surface as either; both are "
     "recorded as 'closed'"),
]

STEP_TIMEOUT = 5.0
FRESH_AHEAD = 86400   # how far ahead of now+1 a first creation may run


# --------------------------------------------------------------------------
# Steps. k names a connection within the script; any hashable value works.

def Open(k, host="127.0.0.1", source=None, remote=False):
    """Connect k to the daemon, optionally from source or from the remote
    peer."""
    return ("open", k, host, source, remote)


def Send(k, data):
    """Send raw bytes on k."""
    return ("send", k, data)


def Dribble(k, data, gap=0.2):
    """Send data on k one byte at a time, gap seconds apart."""
    return ("dribble", k, data, gap)


def Read(k, n=None, timeout=STEP_TIMEOUT):
    """Read n bytes from k, or everything until close when n is None."""
    return ("read", k, n, timeout)


def Close(k):
    """Close k from our side (not recorded)."""
    return ("close", k)


def Shut(k):
    """shutdown(SHUT_WR) on k."""
    return ("shut", k)


def Wait(secs):
    """Sleep."""
    return ("wait", secs)


def Probe(k, secs):
    """Record whether k is closed by the daemon within secs (and any data)."""
    return ("probe", k, secs)


def Gone(name, port):
    """Wait until NAMES stops listing name at port; record if it did."""
    return ("gone", name, port)


def Cli(*args, stderr="full", port=True, timeout=10, client="own"):
    """Run a client: BIN -port P args...

    client: "own" runs each daemon's own binary as the client; "ref" runs
    the real OTP epmd client against both daemons.
    stderr: "full", "first" (first line only) or "none".
    """
    return ("cli", args, stderr, port, timeout, client)


def Start(*args, timeout=3):
    """Run the binary with args ("{port}" is the daemon's port) and record
    its exit status, or 'running' (then killed) if it is still up."""
    return ("start", args, timeout)


def Alive():
    """Record whether the daemon process is running."""
    return ("alive",)


def Exit(timeout=5):
    """Wait for the daemon to exit; record its status."""
    return ("exit", timeout)


# Sugar ------------------------------------------------------------------

def Req(data, host="127.0.0.1", source=None, remote=False, k="_req"):
    """One request on a new connection; record the reply up to close."""
    return [Open(k, host, source, remote), Send(k, data), Read(k), Close(k)]


def Names(**kw):
    return Req(et.frame(b"n"), **kw)


def Dump(**kw):
    return Req(et.frame(b"d"), **kw)


def Lookup(name, **kw):
    if isinstance(name, str):
        name = name.encode()
    return Req(et.frame(b"z" + name), **kw)


def Reg(k, name, host="127.0.0.1", source=None, remote=False, **kw):
    """Open k, send an ALIVE2 and read its fixed-size reply (k stays open)."""
    n = 6 if kw.get("high", 6) >= 6 else 4
    return [Open(k, host, source, remote),
            Send(k, et.frame(et.alive2_body(name, **kw))), Read(k, n)]


def Unreg(k, name, port=5001):
    """Close k and wait for name to leave NAMES."""
    if isinstance(name, str):
        name = name.encode()
    return [Close(k), Gone(name, port)]


def flatten(steps):
    """Scripts may nest lists of steps; flatten them."""
    out = []
    for s in steps:
        if isinstance(s, list):
            out.extend(flatten(s))
        else:
            out.append(s)
    return out


# --------------------------------------------------------------------------
# Playing a script

def parse_alive2(data):
    """(name, high, port) if data is an ALIVE2_REQ frame, else None."""
    if len(data) < 13 or data[2] != 120:
        return None
    body = data[2:2 + struct.unpack(">H", data[:2])[0]]
    if len(body) < 11:
        return None
    port, high, nlen = (struct.unpack(">H", body[1:3])[0],
                        struct.unpack(">H", body[5:7])[0],
                        struct.unpack(">H", body[9:11])[0])
    return body[11:11 + nlen], high, port


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.sent = b""
        self.got = 0          # bytes received so far
        self.pending = None   # (name, high, port, t0) of an unanswered ALIVE2
        self.reg = None       # (name, port) once an ALIVE2 succeeded
        self.closed = False   # the daemon closed it

    def code(self):
        return self.sent[2] if len(self.sent) > 2 else None


class Runner:
    """Plays scripts against one daemon, keeping creation history."""

    def __init__(self, daemon, binary, remote=None, port=None):
        self.d = daemon
        self.port = port if port is not None else daemon.port
        self.binary = binary
        self.remote = remote      # a netns.Remote for remote=True steps
        self.full = {}    # name -> last full (32-bit) creation, known/inferred
        self.short = {}   # name -> last 16-bit creation, when full unknown

    # masking ----------------------------------------------------------

    def _creation_token(self, name, high, value, t0, t1):
        if high >= 6:
            if name in self.full:
                tok = f"prev{value - self.full[name]:+d}"
            elif int(t0) - 1 <= value - 1 <= int(t1) + FRESH_AHEAD:
                tok = "fresh"
            else:
                tok = f"unexpected({value}, now {int(t1)})"
            self.full[name] = value
            self.short.pop(name, None)
            return tok
        if not 1 <= value <= 3:
            return f"bad16({value})"
        if name in self.full:
            d = (value - 1 - self.full[name]) % 3
            self.full[name] += d
            return f"mod3(prev+{d})"
        if name in self.short:
            d = (value - self.short[name]) % 3
            self.short[name] = value
            return f"mod3(prev16+{d})"
        self.short[name] = value
        return "fresh16"

    def _mask(self, c, data, t1):
        if c.pending and data:
            name, high, nport, t0 = c.pending
            c.pending = None
            if data[:2] == b"v\x00" and len(data) >= 6:
                v = struct.unpack(">I", data[2:6])[0]
                tok = self._creation_token(name, high, v, t0, t1)
                data = data[:2] + b"<C:" + tok.encode() + b">" + data[6:]
                c.reg = (name, nport)
            elif data[:2] == b"y\x00" and len(data) >= 4:
                v = struct.unpack(">H", data[2:4])[0]
                tok = self._creation_token(name, high, v, t0, t1)
                data = data[:2] + b"<C:" + tok.encode() + b">" + data[4:]
                c.reg = (name, nport)
        if c.got == 0 and c.code() in (ord("n"), ord("d")) and data:
            hdr = struct.pack(">I", self.port)
            if data[:4] == hdr:
                data = b"<PORT>" + data[4:]
            else:
                data = b"<BADHDR " + data[:4].hex().encode() + b">" + data[4:]
        return re.sub(rb"fd = \d+", b"fd = #", data)

    def _mask_text(self, out):
        out = out.replace(b"on port %d" % self.port, b"on port <PORT>")
        return re.sub(rb"fd = \d+", b"fd = #", out)

    # steps ------------------------------------------------------------

    def _recv(self, c, n, timeout):
        """Read n bytes (all until close if n is None); (data, state)."""
        if isinstance(c.sock, netns.RemoteSocket):
            data, state = c.sock.read(n, timeout)
            c.closed = c.closed or state == "closed"
            return data, state
        deadline = time.monotonic() + timeout
        data = b""
        while n is None or len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return data, "open"
            c.sock.settimeout(left)
            try:
                chunk = c.sock.recv(65536 if n is None else n - len(data))
            except (socket.timeout, BlockingIOError):
                return data, "open"
            except OSError:   # reset
                c.closed = True
                return data, "closed"
            if not chunk:
                c.closed = True
                return data, "closed"
            data += chunk
        return data, "read"

    def _names_has(self, line):
        try:
            return line in et.request(self.port, et.frame(b"n"), timeout=2.0)
        except OSError:
            return False

    def run(self, script):
        """Play script; return the transcript (a list of strings)."""
        conns = {}
        out = []
        try:
            self._play(flatten(script), conns, out)
        finally:
            self._cleanup(conns)
        return out

    def _play(self, steps, conns, out):
        for st in steps:
            kind = st[0]
            try:
                rec = self._step(st, conns)
            except Exception as e:  # the outcome is part of the transcript
                rec = f"{kind} raised {type(e).__name__}"
            if rec is not None:
                out.append(f"{len(out)}: {rec}")

    def _step(self, st, conns):
        kind = st[0]
        if kind == "open":
            _, k, host, source, remote = st
            if k in conns:
                self._close(conns.pop(k))
            if remote:
                s = self.remote.connect(netns.HOST_ADDR6 if ":" in host
                                        else netns.HOST_ADDR, STEP_TIMEOUT)
            else:
                s = et.connect(self.port, host, STEP_TIMEOUT, source)
            conns[k] = _Conn(s)
            return None
        if kind in ("send", "dribble"):
            k, data = st[1], st[2]
            c = conns[k]
            a = parse_alive2(data)
            if a:
                c.pending = a + (time.time(),)
            try:
                if kind == "send":
                    c.sent += data
                    c.sock.sendall(data)
                for j in range(len(data) if kind == "dribble" else 0):
                    c.sent += data[j:j + 1]
                    c.sock.sendall(data[j:j + 1])
                    if j + 1 < len(data):
                        time.sleep(st[3])
            except OSError:
                # The daemon may close (or reset) before everything is sent;
                # whether the send notices is timing, and the next read on k
                # records the close anyway.
                pass
            return None
        if kind == "read":
            _, k, n, timeout = st
            c = conns[k]
            data, state = self._recv(c, n, timeout)
            masked = self._mask(c, data, time.time())
            c.got += len(data)
            return f"read k={k!r} -> {masked!r} {state}"
        if kind == "probe":
            _, k, secs = st
            c = conns[k]
            data, state = self._recv(c, None, secs)
            masked = self._mask(c, data, time.time())
            c.got += len(data)
            return f"probe k={k!r} {secs}s -> {masked!r} {state}"
        if kind == "close":
            c = conns.pop(st[1], None)
            if c:
                self._close(c)
            return None
        if kind == "shut":
            conns[st[1]].sock.shutdown(socket.SHUT_WR)
            return None
        if kind == "wait":
            time.sleep(st[1])
            return None
        if kind == "gone":
            _, name, nport = st
            line = b"name " + name + b" at port %d\n" % nport
            went = et.eventually(lambda: not self._names_has(line), 3.0, 0.02)
            return f"gone {name!r}: {bool(went)}"
        if kind == "cli":
            _, args, stderr, with_port, timeout, client = st
            binary = et.REF_EPMD if client == "ref" else self.binary
            argv = [binary] + (["-port", str(self.port)] if with_port
                               else []) + list(args)
            rc, so, se = et.run(argv, timeout=timeout)
            if stderr == "first":
                se = se.split(b"\n", 1)[0]
            elif stderr == "none":
                se = b""
            return (f"cli {client} {list(args)} -> rc {rc} stdout "
                    f"{self._mask_text(so)!r} stderr {self._mask_text(se)!r}")
        if kind == "start":
            _, args, timeout = st
            argv = [self.binary] + [a.replace("{port}", str(self.port))
                                    for a in args]
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = "running"
            return f"start {list(args)} -> {rc}"
        if kind == "alive":
            return f"alive -> {self.d.alive()}"
        if kind == "exit":
            try:
                return f"exit -> {self.d.wait(timeout=st[1])}"
            except subprocess.TimeoutExpired:
                return "exit -> still running"
        raise ValueError(f"unknown step {st!r}")

    def _close(self, c):
        try:
            c.sock.close()
        except OSError:
            pass

    def _cleanup(self, conns):
        """Close what the script left open, one registration at a time, so
        that both daemons see unregistrations in the same order."""
        for k in list(conns):
            c = conns.pop(k)
            self._close(c)
            if c.reg and not c.closed and self.d.alive():
                name, nport = c.reg
                line = b"name " + name + b" at port %d\n" % nport
                et.eventually(lambda: not self._names_has(line), 3.0, 0.02)


def play_pair(ref, dut, script):
    """Play script on two Runners at once; (ref transcript, dut transcript)."""
    res = {}

    def go(key, runner):
        try:
            res[key] = runner.run(script)
        except Exception as e:
            res[key] = [f"runner raised {type(e).__name__}: {e}"]

    th = threading.Thread(target=go, args=("ref", ref))
    th.start()
    go("dut", dut)
    th.join(120)
    if th.is_alive():
        raise RuntimeError("reference runner hung")
    return res["ref"], res["dut"]


def compare(name, ref_t, dut_t):
    """Raise AssertionError describing the first difference, if any."""
    if ref_t == dut_t:
        return
    n = min(len(ref_t), len(dut_t))
    first = next((i for i in range(n) if ref_t[i] != dut_t[i]), n)

    def show(t):
        return t[first][:600] if first < len(t) else "<transcript ended>"
    sys.stderr.write(f"--- {name}: reference transcript\n")
    for line in ref_t:
        sys.stderr.write(f"    {line[:300]}\n")
    sys.stderr.write(f"--- {name}: daemon-under-test transcript\n")
    for line in dut_t:
        sys.stderr.write(f"    {line[:300]}\n")
    raise AssertionError(f"{name}: first difference at record {first}:\n"
                         f"  reference: {show(ref_t)}\n"
                         f"  under test: {show(dut_t)}")
