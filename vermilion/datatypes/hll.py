"""HyperLogLog values in Redis's exact byte format (hyperloglog.c).

A HyperLogLog is a plain string: a 16-byte header ("HYLL", encoding byte 0=dense /
1=sparse, 3 unused bytes, 8-byte little-endian cached cardinality whose top bit marks
the cache invalid) followed by the registers. Dense: 16384 six-bit registers packed
little-endian-bitwise into 12288 bytes. Sparse: ZERO (00xxxxxx), XZERO (01xxxxxx
yyyyyyyy) and VAL (1vvvvvxx) run-length opcodes. Values move between Vermilion and
Redis as raw bytes, so every update follows Redis's algorithm step by step: the same
element hashes (MurmurHash64A, seed 0xadc83b19), the same in-place sparse splits and
merges (their result depends on history, so it cannot be recomputed canonically), the
same promotion points and the same estimator (Ertl's tau/sigma, Redis >= 5).

Speed comes from never looping over 16384 registers in Python: the sparse body is
tokenized with a regex into a list of opcodes (edits are list slice assignments), and
whole-register work (histograms, merges, sparse<->dense) goes through "raw" registers,
one byte per register, built and combined with bytes.translate, extended slices and
big-integer SWAR arithmetic, all running at C speed.
"""

import math
import re
import struct
from bisect import bisect_right
from collections import Counter, OrderedDict
from itertools import accumulate

P = 14
Q = 64 - P
REGISTERS = 1 << P
P_MASK = REGISTERS - 1
HDR_SIZE = 16
DENSE_SIZE = HDR_SIZE + REGISTERS * 6 // 8
DENSE, SPARSE = 0, 1
MAGIC = b"HYLL"
ALPHA_INF = 0.721347520444481703680
VAL_MAX_VALUE = 32
VAL_MAX_LEN = 4
ZERO_MAX_LEN = 64
XZERO_MAX_LEN = 16384
DEFAULT_SPARSE_MAX_BYTES = 3000

INVALID_HLL = "INVALIDOBJ Corrupted HLL object detected"
NOT_HLL = "WRONGTYPE Key is not a valid HyperLogLog string value."

_M64 = (1 << 64) - 1
_MURMUR_M = 0xc6a4a7935bd1e995
_SEED = 0xadc83b19


class Corrupted(Exception):
    """The sparse representation does not cover exactly 16384 registers."""


# -- hashing -----------------------------------------------------------------------------


def murmurhash64a(data: bytes, seed: int = _SEED) -> int:
    """MurmurHash2 64-bit as Redis has it (little-endian word reads on every arch)."""
    n = len(data)
    m = _MURMUR_M
    h = (seed ^ (n * m)) & _M64
    blocks = n >> 3
    if blocks:
        for k in struct.unpack_from("<%dQ" % blocks, data):
            k = (k * m) & _M64
            k ^= k >> 47
            h ^= (k * m) & _M64
            h = (h * m) & _M64
    tail = n & 7
    if tail:
        h ^= int.from_bytes(data[n - tail:], "little")
        h = (h * m) & _M64
    h ^= h >> 47
    h = (h * m) & _M64
    return h ^ (h >> 47)


def pat_len(element: bytes) -> tuple[int, int]:
    """hllPatLen(): (register index, length of the 000..1 run after the index bits)."""
    h = murmurhash64a(element)
    rest = (h >> P) | (1 << Q)
    return h & P_MASK, (rest & -rest).bit_length()


# -- sparse opcodes ----------------------------------------------------------------------

# One match per opcode. A lone XZERO byte at the very end reads the sds terminator
# (a zero byte) as its second byte in Redis, hence the optional second byte.
_OPCODE = re.compile(rb"[\x40-\x7f][\x00-\xff]?|[\x00-\x3f\x80-\xff]", re.DOTALL)


