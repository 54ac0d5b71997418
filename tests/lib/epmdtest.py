"""Shared helpers for epmd-c's integration and interop tests.

A test file defines functions decorated with @test and ends with
`run_tests()`. Each test prints one line on stdout:
    ok - NAME
    not ok - NAME
    not ok - NAME: timed out after N s
    skip - NAME: REASON
tests/run counts those lines. Details of failures go to stderr, and so
does each test's duration ("# NAME: 1.2 s").

Every test has a time limit: DEFAULT_TIMEOUT seconds (60, or
$EPMD_TEST_TIMEOUT), or its own with @test(timeout=300) /
@epmdc(timeout=300). Under a sanitizer build
(EPMD_UNDER_ASAN=1) limits are doubled. A test that overruns is stopped by
SIGALRM (its with-blocks and finally clauses still run, so daemons are
stopped), reported as timed out, and the file goes on with the next test.

The daemon under test is $EPMD_BIN (default ./epmd-c); the real OTP epmd is
$REF_EPMD (default: the epmd that Debian's erlang-base installs). With
EPMD_REFERENCE_MODE=1 the suite runs against the reference and tests of
epmd-c's own behaviour (@epmdc) skip.

The wire helpers take either a port number or anything with a .port (a
Daemon): names(d), lookup(d, "foo"), register(d, "foo", port=5001).
More in tests/lib: netns.py (genuinely remote peers in a network
namespace), load.py (many sockets at once), scripts.py (differential
transcripts).
"""

import functools
import os
import resource
import selectors
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
REFERENCE_MODE = os.environ.get("EPMD_REFERENCE_MODE") == "1"
UNDER_ASAN = os.environ.get("EPMD_UNDER_ASAN") == "1"
# Sanitizer builds are two to three times slower: stretch the time bounds.
SLOW = 3.0 if UNDER_ASAN else 1.0
# Seconds a test may run unless it says otherwise; tests/run gives the
# slower systemd layer a longer default through EPMD_TEST_TIMEOUT.
DEFAULT_TIMEOUT = float(os.environ.get("EPMD_TEST_TIMEOUT") or 60)

# Replies, as PROTOCOL.md 1.4 and 1.7 give them.
ERR_V6 = bytes.fromhex("760100000063")     # ALIVE2_X_RESP, error, creation 99
ERR_V5 = bytes.fromhex("79010063")         # ALIVE2_RESP, error, creation 99
PORT2_NOTFOUND = b"\x77\x01"
SMILE = "\U0001F600"                       # 4 bytes in UTF-8

_tests = []


# --------------------------------------------------------------------------
# Running tests

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


class Timeout(BaseException):
    """Raised in a test by SIGALRM at its time limit. Not an Exception, so
    that a test's own `except Exception` cannot swallow it."""


def test(fn=None, *, timeout=None):
    """Register a test function: @test, or @test(timeout=SECONDS)."""
    def register_fn(f):
        if timeout is not None:
            f.timeout = timeout
        _tests.append(f)
        return f
    return register_fn if fn is None else register_fn(fn)


def epmdc(fn=None, *, timeout=None):
    """Register a test of a deliberate epmd-c behaviour (PROTOCOL.md 8.4):
    skipped with EPMD_REFERENCE_MODE=1. @epmdc or @epmdc(timeout=...)."""
    def wrap(f):
        @functools.wraps(f)
        def wrapper():
            epmdc_only()
            f()
        return test(wrapper, timeout=timeout)
    return wrap if fn is None else wrap(fn)


def epmdc_only(why="epmd-c departs from the reference here (PROTOCOL.md "
               "8.4); EPMD_REFERENCE_MODE=1"):
    """Skip the running test in reference mode."""
    if REFERENCE_MODE:
        raise Skip(why)


def time_limit(fn):
    """The seconds fn may run: its own limit or the default, doubled under
    a sanitizer build."""
    limit = getattr(fn, "timeout", None) or DEFAULT_TIMEOUT
    return limit * (2 if UNDER_ASAN else 1)


def _on_alarm(signum, frame):
    raise Timeout()


