"""Set commands: behaviour through redis-py (RESP2 and RESP3) and byte-exact replies
compared with a real redis-server 7.0 on the same command sequences.

Hashtable-encoded sets reply in hash order, which differs between the two servers, so
the byte comparisons use integer sets (intset: ascending order, as Redis iterates them),
single-member results, errors and counts; random commands are tested by property."""

import pytest
import redis


def members(values):
    return {v if isinstance(v, bytes) else str(v).encode() for v in values}


# -- behaviour (both protocols) --------------------------------------------------------


def test_sadd_srem_scard_sismember(r):
    assert r.sadd("s", "a", "b", "c", "a") == 3
    assert r.sadd("s", "a", "d") == 1
    assert r.scard("s") == 4
    assert r.scard("nokey") == 0
    assert r.sismember("s", "a") in (1, True)
    assert r.sismember("s", "zz") in (0, False)
    assert r.sismember("nokey", "a") in (0, False)
    assert r.smismember("s", "a", "zz", "d") == [1, 0, 1]
    assert r.smismember("nokey", "a", "b") == [0, 0]
    assert r.srem("s", "a", "zz", "a") == 1
    assert r.srem("nokey", "a") == 0
    assert r.smembers("s") == {b"b", b"c", b"d"}
    assert r.srem("s", "b", "c", "d") == 3
    assert r.exists("s") == 0  # an emptied set is deleted


def test_smembers_missing_and_wrongtype(r):
    assert r.smembers("nokey") == set()
    r.set("str", "v")
    for call in (lambda: r.sadd("str", "a"), lambda: r.smembers("str"),
                 lambda: r.scard("str"), lambda: r.srem("str", "a"),
                 lambda: r.sismember("str", "a"), lambda: r.spop("str"),
                 lambda: r.srandmember("str"), lambda: r.sinter("str"),
                 lambda: r.sunion("nokey", "str"), lambda: r.sdiff("str")):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            call()


def test_smove(r):
    r.sadd("src", "a", "b")
    r.sadd("dst", "c")
    assert r.smove("src", "dst", "a") in (1, True)
    assert r.smove("src", "dst", "zz") in (0, False)
    assert r.smembers("src") == {b"b"}
    assert r.smembers("dst") == {b"a", b"c"}
    assert r.smove("src", "new", "b") in (1, True)
    assert r.exists("src") == 0
    assert r.smembers("new") == {b"b"}
    assert r.smove("new", "new", "b") in (1, True)  # same key: membership only
    assert r.smove("new", "new", "x") in (0, False)
    assert r.smove("nokey", "dst", "a") in (0, False)


def test_set_algebra(r):
    r.sadd("a", 1, 2, 3, 4)
    r.sadd("b", 3, 4, 5)
    r.sadd("c", 4, "x")
    assert r.sinter("a", "b") == {b"3", b"4"}
    assert r.sinter("a", "b", "c") == {b"4"}
    assert r.sinter("a", "nokey") == set()
    assert r.sunion("a", "b", "c", "nokey") == members([1, 2, 3, 4, 5, "x"])
    assert r.sdiff("a", "b") == {b"1", b"2"}
    assert r.sdiff("a", "b", "c") == {b"1", b"2"}
    assert r.sdiff("nokey", "a") == set()
    assert r.sdiff("a", "a") == set()
    assert r.sintercard(2, ["a", "b"]) == 2
    assert r.sintercard(2, ["a", "b"], limit=1) == 1
    assert r.sintercard(2, ["a", "b"], limit=0) == 2
    assert r.sintercard(2, ["a", "nokey"]) == 0


def test_store_variants(r):
    r.sadd("a", 1, 2, 3)
    r.sadd("b", 2, 3, 4)
    r.sadd("dst", "old")
    r.expire("dst", 100)
    assert r.sinterstore("dst", "a", "b") == 2
    assert r.smembers("dst") == {b"2", b"3"}
    assert r.ttl("dst") == -1  # the result replaces the key and its TTL
    assert r.sunionstore("dst", "a", "b") == 4
    assert r.sdiffstore("dst", "a", "b") == 1
    assert r.smembers("dst") == {b"1"}
    assert r.sdiffstore("dst", "a", "a") == 0
    assert r.exists("dst") == 0  # an empty result deletes the destination
    r.sadd("dst", "x")
    assert r.sinterstore("dst", "a", "nokey") == 0
    assert r.exists("dst") == 0
    assert r.sunionstore("a", "a", "b") == 4  # the destination may be a source
    assert r.smembers("a") == members([1, 2, 3, 4])


