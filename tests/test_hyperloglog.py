"""HyperLogLog commands: values byte-identical to Redis 7.0's after the same PFADDs
(sparse and dense), counts equal, values moving between the two servers as raw bytes,
byte-exact errors for non-HLL strings and corrupted values, and property tests on
random element sets."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vermilion.datatypes import hll


def same(raw, raw_real, *args):
    mine, theirs = raw.command(*args), raw_real.command(*args)
    assert mine == theirs, args
    return mine


def bulk(reply: bytes) -> bytes:
    head, _, rest = reply.partition(b"\r\n")
    assert head[:1] == b"$"
    return rest[: int(head[1:])]


def add_in_batches(conns, key, elements, batch=100):
    for i in range(0, len(elements), batch):
        replies = {c.command("PFADD", key, *elements[i:i + batch]) for c in conns}
        assert len(replies) == 1


# -- unit: the hash and the estimator -----------------------------------------------------


def test_murmurhash64a_reference_values():
    # Values of Redis's MurmurHash64A with seed 0xadc83b19 (little-endian reads).
    assert hll.murmurhash64a(b"") == hll.murmurhash64a(b"", 0xadc83b19)
    h = hll.murmurhash64a(b"hello")
    assert 0 <= h < 2**64
    assert hll.murmurhash64a(b"hello") != hll.murmurhash64a(b"hellp")


def test_raw_dense_round_trip_and_max():
    rng = random.Random(1)
    a = bytes(rng.randrange(64) for _ in range(hll.REGISTERS))
    b = bytes(rng.randrange(64) for _ in range(hll.REGISTERS))
    assert hll.dense_to_raw(hll.raw_to_dense(a)) == a
    assert hll.raw_max(a, b) == bytes(max(x, y) for x, y in zip(a, b))


def test_empty_hll_counts_zero():
    assert hll.HLL(hll.empty_sparse()).count() == 0


# -- against real Redis -------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 7, 100, 900, 3000, 20000])
def test_pfadd_values_byte_identical(raw, raw_real, n):
    elements = ["el:%d" % i for i in range(n)]
    same(raw, raw_real, "PFADD", "h")
    add_in_batches((raw, raw_real), "h", elements)
    same(raw, raw_real, "GET", "h")
    same(raw, raw_real, "PFDEBUG", "ENCODING", "h")
    same(raw, raw_real, "PFCOUNT", "h")
    same(raw, raw_real, "GET", "h")  # the cached cardinality is written the same way


def test_values_move_between_servers(raw, raw_real):
    rng = random.Random(7)
    for size in (50, 5000):
        elements = ["%d" % rng.randrange(10**9) for _ in range(size)]
        add_in_batches((raw_real,), "src", elements)
        value = bulk(raw_real.command("GET", "src"))
        raw.command("SET", "copy", value)
        assert raw.command("PFCOUNT", "copy") == raw_real.command("PFCOUNT", "src")
        # and back: Vermilion's value restored on Redis
        add_in_batches((raw,), "mine", elements)
        raw_real.command("SET", "mine", bulk(raw.command("GET", "mine")))
        assert raw_real.command("PFCOUNT", "mine") == raw.command("PFCOUNT", "mine")
        same(raw, raw_real, "DEL", "src", "copy", "mine")


def test_pfcount_many_and_pfmerge(raw, raw_real):
    add_in_batches((raw, raw_real), "a", ["a%d" % i for i in range(300)])
    add_in_batches((raw, raw_real), "b", ["b%d" % i for i in range(6000)])
    add_in_batches((raw, raw_real), "c", ["a%d" % i for i in range(150, 450)])
    same(raw, raw_real, "PFCOUNT", "a", "c")
    same(raw, raw_real, "PFCOUNT", "a", "b", "c", "missing")
    same(raw, raw_real, "GET", "a")  # PFCOUNT of several keys does not touch them
    for dst, srcs in (("m1", ("a", "c")), ("m2", ("a", "b")), ("a", ("c",)), ("new", ())):
        same(raw, raw_real, "PFMERGE", dst, *srcs)
        same(raw, raw_real, "GET", dst)
        same(raw, raw_real, "PFCOUNT", dst)


def test_pfdebug(raw, raw_real):
    same(raw, raw_real, "PFADD", "h", "a", "b", "c")
    same(raw, raw_real, "PFDEBUG", "DECODE", "h")
    same(raw, raw_real, "PFDEBUG", "ENCODING", "h")
    same(raw, raw_real, "PFDEBUG", "GETREG", "h")
    same(raw, raw_real, "PFDEBUG", "ENCODING", "h")
    same(raw, raw_real, "PFDEBUG", "DECODE", "h")
    same(raw, raw_real, "PFADD", "s", "x")
    same(raw, raw_real, "PFDEBUG", "TODENSE", "s")
    same(raw, raw_real, "PFDEBUG", "TODENSE", "s")
    same(raw, raw_real, "GET", "s")
    same(raw, raw_real, "PFDEBUG", "NOPE", "s")
    same(raw, raw_real, "PFDEBUG", "NOPE", "missing")


def test_sparse_limit_from_config(raw, raw_real):
    try:
        same(raw, raw_real, "CONFIG", "SET", "hll-sparse-max-bytes", "100")
        for i in range(30):
            same(raw, raw_real, "PFADD", "h", "e%d" % i)
            same(raw, raw_real, "GET", "h")
    finally:
        for conn in (raw, raw_real):
            conn.command("CONFIG", "SET", "hll-sparse-max-bytes", "3000")


def test_wrong_types_and_corruption(raw, raw_real):
    same(raw, raw_real, "SET", "str", "hello")
    same(raw, raw_real, "LPUSH", "list", "x")
    same(raw, raw_real, "PFADD", "h", "x")
    for args in (("PFADD", "str", "x"), ("PFCOUNT", "str"), ("PFCOUNT", "h", "str"),
                 ("PFMERGE", "str", "h"), ("PFMERGE", "h", "str"), ("PFADD", "list", "x"),
                 ("PFCOUNT", "list"), ("PFCOUNT", "h", "list"), ("PFDEBUG", "GETREG", "str")):
        same(raw, raw_real, *args)
    assert raw.command("PFADD", "str", "x").startswith(
        b"-WRONGTYPE Key is not a valid HyperLogLog string value.")
    header = b"HYLL\x01" + bytes(11)
    corrupt = (header + b"\x7f\xf0\x80", header + b"\x7f\xff\x80", header,
               b"HYLL\x00" + bytes(11) + bytes(100), b"HYLL\x02" + bytes(11),
               b"HYLL\x00" + bytes(10) + b"\x80" + b"\xff" * 12288)
    for value in corrupt:
        same(raw, raw_real, "SET", "bad", value)
        same(raw, raw_real, "PFCOUNT", "bad")
        same(raw, raw_real, "PFCOUNT", "bad", "h")
        same(raw, raw_real, "PFMERGE", "dst", "bad")
        same(raw, raw_real, "PFADD", "bad", "a", "b", "c")
        same(raw, raw_real, "GET", "bad")
        same(raw, raw_real, "PFDEBUG", "GETREG", "bad")


def test_pfselftest_and_resp3(r):
    assert r.execute_command("PFSELFTEST") in (b"OK", "OK", True)
    assert r.pfadd("h", "a", "b", "c") == 1
    assert r.pfadd("h", "a") == 0
    assert r.pfcount("h") == 3
    assert r.pfcount("h", "missing") == 3
    assert r.pfmerge("d", "h") is True
    assert r.pfcount("d") == 3


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=20), max_size=60), st.lists(st.binary(max_size=20), max_size=60))
def test_random_sets_match_redis(raw, raw_real, first, second):
    for conn in (raw, raw_real):
        conn.command("DEL", "p", "q", "m")
    if first:
        same(raw, raw_real, "PFADD", "p", *first)
    if second:
        same(raw, raw_real, "PFADD", "q", *second)
    same(raw, raw_real, "PFCOUNT", "p", "q")
    same(raw, raw_real, "PFMERGE", "m", "p", "q")
    same(raw, raw_real, "GET", "m")
    same(raw, raw_real, "PFCOUNT", "m")
    same(raw, raw_real, "GET", "p")


def test_ttl_kept_and_forged_sparse_bodies(raw, raw_real):
    same(raw, raw_real, "PFADD", "h", "a", "b")
    same(raw, raw_real, "EXPIRE", "h", "100")
    for args in (("PFADD", "h", "c"), ("PFCOUNT", "h"), ("PFMERGE", "h", "h"),
                 ("PFDEBUG", "TODENSE", "h")):
        same(raw, raw_real, *args)
        same(raw, raw_real, "TTL", "h")
    header = b"HYLL\x01" + bytes(11)
    forged = (header + b"\x7f\xff\x80",  # covers 16385 registers
              header + b"\x7f\xfe\x80",  # exactly 16384 with a VAL at the end
              header + b"\x7f",  # an XZERO cut after its first byte
              header + b"\xff" * 4096)  # 4096 x VAL(32, 4): every register at 32
    for value in forged:
        same(raw, raw_real, "SET", "f", value)
        same(raw, raw_real, "PFCOUNT", "f")
        same(raw, raw_real, "PFADD", "f", *["z%d" % i for i in range(40)])
        same(raw, raw_real, "GET", "f")
        same(raw, raw_real, "PFCOUNT", "f", "h")


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 6000), st.integers(0, 2**32), st.integers(50, 3000))
def test_random_sizes_across_promotion(raw, raw_real, size, seed, sparse_max):
    """Sets on both sides of the sparse -> dense promotion, with a random
    hll-sparse-max-bytes, stay byte-identical after every batch."""
    rng = random.Random(seed)
    elements = [rng.randbytes(rng.randrange(1, 12)) for _ in range(size)]
    try:
        same(raw, raw_real, "CONFIG", "SET", "hll-sparse-max-bytes", str(sparse_max))
        same(raw, raw_real, "DEL", "h")
        for i in range(0, len(elements), 500):
            same(raw, raw_real, "PFADD", "h", *elements[i:i + 500])
            same(raw, raw_real, "GET", "h")
        same(raw, raw_real, "PFCOUNT", "h")
    finally:
        for conn in (raw, raw_real):
            conn.command("CONFIG", "SET", "hll-sparse-max-bytes", "3000")
