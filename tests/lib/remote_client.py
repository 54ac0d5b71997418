#!/usr/bin/env python3
"""The remote peer of netns.Remote. It runs inside the peer's network
namespace (ip netns exec NS python3 remote_client.py), so its connections
reach the daemon from 198.51.100.2 or 2001:db8::2, genuinely non-local
addresses.

Protocol: one JSON object per line on stdin, one JSON object per line on
stdout. Byte strings travel as hex. Every reply has "ok": true, or "ok":
false and "error". Commands:

  {"op": "reach", "host", "port", "timeout"}
      retry a TCP connect until it succeeds (the veth may need a moment).
  {"op": "requests", "host", "port", "items": [{"data": hex, "shut": bool}],
   "timeout"}
      one connection per item: send data (then half-close if shut), read
      until the daemon closes. Returns "results": [{"reply": hex, "closed",
      "reset", "error", "elapsed"}].
  {"op": "flood", "host", "port", "count", "deadline", "batch", "seed",
   "names": [str], "conn_timeout", "stop_on_violation"}
      count connections, batch at a time, of requests a remote peer must
      never get an answer to (ALIVE2, KILL, STOP, DUMP, legacy codes,
      garbage). Stops at the deadline (or after the first batch with a
      violation). Returns counts and samples of any connection that got a
      reply or was not closed within conn_timeout.
  {"op": "hold", "host", "port", "count", "expect_max", "settle"}
      open count idle connections (send nothing) and keep them. Waits up to
      settle seconds for the number still open to drop to expect_max and
      stay there briefly. Returns "opened", "open", "closed", "unexpected".
  {"op": "open", "host", "port", "timeout"}  connect; returns "k", a key.
  {"op": "send", "k", "data"}  send; "error" is set if the send failed.
  {"op": "shut", "k"}          shutdown(SHUT_WR).
  {"op": "read", "k", "n", "timeout"}
      n bytes (all until close if n is null) or what came within timeout:
      "data" and "state" ("read", "open" or "closed").
  {"op": "close", "k"}
  {"op": "status", "wait"}   recount the held connections.
  {"op": "release"}          close the held connections.
  {"op": "quit"}

Standard library only. Every loop is bounded in count and time.
"""

import json
import random
import select
import socket
import struct
import sys
import time

held = []		# [socket, open?] for "hold"
conns = {}		# k -> socket, for open/send/read/close
unexpected_bytes = 0	# data received on held (idle) connections


def frame(body):
    """A request frame: 2-byte length, then the body."""
    return struct.pack(">H", len(body)) + body


def alive2(name, port=6000, high=6, low=5, extra=b""):
    """An ALIVE2_REQ body."""
    name = name.encode()
    return (struct.pack(">BHBBHHH", 120, port, 77, 0, high, low, len(name))
            + name + struct.pack(">H", len(extra)) + extra)


def connect(host, port, timeout):
    """A blocking connected socket."""
    return socket.create_connection((host, port), timeout=timeout)


def read_to_close(s, timeout):
    """Read until EOF or reset, or until timeout. Returns
    (data, closed, reset)."""
    deadline = time.monotonic() + timeout
    data = b""
    for _ in range(100000):
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False, False
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return data, True, True
        except socket.timeout:
            return data, False, False
        if not chunk:
            return data, True, False
        data += chunk
    return data, False, False


def op_reach(cmd):
    deadline = time.monotonic() + float(cmd.get("timeout", 5))
    last = ""
    for _ in range(1000):
        try:
            with connect(cmd["host"], cmd["port"], 1.0):
                return {"ok": True}
        except OSError as e:
            last = str(e)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return {"ok": False, "error": f"cannot reach daemon: {last}"}


def one_request(host, port, data, shut, timeout):
    """Send data on a new connection; report what came back."""
    start = time.monotonic()
    res = {"reply": "", "closed": False, "reset": False, "error": None}
    try:
        s = connect(host, port, timeout)
    except OSError as e:
        res["error"] = f"connect: {e}"
        res["elapsed"] = time.monotonic() - start
        return res
    with s:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            # The daemon may close before everything is sent; that is a
            # close without a reply, which the caller checks for.
            res["error"] = f"send: {e}"
        reply, closed, reset = read_to_close(s, timeout)
    res.update(reply=reply.hex(), closed=closed, reset=reset,
               elapsed=time.monotonic() - start)
    return res


def op_requests(cmd):
    timeout = float(cmd.get("timeout", 5))
    out = []
    for item in cmd["items"][:1000]:
        out.append(one_request(cmd["host"], cmd["port"],
                               bytes.fromhex(item["data"]),
                               bool(item.get("shut")), timeout))
    return {"ok": True, "results": out}


