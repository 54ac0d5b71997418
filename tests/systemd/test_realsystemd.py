#!/usr/bin/env python3
"""The real-systemd test layer itself (tests/lib/realsystemd.py): what it
boots, what it isolates, and that it leaves nothing behind.

One container is booted for the file; test_killed_run_is_cleaned_up boots
a second one in a child process and SIGKILLs that child.
"""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(HERE, "..", "lib")
sys.path.insert(0, LIB)
import epmdtest as et  # noqa: E402
import realsystemd  # noqa: E402

C = None


def leftovers(name):
    """Everything a container of this name could leave on the host."""
    found = [p for p in realsystemd._cgroup_parents() if os.path.exists(os.path.join(p, name))]
    if os.path.exists(os.path.join(realsystemd.STATE_BASE, name)):
        found.append(os.path.join(realsystemd.STATE_BASE, name))
    with open("/proc/self/mountinfo") as f:
        found += [line.strip() for line in f if name in line]
    return found


@et.test
def test_systemd_is_pid_1_of_a_booted_container():
    et.eq(C.run("cat", "/proc/1/comm").stdout.strip(), "systemd", "PID 1")
    et.check(C.run("systemctl", "--version").stdout.startswith("systemd 2"), "systemctl --version")
    et.check(C.prop("-.mount", "ActiveState") == "active", "root mount")
    et.eq(C.run("systemctl", "is-system-running", check=False).stdout.strip(), "running",
          "system state")
    et.check(C.boot_seconds < 30, f"boot took {C.boot_seconds:.1f} s")


@et.test
def test_host_units_are_hidden_and_host_files_are_visible():
    # the host's enabled units (its /etc/systemd/system) are not there
    et.eq(C.run("ls", "-A", "/etc/systemd/system").stdout, "", "/etc/systemd/system")
    # everything installed on the host is: the overlay's lower layer is /
    et.eq(C.run("readlink", "-f", "/usr/bin/python3").stdout.strip(),
          os.path.realpath("/usr/bin/python3"), "host files")


@et.test
def test_writes_inside_never_reach_the_host():
    marker = f"/var/tmp/epmdc-rsd-marker-{os.getpid()}"
    C.write(marker, b"inside\n")
    et.eq(C.read(marker), "inside\n", "the file inside")
    et.check(not os.path.exists(marker), f"{marker} appeared on the host")


@et.test
def test_cp_keeps_mode_and_makes_directories():
    src = os.path.join(HERE, "verify-units.sh")
    C.cp(src, "/opt/rsdtest/deep/")
    out = C.run("stat", "-c", "%a %s", "/opt/rsdtest/deep/verify-units.sh").stdout.split()
    st = os.stat(src)
    et.eq(out, ["%o" % (st.st_mode & 0o7777), str(st.st_size)], "mode and size")


@et.test
def test_cp_copies_a_directory_tree():
    C.cp(os.path.join(HERE, "..", "..", "systemd"), "/opt/rsdtree")
    got = sorted(C.run("ls", "/opt/rsdtree").stdout.split())
    et.eq(got, sorted(os.listdir(os.path.join(HERE, "..", "..", "systemd"))), "tree")


@et.test
def test_netns_puts_this_thread_and_its_children_on_the_container_loopback():
    before = os.readlink("/proc/thread-self/ns/net")
    with C.netns():
        inside = os.readlink("/proc/thread-self/ns/net")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        child = subprocess.run(["readlink", "/proc/self/ns/net"], capture_output=True,
                               text=True).stdout.strip()
    try:
        et.eq(os.readlink("/proc/thread-self/ns/net"), before, "back in the host netns")
        et.check(inside != before, "netns() did not switch")
        et.eq(child, inside, "a child started inside netns()")
        et.eq(os.readlink(f"/proc/{C.leader}/ns/net"), inside, "the container's netns")
        # the listener is on the container's loopback, not the host's
        ss = C.net("ss", "-Hltn", f"sport = :{port}").stdout
        et.check(f"127.0.0.1:{port}" in ss, f"not listening inside: {ss!r}")
        with socket.socket() as probe:
            et.check(probe.connect_ex(("127.0.0.1", port)) != 0, "reachable from the host")
    finally:
        s.close()


@et.test
def test_run_has_a_clean_environment_and_reports_failures():
    os.environ["RSD_LEAK_CHECK"] = "1"
    try:
        env = C.run("env").stdout
    finally:
        del os.environ["RSD_LEAK_CHECK"]
    et.check("RSD_LEAK_CHECK" not in env, "host environment leaked into run()")
    et.check("PATH=/usr/local/sbin:" in env, f"PATH: {env}")
    try:
        C.run("sh", "-c", "echo out; echo why >&2; exit 3")
    except realsystemd.CommandFailed as e:
        et.eq(e.returncode, 3, "returncode")
        et.check("why" in str(e) and "exit 3" in str(e), f"message: {e}")
    else:
        raise AssertionError("no CommandFailed")
    et.eq(C.run("cat", input="piped").stdout, "piped", "input=")


@et.test
def test_run_timeout_kills_the_command_inside():
    t0 = time.monotonic()
    try:
        C.run("sleep", "77", timeout=0.5)
    except subprocess.TimeoutExpired:
        pass
    else:
        raise AssertionError("no TimeoutExpired")
    et.check(time.monotonic() - t0 < 10, "timeout was not enforced")
    left = et.eventually(lambda: C.run("pgrep", "-x", "sleep", check=False).returncode == 1,
                         timeout=5)
    et.check(left, "sleep 77 still runs inside")


@et.test
def test_down_leaves_nothing_behind():
    c = realsystemd.Container()
    c.up()
    leader, name = c.leader, c.name
    et.check(leftovers(name), "nothing to see while up?")
    c.down()
    et.check(not os.path.exists(f"/proc/{leader}"), "container PID 1 still there")
    et.eq(c.nspawn.returncode is not None, True, "nspawn reaped")
    et.eq(leftovers(name), [], "after down")
    c.down()    # idempotent


KILLED_CHILD = textwrap.dedent('''
    import os, sys, time
    sys.path.insert(0, sys.argv[1])
    import realsystemd
    c = realsystemd.Container()
    c.up()
    print(c.name, c.leader, c.nspawn.pid, flush=True)
    time.sleep(120)
''')


@et.test
def test_killed_run_is_cleaned_up():
    p = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, LIB], stdout=subprocess.PIPE,
                         text=True)
    try:
        name, leader, nspawn = p.stdout.readline().split()
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        p.stdout.close()
    # nspawn got SIGTERM when its parent died, and halted the container
    gone = et.eventually(lambda: not os.path.exists(f"/proc/{leader}") and
                         not os.path.exists(f"/proc/{nspawn}"), timeout=30, interval=0.1)
    et.check(gone, f"container {name} outlived its test process")
    et.check(leftovers(name), "nothing left to clean? (the test proves nothing)")
    realsystemd.clean_stale()
    et.eq(leftovers(name), [], "after clean_stale()")


def main():
    return realsystemd.run_test_file("realsystemd self-test", globals(), install=False)

if __name__ == "__main__":
    sys.exit(main())
