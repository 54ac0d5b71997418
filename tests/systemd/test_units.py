#!/usr/bin/env python3
"""The shipped units (systemd/epmd-c.socket, epmd-c.service) on a real systemd.

One throw-away container (tests/lib/realsystemd.py) is booted for the whole
file; the built daemon goes to /usr/local/bin/epmd-c (the units'
ExecStart=) and the units to /etc/systemd/system. Each test starts from
epmd-c.socket listening and epmd-c.service stopped (fresh()).

What tests/integration/test_systemd.py checks with systemd-socket-activate
(the notify protocol byte by byte, LISTEN_FDS handling, 16/17 sockets, a
dual-stack socket) is not repeated here. This file checks what only a real
service manager shows: the socket unit activating the service, READY and
STATUS as systemd records them, the watchdog, DynamicUser and the sandbox,
the journal fields, restarts and crashes with real Erlang nodes, and the
[Install] aliases taking over Debian's epmd.socket.

Clients and Erlang nodes run on the host, in the container's network
namespace (realsystemd's netns()), so 127.0.0.1:4369 is the container's.
"""

import os
import functools
import re
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
DROPIN_DIR = "/etc/systemd/system/epmd-c.service.d"
EPMD_PORT = 4369
DYNAMIC_UIDS = range(61184, 65520)      # systemd's DynamicUser= range
C = None                                # the container, booted by main()
T0 = time.monotonic()
_dropins = False


def note(msg):
    """A measurement, on stderr (tests/run shows it when something fails)."""
    sys.stderr.write(f"# {msg}\n")
    sys.stderr.flush()


def timed(fn):
    """@et.test, with the test's duration noted on stderr."""
    @functools.wraps(fn)
    def wrapper():
        t0 = time.monotonic()
        try:
            fn()
        finally:
            note(f"{fn.__name__}: {time.monotonic() - t0:.1f} s")
    return et.test(wrapper)


def fresh():
    """The starting point of every test: the service stopped (its registry
    gone), no drop-ins, no failed state, the socket listening."""
    global _dropins
    C.systemctl("stop", SERVICE, check=False)
    if _dropins:
        C.run("rm", "-rf", DROPIN_DIR)
        C.daemon_reload()
        _dropins = False
    # reset-failed also resets the start rate limit (5 starts in 10 s)
    C.systemctl("reset-failed", check=False)
    C.systemctl("start", SOCKET)
    et.eq(C.prop(SERVICE, "ActiveState"), "inactive", f"{SERVICE} after stop")


def dropin(name, text):
    """Add a drop-in to epmd-c.service and reload; fresh() removes it."""
    global _dropins
    _dropins = True
    C.write(f"{DROPIN_DIR}/{name}.conf", "[Service]\n" + text)
    C.daemon_reload()


def names_raw(host="127.0.0.1"):
    """A NAMES request to the container's port 4369."""
    with C.netns():
        return et.names(EPMD_PORT, host)


def listed(host="127.0.0.1"):
    """{name: port} from a NAMES request in the container."""
    raw = names_raw(host)
    return {m.group(1).decode(): int(m.group(2))
            for m in re.finditer(rb"name (.*) at port (\d+)\n", raw[4:])}


def activate():
    """Start the service the way clients do, by connecting; returns its
    MainPID (in the container) once it is active."""
    hdr = names_raw()[:4]
    et.eq(hdr, struct.pack(">I", EPMD_PORT), "NAMES header")
    C.wait_active(SERVICE, timeout=10)
    return C.main_pid(SERVICE)


def register_fake(name, port=5001):
    """Register a node from a Python socket in the container's netns; keep
    the returned socket open to keep it registered."""
    with C.netns():
        s, reply = et.register(EPMD_PORT, name, port=port)
    # ALIVE2_X_RESP (the default high version 6 asks for it), result 0
    et.eq(reply[:2], b"v\x00", f"ALIVE2 reply for {name}")
    return s


