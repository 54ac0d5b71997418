#!/usr/bin/env python3
"""The firewall recipes of contrib/ (nftables and iptables), loaded into
access_net's host namespace: for each of the three hardening cases, who
still reaches the daemon on its port, and who is dropped.

The recipes' variables are pointed at the test networks (peer A's network
stands for the cluster, its veth "ha" for the container bridge) and the
port at the test daemon's. Rules live only in the namespace and are removed
after each case. No nft(8) or iptables(8): the cases skip.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import access_net as an  # noqa: E402
import epmdtest as et  # noqa: E402

CONTRIB = os.path.join(HERE, "..", "..", "contrib")
NFT_DIR = os.path.join(CONTRIB, "nftables")
IPT = os.path.join(CONTRIB, "iptables", "epmd-c-firewall.sh")
NAMES = et.frame(b"n")


def need(tool):
    if shutil.which(tool) is None:
        raise et.Skip(f"{tool} not installed")


def run(argv, env=None):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                       env=env, stdin=subprocess.DEVNULL)
    et.eq(p.returncode, 0, f"{' '.join(argv)}: {p.stderr}")


def nft_recipe(name, port, **defines):
    """A copy of contrib/nftables/NAME with its defines replaced."""
    with open(os.path.join(NFT_DIR, name)) as f:
        text = f.read()
    defines["epmd_port"] = str(port)
    for k, v in defines.items():
        text, n = re.subn(rf"^define {k} = .*$", f"define {k} = {v}", text,
                          flags=re.M)
        et.eq(n, 1, f"{name}: define {k}")
    f = tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False)
    f.write(text)
    f.close()
    return f.name


def reaches(peer, host):
    """Does a NAMES from peer to host get an answer (not dropped)?"""
    r = peer.ask(NAMES, host=host, timeout=1.0)[0]
    if r["error"] is not None and r["error"].startswith("connect:"):
        return False
    et.check(r["error"] is None and r["closed"] and r["reply"],
             f"NAMES to {host}: {r}")
    return True


def check_case(load, unload, allowed_a, allowed_b):
    """Load rules, then check A and B (both families) and loopback."""
    an.shared()
    with et.Daemon(address=an.ADDRESSES) as d:
        a, b = an.peers(an.shared(), d.port)
        try:
            a.reach()
            b.reach()
            load(d.port)
            try:
                for peer, label, want in ((a, "A", allowed_a),
                                          (b, "B", allowed_b)):
                    for host in (an.HOST_A, an.HOST_A6):
                        et.eq(reaches(peer, host), want,
                              f"{label} to {host} gets through")
                et.check(et.names(d.port).startswith(b"\x00"),
                         "loopback NAMES")
                et.check(et.names(d.port, "::1").startswith(b"\x00"),
                         "loopback NAMES over ::1")
            finally:
                unload()
            et.check(reaches(b, an.HOST_A), "B after the rules went")
        finally:
            a.close()
            b.close()


def nft_case(name, allowed_a, allowed_b, **defines):
    need("nft")
    files = []

    def load(port):
        files.append(nft_recipe(name, port, **defines))
        run(["nft", "-f", files[0]])

    def unload():
        run(["nft", "delete", "table", "inet", "epmd_c"])
        for f in files:
            os.unlink(f)

    check_case(load, unload, allowed_a, allowed_b)


def ipt_case(args, allowed_a, allowed_b):
    need("iptables")
    need("ip6tables")
    env = {}

    def load(port):
        env.update(os.environ, EPMD_PORT=str(port))
        run(["sh", IPT, *args], env=env)

    def unload():
        run(["sh", IPT, "remove"], env=env)

    check_case(load, unload, allowed_a, allowed_b)


@et.test
def firewall_nft_loopback_only_drops_both_networks():
    nft_case("epmd-c-loopback.nft", False, False)


@et.test
def firewall_nft_cluster_lets_only_the_cluster_in():
    nft_case("epmd-c.nft", True, False,
             cluster_v4="{ %s }" % an.NET_A, cluster_v6="{ %s }" % an.NET_A6)


@et.test
def firewall_nft_containers_lets_only_the_bridge_in():
    nft_case("epmd-c-containers.nft", True, False, bridges='{ "ha" }',
             bridge_v4="{ %s }" % an.NET_A, bridge_v6="{ %s }" % an.NET_A6)


@et.test
def firewall_nft_containers_wants_the_bridge_as_well_as_the_prefix():
    # B's prefix, but the bridge is A's veth: B is still dropped.
    nft_case("epmd-c-containers.nft", False, False, bridges='{ "ha" }',
             bridge_v4="{ %s }" % an.NET_B, bridge_v6="{ %s }" % an.NET_B6)


@et.test
def firewall_iptables_loopback_only_drops_both_networks():
    ipt_case(["loopback"], False, False)


@et.test
def firewall_iptables_cluster_lets_only_the_cluster_in():
    ipt_case(["cluster", an.NET_A, an.NET_A6], True, False)


@et.test
def firewall_iptables_containers_lets_only_the_bridge_in():
    ipt_case(["containers", "ha", an.NET_A, an.NET_A6], True, False)


if __name__ == "__main__":
    et.run_tests()
