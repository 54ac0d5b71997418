#!/usr/bin/env python3
"""The metrics endpoint (-metrics ADDR:PORT) and -stats.

Each test starts the real daemon on free loopback ports, sends a known
workload and reads GET /metrics back: every counter must move by exactly
the traffic sent. The output is checked by `promtool check metrics`, and
one test runs a real Prometheus server that scrapes the daemon and answers
a query through its HTTP API. Remote peers (refusals of admin requests and
the per-peer cap) come from a network namespace, as in test_remote.py.
"""

import functools
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import epmdtest as et  # noqa: E402

ROOT = et.ROOT
LAUNCHER = os.path.join(ROOT, "tests", "systemd", "listen_exec.py")
RULES = os.path.join(ROOT, "contrib", "prometheus", "epmd-c.rules.yml")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
CONTENT_TYPE = "text/plain; version=0.0.4"

# Every sample the endpoint must always render.
FAMILIES = {
    "epmd_nodes": "gauge",
    "epmd_registrations_total": "counter",
    "epmd_unregistrations_total": "counter",
    "epmd_requests_total": "counter",
    "epmd_lookups_total": "counter",
    "epmd_refused_total": "counter",
    "epmd_malformed_total": "counter",
    "epmd_timeouts_total": "counter",
    "epmd_connections": "gauge",
    "epmd_accept_paused_total": "counter",
    "epmd_shed_total": "counter",
    "epmd_log_dropped_total": "counter",
    "epmd_restarts_total": "counter",
    "epmd_restored_nodes": "gauge",
    "epmd_build_info": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_start_time_seconds": "gauge",
    "process_cpu_seconds_total": "counter",
}
LABELS = {
    "epmd_registrations_total": ("result", ["ok", "duplicate", "invalid",
                                            "refused"]),
    "epmd_requests_total": ("request", ["alive2", "port_please2", "names",
                                        "dump", "kill", "stop"]),
    "epmd_lookups_total": ("result", ["found", "not_found"]),
    "epmd_refused_total": ("reason", ["remote_admin", "access_list",
                                      "peer_cap", "fd_reserve"]),
}


def reg(result):
    return f'epmd_registrations_total{{result="{result}"}}'


def req(request):
    return f'epmd_requests_total{{request="{request}"}}'


def lookup(result):
    return f'epmd_lookups_total{{result="{result}"}}'


def refused(reason):
    return f'epmd_refused_total{{reason="{reason}"}}'


# The samples a workload moves; the process family moves on its own.
EPMD_SAMPLES = (
    ["epmd_nodes", "epmd_unregistrations_total", "epmd_malformed_total",
     "epmd_timeouts_total", "epmd_connections", "epmd_accept_paused_total",
     "epmd_shed_total", "epmd_log_dropped_total", "epmd_restarts_total",
     "epmd_restored_nodes"]
    + [f'{fam}{{{label}="{v}"}}' for fam, (label, vals) in LABELS.items()
       for v in vals])


# ------------------------------------------------------------------ helpers

def mtest(fn):
    """@et.test for epmd-c's own metrics: skipped against the reference."""
    @functools.wraps(fn)
    def wrapper():
        if os.environ.get("EPMD_REFERENCE_MODE") == "1":
            raise et.Skip("epmd-c's metrics; OTP's epmd has none")
        fn()
    return et.test(wrapper)


