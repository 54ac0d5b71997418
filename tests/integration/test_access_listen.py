#!/usr/bin/env python3
"""The listen policy of OTP's 2026 security release (PROTOCOL.md 4.4,
GHSA-h6f3-hx58-xhj6, OTP PR #11409), seen from outside.

-address / ERL_EPMD_ADDRESS variants: which sockets are open (ss(8) in the
namespace), who can reach them (remote peers of access_net's topology),
exit statuses and messages. The implicit 127.0.0.1 is added only when
neither 127.0.0.1 nor 0.0.0.0 was given, ::1 only when neither ::1 nor ::
was; implicit sockets are best-effort; a given address that cannot be
parsed or bound is fatal (exit 1); EADDRINUSE exits 0. Wildcards are
only ever bound inside namespaces made here. A host with IPv6 disabled is
a namespace of its own with net.ipv6.conf.*.disable_ipv6=1. With
EPMD_REFERENCE_MODE=1 everything skips: the installed OTP predates it.
"""

import errno
import os
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import access_net as an  # noqa: E402
import epmdtest as et  # noqa: E402

NAMES = et.frame(b"n")


def need_epmd_c():
    if os.environ.get("EPMD_REFERENCE_MODE") == "1":
        raise et.Skip("the installed OTP epmd predates this listen policy "
                      "(EPMD_REFERENCE_MODE=1)")


def env_address(value):
    return {"ERL_EPMD_ADDRESS": value}


