#!/usr/bin/env python3
"""Restarts without losing nodes, on a real systemd with the shipped units.

One throw-away container (tests/lib/realsystemd.py) runs epmd-c.socket and
epmd-c.service as shipped. 500 nodes register (Python sockets in the
container's network namespace) and two real `erl` nodes; one client looks
names up without pause, and an Erlang node pings and lists names without
pause (disconnecting first, so every ping asks epmd again). Then
`systemctl restart`, and `kill -9` of the main process: every node stays
listed and keeps its connection, no lookup fails on the graceful restart,
nodes that closed (FIN) or reset (RST) while the daemon was down are gone
afterwards, creations go on from where they were, and the Erlang nodes
notice nothing.
"""

import os
import re
import select
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
import epmdtest as et  # noqa: E402
import erlnode  # noqa: E402
import realsystemd  # noqa: E402

SOCKET = "epmd-c.socket"
SERVICE = "epmd-c.service"
EPMD_PORT = 4369
NODES = 500
C = None


def note(msg):
    sys.stderr.write(f"# {msg}\n")
    sys.stderr.flush()


def listed():
    with C.netns():
        raw = et.names(EPMD_PORT)
    return {m.group(1).decode(): int(m.group(2))
            for m in re.finditer(rb"name (.*) at port (\d+)\n", raw[4:])}


def creation_of(reply):
    if len(reply) != 6 or reply[:2] != b"v\x00":
        return None
    return struct.unpack(">I", reply[2:6])[0]


def register(name, port):
    with C.netns():
        s, reply = et.register(EPMD_PORT, name, port=port)
    c = creation_of(reply)
    et.check(c is not None, f"register {name}: {reply!r}")
    return s, c


def closed_ones(socks, timeout=0.3):
    """Names whose connection the daemon closed (readable: EOF)."""
    out = []
    items = list(socks.items())
    for i in range(0, len(items), 200):
        chunk = dict(items[i:i + 200])
        r, _, _ = select.select(list(chunk.values()), [], [], timeout)
        out.extend(n for n, s in chunk.items() if s in r)
    return out


class Lookups(threading.Thread):
    """PORT_PLEASE2 without pause, in the container's netns; bounded."""

    def __init__(self, names):
        super().__init__(daemon=True)
        self.names = list(names)
        self.ok = 0
        self.failed = []        # (phase, name, what)
        self.phase = "before"
        self.max_latency = {}
        self.stop_flag = threading.Event()

    def run(self):
        end = time.monotonic() + 120
        i = 0
        with C.netns():
            while not self.stop_flag.is_set() and i < 400000 and \
                    time.monotonic() < end:
                name, port = self.names[i % len(self.names)]
                i += 1
                t0 = time.monotonic()
                try:
                    r = et.request(EPMD_PORT, et.frame(b"z" + name.encode()),
                                   timeout=10)
                    good = r[:2] == b"w\x00" and \
                        struct.unpack(">H", r[2:4])[0] == port
                except OSError as e:
                    r, good = repr(e), False
                lat = time.monotonic() - t0
                ph = self.phase
                self.max_latency[ph] = max(self.max_latency.get(ph, 0), lat)
                if good:
                    self.ok += 1
                else:
                    self.failed.append((ph, name, r))

    def failures(self, phase):
        return [f for f in self.failed if f[0] == phase]

    def stop(self):
        self.stop_flag.set()
        self.join(30)

    def summary(self):
        lat = {k: f"{v * 1000:.0f} ms" for k, v in self.max_latency.items()}
        return (f"{self.ok} ok, {len(self.failed)} failed "
                f"{self.failed[:3]}, longest per phase {lat}")




def main_pid_change(old, timeout=20):
    return int(C.wait_prop(SERVICE, "MainPID",
                           lambda v: v not in ("0", str(old)), timeout))