def http_get(port, path="/metrics", host="127.0.0.1", method="GET",
             timeout=5.0):
    """(status, headers dict, body bytes) of one HTTP request."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def parse(text):
    """Samples of exposition text as {"name{labels}": float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def scrape(port, host="127.0.0.1"):
    status, hdrs, body = http_get(port, host=host)
    et.eq(status, 200, "GET /metrics status")
    et.eq(hdrs.get("content-type"), CONTENT_TYPE, "Content-Type")
    return parse(body.decode())


def delta(before, after, keys=EPMD_SAMPLES):
    """The samples that changed, as {key: after - before}."""
    return {k: after[k] - before[k] for k in keys
            if after[k] != before[k]}


class MDaemon(et.Daemon):
    """The daemon with -metrics on a free loopback port."""

    def __init__(self, args=(), mhost="127.0.0.1", **kw):
        self.mport = et.free_port()
        self.mhost = mhost
        spec = f"[{mhost}]:{self.mport}" if ":" in mhost else \
            f"{mhost}:{self.mport}"
        super().__init__(args=["-metrics", spec] + list(args), **kw)
        if not et.wait_port(self.mport, mhost):
            self.stop()
            raise RuntimeError(f"no metrics listener: {self.stderr()}")

    def scrape(self):
        return scrape(self.mport, self.mhost)


def listening_ports(pid):
    """TCP ports pid listens on (from /proc: its sockets in LISTEN)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", link)
        if m:
            inodes.add(m.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == "0A" and parts[9] in inodes:
                    ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


def promtool(*args, data=None):
    if not os.access(PROMTOOL, os.X_OK):
        raise et.Skip("promtool is not installed (Debian: prometheus)")
    p = subprocess.run([PROMTOOL, *args], input=data, capture_output=True,
                       timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode()


def low_fd_limit(n):
    """A preexec that caps descriptors at n (soft and hard)."""
    def fn():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return fn


# -------------------------------------------------------------------- tests

@mtest
def test_off_by_default_no_listener_but_the_epmd_port():
    with et.Daemon() as d:
        et.eq(listening_ports(d.pid), {d.port}, "listening ports")


@mtest
def test_listens_only_where_told():
    with MDaemon() as d:
        et.eq(listening_ports(d.pid), {d.port, d.mport}, "listening ports")
        # Nothing answers on the metrics port of the other loopback.
        try:
            with socket.create_connection(("::1", d.mport), timeout=1):
                raise AssertionError("metrics port answers on ::1 too")
        except ConnectionRefusedError:
            pass


@mtest
def test_second_daemon_on_a_served_port_still_exits_0():
    with MDaemon() as d:
        rc, _out, err = et.run([et.EPMD_BIN, "-port", str(d.port),
                                "-address", "127.0.0.1", "-metrics",
                                f"127.0.0.1:{d.mport}"], timeout=10)
        et.eq(rc, 0, f"second daemon ({err!r})")
        et.check(b"already in use" in err, err)
        et.check(d.alive(), "first daemon died")
        et.eq(d.scrape()["epmd_nodes"], 0.0, "first daemon still scraped")


@mtest
def test_metrics_port_in_use_is_fatal():
    with MDaemon() as d:
        port = et.free_port()
        rc, _out, err = et.run([et.EPMD_BIN, "-port", str(port),
                                "-address", "127.0.0.1", "-metrics",
                                f"127.0.0.1:{d.mport}"], timeout=10)
        et.eq(rc, 1, f"status ({err!r})")
        et.check(f"cannot serve metrics on 127.0.0.1:{d.mport}".encode()
                 in err, err)


@mtest
def test_get_metrics_every_family_with_help_and_type():
    with MDaemon() as d:
        status, hdrs, body = http_get(d.mport)
        et.eq(status, 200, "status")
        et.eq(hdrs.get("content-type"), CONTENT_TYPE, "Content-Type")
        text = body.decode()
        for fam, typ in FAMILIES.items():
            et.check(f"\n# HELP {fam} " in "\n" + text, f"HELP of {fam}")
            et.check(f"\n# TYPE {fam} {typ}\n" in "\n" + text,
                     f"TYPE {typ} of {fam}")
        s = parse(text)
        for key in EPMD_SAMPLES:
            et.eq(s.get(key), 0.0, key)
        et.eq(s.get('epmd_build_info{version="0.1.0"}'), 1.0, "build_info")
        # HEAD: the headers, no body.
        status, hdrs, body = http_get(d.mport, method="HEAD")
        et.eq((status, body), (200, b""), "HEAD /metrics")


@mtest
def test_promtool_check_metrics_is_clean():
    with MDaemon() as d:
        s, _r = et.register(d.port, "promnode")
        try:
            _st, _h, body = http_get(d.mport)
        finally:
            s.close()
    rc, out = promtool("check", "metrics", data=body)
    et.eq((rc, out.strip()), (0, ""), "promtool check metrics")


@mtest
def test_other_paths_404_other_methods_405():
    with MDaemon() as d:
        for path in ("/", "/metrics/", "/metricsx", "/stats", "/favicon.ico"):
            et.eq(http_get(d.mport, path)[0], 404, f"GET {path}")
        et.eq(http_get(d.mport, "/metrics?x=1")[0], 200, "query string")
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
            status, hdrs, _b = http_get(d.mport, method=method)
            et.eq(status, 405, f"{method} /metrics")
            et.eq(hdrs.get("allow"), "GET, HEAD", f"{method}: Allow")
        et.eq(http_get(d.mport, "/other", method="POST")[0], 404,
              "POST /other")
        # Garbage and an oversized header get an error or a close.
        for junk in (b"\x00\x01n\r\n\r\n", b"GET /metrics HTTP/1.1\r\n" +
                     b"X: " + b"a" * 20000 + b"\r\n\r\n",
                     b"BREW /metrics HTTP/1.1\r\n\r\n"):
            with et.connect(d.mport) as s:
                try:
                    s.sendall(junk)
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                got = et.read_until_close(s)
            et.check(got == b"" or re.match(rb"HTTP/1\.[01] [45]\d\d ", got),
                     f"{junk[:20]!r} got {got[:60]!r}")
        et.eq(d.scrape()["epmd_nodes"], 0.0, "still serving")
        et.check(d.alive(), "daemon died")


@mtest
def test_ipv6_metrics_address():
    with MDaemon(mhost="::1", address="::1") as d:
        s = d.scrape()
        et.eq(s["epmd_nodes"], 0.0, "epmd_nodes over [::1]")
        et.eq(listening_ports(d.pid), {d.port, d.mport}, "listening ports")
        rc, out, err = et.run([et.EPMD_BIN, "-metrics", f"[::1]:{d.mport}",
                               "-stats"])
        et.eq(rc, 0, f"-stats over [::1] ({err!r})")
        et.check(out.startswith(f"epmd-c 0.1.0, metrics from "
                                f"[::1]:{d.mport}\n".encode()), out)


@mtest
def test_epmd_port_does_not_serve_http():
    with MDaemon() as d:
        before = d.scrape()
        got = et.request(d.port, b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        et.eq(got, b"", "reply of the epmd port to an HTTP request")
        after = d.scrape()
        et.eq(delta(before, after), {"epmd_malformed_total": 1}, "deltas")


@mtest
def test_workload_moves_each_counter_by_exactly_the_traffic():
    with MDaemon(["-packet_timeout", "1"]) as d:
        before = d.scrape()
        a, r = et.register(d.port, "alpha")
        et.eq(r[:2], b"\x76\x00", "register alpha")
        b, r = et.register(d.port, "beta")
        et.eq(r[:2], b"\x76\x00", "register beta")
        dup, r = et.register(d.port, "alpha")
        et.eq(r[:2], b"\x76\x01", "duplicate alpha")
        dup.close()
        bad, r = et.register(d.port, b"bad\xffname")
        et.eq(r[:2], b"\x76\x01", "invalid name")
        bad.close()
        for name in ("alpha", "beta", "alpha"):
            et.check(et.port_please(d.port, name)[:2] == b"\x77\x00", name)
        for name in ("nosuch", "gamma"):
            et.eq(et.port_please(d.port, name), b"\x77\x01", name)
        for _ in range(3):
            et.names(d.port)
        et.request(d.port, et.frame(b"d"))
        et.eq(et.request(d.port, et.frame(b"k")), b"NO", "KILL refused")
        et.eq(et.request(d.port, et.frame(b"salpha")), b"", "STOP strict")
        # Malformed: bad sizes, an unknown code, a short ALIVE2.
        for data in (b"\x00\x00", b"\x0f\xff" + b"x" * 10, et.frame(b"\x01"),
                     et.frame(b"x\x00\x01")):
            et.eq(et.request(d.port, data), b"", f"malformed {data!r}")
        # Held idle: counted in epmd_connections; then timed out.
        idle = [et.connect(d.port) for _ in range(3)]
        partial = et.connect(d.port)
        partial.sendall(b"\x00\x05zab")
        mid = et.eventually(lambda: d.scrape()["epmd_connections"] == 4.0,
                            timeout=1.5)
        et.check(mid, "epmd_connections did not reach 4")
        for s in idle + [partial]:
            et.check(et.is_closed(s, 6.0), "idle connection not timed out")
            s.close()
        b.close()
        et.check(et.eventually(lambda: d.scrape()["epmd_nodes"] == 1.0),
                 "beta not unregistered")
        after = d.scrape()
        a.close()
    et.eq(delta(before, after), {
        "epmd_nodes": 1,
        reg("ok"): 2, reg("duplicate"): 1, reg("invalid"): 1,
        req("alive2"): 4, req("port_please2"): 5, req("names"): 3,
        req("dump"): 1, req("kill"): 1, req("stop"): 1,
        lookup("found"): 3, lookup("not_found"): 2,
        "epmd_unregistrations_total": 1,
        "epmd_malformed_total": 4,
        "epmd_timeouts_total": 4,
    }, "deltas")


@mtest
def test_stop_counts_an_unregistration():
    with MDaemon(["-relaxed_command_check"]) as d:
        before = d.scrape()
        s, _r = et.register(d.port, "victim")
        et.eq(et.request(d.port, et.frame(b"svictim")), b"STOPPED", "STOP")
        et.eq(et.request(d.port, et.frame(b"snosuch")), b"NOEXISTSTOPPED",
              "STOP unknown")
        et.check(et.is_closed(s), "victim's connection stays open")
        s.close()
        after = d.scrape()
    et.eq(delta(before, after), {reg("ok"): 1, req("alive2"): 1,
                                 req("stop"): 2,
                                 "epmd_unregistrations_total": 1},
          "deltas")


@mtest
def test_build_info_and_process_family():
    with MDaemon() as d:
        t0 = time.time()
        s1 = d.scrape()
        ver = [k for k in s1 if k.startswith("epmd_build_info{")]
        et.eq(ver, ['epmd_build_info{version="0.1.0"}'], "build_info")
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        with open(f"/proc/{d.pid}/limits") as f:
            lim = [line for line in f if line.startswith("Max open files")]
        et.eq(s1["process_max_fds"], float(lim[0].split()[3]),
              "process_max_fds vs /proc/PID/limits")
        start = s1["process_start_time_seconds"]
        et.check(t0 - 30 < start <= t0 + 1, f"start time {start} vs {t0}")
        et.check(s1["process_resident_memory_bytes"] > 100000, "rss")
        et.check(s1["process_cpu_seconds_total"] >= 0, "cpu")
        held = [et.connect(d.port) for _ in range(20)]
        try:
            ok = et.eventually(lambda: d.scrape()["process_open_fds"] ==
                               s1["process_open_fds"] + 20, timeout=3)
            et.check(ok, "process_open_fds did not rise by 20")
            # While scraping, the HTTP connection is one more descriptor;
            # the last scrape's may linger until the daemon sees it close.
            def matches():
                n = len(os.listdir(f"/proc/{d.pid}/fd"))
                got = d.scrape()["process_open_fds"]
                return got == n + 1 or (got, n)
            r = et.eventually(lambda: matches() is True, timeout=3)
            et.check(r, f"process_open_fds vs /proc/PID/fd + 1: {matches()}")
        finally:
            for s in held:
                s.close()
        et.eq(d.scrape()["process_start_time_seconds"], start,
              "start time is stable")


@mtest
def test_fd_reserve_refusal_is_counted():
    with MDaemon(preexec=low_fd_limit(64)) as d:
        before = d.scrape()
        socks, ok = [], 0
        try:
            for i in range(70):
                s, r = et.register(d.port, f"n{i}")
                socks.append(s)
                if r[:2] != b"\x76\x00":
                    break
                ok += 1
            et.check(0 < ok < 64, f"{ok} registrations before refusal")
            # The reserve keeps queries working.
            et.eq(et.names(d.port)[:4], d.port.to_bytes(4, "big"), "NAMES")
            after = d.scrape()
        finally:
            for s in socks:
                s.close()
    et.eq(delta(before, after), {
        "epmd_nodes": ok, reg("ok"): ok, reg("refused"): 1,
        req("alive2"): ok + 1, req("names"): 1, refused("fd_reserve"): 1,
    }, "deltas")


@mtest
def test_descriptor_exhaustion_counts_pauses_and_shed():
    with MDaemon(preexec=low_fd_limit(48)) as d:
        before = d.scrape()
        socks = []
        try:
            # More idle connections than descriptors: accept hits EMFILE.
            for _ in range(60):
                socks.append(et.connect(d.port))
            # A scrape waiting in the metrics backlog meets EMFILE too: the
            # metrics listener must pause, not spin on accept.
            scraper = socket.create_connection(("127.0.0.1", d.mport), 2)
            scraper.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            cpu0, t0 = et.cpu_seconds(d.pid), time.monotonic()
            time.sleep(1.0)
            busy = (et.cpu_seconds(d.pid) - cpu0) / (time.monotonic() - t0)
            et.check(busy < 0.5, f"daemon busy {busy:.0%} while out of "
                     "descriptors")
            # After 2 s of silence the oldest are shed, 16 per EMFILE.
            time.sleep(2.0)
            closed = et.eventually(
                lambda: sum(et.is_closed(s, 0.01) for s in socks) > 0,
                timeout=5)
            et.check(closed, "no connection was shed")
            time.sleep(0.5)
            shed = sum(1 for s in socks if et.is_closed(s, 0.01))
            # Once descriptors were freed, the waiting scrape was served.
            got = et.read_until_close(scraper, 5)
            et.check(got.startswith(b"HTTP/1.1 200") or
                     got.startswith(b"HTTP/1.0 200"), got[:60])
            scraper.close()
        finally:
            for s in socks:
                s.close()
        after = et.eventually(lambda: d.scrape(), timeout=5)
        dl = delta(before, after)
        et.check(dl.get("epmd_accept_paused_total", 0) >= 1,
                 f"accept pauses: {dl}")
        # Every connection the daemon closed on us was shed or timed out
        # (the packet timeout is 60 s: none did).
        et.eq(dl.get("epmd_shed_total"), shed, "epmd_shed_total")
        et.eq(dl.get("epmd_timeouts_total"), None, "timeouts")


def import_test_remote():
    """Network namespaces and a remote peer: tests/lib/netns.py where the
    shared library has it, else test_remote.py's, without its tests."""
    try:
        import netns
        return netns
    except ImportError:
        pass
    try:
        import test_remote as tr
    except ImportError as e:
        raise et.Skip(f"test_remote.py: {e}")
    # Importing registered its tests in epmdtest: they are not ours to run.
    et._tests[:] = [t for t in et._tests if t.__module__ != tr.__name__]
    return tr


@mtest
def test_remote_admin_and_peer_cap_refusals_are_counted():
    tr = import_test_remote()
    with tr.Netns() as ns:
        d = MDaemon(["-max_conns_per_peer", "3"], address=tr.HOST_ADDR)
        try:
            with tr.Remote(ns, d) as remote:
                et.check(et.eventually(
                    lambda: d.scrape()["epmd_connections"] == 0), "reach")
                before = d.scrape()
                res = remote.requests(
                    et.frame(et.alive2_body("intruder")), et.frame(b"d"),
                    et.frame(b"k"), et.frame(b"sintruder"),
                    et.frame(b"zintruder"), et.frame(b"n"))
                et.eq([r["reply"] == "" for r in res],
                      [True] * 4 + [False] * 2, "remote replies")
                held = remote.call("hold", count=5, expect_max=3, settle=5)
                et.eq((held["opened"], held["open"]), (5, 3), "held")
                mid = d.scrape()
                remote.call("release")
                et.check(et.eventually(
                    lambda: d.scrape()["epmd_connections"] == 0),
                    "held connections not closed")
                after = d.scrape()
        finally:
            d.stop()
    et.eq(mid["epmd_connections"], 3.0, "epmd_connections while held")
    et.eq(delta(before, after), {
        req("alive2"): 1, req("dump"): 1, req("kill"): 1, req("stop"): 1,
        req("port_please2"): 1, req("names"): 1, lookup("not_found"): 1,
        reg("refused"): 1, refused("remote_admin"): 4,
        refused("peer_cap"): 2,
    }, "deltas")


@mtest
def test_stats_prints_the_figures():
    with MDaemon() as d:
        s, _r = et.register(d.port, "statnode")
        try:
            et.port_please(d.port, "statnode")
            et.port_please(d.port, "nosuch")
            rc, out, err = et.run([et.EPMD_BIN, "-metrics",
                                   f"127.0.0.1:{d.mport}", "-stats"])
        finally:
            s.close()
    et.eq(rc, 0, f"-stats status ({err!r})")
    text = out.decode()
    et.check(text.startswith(f"epmd-c 0.1.0, metrics from "
                             f"127.0.0.1:{d.mport}\n"), text)
    for line in ("nodes:            1 registered",
                 "registrations:    1 (ok 1, duplicate 0, invalid 0, "
                 "refused 0)",
                 "lookups:          2 (found 1, not_found 1)",
                 "refused:          0 (remote_admin 0, access_list 0, "
                 "peer_cap 0, fd_reserve 0, prefix_cap 0, remote_cap 0)",
                 "restarts:         0"):
        et.check("\n" + line + "\n" in text, f"missing {line!r} in {text}")
    et.check(re.search(r"\ndescriptors:      \d+ open of \d+\n", text), text)
    et.check(re.search(r"\nlog dropped:      \d+\n", text), text)


@mtest
def test_stats_errors():
    rc, out, err = et.run([et.EPMD_BIN, "-stats"])
    et.eq((rc, out), (1, b""), "-stats without -metrics")
    et.check(b"-metrics" in err, err)
    port = et.free_port()
    rc, out, err = et.run([et.EPMD_BIN, "-metrics", f"127.0.0.1:{port}",
                           "-stats"])
    et.eq((rc, out), (1, b""), "-stats with nothing listening")
    et.check(f"127.0.0.1:{port}".encode() in err, err)
    for bad in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "::1:9",
                "[::1]", "host:9369", ""):
        rc, _out, err = et.run([et.EPMD_BIN, "-metrics", bad, "-stats"])
        et.eq(rc, 1, f"-metrics {bad!r}")
    # Some other HTTP server: a 404, then a 200 that is not ours.
    import http.server
    import threading

    class Other(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"foo 1\n" if self.server.ok else b"no\n"
            self.send_response(200 if self.server.ok else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    srv = http.server.HTTPServer(("127.0.0.1", 0), Other)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        spec = f"127.0.0.1:{srv.server_address[1]}"
        for ok, why in ((False, b"HTTP status 404"),
                        (True, b"serves no epmd-c metrics")):
            srv.ok = ok
            rc, out, err = et.run([et.EPMD_BIN, "-metrics", spec, "-stats"])
            et.eq((rc, out), (1, b""), f"-stats against {why!r}")
            et.check(why in err, err)
    finally:
        srv.shutdown()
        srv.server_close()


@mtest
def test_client_commands_unchanged_by_metrics():
    with MDaemon() as d:
        s, _r = et.register(d.port, "cli")
        try:
            rc, out, _e = et.run([et.EPMD_BIN, "-port", str(d.port),
                                  "-names"])
        finally:
            s.close()
    et.eq(rc, 0, "-names")
    et.eq(out.decode(), f"epmd: up and running on port {d.port} with "
          f"data:\nname cli at port 5001\n", "-names output")


@mtest
def test_systemd_socket_named_metrics():
    if not os.path.exists(LAUNCHER):
        raise et.Skip("tests/systemd/listen_exec.py is missing")
    port, mport = et.free_port(), et.free_port()
    argv = [sys.executable, LAUNCHER, "-l", f"127.0.0.1:{port}",
            "-l", f"127.0.0.1:{mport}",
            "-E", "LISTEN_FDNAMES=epmd-c.socket:metrics",
            "--", et.EPMD_BIN, "-systemd"]
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err,
                         stderr=err)
    try:
        et.check(et.wait_port(port) and et.wait_port(mport),
                 "no listeners")
        before = scrape(mport)
        s, r = et.register(port, "sdnode")
        et.eq(r[:2], b"\x76\x00", "register on the epmd socket")
        got = et.request(port, b"GET /metrics HTTP/1.0\r\n\r\n")
        et.eq(got, b"", "the epmd socket does not serve HTTP")
        # An epmd request on the metrics socket gets no epmd answer.
        with et.connect(mport) as m:
            m.sendall(et.frame(b"n"))
            m.shutdown(socket.SHUT_WR)
            got = et.read_until_close(m)
        et.check(got == b"" or got.startswith(b"HTTP/1."),
                 f"the metrics socket answered {got[:40]!r}")
        after = scrape(mport)
        s.close()
        et.eq(delta(before, after), {"epmd_nodes": 1, reg("ok"): 1,
                                     req("alive2"): 1,
                                     "epmd_malformed_total": 1}, "deltas")
    finally:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        err.seek(0)
        log = err.read().decode(errors="replace")
    et.check("metrics" in log, log)


@mtest
def test_socket_names_with_colons_still_serve_epmd():
    """An instance socket's default name (epmd-c@\\x5b::1\\x5d.socket)
    splits LISTEN_FDNAMES wrongly: every socket is then the port mapper's."""
    if not os.path.exists(LAUNCHER):
        raise et.Skip("tests/systemd/listen_exec.py is missing")
    port = et.free_port()
    argv = [sys.executable, LAUNCHER, "-l", f"[::1]:{port}",
            "-E", "LISTEN_FDNAMES=epmd-c@\\x5b::1\\x5d.socket",
            "--", et.EPMD_BIN, "-systemd"]
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err,
                         stderr=err)
    try:
        et.check(et.wait_port(port, "::1"), "no listener")
        et.eq(et.names(port, "::1")[:4], port.to_bytes(4, "big"), "NAMES")
    finally:
        p.terminate()
        p.wait(timeout=5)
        err.seek(0)
        log = err.read().decode(errors="replace")
    et.check("cannot obtain sockets" not in log, log)


