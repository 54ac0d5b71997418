#!/usr/bin/env python3
"""Differential byte tests: the real OTP epmd and the daemon under test.

Both daemons run side by side on two free loopback ports with the same flags.
Every script (a scripted conversation, see tests/lib/scripts.py) is played
against each of them at once, and the two transcripts must be equal byte for
byte.

Masked in the transcripts, and nothing else (scripts.MASKS has the details):
  * creation values in ALIVE2 replies: time-seeded, so each is replaced by
    its rule ('prev+1' = that name's previous creation + 1; for a 16-bit
    reply the offset modulo 3 from the previous one; for a name's first
    creation 'fresh' = not below now+1, since the reference gives names
    registered in the same second equal values where epmd-c may count
    ahead of the clock to keep them unique); the rules must match;
  * 'fd = N' in DUMP replies and in -dump output: descriptor numbers are
    implementation details;
  * the 4-byte NAMES/DUMP header and "on port N" in CLI output: each daemon
    has its own port; the header is checked to equal that daemon's own port
    before it is replaced by <PORT>;
  * reset versus orderly EOF on a close: both are recorded as 'closed'.

Left out of the comparison on purpose (PROTOCOL.md 8.4, tested as epmd-c
behaviour in test_proto_*.py):
  * whether the connection of a failed registration (duplicate name, bad
    UTF-8, too long a name or extra) stays open after the error reply: the
    scripts read the error reply's bytes and never probe the connection;
  * PORT_PLEASE2 of a 255-character name (registered or not): the reference
    closes, epmd-c answers; the scripts look up 254 and 256 characters only;
  * how soon an idle connection is closed: only 'closed with nothing' within
    4 s under -packet_timeout 1 is compared;
  * the NAMES header under -port 90905 or ERL_EPMD_PORT=abc (configured
    port versus the port the client connected to): not scripted;
  * which creation a brand-new name gets after an eviction from a full
    old/unused list: not scripted.

The non-local-peer scripts (group "remote") run both daemons in a pair of
network namespaces (tests/lib/netns.py) and play their remote=True steps
from a genuinely remote peer at 198.51.100.2 / 2001:db8::2; without root or
ip(8) they print a skip line.

Environment: EPMD_BIN (the daemon under test), REF_EPMD (the reference).
"""

import contextlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))

import epmdtest as et  # noqa: E402
import netns  # noqa: E402
from epmdtest import SMILE, raw_alive2  # noqa: E402
from epmdtest import frame as F  # noqa: E402
from scripts import (Alive, Cli, Dribble, Dump, Exit,  # noqa: E402
                     Gone, Lookup, Names, Open, Probe, Read, Reg, Req,
                     Runner, Send, Shut, Start, Unreg, Wait, compare,
                     play_pair)


def A(name, **kw):
    """An ALIVE2_REQ frame."""
    return F(et.alive2_body(name, **kw))


MAXFRAME_ALIVE2 = et.alive2_body(SMILE * 255, extra=b"e" * 1020)

# --------------------------------------------------------------------------
# Scripts, by group. A group shares one pair of daemons (state carries over
# from script to script identically on both sides), unless it is 'fresh'.

