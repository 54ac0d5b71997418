#!/usr/bin/env python3
"""The Debian package in a real systemd: epmd-c takes over the host's epmd
on installation and gives erlang-base's epmd.socket back on removal.

One container (tests/lib/realsystemd.py) runs through the package's life,
so the tests depend on each other and run in this order:
  install          erlang-base's epmd.socket is enabled and serving with a
                   real erl node registered; dpkg -i: epmd-c serves 4369,
                   epmd -names and epmd-c -names agree, the node is back
                   within 3 s, systemctl status epmd.socket shows epmd-c
  new_node         a new erl -sname node (which runs "epmd -daemon" itself)
                   registers, and no second epmd process appears
  restart_alias    systemctl restart epmd.service restarts epmd-c
  upgrade          dpkg -i again restarts epmd-c.service, not the socket
  failed_removal   prerm remove then postinst abort-remove (a removal
                   that failed) leaves epmd-c enabled and serving
  remove           dpkg -r: erlang-base's epmd.socket is enabled, listening
                   and serving again, and the nodes register with it
  purge            dpkg -P: no file of ours is left (dpkg -L; the paths
                   naming epmd under /etc, /var/lib and the unit directory
                   are those from before the installation)
  without_erlang_base  erlang-base purged from the throw-away overlay
                   (--force-depends: this host's rabbitmq and ejabberd
                   depend on it): dpkg -i serves 4369
  erlang_base_later  erlang-base's .deb (from apt's cache) installed after
                   epmd-c: epmd-c keeps the port and the aliases; dpkg -r
                   then hands the port to erlang-base's epmd.socket, enabled
                   as a fresh erlang-base would have it
  reinstall_then_erlang_base_purged  dpkg -i after dpkg -r takes over
                   again; purging erlang-base then (its purge removes the
                   links it recorded, which are epmd-c's) leaves epmd-c
                   enabled and serving; dpkg -P epmd-c leaves nothing
  without_a_running_systemd  dpkg -i, -r, -P in a chroot of this host
                   (PID 1 not systemd) on a throw-away overlay: the links
                   are made and removed, nothing is started
  lintian          the .deb has no lintian error or warning (lintian runs
                   in a thread beside the tests above)

The .deb comes from $EPMD_DEB when set (e.g. left by "make deb"), else
contrib/debian/build.sh builds it once into a temporary directory (with
DEB_BUILD_OPTIONS=nocheck: the unit tests run in their own layer).
Skips with one line when dpkg-buildpackage or systemd-nspawn is missing.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import epmdtest  # noqa: E402
from epmdtest import Skip, check, eq, test  # noqa: E402
import realsystemd  # noqa: E402

COOKIE = "epmdcdebtestcookie"
DEB_IN = "/root/epmd-c.deb"
ERLHOME = "/tmp/erlhome"


class World:
    """The container and what the tests share."""
    c = None
    deb = None
    failed = None       # why the setup failed, for the later tests
    before = None       # file snapshot before dpkg -i
    ours = None         # dpkg -L epmd-c while installed
    nodes = []          # names of erl nodes started so far
    tmp = None
    box = None          # what the build-and-lintian thread found
    builder = None
    erlang_later = False    # erlang-base was installed again after epmd-c


W = World()


def why_impossible():
    """One reason this machine cannot run the test, or None."""
    if not shutil.which("dpkg-buildpackage") and not os.environ.get("EPMD_DEB"):
        return "dpkg-buildpackage is not installed (apt package dpkg-dev)"
    if not shutil.which("dh") and not os.environ.get("EPMD_DEB"):
        return "debhelper is not installed"
    if not shutil.which("erl"):
        return "erl is not installed (apt package erlang-base)"
    return realsystemd.impossible()


def build_and_lint(box, ready):
    """Build the .deb into a temporary directory unless $EPMD_DEB names one
    (box["deb"] or box["error"], then ready is set), then run lintian on
    it (box["lintian"]: the CompletedProcess, or None without lintian).
    Runs in a thread, beside the container tests."""
    try:
        if os.environ.get("EPMD_DEB"):
            box["deb"] = os.path.abspath(os.environ["EPMD_DEB"])
        else:
            env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck", LINTIAN="no")
            p = subprocess.run([os.path.join(ROOT, "contrib", "debian", "build.sh"),
                                W.tmp], capture_output=True, text=True, env=env,
                               timeout=600)
            if p.returncode != 0:
                box["error"] = f"build.sh failed:\n{p.stdout}{p.stderr}"
                return
            box["deb"] = p.stdout.strip().splitlines()[-1]
    except Exception as e:  # reported by setup()
        box["error"] = f"build.sh: {e}"
        return
    finally:
        ready.set()
    box["lintian"] = None
    if shutil.which("lintian"):
        box["lintian"] = subprocess.run(["lintian", "--fail-on", "error,warning",
                                         box["deb"]], capture_output=True,
                                        text=True, timeout=600)


def sh(script, check=True, timeout=60.0):
    """A shell script inside the container; returns its stdout."""
    return W.c.sh(script, check=check, timeout=timeout).stdout


def start_node(name, start_epmd=False):
    """A real erl -sname node, run inside the container as a transient
    service (its HOME a temporary directory); returns its name."""
    argv = ["systemd-run", f"--unit=erl-{name}", "-q", "-E", f"HOME={ERLHOME}",
            "-p", "KillMode=control-group",
            "erl", "-sname", name, "-setcookie", COOKIE, "-noshell", "-noinput"]
    if not start_epmd:
        argv += ["-start_epmd", "false"]
    W.c.run(*argv)
    W.nodes.append(name)
    return name


def names_here():
    """The node names epmd on port 4369 of the container lists ({} if none
    answers), asked over the container's loopback."""
    with W.c.netns():
        try:
            raw = epmdtest.names(4369)
        except OSError:
            return {}
    text = raw[4:].decode("utf-8", "replace")
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^name (.*) at port (\d+)$", text, re.M)}


