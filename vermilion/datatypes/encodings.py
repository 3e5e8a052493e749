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
    """Every entry of a listpack, integers rendered as their decimal text, after the
    checks of lpValidateIntegrity() with deep=1: the header's byte count and the
    terminator, each entry inside the blob with a backlen that matches its size, and
    the header's element count (unless 65535, "unknown"). A value Vermilion decodes is
    walked whole anyway, so the walk is the deep check: a blob Redis would only
    check shallowly (sanitize-dump-payload no) is refused here rather than held
    half-broken."""
    size = len(blob)
    if size < 7 or int.from_bytes(blob[0:4], "little") != size or blob[-1] != 0xFF:
        raise EncodingError("listpack header or terminator mismatch")
    out = []
    append = out.append
    pos, end = 6, size - 1
    while pos < end:
        b = blob[pos]
        # Fast paths for what small hashes, lists and sorted sets are made of: short
        # strings (6-bit length) and 7-bit integers, whose backlen is one byte (the
        # entry's size).
        if 0x80 <= b < 0xC0:
            stop = pos + 1 + (b & 0x3F)
            if stop < end and blob[stop] == stop - pos:
                append(blob[pos + 1 : stop])
                pos = stop + 1
                continue
        elif b < 0x80 and pos + 1 < end and blob[pos + 1] == 1:
            append(_SMALL_INTS[b])
            pos += 2
            continue
        value, pos = _lp_entry_at(blob, pos, end)
        append(value)
    count = blob[4] | (blob[5] << 8)
    if count != 65535 and count != len(out):
        raise EncodingError("listpack element count mismatch")
    return out


