#!/usr/bin/env python3
"""Real Erlang/OTP nodes, erl_call and the OTP epmd client against the daemon
under test ($EPMD_BIN), on free loopback ports.

Every node gets -setcookie, -noshell -noinput, a name unique to this run,
ERL_EPMD_PORT pointing at the daemon and (except in the auto-start test)
-start_epmd false. Nodes are killed by pid when a test ends, pass or fail.
See PROTOCOL.md section 6 for what the Erlang side sends and expects.
"""

import functools
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import epmdtest  # noqa: E402
from epmdtest import check, eq, test  # noqa: E402
import erlnode  # noqa: E402
from erlnode import Node, erl_string, run_node  # noqa: E402

EPMD_BIN = epmdtest.EPMD_BIN
REF_EPMD = epmdtest.REF_EPMD
LOOPBACK_IFACE = ["-kernel", "inet_dist_use_interface", "{127,0,0,1}"]
PER_TEST_SECONDS = 45       # one stuck test cannot eat the file's budget
FILE_SECONDS = 170          # later tests are skipped once this is used up
FILE_START = time.monotonic()


def erltest(fn):
    """@test with a PER_TEST_SECONDS time limit (nodes are killed by the
    with-blocks as epmdtest's Timeout unwinds), skipped once the file's
    budget is used up."""
    @functools.wraps(fn)
    def wrapper():
        if time.monotonic() - FILE_START > FILE_SECONDS:
            raise epmdtest.Skip(f"the file's {FILE_SECONDS}s budget is used up")
        fn()
    return test(wrapper, timeout=PER_TEST_SECONDS)


def require_tools():
    if not os.access(erlnode.ERL, os.X_OK):
        raise epmdtest.Skip(f"no erl at {erlnode.ERL}")
    # A missing daemon is a build failure, not a missing tool: fail.
    check(os.access(EPMD_BIN, os.X_OK), f"no daemon binary at {EPMD_BIN}")


def client_names(binary, port):
    """`binary -port P -names` → (rc, stdout text, stderr text)."""
    rc, out, err = epmdtest.run([binary, "-port", str(port), "-names"], timeout=10)
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


@erltest
def test_two_sname_nodes_register_ping_and_rpc():
    require_tools()
    a, b = erlnode.unique("sa"), erlnode.unique("sb")
    with epmdtest.Daemon(EPMD_BIN) as d, \
            Node(a, d.port) as na, \
            Node(b, d.port, body=f'''
                A = N({erl_string(a)}),
                Out("ping", Ping(A, 50)),
                Out("rpc_node", R(A, erlang, node, [])),
                Out("rpc_back", R(A, rpc, call, [node(), erlang, node, []])),
                Out("nodes", nodes()),
                Out("creation", erlang:system_info(creation)),
                Out("creation_a", R(A, erlang, system_info, [creation])),
                Out("names", net_adm:names()),
                Out("done", ok)''') as nb:
        full_a = erlnode.atom_text(na.result("node"))
        nb.result("done")
        res = nb.results()
        full_b = full_a.replace(a + "@", b + "@", 1)
        eq(res["ping"], "pong", "net_adm:ping(A) from B")
        eq(erlnode.atom_text(res["rpc_node"]), full_a, "rpc:call(A, erlang, node, [])")
        eq(erlnode.atom_text(res["rpc_back"]), full_b,
           "rpc:call(B, erlang, node, []) run on A")
        check(full_a in res["nodes"], f"A missing from B's nodes(): {res['nodes']}")
        for key in ("creation", "creation_a"):
            check(re.fullmatch(r"[1-9]\d*", res[key]),
                  f"system_info(creation) ({key}) is {res[key]}, want non-zero")
        erl_names = erlnode.parse_erl_names(res["names"])
        raw = erlnode.daemon_names(d.port)
        check(a in erl_names and b in erl_names,
              f"net_adm:names() lacks a node: {erl_names}")
        check(all(p > 0 for p in erl_names.values()), f"bad ports {erl_names}")
        eq(erl_names, raw, "net_adm:names() vs the daemon's NAMES reply")