def wait_nodes(want, timeout):
    """Wait until every name in want is registered; returns the seconds it
    took, or fails with what was there."""
    t0 = time.monotonic()
    got = epmdtest.eventually(lambda: set(want) <= set(names_here()) or None,
                              timeout=timeout, interval=0.1)
    check(got, f"nodes {sorted(want)} not registered after {timeout} s: "
          f"{sorted(names_here())}")
    return time.monotonic() - t0


def epmd_processes():
    """(pid, argv) of every epmd-ish daemon process in the container."""
    out = sh("for p in /proc/[0-9]*; do "
             "a=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null) || continue; "
             "echo \"${p#/proc/} $a\"; done")
    res = []
    for line in out.splitlines():
        pid, _, args = line.partition(" ")
        prog = os.path.basename(args.split(" ", 1)[0]) if args else ""
        if prog in ("epmd", "epmd-c"):
            res.append((int(pid), args.strip()))
    return res


def snapshot():
    """Every path under /etc, /var/lib and the unit directory (with its link
    target) that names epmd: the rest of the overlay follows the host, where
    other packages come and go while the test runs."""
    out = sh("find /etc /var/lib /usr/lib/systemd/system -xdev "
             "\\( -type l -printf '%p -> %l\\n' \\) -o -printf '%p\\n'", timeout=60)
    return {l for l in out.splitlines() if "epmd" in l}


def dpkg(*args, timeout=120.0):
    """dpkg ARGS inside; returns the CompletedProcess (checked)."""
    return W.c.run("dpkg", *args, timeout=timeout,
                   env={"DEBIAN_FRONTEND": "noninteractive"})


def setup():
    """Build the .deb while the container boots with erlang-base's
    epmd.socket enabled and serving, and a real node registered."""
    if W.c is not None or W.failed:
        if W.failed:
            raise AssertionError(f"setup failed earlier: {W.failed}")
        return
    why = why_impossible()
    if why:
        raise Skip(why)
    W.tmp = tempfile.mkdtemp(prefix="epmdc-debtest-")
    W.box = {}
    ready = threading.Event()
    W.builder = threading.Thread(target=build_and_lint, args=(W.box, ready),
                                 daemon=True)
    W.builder.start()
    try:
        W.c = realsystemd.Container().up()
        # The development VM has Docker's policy-rc.d (exit 101: never start
        # services); a normal host has none. man-db's trigger, slow here,
        # is turned off.
        sh("rm -f /usr/sbin/policy-rc.d /var/lib/man-db/auto-update; "
           "mkdir -p " + ERLHOME)
        W.c.systemctl("enable", "--now", "epmd.socket")
        start_node("alpha")
        wait_nodes(["alpha"], 20)
        frag = W.c.prop("epmd.service", "ExecStart")
        check("/usr/bin/epmd" in frag, f"epmd.service is not erlang-base's: {frag}")
        ready.wait(600)
        if "deb" not in W.box:
            raise AssertionError(W.box.get("error", "no .deb built"))
        W.deb = W.box["deb"]
        W.c.cp(W.deb, DEB_IN, mode=0o644)
        W.before = snapshot()
    except BaseException as e:
        W.failed = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise


