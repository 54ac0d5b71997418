"""The conn_memory scenario of bench/run: daemon memory per connection.

A fresh daemon gets N connections from loopback that (a) send nothing,
or (b) send a partial request: all but the last byte of a max-size frame
(3058 of the 3059 bytes of an ALIVE2 announcing 3057), which the daemon
must keep until the rest comes. Its VmRSS (and Pss, /proc/PID/status and
smaps_rollup) once they are all in, minus before, divided by N, is the
figure; kernel socket buffers are not in it. The real epmd holds about
1019 connections (select()), so it gets at most REF_MAX. The null
server keeps 64 bytes per connection and drops longer frames, so it runs
the idle case only. bench/run calls
conn_memory(bench, run) and rows(bench, table, run), passing itself as
`run` for its helpers.
"""

import os
import socket
import struct
import time

# Documented (README.md "Limits"): about 350 B per unregistered
# connection; while a request that came in pieces is incomplete, one
# buffer of its frame's size more. The targets leave room for allocator
# rounding: 512 B idle, the 3058 bytes held plus 512 B.
TARGETS = {"idle": 512, "partial": 3058 + 512}
REF_MAX = 900           # the real epmd's share: below its ~1019 limit
PARTIAL_LEN = 3058      # all but the last byte of a 3059-byte frame


def partial_request():
    """The first 3058 bytes of an ALIVE2 frame of the maximum Length."""
    name = b"p" * 255
    extra_len = 3057 - (11 + len(name) + 2)
    body = (struct.pack(">BHBBHHH", 120, 5001, 77, 0, 6, 5, len(name))
            + name + struct.pack(">H", extra_len) + b"x" * extra_len)
    frame = struct.pack(">H", len(body)) + body
    assert len(frame) == PARTIAL_LEN + 1
    return frame[:PARTIAL_LEN]


def memory_kb(pid):
    """(VmRSS, Pss) of pid in kB; Pss is None without smaps_rollup."""
    rss = pss = None
    with open(f"/proc/{pid}/status") as f:
        for text in f:
            if text.startswith("VmRSS:"):
                rss = int(text.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for text in f:
                if text.startswith("Pss:"):
                    pss = int(text.split()[1])
    except OSError:
        pass
    return rss, pss


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def hold(port, n, data, deadline):
    """n connections from 127.0.0.2..; each sends data (if any). Returns
    the open sockets (closed ones are dropped)."""
    socks = []
    for i in range(n):
        if time.monotonic() > deadline:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.bind((f"127.0.0.{2 + i % 32}", 0))
            s.connect(("127.0.0.1", port))
            if data:
                s.sendall(data)
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def still_open(socks):
    """How many of socks the daemon has not closed."""
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            n += s.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def settle(pid, want_fds, limit):
    """Wait until the daemon holds want_fds descriptors and its RSS has
    stopped moving, at most limit seconds."""
    end = time.monotonic() + limit
    last = None
    while time.monotonic() < end:
        now = memory_kb(pid)[0]
        if fds(pid) >= want_fds and now == last:
            return
        last = now
        time.sleep(0.2)


def one_run(bench, run, name, n, data):
    """A fresh daemon, n connections sending data; the per-run summary."""
    d = bench.daemon(name)
    if not d.start():
        return {"status": "no start"}
    socks = []
    try:
        base_fds = fds(d.proc.pid)
        time.sleep(0.2)
        rss0, pss0 = memory_kb(d.proc.pid)
        socks = hold(d.port, n, data, time.monotonic() + 20)
        settle(d.proc.pid, base_fds + len(socks), 5.0)
        rss1, pss1 = memory_kb(d.proc.pid)
        held = still_open(socks)
        s = {"n": n, "held": held, "status": d.status()}
        if held:
            s["rss_per_conn"] = (rss1 - rss0) * 1024.0 / held
            if pss0 is not None and pss1 is not None:
                s["pss_per_conn"] = (pss1 - pss0) * 1024.0 / held
        return s
    finally:
        for sock in socks:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
            except OSError:
                pass
            sock.close()
        d.stop()


def conn_memory(bench, run):
    """Idle and partial connections against every daemon, round by
    round."""
    c = bench.cfg
    n = c["conn_memory_conns"]
    run.log(f"conn_memory: {n} connections idle, then each with a partial "
            f"{PARTIAL_LEN}-byte request (epmd: {min(n, REF_MAX)})")
    for rnd in range(c["rounds"]):
        for case, data in (("idle", b""), ("partial", partial_request())):
            for name in run.DAEMONS if case == "idle" else run.DAEMONS[:2]:
                key = ("conn_memory", case)
                if bench.out_of_time(4 + n / 1000):
                    bench.skipped.append(f"conn_memory {case} {name} "
                                         f"round {rnd + 1}")
                    continue
                count = min(n, REF_MAX) if name == "epmd" else n
                bench.res.add(key, name, one_run(bench, run, name, count,
                                                 data))


def rows(bench, t, run):
    """The conn_memory section of the table, if it ran."""
    res = bench.res
    if ("conn_memory", "idle") not in res.data and \
            ("conn_memory", "partial") not in res.data:
        return
    n = bench.cfg["conn_memory_conns"]
    t.section(f"conn_memory: {n} connections held (epmd: {min(n, REF_MAX)})"
              f", daemon memory per connection")
    for case, label in (("idle", "nothing sent"),
                        ("partial", f"partial {PARTIAL_LEN} B request")):
        key = ("conn_memory", case)
        rounds = {d: res.rounds(key, d) for d in run.DAEMONS}

        def value(d, field):
            return run.med([r.get(field) for r in rounds[d]])

        def cells(field):
            out = []
            for d in run.DAEMONS:
                if case != "idle" and d == "null":
                    out.append("n/a")
                    continue
                v = value(d, field)
                if v is None:
                    out.append(run.status_of(rounds[d]) or "—")
                else:
                    out.append(run.fmt_num(v))
            return out
        rss = {d: value(d, "rss_per_conn") for d in run.DAEMONS}
        limit = TARGETS[case]
        ok = None if rss["epmd-c"] is None else rss["epmd-c"] <= limit
        t.row(f"  {label}: RSS bytes/conn", cells("rss_per_conn"),
              run.ratio(rss["epmd-c"], rss["epmd"]),
              f"≤ {limit:,}: {run.verdict(ok)}")
        pss = {d: value(d, "pss_per_conn") for d in run.DAEMONS}
        t.row(f"  {label}: Pss bytes/conn", cells("pss_per_conn"),
              run.ratio(pss["epmd-c"], pss["epmd"]))

        def held(rs):
            return f"{min(r.get('held', 0) for r in rs)}/{rs[0]['n']}"
        t.row(f"  {label}: still open (worst round)",
              ["n/a" if case != "idle" and d == "null"
               else held(rounds[d]) if rounds[d] and "n" in rounds[d][0]
               else (run.status_of(rounds[d]) or "—")
               for d in run.DAEMONS], "")
