"""The lookup_metrics scenario of bench/run: what -metrics costs.

epmd-c with `-metrics 127.0.0.1:P` (scraped once a second during the run,
as a busy Prometheus would never do) against the same epmd-c without it
and the null server, with the lookups scenario of loadgen; then the time
one scrape takes with 10,000 nodes registered. bench/run calls
lookup_metrics(bench, run) and rows(bench, table, run), passing itself as
`run` for its helpers.
"""

import http.client
import os
import resource
import shutil
import socket
import struct
import threading
import time

# 2% over the same daemon without -metrics, 1.1x the null server.
TARGET_VS_PLAIN = 1.02
TARGET_VS_NULL = 1.1


def metrics_port(daemon):
    """The port of a daemon started with -metrics 127.0.0.1:P."""
    return int(daemon.argv[daemon.argv.index("-metrics") + 1]
               .rsplit(":", 1)[1])


def get_metrics(port, timeout=5.0):
    """One GET /metrics; (seconds, body) or (None, None) on failure."""
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read()
        c.close()
    except (OSError, http.client.HTTPException):
        return None, None
    if r.status != 200:
        return None, None
    return time.monotonic() - t0, body


class Scraper:
    """Scrape once a second in a thread until stopped."""

    def __init__(self, port):
        self.port = port
        self.ok = 0
        self.failed = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        for _ in range(100000):
            if self.done.wait(1.0):
                return
            secs, _body = get_metrics(self.port, 2.0)
            if secs is None:
                self.failed += 1
            else:
                self.ok += 1

    def stop(self):
        self.done.set()
        self.thread.join(5)
        return {"ok": self.ok, "failed": self.failed}


def daemon_cpu_ns(pid):
    """The daemon's on-CPU time, as loadgen reads it (schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def alive2(name, port):
    n = name.encode()
    body = (struct.pack(">BHBBHHH", 120, port, 77, 0, 6, 5, len(n)) + n
            + struct.pack(">H", 0))
    return struct.pack(">H", len(body)) + body


def register_many(port, n, deadline):
    """Register n nodes from this process; returns the open sockets."""
    socks = []
    batch = 256
    for start in range(0, n, batch):
        if time.monotonic() > deadline:
            break
        group = []
        for i in range(start, min(n, start + batch)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            s.sendall(alive2(f"m{i:06d}", 10000 + i % 50000))
            group.append(s)
        for s in group:
            got = b""
            while len(got) < 6:
                chunk = s.recv(6 - len(got))
                if not chunk:
                    break
                got += chunk
            if got[:2] == b"\x76\x00":
                socks.append(s)
            else:
                s.close()
    return socks


def scrape_time(bench, run):
    """Time GET /metrics with metrics_scrape_nodes nodes registered."""
    c = bench.cfg
    n = c["metrics_scrape_nodes"]
    key = ("metrics_scrape", n)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < n + 200:
        bench.skipped.append(f"scrape with {n} nodes (fd limit {hard})")
        return
    if bench.out_of_time(10 + n / 2000):
        bench.skipped.append(f"scrape with {n} nodes")
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    run.log(f"lookup_metrics: scrape time with {n} nodes")
    d = bench.daemon(run.METRICS_DAEMON)
    socks = []
    try:
        if not d.start():
            bench.res.add(key, run.METRICS_DAEMON, {"status": "no start"})
            return
        mport = metrics_port(d)
        socks = register_many(d.port, n, time.monotonic() + run.REG_SECS)
        times, size, nodes = [], 0, None
        cpu0 = daemon_cpu_ns(d.proc.pid)
        for _ in range(c["metrics_scrapes"]):
            secs, body = get_metrics(mport)
            if secs is None:
                continue
            times.append(secs)
            size = len(body)
            for line in body.decode().splitlines():
                if line.startswith("epmd_nodes "):
                    nodes = float(line.split()[1])
        cpu = daemon_cpu_ns(d.proc.pid) - cpu0
        times.sort()
        bench.res.add(key, run.METRICS_DAEMON, {
            "status": d.status(), "registered": len(socks),
            "scrapes": len(times), "nodes_reported": nodes,
            "p50_ms": times[len(times) // 2] * 1e3 if times else None,
            "max_ms": times[-1] * 1e3 if times else None,
            "cpu_ms": cpu / 1e6 / len(times) if times else None,
            "bytes": size})
    finally:
        for s in socks:
            s.close()
        d.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def callgrind_ir(path):
    """The total instructions of a callgrind output file, or None."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("summary:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def instructions(bench, run):
    """Instructions per lookup inside the accept callback, with and
    without -metrics, counted by callgrind: exact where timing is noise."""
    c = bench.cfg
    valgrind = shutil.which("valgrind")
    key = ("metrics_ir", 1)
    if valgrind is None:
        bench.skipped.append("lookup_metrics instructions (no valgrind)")
        return
    secs = c["metrics_ir_secs"]
    for name in ("epmd-c", run.METRICS_DAEMON):
        if bench.out_of_time(secs + 10):
            bench.skipped.append(f"lookup_metrics instructions {name}")
            continue
        out = os.path.join(bench.logdir, f"callgrind.{len(name)}.out")
        d = bench.daemon(name)
        d.argv = [valgrind, "--tool=callgrind", "--toggle-collect=accept_cb",
                  f"--callgrind-out-file={out}"] + d.argv
        if not d.start():
            bench.res.add(key, name, {"status": "no start"})
            continue
        try:
            lines = run.run_loadgen(d, "lookups", [
                "--nodes", 1, "--rounds", 1, "--duration", secs, "--conc",
                16, "--reg-secs", run.REG_SECS], secs + 30, bench.logdir)
            ok = sum(p.get("ok", 0) for p in lines
                     if p.get("type") in ("register", "lookup"))
        finally:
            d.stop()
        ir = callgrind_ir(out)
        bench.res.add(key, name, {"status": d.status(), "lookups": ok,
                                  "ir": ir})


