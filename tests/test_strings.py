"""String commands (t_string.c): redis-py behaviour on vermilion, and byte-for-byte
comparison of replies and errors with a real redis-server on the same sequences."""

import time

import pytest

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)


# Each case is a command sequence run on a flushed db of both servers.
CASES = {
    "get-set-basic": [
        ("GET", "k"), ("SET", "k", "v"), ("GET", "k"), ("SET", "k", ""), ("GET", "k"),
        ("SET", b"bin\x00\xff", b"\x00\r\n\xff"), ("GET", b"bin\x00\xff"),
        ("LPUSH", "list", "a"), ("GET", "list"),
    ],
    "set-options-syntax": [
        ("SET", "k", "v", "NX", "XX"), ("SET", "k", "v", "XX", "NX"),
        ("SET", "k", "v", "EX", "10", "PX", "100"), ("SET", "k", "v", "KEEPTTL", "EX", "5"),
        ("SET", "k", "v", "EX", "5", "KEEPTTL"), ("SET", "k", "v", "PERSIST"),
        ("SET", "k", "v", "EX"), ("SET", "k", "v", "PX"), ("SET", "k", "v", "foo"),
        ("SET", "k", "v", "EXAT", "1", "PXAT", "1"), ("SET", "k", "v", "ex", "10", "ex", "10"),
        ("SET", "k", "v", "nx", "nx"), ("SET", "k", "v", "get", "get"), ("GET", "k"),
        ("SET", "k", "v", "keepttl", "keepttl"), ("SET", "k", "v", "xx", "get", "keepttl"),
    ],
    "set-invalid-expire": [
        ("SET", "k", "v", "EX", "0"), ("SET", "k", "v", "EX", "-1"), ("SET", "k", "v", "PX", "0"),
        ("SET", "k", "v", "EX", "abc"), ("SET", "k", "v", "EX", "1.5"),
        ("SET", "k", "v", "EX", "9223372036854775"), ("SET", "k", "v", "EX", "9223372036854776"),
        ("SET", "k", "v", "PX", str(LLONG_MAX)), ("SET", "k", "v", "EXAT", "0"),
        ("SET", "k", "v", "PXAT", "-5"), ("SET", "k", "v", "EX", "99999999999999999999"),
        ("SETEX", "k", "0", "v"), ("SETEX", "k", "-10", "v"), ("SETEX", "k", "x", "v"),
        ("PSETEX", "k", "0", "v"), ("PSETEX", "k", "abc", "v"), ("GET", "k"),
    ],
    "set-nx-xx-get": [
        ("SET", "k", "v", "XX"), ("GET", "k"), ("SET", "k", "v1", "NX"), ("SET", "k", "v2", "NX"),
        ("GET", "k"), ("SET", "k", "v3", "XX"), ("GET", "k"), ("SET", "k", "v4", "GET"),
        ("SET", "new", "v", "GET"), ("SET", "k", "v5", "NX", "GET"), ("SET", "k2", "x", "XX", "GET"),
        ("EXISTS", "k2"), ("SET", "k", "v6", "XX", "GET"), ("GET", "k"),
        ("RPUSH", "l", "a"), ("SET", "l", "v", "GET"), ("SET", "l", "v", "EX", "0", "GET"),
        ("SET", "l", "v", "NX", "GET"), ("SET", "l", "v", "XX"), ("GET", "l"),
    ],
    "set-past-expiry": [
        ("SET", "k", "v", "EXAT", "1"), ("GET", "k"), ("SET", "k", "v", "PXAT", "1000"),
        ("EXISTS", "k"), ("SET", "k", "v"), ("SET", "k", "v2", "PXAT", "1", "GET"), ("GET", "k"),
    ],
    "setnx-setex-getset-getdel": [
        ("SETNX", "k", "a"), ("SETNX", "k", "b"), ("GET", "k"), ("SETEX", "e", "100", "v"),
        ("GET", "e"), ("PSETEX", "p", "100000", "v"), ("GET", "p"), ("GETSET", "k", "c"),
        ("GETSET", "nokey", "x"), ("GET", "nokey"), ("GETDEL", "k"), ("GETDEL", "k"),
        ("EXISTS", "k"), ("RPUSH", "l", "a"), ("GETSET", "l", "x"), ("GETDEL", "l"),
        ("SETNX", "l", "x"), ("SETEX", "l", "10", "x"), ("GET", "l"),
    ],
    "getex": [
        ("GETEX", "nokey"), ("GETEX", "nokey", "EX", "abc"), ("SET", "k", "v"), ("GETEX", "k"),
        ("GETEX", "k", "EX", "100"), ("GETEX", "k", "PX", "100000"), ("GETEX", "k", "PERSIST"),
        ("GETEX", "k", "EX", "0"), ("GETEX", "k", "EX", "-1"), ("GETEX", "k", "EX", "x"),
        ("GETEX", "k", "PX", str(LLONG_MAX)), ("GETEX", "k", "EX", "10", "PX", "10"),
        ("GETEX", "k", "PERSIST", "EX", "10"), ("GETEX", "k", "EX", "10", "PERSIST"),
        ("GETEX", "k", "KEEPTTL"), ("GETEX", "k", "NX"), ("GETEX", "k", "GET"),
        ("GETEX", "k", "EX"), ("GETEX", "k", "foo"), ("GETEX", "k", "EXAT", "1"),
        ("GET", "k"), ("SET", "k", "v"), ("GETEX", "k", "PXAT", "1"), ("EXISTS", "k"),
        ("RPUSH", "l", "a"), ("GETEX", "l"), ("GETEX", "l", "EX", "0"),
    ],
    "mget-mset": [
        ("MSET", "a", "1", "b", "2"), ("MGET", "a", "b", "c"), ("MSET", "a"),
        ("MSET", "a", "1", "b"), ("MSETNX", "a", "1", "b"), ("MSETNX", "x", "1", "a", "9"),
        ("MGET", "x", "a"), ("MSETNX", "x", "1", "y", "2"), ("MSETNX", "z", "1", "w", "2"),
        ("MGET", "z", "w"), ("RPUSH", "l", "a"), ("MGET", "l", "a", "nokey"),
        ("MSET", "l", "str"), ("GET", "l"), ("MSET", "d", "1", "d", "2"), ("GET", "d"),
        ("MSETNX", "n", "1", "n", "2"), ("GET", "n"), ("MGET", "n"),
        # MSET drops the TTLs of the keys it sets, and a collection it replaces; a key
        # given twice keeps its last value (new, existing and repeated keys together).
        ("SET", "t", "v", "EX", "100"), ("RPUSH", "q", "a"),
        ("MSET", "t", "1", "q", "2", "new", "3", "t", "4"), ("TTL", "t"), ("GET", "t"),
        ("TYPE", "q"), ("GET", "q"), ("GET", "new"), ("SET", "e", "v", "EX", "100"),
        ("MSET", "e", "5", "f", "6", "f", "7", "t", "8"), ("TTL", "e"), ("MGET", "e", "f", "t"),
    ],
    "append-strlen": [
        ("APPEND", "k", "hello"), ("APPEND", "k", " world"), ("GET", "k"), ("STRLEN", "k"),
        ("STRLEN", "nokey"), ("APPEND", "k", ""), ("APPEND", "e", ""), ("EXISTS", "e"),
        ("STRLEN", "e"), ("SET", "n", "10"), ("APPEND", "n", "5"), ("INCR", "n"),
        ("APPEND", "b", b"\x00\xff"), ("STRLEN", "b"), ("RPUSH", "l", "a"),
        ("APPEND", "l", "x"), ("STRLEN", "l"),
    ],
    "incr-decr": [
        ("INCR", "n"), ("INCR", "n"), ("DECR", "n"), ("DECR", "m"), ("INCRBY", "n", "10"),
        ("INCRBY", "n", "-20"), ("DECRBY", "n", "5"), ("DECRBY", "n", "-100"),
        ("INCRBY", "n", "abc"), ("INCRBY", "n", "1.5"), ("INCRBY", "n", " 1"),
        ("INCRBY", "n", "+1"), ("INCRBY", "n", "01"), ("INCRBY", "n", "-0"),
        ("INCRBY", "n", "99999999999999999999"), ("INCRBY", "n", ""),
        ("SET", "s", "abc"), ("INCR", "s"), ("SET", "s", " 1"), ("INCR", "s"),
        ("SET", "s", "1 "), ("INCR", "s"), ("SET", "s", "+1"), ("INCR", "s"),
        ("SET", "s", "007"), ("INCR", "s"), ("SET", "s", ""), ("INCR", "s"),
        ("SET", "s", "1.0"), ("INCR", "s"), ("SET", "s", "-0"), ("INCR", "s"),
        ("SET", "s", "9223372036854775808"), ("INCR", "s"),
        ("SET", "big", str(LLONG_MAX)), ("INCR", "big"), ("INCRBY", "big", "1"),
        ("INCRBY", "big", "0"), ("DECRBY", "big", "-1"), ("GET", "big"),
        ("SET", "small", str(LLONG_MIN)), ("DECR", "small"), ("INCRBY", "small", "-1"),
        ("DECRBY", "small", "1"), ("INCRBY", "small", str(LLONG_MAX)),
        ("DECRBY", "x", str(LLONG_MIN)), ("DECRBY", "x", str(LLONG_MAX)), ("DECR", "x"),
        ("INCRBY", "y", str(LLONG_MIN)), ("RPUSH", "l", "a"), ("INCR", "l"),
        ("DECRBY", "l", "abc"), ("INCRBY", "l", "1"),
    ],
    "incrbyfloat": [
        ("INCRBYFLOAT", "f", "10.5"), ("INCRBYFLOAT", "f", "0.1"), ("INCRBYFLOAT", "f", "-5"),
        ("INCRBYFLOAT", "g", "5.0e3"), ("INCRBYFLOAT", "g", "2.0e-3"), ("INCRBYFLOAT", "h", "1e-300"),
        ("INCRBYFLOAT", "i", "0.1"), ("INCRBYFLOAT", "i", "0.2"), ("INCRBYFLOAT", "j", "3"),
        ("INCRBYFLOAT", "j", "-3"), ("INCRBYFLOAT", "k", "-0.0"), ("INCRBYFLOAT", "k2", "-1e-30"),
        ("INCRBYFLOAT", "m", "1.23456789012345678901234"), ("INCRBYFLOAT", "m2", "1e20"),
        ("INCRBYFLOAT", "m3", "1e30"), ("INCRBYFLOAT", "m4", "123456789.123456789"),
        ("INCRBYFLOAT", "m5", "-9999999999999999.5"), ("INCRBYFLOAT", "m6", "0.5e-17"),
        ("INCRBYFLOAT", "m7", "0.15e-16"), ("INCRBYFLOAT", "m8", "0x10"),
        ("INCRBYFLOAT", "m9", "0x1.8p1"), ("INCRBYFLOAT", "m10", ".5"), ("INCRBYFLOAT", "m11", "5."),
        ("INCRBYFLOAT", "m12", "+7"), ("INCRBYFLOAT", "m13", "1E2"), ("INCRBYFLOAT", "m14", "1e400"),
        ("INCRBYFLOAT", "x", "abc"), ("INCRBYFLOAT", "x", ""), ("INCRBYFLOAT", "x", " 1"),
        ("INCRBYFLOAT", "x", "1 "), ("INCRBYFLOAT", "x", "1e"), ("INCRBYFLOAT", "x", "1_0"),
        ("INCRBYFLOAT", "x", "nan"), ("INCRBYFLOAT", "x", "inf"), ("INCRBYFLOAT", "x", "-inf"),
        ("INCRBYFLOAT", "x", "infinity"), ("INCRBYFLOAT", "x", "1e5000"),
        ("INCRBYFLOAT", "x", "1e-5000"), ("INCRBYFLOAT", "x", "0e-5000"), ("INCRBYFLOAT", "x", "0x"),
        ("EXISTS", "x"), ("SET", "s", "abc"), ("INCRBYFLOAT", "s", "1"), ("SET", "s", "1.5"),
        ("INCRBYFLOAT", "s", "1"), ("SET", "s", "inf"), ("INCRBYFLOAT", "s", "1"),
        ("SET", "s", "1e4900"), ("INCRBYFLOAT", "s", "1e4900"), ("INCRBYFLOAT", "s", "-1e4900"),
        ("SET", "s", str(LLONG_MAX)), ("INCRBYFLOAT", "s", "1"), ("GET", "s"),
        ("SET", "z", "1"), ("SETRANGE", "z", "2", "2"), ("INCRBYFLOAT", "z", "1"),
        ("INCRBYFLOAT", "z2", b"\x00"), ("INCRBYFLOAT", "z2", b"1\x00x"), ("INCRBYFLOAT", "z2", "1" * 5200),
        ("INCRBYFLOAT", "z2", "0." + "1" * 5000), ("INCRBYFLOAT", "z3", "1" * 4000),
        ("INCRBYFLOAT", "z4", "1" * 4900 + "e-10"), ("INCRBYFLOAT", "z5", "0." + "0" * 4940 + "1"),
        ("INCRBYFLOAT", "z6", "1.8e-4951"), ("INCRBYFLOAT", "z6", "3.6e-4951"),
        ("INCRBYFLOAT", "z7", "1.18973149535723176502e+4932"), ("INCRBYFLOAT", "z7", "1e4931"),
        ("INCRBYFLOAT", "z8", "1e" + "9" * 5000), ("INCRBYFLOAT", "z8", "0e-" + "9" * 5000),
        ("INCRBYFLOAT", "z8", "0x1p-" + "9" * 5000), ("INCRBYFLOAT", "z8", "0x1p+99999"),
        ("INCRBYFLOAT", "z8", "1e-00000000000000000001"), ("INCRBYFLOAT", "z8", "0.000003814697265625"), ("INCRBYFLOAT", "z9", "2.5e-17"),
        ("SET", "z10", str(1 / 41)), ("INCRBYFLOAT", "z10", str(-1 / 41)),
        ("RPUSH", "l", "a"), ("INCRBYFLOAT", "l", "1"), ("INCRBYFLOAT", "l", "abc"),
    ],
    "getrange-substr": [
        ("SET", "s", "Hello World"), ("GETRANGE", "s", "0", "4"), ("GETRANGE", "s", "-5", "-1"),
        ("GETRANGE", "s", "0", "-1"), ("GETRANGE", "s", "0", "100"), ("GETRANGE", "s", "5", "3"),
        ("GETRANGE", "s", "-1", "-5"), ("GETRANGE", "s", "-100", "-101"),
        ("GETRANGE", "s", "-100", "-100"), ("GETRANGE", "s", "-100", "100"),
        ("GETRANGE", "s", "100", "200"), ("GETRANGE", "s", "11", "11"),
        ("GETRANGE", "s", str(LLONG_MIN), str(LLONG_MAX)), ("GETRANGE", "s", "a", "1"),
        ("GETRANGE", "s", "1", "99999999999999999999"), ("GETRANGE", "nokey", "0", "-1"),
        ("GETRANGE", "nokey", "a", "b"), ("SET", "e", ""), ("GETRANGE", "e", "0", "-1"),
        ("GETRANGE", "e", "-1", "0"), ("SUBSTR", "s", "0", "2"), ("SUBSTR", "s", "-3", "-1"),
        ("SET", "n", "12345"), ("GETRANGE", "n", "1", "2"), ("RPUSH", "l", "a"),
        ("GETRANGE", "l", "0", "1"), ("GETRANGE", "l", "x", "1"),
    ],
    "setrange": [
        ("SETRANGE", "k", "0", "hello"), ("SETRANGE", "k", "6", "world"), ("GET", "k"),
        ("SETRANGE", "k", "1", "a"), ("GET", "k"), ("SETRANGE", "k", "20", ""), ("STRLEN", "k"),
        ("SETRANGE", "new", "5", ""), ("EXISTS", "new"), ("SETRANGE", "new", "3", "x"),
        ("GET", "new"), ("SETRANGE", "k", "-1", "x"), ("SETRANGE", "k", "abc", "x"),
        ("SETRANGE", "k", str(LLONG_MAX), "x"), ("SETRANGE", "k", "536870912", "x"),
        ("SETRANGE", "k", "536870911", "xx"), ("SETRANGE", "k", "536870912", ""),
        ("SETRANGE", "nokey2", "536870912", "x"), ("SETRANGE", "nokey2", "-1", ""),
        ("SET", "n", "1234"), ("SETRANGE", "n", "1", "9"), ("INCR", "n"),
        ("RPUSH", "l", "a"), ("SETRANGE", "l", "0", "x"), ("SETRANGE", "l", "0", ""),
        ("SETRANGE", "l", "-1", "x"),
    ],
    "lcs": [
        ("MSET", "a", "ohmytext", "b", "mynewtext"), ("LCS", "a", "b"), ("LCS", "a", "b", "LEN"),
        ("LCS", "a", "b", "IDX"), ("LCS", "a", "b", "IDX", "WITHMATCHLEN"),
        ("LCS", "a", "b", "IDX", "MINMATCHLEN", "4"), ("LCS", "a", "b", "IDX", "MINMATCHLEN", "-4"),
        ("LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"),
        ("LCS", "a", "b", "LEN", "IDX"), ("LCS", "a", "b", "IDX", "LEN"),
        ("LCS", "a", "b", "MINMATCHLEN"), ("LCS", "a", "b", "MINMATCHLEN", "x"),
        ("LCS", "a", "b", "foo"), ("LCS", "a", "b", "LEN", "MINMATCHLEN", "2"),
        ("LCS", "a", "nokey"), ("LCS", "nokey", "nokey2", "IDX"), ("LCS", "a", "a", "IDX"),
        ("SET", "c", "aaaa"), ("SET", "d", "aa"), ("LCS", "c", "d", "IDX", "WITHMATCHLEN"),
        ("SET", "e", ""), ("LCS", "e", "c", "IDX"), ("LCS", "e", "c"),
        ("MSET", "r1", "ACGTTGCAACGTGGCATTACG", "r2", "TTGACGCAGTTCAGCAAGTCAG"),
        ("LCS", "r1", "r2"), ("LCS", "r1", "r2", "IDX", "WITHMATCHLEN"),
        ("LCS", "r2", "r1", "IDX", "MINMATCHLEN", "2", "WITHMATCHLEN"),
        ("SET", "bin1", b"\x00\x01\xff\x00"), ("SET", "bin2", b"\xff\x00\x00"),
        ("LCS", "bin1", "bin2"), ("LCS", "bin1", "bin2", "IDX"),
        ("RPUSH", "l", "x"), ("LCS", "a", "l"), ("LCS", "l", "a", "foo"),
    ],
}


