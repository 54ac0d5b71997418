"""The epmd-c saved-state blob (doc/state-format.md), in Python.

An independent encoder and decoder of the format src/state.c writes, for
tests and fuzz seeds: encode() builds a blob from records, decode() reads
one back (raising ValueError on anything src/state.c would reject at the
framing level; record-level checks are the C decoder's business).
"""

import struct
import zlib

MAGIC = b"EPMDCSTA"
VERSION = 1
HEADER = struct.Struct(">8sHHIIIIIQII")                    # 48 bytes
RECORD = struct.Struct(">BBBBHHHHHHIiIQ")                  # 36 bytes
NO_CONN = 0xFFFFFFFF
ACTIVE, UNUSED = 1, 2


def rec(name, port=5000, creation=10, seq=1, conn=NO_CONN, fd=-1,
        node_type=77, protocol=0, high=6, low=5, extra=b""):
    """One record as a dict; name and extra are bytes or str."""
    if isinstance(name, str):
        name = name.encode()
    if isinstance(extra, str):
        extra = extra.encode()
    return dict(name=name, port=port, creation=creation, seq=seq, conn=conn,
                fd=fd, node_type=node_type, protocol=protocol, high=high,
                low=low, extra=extra)


def encode(active=(), unused=(), max_creation=None, seq=None,
           version=VERSION, flags=0, restarts=0):
    """A blob: active records newest first, unused oldest first."""
    body = b""
    allrecs = list(active) + list(unused)
    for kind, recs in ((ACTIVE, active), (UNUSED, unused)):
        for r in recs:
            body += RECORD.pack(kind, r["node_type"], r["protocol"], 0,
                                r["port"], r["high"], r["low"],
                                len(r["name"]), len(r["extra"]), 0,
                                r["creation"], r["fd"], r["conn"], r["seq"])
            body += r["name"] + r["extra"]
    if max_creation is None:
        max_creation = max([r["creation"] for r in allrecs] + [0])
    if seq is None:
        seq = max([r["seq"] for r in allrecs] + [0])
    total = HEADER.size + len(body)
    tail = struct.pack(">IIIQII", len(active), len(unused), max_creation,
                       seq, restarts, 0) + body
    crc = zlib.crc32(tail) & 0xFFFFFFFF
    return MAGIC + struct.pack(">HHII", version, flags, total, crc) + tail


def decode(blob):
    """(header dict, [records]) of a blob; ValueError if it is not one."""
    if len(blob) < HEADER.size:
        raise ValueError("truncated")
    (magic, version, flags, total, crc, nact, nun, maxc, seq, restarts,
     _res) = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError("magic")
    if version != VERSION or flags != 0:
        raise ValueError("version")
    if total != len(blob):
        raise ValueError("length")
    if zlib.crc32(blob[20:]) & 0xFFFFFFFF != crc:
        raise ValueError("checksum")
    off, recs = HEADER.size, []
    for i in range(nact + nun):
        f = RECORD.unpack_from(blob, off)
        off += RECORD.size
        nlen, elen = f[7], f[8]
        name, extra = blob[off:off + nlen], blob[off + nlen:off + nlen + elen]
        off += nlen + elen
        recs.append(dict(kind=f[0], node_type=f[1], protocol=f[2],
                         port=f[4], high=f[5], low=f[6], creation=f[10],
                         fd=f[11], conn=f[12], seq=f[13], name=name,
                         extra=extra))
    if off != len(blob):
        raise ValueError("trailing")
    return dict(nactive=nact, nunused=nun, max_creation=maxc, seq=seq,
                restarts=restarts), recs