def _run_one(fn):
    """Run one test under its time limit; returns (kind, detail, traceback
    text)."""
    limit = time_limit(fn)
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        try:
            fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except Skip as e:
        return "skip", str(e), ""
    except Timeout:
        return "timeout", f"timed out after {limit:g} s", \
            traceback.format_exc()
    except Exception:
        return "fail", "", traceback.format_exc()
    finally:
        signal.signal(signal.SIGALRM, old)
    return "ok", "", ""


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
            kind, detail, tb = _run_one(fn)
        except Timeout:     # the alarm fired just as the test ended
            kind, detail, tb = "timeout", "timed out in cleanup", ""
        took = time.monotonic() - start
        if kind == "skip":
            print(f"skip - {name}: {detail}", flush=True)
        elif kind == "ok":
            print(f"ok - {name}", flush=True)
        else:
            failed += 1
            print(f"not ok - {name}" + (f": {detail}" if detail else ""),
                  flush=True)
            sys.stderr.write(f"--- {name} failed after {took:.1f}s\n{tb}")
        sys.stderr.write(f"# {name}: {took:.1f} s\n")
        sys.stderr.flush()
    sys.exit(1 if failed else 0)


# --------------------------------------------------------------------------
# Daemons and processes

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


def need_binary(path, what="EPMD_BIN"):
    """Skip the test unless path is an executable."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise Skip(f"{what} {path} is not executable")


def daemon(*args, **kw):
    """The daemon under test with options args, on a free port with
    -address 127.0.0.1 (skips if $EPMD_BIN is missing). Keywords go to
    Daemon."""
    need_binary(EPMD_BIN)
    return Daemon(EPMD_BIN, args=list(args), **kw)


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


def cli(d, *args, binary=None):
    """Run the binary under test (or binary) as a client against d."""
    return run([binary or EPMD_BIN, "-port", str(_port(d))] + list(args))


# --------------------------------------------------------------------------
# Descriptors and /proc

def raise_nofile(want):
    """Raise this process's RLIMIT_NOFILE soft limit to at least want (up
    to the hard limit), or skip. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    # An infinite hard limit cannot be a soft limit.
    new = want if hard == resource.RLIM_INFINITY else hard
    if new < want:
        raise Skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


def nofile_preexec(n):
    """A preexec_fn pinning the child's RLIMIT_NOFILE, soft and hard, at n."""
    def preexec():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return preexec


def proc_nofile(pid):
    """The soft 'Max open files' limit of a process, from /proc."""
    with open(f"/proc/{pid}/limits") as f:
        for text in f:
            if text.startswith("Max open files"):
                return int(text.split()[3])
    return None


def proc_fds(pid):
    """How many descriptors a process holds."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    """User + system CPU time of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    """Resident set size of a process in kB."""
    with open(f"/proc/{pid}/status") as f:
        for text in f:
            if text.startswith("VmRSS:"):
                return int(text.split()[1])
    return 0


# --------------------------------------------------------------------------
# The wire

def _port(d):
    """A daemon's port, or d itself if it is already a port number."""
    return d if isinstance(d, int) else d.port


def frame(body):
    """A request frame: 2-byte big-endian length, then the body."""
    return struct.pack(">H", len(body)) + body


def _b(name):
    return name.encode() if isinstance(name, str) else name


def alive2_body(name, port=5001, node_type=77, proto=0, high=6, low=5,
                extra=b""):
    """An ALIVE2_REQ body."""
    name = _b(name)
    return (struct.pack(">BHBBHHH", 120, port, node_type, proto, high, low,
                        len(name)) + name + struct.pack(">H", len(extra)) + extra)


def raw_alive2(nlen_field, rest):
    """An ALIVE2 frame with a forged Nlen field followed by rest."""
    return frame(bytes([120, 0x13, 0x89, 77, 0, 0, 6, 0, 5])
                 + nlen_field.to_bytes(2, "big") + rest)


def port2(name, port=5001, node_type=77, proto=0, high=6, low=5, extra=b""):
    """The exact PORT2_RESP for a registered node."""
    name = _b(name)
    return (struct.pack(">BBHBBHHH", 119, 0, port, node_type, proto, high,
                        low, len(name)) + name
            + struct.pack(">H", len(extra)) + extra)


def hdr(d):
    """The 4-byte NAMES/DUMP header of daemon d."""
    return struct.pack(">I", _port(d))


def line(name, port):
    """One NAMES line."""
    return b"name " + _b(name) + b" at port %d\n" % port


