#!/usr/bin/env python3
"""The daemon under abuse (PROTOCOL.md 3, 8.1, 8.4).

Each test attacks one daemon on a free loopback port and then checks that
it is alive, that every node it registered is still registered and looked
up byte for byte, and that fresh lookups and registrations work:

  descriptor exhaustion under `ulimit -n 1024` (2000 registrations, a
  burst of lookups with few descriptors left, idle connections filling
  the table), 3000 half-open connections, a flood of garbage, NAMES
  clients that never read, registrations churning under lookups, and
  clients stopped with SIGSTOP mid-request.

Every load loop is bounded in count and in time. Under a sanitizer build
(EPMD_UNDER_ASAN=1) time bounds stretch; the counts stay those of the
issue. Set EPMD_ABUSE_SEED to replay a garbage flood. With
EPMD_REFERENCE_MODE=1 only the tests that the reference epmd passes too
run (garbage, churn, SIGSTOP); the others pin fixes of PROTOCOL.md 8.4.
Helpers live in tests/lib/load.py.
"""

import json
import os
import random
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import epmdtest as et  # noqa: E402
import load as al  # noqa: E402
from epmdtest import epmdc  # noqa: E402
from load import Node, log  # noqa: E402

SLOW = et.SLOW
# @epmdc tests pin fixes over the reference (PROTOCOL.md 8.4): the
# reference crashes on EMFILE, blocks on slow readers and holds ~1019
# connections, so with EPMD_REFERENCE_MODE=1 they are skipped.


def _alive(d, what):
    et.check(d.alive(), f"daemon died {what} (status {d.proc.poll()}): "
             f"{d.stderr()[-2000:]}")


def _stable_nodes(d, count=5, prefix="keep"):
    """A few registered nodes of assorted shapes, kept open."""
    nodes = []
    for i in range(count):
        n = Node(f"{prefix}{i}", 6000 + i, extra=b"x" * (i * 7),
                 node_type=72 if i % 2 else 77, high=6 if i % 3 else 5)
        n.sock, n.reply = et.register(d.port, n.name, port=n.port,
                                      node_type=n.node_type, high=n.high,
                                      low=n.low, extra=n.extra)
        et.check(n.reply[1:2] == b"\x00", f"register {n.name}: {n.reply!r}")
        nodes.append(n)
    return nodes


# ------------------------------------------------------------ descriptors

EMFILE_LIMIT = 1024
EMFILE_ATTEMPTS = 2000
EMFILE_CLOSE = 500
EMFILE_NEW = 400


@epmdc(timeout=120)
def test_2000_registrations_under_ulimit_1024_survive_emfile():
    """PROTOCOL 3 "crash quirk" and 8.4: out of descriptors is survived.

    The reference exits on EMFILE. epmd-c stops accepting for a moment:
    about 1015 nodes register, the others are closed or wait in the
    listen backlog; none of the registered ones is harmed, and once some
    nodes leave, accepting resumes and new registrations succeed."""
    et.raise_nofile(EMFILE_ATTEMPTS + EMFILE_NEW + 500)
    with et.daemon(preexec=et.nofile_preexec(EMFILE_LIMIT)) as d:
        et.eq(et.proc_nofile(d.pid), EMFILE_LIMIT, "daemon RLIMIT_NOFILE")
        nodes = [Node(f"em{i:04d}", 20000 + i, extra=b"e%d" % i)
                 for i in range(EMFILE_ATTEMPTS)]
        # While the table is full, the backlog drains only as fast as the
        # daemon sheds or refuses: look for a bounded time, the rest is
        # "pending".
        took = al.register_many(d.port, nodes, settle=2.0 * SLOW,
                                deadline=8.0 * SLOW)
        _alive(d, "after 2000 registration attempts")
        by = {}
        for n in nodes:
            by.setdefault(n.state, []).append(n)
        counts = {k: len(v) for k, v in by.items()}
        log(f"2000 attempts in {took:.1f}s: {counts}; daemon holds "
            f"{et.proc_fds(d.pid)} fds")
        ok = by.get("ok", [])
        et.check(900 <= len(ok) < EMFILE_LIMIT,
                 f"{len(ok)} registrations OK, want about 1000")
        # The last descriptors are kept for queries: a registration that
        # lands on one gets the ordinary error reply at once (it does not
        # hang in the backlog), and NAMES still works while full.
        errors = by.get("error", [])
        for n in errors:
            et.eq(n.reply, bytes.fromhex("760100000063"), "refusal reply")
        if errors:
            et.check("descriptor limit" in d.stderr(), "refusal not logged")
        for n in ok:
            et.check(n.reply[0] == 0x76, f"reply {n.reply!r}")
        listed = et.names_dict(d.port, timeout=5 * SLOW)
        et.eq(set(listed), {n.name for n in ok}, "NAMES while full")
        # A registration socket is never what the daemon closes to get
        # descriptors back.
        et.check(not al.closed_by_daemon(ok), "registered sockets were closed")
        err = d.stderr()
        et.check("out of descriptors" in err or "descriptor limit" in err,
                 "the daemon never reached its descriptor limit")

        # The ones still waiting in the backlog give up (with a reset, so
        # none of them can register later), then 500 nodes leave.
        for n in by.get("pending", []):
            n.close(reset=True)
        leaving, staying = ok[:EMFILE_CLOSE], ok[EMFILE_CLOSE:]
        for n in leaving:
            n.close()

        def settled():
            try:
                return et.names_dict(d.port, timeout=2 * SLOW) == \
                    {n.name: n.port for n in staying}
            except (OSError, AssertionError):
                return False
        et.check(et.eventually(settled, 20 * SLOW, 0.2),
                 "NAMES never settled to the nodes that stayed")
        _alive(d, "after 500 nodes left")
        al.verify_registry(d.port, staying, "after 500 left")

        # Accepting has resumed: 400 new nodes register, every one.
        fresh = [Node(f"new{i:04d}", 40000 + i, high=5 if i % 2 else 6)
                 for i in range(EMFILE_NEW)]
        al.register_many(d.port, fresh, settle=5.0 * SLOW, deadline=60.0)
        bad = [(n.name, n.state, n.reply) for n in fresh if n.state != "ok"]
        et.check(not bad, f"{len(bad)} new registrations failed, e.g. "
                 f"{bad[:3]}")
        al.verify_registry(d.port, staying + fresh, "after 400 new")
        al.fresh_checks(d.port, "emfile")
        _alive(d, "at the end")
        for n in staying + fresh:
            n.close()


