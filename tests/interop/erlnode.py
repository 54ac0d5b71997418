"""Helpers for driving real Erlang/OTP nodes against an epmd daemon.

A Node is one `erl` process (started with -noshell -noinput and, unless
asked otherwise, -start_epmd false) whose environment points it at a
daemon through ERL_EPMD_PORT. Code passed as `body` runs in the node via
-eval, after a short prelude that binds a few helper funs:

    Host          the host part of this node's name
    N(S)          the node atom S@Host
    Out(K, V)     print "@@K <V on one line>" on stdout
    Ping(Nd, I)   net_adm:ping, retried up to I times, 100 ms apart
    R(Nd, M, F, A)  rpc:call with a 5 s timeout

The Python side reads those "@@" lines back with Node.result(key).
Every process started here is recorded and killed by pid at exit, even when
a test fails half-way.
"""

import atexit
import glob
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import epmdtest  # noqa: E402

ERL = shutil.which("erl") or "/usr/bin/erl"
COOKIE = "epmdcinteropcookie"


def find_erl_call():
    """The erl_call binary from the newest installed erl_interface."""
    hits = sorted(glob.glob("/usr/lib/erlang/lib/erl_interface-*/bin/erl_call"))
    return hits[-1] if hits else None


ERL_CALL = find_erl_call()

_seq = itertools.count(1)
_live = []          # Popen objects still to be killed at exit
_extra_pids = []    # (pid, check) pairs of daemons found via /proc


def unique(base):
    """A node name no other run or test uses: base + our pid + a counter."""
    return f"{base}{os.getpid()}n{next(_seq)}"


def node_env(port, extra=None):
    """Environment for erl: pointed at the daemon on port, nothing inherited
    that could change how the node starts, and no crash dumps in the cwd."""
    e = dict(os.environ)
    for k in ("ERL_EPMD_PORT", "ERL_EPMD_ADDRESS",
              "ERL_EPMD_RELAXED_COMMAND_CHECK", "ERL_FLAGS", "ERL_AFLAGS",
              "ERL_ZFLAGS", "ERL_EPMD_DIST_HIGH", "ERL_EPMD_DIST_LOW"):
        e.pop(k, None)
    if port is not None:
        e["ERL_EPMD_PORT"] = str(port)
    e["ERL_CRASH_DUMP_SECONDS"] = "0"
    if extra:
        e.update(extra)
    return e


PRELUDE = r'''
Host = lists:last(string:split(atom_to_list(node()), "@")),
N = fun(S) -> list_to_atom(S ++ "@" ++ Host) end,
Out = fun(K, V) -> io:format("@@~s ~0p~n", [K, V]) end,
Ping = fun Loop(Nd, 0) -> net_adm:ping(Nd);
           Loop(Nd, I) -> case net_adm:ping(Nd) of
                              pong -> pong;
                              pang -> timer:sleep(100), Loop(Nd, I - 1)
                          end
       end,
R = fun(Nd, M, F, A) -> rpc:call(Nd, M, F, A, 5000) end,
'''


def eval_code(body, halt):
    """The -eval string: prelude, then body guarded so that a crash is
    reported as "@@crash ..." instead of a crash dump, then maybe halt."""
    code = PRELUDE + "try\n" + body + "\ncatch C:E:S -> Out(\"crash\", {C, E, S}) end"
    if halt:
        code += ",\nerlang:halt(0)."
    else:
        code += "."
    return code


class Node:
    """One erl process; its stdout and stderr are collected line by line."""

    def __init__(self, name, port, body=None, halt=False, long_names=False,
                 hidden=False, args=(), start_epmd=False, env=None,
                 cookie=COOKIE):
        argv = [ERL, "-name" if long_names else "-sname", name,
                "-setcookie", cookie, "-noshell", "-noinput"]
        if not start_epmd:
            argv += ["-start_epmd", "false"]
        if hidden:
            argv.append("-hidden")
        argv += list(args)
        argv += ["-eval", eval_code(body or 'Out("node", node())', halt)]
        self.name = name
        self.argv = argv
        self._lines = []
        self._cond = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT,
                                     env=node_env(port, env))
        _live.append(self.proc)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            with self._cond:
                self._lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def output(self):
        """Everything the node printed so far."""
        with self._cond:
            return self.output_locked()

    def results(self):
        """The "@@key value" lines printed so far, as a dict of strings."""
        with self._cond:
            return self.results_locked()

    def result(self, key, timeout=15.0):
        """Wait for "@@key ..." and return its value; fail with the node's
        output if it does not come (or the node printed @@crash)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                res = self.results_locked()
                if key in res:
                    return res[key]
                if "crash" in res:
                    raise AssertionError(
                        f"node {self.name} crashed: {res['crash']}\n{self.output_locked()}")
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    if self._eof:
                        try:
                            self.proc.wait(timeout=2)
                        except subprocess.TimeoutExpired:
                            pass
                    raise AssertionError(
                        f"node {self.name}: no @@{key} within {timeout}s "
                        f"(exit {self.proc.poll()}); output:\n{self.output_locked()}")
                self._cond.wait(min(left, 0.2))

    def results_locked(self):
        out = {}
        for line in self._lines:
            if line.startswith("@@"):
                key, _, value = line[2:].partition(" ")
                out[key] = value
        return out

    def output_locked(self):
        return "\n".join(self._lines)

    def wait_exit(self, timeout=15.0):
        """Wait for the process to end; returns its status. The reader gets
        a moment to collect the last lines."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"node {self.name} did not exit within {timeout}s; output:\n"
                f"{self.output()}")
        self._reader.join(timeout=2.0)
        return rc

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGKILL the node by pid (its erl_child_setup follows it)."""
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._reader.join(timeout=2.0)
        if self.proc in _live and self.proc.poll() is not None:
            _live.remove(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def run_node(name, port, body, timeout=20.0, **kw):
    """A one-shot node: run body, halt; returns the finished Node (its
    results() and output() stay readable). Killed if it overruns."""
    node = Node(name, port, body=body, halt=True, **kw)
    try:
        node.wait_exit(timeout)
    finally:
        node.kill()
    return node


def erl_string(s):
    """s as an Erlang string literal (names here are plain ASCII)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def daemon_names(port, host="127.0.0.1"):
    """{name: port} as the daemon reports it right now."""
    _, entries = epmdtest.parse_names(epmdtest.names(port, host))
    return {name.decode("utf-8", "replace"): p for name, p in entries}


