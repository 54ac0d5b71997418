#!/usr/bin/env python3
"""The client never waits for ever (epmd-c's own; OTP's client hangs).

Every client command has one deadline, 10 s by default or
-client_timeout Seconds (0: none), covering the connect and the whole
answer. The peers here are fake servers written in Python: one that accepts
and never answers, one that drips a byte a second, and one whose accept
queue is full so that connecting hangs. On the deadline the client says on
stderr what did not happen in time and exits 1; -started stays silent.
"""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

import epmdtest as et  # noqa: E402
from epmdtest import check, epmdc, eq  # noqa: E402

# Seconds a client may overrun its deadline (process start, scheduling).
SLACK = 1.5 * et.SLOW
DRIP_SECS = 0.25          # a byte this often: always some progress
USAGE_FIRST = b"usage: epmd [-d|-debug] [DbgExtra...] [-address List]"


class FakeServer:
    """A server on 127.0.0.1 that reads each request, then either says
    nothing (drip=None) or sends drip's bytes one every DRIP_SECS, for
    ever.
    Connections stay open until close()."""

    def __init__(self, drip=None):
        self.drip = drip
        self.conns = []
        self.stopping = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Nothing on [::1] at this port: the client falls back to here.
        self.sock.bind(("127.0.0.1", et.free_port()))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._answer, args=(conn,),
                             daemon=True).start()

    def _answer(self, conn):
        try:
            conn.recv(4096)
            if self.drip is None:
                return
            i = 0
            while not self.stopping.is_set():
                conn.sendall(self.drip[i % len(self.drip):][:1])
                i += 1
                self.stopping.wait(DRIP_SECS)
        except OSError:
            pass

    def close(self):
        self.stopping.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            c.close()
        self.thread.join(timeout=2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FullBacklog:
    """A listener on 127.0.0.1 that never accepts, its queue filled, so a
    new connect gets no answer to its SYN."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", et.free_port()))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        # Fill the accept queue: connects that stop completing at once.
        for _ in range(8):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(s)
        time.sleep(0.2)

    def close(self):
        for s in self.fillers:
            s.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def timed(port, *args, limit=30):
    """Run the client against port; (rc, stdout, stderr, seconds)."""
    et.need_binary(et.EPMD_BIN)
    t0 = time.monotonic()
    rc, out, err = et.run([et.EPMD_BIN, "-port", str(port)] + list(args),
                          timeout=limit)
    return rc, out, err, time.monotonic() - t0


def no_answer(port, secs):
    """The message for a connection that got no (full) answer in time."""
    return b"epmd-c: no answer from epmd on 127.0.0.1:%d within %d s\n" % (
        port, secs)


def gives_up(args, secs, drip=None, flag=True):
    """Against a fake server, the client exits 1 after about secs seconds
    with the no-answer message; returns its stdout."""
    with FakeServer(drip) as fake:
        extra = ["-client_timeout", str(secs)] if flag else []
        rc, out, err, took = timed(fake.port, *(extra + list(args)))
    eq((rc, err), (1, no_answer(fake.port, secs)), f"exit and stderr of {args}")
    check(secs - 0.2 <= took <= secs + SLACK,
          f"{args} gave up after {took:.1f} s, not about {secs} s")
    return out


@epmdc(timeout=40)
def test_names_gives_up_on_a_silent_server_after_10_s_by_default():
    if et.UNDER_ASAN:
        raise et.Skip("ASan/UBSan run: the 2 s tests run the same code")
    eq(gives_up(["-names"], 10, flag=False), b"", "stdout")


@epmdc
def test_names_gives_up_on_a_silent_server_at_client_timeout():
    eq(gives_up(["-names"], 2), b"", "stdout")


@epmdc
def test_dump_gives_up_on_a_silent_server_at_client_timeout():
    eq(gives_up(["-dump"], 2), b"", "stdout")


@epmdc
def test_kill_gives_up_on_a_silent_server_at_client_timeout():
    eq(gives_up(["-kill"], 2), b"", "stdout")


@epmdc
def test_stop_gives_up_on_a_silent_server_at_client_timeout():
    eq(gives_up(["-stop", "foo"], 2), b"", "stdout")


@epmdc
def test_started_gives_up_on_a_silent_server_silently():
    with FakeServer() as fake:
        rc, out, err, took = timed(fake.port, "-client_timeout", "2",
                                   "-started")
    eq((rc, out, err), (1, b"", b""), "-started result")
    check(1.8 <= took <= 2 + SLACK, f"-started gave up after {took:.1f} s")


NAMES_DRIP = b"\x00\x00\x11\x11" + b"name a at port 1\n" * 100
DUMP_DRIP = (b"\x00\x00\x11\x11"
             + b"active name     <a> at port 1, fd = 5\n\x00" * 100)


@epmdc(timeout=40)
def test_names_drip_cannot_stretch_the_deadline():
    # The header is whole after 1 s; then the body drips until 3 s.
    out = gives_up(["-names"], 3, drip=NAMES_DRIP)
    want = b"epmd: up and running on port 4369 with data:\nn"
    check(out.startswith(want), f"stdout {out!r}")


@epmdc(timeout=40)
def test_dump_drip_cannot_stretch_the_deadline():
    out = gives_up(["-dump"], 3, drip=DUMP_DRIP)
    check(out.startswith(b"epmd: up and running on port 4369 with data:\n"),
          f"stdout {out!r}")


@epmdc
def test_connect_that_hangs_gives_up_at_client_timeout():
    with FullBacklog() as fb:
        rc, out, err, took = timed(fb.port, "-client_timeout", "2", "-names")
    eq((rc, out, err), (1, b"", b"epmd-c: cannot connect to epmd on "
                        b"127.0.0.1:%d within 2 s\n" % fb.port), "result")
    check(1.8 <= took <= 2 + SLACK, f"gave up after {took:.1f} s")


@epmdc
def test_client_timeout_0_waits_for_ever():
    with FakeServer() as fake:
        try:
            et.run([et.EPMD_BIN, "-port", str(fake.port), "-client_timeout",
                    "0", "-names"], timeout=3)
        except et.subprocess.TimeoutExpired:
            return
    raise AssertionError("the client returned with -client_timeout 0")


@epmdc
def test_answer_within_the_deadline_is_printed_as_usual():
    with et.daemon() as d:
        s, _ = et.register_ok(d, "quick")
        rc, out, err, _ = timed(d.port, "-client_timeout", "1", "-names")
        s.close()
    eq((rc, out, err), (0, b"epmd: up and running on port %d with data:\n"
                        b"name quick at port 5001\n" % d.port, b""), "result")


@epmdc
def test_client_timeout_bad_value_is_a_usage_error():
    et.need_binary(et.EPMD_BIN)
    for bad in (["-1"], ["abc"], [""], ["2x"], []):
        rc, _, err = et.run([et.EPMD_BIN, "-port", "1", "-client_timeout"]
                            + bad + ["-names"])
        eq((rc, err.split(b"\n")[0]), (1, USAGE_FIRST),
           f"-client_timeout {bad}")


if __name__ == "__main__":
    et.run_tests()