def flood_payload(rng, i, names):
    """(kind, bytes, half-close?) for flood connection i. None of these may
    ever be answered when they come from a non-local peer."""
    kind = rng.choice(FLOOD_KINDS)
    target = rng.choice(names) if names else "alpha"
    if kind == "alive2":
        return kind, frame(alive2(f"remote{i}")), False
    if kind == "alive2_v5":
        return kind, frame(alive2(f"remote{i}", high=5)), False
    if kind == "alive2_dup":
        return kind, frame(alive2(target)), False
    if kind == "kill":
        return kind, frame(b"k"), False
    if kind == "stop":
        return kind, frame(b"s" + target.encode()), False
    if kind == "stop_unknown":
        return kind, frame(b"s" + f"nosuch{i}".encode()), False
    if kind == "dump":
        return kind, frame(b"d"), False
    if kind == "legacy":
        return kind, frame(rng.choice([b"a", b"p", b"Y"]) + b"node"), False
    if kind == "unknown_code":
        code = rng.choice([c for c in range(256) if c not in b"zn"])
        body = bytes([code]) + rng.randbytes(rng.randrange(0, 40))
        return kind, frame(body), False
    if kind == "zero_len":
        return kind, b"\x00\x00", False
    if kind == "oversize":
        n = rng.randrange(3058, 65536)
        return kind, struct.pack(">H", n) + rng.randbytes(64), True
    if kind == "partial":
        return kind, struct.pack(">H", 40) + b"k" + rng.randbytes(5), True
    if kind == "pipelined":
        return kind, frame(b"k") + frame(b"n"), False
    # random_raw: arbitrary bytes, but never a NAMES or PORT_PLEASE2 code
    # in the body's first byte.
    raw = bytearray(rng.randbytes(rng.randrange(1, 64)))
    if len(raw) >= 3 and raw[2] in b"zn":
        raw[2] = ord("q")
    return "random_raw", bytes(raw), True


FLOOD_KINDS = ["alive2", "alive2_v5", "alive2_dup", "kill", "stop",
               "stop_unknown", "dump", "legacy", "unknown_code", "zero_len",
               "oversize", "partial", "pipelined", "random_raw"]


def op_flood(cmd):
    host, port = cmd["host"], cmd["port"]
    count = int(cmd["count"])
    batch = max(1, int(cmd.get("batch", 25)))
    per_conn = float(cmd.get("conn_timeout", 3))
    deadline = time.monotonic() + float(cmd["deadline"])
    rng = random.Random(cmd.get("seed", 1))
    names = cmd.get("names", [])
    stats = {"done": 0, "replied": 0, "not_closed": 0, "connect_errors": 0,
             "send_errors": 0, "resets": 0, "kinds": {}, "samples": [],
             "deadline_hit": False}
    start = time.monotonic()
    i = 0
    while i < count:
        if time.monotonic() >= deadline:
            stats["deadline_hit"] = True
            break
        conns = []	# [sock, kind, payload, reply, finished]
        for _ in range(min(batch, count - i)):
            kind, data, shut = flood_payload(rng, i, names)
            i += 1
            stats["kinds"][kind] = stats["kinds"].get(kind, 0) + 1
            try:
                s = connect(host, port, per_conn)
            except OSError as e:
                stats["connect_errors"] += 1
                if len(stats["samples"]) < 10:
                    stats["samples"].append({"kind": kind, "connect": str(e)})
                continue
            try:
                s.sendall(data)
                if shut:
                    s.shutdown(socket.SHUT_WR)
            except OSError:
                stats["send_errors"] += 1
            s.setblocking(False)
            conns.append([s, kind, data, b"", False])
        collect(conns, per_conn, stats)
        stats["done"] += len(conns)
        if cmd.get("stop_on_violation") and (stats["replied"]
                                             or stats["not_closed"]):
            stats["stopped_early"] = True
            break
    stats["elapsed"] = time.monotonic() - start
    return {"ok": True, **stats}


def collect(conns, timeout, stats):
    """Read every connection of a batch until the daemon closes it."""
    by_fd = {c[0].fileno(): c for c in conns}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    end = time.monotonic() + timeout
    pending = len(by_fd)
    for _ in range(100000):
        if pending == 0:
            break
        left = end - time.monotonic()
        if left <= 0:
            break
        for fd, _ev in poller.poll(int(left * 1000) + 1):
            c = by_fd[fd]
            if c[4]:
                continue
            try:
                chunk = c[0].recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                stats["resets"] += 1
                chunk = b""
            if chunk:
                c[3] += chunk
                continue
            c[4] = True
            pending -= 1
            poller.unregister(fd)
    for s, kind, data, reply, finished in conns:
        if reply:
            stats["replied"] += 1
        if not finished:
            stats["not_closed"] += 1
        if (reply or not finished) and len(stats["samples"]) < 10:
            stats["samples"].append({"kind": kind, "data": data.hex(),
                                     "reply": reply.hex(),
                                     "closed": finished})
        s.close()