def proc_status(pid):
    """/proc/PID/status of a process in the container, as a dict."""
    out = C.run("cat", f"/proc/{pid}/status").stdout
    return {k: v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def need_erl():
    if not os.access(erlnode.ERL, os.X_OK):
        raise et.Skip(f"no erl at {erlnode.ERL}")


class ErlHome:
    """A temporary HOME for erl (it writes .erlang.cookie and the like)."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="epmdc-rsd-erl-")
        return {"HOME": self.path}

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


def erl_node(name, home, body=None):
    """A long-lived `erl -sname` node in the container's netns."""
    with C.netns():
        return erlnode.Node(name, EPMD_PORT, body=body, env=home)


def erl_once(name, home, body, timeout=30):
    """A one-shot node in the container's netns; returns its results."""
    with C.netns():
        node = erlnode.Node(name, EPMD_PORT, body=body, halt=True, env=home)
    try:
        node.wait_exit(timeout)
    finally:
        node.kill()
    return node


def wait_listed(names, timeout):
    """Wait until every name is listed; returns the seconds it took."""
    t0 = time.monotonic()

    def all_there():
        try:
            got = listed()
        except OSError:
            return False
        return all(n in got for n in names)
    ok = et.eventually(all_there, timeout=timeout, interval=0.1)
    et.check(ok, f"{names} not all listed within {timeout} s: {listed()}")
    return time.monotonic() - t0


class Lookups:
    """A client in the container's netns that sends NAMES without pause
    (bounded: at most 20000 requests, 60 s) and counts what it sees."""

    def __init__(self):
        self.stop = threading.Event()
        self.ok = self.refused = self.lost = 0
        self.errors = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        end = time.monotonic() + 60
        with C.netns():
            for _ in range(20000):
                if self.stop.is_set() or time.monotonic() > end:
                    break
                try:
                    reply = et.request(EPMD_PORT, et.frame(b"n"), timeout=5)
                except ConnectionRefusedError:
                    self.refused += 1
                    continue
                except OSError as e:
                    self.lost += 1
                    self.errors.append(repr(e))
                    continue
                if reply[:4] == struct.pack(">I", EPMD_PORT):
                    self.ok += 1
                else:
                    self.lost += 1
                time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=70)

    def summary(self):
        return (f"{self.ok} answered, {self.refused} refused, {self.lost} "
                f"lost {self.errors[:3]}")


# --- socket activation ---------------------------------------------------

@timed
def test_socket_unit_listens_on_4369_dual_stack_without_starting_service():
    fresh()
    p = C.props(SOCKET, "ActiveState", "SubState", "Listen", "BindIPv6Only",
                "Accept", "Triggers")
    et.eq((p["ActiveState"], p["SubState"]), ("active", "listening"), SOCKET)
    et.eq(p["Listen"], "[::]:4369 (Stream)", "Listen")
    et.eq(p["BindIPv6Only"], "both", "BindIPv6Only")
    et.eq(p["Accept"], "no", "Accept")
    et.eq(p["Triggers"], SERVICE, "Triggers")
    et.eq(C.prop(SERVICE, "ActiveState"), "inactive", "service before any client")


@timed
def test_first_connection_starts_the_service_which_serves_it():
    fresh()
    t0 = time.monotonic()
    pid = activate()
    note(f"first NAMES request to active service: {time.monotonic() - t0:.2f} s")
    et.check(pid > 0, f"MainPID {pid}")
    et.eq(C.run("readlink", f"/proc/{pid}/exe").stdout.strip(),
          "/usr/local/bin/epmd-c", "main process binary")
    et.eq(C.run("cat", f"/proc/{pid}/cmdline").stdout, "/usr/local/bin/epmd-c\0-systemd\0",
          "command line")
    # IPv6 loopback reaches the same daemon through the dual-stack socket
    et.eq(names_raw("::1")[:4], struct.pack(">I", EPMD_PORT), "NAMES over ::1")
    et.eq(C.main_pid(SERVICE), pid, "same daemon serves the next client")
    et.eq(C.prop(SOCKET, "SubState"), "running", "socket once the service runs")