PLAIN_BASIC = [
    ("names_empty_daemon_header_only", [Names()]),
    ("dump_empty_daemon_header_only", [Dump()]),
    ("alive2_v6_register_lookup_names_dump", [
        Reg(1, "foo", port=5001), Lookup("foo"), Lookup(b"foo\0"),
        Lookup("xyz"), Names(), Dump(), Unreg(1, "foo", 5001)]),
    ("alive2_v5_hidden_register_and_lookup", [
        Reg(1, "bar", port=5002, node_type=72, high=5, low=5),
        Lookup("bar"), Names(), Unreg(1, "bar", 5002)]),
    ("names_and_dump_two_nodes_newest_first", [
        Reg(1, "foo", port=5001), Reg(2, "bar", port=5002, high=5),
        Names(), Dump(), Unreg(2, "bar", 5002), Unreg(1, "foo", 5001),
        Dump()]),
    ("alive2_duplicate_v6_error_reply", [
        Reg(1, "dup6", port=5001), Reg(2, "dup6", port=5009), Names(),
        Lookup("dup6")]),
    ("alive2_duplicate_v5_error_reply", [
        Reg(1, "dup5", port=5001, high=5), Reg(2, "dup5", high=5, low=5),
        Names()]),
    ("alive2_duplicate_v6_of_v5_node_error_reply", [
        Reg(1, "dupx", port=5001, high=5), Reg(2, "dupx", high=6),
        Reg(3, "dupx", high=0, low=0)]),
    ("kill_with_nodes_not_relaxed_gets_NO", [
        Reg(1, "foo"), Req(F(b"k")), Alive(), Names()]),
    ("kill_with_junk_gets_NO", [Reg(1, "foo"), Req(F(b"kxyz")), Alive()]),
    ("stop_without_relaxed_closed_silently", [
        Reg(1, "foo"), Req(F(b"sfoo")), Probe(1, 0.3), Names()]),
    ("legacy_alive_req_a_closed", [Req(F(b"a\x13\x89foo")), Names()]),
    ("legacy_port_req_p_closed", [Req(F(b"pfoo"))]),
    ("unknown_codes_closed", [
        Req(F(b"Y")), Req(F(b"\x00")), Req(F(b"!foo")), Req(F(b"N")),
        Req(F(b"w"))]),
    ("unreg_by_eof_then_dump_shows_old_unused", [
        Reg(1, "eofnode", port=5003), Unreg(1, "eofnode", 5003), Names(),
        Dump(), Lookup("eofnode")]),
    ("unreg_by_half_close", [
        Reg(1, "halfnode", port=5004), Shut(1), Read(1),
        Gone(b"halfnode", 5004), Names()]),
    ("unreg_by_stray_byte", [
        Reg(1, "straynode", port=5005), Send(1, b"x"), Read(1),
        Gone(b"straynode", 5005), Names()]),
    ("unreg_by_second_alive2_on_same_socket", [
        Reg(1, "twice", port=5006), Send(1, A("twice2", port=5007)), Read(1),
        Gone(b"twice", 5006), Names(), Lookup("twice2")]),
    ("reregister_v6_is_previous_plus_1", [
        Reg(1, "rr6"), Unreg(1, "rr6"), Reg(1, "rr6"), Unreg(1, "rr6"),
        Reg(1, "rr6"), Unreg(1, "rr6")]),
    ("reregister_v5_cycles_mod_3", [
        Reg(1, "rr5"), Unreg(1, "rr5"),
        Reg(1, "rr5", high=5), Unreg(1, "rr5"),
        Reg(1, "rr5", high=5), Unreg(1, "rr5"),
        Reg(1, "rr5", high=5), Unreg(1, "rr5"),
        Reg(1, "rr5", high=6), Unreg(1, "rr5")]),
    ("reregister_with_other_port_and_type", [
        Reg(1, "moved", port=6001), Unreg(1, "moved", 6001),
        Reg(1, "moved", port=6002, node_type=72, extra=b"x"),
        Lookup("moved"), Dump()]),
]

