"""SORT / SORT_RO: replies compared byte for byte with the real redis-server 7.0.

Every case runs the same setup and the same SORT on both servers (conftest's ``diff``)
and asserts identical reply bytes. Sets are only compared where the sort fully
determines the order (numeric sorts, ALPHA without ties, forced ALPHA).
"""

import random

import pytest

LONG_MAX = "9223372036854775807"
LONG_MIN = "-9223372036854775808"


# -- the r fixture: plain behaviour on both protocols -----------------------------------


def test_sort_list_numeric_and_alpha(r):
    r.rpush("l", 3, 1, 2, 10)
    assert r.sort("l") == [b"1", b"2", b"3", b"10"]
    assert r.sort("l", desc=True) == [b"10", b"3", b"2", b"1"]
    assert r.sort("l", alpha=True) == [b"1", b"10", b"2", b"3"]
    assert r.sort("l", start=1, num=2) == [b"2", b"3"]
    assert r.sort_ro("l", alpha=True, desc=True) == [b"3", b"2", b"10", b"1"]


def test_sort_by_get_store(r):
    r.rpush("l", "a", "b", "c")
    r.mset({"w_a": 3, "w_b": 1, "w_c": 2, "o_a": "A", "o_c": "C"})
    r.hset("h_b", "f", "B")
    assert r.sort("l", by="w_*") == [b"b", b"c", b"a"]
    assert r.sort("l", by="w_*", get=["#", "o_*", "h_*->f"]) == [
        b"b", None, b"B", b"c", b"C", None, b"a", b"A", None]
    assert r.sort("l", by="w_*", get="o_*", store="dst") == 3
    assert r.lrange("dst", 0, -1) == [b"", b"C", b"A"]
    assert r.sort("missing", store="dst") == 0
    assert r.exists("dst") == 0


def test_sort_errors(r):
    r.set("s", "x")
    with pytest.raises(Exception, match="WRONGTYPE"):
        r.sort("s")
    r.rpush("l", "x")
    with pytest.raises(Exception, match="One or more scores can't be converted into double"):
        r.sort("l")


# -- lists ------------------------------------------------------------------------------


LIMITS = [("0", "0"), ("0", "-1"), ("0", "3"), ("-5", "2"), ("2", "100"), ("100", "2"),
          ("1", LONG_MAX), (LONG_MAX, LONG_MAX), (LONG_MIN, "2"), ("3", "-7"), ("6", "1"),
          ("7", "1"), ("5", "0"), ("-1", LONG_MIN)]


@pytest.mark.parametrize("order", [(), ("ASC",), ("DESC",)])
def test_list_numeric_limits(diff, order):
    diff.same(("RPUSH", "l", "3", "1", "2", "10", "-5", "2.5", "1e2", "0x10", ""))
    diff("SORT", "l", *order)
    for offset, count in LIMITS:
        diff("SORT", "l", "LIMIT", offset, count, *order)
        diff("SORT", "l", "BY", "nosort", "LIMIT", offset, count, *order)
        diff("SORT", "l", "ALPHA", "LIMIT", offset, count, *order)


def test_numeric_ties_compare_elements_binary(diff):
    diff.same(("RPUSH", "l", "1", "1.0", "01", "+1", " 1", "1.00", "0x1", "1e0", "2", "1"))
    diff("SORT", "l")
    diff("SORT", "l", "DESC")
    diff("SORT", "l", "LIMIT", "2", "3")
    diff("SORT", "l", "STORE", "d")
    diff("LRANGE", "d", "0", "-1")


@pytest.mark.parametrize("value", [
    "abc", "1 ", "  ", "nan", "-nan", "1e309", "-1e309", "1e-310", "1_0", "0x", "1e", "--1",
    "inf", "-Infinity", "0x1p3", "1e-300", "2.2250738585072014e-308", "\t7", "1\x00junk",
    "\x001", "9" * 400, "0." + "0" * 400 + "1", "1" + "0" * 308, "1" + "0" * 309])