@timed
def test_kill_request_stops_service_until_next_client():
    fresh()
    pid = activate()
    nr = C.prop(SERVICE, "NRestarts")
    out = C.run("epmd-c", "-kill").stdout
    et.check("Killed" in out, f"epmd-c -kill said {out!r}")
    C.wait_prop(SERVICE, "ActiveState", "inactive", timeout=10)
    p = C.props(SERVICE, "Result", "ExecMainStatus", "NRestarts")
    et.eq((p["Result"], p["ExecMainStatus"], p["NRestarts"]), ("success", "0", nr),
          "after KILL: clean exit, no Restart=")
    et.eq(C.prop(SOCKET, "SubState"), "listening", "socket after KILL")
    pid2 = activate()
    et.check(pid2 not in (0, pid), f"a new daemon after the next client ({pid} -> {pid2})")


# --- Type=notify ---------------------------------------------------------

@timed
def test_ready_and_status_text_follow_the_registry():
    fresh()
    activate()
    p = C.props(SERVICE, "Type", "NotifyAccess", "SubState", "StatusText",
                "ActiveEnterTimestampMonotonic", "ExecMainStartTimestampMonotonic")
    et.eq(p["Type"], "notify", "Type")
    et.eq(p["SubState"], "running", "SubState after READY=1")
    et.check(p["StatusText"].startswith("Processing port mapping requests"),
             f"StatusText after READY: {p['StatusText']!r}")
    et.check(int(p["ActiveEnterTimestampMonotonic"]) >= int(p["ExecMainStartTimestampMonotonic"]),
             f"active before the process started? {p}")
    socks = [register_fake(f"rsdst{os.getpid()}{i}", port=5100 + i) for i in range(3)]
    try:
        C.wait_prop(SERVICE, "StatusText", lambda v: re.search(r"\b3 nodes? registered", v),
                    timeout=5)
    finally:
        for s in socks:
            s.close()
    C.wait_prop(SERVICE, "StatusText", lambda v: re.search(r"\b0 nodes? registered", v),
                timeout=5)


# --- the per-address templates --------------------------------------------

@timed
def test_address_instances_take_over_from_a_running_epmd_c_and_give_back():
    fresh()
    pid = activate()
    v4 = "epmd-c@127.0.0.1"
    v6 = "epmd-c@" + C.run("systemd-escape", "[::1]").stdout.strip()
    try:
        # epmd-c.service is running and holds [::]:4369: Conflicts= must
        # stop it before the instances bind
        C.systemctl("start", f"{v4}.socket", f"{v6}.socket")
        for u, listen in ((v4, "127.0.0.1:4369 (Stream)"), (v6, "[::1]:4369 (Stream)")):
            et.eq(C.props(f"{u}.socket", "ActiveState", "Listen"),
                  {"ActiveState": "active", "Listen": listen}, f"{u}.socket")
        et.eq(C.prop(SOCKET, "ActiveState"), "inactive", f"{SOCKET} after the instances")
        et.eq(C.prop(SERVICE, "ActiveState"), "inactive", f"{SERVICE} after the instances")
        s = register_fake(f"rsdtpl{os.getpid()}", port=5500)
        try:
            et.check(f"rsdtpl{os.getpid()}" in listed("127.0.0.1"), "node on 127.0.0.1")
            et.eq(listed("::1"), {}, "the [::1] instance has its own table")
        finally:
            s.close()
        pids = {C.main_pid(f"{v4}.service"), C.main_pid(f"{v6}.service")}
        et.check(len(pids) == 2 and 0 not in pids and pid not in pids,
                 f"two new daemons: {pids}")
        # and back: starting epmd-c.socket stops both instances first
        C.systemctl("start", SOCKET)
        et.eq(C.prop(f"{v4}.socket", "ActiveState"), "inactive", f"{v4}.socket")
        et.eq(C.prop(f"{v6}.socket", "ActiveState"), "inactive", f"{v6}.socket")
        activate()
    finally:
        C.systemctl("stop", f"{v4}.socket", f"{v6}.socket", f"{v4}.service",
                    f"{v6}.service", check=False)