BURST_FREE = 15           # descriptors left free before the burst
BURST = 3 * BURST_FREE


def _fill_to(d, free, prefix):
    """Register nodes until the daemon has `free` descriptors left."""
    count = EMFILE_LIMIT - et.proc_fds(d.pid) - free
    nodes = [Node(f"{prefix}{i:04d}", 30000 + i) for i in range(count)]
    al.register_many(d.port, nodes, settle=3.0 * SLOW, deadline=60.0)
    bad = [n.state for n in nodes if n.state != "ok"]
    et.check(not bad, f"{len(bad)} of {count} registrations failed")
    et.eq(EMFILE_LIMIT - et.proc_fds(d.pid), free, "free descriptors")
    return nodes


def _burst(d, target, size, gap):
    """size lookups queued in the backlog while the daemon is stopped;
    each sends its request `gap` seconds after the daemon resumes (0:
    before). Returns (answered, closed unanswered, seconds)."""
    socks = []
    os.kill(d.pid, signal.SIGSTOP)
    try:
        for _ in range(size):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            if not gap:
                s.sendall(et.frame(b"z" + target.name))
            socks.append(s)
    finally:
        os.kill(d.pid, signal.SIGCONT)
    t0 = time.monotonic()
    if gap:
        time.sleep(gap)
        for s in socks:
            try:
                s.sendall(et.frame(b"z" + target.name))
            except OSError:
                pass      # shed already: read_until_close sees it
    replies = []
    for s in socks:
        try:
            replies.append(et.read_until_close(s, 10 * SLOW))
        except OSError:
            replies.append(b"")
        s.close()
    good = sum(r == target.expected_port2() for r in replies)
    return good, sum(r == b"" for r in replies), time.monotonic() - t0


@epmdc
def test_burst_of_lookups_at_the_descriptor_limit_is_served():
    """PROTOCOL 8.4: out of descriptors, the daemon pauses accepting and
    resumes; nothing already connected is harmed. A burst of lookups larger
    than the free descriptors, queued in the listen backlog (the daemon is
    SIGSTOPped while they connect), is served in a few rounds: every
    lookup is answered, none is closed unanswered. That holds too when
    the clients write their request a moment after connecting (200 ms:
    they are not idle peers to shed)."""
    et.raise_nofile(EMFILE_LIMIT + BURST + 500)
    with et.daemon(preexec=et.nofile_preexec(EMFILE_LIMIT)) as d:
        nodes = _fill_to(d, BURST_FREE, "full")
        target = nodes[7]
        lost = []
        for size, gap in ((BURST_FREE, 0), (BURST, 0), (BURST_FREE, 0.2),
                          (BURST, 0.2)):
            good, closed, took = _burst(d, target, size, gap)
            log(f"burst of {size} lookups sent {gap}s after connecting, "
                f"{BURST_FREE} free descriptors: {good} answered, {closed} "
                f"closed unanswered, {took:.2f}s")
            _alive(d, "after the burst")
            if good != size:
                lost.append(f"{size - good} of {size} (request sent "
                            f"{gap}s after connecting)")
        et.check(not lost, f"with {BURST_FREE} descriptors free, lookups "
                 f"closed unanswered: {'; '.join(lost)}")
        al.verify_registry(d.port, nodes, "after the bursts")
        for n in nodes:
            n.close()


HALF_AT_LIMIT = 1500


@epmdc
def test_half_open_connections_at_the_descriptor_limit_are_shed():
    """Idle half-open connections that exhaust the descriptors (ulimit -n
    1024, 1500 of them, from loopback: no per-peer cap) are what the
    daemon closes to serve others: lookups still get answered, and the
    registered nodes are untouched."""
    et.raise_nofile(HALF_AT_LIMIT + 500)
    with et.daemon("-packet_timeout", "60",
                 preexec=et.nofile_preexec(EMFILE_LIMIT)) as d:
        keep = _stable_nodes(d, 5, "held")
        idle = [socket.create_connection(("127.0.0.1", d.port), timeout=5)
                for _ in range(HALF_AT_LIMIT)]
        try:
            time.sleep(1.0)
            slowest = 0.0
            for i in range(20):
                n = keep[i % len(keep)]
                t = time.monotonic()
                r = al.lookup_or_none(d.port, n.name, timeout=15 * SLOW)
                slowest = max(slowest, time.monotonic() - t)
                et.eq(r, n.expected_port2(), f"lookup {i} at the limit")
            shed = len(al.closed_socks(idle))
            log(f"20 lookups beside {HALF_AT_LIMIT} idle connections at "
                f"the limit: slowest {slowest:.2f}s; {shed} idle closed")
            _alive(d, "at the descriptor limit")
            et.check(not al.closed_by_daemon(keep), "registered node shed")
        finally:
            for s in idle:
                s.close()
        al.verify_registry(d.port, keep, "after the idle connections")
        al.fresh_checks(d.port, "idle-limit")
        for n in keep:
            n.close()