@erltest
def test_otp_epmd_names_client_output_matches_reference_daemon():
    require_tools()
    if not os.access(REF_EPMD, os.X_OK):
        raise epmdtest.Skip(f"no reference epmd at {REF_EPMD}")
    nodes = [("alpha", 5101, {}), ("beta_2", 5102, {"node_type": 72}),
             ("gamma-v5", 5103, {"high": 5, "low": 5}),
             ("delta.x", 65535, {}), ("e", 1, {})]

    def normalise(text, port):
        return text.replace(f"on port {port} with data", "on port PORT with data")

    outputs = []
    socks = []
    try:
        with epmdtest.Daemon(EPMD_BIN) as dut, epmdtest.Daemon(REF_EPMD) as ref:
            for d in (dut, ref):
                rc, out, err = client_names(REF_EPMD, d.port)
                empty = (rc, normalise(out, d.port), err)
                for name, port, kw in nodes:
                    s = epmdtest.connect(d.port)
                    socks.append(s)
                    s.sendall(epmdtest.frame(epmdtest.alive2_body(name, port=port, **kw)))
                    reply = epmdtest.read_exact(s, 6 if kw.get("high", 6) >= 6 else 4)
                    check(reply[1:2] == b"\0", f"{name} not registered: {reply!r}")
                rc, out, err = client_names(REF_EPMD, d.port)
                outputs.append((empty, (rc, normalise(out, d.port), err)))
        (dut_empty, dut_full), (ref_empty, ref_full) = outputs
        eq(dut_empty, ref_empty, "OTP epmd -names, no nodes: epmd-c vs reference")
        eq(dut_full, ref_full, "OTP epmd -names, five nodes: epmd-c vs reference")
        eq(dut_full[0], 0, "exit status")
        for name, port, kw in nodes:
            check(f"name {name} at port {port}\n" in dut_full[1],
                  f"{name} missing from {dut_full[1]!r}")
    finally:
        for s in socks:
            s.close()


@erltest
def test_name_nodes_on_127_0_0_1_register_ping_and_rpc():
    require_tools()
    a, b = erlnode.unique("la"), erlnode.unique("lb")
    with epmdtest.Daemon(EPMD_BIN) as d, \
            Node(a + "@127.0.0.1", d.port, long_names=True,
                 args=LOOPBACK_IFACE) as na, \
            Node(b + "@127.0.0.1", d.port, long_names=True, args=LOOPBACK_IFACE,
                 body=f'''
                A = N({erl_string(a)}),
                Out("ping", Ping(A, 50)),
                Out("rpc_node", R(A, erlang, node, [])),
                Out("port_please", erl_epmd:port_please({erl_string(a)}, "127.0.0.1")),
                Out("names", net_adm:names("127.0.0.1")),
                Out("done", ok)''') as nb:
        eq(erlnode.atom_text(na.result("node")), a + "@127.0.0.1", "A's node()")
        nb.result("done")
        res = nb.results()
        eq(res["ping"], "pong", "ping A")
        eq(erlnode.atom_text(res["rpc_node"]), a + "@127.0.0.1", "rpc node()")
        raw = erlnode.daemon_names(d.port)
        eq(res["port_please"], f"{{port,{raw[a]},6}}", "erl_epmd:port_please")
        eq(erlnode.parse_erl_names(res["names"]), raw, "net_adm:names vs NAMES")


@erltest
def test_hidden_node_registers_is_reachable_and_absent_from_nodes():
    require_tools()
    h, v = erlnode.unique("hid"), erlnode.unique("vis")
    with epmdtest.Daemon(EPMD_BIN) as d, \
            Node(h, d.port, hidden=True) as nh:
        full_h = erlnode.atom_text(nh.result("node"))
        erlnode.wait_registered(d.port, h)
        nv = run_node(v, d.port, f'''
            H = N({erl_string(h)}),
            Out("ping", Ping(H, 50)),
            Out("visible", lists:member(H, nodes())),
            Out("hidden", lists:member(H, nodes(hidden))),
            Out("rpc_node", R(H, erlang, node, [])),
            Out("names", net_adm:names())''')
        res = nv.results()
        check("crash" not in res, nv.output())
        eq(res.get("ping"), "pong", f"ping the hidden node; output {nv.output()}")
        eq(res["visible"], "false", "hidden node in the other's nodes()")
        eq(res["hidden"], "true", "hidden node in the other's nodes(hidden)")
        eq(erlnode.atom_text(res["rpc_node"]), full_h, "rpc to the hidden node")
        check(h in erlnode.parse_erl_names(res["names"]),
              f"hidden node not in net_adm:names(): {res['names']}")