# --- the watchdog --------------------------------------------------------

@timed
def test_shipped_unit_sets_a_watchdog_that_the_daemon_pings():
    fresh()
    activate()
    p = C.props(SERVICE, "WatchdogUSec", "WatchdogTimestampMonotonic")
    et.eq(p["WatchdogUSec"], "30s", "WatchdogSec= of the shipped unit")
    et.check(int(p["WatchdogTimestampMonotonic"]) > 0, f"no watchdog timestamp: {p}")


# A connection at its largest: 3.4 kB of daemon memory (a trickled frame,
# make bench) and about 3.5 kB of kernel socket memory.
WORST_CONN_BYTES = 7000


@timed
def test_shipped_unit_bounds_memory_to_fit_its_descriptor_limit():
    fresh()
    pid = activate()
    p = C.props(SERVICE, "MemoryMax", "LimitNOFILE")
    et.eq(p["LimitNOFILE"], "131072", "LimitNOFILE= of the shipped unit")
    et.check(p["MemoryMax"].isdigit(), f"no MemoryMax=: {p}")
    et.check(int(p["MemoryMax"]) >= int(p["LimitNOFILE"]) * WORST_CONN_BYTES,
             f"MemoryMax= does not fit LimitNOFILE= connections: {p}")
    limits = C.read(f"/proc/{pid}/limits")
    m = re.search(r"^Max open files\s+(\d+)\s+(\d+)", limits, re.M)
    et.check(m and int(m.group(1)) == int(m.group(2)) <= 131072,
             f"daemon's descriptor limit: {limits}")


@timed
def test_watchdog_is_pinged_and_the_daemon_survives_several_intervals():
    fresh()
    # 2 s, not less: a loaded machine must not make the test flaky
    dropin("watchdog", "WatchdogSec=2s\n")
    pid = activate()
    et.eq(C.prop(SERVICE, "WatchdogUSec"), "2s", "WatchdogSec= from the drop-in")
    seen = {int(C.prop(SERVICE, "WatchdogTimestampMonotonic"))}
    end = time.monotonic() + 6.5            # over three intervals
    while time.monotonic() < end:
        time.sleep(0.25)
        seen.add(int(C.prop(SERVICE, "WatchdogTimestampMonotonic")))
    p = C.props(SERVICE, "MainPID", "ActiveState", "NRestarts")
    et.eq((p["MainPID"], p["ActiveState"], p["NRestarts"]), (str(pid), "active", "0"),
          "daemon after three watchdog intervals")
    # WATCHDOG=1 every second for 6.5 s: the timestamp moved again and again
    note(f"watchdog timestamp seen {len(seen)} distinct values in 6.5 s")
    et.check(len(seen) >= 4, f"watchdog timestamp changed only {len(seen)} times: {sorted(seen)}")
    et.check("Watchdog timeout" not in C.journal(SERVICE, "--since", "-1min"),
             "a watchdog timeout was logged")


@timed
def test_hung_daemon_is_killed_by_the_watchdog_and_restarted():
    fresh()
    # TimeoutAbortSec: the stopped process cannot take the SIGABRT, so
    # systemd's SIGKILL follows it after 1 s instead of 90 s
    dropin("watchdog", "WatchdogSec=1s\nTimeoutAbortSec=1s\n")
    pid = activate()
    t0 = time.monotonic()
    C.run("kill", "-STOP", str(pid))
    new = C.wait_prop(SERVICE, "MainPID", lambda v: v not in ("0", str(pid)), timeout=15)
    C.wait_active(SERVICE, timeout=10)
    note(f"hung daemon replaced after {time.monotonic() - t0:.1f} s")
    et.eq(C.prop(SERVICE, "NRestarts"), "1", "Restart=on-failure after the watchdog")
    et.check("Watchdog timeout" in C.journal(SERVICE), "no 'Watchdog timeout' in the journal")
    et.eq(names_raw()[:4], struct.pack(">I", EPMD_PORT), f"new daemon {new} answers")


