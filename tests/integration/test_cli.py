#!/usr/bin/env python3
"""CLI integration tests: our client beside the real OTP client (PROTOCOL.md 4.5, 7.5).

Every test runs the client under test ($EPMD_BIN) and the reference client
($REF_EPMD) with the same arguments against the same peer, and asserts that
stdout, stderr and the exit code are identical. The peers are: nothing at
all, the real OTP daemon on a free port, and scripted fake servers written
here that answer fixed bytes. For usage errors only the exit code and the
first line of stderr are compared (the rest of the text is our own).

When the daemon mode of the binary under test is not needed, the real epmd
serves: the comparison is about the client.
"""

import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

import epmdtest as et  # noqa: E402
from epmdtest import check, eq, eventually, test  # noqa: E402

CANNOT_CONNECT = b"epmd: Cannot connect to local epmd\n"
NO_RESPONSE = b"epmd: no response from local epmd\n"
EMPTY_REPLY = b"epmd: local epmd responded with <>\n"
READ_FAILED = b"epmd: failed to read answer from local epmd\n"
KILLED = b"Killed\n"
KILL_DENIED = b"Killing not allowed - living nodes in database.\n"
USAGE_FIRST = b"usage: epmd [-d|-debug] [DbgExtra...] [-address List]"


# --------------------------------------------------------------------------
# Helpers

def need_binaries():
    """Skip unless both clients can be run."""
    et.need_binary(et.EPMD_BIN, "EPMD_BIN")
    et.need_binary(et.REF_EPMD, "REF_EPMD")


def both(args, env=None):
    """Run both clients with args; returns (ours, reference) results."""
    need_binaries()
    ours = et.run([et.EPMD_BIN] + list(args), env=env)
    ref = et.run([et.REF_EPMD] + list(args), env=env)
    return ours, ref


def same(args, env=None, want=None):
    """Assert both clients give identical results; return ours."""
    ours, ref = both(args, env)
    eq(ours, ref, f"epmd-c vs reference for {args}")
    if want is not None:
        eq(ours, want, f"result of {args}")
    return ours


def ref_daemon(*args, **kw):
    """The real OTP daemon on a free port (listening on both loopbacks)."""
    need_binaries()
    return et.Daemon(et.REF_EPMD, args=args, **kw)


def dead_port():
    """A loopback port with nothing listening on it."""
    return et.free_port()


class FakeServer:
    """A scripted server: reads the request, answers fixed bytes, closes.

    With reset=True it aborts the connection (RST) after the reply instead
    of closing it cleanly. requests records the bytes each client sent.
    """

    def __init__(self, reply, host="127.0.0.1", port=0, reset=False):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.reply = reply
        self.reset = reset
        self.requests = []
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.sock.bind((host, port))
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
            with conn:
                conn.settimeout(2.0)
                try:
                    self.requests.append(conn.recv(4096))
                except OSError:
                    self.requests.append(None)
                try:
                    conn.sendall(self.reply)
                except OSError:
                    pass
                if self.reset:
                    time.sleep(0.05)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the accept
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def against_fake(reply, args, want=None, reset=False):
    """Both clients against a fake server answering reply; returns ours."""
    need_binaries()
    with FakeServer(reply, reset=reset) as fake:
        ours = same(["-port", str(fake.port)] + list(args), want=want)
        eq(len(fake.requests), 2, f"connections for {args}")
        eq(fake.requests[0], fake.requests[1], f"request bytes for {args}")
    return ours


def close_all(socks):
    """Close the registration sockets of a test."""
    for s in socks:
        s.close()


# --------------------------------------------------------------------------
# No daemon at all

@test
def test_no_daemon_names_cannot_connect():
    same(["-port", str(dead_port()), "-names"], want=(1, b"", CANNOT_CONNECT))


@test
def test_no_daemon_dump_cannot_connect():
    same(["-port", str(dead_port()), "-dump"], want=(1, b"", CANNOT_CONNECT))


@test
def test_no_daemon_kill_cannot_connect():
    same(["-port", str(dead_port()), "-kill"], want=(1, b"", CANNOT_CONNECT))


@test
def test_no_daemon_stop_cannot_connect():
    same(["-port", str(dead_port()), "-stop", "foo"],
         want=(1, b"", CANNOT_CONNECT))


@test
def test_no_daemon_started_is_silent_failure():
    same(["-port", str(dead_port()), "-started"], want=(1, b"", b""))