def test_spop(r):
    r.sadd("s", *range(10))
    popped = r.spop("s")
    assert popped in members(range(10))
    assert r.scard("s") == 9
    assert r.sismember("s", popped) in (0, False)
    several = r.spop("s", 4)
    assert len(several) == 4 and len(set(several)) == 4
    assert r.scard("s") == 5
    rest = r.spop("s", 100)  # more than the size: everything, and the key goes
    assert len(rest) == 5
    assert members(rest) | members(several) | {popped} == members(range(10))
    assert r.exists("s") == 0
    assert r.spop("nokey") is None
    assert not r.spop("nokey", 3)
    r.sadd("s", "a")
    assert not r.spop("s", 0)
    assert r.scard("s") == 1


def test_spop_drains_a_big_set_exactly_once(r):
    r.sadd("s", *range(2000))
    r.sadd("s", "x")  # a hashtable set
    seen = []
    for _ in range(700):
        seen.append(r.spop("s"))
    seen += r.spop("s", 1000)
    r.sadd("s", "late")  # adds between pops keep working
    seen += r.spop("s", 10000)
    assert len(seen) == 2002
    assert set(seen) == members(list(range(2000)) + ["x", "late"])
    assert r.exists("s") == 0


def test_srandmember(r):
    r.sadd("s", *range(5))
    assert r.srandmember("s") in members(range(5))
    assert r.srandmember("nokey") is None
    assert r.srandmember("nokey", 3) == []
    assert r.srandmember("s", 0) == []
    three = r.srandmember("s", 3)
    assert len(three) == 3 and len(set(three)) == 3 and set(three) <= members(range(5))
    assert sorted(r.srandmember("s", 10)) == sorted(members(range(5)))
    repeated = r.srandmember("s", -20)  # negative: exactly that many, repeats allowed
    assert len(repeated) == 20 and set(repeated) <= members(range(5))
    assert r.scard("s") == 5


def test_srandmember_covers_every_member(r):
    r.sadd("s", *[f"m{i}" for i in range(20)])
    seen = set(r.srandmember("s", -2000))
    assert seen == {f"m{i}".encode() for i in range(20)}


def test_writes_after_random_picks(r):
    """SRANDMEMBER and SPOP keep a list of the members for their picks: SADD, SREM and
    SPOP after them change the set (and its memory accounting) as without it."""
    r.sadd("s", *[f"m{i}" for i in range(50)])
    r.srandmember("s")
    assert r.srem("s", "m1", "m2", "zz") == 2
    r.spop("s")
    assert r.sadd("s", "new", "m3") == 1
    assert r.srem("s", *[f"m{i}" for i in range(50)]) + r.srem("s", "new") == 48
    assert r.exists("s") == 0
    assert r.spop("s") is None


def test_smembers_resp3_is_a_set(r):
    r.sadd("s", "a", "b")
    assert r.smembers("s") == {b"a", b"b"}
    assert r.sinter("s") == {b"a", b"b"}


# -- byte-exact comparison with redis-server ---------------------------------------------


def test_exact_basic_replies(diff):
    diff.same(
        "SADD s 3 1 2 -5 10", "SADD s 1 7", "SMEMBERS s", "SCARD s", "SISMEMBER s 1",
        "SISMEMBER s 99", "SMISMEMBER s 1 99 7", "SMISMEMBER nokey a b", "SREM s 1 99",
        "SMEMBERS s", "SMEMBERS nokey", "SCARD nokey", "SREM nokey a",
        "SINTER s", "SUNION s nokey", "SDIFF s nokey",
        "SADD t 2 3 100", "SINTER s t", "SUNION s t", "SDIFF s t", "SDIFF t s",
        "SINTERSTORE d s t", "SMEMBERS d", "SUNIONSTORE d s t", "SMEMBERS d",
        "SDIFFSTORE d s t", "SMEMBERS d", "SDIFFSTORE d s s", "EXISTS d",
        "SINTERCARD 2 s t", "SINTERCARD 2 s t LIMIT 1", "SINTERCARD 1 nokey")


