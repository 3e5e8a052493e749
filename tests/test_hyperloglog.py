"""HyperLogLog commands: values byte-identical to Redis 7.0's after the same PFADDs
(sparse and dense), counts equal, values moving between the two servers as raw bytes,
byte-exact errors for non-HLL strings and corrupted values, and property tests on
random element sets."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vermilion.datatypes import hll


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
def test_pfadd_values_byte_identical(diff, n):
    elements = ["el:%d" % i for i in range(n)]
    diff("PFADD", "h")
    add_in_batches(diff.conns, "h", elements)
    diff("GET", "h")
    diff("PFDEBUG", "ENCODING", "h")
    diff("PFCOUNT", "h")
    diff("GET", "h")  # the cached cardinality is written the same way


def test_values_move_between_servers(diff):
    rng = random.Random(7)
    for size in (50, 5000):
        elements = ["%d" % rng.randrange(10**9) for _ in range(size)]
        add_in_batches((diff.real,), "src", elements)
        value = bulk(diff.real.command("GET", "src"))
        diff.mine.command("SET", "copy", value)
        assert diff.mine.command("PFCOUNT", "copy") == diff.real.command("PFCOUNT", "src")
        # and back: Vermilion's value restored on Redis
        add_in_batches((diff.mine,), "mine", elements)
        diff.real.command("SET", "mine", bulk(diff.mine.command("GET", "mine")))
        assert diff.real.command("PFCOUNT", "mine") == diff.mine.command("PFCOUNT", "mine")
        diff("DEL", "src", "copy", "mine")


def test_pfcount_many_and_pfmerge(diff):
    add_in_batches(diff.conns, "a", ["a%d" % i for i in range(300)])
    add_in_batches(diff.conns, "b", ["b%d" % i for i in range(6000)])
    add_in_batches(diff.conns, "c", ["a%d" % i for i in range(150, 450)])
    diff("PFCOUNT", "a", "c")
    diff("PFCOUNT", "a", "b", "c", "missing")
    diff("GET", "a")  # PFCOUNT of several keys does not touch them
    for dst, srcs in (("m1", ("a", "c")), ("m2", ("a", "b")), ("a", ("c",)), ("new", ())):
        diff("PFMERGE", dst, *srcs)
        diff("GET", dst)
        diff("PFCOUNT", dst)


def test_pfdebug(diff):
    diff("PFADD", "h", "a", "b", "c")
    diff("PFDEBUG", "DECODE", "h")
    diff("PFDEBUG", "ENCODING", "h")
    diff("PFDEBUG", "GETREG", "h")
    diff("PFDEBUG", "ENCODING", "h")
    diff("PFDEBUG", "DECODE", "h")
    diff("PFADD", "s", "x")
    diff("PFDEBUG", "TODENSE", "s")
    diff("PFDEBUG", "TODENSE", "s")
    diff("GET", "s")
    diff("PFDEBUG", "NOPE", "s")
    diff("PFDEBUG", "NOPE", "missing")


def test_sparse_limit_from_config(diff):
    try:
        diff("CONFIG", "SET", "hll-sparse-max-bytes", "100")
        for i in range(30):
            diff("PFADD", "h", "e%d" % i)
            diff("GET", "h")
    finally:
        for conn in diff.conns:
            conn.command("CONFIG", "SET", "hll-sparse-max-bytes", "3000")


def test_wrong_types_and_corruption(diff):
    diff("SET", "str", "hello")
    diff("LPUSH", "list", "x")
    diff("PFADD", "h", "x")
    for args in (("PFADD", "str", "x"), ("PFCOUNT", "str"), ("PFCOUNT", "h", "str"),
                 ("PFMERGE", "str", "h"), ("PFMERGE", "h", "str"), ("PFADD", "list", "x"),
                 ("PFCOUNT", "list"), ("PFCOUNT", "h", "list"), ("PFDEBUG", "GETREG", "str")):
        diff(*args)
    assert diff.mine.command("PFADD", "str", "x").startswith(
        b"-WRONGTYPE Key is not a valid HyperLogLog string value.")
    header = b"HYLL\x01" + bytes(11)
    corrupt = (header + b"\x7f\xf0\x80", header + b"\x7f\xff\x80", header,
               b"HYLL\x00" + bytes(11) + bytes(100), b"HYLL\x02" + bytes(11),
               b"HYLL\x00" + bytes(10) + b"\x80" + b"\xff" * 12288)
    for value in corrupt:
        diff("SET", "bad", value)
        diff("PFCOUNT", "bad")
        diff("PFCOUNT", "bad", "h")
        diff("PFMERGE", "dst", "bad")
        diff("PFADD", "bad", "a", "b", "c")
        diff("GET", "bad")
        diff("PFDEBUG", "GETREG", "bad")


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
def test_random_sets_match_redis(diff, first, second):
    for conn in diff.conns:
        conn.command("DEL", "p", "q", "m")
    if first:
        diff("PFADD", "p", *first)
    if second:
        diff("PFADD", "q", *second)
    diff("PFCOUNT", "p", "q")
    diff("PFMERGE", "m", "p", "q")
    diff("GET", "m")
    diff("PFCOUNT", "m")
    diff("GET", "p")


def test_ttl_kept_and_forged_sparse_bodies(diff):
    diff("PFADD", "h", "a", "b")
    diff("EXPIRE", "h", "100")
    for args in (("PFADD", "h", "c"), ("PFCOUNT", "h"), ("PFMERGE", "h", "h"),
                 ("PFDEBUG", "TODENSE", "h")):
        diff(*args)
        diff("TTL", "h")
    header = b"HYLL\x01" + bytes(11)
    forged = (header + b"\x7f\xff\x80",  # covers 16385 registers
              header + b"\x7f\xfe\x80",  # exactly 16384 with a VAL at the end
              header + b"\x7f",  # an XZERO cut after its first byte
              header + b"\xff" * 4096)  # 4096 x VAL(32, 4): every register at 32
    for value in forged:
        diff("SET", "f", value)
        diff("PFCOUNT", "f")
        diff("PFADD", "f", *["z%d" % i for i in range(40)])
        diff("GET", "f")
        diff("PFCOUNT", "f", "h")


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 6000), st.integers(0, 2**32), st.integers(50, 3000))
def test_random_sizes_across_promotion(diff, size, seed, sparse_max):
    """Sets on both sides of the sparse -> dense promotion, with a random
    hll-sparse-max-bytes, stay byte-identical after every batch."""
    rng = random.Random(seed)
    elements = [rng.randbytes(rng.randrange(1, 12)) for _ in range(size)]
    try:
        diff("CONFIG", "SET", "hll-sparse-max-bytes", str(sparse_max))
        diff("DEL", "h")
        for i in range(0, len(elements), 500):
            diff("PFADD", "h", *elements[i:i + 500])
            diff("GET", "h")
        diff("PFCOUNT", "h")
    finally:
        for conn in diff.conns:
            conn.command("CONFIG", "SET", "hll-sparse-max-bytes", "3000")
