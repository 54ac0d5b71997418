#!/usr/bin/env python3
"""Access lists and exposure messages through the shipped units, on a real
systemd (tests/lib/realsystemd.py).

epmd-c.service reads EnvironmentFile=-/etc/default/epmd-c and passes
$EPMD_C_OPTS to the daemon. Checked here: without the file the service
starts as before, and, since epmd-c.socket is one [::]:4369 socket, the
journal has the notice that NAMES is open to anyone, naming -names_from;
the options of the file reach the daemon and take effect; a bad item fails
the service with a journal line naming it; an ERL_EPMD_ADDRESS that the
socket unit overrides draws one warning with what is really served. All
inside the container's own network namespace.
"""

import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import epmdtest as et  # noqa: E402
import realsystemd  # noqa: E402

SOCKET = "epmd-c.socket"
SERVICE = "epmd-c.service"
DEFAULTS = "/etc/default/epmd-c"
DROPIN = "/etc/systemd/system/epmd-c.service.d/access-test.conf"
PORT = 4369
C = None


def fresh(defaults=None, dropin=None):
    """The service stopped, the socket listening, /etc/default/epmd-c and
    a drop-in as given (None: absent); returns the time, for messages."""
    C.systemctl("stop", SERVICE, check=False)
    C.run("rm", "-f", DEFAULTS, DROPIN)
    if defaults is not None:
        C.write(DEFAULTS, defaults)
    if dropin is not None:
        C.write(DROPIN, "[Service]\n" + dropin)
    C.daemon_reload()
    C.systemctl("reset-failed", check=False)
    C.systemctl("start", SOCKET)
    return C.run("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()


def journal_of_run():
    """What the daemon of the service's latest run logged (the journal
    lines carrying its invocation ID: no earlier run's lines)."""
    inv = C.prop(SERVICE, "InvocationID")
    return C.journal(None, f"_SYSTEMD_INVOCATION_ID={inv}") if inv else ""


def activate():
    """Connect once (the socket starts the service); its NAMES reply."""
    with C.netns():
        reply = et.names(PORT)
    C.wait_active(SERVICE, timeout=10)
    return reply


def cmdline():
    pid = C.main_pid(SERVICE)
    return C.run("cat", f"/proc/{pid}/cmdline").stdout.split("\0")


def wait_journal(since, pattern, timeout=5.0):
    """The latest run's journal lines, once pattern appears (or at the
    timeout). since is fresh()'s time, kept for the failure message."""
    deadline = time.monotonic() + timeout
    while True:
        text = journal_of_run()
        if re.search(pattern, text) or time.monotonic() >= deadline:
            return text
        time.sleep(0.1)


@et.test
def units_without_defaults_file_serve_and_note_names_exposure():
    since = fresh()
    et.eq(activate()[:4], PORT.to_bytes(4, "big"), "NAMES header")
    et.eq(cmdline()[:2], ["/usr/local/bin/epmd-c", "-systemd"], "cmdline")
    text = wait_journal(since, r"-names_from")
    et.check(re.search(r"listening on \[::\]:4369 \(from systemd, fd 3\)",
                       text), f"inherited socket not logged: {text}")
    notes = [ln for ln in text.splitlines() if "-names_from" in ln]
    et.eq(len(notes), 1, f"exposure notices: {notes}")
    et.check("NAMES" in notes[0] and "[::]:4369" in notes[0], notes[0])


@et.test
def units_pass_epmd_c_opts_from_etc_default():
    since = fresh(defaults='EPMD_C_OPTS="-names_from 10.0.0.0/8,local '
                           '-register_from 172.17.0.0/16"\n')
    activate()
    et.eq(cmdline()[:6], ["/usr/local/bin/epmd-c", "-systemd",
                          "-names_from", "10.0.0.0/8,local",
                          "-register_from", "172.17.0.0/16"], "cmdline")
    text = wait_journal(since, r"ready")
    # -names_from no longer matches everyone: no exposure notice.
    et.check("-names_from LIST" not in text,
             f"exposure notice despite -names_from: {text}")
    with C.netns():
        et.check(et.names(PORT, "::1").startswith(b"\x00\x00\x11\x11"),
                 "local NAMES still answered")


@et.test
def units_fail_on_a_bad_item_and_say_which():
    since = fresh(defaults='EPMD_C_OPTS="-lookup_from 10.0.0.0/33"\n')
    with C.netns():
        try:
            et.names(PORT)
        except OSError:
            pass
    C.wait_prop(SERVICE, "ActiveState", lambda v: v in ("failed",
                "inactive"), timeout=10)
    text = wait_journal(since, r"10\.0\.0\.0/33")
    et.check(re.search(r'-lookup_from: bad item "10\.0\.0\.0/33"', text),
             f"journal does not name the item: {text}")
    et.eq(C.prop(SERVICE, "ExecMainStatus"), "1", "exit status")


@et.test
def units_warn_that_erl_epmd_address_is_ignored():
    since = fresh(dropin="Environment=ERL_EPMD_ADDRESS=127.0.0.1\n")
    activate()
    text = wait_journal(since, r"is ignored")
    warn = [ln for ln in text.splitlines() if "is ignored" in ln]
    et.eq(len(warn), 1, f"warnings: {warn}")
    et.check("ERL_EPMD_ADDRESS=127.0.0.1" in warn[0] and
             "serving [::]:4369" in warn[0], warn[0])


def main():
    return realsystemd.run_test_file("access units on a real systemd", globals(), epmdc_only=True)

if __name__ == "__main__":
    sys.exit(main())
