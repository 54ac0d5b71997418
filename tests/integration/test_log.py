#!/usr/bin/env python3
"""A log that never blocks the loop (issue 14).

A syslog receiver, or a stderr pipe, that stops reading must not delay a
single request: the daemon drops what its bounded log queue cannot hold,
counts it in epmd_log_dropped_total, and says "log: dropped N messages"
once the sink reads again.

Syslog is caught by an AF_UNIX datagram socket that the daemon sees as
/dev/log: the daemon runs in a private mount namespace (`unshare -m`, so
root) whose /dev is a temporary directory holding that socket and a bind
of /dev/null. Nothing is mounted or created in the host's /dev. These are
epmd-c behaviours; with EPMD_REFERENCE_MODE=1 they skip.
"""

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import epmdtest as et  # noqa: E402
from epmdtest import Skip, check, epmdc, eq  # noqa: E402

# How long a sink stays stalled, and the slowest answer allowed meanwhile.
STALL_S = 6.5
PROMPT_S = 1.0 * et.SLOW
# Each operation's own limit: far above PROMPT_S, far below the stall.
OP_TIMEOUT_S = 2.5
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
O_NONBLOCK_FLAG = 0o4000
DROPPED_RE = re.compile(r"log: dropped (\d+) messages")


def need_unshare():
    """Skip unless we may make a private mount namespace."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise Skip("needs root and unshare(1) for a private /dev/log")


class SyslogReceiver:
    """A datagram socket in a temporary directory that becomes the
    daemon's /dev; it reads only when asked to."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="epmdc-log-")
        open(os.path.join(self.dir, "null"), "w").close()
        self.path = os.path.join(self.dir, "log")
        self.lines = []
        self._bind()

    def _bind(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)

    def read(self):
        """Take every datagram waiting; returns the new ones."""
        new = []
        while True:
            try:
                new.append(self.sock.recv(65536).decode("utf-8", "replace"))
            except BlockingIOError:
                break
        self.lines += new
        return new

    def wait_for(self, pattern, timeout=5.0):
        """Read until a datagram matches pattern; the match, or None."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            for text in self.read():
                m = rx.search(text)
                if m:
                    return m
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def restart(self):
        """Close and bind again, as a restarted syslog daemon does."""
        self.sock.close()
        os.unlink(self.path)
        self._bind()

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def pids_of(port):
    """Pids of the daemon under test serving port (by its argv)."""
    want = ["-port", str(port)]
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv and argv[0] == et.EPMD_BIN and argv[1:3] == want:
            out.append(int(name))
    return out


class DetachedDaemon:
    """epmd-c -daemon in a private mount namespace whose /dev/log is rcv's
    socket. Stopped by pid (SIGTERM, then SIGKILL)."""

    SCRIPT = ('mount --bind /dev/null "$0/null" && mount --rbind "$0" /dev '
              '&& exec "$@"')

    def __init__(self, rcv, *args):
        et.need_binary(et.EPMD_BIN)
        self.port = et.free_port()
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                self.SCRIPT, rcv.dir, et.EPMD_BIN, "-port", str(self.port),
                "-address", "127.0.0.1", *args, "-daemon"]
        rc, out, err = et.run(argv, timeout=10)
        eq(rc, 0, f"unshare + epmd-c -daemon ({err!r})")
        if not et.wait_port(self.port):
            self.stop()
            raise AssertionError(f"the detached daemon does not listen: {err!r}")
        self.pids = pids_of(self.port)

    def stop(self):
        pids = set(getattr(self, "pids", [])) | set(pids_of(self.port))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if et.eventually(lambda: not pids_of(self.port), 3.0):
                return

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def timed(fn):
    """(seconds fn took, error or None); a timeout is an error."""
    t0 = time.monotonic()
    try:
        fn()
        return time.monotonic() - t0, None
    except (OSError, AssertionError) as e:
        return time.monotonic() - t0, e


def churn(port, seconds):
    """Register and unregister nodes (two log lines each) and look one up
    in every round, for seconds. Returns (worst lookup seconds, rounds,
    nodes registered, the first error). Stops at the first error."""
    worst, rounds, nodes = 0.0, 0, 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        socks = []
        try:
            for i in range(10):
                name = f"churn{rounds}x{i}"
                s = et.connect(port, timeout=OP_TIMEOUT_S)
                socks.append(s)
                s.sendall(et.frame(et.alive2_body(name, port=6000 + i)))
                took, err = timed(lambda: eq(
                    et.read_exact(s, 6, timeout=OP_TIMEOUT_S)[:2], b"v\x00",
                    f"ALIVE2 of {name}"))
                if err:
                    return worst, rounds, nodes, f"ALIVE2 after {took:.1f} s: {err}"
                nodes += 1
            took, err = timed(lambda: eq(
                et.lookup(port, f"churn{rounds}x3", timeout=OP_TIMEOUT_S)[:2],
                b"w\x00", "PORT2_RESP found"))
            worst = max(worst, took)
            if err:
                return worst, rounds, nodes, f"lookup after {took:.1f} s: {err}"
        except OSError as e:
            return worst, rounds, nodes, f"connect: {e}"
        finally:
            for s in socks:
                s.close()
        rounds += 1
        time.sleep(0.01)    # plenty of lines, without hogging the CPUs
    return worst, rounds, nodes, None


def scrape(mport, name):
    """One sample's value from the metrics endpoint."""
    with socket.create_connection(("127.0.0.1", mport), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        body = et.read_until_close(s).decode()
    m = re.search(rf"^{name} (\S+)$", body, re.M)
    check(m, f"no {name} sample in {body[-800:]!r}")
    return float(m.group(1))


def check_prompt(worst, rounds, nodes, err, what):
    """Every request of a churn was answered, promptly, and enough of them
    ran to overflow the log queue."""
    check(err is None, f"{what}: a request waited on the log: {err} "
          f"(round {rounds}, {nodes} nodes registered)")
    check(worst < PROMPT_S, f"{what}: slowest lookup {worst:.2f} s")
    check(nodes >= 300, f"{what}: only {nodes} nodes registered in "
          f"{STALL_S} s: too few log lines to fill the queue")


@epmdc(timeout=60)
def test_syslog_that_stops_reading_for_6_s_delays_no_lookup():
    need_unshare()
    mport = et.free_port()
    with SyslogReceiver() as rcv, \
            DetachedDaemon(rcv, "-metrics", f"127.0.0.1:{mport}") as d:
        check(rcv.wait_for(r"\]: ready", 5.0), f"no 'ready' line: {rcv.lines}")
        # From here on the receiver reads nothing.
        worst, rounds, nodes, err = churn(d.port, STALL_S)
        sys.stderr.write(f"# stalled syslog: {rounds} rounds, {nodes} nodes, "
                         f"slowest lookup {worst * 1000:.1f} ms\n")
        check_prompt(worst, rounds, nodes, err, "stalled syslog")
        m = rcv.wait_for(DROPPED_RE.pattern, 5.0)
        check(m, f"no 'dropped N messages' line after the receiver read "
              f"again; last lines: {rcv.lines[-5:]}")
        dropped = int(m.group(1))
        check(dropped > 0, m.group(0))
        check(scrape(mport, "epmd_log_dropped_total") >= dropped,
              "epmd_log_dropped_total below the notice's count")
        # Lines go on as before once the receiver keeps up.
        s, _ = et.register_ok(d.port, "afterstall")
        check(rcv.wait_for(r"\]: registered afterstall ", 3.0),
              f"no line after the stall: {rcv.lines[-3:]}")
        s.close()


@epmdc
def test_syslog_lines_are_rfc3164_with_facility_daemon_and_pid():
    need_unshare()
    with SyslogReceiver() as rcv, DetachedDaemon(rcv) as d:
        s, _ = et.register_ok(d.port, "fmtnode", port=5555)
        m = rcv.wait_for(r"^<30>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d "
                         r"epmd-c\[(\d+)\]: registered fmtnode at port 5555,",
                         3.0)
        s.close()
        check(m, f"no RFC 3164 line for fmtnode: {rcv.lines}")
        eq([int(m.group(1))], d.pids, "the pid in the line")
        check(rcv.wait_for(r"^<30>.* epmd-c\[\d+\]: unregistered fmtnode", 3.0),
              f"no unregistered line: {rcv.lines[-3:]}")


@epmdc
def test_syslog_restarted_receiver_gets_the_next_lines():
    need_unshare()
    with SyslogReceiver() as rcv, DetachedDaemon(rcv) as d:
        check(rcv.wait_for(r"\]: ready", 5.0), f"no 'ready' line: {rcv.lines}")
        rcv.restart()
        s, _ = et.register_ok(d.port, "afterrestart")
        check(rcv.wait_for(r"\]: registered afterrestart ", 3.0),
              f"nothing reached the new receiver: {rcv.lines[-3:]}")
        s.close()


@epmdc(timeout=40)
def test_sigterm_with_a_stalled_syslog_exits_after_a_bounded_wait():
    need_unshare()
    with SyslogReceiver() as rcv, DetachedDaemon(rcv) as d:
        check(rcv.wait_for(r"\]: ready", 5.0), f"no 'ready' line: {rcv.lines}")
        worst, rounds, nodes, err = churn(d.port, 1.0)
        check(err is None, f"stalled syslog: {err}")
        check(d.pids, "no daemon pid")
        t0 = time.monotonic()
        for pid in d.pids:
            os.kill(pid, signal.SIGTERM)
        gone = et.eventually(lambda: not pids_of(d.port), 3.0 * et.SLOW)
        took = time.monotonic() - t0
        check(gone, f"still running {took:.1f} s after SIGTERM")
        # The queue is drained for at most 1 s before the exit.
        check(took < 2.0 * et.SLOW, f"exit took {took:.1f} s")


def foreground_with_pipe():
    """The daemon in the foreground, stderr a 4 kB pipe; (proc, port, read fd,
    write fd)."""
    et.need_binary(et.EPMD_BIN)
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    port = et.free_port()
    proc = subprocess.Popen(
        [et.EPMD_BIN, "-port", str(port), "-address", "127.0.0.1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w,
        preexec_fn=et._die_with_parent())
    if not et.wait_port(port):
        proc.kill()
        raise AssertionError("the daemon did not start")
    return proc, port, r, w


def read_pipe_until(r, rx, timeout):
    """Read r (non-blocking) until rx matches the text; (match, text)."""
    os.set_blocking(r, False)
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        try:
            chunk = os.read(r, 65536)
            data += chunk
        except BlockingIOError:
            chunk = b""
        text = data.decode("utf-8", "replace")
        m = rx.search(text)
        if m and text.endswith("\n"):
            return m, text
        if time.monotonic() >= deadline:
            return None, text
        if not chunk:
            time.sleep(0.02)


@epmdc(timeout=60)
def test_foreground_stderr_pipe_nobody_reads_delays_no_lookup():
    proc, port, r, w = foreground_with_pipe()
    try:
        worst, rounds, nodes, err = churn(port, STALL_S)
        sys.stderr.write(f"# stalled stderr: {rounds} rounds, {nodes} nodes, "
                         f"slowest lookup {worst * 1000:.1f} ms\n")
        check_prompt(worst, rounds, nodes, err, "stalled stderr pipe")
        m, text = read_pipe_until(r, DROPPED_RE, 5.0)
        check(m and int(m.group(1)) > 0,
              f"no 'dropped N messages' line: ...{text[-500:]!r}")
        bad = [ln for ln in text.splitlines() if not ln.startswith("epmd-c: ")]
        eq(bad, [], "lines not in the 'epmd-c: ' form")
        check("epmd-c: listening on 127.0.0.1:" in text, text[:300])
    finally:
        proc.kill()
        proc.wait()
        os.close(r)
        os.close(w)


@epmdc
def test_foreground_leaves_the_shared_stderr_blocking():
    proc, port, r, w = foreground_with_pipe()
    try:
        s, _ = et.register_ok(port, "flagnode")
        s.close()
        m, text = read_pipe_until(r, re.compile("unregistered flagnode"), 3.0)
        check(m, f"no lines on stderr: {text!r}")
        with open(f"/proc/{proc.pid}/fdinfo/2") as f:
            flags = int(re.search(r"^flags:\s+(\d+)", f.read(), re.M)[1], 8)
        eq(flags & O_NONBLOCK_FLAG, 0, "O_NONBLOCK on the daemon's fd 2")
        check(os.get_blocking(w), "the pipe shared with the daemon became "
              "non-blocking")
    finally:
        proc.kill()
        proc.wait()
        os.close(r)
        os.close(w)


if __name__ == "__main__":
    et.run_tests()
