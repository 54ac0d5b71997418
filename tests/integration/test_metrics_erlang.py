#!/usr/bin/env python3
"""The metrics endpoint under real Erlang nodes (tests/interop/erlnode.py).

Two `erl -sname` nodes register with epmd-c (-metrics on a free loopback
port); B pings A, which costs B one lookup of A; both then exit. The
counters must show exactly that: two registrations, then two
unregistrations, and A found by name.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
sys.path.insert(0, HERE)
import epmdtest as et  # noqa: E402
import erlnode  # noqa: E402
import test_metrics as tm  # noqa: E402

# Importing test_metrics registered its tests: only ours run here.
et._tests[:] = [t for t in et._tests if t.__module__ == __name__]


@et.test
def test_two_erlang_nodes_move_the_counters_exactly():
    if os.environ.get("EPMD_REFERENCE_MODE") == "1":
        raise et.Skip("epmd-c's metrics; OTP's epmd has none")
    if not os.access(erlnode.ERL, os.X_OK):
        raise et.Skip(f"no erl at {erlnode.ERL}")
    a, b = erlnode.unique("ma"), erlnode.unique("mb")
    with tm.MDaemon() as d:
        before = d.scrape()
        with erlnode.Node(a, d.port) as na:
            na.result("node")
            # Scrapes, not NAMES: a NAMES request would count too.
            et.check(et.eventually(lambda: d.scrape()["epmd_nodes"] == 1),
                     f"{a} not registered")
            with erlnode.Node(b, d.port, halt=True, body=f'''
                    Out("ping", Ping(N({erlnode.erl_string(a)}), 50))''') \
                    as nb:
                et.eq(nb.result("ping"), "pong", "B pings A")
                nb.wait_exit()
            et.check(et.eventually(lambda: d.scrape()["epmd_nodes"] == 1),
                     "B's registration did not end")
            mid = d.scrape()
            na.kill()
        et.check(et.eventually(lambda: d.scrape()["epmd_nodes"] == 0),
                 "A's registration did not end")
        after = d.scrape()
    got = tm.delta(before, after)
    # A ping costs B exactly one lookup of A, found.
    et.eq(got, {tm.reg("ok"): 2, tm.req("alive2"): 2,
                tm.req("port_please2"): 1, tm.lookup("found"): 1,
                "epmd_unregistrations_total": 2}, "deltas")
    et.eq(mid["epmd_unregistrations_total"] -
          before["epmd_unregistrations_total"], 1, "after B left")


if __name__ == "__main__":
    et.run_tests()
