"""Redis's compact blob encodings: listpack, ziplist, intset, zipmap.

All of them can be read (RDB files from Redis 2.x to 7.2 hold them); listpack and
intset are also written, as Redis 7.0 writes small hashes, sorted sets, lists and
integer sets. Formats from listpack.c, ziplist.c, intset.c and zipmap.c.
"""

import struct


class EncodingError(ValueError):
    """A blob that does not parse: the RDB/DUMP payload is corrupt."""


# -- listpack ------------------------------------------------------------------------


def listpack_entries(blob: bytes) -> list[bytes]:
    """Every entry of a listpack, integers rendered as their decimal text."""
    if len(blob) < 7:
        raise EncodingError("listpack too short")
    total = int.from_bytes(blob[0:4], "little")
    if total != len(blob) or blob[-1] != 0xFF:
        raise EncodingError("listpack header or terminator mismatch")
    out = []
    append = out.append
    pos, end = 6, len(blob) - 1
    while pos < end:
        b = blob[pos]
        # Fast paths for what small hashes, lists and sorted sets are made of: short
        # strings (6-bit length, backlen of 1 byte) and 7-bit integers.
        if 0x80 <= b < 0xC0:
            stop = pos + 1 + (b & 0x3F)
            if stop < end:
                append(blob[pos + 1 : stop])
                pos = stop + 1
                continue
        elif b < 0x80 and pos + 2 <= end:
            append(_SMALL_INTS[b])
            pos += 2
            continue
        if b < 0x80:  # 7-bit uint
            value, size = str(b).encode(), 1
        elif b < 0xC0:  # 6-bit string length
            n = b & 0x3F
            value, size = blob[pos + 1 : pos + 1 + n], 1 + n
        elif b < 0xE0:  # 13-bit int
            raw = ((b & 0x1F) << 8) | blob[pos + 1]
            if raw >= 1 << 12:
                raw -= 1 << 13
            value, size = str(raw).encode(), 2
        elif b < 0xF0:  # 12-bit string length
            n = ((b & 0x0F) << 8) | blob[pos + 1]
            value, size = blob[pos + 2 : pos + 2 + n], 2 + n
        elif b == 0xF0:  # 32-bit string length
            n = int.from_bytes(blob[pos + 1 : pos + 5], "little")
            value, size = blob[pos + 5 : pos + 5 + n], 5 + n
        elif b in _LP_INT_SIZES:
            width = _LP_INT_SIZES[b]
            raw = int.from_bytes(blob[pos + 1 : pos + 1 + width], "little", signed=True)
            value, size = str(raw).encode(), 1 + width
        else:
            raise EncodingError("bad listpack entry encoding")
        pos += size
        if pos > end:
            raise EncodingError("listpack entry overflows")
        pos += backlen_size(size)
        out.append(value)
    if pos != end:
        raise EncodingError("listpack entries overflow")
    return out


_LP_INT_SIZES = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}
_SMALL_INTS = [str(i).encode() for i in range(128)]


def backlen_size(n: int) -> int:
    """Bytes of an entry's backlen (lpEncodeBacklen()) for an entry of n bytes."""
    if n <= 127:
        return 1
    if n < 16383:
        return 2
    if n < 2097151:
        return 3
    if n < 268435455:
        return 4
    return 5


def _backlen(n: int) -> bytes:
    # lpEncodeBacklen(): 7 bits per byte, read right to left, high bit = "more".
    if n <= 127:
        return bytes([n])
    if n < 16383:
        return bytes([n >> 7, (n & 127) | 128])
    if n < 2097151:
        return bytes([n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128])
    if n < 268435455:
        return bytes([n >> 21, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128, (n & 127) | 128])
    return bytes([n >> 28, ((n >> 21) & 127) | 128, ((n >> 14) & 127) | 128,
                  ((n >> 7) & 127) | 128, (n & 127) | 128])


# What an integer's text can start with: anything else is stored as a string as is.
NUMERIC_START = frozenset(b"-0123456789")


def _lp_entry(item: bytes) -> bytes:
    n = len(item)
    if n < 64 and (not n or item[0] not in NUMERIC_START):
        # The common entry (a short word): 6-bit length, data, one-byte backlen.
        return b"%c%s%c" % (0x80 | n, item, n + 1)
    value = canonical_int(item)
    if value is not None:
        if 0 <= value <= 127:
            enc = bytes([value])
        elif -4096 <= value <= 4095:
            v = value & 0x1FFF
            enc = bytes([0xC0 | (v >> 8), v & 0xFF])
        elif -(2**15) <= value < 2**15:
            enc = b"\xf1" + value.to_bytes(2, "little", signed=True)
        elif -(2**23) <= value < 2**23:
            enc = b"\xf2" + value.to_bytes(3, "little", signed=True)
        elif -(2**31) <= value < 2**31:
            enc = b"\xf3" + value.to_bytes(4, "little", signed=True)
        else:
            enc = b"\xf4" + value.to_bytes(8, "little", signed=True)
    else:
        n = len(item)
        if n < 64:
            enc = bytes([0x80 | n]) + item
        elif n < 4096:
            enc = bytes([0xE0 | (n >> 8), n & 0xFF]) + item
        else:
            enc = b"\xf0" + n.to_bytes(4, "little") + item
    return enc + _backlen(len(enc))