def teardown():
    if W.c is not None:
        W.c.down()
    if W.tmp:
        shutil.rmtree(W.tmp, ignore_errors=True)


@test
def test_deb_install_takes_over_epmd_socket():
    setup()
    old = [p for p in epmd_processes() if p[1].startswith("/usr/bin/epmd ")]
    check(old, f"erlang-base's epmd is not running: {epmd_processes()}")
    p = dpkg("-i", DEB_IN)
    t_done = time.monotonic()
    lines = [l for l in p.stdout.splitlines() if l.startswith("epmd-c:")]
    eq(len(lines), 1, f"one line from postinst: {p.stdout}")
    check("register again within about 2 s" in lines[0], lines[0])
    # the node is back within 3 s of dpkg -i returning
    wait_nodes(["alpha"], 3.0)
    took = time.monotonic() - t_done
    check(took <= 3.0, f"alpha back after {took:.1f} s")
    # epmd-c serves 4369, and it is the only port mapper left
    procs = epmd_processes()
    check(all(a.startswith("/usr/bin/epmd-c ") for _, a in procs) and procs,
          f"port mappers running: {procs}")
    eq(W.c.main_pid("epmd-c.service"), procs[0][0], "epmd-c.service MainPID")
    a = W.c.run("epmd", "-names").stdout
    b = W.c.run("epmd-c", "-names").stdout
    eq(a, b, "epmd -names vs epmd-c -names")
    check("name alpha at port" in a, a)
    st = W.c.systemctl("status", "epmd.socket", check=False).stdout
    check(st.startswith("● epmd-c.socket - Erlang Port Mapper Daemon (epmd-c)"), st)
    check("/lib/systemd/system/epmd-c.socket; enabled" in st, st)
    eq(W.c.prop("epmd.service", "Id"), "epmd-c.service", "epmd.service is")
    state = W.c.read("/var/lib/epmd-c/debian-epmd")
    check("enabled=yes" in state and "active=yes" in state, state)
    # the package's files and links (not its directories, which it shares)
    W.ours = sh("dpkg -L epmd-c | while read -r f; do "
                "[ -d \"$f\" ] || echo \"$f\"; done").split()
    check("/usr/bin/epmd-c" in W.ours, W.ours)


@test
def test_deb_new_node_registers_no_second_epmd():
    setup()
    check(W.ours, "not installed (test_deb_install failed)")
    pid = W.c.main_pid("epmd-c.service")
    # start_epmd true (erl's default): erl runs "epmd -daemon" itself
    start_node("beta", start_epmd=True)
    wait_nodes(["alpha", "beta"], 20)
    for _ in range(10):
        procs = epmd_processes()
        eq(procs, [(pid, "/usr/bin/epmd-c -systemd")], "port mapper processes")
        time.sleep(0.1)
    out = W.c.run("epmd-c", "-names").stdout
    check("name beta at port" in out, out)


@test
def test_deb_restart_through_alias():
    setup()
    check(W.ours, "not installed (test_deb_install failed)")
    pid = W.c.main_pid("epmd-c.service")
    W.c.systemctl("restart", "epmd.service")
    W.c.wait_active("epmd-c.service")
    new = W.c.main_pid("epmd-c.service")
    check(new and new != pid, f"MainPID {pid} -> {new}")
    wait_nodes(W.nodes, 5)
    eq([a for _, a in epmd_processes()], ["/usr/bin/epmd-c -systemd"], "port mappers")


