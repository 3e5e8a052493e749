"""Bitmap commands (bitops.c): byte-for-byte comparison with a real redis-server on the
same command sequences, plus behaviour and speed checks through redis-py."""

import random
import time

import pytest

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)

CASES = {
    "setbit-getbit": [
        ("SETBIT", "k", "7", "1"), ("GET", "k"), ("SETBIT", "k", "7", "0"), ("GETBIT", "k", "7"),
        ("SETBIT", "k", "0", "1"), ("SETBIT", "k", "100", "1"), ("GET", "k"), ("STRLEN", "k"),
        ("GETBIT", "k", "100"), ("GETBIT", "k", "99"), ("GETBIT", "k", "100000"),
        ("GETBIT", "nokey", "0"), ("SETBIT", "k", "-1", "1"), ("SETBIT", "k", "a", "1"),
        ("SETBIT", "k", "0", "2"), ("SETBIT", "k", "0", "-1"), ("SETBIT", "k", "0", "a"),
        ("SETBIT", "k", "0", ""), ("SETBIT", "k", "4294967296", "1"),
        ("SETBIT", "k", "4294967295", "x"), ("SETBIT", "k", str(LLONG_MAX), "1"),
        ("SETBIT", "k", "1.5", "1"), ("GETBIT", "k", "-1"), ("GETBIT", "k", "4294967296"),
        ("GETBIT", "k", "a"), ("SETBIT", "nokey2", "0", "2"), ("EXISTS", "nokey2"),
        ("SET", "n", "12"), ("GETBIT", "n", "2"), ("SETBIT", "n", "7", "1"), ("GET", "n"),
        ("RPUSH", "l", "a"), ("SETBIT", "l", "0", "1"), ("GETBIT", "l", "0"),
        ("GETBIT", "l", "a"), ("SETBIT", "l", "-1", "1"),
    ],
    "bitcount": [
        ("SET", "s", "foobar"), ("BITCOUNT", "s"), ("BITCOUNT", "s", "0", "0"),
        ("BITCOUNT", "s", "1", "1"), ("BITCOUNT", "s", "1", "-2"), ("BITCOUNT", "s", "-1", "-5"),
        ("BITCOUNT", "s", "-100", "-101"), ("BITCOUNT", "s", "-100", "100"),
        ("BITCOUNT", "s", "5", "30"), ("BITCOUNT", "s", "6", "10"),
        ("BITCOUNT", "s", "5", "30", "BIT"), ("BITCOUNT", "s", "5", "30", "byte"),
        ("BITCOUNT", "s", "0", "-1", "bit"), ("BITCOUNT", "s", "-5", "-1", "BIT"),
        ("BITCOUNT", "s", "1", "1", "BIT"), ("BITCOUNT", "s", "3", "3", "BIT"),
        ("BITCOUNT", "s", "7", "8", "BIT"), ("BITCOUNT", "s", "47", "100", "BIT"),
        ("BITCOUNT", "s", "-1", "-5", "foo"), ("BITCOUNT", "s", "0", "1", "foo"),
        ("BITCOUNT", "s", "a", "1", "foo"), ("BITCOUNT", "s", "0", "a"),
        ("BITCOUNT", "s", "0"), ("BITCOUNT", "s", "0", "1", "bit", "x"),
        ("BITCOUNT", "s", str(LLONG_MIN), str(LLONG_MAX)),
        ("BITCOUNT", "s", str(LLONG_MIN), str(LLONG_MAX), "BIT"),
        ("BITCOUNT", "nokey"), ("BITCOUNT", "nokey", "a", "b"), ("BITCOUNT", "nokey", "0"),
        ("SET", "e", ""), ("BITCOUNT", "e"), ("BITCOUNT", "e", "0", "-1"),
        ("SET", "n", "-1234"), ("BITCOUNT", "n"), ("BITCOUNT", "n", "1", "2", "bit"),
        ("SET", "bin", b"\xff\x00\xaa\x55\x01\x80"), ("BITCOUNT", "bin", "9", "41", "BIT"),
        ("RPUSH", "l", "a"), ("BITCOUNT", "l"), ("BITCOUNT", "l", "0"), ("BITCOUNT", "l", "a", "b"),
    ],
    "bitpos": [
        ("SET", "s", b"\xff\xf0\x00"), ("BITPOS", "s", "0"), ("BITPOS", "s", "1"),
        ("BITPOS", "s", "0", "2"), ("BITPOS", "s", "1", "2"), ("BITPOS", "s", "1", "0", "-1"),
        ("BITPOS", "s", "0", "0", "0"), ("BITPOS", "s", "0", "0", "1"), ("BITPOS", "s", "0", "1"),
        ("BITPOS", "s", "1", "3"), ("BITPOS", "s", "0", "3"), ("BITPOS", "s", "0", "-1"),
        ("BITPOS", "s", "1", "-3", "-2"), ("BITPOS", "s", "0", "5", "9", "BIT"),
        ("BITPOS", "s", "0", "5", "11", "BIT"), ("BITPOS", "s", "0", "5", "12", "BIT"),
        ("BITPOS", "s", "1", "5", "11", "BIT"), ("BITPOS", "s", "1", "12", "23", "BIT"),
        ("BITPOS", "s", "0", "0", "-1", "BIT"), ("BITPOS", "s", "1", "-10", "-1", "bit"),
        ("BITPOS", "s", "1", "-100", "-90", "bit"), ("BITPOS", "s", "0", "3", "2", "BIT"),
        ("BITPOS", "s", "0", "0", "-1", "byte"), ("BITPOS", "s", "0", "0", "-1", "foo"),
        ("BITPOS", "s", "2"), ("BITPOS", "s", "-1"), ("BITPOS", "s", "a"),
        ("BITPOS", "s", "1", "a"), ("BITPOS", "s", "1", "0", "a"), ("BITPOS", "s", "1", "0", "a", "bit"),
        ("BITPOS", "s", "1", "0", "a", "foo"), ("BITPOS", "s", "1", "a", "1", "foo"),
        ("BITPOS", "s", "1", "0", "1", "bit", "x"), ("BITPOS", "s", "1", "4", "BIT"),
        ("SET", "ones", b"\xff\xff\xff"), ("BITPOS", "ones", "0"), ("BITPOS", "ones", "0", "1"),
        ("BITPOS", "ones", "0", "0", "-1"), ("BITPOS", "ones", "0", "1", "-1", "bit"),
        ("BITPOS", "ones", "0", "3", "BIT"), ("BITPOS", "ones", "1", "30", "BIT"),
        ("SET", "zeros", b"\x00\x00"), ("BITPOS", "zeros", "1"), ("BITPOS", "zeros", "0"),
        ("BITPOS", "zeros", "1", "0", "-1", "bit"), ("BITPOS", "nokey", "1"),
        ("BITPOS", "nokey", "0"), ("BITPOS", "nokey", "1", "a"), ("BITPOS", "nokey", "0", "1", "2", "foo"),
        ("BITPOS", "nokey", "2"), ("SET", "e", ""), ("BITPOS", "e", "0"), ("BITPOS", "e", "1"),
        ("BITPOS", "e", "0", "0", "-1", "BIT"), ("SET", "n", "12"), ("BITPOS", "n", "1"),
        ("RPUSH", "l", "a"), ("BITPOS", "l", "1"), ("BITPOS", "l", "2"), ("BITPOS", "l", "1", "a"),
    ],
    "bitop": [
        ("SET", "a", b"\xff\x0f"), ("SET", "b", b"\xf0"), ("SET", "c", b"\x01\x02\x03"),
        ("BITOP", "AND", "d", "a", "b"), ("GET", "d"), ("BITOP", "or", "d", "a", "b", "c"),
        ("GET", "d"), ("BITOP", "XOR", "d", "a", "b", "c"), ("GET", "d"),
        ("BITOP", "NOT", "d", "a"), ("GET", "d"), ("BITOP", "NOT", "d", "a", "b"),
        ("BITOP", "NOT", "d", "nokey"), ("EXISTS", "d"), ("SET", "d", "x"),
        ("BITOP", "AND", "d", "nokey", "nokey2"), ("EXISTS", "d"),
        ("BITOP", "AND", "d", "a", "nokey"), ("GET", "d"), ("BITOP", "OR", "d", "nokey", "c"),
        ("GET", "d"), ("BITOP", "foo", "d", "a"), ("BITOP", "ANDX", "d", "a"),
        ("BITOP", "and", "a", "a"), ("GET", "a"), ("SET", "e", ""), ("BITOP", "NOT", "d", "e"),
        ("EXISTS", "d"), ("SET", "n", "1234"), ("BITOP", "XOR", "d", "n", "a"), ("GET", "d"),
        ("RPUSH", "l", "x"), ("BITOP", "AND", "d", "a", "l"), ("BITOP", "NOT", "l", "a"),
        ("GET", "l"), ("BITOP", "DIFF", "d", "a", "b"),
    ],
    "bitfield": [
        ("BITFIELD", "k", "SET", "i8", "0", "-100", "GET", "u8", "0", "GET", "i8", "0"),
        ("BITFIELD", "k", "INCRBY", "u2", "100", "1", "OVERFLOW", "SAT", "INCRBY", "u2", "102", "1"),
        ("BITFIELD", "k", "GET", "u4", "0", "GET", "i4", "4", "GET", "u16", "#1"),
        ("BITFIELD", "k", "SET", "u8", "#2", "255", "GET", "u8", "16"), ("GET", "k"),
        ("BITFIELD", "w", "INCRBY", "u8", "0", "300", "INCRBY", "i8", "8", "200"),
        ("BITFIELD", "w", "OVERFLOW", "WRAP", "INCRBY", "u8", "0", "-50", "INCRBY", "i8", "8", "-300"),
        ("BITFIELD", "w", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "1000", "INCRBY", "i8", "8", "-1000"),
        ("BITFIELD", "w", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "-1000", "INCRBY", "i8", "8", "1000"),
        ("BITFIELD", "w", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1", "INCRBY", "i8", "8", "1"),
        ("BITFIELD", "w", "OVERFLOW", "fail", "SET", "u8", "0", "256", "SET", "i8", "8", "-129"),
        ("BITFIELD", "w", "OVERFLOW", "sat", "SET", "u8", "0", "-1", "SET", "i8", "8", "-129"),
        ("BITFIELD", "w", "OVERFLOW", "wrap", "SET", "u8", "0", "-1", "SET", "i8", "8", "129"),
        ("BITFIELD", "w", "SET", "u8", "0", str(LLONG_MIN), "SET", "u63", "3", str(LLONG_MAX)),
        ("BITFIELD", "w", "GET", "u63", "3", "GET", "i64", "3", "GET", "i64", "1"),
        ("BITFIELD", "w", "INCRBY", "i64", "0", str(LLONG_MAX), "INCRBY", "i64", "0", "1"),
        ("BITFIELD", "w", "OVERFLOW", "SAT", "INCRBY", "i64", "0", str(LLONG_MAX)),
        ("BITFIELD", "w", "OVERFLOW", "SAT", "INCRBY", "i64", "0", str(LLONG_MIN)),
        ("BITFIELD", "w", "OVERFLOW", "FAIL", "INCRBY", "i64", "0", str(LLONG_MIN)),
        ("BITFIELD", "w", "SET", "i64", "0", str(LLONG_MIN), "INCRBY", "i64", "0", "-1"),
        ("BITFIELD", "w", "OVERFLOW", "SAT", "INCRBY", "u63", "0", str(LLONG_MIN)),
        ("BITFIELD", "w", "INCRBY", "u1", "5", "1", "INCRBY", "u1", "5", "1", "INCRBY", "i1", "5", "1"),
        ("GET", "w"), ("BITFIELD", "nokey", "OVERFLOW", "FAIL", "SET", "u8", "100", "256"),
        ("STRLEN", "nokey"), ("BITFIELD", "nokey2"), ("BITFIELD", "nokey2", "GET", "u8", "0"),
        ("EXISTS", "nokey2"), ("BITFIELD", "nokey2", "OVERFLOW", "WRAP"), ("EXISTS", "nokey2"),
        ("SET", "n", "1234"), ("BITFIELD", "n", "GET", "u8", "0", "SET", "u8", "0", "50"), ("GET", "n"),
    ],
    "bitfield-errors": [
        ("BITFIELD", "k", "GET", "u64", "0"), ("BITFIELD", "k", "GET", "i65", "0"),
        ("BITFIELD", "k", "GET", "i0", "0"), ("BITFIELD", "k", "GET", "I8", "0"),
        ("BITFIELD", "k", "GET", "u", "0"), ("BITFIELD", "k", "GET", "x8", "0"),
        ("BITFIELD", "k", "GET", "u-1", "0"), ("BITFIELD", "k", "GET", "u08", "0"),
        ("BITFIELD", "k", "GET", "u8", "-1"), ("BITFIELD", "k", "GET", "u8", "#-1"),
        ("BITFIELD", "k", "GET", "u8", "#a"), ("BITFIELD", "k", "GET", "u8", "a"),
        ("BITFIELD", "k", "GET", "u8", "4294967296"), ("BITFIELD", "k", "GET", "u8", "4294967295"),
        ("BITFIELD", "k", "GET", "i8", "#536870911"), ("BITFIELD", "k", "GET", "i8", "#536870912"),
        ("BITFIELD", "k", "GET", "i64", "#144115188075855872"),
        ("BITFIELD", "k", "GET", "i64", "#9223372036854775807"), ("BITFIELD", "k", "GET", "i64", "#"),
        ("BITFIELD", "k", "GET", "u8"), ("BITFIELD", "k", "SET", "u8", "0"),
        ("BITFIELD", "k", "SET", "u8", "0", "a"), ("BITFIELD", "k", "INCRBY", "u8", "0", "1.5"),
        ("BITFIELD", "k", "INCRBY", "u8", "0", "99999999999999999999"),
        ("BITFIELD", "k", "OVERFLOW"), ("BITFIELD", "k", "OVERFLOW", "foo"),
        ("BITFIELD", "k", "FOO", "u8", "0"), ("BITFIELD", "k", "GET", "u8", "0", "SET"),
        ("BITFIELD", "k", "SET", "u8", "0", "1", "GET", "i0", "0"), ("EXISTS", "k"),
        ("BITFIELD_RO", "k", "GET", "u8", "0", "GET", "i8", "#3"),
        ("BITFIELD_RO", "k", "SET", "u8", "0", "1"), ("BITFIELD_RO", "k", "INCRBY", "u8", "0", "1"),
        ("BITFIELD_RO", "k", "OVERFLOW", "SAT"), ("BITFIELD_RO", "k", "SET", "u8", "0", "1", "GET", "i0", "0"),
        ("BITFIELD_RO", "k", "SET", "u8", "0"), ("BITFIELD_RO", "k"), ("EXISTS", "k"),
        ("RPUSH", "l", "a"), ("BITFIELD", "l", "GET", "u8", "0"), ("BITFIELD", "l", "SET", "u8", "0", "1"),
        ("BITFIELD_RO", "l", "GET", "u8", "0"), ("BITFIELD_RO", "l", "SET", "u8", "0", "1"),
        ("BITFIELD", "l"), ("BITFIELD", "l", "GET", "u64", "0"),
    ],
}


@pytest.mark.parametrize("resp", [2, 3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_replies_as_redis(diff, case, resp):
    if resp == 3:
        diff.hello3()
    assert diff.mismatches(CASES[case]) == []


def test_random_bitfield_and_bitpos_match_redis(diff):
    rnd = random.Random(5)
    seq = []
    for _ in range(150):
        kind = rnd.random()
        sign = rnd.choice("iu")
        bits = rnd.randint(1, 64 if sign == "i" else 63)
        offset = str(rnd.randint(0, 80))
        if kind < 0.4:
            seq.append(("BITFIELD", "k", "OVERFLOW", rnd.choice(["WRAP", "SAT", "FAIL"]),
                        rnd.choice(["SET", "INCRBY"]), f"{sign}{bits}", offset,
                        str(rnd.randint(-(2**63), 2**63 - 1) >> rnd.randint(0, 63))))
        elif kind < 0.6:
            seq.append(("BITFIELD", "k", "GET", f"{sign}{bits}", offset))
        elif kind < 0.8:
            seq.append(("BITPOS", "k", str(rnd.randint(0, 1)), str(rnd.randint(-90, 90)),
                        str(rnd.randint(-90, 90)), "BIT"))
        else:
            seq.append(("BITCOUNT", "k", str(rnd.randint(-90, 90)), str(rnd.randint(-90, 90)),
                        rnd.choice(["BIT", "BYTE"])))
    assert diff.mismatches(seq) == []


def test_setbit_keeps_ttl_and_builds_bitmaps(r):
    r.set("k", "", px=80)
    r.setbit("k", 9, 1)
    assert r.get("k") == b"\x00\x40"
    assert r.getbit("k", 9) == 1 and r.getbit("k", 8) == 0
    time.sleep(0.15)
    assert r.get("k") is None


def test_bitop_result_drops_target_ttl(r):
    r.set("d", "x", px=80)
    r.set("a", b"\x0f")
    assert r.bitop("NOT", "d", "a") == 1
    time.sleep(0.15)
    assert r.get("d") == b"\xf0"


def test_bitcount_bitpos_on_a_megabyte_are_fast(r):
    size = 1024 * 1024
    r.set("big", b"\x00" * (size - 1) + b"\x01")
    start = time.perf_counter()
    for _ in range(20):
        assert r.bitcount("big") == 1
        assert r.bitpos("big", 1) == size * 8 - 1
        assert r.bitcount("big", 0, -1, "BIT") == 1
    assert r.bitop("AND", "dest", "big", "big") == size
    assert time.perf_counter() - start < 3.0


def test_bitfield_reply_types(r):
    assert r.bitfield("k").set("u8", 0, 255).get("i8", 0).incrby("u8", 0, 1).execute() == [0, -1, 0]
    res = r.bitfield("k", default_overflow="FAIL").incrby("u8", 0, -1).execute()
    assert res == [None]
    assert r.execute_command("BITFIELD_RO", "k", "GET", "u8", "0") == [0]


def test_bitpos_bitcount_across_scan_chunks_match_redis(diff):
    # Long runs of 0x00 / 0xff with lone flipped bits around the 8 KiB scan chunks.
    rnd = random.Random(9)
    seq = []
    for fill, name in ((b"\x00", "zeros"), (b"\xff", "ones")):
        buf = bytearray(fill * 20000)
        for pos in (8191, 8192, 16384, 19999):
            buf[pos] ^= 1 << rnd.randint(0, 7)
        seq.append(("SET", name, bytes(buf)))
        for _ in range(40):
            start, end = rnd.randint(-20000, 20000), rnd.randint(-20000, 20000)
            seq.append(("BITPOS", name, str(rnd.randint(0, 1)), str(start)))
            seq.append(("BITPOS", name, str(rnd.randint(0, 1)), str(start), str(end)))
            seq.append(("BITPOS", name, str(rnd.randint(0, 1)), str(start * 8), str(end * 8), "BIT"))
            seq.append(("BITCOUNT", name, str(start * 8 + 3), str(end * 8 - 2), "BIT"))
    assert diff.mismatches(seq) == []


def _dirty(conn) -> int:
    info = conn.command("INFO", "persistence")
    return int(info.split(b"rdb_changes_since_last_save:")[1].split(b"\r\n")[0])


def test_setbit_and_bitfield_count_only_changes_as_dirty(diff):
    # setbitCommand() / bitfieldGeneric(): dirty grows when the string is created or
    # grown or a bit actually changes, by the number of changing operations.
    steps = [["SETBIT", "foo", "0", "0"], ["BITFIELD", "foo2", "SET", "i5", "0", "0"],
             ["SETBIT", "foo", "0", "0"], ["BITFIELD", "foo2", "SET", "i5", "0", "0"],
             ["SETBIT", "foo", "0", "1"], ["SETBIT", "foo", "0", "1"],
             ["SETBIT", "foo", "100", "0"],
             ["BITFIELD", "foo2", "SET", "i5", "0", "1", "SET", "i5", "0", "1",
              "INCRBY", "u2", "10", "1", "INCRBY", "u2", "10", "0"],
             ["BITFIELD", "foo3", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9"],
             ["EXISTS", "foo3"],
             ["SET", "n", "1"], ["SETBIT", "n", "0", "0"], ["OBJECT", "ENCODING", "n"],
             ["SET", "n", "1"], ["BITFIELD", "n", "SET", "u1", "0", "0"],
             ["OBJECT", "ENCODING", "n"],
             ["BITFIELD", "foo2", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9"]]
    for step in steps:
        before = [_dirty(conn) for conn in diff.conns]
        diff(*step)
        after = [_dirty(conn) for conn in diff.conns]
        assert after[0] - before[0] == after[1] - before[1], step
