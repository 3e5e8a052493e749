"""Corrupt DUMP payloads and RDB values (rdb.c rdbLoadObject, cluster.c restoreCommand):
the same replies as redis-server on payloads from Redis's own corrupt-dump tests, under
sanitize-dump-payload no and yes; empty keys skipped and encodings fitted to the
server's limits at load."""

import anycrc
import pytest

from conftest import RawConnection, ServerProcess, VERMILION, require_binary
from test_rdb_formats import length, rdb_file, string, ziplist

# (sanitize-dump-payload, payload): each from tests/integration/corrupt-dump.tcl, with
# the check that refuses it in Redis.
CASES = {
    # ziplistValidateIntegrity: an entry longer than the ziplist
    "hash-ziplist-entry-len": ("no", b"\r\x1b\x1b\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02a"
                               b"\x00\x04\x02b\x00\x04\x14c\x00\x04\x02d\x00\xff\t\x00\xd9\x10T"
                               b"\x92\x15\xf5_R"),
    # a prevlen that does not match the previous entry (quicklist of ziplists)
    "quicklist-prevlen": ("yes", b"\x0e\x01\x13\x13\x00\x00\x00\x0e\x00\x00\x00\x02\x00\x00"
                          b"\x02a\x00\x02\x02b\x00\xff\t\x00\xc7q\x03\x97\x07u\xb0c"),
    # ziplist ending before its last byte (0xff then junk)
    "ziplist-tail-junk": ("yes", b"\x0e\x01\x11\x11\x00\x00\x00\n\x00\x00\x00\x01\x00\x00\xf6"
                          b"\xff\xb0l\x9c\xff\t\x00\x9c7GIM\xde\x94\xf5"),
    # lpPairsValidateIntegrityAndDups: a field twice (deep only)
    "hash-listpack-dup": ("yes", b"\x10\x17\x17\x00\x00\x00\x04\x00\x82a\x00\x03\x82b\x00\x03"
                          b"\x82a\x00\x03\x82d\x00\x03\xff\n\x00\xc0\xcf\xa6\x87\xe5\xa7\xc5"
                          b"\xbe"),
    # zipmapValidateIntegrity: empty
    "empty-zipmap": ("no", b"\t\x02\x00\xff\t\x00\xc0\xf1\xb8gL\x16\xac\xe3"),
    # a duplicate set member (plain set)
    "set-dup": ("no", b"\x02\x03\x02_1\xc0\x02\xc3\x00\t\x00\xe6\xdcvD\xff\xeb=\xfe"),
    # goto emptykey: a hash and a sorted set of no element
    "empty-hash": ("yes", b"\x04\xc0!\t\x00\xf6\x8a\xb6z\x85\x87rM"),
    "empty-zset": ("yes", b"\x05\xc0\x01\t\x00\xf6\x8a\xb6z\x85\x87rM"),
    # a string of 2^64-ish bytes
    "huge-string": ("yes", b"\x00\x81\x01\t\x00\xf6+\xb6z\x85\x87rM"),
    # two consumers of one name in a stream group
    "stream-dup-consumer": ("no", b"\x0f\x00\x00\x00\x00\x01\x07mygroup\x00\x00\x00\x02\x04name*"
                            b"L\xaa\x9a}\x01\x00\x00\x00\x04name+L\xaa\x9a}\x01\x00\x00\x00\n\x00"
                            b"\xcc\xed\x8c\xa7b\xee\xc7\xc8"),
    # a valid ziplist hash (deep sanitization passes it)
    "hash-ziplist-ok": ("yes", b"\r\x19\x19\x00\x00\x00\x16\x00\x00\x00\x06\x00\x00\xf1\x02\xf1"
                        b"\x02\xf2\x02\x02_1\x04\xf3\x02\xf3\xff\t\x008\xb8\x10\xc0\x8a\xf9\x16"
                        b"\xdf"),
}

# A Redis 5/6 stream whose node listpack has a wrong lp-count (corrupt-dump.tcl's
# "stream bad lp_count - unsanitized"): only deep sanitization refuses it.
STREAM_BAD_LP_COUNT = bytes.fromhex(
    "0f011000000173dedf7d9b00000000000000004042420000001800030100010201846974656d05857661"
    "6c75650600010201000100010101000156010201220100010101825f3103050102012c01000101010201"
    "0501ff038100000173dedf7dc70001076d7967726f75708100000173dedf7d9b000100000173dedf7d9b"
    "0000000000000000f97ddfde73010000010105416c696365eb7ddfde730100000100000173dedf7d9b00"
    "000000000000000900b2a8a75f1b6172d5")


CRC64 = anycrc.Model("CRC64-REDIS")


def signed(payload: bytes) -> bytes:
    """The payload with a right CRC64 (some of Redis's tests skip the check instead)."""
    return payload[:-8] + CRC64.calc(payload[:-8]).to_bytes(8, "little")


@pytest.fixture
def both(raw, raw_real):
    conns = (raw, raw_real)
    yield conns
    for conn in conns:
        conn.command("CONFIG", "SET", "sanitize-dump-payload", "no")


