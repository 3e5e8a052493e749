"""List commands: behaviour through redis-py (RESP2 and RESP3) and byte-exact replies
compared with a real redis-server 7.0 on the same command sequences."""

import time

import pytest
import redis


# -- behaviour (both protocols) --------------------------------------------------------


def test_push_pop_order(r):
    assert r.lpush("l", "a", "b", "c") == 3
    assert r.rpush("l", "x", "y") == 5
    assert r.lrange("l", 0, -1) == [b"c", b"b", b"a", b"x", b"y"]
    assert r.lpop("l") == b"c"
    assert r.rpop("l") == b"y"
    assert r.lpop("l", 2) == [b"b", b"a"]
    assert r.rpop("l", 5) == [b"x"]
    assert r.exists("l") == 0  # an emptied list is deleted


def test_pushx_only_existing(r):
    assert r.lpushx("l", "a") == 0
    assert r.rpushx("l", "a") == 0
    assert r.exists("l") == 0
    r.rpush("l", "m")
    assert r.lpushx("l", "a", "b") == 3
    assert r.rpushx("l", "y", "z") == 5
    assert r.lrange("l", 0, -1) == [b"b", b"a", b"m", b"y", b"z"]


def test_pop_missing_key_and_count_zero(r):
    assert r.lpop("nokey") is None
    assert r.rpop("nokey", 3) is None
    r.rpush("l", "a")
    assert r.lpop("l", 0) == []
    assert r.llen("l") == 1


def test_lindex_lset(r):
    r.rpush("l", *"abcde")
    assert r.lindex("l", 0) == b"a"
    assert r.lindex("l", -1) == b"e"
    assert r.lindex("l", 5) is None
    assert r.lindex("l", -6) is None
    assert r.lset("l", -2, "D") is True
    assert r.lrange("l", 0, -1) == [b"a", b"b", b"c", b"D", b"e"]
    with pytest.raises(redis.ResponseError, match="index out of range"):
        r.lset("l", 5, "x")
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.lset("nokey", 0, "x")


def test_lrange_ltrim_indexes(r):
    r.rpush("l", *[str(i) for i in range(10)])
    assert r.lrange("l", -3, -1) == [b"7", b"8", b"9"]
    assert r.lrange("l", -100, 1) == [b"0", b"1"]
    assert r.lrange("l", 8, 100) == [b"8", b"9"]
    assert r.lrange("l", 5, 4) == []
    assert r.lrange("l", 10, 20) == []
    assert r.ltrim("l", 2, -3) is True
    assert r.lrange("l", 0, -1) == [str(i).encode() for i in range(2, 8)]
    assert r.ltrim("l", 5, 1) is True
    assert r.exists("l") == 0


def test_lrem_directions(r):
    r.rpush("l", *"abacada")
    assert r.lrem("l", 2, "a") == 2
    assert r.lrange("l", 0, -1) == [b"b", b"c", b"a", b"d", b"a"]
    assert r.lrem("l", -1, "a") == 1
    assert r.lrange("l", 0, -1) == [b"b", b"c", b"a", b"d"]
    assert r.lrem("l", 0, "a") == 1
    assert r.lrem("l", 0, "zz") == 0
    assert r.lrem("nokey", 0, "a") == 0


def test_lrem_many_matches_in_big_list(r):
    r.rpush("l", *(["x", "y"] * 500))
    assert r.lrem("l", 0, "x") == 500
    assert r.lrange("l", 0, -1) == [b"y"] * 500
    assert r.lrem("l", -300, "y") == 300
    assert r.llen("l") == 200
    assert r.lrem("l", 0, "y") == 200
    assert r.exists("l") == 0


def test_linsert(r):
    assert r.linsert("l", "before", "a", "x") == 0
    r.rpush("l", "a", "b", "a")
    assert r.linsert("l", "before", "a", "X") == 4
    assert r.linsert("l", "AFTER", "b", "Y") == 5
    assert r.linsert("l", "after", "zz", "Y") == -1
    assert r.lrange("l", 0, -1) == [b"X", b"a", b"b", b"Y", b"a"]


def test_lpos(r):
    r.rpush("l", *"abcabca")
    assert r.lpos("l", "a") == 0
    assert r.lpos("l", "a", rank=2) == 3
    assert r.lpos("l", "a", rank=-1) == 6
    assert r.lpos("l", "a", count=0) == [0, 3, 6]
    assert r.lpos("l", "a", rank=-1, count=2) == [6, 3]
    assert r.lpos("l", "a", count=0, maxlen=4) == [0, 3]
    assert r.lpos("l", "c", rank=-1, maxlen=1) is None
    assert r.lpos("l", "zz") is None
    assert r.lpos("l", "zz", count=0) == []
    assert r.lpos("nokey", "a") is None
    assert r.lpos("nokey", "a", count=1) == []