@test
def test_no_daemon_with_debug_flags_is_the_same():
    same(["-d", "-d", "-port", str(dead_port()), "-names"],
         want=(1, b"", CANNOT_CONNECT))


@test
def test_env_port_garbage_means_port_zero_and_no_connection():
    same(["-names"], env={"ERL_EPMD_PORT": "abc"},
         want=(1, b"", CANNOT_CONNECT))


@test
def test_negative_port_cannot_connect():
    same(["-port", "-5", "-names"])


@test
def test_stop_name_too_long_without_daemon():
    same(["-port", str(dead_port()), "-stop", "a" * 1001],
         want=(1, b"epmd: Name too long!", b""))


# --------------------------------------------------------------------------
# The real OTP daemon

@test
def test_names_empty_daemon():
    with ref_daemon() as d:
        same(["-port", str(d.port), "-names"],
             want=(0, b"epmd: up and running on port %d with data:\n" % d.port,
                   b""))


@test
def test_names_with_nodes():
    with ref_daemon() as d:
        socks = []
        try:
            for i, name in enumerate(("n1", "n2")):
                s, reply = et.register(d.port, name, port=5001 + i)
                eq(reply[:2], b"v\x00", "registration")
                socks.append(s)
            out = same(["-port", str(d.port), "-names"])
            eq(out[1], b"epmd: up and running on port %d with data:\n"
               b"name n2 at port 5002\nname n1 at port 5001\n" % d.port,
               "names output")
        finally:
            close_all(socks)


@test
def test_names_with_debug_flag_and_env_port():
    with ref_daemon() as d:
        same(["-d", "-names"], env={"ERL_EPMD_PORT": str(d.port)})


@test
def test_client_ignores_address_list():
    with ref_daemon() as d:
        same(["-port", str(d.port), "-address", "localhost", "-names"])
        same(["-port", str(d.port), "-names"],
             env={"ERL_EPMD_ADDRESS": "not-an-address"})


@test
def test_names_header_keeps_port_above_16_bits():
    need_binaries()
    low = et.free_port()
    d = et.Daemon(et.REF_EPMD, port=low + 65536, wait=False)
    try:
        check(et.wait_port(low), f"reference daemon on {low}: {d.stderr()}")
        same(["-port", str(low + 65536), "-names"],
             want=(0, b"epmd: up and running on port %d with data:\n"
                   % (low + 65536), b""))
    finally:
        d.stop()


@test
def test_dump_with_active_and_old_nodes():
    with ref_daemon() as d:
        socks = []
        try:
            for i, name in enumerate(("n1", "n2", "gone")):
                s, reply = et.register(d.port, name, port=5001 + i)
                eq(reply[:2], b"v\x00", "registration")
                socks.append(s)
            socks.pop().close()
            check(eventually(lambda: b"gone" not in et.names(d.port)),
                  "gone still registered")
            out = same(["-port", str(d.port), "-dump"])
            eq(out[0], 0, "rc")
            check(b"active name     <n1> at port 5001, fd = " in out[1],
                  f"dump output {out[1]!r}")
            check(b"old/unused name <gone>, port = 5003" in out[1],
                  f"dump output {out[1]!r}")
            check(out[1].count(b"\n\x00") == 3, "NUL after each line")
        finally:
            close_all(socks)


@test
def test_started_with_daemon():
    with ref_daemon() as d:
        same(["-port", str(d.port), "-started"], want=(0, b"", b""))


@test
def test_kill_empty_daemon_kills_it():
    with ref_daemon() as d1, ref_daemon() as d2:
        ours = et.run([et.EPMD_BIN, "-port", str(d1.port), "-kill"])
        ref = et.run([et.REF_EPMD, "-port", str(d2.port), "-kill"])
        eq(ours, ref, "epmd-c vs reference for -kill")
        eq(ours, (0, KILLED, b""), "kill output")
        eq(d1.wait(), 0, "daemon killed by epmd-c's client")
        eq(d2.wait(), 0, "daemon killed by the reference client")


@test
def test_kill_with_nodes_not_allowed():
    with ref_daemon() as d:
        s, _ = et.register(d.port, "n1")
        try:
            same(["-port", str(d.port), "-kill"], want=(1, KILL_DENIED, b""))
            check(d.alive(), "daemon must keep running")
        finally:
            s.close()


