#!/usr/bin/env python3
"""epmd-c under systemd: socket activation and sd_notify (PROTOCOL.md 5, 8.4).

The daemon is started the way systemd starts it, by
`systemd-socket-activate` (which binds the sockets, waits for the first
client, then execs `epmd-c -systemd` with LISTEN_FDS/LISTEN_PID), or by
tests/systemd/listen_exec.py, a small launcher that does the same without
waiting and with explicit IPV6_V6ONLY settings (dual-stack, 16 and 17
sockets, a socket that is not listening).

Every notification is caught by a NotifySink: an AF_UNIX datagram socket
bound in a temporary directory and handed over as NOTIFY_SOCKET. It
records each message with the sender's pid (SO_PASSCRED).

Journal logging (EPMD_NODE, EPMD_PORT, EPMD_PEER) needs journald and is not
tested here. Every process started is killed by pid at exit.
"""

import atexit
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import epmdtest as et  # noqa: E402
import netns  # noqa: E402

SSA = shutil.which("systemd-socket-activate") or \
    "/usr/bin/systemd-socket-activate"
LAUNCHER = os.path.join(HERE, "..", "systemd", "listen_exec.py")
ERL = shutil.which("erl")
READY = "READY=1\nSTATUS=Processing port mapping requests...\nMAINPID={pid}"
EXITED_0 = "STATUS=Exited.\nERRNO=0"
SCM_CREDENTIALS = 2
SANITIZER_VARS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")

_procs = []     # every Popen started here; killed at exit


@atexit.register
def _kill_leftovers():
    for p in _procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass


def need_ssa():
    if not os.access(SSA, os.X_OK):
        raise et.Skip(f"{SSA} is not installed")


def need_daemon():
    if not os.access(et.EPMD_BIN, os.X_OK):
        raise AssertionError(f"no daemon binary at {et.EPMD_BIN}")


def epmd_c_only():
    """The reference epmd has no NAMES-port, dual-stack or STOPPING fixes."""
    et.epmdc_only("epmd-c behaviour (PROTOCOL 8.4), not the reference's")


class NotifySink:
    """A test NOTIFY_SOCKET that records (time, pid, text) per message."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="epmdc-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        deadline = time.monotonic() + 120       # bounded, whatever happens
        while self.running and time.monotonic() < deadline:
            try:
                data, anc, _, _ = self.sock.recvmsg(
                    65536, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            except OSError:
                break
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == SCM_CREDENTIALS \
                        and len(cdata) >= 12:
                    pid = struct.unpack("iII", cdata[:12])[0]
            with self.lock:
                self.messages.append((time.monotonic(), pid,
                                      data.decode("utf-8", "replace")))

    def texts(self):
        with self.lock:
            return [m[2] for m in self.messages]

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def wait_for(self, pred, timeout=5.0):
        """The first message whose text satisfies pred, or None."""
        def find():
            for m in self.snapshot():
                if pred(m[2]):
                    return m
            return None
        return et.eventually(find, timeout)

    def close(self):
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def lines_of(text):
    return text.split("\n")


class Activated(et.Daemon):
    """epmd-c -systemd started by socket activation.

    listen: specs such as "127.0.0.1:P", "[::1]:P", "[::]:P" (for
    listen_exec.py also "/dual" and "/nolisten" suffixes).
    via: "ssa" (systemd-socket-activate) or "launcher" (listen_exec.py).
    env: variables for the daemon (its whole environment under ssa, apart
    from LISTEN_*). watchdog_pid_self: WATCHDOG_PID = the daemon's pid."""

    def __init__(self, listen, args=(), env=None, notify=None, via="ssa",
                 watchdog_pid_self=False):
        need_daemon()
        env = dict(env or {})
        # systemd-socket-activate passes only -E variables: keep the
        # sanitizer settings of an ASan run (tests/run sets them).
        for k in SANITIZER_VARS:
            if k in os.environ and k not in env:
                env[k] = os.environ[k]
        if notify is not None:
            env["NOTIFY_SOCKET"] = notify.path
        daemon = [et.EPMD_BIN, "-systemd", *args]
        if via == "ssa":
            need_ssa()
            argv = [SSA]
            for spec in listen:
                argv += ["-l", spec]
            for k, v in env.items():
                argv += ["-E", f"{k}={v}"]
            if watchdog_pid_self:
                # exec keeps the shell's pid: $$ is the daemon's pid.
                argv = ["sh", "-c", 'exec "$0" -E WATCHDOG_PID=$$ "$@"'] + argv
            argv += daemon
        else:
            argv = [sys.executable, LAUNCHER]
            for spec in listen:
                argv += ["-l", spec]
            for k, v in env.items():
                argv += ["-E", f"{k}={v}"]
            if watchdog_pid_self:
                argv.append("--watchdog-pid-self")
            argv += ["--"] + daemon
        self.argv = argv
        self.errfile = tempfile.TemporaryFile()
        penv = dict(os.environ)
        for k in list(penv):
            if k.startswith(("LISTEN_", "WATCHDOG_", "ERL_EPMD_")) or \
                    k == "NOTIFY_SOCKET":
                del penv[k]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.errfile,
                                     stderr=self.errfile, env=penv)
        _procs.append(self.proc)

    def trigger(self, port, host="127.0.0.1", timeout=5.0):
        """Connect once (this starts the daemon under ssa); wait for the
        listener to exist first."""
        if not et.wait_port(port, host, timeout):
            raise AssertionError(f"nothing listens on {host}:{port}: "
                                 f"{self.stderr()}")

    # pid, alive, stderr, wait, stop and the context manager: et.Daemon's.