def test_lmove_and_rpoplpush(r):
    r.rpush("src", "a", "b", "c")
    assert r.lmove("src", "dst", "LEFT", "RIGHT") == b"a"
    assert r.lmove("src", "dst", "RIGHT", "LEFT") == b"c"
    assert r.lrange("dst", 0, -1) == [b"c", b"a"]
    assert r.rpoplpush("src", "dst") == b"b"
    assert r.exists("src") == 0
    assert r.lrange("dst", 0, -1) == [b"b", b"c", b"a"]
    assert r.rpoplpush("dst", "dst") == b"a"  # rotation
    assert r.lrange("dst", 0, -1) == [b"a", b"b", b"c"]
    assert r.lmove("nokey", "dst", "LEFT", "LEFT") is None
    r.rpush("one", "x")
    assert r.lmove("one", "one", "LEFT", "RIGHT") == b"x"
    assert r.lrange("one", 0, -1) == [b"x"]


def test_lmpop(r):
    r.rpush("l2", "a", "b", "c")
    assert r.lmpop(2, "l1", "l2", direction="LEFT") == [b"l2", [b"a"]]
    assert r.lmpop(2, "l1", "l2", direction="RIGHT", count=5) == [b"l2", [b"c", b"b"]]
    assert r.exists("l2") == 0
    assert r.lmpop(2, "l1", "l2", direction="LEFT") is None


def test_wrongtype(r):
    r.set("s", "x")
    for call in (lambda: r.lpush("s", "a"), lambda: r.lrange("s", 0, 1), lambda: r.llen("s"),
                 lambda: r.lpop("s"), lambda: r.lmove("s", "d", "LEFT", "LEFT")):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            call()
    r.rpush("l", "a")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.lmove("l", "s", "LEFT", "LEFT")
    assert r.lrange("l", 0, -1) == [b"a"]  # nothing popped when the target is wrong