@mtest
def test_metrics_option_naming_the_inherited_socket_adopts_it():
    if not os.path.exists(LAUNCHER):
        raise et.Skip("tests/systemd/listen_exec.py is missing")
    port, mport, other = et.free_port(), et.free_port(), et.free_port()
    argv = [sys.executable, LAUNCHER, "-l", f"127.0.0.1:{port}",
            "-l", f"127.0.0.1:{mport}",
            "-E", "LISTEN_FDNAMES=epmd-c.socket:metrics",
            "--", et.EPMD_BIN, "-systemd", "-metrics", f"127.0.0.1:{mport}"]
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err,
                         stderr=err)
    try:
        et.check(et.wait_port(port) and et.wait_port(mport), "no listeners")
        et.eq(scrape(mport)["epmd_nodes"], 0.0, "scrape")
        et.eq(listening_ports(p.pid), {port, mport}, "listening ports")
    finally:
        p.terminate()
        p.wait(timeout=5)
    # A different -metrics address is served beside the inherited socket.
    argv[argv.index(f"127.0.0.1:{mport}", 8)] = f"127.0.0.1:{other}"
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err,
                         stderr=err)
    try:
        et.check(et.wait_port(other) and et.wait_port(mport), "no listeners")
        et.eq(listening_ports(p.pid), {port, mport, other}, "both served")
        et.eq(scrape(other)["epmd_nodes"], 0.0, "scrape of -metrics")
    finally:
        p.terminate()
        p.wait(timeout=5)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@mtest