def _build_span_table() -> dict:
    table = {}
    for b in range(256):
        if b & 0x80:
            table[bytes((b,))] = (b & 3) + 1
        elif b & 0x40:
            table[bytes((b,))] = ((b & 0x3f) << 8) + 1
            for b2 in range(256):
                table[bytes((b, b2))] = (((b & 0x3f) << 8) | b2) + 1
        else:
            table[bytes((b,))] = (b & 0x3f) + 1
    return table


SPAN = _build_span_table()
# A VAL opcode's run as raw registers (one byte each).
_VAL_RAW = {bytes((b,)): bytes((((b >> 2) & 0x1f) + 1,)) * ((b & 3) + 1)
            for b in range(0x80, 0x100)}
_VAL_OP = {(v, n): bytes(((((v - 1) << 2) | (n - 1)) | 0x80,))
           for v in range(1, VAL_MAX_VALUE + 1) for n in range(1, VAL_MAX_LEN + 1)}


def _zero_op(length: int) -> bytes:
    if length > ZERO_MAX_LEN:
        length -= 1
        return bytes(((length >> 8) | 0x40, length & 0xff))
    return bytes((length - 1,))


def _val_value(op: bytes) -> int:
    return ((op[0] >> 2) & 0x1f) + 1


def empty_sparse() -> bytes:
    """createHLLObject(): a sparse HLL whose XZERO opcodes cover every register."""
    return MAGIC + bytes((SPARSE,)) + bytes(11) + _zero_op(XZERO_MAX_LEN)


# -- raw registers (one byte per register) -----------------------------------------------

def _table(fn) -> bytes:
    return bytes(fn(b) & 0xff for b in range(256))


_AND63 = _table(lambda b: b & 63)
_SHR6 = _table(lambda b: b >> 6)
_AND15_SHL2 = _table(lambda b: (b & 15) << 2)
_SHR4 = _table(lambda b: b >> 4)
_AND3_SHL4 = _table(lambda b: (b & 3) << 4)
_SHR2 = _table(lambda b: b >> 2)
_SHL6 = _table(lambda b: b << 6)
_SHL4 = _table(lambda b: b << 4)
_SHL2 = _table(lambda b: b << 2)

_LANES = REGISTERS
_HIGH = int.from_bytes(b"\x80" * _LANES, "little")
_ALL = (1 << (8 * _LANES)) - 1


def _or(a: bytes, b: bytes) -> bytes:
    """Bytewise OR of two equal-length strings whose set bits never overlap."""
    return (int.from_bytes(a, "little") | int.from_bytes(b, "little")).to_bytes(
        len(a), "little")


def dense_to_raw(registers) -> bytes:
    """12288 packed bytes -> 16384 register bytes. Every 3 bytes hold 4 registers:
    r0 = b0&63, r1 = b0>>6 | (b1&15)<<2, r2 = b1>>4 | (b2&3)<<4, r3 = b2>>2."""
    registers = bytes(registers)
    b0, b1, b2 = registers[0::3], registers[1::3], registers[2::3]
    raw = bytearray(REGISTERS)
    raw[0::4] = b0.translate(_AND63)
    raw[1::4] = _or(b0.translate(_SHR6), b1.translate(_AND15_SHL2))
    raw[2::4] = _or(b1.translate(_SHR4), b2.translate(_AND3_SHL4))
    raw[3::4] = b2.translate(_SHR2)
    return bytes(raw)


