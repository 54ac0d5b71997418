#!/usr/bin/env python3
"""Restarts without losing nodes, without systemd: SIGUSR2 and the handover.

SIGUSR2 makes the daemon re-execute its binary, handing over listeners,
node connections and the saved registry; these tests hold 500 registered
nodes and a client that looks names up without pause through two upgrades
in a row, then check that nothing was lost. A broken new binary (missing,
failing, hanging, or unable to read the state) must leave the old daemon
serving, unchanged. The startup side of the handover (the descriptors
systemd's fd store gives back) is driven by tests/integration/
handover_exec.py with blobs written by tests/lib/statefmt.py, an encoder
independent of src/state.c: a good blob is restored, a corrupt one leaves
the registry empty and the orphaned node connections closed.

EPMD_C_EXEC (documented in epmd-c(8)) points SIGUSR2 at another binary.
"""

import os
import re
import select
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
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
import epmdtest as et  # noqa: E402
import erlnode  # noqa: E402
import statefmt  # noqa: E402

HANDOVER_EXEC = os.path.join(HERE, "handover_exec.py")
NODES = 500


def note(msg):
    sys.stderr.write(f"# {msg}\n")
    sys.stderr.flush()


def creation_of(reply):
    """The creation in an ALIVE2 'v' reply, or None if it is not a success."""
    if len(reply) != 6 or reply[0] != 118 or reply[1] != 0:
        return None
    return struct.unpack(">I", reply[2:6])[0]


