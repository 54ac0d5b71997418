"""Load helpers: many sockets at once, replies checked exactly (test_abuse.py).

Also runnable as a small separate client process, so that a measuring client
does not share the test's interpreter lock, or so that it can be stopped with
SIGSTOP:

    load.py lookups CONFIG_JSON   lookup loop; prints one JSON result line
    load.py halfway PORT HEX N [LEN]
                                       sends the first N bytes of HEX, prints
                                       "half", waits for a line on stdin, sends
                                       the rest and prints the reply (LEN bytes
                                       of it, or all until EOF) as JSON
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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import epmdtest as et  # noqa: E402

HERE = os.path.abspath(__file__)


def log(msg):
    """A progress line on stderr (tests/run shows stderr of failing files)."""
    sys.stderr.write(f"# {msg}\n")
    sys.stderr.flush()


# ------------------------------------------------------------------ wire

def lookup_or_none(port, name, timeout=5.0, host="127.0.0.1"):
    """Raw PORT2_RESP for name, or None when the connection failed."""
    try:
        return et.lookup(port, name, host=host, timeout=timeout)
    except OSError:
        return None


def rst_close(s):
    """Close with a reset (SO_LINGER 0) instead of a FIN."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


class Node:
    """One registration made by a test: its wire fields and its socket."""

    def __init__(self, name, port, extra=b"", node_type=77, high=6, low=5):
        self.name = name.encode() if isinstance(name, str) else name
        self.port = port
        self.extra = extra
        self.node_type = node_type
        self.high = high
        self.low = low
        self.sock = None
        self.reply = b""
        self.state = "new"   # new, sent, ok, error, closed, pending, gone

    def request(self):
        return et.frame(et.alive2_body(self.name, port=self.port,
                                       node_type=self.node_type,
                                       high=self.high, low=self.low,
                                       extra=self.extra))

    def reply_len(self):
        return 6 if self.high >= 6 else 4

    def expected_port2(self):
        return et.port2(self.name, self.port, self.node_type, 0, self.high,
                           self.low, self.extra)

    def close(self, reset=False):
        if self.sock is not None:
            (rst_close if reset else socket.socket.close)(self.sock)
            self.sock = None
        self.state = "gone"


def register_many(epmd_port, nodes, settle=3.0, deadline=60.0):
    """Register nodes over concurrent sockets; sets each node's state.

    Every request is written first, then replies are collected until all
    are in or nothing happened for `settle` seconds. States afterwards:
    ok (reply Result 0, socket kept), error (Result 1), closed (EOF or
    reset before a full reply), pending (still no reply, socket kept).
    """
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    failed = 0
    for n in nodes:
        try:
            s = socket.create_connection(("127.0.0.1", epmd_port), timeout=5)
            s.sendall(n.request())
        except OSError as e:
            failed += 1
            if failed <= 3:
                log(f"register {n.name[:30]!r}: {e}")
            n.state = "closed"
            continue
        s.setblocking(False)
        n.sock, n.state, n.reply = s, "sent", b""
        sel.register(s, selectors.EVENT_READ, n)
    waiting = sum(1 for n in nodes if n.state == "sent")
    last = time.monotonic()
    end = start + deadline
    while waiting and time.monotonic() < end and \
            time.monotonic() - last < settle:
        for key, _ in sel.select(timeout=0.2):
            n = key.data
            try:
                chunk = n.sock.recv(64)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            last = time.monotonic()
            if chunk:
                n.reply += chunk
                if len(n.reply) < n.reply_len():
                    continue
            sel.unregister(n.sock)
            waiting -= 1
            if len(n.reply) == n.reply_len() and n.reply[1] == 0:
                n.state = "ok"
                n.sock.setblocking(True)
            else:
                full = len(n.reply) == n.reply_len()
                n.close()
                n.state = "error" if full else "closed"
    for key in list(sel.get_map().values()):
        key.data.state = "pending"
    sel.close()
    return time.monotonic() - start


def closed_socks(socks):
    """The sockets that are readable now: closed by the daemon, or data."""
    p = select.poll()
    for s in socks:
        p.register(s, select.POLLIN | select.POLLRDHUP)
    fds = {fd for fd, _ in p.poll(0)}
    return [s for s in socks if s.fileno() in fds]


def closed_by_daemon(nodes):
    """The names of nodes whose registration socket the daemon closed."""
    socks = {n.sock: n for n in nodes if n.sock is not None}
    return [socks[s].name for s in closed_socks(list(socks))]


def verify_registry(epmd_port, nodes, what=""):
    """NAMES lists exactly nodes, each lookup returns its exact reply, and
    no registration socket was closed by the daemon."""
    want = {n.name: n.port for n in nodes}
    got = et.names_dict(epmd_port)
    if got != want:
        missing = [k[:40] for k in want if k not in got][:5]
        extra = [k[:40] for k in got if k not in want][:5]
        wrong = [k[:40] for k in want if k in got and got[k] != want[k]][:5]
        raise AssertionError(
            f"{what}: NAMES has {len(got)} nodes, want {len(want)}; "
            f"missing {missing}, unexpected {extra}, wrong port {wrong}")
    bad = []
    for n in nodes:
        r = lookup_or_none(epmd_port, n.name)
        if r != n.expected_port2():
            bad.append((n.name[:40], r[:20] if r else r))
    et.check(not bad, f"{what}: {len(bad)} wrong lookups, e.g. {bad[:3]}")
    closed = closed_by_daemon(nodes)
    et.check(not closed, f"{what}: daemon closed {len(closed)} "
             "registration sockets")


