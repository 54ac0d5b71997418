"""Shared helpers for epmd-c's integration and interop tests.

A test file defines functions decorated with @test and ends with
`run_tests()`. Each test prints one line on stdout:
    ok - NAME
    not ok - NAME
    skip - NAME: REASON
tests/run counts those lines. Details of failures go to stderr.

The daemon under test is $EPMD_BIN (default ./epmd-c); the real OTP epmd is
$REF_EPMD (default: the epmd that Debian's erlang-base installs).
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EPMD_BIN = os.path.abspath(os.environ.get("EPMD_BIN", os.path.join(ROOT, "epmd-c")))
REF_EPMD = os.environ.get("REF_EPMD") or shutil.which("epmd") or "/usr/bin/epmd"

_tests = []


def _die_with_parent(preexec=None):
    """A preexec_fn that makes the child die with the test (then runs preexec)."""
    def fn():
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
        if preexec:
            preexec()
    return fn


class Skip(Exception):
    """Raise to skip the current test, with a reason."""


def test(fn):
    """Register a test function."""
    _tests.append(fn)
    return fn


def run_tests():
    """Run every registered test (or those named in argv) and exit."""
    only = set(sys.argv[1:])
    failed = 0
    for fn in _tests:
        name = fn.__name__
        if only and name not in only:
            continue
        start = time.monotonic()
        try:
            fn()
        except Skip as e:
            print(f"skip - {name}: {e}", flush=True)
            continue
        except Exception:
            failed += 1
            print(f"not ok - {name}", flush=True)
            sys.stderr.write(f"--- {name} failed after {time.monotonic() - start:.1f}s\n")
            traceback.print_exc()
            sys.stderr.flush()
            continue
        print(f"ok - {name}", flush=True)
    sys.exit(1 if failed else 0)


def free_port():
    """A TCP port that is free on 127.0.0.1 and ::1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                s6.bind(("::1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def wait_port(port, host="127.0.0.1", timeout=5.0):
    """Wait until something accepts on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class Daemon:
    """A daemon (epmd-c or the real epmd) on a free loopback port."""

    def __init__(self, binary=None, args=(), env=None, port=None,
                 address="127.0.0.1", wait=True, preexec=None):
        self.binary = binary or EPMD_BIN
        self.port = port or free_port()
        self.errfile = tempfile.TemporaryFile()
        e = dict(os.environ)
        for k in ("ERL_EPMD_PORT", "ERL_EPMD_ADDRESS",
                  "ERL_EPMD_RELAXED_COMMAND_CHECK", "NOTIFY_SOCKET",
                  "LISTEN_FDS", "LISTEN_PID"):
            e.pop(k, None)
        if env:
            e.update(env)
        argv = [self.binary, "-port", str(self.port)]
        if address:
            argv += ["-address", address]
        argv += list(args)
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.errfile, stderr=self.errfile,
                                     env=e,
                                     preexec_fn=_die_with_parent(preexec))
        if wait and not wait_port(self.port):
            self.stop()
            raise RuntimeError(f"daemon {argv} did not start: {self.stderr()}")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stderr(self):
        self.errfile.seek(0)
        return self.errfile.read().decode("utf-8", "replace")

    def wait(self, timeout=5.0):
        """Wait for the daemon to exit; return its status."""
        return self.proc.wait(timeout=timeout)

    def stop(self):
        """Stop the daemon (SIGTERM, then SIGKILL) and return its status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def frame(body):
    """A request frame: 2-byte big-endian length, then the body."""
    return struct.pack(">H", len(body)) + body


def alive2_body(name, port=5001, node_type=77, proto=0, high=6, low=5,
                extra=b""):
    """An ALIVE2_REQ body."""
    if isinstance(name, str):
        name = name.encode()
    return (struct.pack(">BHBBHHH", 120, port, node_type, proto, high, low,
                        len(name)) + name + struct.pack(">H", len(extra)) + extra)


def connect(port, host="127.0.0.1", timeout=5.0, source=None):
    """A connected socket to the daemon."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind(source)
    s.connect((host, port))
    return s


def read_until_close(s, timeout=5.0):
    """Read until EOF or reset; returns the bytes received."""
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def request(port, data, host="127.0.0.1", timeout=5.0):
    """Send raw bytes on a new connection, return everything until close."""
    with connect(port, host, timeout) as s:
        s.sendall(data)
        return read_until_close(s, timeout)


def read_exact(s, n, timeout=5.0):
    """Read exactly n bytes (or fewer if the peer closes)."""
    s.settimeout(timeout)
    data = b""
    while len(data) < n:
        try:
            chunk = s.recv(n - len(data))
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def register(epmd_port, name, host="127.0.0.1", **kw):
    """Register a node; returns (socket, reply). Keep the socket open.

    Keyword arguments go to alive2_body (port= is the node's port)."""
    s = connect(epmd_port, host)
    s.sendall(frame(alive2_body(name, **kw)))
    high = kw.get("high", 6)
    reply = read_exact(s, 6 if high >= 6 else 4)
    return s, reply


def names(port, host="127.0.0.1"):
    """The raw NAMES reply."""
    return request(port, frame(b"n"), host)


def port_please(port, name, host="127.0.0.1"):
    """The raw PORT2_RESP for name."""
    if isinstance(name, str):
        name = name.encode()
    return request(port, frame(b"z" + name), host)


def is_closed(s, timeout=2.0):
    """True if the peer closed s within timeout (EOF or reset)."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def run(argv, env=None, timeout=20, input=None):
    """Run a command; returns (rc, stdout bytes, stderr bytes)."""
    e = dict(os.environ)
    for k in ("ERL_EPMD_PORT", "ERL_EPMD_ADDRESS",
              "ERL_EPMD_RELAXED_COMMAND_CHECK"):
        e.pop(k, None)
    if env:
        e.update(env)
    p = subprocess.run(argv, env=e, capture_output=True, timeout=timeout,
                       input=input, stdin=None if input else subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def eventually(pred, timeout=5.0, interval=0.05):
    """Poll pred until it is true or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def check(cond, msg=""):
    """Assert with a message that survives python -O."""
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what=""):
    """Assert equality and show both sides."""
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")