@test
def test_stop_relaxed_stopped():
    with ref_daemon("-relaxed_command_check") as d:
        s1, _ = et.register(d.port, "n1")
        s2, _ = et.register(d.port, "n2")
        try:
            ours = et.run([et.EPMD_BIN, "-port", str(d.port), "-stop", "n1"])
            ref = et.run([et.REF_EPMD, "-port", str(d.port), "-stop", "n2"])
            eq(ours, ref, "epmd-c vs reference for -stop")
            eq(ours, (0, b"STOPPED\n", b""), "stop output")
            check(et.is_closed(s1), "n1's registration closed")
            eq(et.names(d.port)[4:], b"", "no nodes left")
        finally:
            close_all((s1, s2))


@test
def test_stop_relaxed_unknown_name_noexist():
    with ref_daemon("-relaxed_command_check") as d:
        same(["-port", str(d.port), "-stop", "nothere"],
             want=(0, b"NOEXIST\n", b""))


@test
def test_stop_relaxed_by_environment():
    with ref_daemon(env={"ERL_EPMD_RELAXED_COMMAND_CHECK": ""}) as d:
        same(["-port", str(d.port), "-stop", "nothere"],
             want=(0, b"NOEXIST\n", b""))


@test
def test_stop_not_relaxed_empty_brackets():
    with ref_daemon() as d:
        s, _ = et.register(d.port, "live3")
        try:
            same(["-port", str(d.port), "-stop", "live3"],
                 want=(1, EMPTY_REPLY, b""))
        finally:
            s.close()


@test
def test_stop_name_too_long_with_daemon():
    with ref_daemon("-relaxed_command_check") as d:
        same(["-port", str(d.port), "-stop", "a" * 1001],
             want=(1, b"epmd: Name too long!", b""))
        same(["-port", str(d.port), "-stop", "a" * 1000],
             want=(0, b"NOEXIST\n", b""))


# --------------------------------------------------------------------------
# Scripted fake servers

@test
def test_fake_names_empty_reply_no_response():
    against_fake(b"", ["-names"], want=(1, NO_RESPONSE, b""))


@test
def test_fake_names_three_bytes_no_response():
    against_fake(b"\x00\x00\x11", ["-names"], want=(1, NO_RESPONSE, b""))


@test
def test_fake_names_reset_no_response():
    against_fake(b"", ["-names"], want=(1, NO_RESPONSE, b""), reset=True)


@test
def test_fake_names_header_only():
    against_fake(b"\x00\x00\x00\x05", ["-names"],
                 want=(0, b"epmd: up and running on port 5 with data:\n", b""))


@test
def test_fake_names_header_is_signed_and_body_raw():
    against_fake(b"\xff\xff\xff\xfeab\x00c\xff\n", ["-names"],
                 want=(0, b"epmd: up and running on port -2 with data:\n"
                       b"ab\x00c\xff\n", b""))


@test
def test_fake_names_large_body():
    body = b"".join(b"name n%05d at port %d\n" % (i, 10000 + i)
                    for i in range(5000))
    out = against_fake(b"\x00\x00\x12\x34" + body, ["-names"])
    eq(out[1], b"epmd: up and running on port 4660 with data:\n" + body,
       "large body")


@test
def test_fake_dump_keeps_nul_bytes():
    against_fake(b"\x00\x00\x00\x07x\x00y\x00", ["-dump"],
                 want=(0, b"epmd: up and running on port 7 with data:\n"
                       b"x\x00y\x00", b""))


@test
def test_fake_dump_three_bytes_no_response():
    against_fake(b"abc", ["-dump"], want=(1, NO_RESPONSE, b""))


@test
def test_fake_started_four_bytes_is_success():
    against_fake(b"abcd", ["-started"], want=(0, b"", b""))


@test
def test_fake_started_three_bytes_is_failure():
    against_fake(b"abc", ["-started"], want=(1, b"", b""))


@test
def test_fake_started_empty_reply_is_failure():
    against_fake(b"", ["-started"], want=(1, b"", b""))


@test
def test_fake_kill_ok():
    against_fake(b"OK", ["-kill"], want=(0, KILLED, b""))


@test
def test_fake_kill_ok_with_extra_bytes():
    against_fake(b"OKextra", ["-kill"], want=(0, KILLED, b""))