def fresh_checks(epmd_port, tag):
    """A never-registered name gets 77 01; a new node registers, is found
    and goes away when its socket closes."""
    et.eq(lookup_or_none(epmd_port, f"never-{tag}"), et.PORT2_NOTFOUND,
          "lookup of a never registered name")
    n = Node(f"fresh-{tag}", 4242, extra=b"fresh")
    n.sock, n.reply = et.register(epmd_port, n.name, port=n.port,
                                  extra=n.extra)
    try:
        et.check(len(n.reply) == 6 and n.reply[:2] == b"\x76\x00",
                 f"fresh registration reply {n.reply!r}")
        et.eq(lookup_or_none(epmd_port, n.name), n.expected_port2(),
              "fresh lookup")
    finally:
        n.close()
    et.check(et.eventually(lambda: lookup_or_none(epmd_port, n.name) ==
                           et.PORT2_NOTFOUND, 5.0),
             "fresh node still registered after its socket closed")


# ------------------------------------------------------------------ lookups

def lookup_loop(port, found, missing, duration, max_count, names_every=0,
                names_want=None, stop=()):
    """Look names up in a loop; returns statistics.

    found: {name: exact reply}; missing: names that must get 77 01.
    Every names_every-th request is a NAMES that must list names_want.
    Ends early once stop is not empty (a SIGTERM in the worker process).
    """
    rnd = random.Random(port)
    items = [(k.encode() if isinstance(k, str) else k, bytes.fromhex(v))
             for k, v in found.items()]
    items += [(m.encode() if isinstance(m, str) else m, et.PORT2_NOTFOUND)
              for m in missing]
    lat, wrong, errors, count = [], [], [], 0
    end = time.monotonic() + duration
    while time.monotonic() < end and count < max_count and not stop:
        count += 1
        t0 = time.monotonic()
        try:
            if names_every and count % names_every == 0:
                data = et.request(port, et.frame(b"n"), timeout=10)
                _, lines = et.parse_names(data)
                got = {k.decode("latin-1"): v for k, v in lines}
                if names_want is not None and got != names_want:
                    wrong.append(f"NAMES {sorted(got)[:3]}...")
            else:
                name, want = rnd.choice(items)
                data = et.request(port, et.frame(b"z" + name), timeout=10)
                if data != want:
                    wrong.append(f"{name[:30]!r}: {data[:24].hex()}")
        except (OSError, AssertionError) as e:
            errors.append(repr(e))
        lat.append(time.monotonic() - t0)
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0.0
    return {"count": count, "wrong": len(wrong), "wrong_examples": wrong[:5],
            "errors": len(errors), "error_examples": errors[:5],
            "p50": pct(0.5), "p99": pct(0.99), "max": lat[-1] if lat else 0}


class LookupWorker:
    """lookup_loop in a separate process; result() waits for its JSON."""

    def __init__(self, port, found, missing, duration, max_count=100000,
                 names_every=0, names_want=None):
        cfg = {"port": port, "duration": duration, "max_count": max_count,
               "found": {(k.decode("latin-1") if isinstance(k, bytes) else k):
                         v.hex() for k, v in found.items()},
               "missing": list(missing), "names_every": names_every,
               "names_want": names_want}
        self.duration = duration
        self.proc = subprocess.Popen([sys.executable, HERE, "lookups",
                                      json.dumps(cfg)],
                                     stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)

    def result(self):
        try:
            out, _ = self.proc.communicate(timeout=self.duration + 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("lookup worker hung")
        et.eq(self.proc.returncode, 0, "lookup worker status")
        return json.loads(out.decode().strip().splitlines()[-1])

    def stop(self):
        """Ask the worker to finish now; returns its result."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.result()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def check_lookup_stats(st, what, p99_max, max_max, min_count=1):
    """All lookups answered right and in time."""
    log(f"{what}: {st['count']} requests, p50 {st['p50'] * 1000:.1f} ms, "
        f"p99 {st['p99'] * 1000:.1f} ms, max {st['max'] * 1000:.1f} ms, "
        f"{st['wrong']} wrong, {st['errors']} failed")
    et.check(st["wrong"] == 0, f"{what}: {st['wrong']} wrong answers, e.g. "
             f"{st['wrong_examples']}")
    et.check(st["errors"] == 0, f"{what}: {st['errors']} lookups failed, "
             f"e.g. {st['error_examples']}")
    et.check(st["count"] >= min_count,
             f"{what}: only {st['count']} lookups done")
    et.check(st["p99"] <= p99_max, f"{what}: p99 latency {st['p99']:.3f}s")
    et.check(st["max"] <= max_max, f"{what}: max latency {st['max']:.3f}s")


# ------------------------------------------------------------------ main

def _main_lookups(cfg_json):
    cfg = json.loads(cfg_json)
    stop = []

    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    st = lookup_loop(cfg["port"],
                     {k.encode("latin-1"): v for k, v in cfg["found"].items()},
                     cfg["missing"], cfg["duration"], cfg["max_count"],
                     cfg.get("names_every", 0), cfg.get("names_want"),
                     stop=stop)
    print(json.dumps(st), flush=True)


def _main_halfway(port, hexdata, split, want=0):
    data = bytes.fromhex(hexdata)
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
    s.sendall(data[:int(split)])
    print("half", flush=True)
    sys.stdin.readline()
    t = time.monotonic()
    err = None
    try:
        s.sendall(data[int(split):])
    except OSError as e:
        err = repr(e)
    if int(want):
        # An ALIVE2 reply: the daemon keeps the connection; read it, leave.
        reply = et.read_exact(s, int(want), 30)
    else:
        reply = et.read_until_close(s, 30)
    print(json.dumps({"reply": reply.hex(), "send_error": err,
                      "elapsed": time.monotonic() - t}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "lookups":
        _main_lookups(sys.argv[2])
    elif sys.argv[1] == "halfway":
        _main_halfway(*sys.argv[2:6])
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