def test_exact_resp3(diff):
    diff.hello3()
    diff.same(
        "SADD s 3 1 2", "SMEMBERS s", "SMEMBERS nokey", "SINTER s nokey", "SUNION s",
        "SDIFF s", "SPOP nokey", "SPOP nokey 2", "SPOP s 0", "SRANDMEMBER nokey",
        "SRANDMEMBER nokey 3", "SRANDMEMBER s 0", "SRANDMEMBER s 5", "SMISMEMBER s 1 9",
        "SISMEMBER s 1", "SPOP s 3", "EXISTS s")


def test_exact_errors(diff):
    diff.same(
        "SET str v", "SADD str a", "SREM str a", "SCARD str", "SMEMBERS str",
        "SISMEMBER str a", "SMISMEMBER str a", "SPOP str", "SPOP str 2", "SRANDMEMBER str",
        "SRANDMEMBER str 2", "SINTER nokey str", "SUNION nokey str", "SDIFF nokey str",
        "SINTERSTORE d nokey str", "SUNIONSTORE d str", "SDIFFSTORE d nokey str",
        "SINTERCARD 1 str", "SADD s a", "SMOVE nokey str a", "SMOVE s str a",
        "SMOVE str s a", "SADD", "SADD s", "SPOP", "SMISMEMBER s",
        "SPOP s -1", "SPOP s x", "SPOP s 1 2", "SRANDMEMBER s 1 2", "SRANDMEMBER s x",
        "SRANDMEMBER s -9223372036854775808", "SRANDMEMBER s 9223372036854775808",
        "SINTERCARD 0 s", "SINTERCARD -1 s", "SINTERCARD x s", "SINTERCARD 3 s",
        "SINTERCARD 1 s LIMIT -1", "SINTERCARD 1 s LIMIT x", "SINTERCARD 1 s LIMIT",
        "SINTERCARD 1 s foo", "SINTERCARD 1 s LIMIT 1 LIMIT 0")


def test_exact_smove(diff):
    diff.same(
        "SADD a 1 2", "SADD b 3", "SMOVE a b 1", "SMEMBERS a", "SMEMBERS b",
        "SMOVE a b 9", "SMOVE a a 2", "SMOVE a a 9", "SMOVE a c 2", "EXISTS a",
        "SMEMBERS c", "SMOVE nokey c 1")


def test_exact_spop_whole_intset(diff):
    # Popping at least the whole set replies it in intset order and deletes the key.
    diff.same("SADD s 5 -1 3", "SPOP s 3", "EXISTS s",
              "SADD s 5 -1 3", "SRANDMEMBER s 3", "SRANDMEMBER s 100")
    diff.hello3()
    diff.same("SPOP s 10", "EXISTS s")


def test_exact_intset_result_order(diff):
    # A result made only of integers is an intset, replied in ascending order.
    diff.same(
        "SADD a 30 -2 1000 7", "SADD b x 7 30 1000 5 y", "SINTER b a", "SDIFF a b",
        "SUNIONSTORE u a", "SMEMBERS u", "SINTERSTORE i a b", "SMEMBERS i")


def test_exact_encodings(diff):
    big = [str(i) for i in range(513)]
    diff.same(
        "SADD s 1 2 3", "OBJECT ENCODING s", "SADD s a", "OBJECT ENCODING s",
        "SREM s a", "OBJECT ENCODING s",  # never converted back
        ["SADD", "n", *big[:512]], "OBJECT ENCODING n", "SADD n 512",
        "OBJECT ENCODING n", "SINTERSTORE d s", "OBJECT ENCODING d",
        "SMOVE s m 1", "OBJECT ENCODING m", "SADD h x", "SMOVE s h 2",
        "OBJECT ENCODING h")


def scan_all(r, key, **kwargs):
    cursor, seen, calls = 0, [], 0
    while True:
        cursor, batch = r.sscan(key, cursor, **kwargs)
        seen += batch
        calls += 1
        assert calls < 10000
        if int(cursor) == 0:
            return seen, calls


def test_sscan_small_and_big(r):
    r.sadd("ints", 3, 1, 2)
    assert r.sscan("ints", 0, count=1) == (0, [b"1", b"2", b"3"])  # intset: whole, in order
    assert r.sscan("nokey", 0) == (0, [])
    r.sadd("big", *[f"m{i}" for i in range(1000)])
    seen, calls = scan_all(r, "big", count=50)
    assert set(seen) == {f"m{i}".encode() for i in range(1000)}
    assert calls > 10  # paged, not in one reply
    matched, _ = scan_all(r, "big", match="m1*", count=100)
    assert set(matched) == {f"m{i}".encode() for i in range(1000) if str(i).startswith("1")}