def lookup_metrics(bench, run):
    """Lookups against epmd-c with and without -metrics, and null."""
    c = bench.cfg
    n = c["metrics_nodes"]
    conc = c["lookup_conc"]
    secs = c["lookup_secs"] * len(conc)
    key = ("lookup_metrics", n)
    names = ["epmd-c", run.METRICS_DAEMON, "null"]
    run.log(f"lookup_metrics: {n} nodes, epmd-c with and without -metrics, "
            f"clients {conc}")
    for rnd in range(c["rounds"]):
        for name in names:
            if bench.out_of_time(secs + 2 + n / 5000):
                bench.skipped.append(f"lookup_metrics {name} round {rnd + 1}")
                continue
            d = bench.daemon(name)
            if not d.start():
                bench.res.add(key, name, {"status": "no start"})
                run.log(f"  {name}: did not start (see {d.logpath})")
                continue
            scraper = None
            try:
                if name == run.METRICS_DAEMON:
                    scraper = Scraper(metrics_port(d))
                lines = run.run_loadgen(
                    d, "lookups",
                    ["--nodes", n, "--rounds", 1, "--duration",
                     c["lookup_secs"], "--conc", ",".join(map(str, conc)),
                     "--reg-secs", run.REG_SECS],
                    run.REG_SECS + secs + 3 * 2.5 + 10, bench.logdir)
                summary = run.summarise_lookups(lines)
                summary["status"] = d.status() if lines else "no result"
            finally:
                if scraper is not None:
                    summary_scrapes = scraper.stop()
                d.stop()
            if scraper is not None:
                summary["scrapes"] = summary_scrapes
            bench.res.add(key, name, summary)
    scrape_time(bench, run)
    instructions(bench, run)


def rows(bench, t, run):
    """The lookup_metrics section of the table, if it ran."""
    res, c = bench.res, bench.cfg
    n = c["metrics_nodes"]
    key = ("lookup_metrics", n)
    if key not in res.data:
        return
    m = run.METRICS_DAEMON
    t.section(f"lookup_metrics: {n} nodes; epmd-c with -metrics (scraped "
              "every 1 s) in the epmd-c column, null beside")

    def cpu(name, conc):
        rounds = [r for r in res.rounds(key, name)
                  if conc in r.get("phases", {})]
        return run.med([r["phases"][conc]["cpu_per_req_ns"] / 1e3
                        for r in rounds])

    for conc in c["lookup_conc"]:
        vm, vp, vn = cpu(m, conc), cpu("epmd-c", conc), cpu("null", conc)
        tgt = ""
        if vm is not None and vp:
            tgt = (f"≤ {TARGET_VS_PLAIN:.2f}× without: "
                   f"{run.verdict(vm <= TARGET_VS_PLAIN * vp)} "
                   f"({vm / vp:.3f}×)")
        if vm is not None and vn:
            tgt += (f"; ≤ {TARGET_VS_NULL}× null: "
                    f"{run.verdict(vm <= TARGET_VS_NULL * vn)} "
                    f"({vm / vn:.2f}×)")
        t.row(f"  C={conc:<3} daemon CPU µs/lookup, -metrics",
              [run.fmt_num(vm, 1), "n/a", run.fmt_num(vn, 1)], "", tgt)
        t.row(f"  C={conc:<3} daemon CPU µs/lookup, without",
              [run.fmt_num(vp, 1), "n/a", run.fmt_num(vn, 1)], "",
              "" if vp is None or not vn else
              f"({vp / vn:.2f}× null)")

    def errs(name):
        rs = res.rounds(key, name)
        w = run.total(p["wrong"] for r in rs for p in r.get("phases",
                                                             {}).values())
        f = run.total(p["failed"] for r in rs for p in r.get("phases",
                                                              {}).values())
        return f"{w}/{f}"
    sc = [r.get("scrapes", {}) for r in res.rounds(key, m)]
    t.row("  wrong/failed answers, -metrics", [errs(m), "n/a", errs("null")],
          "", f"scrapes ok/failed: {sum(s.get('ok', 0) for s in sc)}/"
          f"{sum(s.get('failed', 0) for s in sc)}")
    sn = c["metrics_scrape_nodes"]
    rs = res.rounds(("metrics_scrape", sn), m)
    if rs:
        r = rs[0]
        cell = "—" if r.get("p50_ms") is None else \
            f"{r['p50_ms']:.2f}/{r['max_ms']:.2f}"
        note = "" if r.get("cpu_ms") is None else (
            f"daemon CPU {r['cpu_ms']:.2f} ms/scrape, {r['bytes']:,} B, "
            f"{r['scrapes']} scrapes, epmd_nodes "
            f"{r['nodes_reported']:.0f} of {r['registered']}")
        t.row(f"  GET /metrics ms p50/max, {sn} nodes", [cell, "n/a", "n/a"],
              "", note)
    ir = {}
    for name in ("epmd-c", m):
        rs = [r for r in res.rounds(("metrics_ir", 1), name)
              if r.get("ir") and r.get("lookups")]
        if rs:
            ir[name] = rs[0]["ir"] / rs[0]["lookups"]
    if len(ir) == 2:
        r = ir[m] / ir["epmd-c"]
        t.row("  instructions/lookup in accept_cb, with/without",
              [f"{ir[m]:,.0f}/{ir['epmd-c']:,.0f}", "n/a", "n/a"], "",
              f"≤ {TARGET_VS_PLAIN:.2f}×: "
              f"{run.verdict(r <= TARGET_VS_PLAIN)} ({r:.4f}×, callgrind)")
