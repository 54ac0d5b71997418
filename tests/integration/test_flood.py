#!/usr/bin/env python3
"""No remote peer can starve the host's nodes (issue 14).

A genuinely remote peer (a network namespace, tests/lib/netns.py) owns
whole test prefixes, 2001:db8:f1::/64, 198.51.100.128/25 and
203.0.113.0/24, and floods the daemon from 40 of their addresses, 256
connections each, every connection trickling a valid-looking partial
ALIVE2 (3000-byte body announced) one byte a second and reopened as soon
as the daemon closes it (tests/lib/flood.py, tests/tools/trickle.c). The
daemon runs under `ulimit -n 4096`, so 10 240 attempted connections are
2.5 times its descriptors. While that runs, what local nodes experience is
what is asserted: registrations and lookups from 127.0.0.1 succeed at
least 90 % of the time, a real `erl -sname` node starts, the daemon says
in its log which prefix it is refusing, and loopback keeps its
-packet_timeout rule even for a byte a second.

The defaults carry the protection: -max_conns_per_prefix 1024 (per /64
and per /24), -max_remote_conns half the descriptor limit,
-request_deadline 10. One test turns the prefix cap off
(-max_conns_per_prefix 0) to exercise -max_remote_conns alone. Not root,
no ip(8) or no cc: skipped. Each attack is bounded (at most ~30 s, the
attacker dies with the test).
"""

import os
import re
import signal
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "interop"))
import epmdtest as et  # noqa: E402
import flood  # noqa: E402
import netns  # noqa: E402
from epmdtest import epmdc  # noqa: E402

LIMIT = 4096              # the daemon's RLIMIT_NOFILE
ADDRS = 40                # attacking addresses
PER = 256                 # connections from each (the per-peer default)
# Local probing while the attack runs. The sanitized daemon gets a short
# run of the tests that cover its code paths; the timing-bound figures are
# the plain daemon's.
SECONDS = 5 if et.UNDER_ASAN else 10
ERL_SECONDS = 8
LOG_SECONDS = 8
# The daemon's line naming the top prefix: loose on purpose.
PREFIX6_RE = re.compile(r"2001:db8:f1:[0-9a-f:]*/64")
PREFIX4_RE = re.compile(r"(198\.51\.100\.|203\.0\.113\.)\d+/24")
REFUSING_RE = re.compile(r"refus|shed|clos|limit|cap", re.I)

_routed = []


def flood_net():
    """The file's namespaces, with the attacker's prefixes routed to the
    peer; entered by the caller."""
    ns = netns.shared()
    if not _routed:
        netns.route_to_peer(ns, flood.NET6)
        for net in flood.NETS4:
            netns.route_to_peer(ns, net)
        _routed.append(ns)
    return ns


def flood_daemon(*args, metrics=False):
    """The daemon under test, reachable from the peer, under ulimit -n
    LIMIT; with metrics=True also -metrics on a free loopback port (its
    port is d.mport)."""
    args = list(args)
    mport = None
    if metrics:
        mport = et.free_port()
        args += ["-metrics", f"127.0.0.1:{mport}"]
    d = et.daemon(*args, address=netns.ADDRESSES,
                  preexec=et.nofile_preexec(LIMIT))
    d.mport = mport
    return d


def metric(d, name, **labels):
    """The value of one sample of GET /metrics (0 if it is not there)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{d.mport}/metrics",
                                timeout=5) as r:
        body = r.read().decode()
    want = [f'{k}="{v}"' for k, v in labels.items()]
    for text in body.splitlines():
        if not text.startswith(name) or text.startswith("#"):
            continue
        head, _, value = text.rpartition(" ")
        if head.split("{")[0] == name and all(w in head for w in want):
            return float(value)
    return 0.0


def plain_only(why):
    """Skip under the sanitizers: this test's figures are the plain
    daemon's (why)."""
    if et.UNDER_ASAN:
        raise et.Skip(f"ASan/UBSan run: {why}")


def check_attack_happened(st, what):
    """The attacker really did connect (so a pass means something)."""
    et.check(st.get("established", 0) >= 1000,
             f"{what}: the attacker established only "
             f"{st.get('established')} connections: {st}")