def test_score_conversion_like_strtod(diff, value):
    diff.same(("RPUSH", "l", "5", value, "-3"))
    diff("SORT", "l")
    diff("SORT", "l", "DESC", "LIMIT", "0", "1")
    diff("SORT", "l", "STORE", "d")
    diff("EXISTS", "d")


def test_alpha_list_with_ties_and_nul_bytes(diff):
    # strcoll() stops at NUL: "a\0x" and "a\0y" tie (kept in list order) unless STORE,
    # which compares whole strings.
    diff.same(("RPUSH", "l", "b", "a\x00y", "A", "a", "a\x00x", "\xff", "\x01", "ab", "a\x00x"))
    diff("SORT", "l", "ALPHA")
    diff("SORT", "l", "ALPHA", "DESC")
    diff("SORT", "l", "ALPHA", "LIMIT", "1", "4")
    for extra in [(), ("DESC",)]:
        diff("SORT", "l", "ALPHA", "STORE", "d", *extra)
        diff("LRANGE", "d", "0", "-1")


def test_nosort_list(diff):
    diff.same(("RPUSH", "l", *"zyxabc12"))
    for order in [(), ("DESC",)]:
        diff("SORT", "l", "BY", "nosort", *order)
        diff("SORT", "l", "BY", "nosort", "GET", "#", "GET", "k_*", *order)
        diff("SORT", "l", "BY", "constant->field", *order)
        # A constant BY is sticky: a later real pattern does not turn sorting back on.
        diff("SORT", "l", "BY", "nosort", "BY", "w_*", *order)
        diff("SORT", "l", "BY", "nosort", "STORE", "d", "LIMIT", "2", "3", *order)
        diff("LRANGE", "d", "0", "-1")


# -- BY and GET patterns ----------------------------------------------------------------


def _weights(diff):
    diff.same(
        ("RPUSH", "l", "a", "b", "c", "d", "e", "f"),
        ("MSET", "w_a", "3", "w_b", "1", "w_c", "2", "w_d", "1", "w_f", "-1.5"),
        ("MSET", "o_a", "A", "o_b", "B", "o_e", "E", "n:c:x", "cx"),
        ("HSET", "h_a", "f", "10", "g", "ga"), ("HSET", "h_b", "f", "2"),
        ("HSET", "h_c", "f", "2", "g", "gc"), ("HSET", "h_e", "f", "-1", "->", "arrow"),
        ("SADD", "w_e", "notastring"), ("RPUSH", "o_f", "list"))


BY_PATTERNS = ["w_*", "h_*->f", "h_*->g", "h_*->", "h_*->->", "o_*", "missing_*",
               "n:*:x", "*", "w_*->f", "h_*->f->"]


@pytest.mark.parametrize("by", BY_PATTERNS)
def test_by_patterns(diff, by):
    _weights(diff)
    for opts in [(), ("DESC",), ("ALPHA",), ("ALPHA", "DESC"), ("LIMIT", "1", "3"),
                 ("ALPHA", "LIMIT", "2", "2"), ("ALPHA", "DESC", "LIMIT", "0", "4"),
                 ("GET", "#", "GET", "o_*"), ("ALPHA", "STORE", "d")]:
        diff("SORT", "l", "BY", by, *opts)
        diff("SORT_RO", "l", "BY", by, *[o for o in opts if o not in ("STORE", "d")])
    diff("LRANGE", "d", "0", "-1")


@pytest.mark.parametrize("get", ["#", "o_*", "h_*->g", "h_*->f", "h_*->", "w_*", "nostar",
                                 "#x", "o_*->g", "h_*->->", "*", "n:*:x"])
def test_get_patterns(diff, get):
    _weights(diff)
    diff("SORT", "l", "ALPHA", "GET", get)
    diff("SORT", "l", "BY", "w_*", "GET", get, "GET", "#", "LIMIT", "1", "4")
    diff("SORT", "l", "ALPHA", "GET", get, "STORE", "d")
    diff("LRANGE", "d", "0", "-1")