# ------------------------------------------------------------ half-open

HALF_OPEN = 3000
HALF_TIMEOUT = 2          # -packet_timeout; closed after 3 s of silence


def _partial(i):
    """What half-open connection i sends: mostly nothing, else a fragment."""
    k = i % 6
    if k in (0, 1, 2, 3):
        return b""
    if k == 4:
        return [b"\x00", b"\x00\x05", b"\x00\x05z", b"\x0b\xb1"][i % 4]
    body = et.alive2_body(f"half{i}", port=7000)
    return et.frame(body)[:2 + (i % (len(body) - 1)) + 1]


@epmdc
def test_3000_half_open_connections_do_not_stop_lookups():
    """Half-open and partial connections cost nothing but their own slot:
    lookups from other sockets keep being answered, and the idle ones are
    closed once silent for packet_timeout + 1 seconds (PROTOCOL 8.4)."""
    et.raise_nofile(HALF_OPEN + 1000)
    with et.daemon("-packet_timeout", str(HALF_TIMEOUT)) as d:
        keep = _stable_nodes(d)
        found = {n.name: n.expected_port2() for n in keep}
        # Long enough to span the ~3.5 s the half-open connections live.
        worker = al.LookupWorker(d.port, found, ["nobody", "half1"],
                                 4.0, max_count=1000000, names_every=20,
                                 names_want={n.name.decode(): n.port
                                             for n in keep})
        sel = selectors.DefaultSelector()
        last = {}
        t0 = time.monotonic()
        try:
            for i in range(HALF_OPEN):
                host = "::1" if i % 3 == 2 else "127.0.0.1"
                s = socket.create_connection((host, d.port), timeout=5)
                data = _partial(i)
                if data:
                    s.sendall(data)
                s.setblocking(False)
                last[s] = time.monotonic()
                sel.register(s, selectors.EVENT_READ)
            opened = time.monotonic() - t0
            _alive(d, "with 3000 half-open connections")
            et.eventually(lambda: et.proc_fds(d.pid) >= HALF_OPEN,
                          2.0 * SLOW, 0.02)
            fds = et.proc_fds(d.pid)
            log(f"{HALF_OPEN} half-open connections in {opened:.1f}s; "
                f"daemon holds {fds} fds")
            et.check(fds >= HALF_OPEN, f"daemon holds only {fds} fds")

            # Every one of them gets EOF, with no data, ~3 s after its last
            # byte.
            early, late, data_seen, ages = [], [], [], []
            lo = HALF_TIMEOUT + 1 - 0.2
            hi = HALF_TIMEOUT + 1 + 2.0 * SLOW
            end = time.monotonic() + HALF_TIMEOUT + 1 + 15 * SLOW
            while last and time.monotonic() < end:
                for key, _ in sel.select(timeout=0.2):
                    s = key.fileobj
                    try:
                        chunk = s.recv(16)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    age = time.monotonic() - last.pop(s)
                    ages.append(age)
                    if chunk:
                        data_seen.append(chunk)
                    if age < lo:
                        early.append(age)
                    elif age > hi:
                        late.append(age)
                    sel.unregister(s)
                    s.close()
            left = len(last)
        finally:
            for s in list(last):
                s.close()
            sel.close()
            st = worker.result()
        log(f"half-open closed after {min(ages, default=0):.2f}.."
            f"{max(ages, default=0):.2f}s of silence: {len(early)} early, "
            f"{len(late)} late, {left} never closed")
        et.eq(left, 0, "half-open connections never closed")
        et.check(not data_seen, f"half-open got data {data_seen[:3]}")
        et.check(not early, f"{len(early)} closed before {lo}s: "
                 f"{sorted(early)[:3]}")
        et.check(not late, f"{len(late)} closed after {hi}s: "
                 f"{sorted(late)[-3:]}")
        al.check_lookup_stats(st, "lookups beside 3000 half-open",
                              p99_max=0.5 * SLOW, max_max=2.0 * SLOW,
                              min_count=50)
        _alive(d, "after the half-open connections")
        al.verify_registry(d.port, keep, "after half-open")
        al.fresh_checks(d.port, "halfopen")
        for n in keep:
            n.close()


# ------------------------------------------------------------ garbage

GARBAGE = 3000
GARBAGE_BATCH = 250
GARBAGE_HOLD = 300        # partial frames left open until the flood ends
CODES = [120, 122, 110, 100, 107, 115, 97, 112, 89, 0, 255, 119, 121, 118]


GARBAGE_KINDS = ["random", "random", "frame", "frame", "frame", "oversize",
                 "partial", "trailing", "alive2", "duplicate", "stop", "kill",
                 "lookup"]
if not et.REFERENCE_MODE:
    # The reference unregisters the live node when this reply fails
    # (PROTOCOL 1.4 quirk, fixed by epmd-c: 8.4).
    GARBAGE_KINDS.append("duplicate_rst")


