"""A real systemd as PID 1 of a throw-away container, for the systemd layer.

The host's own systemd (252 on Debian 12) boots inside systemd-nspawn, so
the shipped units can be tested for what systemd-socket-activate cannot
show: socket units, Type=notify, Restart=, WatchdogSec=, DynamicUser=, the
fd store, the journal, [Install] aliases.

    import realsystemd
    realsystemd.skip_unless_possible()          # one clear Skip reason
    with realsystemd.Container() as c:          # boots in about a second
        c.install_epmdc(EPMD_BIN)               # binary + systemd/*.socket|service
        c.systemctl("start", "epmd-c.socket")
        with c.netns():                         # this thread's sockets and
            names(4369)                         # children use its 127.0.0.1
        c.run("epmd", "-names")                 # a command inside, clean env
        print(c.prop("epmd-c.service", "MainPID"))

How it boots (the method of /work/shared/tools/realsystemd.sh):
  * a launcher process gets a private mount namespace (unshare(1)); there a
    tmpfs covers /run and /tmp (so nspawn's host-side state never reaches
    the disk) and / is bind-mounted, NON-recursively, onto the state dir's
    hostroot/ (nspawn refuses -D /; no /proc, /dev, /sys submounts come
    along);
  * systemd-nspawn --volatile=overlay boots that tree: the container's / is
    an overlay whose lower layer is the host's root file system and whose
    upper layer is a tmpfs, so everything installed on the host is there and
    every write is thrown away;
  * --tmpfs=/etc/systemd/system hides the host's enabled units: the
    container boots a clean multi-user.target (journald, dbus, logind);
  * the host's PID 1 is not systemd, so --register=no (no machined) and
    --keep-unit inside a cgroup of its own, made here and removed by down();
  * --private-network: the container has only its own loopback. Reach it
    with netns() (sockets and child processes of the calling thread), net()
    and net_popen() (host commands in its network namespace), or run().

Everything is named after the container (default epmdc-rsd-PID-N), so
several test runs never collide. down() (also at exit) leaves no cgroup
directory, mount or state directory behind. If the test process dies
without down() (SIGKILL, a tests/run timeout), nspawn gets SIGTERM
(PR_SET_PDEATHSIG, tied to the thread that called up(): call it from the
main thread) and halts the container; the next up() on the machine removes
the empty cgroups and state directory left behind.

Unit generators are masked (each costs every boot and daemon-reload 0.4 s
here), except systemd-debug-generator, which implements systemd.mask=;
Container(generators=True) keeps them. REALSYSTEMD_TRACE=1 logs every
command run, with its exit status and duration, on stderr.

Limits seen on the development VM: no cgroup controllers inside (MemoryMax=
and the like are accepted, not enforced), CAP_SYS_RESOURCE is missing (no
LimitNOFILE= above the host's hard limit), /proc/sys and /sys are read-only,
and host files changed after up() may not show through the overlay: copy
them in with cp().
"""

import atexit
import ctypes
import io
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import epmdtest  # noqa: E402

SYSTEMD = "/usr/lib/systemd/systemd"
STATE_BASE = "/var/tmp/epmdc-realsystemd"
NAME_PREFIX = "epmdc-rsd-"
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLEAN_ENV = {"PATH": CONTAINER_PATH, "HOME": "/root", "USER": "root",
             "LOGNAME": "root", "TERM": "dumb", "LANG": "C.UTF-8",
             "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0",
             "SYSTEMD_LESS": ""}
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
# REALSYSTEMD_TRACE=1: every command, its exit status and duration on stderr
TRACE = os.environ.get("REALSYSTEMD_TRACE") == "1"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

_seq = itertools.count(1)
_live = []      # containers up in this process, brought down at exit


class ContainerError(RuntimeError):
    """The container could not be booted, or a command inside failed."""