def test_get_nil_in_resp3(diff):
    _weights(diff)
    diff.hello3()  # (the HELLO replies differ: client id, version)
    diff("SORT", "l", "ALPHA", "GET", "o_*", "GET", "#")
    diff("SORT", "l", "BY", "nosort", "GET", "h_*->g")
    diff("SORT", "missing")


def test_alpha_by_ties_with_limit_partial_sort(diff):
    # Many equal BY values: Redis sorts a LIMIT window with its unstable partial
    # quicksort, the full list with glibc's stable merge sort.
    rng = random.Random(7)
    items = [f"e{i}" for i in range(120)]
    diff.same(("RPUSH", "l", *items),
              ("MSET", *[x for i in items for x in (f"w_{i}", rng.choice("abc"))]))
    for offset, count in [("0", "10"), ("5", "20"), ("50", "7"), ("0", "-1"), ("110", "50")]:
        diff("SORT", "l", "BY", "w_*", "ALPHA", "LIMIT", offset, count)
        diff("SORT", "l", "BY", "w_*", "ALPHA", "DESC", "LIMIT", offset, count)
        diff("SORT", "l", "BY", "w_*", "LIMIT", offset, count)
    diff("SORT", "l", "BY", "w_*", "ALPHA")
    diff("SORT", "l", "BY", "w_*", "ALPHA", "DESC")
    diff("SORT", "l", "BY", "missing_*", "ALPHA", "LIMIT", "3", "30")


# -- sets and sorted sets ---------------------------------------------------------------


def test_sets(diff):
    diff.same(
        ("SADD", "ints", *map(str, [5, -3, 17, 0, 2, 100, 42])),
        ("SADD", "words", "pear", "apple", "fig", "kiwi", "banana"),
        ("SADD", "nums", "1.5", "-2", "1e3", "abc-not-used"), ("SREM", "nums", "abc-not-used"),
        ("SADD", "bad", "1", "x"))
    for key in ["ints", "nums"]:
        diff("SORT", key)
        diff("SORT", key, "DESC", "LIMIT", "1", "2")
        diff("SORT", key, "STORE", "d")
        diff("LRANGE", "d", "0", "-1")
    diff("SORT", "words", "ALPHA")
    diff("SORT", "words", "ALPHA", "DESC", "GET", "#", "GET", "x_*")
    diff("SORT", "ints", "ALPHA", "LIMIT", "2", "10")
    diff("SORT", "bad")
    # The order of an intset is its own (ascending) one.
    diff("SORT", "ints", "BY", "nosort")
    # BY nosort with STORE (or in a script) sorts a set ALPHA to stay deterministic.
    for key in ["ints", "words", "nums"]:
        diff("SORT", key, "BY", "nosort", "STORE", "d")
        diff("LRANGE", "d", "0", "-1")
        diff("SORT", key, "BY", "nosort", "DESC", "LIMIT", "1", "3", "STORE", "d")
        diff("LRANGE", "d", "0", "-1")
        diff("EVAL", "return redis.call('sort', KEYS[1], 'by', 'nosort')", "1", key)
        diff("EVAL", "return redis.call('sort_ro', KEYS[1], 'by', 'nosort', 'desc')", "1", key)


def test_sorted_sets(diff):
    diff.same(("ZADD", "z", "1", "c", "1", "b", "3", "a", "-2", "10", "5", "7", "2", "x"))
    for order in [(), ("DESC",)]:
        for offset, count in LIMITS:
            diff("SORT", "z", "BY", "nosort", "LIMIT", offset, count, *order)
            diff("SORT", "z", "BY", "nosort", "GET", "#", "LIMIT", offset, count, *order)
        diff("SORT", "z", "ALPHA", *order)
        diff("SORT", "z", "ALPHA", "LIMIT", "1", "3", *order)
        diff("SORT", "z", "BY", "nosort", "STORE", "d", *order)
        diff("LRANGE", "d", "0", "-1")
    diff("SORT", "z")  # members are sorted by their own value: a, b... are not numbers
    diff.same(("ZADD", "zn", "3", "10", "2", "7", "1", "100", "0", "-1"))
    diff("SORT", "zn")
    diff("SORT", "zn", "DESC", "LIMIT", "1", "2")
    diff("SORT", "zn", "BY", "nosort")


