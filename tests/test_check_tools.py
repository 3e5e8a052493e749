"""vermilion check-rdb against redis-check-rdb on crafted files: one per way the checker
can fail (every rdbReportError() line of rdb.c it can reach, the rdbCheckError() cases,
the short reads), plus sane files of every encoding. Both tools read the same file;
their reports must be the same bytes (the one log line with a pid and time aside),
their exit codes the same.

The real-Redis scenarios (files written by redis-server, then damaged) are in
test_persistence_tools.py; this module runs check_rdb in process, to keep ~100 files fast.
"""

import io
import os
import re
import struct
import subprocess

import pytest

from conftest import require_binary
from vermilion.datatypes import encodings as enc
from vermilion.persistence import rdb, tools

LOG_LINE = re.compile(rb"^\d+:C \d\d \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3} ", re.M)


def normalised(report: bytes) -> bytes:
    """A report with serverLog's "pid:C date time" prefix made constant."""
    return LOG_LINE.sub(b"<pid>:C <time> ", report)


# -- building RDB files -------------------------------------------------------------------

L = rdb.encode_length


def S(data: bytes) -> bytes:
    return rdb.encode_string(data, compression=False)


HEADER = b"REDIS0010\xfa" + S(b"redis-ver") + S(b"7.0.15") + b"\xfe\x00"


def entry(rdb_type: int, key: bytes, body: bytes) -> bytes:
    return bytes([rdb_type]) + S(key) + body


def rdb_file(body: bytes, crc: bool = True, eof: bool = True) -> bytes:
    """HEADER + body, then (with eof) the EOF opcode and the checksum (0 without crc);
    without eof the file simply ends after body."""
    data = HEADER + body
    if eof:
        data += b"\xff"
        data += struct.pack("<Q", rdb.CRC64.calc(data) if crc else 0)
    return data


def lp(items) -> bytes:
    return enc.build_listpack(list(items))


def stream_listpack() -> bytes:
    # Master entry: count 1, deleted 0, 1 field "a", terminator; then one entry with the
    # master's fields (flags 2), id delta 0-0, value "v", lp-count 4.
    return lp([b"1", b"0", b"1", b"a", b"0", b"2", b"0", b"0", b"v", b"4"])


NODE = b"\x00" * 15 + b"\x01"  # a stream ID: node key, PEL entry


def stream_v2(groups: bytes = b"") -> bytes:
    body = L(1) + S(NODE) + S(stream_listpack())
    body += L(1) + L(1) + L(1) + L(1) + L(1) + L(0) + L(0) + L(1)  # length, 3 ids, added
    return body + groups


def zipmap(pairs) -> bytes:
    out = bytes([len(pairs)])
    for k, v in pairs:
        out += bytes([len(k)]) + k + bytes([len(v)]) + b"\x00" + v
    return out + b"\xff"


GARBAGE = bytes(range(0x11, 0xDD, 0x11))  # no listpack, ziplist, intset or zipmap
GROUP = S(b"g") + L(0) + L(0) + L(0)  # name, last id, entries read
NACK = NODE + struct.pack("<q", 1) + L(1)  # id, delivery time, delivery count
CONSUMER = S(b"c") + struct.pack("<q", 1)


def module_aux(opcode: int) -> bytes:
    """A module AUX entry cut right after one typed opcode."""
    return b"\xf7" + L(1 << 10) + L(2) + L(0) + L(opcode)


def _hash_with_repeat(n: int, value: bytes = b"v") -> bytes:
    pairs = b"".join(S(b"f%d" % i) + S(value) for i in range(n - 1))
    return entry(4, b"h", L(n) + pairs + S(b"f0") + S(b"v"))