PLAIN_FRAMING = [
    ("frame_length_zero_closed", [Req(b"\x00\x00")]),
    ("frame_length_zero_with_data_closed", [Req(b"\x00\x00nnnn")]),
    ("frame_names_with_junk_answered", [Req(b"\x00\x04nxyz")]),
    ("frame_two_requests_in_one_write_closed", [Req(F(b"n") + F(b"n"))]),
    ("frame_names_plus_one_byte_closed", [Req(F(b"n") + b"x")]),
    ("frame_alive2_and_names_in_one_write_closed", [
        Req(A("pipe") + F(b"n")), Names(), Lookup("pipe")]),
    ("frame_length_3057_answered", [Req(F(b"n" + b"x" * 3056))]),
    ("frame_length_3058_closed", [Req(F(b"n" + b"x" * 3057))]),
    ("frame_length_ffff_closed", [Req(b"\xff\xff"), Req(b"\xff\xffn")]),
    ("frame_eof_mid_body_closed", [
        Open(1), Send(1, b"\x00\x05nx"), Shut(1), Read(1)]),
    ("frame_eof_after_header_closed", [
        Open(1), Send(1, b"\x00\x03"), Shut(1), Read(1)]),
    ("frame_eof_after_one_byte_closed", [
        Open(1), Send(1, b"\x00"), Shut(1), Read(1)]),
    ("frame_dump_with_junk_answered", [Req(F(b"dxyz"))]),
    ("frame_header_split_from_body_served", [
        Open(1), Send(1, b"\x00"), Wait(0.2), Send(1, b"\x01"), Wait(0.2),
        Send(1, b"n"), Read(1)]),
    ("frame_dribbled_names_served", [
        Open(1), Dribble(1, F(b"n"), 0.2), Read(1)]),
    ("frame_dribbled_lookup_served", [
        Reg(1, "drib", port=5020), Open(2), Dribble(2, F(b"zdrib"), 0.2),
        Read(2)]),
    ("frame_dribbled_alive2_registers", [
        Open(1), Dribble(1, A("drib2", port=5021), 0.1), Read(1, 6),
        Names(), Lookup("drib2")]),
    ("frame_half_close_after_full_request_served", [
        Open(1), Send(1, F(b"n")), Shut(1), Read(1)]),
]

PLAIN_PORT2 = [
    ("port2_empty_name_closed", [Req(F(b"z"))]),
    ("port2_only_nul_closed", [Req(F(b"z\0"))]),
    ("port2_inner_nul_closed", [Req(F(b"zfo\0o"))]),
    ("port2_two_trailing_nuls_closed", [
        Reg(1, "foo"), Req(F(b"zfoo\0\0")), Lookup(b"foo\0")]),
    ("port2_invalid_utf8_closed", [Req(F(b"z\xff")), Req(F(b"zab\xfe"))]),
    ("port2_overlong_utf8_closed", [Req(F(b"z\xc0\x80"))]),
    ("port2_surrogate_closed", [Req(F(b"z\xed\xa0\x80"))]),
    ("port2_254_chars_unknown_gets_77_01", [Lookup("a" * 254)]),
    ("port2_256_chars_closed", [Lookup("a" * 256)]),
    ("port2_254_4byte_chars_unknown_gets_77_01", [Lookup(SMILE * 254)]),
    ("port2_lookup_is_case_sensitive", [
        Reg(1, "Foo"), Lookup("foo"), Lookup("Foo"), Lookup("FOO")]),
    ("port2_old_unused_name_not_found", [
        Reg(1, "gone1"), Unreg(1, "gone1"), Lookup("gone1")]),
    ("port2_utf8_name_found", [
        Reg(1, "n\u00f8de\u00e9", port=5011), Lookup("n\u00f8de\u00e9")]),
]

