"""RDB snapshots in Redis's format (rdb.c): read versions 1–11, write version 10 (Redis 7.0).

The writer streams to a binary file object; the reader works on a bytes buffer (an RDB
file is read whole, as a DUMP payload is). CRC64 is Redis's (anycrc's CRC64-REDIS model)
and LZF is liblzf (python-lzf), both in C: a pure-Python CRC over a 25 MB file would
dominate a save.
"""

from __future__ import annotations

import contextlib
import gc
import random
import struct
import time
from itertools import chain

import anycrc
import lzf

from .. import REDIS_VERSION
from ..datatypes import encodings as enc
from ..datatypes.packed import UNPACKERS, PackedValue, packed_cost
from ..datatypes.encodings import EncodingError, listpack_entries
from ..keyspace.cost import flat_cost, flat_zset_cost, key_cost, key_cost_of

RDB_VERSION = 10  # what Redis 7.0 writes; it loads up to this version
MAX_READ_VERSION = 11  # Redis 7.2's files load too (same opcodes, new set listpack type)

# Opcodes and types (rdb.h).
OP_FUNCTION2, OP_MODULE_AUX, OP_IDLE, OP_FREQ = 245, 247, 248, 249
OP_AUX, OP_RESIZEDB, OP_EXPIRETIME_MS, OP_EXPIRETIME, OP_SELECTDB, OP_EOF = 250, 251, 252, 253, 254, 255
OP_FUNCTION_PRE_GA = 246
T_STRING, T_LIST, T_SET, T_ZSET, T_HASH, T_ZSET_2 = 0, 1, 2, 3, 4, 5
T_MODULE_PRE_GA, T_MODULE_2 = 6, 7
T_HASH_ZIPMAP, T_LIST_ZIPLIST, T_SET_INTSET, T_ZSET_ZIPLIST, T_HASH_ZIPLIST = 9, 10, 11, 12, 13
T_LIST_QUICKLIST, T_STREAM_LISTPACKS, T_HASH_LISTPACK, T_ZSET_LISTPACK = 14, 15, 16, 17
T_LIST_QUICKLIST_2, T_STREAM_LISTPACKS_2, T_SET_LISTPACK, T_STREAM_LISTPACKS_3 = 18, 19, 20, 21
TYPE_NAMES = {
    T_STRING: "string", T_LIST: "list", T_SET: "set", T_ZSET: "zset", T_HASH: "hash",
    T_ZSET_2: "zset", T_MODULE_PRE_GA: "module", T_MODULE_2: "module",
    T_HASH_ZIPMAP: "hash", T_LIST_ZIPLIST: "list", T_SET_INTSET: "set",
    T_ZSET_ZIPLIST: "zset", T_HASH_ZIPLIST: "hash", T_LIST_QUICKLIST: "list",
    T_STREAM_LISTPACKS: "stream", T_HASH_LISTPACK: "hash", T_ZSET_LISTPACK: "zset",
    T_LIST_QUICKLIST_2: "list", T_STREAM_LISTPACKS_2: "stream", T_SET_LISTPACK: "set",
    T_STREAM_LISTPACKS_3: "stream",
}
STREAM_TYPES = (T_STREAM_LISTPACKS, T_STREAM_LISTPACKS_2, T_STREAM_LISTPACKS_3)
QUICKLIST_NODE_PLAIN, QUICKLIST_NODE_PACKED = 1, 2
ENC_INT8, ENC_INT16, ENC_INT32, ENC_LZF = 0, 1, 2, 3

CRC64 = anycrc.Model("CRC64-REDIS")