@pytest.mark.parametrize("case", list(CASES))
def test_corrupt_payload_replies_match_redis(both, case):
    sanitize, payload = CASES[case]
    replies = []
    for conn in both:
        conn.command("CONFIG", "SET", "sanitize-dump-payload", sanitize)
        replies.append((conn.command("RESTORE", "k", "0", signed(payload), "REPLACE"),
                        conn.command("EXISTS", "k")))
    assert replies[0] == replies[1]


def test_checksum_and_version_are_verified(raw, raw_real):
    for conn in (raw, raw_real):
        conn.command("SET", "s", "value")
    payload = raw_real.command("DUMP", "s").split(b"\r\n", 1)[1][:-2]
    bad_crc = payload[:-1] + bytes([payload[-1] ^ 1])
    newer = payload[:-10] + b"\x0b\x00" + payload[-8:]  # RDB 11 (Redis 7.2): too new
    for conn in (raw, raw_real):
        for bad in (bad_crc, newer, b"short"):
            assert conn.command("RESTORE", "t", "0", bad) == \
                b"-ERR DUMP payload version or checksum are wrong\r\n"


def test_unsanitized_damage_is_taken_then_refused_on_read(raw):
    # Redis takes the value (only the listpack's header is checked) and asserts when
    # XREVRANGE walks it; Vermilion holds it packed and the reading command errs.
    payload = signed(STREAM_BAD_LP_COUNT)
    try:
        assert raw.command("RESTORE", "s", "0", payload) == b"+OK\r\n"
        assert raw.command("TYPE", "s") == b"+stream\r\n"
        assert raw.command("XREVRANGE", "s", "+", "-").startswith(
            b"-ERR Corrupt value for key 's'")
        dumped = raw.command("DUMP", "s").split(b"\r\n", 1)[1][:-2]
        assert dumped[:-10] == payload[:len(dumped) - 10]  # as it came
        assert raw.command("DEL", "s") == b":1\r\n"
        raw.command("CONFIG", "SET", "sanitize-dump-payload", "yes")
        assert raw.command("RESTORE", "s", "0", payload) == b"-ERR Bad data format\r\n"
    finally:
        raw.command("CONFIG", "SET", "sanitize-dump-payload", "no")


def _listpack(items):
    body = b""
    for item in items:
        entry = bytes([0x80 | len(item)]) + item
        body += entry + bytes([len(entry)])
    return (len(body) + 7).to_bytes(4, "little") + len(items).to_bytes(2, "little") + body + b"\xff"


FILE_KEYS = [
    (0, b"kept", string(b"v"), None),
    (2, b"empty-set", length(0), None),
    (4, b"empty-hash", length(0), None),
    (13, b"empty-hash-ziplist", string(ziplist([])), None),
    (16, b"empty-hash-listpack", string(_listpack([])), None),
    (16, b"hash3", string(_listpack([b"a", b"1", b"b", b"2", b"c", b"3"])), None),
    (17, b"zset3", string(_listpack([b"x", b"1", b"y", b"2", b"z", b"3"])), None),
]


def _start(binary, tmp_path, name, *args):
    directory = tmp_path / name
    directory.mkdir()
    (directory / "dump.rdb").write_bytes(rdb_file(10, FILE_KEYS))
    server = ServerProcess(binary, cwd=directory)
    server.args = ["--dir", str(directory), *args]
    return server.start()


def test_file_load_skips_empty_keys_and_fits_encodings(tmp_path):
    limits = ("--hash-max-listpack-entries", "2", "--zset-max-listpack-entries", "2")
    seen = {}
    for name, binary in (("redis", require_binary("redis-server")), ("vermilion", VERMILION)):
        server = _start(binary, tmp_path, name, *limits)
        try:
            c = server.client()
            seen[name] = (sorted(c.keys("*")),
                          c.object("encoding", "hash3"), c.object("encoding", "zset3"),
                          c.hgetall("hash3"))
        finally:
            server.stop()
        log = server.log_path.read_text()
        assert "rdbLoadObject skipping empty key: empty-hash-listpack" in log
    assert seen["vermilion"] == seen["redis"]
    assert seen["redis"][:3] == ([b"hash3", b"kept", b"zset3"], b"hashtable", b"skiplist")


def test_sanitize_clients_skips_users_with_skip_sanitize_payload(vermilion_server, redis_server):
    # sanitize-dump-payload clients: deep checks for every client but the master and
    # ACL users with skip-sanitize-payload (rdbLoadObject()).
    dup_fields = signed(CASES["hash-listpack-dup"][1])
    replies = []
    for server in (vermilion_server, redis_server):
        admin = RawConnection(server.port)
        admin.command("CONFIG", "SET", "sanitize-dump-payload", "clients")
        admin.command("ACL", "SETUSER", "trusted", "on", ">pw", "~*", "+@all",
                      "skip-sanitize-payload")
        trusted = RawConnection(server.port)
        try:
            trusted.command("AUTH", "trusted", "pw")
            replies.append((admin.command("RESTORE", "d1", "0", dup_fields, "REPLACE"),
                            trusted.command("RESTORE", "d2", "0", dup_fields, "REPLACE")))
        finally:
            admin.command("DEL", "d1", "d2")
            admin.command("ACL", "DELUSER", "trusted")
            admin.command("CONFIG", "SET", "sanitize-dump-payload", "no")
            trusted.close()
            admin.close()
    assert replies[0] == replies[1] == (b"-ERR Bad data format\r\n", b"+OK\r\n")