PLAIN_ALIVE2 = [
    ("alive2_name_254_chars_registers_and_is_found", [
        Reg(1, "b" * 254, port=5040), Lookup("b" * 254), Names()]),
    ("alive2_name_255_chars_registers", [
        Reg(1, "c" * 255, port=5041), Names(), Dump()]),
    ("alive2_name_256_chars_error", [Reg(1, "d" * 256), Names()]),
    ("alive2_name_255_4byte_chars_registers", [
        Reg(1, SMILE * 255, port=5042), Names()]),
    ("alive2_name_256_4byte_chars_error", [Reg(1, SMILE * 256)]),
    ("alive2_name_254_4byte_chars_found", [
        Reg(1, SMILE * 254, port=5043), Lookup(SMILE * 254)]),
    ("alive2_name_invalid_utf8_ff_fe_error", [Reg(1, b"\xff\xfe")]),
    ("alive2_name_overlong_c0_80_error", [Reg(1, b"x\xc0\x80")]),
    ("alive2_name_surrogate_error", [Reg(1, b"\xed\xa0\x80")]),
    ("alive2_name_above_10ffff_error", [Reg(1, b"\xf4\x90\x80\x80")]),
    ("alive2_name_truncated_utf8_error", [Reg(1, b"ab\xe2\x82")]),
    ("alive2_name_inner_nul_closed", [
        Open(1), Send(1, A(b"fo\0o")), Read(1), Names()]),
    ("alive2_name_trailing_nul_closed", [
        Open(1), Send(1, A(b"foo\0")), Read(1)]),
    ("alive2_empty_name_one_byte_extra_registers", [
        Reg(1, b"", port=6006, extra=b"x"), Names(), Lookup(b""), Dump()]),
    ("alive2_empty_name_empty_extra_closed", [
        Open(1), Send(1, A(b"")), Read(1), Names()]),
    ("alive2_extra_1020_bytes_registers_and_is_echoed", [
        Reg(1, "ext20", port=5044, extra=b"e" * 1020), Lookup("ext20")]),
    ("alive2_extra_1021_bytes_error", [Reg(1, "ext21", extra=b"e" * 1021)]),
    ("alive2_extra_with_nuls_echoed", [
        Reg(1, "nulx", port=5045, extra=b"ABC\0\0"), Lookup("nulx")]),
    ("alive2_extra_not_utf8_accepted", [
        Reg(1, "binx", port=5046, extra=b"\xff\xfe\xc0\x80"), Lookup("binx")]),
    ("alive2_body_9_bytes_closed", [Req(F(et.alive2_body("x")[:9]))]),
    ("alive2_body_11_bytes_closed", [Req(F(et.alive2_body(b"")[:11]))]),
    ("alive2_body_12_bytes_closed", [Req(F(et.alive2_body(b"")[:12]))]),
    ("alive2_nlen_beyond_data_closed", [Req(raw_alive2(10, b"abc\x00\x00"))]),
    ("alive2_elen_beyond_data_closed", [Req(raw_alive2(3, b"abc\x00\x05xy"))]),
    ("alive2_elen_missing_closed", [Req(raw_alive2(3, b"abc"))]),
    ("alive2_elen_half_missing_closed", [Req(raw_alive2(3, b"abc\x00"))]),
    ("alive2_trailing_junk_accepted", [
        Open(1), Send(1, F(et.alive2_body("junky", port=5047) + b"JUNK")),
        Read(1, 6), Lookup("junky")]),
    ("alive2_type0_high0_low9_gets_16bit_reply_and_echo", [
        Reg(1, "odd", port=5048, node_type=0, high=0, low=9),
        Lookup("odd")]),
    ("alive2_max_fields_get_32bit_reply_and_echo", [
        Reg(1, "maxf", port=65535, node_type=255, proto=255, high=65535,
            low=65535), Lookup("maxf")]),
    ("alive2_type_h_protocol_1_echoed", [
        Reg(1, "cnode", port=5049, node_type=104, proto=1, high=7, low=1),
        Lookup("cnode")]),
    ("alive2_length_3057_accepted", [
        Open(1), Send(1, F(MAXFRAME_ALIVE2
                           + b"j" * (3057 - len(MAXFRAME_ALIVE2)))),
        Read(1, 6), Names()]),
    ("alive2_length_3058_closed", [
        Req(F(MAXFRAME_ALIVE2 + b"j" * (3058 - len(MAXFRAME_ALIVE2)))),
        Names()]),
]