@test
def test_fake_kill_other_two_bytes_not_allowed():
    against_fake(b"XY", ["-kill"], want=(1, KILL_DENIED, b""))
    against_fake(b"NO", ["-kill"], want=(1, KILL_DENIED, b""))


@test
def test_fake_kill_one_byte_empty_brackets():
    against_fake(b"O", ["-kill"], want=(1, EMPTY_REPLY, b""))


@test
def test_fake_kill_empty_reply_empty_brackets():
    against_fake(b"", ["-kill"], want=(1, EMPTY_REPLY, b""))


@test
def test_fake_kill_reset_failed_to_read():
    against_fake(b"", ["-kill"], want=(1, READ_FAILED, b""), reset=True)


@test
def test_fake_stop_prints_first_seven_bytes():
    against_fake(b"FOOBARXYZ", ["-stop", "n1"], want=(0, b"FOOBARX\n", b""))


@test
def test_fake_stop_noexist_stopped_prints_noexist():
    against_fake(b"NOEXISTSTOPPED", ["-stop", "n1"],
                 want=(0, b"NOEXIST\n", b""))


@test
def test_fake_stop_short_reply_empty_brackets():
    against_fake(b"STOP", ["-stop", "n1"], want=(1, EMPTY_REPLY, b""))


@test
def test_fake_stop_reset_failed_to_read():
    against_fake(b"", ["-stop", "n1"], want=(1, READ_FAILED, b""), reset=True)


@test
def test_request_bytes_match_the_protocol():
    need_binaries()
    cases = ((["-names"], b"\x00\x01n"), (["-dump"], b"\x00\x01d"),
             (["-kill"], b"\x00\x01k"), (["-started"], b"\x00\x01n"),
             (["-stop", "live1"], b"\x00\x06slive1"))
    for args, want in cases:
        with FakeServer(b"") as fake:
            et.run([et.EPMD_BIN, "-port", str(fake.port)] + args)
            et.run([et.REF_EPMD, "-port", str(fake.port)] + args)
            eq(fake.requests, [want, want], f"request bytes for {args}")


@test
def test_server_only_on_ipv6_loopback():
    need_binaries()
    port = et.free_port()
    with FakeServer(b"\x00\x00\x12\x34", host="::1", port=port) as fake:
        same(["-port", str(port), "-names"],
             want=(0, b"epmd: up and running on port 4660 with data:\n", b""))
        eq(len(fake.requests), 2, "connections on ::1")


@test
def test_server_only_on_ipv4_loopback():
    need_binaries()
    port = et.free_port()
    with FakeServer(b"\x00\x00\x12\x35", host="127.0.0.1", port=port) as fake:
        same(["-port", str(port), "-names"],
             want=(0, b"epmd: up and running on port 4661 with data:\n", b""))
        eq(len(fake.requests), 2, "connections on 127.0.0.1")


# --------------------------------------------------------------------------
# Usage errors (PROTOCOL.md 7.5): exit 1 and the same first line of stderr

USAGE_CASES = (
    ["-h"], ["-help"], ["--help"], ["-bogus"], ["-port"], ["-address"],
    ["-names", "-port", "24399"],
    ["-port", "0", "-names"], ["-port", "abc", "-names"],
    ["-packet_timeout", "0"], ["-packet_timeout", "abc"],
    ["-delay_accept", "0"],
    ["-stop"], ["-stop", "a", "b"],
    ["-kill", "x"], ["-dump", "x"], ["-started", "x"],
    ["-kill", "-port", "24399"],
)


def check_usage(args):
    """Both clients reject args with exit 1 and the same usage line."""
    ours, ref = both(args)
    eq(ref[0], 1, f"reference rc for {args}")
    eq(ours[0], 1, f"epmd-c rc for {args}")
    eq(ours[1], b"", f"epmd-c stdout for {args}")
    ref_first = ref[2].split(b"\n", 1)[0]
    ours_first = ours[2].split(b"\n", 1)[0]
    eq(ref_first, USAGE_FIRST, f"reference usage line for {args}")
    eq(ours_first, ref_first, f"epmd-c usage line for {args}")


def usage_test(args):
    """Register one usage-error test for args."""
    def fn():
        check_usage(args)
    words = ("dd" + a[2:] if a.startswith("--") else a.lstrip("-")
             for a in args)
    fn.__name__ = "test_usage_" + "_".join(words)
    return test(fn)


for _args in USAGE_CASES:
    usage_test(_args)


if __name__ == "__main__":
    et.run_tests()
