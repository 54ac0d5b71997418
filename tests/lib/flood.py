"""Floods from many remote addresses at once, and what local nodes see
meanwhile (issue 14: no remote peer can starve the host's nodes).

    peer namespace                              host namespace
    trickle (tests/tools/trickle.c)  -------->  the daemon (-address
      binds any address of a routed                netns.ADDRESSES)
      test prefix: 2001:db8:f1::/64,            LocalProbe: ALIVE2 and
      198.51.100.128/25, 203.0.113.0/24         PORT_PLEASE2 from 127.0.0.1

The namespaces are netns.py's; netns.route_to_peer() hands the peer a
whole prefix with two routes. trickle is one epoll process, compiled here
with cc into a temporary directory (tool()), run under `ip netns exec`
(which execs it, so its pid is ours to kill); it dies with its parent
(PR_SET_PDEATHSIG) and by alarm() at --duration + 10 s at the latest.
Each of its connections sends a valid-looking partial frame (TRICKLE: an
ALIVE2 announcing a 3000-byte body) one byte a second and is reopened when
the daemon closes it, so the pressure stays up. Trickle.stop() kills it
by pid.

A LocalProbe counts what local nodes experience while that runs:
registrations (ALIVE2 from 127.0.0.1: 76 00 and a creation) and lookups
(PORT_PLEASE2: the exact PORT2_RESP), each within PROBE_TIMEOUT seconds.

EPMD_FLOOD_BASELINE=1 makes new_flags() drop the issue-14 options, so the
same attacks run against a daemon that predates them (they then fail on
the local figures instead of at startup).
"""

import atexit
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import epmdtest as et  # noqa: E402
import netns  # noqa: E402

TOOLS = os.path.join(et.ROOT, "tests", "tools")
BASELINE = os.environ.get("EPMD_FLOOD_BASELINE") == "1"

# The attacker's networks (routed to the peer namespace), test ranges.
NET6 = "2001:db8:f1::/64"
NETS4 = ("198.51.100.128/25", "203.0.113.0/24")

# An ALIVE2 frame announcing a 3000-byte body: name of 200 bytes, extra of
# the rest. Never complete at a byte a second within a test.
TRICKLE = et.frame(et.alive2_body("t" * 200, port=7000,
                                  extra=b"x" * (3000 - 11 - 200 - 2)))
assert len(TRICKLE) == 3002

PROBE_TIMEOUT = 3.0

_built = {}
_tmp = []


def log(msg):
    sys.stderr.write(f"# {msg}\n")
    sys.stderr.flush()


def new_flags(*args):
    """args, or none of them with EPMD_FLOOD_BASELINE=1."""
    return [] if BASELINE else list(args)


def tool(name):
    """tests/tools/NAME.c built with cc (once per process); its path.
    Skips if there is no C compiler."""
    if name in _built:
        return _built[name]
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc or not shutil.which(cc.split()[0]):
        raise et.Skip("no C compiler to build tests/tools")
    if not _tmp:
        _tmp.append(tempfile.mkdtemp(prefix="epmdc-tools-"))
        atexit.register(shutil.rmtree, _tmp[0], True)
    out = os.path.join(_tmp[0], name)
    p = subprocess.run(cc.split() + ["-std=c11", "-O2", "-D_GNU_SOURCE",
                                     "-Wall", "-o", out,
                                     os.path.join(TOOLS, name + ".c")],
                       capture_output=True, text=True, timeout=60)
    et.check(p.returncode == 0, f"building tests/tools/{name}.c: "
             f"{p.stderr[-2000:]}")
    _built[name] = out
    return out


def addresses(net, count, first=1):
    """count addresses of net from its first+1-th on, as text."""
    n = ipaddress.ip_network(net)
    et.check(count + first < n.num_addresses, f"{net} holds too few")
    return [str(n[first + i]) for i in range(count)]


