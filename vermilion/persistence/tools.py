"""`vermilion check-rdb`, `vermilion check-aof [--fix]` and `vermilion rdb dump`:
inspect any Redis RDB file or AOF (ours or real Redis's).

check-rdb and check-aof print what redis-check-rdb and redis-check-aof (Redis 7.0)
print for the same file, with the same exit codes: they replay those tools' walk of
the file (redis-check-rdb.c over rdb.c's loader in check mode, redis-check-aof.c over
C stdio) rather than Vermilion's own loaders, so that the same damage is found at the
same offset and said in the same words.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import struct
import sys
import time

import lzf

from . import rdb
from ..datatypes.encodings import canonical_int
from ..protocol.parser import c_atoi, split_args

# ===================================================================== output


class _Out:
    """What the tool prints, as bytes (keys and AUX values are printed raw, as C's
    %s does), to a binary stream, flushed as it goes (--fix's question must show
    before its answer is read)."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stdout.buffer

    def raw(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.stream.write(data)
        self.stream.flush()

    def line(self, data: bytes | str) -> None:
        self.raw((data.encode() if isinstance(data, str) else data) + b"\n")

    def log(self, message: str) -> None:
        """serverLog(LL_WARNING, ...) in a tool: pid, 'C' (not the server's own pid),
        the time with milliseconds, '#'."""
        now = time.time()
        stamp = time.strftime("%d %b %Y %H:%M:%S.", time.localtime(now))
        self.line(f"{os.getpid()}:C {stamp}{int(now * 1000) % 1000:03d} # {message}")


def _c_str(data: bytes) -> bytes:
    """A C string's view of bytes: up to the first NUL."""
    nul = data.find(b"\0")
    return data if nul < 0 else data[:nul]


def _msg(data: bytes) -> bytes:
    """vsnprintf into a char[1024]: at most 1023 bytes."""
    return data[:1023]


class _Exit(Exception):
    """The C tool calls exit(code) here (after printing what it printed)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


# ===================================================================== check-rdb
#
# The value checks are rdbLoadObject()'s with sanitize-dump-payload yes, the checker's
# setting: compact encodings are walked entry by entry (lpValidateIntegrity,
# ziplistValidateIntegrity, ... with deep=1), duplicates refused.

# rdb.c's line of each rdbReportError() call, as printed ("function at rdb.c:%d"):
# those of Debian's build of 7.0.15 (5:7.0.15-1~deb12u10, the redis-tools the tests
# compare with), whose security patches moved most of them by 1 to 9 lines from
# upstream's 7.0.15 source. Each was read off the real tool's report on a file made
# to fail there (tests/test_check_tools.py makes those files and checks the numbers).
RDB_C_LINES = {
    "len-encoding": 236,
    "lzf": 413,
    "string-encoding": 529,
    "module-int": 1540,
    "module-string": 1546,
    "module-float": 1553,
    "module-double": 1559,
    "set-expand": 1785,
    "set-dup-intset": 1809,
    "set-dup": 1829,
    "zset-expand": 1851,
    "zset-nan": 1882,
    "zset-dup": 1894,
    "hash-dup-listpack": 1951,
    "hash-expand": 1996,
    "hash-dup": 2019,
    "quicklist-container": 2048,
    "quicklist-listpack": 2071,
    "quicklist-ziplist": 2081,
    "zipmap": 2130,
    "zipmap-dup": 2154,
    "list-ziplist": 2189,
    "intset": 2214,
    "zset-ziplist": 2229,
    "zset-listpack": 2255,
    "hash-ziplist": 2275,
    "hash-listpack": 2301,
    "stream-listpacks-len": 2327,
    "stream-master-id": 2338,
    "stream-node-key": 2343,
    "stream-listpack-read": 2355,
    "stream-listpack": 2362,
    "stream-readded": 2386,
    "stream-metadata": 2424,
    "stream-length": 2430,
    "stream-cgroups": 2438,
    "stream-cgroup-name": 2449,
    "stream-cgroup-id": 2458,
    "stream-cgroup-offset": 2469,
    "stream-cgroup-dup": 2480,
    "stream-pel-size": 2495,
    "stream-pel-id": 2502,
    "stream-pel-nack": 2510,
    "stream-pel-dup": 2516,
    "stream-consumers": 2527,
    "stream-consumer-name": 2534,
    "stream-consumer-dup": 2543,
    "stream-seen-time": 2549,
    "stream-consumer-pel-size": 2558,
    "stream-consumer-pel-id": 2566,
    "stream-consumer-pel-missing": 2573,
    "stream-consumer-pel-owned": 2583,
    "stream-pel-no-consumer": 2611,
    "module-id": 2622,
    "module-type": 2636,
}

RDB_VERSION_7_0 = 10  # redis-check-rdb 7.0 refuses anything newer
# Redis 7.0's compiled-in defaults (config.c, not redis.conf's), which decide how
# rdbLoadObject builds, and so checks, a value.
SET_MAX_INTSET_ENTRIES = 512
HASH_MAX_LISTPACK_ENTRIES = 512
HASH_MAX_LISTPACK_VALUE = 64
DICT_HT_INITIAL_SIZE = 4

DOING = ("start", "read-type", "read-expire", "read-key", "read-object-value",
         "check-sum", "read-len", "read-aux", "read-module-aux", "read-functions")
(START, READ_TYPE, READ_EXPIRE, READ_KEY, READ_OBJECT_VALUE, CHECK_SUM, READ_LEN,
 READ_AUX, READ_MODULE_AUX, READ_FUNCTIONS) = range(10)


class _Short(Exception):
    """A read past the end of the file, or a value rdbLoadObject returns NULL for
    (rdb.c's goto eoferr: "Unexpected EOF reading RDB file")."""


class _Corrupt(Exception):
    """rdbReportCorruptRDB()/rdbReportReadError(): reported, then exit(1)."""

    def __init__(self, where: str, message: bytes | str):
        super().__init__(message)
        self.line = RDB_C_LINES[where]
        self.message = message.encode() if isinstance(message, str) else message


class _Failed(Exception):
    """rdbCheckError(...) then goto err: reported, the check fails."""


def _alloc_fails(n: int) -> bool:
    """An allocation of n bytes fails: jemalloc maps memory with MAP_NORESERVE when
    the kernel overcommits, so nothing but the 47-bit address space bounds it (a
    64 TB table is granted, a 128 TB one refused)."""
    return n >= 1 << 47


def _expand_fails(n: int) -> bool:
    """dictTryExpand(n) reports a failed allocation of its bucket array (n rounded up
    to a power of two, 8-byte pointers); a size that overflows is refused without
    one, which dictTryExpand takes for success."""
    size = max(DICT_HT_INITIAL_SIZE, 1 << max(n - 1, 0).bit_length())
    return size * 8 < 1 << 64 and _alloc_fails(size * 8)


class RDBCheck:
    """One run of redis_check_rdb() over data (a whole file) from offset 0."""

    def __init__(self, data: bytes, out: _Out):
        self.buf = data
        self.pos = 0  # rio's processed_bytes: what the reads so far consumed
        self.out = out
        # rdbstate: a static struct, so key_type starts at 0, not -1.
        self.key: bytes | None = None
        self.key_type = 0
        self.keys = 0
        self.expires = 0
        self.already_expired = 0
        self.doing = START
        self.now = time.time_ns() // 1_000_000

    # -- rio -------------------------------------------------------------------------

    def read(self, n: int) -> bytes:
        """rioRead(): all n bytes or none (a failed read consumes nothing)."""
        end = self.pos + n
        if end > len(self.buf):
            raise _Short
        chunk = self.buf[self.pos : end]
        self.pos = end
        return chunk

    def byte(self) -> int:
        return self.read(1)[0]

    def load_len(self) -> tuple[int, bool]:
        """rdbLoadLenByRef(): (length, is an encoding)."""
        first = self.byte()
        kind = first >> 6
        if kind == 3:
            return first & 0x3F, True
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte(), False
        if first == 0x80:
            return int.from_bytes(self.read(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.read(8), "big"), False
        raise _Corrupt("len-encoding", f"Unknown length encoding {kind} in rdbLoadLen()")

    def length(self) -> int:
        """rdbLoadLen(rdb, NULL): an encoding byte passes as a 6-bit length."""
        return self.load_len()[0]

    def string(self) -> bytes:
        """rdbGenericLoadStringObject(): integers as their decimal text."""
        n, encoded = self.load_len()
        if not encoded:
            return self.read(n)  # an allocation too large to make fails as a short read
        if n == 0:
            return b"%d" % int.from_bytes(self.read(1), "little", signed=True)
        if n == 1:
            return b"%d" % int.from_bytes(self.read(2), "little", signed=True)
        if n == 2:
            return b"%d" % int.from_bytes(self.read(4), "little", signed=True)
        if n == 3:
            return self._lzf()
        raise _Corrupt("string-encoding", f"Unknown RDB string encoding type {n}")

    def _lzf(self) -> bytes:
        clen = self.length()
        size = self.length()
        if _alloc_fails(size):
            raise _Short  # ztrymalloc() fails before anything is read
        packed = self.read(clen)
        if size == 0:
            return b""  # lzf_decompress() returns 0 = the length asked for
        data = None
        if size <= 88 * clen:  # an LZF stream expands at most 88 times
            try:
                data = lzf.decompress(packed, size)
            except ValueError:
                data = None
        if data is None or len(data) != size:
            raise _Corrupt("lzf", "Invalid LZF compressed string")
        return data

    # -- the report --------------------------------------------------------------------

    def info(self, message: bytes | str) -> None:
        """rdbCheckInfo()."""
        if isinstance(message, str):
            message = message.encode()
        self.out.line(b"[offset %d] %s" % (self.pos, _msg(message)))

    def generic_info(self) -> None:
        self.out.line(f"[info] {self.keys} keys read")
        self.out.line(f"[info] {self.expires} expires")
        self.out.line(f"[info] {self.already_expired} already expired")

    def error(self, message: bytes | str) -> None:
        """rdbCheckError()."""
        if isinstance(message, str):
            message = message.encode()
        out = self.out
        out.line("--- RDB ERROR DETECTED ---")
        out.line(b"[offset %d] %s" % (self.pos, _msg(message)))
        out.line(f"[additional info] While doing: {DOING[self.doing]}")
        if self.key is not None:
            out.line(b"[additional info] Reading key '%s'" % _c_str(self.key))
        if self.key_type != -1:
            name = (rdb.CHECK_TYPE_NAMES[self.key_type]
                    if 0 <= self.key_type < len(rdb.CHECK_TYPE_NAMES) else "unknown")
            out.line(f"[additional info] Reading type {self.key_type} ({name})")
        self.generic_info()

    # -- the walk ----------------------------------------------------------------------

    def run(self) -> int:
        """redis_check_rdb(): 0 when the file looks sane, 1 when not; raises _Exit
        where rdbReportError() exits the process."""
        try:
            return self._walk()
        except _Short:
            self.error("Unexpected EOF reading RDB file")
            return 1
        except _Failed as failed:
            self.error(str(failed))
            return 1
        except _Corrupt as corrupt:
            # rdbReportError() in check mode: its loading offset is never advanced
            # (loading_process_events_interval_bytes is 0), so it says 0.
            self.error(b"Internal error in RDB reading offset 0, function at rdb.c:%d -> %s"
                       % (corrupt.line, corrupt.message))
            self.out.log("Terminating server after rdb file reading failure.")
            raise _Exit(1) from None

    def _walk(self) -> int:
        header = self.read(9)
        if header[:5] != b"REDIS":
            raise _Failed("Wrong signature trying to load DB from file")
        version = c_atoi(header[5:9])
        if not 1 <= version <= RDB_VERSION_7_0:
            raise _Failed(f"Can't handle RDB format version {version}")
        expire_at = -1
        while True:
            self.doing = READ_TYPE
            op = self.byte()
            if op == rdb.OP_EXPIRETIME:
                self.doing = READ_EXPIRE
                expire_at = int.from_bytes(self.read(4), "little", signed=True) * 1000
                continue
            if op == rdb.OP_EXPIRETIME_MS:
                self.doing = READ_EXPIRE
                expire_at = int.from_bytes(self.read(8), "little", signed=True)
                continue
            if op == rdb.OP_FREQ:
                self.read(1)
                continue
            if op == rdb.OP_IDLE:
                self.length()
                continue
            if op == rdb.OP_EOF:
                break
            if op == rdb.OP_SELECTDB:
                self.doing = READ_LEN
                self.info(f"Selecting DB ID {self.length()}")
                continue
            if op == rdb.OP_RESIZEDB:
                self.doing = READ_LEN
                self.length()
                self.length()
                continue
            if op == rdb.OP_AUX:
                self.doing = READ_AUX
                name = self.string()
                value = self.string()
                self.info(b"AUX FIELD %s = '%s'" % (_c_str(name), _c_str(value)))
                continue
            if op == rdb.OP_MODULE_AUX:
                self.doing = READ_MODULE_AUX
                module_id = self.length()
                when_opcode = self.length()
                self.length()  # when
                if when_opcode != rdb.RDB_MODULE_OPCODE_UINT:
                    raise _Failed("bad when_opcode")
                name = _module_type_name(module_id)
                self.info(f"MODULE AUX for: {name}")
                self._module_value(name)
                continue
            if op in (rdb.OP_FUNCTION_PRE_GA, rdb.OP_FUNCTION2):
                self.doing = READ_FUNCTIONS
                error = self._function(op)
                if error:
                    raise _Failed(f"Failed loading library, {error}")
                continue
            if not (op <= 7 or 9 <= op <= 19):  # rdbIsObjectType() in 7.0
                raise _Failed(f"Invalid object type: {op}")
            self.key_type = op
            self.doing = READ_KEY
            self.key = self.string()
            self.keys += 1
            self.doing = READ_OBJECT_VALUE
            self._value(op)
            if expire_at != -1:
                if expire_at < self.now:
                    self.already_expired += 1
                self.expires += 1
            self.key = None
            self.key_type = -1
            expire_at = -1
        if version >= 5:
            self.doing = CHECK_SUM
            expected = rdb.CRC64.calc(memoryview(self.buf)[: self.pos])
            stored = int.from_bytes(self.read(8), "little")
            if stored == 0:
                self.info("RDB file was saved with checksum disabled: no check performed.")
            elif stored != expected:
                raise _Failed("RDB CRC error")
            else:
                self.info("Checksum OK")
        return 0

    def _function(self, op: int) -> str | None:
        """rdbFunctionLoad() without a library context: the entry's error, if any."""
        what = "library payload"
        try:
            if op == rdb.OP_FUNCTION2:
                self.string()
                return None
            # The pre-GA (7.0 release candidates) layout: name, engine, description.
            what = "library name"
            self.string()
            what = "engine name"
            self.string()
            what = "library description indicator"
            if self.length():
                what = "library description"
                self.string()
            what = "library blob"
            self.string()
        except _Short:
            return f"Failed loading {what}"
        return None

    def _module_value(self, name: str) -> None:
        """rdbLoadCheckModuleValue(): typed opcodes up to the EOF one; other opcodes are
        skipped. (A short read of the opcode itself makes Redis's loop spin forever;
        here it is a short read.)"""
        reads = {rdb.RDB_MODULE_OPCODE_SINT: ("module-int", "integer", self.load_len),
                 rdb.RDB_MODULE_OPCODE_UINT: ("module-int", "integer", self.load_len),
                 rdb.RDB_MODULE_OPCODE_STRING: ("module-string", "string", self.string),
                 rdb.RDB_MODULE_OPCODE_FLOAT: ("module-float", "float", lambda: self.read(4)),
                 rdb.RDB_MODULE_OPCODE_DOUBLE: ("module-double", "double", lambda: self.read(8))}
        while True:
            opcode = self.length()
            if opcode == rdb.RDB_MODULE_OPCODE_EOF:
                return
            if opcode in reads:
                where, what, read = reads[opcode]
                with _short_as(where, f"Error reading {what} from module {name} value"):
                    read()

    # -- values: rdbLoadObject() -------------------------------------------------------

    def _value(self, t: int) -> None:
        if t == rdb.T_STRING:
            self.string()
        elif t == rdb.T_LIST:
            n = self.length()
            if n == 0:
                raise _Short  # an empty key: rdbLoadObject returns NULL
            for _ in range(n):
                self.string()
        elif t == rdb.T_SET:
            self._set()
        elif t in (rdb.T_ZSET, rdb.T_ZSET_2):
            self._zset(t)
        elif t == rdb.T_HASH:
            self._hash()
        elif t in (rdb.T_LIST_QUICKLIST, rdb.T_LIST_QUICKLIST_2):
            self._quicklist(t)
        elif t in _BLOB_CHECKS:
            check, where, message = _BLOB_CHECKS[t]
            blob = self.string()
            entries = check(blob)
            if entries is None:
                raise _Corrupt(where, message)
            if t == rdb.T_HASH_ZIPMAP:
                seen = set()
                for field in entries[0::2]:
                    if field in seen:
                        raise _Corrupt("zipmap-dup", "Hash zipmap with dup elements, or "
                                       f"big length ({len(field)})")
                    seen.add(field)
            elif t != rdb.T_SET_INTSET and not entries:
                raise _Short  # an empty list, sorted set or hash
        elif t in (rdb.T_STREAM_LISTPACKS, rdb.T_STREAM_LISTPACKS_2):
            self._stream(t)
        elif t == rdb.T_MODULE_PRE_GA or t == rdb.T_MODULE_2:
            try:
                module_id = self.length()
            except _Short:
                raise _Corrupt("module-id", "Short read module id") from None
            name = _module_type_name(module_id)
            if t == rdb.T_MODULE_2:
                self._module_value(name)
            else:
                raise _Corrupt("module-type", "The RDB file contains module data I can't "
                               f"load: no matching module type '{name}'")

    def _set(self) -> None:
        n = self.length()
        if n == 0:
            raise _Short
        intset = n <= SET_MAX_INTSET_ENTRIES
        if not intset and n > DICT_HT_INITIAL_SIZE and _expand_fails(n):
            raise _Corrupt("set-expand", f"OOM in dictTryExpand {n}")
        members: set[bytes] = set()
        for _ in range(n):
            member = self.string()
            if intset:
                if canonical_int(member) is not None:
                    if member in members:
                        raise _Corrupt("set-dup-intset", "Duplicate set members detected")
                    members.add(member)
                    continue
                intset = False  # setTypeConvert() to a (small: n <= 512) hash table
            if member in members:
                raise _Corrupt("set-dup", "Duplicate set members detected")
            members.add(member)

    def _zset(self, t: int) -> None:
        n = self.length()
        if n == 0:
            raise _Short
        if n > DICT_HT_INITIAL_SIZE and _expand_fails(n):
            raise _Corrupt("zset-expand", f"OOM in dictTryExpand {n}")
        members: set[bytes] = set()
        for _ in range(n):
            member = self.string()
            if t == rdb.T_ZSET_2:
                score = struct.unpack("<d", self.read(8))[0]
            else:
                score = self._text_double()
            if score != score:
                raise _Corrupt("zset-nan", "Zset with NAN score detected")
            if member in members:
                raise _Corrupt("zset-dup", "Duplicate zset fields detected")
            members.add(member)

    def _text_double(self) -> float:
        """rdbLoadDoubleValue(): 253 nan, 254 +inf, 255 -inf, else a length and the
        text, which sscanf("%lg") must take (else the value fails to load)."""
        n = self.byte()
        if n == 253:
            return float("nan")
        if n in (254, 255):
            return float("inf") if n == 254 else float("-inf")
        value = _scan_double(_c_str(self.read(n)))
        if value is None:
            raise _Short
        return value

    def _hash(self) -> None:
        n = self.length()
        if n == 0:
            raise _Short
        listpack = n <= HASH_MAX_LISTPACK_ENTRIES
        fields: set[bytes] = set()
        while listpack and n > 0:
            n -= 1
            field = self.string()
            value = self.string()
            # The dup search dict of deep sanitization.
            if field in fields:
                raise _Corrupt("hash-dup-listpack", "Hash with dup elements")
            fields.add(field)
            if len(field) > HASH_MAX_LISTPACK_VALUE or len(value) > HASH_MAX_LISTPACK_VALUE:
                listpack = False  # hashTypeConvert(): the pair goes to the table
        if n > DICT_HT_INITIAL_SIZE and _expand_fails(n):
            raise _Corrupt("hash-expand", f"OOM in dictTryExpand {n}")
        while n > 0:
            n -= 1
            field = self.string()
            self.string()
            if field in fields:
                raise _Corrupt("hash-dup", "Duplicate hash fields detected")
            fields.add(field)

    def _quicklist(self, t: int) -> None:
        n = self.length()
        if n == 0:
            raise _Short
        count = 0
        for _ in range(n):
            container = 2  # QUICKLIST_NODE_CONTAINER_PACKED
            if t == rdb.T_LIST_QUICKLIST_2:
                container = self.length()
                if container not in (1, 2):
                    raise _Corrupt("quicklist-container", "Quicklist integrity check failed.")
            data = self.string()
            if not data:
                raise _Short  # a node of 0 bytes: rdbLoadObject returns NULL
            if container == 1:  # a plain node: one element as is
                count += 1
                continue
            if t == rdb.T_LIST_QUICKLIST_2:
                entries = _listpack(data)
                if entries is None:
                    raise _Corrupt("quicklist-listpack", "Listpack integrity check failed.")
            else:
                entries = _ziplist(data)
                if entries is None:
                    raise _Corrupt("quicklist-ziplist", "Ziplist integrity check failed.")
            count += len(entries)  # an empty node is skipped
        if count == 0:
            raise _Short

    def _stream(self, t: int) -> None:
        """The stream part of rdbLoadObject(): its short reads are reported, each
        with its own message (rdbReportReadError), not as an unexpected EOF."""
        v2 = t == rdb.T_STREAM_LISTPACKS_2
        with _short_as("stream-listpacks-len", "Stream listpacks len loading failed."):
            nodes = self.length()
        node_keys: set[bytes] = set()
        for _ in range(nodes):
            with _short_as("stream-master-id",
                           "Stream master ID loading failed: invalid encoding or I/O error."):
                node_key = self.string()
            if len(node_key) != 16:
                raise _Corrupt("stream-node-key",
                               "Stream node key entry is not the size of a stream ID")
            with _short_as("stream-listpack-read", "Stream listpacks loading failed."):
                blob = self.string()
            if not _stream_listpack_valid(blob):  # (it refuses an empty one too)
                raise _Corrupt("stream-listpack", "Stream listpack integrity check failed.")
            if node_key in node_keys:
                raise _Corrupt("stream-readded", "Listpack re-added with existing key")
            node_keys.add(node_key)
        with _short_as("stream-metadata", "Stream object metadata loading failed."):
            length = self.length()
            for _ in range(7 if v2 else 2):  # last id; first id, max deleted id, added
                self.length()
        if length and not node_keys:
            raise _Corrupt("stream-length", "Stream length inconsistent with rax entries")
        with _short_as("stream-cgroups", "Stream cgroup count loading failed."):
            groups = self.length()
        names: set[bytes] = set()
        for _ in range(groups):
            with _short_as("stream-cgroup-name",
                           "Error reading the consumer group name from Stream"):
                name = self.string()
            with _short_as("stream-cgroup-id", "Stream cgroup ID loading failed."):
                self.length(), self.length()
            if v2:
                with _short_as("stream-cgroup-offset", "Stream cgroup offset loading failed."):
                    self.length()
            if name in names:
                raise _Corrupt("stream-cgroup-dup",
                               b"Duplicated consumer group name %s" % _c_str(name))
            names.add(name)
            self._stream_group()

    def _stream_group(self) -> None:
        """A consumer group's PEL, then its consumers and their PELs."""
        owned: dict[bytes, bool] = {}  # the group's PEL: id -> a consumer owns it
        with _short_as("stream-pel-size", "Stream PEL size loading failed."):
            pending = self.length()
        for _ in range(pending):
            with _short_as("stream-pel-id", "Stream PEL ID loading failed."):
                sid = self.read(16)
            with _short_as("stream-pel-nack", "Stream PEL NACK loading failed."):
                self.read(8)  # delivery time
                self.length()  # delivery count
            if sid in owned:
                raise _Corrupt("stream-pel-dup",
                               "Duplicated global PEL entry loading stream consumer group")
            owned[sid] = False
        consumers: set[bytes] = set()
        with _short_as("stream-consumers", "Stream consumers num loading failed."):
            count = self.length()
        for _ in range(count):
            with _short_as("stream-consumer-name",
                           "Error reading the consumer name from Stream group."):
                name = self.string()
            if name in consumers:
                raise _Corrupt("stream-consumer-dup", "Duplicate stream consumer detected.")
            consumers.add(name)
            with _short_as("stream-seen-time", "Stream short read reading seen time."):
                self.read(8)
            with _short_as("stream-consumer-pel-size", "Stream consumer PEL num loading failed."):
                pending = self.length()
            for _ in range(pending):
                with _short_as("stream-consumer-pel-id",
                               "Stream short read reading PEL streamID."):
                    sid = self.read(16)
                if sid not in owned:
                    raise _Corrupt("stream-consumer-pel-missing",
                                   "Consumer entry not found in group global PEL")
                # Debian's build refuses a second owner (which upstream 7.0.15 takes,
                # and then frees twice); a repeat in one consumer's PEL is one too.
                if owned[sid]:
                    raise _Corrupt("stream-consumer-pel-owned",
                                   "Stream consumer PEL entry already has a consumer assigned")
                owned[sid] = True
        if not all(owned.values()):
            raise _Corrupt("stream-pel-no-consumer", "Stream CG PEL entry without consumer")


@contextlib.contextmanager
def _short_as(where: str, message: str):
    """A short read in the block is reported as rdbReportReadError(message)."""
    try:
        yield
    except _Short:
        raise _Corrupt(where, message) from None


_DOUBLE = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?(?:inf(?:inity)?|nan(?:\([0-9a-z_]*\))?"
    rb"|0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?\d+)?"
    rb"|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?))", re.IGNORECASE)


def _scan_double(text: bytes) -> float | None:
    """sscanf("%lg"): the longest double at the start (after spaces), or None."""
    m = _DOUBLE.match(text)
    if not m:
        return None
    token = m.group(1).lower()
    if b"x" in token:
        return float.fromhex(token.decode())
    if b"nan" in token:
        return float("nan")
    return float(token)


_MODULE_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _module_type_name(module_id: int) -> str:
    """moduleTypeNameByID(): the 9 characters of the id's top 54 bits."""
    module_id >>= 10
    name = []
    for _ in range(9):
        name.append(_MODULE_CHARSET[module_id & 63])
        module_id >>= 6
    return "".join(reversed(name))


# -- compact encodings, checked as Redis checks them (deep) ---------------------------


def _lp_header_bytes(b: int) -> int:
    """lpCurrentEncodedSizeBytes(): the encoding byte and any length bytes of an entry
    starting with b; 0 for an unknown encoding."""
    if b < 0xE0 or 0xF1 <= b <= 0xF4 or b == 0xFF:
        return 1  # integers, 6-bit strings, the terminator
    if b < 0xF0:
        return 2  # 12-bit string
    return 5 if b == 0xF0 else 0  # 32-bit string


def _lp_entry_bytes(lp: bytes, p: int) -> int:
    """lpCurrentEncodedSizeUnsafe(): the entry's bytes without its backlen (its length
    bytes already known to be inside the listpack)."""
    b = lp[p]
    if b < 0x80:
        return 1
    if b < 0xC0:
        return 1 + (b & 0x3F)
    if b < 0xE0:
        return 2
    if b < 0xF0:
        return 2 + (((b & 0x0F) << 8) | lp[p + 1])
    if b == 0xF0:
        return (5 + int.from_bytes(lp[p + 1 : p + 5], "little")) & 0xFFFFFFFF  # a uint32_t
    return {0xF1: 3, 0xF2: 4, 0xF3: 5, 0xF4: 9}[b]


def _backlen_bytes(n: int) -> int:
    """lpEncodeBacklen(NULL, n)."""
    return 1 if n <= 127 else 2 if n < 16383 else 3 if n < 2097151 else 4 if n < 268435455 else 5


_INVALID = object()  # what _lp_next() returns for a damaged entry


def _lp_next(lp: bytes, p: int | None):
    """lpValidateNext(): the offset of the entry after the one at p, None past the
    last one (p at the terminator), _INVALID when the entry is damaged."""
    size = len(lp)
    if p is None or p < 6 or p > size - 1:
        return _INVALID
    if lp[p] == 0xFF:
        return None
    lenbytes = _lp_header_bytes(lp[p])
    if not lenbytes or p + lenbytes > size - 1:
        return _INVALID
    entrylen = _lp_entry_bytes(lp, p)
    backlen = _backlen_bytes(entrylen)
    entrylen += backlen
    if p + entrylen > size - 1:
        return _INVALID
    p += entrylen
    # lpDecodeBacklen(p - 1): 7 bits a byte, right to left, high bit = more.
    value, shift, q = 0, 0, p - 1
    while True:
        b = lp[q]
        value |= (b & 127) << shift
        if not b & 128:
            break
        shift += 7
        q -= 1
        if shift > 28:
            value = (1 << 64) - 1
            break
    if (value + backlen) & ((1 << 64) - 1) != entrylen:
        return _INVALID
    return p


def _lp_value(lp: bytes, p: int) -> bytes | int:
    """lpGet(): an entry's string, or its integer."""
    b = lp[p]
    if b < 0x80:
        return b
    if b < 0xC0:
        return lp[p + 1 : p + 1 + (b & 0x3F)]
    if b < 0xE0:
        v = ((b & 0x1F) << 8) | lp[p + 1]
        return v - (1 << 13) if v >= 1 << 12 else v
    if b < 0xF0:
        n = ((b & 0x0F) << 8) | lp[p + 1]
        return lp[p + 2 : p + 2 + n]
    if b == 0xF0:
        n = int.from_bytes(lp[p + 1 : p + 5], "little")
        return lp[p + 5 : p + 5 + n]
    width = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}.get(b)
    if width is None:
        # The terminator (a stream walk can land on it): lpGet() makes it this number.
        return 12345678900000000 + b
    return int.from_bytes(lp[p + 1 : p + 1 + width], "little", signed=True)


def _lp_header_ok(lp: bytes) -> bool:
    return (len(lp) >= 7 and int.from_bytes(lp[0:4], "little") == len(lp)
            and lp[-1] == 0xFF)


def _lp_walk(lp: bytes) -> list[int] | None:
    """lpValidateIntegrity(deep): the entries' offsets, or None."""
    if not _lp_header_ok(lp):
        return None
    starts = []
    p = 6
    while lp[p] != 0xFF:
        nxt = _lp_next(lp, p)
        if nxt is _INVALID or nxt is None:
            return None
        starts.append(p)
        p = nxt
    if p != len(lp) - 1:
        return None
    count = int.from_bytes(lp[4:6], "little")
    if count != 65535 and count != len(starts):
        return None
    return starts


def _text(value: bytes | int) -> bytes:
    return value if isinstance(value, bytes) else b"%d" % value


def _listpack(lp: bytes) -> list[bytes] | None:
    starts = _lp_walk(lp)
    return None if starts is None else [_text(_lp_value(lp, p)) for p in starts]


def _pairs(entries: list[bytes] | None) -> list[bytes] | None:
    """The pairs callbacks (lpPairsValidateIntegrityAndDups, ziplistPairs...): an
    even count, no field twice."""
    if entries is None or len(entries) % 2:
        return None
    fields = entries[0::2]
    return entries if len(set(fields)) == len(fields) else None


# zipEncodingLenSize(): string lengths of 1, 2 or 5 bytes; integers (16, 32, 64, 24,
# 8 bits, and 0xF1-0xFD, the 4-bit immediates) one encoding byte.
_ZIP_LENSIZE = {0x00: 1, 0x40: 2, 0x80: 5, 0xC0: 1, 0xD0: 1, 0xE0: 1, 0xF0: 1, 0xFE: 1}


def _ziplist(zl: bytes) -> list[bytes] | None:
    """ziplistValidateIntegrity(deep): the entries, or None."""
    size = len(zl)
    if size < 11 or int.from_bytes(zl[0:4], "little") != size or zl[-1] != 0xFF:
        return None
    tail = int.from_bytes(zl[4:8], "little")
    if tail > size - 1:
        return None
    header_count = int.from_bytes(zl[8:10], "little")
    first, last = 10, size - 1
    out = []
    p, prev, prev_raw = 10, None, 0
    while zl[p] != 0xFF:
        # zipEntrySafe()
        if p < first or p > last:
            return None
        prs = 1 if zl[p] < 254 else 5
        if p + prs > last:
            return None
        q = p + prs
        encoding = zl[q] if zl[q] >= 0xC0 else zl[q] & 0xC0
        lensize = _ZIP_LENSIZE.get(encoding, 1 if 0xF1 <= encoding <= 0xFD else None)
        if lensize is None or p + prs + lensize > last:
            return None
        prevrawlen = zl[p] if prs == 1 else int.from_bytes(zl[p + 1 : p + 5], "little")
        if encoding == 0x00:
            length = zl[q] & 0x3F
        elif encoding == 0x40:
            length = ((zl[q] & 0x3F) << 8) | zl[q + 1]
        elif encoding == 0x80:
            length = int.from_bytes(zl[q + 1 : q + 5], "big")
        else:
            length = {0xFE: 1, 0xC0: 2, 0xF0: 3, 0xD0: 4, 0xE0: 8}.get(encoding, 0)
        header = prs + lensize
        if p + header + length > last or p - prevrawlen < first:
            return None
        if prevrawlen != prev_raw:
            return None
        data = zl[p + header : p + header + length]
        if encoding < 0xC0:
            out.append(data)
        elif 0xF1 <= encoding <= 0xFD:
            out.append(b"%d" % ((encoding & 0x0F) - 1))
        else:
            out.append(b"%d" % int.from_bytes(data, "little", signed=True))
        prev_raw = header + length
        prev = p
        p += prev_raw
    if p != size - 1 or (prev is not None and prev != tail):
        return None
    if header_count != 0xFFFF and len(out) != header_count:
        return None
    return out


def _intset(blob: bytes) -> list[bytes] | None:
    """intsetValidateIntegrity(deep): the members, or None."""
    if len(blob) < 8:
        return None
    width, count = struct.unpack_from("<II", blob, 0)
    if width not in (2, 4, 8) or 8 + count * width != len(blob) or count == 0:
        return None
    values = struct.unpack_from("<%d%s" % (count, {2: "h", 4: "i", 8: "q"}[width]), blob, 8)
    if any(b <= a for a, b in zip(values, values[1:])):
        return None
    return [b"%d" % v for v in values]


def _zipmap(zm: bytes) -> list[bytes] | None:
    """zipmapValidateIntegrity(deep), then the pairs: field, value, ..."""
    size = len(zm)
    if size < 2 or zm[-1] != 0xFF:
        return None

    def out_of_range(x: int) -> bool:
        return x < 2 or x > size - 1

    def length_at(x: int) -> tuple[int, int]:
        if zm[x] < 254:
            return 1, zm[x]
        return 5, int.from_bytes(zm[x + 1 : x + 5], "little")

    out = []
    p = 1
    while zm[p] != 0xFF:
        s = 1 if zm[p] < 254 else 5
        if out_of_range(p + s):
            return None
        _, n = length_at(p)
        field = zm[p + s : p + s + n]
        p += s + n
        if out_of_range(p):
            return None
        s = 1 if zm[p] < 254 else 5
        if out_of_range(p + s):
            return None
        _, n = length_at(p)
        p += s
        free = zm[p]
        p += 1
        out += [field, zm[p : p + n]]
        p += n + free
        if out_of_range(p):
            return None
    count = len(out) // 2
    if count == 0 or (zm[0] != 254 and zm[0] != count):
        return None
    return out


def _stream_listpack_valid(lp: bytes) -> bool:
    """streamValidateListpackIntegrity(deep), pointer for pointer."""
    if not _lp_header_ok(lp):
        return False
    p = nxt = 6 if lp[6] != 0xFF else None

    def step() -> bool:
        nonlocal p, nxt
        p = nxt
        nxt = _lp_next(lp, nxt)
        return nxt is not _INVALID

    def integer() -> int | None:
        value = _lp_value(lp, p)
        return value if isinstance(value, int) else canonical_int(value)

    nxt = _lp_next(lp, nxt)
    if nxt is _INVALID or p is None:
        return False
    entry_count = integer()
    if entry_count is None or not step():
        return False
    deleted = integer()
    if deleted is None or not step():
        return False
    master_fields = integer()
    if master_fields is None or not step():
        return False
    for _ in range(master_fields):
        if not step():
            return False
    if integer() != 0 or not step():
        return False
    entry_count += deleted
    while entry_count:
        entry_count -= 1
        if p is None:
            return False
        fields, extra = master_fields, 3
        flags = integer()
        if flags is None or not step():
            return False
        for _ in range(2):  # the entry id
            if integer() is None or not step():
                return False
        if not flags & 2:  # STREAM_ITEM_FLAG_SAMEFIELDS
            fields = integer()
            if fields is None or not step():
                return False
            for _ in range(fields):
                if not step():
                    return False
            extra += fields + 1
        for _ in range(fields):
            if not step():
                return False
        lp_count = integer()
        if lp_count is None or lp_count != fields + extra or not step():
            return False
    return nxt is None


# The blob-encoded types: (their check, rdb.c's line key, its message).
_BLOB_CHECKS = {
    rdb.T_HASH_ZIPMAP: (_zipmap, "zipmap", "Zipmap integrity check failed."),
    rdb.T_LIST_ZIPLIST: (_ziplist, "list-ziplist", "List ziplist integrity check failed."),
    rdb.T_SET_INTSET: (_intset, "intset", "Intset integrity check failed."),
    rdb.T_ZSET_ZIPLIST: (lambda b: _pairs(_ziplist(b)), "zset-ziplist",
                         "Zset ziplist integrity check failed."),
    rdb.T_ZSET_LISTPACK: (lambda b: _pairs(_listpack(b)), "zset-listpack",
                          "Zset listpack integrity check failed."),
    rdb.T_HASH_ZIPLIST: (lambda b: _pairs(_ziplist(b)), "hash-ziplist",
                         "Hash ziplist integrity check failed."),
    rdb.T_HASH_LISTPACK: (lambda b: _pairs(_listpack(b)), "hash-listpack",
                          "Hash listpack integrity check failed."),
}


def rdb_preamble_length(data: bytes) -> int:
    """How many bytes of data the RDB preamble of an old-style AOF takes (the server's
    loader continues with the commands after it). The file already loaded, so the walk
    only measures; its output is discarded."""
    import io

    check = RDBCheck(data, _Out(io.BytesIO()))
    try:
        check.run()
    except _Exit:
        pass
    return check.pos


def check_rdb(path: str, stream=None) -> int:
    """redis-check-rdb FILE: its report on stdout, its exit code."""
    out = _Out(stream)
    out.line(b"[offset 0] Checking RDB file " + os.fsencode(path))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        data = b""  # fopen() takes a directory; its first read fails
    except OSError:
        return 1  # redis_check_rdb() returns 1 without a word when fopen() fails
    try:
        check = RDBCheck(data, out)
        if check.run() != 0:
            return 1
    except _Exit as done:
        return done.code
    check.info("\\o/ RDB looks OK! \\o/")
    check.generic_info()
    return 0


# ===================================================================== check-aof
#
# redis-check-aof.c reads the file through C stdio (fgets, fread, ftello) and keeps its
# line counter and error text in globals across the files of a multi-part AOF: the
# replay below keeps all of that, so ok_up_to, ok_up_to_line and the error offsets
# come out the same.

LONG_MAX = (1 << 63) - 1


def _signed_char_hex(b: int) -> str:
    """printf("%02x", c) of a (signed) char: bytes >= 0x80 print as ffffffXX."""
    return "%02x" % (b if b < 0x80 else b + 0xFFFFFF00)


class _CFile:
    """A file as C stdio shows it: a position, an EOF indicator, fgets and fread."""

    def __init__(self, data: bytes, pos: int = 0):
        self.data = data
        self.pos = pos
        self.eof = False

    def fgets(self, size: int) -> bytes | None:
        """Up to size-1 bytes, through the first newline; None at EOF."""
        data, pos = self.data, self.pos
        if pos >= len(data):
            self.eof = True
            return None
        limit = pos + size - 1
        newline = data.find(b"\n", pos, limit)
        if newline >= 0:
            end = newline + 1
        else:
            end = min(limit, len(data))
            if end == len(data) and end < limit:
                self.eof = True  # it had to look past the end for more
        self.pos = end
        return data[pos:end]

    def fread(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        if len(chunk) < n:
            self.eof = True
        return chunk


class AOFCheck:
    """redis_check_aof_main()'s state: the globals error, epos and line."""

    def __init__(self, out: _Out, fix: bool = False, assume_yes: bool = False,
                 to_timestamp: int = 0):
        self.out = out
        self.fix = fix
        self.assume_yes = assume_yes
        self.to_timestamp = to_timestamp
        self.error = b""
        self.epos = 0
        self.line = 1
        # readLong()'s char buf[128] on the stack, as a line cut right after its
        # digits shows it ("Expected \r\n, got: 000a": the byte past the NUL). For a
        # "*" line it still holds the previous "*" line; for a "$" line it reads as
        # zeros (readBytes()'s fread() ran over that stack since). Found by comparing
        # outputs, not derived: it is uninitialised memory in the C tool.
        self.argc_buffer = bytearray(128)

    def set_error(self, message: bytes | str) -> None:
        """The ERROR() macro."""
        if isinstance(message, str):
            message = message.encode()
        # snprintf'd twice through "%s": a NUL (a '%c' of one) ends the text.
        self.error = b"0x%16x: %s" % (self.epos, _c_str(message[:1023]))

    # -- one record --------------------------------------------------------------------

    def consume_newline(self, two: bytes) -> bool:
        if two[:2] != b"\r\n":
            two = (two + b"\0\0")[:2]
            self.set_error("Expected \\r\\n, got: %s%s" % (_signed_char_hex(two[0]),
                                                         _signed_char_hex(two[1])))
            return False
        self.line += 1
        return True

    def read_long(self, fp: _CFile, prefix: bytes) -> int | None:
        self.epos = fp.pos
        got = fp.fgets(128)
        if got is None:
            return None
        buf = self.argc_buffer if prefix == b"*" else bytearray(128)
        buf[: len(got) + 1] = got + b"\0"
        text = bytes(buf[: buf.index(0)])  # the C string fgets() left
        padded = bytes(buf) + b"\0"
        if not text or text[0] != prefix[0]:
            self.set_error(b"Expected prefix '%s', got: '%s'" % (prefix, text[:1] or b"\0"))
            return None
        # strtol(buf+1, &eptr, 10)
        m = re.match(rb"[ \t\n\v\f\r]*([+-]?)(\d+)", text[1:])
        if m:
            value = int(m.group(1) + m.group(2))
            value = max(-LONG_MAX - 1, min(LONG_MAX, value))
            end = 1 + m.end()
        else:
            value, end = 0, 1
        if not self.consume_newline(padded[end : end + 2]):
            return None
        return value

    def read_string(self, fp: _CFile) -> bytes | None:
        n = self.read_long(fp, b"$")
        if n is None:
            return None
        if n < 0 or n > LONG_MAX - 2:
            self.set_error(f"Expected to read string of {n} bytes, which is not in the "
                           "suitable range")
            return None
        self.epos = fp.pos
        data = fp.fread(n + 2)
        if len(data) != n + 2:
            self.set_error(f"Expected to read {n + 2} bytes, got {len(data)} bytes")
            return None
        if not self.consume_newline(data[n:]):
            return None
        return _c_str(data[:n])

    def process_resp(self, fp: _CFile, filepath: str, multi: list[int]) -> bool:
        argc = self.read_long(fp, b"*")
        if argc is None:
            return False
        i = 0
        while i < argc:
            word = self.read_string(fp)
            if word is None:
                return False
            if i == 0:
                name = word.lower()
                if name == b"multi":
                    multi[0] += 1
                    if multi[0] - 1:
                        self.set_error(f"Unexpected MULTI in AOF {filepath}")
                        return False
                elif name == b"exec":
                    multi[0] -= 1
                    if multi[0]:
                        self.set_error(f"Unexpected EXEC in AOF {filepath}")
                        return False
            i += 1
        return True

    def process_annotation(self, fp: _CFile, filepath: str, last_file: bool) -> bool:
        """processAnnotations(): False when the file was cut at a #TS: past the
        --truncate-to-timestamp one."""
        self.epos = fp.pos
        text = fp.fgets(1024) or b""
        if not (self.to_timestamp and text.startswith(b"#TS:")):
            return True
        m = re.match(rb"([+-]?\d+)\r", text[4:])
        if not m:
            self.out.line("Invalid timestamp annotation")
            raise _Exit(1)
        if int(m.group(1)) <= self.to_timestamp:
            return True
        if self.epos == 0:
            self.out.line(f"AOF {filepath} has nothing before timestamp {self.to_timestamp}, "
                          "aborting...")
            raise _Exit(1)
        if not last_file:
            self.out.line(f"Failed to truncate AOF {filepath} to timestamp {self.to_timestamp} "
                          f"to offset {self.epos} because it is not the last file.")
            self.out.line("If you insist, please delete all files after this file according "
                          "to the manifest file and delete the corresponding records in "
                          "manifest file manually. Then re-run redis-check-aof.")
            raise _Exit(1)
        with open(filepath, "r+b") as f:
            f.truncate(self.epos)
        return False

    # -- one file ----------------------------------------------------------------------

    def check_file(self, name: str, filepath: str, last_file: bool, preamble: bool) -> str:
        """checkSingleAof(): "ok", "empty", "truncated" or "timestamp"."""
        try:
            with open(filepath, "r+b") as f:
                data = f.read()
        except OSError as exc:
            self.out.line(f"Cannot open file {filepath}: {os.strerror(exc.errno)}, aborting...")
            raise _Exit(1) from None
        size = len(data)
        if size == 0:
            return "empty"
        fp = _CFile(data)
        if preamble:
            self.out.line(b"[offset 0] Checking RDB file " + os.fsencode(name))
            check = RDBCheck(data, self.out)
            if check.run() != 0:
                self.out.line("RDB preamble of AOF file is not sane, aborting.")
                raise _Exit(1)
            check.info("\\o/ RDB looks OK! \\o/")
            check.generic_info()
            self.out.line("RDB preamble is OK, proceeding with AOF tail...")
            fp.pos = check.pos
        multi = [0]
        pos = fp.pos
        while True:
            if not multi[0]:
                pos = fp.pos
            first = fp.fgets(2)
            if first is None:
                break
            fp.pos -= 1  # fseek(fp, -1, SEEK_CUR), which also clears EOF
            fp.eof = False
            if first == b"#":
                if not self.process_annotation(fp, filepath, last_file):
                    return "timestamp"
            elif first == b"*":
                if not self.process_resp(fp, filepath, multi):
                    break
            else:
                self.out.line(f"AOF {name} format error")
                break
        if fp.eof and multi[0] and not self.error:
            self.set_error("Reached EOF before reading EXEC for MULTI")
        if self.error:
            self.out.line(self.error)
        diff = size - pos
        if diff == 0 and self.to_timestamp:
            self.out.line(f"Truncate nothing in AOF {name} to timestamp {self.to_timestamp}")
            return "ok"
        self.out.line(f"AOF analyzed: filename={name}, size={size}, ok_up_to={pos}, "
                      f"ok_up_to_line={self.line}, diff={diff}")
        if diff > 0:
            if not self.fix:
                self.out.line(f"AOF {name} is not valid. Use the --fix option to try fixing it.")
                raise _Exit(1)
            if not last_file:
                self.out.line(f"Failed to truncate AOF {name} because it is not the last file")
                raise _Exit(1)
            self.out.line(f"This will shrink the AOF {name} from {size} bytes, with {diff} "
                          f"bytes, to {pos} bytes")
            if not self.assume_yes:
                self.out.raw("Continue? [y/N]: ")
                answer = sys.stdin.buffer.readline()
                if not answer[:1].lower() == b"y":
                    self.out.line("Aborting...")
                    raise _Exit(1)
            with open(filepath, "r+b") as f:
                f.truncate(pos)
            return "truncated"
        return "ok"

    def report(self, kind: str, name: str, result: str) -> None:
        prefix = f"{kind} " if kind else ""
        if result == "ok":
            self.out.line(f"{prefix}AOF {name} is valid")
        elif result == "empty":
            self.out.line(f"{prefix}AOF {name} is empty")
        elif result == "timestamp":
            self.out.line(f"Successfully truncated AOF {name} to timestamp {self.to_timestamp}")
        else:
            self.out.line(f"Successfully truncated AOF {name}")

    # -- the whole AOF -----------------------------------------------------------------

    def multi_part(self, dirpath: str, manifest: str) -> None:
        """checkMultiPartAof()."""
        self.out.line("Start checking Multi Part AOF")
        base, incrs = self.load_manifest(manifest)
        total = (1 if base else 0) + len(incrs)
        number = 0
        if base:
            path = f"{dirpath}/{base}"
            number += 1
            preamble = self.file_is_rdb(path)
            self.out.line(f"Start to check BASE AOF ({'RDB' if preamble else 'RESP'} format).")
            self.report("BASE", base, self.check_file(base, path, number == total, preamble))
        if incrs:
            self.out.line("Start to check INCR files.")
            for name in incrs:
                number += 1
                path = f"{dirpath}/{name}"
                self.report("INCR", name, self.check_file(name, path, number == total, False))
        self.out.line("All AOF files and manifest are valid")

    def old_style(self, path: str, preamble: bool) -> None:
        """checkOldStyleAof()."""
        self.out.line("Start checking Old-Style AOF")
        self.report("", path, self.check_file(path, path, True, preamble))

    def load_manifest(self, path: str) -> tuple[str | None, list[str]]:
        """aofLoadManifestFromFile(): (the base file, the incr files); a bad manifest is
        logged as Redis logs it, and the tool exits."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            self.out.log(f"Fatal error: can't open the AOF manifest file {path} for "
                         f"reading: {os.strerror(exc.errno)}")
            raise _Exit(1) from None
        fp = _CFile(data)
        base, incrs, max_seq, number, line = None, [], 0, 0, None
        error = None
        while error is None:
            text = fp.fgets(1025)
            if text is None:
                if number == 0:
                    error = "Found an empty AOF manifest"
                break
            number += 1
            if text.startswith(b"#"):
                continue
            if b"\n" not in _c_str(text):
                error = "The AOF manifest file contains too long line"
                break
            line = _c_str(text).strip(b" \t\r\n")
            words = split_args(line) if line else None
            if not words or len(words) < 6 or len(words) % 2:
                error = "Invalid AOF manifest file format"
                break
            name, seq, kind = None, 0, None
            for key, value in zip(words[0::2], words[1::2]):
                key = key.lower()
                if key == b"file":
                    name = value
                    if b"/" in name or b"\\" in name:
                        error = "File can't be a path, just a filename"
                        break
                elif key == b"seq":
                    seq = c_atoi(value)
                elif key == b"type":
                    kind = value[:1] or b"\0"
            if error:
                break
            if name is None or not seq or kind is None or kind == b"\0":
                error = "Invalid AOF manifest file format"
                break
            if kind == b"b":
                if base is not None:
                    error = "Found duplicate base file information"
                    break
                base = os.fsdecode(name)
            elif kind == b"h":
                pass
            elif kind == b"i":
                if seq <= max_seq:
                    error = "Found a non-monotonic sequence number"
                    break
                incrs.append(os.fsdecode(name))
                max_seq = seq
            else:
                error = "Unknown AOF file type"
                break
            line = None
        if error is None:
            return base, incrs
        self.out.log("\n*** FATAL AOF MANIFEST FILE ERROR ***\n")
        if line is not None:
            self.out.log(f"Reading the manifest file, at line {number}\n")
            self.out.log(f">>> '{line.decode('utf-8', 'surrogateescape')}'\n")
        self.out.log(f"{error}\n")
        raise _Exit(1)

    def file_is_rdb(self, path: str) -> bool:
        try:
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError as exc:
            self.out.line(f"Cannot open file {path}: {os.strerror(exc.errno)}")
            raise _Exit(1) from None
        return len(head) >= 8 and head[:5] == b"REDIS"

    def file_is_manifest(self, path: str) -> bool:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except IsADirectoryError:
            self.out.line(f"Cannot read file: {path}")
            raise _Exit(1) from None
        except OSError as exc:
            self.out.line(f"Cannot open file {path}: {os.strerror(exc.errno)}")
            raise _Exit(1) from None
        fp = _CFile(data)
        found = False
        while (text := fp.fgets(1025)) is not None:  # any line (1024-byte piece) "file..."
            if text.startswith(b"file"):
                found = True
        return found


def _dirname(path: str) -> str:
    """POSIX dirname(), as glibc's libgen: "." for a bare name, trailing slashes
    dropped, "/" for the root."""
    path = path.rstrip("/") or ("/" if path.startswith("/") else "")
    if "/" not in path:
        return "/" if path == "/" else "."
    head = path[: path.rindex("/")].rstrip("/")
    return head or "/"


def _manifest_in(directory: str) -> str | None:
    """The manifest of an appendonlydir given as a directory (a convenience
    redis-check-aof does not have: it is then checked as if named)."""
    names = sorted(n for n in os.listdir(directory) if n.endswith(".manifest"))
    return os.path.join(directory, names[0]) if len(names) == 1 else None


def check_aof(path: str, fix: bool = False, assume_yes: bool = False, stream=None,
              to_timestamp: int = 0) -> int:
    """redis-check-aof [--fix] FILE: its report on stdout, its exit code. FILE is a
    manifest (multi-part AOF), an old-style AOF (with or without an RDB preamble), or
    an appendonlydir holding one manifest."""
    out = _Out(stream)
    if os.path.isdir(path):
        path = _manifest_in(path) or path
    check = AOFCheck(out, fix=fix, assume_yes=assume_yes, to_timestamp=to_timestamp)
    try:
        if check.file_is_manifest(path):
            check.multi_part(_dirname(path), path)
        elif check.file_is_rdb(path):
            check.old_style(path, True)
        else:
            check.old_style(path, False)
    except _Exit as done:
        return done.code
    return 0


# ===================================================================== rdb dump


class _Db:
    """A bare keyspace to load into (no server, no hooks)."""

    def __init__(self, db_id: int):
        self.id = db_id
        self.data: dict = {}
        self.expires: dict = {}


def _load(path: str):
    with open(path, "rb") as f:
        data = f.read()
    dbs = [_Db(i) for i in range(1024)]
    result = rdb.load_snapshot(data, dbs, now_ms=0)
    return data, dbs, result


def _jsonable(value):
    if type(value) is bytes:
        return _text_of(value)
    kind = value.type_name
    if kind == "list":
        return [_text_of(v) for v in value]
    if kind == "set":
        return sorted(_text_of(v) for v in value)
    if kind == "hash":
        return {_text_of(k): _text_of(v) for k, v in value.items()}
    if kind == "zset":
        return [[_text_of(m), s] for m, s in rdb.zset_pairs(value)]
    if kind == "stream":
        return {"length": len(value)}
    return repr(value)


def _text_of(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(b).decode()


def dump_rdb(path: str, fmt: str = "text", out=print) -> int:
    try:
        _, dbs, _ = _load(path)
    except (OSError, rdb.RDBError) as exc:
        print(f"Cannot load {path}: {exc}", file=sys.stderr)
        return 1
    for db in dbs:
        for key, value in db.data.items():
            kind = "string" if type(value) is bytes else value.type_name
            expire = db.expires.get(key)
            if fmt == "json":
                out(json.dumps({"db": db.id, "key": _text_of(key), "type": kind,
                                "expire_ms": expire, "value": _jsonable(value)}))
            else:
                ttl = f" expire_ms={expire}" if expire else ""
                out(f"db={db.id} {kind} {_text_of(key)!r}{ttl} {json.dumps(_jsonable(value))}")
    return 0