def listed(port):
    """{name: port} from NAMES."""
    raw = et.names(port)
    out = {}
    for line in raw[4:].decode("utf-8", "replace").splitlines():
        m = re.match(r"name (.*) at port (\d+)$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def pid_alive(pid):
    """Is pid a live process (not a zombie)?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def all_open(socks, timeout=0.3):
    """Names whose socket the daemon closed (readable = EOF or data)."""
    closed = []
    items = list(socks.items())
    for i in range(0, len(items), 200):
        chunk = dict(items[i:i + 200])
        r, _, _ = select.select(list(chunk.values()), [], [], timeout)
        for s in r:
            closed.extend(n for n, x in chunk.items() if x is s)
    return closed


class Lookups(threading.Thread):
    """One client looking names up without pause; bounded in time and count."""

    def __init__(self, port, names, limit=300000, seconds=120):
        super().__init__(daemon=True)
        self.port, self.names = port, list(names)
        self.limit, self.seconds = limit, seconds
        self.ok = self.failed = 0
        self.failures = []
        self.max_latency = 0.0
        self.stop_flag = threading.Event()

    def run(self):
        t_end = time.monotonic() + self.seconds
        i = 0
        while not self.stop_flag.is_set() and i < self.limit and \
                time.monotonic() < t_end:
            name, port = self.names[i % len(self.names)]
            i += 1
            t0 = time.monotonic()
            try:
                r = et.request(self.port, et.frame(b"z" + name.encode()),
                               timeout=10)
                good = len(r) >= 4 and r[0] == 119 and r[1] == 0 and \
                    struct.unpack(">H", r[2:4])[0] == port
            except OSError as e:
                r, good = repr(e), False
            lat = time.monotonic() - t0
            self.max_latency = max(self.max_latency, lat)
            if good:
                self.ok += 1
            else:
                self.failed += 1
                if len(self.failures) < 5:
                    self.failures.append((name, r))

    def stop(self):
        self.stop_flag.set()
        self.join(30)

    def summary(self):
        return (f"{self.ok} ok, {self.failed} failed, longest "
                f"{self.max_latency * 1000:.0f} ms {self.failures}")


def new_pid_from_log(d, old, timeout=15):
    """The pid the daemon whose pid is old handed over to, from its log."""
    pat = re.compile(r"handed over to pid (\d+) ")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in pat.finditer(d.stderr()):
            pid = int(m.group(1))
            if pid != old and pid not in new_pid_from_log.seen:
                new_pid_from_log.seen.add(pid)
                return pid
        time.sleep(0.02)
    raise AssertionError(f"no handover from {old} in the log:\n{d.stderr()}")


new_pid_from_log.seen = set()


def upgrade(d, pid, timeout=15):
    """SIGUSR2 to pid; returns the new pid once the old one is gone."""
    os.kill(pid, signal.SIGUSR2)
    new = new_pid_from_log(d, pid, timeout)
    et.check(et.eventually(lambda: not pid_alive(pid), timeout),
             f"old daemon {pid} still running")
    et.check(pid_alive(new), f"new daemon {new} not running:\n{d.stderr()}")
    return new


def stop_pid(pid):
    """End a daemon we started indirectly (a SIGUSR2 child)."""
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        if not et.eventually(lambda: not pid_alive(pid), 5):
            os.kill(pid, signal.SIGKILL)


@et.epmdc
def test_sigusr2_twice_keeps_500_nodes_connections_creations_and_lookups():
    d = et.Daemon()
    pids = [d.pid]
    socks, creations, ports = {}, {}, {}
    try:
        for i in range(NODES):
            name = f"node{i}"
            s, reply = et.register(d.port, name, port=20000 + i)
            c = creation_of(reply)
            et.check(c is not None, f"register {name}: {reply!r}")
            socks[name], creations[name], ports[name] = s, c, 20000 + i
        # node7 closes during the first upgrade: not looked up.
        lk = Lookups(d.port, sorted((n, p) for n, p in ports.items()
                                    if n != "node7"))
        lk.start()
        time.sleep(0.3)
        # First upgrade; a node closes while it is under way.
        t0 = time.monotonic()
        os.kill(d.pid, signal.SIGUSR2)
        socks.pop("node7").close()
        new = new_pid_from_log(d, d.pid)
        et.eq(d.wait(15), 0, "the old daemon's exit status")
        took1 = time.monotonic() - t0
        pids.append(new)
        et.check(pid_alive(new), "new daemon running")
        time.sleep(0.3)
        # Second upgrade, at once.
        t0 = time.monotonic()
        pids.append(upgrade(d, new))
        took2 = time.monotonic() - t0
        time.sleep(0.3)
        lk.stop()
        note(f"upgrades took {took1 * 1000:.0f} and {took2 * 1000:.0f} ms; "
             f"lookups: {lk.summary()}")
        et.eq(lk.failed, 0, f"failed lookups: {lk.summary()}")
        et.check(lk.ok > 100, f"too few lookups: {lk.summary()}")
        got = et.eventually(lambda: "node7" not in listed(d.port) and
                            listed(d.port), 5)
        del ports["node7"]
        et.eq(got, ports, "NAMES after two upgrades")
        et.eq(all_open(socks), [], "node connections closed by the upgrades")
        # Creations carried over: a name that comes back gets its own + 1.
        socks.pop("node3").close()
        et.check(et.eventually(lambda: "node3" not in listed(d.port), 5),
                 "node3 still listed after its connection closed")
        s, reply = et.register(d.port, "node3", port=30003)
        socks["node3"] = s
        et.eq(creation_of(reply), creations["node3"] + 1, "node3's creation")
        s, reply = et.register(d.port, "fresh", port=30004)
        socks["fresh"] = s
        et.check(creation_of(reply) > max(creations.values()),
                 f"a new name's creation {creation_of(reply)} is above "
                 f"every earlier one")
        # node7 closed during the handover: in the history, not listed.
        s, reply = et.register(d.port, "node7", port=30007)
        socks["node7"] = s
        et.eq(creation_of(reply), creations["node7"] + 1, "node7's creation")
    finally:
        for s in socks.values():
            s.close()
        d.stop()
        for p in pids[1:]:
            stop_pid(p)




@et.epmdc
def test_real_erlang_nodes_see_nothing_through_two_sigusr2_upgrades():
    if not os.access(erlnode.ERL, os.X_OK):
        raise et.Skip(f"no erl at {erlnode.ERL}")
    d = et.Daemon()
    pids = [d.pid]
    home = tempfile.mkdtemp(prefix="epmdc-restart-erl-")
    a, b = erlnode.unique("usra"), erlnode.unique("usrb")
    na = nb = None
    try:
        na = erlnode.Node(a, d.port, env={"HOME": home})
        na.result("node", timeout=30)
        nb = erlnode.Node(b, d.port, env={"HOME": home}, halt=True,
                          body=erlnode.ping_loop(a, 300, 10))
        before = nb.result("creation", timeout=30)
        time.sleep(0.5)
        os.kill(d.pid, signal.SIGUSR2)
        pids.append(new_pid_from_log(d, d.pid))
        et.eq(d.wait(15), 0, "the old daemon's exit status")
        time.sleep(0.5)
        pids.append(upgrade(d, pids[-1]))
        nb.wait_exit(60)
        res = nb.results()
        note(f"erl through two upgrades: {res.get('pongs')} pongs, "
             f"{res.get('pingfails')} ping failures, "
             f"{res.get('namesfails')} names() failures")
        et.eq(res.get("pingfails"), "0", f"ping failures: {nb.output()}")
        et.eq(res.get("namesfails"), "0", f"names() failures: {nb.output()}")
        et.eq(res.get("creation_after"), before, "node a's creation")
        et.check(a in listed(d.port), "node a listed after the upgrades")
        et.eq(d.stderr().count(f"registered {a} "), 1,
              f"{a} registered once only: the daemon's creation is its own")
        et.check(na.alive(), "node a died")
    finally:
        for n in (na, nb):
            if n is not None:
                n.kill()
        d.stop()
        for p in pids[1:]:
            stop_pid(p)
        shutil.rmtree(home, ignore_errors=True)


def broken_binary_case(d, socks, script, what, exec_path):
    """Install script as the SIGUSR2 binary; the old daemon must go on."""
    if os.path.exists(exec_path):
        os.remove(exec_path)
    if script is not None:
        with open(exec_path, "w") as f:
            f.write(script)
        os.chmod(exec_path, 0o755)
    before = d.stderr().count("upgrade failed")
    t0 = time.monotonic()
    os.kill(d.pid, signal.SIGUSR2)
    et.check(et.eventually(lambda: d.stderr().count("upgrade failed") > before,
                           15), f"{what}: no failure logged:\n{d.stderr()}")
    note(f"{what}: old daemon serving again after "
         f"{(time.monotonic() - t0) * 1000:.0f} ms")
    et.check(d.alive(), f"{what}: the old daemon exited")
    et.eq(sorted(listed(d.port)), sorted(socks), f"{what}: NAMES")
    et.eq(all_open(socks), [], f"{what}: node connections closed")
    et.eq(et.port_please(d.port, "b0")[:2], b"w\x00", f"{what}: lookup")


@et.epmdc
def test_sigusr2_with_a_broken_new_binary_leaves_the_old_daemon_serving():
    tmp = tempfile.mkdtemp(prefix="epmdc-restart-")
    exec_path = os.path.join(tmp, "epmd-c-new")
    d = et.Daemon(env={"EPMD_C_EXEC": exec_path})
    socks = {}
    try:
        for i in range(20):
            socks[f"b{i}"], _ = et.register(d.port, f"b{i}", port=21000 + i)
        broken_binary_case(d, socks, None, "missing binary", exec_path)
        broken_binary_case(d, socks, "#!/bin/sh\nexit 3\n", "failing binary",
                           exec_path)
        broken_binary_case(d, socks, "#!/bin/sh\nexec sleep 30\n",
                           "binary that never gets ready", exec_path)
        # A new binary that cannot read the state: the wrapper spoils the
        # blob it is handed, then runs the real daemon on it.
        spoil = (f"#!{sys.executable}\n"
                 "import os, sys\n"
                 "names = os.environ['LISTEN_FDNAMES'].split(':')\n"
                 "fd = 3 + names.index('epmd-c-state.0')\n"
                 "os.pwrite(fd, b'EPMDCSTA\\x00\\x09', 0)\n"
                 f"os.execv({et.EPMD_BIN!r}, [{et.EPMD_BIN!r}] + sys.argv[1:])\n")
        broken_binary_case(d, socks, spoil, "binary that cannot read the "
                           "state", exec_path)
        et.check("unknown format version" in d.stderr(),
                 "the new process said why it refused the state")
        # And a good one takes over with everything.
        os.remove(exec_path)
        os.symlink(et.EPMD_BIN, exec_path)
        new = upgrade(d, d.pid)
        try:
            et.eq(sorted(listed(d.port)), sorted(socks), "NAMES after a "
                  "good upgrade")
            et.eq(all_open(socks), [], "connections after a good upgrade")
        finally:
            stop_pid(new)
    finally:
        for s in socks.values():
            s.close()
        d.stop()
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
        os.rmdir(tmp)


def node_pair():
    """(daemon side, node side) of one loopback TCP connection."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    node = socket.create_connection(ls.getsockname())
    daemon_side, _ = ls.accept()
    ls.close()
    return daemon_side, node


def memfd_with(data):
    fd = os.memfd_create("epmd-c-state.0", 0)
    os.write(fd, data)
    return fd


def need_systemd_build():
    """Skip unless the daemon was built with libsystemd (-systemd works)."""
    if need_systemd_build.why is None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LISTEN_", "NOTIFY_"))}
        p = subprocess.run([et.EPMD_BIN, "-systemd"], capture_output=True,
                           text=True, timeout=10, env=env,
                           stdin=subprocess.DEVNULL)
        need_systemd_build.why = "no systemd support" in p.stderr and \
            "built without libsystemd (-systemd refused)" or ""
    if need_systemd_build.why:
        raise et.Skip(need_systemd_build.why)


need_systemd_build.why = None


class Handover:
    """epmd-c -systemd started the way systemd starts it from its fd store:
    a listener, node connections named by id, and a state memfd."""

    def __init__(self, blob, nodes, extra_args=()):
        need_systemd_build()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.nodes = {}         # id -> node-side socket
        keep = [self.listener.fileno()]
        specs = [f"{self.listener.fileno()}:epmd-c.socket"]
        self.daemon_sides = []
        for ident in nodes:
            ds, ns = node_pair()
            self.nodes[ident] = ns
            self.daemon_sides.append(ds)
            keep.append(ds.fileno())
            specs.append(f"{ds.fileno()}:{ident}")
        self.memfd = None
        if blob is not None:
            self.memfd = memfd_with(blob)
            keep.append(self.memfd)
            specs.append(f"{self.memfd}:epmd-c-state.0")
        self.errfile = tempfile.TemporaryFile()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LISTEN_", "NOTIFY_", "WATCHDOG_",
                                    "EPMD_C_"))}
        self.proc = subprocess.Popen(
            [sys.executable, HANDOVER_EXEC] + specs +
            ["--", et.EPMD_BIN, "-systemd"] + list(extra_args),
            pass_fds=keep, stdin=subprocess.DEVNULL, stdout=self.errfile,
            stderr=self.errfile, env=env)
        # The daemon holds its copies now.
        for ds in self.daemon_sides:
            ds.close()
        if self.memfd is not None:
            os.close(self.memfd)
        et.check(et.wait_port(self.port), "handover daemon not serving")

    def stderr(self):
        self.errfile.seek(0)
        return self.errfile.read().decode("utf-8", "replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for s in self.nodes.values():
            s.close()
        self.listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


R = statefmt.rec


def good_blob():
    return statefmt.encode(
        [R("alpha", port=4242, creation=1234567, seq=5, conn=0, fd=9,
           extra=b"xx"),
         R("beta", port=4243, creation=1234500, seq=3, conn=1),
         R("gamma", port=4244, creation=1234000, seq=2, conn=2)],
        [R("old", port=4000, creation=1234001, seq=4, fd=7)],
        max_creation=1300000, seq=6, restarts=3)


@et.epmdc
def test_a_state_from_an_independent_encoder_is_restored():
    # alpha's and beta's connections are handed over, gamma's is not: gamma
    # joins the history; alpha keeps its extra and creation.
    with Handover(good_blob(), ["0", "1"]) as h:
        got = listed(h.port)
        et.eq(got, {"alpha": 4242, "beta": 4243}, "NAMES after restore")
        r = et.port_please(h.port, "alpha")
        et.eq(r, b"w\x00" + struct.pack(">HBBHHH", 4242, 77, 0, 6, 5, 5) +
              b"alpha" + struct.pack(">H", 2) + b"xx", "alpha's PORT2_RESP")
        et.check(not et.is_closed(h.nodes["0"], 0.2), "alpha's connection")
        dump = et.request(h.port, et.frame(b"d"))
        et.check(b"old/unused name <gamma>" in dump and
                 b"old/unused name <old>" in dump, f"DUMP: {dump!r}")
        h.nodes["0"].close()
        del h.nodes["0"]
        et.check(et.eventually(lambda: "alpha" not in listed(h.port), 5),
                 "alpha still listed after its connection closed")
        s, reply = et.register(h.port, "alpha", port=5000)
        et.eq(creation_of(reply), 1234568, "alpha's next creation")
        s2, reply = et.register(h.port, "old", port=5001)
        et.eq(creation_of(reply), 1234002, "an old record's next creation")
        s3, reply = et.register(h.port, "brandnew", port=5002)
        et.check(creation_of(reply) > 1300000, "a new name's creation is "
                 "above the saved maximum")
        for x in (s, s2, s3):
            x.close()
        et.check("restored 2 of 3 registered nodes" in h.stderr(),
                 h.stderr())


@et.epmdc
def test_a_connection_with_data_pending_or_closed_is_not_restored():
    need_systemd_build()
    ds_nodes = ["0", "1", "2"]
    blob = good_blob()
    # The peers act while no daemon runs: alpha sends a byte, beta leaves.
    pairs = {i: node_pair() for i in ds_nodes}
    pairs["0"][1].sendall(b"x")           # data pending: unregisters
    pairs["1"][1].close()                 # EOF while the daemon was away
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    memfd = memfd_with(blob)
    specs = [f"{listener.fileno()}:epmd-c.socket",
             f"{memfd}:epmd-c-state.0"] + \
        [f"{pairs[i][0].fileno()}:{i}" for i in ds_nodes]
    keep = [listener.fileno(), memfd] + [p[0].fileno() for p in
                                         pairs.values()]
    err = tempfile.TemporaryFile()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LISTEN_", "NOTIFY_", "WATCHDOG_"))}
    p = subprocess.Popen([sys.executable, HANDOVER_EXEC] + specs +
                         ["--", et.EPMD_BIN, "-systemd"], pass_fds=keep,
                         stdout=err, stderr=err, env=env,
                         stdin=subprocess.DEVNULL)
    try:
        for x in pairs.values():
            x[0].close()
        os.close(memfd)
        port = listener.getsockname()[1]
        et.check(et.wait_port(port), "daemon serving")
        et.eq(listed(port), {"gamma": 4244}, "only the live node is back")
        et.check(et.is_closed(pairs["0"][1], 2), "the node that sent data "
                 "is closed")
        et.check(not et.is_closed(pairs["2"][1], 0.2), "gamma's connection")
    finally:
        p.terminate()
        p.wait(5)
        for x in pairs.values():
            x[1].close()
        listener.close()


@et.epmdc
def test_a_corrupt_state_starts_empty_and_closes_the_orphaned_nodes():
    good = good_blob()
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 1
    v2 = bytearray(good)
    v2[9] = 2
    cases = {
        "garbage": (b"this is not a state blob at all, no no" * 3,
                    "not an epmd-c state blob"),
        "truncated": (good[:-5], "truncated"),
        "bad checksum": (bytes(bad_crc), "checksum mismatch"),
        "version 2": (bytes(v2), "unknown format version"),
        "empty": (b"", "0 bytes"),
    }
    for what, (blob, reason) in cases.items():
        with Handover(blob, ["0", "1", "2"]) as h:
            et.eq(listed(h.port), {}, f"{what}: NAMES")
            for i, s in h.nodes.items():
                et.check(et.is_closed(s, 3), f"{what}: orphan {i} not closed")
            err = h.stderr()
            et.check(reason in err, f"{what}: reason {reason!r} not in {err}")
            et.check("closed 3 node connections" in err, f"{what}: {err}")
            # The daemon serves normally.
            s, reply = et.register(h.port, "after", port=6000)
            et.check(creation_of(reply) is not None, f"{what}: register")
            s.close()


class FdStore:
    """A NOTIFY_SOCKET that keeps what FDSTORE=1 sends, as systemd's fd
    store does: name -> list of fds; FDSTOREREMOVE=1 closes them."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="epmdc-fdstore-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.store = {}
        self.texts = []

    def pump(self, timeout=0.5):
        """Take every message that arrives within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if not r:
                continue
            msg, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(
                4 * 16))
            fds = []
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += list(struct.unpack(f"{len(data) // 4}i", data))
            text = msg.decode()
            self.texts.append(text)
            fields = dict(line.split("=", 1) for line in text.splitlines()
                          if "=" in line)
            name = fields.get("FDNAME", "stored")
            if fields.get("FDSTORE") == "1":
                self.store.setdefault(name, []).extend(fds)
            elif fields.get("FDSTOREREMOVE") == "1":
                for fd in self.store.pop(name, []):
                    os.close(fd)
            else:
                for fd in fds:
                    os.close(fd)

    def close(self):
        for fds in self.store.values():
            for fd in fds:
                os.close(fd)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_stored(store, listener, errfile):
    """epmd-c -systemd given the listener and everything in the store."""
    specs = [f"{listener.fileno()}:epmd-c.socket"]
    keep = [listener.fileno()]
    for name, fds in store.store.items():
        for fd in fds:
            specs.append(f"{fd}:{name}")
            keep.append(fd)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LISTEN_", "NOTIFY_", "WATCHDOG_",
                                "EPMD_C_"))}
    env["NOTIFY_SOCKET"] = store.path
    return subprocess.Popen([sys.executable, HANDOVER_EXEC] + specs +
                            ["--", et.EPMD_BIN, "-systemd"], pass_fds=keep,
                            stdin=subprocess.DEVNULL, stdout=errfile,
                            stderr=errfile, env=env)