def spread(nets, count):
    """count addresses taken in turn from each of nets."""
    per = [addresses(net, (count + len(nets) - 1) // len(nets))
           for net in nets]
    return [per[i % len(nets)][i // len(nets)] for i in range(count)]


def prefix_of(addr, v6_len=64, v4_len=24):
    """The prefix an address is counted in, as text (2001:db8:f1::/64)."""
    a = ipaddress.ip_address(addr)
    bits = v6_len if a.version == 6 else v4_len
    return str(ipaddress.ip_network(f"{a}/{bits}", strict=False))


def daemon_cpu_ns(pid):
    """The daemon's on-CPU time so far, in ns (schedstat, else
    utime+stime)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return int(et.cpu_seconds(pid) * 1_000_000_000)


class Trickle:
    """tests/tools/trickle.c in the peer namespace of ns, aimed at the
    daemon's port on host. mode "hold": per connections from each of
    sources, trickling frame one byte every interval seconds, reopened
    when closed (rate connects a second at most). mode "churn": one idle
    connection per source held, then count connections from churn (in
    turn), conc at once, each sending frame and reading until closed.
    Its JSON lines are collected as they come (events())."""

    def __init__(self, ns, port, sources, host=netns.HOST_ADDR6, per=1,
                 frame=TRICKLE, interval=1.0, duration=40.0, rate=5000,
                 mode="hold", churn=(), conc=32, count=10000):
        self.dir = tempfile.mkdtemp(prefix="epmdc-flood-")
        src = os.path.join(self.dir, "sources")
        with open(src, "w") as f:
            f.write("\n".join(sources) + "\n")
        argv = [tool("trickle"), "--dst", host, "--port", str(port),
                "--sources", src, "--mode", mode, "--per", str(per),
                "--frame", frame.hex(), "--interval-ms",
                str(max(1, int(interval * 1000))), "--rate", str(rate),
                "--duration", str(duration), "--conc", str(conc),
                "--count", str(count)]
        if churn:
            path = os.path.join(self.dir, "churn")
            with open(path, "w") as f:
                f.write("\n".join(churn) + "\n")
            argv += ["--churn", path]
        self.duration = duration
        self.err = tempfile.TemporaryFile()
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns.peer] + argv,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self.err, preexec_fn=et._die_with_parent())
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                ev = json.loads(raw)
            except ValueError:
                continue
            with self.cond:
                self.lines.append(ev)
                self.cond.notify_all()
        with self.cond:
            self.lines.append({"event": "exit"})
            self.cond.notify_all()

    def events(self):
        with self.cond:
            return list(self.lines)

    def last(self):
        """The latest statistics line ({} before the first)."""
        for ev in reversed(self.events()):
            if ev["event"] in ("stats", "end", "held", "done"):
                return ev
        return {}

    def wait_event(self, name, timeout):
        """The first line of event name; raises if it does not come."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.lines:
                    if ev["event"] == name:
                        return ev
                    if ev["event"] == "exit":
                        raise AssertionError(
                            f"trickle ended before '{name}': "
                            f"{self.stderr()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"trickle: no '{name}' within "
                                         f"{timeout:g} s")
                self.cond.wait(min(left, 0.5))

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")[-2000:]

    def stop(self):
        """Kill it (by pid) and wait; returns its last statistics."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.reader.join(timeout=5)
        shutil.rmtree(self.dir, True)
        return self.last()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class LocalProbe:
    """Local nodes during an attack: `threads` loops, each registering a
    fresh name from 127.0.0.1, looking it up, and letting it go, every
    request within PROBE_TIMEOUT. start(), then stop() for the counts."""

    def __init__(self, port, threads=2, pause=0.1, timeout=PROBE_TIMEOUT):
        self.port = port
        self.pause = pause
        self.timeout = timeout
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.count = {"register": [0, 0], "lookup": [0, 0]}
        self.bad = {"register": [], "lookup": []}
        self.slowest = 0.0
        self.took = []
        self.workers = [threading.Thread(target=self._loop, args=(i,),
                                         daemon=True)
                        for i in range(threads)]

    def start(self):
        for w in self.workers:
            w.start()
        return self

    def _note(self, kind, ok, what, took):
        with self.lock:
            self.count[kind][1] += 1
            self.slowest = max(self.slowest, took)
            self.took.append(took)
            if ok:
                self.count[kind][0] += 1
            elif len(self.bad[kind]) < 5:
                self.bad[kind].append(what)

    def _register(self, name, port):
        """(socket or None, what happened)."""
        try:
            s = et.connect(self.port, timeout=self.timeout)
        except OSError as e:
            return None, f"connect: {e!r}"
        try:
            s.sendall(et.frame(et.alive2_body(name, port=port)))
            reply = et.read_exact(s, 6, self.timeout)
        except OSError as e:
            s.close()
            return None, f"{e!r}"
        if len(reply) == 6 and reply[:2] == b"\x76\x00":
            return s, "ok"
        s.close()
        return None, f"reply {reply.hex() or 'none'}"

    def _loop(self, tid):
        i = 0
        while not self.halt.is_set():
            i += 1
            name, port = f"probe{tid}n{i}", 20000 + tid * 1000 + i % 1000
            t = time.monotonic()
            s, what = self._register(name, port)
            self._note("register", s is not None, what,
                       time.monotonic() - t)
            if s is None:
                name = "stable"
                port = 4369 + 1
            t = time.monotonic()
            try:
                got = et.lookup(self.port, name, timeout=self.timeout)
            except OSError as e:
                got = repr(e).encode()
            want = et.port2(name, port)
            self._note("lookup", got == want, f"{name}: {got[:24]!r}",
                       time.monotonic() - t)
            if s is not None:
                s.close()
            self.halt.wait(self.pause)

    def stop(self):
        self.halt.set()
        for w in self.workers:
            w.join(self.timeout * 3 + 5)
        return self

    def rate(self, kind):
        ok, n = self.count[kind]
        return ok / n if n else 0.0

    def quantile(self, q):
        took = sorted(self.took)
        return took[min(len(took) - 1, int(q * len(took)))] if took else 0.0

    def summary(self):
        return ", ".join(
            f"{k} {ok}/{n} ({100.0 * ok / n if n else 0:.0f} %)"
            for k, (ok, n) in self.count.items()) + \
            f"; p50 {self.quantile(0.5) * 1000:.0f} ms, p90 " \
            f"{self.quantile(0.9) * 1000:.0f} ms, slowest " \
            f"{self.slowest:.2f} s"

    def check(self, what, floor=0.9, min_tries=50):
        """At least floor of the registrations and of the lookups worked."""
        for kind in ("register", "lookup"):
            ok, n = self.count[kind]
            et.check(n >= min_tries and ok >= floor * n,
                     f"{what}: local {kind} succeeded {ok} of {n} "
                     f"({100.0 * ok / n if n else 0:.1f} %, want >= "
                     f"{100 * floor:.0f} % of >= {min_tries}); "
                     f"{self.summary()}; e.g. {self.bad[kind][:3]}")


def stable_node(port):
    """Register the node 'stable' from loopback (the probes look it up
    when their own registration failed); returns its socket."""
    s, _creation = et.register_ok(port, "stable", port=4369 + 1)
    return s


def attack(ns, d, sources, per, seconds, host=netns.HOST_ADDR6,
           ramp=3.0, during=None, threads=2, rate=5000):
    """Flood daemon d from sources (per connections each, trickling) and
    probe it from loopback for `seconds` once the attack has ramped up;
    during(trickle), if given, runs alongside the probe. Returns (probe,
    attacker's last statistics, daemon's descriptors at the end)."""
    held = stable_node(d.port)
    try:
        with Trickle(ns, d.port, sources, host=host, per=per,
                     duration=ramp + seconds + 15, rate=rate) as tr:
            time.sleep(ramp)
            probe = LocalProbe(d.port, threads=threads).start()
            try:
                end = time.monotonic() + seconds
                if during:
                    during(tr)
                left = end - time.monotonic()
                if left > 0:
                    time.sleep(left)
            finally:
                probe.stop()
            fds = et.proc_fds(d.pid) if d.alive() else None
            st = tr.last()
        log(f"{len(sources)} addresses x {per} trickling connections, "
            f"{seconds:g} s: attacker {st.get('open')} open, "
            f"{st.get('connects')} connects, {st.get('closed_by_peer')} "
            f"closed by the daemon (lifetime avg "
            f"{st.get('life_avg_ms', 0) / 1000:.1f} s, max "
            f"{st.get('life_max_ms', 0) / 1000:.1f} s); daemon fds {fds}; "
            f"local: {probe.summary()}")
        et.check(d.alive(), f"daemon died: {d.stderr()[-2000:]}")
        return probe, st, fds
    finally:
        held.close()


def old_bucket(addr):
    """The bucket hash src/peercount.c used before issue 14 (FNV-1a over
    the family byte and the 16 address bytes, folded), for IPv6."""
    h = 1469598103934665603
    for b in bytes([10]) + ipaddress.ip_address(addr).packed:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h ^ (h >> 32)


def colliding(prefix48, count, bits, seed, random_set=False):
    """count IPv6 addresses below prefix48 (a /48) whose old bucket hash
    agrees in its low bits bits (tests/tools/fnvcollide.c), or as many
    plain random ones."""
    argv = [tool("fnvcollide"), prefix48, str(count), str(bits), str(seed)]
    if random_set:
        argv.append("random")
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    et.eq(p.returncode, 0, f"fnvcollide: {p.stderr}")
    out = p.stdout.split()
    et.eq(len(set(out)), count, "distinct generated addresses")
    return out


def frame_of_lookup(name):
    """A whole PORT_PLEASE2 frame."""
    return et.frame(b"z" + name.encode())