PLAIN_NET = [
    ("ipv6_loopback_register_found_via_ipv4", [
        Reg(1, "six", host="::1", port=5030), Lookup("six"),
        Lookup("six", host="::1"), Names(host="::1"), Dump(host="::1")]),
    ("ipv6_loopback_every_request", [
        Req(F(b"n"), host="::1"), Req(F(b"d"), host="::1"),
        Reg(1, "six2", host="::1", port=5032), Req(F(b"k"), host="::1"),
        Req(F(b"zsix2"), host="::1"), Req(F(b"ssix2"), host="::1"),
        Reg(2, "six3", host="::1", port=5033), Req(F(b"n"), host="::1")]),
    ("source_127_0_0_2_is_local", [
        Names(source=("127.0.0.2", 0)),
        Reg(1, "two", source=("127.0.0.2", 0), port=5031), Lookup("two"),
        Dump(source=("127.0.0.2", 0)),
        Req(F(b"k"), source=("127.0.0.2", 0))]),
]

PLAIN_CLI = [
    ("cli_names_empty", [Cli("-names")]),
    ("cli_names_with_nodes", [
        Reg(1, "clia", port=5050), Reg(2, "clib", port=5051),
        Cli("-names")]),
    ("cli_dump_with_nul_separators", [
        Reg(1, "clid", port=5052), Cli("-dump")]),
    ("cli_started", [Cli("-started")]),
    ("cli_kill_with_nodes_not_allowed", [
        Reg(1, "clik"), Cli("-kill"), Alive(), Names()]),
    ("cli_stop_not_relaxed", [Reg(1, "clis"), Cli("-stop", "clis"),
                              Probe(1, 0.3), Names()]),
    ("cli_stop_name_too_long", [Cli("-stop", "a" * 1001)]),
    ("cli_stop_name_of_1000_chars", [Cli("-stop", "a" * 1000)]),
    ("second_daemon_on_same_port_exits_0", [
        Start("-port", "{port}", "-address", "127.0.0.1"),
        Start("-d", "-port", "{port}", "-address", "127.0.0.1"), Alive(),
        Names()]),
]

LONG = "x" * 150
MANY = [
    # Replies of 100+ kB, larger than epmd-c's 64 kB listing chunk, with
    # half of the nodes gone (DUMP spans the active and old lists).
    ("names_and_dump_600_long_names_span_chunks",
     [Reg(i, "%s%03d" % (LONG, i), port=9000 + i) for i in range(600)]
     + [Names(), Dump()]
     + [Unreg(i, "%s%03d" % (LONG, i), 9000 + i) for i in range(0, 600, 2)]
     + [Names(), Dump()]),
    ("names_and_dump_200_nodes_newest_first",
     [Reg(i, "n%03d" % i, port=7000 + i) for i in range(200)]
     + [Names(), Dump(), Lookup("n000"), Lookup("n199")]
     + [Unreg(i, "n%03d" % i, 7000 + i) for i in range(0, 200, 2)]
     + [Names(), Dump()]),
]

RELAXED = [
    ("stop_registered_node_relaxed", [
        Reg(1, "victim", port=5060), Req(F(b"svictim")), Read(1), Names(),
        Dump(), Lookup("victim")]),
    ("stop_unknown_name_noexiststopped", [Req(F(b"snothere"))]),
    ("stop_empty_name_closed", [Req(F(b"s"))]),
    ("stop_only_nul", [Req(F(b"s\0"))]),
    ("stop_trailing_nul_stops", [
        Reg(1, "n2", port=5061), Req(F(b"sn2\0")), Read(1), Names()]),
    ("stop_long_name_not_checked", [Req(F(b"s" + b"a" * 2000))]),
    ("stop_invalid_utf8_name_not_checked", [Req(F(b"s\xff\xfe"))]),
    ("stop_old_unused_name", [
        Reg(1, "stale"), Unreg(1, "stale"), Req(F(b"sstale"))]),
    ("cli_stop_registered_relaxed", [
        Reg(1, "live1", port=5062), Cli("-stop", "live1"), Read(1), Names()]),
    ("cli_stop_unknown_relaxed", [Cli("-stop", "nothere")]),
    ("relaxed_keeps_other_rules", [
        Req(F(b"s")), Req(F(b"pfoo")), Req(F(b"n") + b"x"),
        Reg(1, "rk"), Reg(2, "rk")]),
]