class CommandFailed(ContainerError, subprocess.CalledProcessError):
    """A command run with check=True exited non-zero; shows its output."""

    def __init__(self, where, argv, proc):
        subprocess.CalledProcessError.__init__(self, proc.returncode, argv,
                                               proc.stdout, proc.stderr)
        self.where = where

    def __str__(self):
        out = (self.stdout or "").strip()
        err = (self.stderr or "").strip()
        text = f"{self.where}: {' '.join(map(str, self.cmd))}: exit {self.returncode}"
        if out:
            text += f"\n  stdout: {out[-2000:]}"
        if err:
            text += f"\n  stderr: {err[-2000:]}"
        return text


def impossible():
    """Why this machine cannot boot the container, or None if it can."""
    if os.geteuid() != 0:
        return "the real-systemd layer needs root (systemd-nspawn)"
    if not shutil.which("systemd-nspawn"):
        return "systemd-nspawn is not installed (apt package systemd-container)"
    if not os.access(SYSTEMD, os.X_OK):
        return f"{SYSTEMD} is not installed (apt package systemd)"
    for tool in ("unshare", "nsenter"):
        if not shutil.which(tool):
            return f"{tool} is not installed (apt package util-linux)"
    parents = _cgroup_parents()
    if not parents or not all(os.access(p, os.W_OK) for p in parents):
        return "no writable cgroup hierarchy under /sys/fs/cgroup"
    return None


def skip_unless_possible():
    """Raise epmdtest.Skip with one reason when nspawn cannot run here."""
    why = impossible()
    if why:
        raise epmdtest.Skip(why)


def _cgroup_parents():
    """The cgroup hierarchies a container's cgroup must be made in: the pure
    cgroup2 root, or the name=systemd and unified ones of a hybrid host."""
    base = "/sys/fs/cgroup"
    if _fstype(base) == "cgroup2":
        return [base]
    return [os.path.join(base, h) for h in ("systemd", "unified")
            if os.path.ismount(os.path.join(base, h))]


def _fstype(path):
    """The file system type of the mount that holds path (from mountinfo)."""
    best, kind = "", ""
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            mnt = left.split()[4]
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, right.split()[0]
    return kind


def _unified_available():
    """True when the container can get a pure cgroup2 tree."""
    return _fstype("/sys/fs/cgroup") == "cgroup2" or \
        os.path.ismount("/sys/fs/cgroup/unified")


def _starttime(pid):
    """Field 22 of /proc/PID/stat (guards against pid reuse), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _children_in_new_pidns(ppid):
    """Children of ppid that are PID 1 of a pid namespace below ours."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                status = f.read()
        except OSError:
            continue
        pp = re.search(r"^PPid:\s*(\d+)", status, re.M)
        ns = re.search(r"^NSpid:\s*(.*)$", status, re.M)
        if not pp or int(pp.group(1)) != ppid or not ns:
            continue
        ids = ns.group(1).split()
        if len(ids) > 1 and ids[-1] == "1":
            found.append(int(d))
    return found


def _remove_cgroup(path, timeout=10.0):
    """Kill what is left in a cgroup we made, then remove it, depth first."""
    if not os.path.isdir(path):
        return True
    kill = os.path.join(path, "cgroup.kill")
    if os.path.exists(kill):
        try:
            with open(kill, "w") as f:
                f.write("1")
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    while True:
        for top, dirs, _ in os.walk(path, topdown=False):
            try:
                os.rmdir(top)
            except OSError:
                pass
        if not os.path.isdir(path) or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return not os.path.isdir(path)


def _owner_pid(name):
    """The pid of the test process that made a container of this name."""
    m = re.fullmatch(re.escape(NAME_PREFIX) + r"(\d+)-\d+", name)
    return int(m.group(1)) if m else None


def clean_stale():
    """Remove cgroups and state left by containers of processes now dead
    (a test run that was SIGKILLed). Only our own naming scheme is touched."""
    removed = []
    places = [(p, "cgroup") for p in _cgroup_parents()]
    places.append((STATE_BASE, "state"))
    for parent, kind in places:
        try:
            entries = os.listdir(parent)
        except OSError:
            continue
        for e in entries:
            owner = _owner_pid(e)
            if owner is None or owner == os.getpid() or _pid_alive(owner):
                continue
            path = os.path.join(parent, e)
            try:
                if kind == "cgroup":
                    _remove_cgroup(path, timeout=3.0)
                else:
                    _remove_state_dir(path)
            except OSError:
                continue    # another run cleaning the same leftovers
            removed.append(path)
    return removed