def _lp_entry_at(blob: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """lpValidateNext() + lpGet(): the entry at pos (end: the terminator's offset) and
    the offset after its backlen."""
    b = blob[pos]
    if b < 0x80:  # 7-bit uint
        value, size = _SMALL_INTS[b], 1
    elif b < 0xC0:  # 6-bit string length
        n = b & 0x3F
        value, size = blob[pos + 1 : pos + 1 + n], 1 + n
    elif b < 0xE0:  # 13-bit int
        if pos + 1 >= end:
            raise EncodingError("listpack entry header overflows")
        raw = ((b & 0x1F) << 8) | blob[pos + 1]
        if raw >= 1 << 12:
            raw -= 1 << 13
        value, size = b"%d" % raw, 2
    elif b < 0xF0:  # 12-bit string length
        if pos + 2 > end:
            raise EncodingError("listpack entry header overflows")
        n = ((b & 0x0F) << 8) | blob[pos + 1]
        value, size = blob[pos + 2 : pos + 2 + n], 2 + n
    elif b == 0xF0:  # 32-bit string length
        if pos + 5 > end:
            raise EncodingError("listpack entry header overflows")
        n = int.from_bytes(blob[pos + 1 : pos + 5], "little")
        value, size = blob[pos + 5 : pos + 5 + n], 5 + n
    elif b in _LP_INT_SIZES:
        width = _LP_INT_SIZES[b]
        raw = int.from_bytes(blob[pos + 1 : pos + 1 + width], "little", signed=True)
        value, size = b"%d" % raw, 1 + width
    else:  # an unknown encoding, or the terminator before the end
        raise EncodingError("bad listpack entry encoding")
    backlen = backlen_size(size)
    nxt = pos + size + backlen
    if nxt > end:
        raise EncodingError("listpack entry overflows")
    if _decode_backlen(blob, nxt - 1) != size:
        raise EncodingError("listpack entry backlen mismatch")
    return value, nxt


def _decode_backlen(blob: bytes, pos: int) -> int:
    """lpDecodeBacklen(): 7 bits a byte read right to left, the high bit = "more";
    -1 for one longer than 5 bytes."""
    value = shift = 0
    while True:
        b = blob[pos]
        value |= (b & 127) << shift
        if not b & 128:
            return value
        shift += 7
        pos -= 1
        if shift > 28:
            return -1


def iter_listpack(blob: bytes):
    """The entries of a listpack whose frame is checked, one at a time, each checked
    as lpValidateNext() checks it before it is yielded (an EncodingError where one is
    damaged): a walk that stops early checks no further."""
    pos, end = 6, len(blob) - 1
    while pos < end:
        value, pos = _lp_entry_at(blob, pos, end)
        yield value


def first_listpack_entry(blob: bytes) -> bytes:
    """lpFirst() on a listpack whose frame is checked: its first entry, which must be
    whole (lpAssertValidEntry())."""
    return _lp_entry_at(blob, 6, len(blob) - 1)[0]


def listpack_frame_ok(blob: bytes) -> bool:
    """lpValidateIntegrity() with deep=0: the header's byte count and the terminator."""
    return len(blob) >= 7 and int.from_bytes(blob[0:4], "little") == len(blob) \
        and blob[-1] == 0xFF


def unique_pairs(flat: list[bytes]) -> list[bytes]:
    """The pairs checks of lpPairsValidateIntegrityAndDups() and
    ziplistPairsConvertAndValidateIntegrity(): an even count, no field twice."""
    if len(flat) % 2:
        raise EncodingError("odd number of elements in a paired encoding")
    fields = flat[0::2]
    if len(set(fields)) != len(fields):
        raise EncodingError("duplicate field in a paired encoding")
    return flat


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

# zipEncodingLenSize(): string lengths of 1, 2 or 5 bytes; integers (16, 32, 64, 24 and
# 8 bits) one encoding byte, as the 4-bit immediates 0xF1-0xFD.
_ZIP_LENSIZE = {0x00: 1, 0x40: 2, 0x80: 5, 0xC0: 1, 0xD0: 1, 0xE0: 1, 0xF0: 1, 0xFE: 1}
_ZIP_INT_BYTES = {0xFE: 1, 0xC0: 2, 0xF0: 3, 0xD0: 4, 0xE0: 8}


def ziplist_entries(blob: bytes) -> list[bytes]:
    """Every entry of a ziplist (integers as decimal text), after the checks of
    ziplistValidateIntegrity() with deep=1 — what rdbLoadObject() always runs on a
    ziplist, since it converts each one anyway: the header's byte count, tail offset
    and count, each entry inside the blob (zipEntrySafe()) with a prevlen equal to the
    previous entry's size, and the tail offset pointing at the last entry."""
    size = len(blob)
    if size < 11 or int.from_bytes(blob[0:4], "little") != size or blob[-1] != 0xFF:
        raise EncodingError("ziplist header or terminator mismatch")
    tail = int.from_bytes(blob[4:8], "little")
    if tail > size - 1:
        raise EncodingError("ziplist tail offset out of range")
    first, last = 10, size - 1
    out = []
    pos, prev, prev_raw = first, None, 0
    while blob[pos] != 0xFF:
        prevlen_size = 1 if blob[pos] < 254 else 5
        at = pos + prevlen_size
        if at > last:
            raise EncodingError("ziplist entry header overflows")
        b = blob[at]
        encoding = b if b >= 0xC0 else b & 0xC0
        lensize = _ZIP_LENSIZE.get(encoding, 1 if 0xF1 <= encoding <= 0xFD else 0)
        if not lensize or at + lensize > last:
            raise EncodingError("bad ziplist entry encoding")
        prevlen = blob[pos] if prevlen_size == 1 else int.from_bytes(blob[pos + 1 : pos + 5],
                                                                      "little")
        if encoding == 0x00:
            length = b & 0x3F
        elif encoding == 0x40:
            length = ((b & 0x3F) << 8) | blob[at + 1]
        elif encoding == 0x80:
            length = int.from_bytes(blob[at + 1 : at + 5], "big")
        else:
            length = _ZIP_INT_BYTES.get(encoding, 0)
        header = prevlen_size + lensize
        stop = pos + header + length
        if stop > last or pos - prevlen < first or prevlen != prev_raw:
            raise EncodingError("ziplist entry out of range or prevlen mismatch")
        if encoding < 0xC0:
            out.append(blob[pos + header : stop])
        elif length:
            out.append(b"%d" % int.from_bytes(blob[pos + header : stop], "little", signed=True))
        else:  # a 4-bit immediate, 0 to 12
            out.append(_SMALL_INTS[(encoding & 0x0F) - 1])
        prev_raw = header + length
        prev = pos
        pos = stop
    count = int.from_bytes(blob[8:10], "little")
    if pos != last or (prev is not None and prev != tail) \
            or (count != 0xFFFF and count != len(out)):
        raise EncodingError("ziplist tail offset or count mismatch")
    return out


# -- intset (RDB type 11) ----------------------------------------------------------------


def intset_members(blob: bytes) -> list[bytes]:
    """The members of an intset, after intsetValidateIntegrity() with deep=1: a known
    width, a byte count that fits the header's count, not empty, and strictly
    ascending (no member twice)."""
    if len(blob) < 8:
        raise EncodingError("intset too short")
    width, count = struct.unpack_from("<II", blob, 0)
    if width not in (2, 4, 8) or len(blob) != 8 + width * count or count == 0:
        raise EncodingError("intset size mismatch")
    fmt = {2: "h", 4: "i", 8: "q"}[width]
    values = struct.unpack_from("<%d%s" % (count, fmt), blob, 8)
    if any(b <= a for a, b in zip(values, values[1:])):
        raise EncodingError("intset out of order")
    return [b"%d" % v for v in values]


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
    """field, value, ... of a zipmap, after zipmapValidateIntegrity() with deep=1
    (every length inside the blob, not empty, the header's count right unless 254:
    "too many to count")."""
    size = len(blob)
    if size < 2 or blob[-1] != 0xFF:
        raise EncodingError("zipmap header or terminator mismatch")
    out = []
    pos = 1
    while blob[pos] != 0xFF:
        pos, field = _zipmap_item(blob, pos, size, with_free=False)
        pos, value = _zipmap_item(blob, pos, size, with_free=True)
        out += [field, value]
    count = len(out) // 2
    if count == 0 or (blob[0] != 254 and blob[0] != count):
        raise EncodingError("zipmap empty or count mismatch")
    return out


def _zipmap_item(blob: bytes, pos: int, size: int, with_free: bool) -> tuple[int, bytes]:
    """A length (1 byte, or 5 from 254 up) then the data (after a free-space byte for
    a value), each step checked to stay inside [2, size - 1] as Redis's OUT_OF_RANGE."""
    lensize = 1 if blob[pos] < 254 else 5
    if pos + lensize > size - 1:
        raise EncodingError("zipmap length out of range")
    n = blob[pos] if lensize == 1 else int.from_bytes(blob[pos + 1 : pos + 5], "little")
    pos += lensize
    free = 0
    if with_free:
        free = blob[pos]
        pos += 1
    data = blob[pos : pos + n]
    pos += n + free
    if pos > size - 1:
        raise EncodingError("zipmap entry out of range")
    return pos, data