RELAXED_ENV = [
    ("relaxed_via_empty_env_variable_stop_honoured", [
        Reg(1, "envnode", port=5063), Req(F(b"senvnode")), Read(1),
        Req(F(b"snothere")), Names()]),
]

FRESH_PLAIN = [
    ("kill_empty_daemon_ok_and_exit_0", [Req(F(b"k")), Exit()]),
    ("kill_with_only_old_records_ok", [
        Reg(1, "old1"), Unreg(1, "old1"), Req(F(b"k")), Exit()]),
    ("kill_after_failed_duplicate_ok", [
        Reg(1, "kd"), Reg(2, "kd"), Unreg(1, "kd"), Req(F(b"k")), Exit()]),
    ("cli_kill_empty_killed", [Cli("-kill"), Exit()]),
]

FRESH_RELAXED = [
    ("kill_relaxed_with_nodes_ok_nodes_see_eof", [
        Reg(1, "kn1", port=5070), Reg(2, "kn2", port=5071, high=5),
        Req(F(b"k")), Read(1), Read(2), Exit()]),
    ("cli_kill_relaxed_with_node_killed", [
        Reg(1, "kn3", port=5072), Cli("-kill"), Read(1), Exit()]),
]

REMOTE = [
    ("nonlocal_names_answered", [
        Reg(1, "localnode", port=8000), Names(remote=True)]),
    ("nonlocal_port2_answered", [
        Reg(1, "localnode", port=8000), Lookup("localnode", remote=True),
        Lookup("nothere", remote=True)]),
    ("nonlocal_alive2_closed_nothing_registered", [
        Req(A("remote", port=8001), remote=True), Names(),
        Lookup("remote")]),
    ("nonlocal_dump_closed", [Reg(1, "localnode", port=8000),
                              Req(F(b"d"), remote=True)]),
    ("nonlocal_kill_closed_daemon_alive", [
        Reg(1, "localnode", port=8000), Req(F(b"k"), remote=True), Alive(),
        Names()]),
    ("nonlocal_stop_closed_node_kept", [
        Reg(1, "keep", port=8002), Req(F(b"skeep"), remote=True),
        Probe(1, 0.3), Names()]),
    ("nonlocal_v6_alive2_and_kill_closed", [
        Req(A("remote6"), host="::1", remote=True, k="x"),
        Req(F(b"k"), host="::1", remote=True, k="k"), Alive(), Names()]),
    ("nonlocal_v6_names_and_port2_answered", [
        Reg(1, "six", host="::1", port=8003),
        Names(host="::1", remote=True),
        Lookup("six", host="::1", remote=True)]),
    ("nonlocal_bad_frames_still_closed", [
        Req(b"\x00\x00", remote=True), Req(F(b"n") + b"x", remote=True),
        Req(F(b"z"), remote=True)]),
]

TIMEOUT = [
    ("idle_no_data_closed_with_nothing", [Open(1), Probe(1, 4.0)]),
    ("idle_after_one_byte_closed_with_nothing", [
        Open(1), Send(1, b"\x00"), Probe(1, 4.0)]),
    ("idle_after_header_closed_with_nothing", [
        Open(1), Send(1, b"\x00\x03"), Probe(1, 4.0)]),
    ("idle_partial_body_closed_with_nothing", [
        Open(1), Send(1, b"\x00\x05nx"), Probe(1, 4.0)]),
    ("trickle_keeps_connection_alive", [
        Open(1), Dribble(1, b"\x00\x04nxyz", 0.75), Read(1)]),
    ("registered_never_idle_timed_out", [
        Reg(1, "stay", port=5080), Wait(3.5), Probe(1, 0.2), Names()]),
    ("dribble_under_short_timeout_served", [
        Open(1), Dribble(1, F(b"n"), 0.2), Read(1)]),
]