# --- DynamicUser and the sandbox -----------------------------------------

@timed
def test_dynamic_user_outside_etc_passwd_with_no_privileges():
    fresh()
    pid = activate()
    st = proc_status(pid)
    uids = st["Uid"].split()
    uid = int(uids[0])
    et.check(uid in DYNAMIC_UIDS, f"uid {uid} not in the dynamic range")
    et.eq(len(set(uids)), 1, f"real, effective, saved, fs uid differ: {uids}")
    et.eq(st["Gid"].split(), [str(uid)] * 4, "gids")
    et.eq(C.prop(SERVICE, "User"), "epmd-c", "User")
    pw = C.run("getent", "passwd", str(uid)).stdout
    et.check(pw.startswith(f"epmd-c:x:{uid}:{uid}:Dynamic User:"), f"getent: {pw!r}")
    et.check(not re.search(r"^epmd-c:", C.read("/etc/passwd"), re.M),
             "epmd-c is in /etc/passwd")
    et.eq(st["CapEff"], "0000000000000000", "effective capabilities")
    et.eq(st["CapBnd"], "0000000000000000", "bounding set")
    et.eq(st["NoNewPrivs"], "1", "NoNewPrivs")
    et.eq(st["Seccomp"], "2", "seccomp filter mode")
    # ProtectSystem=strict: nothing in the daemon's view of / is writable
    w = C.run("nsenter", "-t", str(pid), "-m", "--", "touch", "/usr/local/bin/x",
              check=False)
    et.check(w.returncode != 0 and "Read-only" in w.stderr, f"wrote in the sandbox: {w}")
    # the user lives only as long as the service
    C.systemctl("stop", SERVICE)
    gone = C.run("getent", "passwd", str(uid), check=False)
    et.eq(gone.returncode, 2, f"dynamic user after stop: {gone.stdout!r}")


@timed
def test_sandbox_exposure_stays_ok():
    p = C.run("systemd-analyze", "security", "--no-pager", "--threshold=20", SERVICE,
              check=False)
    m = re.search(r"Overall exposure level for epmd-c.service: ([0-9.]+) (\w+)", p.stdout)
    et.check(m, f"no exposure level in: {p.stdout[-500:]}")
    note(f"systemd-analyze security: {m.group(1)} {m.group(2)}")
    # today 1.2 "OK"; --threshold=20 fails the command above 2.0
    et.eq((p.returncode, m.group(2)), (0, "OK"), f"exposure {m.group(1)}")


# --- the journal -----------------------------------------------------------

@timed
def test_registrations_reach_the_journal_with_node_fields():
    fresh()
    activate()
    name = f"rsdj{os.getpid()}"
    s = register_fake(name, port=5301)
    s.close()

    def entry():
        out = C.run("journalctl", "--no-pager", "-o", "export", "-u", SERVICE,
                    f"EPMD_NODE={name}").stdout
        return out if "EPMD_PEER=" in out and "unregistered" in out else None
    out = et.eventually(entry, timeout=5, interval=0.2)
    et.check(out, f"no journal entries for {name}: {C.journal(SERVICE)[-2000:]}")
    et.check(f"MESSAGE=registered {name} at port 5301" in out, f"journal: {out[:1500]}")
    et.check("EPMD_PORT=5301" in out, "no EPMD_PORT field")
    et.check("SYSLOG_IDENTIFIER=epmd-c" in out, "no SYSLOG_IDENTIFIER")
    et.check(re.search(r"EPMD_PEER=\S*\b127\.0\.0\.1\b", out),
             f"EPMD_PEER is not the loopback peer: {out[:1500]}")


# --- clients ----------------------------------------------------------------