def v6_attackers():
    return flood.addresses(flood.NET6, ADDRS)


def v4_attackers():
    return flood.spread(flood.NETS4, ADDRS)


@epmdc(timeout=90)
def test_local_nodes_served_while_one_ipv6_64_trickles():
    """40 addresses of one /64 x 256 trickling connections, defaults:
    local registrations and lookups still succeed >= 90 %."""
    ns = flood_net()
    with netns.entered(ns), flood_daemon() as d:
        probe, st, _fds = flood.attack(ns, d, v6_attackers(), PER, SECONDS)
        check_attack_happened(st, "one /64")
        probe.check("40 addresses of 2001:db8:f1::/64 trickling")


@epmdc(timeout=90)
def test_local_nodes_served_while_many_ipv4_addresses_trickle():
    """40 IPv4 addresses from two /24s x 256 trickling connections,
    defaults: local registrations and lookups still succeed >= 90 %."""
    plain_only("the IPv6 flood runs the same code")
    ns = flood_net()
    with netns.entered(ns), flood_daemon() as d:
        probe, st, _fds = flood.attack(ns, d, v4_attackers(), PER, SECONDS,
                                       host=netns.HOST_ADDR)
        check_attack_happened(st, "IPv4")
        probe.check("40 IPv4 addresses trickling")


@epmdc(timeout=90)
def test_remote_cap_alone_keeps_local_nodes_served():
    """-max_conns_per_prefix 0: the one-/64 flood is held by
    -max_remote_conns (default half the descriptors) alone. Local
    registrations and lookups succeed >= 90 %, the daemon keeps about
    half its descriptors for loopback, and epmd_refused_total
    {reason="remote_cap"} counts the refusals."""
    ns = flood_net()
    with netns.entered(ns), \
            flood_daemon(*flood.new_flags("-max_conns_per_prefix", "0"),
                         metrics=True) as d:
        probe, st, fds = flood.attack(ns, d, v6_attackers(), PER, SECONDS)
        check_attack_happened(st, "prefix cap off")
        probe.check("prefix cap off, 40 addresses of one /64 trickling")
        et.check(fds is not None and fds <= LIMIT // 2 + 200,
                 f"daemon holds {fds} of {LIMIT} descriptors with the "
                 f"remote cap at half")
        refused = metric(d, "epmd_refused_total", reason="remote_cap")
        et.check(refused > 0, f'epmd_refused_total{{reason="remote_cap"}} '
                 f"is {refused}")


@epmdc(timeout=90)
def test_out_of_descriptors_old_trickling_requests_make_room():
    """Every cap and the deadline off: the trickle fills the descriptor
    table, and only the pressure rule holds. Requests under way for 2 s
    are closed to make room although they keep trickling, so local
    registrations and lookups succeed >= 90 % and epmd_shed_total counts
    the closes. (The attacker holds a few more connections than there are
    descriptors, 40 x 105: many more would crowd the accept queue.)"""
    ns = flood_net()
    off = flood.new_flags("-max_conns_per_peer", "0", "-max_conns_per_prefix",
                          "0", "-max_remote_conns", "0",
                          "-request_deadline", "0")
    with netns.entered(ns), flood_daemon(*off, metrics=True) as d:
        per = (LIMIT + 100) // ADDRS + 1
        # A probe waits out a 100 ms pause: 8 s give it 50 tries or more.
        probe, st, fds = flood.attack(ns, d, v6_attackers(), per,
                                      max(SECONDS, 8))
        et.check(fds is not None and fds >= LIMIT - 64,
                 f"the trickle did not fill the table: {fds} of {LIMIT}")
        probe.check("all caps off, descriptors full of trickling requests")
        shed = metric(d, "epmd_shed_total")
        et.check(shed > 0, f"epmd_shed_total is {shed}")
        et.check(re.search(r"closed [1-9]\d* non-local requests older than",
                           d.stderr()),
                 f"no log of the closes: {d.stderr()[-1500:]}")
        lines = d.stderr().count("out of descriptors")
        et.check(1 <= lines <= (max(SECONDS, 8) + 15) // 5 + 2,
                 f"{lines} 'out of descriptors' lines in about "
                 f"{max(SECONDS, 8) + 5} s: one per 5 s at most")