def stop_cleanly(d):
    """SIGTERM; epmd-c exits 0 (PROTOCOL 8.4), the reference dies of it."""
    rc = d.stop()
    if not et.REFERENCE_MODE:
        et.eq(rc, 0, "exit status after SIGTERM")


def names_header(reply):
    et.check(len(reply) >= 4, f"short NAMES reply {reply!r}")
    return struct.unpack(">I", reply[:4])[0]


def expect_registered(reply, what=""):
    et.check(len(reply) == 6 and reply[:2] == b"\x76\x00",
             f"{what}: ALIVE2 not accepted: {reply!r}")


def kill_request(port, host="127.0.0.1", source=None):
    with et.connect(port, host, source=source) as s:
        s.sendall(et.frame(b"k"))
        return et.read_until_close(s)


def bindv6only():
    try:
        with open("/proc/sys/net/ipv6/bindv6only") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def free_ports(n):
    """n distinct ports free on loopback right now."""
    ports = []
    for _ in range(10 * n):
        p = et.free_port()
        if p not in ports:
            ports.append(p)
        if len(ports) == n:
            return ports
    raise RuntimeError("not enough free ports")


# --- listening sockets --------------------------------------------------

@et.test
def test_one_ipv4_socket_serves_register_lookup_names():
    port = et.free_port()
    with Activated([f"127.0.0.1:{port}"]) as d:
        d.trigger(port)
        s, reply = et.register(port, "sdfour", port=5001)
        with s:
            expect_registered(reply)
            pp = et.port_please(port, "sdfour")
            et.eq(pp[:4], b"\x77\x00\x13\x89", "PORT2_RESP")
            et.eq(et.port_please(port, "nothere"), b"\x77\x01", "unknown")
            n = et.names(port)
            if not et.REFERENCE_MODE:
                et.eq(names_header(n), port, "NAMES header")
            et.eq(n[4:], b"name sdfour at port 5001\n", "NAMES body")
        et.check(d.alive(), f"daemon died: {d.stderr()}")
        # Only systemd's socket: no listener of its own on ::1.
        try:
            with et.connect(port, "::1", timeout=1):
                raise AssertionError("epmd-c listens on [::1] by itself")
        except ConnectionRefusedError:
            pass
        stop_cleanly(d)


@et.test
def test_address_option_is_ignored_under_systemd():
    port = et.free_port()
    with Activated([f"127.0.0.1:{port}"],
                   args=("-address", "127.0.0.3")) as d:
        d.trigger(port)
        n = et.names(port)
        et.check(len(n) == 4, f"NAMES reply {n!r}")
        try:
            with et.connect(port, "127.0.0.3", timeout=1):
                raise AssertionError("-address was used under -systemd")
        except ConnectionRefusedError:
            pass
        et.check(d.alive(), f"daemon died: {d.stderr()}")