def test_sigusr2_upgrade_keeps_the_metrics_port_and_counts_the_restart():
    """The new process gets the metrics listener from the old one (it could
    not bind it), and says it restored the nodes."""
    d = MDaemon(["-d"])
    new = None
    socks = []
    try:
        for name in ("up1", "up2"):
            s, r = et.register(d.port, name)
            et.eq(r[:2], b"\x76\x00", f"register {name}")
            socks.append(s)
        before = d.scrape()
        et.eq(before["epmd_restarts_total"], 0.0, "restarts before")
        os.kill(d.pid, signal.SIGUSR2)
        m = et.eventually(lambda: re.search(r"handed over to pid (\d+) ",
                                            d.stderr()), timeout=15)
        et.check(m, f"no handover:\n{d.stderr()}")
        new = int(m.group(1))
        et.eq(d.wait(15), 0, "the old daemon's exit status")
        et.check(pid_alive(new), f"new daemon {new} not running")
        et.eq(listening_ports(new), {d.port, d.mport}, "new daemon's ports")
        after = d.scrape()
        et.eq(after["epmd_restarts_total"], 1.0, "epmd_restarts_total")
        et.eq(after["epmd_restored_nodes"], 2.0, "epmd_restored_nodes")
        et.eq(after["epmd_nodes"], 2.0, "epmd_nodes")
        et.check(after["process_start_time_seconds"] >=
                 before["process_start_time_seconds"], "a new process")
        et.eq(et.port_please(d.port, "up1")[:2], b"\x77\x00", "lookup")
    finally:
        for s in socks:
            s.close()
        if new is not None and pid_alive(new):
            os.kill(new, signal.SIGTERM)
            et.eventually(lambda: not pid_alive(new), 5)
            if pid_alive(new):
                os.kill(new, signal.SIGKILL)
        d.stop()