@pytest.mark.parametrize("resp", [2, 3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_replies_as_redis(diff, case, resp):
    if resp == 3:
        diff.hello3()
    assert diff.mismatches(CASES[case]) == []


def test_lcs_long_strings_and_memory_limit(diff):
    import random

    rnd = random.Random(7)
    a = bytes(rnd.choice(b"ACGT") for _ in range(300))
    b = bytes(rnd.choice(b"ACGT") for _ in range(280))
    seq = [("MSET", "a", a, "b", b), ("LCS", "a", "b"), ("LCS", "a", "b", "LEN"),
           ("LCS", "a", "b", "IDX", "MINMATCHLEN", "3", "WITHMATCHLEN"), ("LCS", "b", "a", "IDX")]
    assert diff.mismatches(seq) == []


def test_incrbyfloat_random_values_match_redis(diff):
    import random

    rnd = random.Random(11)
    seq = []
    for i in range(60):
        mantissa = rnd.choice(["1", "0.1", "3.14159", "-2.5", "123456.789", "7e-5", "-0.3"])
        seq.append(("INCRBYFLOAT", f"k{i % 5}", f"{mantissa}e{rnd.randint(-20, 20)}"))
    assert diff.mismatches(seq) == []


# -- behaviour through redis-py, both protocols ------------------------------------


def test_get_set_roundtrip(r):
    assert r.get("k") is None
    assert r.set("k", b"\x00binary\xff") is True
    assert r.get("k") == b"\x00binary\xff"
    assert r.set("k", "v", nx=True) is None
    assert r.set("k", "v2", xx=True) is True
    assert r.set("k", "v3", get=True) == b"v2"
    assert r.getdel("k") == b"v3"
    assert r.exists("k") == 0


@pytest.mark.parametrize("resp", [2, 3])
def test_incrbyfloat_reply_is_bulk_in_both_protocols(raw, resp):
    raw.command("HELLO", str(resp))
    raw.command("SET", "f", "1")
    # Never a RESP3 double: Redis answers the stored text as a bulk string.
    assert raw.command("INCRBYFLOAT", "f", "0.5") == b"$3\r\n1.5\r\n"
    assert raw.command("INCRBYFLOAT", "f", "5.0e3") == b"$6\r\n5001.5\r\n"


def test_lcs_idx_is_a_map_in_resp3(diff):
    seq = [("MSET", "a", "ohmytext", "b", "mynewtext"), ("LCS", "a", "b", "IDX")]
    diff.hello3()
    assert diff.mismatches(seq) == []
    assert diff.mine.command("LCS", "a", "b", "IDX").startswith(b"%2\r\n$7\r\nmatches\r\n")


def test_wrongtype_reply(r):
    r.rpush("l", "a")
    for call in (lambda: r.get("l"), lambda: r.incr("l"), lambda: r.append("l", "x"),
                 lambda: r.set("l", "v", get=True), lambda: r.strlen("l")):
        with pytest.raises(Exception, match="WRONGTYPE"):
            call()


def test_expiry_options_take_effect(r):
    r.set("px", "v", px=80)
    r.set("keep", "v", px=80)
    r.set("keep", "v2", keepttl=True)
    r.set("drop", "v", px=80)
    r.set("drop", "v2")
    r.psetex("ps", 80, "v")
    r.set("gx", "v")
    r.getex("gx", px=80)
    r.set("persist", "v", px=80)
    assert r.getex("persist", persist=True) == b"v"
    r.set("incr", "1", px=80)
    r.incr("incr")  # INCR keeps the TTL
    r.set("app", "a", px=80)
    r.append("app", "b")  # APPEND keeps the TTL
    assert r.get("px") == b"v" and r.get("keep") == b"v2"
    time.sleep(0.2)
    assert r.mget("px", "keep", "ps", "gx", "incr", "app") == [None] * 6
    assert r.get("drop") == b"v2"
    assert r.get("persist") == b"v"


def test_getset_drops_ttl(r):
    r.set("k", "v", px=80)
    assert r.getset("k", "w") == b"v"
    time.sleep(0.15)
    assert r.get("k") == b"w"


def test_keyspace_hits_and_misses(r):
    before = r.info("stats")
    r.set("k", "v")
    r.get("k")
    r.get("k")
    r.get("missing")
    r.mget("k", "missing", "missing2")
    after = r.info("stats")
    assert after["keyspace_hits"] - before["keyspace_hits"] == 3
    assert after["keyspace_misses"] - before["keyspace_misses"] == 3


def test_setrange_respects_proto_max_bulk_len(r):
    # Only the length check is exercised: nothing this big is ever allocated.
    with pytest.raises(Exception, match="proto-max-bulk-len"):
        r.setrange("k", 512 * 1024 * 1024, "x")
    assert r.setrange("k", 3, "x") == 4
    assert r.get("k") == b"\x00\x00\x00x"


def test_msetnx_is_all_or_nothing(r):
    r.set("a", "1")
    assert r.msetnx({"a": "x", "b": "y"}) is False
    assert r.get("b") is None
    assert r.msetnx({"b": "y", "c": "z"}) is True
    assert r.mget("b", "c") == [b"y", b"z"]


def _keyspace_stats(conn):
    text = conn.command("INFO", "stats").split(b"\r\n", 1)[1].decode()
    stats = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(stats["keyspace_hits"]), int(stats["keyspace_misses"])


def test_keyspace_hits_and_misses_counted_like_redis(raw, raw_real):
    # Reads count (lookupKeyRead), writes do not (lookupKeyWrite), per key.
    seq = [
        ("SET", "s", "hello"), ("SET", "n", "5"), ("RPUSH", "l", "a"),
        ("GET", "s"), ("GET", "x"), ("GET", "l"), ("MGET", "s", "x", "l", "n"), ("STRLEN", "s"),
        ("STRLEN", "x"), ("GETRANGE", "s", "0", "1"), ("GETRANGE", "x", "0", "1"),
        ("GETEX", "s"), ("GETEX", "x", "PERSIST"), ("GETSET", "n", "6"), ("GETSET", "y", "1"),
        ("GETDEL", "y"), ("GETDEL", "y"), ("SET", "s", "v", "GET"), ("SET", "z", "v", "GET"),
        ("SET", "s", "v", "NX"), ("SETNX", "s", "v"), ("APPEND", "s", "x"), ("APPEND", "w", "x"),
        ("INCR", "n"), ("INCR", "c"), ("INCRBYFLOAT", "n", "1"), ("SETRANGE", "s", "0", "x"),
        ("MSETNX", "s", "1", "q", "2"), ("LCS", "s", "x"), ("GETBIT", "s", "0"), ("GETBIT", "x", "0"),
        ("SETBIT", "b", "0", "1"), ("BITCOUNT", "s"), ("BITCOUNT", "x"), ("BITPOS", "s", "1"),
        ("BITPOS", "x", "1"), ("BITOP", "AND", "d", "s", "x"), ("BITFIELD", "s", "GET", "u8", "0"),
        ("BITFIELD", "x", "GET", "u8", "0"), ("BITFIELD", "s", "SET", "u8", "0", "1"),
        ("BITFIELD_RO", "x", "GET", "u8", "0"), ("GETEX", "s", "EX", "100"),
    ]
    before = _keyspace_stats(raw), _keyspace_stats(raw_real)
    for cmd in seq:
        raw.command(*cmd)
        raw_real.command(*cmd)
        got = [a - b for a, b in zip(_keyspace_stats(raw), before[0])]
        want = [a - b for a, b in zip(_keyspace_stats(raw_real), before[1])]
        assert got == want, cmd


def test_proto_max_bulk_len_limits(tmp_path):
    # Dedicated servers started with the smallest allowed limit (1mb).
    from conftest import Differential, RawConnection, start_redis, start_vermilion

    args = ["--proto-max-bulk-len", "1mb"]
    (tmp_path / "v").mkdir()
    (tmp_path / "r").mkdir()
    ours = start_vermilion(tmp_path / "v", args)
    theirs = start_redis(tmp_path / "r", args)
    seq = [
        ("SETRANGE", "k", str(1024 * 1024 - 1), "x"), ("STRLEN", "k"),
        ("SETRANGE", "k", str(1024 * 1024), "x"), ("SETRANGE", "k", str(1024 * 1024 - 1), "xy"),
        ("APPEND", "k", "z"), ("SETBIT", "b", str(8 * 1024 * 1024 - 1), "1"),
        ("SETBIT", "b", str(8 * 1024 * 1024), "1"), ("GETBIT", "b", str(8 * 1024 * 1024)),
        ("BITFIELD", "b", "SET", "u8", str(8 * 1024 * 1024), "1"),
        ("BITFIELD", "b", "GET", "u8", "#1048576"), ("BITFIELD", "b", "GET", "u8", "#1048575"),
        ("SET", "x", "a" * 600), ("SET", "y", "b" * 600), ("LCS", "x", "y", "LEN"),
        ("SET", "y", "b" * 400), ("LCS", "x", "y", "LEN"),
    ]
    try:
        diff = Differential(RawConnection(ours.port), RawConnection(theirs.port))
        assert diff.mismatches(seq) == []
        for conn in diff.conns:
            conn.close()
    finally:
        ours.stop()
        theirs.stop()


def _random_command(rnd):
    """One random string/bitmap command over a small key space (never time-sensitive)."""
    key = lambda: rnd.choice(["a", "b", "c", "d", "n", "l"])  # noqa: E731
    num = lambda: str(rnd.choice([0, 1, -1, 7, 100, -3, 2**31, LLONG_MAX, LLONG_MIN, rnd.randint(-50, 50)]))  # noqa: E731
    val = lambda: rnd.choice([b"", b"x", b"hello", b"12", b"-7", b"3.5", b"\x00\xff", b"1e3", b"abc" * 5, num().encode()])  # noqa: E731
    idx = lambda: str(rnd.randint(-12, 12))  # noqa: E731
    options = [
        lambda: ("SET", key(), val(), *rnd.sample(["NX", "XX", "GET", "KEEPTTL"], rnd.randint(0, 2))),
        lambda: ("SET", key(), val(), rnd.choice(["EX", "PX"]), rnd.choice(["100000", "0", "-5", "x"])),
        lambda: ("GET", key()), lambda: ("GETEX", key(), *rnd.choice([(), ("PERSIST",), ("EX", "1000")])),
        lambda: ("APPEND", key(), val()), lambda: ("SETRANGE", key(), idx(), val()),
        lambda: ("GETRANGE", key(), idx(), idx()), lambda: ("INCR", key()), lambda: ("DECRBY", key(), num()),
        lambda: ("INCRBY", key(), num()), lambda: ("INCRBYFLOAT", key(), rnd.choice(["0.1", "-2.5", "1e2", "x", "3"])),
        lambda: ("MSET", key(), val(), key(), val()), lambda: ("MSETNX", key(), val(), key(), val()),
        lambda: ("MGET", key(), key(), key()), lambda: ("STRLEN", key()), lambda: ("GETSET", key(), val()),
        lambda: ("GETDEL", key()), lambda: ("SETNX", key(), val()), lambda: ("SETBIT", key(), str(rnd.randint(0, 90)), str(rnd.randint(0, 1))),
        lambda: ("GETBIT", key(), str(rnd.randint(0, 90))), lambda: ("BITCOUNT", key(), idx(), idx(), rnd.choice(["BIT", "BYTE"])),
        lambda: ("BITPOS", key(), str(rnd.randint(0, 1)), idx()), lambda: ("BITOP", rnd.choice(["AND", "OR", "XOR"]), key(), key(), key()),
        lambda: ("BITOP", "NOT", key(), key()), lambda: ("LCS", key(), key(), *rnd.choice([(), ("LEN",), ("IDX", "WITHMATCHLEN")])),
        lambda: ("BITFIELD", key(), "INCRBY", rnd.choice(["u8", "i5", "i64", "u63"]), idx().lstrip("-"), num()),
        lambda: ("RPUSH", "l", "x"),
    ]
    return rnd.choice(options)()


@pytest.mark.parametrize("seed", range(4))
def test_random_sequences_match_redis(diff, seed):
    import random

    rnd = random.Random(seed)
    seq = [_random_command(rnd) for _ in range(300)]
    assert diff.mismatches(seq) == []