@et.test
def test_names_header_is_the_reached_port_not_4369():
    epmd_c_only()
    port = et.free_port()
    # No ERL_EPMD_PORT: the configured port is 4369, the socket is elsewhere.
    with Activated([f"127.0.0.1:{port}"]) as d:
        d.trigger(port)
        et.eq(names_header(et.names(port)), port, "NAMES header")
        et.eq(names_header(et.request(port, et.frame(b"d"))), port,
              "DUMP header")
    # -port naming another port changes nothing either.
    other = port + 1 if port < 65535 else port - 1
    with Activated([f"127.0.0.1:{port}"], args=("-port", str(other))) as d:
        d.trigger(port)
        et.eq(names_header(et.names(port)), port, "NAMES header, -port")


@et.test
def test_names_header_is_the_reached_port_even_when_config_names_it_mod_65536():
    port = et.free_port()
    # ERL_EPMD_PORT above 65535 names the same 16-bit port. OTP puts the
    # configured value in the header (PROTOCOL 1.8); epmd-c reports the port
    # the client reached (8.4), which is what erl compares against.
    if et.REFERENCE_MODE:
        raise et.Skip("epmd-c behaviour (PROTOCOL.md 8.4)")
    with Activated([f"127.0.0.1:{port}"],
                   env={"ERL_EPMD_PORT": str(port + 65536)}) as d:
        d.trigger(port)
        et.eq(names_header(et.names(port)), port,
              "NAMES header, ERL_EPMD_PORT=port+65536")
    with Activated([f"127.0.0.1:{port}"],
                   args=("-port", str(port + 65536))) as d:
        d.trigger(port)
        et.eq(names_header(et.names(port)), port,
              "NAMES header, -port port+65536")


def dual_stack_scenario(d, port):
    """One dual-stack [::]:port socket: IPv4 peers from 127.0.0.1 and
    127.0.0.2 are local (PROTOCOL 8.4), ::1 too."""
    d.trigger(port)
    socks = []
    try:
        for name, host, src, nport in (
                ("dsone", "127.0.0.1", None, 5101),
                ("dstwo", "127.0.0.1", ("127.0.0.2", 0), 5102),
                ("dsthree", "::1", None, 5103)):
            s = et.connect(port, host, source=src)
            socks.append(s)
            s.sendall(et.frame(et.alive2_body(name, port=nport)))
            expect_registered(et.read_exact(s, 6), f"{name} from {src or host}")
        want = (b"name dsthree at port 5103\nname dstwo at port 5102\n"
                b"name dsone at port 5101\n")
        for host in ("127.0.0.1", "::1"):
            n = et.names(port, host)
            et.eq(names_header(n), port, f"NAMES header via {host}")
            et.eq(n[4:], want, f"NAMES body via {host}")
        with et.connect(port, "127.0.0.1", source=("127.0.0.2", 0)) as s:
            s.sendall(et.frame(b"zdsone"))
            et.eq(et.read_until_close(s)[:4], b"\x77\x00\x13\xed",
                  "PORT_PLEASE2 from 127.0.0.2")
        # DUMP and KILL are for local peers only; 127.0.0.2 gets answers.
        with et.connect(port, "127.0.0.1", source=("127.0.0.2", 0)) as s:
            s.sendall(et.frame(b"d"))
            dump = et.read_until_close(s)
        et.check(b"active name     <dstwo> at port 5102" in dump,
                 f"DUMP from 127.0.0.2: {dump!r}")
        et.eq(kill_request(port, source=("127.0.0.2", 0)), b"NO",
              "KILL from 127.0.0.2 with live nodes")
    finally:
        for s in socks:
            s.close()
    et.check(et.eventually(lambda: et.names(port)[4:] == b""),
             "nodes not unregistered on close")
    et.eq(kill_request(port, source=("127.0.0.2", 0)), b"OK",
          "KILL from 127.0.0.2")
    et.eq(d.wait(), 0, "exit status after KILL")


@et.test
def test_dual_stack_socket_from_systemd_socket_activate():
    epmd_c_only()
    if bindv6only():
        raise et.Skip("net.ipv6.bindv6only=1: [::] is not dual-stack here "
                      "(the launcher variant covers it)")
    port = et.free_port()
    with Activated([f"[::]:{port}"]) as d:
        dual_stack_scenario(d, port)