@test
def test_deb_upgrade_restarts_service_only():
    setup()
    check(W.ours, "not installed (test_deb_install failed)")
    pid = W.c.main_pid("epmd-c.service")
    sock = W.c.prop("epmd-c.socket", "InvocationID")
    p = dpkg("-i", DEB_IN)      # the same version again: the upgrade path
    check("epmd-c:" not in p.stdout, p.stdout)
    W.c.wait_active("epmd-c.service")
    new = W.c.main_pid("epmd-c.service")
    check(new and new != pid, f"epmd-c.service MainPID {pid} -> {new}")
    eq(W.c.prop("epmd-c.socket", "InvocationID"), sock, "epmd-c.socket restarted")
    wait_nodes(W.nodes, 5)


@test
def test_deb_failed_removal_is_undone():
    setup()
    check(W.ours, "not installed (test_deb_install failed)")
    # what dpkg runs when a removal fails after prerm: prerm remove, then
    # postinst abort-remove
    env = {"DPKG_MAINTSCRIPT_PACKAGE": "epmd-c", "DPKG_MAINTSCRIPT_NAME": "prerm"}
    W.c.run("/var/lib/dpkg/info/epmd-c.prerm", "remove", env=env)
    eq(W.c.prop("epmd.socket", "Id"), "epmd.socket", "epmd.socket after prerm")
    env["DPKG_MAINTSCRIPT_NAME"] = "postinst"
    p = W.c.run("/var/lib/dpkg/info/epmd-c.postinst", "abort-remove", env=env)
    check("register again within about 2 s" in p.stdout, p.stdout)
    eq(W.c.prop("epmd.socket", "Id"), "epmd-c.socket", "epmd.socket is")
    eq(W.c.prop("epmd-c.socket", "UnitFileState"), "enabled", "epmd-c.socket")
    W.c.wait_active("epmd-c.socket")
    wait_nodes(W.nodes, 6)
    eq([a for _, a in epmd_processes()], ["/usr/bin/epmd-c -systemd"], "port mappers")


@test
def test_deb_remove_gives_back_debian_epmd():
    setup()
    check(W.ours, "not installed (test_deb_install failed)")
    p = dpkg("-r", "epmd-c")
    check("erlang-base's epmd.socket serves port 4369 again" in p.stdout, p.stdout)
    eq(W.c.prop("epmd.socket", "Id"), "epmd.socket", "epmd.socket is")
    frag = W.c.prop("epmd.socket", "FragmentPath")
    check(frag.endswith("/systemd/system/epmd.socket"), frag)
    eq(W.c.prop("epmd.socket", "UnitFileState"), "enabled", "epmd.socket enabled")
    eq(W.c.prop("epmd.socket", "ActiveState"), "active", "epmd.socket active")
    listen = W.c.prop("epmd.socket", "Listen")
    check("4369" in listen, listen)
    # the nodes come back to erlang-base's epmd (started by the socket)
    wait_nodes(W.nodes, 6)
    procs = epmd_processes()
    eq([a for _, a in procs], ["/usr/bin/epmd -systemd"], "port mappers")
    out = W.c.run("epmd", "-names").stdout
    check("name alpha at port" in out and "name beta at port" in out, out)
    sh("test ! -e /etc/systemd/system/epmd.socket && test ! -e /etc/systemd/system/epmd.service")


@test
def test_deb_purge_leaves_nothing():
    setup()
    check(W.ours, "not installed (test_deb_install failed)")
    dpkg("-P", "epmd-c")
    eq(W.c.run("dpkg-query", "-W", "epmd-c", check=False).returncode, 1,
       "dpkg still knows epmd-c")
    left = sh("for f in " + " ".join(f"'{f}'" for f in W.ours) +
              "; do [ -f \"$f\" ] || [ -L \"$f\" ] && echo \"$f\"; done; true").split()
    eq(left, [], "files of the package still there")
    after = snapshot()
    eq(sorted(after - W.before), [], "new paths under /etc, /var/lib, units")
    eq(sorted(W.before - after), [], "paths gone from /etc, /var/lib, units")
    sh("test ! -e /var/lib/epmd-c")