class RDBError(Exception):
    """The file or payload cannot be loaded; the message says what and where.

    Raised by a file load, it also carries where, in redis-check-rdb's terms: offset
    (the bytes read before the read that failed), doing (what was being read: read-type,
    read-key, read-object-value, read-aux, check-sum...), and the key and RDB type of
    the entry being read; head is the line Redis logs first for this kind of failure."""

    def __init__(self, reason: str, offset: int | None = None, doing: str | None = None,
                 key: bytes | None = None, rdb_type: int | None = None,
                 head: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self.doing = doing
        self.key = key
        self.rdb_type = rdb_type
        self.head = head

    def report_lines(self) -> list[str]:
        """The failure as the lines Redis logs for it (its rdbLoad warning, then
        redis-check-rdb's error block)."""
        lines = [self.head] if self.head else []
        if self.offset is None:
            return lines + [self.reason]
        lines.append(f"[offset {self.offset}] {self.reason}")
        if self.doing:
            lines.append(f"[additional info] While doing: {self.doing}")
        if self.key is not None:
            lines.append(f"[additional info] Reading key '{_printable(self.key)}'")
        if self.rdb_type is not None:
            lines.append(f"[additional info] Reading type {self.rdb_type} "
                         f"({type_label(self.rdb_type)})")
        return lines

    def __str__(self) -> str:
        # One line (the server logs it as one): the head, the offset and reason, and
        # the context in brackets.
        lines = self.report_lines()
        if self.offset is None:
            return " ".join(lines)
        start = 2 if self.head else 1
        text = " ".join(lines[:start])
        details = [line.removeprefix("[additional info] ") for line in lines[start:]]
        return f"{text} ({'; '.join(details)})" if details else text


def _printable(key: bytes) -> str:
    return key.decode("utf-8", "backslashreplace")


# redis-check-rdb's names for the RDB types (rdb_type_string[], indexed by type).
CHECK_TYPE_NAMES = (
    "string", "list-linked", "set-hashtable", "zset-v1", "hash-hashtable", "zset-v2",
    "module-value", "", "", "hash-zipmap", "list-ziplist", "set-intset", "zset-ziplist",
    "hash-ziplist", "quicklist", "stream", "hash-listpack", "zset-listpack", "quicklist-v2",
)


def type_label(rdb_type: int) -> str:
    """redis-check-rdb's name of a type, or (for those it has none: modules v2, the
    types added after 7.0) the family name."""
    if rdb_type < len(CHECK_TYPE_NAMES) and CHECK_TYPE_NAMES[rdb_type]:
        return CHECK_TYPE_NAMES[rdb_type]
    return TYPE_NAMES.get(rdb_type, "unknown")


EOF_REASON = "Unexpected EOF reading RDB file"
EOF_HEAD = "Short read or OOM loading DB. Unrecoverable error, aborting now."


# ===================================================================== writing


class Writer:
    """Appends RDB-encoded items to a list of chunks (flushed to a file by the caller)."""

    def __init__(self, compression: bool = True):
        self.chunks: list[bytes] = []
        self.compression = compression

    def getvalue(self) -> bytes:
        return b"".join(self.chunks)

    def byte(self, b: int) -> None:
        self.chunks.append(_BYTES[b])

    def length(self, n: int) -> None:
        self.chunks.append(encode_length(n))

    def string(self, s: bytes) -> None:
        self.chunks.append(encode_string(s, self.compression))

    def double_binary(self, d: float) -> None:
        self.chunks.append(struct.pack("<d", d))


_BYTES = [bytes((b,)) for b in range(256)]


def encode_length(n: int) -> bytes:
    if n < 64:
        return bytes((n,))
    if n < 16384:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def encode_string(s: bytes, compression: bool = True) -> bytes:
    n = len(s)
    if n <= 11 and n and s[0] in enc.NUMERIC_START:
        # rdbTryIntegerEncoding(): canonical integers that fit 32 bits are stored as ints.
        value = enc.canonical_int(s)
        if value is not None:
            if -128 <= value <= 127:
                return bytes((0xC0 | ENC_INT8,)) + value.to_bytes(1, "little", signed=True)
            if -32768 <= value <= 32767:
                return bytes((0xC0 | ENC_INT16,)) + value.to_bytes(2, "little", signed=True)
            if -(2**31) <= value < 2**31:
                return bytes((0xC0 | ENC_INT32,)) + value.to_bytes(4, "little", signed=True)
    if compression and n > 20:
        packed = lzf.compress(s, n - 4)  # Redis only keeps it if it saves > 4 bytes
        if packed:
            return b"\xc3" + encode_length(len(packed)) + encode_length(n) + packed
    if n < 64:
        return b"%c%s" % (n, s)
    return encode_length(n) + s


def write_value(w: Writer, value, limits: dict, key: bytes | None = None) -> None:
    """Type byte, then the key (when given), then the value, with Redis 7.0's choice
    of encoding. Without a key this is the body of a DUMP payload."""
    if type(value) is bytes:
        w.byte(T_STRING)
        if key is not None:
            w.string(key)
        w.string(value)
        return
    if type(value) is PackedValue:
        _write_packed(w, value, key)
        return
    kind = value.type_name
    writer = _VALUE_WRITERS.get(kind)
    if writer is None:
        raise RDBError(f"cannot save a value of type {kind}")
    writer(w, value, limits, key)


def _type_and_key(w: Writer, rdb_type: int, key: bytes | None) -> None:
    w.byte(rdb_type)
    if key is not None:
        w.string(key)


def _write_list(w: Writer, value, limits, key) -> None:
    # Redis 7.0 saves lists as a quicklist of listpack nodes (RDB_TYPE_LIST_QUICKLIST_2).
    items = list(value)
    node_size = _listpack_node_entries(limits.get("list-max-listpack-size", -2), items)
    nodes = [items[i : i + node_size] for i in range(0, len(items), node_size)]
    _type_and_key(w, T_LIST_QUICKLIST_2, key)
    w.length(len(nodes))
    for node in nodes:
        w.length(QUICKLIST_NODE_PACKED)
        w.string(enc.build_listpack(node))


def _listpack_node_entries(setting: int, items: list[bytes]) -> int:
    if setting > 0:
        return setting
    # Negative settings bound a node's bytes (-2 = 8 KB); approximate by entry count.
    size_limit = {-1: 4096, -2: 8192, -3: 16384, -4: 32768, -5: 65536}.get(setting, 8192)
    if len(items) <= 64 and sum(map(len, items)) + 11 * len(items) < size_limit:
        return 64  # a small list: one node whatever its entries' exact sizes
    sample = items[:64]
    avg = (sum(len(i) for i in sample) / len(sample) + 2) if sample else 1
    return max(1, int(size_limit // avg))


def _write_hash(w: Writer, value, limits, key) -> None:
    if getattr(value, "encoding", "hashtable") == "listpack":
        _type_and_key(w, T_HASH_LISTPACK, key)
        w.string(enc.build_listpack(list(chain.from_iterable(value.items()))))
        return
    _type_and_key(w, T_HASH, key)
    w.length(len(value))
    for field, val in value.items():
        w.string(field)
        w.string(val)


def _write_set(w: Writer, value, limits, key) -> None:
    if getattr(value, "encoding", "hashtable") == "intset":
        _type_and_key(w, T_SET_INTSET, key)
        w.string(enc.build_intset([int(m) for m in value]))
        return
    _type_and_key(w, T_SET, key)
    w.length(len(value))
    for member in value:
        w.string(member)


def _write_zset(w: Writer, value, limits, key) -> None:
    pairs = list(zset_pairs(value))
    if getattr(value, "encoding", "skiplist") == "listpack":
        _type_and_key(w, T_ZSET_LISTPACK, key)
        flat = []
        for member, score in pairs:
            flat += [member, score_text(score)]
        w.string(enc.build_listpack(flat))
        return
    _type_and_key(w, T_ZSET_2, key)
    w.length(len(pairs))
    # Redis writes the skiplist from the tail so loading inserts at the head cheaply.
    for member, score in reversed(pairs):
        w.string(member)
        w.double_binary(score)


def zset_pairs(value):
    """(member, score) in score order, whatever the sorted-set class offers."""
    if hasattr(value, "items_by_score"):
        return value.items_by_score()
    return sorted(value.scores.items(), key=lambda kv: (kv[1], kv[0]))


def score_text(score: float) -> bytes:
    # Listpack scores are strings (integers when whole), as zzlInsertAt's d2string prints.
    if score != score or score in (float("inf"), float("-inf")):
        return b"%.17g" % score
    if score == int(score) and abs(score) < 2**53:
        return b"%d" % int(score)
    return b"%.17g" % score


_VALUE_WRITERS = {"list": _write_list, "hash": _write_hash, "set": _write_set,
                  "zset": _write_zset}


def debug_delay(usec: int) -> None:
    """debugDelay(): sleep usec µs; a negative value sleeps 1 µs with probability 1/-usec
    (short delays without a system call per key)."""
    if usec < 0:
        usec = 1 if random.randrange(-usec) == 0 else 0
    if usec:
        time.sleep(usec / 1_000_000)


_STRING_TYPE = bytes((T_STRING,))
_EXPIRE_MS_OP = bytes((OP_EXPIRETIME_MS,))


def dump_snapshot(dbs, out, compression: bool = True, checksum: bool = True,
                  limits: dict | None = None, aux: dict | None = None,
                  functions=(), key_delay_us: int = 0, progress=None) -> int:
    """Write a whole RDB file to the binary file object out; returns bytes written.
    key_delay_us: rdb-key-save-delay, a pause after each key (debugDelay()), which
    tests use to keep a save running. progress: called with the count of keys written
    so far, every 1024 keys (rdbSaveRio()'s sendChildInfo())."""
    limits = limits or {}
    crc = 0
    total = 0
    w = Writer(compression)

    def flush() -> None:
        nonlocal crc, total
        data = w.getvalue()
        w.chunks.clear()
        if checksum:
            crc = CRC64.calc(data, crc)
        out.write(data)
        total += len(data)

    w.chunks.append(b"REDIS%04d" % RDB_VERSION)
    fields = {
        b"redis-ver": REDIS_VERSION.encode(),
        b"redis-bits": b"64",
        b"ctime": str(int(time.time())).encode(),
        b"used-mem": b"0",
        b"aof-base": b"0",
    }
    fields.update(aux or {})
    for name, val in fields.items():
        w.byte(OP_AUX)
        w.string(name)
        w.string(val)
    for code in functions:  # rdbSaveFunctions(): one FUNCTION2 entry per library
        w.byte(OP_FUNCTION2)
        w.string(code)
    written = 0  # keys
    for db in dbs:
        if not db.data:
            continue
        w.byte(OP_SELECTDB)
        w.length(db.id)
        w.byte(OP_RESIZEDB)
        w.length(len(db.data))
        w.length(len(db.expires))
        expires = db.expires
        chunks = w.chunks
        for written, (key, value) in enumerate(db.data.items(), written + 1):
            if expires:
                when = expires.get(key)
                if when is not None:
                    chunks.append(_EXPIRE_MS_OP + struct.pack("<q", when))
            if type(value) is bytes:  # write_value() inlined for the common key
                chunks.append(_STRING_TYPE + encode_string(key, compression)
                              + encode_string(value, compression))
            else:
                write_value(w, value, limits, key)
            if len(chunks) > 8192:
                flush()
            if key_delay_us:
                flush()  # what was written so far is in the file meanwhile
                debug_delay(key_delay_us)
            if progress is not None and not written & 1023:
                progress(written)
    w.byte(OP_EOF)
    flush()
    out.write(struct.pack("<Q", crc if checksum else 0))
    return total + 8


# ===================================================================== reading


class Reader:
    """A cursor over an RDB byte buffer, with the options values are built by."""

    __slots__ = ("buf", "pos", "opts")

    def __init__(self, buf: bytes, pos: int = 0, opts: "LoadOptions | None" = None):
        self.buf = buf
        self.pos = pos
        self.opts = opts or DEFAULT_OPTIONS

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise RDBError(EOF_REASON)
        chunk = self.buf[self.pos : end]
        self.pos = end
        return chunk

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            raise RDBError(EOF_REASON)
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def length_or_encoding(self) -> tuple[int, bool]:
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        raise RDBError(f"Unknown length encoding {kind} in rdbLoadLen()")

    def length(self) -> int:
        n, encoded = self.length_or_encoding()
        if encoded:
            raise RDBError("Unexpected encoded length")
        return n

    def string(self) -> bytes:
        plain = _plain_string(self)  # the common 6/14-bit length case, inline
        if plain is not None:
            return plain
        n, encoded = self.length_or_encoding()
        if not encoded:
            return self.take(n)
        if n == ENC_INT8:
            return str(int.from_bytes(self.take(1), "little", signed=True)).encode()
        if n == ENC_INT16:
            return str(int.from_bytes(self.take(2), "little", signed=True)).encode()
        if n == ENC_INT32:
            return str(int.from_bytes(self.take(4), "little", signed=True)).encode()
        if n == ENC_LZF:
            clen, size = self.length(), self.length()
            packed = self.take(clen)
            # LZF expands at most 88 times (a 3-byte back reference makes 264 bytes):
            # a larger size is a corrupt length, refused before it is allocated.
            data = b"" if size == 0 else None  # lzf_decompress() "succeeds" at 0
            if size and size <= 88 * clen:
                try:
                    data = lzf.decompress(packed, size)
                except ValueError:
                    pass
            if data is None or len(data) != size:
                raise RDBError("Invalid LZF compressed string")
            return data
        raise RDBError(f"Unknown RDB string encoding type {n}")

    def double_binary(self) -> float:
        return struct.unpack("<d", self.take(8))[0]

    def double_text(self) -> float:
        # RDB_TYPE_ZSET (old): 253 = nan, 254 = +inf, 255 = -inf, else a length + text.
        n = self.byte()
        if n == 253:
            return float("nan")
        if n == 254:
            return float("inf")
        if n == 255:
            return float("-inf")
        return float(self.take(n))


def _plain_string(r: Reader) -> bytes | None:
    """A length-prefixed string (6- or 14-bit length) read inline — the common case of
    keys and small values on load; None (nothing consumed) for any other encoding."""
    buf, pos = r.buf, r.pos
    if pos >= len(buf):
        return None
    first = buf[pos]
    if first < 0x40:
        start, size = pos + 1, first
    elif first < 0x80 and pos + 1 < len(buf):
        start, size = pos + 2, ((first & 0x3F) << 8) | buf[pos + 1]
    else:
        return None
    end = start + size
    if end > len(buf):
        return None
    r.pos = end
    return buf[start:end]


def read_value(r: Reader, rdb_type: int, key: bytes):
    """Decode one value of rdb_type into Vermilion's representation (EmptyKey for a
    collection with nothing in it)."""
    try:
        loader = _VALUE_READERS[rdb_type]
    except KeyError:
        name = TYPE_NAMES.get(rdb_type)
        if name in ("stream", "module"):
            raise RDBError(
                f"Can't load key '{key.decode('utf-8', 'replace')}': values of type "
                f"{name} (RDB type {rdb_type}) are not supported yet") from None
        raise RDBError(f"Unknown RDB encoding type {rdb_type}") from None
    try:
        return loader(r)
    except CORRUPTION as exc:
        raise _corrupt(rdb_type, exc) from None


class EmptyKey(RDBError):
    """rdbLoadObject()'s goto emptykey: a collection with no element. A file load
    skips the key (with a warning, as Redis has done since empty keys were a bug it
    shipped, #8453); RESTORE replies Bad data format."""

    def __init__(self):
        super().__init__("empty key")


class LoadOptions:
    """What rdbLoadObject() reads off the server as it builds a value: the encoding
    limits (each loaded collection is encoded by them, whatever encoding the file used)
    and deep_integrity_validation (sanitize-dump-payload). Vermilion decodes every
    value it loads but the start-up load's packed ones, which is itself the deep walk
    of each blob: deep only decides that those are decoded (and so checked) at load,
    and which of Redis's words a duplicate hash field gets."""

    __slots__ = ("hash_max_entries", "hash_max_value", "zset_max_entries", "zset_max_value",
                 "set_max_intset_entries", "deep", "checksum")

    def __init__(self, hash_max_entries: int = 512, hash_max_value: int = 64,
                 zset_max_entries: int = 128, zset_max_value: int = 64,
                 set_max_intset_entries: int = 512, deep: bool = False,
                 checksum: bool = True):
        self.hash_max_entries = hash_max_entries
        self.hash_max_value = hash_max_value
        self.zset_max_entries = zset_max_entries
        self.zset_max_value = zset_max_value
        self.set_max_intset_entries = set_max_intset_entries
        self.deep = deep
        # rdbLoadRio(): a file's CRC64 is checked under rdbchecksum yes, unless DEBUG
        # SET-SKIP-CHECKSUM-VALIDATION 1.
        self.checksum = checksum

    @classmethod
    def from_config(cls, config, deep: bool | None = None,
                    checksum: bool = True) -> "LoadOptions":
        """The server's limits; deep as sanitize-dump-payload says for a load (yes;
        clients skips loads) unless given (RESTORE decides it per client)."""
        if deep is None:
            deep = config["sanitize-dump-payload"] == "yes"
        return cls(config["hash-max-listpack-entries"], config["hash-max-listpack-value"],
                   config["zset-max-listpack-entries"], config["zset-max-listpack-value"],
                   config["set-max-intset-entries"], deep,
                   checksum and config["rdbchecksum"])


DEFAULT_OPTIONS = LoadOptions()
_UNLIMITED = 1 << 62
# A packed value was checked against the entry limits when it was loaded, and a blob's
# values are not measured (rdbLoadObject skips that O(N) scan): it unpacks as it is.
_AS_PACKED = LoadOptions(_UNLIMITED, _UNLIMITED, _UNLIMITED, _UNLIMITED, _UNLIMITED)


# What decoding a damaged value can raise.
CORRUPTION = (RDBError, EncodingError, ValueError, IndexError, KeyError, struct.error,
              OverflowError)

# rdbLoadObject()'s message when a value's compact encoding fails its integrity check.
INTEGRITY_FAILED = {
    T_LIST_QUICKLIST_2: "Listpack integrity check failed.",
    T_LIST_QUICKLIST: "Ziplist integrity check failed.",
    T_HASH_ZIPMAP: "Zipmap integrity check failed.",
    T_LIST_ZIPLIST: "List ziplist integrity check failed.",
    T_SET_INTSET: "Intset integrity check failed.",
    T_ZSET_ZIPLIST: "Zset ziplist integrity check failed.",
    T_ZSET_LISTPACK: "Zset listpack integrity check failed.",
    T_HASH_ZIPLIST: "Hash ziplist integrity check failed.",
    T_HASH_LISTPACK: "Hash listpack integrity check failed.",
    T_SET_LISTPACK: "Set listpack integrity check failed.",
}

# The line of each rdbReportCorruptRDB() message in Debian's build of rdb.c 7.0.15, for
# the "function at rdb.c:N" of the log line (tools.py's RDB_C_LINES, read off the
# real tool).
RDB_C_LINES = {
    "Duplicate set members detected": 1829, "Zset with NAN score detected": 1882,
    "Duplicate zset fields detected": 1894, "Hash with dup elements": 1951,
    "Duplicate hash fields detected": 2019, "Quicklist integrity check failed.": 2048,
    "Listpack integrity check failed.": 2071, "Ziplist integrity check failed.": 2081,
    "Zipmap integrity check failed.": 2130, "List ziplist integrity check failed.": 2189,
    "Intset integrity check failed.": 2214, "Zset ziplist integrity check failed.": 2229,
    "Zset listpack integrity check failed.": 2255,
    "Hash ziplist integrity check failed.": 2275,
    "Hash listpack integrity check failed.": 2301,
    "Stream node key entry is not the size of a stream ID": 2343,
    "Stream listpack integrity check failed.": 2362, "Empty listpack inside stream": 2374,
    "Listpack re-added with existing key": 2386,
    "Stream length inconsistent with rax entries": 2430,
    "Duplicate stream consumer detected.": 2543,
    "Consumer entry not found in group global PEL": 2573,
    "Stream CG PEL entry without consumer": 2611,
    "Invalid LZF compressed string": 413,
}


def corruption_log_line(reason: str, offset: int = 0) -> str:
    """rdbReportError()'s line for a value that failed to load."""
    head = reason.split(" (", 1)[0]
    line = RDB_C_LINES.get(head)
    if line is None and head.startswith("Hash zipmap with dup elements"):
        line = 2154
    elif line is None and head.startswith("Duplicated consumer group name"):
        line = 2480
    return (f"Internal error in RDB reading offset {offset}, function at "
            f"rdb.c:{line or 0} -> {reason}")


def _corrupt(rdb_type: int, exc: Exception) -> RDBError:
    """A value that failed to decode, in Redis's words where it has some (the caller
    knows the key and offset: iter_load_snapshot adds them)."""
    if isinstance(exc, RDBError):
        return exc  # a short read, a bad length or string encoding: already worded
    if rdb_type in INTEGRITY_FAILED:  # whatever the blob's decoder tripped on
        return RDBError(INTEGRITY_FAILED[rdb_type])
    return RDBError(str(exc) or type(exc).__name__)


def _strings(r: Reader, count: int) -> list[bytes]:
    """count strings in a row (a set's members): short plain ones read inline."""
    buf, pos, size = r.buf, r.pos, len(r.buf)
    out = []
    append = out.append
    for _ in range(count):
        n = buf[pos] if pos < size else 0xFF
        if n < 0x40 and pos + 1 + n <= size:
            append(buf[pos + 1 : pos + 1 + n])
            pos += 1 + n
        else:
            r.pos = pos
            append(r.string())
            pos = r.pos
    r.pos = pos
    return out


def _nonempty(count: int) -> int:
    if not count:
        raise EmptyKey()
    return count


def _read_list_plain(r):
    return _types.make_list(_strings(r, _nonempty(r.length())))


def _read_list_ziplist(r):
    try:
        items = enc.ziplist_entries(r.string())
    except EncodingError:
        raise RDBError(INTEGRITY_FAILED[T_LIST_ZIPLIST]) from None
    return _types.make_list(_nonempty_list(items))


def _nonempty_list(items: list) -> list:
    if not items:
        raise EmptyKey()
    return items


def _read_list_quicklist(r):
    items: list[bytes] = []
    for _ in range(_nonempty(r.length())):
        blob = r.string()
        if not blob:
            raise RDBError("Empty quicklist node")  # rdbLoadObject: encoded_len 0
        try:
            items += enc.ziplist_entries(blob)  # empty nodes are skipped, as Redis does
        except EncodingError:
            raise RDBError(INTEGRITY_FAILED[T_LIST_QUICKLIST]) from None
    return _types.make_list(_nonempty_list(items))


def _quicklist2_entries(r) -> list[bytes]:
    buf, pos = r.buf, r.pos
    if buf[pos : pos + 2] == b"\x01\x02":  # 1 node, QUICKLIST_NODE_PACKED
        r.pos = pos + 2  # one packed node: every list up to 8 KB
        blob = r.string()
        if not blob:
            raise RDBError("Empty quicklist node")
        return _nonempty_list(listpack_entries(blob))
    items: list[bytes] = []
    for _ in range(_nonempty(r.length())):
        # (1 or 2: one byte; past the end of a stream still arriving, a short read)
        container = r.byte() if r.pos < len(r.buf) and r.buf[r.pos] < 0x40 else r.length()
        if container not in (QUICKLIST_NODE_PLAIN, QUICKLIST_NODE_PACKED):
            raise RDBError("Quicklist integrity check failed.")
        blob = r.string()
        if not blob:
            raise RDBError("Empty quicklist node")  # rdbLoadObject: encoded_len 0
        if container == QUICKLIST_NODE_PLAIN:
            items.append(blob)
        else:  # an empty listpack node is skipped, as Redis does
            items += listpack_entries(blob)
    return _nonempty_list(items)


def _set_entries(r) -> list[bytes]:
    return _strings(r, _nonempty(r.length()))


def _read_set_intset(r):
    return _types.make_set(enc.intset_members(r.string()), r.opts.set_max_intset_entries)


def _read_hash(r):
    n = _nonempty(r.length())
    pairs = [(r.string(), r.string()) for _ in range(n)]
    opts = r.opts
    value = _types.make_hash(pairs, opts.hash_max_entries, opts.hash_max_value)
    if len(value) != n:
        # A listpack-sized hash is checked for duplicates only under deep sanitization
        # (Redis would keep a listpack with the field twice); a dict cannot hold them.
        raise RDBError("Hash with dup elements" if opts.deep and n <= opts.hash_max_entries
                       else "Duplicate hash fields detected")
    return value


def _read_zset(r, read_score):
    n = _nonempty(r.length())
    scores = {}
    for _ in range(n):
        member = r.string()
        score = read_score(r)
        if score != score:
            raise RDBError("Zset with NAN score detected")
        scores[member] = score
    if len(scores) != n:
        raise RDBError("Duplicate zset fields detected")
    opts = r.opts
    return _types.make_zset_scores(scores, opts.zset_max_entries, opts.zset_max_value)


def _read_zset1(r):
    return _read_zset(r, Reader.double_text)


def _read_zset2(r):
    return _read_zset(r, Reader.double_binary)


# Values stored as one blob of a compact encoding: its decoder, then a builder of the
# value from the flat entries (field, value, ... for hashes; member, score, ... for
# sorted sets) and the load options.


def _hash_from_pairs(flat: list[bytes], opts: LoadOptions):
    """A ziplist or listpack hash: only its length decides the encoding (the values'
    sizes are not scanned, as rdbLoadObject does not). A field twice (or an odd count)
    fails the pairs check (lpPairsValidateIntegrityAndDups, ziplistPairs...): found
    after the build, by its size."""
    if len(flat) % 2:
        raise EncodingError("odd number of elements in a paired encoding")
    value = _types.make_hash_flat(_nonempty_list(flat), opts.hash_max_entries, _UNLIMITED)
    if 2 * len(value) != len(flat):
        raise EncodingError("duplicate field in a paired encoding")
    return value


def _hash_from_zipmap(flat: list[bytes], opts: LoadOptions):
    # A zipmap is converted entry by entry: its longest field or value counts too.
    return _types.make_hash_flat(flat, opts.hash_max_entries, opts.hash_max_value)


def _zset_from_pairs(flat: list[bytes], opts: LoadOptions):
    if len(flat) % 2:
        raise EncodingError("odd number of elements in a paired encoding")
    it = iter(_nonempty_list(flat))
    scores = dict(zip(it, map(float, it)))
    if 2 * len(scores) != len(flat):
        raise EncodingError("duplicate member in a paired encoding")
    return _types.make_zset_scores(scores, opts.zset_max_entries, _UNLIMITED)


def _zipmap_checked(blob: bytes) -> list[bytes]:
    flat = enc.zipmap_pairs(blob)
    try:
        return enc.unique_pairs(flat)
    except EncodingError:
        raise RDBError("Hash zipmap with dup elements, or big length (%d)"
                       % len(flat[0])) from None


PACKED_VALUES = {
    T_HASH_ZIPMAP: (_zipmap_checked, _hash_from_zipmap),
    T_HASH_ZIPLIST: (enc.ziplist_entries, _hash_from_pairs),
    T_ZSET_ZIPLIST: (enc.ziplist_entries, _zset_from_pairs),
}


def _list_from_flat(flat: list[bytes], opts: LoadOptions):
    return _types.make_list(flat)


def _listpack_entries(r) -> list[bytes]:
    return listpack_entries(r.string())


def _set_members(flat: list[bytes], opts: LoadOptions):
    value = _types.make_set(_nonempty_list(flat), opts.set_max_intset_entries)
    if len(value) != len(flat):
        raise EncodingError("Duplicate set members detected")
    return value


# What Redis 7 writes for lists, sets, and small hashes and sorted sets, read by the
# loader's main loop without read_value() and costed from the decoded entries:
# (read the flat entries, build the value, the value's cost from it and the entries).
FLAT_VALUES = {
    T_LIST_QUICKLIST_2: (_quicklist2_entries, _list_from_flat, flat_cost),
    T_SET: (_set_entries, _set_members, flat_cost),
    T_SET_LISTPACK: (_listpack_entries, _set_members, flat_cost),
    T_HASH_LISTPACK: (_listpack_entries, _hash_from_pairs, flat_cost),
    T_ZSET_LISTPACK: (_listpack_entries, _zset_from_pairs, flat_zset_cost),
}


# The types kept packed by a start-up load: their Redis type.
PACKABLE = {T_HASH_LISTPACK: "hash", T_ZSET_LISTPACK: "zset", T_LIST_QUICKLIST_2: "list"}

# A packed value's blob is one listpack, whatever its RDB type: checked and decoded
# when it is first read.
_UNPACK_DECODERS = {T_HASH_LISTPACK: listpack_entries, T_ZSET_LISTPACK: listpack_entries,
                    T_LIST_QUICKLIST_2: listpack_entries}


def _unpacker(op: int, decode, build):
    def unpack(blob: bytes):
        try:
            return build(decode(blob), _AS_PACKED)
        except CORRUPTION as exc:  # the reading command gets an error reply
            raise EncodingError(_corrupt(op, exc).reason) from None
    return unpack


UNPACKERS.update({op: _unpacker(op, _UNPACK_DECODERS[op], FLAT_VALUES[op][1])
                  for op in PACKABLE})
UNPACKERS[T_SET_INTSET] = _unpacker(T_SET_INTSET, enc.intset_members, _set_members)


def _packed_reader(decode, build):
    return lambda r: build(decode(r.string()), r.opts)


def _flat_reader(read, build):
    return lambda r: build(read(r), r.opts)


_VALUE_READERS = {
    T_STRING: lambda r: r.string(),
    T_LIST: _read_list_plain,
    T_LIST_ZIPLIST: _read_list_ziplist,
    T_LIST_QUICKLIST: _read_list_quicklist,
    T_SET_INTSET: _read_set_intset,
    T_HASH: _read_hash,
    T_ZSET: _read_zset1,
    T_ZSET_2: _read_zset2,
    **{op: _packed_reader(*codec) for op, codec in PACKED_VALUES.items()},
    **{op: _flat_reader(read, build) for op, (read, build, _) in FLAT_VALUES.items()},
}


RDB_MODULE_OPCODE_EOF, RDB_MODULE_OPCODE_SINT, RDB_MODULE_OPCODE_UINT = 0, 1, 2
RDB_MODULE_OPCODE_FLOAT, RDB_MODULE_OPCODE_DOUBLE, RDB_MODULE_OPCODE_STRING = 3, 4, 5


def _skip_module_value(r: Reader) -> None:
    """Module data is self-describing since RDB 9: typed opcodes up to an EOF opcode."""
    r.length()  # when_opcode
    r.length()  # when
    while True:
        opcode = r.length()
        if opcode == RDB_MODULE_OPCODE_EOF:
            return
        if opcode in (RDB_MODULE_OPCODE_SINT, RDB_MODULE_OPCODE_UINT):
            r.length()
        elif opcode == RDB_MODULE_OPCODE_FLOAT:
            r.take(4)
        elif opcode == RDB_MODULE_OPCODE_DOUBLE:
            r.take(8)
        elif opcode == RDB_MODULE_OPCODE_STRING:
            r.string()
        else:
            raise RDBError(f"Unknown module opcode {opcode} in module AUX data")


def _note(log, message: str) -> None:
    if log is not None:
        log(message)


class LoadResult:
    def __init__(self):
        self.keys = 0
        self.expired = 0
        self.aux: dict[bytes, bytes] = {}
        self.version = 0
        self.functions: list[bytes] = []  # library code (FUNCTION2 entries)
        self.empty_keys = 0  # empty collections skipped (rdbLoad's empty_keys_skipped)
        # (db index, key) of the keys skipped as expired: a master restarting on its
        # replication history feeds their DEL to its backlog (RDBFLAGS_FEED_REPL).
        self.expired_keys: list = []


@contextlib.contextmanager
def paused_gc():
    """Loading allocates millions of acyclic objects: the cycle collector would walk
    them again and again for nothing (a quarter of the load time). Pause it, and
    freeze what was loaded so later collections skip the dataset altogether."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.freeze()


def load_snapshot(data: bytes, dbs, now_ms: int | None = None, log=None,
                  packed: bool = False, options: LoadOptions | None = None) -> LoadResult:
    """Load a whole RDB file into dbs (a list of Database). Keys already expired are
    skipped, as a master does. Raises RDBError without touching dbs on failure."""
    steps = iter_load_snapshot(data, dbs, now_ms, log, packed=packed, options=options)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def iter_load_snapshot(data: bytes, dbs, now_ms: int | None = None, log=None,
                       pause_every: int = 0, packed: bool = False,
                       options: LoadOptions | None = None):
    """load_snapshot() as a generator that pauses (yields the offset reached) every
    pause_every bytes, so that the server's event loop can answer -LOADING in between
    (rdbLoadProgressCallback's processEventsWhileBlocked(), on the loop's own thread).
    Its return value (StopIteration.value) is the LoadResult. With packed, small
    hashes, sorted sets and lists stay as their listpack blob until first read
    (datatypes/packed.py); without, every value is decoded and checked now.

    Each key's memory cost is taken as it is read (Database.adopt_accounting takes
    it over), so used_memory needs no walk over the loaded keyspace.

    options: the limits and sanitization values are built by (by default those of
    the server the databases belong to); under deep sanitization nothing stays
    packed, every blob is checked as it is loaded."""
    options = options or options_of(dbs)
    packed = packed and not options.deep
    version = _check_header(data)
    result = LoadResult()
    result.version = version
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    staged: dict[int, _Staged] = {}
    buf, size = data, len(data)
    r = Reader(data, 9, options)
    pos = 9
    op = None
    db_index = 0
    target = None
    expire_at = None
    pause_at = pause_every or size + 1
    # As rdbLoad reads the file, the first damaged entry is what fails (named with
    # its key, type and offset), and the checksum is checked after the EOF opcode.
    # The try costs nothing while nothing is raised (Python 3.11's exceptions).
    try:
        while True:
            if pos >= pause_at:
                yield pos
                pause_at = pos + pause_every
            op = buf[pos] if pos < size else OP_EOF_MISSING
            key = None
            if op == T_STRING and pos + 1 < size and buf[pos + 1] < 0x40:
                # The hot path: a string key and value of 6-bit lengths (under 64
                # bytes), the bulk of most datasets, read inline without Reader calls.
                # Anything else (longer, int-encoded, LZF) takes the generic path below.
                start = pos + 2
                stop = start + buf[pos + 1]
                if stop < size and buf[stop] < 0x40 and stop + 1 + buf[stop] <= size:
                    key = buf[start:stop]
                    pos = stop + 1 + buf[stop]
                    value = buf[stop + 1 : pos]
                    # key_cost() inlined; under 64 bytes each the cost is a cached int.
                    cost = ((stop - start + 48) & -16) + ((pos - stop + 47) & -16)
            if key is None:
                if op >= OP_FUNCTION2:
                    if op == OP_EOF:
                        break
                    pos, selected, expire_at = _read_opcode(r, pos, op, result, log,
                                                            expire_at, db_index, len(dbs))
                    if selected != db_index:
                        db_index, target = selected, None
                    continue
                if op == OP_EOF_MISSING:
                    r.pos = size
                    raise RDBError(EOF_REASON)
                key, value, cost = _read_key_value(r, pos, op, packed)
                pos = r.pos
                if value is None:
                    _skip_empty_key(result, log, key)
                    expire_at = None
                    continue
            if target is None:
                target = staged.setdefault(db_index, _Staged())
            if expire_at is not None:
                expiring, expire_at = expire_at, None
                if expiring < now_ms:  # already expired: skipped, as a master does
                    result.expired += 1
                    result.expired_keys.append((db_index, key))
                    continue
                target.expires[key] = expiring
            target.data[key] = value
            if type(value) is bytes:  # a string's cost needs no entry (Database.meta)
                target.strings += cost
            else:
                target.meta[key] = cost
        _check_checksum(data, pos + 1, version, log, options.checksum)
    except LOAD_ERRORS as exc:
        raise _located(exc, data, r, pos, op) from None
    result.keys = sum(len(s.data) for s in staged.values())
    _note_empty_keys(result, log)
    # Only now, with the whole file parsed, does the dataset become visible.
    for index, loaded in staged.items():
        _install(dbs[index], loaded)
    return result


# What a load of a damaged file can raise, made an RDBError that says where: a
# MemoryError is an allocation the damage made huge ("Short read or OOM" for Redis).
LOAD_ERRORS = CORRUPTION + (MemoryError,)

# What redis-check-rdb says it was doing when an opcode's arguments fail to read.
_OPCODE_DOING = {OP_EXPIRETIME_MS: "read-expire", OP_EXPIRETIME: "read-expire",
                 OP_SELECTDB: "read-len", OP_RESIZEDB: "read-len", OP_AUX: "read-aux",
                 OP_MODULE_AUX: "read-module-aux", OP_FUNCTION2: "read-functions",
                 OP_FUNCTION_PRE_GA: "read-functions"}


def _located(exc: Exception, buf: bytes, r: Reader, pos: int, op) -> RDBError:
    """exc, raised reading the entry (opcode or key) at pos, as an RDBError that says
    where: the reader's offset when it failed, what it was reading, and for a key
    entry the key (read again: the loop keeps none of it on the way) and type."""
    if isinstance(exc, RDBError) and exc.offset is not None:
        return exc  # the checksum: already located
    if isinstance(exc, MemoryError):
        reason = EOF_REASON
    elif isinstance(exc, RDBError):
        reason = exc.reason
    else:
        reason = str(exc) or type(exc).__name__
    head = EOF_HEAD if reason == EOF_REASON else None
    key = rdb_type = None
    if op is None or op == OP_EOF_MISSING:
        doing = "read-type"
    elif op >= OP_FUNCTION2:
        doing = _OPCODE_DOING.get(op, "read-type")
    else:
        rdb_type = op
        try:
            key = Reader(buf, pos + 1).string()
            doing = "read-object-value"
        except RDBError:
            doing = "read-key"
    return RDBError(reason, offset=r.pos, doing=doing, key=key, rdb_type=rdb_type, head=head)


def _check_checksum(data: bytes, at: int, version: int, log, verify: bool = True) -> None:
    """rdbLoad's last step: the 8 bytes after the EOF opcode (at `at`) are the CRC64
    of everything before them; 0 means the file was saved without one."""
    if version < 5:
        return
    if at + 8 > len(data):
        raise RDBError(EOF_REASON, offset=at, doing="check-sum", head=EOF_HEAD)
    if not verify:
        return
    stored = int.from_bytes(data[at : at + 8], "little")
    if stored == 0:
        _note(log, "RDB file was saved with checksum disabled: no check performed.")
        return
    computed = CRC64.calc(memoryview(data)[:at])
    if computed != stored:
        raise RDBError("RDB CRC error", offset=at + 8, doing="check-sum",
                       head=f"Wrong RDB checksum expected: ({computed:x}) but got "
                            f"({stored:x}). Aborting now.")


OP_EOF_MISSING = -1  # past the end of the buffer: a truncated file


class _Staged:
    """One database's keys as they are read, made visible only once all loaded."""

    __slots__ = ("data", "expires", "meta", "strings")

    def __init__(self):
        self.data: dict = {}
        self.expires: dict = {}
        # The memory accounting Database.adopt_accounting takes over: key -> cost of
        # the keys that need a meta entry (not strings), and the strings' summed cost.
        self.meta: dict = {}
        self.strings = 0


def _check_header(data: bytes) -> int:
    """The RDB version, once the signature and version are right (the checksum is
    checked at the end, as rdbLoad does: a damaged entry is named first)."""
    if len(data) < 9:
        raise RDBError(EOF_REASON, offset=0, doing="start", head=EOF_HEAD)
    if data[:5] != b"REDIS":
        raise RDBError("Wrong signature trying to load DB from file")
    try:
        version = int(data[5:9])
    except ValueError:
        raise RDBError("Wrong signature trying to load DB from file") from None
    if not 1 <= version <= MAX_READ_VERSION:
        raise RDBError(f"Can't handle RDB format version {version}")
    return version


def options_of(dbs) -> LoadOptions:
    """The load options of the server that owns dbs (Database.server); Redis's
    defaults for databases without one (the offline tools)."""
    server = getattr(dbs[0], "server", None) if dbs else None
    config = getattr(server, "config", None)
    if config is None:
        return DEFAULT_OPTIONS
    return LoadOptions.from_config(config, checksum=not server.skip_checksum_validation)


def _read_key_value(r: Reader, pos: int, op: int, packed: bool = False):
    """(key, value, memory cost) of an entry of type op at pos (the type byte); the
    value is None for an empty collection, which the loaders skip."""
    r.pos = pos + 1
    key = _plain_string(r)
    if key is None:
        key = r.string()
    try:
        return _read_costed_value(r, op, key, packed)
    except EmptyKey:
        return key, None, 0


def _note_empty_keys(result: "LoadResult", log) -> None:
    """rdbLoadRio()'s last line when it skipped empty keys, a warning (the plain "Done
    loading RDB" notice without them is the caller's)."""
    if result.empty_keys:
        _note(log, f"Done loading RDB, keys loaded: {result.keys}, keys expired: "
                   f"{result.expired}, empty keys skipped: {result.empty_keys}.")


def _skip_empty_key(result: "LoadResult", log, key: bytes) -> None:
    """rdbLoad(): an empty key is dropped with a warning (the first 10 of them)."""
    result.empty_keys += 1
    if result.empty_keys <= 10:
        _note(log, f"rdbLoadObject skipping empty key: {_printable(key)}")


def _read_costed_value(r: Reader, op: int, key: bytes, packed: bool):
    if packed and op in PACKABLE:
        value = _read_packed(r, op, key)
        if value is not None:
            return key, value, key_cost_of(key, packed_cost(value))
    flat_value = FLAT_VALUES.get(op)
    if flat_value is None:
        value = read_value(r, op, key)
        if type(value) is bytes:  # Database.string_cost(): no META_INT, no meta entry
            return key, value, ((len(key) + 48) & -16) + ((len(value) + 48) & -16)
        return key, value, key_cost(key, value)
    read, build, value_cost = flat_value
    try:
        flat = read(r)
        value = build(flat, r.opts)
    except CORRUPTION as exc:
        raise _corrupt(op, exc) from None
    return key, value, key_cost_of(key, value_cost(value, flat))


def _read_packed(r: Reader, op: int, key: bytes) -> PackedValue | None:
    """The value's listpack blob, framing checked (lpValidateIntegrity() with deep=0);
    None, with nothing read, for what is decoded as usual instead: a list of more than
    one quicklist node, and a blob whose header says it is empty (an empty key to
    skip), of unknown length, or longer than the encoding limit (to be converted)."""
    buf, pos = r.buf, r.pos
    if op == T_LIST_QUICKLIST_2:
        if buf[pos : pos + 2] != b"\x01\x02":  # one node, QUICKLIST_NODE_PACKED
            return None
        r.pos = pos + 2
    blob = r.string()
    if not enc.listpack_frame_ok(blob):
        raise RDBError(INTEGRITY_FAILED[op])
    count = blob[4] | (blob[5] << 8)
    if count == 0 or count == 65535 or count // 2 > _PACKED_LIMIT[op](r.opts):
        r.pos = pos
        return None
    return PackedValue(op, blob, PACKABLE[op])


# The most entries (pairs for hashes and sorted sets) a packed value may have.
_PACKED_LIMIT = {T_HASH_LISTPACK: lambda opts: opts.hash_max_entries,
                 T_ZSET_LISTPACK: lambda opts: opts.zset_max_entries,
                 T_LIST_QUICKLIST_2: lambda opts: _UNLIMITED}


def _write_packed(w: Writer, value: PackedValue, key: bytes | None) -> None:
    """A value still packed is written back as it was read."""
    _type_and_key(w, value.rdb_type, key)
    if value.rdb_type in STREAM_TYPES:
        w.chunks.append(value.blob)  # the value's RDB bytes themselves
        return
    if value.rdb_type == T_LIST_QUICKLIST_2:
        w.length(1)
        w.length(QUICKLIST_NODE_PACKED)
    w.string(value.blob)


def _read_opcode(r: Reader, pos: int, op: int, result: LoadResult, log, expire_at,
                 db_index: int, databases: int):
    """An opcode at pos: returns (the position after it, the database selected, the
    expire time pending for the next key)."""
    r.pos = pos + 1
    if op == OP_EXPIRETIME_MS:
        expire_at = struct.unpack("<q", r.take(8))[0]
    elif op == OP_EXPIRETIME:
        expire_at = struct.unpack("<i", r.take(4))[0] * 1000
    elif op == OP_SELECTDB:
        db_index = r.length()
        if db_index >= databases:
            raise RDBError(
                f"FATAL: Data file was created with a Redis server configured to handle "
                f"more than {databases} databases. Exiting")
    elif op == OP_RESIZEDB:
        r.length(), r.length()
    elif op == OP_AUX:
        name, value = r.string(), r.string()
        result.aux[name] = value
    elif op == OP_IDLE:
        r.length()
    elif op == OP_FREQ:
        r.byte()
    elif op == OP_MODULE_AUX:
        module_id = r.length()
        _skip_module_value(r)
        _note(log, f"Skipping module AUX data of module id {module_id:#x}: "
                   "Vermilion has no modules")
    elif op == OP_FUNCTION2:
        result.functions.append(r.string())  # loaded by the caller once all is read
    elif op == OP_FUNCTION_PRE_GA:
        raise RDBError("Pre-release function format not supported")
    else:
        raise RDBError(f"Unknown RDB encoding type {op}")
    return r.pos, db_index, expire_at


class _GrowingReader(Reader):
    """A Reader over the part of a stream received so far: a read past its end notes
    how far the buffer must reach (short) before the entry can be read again."""

    __slots__ = ("short",)

    def __init__(self, buf: bytes, pos: int = 0, opts: "LoadOptions | None" = None):
        Reader.__init__(self, buf, pos, opts)
        self.short = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            self.short = end
            raise RDBError(EOF_REASON)
        chunk = self.buf[self.pos : end]
        self.pos = end
        return chunk


class StreamLoad:
    """An RDB read as it arrives (rdbLoadRio over the master's connection, for a
    replica's repl-diskless-load): feed() it the bytes as they come, parse() reads
    every entry they complete. An entry cut by the end of what arrived is read again
    from its start once more bytes are in (want() says how many at least). Keys go to
    staged databases (Redis's temp db of swapdb, or the main one loaded from empty):
    nothing is visible before install_staged(). The checksum is computed as the bytes
    go by (rdbLoadProgressCallback's rioGenericUpdateChecksum)."""

    def __init__(self, databases: int, log=None, packed: bool = False,
                 key_delay: int = 0, options: LoadOptions | None = None):
        self.databases = databases
        self.log = log
        self.options = options or DEFAULT_OPTIONS
        self.packed = packed and not self.options.deep
        self.key_delay = key_delay
        self.result = LoadResult()
        self.staged: dict[int, _Staged] = {}
        self.buf = b""
        self.pos = 0  # the next entry's offset in buf
        self.base = 0  # the stream offset of buf[0]
        self.crc = 0  # over the stream before buf
        self.chunks: list[bytes] = []  # arrived, not yet joined to buf
        self.pending = 0
        self.ended = False  # no more bytes will come
        # Stream offsets the bytes received must reach before parse() can go on, and
        # had better reach (an entry cut several times).
        self.need = 9
        self.wish = 0
        self.version = 0
        self.done = False
        self.rest = b""  # what came after the checksum
        self._db_index = 0
        self._target = None
        self._expire_at = None
        self._retries = 0  # reads of the same entry cut short

    def offset(self) -> int:
        """The stream bytes parsed so far."""
        return self.base + self.pos

    def feed(self, data: bytes) -> None:
        """More of the stream; b"" when it ended (a short RDB then fails to load)."""
        if data:
            self.chunks.append(data)
            self.pending += len(data)
        else:
            self.ended = True

    def want(self) -> int:
        """The bytes still missing before the entry in progress can be read (0: none)."""
        missing = self.need - (self.base + len(self.buf) + self.pending)
        return missing if missing > 0 else 0

    def wished(self) -> int:
        """The bytes worth waiting for beyond want(), if they come soon: an entry cut
        several times asks for as much again as it holds, so that a value of many
        elements is not read again for every few kilobytes that arrive."""
        missing = self.wish - (self.base + len(self.buf) + self.pending)
        return missing if missing > 0 else 0

    def parse(self, budget: int = 0) -> bool:
        """Read the entries the bytes received complete, stopping after budget bytes
        (0: no limit) for the caller's loop to take a turn. True once the RDB is read
        whole (self.rest is what followed it). Raises RDBError for a damaged or, once
        ended, truncated RDB."""
        if self.done:
            return True
        if self.chunks:
            # Keep the bytes of the entry in progress only; the CRC takes the rest.
            keep = self.buf[self.pos:]
            if self.pos:
                self.crc = CRC64.calc(memoryview(self.buf)[: self.pos], self.crc)
                self.base += self.pos
            self.buf = keep + b"".join(self.chunks) if keep else b"".join(self.chunks)
            self.chunks = []
            self.pending = 0
            self.pos = 0
        if self.need > self.base + len(self.buf) and not self.ended:
            return False
        if not self.version:
            if len(self.buf) < 9:
                raise RDBError(EOF_REASON, offset=0, doing="start", head=EOF_HEAD)
            self.version = _check_header(self.buf)
            self.result.version = self.version
            self.pos = 9
        buf = self.buf
        size = len(buf)
        pos = self.pos
        stop = pos + budget if budget else size + 1
        r = _GrowingReader(buf, 0, self.options)
        result, log, packed = self.result, self.log, self.packed
        key_delay = self.key_delay
        op = None
        try:
            while pos < stop:
                start = pos
                if pos >= size:
                    raise RDBError(EOF_REASON)
                op = buf[pos]
                if op >= OP_FUNCTION2:
                    if op == OP_EOF:
                        end = pos + 1 + (8 if self.version >= 5 else 0)
                        if end > size:
                            r.short = end
                            raise RDBError(EOF_REASON)
                        self._finish(pos + 1)
                        return True
                    pos, selected, self._expire_at = _read_opcode(
                        r, pos, op, result, log, self._expire_at, self._db_index,
                        self.databases)
                    if selected != self._db_index:
                        self._db_index, self._target = selected, None
                    self._retries = 0
                    continue
                key, value, cost = _read_key_value(r, pos, op, packed)
                pos = r.pos
                self._retries = 0
                if value is None:
                    _skip_empty_key(result, log, key)
                    self._expire_at = None
                    continue
                target = self._target
                if target is None:
                    target = self._target = self.staged.setdefault(self._db_index,
                                                                   _Staged())
                if self._expire_at is not None:
                    # A replica keeps keys already expired: its master expires them.
                    target.expires[key] = self._expire_at
                    self._expire_at = None
                target.data[key] = value
                if type(value) is bytes:
                    target.strings += cost
                else:
                    target.meta[key] = cost
                if key_delay:
                    debug_delay(key_delay)
        except LOAD_ERRORS as exc:
            short = (isinstance(exc, RDBError) and exc.reason == EOF_REASON) \
                or isinstance(exc, IndexError)
            if short and not self.ended:
                # Cut by the end of what arrived: read again from its start later.
                self.pos = start
                self._retries += 1
                held = size - start
                self.need = self.base + max(r.short, size + 1)
                self.wish = self.base + start + 2 * held if self._retries > 2 else 0
                return False
            if self.ended and short and op is not None and op == OP_EOF:
                raise RDBError(EOF_REASON, offset=self.base + size, doing="check-sum",
                               head=EOF_HEAD) from None
            error = _located(exc, buf, r, start if op is not None else pos, op)
            if error.offset is not None:
                error.offset += self.base
            raise error from None
        self.pos = pos
        self.need = self.wish = 0
        return False

    def _finish(self, at: int) -> None:
        """The EOF opcode is at at - 1: check the checksum that follows it."""
        buf = self.buf
        if self.version >= 5:
            stored = int.from_bytes(buf[at : at + 8], "little")
            if not self.options.checksum:
                pass
            elif stored == 0:
                _note(self.log, "RDB file was saved with checksum disabled: no check "
                                "performed.")
            else:
                computed = CRC64.calc(memoryview(buf)[:at], self.crc)
                if computed != stored:
                    raise RDBError("RDB CRC error", offset=self.base + at + 8,
                                   doing="check-sum",
                                   head=f"Wrong RDB checksum expected: ({computed:x}) but "
                                        f"got ({stored:x}). Aborting now.")
            at += 8
        self.rest = buf[at:]
        self.buf = b""
        self.pos = 0
        self.done = True
        self.result.keys = sum(len(s.data) for s in self.staged.values())
        _note_empty_keys(self.result, self.log)


def install_staged(dbs, load: StreamLoad) -> None:
    """A StreamLoad's keys become the databases' (which the caller emptied)."""
    for index, loaded in load.staged.items():
        _install(dbs[index], loaded)


def _install(db, loaded: _Staged) -> None:
    if db.data:  # DEBUG RELOAD NOFLUSH / MERGE: on top of what is there
        db.merge_loaded(loaded.data, loaded.expires, loaded.meta)
        return
    # The usual start-up: the staged dicts become the keyspace, no copy.
    db.data = loaded.data
    db.expires = loaded.expires
    if hasattr(db, "meta"):
        db.adopt_accounting(loaded.meta, loaded.strings)


# ===================================================================== DUMP / RESTORE


def dump_payload(value, limits: dict | None = None) -> bytes:
    """DUMP: the value as RDB, then the RDB version (2 bytes LE), then CRC64 (8 bytes LE)."""
    w = Writer(True)
    write_value(w, value, limits or {})
    body = w.getvalue() + struct.pack("<H", RDB_VERSION)
    return body + struct.pack("<Q", CRC64.calc(body))


CHECKSUM_WRONG = "DUMP payload version or checksum are wrong"


def verify_payload(payload: bytes, skip_checksum: bool = False) -> None:
    """verifyDumpPayload(): the 2-byte RDB version (at most Redis 7.0's) and the CRC64
    of the rest; DEBUG SET-SKIP-CHECKSUM-VALIDATION 1 skips the CRC."""
    if len(payload) < 10:
        raise RDBError(CHECKSUM_WRONG)
    version = int.from_bytes(payload[-10:-8], "little")
    if version > RDB_VERSION:
        raise RDBError(CHECKSUM_WRONG)
    if not skip_checksum and CRC64.calc(payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        raise RDBError(CHECKSUM_WRONG)


def restore_payload(payload: bytes, options: LoadOptions | None = None,
                    skip_checksum: bool = False):
    """The value in a DUMP payload (restoreCommand): RDBError with CHECKSUM_WRONG when
    the version or checksum is wrong, else with what was wrong in the value (EmptyKey
    for an empty collection). Like Redis, bytes left after the value are ignored."""
    verify_payload(payload, skip_checksum)
    r = Reader(payload, 0, options)
    rdb_type = r.byte()
    if not (0 <= rdb_type <= 7 or 9 <= rdb_type <= T_STREAM_LISTPACKS_2):
        # rdbLoadObjectType(): what Redis 7.0 does not know is no object type.
        raise RDBError(f"Unknown RDB encoding type {rdb_type}")
    # (Redis reads the value from the whole payload, footer included.)
    try:
        return read_value(r, rdb_type, b"")
    except RDBError as exc:
        if options is None or options.deep or isinstance(exc, EmptyKey):
            raise
        held = _held_unchecked(payload, rdb_type, options)
        if held is None:
            raise
        return held


def _held_unchecked(payload: bytes, rdb_type: int, options: LoadOptions):
    """A RESTORE without deep sanitization of a value that failed the full check:
    rdbLoadObject() then checks only a listpack's or intset's header (and a stream's
    all but its node listpacks), takes the value and fails later, when a command
    walks it. Vermilion holds such a value packed (datatypes/packed.py): the command
    that first reads it gets an error reply. None when Redis would convert the value
    at once (over the encoding limits: it walks it, and fails now), or for what is
    not kept packed; an RDBError for what the shallow checks refuse."""
    r = Reader(payload, 1, options)
    try:
        if rdb_type in STREAM_TYPES:
            read_stream(r, rdb_type, shallow=True)
            return PackedValue(rdb_type, payload[1:r.pos], "stream")
        if rdb_type == T_LIST_QUICKLIST_2:
            if payload[1:3] != b"\x01\x02":
                return None  # several nodes: only a single listpack is held packed
            r.pos = 3
        blob = r.string()
    except CORRUPTION as exc:
        raise _corrupt(rdb_type, exc) from None
    if rdb_type == T_SET_INTSET:
        count = int.from_bytes(blob[4:8], "little") if len(blob) >= 8 else 0
        if len(blob) < 8 or blob[0:4] not in (b"\x02\0\0\0", b"\x04\0\0\0", b"\x08\0\0\0") \
                or len(blob) != 8 + blob[0] * count or count == 0:
            raise RDBError(INTEGRITY_FAILED[T_SET_INTSET])
        return None if count > options.set_max_intset_entries else \
            PackedValue(rdb_type, blob, "set")
    if rdb_type not in PACKABLE:
        return None
    if not enc.listpack_frame_ok(blob):
        raise RDBError(INTEGRITY_FAILED[rdb_type])
    count = blob[4] | (blob[5] << 8)
    if count == 0:
        raise EmptyKey()
    if count == 65535 or count // 2 > _PACKED_LIMIT[rdb_type](options):
        return None
    return PackedValue(rdb_type, blob, PACKABLE[rdb_type])


# ===================================================================== type bridge


class _TypeBridge:
    """Builds Vermilion values from decoded elements. The collection types live in
    vermilion.datatypes, which imports command-side modules: they are resolved on first
    use (not at import time) and then kept, since loading calls them once per key."""

    def __getattr__(self, name: str):
        from ..datatypes import hashtype, listtype, settype, zset

        builders = {"make_list": listtype.from_items, "make_set": settype.from_members,
                    "make_hash": hashtype.from_pairs, "make_hash_flat": hashtype.from_flat,
                    "make_zset": zset.from_pairs, "make_zset_scores": zset.from_scores}
        for attr, builder in builders.items():
            setattr(self, attr, builder)
        return builders[name]


_types = _TypeBridge()


# Streams live in their own module (the stream type's RDB layout is large).
from .stream_rdb import read_stream, write_stream  # noqa: E402

_VALUE_WRITERS["stream"] = lambda w, value, limits, key: write_stream(w, value, key)
for _stream_type in (T_STREAM_LISTPACKS, T_STREAM_LISTPACKS_2, T_STREAM_LISTPACKS_3):
    _VALUE_READERS[_stream_type] = lambda r, _t=_stream_type: read_stream(r, _t)
    # A stream held packed (a RESTORE without deep sanitization): its whole RDB value.
    UNPACKERS[_stream_type] = _unpacker(
        _stream_type, lambda body, _t=_stream_type: (body, _t),
        lambda read, opts: _read_whole_stream(*read))


def _read_whole_stream(body: bytes, rdb_type: int):
    r = Reader(body)
    value = read_stream(r, rdb_type)
    if r.pos != len(body):
        raise RDBError("Stream value with extra bytes")
    return value