@erltest
def test_inet6_tcp_node_registers_over_ipv6_loopback():
    require_tools()
    a, b = erlnode.unique("six"), erlnode.unique("sixb")
    inet6 = ["-proto_dist", "inet6_tcp"]
    with epmdtest.Daemon(EPMD_BIN) as d, Node(a, d.port, args=inet6) as na:
        full_a = erlnode.atom_text(na.result("node"))
        dist_port = erlnode.wait_registered(d.port, a, host="127.0.0.1")
        eq(erlnode.daemon_names(d.port, "::1").get(a), dist_port, "NAMES via ::1")
        # The registration socket is the node's connection to [::1]:port.
        mine = erlnode.socket_inodes(na.pid)
        to_daemon = [s for s in erlnode.tcp_sockets()
                     if s["inode"] in mine and s["state"] == "01"
                     and s["remote"][1] == d.port]
        check(to_daemon, f"no connection from node pid {na.pid} to port {d.port}")
        eq(sorted((s["v6"], s["remote"][0]) for s in to_daemon), [(True, "::1")],
           "the node's registration connection")
        nb = run_node(b, d.port, f'''
            A = N({erl_string(a)}),
            Out("ping", Ping(A, 50)),
            Out("rpc_node", R(A, erlang, node, []))''', args=inet6)
        res = nb.results()
        eq(res.get("ping"), "pong", f"inet6 ping; output {nb.output()}")
        eq(erlnode.atom_text(res["rpc_node"]), full_a, "rpc over inet6")


@erltest
def test_duplicate_node_name_is_refused_as_in_use():
    require_tools()
    a = erlnode.unique("dup")
    with epmdtest.Daemon(EPMD_BIN) as d, Node(a, d.port) as na:
        full_a = erlnode.atom_text(na.result("node"))
        port_before = erlnode.wait_registered(d.port, a)
        second = run_node(a, d.port, 'Out("started", node())')
        rc = second.proc.returncode
        out = second.output()
        check(rc != 0, f"second node exited {rc}; output {out}")
        check("started" not in second.results(), f"second node ran: {out}")
        check(f"the name {full_a} seems to be in use by another Erlang node" in out,
              f"no in-use message in: {out}")
        eq(erlnode.daemon_names(d.port).get(a), port_before,
           "first node still registered")
        check(na.alive(), "first node died")


@erltest
def test_stopped_node_disappears_from_names_and_client_listing():
    require_tools()
    a, b = erlnode.unique("stopa"), erlnode.unique("stopb")
    with epmdtest.Daemon(EPMD_BIN) as d, Node(a, d.port) as na:
        na.result("node")
        erlnode.wait_registered(d.port, a)
        rc, out, err = client_names(EPMD_BIN, d.port)
        eq(rc, 0, f"{EPMD_BIN} -names exit (stderr {err!r})")
        check(re.search(rf"^name {a} at port \d+$", out, re.M),
              f"{a} missing from -names output {out!r}")
        nb = run_node(b, d.port, f'''
            A = N({erl_string(a)}),
            Out("ping", Ping(A, 50)),
            Out("before", net_adm:names()),
            Out("stop", R(A, init, stop, [])),
            Gone = fun Loop(0) -> still_there;
                       Loop(I) -> {{ok, Ns}} = net_adm:names(),
                                  case lists:keymember({erl_string(a)}, 1, Ns) of
                                      true -> timer:sleep(100), Loop(I - 1);
                                      false -> gone
                                  end
                   end,
            Out("gone", Gone(100)),
            Out("after", net_adm:names())''')
        res = nb.results()
        eq(res.get("ping"), "pong", f"ping; output {nb.output()}")
        check(a in erlnode.parse_erl_names(res["before"]), res["before"])
        eq(res["stop"], "ok", "init:stop via rpc")
        eq(res["gone"], "gone", "node left net_adm:names()")
        check(a not in erlnode.parse_erl_names(res["after"]), res["after"])
        eq(na.wait_exit(15), 0, "stopped node's exit status")
        check(a not in erlnode.daemon_names(d.port), "still in NAMES")
        rc, out, err = client_names(EPMD_BIN, d.port)
        eq(rc, 0, f"{EPMD_BIN} -names exit after stop (stderr {err!r})")
        check(f"name {a} at" not in out, f"{a} still in -names output {out!r}")
        check(out.startswith(f"epmd: up and running on port {d.port} with data:\n"),
              f"-names output {out!r}")