NODAEMON = [
    ("cli_no_daemon_names", [Cli("-names")]),
    ("cli_no_daemon_dump", [Cli("-dump")]),
    ("cli_no_daemon_kill", [Cli("-kill")]),
    ("cli_no_daemon_stop", [Cli("-stop", "foo")]),
    ("cli_no_daemon_started", [Cli("-started")]),
    ("cli_usage_errors", [
        Cli("-address", "127.0.0.1", *a, stderr="first", timeout=5)
        for a in (["-h"], ["-help"], ["--help"], ["-bogus"], ["-port"],
                  ["-address"], ["-names", "-port", "24399"],
                  ["-packet_timeout", "0"], ["-packet_timeout", "abc"],
                  ["-delay_accept", "0"], ["-stop"], ["-stop", "a", "b"],
                  ["-kill", "x"], ["-dump", "x"], ["-started", "x"],
                  ["-kill", "-port", "24399"])]),
    ("cli_usage_bad_ports", [
        Cli("-port", "0", "-names", stderr="first", port=False),
        Cli("-port", "abc", "-names", stderr="first", port=False)]),
    ("daemon_address_errors", [
        Start("-port", "{port}", "-address", a, timeout=3)
        for a in ("localhost", "127.1", "::ffff:127.0.0.1",
                  "127.0.0.2,127.0.0.2", "[::1]")]),
    ("daemon_too_many_addresses", [
        Start("-port", "{port}", "-address",
              ",".join("127.0.0.%d" % i for i in range(3, 3 + n)),
              timeout=1.5) for n in (13, 14)]),
]

ADDR2 = [
    ("address_127_0_0_2_listens_there_too", [
        Req(F(b"n"), host="127.0.0.2"), Req(F(b"n"), host="::1"),
        Reg(1, "via2", host="127.0.0.2", port=5090), Names(),
        Lookup("via2", host="127.0.0.2")]),
]

ADDR_LIST = [
    ("address_list_with_spaces_and_v6", [
        Req(F(b"n"), host="::1"), Req(F(b"n"), host="127.0.0.3"),
        Names()]),
]


class Group:
    def __init__(self, name, scripts, args=(), env=None, remote=False,
                 fresh=False, nodaemon=False, address="127.0.0.1"):
        self.name, self.scripts, self.args = name, scripts, list(args)
        self.env, self.remote, self.fresh = env, remote, fresh
        self.nodaemon, self.address = nodaemon, address


def with_ref_client(scripts):
    """The scripts that run a client, again with the real OTP client
    talking to both daemons (issue: the CLI both ways)."""
    out = []
    for name, steps in scripts:
        flat = []
        for st in steps:
            flat.extend(st if isinstance(st, list) else [st])
        if not any(isinstance(st, tuple) and st[0] == "cli" for st in flat):
            continue
        out.append((name + "_otp_client", [
            st[:5] + ("ref",) if isinstance(st, tuple) and st[0] == "cli"
            else st for st in flat]))
    return out


GROUPS = [
    Group("basic", PLAIN_BASIC),
    Group("framing", PLAIN_FRAMING),
    Group("port2", PLAIN_PORT2),
    Group("alive2", PLAIN_ALIVE2),
    Group("net", PLAIN_NET),
    Group("cli", PLAIN_CLI),
    Group("cli_otp_client", with_ref_client(PLAIN_CLI)),
    Group("relaxed_otp_client", with_ref_client(RELAXED),
          args=["-relaxed_command_check"]),
    Group("fresh_otp_client", with_ref_client(FRESH_PLAIN), fresh=True),
    Group("fresh_relaxed_otp_client", with_ref_client(FRESH_RELAXED),
          args=["-relaxed_command_check"], fresh=True),
    Group("nodaemon_otp_client", with_ref_client(NODAEMON), nodaemon=True),
    Group("many", MANY),
    Group("relaxed", RELAXED, args=["-relaxed_command_check"]),
    Group("relaxed_env", RELAXED_ENV,
          env={"ERL_EPMD_RELAXED_COMMAND_CHECK": ""}),
    Group("fresh", FRESH_PLAIN, fresh=True),
    Group("fresh_relaxed", FRESH_RELAXED, args=["-relaxed_command_check"],
          fresh=True),
    Group("remote", REMOTE, args=["-relaxed_command_check"], remote=True,
          address=netns.ADDRESSES),
    Group("timeout", TIMEOUT, args=["-packet_timeout", "1"]),
    Group("nodaemon", NODAEMON, nodaemon=True),
    Group("addr2", ADDR2, address="127.0.0.2"),
    Group("addrlist", ADDR_LIST, address=" 127.0.0.3 ,, ::1,127.0.0.1 "),
]

