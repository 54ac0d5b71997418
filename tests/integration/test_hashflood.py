#!/usr/bin/env python3
"""Addresses chosen to collide in the per-peer table cost no more than
random ones (issue 14).

Before issue 14, src/peercount.c hashed peer addresses with an unkeyed
FNV-1a (family byte, then the 16 address bytes; bucket = (h ^ (h >> 32))
& (nbuckets - 1), the table doubling from 64 buckets once it holds more
entries than buckets). Anyone could compute addresses that share one
bucket at every table size, and each connection from them then walks the
whole chain twice (count, uncount). tests/tools/fnvcollide.c finds such
addresses below 2001:db8:f0::/48 (a random /64 of 256 and a random
interface identifier each, so no per-prefix cap is reached); the same
tool gives an equally sized random set.

For each set, a fresh daemon (ulimit -n 20000, defaults) in fresh
namespaces (so no TIME_WAIT of an earlier run weighs on it) gets HELD idle
connections from the genuinely remote peer (tests/lib/netns.py), one per
address, so the table holds HELD entries, and then CHURN lookups, each
from a further address of the same set, CONC at once: connect, ask,
read the reply, close. The daemon's CPU time (schedstat) over the churn,
divided by the lookups, is compared: colliding at most RATIO times
random. Sets are run twice, in alternating order, and summed, against
noise. Not
root, no ip(8), no cc: skipped.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import epmdtest as et  # noqa: E402
import flood  # noqa: E402
import netns  # noqa: E402
from epmdtest import epmdc  # noqa: E402

PREFIX48 = "2001:db8:f0::"
NET = "2001:db8:f0::/48"
LIMIT = 20000             # the daemon's RLIMIT_NOFILE: remote cap 10000
HELD = 8000               # entries held in the table during the churn
CHURN = 20000             # lookups measured per run
CONC = 32
ROUNDS = 2
RATIO = 1.5


def buckets_reached(entries):
    """The old table's size once it holds entries (64, doubling when
    fuller than wide)."""
    n = 64
    while entries > n:
        n *= 2
    return n


def churn_run(addrs, what):
    """One fresh daemon in fresh namespaces (no TIME_WAIT left from the
    run before), HELD connections from addrs[:HELD], then CHURN lookups
    from the rest; returns (daemon ns of CPU, lookups)."""
    held, churn = addrs[:HELD], addrs[HELD:]
    with netns.Netns() as ns:
        netns.route_to_peer(ns, NET)
        return _churn_in(ns, held, churn, what)


def _churn_in(ns, held, churn, what):
    with et.daemon(address=netns.ADDRESSES,
                   preexec=et.nofile_preexec(LIMIT)) as d:
        with flood.Trickle(ns, d.port, held, mode="churn", churn=churn,
                           conc=CONC, count=CHURN, duration=45,
                           frame=flood.frame_of_lookup("nobody")) as tr:
            h = tr.wait_event("held", 25)
            cpu0 = flood.daemon_cpu_ns(d.pid)
            done = tr.wait_event("done", 30)
            cpu1 = flood.daemon_cpu_ns(d.pid)
        et.check(d.alive(), f"daemon died: {d.stderr()[-1500:]}")
    flood.log(f"{what}: {h['held']} held, {done['churned']} lookups in "
              f"{done['secs']:.1f} s, daemon {(cpu1 - cpu0) / 1000 / max(1, done['churned']):.1f} "
              f"µs each; {done['churn_failed']} failed, {done['held_lost']} "
              f"held closed")
    et.eq(h["held"], HELD, f"{what}: connections held (nothing refused)")
    et.eq(done["churn_failed"], 0, f"{what}: lookups failed or refused")
    et.eq(done["churned"], CHURN, f"{what}: lookups done")
    et.eq(done["held_lost"], 0, f"{what}: held connections the daemon "
          "closed during the churn")
    return cpu1 - cpu0, done["churned"]


@epmdc(timeout=150)
def test_addresses_colliding_under_old_hash_cost_no_more_than_random():
    """Per connection, the daemon spends at most 1.5x as much CPU on
    addresses that shared one bucket of the old FNV-1a table as on random
    ones."""
    if et.UNDER_ASAN:
        raise et.Skip("ASan/UBSan run: the sanitizers' own cost drowns the "
                      "hash's; the plain daemon measures it")
    bits = buckets_reached(HELD + CONC).bit_length() - 1
    bad = flood.colliding(PREFIX48, HELD + CHURN, bits, seed=14)
    good = flood.colliding(PREFIX48, HELD + CHURN, bits, seed=41,
                           random_set=True)
    # The set is what it claims: one old bucket at the largest table.
    mask = (1 << bits) - 1
    et.eq(len({flood.old_bucket(a) & mask for a in bad[:200]}), 1,
          "old buckets of the colliding set")
    et.check(len({flood.old_bucket(a) & mask for a in good[:200]}) > 150,
             "the random set is not spread over the old buckets")
    cost = {"colliding": [0, 0], "random": [0, 0]}
    order = [("random", good), ("colliding", bad)]
    for rnd in range(ROUNDS):
        for kind, addrs in order if rnd % 2 == 0 else order[::-1]:
            cpu, n = churn_run(addrs, f"{kind} round {rnd + 1}")
            cost[kind][0] += cpu
            cost[kind][1] += n
    per = {k: cpu / n / 1000 for k, (cpu, n) in cost.items()}
    flood.log(f"daemon CPU per connection: colliding {per['colliding']:.1f}"
              f" µs, random {per['random']:.1f} µs "
              f"({per['colliding'] / per['random']:.2f}x)")
    et.check(per["colliding"] <= RATIO * per["random"],
             f"addresses colliding under the old hash cost the daemon "
             f"{per['colliding']:.1f} µs per connection, random ones "
             f"{per['random']:.1f} µs: {per['colliding'] / per['random']:.2f}x"
             f" > {RATIO}x")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    et.run_tests()