def test_big_list_middle_access_is_cheap(r):
    n = 200_000
    chunk = [b"%d" % i for i in range(20_000)]
    for _ in range(n // len(chunk)):
        r.rpush("big", *chunk)
    assert r.llen("big") == n
    start = time.perf_counter()
    for _ in range(50):
        assert r.lindex("big", n // 2 + 7) == b"7"
        assert r.lset("big", n // 2, "mid") is True
        assert r.lrange("big", n // 2, n // 2 + 2) == [b"mid", b"1", b"2"]
        assert r.lrange("big", -2, -1) == [b"19998", b"19999"]
    # 200 middle accesses; a linear scan per access would take seconds.
    assert time.perf_counter() - start < 2.0


# -- byte-exact comparison with redis-server --------------------------------------------


def test_exact_push_pop(diff):
    diff.same(
        "RPUSH l a b c d e", "LPUSH l x", "LPUSHX nokey a", "RPUSHX nokey a",
        "LPOP l", "RPOP l", "LPOP l 0", "LPOP l 2", "RPOP l 2", "LPOP l 1 2",
        "LPOP l -1", "LPOP l x", "RPOP l 9223372036854775808", "LPOP nokey", "LPOP nokey 1",
        "RPOP nokey 0", "RPOP l 100", "EXISTS l", "LPUSH", "LPOP", "RPOP l 1 1")


def test_exact_indexes(diff):
    diff.same(
        "RPUSH l a b c d e",
        "LINDEX l 0", "LINDEX l -1", "LINDEX l 5", "LINDEX l -6", "LINDEX l x",
        "LINDEX nokey x", "LINDEX l 9223372036854775808",
        "LSET nokey x a", "LSET nokey 0 a", "LSET l x a", "LSET l 5 a", "LSET l -6 a",
        "LSET l -5 A", "LSET l 4 E",
        "LRANGE l 0 -1", "LRANGE l -100 100", "LRANGE l 2 1", "LRANGE l 5 10",
        "LRANGE l -1 -1", "LRANGE l x 1", "LRANGE l 1 x", "LRANGE nokey 0 -1",
        "LRANGE nokey x 0", "LRANGE l -9223372036854775808 9223372036854775807",
        "LLEN l", "LLEN nokey")


def test_exact_ltrim_lrem_linsert(diff):
    diff.same(
        "RPUSH l 1 2 3 4 5 6 7 8 9 10",
        "LTRIM l -3 -1", "LRANGE l 0 -1", "LTRIM l -100 -2", "LRANGE l 0 -1",
        "LTRIM l x 1", "LTRIM nokey 0 1", "LTRIM nokey x 1", "LTRIM l 0 100",
        "LTRIM l 2 1", "EXISTS l",
        "RPUSH l a b c a b c a",
        "LREM l 0 x", "LREM l 1 a", "LREM l -1 a", "LRANGE l 0 -1", "LREM l x a",
        "LREM nokey 1 a", "LREM nokey x a", "LREM l 0 a", "LREM l 0 b", "LREM l 0 c",
        "EXISTS l",
        "RPUSH l a b c",
        "LINSERT l before b X", "LINSERT l AFTER c Y", "LINSERT l after nothere Y",
        "LINSERT l middle b X", "LINSERT nokey before a b", "LINSERT nokey middle a b",
        "LRANGE l 0 -1")


def test_exact_lpos(diff):
    diff.same(
        "RPUSH l a b c a b c a",
        "LPOS l a", "LPOS l a RANK 2", "LPOS l a rank -1", "LPOS l a RANK -2 COUNT 2",
        "LPOS l a COUNT 0", "LPOS l a COUNT 0 RANK -1", "LPOS l a COUNT 0 MAXLEN 4",
        "LPOS l a COUNT 0 RANK -1 MAXLEN 4", "LPOS l x", "LPOS l x COUNT 0",
        "LPOS l a RANK 0", "LPOS l a RANK", "LPOS l a FOO 1", "LPOS l a COUNT -1",
        "LPOS l a COUNT x", "LPOS l a MAXLEN x", "LPOS l a MAXLEN -1", "LPOS l a RANK x",
        "LPOS nokey a", "LPOS nokey a COUNT 1", "LPOS nokey a RANK 0",
        "LPOS l a RANK 9223372036854775807", "LPOS l a RANK -9223372036854775808",
        "LPOS l b RANK -9223372036854775808 COUNT 1", "LPOS l a RANK 10 COUNT 5",
        "LPOS l a RANK 2 COUNT 1 MAXLEN 3")


def test_exact_lmove_lmpop(diff):
    diff.same(
        "RPUSH src a b c",
        "LMOVE src dst left right", "LMOVE src dst RIGHT LEFT", "LRANGE dst 0 -1",
        "LMOVE src src left right", "LMOVE src dst up left", "LMOVE src dst left down",
        "LMOVE nokey dst left left", "RPOPLPUSH src dst", "RPOPLPUSH dst dst",
        "LRANGE dst 0 -1", "EXISTS src", "RPOPLPUSH nokey dst",
        "RPUSH l a b c d e",
        "LMPOP 1 l left", "LMPOP 2 nokey l right count 2", "LMPOP 2 nokey nokey2 left",
        "LMPOP 1 l middle", "LMPOP 2 l left", "LMPOP 0 l left", "LMPOP -1 l left",
        "LMPOP x l left", "LMPOP 1 l left count 0", "LMPOP 1 l left count -1",
        "LMPOP 1 l left count x", "LMPOP 1 l left count 1 count 2",
        "LMPOP 1 l left foo", "LMPOP 1 l left count", "LMPOP 1 l LEFT COUNT 100",
        "EXISTS l")


def test_exact_wrongtype(diff):
    diff.same(
        "SET s x", "RPUSH l a",
        "LPUSH s a", "RPUSH s a", "LPUSHX s a", "RPUSHX s a", "LPOP s", "RPOP s 1",
        "LLEN s", "LINDEX s 0", "LINDEX s x", "LSET s 0 a", "LSET s x a", "LRANGE s 0 1",
        "LRANGE s x 1", "LTRIM s 0 1", "LREM s 0 a", "LINSERT s before a b",
        "LINSERT s middle a b", "LPOS s a", "LPOS s a RANK 0",
        "LMOVE s l left left", "LMOVE l s left left", "RPOPLPUSH s l", "RPOPLPUSH l s",
        "LRANGE l 0 -1", "LMPOP 1 s left", "LMPOP 2 nokey s left", "LMPOP 2 l s left",
        "HSET h f v", "LPUSH h a", "GET s")


def test_exact_resp3_shapes(diff):
    diff.hello3()
    diff.same(
        "RPUSH l a b c", "LPOP nokey 1", "LPOP nokey", "LPOP l 0", "RPOP l 2",
        "LMPOP 1 nokey left", "LMPOP 1 l left count 2", "LPOS nokey a",
        "LPOS nokey a COUNT 0", "LINDEX nokey 0", "LRANGE nokey 0 1", "RPOPLPUSH nokey x",
        "LMOVE nokey x left left")


def test_exact_encoding(diff):
    # Redis 7.0 reports every list as a quicklist, however small.
    diff.same("RPUSH l a", "OBJECT ENCODING l", "RPUSH l " + "x" * 10000,
              "OBJECT ENCODING l")


def test_list_copy():
    from vermilion.datatypes.listtype import ListValue, from_items

    lst = from_items([b"a", b"b"])
    dup = lst.copy()
    assert type(dup) is ListValue and dup == lst
    dup.append(b"c")
    assert list(lst) == [b"a", b"b"]
    assert lst.type_name == "list"


# -- random command sequences (hypothesis) ------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Mostly one key, so the sequences build up real lists instead of missing keys.
_key = st.sampled_from([b"l1", b"l1", b"l1", b"l2", b"s"])
_elem = st.sampled_from([b"a", b"b", b"a", b"b", b"c", b"", b"1", b"\x00\xff"])
_small = st.integers(-4, 4).map(lambda i: b"%d" % i)
_int = st.one_of(_small, _small, _small,
                 st.sampled_from([b"x", b"", b"9223372036854775807", b"-9223372036854775808",
                                  b"9223372036854775808", b"1.5", b" 1", b"01"]))
_where = st.sampled_from([b"LEFT", b"RIGHT", b"left", b"middle"])


def _cmd(*parts):
    def build(*values):
        out = []
        for v in values:
            if isinstance(v, list):
                out.extend(build(*v))
            else:
                out.append(v)
        return out
    return st.builds(build, *(p if isinstance(p, st.SearchStrategy) else st.just(p)
                              for p in parts))


def _opt(*parts):
    return st.one_of(st.just([]), _cmd(*parts))


_push = _cmd(st.sampled_from([b"LPUSH", b"RPUSH", b"LPUSHX", b"RPUSHX"]), _key,
             st.lists(_elem, min_size=1, max_size=6))
_list_commands = st.one_of(
    _push, _push, _push, _push,
    _cmd(st.sampled_from([b"LPOP", b"RPOP"]), _key, _opt(_int)),
    _cmd(b"LLEN", _key), _cmd(b"LINDEX", _key, _int), _cmd(b"LSET", _key, _int, _elem),
    _cmd(b"LRANGE", _key, _int, _int), _cmd(b"LTRIM", _key, _int, _int),
    _cmd(b"LREM", _key, _int, _elem), _cmd(b"LREM", _key, _small, _elem),
    _cmd(b"LINSERT", _key, st.sampled_from([b"BEFORE", b"after", b"x"]), _elem, _elem),
    _cmd(b"LPOS", _key, _elem, _opt(st.just(b"RANK"), _int), _opt(st.just(b"COUNT"), _int),
         _opt(st.just(b"MAXLEN"), _int)),
    _cmd(b"LMOVE", _key, _key, _where, _where), _cmd(b"RPOPLPUSH", _key, _key),
    _cmd(b"LMPOP", st.sampled_from([b"1", b"2", b"0", b"x"]), _key, _key, _where,
         _opt(st.just(b"COUNT"), _int)),
    _cmd(b"SET", st.just(b"s"), _elem),
    _cmd(b"EXISTS", _key),
)


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(_list_commands, min_size=1, max_size=20))
def test_random_sequences_match_redis(raw, raw_real, sequence):
    raw.command("FLUSHALL")
    raw_real.command("FLUSHALL")
    # The final contents are compared too: a wrong element removed shows there.
    for argv in sequence + [[b"LRANGE", b"l1", b"0", b"-1"], [b"LRANGE", b"l2", b"0", b"-1"]]:
        assert raw.command(*argv) == raw_real.command(*argv), sequence


def test_exact_type_ttl_and_copy(diff):
    # In-place changes keep the TTL; COPY gives an independent list.
    diff.same(
        "RPUSH l a b c", "TYPE l", "EXPIRE l 1000", "RPUSH l d", "LPOP l", "LSET l 0 x",
        "LTRIM l 0 1", "TTL l", "COPY l l2", "RPUSH l2 z", "LRANGE l 0 -1",
        "LRANGE l2 0 -1", "LMOVE l fresh left left", "TTL fresh", "TTL l")


def test_aof_replays_list_writes(tmp_path):
    """Every list write reaches the AOF once: a restart rebuilds the same lists."""
    from conftest import start_vermilion

    server = start_vermilion(tmp_path, ["--appendonly", "yes"])
    try:
        c = server.client()
        c.rpush("l", *"abcdefab")
        c.lpop("l", 2)
        c.lmove("l", "m", "LEFT", "RIGHT")
        c.rpoplpush("l", "m")
        c.lrem("l", -1, "e")
        c.execute_command("LMPOP", 2, "zz", "l", "RIGHT", "COUNT", 1)
        c.linsert("l", "BEFORE", "d", "X")
        c.lset("l", 0, "Y")
        c.ltrim("l", 0, 2)
        c.lpush("gone", "x")
        c.lpop("gone")
        before = {k: c.lrange(k, 0, -1) for k in c.keys("*")}
    finally:
        server.stop()
    assert before == {b"l": [b"Y", b"d", b"f"], b"m": [b"b", b"c"]}
    server = start_vermilion(tmp_path, ["--appendonly", "yes"])
    try:
        c = server.client()
        assert {k: c.lrange(k, 0, -1) for k in c.keys("*")} == before
    finally:
        server.stop()