@et.test
def test_alert_rules_pass_promtool():
    rc, out = promtool("check", "rules", RULES)
    et.eq(rc, 0, f"promtool check rules: {out}")
    et.check("SUCCESS: 4 rules found" in out, out)


@mtest
def test_real_prometheus_scrapes_and_answers_a_query():
    if not os.access(PROMETHEUS, os.X_OK):
        raise et.Skip("prometheus is not installed")
    with MDaemon() as d, tempfile.TemporaryDirectory() as tmp:
        socks = [et.register(d.port, f"prom{i}")[0] for i in range(3)]
        pport = et.free_port()
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "rule_files:\n  - " + RULES + "\n"
                    "scrape_configs:\n  - job_name: epmd\n"
                    "    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{d.mport}']\n")
        log = open(os.path.join(tmp, "prometheus.log"), "wb")
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={cfg}",
             f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
             f"--web.listen-address=127.0.0.1:{pport}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            preexec_fn=et._die_with_parent())
        try:
            url = (f"http://127.0.0.1:{pport}/api/v1/query?query=" +
                   urllib.parse.quote('epmd_nodes{job="epmd"}'))

            def query():
                try:
                    with urllib.request.urlopen(url, timeout=2) as r:
                        res = json.load(r)["data"]["result"]
                except (OSError, ValueError, KeyError):
                    return None
                return res[0]["value"][1] if res else None
            got = et.eventually(lambda: query() == "3", timeout=60,
                                interval=0.5)
            et.check(got, f"Prometheus did not report 3 nodes "
                     f"(last: {query()!r})")
        finally:
            prom.terminate()
            try:
                prom.wait(timeout=10)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
            log.close()
            for s in socks:
                s.close()


if __name__ == "__main__":
    et.run_tests()