# -- STORE ------------------------------------------------------------------------------


def test_store_replaces_any_type_and_drops_ttl(diff):
    diff.same(("RPUSH", "l", "2", "1"), ("SET", "d", "old", "EX", "100"))
    diff("SORT", "l", "STORE", "d")
    diff("TYPE", "d")
    diff("TTL", "d")
    diff("LRANGE", "d", "0", "-1")
    diff.same(("HSET", "d", "f", "v"))
    diff("DEL", "d")
    diff.same(("HSET", "d", "f", "v"))
    diff("SORT", "l", "LIMIT", "5", "5", "STORE", "d")  # empty result deletes it
    diff("EXISTS", "d")
    diff("SORT", "l", "STORE", "l")  # storing over the source
    diff("LRANGE", "l", "0", "-1")
    diff("SORT", "l", "GET", "a_*", "GET", "#", "STORE", "d", "STORE", "e")
    diff("LRANGE", "e", "0", "-1")
    diff("EXISTS", "d")


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", [
    ("SORT",), ("SORT_RO",),
    ("SORT", "s"), ("SORT", "h"), ("SORT_RO", "s"), ("SORT", "h", "BY", "nosort"),
    ("SORT", "s", "STORE", "d"), ("SORT", "l", "FOO"), ("SORT", "l", "LIMIT", "1"),
    ("SORT", "l", "LIMIT"), ("SORT", "l", "STORE"), ("SORT", "l", "BY"), ("SORT", "l", "GET"),
    ("SORT", "l", "LIMIT", "a", "1"), ("SORT", "l", "LIMIT", "1", "b"),
    ("SORT", "l", "LIMIT", "1", "1.5"), ("SORT", "l", "LIMIT", "99999999999999999999", "1"),
    ("SORT", "l", "LIMIT", "-0", "1"), ("SORT", "s", "LIMIT", "x", "1"),
    ("SORT", "s", "FOO"), ("SORT_RO", "l", "STORE", "d"), ("SORT_RO", "s", "STORE", "d"),
    ("SORT", "l", "ALPHA", "desc", "Limit", "0", "1", "asc", "get", "#", "by", "x"),
    ("SORT", "l", "LIMIT", "0", "1", "LIMIT", "1", "1"), ("SORT", "l", "DESC", "BY"),
])
def test_errors_and_option_parsing(diff, cmd):
    diff.same(("SET", "s", "x"), ("HSET", "h", "f", "v"), ("RPUSH", "l", "2", "1", "3"))
    diff(*cmd)
    diff("EXISTS", "d")


# -- random differential ----------------------------------------------------------------


def test_random_option_combinations(diff):
    rng = random.Random(2024)
    elements = [str(rng.randint(-20, 20)) for _ in range(30)] + ["x", "y", "1.5", "1.50"]
    diff.same(("RPUSH", "l", *elements),
              ("MSET", *[x for e in set(elements) for x in (f"w_{e}", str(rng.randint(0, 5)))]),
              *[("HSET", f"h_{e}", "f", rng.choice(["1", "2", "a", "b"])) for e in set(elements)
                if rng.random() < 0.6])
    for _ in range(150):
        cmd = ["SORT", "l"]
        if rng.random() < 0.5:
            cmd += ["BY", rng.choice(["w_*", "h_*->f", "nosort", "missing_*"])]
        if rng.random() < 0.5:
            cmd += ["LIMIT", str(rng.randint(-3, 40)), str(rng.randint(-2, 40))]
        for _ in range(rng.randint(0, 2)):
            cmd += ["GET", rng.choice(["#", "w_*", "h_*->f", "nope_*"])]
        if rng.random() < 0.4:
            cmd.append(rng.choice(["ASC", "DESC"]))
        if rng.random() < 0.6:
            cmd.append("ALPHA")
        store = rng.random() < 0.3
        if store:
            cmd += ["STORE", "dst"]
        diff(*cmd)
        if store:
            diff("LRANGE", "dst", "0", "-1")