def _garbage(rnd, keep):
    """One random abusive payload; returns (kind, bytes)."""
    kind = rnd.choice(GARBAGE_KINDS)
    if kind == "random":
        return kind, rnd.randbytes(rnd.randint(1, 3100))
    if kind == "frame":
        length = rnd.choice([1, 2, 3, 13, 14, rnd.randint(1, 3057), 3057])
        body = bytes([rnd.choice(CODES)]) + rnd.randbytes(length - 1)
        return kind, et.frame(body)
    if kind == "oversize":
        length = rnd.choice([0, 3058, 3059, 65535, rnd.randint(3058, 65535)])
        return kind, struct.pack(">H", length) + rnd.randbytes(
            rnd.randint(0, 3100))
    if kind == "partial":
        length = rnd.randint(2, 3057)
        body = bytes([rnd.choice(CODES)]) + rnd.randbytes(length - 1)
        return kind, et.frame(body)[:rnd.randint(1, length + 1)]
    if kind == "trailing":
        return kind, et.frame(b"n") + rnd.randbytes(rnd.randint(1, 200))
    if kind == "alive2":
        # Well formed, random fields: may register for a moment.
        name = rnd.randbytes(rnd.randint(0, 300))
        body = struct.pack(">BHBBHHH", 120, rnd.randint(0, 65535),
                           rnd.randint(0, 255), rnd.randint(0, 255),
                           rnd.randint(0, 65535), rnd.randint(0, 65535),
                           rnd.choice([len(name), rnd.randint(0, 65535)]))
        body += name + struct.pack(">H", rnd.randint(0, 1100))
        body += rnd.randbytes(rnd.randint(0, 1100))
        return kind, et.frame(body[:3057])
    if kind in ("duplicate", "duplicate_rst"):
        # _rst: reset at once, so writing the error reply may fail; that
        # must not unregister the live node of that name (PROTOCOL 1.4).
        n = rnd.choice(keep)
        return kind, et.frame(et.alive2_body(n.name, port=rnd.randint(1, 9),
                                             high=rnd.choice([5, 6])))
    if kind == "stop":
        return kind, et.frame(b"s" + rnd.choice(keep).name)
    if kind == "kill":
        return kind, et.frame(b"k" + rnd.randbytes(rnd.randint(0, 5)))
    return kind, et.frame(b"z" + rnd.randbytes(rnd.randint(0, 300)))


def _check_garbage_reply(kind, data, problems):
    """Replies the garbage may get, by what it was."""
    if kind == "duplicate" and data not in (b"\x76\x01\x00\x00\x00\x63",
                                            b"\x79\x01\x00\x63"):
        problems.append((kind, data[:16]))
    elif kind == "kill" and data != b"NO":
        problems.append((kind, data[:16]))
    elif kind in ("stop", "oversize", "partial") and data:
        problems.append((kind, data[:16]))
    elif kind == "trailing" and data:
        problems.append((kind, data[:16]))
    elif kind == "lookup" and data not in (b"", et.PORT2_NOTFOUND):
        problems.append((kind, data[:16]))


@et.test(timeout=180)
def test_garbage_flood_leaves_registry_unchanged():
    """3000 connections of random bytes, random bodies behind valid
    headers, oversize headers, partial frames, random and legacy codes,
    duplicate registrations of live names (some reset at once), STOP and
    KILL attempts, while nodes are registered and looked up: the daemon
    lives, lookups are all answered and the registry is as it was."""
    seed = int(os.environ.get("EPMD_ABUSE_SEED", "0")) or \
        random.randrange(1, 1 << 30)
    log(f"garbage seed {seed} (EPMD_ABUSE_SEED={seed} replays it)")
    rnd = random.Random(seed)
    et.raise_nofile(GARBAGE_BATCH + GARBAGE_HOLD + 500)
    with et.daemon("-packet_timeout", "60") as d:
        keep = _stable_nodes(d, 20, "solid")
        duration = 60.0 * SLOW
        worker = al.LookupWorker(d.port, {n.name: n.expected_port2()
                                          for n in keep},
                                 ["ghost"], duration, max_count=1000000,
                                 names_every=25)
        held, problems, kinds = [], [], {}
        start = time.monotonic()
        end = start + 40.0 * SLOW
        sent = 0
        try:
            while sent < GARBAGE and time.monotonic() < end:
                batch = []
                for _ in range(min(GARBAGE_BATCH, GARBAGE - sent)):
                    kind, data = _garbage(rnd, keep)
                    kinds[kind] = kinds.get(kind, 0) + 1
                    sent += 1
                    try:
                        s = socket.create_connection(("127.0.0.1", d.port),
                                                     timeout=5)
                    except OSError as e:
                        problems.append(("connect", repr(e)))
                        continue
                    try:
                        s.sendall(data)
                    except OSError:
                        pass      # closed on the first bad bytes: fine
                    if kind.endswith("_rst"):
                        al.rst_close(s)
                        continue
                    batch.append((s, kind, bytearray()))
                # Collect what comes back for a moment, then close:
                # half with FIN, half with RST; keep some partials open.
                p = select.poll()
                idx = {}
                for s, kind, buf in batch:
                    p.register(s, select.POLLIN)
                    idx[s.fileno()] = (s, kind, buf)
                    s.setblocking(False)
                until = time.monotonic() + 0.3
                while idx and time.monotonic() < until:
                    for fd, _ in p.poll(50):
                        s, kind, buf = idx[fd]
                        try:
                            chunk = s.recv(65536)
                        except BlockingIOError:
                            continue
                        except OSError:
                            chunk = b""
                        if chunk:
                            buf += chunk
                            continue
                        p.unregister(fd)
                        del idx[fd]
                        _check_garbage_reply(kind, bytes(buf), problems)
                for s, kind, buf in batch:
                    if s.fileno() in idx and kind == "partial" and \
                            len(held) < GARBAGE_HOLD:
                        held.append(s)
                    elif rnd.random() < 0.5:
                        al.rst_close(s)
                    else:
                        s.close()
                _alive(d, f"after {sent} garbage connections")
            took = time.monotonic() - start
            log(f"{sent} garbage connections in {took:.1f}s: {kinds}; "
                f"{len(held)} partial frames held open")
            et.eq(sent, GARBAGE, "garbage connections sent in time")
            et.check(not problems, f"unexpected replies: {problems[:5]}")
            # The held partial frames are still open (60 s timeout), and
            # the daemon answers beside them.
            et.check(not al.closed_socks(held),
                     "partial frames were closed early")
            al.verify_registry(d.port, keep, "during the flood")
        finally:
            for s in held:
                al.rst_close(s)
            st = worker.stop()
        al.check_lookup_stats(st, "lookups during the flood",
                              p99_max=0.5 * SLOW, max_max=2.0 * SLOW,
                              min_count=50)
        _alive(d, "after the flood")

        def settled():
            return et.names_dict(d.port) == {n.name: n.port for n in keep}
        # Random ALIVE2s may have registered for a moment; they go with
        # their sockets.
        et.check(et.eventually(settled, 5 * SLOW, 0.1), "random "
                 "registrations outlived their connections")
        al.verify_registry(d.port, keep, "after the flood")
        al.fresh_checks(d.port, "garbage")
        for n in keep:
            n.close()


