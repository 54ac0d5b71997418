#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets from PROTOCOL.md's examples.

    python3 tests/fuzz/make_seeds.py          # rewrites corpus/proto, conn, state

corpus/proto/ holds framed requests (Length:16 then the body), the bytes of
PROTOCOL.md sections 7.2 and 7.6. corpus/conn/ holds scripts for fuzz_conn
in its input format (see the comment at the top of fuzz_conn.c): a
configuration byte, then ops that open client sockets, write frames, close
or half-close them. Both directories are generated whole: files not written
by this script are removed, so the corpus stays what the script says.
"""

import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# fuzz_conn op kinds.
RAW8, FRAME, RAW16, CLOSE, SHUTWR, RESET, SHED, OPEN = range(8)
NOLOOP = 0x40
FLAG = 0x80

# fuzz_conn configuration bits.
RELAXED = 0x01
DEBUG = 0x02
CAP_NONE = 0x04
CAP_1 = 0x08
CAP_2 = 0x0C
PORT_LISTENER = 0x10
PORT_BIG = 0x20
PORT_ZERO = 0x30


def be16(n):
    return struct.pack(">H", n)


def frame(body):
    """A request frame: Length:16 then the body."""
    return be16(len(body)) + body


def alive2(name, port=5001, node_type=77, proto=0, high=6, low=5, extra=b""):
    """An ALIVE2_REQ body (PROTOCOL.md 1.3)."""
    if isinstance(name, str):
        name = name.encode()
    return (b"x" + be16(port) + bytes([node_type, proto]) + be16(high) +
            be16(low) + be16(len(name)) + name + be16(len(extra)) + extra)


def port_please(name):
    if isinstance(name, str):
        name = name.encode()
    return b"z" + name


class Script:
    """A fuzz_conn input: a configuration byte and a list of ops."""

    def __init__(self, cfg=0, timing=0):
        self.out = bytearray([cfg, timing])

    def _op(self, kind, slot, loop=True, flag=False):
        assert 0 <= slot < 8
        self.out.append(kind | slot << 3 | (0 if loop else NOLOOP) |
                        (FLAG if flag else 0))

    def open(self, slot, remote=False, v6=False, variant=0, tight=False,
             slow=False, loop=True):
        self._op(OPEN, slot, loop)
        self.out.append((1 if remote else 0) | (2 if v6 else 0) |
                        (4 if variant else 0) | (8 if tight else 0) |
                        (16 if slow else 0))
        return self

    def frame(self, slot, body, loop=True):
        """Write one whole frame; the harness adds the length header."""
        if len(body) < 256:
            self._op(FRAME, slot, loop)
            self.out.append(len(body))
        else:
            self._op(FRAME, slot, loop, flag=True)
            self.out += be16(len(body))
        self.out += body
        return self

    def raw(self, slot, data, loop=True):
        """Write bytes as they are (header and all)."""
        if len(data) < 256:
            self._op(RAW8, slot, loop)
            self.out.append(len(data))
        else:
            self._op(RAW16, slot, loop)
            self.out += be16(len(data))
        self.out += data
        return self

    def close(self, slot, loop=True):
        self._op(CLOSE, slot, loop)
        return self

    def shut(self, slot, loop=True):
        self._op(SHUTWR, slot, loop)
        return self

    def reset(self, slot, loop=True):
        self._op(RESET, slot, loop)
        return self

    def shed(self, n, loop=True):
        self._op(SHED, n, loop)
        return self

    def advance(self, step, loop=True):
        """Move the virtual clock: step indexes {0.1,1,2,3,6,30,61,62} s."""
        self._op(SHED, step, loop, flag=True)
        return self

    def bytes(self):
        return bytes(self.out)


def proto_seeds():
    """Framed requests from PROTOCOL.md 7.2 and 7.6."""
    s = {}
    s["alive2_erlang_n1"] = bytes.fromhex(
        "000f785fb44d000006000500026e310000")
    s["names"] = bytes.fromhex("00016e")
    s["port_please_n1"] = bytes.fromhex("00037a6e31")
    s["port_please_nothere"] = frame(port_please("nothere"))
    s["alive2_foo_v6"] = frame(alive2("foo", 5001))
    s["alive2_bar_v5"] = frame(alive2("bar", 5002, high=5))
    s["dump"] = frame(b"d")
    s["kill"] = frame(b"k")
    s["stop_foo"] = frame(b"sfoo")
    s["stop_n2_nul"] = frame(b"sn2\0")
    s["legacy_a"] = frame(b"a")
    s["legacy_pfoo"] = frame(b"pfoo")
    s["size_zero"] = bytes.fromhex("0000")
    s["size_zero_junk"] = bytes.fromhex("00006e6e6e6e")
    s["names_junk"] = bytes.fromhex("00046e78797a")
    s["two_names"] = frame(b"n") + frame(b"n")
    s["names_plus_byte"] = frame(b"n") + b"\0"
    s["names_3057"] = frame(b"n" + b"\0" * 3056)
    s["size_3058"] = be16(3058) + b"n"
    s["size_ffff"] = bytes.fromhex("ffff")
    s["pp_empty"] = frame(b"z")
    s["pp_nul"] = frame(b"z\0")
    s["pp_inner_nul"] = frame(b"zfo\0o")
    s["pp_ff"] = frame(b"z\xff")
    s["pp_254"] = frame(port_please("a" * 254))
    s["pp_255"] = frame(port_please("a" * 255))
    s["alive2_255_chars"] = frame(alive2("a" * 255, 6001))
    s["alive2_emoji_255"] = frame(alive2("\U0001F600" * 255, 6002))
    s["alive2_bad_utf8"] = frame(alive2(b"\xff\xfe", 6003))
    s["alive2_overlong"] = frame(alive2(b"\xc0\x80", 6003))
    s["alive2_surrogate"] = frame(alive2(b"\xed\xa0\x80", 6003))
    s["alive2_trailing_nul"] = frame(alive2(b"foo\0", 6004))
    s["alive2_empty_name_extra"] = frame(alive2(b"", 6006, extra=b"e"))
    s["alive2_empty_empty"] = frame(alive2(b"", 6006))
    s["alive2_extra_1020"] = frame(alive2("ex", 6007, extra=b"E" * 1020))
    s["alive2_extra_1021"] = frame(alive2("ex", 6007, extra=b"E" * 1021))
    s["alive2_extra_nuls"] = frame(alive2("ex", 6008, extra=b"ABC\0\0"))
    s["alive2_body_9"] = frame(alive2("foo")[:9])
    s["alive2_body_11"] = frame(alive2("foo")[:11])
    s["alive2_nlen_big"] = frame(alive2("foo")[:9] + be16(40) + b"foo" +
                                 be16(0))
    s["alive2_elen_big"] = frame(alive2("foo")[:-2] + be16(9))
    s["alive2_trailing_junk"] = frame(alive2("foo") + b"junk")
    s["alive2_no_elen"] = frame(alive2("foo")[:-2])
    s["alive2_type0_high0_low9"] = frame(alive2("t0", 0, 0, 0, 0, 9))
    s["alive2_all_ff"] = frame(alive2("tf", 65535, 255, 255, 65535, 65535))
    return s


def conn_seeds():
    """Connection scripts for the scenarios of PROTOCOL.md 7.2, 7.3, 7.6."""
    s = {}
    erl = bytes.fromhex("785fb44d000006000500026e310000")
    # 7.6: an Erlang node registers, is listed and looked up.
    s["erlang_node"] = (Script().frame(0, erl).frame(1, b"n")
                        .frame(2, b"zn1").frame(3, port_please("nothere"))
                        .close(0).frame(4, b"zn1").bytes())
    # 7.2: two nodes, NAMES, DUMP, KILL refused, STOP refused, legacy codes.
    s["two_nodes"] = (Script().frame(0, alive2("foo", 5001))
                      .frame(1, alive2("bar", 5002)).frame(2, b"n")
                      .frame(3, b"d").frame(4, b"k").frame(5, b"sfoo")
                      .frame(6, b"a").frame(7, b"pfoo").close(0)
                      .open(2).frame(2, b"d").bytes())
    # Re-registration: v6 twice, v5 three times (creation rules).
    sc = Script()
    for i in range(2):
        sc.frame(0, alive2("foo", 5001)).close(0)
    for i in range(3):
        sc.frame(0, alive2("foo", 5001, high=5)).close(0)
    s["reregister"] = sc.bytes()
    # Duplicate name: error reply, the first node stays.
    s["duplicate"] = (Script().frame(0, alive2("dup", 7001))
                      .frame(1, alive2("dup", 7002)).frame(2, b"zdup")
                      .bytes())
    # Framing cases, each on its own connection.
    s["framing"] = (Script().raw(0, bytes.fromhex("0000"))
                    .raw(1, bytes.fromhex("00006e6e6e6e"))
                    .raw(2, bytes.fromhex("00046e78797a"))
                    .raw(3, frame(b"n") + frame(b"n"))
                    .raw(4, frame(b"n") + b"\0")
                    .raw(5, bytes.fromhex("ffff"))
                    .raw(6, be16(3058) + b"n").bytes())
    s["names_3057"] = Script().frame(0, b"n" + b"\0" * 3056).bytes()
    # A request trickled in pieces, then one in two writes without a loop.
    s["trickle"] = (Script().raw(0, b"\x00").raw(0, b"\x03")
                    .raw(0, b"z").raw(0, b"n1")
                    .raw(1, b"\x00\x01", loop=False).raw(1, b"n").bytes())
    s["partial_then_eof"] = (Script().raw(0, b"\x00\x05zab").shut(0)
                             .raw(1, b"\x00").close(1).bytes())
    # Lookups: limits and malformed names.
    s["lookups"] = (Script().frame(0, b"z").frame(1, b"z\0")
                    .frame(2, b"zfo\0o").frame(3, b"z\xff")
                    .frame(4, port_please("a" * 254))
                    .frame(5, port_please("a" * 255))
                    .frame(6, port_please("a" * 256)).bytes())
    # Long names and extras register and are looked up.
    s["long_names"] = (Script().frame(0, alive2("a" * 255, 6001))
                       .frame(1, port_please("a" * 255))
                       .frame(2, alive2("\U0001F600" * 255, 6002))
                       .frame(3, alive2("a" * 256, 6003))
                       .frame(4, alive2("ex", 6007, extra=b"E" * 1020))
                       .frame(5, b"zex").frame(6, b"d").bytes())
    s["bad_names"] = (Script().frame(0, alive2(b"\xff\xfe"))
                      .frame(1, alive2(b"\xc0\x80"))
                      .frame(2, alive2(b"\xed\xa0\x80"))
                      .frame(3, alive2(b"foo\0"))
                      .frame(4, alive2(b"", 6006))
                      .frame(5, alive2("ex", 6007, extra=b"E" * 1021))
                      .bytes())
    s["odd_alive2"] = (Script().frame(0, alive2(b"", 6006, extra=b"e"))
                       .frame(1, alive2("ex", 6008, extra=b"ABC\0\0"))
                       .frame(2, alive2("foo")[:9])
                       .frame(3, alive2("foo") + b"junk")
                       .frame(4, alive2("t0", 0, 0, 0, 0, 9))
                       .frame(5, alive2("tf", 65535, 255, 255, 65535, 65535))
                       .frame(6, b"n").frame(7, b"ztf").bytes())
    # The end of a registration: a byte, a second ALIVE2, SHUT_WR, RST.
    s["registration_ends"] = (Script().frame(0, alive2("r0", 1))
                              .raw(0, b"\0")
                              .frame(1, alive2("r1", 2))
                              .frame(1, alive2("r1", 2))
                              .frame(2, alive2("r2", 3)).shut(2)
                              .frame(3, alive2("r3", 4)).reset(3)
                              .frame(4, b"d").bytes())
    s["alive2_v6"] = (Script().open(0, v6=True)
                      .frame(0, alive2("six", 6600)).frame(1, b"zsix")
                      .open(2, v6=True).frame(2, b"n").frame(3, b"d")
                      .bytes())
    # 7.3: a relaxed daemon with non-local peers.
    s["remote_peers"] = (Script(RELAXED).frame(0, alive2("localnode", 8000))
                         .open(1, remote=True).frame(1, b"n")
                         .open(2, remote=True).frame(2, b"zlocalnode")
                         .open(3, remote=True).frame(3, b"d")
                         .open(4, remote=True).frame(4, b"k")
                         .open(5, remote=True).frame(5, b"slocalnode")
                         .open(6, remote=True, v6=True)
                         .frame(6, alive2("x", 1)).frame(7, b"n").bytes())
    s["relaxed_stop"] = (Script(RELAXED).frame(0, alive2("n1", 1))
                         .frame(1, alive2("n2", 2)).frame(2, b"sn1")
                         .frame(3, b"snothere").frame(4, b"s")
                         .frame(5, b"sn2\0").frame(6, b"n").bytes())
    s["relaxed_kill_live"] = (Script(RELAXED).frame(0, alive2("live", 1))
                              .frame(1, b"k").frame(2, b"n")
                              .frame(3, alive2("live", 1)).bytes())
    s["kill_empty"] = Script().frame(0, b"k").frame(1, b"n").bytes()
    s["kill_then_close"] = (Script().frame(0, b"k", loop=False).close(0)
                            .frame(1, b"n").bytes())
    # Per-peer caps for remote peers, and shedding idle connections.
    s["peer_cap"] = (Script(CAP_1).open(0, remote=True).open(1, remote=True)
                     .open(2, remote=True, variant=1).frame(2, b"n")
                     .open(3).frame(0, b"n").bytes())
    s["shed"] = (Script(CAP_2).open(0).open(1, remote=True)
                 .raw(2, b"\x00").frame(3, alive2("keep", 1))
                 .shed(2).frame(4, b"n").bytes())
    # Old/unused eviction with the -d limit of 5.
    sc = Script(DEBUG)
    for i in range(8):
        sc.frame(i % 8, alive2("u%d" % i, 100 + i)).close(i % 8)
    sc.frame(0, alive2("u0", 100)).frame(1, b"d")
    s["eviction_debug"] = sc.bytes()
    # NAMES/DUMP headers for the configured-port variants.
    s["port_listener"] = Script(PORT_LISTENER).frame(0, b"n").bytes()
    s["port_big"] = (Script(PORT_BIG).frame(0, alive2("p", 9))
                     .frame(1, b"n").frame(2, b"d").bytes())
    s["port_zero"] = Script(PORT_ZERO | CAP_NONE).frame(0, b"n").bytes()
    # Timeouts on the virtual clock: packet_timeout 1 (timing bits 0-1).
    s["timeout_idle"] = (Script(0, 1).open(0).raw(1, b"\x00")
                         .raw(2, b"\x00\x03z").advance(1).advance(1)
                         .advance(1).frame(3, b"n").bytes())
    s["timeout_trickle"] = (Script(0, 1).raw(0, b"\x00").advance(1)
                            .raw(0, b"\x03").advance(1).raw(0, b"z")
                            .advance(1).raw(0, b"n1").bytes())
    s["timeout_default"] = (Script().open(0).raw(1, b"\x00").advance(6)
                            .advance(0).advance(1).bytes())
    s["registered_no_timeout"] = (Script(0, 1).frame(0, alive2("stay", 1))
                                  .advance(7).frame(1, b"n").bytes())
    # -delay_accept 1 and -delay_write 2 (timing bits 2-3 and 4-5).
    s["delay_accept"] = (Script(0, 0x04 | 1).frame(0, alive2("da", 1))
                         .frame(1, b"n").advance(1).frame(2, b"d")
                         .advance(2).open(3).advance(3).bytes())
    s["delay_write"] = (Script(0, 0x20).frame(0, alive2("dw", 1))
                        .frame(1, b"n").advance(2).frame(2, b"k")
                        .advance(2).frame(3, b"zdw").close(0)
                        .advance(3).bytes())
    s["delay_kill"] = (Script(0, 0x14).frame(0, b"k").advance(1)
                       .advance(2).frame(1, b"n").advance(3).bytes())
    # A 7 KB DUMP through the smallest socket buffers: to a reader that
    # reads (it goes out in pieces), then to one that never does (the
    # write stalls and times out after packet_timeout + 1 s).
    sc = Script(0, 1)
    for i in range(7):
        sc.frame(i % 7, alive2("n%02d" % i + "\U0001F600" * 250, 1000 + i))
        sc.close(i % 7)
    sc.open(6, tight=True).frame(6, b"d")
    sc.open(7, tight=True, slow=True).frame(7, b"d")
    sc.advance(1).advance(1).advance(1)
    s["slow_reader_dump"] = sc.bytes()
    # More names than the registry's first hash table holds (64).
    sc = Script()
    for i in range(70):
        sc.frame(i % 8, alive2("g%d" % i, i)).close(i % 8)
    sc.frame(0, b"d")
    s["many_names"] = sc.bytes()
    return s


def state_seeds():
    """fuzz_state inputs: a mode byte (1: fix length and CRC), a blob."""
    sys.path.insert(0, os.path.join(HERE, "..", "lib"))
    import statefmt as sf
    r = sf.rec
    s = {}
    s["empty"] = b"\x00" + sf.encode()
    s["one_active"] = b"\x00" + sf.encode([r("a", conn=0, seq=1, fd=7)])
    s["mixed"] = b"\x00" + sf.encode(
        [r("c", conn=2, seq=5, creation=20, fd=9),
         r("b\u00e9", conn=1, seq=3, creation=12, extra="xyz"),
         r("a", conn=0, seq=2, creation=11)],
        [r("old1", seq=1, creation=9, fd=3), r("old2", seq=4, creation=19)],
        max_creation=1795269790, seq=6)
    s["long_names"] = b"\x00" + sf.encode(
        [r("\U0001F600" * 255, conn=5, seq=2, extra=b"e" * 1020)],
        [r("n" * 255, seq=1)])
    s["fixup_bad_order"] = b"\x01" + sf.encode(
        [r("a", conn=0, seq=1), r("b", conn=1, seq=2)])
    s["fixup_dup_name"] = b"\x01" + sf.encode(
        [r("a", conn=0, seq=2)], [r("a", seq=1)])
    s["fixup_dup_conn"] = b"\x01" + sf.encode(
        [r("b", conn=0, seq=2), r("a", conn=0, seq=1)])
    s["bad_crc"] = b"\x00" + sf.encode([r("a", conn=0, seq=1)])[:-1] + b"!"
    s["version2"] = b"\x01" + sf.encode(version=2)
    return s


def addrfilt_seeds():
    """Access lists (the -names_from/-lookup_from/-register_from syntax):
    each item kind, both families, boundaries, mapped forms, bad items;
    and -address lists, which the target also builds."""
    lists = {
        "any": "any",
        "none": "none",
        "local": "local",
        "v4_prefix": "198.51.100.0/24",
        "v4_host_bits": "198.51.100.77/27",
        "v4_zero": "0.0.0.0/0",
        "v4_32": "203.0.113.9/32",
        "v6_prefix": "fd00::/8",
        "v6_128": "2001:db8::1/128",
        "v6_zero": "::/0",
        "v6_odd": "fe80::/10",
        "mapped": "::ffff:198.51.100.0/120",
        "mapped_short": "::ffff:1.2.3.4/64",
        "mixed": "198.51.100.0/24, 2001:db8::/32 local,203.0.113.7",
        "spaces": "  10.0.0.0/8 ,\t192.168.0.0/16  ",
        "bad_33": "10.0.0.0/33",
        "bad_129": "fd00::/129",
        "bad_short": "1.2.3",
        "bad_empty_item": "10.0.0.0/8,,fd00::/8",
        "bad_trailing": "10.0.0.0/8,",
        "bad_none_mixed": "none,10.0.0.0/8",
        "bad_junk": "localhost [::1] 10.0.0.0/+8",
        # -address lists, for the listen-list builder on the same text.
        "listen_wildcards": "0.0.0.0 ::",
        "listen_otp_record": " , 127.0.0.3 ,, ::1,127.0.0.1 ",
        "listen_mapped": "::ffff:127.0.0.1",
        "listen_covered": "0.0.0.0,198.51.100.1,127.0.1.1",
        "listen_13_extras": ",".join("127.0.0.%d" % i for i in range(2, 15)),
    }
    return {k: v.encode() for k, v in lists.items()}


def write_dir(path, seeds):
    os.makedirs(path, exist_ok=True)
    for f in os.listdir(path):
        if f not in seeds:
            os.remove(os.path.join(path, f))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)


def main():
    write_dir(os.path.join(HERE, "corpus", "proto"), proto_seeds())
    write_dir(os.path.join(HERE, "corpus", "conn"), conn_seeds())
    write_dir(os.path.join(HERE, "corpus", "state"), state_seeds())
    write_dir(os.path.join(HERE, "corpus", "addrfilt"), addrfilt_seeds())
    print("wrote %d proto, %d conn, %d state and %d addrfilt seeds" %
          (len(proto_seeds()), len(conn_seeds()), len(state_seeds()),
           len(addrfilt_seeds())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