def test_sets_and_sorted_sets_by_patterns(diff):
    diff.same(("SADD", "s", "a", "b", "c", "d", "10", "9"),
              ("ZADD", "z", "5", "a", "4", "b", "3", "c", "2", "d", "1", "10", "0", "9"),
              ("MSET", "w_a", "2", "w_b", "1", "w_10", "2", "w_9", "-4", "o_a", "A", "o_9", "N"),
              ("HSET", "h_c", "f", "7"))
    for key in ["s", "z"]:
        diff("SORT", key, "BY", "w_*")  # missing weights are 0, ties by element bytes
        diff("SORT", key, "BY", "w_*", "DESC", "GET", "o_*", "GET", "#")
        diff("SORT", key, "BY", "h_*->f", "LIMIT", "1", "3")
        diff("SORT", key, "BY", "w_*", "LIMIT", "2", "2", "STORE", "d")
        diff("LRANGE", "d", "0", "-1")
        diff("SORT", key, "ALPHA", "GET", "#", "GET", "w_*", "GET", "h_*->f")


def test_expired_pattern_keys_are_missing(diff):
    diff.same(("RPUSH", "l", "a", "b", "c"),
              ("MSET", "w_a", "3", "w_b", "2", "w_c", "1", "o_a", "A", "o_b", "B"),
              ("PEXPIRE", "w_c", "1"), ("PEXPIRE", "o_a", "1"))
    import time
    time.sleep(0.02)
    diff("SORT", "l", "BY", "w_*", "GET", "#", "GET", "o_*")
    diff("EXISTS", "w_c", "o_a")


def _keyspace_stats(conn) -> tuple[int, int]:
    info = dict(line.split(b":", 1) for line in conn.command("INFO", "stats").split(b"\r\n")
                if line.startswith(b"keyspace_"))
    return int(info[b"keyspace_hits"]), int(info[b"keyspace_misses"])


def test_keyspace_hits_and_misses_like_lookup_key_read(diff):
    diff.same(("RPUSH", "l", "a", "b", "c"), ("MSET", "w_a", "1", "w_b", "x", "o_c", "C"),
              ("HSET", "h_a", "f", "1"))
    for cmd in [("SORT", "l", "BY", "w_*", "ALPHA", "GET", "o_*", "GET", "h_*->f", "GET", "#"),
                ("SORT", "l", "BY", "h_*->f"), ("SORT", "missing"), ("SORT", "l", "BY", "nosort"),
                ("SORT", "l", "BY", "w_*"), ("SORT", "l", "ALPHA", "GET", "o_*", "STORE", "d")]:
        diff("CONFIG", "RESETSTAT")
        diff(*cmd)
        assert _keyspace_stats(diff.mine) == _keyspace_stats(diff.real), cmd



@pytest.mark.parametrize("pattern", ["#\x00x", "o_\x00*", "o_*\x00", "h_*\x00->g", "h_*->\x00g",
                                     "h_*->g\x00", "o_*->\x00", "\x00*"])
def test_patterns_are_scanned_as_c_strings(diff, pattern):
    # '#', '*' and '->' are found with strchr()/strstr(): not past an embedded NUL.
    diff.same(("RPUSH", "l", "a", "b"), ("MSET", "o_a", "A", "o_b\x00", "B0", "o_\x00a", "NA"),
              ("HSET", "h_a", "g", "ga", "\x00g", "nulg", "g\x00", "gnul"),
              ("HSET", "h_a\x00->g", "g", "x"), ("SET", "\x00a", "Z"))
    diff("SORT", "l", "ALPHA", "GET", pattern, "GET", "#")
    diff("SORT", "l", "BY", pattern, "ALPHA", "DESC")
    diff("SORT", "l", "BY", pattern, "GET", pattern)