@et.test
def test_restart_and_kill_9_keep_500_nodes_and_real_erlang_nodes():
    if not os.access(erlnode.ERL, os.X_OK):
        raise et.Skip(f"no erl at {erlnode.ERL}")
    C.systemctl("stop", SERVICE, check=False)
    C.systemctl("reset-failed", check=False)
    C.systemctl("start", SOCKET)
    with C.netns():
        et.names(EPMD_PORT)
    C.wait_active(SERVICE, timeout=10)
    pid = C.main_pid(SERVICE)
    socks, creations, ports = {}, {}, {}
    home = tempfile.mkdtemp(prefix="epmdc-rsd-restart-")
    a, b = erlnode.unique("rsta"), erlnode.unique("rstb")
    na = nb = None
    try:
        t0 = time.monotonic()
        for i in range(NODES):
            n = f"fake{i}"
            socks[n], creations[n] = register(n, 30000 + i)
            ports[n] = 30000 + i
        note(f"{NODES} nodes registered in {time.monotonic() - t0:.1f} s")
        with C.netns():
            na = erlnode.Node(a, EPMD_PORT, env={"HOME": home})
        na.result("node", timeout=30)
        keep = {n: p for n, p in ports.items()
                if n not in ("fake5", "fake6")}
        lk = Lookups(sorted(keep.items()))
        lk.start()
        with C.netns():
            nb = erlnode.Node(b, EPMD_PORT, env={"HOME": home},
                              body=erlnode.ping_loop(a, 400, 20),
                              halt=True)
        before_creation = nb.result("creation", timeout=30)
        time.sleep(0.5)

        # 1. systemctl restart: graceful, nothing may fail.
        lk.phase = "restart"
        t0 = time.monotonic()
        C.systemctl("restart", SERVICE)
        pid2 = main_pid_change(pid)
        C.wait_active(SERVICE)
        note(f"systemctl restart: {pid} -> {pid2} in "
             f"{(time.monotonic() - t0) * 1000:.0f} ms")
        time.sleep(0.5)
        lk.phase = "after restart"
        got = listed()
        et.eq({n: got.get(n) for n in ports}, ports, "fake nodes listed "
              "after systemctl restart")
        et.check(a in got and b in got, f"erl nodes listed: {sorted(got)[:5]}")
        et.eq(closed_ones(socks), [], "connections closed by the restart")

        # 2. kill -9; two nodes leave while the daemon is down (FIN, RST).
        lk.phase = "kill -9"
        nr = int(C.prop(SERVICE, "NRestarts"))
        C.run("kill", "-9", str(pid2))
        socks.pop("fake5").close()
        rst = socks.pop("fake6")
        rst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                       struct.pack("ii", 1, 0))
        rst.close()
        pid3 = main_pid_change(pid2)
        C.wait_active(SERVICE)
        time.sleep(0.5)
        lk.phase = "after kill -9"
        got = et.eventually(lambda: "fake5" not in listed() and
                            "fake6" not in listed() and listed(), 5)
        et.eq({n: got.get(n) for n in keep}, keep, "nodes listed after kill -9")
        et.check("fake5" not in got and "fake6" not in got,
                 "nodes that left while the daemon was down are gone")
        et.eq(closed_ones(socks), [], "connections closed by kill -9")
        et.eq(int(C.prop(SERVICE, "NRestarts")), nr + 1, "Restart=on-failure")

        # 3. The Erlang side noticed nothing.
        nb.wait_exit(60)
        res = nb.results()
        lk.stop()
        note(f"lookups: {lk.summary()}")
        note(f"erl: {res.get('pongs')} pongs, {res.get('pingfails')} ping "
             f"failures, {res.get('namesfails')} names() failures")
        et.eq(lk.failures("restart") + lk.failures("after restart"), [],
              "lookups failed around systemctl restart")
        et.eq(lk.failures("after kill -9"), [], "lookups failed after the "
              "daemon came back from kill -9")
        # kill -9 may lose the one request in flight (the Python client
        # above checks the graceful restart strictly).
        et.check(int(res.get("pingfails", "99")) <= 1,
                 f"ping failures: {nb.output()}")
        et.check(int(res.get("namesfails", "99")) <= 1,
                 f"names() failures: {nb.output()}")
        et.eq(res.get("creation_after"), before_creation,
              "node a kept its creation")
        journal = C.journal(SERVICE)
        et.eq(journal.count(f"registered {a} "), 1,
              f"{a} registered once only (no re-registration)")
        et.check(f"restored {NODES + 2} of {NODES + 2} registered nodes"
                 in journal, f"restore after restart: {journal[-1500:]}")
        # Creations go on: a fake node that comes back gets its own + 1.
        socks.pop("fake9").close()
        et.check(et.eventually(lambda: "fake9" not in listed(), 5),
                 "fake9 still listed")
        socks["fake9"], c9 = register("fake9", 31009)
        et.eq(c9, creations["fake9"] + 1, "fake9's next creation")
        socks["fake5"], c5 = register("fake5", 31005)
        et.eq(c5, creations["fake5"] + 1, "fake5's next creation")
        # The fd store holds one entry per node (the fake ones and erl
        # node a; b has halted) plus the two state memfds.
        n_store = C.prop(SERVICE, "NFileDescriptorStore")
        et.eq(n_store, str(len(socks) + 1 + 2), "fd store entries")
    finally:
        for s in socks.values():
            s.close()
        for n in (na, nb):
            if n is not None:
                n.kill()
        shutil.rmtree(home, ignore_errors=True)
        C.systemctl("stop", SERVICE, check=False)