FILES = {
    # rdbReportError() in rdb.c, each of its reachable calls
    "len-encoding": rdb_file(entry(0, b"k", b"\x82" + b"x" * 10)),
    "lzf": rdb_file(entry(0, b"k", b"\xc3" + L(3) + L(30) + b"\x01ab")),
    "lzf-too-large": rdb_file(entry(0, b"k", b"\xc3" + L(3) + L(1 << 47) + b"\x01ab")),
    "lzf-large": rdb_file(entry(0, b"k", b"\xc3" + L(3) + L(1 << 40) + b"\x01ab")),
    "string-encoding": rdb_file(entry(0, b"k", b"\xc4")),
    "module-int": rdb_file(module_aux(1), eof=False),
    "module-string": rdb_file(module_aux(5), eof=False),
    "module-float": rdb_file(module_aux(3), eof=False),
    "module-double": rdb_file(module_aux(4), eof=False),
    "set-oom": rdb_file(entry(2, b"s", L(1 << 44) + S(b"a"))),
    "set-overflow": rdb_file(entry(2, b"s", L(1 << 62) + S(b"a"))),
    "set-large": rdb_file(entry(2, b"s", L(1 << 43) + S(b"a"))),
    "set-dup-intset": rdb_file(entry(2, b"s", L(2) + S(b"1") + S(b"1"))),
    "set-dup": rdb_file(entry(2, b"s", L(2) + S(b"a") + S(b"a"))),
    "set-converted-dup": rdb_file(entry(2, b"s", L(3) + S(b"1") + S(b"a") + S(b"1"))),
    "zset-oom": rdb_file(entry(5, b"z", L(1 << 44) + S(b"a") + struct.pack("<d", 1))),
    "zset-nan": rdb_file(entry(5, b"z", L(1) + S(b"a") + struct.pack("<d", float("nan")))),
    "zset-dup": rdb_file(entry(5, b"z", L(2) + S(b"a") + struct.pack("<d", 1)
                               + S(b"a") + struct.pack("<d", 2))),
    "hash-dup": rdb_file(entry(4, b"h", L(2) + S(b"f") + S(b"v") + S(b"f") + S(b"w"))),
    "hash-dup-512": rdb_file(_hash_with_repeat(512)),
    "hash-dup-513": rdb_file(_hash_with_repeat(513)),
    "hash-dup-converted": rdb_file(_hash_with_repeat(130, b"v" * 70)),
    "hash-oom": rdb_file(entry(4, b"h", L(1 << 44) + S(b"f") + S(b"v"))),
    "hash-big-value-dup": rdb_file(entry(4, b"h", L(3) + S(b"f") + S(b"v" * 100)
                                         + S(b"g") + S(b"w") + S(b"f") + S(b"x"))),
    "quicklist-container": rdb_file(entry(18, b"l", L(1) + L(3) + S(b"x"))),
    "quicklist-listpack": rdb_file(entry(18, b"l", L(1) + L(2) + S(GARBAGE))),
    "quicklist-ziplist": rdb_file(entry(14, b"l", L(1) + S(GARBAGE))),
    "zipmap": rdb_file(entry(9, b"h", S(GARBAGE))),
    "zipmap-dup": rdb_file(entry(9, b"h", S(zipmap([(b"f", b"v"), (b"f", b"w")])))),
    "list-ziplist": rdb_file(entry(10, b"l", S(GARBAGE))),
    "intset": rdb_file(entry(11, b"s", S(GARBAGE))),
    "intset-unsorted": rdb_file(entry(11, b"s", S(struct.pack("<IIhh", 2, 2, 3, 1)))),
    "zset-ziplist": rdb_file(entry(12, b"z", S(GARBAGE))),
    "zset-listpack": rdb_file(entry(17, b"z", S(GARBAGE))),
    "hash-ziplist": rdb_file(entry(13, b"h", S(GARBAGE))),
    "hash-listpack": rdb_file(entry(16, b"h", S(GARBAGE))),
    "hash-listpack-dup": rdb_file(entry(16, b"h", S(lp([b"f", b"v", b"f", b"w"])))),
    "hash-listpack-odd": rdb_file(entry(16, b"h", S(lp([b"f", b"v", b"g"])))),
    "stream-listpacks-len": rdb_file(entry(15, b"x", b""), eof=False),
    "stream-master-id": rdb_file(entry(15, b"x", L(1)), eof=False),
    "stream-node-key": rdb_file(entry(15, b"x", L(1) + S(b"abc"))),
    "stream-listpack-read": rdb_file(entry(15, b"x", L(1) + S(NODE)), eof=False),
    "stream-listpack": rdb_file(entry(15, b"x", L(1) + S(NODE) + S(GARBAGE))),
    "stream-readded": rdb_file(entry(15, b"x", L(2) + (S(NODE) + S(stream_listpack())) * 2)),
    "stream-metadata": rdb_file(entry(15, b"x", L(0)), eof=False),
    "stream-length": rdb_file(entry(15, b"x", L(0) + L(5) + L(0) + L(0))),
    "stream-cgroups": rdb_file(entry(19, b"x", stream_v2()), eof=False),
    "stream-cgroup-name": rdb_file(entry(19, b"x", stream_v2(L(1))), eof=False),
    "stream-cgroup-id": rdb_file(entry(19, b"x", stream_v2(L(1) + S(b"g"))), eof=False),
    "stream-cgroup-offset": rdb_file(entry(19, b"x", stream_v2(L(1) + S(b"g") + L(0) + L(0))),
                                     eof=False),
    "stream-cgroup-dup": rdb_file(entry(19, b"x", stream_v2(L(2) + (GROUP + L(0) + L(0)) * 2))),
    "stream-pel-size": rdb_file(entry(19, b"x", stream_v2(L(1) + GROUP)), eof=False),
    "stream-pel-id": rdb_file(entry(19, b"x", stream_v2(L(1) + GROUP + L(1))), eof=False),
    "stream-pel-nack": rdb_file(entry(19, b"x", stream_v2(L(1) + GROUP + L(1) + NODE)),
                                eof=False),
    "stream-pel-dup": rdb_file(entry(19, b"x", stream_v2(L(1) + GROUP + L(2) + NACK * 2 + L(0)))),
    "stream-consumers": rdb_file(entry(19, b"x", stream_v2(L(1) + GROUP + L(1) + NACK)),
                                 eof=False),
    "stream-consumer-name": rdb_file(entry(19, b"x", stream_v2(L(1) + GROUP + L(1) + NACK
                                                               + L(1))), eof=False),
    "stream-consumer-dup": rdb_file(entry(19, b"x", stream_v2(L(1) + GROUP + L(0) + L(2)
                                                              + (CONSUMER + L(0)) * 2))),
    "stream-seen-time": rdb_file(entry(19, b"x", stream_v2(L(1) + GROUP + L(0) + L(1)
                                                           + S(b"c"))), eof=False),
    "stream-consumer-pel-size": rdb_file(entry(19, b"x", stream_v2(L(1) + GROUP + L(0) + L(1)
                                                                   + CONSUMER)), eof=False),
    "stream-consumer-pel-id": rdb_file(entry(19, b"x", stream_v2(L(1) + GROUP + L(1) + NACK
                                                                 + L(1) + CONSUMER + L(1))),
                                       eof=False),
    "stream-consumer-pel-missing": rdb_file(entry(19, b"x", stream_v2(
        L(1) + GROUP + L(0) + L(1) + CONSUMER + L(1) + NODE))),
    "stream-consumer-pel-twice": rdb_file(entry(19, b"x", stream_v2(
        L(1) + GROUP + L(1) + NACK + L(1) + CONSUMER + L(2) + NODE * 2))),
    "stream-consumer-pel-two-owners": rdb_file(entry(19, b"x", stream_v2(
        L(1) + GROUP + L(1) + NACK + L(2) + CONSUMER + L(1) + NODE
        + S(b"d") + struct.pack("<q", 1) + L(1) + NODE))),
    "stream-pel-no-consumer": rdb_file(entry(19, b"x", stream_v2(L(1) + GROUP + L(1) + NACK
                                                                 + L(0)))),
    "module-id": rdb_file(entry(7, b"m", b""), eof=False),
    "module-type": rdb_file(entry(6, b"m", L(12345 << 10))),
    # rdbCheckError(): the check fails without exiting
    "bad-signature": b"REDIX0010\xff" + b"\0" * 8,
    "bad-version": b"REDIS0011\xff" + b"\0" * 8,
    "version-zero": b"REDIS00x1\xff" + b"\0" * 8,
    "invalid-type": rdb_file(entry(30, b"k", S(b"v"))),
    "bad-when-opcode": rdb_file(b"\xf7" + L(1 << 10) + L(1) + L(0) + L(0)),
    "function-short": rdb_file(b"\xf5" + L(100) + b"abc", eof=False),
    "function-pre-ga-short": rdb_file(b"\xf6" + S(b"lib") + S(b"LUA") + L(1), eof=False),
    "crc-wrong": rdb_file(entry(0, b"k", S(b"v")))[:-1] + b"\x01",
    # short reads and the values rdbLoadObject returns NULL for
    "short-header": b"REDIS00",
    "empty-file": b"",
    "no-checksum": rdb_file(entry(0, b"k", S(b"v")), eof=False) + b"\xff",
    "empty-list": rdb_file(entry(1, b"l", L(0))),
    "empty-hash-listpack": rdb_file(entry(16, b"h", S(lp([])))),
    "empty-quicklist-node": rdb_file(entry(18, b"l", L(1) + L(2) + S(b""))),
    "zset-v1-unparsable-score": rdb_file(entry(3, b"z", L(1) + S(b"a") + b"\x03abc")),
    "aux-cut": rdb_file(b"\xfa" + S(b"name") + L(10) + b"abc", eof=False),
    "expire-cut": rdb_file(b"\xfc\x01\x02", eof=False),
    "key-cut": rdb_file(b"\x00" + L(10) + b"abc", eof=False),
    # sane files
    "functions": rdb_file(b"\xf5" + S(b"#!lua name=x\nredis.register_function('f', "
                                        b"function() return 1 end)")),
    "module-aux": rdb_file(b"\xf7" + L(0x1234567 << 10) + L(2) + L(0) + L(2) + L(7) + L(5)
                           + S(b"abc") + L(0) + entry(0, b"k", S(b"v"))),
    "module-value": rdb_file(entry(7, b"m", L(99 << 10) + L(2) + L(5) + L(4)
                                   + struct.pack("<d", 1.5) + L(0))),
    "expiries": rdb_file(b"\xfc" + struct.pack("<q", 1000) + entry(0, b"old", S(b"v"))
                         + b"\xfd" + struct.pack("<i", 2**31 - 1) + entry(0, b"new", S(b"v"))
                         + b"\xf8" + L(5) + b"\xf9\x03" + entry(0, b"x", S(b"y"))),
    "checksum-disabled": rdb_file(entry(0, b"k", S(b"v")), crc=False),
    "old-version": b"REDIS0004\xfe\x00" + entry(0, b"k", S(b"v")) + b"\xff",
    "lzf-string": rdb_file(entry(0, b"k", rdb.encode_string(b"a" * 100))),
    "lzf-zero-size": rdb_file(entry(0, b"k", b"\xc3" + L(2) + L(0) + b"\x00a")),
    "key-with-nul": rdb_file(entry(0, b"a\x00b", S(b"v")) + entry(1, b"c\x00d", L(0))),
    "aux-with-nul-and-long": rdb_file(b"\xfa" + S(b"n\x00x") + S(b"v" * 2000)),
    "integer-keys": rdb_file(b"\x00\xc1\x39\x30" + S(b"v") + b"\x01\xc0\x07" + L(1) + S(b"e")),
    "many-databases": rdb_file(b"\xfe" + L(5000) + entry(0, b"k", S(b"v"))),
    "intset-sane": rdb_file(entry(11, b"s", S(enc.build_intset([1, 2, 3])))),
    "zset-listpack-sane": rdb_file(entry(17, b"z", S(lp([b"m", b"1.5"])))),
    "zset-v1-scores": rdb_file(entry(3, b"z", L(3) + S(b"a") + b"\x031.5" + S(b"b") + b"\xfe"
                                     + S(b"c") + b"\x06 0x1p3"),),
    "plain-quicklist-node": rdb_file(entry(18, b"l", L(1) + L(1) + S(b"plainvalue"))),
    "stream-sane": rdb_file(entry(19, b"x", stream_v2(L(1) + GROUP + L(1) + NACK + L(1)
                                                      + CONSUMER + L(1) + NODE))),
    "stream-v1-sane": rdb_file(entry(15, b"x", L(1) + S(NODE) + S(stream_listpack())
                                     + L(1) + L(1) + L(1) + L(1) + S(b"g") + L(0) + L(0)
                                     + L(0) + L(0))),
    "stream-v3": rdb_file(entry(21, b"x", stream_v2())),
}