@et.test
def test_dual_stack_socket_with_v6only_0():
    epmd_c_only()
    port = et.free_port()
    with Activated([f"[::]:{port}/dual"], via="launcher") as d:
        dual_stack_scenario(d, port)


@et.test
def test_dual_stack_socket_remote_peer_is_not_local():
    # The daemon in a network namespace pair (tests/lib/netns.py); the peer
    # reaches the dual-stack socket over IPv4 from 198.51.100.2, which the
    # daemon sees as ::ffff:198.51.100.2: not local.
    with netns.Netns() as ns:
        port = et.free_port()
        with Activated([f"[::]:{port}/dual"], via="launcher") as d:
            d.trigger(port)
            with netns.Remote(ns, port) as peer:
                s, reply = et.register(port, "dslocal", port=5301)
                with s:
                    expect_registered(reply, "local node")
                    # NAMES and PORT_PLEASE2 are answered, ALIVE2 and KILL
                    # closed silently.
                    n = peer.request(et.frame(b"n"))
                    et.eq(n[4:], b"name dslocal at port 5301\n",
                          "remote NAMES")
                    et.eq(peer.request(et.frame(b"zdslocal"))[:4],
                          b"\x77\x00\x14\xb5", "remote PORT_PLEASE2")
                    et.eq(peer.request(et.frame(et.alive2_body("dsremote"))),
                          b"", "remote ALIVE2")
                et.check(et.eventually(lambda: et.names(port)[4:] == b""),
                         "local node not unregistered")
                et.eq(peer.request(et.frame(b"k")), b"", "remote KILL")
            et.check(d.alive(), "a remote KILL stopped the daemon")


@et.test
def test_several_sockets_all_serve():
    p1, p2, p3 = free_ports(3)
    with Activated([f"127.0.0.1:{p1}", f"[::1]:{p2}",
                    f"127.0.0.2:{p3}"]) as d:
        d.trigger(p1)
        regs = []
        try:
            for name, host, port, nport in (("sevone", "127.0.0.1", p1, 5201),
                                            ("sevtwo", "::1", p2, 5202),
                                            ("sevthree", "127.0.0.2", p3,
                                             5203)):
                s, reply = et.register(port, name, host=host, port=nport)
                regs.append(s)
                expect_registered(reply, f"{name} via {host}:{port}")
            want = (b"name sevthree at port 5203\nname sevtwo at port 5202\n"
                    b"name sevone at port 5201\n")
            for host, port in (("127.0.0.1", p1), ("::1", p2),
                               ("127.0.0.2", p3)):
                n = et.names(port, host)
                if not et.REFERENCE_MODE:
                    et.eq(names_header(n), port, f"NAMES header {host}")
                et.eq(n[4:], want, f"NAMES body via {host}:{port}")
                et.eq(et.port_please(port, "sevtwo", host)[:4],
                      b"\x77\x00\x14\x52", f"PORT_PLEASE2 via {host}")
        finally:
            for s in regs:
                s.close()
        et.check(d.alive(), f"daemon died: {d.stderr()}")


@et.test
def test_sixteen_sockets_are_accepted():
    specs = ["127.0.0.1:0"] * 16
    argv = [sys.executable, LAUNCHER, "--print-ports"]
    for s in specs:
        argv += ["-l", s]
    need_daemon()
    errf = tempfile.TemporaryFile()
    p = subprocess.Popen(argv + ["--", et.EPMD_BIN, "-systemd"],
                         stdout=subprocess.PIPE, stderr=errf,
                         stdin=subprocess.DEVNULL)
    _procs.append(p)
    try:
        line = p.stdout.readline().decode()
        et.check(line.startswith("PORTS "), f"launcher said {line!r}")
        ports = [int(x) for x in line.split()[1:]]
        et.eq(len(ports), 16, "ports")
        for port in (ports[0], ports[7], ports[15]):
            n = et.names(port)
            et.check(len(n) == 4, f"NAMES on {port}: {n!r}")
            if not et.REFERENCE_MODE:
                et.eq(names_header(n), port, f"NAMES header on {port}")
        et.check(p.poll() is None, "daemon died")
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=5)
        p.stdout.close()
    if not et.REFERENCE_MODE:
        et.eq(rc, 0, "exit status after SIGTERM")