@timed
def test_epmd_c_and_otp_epmd_names_clients_agree():
    fresh()
    activate()
    names = [f"rsdn{os.getpid()}{i}" for i in range(2)]
    socks = [register_fake(n, port=5200 + i) for i, n in enumerate(names)]
    try:
        want = "epmd: up and running on port 4369 with data:\n" + "".join(
            f"name {n} at port {5200 + i}\n" for i, n in enumerate(names))
        ours = C.run("epmd-c", "-names")
        otp = C.run("epmd", "-names")
        et.eq(sorted(ours.stdout.splitlines()), sorted(want.splitlines()), "epmd-c -names")
        et.eq(sorted(otp.stdout.splitlines()), sorted(want.splitlines()), "OTP epmd -names")
        et.eq(otp.stdout, ours.stdout, "the two clients")
    finally:
        for s in socks:
            s.close()


@timed
def test_real_erl_nodes_register_ping_and_see_each_other():
    need_erl()
    fresh()
    activate()
    a, b = erlnode.unique("rsda"), erlnode.unique("rsdb")
    with ErlHome() as home, erl_node(a, home) as na, erl_node(b, home, body=f'''
            A = N({erlnode.erl_string(a)}),
            Out("ping", Ping(A, 50)),
            Out("names", net_adm:names()),
            Out("done", ok)''') as nb:
        nb.result("done", timeout=30)
        res = nb.results()
        et.eq(res["ping"], "pong", f"ping from {b}; output {nb.output()}")
        erl_names = erlnode.parse_erl_names(res["names"])
        et.check(a in erl_names and b in erl_names, f"net_adm:names(): {erl_names}")
        et.eq(erl_names, listed(), "net_adm:names() vs NAMES")
        otp = C.run("epmd", "-names").stdout
        et.check(f"name {a} at port {erl_names[a]}" in otp, f"epmd -names: {otp!r}")
        et.check(na.alive(), "node a died")


# --- restarts and crashes, as they are today ----------------------------------
# Today a restart empties the registry and nodes register again by themselves
# about 2 s later. What is tested here stays true once the registry survives:
# the service comes back, the socket never stops accepting, nodes are listed
# again within seconds and still reach each other.

def restart_scenario(action, what):
    need_erl()
    fresh()
    pid = activate()
    a, b = erlnode.unique("rsra"), erlnode.unique("rsrb")
    with ErlHome() as home, erl_node(a, home) as na:
        full_a = erlnode.atom_text(na.result("node", timeout=30))
        wait_listed([a], timeout=20)
        nr = int(C.prop(SERVICE, "NRestarts"))
        with Lookups() as lk:
            time.sleep(0.3)
            t0 = time.monotonic()
            action(pid)
            new = int(C.wait_prop(SERVICE, "MainPID", lambda v: v not in ("0", str(pid)),
                                  timeout=15))
            C.wait_active(SERVICE, timeout=10)
            back = wait_listed([a], timeout=15)
            took = time.monotonic() - t0
            time.sleep(0.3)
        note(f"{what}: daemon {pid} -> {new}, {a} listed again {took:.1f} s after; "
             f"lookups: {lk.summary()}")
        et.eq(lk.refused, 0, f"connections refused during {what}: {lk.summary()}")
        et.check(lk.ok > 0, f"no lookup answered: {lk.summary()}")
        et.check(back < 15, "node back in time")
        et.eq(C.prop(SOCKET, "ActiveState"), "active", "socket after " + what)
        nb = erl_once(b, home, f'''
            A = N({erlnode.erl_string(a)}),
            Out("ping", Ping(A, 50)),
            Out("rpc", R(A, erlang, node, [])),
            Out("names", net_adm:names())''')
        res = nb.results()
        et.eq(res.get("ping"), "pong", f"ping after {what}; output {nb.output()}")
        et.eq(erlnode.atom_text(res.get("rpc", "")), full_a, "rpc after " + what)
        et.check(a in erlnode.parse_erl_names(res["names"]), f"names: {res['names']}")
        et.check(na.alive(), f"node died across the {what}")
        return nr


@timed
def test_systemctl_restart_with_erl_nodes_registered():
    nr = restart_scenario(lambda pid: C.systemctl("restart", SERVICE), "systemctl restart")
    et.eq(int(C.prop(SERVICE, "NRestarts")), nr, "a manual restart is not counted")