def redis_check_rdb(path) -> tuple[bytes, int]:
    done = subprocess.run([require_binary("redis-check-rdb"), path.name], cwd=path.parent,
                          capture_output=True, timeout=60)
    return done.stdout, done.returncode


def vermilion_check_rdb(path) -> tuple[bytes, int]:
    out = io.BytesIO()
    cwd = os.getcwd()
    os.chdir(path.parent)  # the report names the file as given: the same relative name
    try:
        code = tools.check_rdb(path.name, stream=out)
    finally:
        os.chdir(cwd)
    return out.getvalue(), code


@pytest.mark.parametrize("name", sorted(FILES))
def test_check_rdb_reports_crafted_files_as_redis_check_rdb(tmp_path, name):
    path = tmp_path / f"{name}.rdb"
    path.write_bytes(FILES[name])
    theirs, their_code = redis_check_rdb(path)
    ours, our_code = vermilion_check_rdb(path)
    assert normalised(ours) == normalised(theirs)
    assert our_code == their_code


# The crafted file that makes the real checker report each line of tools.RDB_C_LINES.
LINE_FILES = {
    "len-encoding": "len-encoding", "lzf": "lzf", "string-encoding": "string-encoding",
    "module-int": "module-int", "module-string": "module-string",
    "module-float": "module-float", "module-double": "module-double",
    "set-expand": "set-oom", "set-dup-intset": "set-dup-intset", "set-dup": "set-dup",
    "zset-expand": "zset-oom", "zset-nan": "zset-nan", "zset-dup": "zset-dup",
    "hash-dup-listpack": "hash-dup", "hash-expand": "hash-oom", "hash-dup": "hash-dup-513",
    "quicklist-container": "quicklist-container", "quicklist-listpack": "quicklist-listpack",
    "quicklist-ziplist": "quicklist-ziplist", "zipmap": "zipmap", "zipmap-dup": "zipmap-dup",
    "list-ziplist": "list-ziplist", "intset": "intset", "zset-ziplist": "zset-ziplist",
    "zset-listpack": "zset-listpack", "hash-ziplist": "hash-ziplist",
    "hash-listpack": "hash-listpack", "stream-consumer-pel-owned": "stream-consumer-pel-twice",
    **{key: key for key in tools.RDB_C_LINES if key.startswith("stream-")
       and key != "stream-consumer-pel-owned"},
    "module-id": "module-id", "module-type": "module-type",
}