def test_sscan_survives_changes(r):
    r.sadd("big", *[f"m{i}" for i in range(500)])
    cursor, seen = 0, set()
    for step in range(1000):
        cursor, batch = r.sscan("big", cursor, count=20)
        seen.update(batch)
        r.srem("big", f"m{step}")  # members removed meanwhile may or may not show up
        r.sadd("big", f"new{step}")
        if int(cursor) == 0:
            break
    kept = {f"m{i}".encode() for i in range(step + 1, 500)}
    assert kept <= seen  # members present the whole time are all returned


def test_exact_sscan(diff):
    diff.same(
        "SSCAN nokey 0 COUNT 0", "SSCAN nokey x", "SSCAN nokey 0 foo", "SADD s 5 1 -3 100",
        "SSCAN s 0", "SSCAN s 0 COUNT 1", "SSCAN s 0 COUNT 0", "SSCAN s 0 MATCH 1*",
        "SSCAN s 0 MATCH", "SSCAN s 0 foo bar", "SSCAN s -1", ["SSCAN", "s", " 1"],
        "SSCAN s 18446744073709551616", ["SSCAN", "s", ""], "SADD s1 a", "SSCAN s1 0",
        "SSCAN s1 0 MATCH b*", "SET str v", "SSCAN str 0", "SSCAN str x")
    diff.hello3()
    diff.same("SSCAN s 0", "SSCAN nokey 0")


# -- differential random sequences --------------------------------------------------------


def _unordered(reply: bytes) -> bytes:
    """An array/set reply of bulk strings with its elements sorted (hashtable sets
    iterate in an order that differs between servers); other replies unchanged."""
    if reply[:1] not in (b"*", b"~") or reply in (b"*-1\r\n",):
        return reply
    head, _, rest = reply.partition(b"\r\n")
    items = []
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        if size_line[:1] != b"$":
            return reply
        size = int(size_line[1:])
        items.append(rest[:size])
        rest = rest[size + 2:]
    return head + b"|" + b"|".join(sorted(items))


def _random_set_command(rnd):
    key = lambda: rnd.choice(["s1", "s2", "s3", "str"])  # noqa: E731
    member = lambda: rnd.choice(["1", "2", "3", "-4", "10", "a", "b", "07", "c"])  # noqa: E731
    kind = rnd.randrange(12)
    if kind <= 2:
        return ["SADD", key(), *[member() for _ in range(rnd.randint(1, 4))]]
    if kind == 3:
        return ["SREM", key(), member(), member()]
    if kind == 4:
        return [rnd.choice(["SCARD", "SMEMBERS", "EXISTS"]), key()]
    if kind == 5:
        return [rnd.choice(["SISMEMBER", "SMISMEMBER"]), key(), member()]
    if kind == 6:
        return ["SMOVE", key(), key(), member()]
    if kind == 7:
        return [rnd.choice(["SINTER", "SUNION", "SDIFF"]), key(), key()]
    if kind == 8:
        return [rnd.choice(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), key(), key(), key()]
    if kind == 9:
        return ["SINTERCARD", "2", key(), key(), *rnd.choice([[], ["LIMIT", str(rnd.randint(0, 3))]])]
    if kind == 10:
        return rnd.choice([["SPOP", key(), "100"], ["SRANDMEMBER", key(), "100"],
                           ["SRANDMEMBER", key(), "0"], ["SET", "str", "v"]])
    return ["SSCAN", key(), "0", "COUNT", "100"]


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_differential_random_sequences(diff, seed):
    import random

    rnd = random.Random(seed)
    if seed % 2:
        diff.hello3()
    history = []
    for _ in range(400):
        cmd = _random_set_command(rnd)
        history.append(cmd)
        mine, theirs = diff.mine.command(*cmd), diff.real.command(*cmd)
        if cmd[0] == "SSCAN":  # the same cursor, then the members in any order
            mine, theirs = mine.split(b"\r\n", 3), theirs.split(b"\r\n", 3)
            assert mine[:3] == theirs[:3], history[-20:]
            mine, theirs = mine[3:], theirs[3:]
            mine, theirs = (_unordered(x[0]) if x else b"" for x in (mine, theirs))
        assert _unordered(mine) == _unordered(theirs), history[-20:]