@test
def test_deb_install_without_erlang_base():
    setup()
    check(W.ours, "not installed (test_deb_install failed)")
    for u in W.nodes:
        W.c.systemctl("stop", f"erl-{u}.service", check=False)
    W.nodes.clear()
    # Really not installed: purged from the throw-away overlay (this host's
    # rabbitmq and ejabberd packages depend on it, hence --force-depends).
    dpkg("--purge", "--force-depends", "erlang-base")
    sh("test ! -e /lib/systemd/system/epmd.socket && ! command -v erl")
    p = dpkg("-i", DEB_IN)
    check("epmd-c: epmd-c.socket serves port 4369" in p.stdout, p.stdout)
    W.c.wait_active("epmd-c.socket")
    with W.c.netns():
        s, reply = epmdtest.register(4369, "delta", port=40001)
    try:
        eq(reply[:2], b"v\x00", "ALIVE2 reply")
        eq(names_here(), {"delta": 40001}, "names")
    finally:
        s.close()
    check("present=no" in W.c.read("/var/lib/epmd-c/debian-epmd"), "state")
    eq([a for _, a in epmd_processes()], ["/usr/bin/epmd-c -systemd"], "port mappers")


def erlang_base_deb():
    """erlang-base's .deb from apt's cache, copied in; or Skip."""
    cached = sorted(glob.glob("/var/cache/apt/archives/erlang-base_*.deb"))
    if not cached:
        raise Skip("no erlang-base .deb in /var/cache/apt/archives")
    W.c.cp(cached[-1], "/root/erlang-base.deb", mode=0o644)
    return "/root/erlang-base.deb"


@test
def test_deb_erlang_base_installed_later_keeps_epmd_c():
    setup()
    check(W.ours, "not installed (test_deb_install failed)")
    # erlang-base's postinst enables epmd.service and epmd.socket (the
    # aliases) and starts them; our trigger notes that it arrived
    dpkg("-i", erlang_base_deb(), timeout=240)
    W.erlang_later = True
    eq(W.c.prop("epmd.socket", "Id"), "epmd-c.socket", "epmd.socket is")
    W.c.wait_active("epmd-c.socket")
    start_node("gamma", start_epmd=True)
    wait_nodes(["gamma"], 20)
    eq([a for _, a in epmd_processes()], ["/usr/bin/epmd-c -systemd"], "port mappers")
    state = W.c.read("/var/lib/epmd-c/debian-epmd")
    check("present=yes" in state and "enabled=yes" in state, state)
    # removal hands the port to erlang-base's epmd.socket, enabled as a
    # fresh erlang-base would have it
    dpkg("-r", "epmd-c")
    eq(W.c.prop("epmd.socket", "Id"), "epmd.socket", "epmd.socket is")
    eq(W.c.prop("epmd.socket", "UnitFileState"), "enabled", "epmd.socket enabled")
    eq(W.c.prop("epmd.socket", "ActiveState"), "active", "epmd.socket active")
    wait_nodes(["gamma"], 6)
    eq([a for _, a in epmd_processes()], ["/usr/bin/epmd -systemd"], "port mappers")


@test
def test_deb_reinstall_then_erlang_base_purged():
    setup()
    check(W.ours, "not installed (test_deb_install failed)")
    if not W.erlang_later and not glob.glob("/var/cache/apt/archives/erlang-base_*.deb"):
        raise Skip("no erlang-base .deb in /var/cache/apt/archives")
    check(W.erlang_later, "erlang-base not installed again "
          "(test_deb_erlang_base_installed_later_keeps_epmd_c failed)")
    # installing again after a removal is a first installation again
    p = dpkg("-i", DEB_IN)
    check("register again within about 2 s" in p.stdout, p.stdout)
    eq(W.c.prop("epmd.socket", "Id"), "epmd-c.socket", "epmd.socket is")
    wait_nodes(["gamma"], 3)
    W.c.systemctl("stop", "erl-gamma.service")
    W.nodes.clear()
    # erlang-base's prerm stops epmd.socket (= epmd-c), and its purge removes
    # the links it recorded as its own (epmd-c's): the trigger restores both
    dpkg("--purge", "--force-depends", "erlang-base")
    sh("test ! -e /lib/systemd/system/epmd.socket")
    eq(W.c.prop("epmd.socket", "Id"), "epmd-c.socket", "epmd.socket is")
    eq(W.c.prop("epmd-c.socket", "UnitFileState"), "enabled", "epmd-c.socket")
    W.c.wait_active("epmd-c.socket")
    eq(sh("readlink /etc/systemd/system/epmd.service").strip(),
       "/lib/systemd/system/epmd-c.service", "epmd.service alias")
    with W.c.netns():
        s, reply = epmdtest.register(4369, "epsilon", port=40002)
    try:
        eq(names_here(), {"epsilon": 40002}, "names")
    finally:
        s.close()
    dpkg("-P", "epmd-c")
    sh("! ls /etc/systemd/system/epmd* /etc/systemd/system/*/epmd* 2>/dev/null"
       " && test ! -e /var/lib/epmd-c")