def connect(port, host="127.0.0.1", timeout=5.0, source=None):
    """A connected socket to the daemon (or port)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if source:
            s.bind(source)
        s.connect((host, _port(port)))
    except BaseException:
        s.close()
        raise
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


def request(port, data, host="127.0.0.1", timeout=5.0):
    """Send raw bytes on a new connection, return everything until close.

    A send that fails because the daemon already closed (or reset) the
    connection counts as a close with nothing."""
    with connect(port, host, timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        return read_until_close(s, timeout)


def names(port, host="127.0.0.1", timeout=5.0):
    """The raw NAMES reply."""
    return request(port, frame(b"n"), host, timeout)


def dump(port, host="127.0.0.1"):
    """The raw DUMP reply."""
    return request(port, frame(b"d"), host)


def lookup(port, name, host="127.0.0.1", timeout=5.0):
    """The raw PORT2_RESP for name."""
    return request(port, frame(b"z" + _b(name)), host, timeout)


port_please = lookup


def listed(d, name, port=5001):
    """True if NAMES lists name at port."""
    return line(name, port) in names(d)


def register(epmd_port, name, host="127.0.0.1", source=None, **kw):
    """Register a node; returns (socket, reply). Keep the socket open.

    Keyword arguments go to alive2_body (port= is the node's port)."""
    s = connect(epmd_port, host, source=source)
    s.sendall(frame(alive2_body(name, **kw)))
    high = kw.get("high", 6)
    reply = read_exact(s, 6 if high >= 6 else 4)
    return s, reply


def register_ok(d, name, **kw):
    """Register and check success; (socket, creation)."""
    s, r = register(d, name, **kw)
    if kw.get("high", 6) >= 6:
        eq(r[:2], b"v\x00", f"ALIVE2_X_RESP for {name!r}")
        eq(len(r), 6, "reply length")
        return s, struct.unpack(">I", r[2:6])[0]
    eq(r[:2], b"y\x00", f"ALIVE2_RESP for {name!r}")
    eq(len(r), 4, "reply length")
    return s, struct.unpack(">H", r[2:4])[0]


def drop(d, s, name, port=5001):
    """Close a registration and wait until NAMES no longer lists it."""
    s.close()
    check(eventually(lambda: not listed(d, name, port), 3.0),
          f"{name!r} still listed after its connection closed")


def parse_names(data):
    """A NAMES reply as (header port, [(name bytes, port)]); raises if bad."""
    if len(data) < 4:
        raise AssertionError(f"NAMES reply too short: {data[:40]!r}")
    header = struct.unpack(">I", data[:4])[0]
    out = []
    body = data[4:]
    if body and not body.endswith(b"\n"):
        raise AssertionError(f"NAMES reply truncated: ...{body[-60:]!r}")
    for text in body.split(b"\n")[:-1] if body else []:
        if not text.startswith(b"name ") or b" at port " not in text:
            raise AssertionError(f"bad NAMES line {text[:80]!r}")
        name, port = text[5:].rsplit(b" at port ", 1)
        out.append((name, int(port)))
    return header, out


def names_dict(port, timeout=10.0):
    """The NAMES listing as {name bytes: port}; raises on duplicates."""
    header, lines = parse_names(names(port, timeout=timeout))
    eq(header, _port(port), "NAMES header port")
    d = dict(lines)
    check(len(d) == len(lines), "NAMES lists a name twice")
    return d


def is_closed(s, timeout=2.0):
    """True if the peer closed s within timeout (EOF or reset)."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def close_times(socks, limit):
    """Watch sockets until each is closed by the peer or limit seconds pass.

    Returns {socket: (seconds after start, data received)}; open ones are
    missing."""
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    got = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        got[s] = b""
    done = {}
    while len(done) < len(socks):
        left = start + limit - time.monotonic()
        if left <= 0:
            break
        for key, _ in sel.select(left):
            s = key.fileobj
            try:
                chunk = s.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if chunk:
                got[s] += chunk
                continue
            done[s] = (time.monotonic() - start, got[s])
            sel.unregister(s)
    sel.close()
    for s in socks:
        s.settimeout(5.0)
    return done


# --------------------------------------------------------------------------
# Creation values (PROTOCOL.md 1.5)

def check_fresh(c, t0, t1):
    """A first creation is now+1 (time(NULL) at registration, bumped)."""
    check(int(t0) - 1 <= c - 1 <= int(t1) + 2,
          f"creation {c} is not now+1 (time was {t0:.1f}..{t1:.1f})")


def v5(c):
    """The 16-bit creation reported for a 32-bit counter c."""
    return c % 3 + 1


# --------------------------------------------------------------------------
# Assertions

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