# ------------------------------------------------------------ slow reader

BIG_NODES = 3000
BIG_NAME = 200            # bytes per name: NAMES is about 660 kB
NON_READERS = 4
READER_TIMEOUT = 2        # -packet_timeout


def _non_reader(port):
    """A NAMES request from a socket with a tiny receive buffer, never read.

    A small MSS too: on loopback (MSS 65483) the daemon's kernel send
    buffer starts at ~4 MB and would swallow the whole reply; with 536 it
    stays at a few tens of kB, so the rest must wait in the daemon."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    s.sendall(et.frame(b"n"))
    return s


def _stalled_round(d, nodes, size, base_fds):
    """NON_READERS stalled NAMES clients while others are served, until the
    daemon lets them go. Returns (RSS with them in kB, seconds they lived)."""
    stalled = [_non_reader(d.port) for _ in range(NON_READERS)]
    t_stall = time.monotonic()
    try:
        et.eventually(lambda: et.proc_fds(d.pid) == base_fds + NON_READERS,
                      2.0, 0.02)
        time.sleep(0.3)
        peak_rss = et.rss_kb(d.pid)
        et.eq(et.proc_fds(d.pid), base_fds + NON_READERS,
              "daemon descriptors with the stalled clients")
        # Others are served promptly meanwhile: lookups, and whole NAMES
        # replies read by clients that do read.
        sample = random.Random(1).sample(nodes, 50)
        worker = al.LookupWorker(d.port, {n.name: n.expected_port2()
                                          for n in sample},
                                 ["nobody"], READER_TIMEOUT * 0.6,
                                 max_count=20000)
        slowest = 0.0
        for _ in range(5):
            t = time.monotonic()
            et.eq(len(et.parse_names(et.names(d.port))[1]), BIG_NODES,
                  "NAMES lines beside the stalled clients")
            slowest = max(slowest, time.monotonic() - t)
        st = worker.result()
        al.check_lookup_stats(st, "lookups beside stalled NAMES clients",
                              p99_max=0.5 * SLOW, max_max=2.0 * SLOW,
                              min_count=50)
        log(f"five NAMES of {size} bytes beside them: slowest "
            f"{slowest * 1000:.0f} ms")
        et.check(slowest < 2.0 * SLOW, f"NAMES took {slowest:.2f}s")
        # The stalled clients are closed: their descriptors go.
        closed = et.eventually(lambda: et.proc_fds(d.pid) <= base_fds,
                               READER_TIMEOUT + 1 + 10 * SLOW, 0.05)
        gone = time.monotonic() - t_stall
        et.check(closed, f"stalled NAMES clients still open after "
                 f"{gone:.1f}s ({et.proc_fds(d.pid)} fds, {base_fds} "
                 "before)")
        et.check(gone >= READER_TIMEOUT + 1 - 0.2,
                 f"stalled clients closed after only {gone:.1f}s")
        # What reached them is a truncated reply, then EOF.
        for s in stalled:
            got = et.read_until_close(s, 5)
            et.check(4 <= len(got) < size,
                     f"a stalled client read {len(got)} bytes")
    finally:
        for s in stalled:
            s.close()
    time.sleep(0.5)
    return peak_rss, gone


@epmdc
def test_names_client_that_never_reads_costs_only_its_connection():
    """PROTOCOL 8.1 (2) and 8.4: replies are written without blocking.

    With 3000 nodes of 200-byte names registered, clients that ask for
    NAMES and never read hold about 660 kB each in the daemon. Meanwhile
    other clients' lookups and NAMES are answered promptly; the stalled
    clients are closed by the packet timeout, and the memory goes back:
    a second identical round leaves RSS where the first left it (the
    first round grows the allocator's pools for good: not a leak)."""
    et.raise_nofile(BIG_NODES + 1000)
    with et.daemon("-packet_timeout", str(READER_TIMEOUT)) as d:
        nodes = [Node(("n%05d-" % i) + "q" * (BIG_NAME - 7), 10000 + i)
                 for i in range(BIG_NODES)]
        took = al.register_many(d.port, nodes, settle=5.0 * SLOW,
                                deadline=60.0)
        bad = [n.state for n in nodes if n.state != "ok"]
        et.check(not bad, f"{len(bad)} of {BIG_NODES} registrations failed")
        log(f"{BIG_NODES} nodes registered in {took:.1f}s")
        want = {n.name: n.port for n in nodes}
        full = et.names(d.port)
        et.eq(dict(et.parse_names(full)[1]), want, "NAMES before")
        size = len(full)
        et.check(size > 600000, f"NAMES is only {size} bytes")
        base_fds = et.proc_fds(d.pid)
        start_rss = et.rss_kb(d.pid)
        peak1, gone1 = _stalled_round(d, nodes, size, base_fds)
        base_rss = et.rss_kb(d.pid)
        peak2, gone2 = _stalled_round(d, nodes, size, base_fds)
        end_rss = et.rss_kb(d.pid)
        log(f"stalled clients closed after {gone1:.1f}s and {gone2:.1f}s; "
            f"daemon RSS {start_rss} kB at first, {peak1} kB with "
            f"{NON_READERS} stalled, {base_rss} kB after; second round "
            f"{peak2} kB with them, {end_rss} kB after")
        if et.UNDER_ASAN:
            log("RSS release not checked under ASan (freed memory is "
                "quarantined)")
        else:
            et.check(end_rss <= base_rss + 512,
                     f"RSS {end_rss} kB after the second round, {base_rss} "
                     "kB after the first")
            # A listing is queued 64 kB at a time, never whole: stalled
            # clients cost far less than their replies (660 kB each).
            grown = max(peak1, peak2) - start_rss
            et.check(grown <= NON_READERS * 200,
                     f"RSS grew {grown} kB with {NON_READERS} stalled "
                     f"clients of {size // 1024} kB replies")
        _alive(d, "after the stalled clients")
        sample = random.Random(2).sample(nodes, 300)
        for n in sample:
            et.eq(al.lookup_or_none(d.port, n.name), n.expected_port2(), "lookup")
        et.eq(et.names_dict(d.port), want, "NAMES after")
        et.check(not al.closed_by_daemon(nodes), "registrations closed")
        al.fresh_checks(d.port, "slowreader")
        for n in nodes:
            n.close()


# ------------------------------------------------------------ churn

CHURN_SECONDS = 20.0
CHURN_OPS = 1000000       # bound on requests of all kinds together
CHURNERS = 4
NAMES_PER_CHURNER = 25
LOOKERS = 4


class ChurnName:
    """A name that one churner registers and unregisters over and over.

    epoch changes on every transition; `known` is true only between the
    OK reply and the moment its socket is about to close, which is when
    the daemon must answer lookups of it with exactly `port`."""

    def __init__(self, name):
        self.name = name.encode()
        self.lock = threading.Lock()
        self.epoch = 0
        self.known = False
        self.port = None
        self.ports = set()   # every port it has ever been registered with
        self.sock = None

    def snapshot(self):
        with self.lock:
            return self.epoch, self.known, self.port


class Churn:
    """Shared state and counters of the churn test."""

    def __init__(self, epmd_port, deadline):
        self.epmd_port = epmd_port
        self.deadline = deadline
        self.lock = threading.Lock()
        self.ops = 0
        self.next_port = 1024
        self.stats = dict(registered=0, unregistered=0, duplicate=0,
                          lookups=0, checked=0, never=0, names=0)
        self.wrong = []
        self.errors = []

    def go(self):
        with self.lock:
            self.ops += 1
            return self.ops <= CHURN_OPS and time.monotonic() < self.deadline

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def new_port(self):
        with self.lock:
            self.next_port += 1
            return 1024 + self.next_port % 60000


def _churner(ch, names, rnd, host):
    """Register and unregister our names at random until the deadline."""
    while ch.go():
        cn = rnd.choice(names)
        if cn.sock is not None:
            with cn.lock:
                cn.known = False
                cn.epoch += 1
            cn.sock.close()
            cn.sock = None
            ch.count("unregistered")
            continue
        port = ch.new_port()
        with cn.lock:
            cn.epoch += 1
            cn.ports.add(port)
        try:
            s, reply = et.register(ch.epmd_port, cn.name, host=host,
                                   port=port)
        except OSError as e:
            ch.errors.append(f"register {cn.name}: {e!r}")
            continue
        if reply[:2] == b"\x76\x00" and len(reply) == 6:
            with cn.lock:
                cn.epoch += 1
                cn.known, cn.port = True, port
            cn.sock = s
            ch.count("registered")
        elif reply == b"\x76\x01\x00\x00\x00\x63":
            # Our previous registration's EOF is not processed yet.
            s.close()
            ch.count("duplicate")
        else:
            s.close()
            ch.wrong.append(f"ALIVE2 {cn.name}: {reply.hex()}")


def _looker(ch, names, never, rnd, do_names):
    """Look names up and judge every answer against what we know."""
    while ch.go():
        if do_names and rnd.random() < 0.02:
            _names_check(ch, names, never)
            continue
        if rnd.random() < 0.2:
            name = rnd.choice(never)
            r = al.lookup_or_none(ch.epmd_port, name, timeout=10)
            ch.count("never")
            if r is None:
                ch.errors.append(f"lookup {name}: connection failed")
            elif r != et.PORT2_NOTFOUND:
                ch.wrong.append(f"never registered {name}: {r.hex()}")
            continue
        cn = rnd.choice(names)
        host = "::1" if rnd.random() < 0.3 else "127.0.0.1"
        e0, known0, port0 = cn.snapshot()
        r = al.lookup_or_none(ch.epmd_port, cn.name, timeout=10, host=host)
        e1, _, _ = cn.snapshot()
        ch.count("lookups")
        if r is None:
            ch.errors.append(f"lookup {cn.name}: connection failed")
            continue
        if known0 and e0 == e1:
            ch.count("checked")
            if r != et.port2(cn.name, port0):
                ch.wrong.append(f"{cn.name} at {port0}: {r.hex()}")
        elif r != et.PORT2_NOTFOUND:
            # In transition: either answer, but never a port that is not
            # one of this name's.
            with cn.lock:
                ports = set(cn.ports)
            port = struct.unpack(">H", r[2:4])[0] if len(r) >= 4 else None
            if r[:2] != b"\x77\x00" or port not in ports or \
                    r != et.port2(cn.name, port):
                ch.wrong.append(f"{cn.name} in transition: {r.hex()}")


def _names_check(ch, names, never):
    """NAMES lists every name known registered throughout, with its port,
    and nothing that was never registered."""
    before = {cn.name: cn.snapshot() for cn in names}
    try:
        got = et.names_dict(ch.epmd_port, timeout=10)
    except (OSError, AssertionError) as e:
        ch.errors.append(f"NAMES: {e!r}")
        return
    ch.count("names")
    for cn in names:
        e0, known0, port0 = before[cn.name]
        e1, _, _ = cn.snapshot()
        if known0 and e0 == e1 and got.get(cn.name) != port0:
            ch.wrong.append(f"NAMES {cn.name}: {got.get(cn.name)} "
                            f"want {port0}")
    for name in never:
        if name.encode() in got:
            ch.wrong.append(f"NAMES lists never registered {name}")


@et.test(timeout=120)
def test_churning_registrations_never_give_a_wrong_answer():
    """Registrations and unregistrations churn (4 threads, 100 names)
    while 4 threads look names up: a name known registered at that moment
    is found with its exact port, a name never registered gets 77 01,
    NAMES agrees, and no request fails."""
    et.raise_nofile(2000)
    with et.daemon() as d:
        keep = _stable_nodes(d, 3, "steady")
        ch = Churn(d.port, time.monotonic() + CHURN_SECONDS)
        groups = [[ChurnName(f"churn{c}-{i}") for i in range(
            NAMES_PER_CHURNER)] for c in range(CHURNERS)]
        every = [cn for g in groups for cn in g]
        never = [f"never{i}" for i in range(20)] + ["churn9-0", "churn0-99"]
        threads = [threading.Thread(target=_churner,
                                    args=(ch, g, random.Random(i),
                                          "::1" if i % 2 else "127.0.0.1"))
                   for i, g in enumerate(groups)]
        threads += [threading.Thread(target=_looker,
                                     args=(ch, every, never,
                                           random.Random(100 + i), i == 0))
                    for i in range(LOOKERS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(CHURN_SECONDS + 60)
        hung = [t for t in threads if t.is_alive()]
        took = time.monotonic() - t0
        log(f"churn for {took:.1f}s: {ch.stats}, {len(ch.wrong)} wrong, "
            f"{len(ch.errors)} failed")
        et.check(not hung, f"{len(hung)} threads hung")
        et.check(not ch.wrong, f"{len(ch.wrong)} wrong answers, e.g. "
                 f"{ch.wrong[:5]}")
        et.check(not ch.errors, f"{len(ch.errors)} requests failed, e.g. "
                 f"{ch.errors[:5]}")
        et.check(ch.stats["checked"] > 100 and ch.stats["registered"] > 100,
                 f"too little churn: {ch.stats}")
        _alive(d, "after the churn")
        # The churned names that are still registered, and no others.
        live = []
        for cn in every:
            if cn.sock is not None:
                n = Node(cn.name, cn.port)
                n.sock = cn.sock
                live.append(n)
        al.verify_registry(d.port, keep + live, "after the churn")
        for n in live:
            n.close()
        al.fresh_checks(d.port, "churn")
        for n in keep:
            n.close()
        et.check(et.eventually(lambda: et.names_dict(d.port) == {}, 5 * SLOW),
                 "nodes left registered after every socket closed")


# ------------------------------------------------------------ SIGSTOP

STOP_TIMEOUT = 3          # -packet_timeout: silence allowed is 4 s


class HalfwayClient:
    """A separate client process that sends the first `split` bytes of a
    request, is then stopped with SIGSTOP by the test, and on SIGCONT sends
    the rest and reads the reply."""

    def __init__(self, port, data, split, reply_len=0):
        self.proc = subprocess.Popen(
            [sys.executable, al.HERE, "halfway", str(port), data.hex(),
             str(split), str(reply_len)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        et.eq(line, b"half\n", "halfway client start")

    def stop(self):
        self.proc.send_signal(signal.SIGSTOP)
        et.check(et.eventually(lambda: self._state() == "T", 5),
                 "client did not stop")
        # It reads this line only once it runs again.
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def cont(self):
        self.proc.send_signal(signal.SIGCONT)

    def result(self, timeout=15):
        out, _ = self.proc.communicate(timeout=timeout)
        et.eq(self.proc.returncode, 0, "halfway client status")
        res = json.loads(out.decode().strip().splitlines()[-1])
        res["reply"] = bytes.fromhex(res["reply"])
        return res

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()

    def _state(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]


def _serve_while(d, seconds, found, what):
    """Lookups and NAMES from this process for `seconds`: all answered."""
    worker = al.LookupWorker(d.port, found, ["nobody"], seconds,
                             max_count=100000, names_every=10)
    st = worker.result()
    al.check_lookup_stats(st, what, p99_max=0.5 * SLOW, max_max=2.0 * SLOW,
                          min_count=20)


@et.test
def test_client_stopped_mid_request_is_served_after_sigcont():
    """A client stopped with SIGSTOP halfway through a request holds only
    its own connection: others are served meanwhile, and after SIGCONT
    within the packet timeout it finishes and gets its answer."""
    with et.daemon("-packet_timeout", str(STOP_TIMEOUT)) as d:
        keep = _stable_nodes(d, 3, "live")
        found = {n.name: n.expected_port2() for n in keep}
        target = keep[1]
        clients = [
            ("lookup", HalfwayClient(d.port, et.frame(b"z" + target.name), 4),
             target.expected_port2()),
            ("names", HalfwayClient(d.port, et.frame(b"n"), 1), None),
            ("alive2", HalfwayClient(d.port, et.frame(et.alive2_body(
                "paused", port=7777)), 9, 6), b"\x76\x00"),
        ]
        try:
            for _, c, _ in clients:
                c.stop()
            _serve_while(d, min(1.5 * SLOW, STOP_TIMEOUT - 0.5), found,
                         "lookups while clients are stopped")
            for _, c, _ in clients:
                c.cont()
            for kind, c, want in clients:
                res = c.result()
                got = res["reply"]
                if kind == "names":
                    hdr, lines = et.parse_names(got)
                    et.eq(hdr, d.port, "NAMES header after SIGCONT")
                    # The paused ALIVE2 client resumed at the same time.
                    got_names = dict(lines)
                    got_names.pop(b"paused", 7777) == 7777 or \
                        et.check(False, f"NAMES after SIGCONT: {lines}")
                    et.eq(got_names, {n.name: n.port for n in keep},
                          "NAMES after SIGCONT")
                elif kind == "alive2":
                    # The process exits after reading: its node registered
                    # and went with it.
                    et.eq(got[:2], want, "ALIVE2 after SIGCONT")
                    et.eq(len(got), 6, "ALIVE2 reply length")
                else:
                    et.eq(got, want, f"{kind} after SIGCONT")
        finally:
            for _, c, _ in clients:
                c.kill()
        _alive(d, "after the stopped clients")
        et.check(et.eventually(lambda: al.lookup_or_none(d.port, "paused") ==
                               et.PORT2_NOTFOUND, 5), "paused node stayed")
        al.verify_registry(d.port, keep, "after SIGCONT")
        al.fresh_checks(d.port, "sigcont")
        for n in keep:
            n.close()


@et.test
def test_client_stopped_past_packet_timeout_gets_eof_after_sigcont():
    """Stopped for longer than the packet timeout: the daemon closes the
    connection on its own (never stalling for it), so after SIGCONT the
    client gets EOF and no reply, while everyone else was served."""
    with et.daemon("-packet_timeout", str(STOP_TIMEOUT)) as d:
        keep = _stable_nodes(d, 3, "live")
        found = {n.name: n.expected_port2() for n in keep}
        before = et.proc_fds(d.pid)
        clients = [HalfwayClient(d.port, et.frame(b"z" + keep[0].name), 3),
                   HalfwayClient(d.port, et.frame(et.alive2_body(
                       "late", port=7778)), 2, 6),
                   HalfwayClient(d.port, et.frame(b"n"), 1)]
        try:
            t0 = time.monotonic()
            for c in clients:
                c.stop()
            et.eventually(lambda: et.proc_fds(d.pid) == before +
                          len(clients), 2.0, 0.02)
            et.eq(et.proc_fds(d.pid), before + len(clients),
                  "daemon descriptors with the stopped clients")
            _serve_while(d, 2.0, found, "lookups while clients are stopped")
            # The daemon lets them go at packet_timeout + 1 on its own.
            et.check(et.eventually(lambda: et.proc_fds(d.pid) == before,
                                   STOP_TIMEOUT + 1 + 5 * SLOW, 0.05),
                     "stopped clients' connections never closed")
            gone = time.monotonic() - t0
            log(f"stopped clients' connections closed after {gone:.1f}s")
            # epmd-c: silent for packet_timeout + 1 s (8.4); the reference
            # counts whole seconds, so it may close up to 1 s earlier.
            earliest = STOP_TIMEOUT + (0 if et.REFERENCE_MODE else 1) - 0.5
            et.check(gone >= earliest, f"closed after only {gone:.1f}s")
            time.sleep(0.5)
            for c in clients:
                c.cont()
            for c in clients:
                res = c.result()
                et.eq(res["reply"], b"", "reply after the packet timeout")
        finally:
            for c in clients:
                c.kill()
        _alive(d, "after the stopped clients")
        et.eq(al.lookup_or_none(d.port, "late"), et.PORT2_NOTFOUND, "late node")
        al.verify_registry(d.port, keep, "after SIGCONT")
        al.fresh_checks(d.port, "sigstop-late")
        for n in keep:
            n.close()


if __name__ == "__main__":
    et.run_tests()