def test_rdb_c_line_numbers_are_the_installed_checkers(tmp_path):
    """tools.RDB_C_LINES holds the line numbers of the Debian build the tests compare
    with: each one is what the real checker prints for its crafted file."""
    assert set(LINE_FILES) == set(tools.RDB_C_LINES)
    for key, name in LINE_FILES.items():
        path = tmp_path / f"{name}.rdb"
        path.write_bytes(FILES[name])
        report, _ = redis_check_rdb(path)
        assert b"function at rdb.c:%d -> " % tools.RDB_C_LINES[key] in report, key


def test_loader_names_the_entry_it_fails_on():
    """The start-up loader stops at the first damaged entry, not at the checksum, and
    says where as redis-check-rdb does (the offset of the failed read, key, type)."""
    data = FILES["stream-consumer-pel-missing"]
    with pytest.raises(rdb.RDBError) as failed:
        rdb.load_snapshot(data, [tools._Db(i) for i in range(16)])
    error = failed.value
    assert (error.offset, error.key, error.rdb_type, error.doing) == (
        123, b"x", 19, "read-object-value")
    assert "[offset 123]" in str(error) and "Reading key 'x'" in str(error)


@pytest.mark.parametrize("name", sorted(FILES))
def test_loader_refuses_damage_with_rdb_error_only(name):
    """Whatever the crafted file, loading it either works or raises RDBError (never
    another exception, never a huge allocation from a corrupt length)."""
    for packed in (False, True):
        dbs = [tools._Db(i) for i in range(16)]
        try:
            rdb.load_snapshot(FILES[name], dbs, packed=packed)
        except rdb.RDBError as error:
            assert str(error)
            assert all(not db.data for db in dbs)