def raw_to_dense(raw: bytes) -> bytearray:
    """16384 register bytes (each < 64) -> the 12288 packed bytes."""
    r0, r1, r2, r3 = raw[0::4], raw[1::4], raw[2::4], raw[3::4]
    out = bytearray(REGISTERS * 6 // 8)
    out[0::3] = _or(r0, r1.translate(_SHL6))
    out[1::3] = _or(r1.translate(_SHR2), r2.translate(_SHL4))
    out[2::3] = _or(r2.translate(_SHR4), r3.translate(_SHL2))
    return out


def raw_max(a: bytes, b: bytes) -> bytes:
    """Bytewise max of two register arrays (values < 128) with SWAR on big integers:
    (a|0x80) - b never borrows across lanes and keeps bit 7 exactly where a >= b."""
    x = int.from_bytes(a, "little")
    y = int.from_bytes(b, "little")
    ge = ((((x | _HIGH) - y) & _HIGH) >> 7) * 0xff
    return ((x & ge) | (y & ~ge & _ALL)).to_bytes(_LANES, "little")


def histogram(raw: bytes) -> list:
    hist = [0] * 64
    for value in range(max(raw) + 1):
        hist[value] = raw.count(value)
    return hist


# -- the estimator -----------------------------------------------------------------------


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if previous == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if previous == z:
            return z / 3


def count_histogram(hist: list) -> int:
    """hllCount()'s estimate from a register histogram (Ertl, arXiv:1702.01284)."""
    m = float(REGISTERS)
    z = m * _tau((m - hist[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += hist[j]
        z *= 0.5
    z += m * _sigma(hist[0] / m)
    if z == 0:
        # Every register past the hash's reach (only a forged value): C divides by
        # zero and llroundl(inf) gives LLONG_MIN on x86-64.
        return -(1 << 63)
    estimate = ALPHA_INF * m * m / z
    # llroundl(): half away from zero (the value is never negative).
    whole = math.floor(estimate)
    return int(whole) + (1 if estimate - whole >= 0.5 else 0)


# -- validation and the header -----------------------------------------------------------


def is_hll(value: bytes) -> bool:
    """isHLLObjectOrReply()'s checks on a string value."""
    if len(value) < HDR_SIZE or value[:4] != MAGIC or value[4] > SPARSE:
        return False
    return value[4] != DENSE or len(value) == DENSE_SIZE


def cached_count(value: bytes):
    """The cached cardinality, or None when the cache is marked invalid."""
    if value[15] & 0x80:
        return None
    return int.from_bytes(value[8:16], "little")


# -- a value being worked on -------------------------------------------------------------


class HLL:
    """One HLL value opened for reading or updating; ``to_bytes()`` gives it back.

    A sparse HLL is held as parallel lists: opcodes, their spans, and the running end
    (exclusive) of each, so the opcode covering a register is a bisect and a split or
    merge is a slice assignment. A dense one is a bytearray of the 12288 register bytes
    plus a spare zero byte (the sds terminator Redis's register macros touch when they
    set the last register). Once computed, the register histogram is kept up to date
    by every set, so PFCOUNT after PFADD does not rescan the registers."""

    __slots__ = ("header", "dense", "ops", "spans", "ends", "size", "hist", "max_bytes")

    def __init__(self, value: bytes, max_bytes: int = DEFAULT_SPARSE_MAX_BYTES):
        self.header = bytearray(value[:HDR_SIZE])
        self.max_bytes = max_bytes
        self.hist = None
        if value[4] == DENSE:
            self.dense = bytearray(value[HDR_SIZE:])
            self.dense.append(0)
            self.ops = self.spans = self.ends = None
        else:
            self.dense = None
            self._parse(memoryview(value)[HDR_SIZE:])

    def _parse(self, body) -> None:
        self.ops = _OPCODE.findall(body)
        self.spans = list(map(SPAN.__getitem__, self.ops))
        self.ends = list(accumulate(self.spans))
        self.size = HDR_SIZE + len(body)

    @property
    def encoding(self) -> int:
        return SPARSE if self.dense is None else DENSE

    def to_bytes(self) -> bytes:
        if self.dense is None:
            return bytes(self.header) + b"".join(self.ops)
        return bytes(self.header) + bytes(memoryview(self.dense)[:-1])

    def invalidate(self) -> None:
        self.header[15] |= 0x80

    def set_cache(self, card: int) -> None:
        self.header[8:16] = (card & _M64).to_bytes(8, "little")

    # -- reading ---------------------------------------------------------------------

    def valid_sparse(self) -> bool:
        return bool(self.ends) and self.ends[-1] == REGISTERS

    def raw(self) -> bytes:
        """Registers one byte each (hllMerge); Corrupted if the sparse form is bad."""
        if self.dense is not None:
            return dense_to_raw(memoryview(self.dense)[:-1])
        if not self.valid_sparse():
            raise Corrupted()
        val_raw = _VAL_RAW
        return b"".join([val_raw[op] if op[0] & 0x80 else bytes(span)
                         for op, span in zip(self.ops, self.spans)])

    def histogram(self) -> list:
        if self.hist is not None:
            return self.hist
        if self.dense is not None:
            hist = histogram(self.raw())
        else:
            if not self.valid_sparse():
                raise Corrupted()
            # hllSparseRegHisto(): zero runs count into bucket 0, VAL runs into theirs.
            hist = [0] * 64
            for op, n in Counter(self.ops).items():
                if op[0] & 0x80:
                    hist[_val_value(op)] += SPAN[op] * n
                else:
                    hist[0] += SPAN[op] * n
        self.hist = hist
        return hist

    def count(self) -> int:
        """hllCount() for this value; Corrupted for an invalid sparse form."""
        return count_histogram(self.histogram())

    def decode(self) -> str:
        """PFDEBUG DECODE's text for a sparse value."""
        parts = []
        for op, span in zip(self.ops, self.spans):
            b = op[0]
            if b & 0x80:
                parts.append("v:%d,%d" % (_val_value(op), span))
            elif b & 0x40:
                parts.append("Z:%d" % span)
            else:
                parts.append("z:%d" % span)
        return " ".join(parts)

    # -- updating --------------------------------------------------------------------

    def to_dense(self) -> None:
        """hllSparseToDense(): the header (magic, cache, unused bytes) is kept."""
        if self.dense is not None:
            return
        raw = self.raw()
        self.header[4] = DENSE
        self.dense = raw_to_dense(raw)
        self.dense.append(0)
        self.ops = self.spans = self.ends = None

    def add(self, element: bytes) -> int:
        """hllAdd(): 1 when a register grew, 0 if not; Corrupted if invalid."""
        index, count = pat_len(element)
        return self.set(index, count)

    def set(self, index: int, count: int) -> int:
        if self.dense is not None:
            return self._dense_set(index, count)
        result = self._sparse_set(index, count)
        if result is None:  # promote, then the register certainly changes
            self.to_dense()
            return self._dense_set(index, count)
        return result

    def _count_moves(self, old: int, new: int) -> None:
        hist = self.hist
        if hist is not None:
            hist[old] -= 1
            hist[new] += 1

    def _dense_set(self, index: int, count: int) -> int:
        buf = self.dense
        pos = index * 6
        byte = pos >> 3
        fb = pos & 7
        fb8 = 8 - fb
        b0, b1 = buf[byte], buf[byte + 1]
        old = ((b0 >> fb) | (b1 << fb8)) & 63
        if count <= old:
            return 0
        buf[byte] = (b0 & ~(63 << fb) | (count << fb)) & 0xff
        buf[byte + 1] = (b1 & ~(63 >> fb8) | (count >> fb8)) & 0xff
        if self.hist is not None:
            self._count_moves(old, count)
        return 1

    def _sparse_set(self, index: int, count: int):
        """hllSparseSet(): 1 / 0, None to promote to dense; Corrupted if invalid."""
        if count > VAL_MAX_VALUE:
            return None
        ops, spans, ends = self.ops, self.spans, self.ends
        i = bisect_right(ends, index)
        if i == len(ends):
            raise Corrupted()  # no opcode covers the register
        op = ops[i]
        span = spans[i]
        first = ends[i] - span
        kind = op[0] & 0xc0
        is_val = kind & 0x80
        prev = i - 1 if i > 0 else None
        current = _val_value(op) if is_val else 0
        if is_val and current >= count:
            return 0
        if span == 1 and (is_val or kind == 0):
            ops[i] = _VAL_OP[count, 1]
        else:
            # Split the run into [before] VAL(count,1) [after].
            last = first + span - 1
            seq, seq_spans = [], []
            if index != first:
                n = index - first
                seq.append(_VAL_OP[current, n] if is_val else _zero_op(n))
                seq_spans.append(n)
            seq.append(_VAL_OP[count, 1])
            seq_spans.append(1)
            if index != last:
                n = last - index
                seq.append(_VAL_OP[current, n] if is_val else _zero_op(n))
                seq_spans.append(n)
            delta = sum(map(len, seq)) - (2 if kind == 0x40 else 1)
            if delta > 0 and self.size + delta > self.max_bytes:
                return None
            ops[i:i + 1] = seq
            spans[i:i + 1] = seq_spans
            ends[i:i + 1] = list(accumulate(seq_spans, initial=first))[1:]
            self.size += delta
            if kind == 0x40 and len(op) == 1:
                # A truncated XZERO at the very end (forged value): Redis counts it as
                # 2 bytes, so the string ends one byte before the new sequence does.
                self._parse(b"".join(ops)[:-1])
        if self.hist is not None:
            self._count_moves(current, count)
        self._merge(prev)
        self.header[15] |= 0x80  # hllSparseSet() invalidates the cache itself
        return 1

    def _merge(self, prev) -> None:
        """Step 4 of hllSparseSet(): from the previous opcode, look at up to 5 opcodes
        and fold adjacent VALs of equal value when their lengths fit in one."""
        ops, spans, ends = self.ops, self.spans, self.ends
        j = prev if prev is not None else 0
        scan = 5
        while j < len(ops) and scan > 0:
            scan -= 1
            op = ops[j]
            if not op[0] & 0x80:
                j += 1
                continue
            if j + 1 < len(ops) and ops[j + 1][0] & 0x80:
                value = _val_value(op)
                if value == _val_value(ops[j + 1]):
                    length = spans[j] + spans[j + 1]
                    if length <= VAL_MAX_LEN:
                        ops[j + 1] = _VAL_OP[value, length]
                        spans[j + 1] = length
                        del ops[j]
                        del spans[j]
                        del ends[j]
                        self.size -= 1
                        continue
            j += 1

    def merge_from(self, raw: bytes) -> None:
        """PFMERGE's write into this (destination) value: every non-zero register of
        raw is set in order, as hllDenseSet()/hllSparseSet() would."""
        if self.dense is not None:
            current = dense_to_raw(memoryview(self.dense)[:-1])
            self.dense = raw_to_dense(raw_max(current, raw))
            self.dense.append(0)
            self.hist = None
            return
        for m in re.finditer(rb"[^\x00]", raw):
            j = m.start()
            self.set(j, raw[j])
            if self.dense is not None:  # promoted: the rest is a plain register max
                self.merge_from(raw)
                return


# -- parsed values kept between commands -------------------------------------------------

# Parsing a sparse body or histogramming a dense one costs far more than one PFADD, and
# consecutive commands on a key see the very bytes object the previous one stored. So
# the parsed form of recently stored values is kept, keyed by object identity (the
# bytes object itself is held too, so an id is never reused while its entry lives).
_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 32


def take(value: bytes, max_bytes: int = DEFAULT_SPARSE_MAX_BYTES) -> HLL:
    """An HLL to modify: the cached parse of value (now owned by the caller) or a new one."""
    entry = _CACHE.pop(id(value), None)
    opened = entry[1] if entry is not None and entry[0] is value else HLL(value)
    opened.max_bytes = max_bytes
    return opened


def peek(value: bytes) -> HLL:
    """An HLL to read only (not to modify): cached when possible."""
    entry = _CACHE.get(id(value))
    if entry is not None and entry[0] is value:
        return entry[1]
    opened = HLL(value)
    keep(value, opened)
    return opened


def keep(value: bytes, opened: HLL) -> None:
    """Remember that value (just stored) parses as opened."""
    _CACHE[id(value)] = (value, opened)
    _CACHE.move_to_end(id(value))
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