def _remove_state_dir(path):
    """Remove a state dir: a few known files and the empty hostroot mount
    point. Never recursive: hostroot was a bind mount of / in the launcher's
    namespace, and must never be walked."""
    if os.path.ismount(os.path.join(path, "hostroot")):
        raise ContainerError(f"{path}/hostroot is a mount point here; not removing it")
    for f in ("console.log",):
        try:
            os.unlink(os.path.join(path, f))
        except FileNotFoundError:
            pass
    gens = os.path.join(path, "generators")
    if os.path.isdir(gens) and not os.path.islink(gens):
        for f in os.listdir(gens):
            if os.path.islink(os.path.join(gens, f)):
                os.unlink(os.path.join(gens, f))
    for d in ("hostroot", "generators", ""):
        try:
            os.rmdir(os.path.join(path, d) if d else path)
        except FileNotFoundError:
            pass


# The launcher, run by unshare(1) in a private mount namespace: hide the
# host's /run and /tmp from nspawn, bind / (alone) onto the hostroot, boot.
LAUNCHER = r'''
set -e
mount -n -t tmpfs -o mode=755,size=64m epmdc-rsd-run /run
mount -n -t tmpfs -o mode=1777,size=64m epmdc-rsd-tmp /tmp
mount -n --bind / "$EPMDC_RSD_HOSTROOT"
unset EPMDC_RSD_HOSTROOT
exec systemd-nspawn "$@"
'''