@et.epmdc
def test_fd_store_protocol_through_a_graceful_restart_without_systemd():
    need_systemd_build()
    store = FdStore()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    err = tempfile.TemporaryFile()
    socks = {}
    procs = []
    try:
        procs.append(start_stored(store, listener, err))
        et.check(et.wait_port(port), "daemon serving")
        for i in range(3):
            socks[f"st{i}"], _ = et.register(port, f"st{i}", port=7000 + i)
        store.pump()
        et.check(sorted(store.store) == ["0", "1", "2", "epmd-c-state.0",
                                         "epmd-c-state.1"],
                 f"stored: {sorted(store.store)}; {store.texts}")
        # The stored fd is the daemon's side of the node's connection.
        peer = socket.socket(fileno=os.dup(store.store["1"][0]))
        et.eq(peer.getpeername(), socks["st1"].getsockname(), "stored fd 1")
        peer.close()
        socks.pop("st2").close()
        store.pump()
        et.check("2" not in store.store, "FDSTOREREMOVE for a node that left")
        # The saved table, read from the stored memfds, says the same.
        blobs = [os.pread(store.store[f"epmd-c-state.{k}"][0], 1 << 20, 0)
                 for k in (0, 1)]
        newest = max((statefmt.decode(b) for b in blobs if b),
                     key=lambda d: d[0]["seq"])
        et.eq(sorted((r["name"], r["conn"]) for r in newest[1]
                     if r["kind"] == statefmt.ACTIVE),
              [(b"st0", 0), (b"st1", 1)], "active records in the memfd")
        # A graceful restart: SIGTERM, exit 0, nodes left in the store.
        procs[0].terminate()
        et.eq(procs[0].wait(10), 0, "exit status on SIGTERM")
        store.pump(0.3)
        et.check("0" in store.store and "1" in store.store,
                 "nodes removed from the store on SIGTERM")
        et.eq(all_open(socks), [], "node connections closed by SIGTERM")
        procs.append(start_stored(store, listener, err))
        et.check(et.eventually(lambda: sorted(listed(port)) ==
                               ["st0", "st1"], 5),
                 f"nodes after the restart: {listed(port)}")
        et.eq(all_open(socks), [], "node connections after the restart")
        socks.pop("st0").close()
        et.check(et.eventually(lambda: "st0" not in listed(port), 5),
                 "a restored node that leaves is unregistered")
        store.pump()
        et.check("0" not in store.store, "and removed from the store")
    finally:
        for s in socks.values():
            s.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        store.close()
        listener.close()


if __name__ == "__main__":
    et.run_tests()