@epmdc(timeout=90)
def test_erl_node_starts_while_one_ipv6_64_trickles():
    """A real `erl -sname` node started during the one-/64 flood
    registers (no no_reg_reply_from_epmd)."""
    plain_only("erl's own timeouts are not the sanitizer's")
    import erlnode
    if not os.access(erlnode.ERL, os.X_OK):
        raise et.Skip(f"no erl at {erlnode.ERL}")
    ns = flood_net()
    name = erlnode.unique("flood")
    got = {}

    def start_erl(_trickle):
        t = time.monotonic()
        with erlnode.Node(name, d.port) as node:
            try:
                got["node"] = node.result("node", timeout=20)
                got["port"] = erlnode.wait_registered(d.port, name, 10)
            except AssertionError as e:
                got["error"] = str(e)[-1500:]
            got["secs"] = time.monotonic() - t

    with netns.entered(ns), flood_daemon() as d:
        probe, st, _fds = flood.attack(ns, d, v6_attackers(), PER,
                                       ERL_SECONDS, during=start_erl)
        check_attack_happened(st, "erl")
        flood.log(f"erl node during the flood: {got}")
        et.check("error" not in got, f"erl -sname {name} during the flood "
                 f"(local probes: {probe.summary()}): {got.get('error')}")
        et.check(got.get("port"), f"erl node {name} not registered: {got}")


@epmdc(timeout=60)
def test_flood_log_names_top_prefix_rate_limited():
    """During the one-/64 flood the daemon's log names 2001:db8:f1::/64
    as refused or shed, in at most about one line per 5 s, and
    epmd_refused_total{reason="prefix_cap"} counts the refusals."""
    ns = flood_net()
    with netns.entered(ns), flood_daemon(metrics=True) as d:
        t0 = time.monotonic()
        flood.attack(ns, d, v6_attackers(), PER, LOG_SECONDS)
        took = time.monotonic() - t0
        refused = metric(d, "epmd_refused_total", reason="prefix_cap")
        log = d.stderr()
    lines = [t for t in log.splitlines()
             if PREFIX6_RE.search(t) and REFUSING_RE.search(t)]
    flood.log(f"{len(lines)} log lines name the prefix in {took:.0f} s, "
              f"e.g. {lines[:2]}; prefix_cap refusals {refused:.0f}")
    et.check(lines, "no log line names 2001:db8:f1::/64 as refused or "
             f"shed; the log ends: {log[-1500:]}")
    et.check(len(lines) <= took / 5 + 2, f"{len(lines)} lines naming the "
             f"prefix in {took:.0f} s: not rate-limited; e.g. {lines[:3]}")
    et.check(refused > 0, f'epmd_refused_total{{reason="prefix_cap"}} is '
             f"{refused}")


@et.test(timeout=40)
def test_loopback_trickle_one_byte_a_second_is_answered():
    """-packet_timeout 1, as in OTP's suite: a lookup sent from
    127.0.0.1 and from ::1 one byte a second is answered, even though it
    takes longer than -request_deadline (10 s), which is for remote peers
    only."""
    plain_only("a 12 s wait that runs no code the other tests do not")
    name = "trickled1"           # a 13-byte frame: 12 s at a byte a second
    with et.daemon("-packet_timeout", "1", address="127.0.0.1") as d:
        reg, _creation = et.register_ok(d, name, port=5111)
        try:
            data = et.frame(b"z" + name.encode())
            socks = [et.connect(d, host) for host in ("127.0.0.1", "::1")]
            t0 = time.monotonic()
            for i in range(len(data)):
                for s in socks:
                    s.sendall(data[i:i + 1])
                if i + 1 < len(data):
                    time.sleep(1.0)
            replies = [et.read_until_close(s, 5) for s in socks]
            took = time.monotonic() - t0
            for s in socks:
                s.close()
        finally:
            reg.close()
    for host, r in zip(("127.0.0.1", "::1"), replies):
        et.eq(r, et.port2(name, 5111), f"lookup trickled from {host} over "
              f"{took:.0f} s")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    et.run_tests()