# --------------------------------------------------------------------------
# Running

class _NoDaemon:
    """Stands in for a daemon in the no-daemon group."""
    port = None

    def alive(self):
        return False


def _start_pair(stack, g):
    """Start the reference and the daemon under test; return two Runners."""
    if g.nodaemon:
        return (Runner(_NoDaemon(), et.REF_EPMD, port=et.free_port()),
                Runner(_NoDaemon(), et.EPMD_BIN, port=et.free_port()))
    env = dict(g.env or {})
    if g.remote:
        ns = netns.shared()
        stack.enter_context(netns.entered(ns))
    ref = stack.enter_context(et.Daemon(et.REF_EPMD, args=g.args, env=env,
                                        address=g.address))
    dut = stack.enter_context(et.Daemon(et.EPMD_BIN, args=g.args, env=env,
                                        address=g.address))
    if not g.remote:
        return Runner(ref, et.REF_EPMD), Runner(dut, et.EPMD_BIN)
    return (Runner(ref, et.REF_EPMD,
                   stack.enter_context(netns.Remote(ns, ref))),
            Runner(dut, et.EPMD_BIN,
                   stack.enter_context(netns.Remote(ns, dut))))


class _Shared:
    """The daemon pair of the group now running (non-fresh groups)."""
    group = None
    stack = None
    runners = None

    @classmethod
    def get(cls, g):
        # A pair in which a daemon died (a failed script) is restarted, so
        # that one failure does not cascade through the rest of the group.
        dead = cls.runners and not g.nodaemon and not all(
            r.d.alive() for r in cls.runners)
        if cls.group is not g or dead:
            cls.close()
            cls.stack = contextlib.ExitStack()
            cls.runners = _start_pair(cls.stack, g)
            cls.group = g
        return cls.runners

    @classmethod
    def close(cls):
        if cls.stack is not None:
            cls.stack.close()
        cls.group = cls.stack = cls.runners = None


def _check_binaries():
    for what, path in (("EPMD_BIN", et.EPMD_BIN), ("REF_EPMD", et.REF_EPMD)):
        if not os.access(path, os.X_OK):
            raise et.Skip(f"{what} {path} is not executable")


def _compare(name, ref, dut, script):
    ref_t, dut_t = play_pair(ref, dut, script)
    if os.environ.get("DIFF_VERBOSE"):
        sys.stderr.write(f"=== {name}\n" + "".join(
            f"    {line[:400]}\n" for line in ref_t))
    compare(name, ref_t, dut_t)


def _make_test(g, name, script):
    def fn():
        _check_binaries()
        if g.fresh:
            with contextlib.ExitStack() as stack:
                ref, dut = _start_pair(stack, g)
                _compare(name, ref, dut, script)
            return
        ref, dut = _Shared.get(g)
        try:
            _compare(name, ref, dut, script)
        except et.Timeout:
            # The reference's runner thread may still be playing: stop the
            # pair, so that it cannot touch the next script's daemons.
            _Shared.close()
            raise
    fn.__name__ = "test_diff_" + name
    return fn


def _register_all():
    seen = set()
    for g in GROUPS:
        for name, script in g.scripts:
            if name in seen:
                raise ValueError(f"duplicate script name {name}")
            seen.add(name)
            et.test(_make_test(g, name, script))


_register_all()

if __name__ == "__main__":
    try:
        et.run_tests()
    finally:
        _Shared.close()