@et.test
def test_seventeen_sockets_are_refused():
    with NotifySink() as sink:
        with Activated(["127.0.0.1:0"] * 17, via="launcher",
                       notify=sink) as d:
            try:
                rc = d.wait(timeout=5)
            except subprocess.TimeoutExpired:
                raise AssertionError("daemon runs with 17 sockets")
            err = d.stderr()
        et.eq(rc, 1, "exit status")
        if et.REFERENCE_MODE:
            time.sleep(0.3)
            texts = sink.texts()
        else:
            texts = exited_texts(sink)
            et.eq(texts[-1:], ["STATUS=Exited.\nERRNO=1"], "exit message")
        et.check(not any(t.startswith("READY=1") for t in texts),
                 f"READY sent although it failed: {texts!r}")
        et.check(re.search(r"more than 16", err),
                 f"no clear error on stderr: {err!r}")


@et.test
def test_unix_socket_is_refused_as_not_tcp():
    need_daemon()
    if et.REFERENCE_MODE:
        raise et.Skip("epmd-c behaviour: only TCP sockets are taken")
    path = os.path.join(tempfile.mkdtemp(prefix="epmdc-unix-"), "s")
    with Activated([f"unix:{path}"], via="launcher") as d:
        try:
            rc = d.wait(timeout=5)
        except subprocess.TimeoutExpired:
            raise AssertionError("daemon runs on an AF_UNIX socket")
        err = d.stderr()
    et.eq(rc, 1, "exit status")
    et.check("not a listening TCP socket" in err, f"no clear error: {err!r}")


@et.test
def test_daemon_flag_with_systemd_is_refused():
    need_daemon()
    if et.REFERENCE_MODE:
        raise et.Skip("epmd-c behaviour: -daemon would orphan the sockets")
    with Activated(["127.0.0.1:0"], via="launcher",
                   args=("-daemon",)) as d:
        try:
            rc = d.wait(timeout=5)
        except subprocess.TimeoutExpired:
            raise AssertionError("-systemd -daemon was accepted")
        err = d.stderr()
    et.eq(rc, 1, "exit status")
    et.check("cannot be used with -systemd" in err, f"no clear error: {err!r}")