def count_held(wait):
    """Mark held connections the daemon has closed; returns how many are
    still open."""
    global unexpected_bytes
    end = time.monotonic() + wait
    for _ in range(100000):
        live = [h for h in held if h[1]]
        if not live:
            break
        poller = select.poll()
        by_fd = {}
        for h in live:
            by_fd[h[0].fileno()] = h
            poller.register(h[0].fileno(), select.POLLIN)
        left = max(0.0, end - time.monotonic())
        events = poller.poll(int(left * 1000))
        for fd, _ev in events:
            h = by_fd[fd]
            try:
                chunk = h[0].recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if chunk:
                unexpected_bytes += len(chunk)
                continue
            h[1] = False
        if not events or time.monotonic() >= end:
            break
    return sum(1 for h in held if h[1])


def op_hold(cmd):
    host, port = cmd["host"], cmd["port"]
    count = int(cmd["count"])
    expect_max = int(cmd.get("expect_max", count))
    settle = float(cmd.get("settle", 5))
    errors = 0
    last_error = None
    for _ in range(count):
        try:
            s = connect(host, port, 3.0)
        except OSError as e:
            errors += 1
            last_error = str(e)
            continue
        s.setblocking(False)
        held.append([s, True])
    # Wait for the daemon to shed what it will shed, then check that the
    # number stays put for a moment.
    end = time.monotonic() + settle
    open_now = count_held(0.2)
    for _ in range(1000):
        if open_now <= expect_max or time.monotonic() >= end:
            break
        open_now = count_held(0.2)
    open_now = count_held(0.5)
    return {"ok": True, "opened": len(held), "connect_errors": errors,
            "last_error": last_error, "open": open_now,
            "closed": len(held) - open_now, "unexpected": unexpected_bytes}


def op_status(cmd):
    open_now = count_held(float(cmd.get("wait", 0.3)))
    return {"ok": True, "opened": len(held), "open": open_now,
            "closed": len(held) - open_now, "unexpected": unexpected_bytes}


def op_release(cmd):
    n = len(held)
    for h in held:
        h[0].close()
    held.clear()
    return {"ok": True, "released": n}


def op_open(cmd):
    k = max(conns, default=0) + 1
    conns[k] = connect(cmd["host"], cmd["port"], float(cmd.get("timeout", 5)))
    return {"ok": True, "k": k}


def op_send(cmd):
    try:
        conns[cmd["k"]].sendall(bytes.fromhex(cmd["data"]))
    except OSError as e:
        return {"ok": True, "error": str(e)}
    return {"ok": True, "error": None}


def op_shut(cmd):
    conns[cmd["k"]].shutdown(socket.SHUT_WR)
    return {"ok": True}


def op_read(cmd):
    s = conns[cmd["k"]]
    n = cmd.get("n")
    deadline = time.monotonic() + float(cmd.get("timeout", 5))
    data = b""
    state = "read"
    for _ in range(100000):
        if n is not None and len(data) >= n:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            state = "open"
            break
        s.settimeout(left)
        try:
            chunk = s.recv(65536 if n is None else n - len(data))
        except socket.timeout:
            state = "open"
            break
        except OSError:
            state = "closed"
            break
        if not chunk:
            state = "closed"
            break
        data += chunk
    return {"ok": True, "data": data.hex(), "state": state}


def op_close(cmd):
    s = conns.pop(cmd["k"], None)
    if s is not None:
        s.close()
    return {"ok": True}


OPS = {"reach": op_reach, "open": op_open, "send": op_send, "shut": op_shut,
       "read": op_read, "close": op_close, "requests": op_requests, "flood": op_flood,
       "hold": op_hold, "status": op_status, "release": op_release}


def main():
    for _ in range(10000):
        line = sys.stdin.readline()
        if not line:
            break
        quit_now = False
        try:
            cmd = json.loads(line)
            quit_now = cmd.get("op") == "quit"
            reply = {"ok": True} if quit_now else OPS[cmd["op"]](cmd)
        except Exception as e:		# report, keep serving
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        if quit_now:
            break
    op_release({})
    for s in conns.values():
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