class Container:
    """One booted container: systemd as PID 1, own network namespace."""

    def __init__(self, name=None, boot_timeout=60.0, binds=(), binds_ro=(),
                 masks=(), generators=False):
        self.name = name or f"{NAME_PREFIX}{os.getpid()}-{next(_seq)}"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}", self.name):
            raise ValueError(f"bad container name {self.name!r}")
        self.boot_timeout = boot_timeout
        self.binds = list(binds)
        self.binds_ro = list(binds_ro)
        self.masks = ["console-getty.service"] + list(masks)
        # unit generators run at boot and on every daemon-reload (0.4 s of
        # each here); all but systemd-debug-generator, which implements
        # systemd.mask=, are masked unless generators=True
        self.generators = generators
        self.state = os.path.join(STATE_BASE, self.name)
        self.hostroot = os.path.join(self.state, "hostroot")
        self.cgroups = []
        self.nspawn = None      # Popen of systemd-nspawn (via unshare)
        self.leader = None      # host pid of the container's PID 1
        self.leader_start = None
        self.boot_seconds = None
        self.console_text = ""

    # --- up / down ---

    def up(self):
        """Boot the container; returns self once the boot job is done."""
        why = impossible()
        if why:
            raise ContainerError(f"realsystemd: cannot boot: {why}")
        if self.nspawn is not None:
            return self
        t0 = time.monotonic()
        clean_stale()
        if os.path.exists(self.state):
            raise ContainerError(f"realsystemd: {self.state} exists: is "
                                 f"container {self.name} up elsewhere?")
        os.makedirs(self.hostroot)
        if not self.generators:
            self._mask_generators()
        self.cgroups = [os.path.join(p, self.name) for p in _cgroup_parents()]
        for d in self.cgroups:
            os.mkdir(d)
        _live.append(self)
        try:
            self._launch()
            self._find_leader()
            self._wait_booted()
        except BaseException:
            self.console_text = self.console()
            self.down()
            raise
        self.boot_seconds = time.monotonic() - t0
        return self

    def _mask_generators(self):
        """A directory of /dev/null links, bound over the container's
        /etc/systemd/system-generators, masking the host's generators."""
        d = os.path.join(self.state, "generators")
        os.mkdir(d)
        for src in ("/usr/lib/systemd/system-generators", "/lib/systemd/system-generators"):
            try:
                names = os.listdir(src)
            except OSError:
                continue
            for g in names:
                link = os.path.join(d, g)
                if g != "systemd-debug-generator" and not os.path.lexists(link):
                    os.symlink("/dev/null", link)
        self.binds_ro.append(f"{d}:/etc/systemd/system-generators")

    def _nspawn_args(self):
        args = ["-D", self.hostroot, "--volatile=overlay", "--register=no",
                "--keep-unit", "--private-network", "-M", self.name,
                "--link-journal=no", "--console=read-only",
                "--tmpfs=/etc/systemd/system"]
        args += [f"--bind={b}" for b in self.binds]
        args += [f"--bind-ro={b}" for b in self.binds_ro]
        # after -b, the arguments are PID 1's kernel-style command line
        args += ["-b", "systemd.unit=multi-user.target"]
        args += [f"systemd.mask={m}" for m in self.masks]
        return args

    def _launch(self):
        cgroups = list(self.cgroups)

        def preexec():
            pid = str(os.getpid())
            for d in cgroups:
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(pid)
            # nspawn turns SIGTERM into an orderly halt: if the test dies, so
            # does the container
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

        env = {"PATH": CONTAINER_PATH, "LANG": "C.UTF-8",
               "EPMDC_RSD_HOSTROOT": self.hostroot,
               "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY":
                   "1" if _unified_available() else "0"}
        console = open(os.path.join(self.state, "console.log"), "wb")
        try:
            self.nspawn = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "--",
                 "/bin/sh", "-c", LAUNCHER, "epmdc-rsd", *self._nspawn_args()],
                stdin=subprocess.DEVNULL, stdout=console,
                stderr=subprocess.STDOUT, env=env, preexec_fn=preexec,
                start_new_session=True)
        finally:
            console.close()

    def _deadline_left(self, deadline, what):
        left = deadline - time.monotonic()
        if left <= 0:
            raise ContainerError(f"realsystemd: {what} within {self.boot_timeout:.0f} s"
                                 f"; console:\n{self.console()[-3000:]}")
        if self.nspawn.poll() is not None:
            raise ContainerError(f"realsystemd: systemd-nspawn exited "
                                 f"{self.nspawn.returncode} while booting; "
                                 f"console:\n{self.console()[-3000:]}")
        return left

    def _find_leader(self):
        deadline = time.monotonic() + self.boot_timeout
        while True:
            self._deadline_left(deadline, "no container PID 1")
            kids = _children_in_new_pidns(self.nspawn.pid)
            if kids:
                self.leader = kids[0]
                self.leader_start = _starttime(self.leader)
                return
            time.sleep(0.02)

    def _wait_booted(self):
        # "offline" until PID 1 made /run/systemd/system, an error until it
        # listens on /run/systemd/private; then --wait blocks until booted
        deadline = time.monotonic() + self.boot_timeout
        state = ""
        while True:
            left = self._deadline_left(deadline, f"boot not finished (state {state!r})")
            try:
                p = self.run("systemctl", "is-system-running", "--wait",
                             check=False, timeout=left)
            except subprocess.TimeoutExpired:
                continue
            state = p.stdout.strip()
            if state in ("running", "degraded"):
                break
            if state not in ("", "offline", "initializing", "starting"):
                raise ContainerError(f"realsystemd: boot ended in state {state!r}: "
                                     + self.run("systemctl", "--failed", "--no-legend",
                                                check=False).stdout)
            time.sleep(0.02)
        if state == "degraded":
            failed = self.run("systemctl", "--failed", "--no-legend",
                              "--plain", check=False).stdout.strip()
            sys.stderr.write(f"realsystemd: {self.name} booted degraded: {failed}\n")

    def console(self):
        """What nspawn and the container's console printed so far."""
        try:
            with open(os.path.join(self.state, "console.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return self.console_text

    def alive(self):
        """True while the container's PID 1 runs."""
        return self.leader is not None and _starttime(self.leader) == self.leader_start

    def down(self, timeout=15.0):
        """Halt the container and remove its cgroups and state. Idempotent."""
        if self.nspawn is not None and self.nspawn.poll() is None:
            # SIGTERM to nspawn is an orderly halt of the container
            self.nspawn.send_signal(signal.SIGTERM)
            try:
                self.nspawn.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                if self.alive():
                    os.kill(self.leader, signal.SIGKILL)
                self.nspawn.kill()
                self.nspawn.wait(timeout=10)
        if self.alive():
            # nspawn gone but PID 1 not (should not happen): the kernel ends
            # the whole pid namespace with it
            os.kill(self.leader, signal.SIGKILL)
        problems = [d for d in self.cgroups if not _remove_cgroup(d)]
        self.cgroups = problems
        if os.path.isdir(self.state):
            self.console_text = self.console()
            _remove_state_dir(self.state)
        if self in _live:
            _live.remove(self)
        self.leader = None
        if problems:
            raise ContainerError(f"realsystemd: could not remove cgroups {problems}")

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.down()

    # --- commands inside ---

    def _need_up(self):
        if self.leader is None:
            raise ContainerError(f"realsystemd: container {self.name} is not up")

    def _exec(self, where, prefix, argv, check, input, timeout, env, cwd=None):
        """Run prefix + argv in a new session; kill the whole session on
        timeout; returns a CompletedProcess with text output."""
        self._need_up()
        argv = [str(a) for a in argv]
        if isinstance(input, str):
            input = input.encode()
        p = subprocess.Popen(prefix + argv, env=env, cwd=cwd,
                             stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        t0 = time.monotonic()
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.communicate()
            raise
        cp = subprocess.CompletedProcess(argv, p.returncode,
                                         out.decode("utf-8", "replace"),
                                         err.decode("utf-8", "replace"))
        if TRACE:
            sys.stderr.write(f"realsystemd: [{time.monotonic() - t0:.2f}s] "
                             f"{where}: {' '.join(argv)[:200]} -> {p.returncode}\n")
        if check and cp.returncode != 0:
            raise CommandFailed(where, argv, cp)
        return cp

    def _nsenter(self, *flags):
        return ["nsenter", "-t", str(self.leader), *flags, "--"]

    def run(self, *argv, check=True, input=None, timeout=30.0, env=None):
        """Run argv inside every namespace of the container, as root, with a
        clean environment (plus env); returns a CompletedProcess (text)."""
        e = dict(CLEAN_ENV)
        if env:
            e.update(env)
        return self._exec(f"in {self.name}",
                          self._nsenter("-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w"),
                          argv, check, input, timeout, e)

    def sh(self, script, check=True, timeout=30.0, input=None):
        """Run a /bin/sh script inside."""
        return self.run("/bin/sh", "-c", script, check=check, timeout=timeout,
                        input=input)

    def net_argv(self, *argv):
        """argv prefixed so that it runs on the host in the container's
        network namespace only."""
        self._need_up()
        return self._nsenter("-n") + [str(a) for a in argv]

    def net(self, *argv, check=True, input=None, timeout=30.0, env=None, cwd=None):
        """Run a HOST command in the container's network namespace (its
        127.0.0.1), with the host's environment (plus env)."""
        e = dict(os.environ)
        if env:
            e.update(env)
        return self._exec(f"in the netns of {self.name}", self._nsenter("-n"),
                          argv, check, input, timeout, e, cwd)

    def net_popen(self, *argv, **kw):
        """Popen of a HOST command in the container's network namespace."""
        return subprocess.Popen(self.net_argv(*argv), **kw)

    def netns(self):
        """A context manager: while in it, the calling thread is in the
        container's network namespace. Sockets it makes stay there; child
        processes it starts (subprocess, erlnode.Node) are born there."""
        return _NetnsGuard(self)

    def cp(self, host_path, container_path, mode=None):
        """Copy a host file into the container. A container_path ending in
        "/" (or an existing directory) receives the file under its own name;
        missing directories are made. mode defaults to the host file's.
        A host directory is copied with its contents into container_path."""
        if os.path.isdir(host_path):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                tar.add(host_path, arcname=".")
            self.run("/bin/sh", "-c", 'mkdir -p "$1" && tar -C "$1" --no-same-owner -xf -',
                     "sh", container_path, input=buf.getvalue())
            return
        with open(host_path, "rb") as f:
            data = f.read()
        if mode is None:
            mode = os.stat(host_path).st_mode & 0o7777
        self.write(container_path, data, mode, basename=os.path.basename(host_path))

    def write(self, container_path, data, mode=0o644, basename=None):
        """Write bytes (or text) to a file inside the container."""
        script = ('d=$1; case $d in */) d=$d$2;; *) [ -d "$d" ] && d=$d/$2;; esac; '
                  'mkdir -p "$(dirname "$d")" && cat > "$d.rsd-tmp" && '
                  'chmod "$3" "$d.rsd-tmp" && mv -f "$d.rsd-tmp" "$d"')
        self.run("/bin/sh", "-c", script, "sh", container_path,
                 basename or "file", "%o" % mode, input=data)

    def read(self, container_path):
        """The text of a file inside the container."""
        return self.run("cat", container_path).stdout

    # --- systemd ---

    def systemctl(self, *args, check=True, timeout=60.0):
        """systemctl ARGS inside; returns the CompletedProcess."""
        return self.run("systemctl", "--no-pager", *args, check=check,
                        timeout=timeout)

    def daemon_reload(self):
        self.systemctl("daemon-reload")

    def prop(self, unit, name):
        """One property of a unit (systemctl show -p NAME --value UNIT)."""
        return self.run("systemctl", "show", "-p", name, "--value", "--", unit).stdout.strip()

    def props(self, unit, *names):
        """Several properties at once, as a dict."""
        out = self.run("systemctl", "show", *[f"-p{n}" for n in names], "--", unit).stdout
        res = {}
        for line in out.splitlines():
            k, _, v = line.partition("=")
            res[k] = v
        return res

    def journal(self, unit=None, *args):
        """The journal (of unit, if given) as plain message lines."""
        argv = ["journalctl", "--no-pager", "-q", "-o", "cat", *args]
        if unit:
            argv += ["-u", unit]
        return self.run(*argv, check=False).stdout

    def wait_prop(self, unit, name, pred, timeout=10.0, interval=0.05):
        """Poll a property until pred(value) holds; returns the value or
        raises with the last value seen."""
        if not callable(pred):
            want = pred
            pred = lambda v: v == want  # noqa: E731
        deadline = time.monotonic() + timeout
        while True:
            v = self.prop(unit, name)
            if pred(v):
                return v
            if time.monotonic() >= deadline:
                raise AssertionError(f"{unit} {name}={v!r} after {timeout} s")
            time.sleep(interval)

    def wait_active(self, unit, timeout=10.0):
        """Wait for ActiveState=active; fail early, with the unit's journal,
        if it fails."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.props(unit, "ActiveState", "SubState", "Result")
            if st.get("ActiveState") == "active":
                return st
            if st.get("ActiveState") == "failed" or time.monotonic() >= deadline:
                raise AssertionError(
                    f"{unit} is {st} after {timeout} s; journal:\n"
                    + self.journal(unit)[-3000:])
            time.sleep(0.05)

    def main_pid(self, unit):
        """The unit's MainPID as an int (0 when none), in the container's
        pid namespace."""
        return int(self.prop(unit, "MainPID") or 0)

    def host_pid(self, container_pid):
        """The host pid of a process inside the container, or None."""
        want = str(container_pid)
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/status") as f:
                    m = re.search(r"^NSpid:\s*(.*)$", f.read(), re.M)
            except OSError:
                continue
            if m:
                ids = m.group(1).split()
                if len(ids) > 1 and ids[-1] == want and self._in_our_pidns(int(d)):
                    return int(d)
        return None

    def _in_our_pidns(self, pid):
        try:
            return os.readlink(f"/proc/{pid}/ns/pid") == \
                os.readlink(f"/proc/{self.leader}/ns/pid")
        except OSError:
            return False

    # --- the project ---

    def install_epmdc(self, binary=None, unit_dir=None, reload=True):
        """Copy the built daemon to /usr/local/bin/epmd-c (the units'
        ExecStart=) and the project's systemd/*.socket and *.service to
        /etc/systemd/system, then daemon-reload."""
        binary = binary or epmdtest.EPMD_BIN
        unit_dir = unit_dir or os.path.join(ROOT, "systemd")
        if not os.access(binary, os.X_OK):
            raise ContainerError(f"realsystemd: no daemon binary at {binary}")
        self.cp(binary, "/usr/local/bin/epmd-c", mode=0o755)
        units = sorted(f for f in os.listdir(unit_dir)
                       if f.endswith((".socket", ".service")))
        if not units:
            raise ContainerError(f"realsystemd: no units in {unit_dir}")
        for u in units:
            self.cp(os.path.join(unit_dir, u), "/etc/systemd/system/", mode=0o644)
        if reload:
            self.daemon_reload()
        return units


class _NetnsGuard:
    """Moves the calling thread into a container's netns and back."""

    def __init__(self, container):
        self.c = container
        self.saved = None

    def __enter__(self):
        self.c._need_up()
        libc = ctypes.CDLL(None, use_errno=True)
        self.saved = os.open(f"/proc/self/task/{_gettid()}/ns/net", os.O_RDONLY)
        target = os.open(f"/proc/{self.c.leader}/ns/net", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                os.close(self.saved)
                raise OSError(err, f"setns into {self.c.name}: {os.strerror(err)}")
        finally:
            os.close(target)
        return self.c

    def __exit__(self, *exc):
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            if libc.setns(self.saved, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back to the host netns: {os.strerror(err)}")
        finally:
            os.close(self.saved)


def _gettid():
    return threading.get_native_id()


@atexit.register
def _down_all():
    for c in list(_live):
        try:
            c.down()
        except Exception as e:  # at exit: report, go on with the others
            sys.stderr.write(f"realsystemd: {c.name}: down failed: {e}\n")


def run_test_file(what, scope, install=True, epmdc_only=False):
    """Run a test file's tests in one container of their own: one skip line
    if this machine cannot boot one (or, with epmdc_only, in reference
    mode), else boot, install the daemon under test unless told not to, set
    scope["C"] to the container, run the tests and shut it down. Returns the
    exit status; the tests' own run ends the process with theirs."""
    import epmdtest as et
    why = impossible()
    if why:
        print(f"skip - {what}: {why}", flush=True)
        return 0
    if epmdc_only and et.REFERENCE_MODE:
        print(f"skip - {what}: an epmd-c extension (EPMD_REFERENCE_MODE=1)",
              flush=True)
        return 0
    if install and not os.access(et.EPMD_BIN, os.X_OK):
        print(f"not ok - {what}: no daemon binary at {et.EPMD_BIN}",
              flush=True)
        return 1
    t0 = time.monotonic()
    c = scope["C"] = Container()
    try:
        c.up()
    except Exception as e:
        print("not ok - boot a real systemd in a container", flush=True)
        sys.stderr.write(f"{e}\n")
        return 1
    sys.stderr.write(f"# container {c.name} booted in {c.boot_seconds:.2f} s\n")
    if install:
        c.install_epmdc(et.EPMD_BIN)
    try:
        et.run_tests()
    finally:
        t = time.monotonic()
        c.down()
        sys.stderr.write(f"# container down in {time.monotonic() - t:.2f} s; "
                         f"file total {time.monotonic() - t0:.1f} s\n")


def main(argv):
    """python3 tests/lib/realsystemd.py [CMD...]: boot, run CMD (default: a
    short report), print timings, halt."""
    why = impossible()
    if why:
        print(f"skip: {why}")
        return 0
    t0 = time.monotonic()
    with Container() as c:
        print(f"booted {c.name} in {c.boot_seconds:.2f} s "
              f"(systemd {c.run('systemctl', '--version').stdout.split()[1]}, host pid {c.leader})")
        cmd = argv or ["systemctl", "is-system-running"]
        p = c.run(*cmd, check=False)
        sys.stdout.write(p.stdout)
        sys.stderr.write(p.stderr)
        t1 = time.monotonic()
    print(f"down in {time.monotonic() - t1:.2f} s; total {time.monotonic() - t0:.2f} s")
    return p.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