@timed
def test_kill_9_with_erl_nodes_registered_restarts_on_failure():
    nr = restart_scenario(lambda pid: C.run("kill", "-9", str(pid)), "kill -9")
    et.eq(int(C.prop(SERVICE, "NRestarts")), nr + 1, "Restart=on-failure after SIGKILL")


# --- the system epmd, beside Debian's epmd.socket ------------------------------

@timed
def test_enabled_as_the_system_epmd_takes_over_debian_epmd_socket_and_gives_it_back():
    if not C.run("test", "-f", "/lib/systemd/system/epmd.socket", check=False).returncode == 0:
        raise et.Skip("erlang-base's epmd.socket is not installed")
    fresh()
    C.systemctl("stop", SOCKET)
    # Debian's epmd, enabled and serving, as erlang-base leaves a host
    C.systemctl("enable", "--now", "epmd.socket")
    try:
        et.eq(C.run("epmd", "-names").stdout, "epmd: up and running on port 4369 with data:\n",
              "Debian's epmd")
        et.eq(C.props("epmd.service", "Id", "ExecMainPID", "FragmentPath")["FragmentPath"],
              "/lib/systemd/system/epmd.service", "Debian's epmd.service ran")
        # the takeover, as man/epmd-c.8 tells the administrator
        C.systemctl("stop", "epmd.socket", "epmd.service")
        C.systemctl("enable", "--now", SOCKET)
        for alias, target in (("epmd.socket", SOCKET), ("epmd.service", SERVICE)):
            link = C.run("readlink", f"/etc/systemd/system/{alias}").stdout.strip()
            et.eq(os.path.basename(link), target, f"alias {alias}")
            et.eq(C.prop(alias, "Id"), target, f"systemctl show {alias}")
        st = C.systemctl("status", "epmd.socket", check=False).stdout
        et.check("epmd-c.socket - Erlang Port Mapper Daemon (epmd-c)" in st,
                 f"systemctl status epmd.socket: {st}")
        et.eq(C.systemctl("is-enabled", SOCKET).stdout.strip(), "enabled", "is-enabled")
        # what units and erl use: the name epmd.socket, and port 4369
        C.systemctl("start", "epmd.socket")
        s = register_fake(f"rsdsys{os.getpid()}", port=5400)
        try:
            otp = C.run("epmd", "-names").stdout
            et.check(f"name rsdsys{os.getpid()} at port 5400" in otp, f"epmd -names: {otp!r}")
        finally:
            s.close()
        pid = C.main_pid("epmd.service")
        et.eq(C.run("readlink", f"/proc/{pid}/exe").stdout.strip(), "/usr/local/bin/epmd-c",
              "epmd.service's main process")
        C.systemctl("restart", "epmd.service")
        et.check(C.main_pid(SERVICE) not in (0, pid), "restart through the alias")
        # and back: disabling removes the aliases, Debian's units return
        C.systemctl("disable", "--now", SOCKET)
        C.systemctl("stop", SERVICE)
        et.eq(C.props("epmd.socket", "Id", "FragmentPath"),
              {"Id": "epmd.socket", "FragmentPath": "/lib/systemd/system/epmd.socket"},
              "epmd.socket after disable")
        C.systemctl("start", "epmd.socket")
        et.eq(C.run("epmd", "-names").stdout, "epmd: up and running on port 4369 with data:\n",
              "Debian's epmd again")
        et.eq(C.prop("epmd.service", "FragmentPath"), "/lib/systemd/system/epmd.service",
              "Debian's epmd.service again")
    finally:
        C.systemctl("disable", "--now", SOCKET, check=False)
        C.systemctl("disable", "--now", "epmd.socket", check=False)
        C.systemctl("stop", "epmd.service", SERVICE, check=False)


def main():
    return realsystemd.run_test_file("systemd layer (real systemd in a container)", globals())

if __name__ == "__main__":
    sys.exit(main())