CHROOT_SCRIPT = r"""
set -eu
d=$1 deb=$2
mount -t tmpfs tmpfs "$d"
mkdir "$d/upper" "$d/work" "$d/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$d/upper,workdir=$d/work" "$d/root"
mount -t proc proc "$d/root/proc"
mount --bind /dev "$d/root/dev"
cp "$deb" "$d/root/tmp/epmd-c.deb"
exec chroot "$d/root" /bin/sh -c '
	set -eu
	export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
	rm -f /var/lib/man-db/auto-update
	links() { find /etc/systemd/system -lname "*epmd*" -printf "%p -> %l\n" | sort; }
	test ! -d /run/systemd/system
	before=$(links)
	echo "@@before $before" | tr "\n" " "; echo
	dpkg -i /tmp/epmd-c.deb | sed -n "s/^epmd-c: /@@said /p"
	echo "@@installed $(links)" | tr "\n" " "; echo
	echo "@@state $(tr "\n" " " < /var/lib/epmd-c/debian-epmd)"
	dpkg -r epmd-c >/dev/null
	echo "@@removed $(links)" | tr "\n" " "; echo
	dpkg -P epmd-c >/dev/null
	echo "@@purged $(links)" | tr "\n" " "; echo
	test ! -e /var/lib/epmd-c && echo "@@statedir gone"
	ls /var/lib/systemd/deb-systemd-helper-enabled | grep epmd-c || echo "@@dsh clean"
'
"""


@test
def test_deb_without_a_running_systemd():
    """dpkg -i, -r, -P in a chroot of this host (whose PID 1 is not
    systemd), on a throw-away overlay of its root: only links change."""
    setup()
    d = tempfile.mkdtemp(prefix="epmdc-chroot-", dir="/var/tmp")
    try:
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            CHROOT_SCRIPT, "sh", d, W.deb], capture_output=True,
                           text=True, timeout=300)
    finally:
        os.rmdir(d)
    out = {}
    for line in p.stdout.splitlines():
        if line.startswith("@@"):
            k, _, v = line[2:].partition(" ")
            out[k] = v.strip()
    check(p.returncode == 0, f"chroot run failed: {p.stdout}{p.stderr}")
    check(out.get("said", "").startswith("enabled as epmd.socket; it serves port 4369 "
                                         "from the next boot"), out)
    inst = out["installed"]
    for link in ("/etc/systemd/system/epmd.socket -> /lib/systemd/system/epmd-c.socket",
                 "/etc/systemd/system/epmd.service -> /lib/systemd/system/epmd-c.service",
                 "/etc/systemd/system/sockets.target.wants/epmd-c.socket -> "
                 "/lib/systemd/system/epmd-c.socket"):
        check(link in inst, f"{link!r} not in {inst!r}")
    check("active=no" in out["state"], out["state"])
    eq(out["removed"], out["before"], "links after dpkg -r")
    eq(out["purged"], out["before"], "links after dpkg -P")
    check("statedir" in out and "dsh" in out, out)


@test
def test_deb_lintian_clean():
    setup()
    W.builder.join(600)
    p = W.box.get("lintian")
    if p is None:
        raise Skip("lintian is not installed")
    tags = [l for l in p.stdout.splitlines() if re.match(r"^[EW]: ", l)]
    eq(tags, [], "lintian errors and warnings")
    eq(p.returncode, 0, f"lintian exit status ({p.stdout}{p.stderr})")


if __name__ == "__main__":
    if why_impossible():
        print(f"skip - test_deb: {why_impossible()}", flush=True)
        sys.exit(0)
    try:
        epmdtest.run_tests()
    finally:
        teardown()