def build_listpack(items) -> bytes:
    body = b"".join(map(_lp_entry, items))
    count = len(items) if len(items) < 65535 else 65535
    total = 6 + len(body) + 1
    return total.to_bytes(4, "little") + count.to_bytes(2, "little") + body + b"\xff"


def canonical_int(item: bytes) -> int | None:
    """The int64 value if item is its canonical decimal text (string2ll round trip)."""
    if not item or len(item) > 20:
        return None
    digits = item[1:] if item[0] == 45 else item
    if not digits.isdigit() or not digits.isascii() or (digits[0] == 48 and len(item) > 1):
        return None
    value = int(item)
    if not -(2**63) <= value < 2**63:
        return None
    return value


# -- ziplist (RDB types 10, 12, 13 and quicklist v1 nodes) -----------------------------


def ziplist_entries(blob: bytes) -> list[bytes]:
    if len(blob) < 11 or blob[-1] != 0xFF:
        raise EncodingError("ziplist malformed")
    total = int.from_bytes(blob[0:4], "little")
    if total != len(blob):
        raise EncodingError("ziplist size mismatch")
    pos, end = 10, len(blob) - 1
    out = []
    while pos < end:
        prevlen = blob[pos]
        pos += 5 if prevlen == 254 else 1
        b = blob[pos]
        kind = b >> 6
        if kind == 0:
            n = b & 0x3F
            value, pos = blob[pos + 1 : pos + 1 + n], pos + 1 + n
        elif kind == 1:
            n = ((b & 0x3F) << 8) | blob[pos + 1]
            value, pos = blob[pos + 2 : pos + 2 + n], pos + 2 + n
        elif kind == 2:
            n = int.from_bytes(blob[pos + 1 : pos + 5], "big")
            value, pos = blob[pos + 5 : pos + 5 + n], pos + 5 + n
        else:
            if b == 0xC0:
                raw, width = int.from_bytes(blob[pos + 1 : pos + 3], "little", signed=True), 2
            elif b == 0xD0:
                raw, width = int.from_bytes(blob[pos + 1 : pos + 5], "little", signed=True), 4
            elif b == 0xE0:
                raw, width = int.from_bytes(blob[pos + 1 : pos + 9], "little", signed=True), 8
            elif b == 0xF0:
                raw, width = int.from_bytes(blob[pos + 1 : pos + 4], "little", signed=True), 3
            elif b == 0xFE:
                raw, width = int.from_bytes(blob[pos + 1 : pos + 2], "little", signed=True), 1
            elif 0xF1 <= b <= 0xFD:
                raw, width = (b & 0x0F) - 1, 0
            else:
                raise EncodingError("bad ziplist entry encoding")
            value, pos = str(raw).encode(), pos + 1 + width
        out.append(value)
    if pos != end:
        raise EncodingError("ziplist entries overflow")
    return out


# -- intset (RDB type 11) ----------------------------------------------------------------


def intset_members(blob: bytes) -> list[bytes]:
    if len(blob) < 8:
        raise EncodingError("intset too short")
    width, count = struct.unpack_from("<II", blob, 0)
    if width not in (2, 4, 8) or len(blob) != 8 + width * count:
        raise EncodingError("intset size mismatch")
    fmt = {2: "h", 4: "i", 8: "q"}[width]
    return [str(v).encode() for v in struct.unpack_from("<%d%s" % (count, fmt), blob, 8)]


def build_intset(values: list[int]) -> bytes:
    values = sorted(values)
    lo, hi = (values[0], values[-1]) if values else (0, 0)
    if -(2**15) <= lo and hi < 2**15:
        width, fmt = 2, "h"
    elif -(2**31) <= lo and hi < 2**31:
        width, fmt = 4, "i"
    else:
        width, fmt = 8, "q"
    return struct.pack("<II", width, len(values)) + struct.pack("<%d%s" % (len(values), fmt), *values)


# -- zipmap (RDB type 9, Redis < 2.6 hashes) -----------------------------------------------


def zipmap_pairs(blob: bytes) -> list[bytes]:
    pos = 1
    out = []
    while True:
        if pos >= len(blob):
            raise EncodingError("zipmap unterminated")
        if blob[pos] == 0xFF:
            return out
        n, pos = _zipmap_len(blob, pos)
        key = blob[pos : pos + n]
        pos += n
        n, pos = _zipmap_len(blob, pos)
        free = blob[pos]
        pos += 1
        value = blob[pos : pos + n]
        pos += n + free
        out += [key, value]


def _zipmap_len(blob: bytes, pos: int) -> tuple[int, int]:
    b = blob[pos]
    if b < 254:
        return b, pos + 1
    if b == 254:
        return int.from_bytes(blob[pos + 1 : pos + 5], "little"), pos + 5
    raise EncodingError("bad zipmap length")