def free_port():
    """A port free on 127.0.0.1 and, where there is IPv6, on ::1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                s6.bind(("::1", port))
        except OSError as e:
            if e.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                continue
        return port
    raise RuntimeError("no free port")


def serve(env=None, args=(), address=None):
    """A daemon in the topology's host namespace, started without -address
    unless given; it must come up on 127.0.0.1 or ::1."""
    an.shared()
    port = free_port()
    d = et.Daemon(env=env, args=list(args), address=address, port=port,
                  wait=False)
    if not (et.wait_port(port, "127.0.0.1", 5) or
            et.wait_port(port, "::1", 1)):
        d.stop()
        raise AssertionError(f"daemon did not serve: {d.stderr()}")
    return d


def start_fails(env=None, args=(), address=None):
    """Run a daemon that must exit by itself: (status, stderr)."""
    an.shared()
    port = free_port()
    argv = [et.EPMD_BIN, "-port", str(port)] + list(args)
    if address is not None:
        argv += ["-address", address]
    rc, _out, err = et.run(argv, env=env, timeout=10)
    return rc, err.decode("utf-8", "replace")


def sockets(d):
    return an.listening(d.port)


def expect_sockets(d, *addrs):
    want = {f"{a}:{d.port}" if ":" not in a else f"[{a}]:{d.port}"
            for a in addrs}
    et.eq(sockets(d), want, f"listening sockets ({d.stderr()})")


def remote_names(d, peer_ns, host):
    """NAMES from a remote peer: the reply, or None if it cannot connect."""
    with an.Peer(peer_ns, d.port, host) as p:
        r = p.ask(NAMES)[0]
    if r["error"] is not None and r["error"].startswith("connect:"):
        return None
    et.check(r["error"] is None and r["closed"], f"remote NAMES: {r}")
    return bytes.fromhex(r["reply"])


def stopped_cleanly(d):
    et.eq(d.stop(), 0, f"exit status after SIGTERM ({d.stderr()})")


# ---------------------------------------------------------------- wildcards

@et.test
def listen_env_ipv4_wildcard_serves_with_ipv6_loopback():
    need_epmd_c()
    topo = an.shared()
    d = serve(env_address("0.0.0.0"))
    try:
        expect_sockets(d, "0.0.0.0", "::1")
        local = et.names(d.port)
        et.eq(remote_names(d, topo.peer_a, an.HOST_A), local, "A NAMES")
        et.eq(remote_names(d, topo.peer_b, an.HOST_B), local, "B NAMES")
        et.eq(et.names(d.port, "::1"), local, "NAMES over ::1")
        et.check("already in use" not in d.stderr(), d.stderr())
    finally:
        stopped_cleanly(d)


@et.test
def listen_env_ipv6_wildcard_serves_with_ipv4_loopback():
    need_epmd_c()
    topo = an.shared()
    d = serve(env_address("::"))
    try:
        expect_sockets(d, "127.0.0.1", "::")
        local = et.names(d.port)
        et.eq(remote_names(d, topo.peer_a, an.HOST_A6), local, "A over v6")
        # V6ONLY: the IPv6 wildcard does not serve IPv4.
        et.eq(remote_names(d, topo.peer_a, an.HOST_A), None, "A over v4")
    finally:
        stopped_cleanly(d)


@et.test
def listen_both_wildcards_add_no_loopback():
    need_epmd_c()
    topo = an.shared()
    d = serve(address="0.0.0.0 ::")
    try:
        expect_sockets(d, "0.0.0.0", "::")
        et.eq(remote_names(d, topo.peer_b, an.HOST_B6), et.names(d.port),
              "B over v6")
    finally:
        stopped_cleanly(d)


@et.test
def listen_wildcard_covers_addresses_of_its_family():
    need_epmd_c()
    d = serve(address=f"0.0.0.0,{an.HOST_A},127.0.0.1")
    try:
        expect_sockets(d, "0.0.0.0", "::1")
    finally:
        stopped_cleanly(d)


# ----------------------------------------------------------- loopbacks

@et.test
def listen_debian_hostname_address_keeps_127_0_0_1():
    """127.0.1.1 is what Debian maps the hostname to; nodes still
    register through 127.0.0.1."""
    need_epmd_c()
    d = serve(env_address("127.0.1.1"))
    try:
        expect_sockets(d, "127.0.0.1", "::1", "127.0.1.1")
        s, reply = et.register(d.port, "deb", "127.0.0.1")
        with s:
            et.eq(reply[:2], b"\x76\x00", "register via 127.0.0.1")
            et.check(b"name deb at port" in et.names(d.port, "127.0.1.1"),
                     "NAMES via 127.0.1.1")
    finally:
        stopped_cleanly(d)


@et.test
def listen_given_loopback_is_not_doubled():
    need_epmd_c()
    d = serve(address="127.0.0.1,127.0.0.1 ::1")
    try:
        expect_sockets(d, "127.0.0.1", "::1")
    finally:
        stopped_cleanly(d)


@et.test
def listen_other_address_adds_both_loopbacks():
    need_epmd_c()
    topo = an.shared()
    d = serve(env_address(an.HOST_B))
    try:
        expect_sockets(d, "127.0.0.1", "::1", an.HOST_B)
        et.eq(remote_names(d, topo.peer_b, an.HOST_B), et.names(d.port),
              "B NAMES")
        et.eq(remote_names(d, topo.peer_b, an.HOST_A), None,
              "B to an address not listened on")
    finally:
        stopped_cleanly(d)


# ------------------------------------------------------------------ errors

@et.test
def listen_unparsable_address_exits_1():
    need_epmd_c()
    for env, addr in ((env_address("localhost"), None),
                      (None, "198.51.100.1,127.1")):
        rc, err = start_fails(env=env, address=addr)
        et.eq(rc, 1, f"exit status ({err})")
        et.check("cannot parse IP address" in err, err)


@et.test
def listen_given_address_not_on_this_host_exits_1():
    need_epmd_c()
    rc, err = start_fails(address="198.51.100.77")
    et.eq(rc, 1, f"exit status ({err})")
    et.check("failed to bind on ipaddr 198.51.100.77" in err, err)


@et.test
def listen_mapped_address_exits_1():
    need_epmd_c()
    rc, err = start_fails(address="::ffff:127.0.0.1")
    et.eq(rc, 1, f"exit status ({err})")
    et.check("failed to bind on ipaddr ::ffff:127.0.0.1" in err, err)


@et.test
def listen_port_in_use_exits_0():
    """erl starts epmd whenever it starts: the second one must exit 0."""
    need_epmd_c()
    first = serve(env_address("0.0.0.0"))
    try:
        for env in (env_address("0.0.0.0"), env_address("127.0.0.1"),
                    None):
            rc, _out, err = et.run([et.EPMD_BIN, "-port", str(first.port)],
                                   env=env, timeout=10)
            text = err.decode("utf-8", "replace")
            et.eq(rc, 0, f"second daemon {env}: exit status ({text})")
            et.check("already in use" in text, text)
        et.check(first.alive(), "the first daemon died")
        et.names(first.port)
    finally:
        stopped_cleanly(first)


# ------------------------------------------------------ IPv6 disabled host

class NoIPv6:
    """A namespace with only lo, IPv6 disabled; entered while in use."""

    def __init__(self):
        self.name = f"epmdc-{os.getpid()}-97-h"
        self.orig = None

    def __enter__(self):
        an.shared()	# skips unless namespaces can be made
        an.ip("netns", "add", self.name)
        try:
            for key in ("all", "default", "lo"):
                p = subprocess.run(
                    ["ip", "netns", "exec", self.name, "sysctl", "-q", "-w",
                     f"net.ipv6.conf.{key}.disable_ipv6=1"],
                    capture_output=True, text=True, timeout=10)
                if p.returncode != 0:
                    raise et.Skip(f"cannot disable IPv6: {p.stderr}")
            an.ip("-n", self.name, "link", "set", "lo", "up")
            self.orig = os.open("/proc/self/ns/net", os.O_RDONLY)
            fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            try:
                an._lib._setns(fd)
            finally:
                os.close(fd)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.orig is not None:
            try:
                an._lib._setns(self.orig)
            finally:
                os.close(self.orig)
                self.orig = None
        an._lib._ip("netns", "del", self.name)


@et.test
def listen_ipv6_disabled_host_with_127_0_0_1_serves():
    """The regression of OTP #11402: the implicit ::1 must stay
    best-effort."""
    need_epmd_c()
    with NoIPv6():
        d = serve(env_address("127.0.0.1"))
        try:
            expect_sockets(d, "127.0.0.1")
            et.check("failed to bind on ipaddr ::1" in d.stderr(),
                     d.stderr())
            s, reply = et.register(d.port, "v4only", "127.0.0.1")
            with s:
                et.eq(reply[:2], b"\x76\x00", "register")
            rc, out, err = et.run([et.EPMD_BIN, "-port", str(d.port),
                                   "-names"], timeout=10)
            et.eq(rc, 0, f"the client: {err!r}")
        finally:
            stopped_cleanly(d)


@et.test
def listen_ipv6_disabled_host_with_given_ipv6_loopback_exits_1():
    need_epmd_c()
    with NoIPv6():
        rc, err = start_fails(env=env_address("127.0.0.1,::1"))
        et.eq(rc, 1, f"exit status ({err})")
        et.check("failed to bind on ipaddr ::1" in err, err)


@et.test
def listen_ipv6_disabled_host_with_ipv4_wildcard_serves():
    need_epmd_c()
    with NoIPv6():
        d = serve(env_address("0.0.0.0"))
        try:
            expect_sockets(d, "0.0.0.0")
        finally:
            stopped_cleanly(d)


if __name__ == "__main__":
    et.run_tests()