def wait_registered(port, name, timeout=10.0, host="127.0.0.1"):
    """Wait until the daemon lists name; returns its distribution port."""
    def look():
        try:
            return daemon_names(port, host).get(name)
        except OSError:
            return None
    got = epmdtest.eventually(look, timeout=timeout, interval=0.1)
    if not got:
        raise AssertionError(f"{name} not registered on port {port} within {timeout}s")
    return got


def parse_erl_names(value):
    """The printed value of net_adm:names() → {name: port}."""
    if not value.startswith("{ok,"):
        raise AssertionError(f"net_adm:names() returned {value}")
    return {n: int(p) for n, p in re.findall(r'\{"([^"]*)",(\d+)\}', value)}


def atom_text(value):
    """A printed atom without its quotes."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return value


# --- sockets of processes, from /proc (stdlib only) ---

def _decode_proc_addr(text, v6):
    addr, port = text.split(":")
    raw = bytes.fromhex(addr)
    if v6:
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
        host = socket.inet_ntop(socket.AF_INET6, raw)
    else:
        host = socket.inet_ntop(socket.AF_INET, raw[::-1])
    return host, int(port, 16)


def tcp_sockets():
    """Every TCP socket the kernel shows: dicts with v6, local, remote,
    state (hex string: 01 established, 0A listen) and inode."""
    out = []
    for path, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            with open(path) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10:
                continue
            out.append({"v6": v6,
                        "local": _decode_proc_addr(parts[1], v6),
                        "remote": _decode_proc_addr(parts[2], v6),
                        "state": parts[3],
                        "inode": parts[9]})
    return out


def socket_inodes(pid):
    """Inodes of the sockets pid has open (empty if it is gone)."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", link)
        if m:
            inodes.add(m.group(1))
    return inodes


def listeners_on(port):
    """(host, inode) of every listening TCP socket on port."""
    return [(s["local"][0], s["inode"]) for s in tcp_sockets()
            if s["state"] == "0A" and s["local"][1] == port]


def pids_with_inode(inode):
    """Pids (readable by us) holding a socket with this inode."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit() and inode in socket_inodes(int(d)):
            pids.append(int(d))
    return pids


def pid_running(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def pid_exe(pid):
    try:
        return os.path.realpath(f"/proc/{pid}/exe")
    except OSError:
        return None


def pid_environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def adopt_pid(pid, check):
    """Record a process we started indirectly (a -daemon epmd), so that it
    is SIGTERMed at exit if still running and check(pid) still holds."""
    _extra_pids.append((pid, check))


def terminate_pid(pid, check, timeout=5.0):
    """SIGTERM then SIGKILL pid, but only while check(pid) says it is ours."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not pid_running(pid) or not check(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        epmdtest.eventually(lambda: not pid_running(pid), timeout=timeout)


def cleanup():
    """Kill every node and adopted daemon that is still running."""
    for p in list(_live):
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=5)
            except Exception:
                pass
        _live.remove(p)
    for pid, check in list(_extra_pids):
        try:
            terminate_pid(pid, check)
        except Exception:
            pass
        _extra_pids.remove((pid, check))


atexit.register(cleanup)


PING_LOOP = '''
A = N(%s),
Loop = fun L(0, Acc) -> Acc;
           L(K, {P, PF, NF}) ->
             erlang:disconnect_node(A),
             P1 = case net_adm:ping(A) of pong -> P + 1; _ -> P end,
             PF1 = case net_adm:ping(A) of pong -> PF; _ -> PF + 1 end,
             NF1 = case net_adm:names() of {ok, _} -> NF; _ -> NF + 1 end,
             timer:sleep(%d),
             L(K - 1, {P1, PF1, NF1})
       end,
Out("creation", R(A, erlang, system_info, [creation])),
{Pongs, PingFails, NamesFails} = Loop(%d, {0, 0, 0}),
Out("pongs", Pongs), Out("pingfails", PingFails),
Out("namesfails", NamesFails),
Out("creation_after", R(A, erlang, system_info, [creation]))'''


def ping_loop(node, rounds, sleep_ms):
    """An erl body that pings node and asks net_adm:names() rounds times,
    sleep_ms apart, and prints its creation before and after with the
    pongs, ping failures and names() failures (for restart tests)."""
    return PING_LOOP % (erl_string(node), sleep_ms, rounds)
