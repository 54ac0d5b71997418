#!/usr/bin/env python3
"""The old/unused history DUMP shows stays at its limit (PROTOCOL.md 1.5, 8.4).

The reference evicts from the history only when a new name registers, so
names that register and leave grow it without bound. epmd-c keeps exactly
1000 old/unused records (5 with any -d) however names come and go, and a
name still in the history keeps counting its creation from its last one.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

import epmdtest as et  # noqa: E402
from epmdtest import check, epmdc, eq, eventually  # noqa: E402

OLD_PREFIX = b"old/unused name <"
ACTIVE_PREFIX = b"active name     <"
# Registrations held open at once: below any default descriptor limit.
BATCH = 250


def dump_lines(d):
    """The DUMP body as a list of lines, header and NULs removed."""
    data = et.dump(d)
    check(len(data) >= 4, f"DUMP reply too short: {data!r}")
    eq(data[:4], et.hdr(d), "DUMP header")
    return [x for x in data[4:].split(b"\n\x00") if x]


def old_names(d):
    """The names DUMP lists as old/unused, oldest first."""
    out = []
    for text in dump_lines(d):
        if text.startswith(OLD_PREFIX):
            out.append(text[len(OLD_PREFIX):text.index(b">, port = ")])
    return out


def active_count(d):
    """How many active lines DUMP shows."""
    return sum(1 for x in dump_lines(d) if x.startswith(ACTIVE_PREFIX))


def come_and_go(d, names):
    """Register the names BATCH at a time, then close each batch; wait
    until none is active."""
    for i in range(0, len(names), BATCH):
        socks = [et.register_ok(d, n)[0] for n in names[i:i + BATCH]]
        for s in socks:
            s.close()
        check(eventually(lambda: active_count(d) == 0, 10.0),
              "registrations still active after their sockets closed")


@epmdc(timeout=120)
def test_1500_names_that_come_and_go_leave_exactly_1000_old_records():
    names = ["h%04d" % i for i in range(1500)]
    with et.daemon() as d:
        come_and_go(d, names)
        old = old_names(d)
        eq(len(old), 1000, "old/unused records in DUMP")
        # The first two batches went; the last four stay. Within a batch
        # the order is the order the daemon saw the closes in.
        eq(set(old), {n.encode() for n in names[500:]},
           "names kept in the history")


@epmdc(timeout=120)
def test_with_debug_names_that_come_and_go_leave_exactly_5_old_records():
    with et.daemon("-d") as d:
        come_and_go(d, ["d%04d" % i for i in range(300)])
        eq(len(old_names(d)), 5, "old/unused records in DUMP")
        # One at a time, so the order is known: the last five, oldest first.
        for i in range(7):
            s, _ = et.register_ok(d, "last%d" % i)
            et.drop(d, s, "last%d" % i)
        eq(old_names(d), [b"last2", b"last3", b"last4", b"last5", b"last6"],
           "old/unused records in DUMP")


@epmdc(timeout=120)
def test_name_in_full_history_comes_back_one_above_its_creation():
    with et.daemon("-d") as d:
        s, first = et.register_ok(d, "keep")
        et.drop(d, s, "keep")
        come_and_go(d, ["f%d" % i for i in range(4)])
        eq(len(old_names(d)), 5, "history full")
        s, again = et.register_ok(d, "keep")
        eq(again, first + 1, "creation of the name back from the history")
        s.close()


if __name__ == "__main__":
    et.run_tests()