@et.test
def test_a_hung_daemon_restarted_by_the_watchdog_keeps_its_nodes():
    dropin = "/etc/systemd/system/epmd-c.service.d/watchdog.conf"
    C.systemctl("stop", SERVICE, check=False)
    C.systemctl("reset-failed", check=False)
    # The stopped process cannot take the SIGABRT: SIGKILL follows in 1 s.
    C.write(dropin, "[Service]\nWatchdogSec=1s\nTimeoutAbortSec=1s\n")
    C.daemon_reload()
    socks = {}
    try:
        C.systemctl("start", SOCKET)
        for i in range(50):
            socks[f"wd{i}"], _ = register(f"wd{i}", 32000 + i)
        C.wait_active(SERVICE)
        pid = C.main_pid(SERVICE)
        time.sleep(0.3)     # the saved table catches up (a few ms)
        C.run("kill", "-STOP", str(pid))
        new = main_pid_change(pid, timeout=20)
        C.wait_active(SERVICE)
        et.check("Watchdog timeout" in C.journal(SERVICE), "no watchdog "
                 "timeout in the journal")
        got = listed()
        et.eq(sorted(got), sorted(socks), f"nodes after the watchdog "
              f"restart ({pid} -> {new})")
        et.eq(closed_ones(socks), [], "connections closed by the restart")
    finally:
        for s in socks.values():
            s.close()
        C.systemctl("stop", SERVICE, check=False)
        C.run("rm", "-f", dropin)
        C.daemon_reload()


@et.test
def test_systemctl_stop_discards_the_nodes():
    C.systemctl("stop", SERVICE, check=False)
    C.systemctl("reset-failed", check=False)
    C.systemctl("start", SOCKET)
    s, _ = register("stopme", 4000)
    try:
        C.wait_active(SERVICE)
        C.systemctl("stop", SERVICE)
        et.check(et.is_closed(s, 5), "the node's connection closes on stop")
        et.eq(listed(), {}, "nothing listed after stop and a new start")
    finally:
        s.close()
        C.systemctl("stop", SERVICE, check=False)


def main():
    return realsystemd.run_test_file("systemd restart layer", globals())

if __name__ == "__main__":
    sys.exit(main())
