#!/usr/bin/env python3
"""Node names cannot drive the terminal that lists them (epmd-c's own).

Any local user can register a name holding ESC, BEL and the like. When the
client's stdout is a terminal, -names, -dump and -stop show such bytes
escaped (\\e, \\a, \\xHH, and \\\\ for a backslash); through a pipe or a file
the bytes stay exactly as OTP's client prints them.
"""

import os
import pty
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

import epmdtest as et  # noqa: E402
from epmdtest import check, epmdc, eq  # noqa: E402

TITLE = b"\x1b]0;owned\x07x"          # set the window title
CLEAR = b"\x1b[2Jy"                    # clear the screen
C1_CSI = "\u009b2Jz".encode()          # 8-bit CSI, as UTF-8
BACKSLASH = b"a\\eb"                   # looks like an escape already
SMILE = et.SMILE.encode()


def on_pty(argv, timeout=10.0):
    """Run argv with stdout on a fresh pty; returns (rc, bytes shown).
    The pty's own newline translation is turned off."""
    master, slave = pty.openpty()
    try:
        import termios
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.ONLCR
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave,
                             stderr=subprocess.PIPE)
        os.close(slave)
        slave = -1
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if not r:
                if p.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:     # EIO: the other side closed
                break
            if not chunk:
                break
            out += chunk
        rc = p.wait(timeout=max(0.1, deadline - time.monotonic()))
        return rc, out
    finally:
        if slave != -1:
            os.close(slave)
        os.close(master)


def client(d, *args):
    """The argv of the client under test against d."""
    et.need_binary(et.EPMD_BIN)
    return [et.EPMD_BIN, "-port", str(d.port)] + list(args)


def with_names(names, fn, relaxed=False):
    """Register names in a fresh daemon and call fn(daemon)."""
    args = ["-relaxed_command_check"] if relaxed else []
    with et.daemon(*args) as d:
        socks = [et.register_ok(d, n)[0] for n in names]
        try:
            fn(d)
        finally:
            for s in socks:
                s.close()


@epmdc
def test_names_on_a_terminal_escapes_esc_and_bel():
    def fn(d):
        rc, out = on_pty(client(d, "-names"))
        eq(rc, 0, "exit status")
        check(b"\x1b" not in out and b"\x07" not in out,
              f"raw control bytes reached the terminal: {out!r}")
        check(b"name \\e]0;owned\\ax at port 5001\n" in out, f"shown {out!r}")
        check(b"name \\e[2Jy at port 5001\n" in out, f"shown {out!r}")
    with_names([TITLE, CLEAR], fn)


@epmdc
def test_names_through_a_pipe_is_byte_exact():
    def fn(d):
        rc, out, err = et.run(client(d, "-names"))
        eq((rc, err), (0, b""), "exit and stderr")
        eq(out, b"epmd: up and running on port %d with data:\n" % d.port
           + et.line(CLEAR, 5001) + et.line(TITLE, 5001), "stdout")
    with_names([TITLE, CLEAR], fn)


@epmdc
def test_names_on_a_terminal_escapes_c1_controls_and_backslash():
    def fn(d):
        rc, out = on_pty(client(d, "-names"))
        eq(rc, 0, "exit status")
        check(b"name \\xc2\\x9b2Jz at port" in out, f"shown {out!r}")
        check(b"name a\\\\eb at port" in out, f"shown {out!r}")
    with_names([C1_CSI, BACKSLASH], fn)


@epmdc
def test_names_on_a_terminal_keeps_printable_utf8():
    def fn(d):
        rc, out = on_pty(client(d, "-names"))
        eq(rc, 0, "exit status")
        check(b"name caf\xc3\xa9" + SMILE + b" at port 5001\n" in out,
              f"shown {out!r}")
    with_names([b"caf\xc3\xa9" + SMILE], fn)


@epmdc
def test_names_on_a_terminal_keeps_utf8_cut_between_reads():
    # Over 4 kB of 4-byte characters: reads end inside characters.
    names = [SMILE * 7 + b"%03d" % i for i in range(300)]

    def fn(d):
        rc, out = on_pty(client(d, "-names"))
        eq(rc, 0, "exit status")
        check(b"\\x" not in out, f"a character came out escaped: {out!r}")
        for n in names:
            check(b"name " + n + b" at port 5001\n" in out, f"{n!r} missing")
    with_names(names, fn)


@epmdc
def test_dump_on_a_terminal_escapes_names_and_drops_line_nuls():
    def fn(d):
        rc, out = on_pty(client(d, "-dump"))
        eq(rc, 0, "exit status")
        check(b"\x1b" not in out and b"\x00" not in out, f"shown {out!r}")
        check(b"active name     <\\e]0;owned\\ax> at port 5001, fd = " in out,
              f"shown {out!r}")
    with_names([TITLE], fn)


@epmdc
def test_dump_through_a_pipe_keeps_esc_and_nuls():
    def fn(d):
        rc, out, _ = et.run(client(d, "-dump"))
        eq(rc, 0, "exit status")
        check(b"active name     <" + TITLE + b"> at port 5001, fd = " in out,
              f"stdout {out!r}")
        check(out.endswith(b"\n\x00"), f"stdout {out!r}")
    with_names([TITLE], fn)


@epmdc
def test_stop_on_a_terminal_prints_the_reply_as_usual():
    def fn(d):
        rc, out = on_pty(client(d, "-stop", TITLE.decode()))
        eq((rc, out), (0, b"STOPPED\n"), "result")
    with_names([TITLE], fn, relaxed=True)


if __name__ == "__main__":
    et.run_tests()