@et.test
def test_no_sockets_exit_1_with_message():
    need_daemon()
    for extra in ({}, {"LISTEN_FDS": "0", "LISTEN_PID": "1"},
                  # LISTEN_PID of another process: the fds are not ours.
                  {"LISTEN_FDS": "1", "LISTEN_PID": "1"}):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LISTEN_", "ERL_EPMD_"))
               and k != "NOTIFY_SOCKET"}
        env.update(extra)
        p = subprocess.run([et.EPMD_BIN, "-systemd"], env=env,
                           capture_output=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        err = p.stderr.decode("utf-8", "replace")
        et.eq(p.returncode, 1, f"exit status with {extra}")
        et.check("systemd provides no sockets" in err,
                 f"message with {extra}: stderr {err!r}")


@et.test
def test_socket_that_is_not_listening_is_refused():
    epmd_c_only()
    with Activated(["127.0.0.1:0/nolisten"], via="launcher") as d:
        try:
            rc = d.wait(timeout=5)
        except subprocess.TimeoutExpired:
            raise AssertionError("daemon runs on a socket that does not "
                                 "listen")
        et.eq(rc, 1, "exit status")
        et.check(re.search(r"listen", d.stderr()),
                 f"no clear error: {d.stderr()!r}")


# --- notifications --------------------------------------------------------

def exited_texts(sink):
    """All messages, once the exit message (always the last one sent) has
    been received: the daemon may exit before the sink reads its queue."""
    sink.wait_for(lambda t: t.startswith("STATUS=Exited."), timeout=3)
    return sink.texts()


def wait_ready(sink, d):
    m = sink.wait_for(lambda t: t.startswith("READY=1"), timeout=5)
    et.check(m is not None, f"no READY=1; got {sink.texts()!r}; daemon "
             f"stderr {d.stderr()!r}")
    return m


@et.test
def test_notify_ready_status_and_mainpid():
    port = et.free_port()
    with NotifySink() as sink, \
            Activated([f"127.0.0.1:{port}"], notify=sink) as d:
        d.trigger(port)
        _, pid, text = wait_ready(sink, d)
        et.eq(text, READY.format(pid=d.pid), "READY message")
        et.eq(pid, d.pid, "sender pid")
        # The fd store gets the saved-state memfds first (epmd-c(8),
        # "Restarts without losing nodes"); READY is the first of the rest.
        et.eq([t for t in sink.texts() if not t.startswith("FDSTORE")][0],
              text, "first message")
        stop_cleanly(d)


@et.test
def test_notify_status_reports_node_count():
    epmd_c_only()
    port = et.free_port()
    count_re = r"^STATUS=[^\n]*\b{n} nodes? registered"
    with NotifySink() as sink, \
            Activated([f"127.0.0.1:{port}"], notify=sink) as d:
        d.trigger(port)
        wait_ready(sink, d)
        s1, r1 = et.register(port, "stone")
        expect_registered(r1)
        et.check(sink.wait_for(lambda t: re.match(count_re.format(n=1), t),
                               timeout=3),
                 f"no STATUS with 1 node: {sink.texts()!r}")
        s2, r2 = et.register(port, "sttwo")
        expect_registered(r2)
        et.check(sink.wait_for(lambda t: re.match(count_re.format(n=2), t),
                               timeout=3),
                 f"no STATUS with 2 nodes: {sink.texts()!r}")
        s1.close()
        s2.close()
        et.check(sink.wait_for(lambda t: re.match(count_re.format(n=0), t),
                               timeout=3),
                 f"no STATUS with 0 nodes: {sink.texts()!r}")


@et.test
def test_notify_status_at_most_once_per_second():
    epmd_c_only()
    port = et.free_port()
    with NotifySink() as sink, \
            Activated([f"127.0.0.1:{port}"], notify=sink) as d:
        d.trigger(port)
        t_ready = wait_ready(sink, d)[0]
        # Register and unregister non-stop for 2.6 s.
        end = time.monotonic() + 2.6
        for i in range(400):
            if time.monotonic() >= end:
                break
            s, reply = et.register(port, f"churn{i}")
            expect_registered(reply)
            s.close()
            time.sleep(0.01)
        time.sleep(1.2)     # the last update
        upd = [m for m in sink.snapshot()
               if m[2].startswith("STATUS=") and m[0] > t_ready]
        et.check(2 <= len(upd) <= 4,
                 f"{len(upd)} STATUS updates in 3.8 s: {upd!r}")
        gaps = [b[0] - a[0] for a, b in zip(upd, upd[1:])]
        et.check(all(g >= 0.9 for g in gaps), f"STATUS gaps {gaps!r}")
        et.check(re.match(r"^STATUS=[^\n]*\b0 nodes? registered", upd[-1][2]),
                 f"last STATUS {upd[-1][2]!r}")


@et.test
def test_notify_sigterm_sends_stopping_then_exited():
    epmd_c_only()
    port = et.free_port()
    with NotifySink() as sink, \
            Activated([f"127.0.0.1:{port}"], notify=sink) as d:
        d.trigger(port)
        wait_ready(sink, d)
        s, reply = et.register(port, "termnode")
        with s:
            expect_registered(reply)
            d.proc.send_signal(signal.SIGTERM)
            et.eq(d.wait(), 0, "exit status after SIGTERM")
            et.check(et.is_closed(s), "registered node not closed")
        texts = exited_texts(sink)
        stop = [i for i, t in enumerate(texts)
                if "STOPPING=1" in lines_of(t)]
        et.check(stop, f"no STOPPING=1: {texts!r}")
        et.eq(texts[-1], EXITED_0, f"last message (all: {texts!r})")
        et.check(stop[0] < len(texts) - 1, f"STOPPING after exit: {texts!r}")
        et.check(all(m[1] == d.pid for m in sink.snapshot()),
                 "a message from another pid")


@et.test
def test_notify_kill_sends_exited_errno_0():
    port = et.free_port()
    with NotifySink() as sink, \
            Activated([f"127.0.0.1:{port}"], notify=sink) as d:
        d.trigger(port)
        wait_ready(sink, d)
        et.eq(kill_request(port), b"OK", "KILL reply")
        et.eq(d.wait(), 0, "exit status after KILL")
        texts = exited_texts(sink)
        et.eq(texts[-1], EXITED_0, f"last message (all: {texts!r})")


@et.test
def test_notify_watchdog_pings():
    epmd_c_only()
    port = et.free_port()
    with NotifySink() as sink, \
            Activated([f"127.0.0.1:{port}"], notify=sink,
                      env={"WATCHDOG_USEC": "200000"}) as d:
        d.trigger(port)
        t0 = wait_ready(sink, d)[0]
        time.sleep(1.05)
        pings = [m[0] for m in sink.snapshot()
                 if m[0] >= t0 and m[2] == "WATCHDOG=1"]
        # Every 100 ms: about 10 in a second; allow a loaded machine.
        et.check(6 <= len(pings) <= 14, f"{len(pings)} pings in 1 s")
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        et.check(max(gaps) < 0.35, f"ping gaps {gaps!r}")
        et.check(min(gaps) > 0.05, f"ping gaps {gaps!r}")


@et.test
def test_notify_watchdog_pid_selects_the_process():
    epmd_c_only()
    port = et.free_port()
    # WATCHDOG_PID naming this very process: pings.
    with NotifySink() as sink, \
            Activated([f"127.0.0.1:{port}"], notify=sink,
                      env={"WATCHDOG_USEC": "200000"},
                      watchdog_pid_self=True) as d:
        d.trigger(port)
        wait_ready(sink, d)
        et.check(sink.wait_for(lambda t: t == "WATCHDOG=1", timeout=1),
                 f"no ping with WATCHDOG_PID=own pid: {sink.texts()!r}")
    # WATCHDOG_PID naming another process: no pings.
    port = et.free_port()
    with NotifySink() as sink, \
            Activated([f"127.0.0.1:{port}"], notify=sink,
                      env={"WATCHDOG_USEC": "200000",
                           "WATCHDOG_PID": "1"}) as d:
        d.trigger(port)
        wait_ready(sink, d)
        time.sleep(0.5)
        et.check("WATCHDOG=1" not in sink.texts(),
                 f"pinged for pid 1: {sink.texts()!r}")


@et.test
def test_no_notifications_without_systemd_flag():
    need_daemon()
    for how in ("kill", "sigterm"):
        with NotifySink() as sink:
            env = {"NOTIFY_SOCKET": sink.path, "WATCHDOG_USEC": "200000"}
            with et.Daemon(env=env) as d:
                s, reply = et.register(d.port, "quietnode")
                expect_registered(reply)
                s.close()
                et.check(et.eventually(lambda: et.names(d.port)[4:] == b""),
                         "node not unregistered")
                time.sleep(1.2)        # a STATUS update would be due
                if how == "kill":
                    et.eq(kill_request(d.port), b"OK", "KILL reply")
                else:
                    d.proc.send_signal(signal.SIGTERM)
                d.wait()
            time.sleep(0.3)
            et.eq(sink.texts(), [], f"messages without -systemd ({how})")


@et.test
def test_notify_sigint_and_sighup_stop_like_sigterm():
    epmd_c_only()
    for sig in (signal.SIGINT, signal.SIGHUP):
        port = et.free_port()
        with NotifySink() as sink, \
                Activated([f"127.0.0.1:{port}"], notify=sink) as d:
            d.trigger(port)
            wait_ready(sink, d)
            d.proc.send_signal(sig)
            et.eq(d.wait(), 0, f"exit status after {sig.name}")
            texts = exited_texts(sink)
            et.check(any("STOPPING=1" in lines_of(t) for t in texts),
                     f"no STOPPING=1 after {sig.name}: {texts!r}")
            et.eq(texts[-1], EXITED_0, f"last message after {sig.name}")


@et.test
def test_notify_abstract_socket():
    need_daemon()
    name = f"epmdc-notify-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    port = et.free_port()
    try:
        with Activated([f"127.0.0.1:{port}"],
                       env={"NOTIFY_SOCKET": "@" + name}) as d:
            d.trigger(port)
            msg = sock.recv(4096).decode()
            while msg.startswith("FDSTORE"):    # the saved-state memfds
                msg = sock.recv(4096).decode()
            et.eq(msg, READY.format(pid=d.pid), "READY via @socket")
            et.eq(kill_request(port), b"OK", "KILL")
            et.eq(d.wait(), 0, "exit status")
            et.eq(sock.recv(4096).decode(), EXITED_0, "last message")
    finally:
        sock.close()


@et.test
def test_unusable_notify_socket_or_watchdog_does_not_stop_service():
    for env in ({"NOTIFY_SOCKET": "/nonexistent/epmdc-notify"},
                {"NOTIFY_SOCKET": "relative-path"},
                {"NOTIFY_SOCKET": "/nonexistent/epmdc-notify",
                 "WATCHDOG_USEC": "100000"},
                {"WATCHDOG_USEC": "not-a-number"}):
        port = et.free_port()
        with Activated([f"127.0.0.1:{port}"], env=env) as d:
            d.trigger(port)
            s, reply = et.register(port, "survivor")
            with s:
                expect_registered(reply, f"with {env}")
                time.sleep(0.3)     # pings and a STATUS update would fail
                et.eq(et.names(port)[4:], b"name survivor at port 5001\n",
                      f"NAMES with {env}")
            et.check(d.alive(), f"daemon died with {env}")
            stop_cleanly(d)
    # Garbage WATCHDOG_USEC: no pings, still READY.
    port = et.free_port()
    with NotifySink() as sink, \
            Activated([f"127.0.0.1:{port}"], notify=sink,
                      env={"WATCHDOG_USEC": "not-a-number"}) as d:
        d.trigger(port)
        wait_ready(sink, d)
        time.sleep(0.3)
        et.check("WATCHDOG=1" not in sink.texts(),
                 f"pinged with a bad WATCHDOG_USEC: {sink.texts()!r}")


# --- a real Erlang node ------------------------------------------------

@et.test
def test_erlang_node_registers_through_activated_daemon():
    if ERL is None:
        raise et.Skip("erl is not installed")
    port = et.free_port()
    name = f"sdx{os.getpid()}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ERL_", "LISTEN_", "WATCHDOG_"))
           and k != "NOTIFY_SOCKET"}
    env.update({"ERL_EPMD_PORT": str(port), "ERL_CRASH_DUMP_SECONDS": "0"})
    tmp = tempfile.mkdtemp(prefix="epmdc-erl-")
    # The daemon gets no ERL_EPMD_PORT: it learns its port from the socket.
    with Activated([f"127.0.0.1:{port}", f"[::1]:{port}"]) as d:
        node = subprocess.Popen(
            [ERL, "-sname", name, "-setcookie", "c", "-noshell", "-noinput",
             "-start_epmd", "false"],
            env=env, cwd=tmp, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _procs.append(node)
        try:
            line = re.compile(rb"name " + name.encode() + rb" at port (\d+)\n")

            def listed():
                try:
                    return line.search(et.names(port))
                except OSError:
                    return None
            m = et.eventually(listed, timeout=20, interval=0.2)
            et.check(m, f"node not listed; daemon alive={d.alive()} "
                     f"stderr={d.stderr()!r}")
            nport = int(m.group(1))
            pp = et.port_please(port, name)
            et.eq(pp[:4], b"\x77\x00" + struct.pack(">H", nport),
                  "PORT2_RESP")
            # erl's own names/0 accepts the header only if it equals its
            # epmd port (PROTOCOL 6, 8.4).
            if not et.REFERENCE_MODE:
                r = subprocess.run(
                    [ERL, "-noshell", "-start_epmd", "false", "-eval",
                     'io:format("~p~n", [net_adm:names()]), halt().'],
                    env=env, cwd=tmp, capture_output=True, timeout=30,
                    stdin=subprocess.DEVNULL)
                out = r.stdout.decode("utf-8", "replace")
                et.check(f'{{"{name}",{nport}}}' in out,
                         f"net_adm:names() said {out!r} {r.stderr!r}")
        finally:
            node.kill()
            node.wait(timeout=10)
            node.stdout.close()
            shutil.rmtree(tmp, ignore_errors=True)
        et.check(et.eventually(lambda: name.encode() not in et.names(port)),
                 "killed node still listed")


if __name__ == "__main__":
    et.run_tests()