@erltest
def test_node_reregisters_after_daemon_killed_and_restarted():
    require_tools()
    a, b = erlnode.unique("rea"), erlnode.unique("reb")
    d = epmdtest.Daemon(EPMD_BIN)
    d2 = None
    try:
        with Node(a, d.port) as na:
            full_a = erlnode.atom_text(na.result("node"))
            port_a = erlnode.wait_registered(d.port, a)
            d.proc.send_signal(signal.SIGKILL)
            d.wait(5)
            t0 = time.monotonic()
            d2 = epmdtest.Daemon(EPMD_BIN, port=d.port)
            again = erlnode.wait_registered(d2.port, a, timeout=12.0)
            took = time.monotonic() - t0
            sys.stderr.write(f"# {a} re-registered {took:.1f}s after the restart\n")
            eq(again, port_a, "distribution port after re-registration")
            nb = run_node(b, d2.port, f'''
                A = N({erl_string(a)}),
                Out("ping", Ping(A, 50)),
                Out("rpc_node", R(A, erlang, node, []))''')
            res = nb.results()
            eq(res.get("ping"), "pong", f"ping after restart; output {nb.output()}")
            eq(erlnode.atom_text(res["rpc_node"]), full_a, "rpc after restart")
            check(na.alive(), "node died across the daemon restart")
    finally:
        d.stop()
        if d2:
            d2.stop()


@erltest
def test_erl_call_reaches_node_through_daemon():
    require_tools()
    if not erlnode.ERL_CALL:
        raise epmdtest.Skip("no erl_call from erl_interface")
    a = erlnode.unique("ecall")
    with epmdtest.Daemon(EPMD_BIN) as d, Node(a, d.port) as na:
        full_a = erlnode.atom_text(na.result("node"))
        erlnode.wait_registered(d.port, a)
        rc, out, err = epmdtest.run(
            [erlnode.ERL_CALL, "-sname", a, "-c", erlnode.COOKIE,
             "-a", "erlang node []"],
            env={"ERL_EPMD_PORT": str(d.port)}, timeout=20)
        out = out.decode("utf-8", "replace").strip()
        eq(rc, 0, f"erl_call exit (stdout {out!r}, stderr {err!r})")
        eq(erlnode.atom_text(out), full_a, "erl_call -a 'erlang node []'")


@erltest
def test_erl_epmd_option_auto_starts_daemon_and_node_registers():
    require_tools()
    port = epmdtest.free_port()
    a = erlnode.unique("auto")
    target = os.path.realpath(EPMD_BIN)
    marker = f"ERL_EPMD_PORT={port}".encode()

    def ours(pid):
        return (erlnode.pid_exe(pid) == target
                and marker in erlnode.pid_environ(pid))

    daemon_pid = None
    try:
        with Node(a, None, start_epmd=True,
                  args=["-epmd", f'"{EPMD_BIN}" -daemon'],
                  env={"ERL_EPMD_PORT": str(port),
                       "ERL_EPMD_ADDRESS": "127.0.0.1"}) as na:
            na.result("node")
            dist_port = erlnode.wait_registered(port, a)
            check(dist_port > 0, "registered port")
            pids = set()
            for host, inode in erlnode.listeners_on(port):
                pids.update(erlnode.pids_with_inode(inode))
            mine = [p for p in pids if ours(p)]
            eq(len(mine), 1, f"auto-started daemons on port {port} (pids {pids})")
            daemon_pid = mine[0]
            erlnode.adopt_pid(daemon_pid, ours)
            check(daemon_pid != na.pid, "daemon is the node itself?")
            hosts = sorted(h for h, inode in erlnode.listeners_on(port)
                           if daemon_pid in erlnode.pids_with_inode(inode))
            eq(hosts, ["127.0.0.1", "::1"], "the auto-started daemon's listeners")
        # The node is gone: once the daemon has noticed, -kill is allowed.
        def kill_ok():
            rc, out, err = epmdtest.run([EPMD_BIN, "-port", str(port), "-kill"],
                                        timeout=10)
            return rc == 0 and out == b"Killed\n"
        check(epmdtest.eventually(kill_ok, timeout=5, interval=0.2),
              f"{EPMD_BIN} -port {port} -kill did not kill the daemon")
        check(epmdtest.eventually(lambda: not erlnode.pid_running(daemon_pid),
                                  timeout=5),
              f"daemon pid {daemon_pid} still running after -kill")
    finally:
        if daemon_pid is None:      # not identified above: look once more
            for host, inode in erlnode.listeners_on(port):
                for pid in erlnode.pids_with_inode(inode):
                    if ours(pid):
                        erlnode.terminate_pid(pid, ours)
        else:
            erlnode.terminate_pid(daemon_pid, ours)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    start = time.monotonic()
    try:
        epmdtest.run_tests()
    finally:
        erlnode.cleanup()
        sys.stderr.write(f"# test_erlang.py took {time.monotonic() - start:.1f}s\n")
