"""DEBUG DIGEST and DEBUG DIGEST-VALUE against the real redis-server: the same commands
on both servers, then the digests compared byte for byte (debug.c's
computeDatasetDigest() and xorObjectDigest()), for every type and encoding, with
expiries, over several databases, and again after DEBUG RELOAD.
"""

import shutil
import time
from pathlib import Path

import pytest

from conftest import VERMILION, RawConnection, start_in_dir

ZEROS = b"+" + b"0" * 40 + b"\r\n"
# An absolute expiry far in the future (2100-01-01): both servers hold the same value.
FAR = 4102444800000


def check(diff, *keys) -> bytes:
    """DEBUG DIGEST and DIGEST-VALUE of keys (plus a missing key) compared; ours."""
    digest = diff("DEBUG", "DIGEST")
    diff("DEBUG", "DIGEST-VALUE", *keys, "no-such-key")
    return digest


def check_reload(diff, *keys) -> None:
    """The digests compared, then again after DEBUG RELOAD on both: unchanged."""
    before = check(diff, *keys)
    diff("DEBUG", "RELOAD")
    assert check(diff, *keys) == before


def numbered(prefix: str, count: int, start: int = 0) -> list[str]:
    return [f"{prefix}{i}" for i in range(start, start + count)]


def test_empty_dataset_is_forty_zeros(diff):
    assert diff("DEBUG", "DIGEST") == ZEROS
    assert diff("DEBUG", "DIGEST-VALUE", "missing") == b"*1\r\n" + ZEROS
    assert diff("DEBUG", "DIGEST-VALUE") == b"*0\r\n"
    diff.same("SET k v", "DEL k")  # a database emptied again digests as never used
    assert diff("DEBUG", "DIGEST") == ZEROS


def test_wrong_arity_replies_like_redis(diff):
    diff("DEBUG", "DIGEST", "extra")


def test_digest_is_a_status_reply_in_resp3_too(diff):
    diff.hello3()
    diff.same("SET k v", "RPUSH l a b")
    check(diff, "k", "l")


STRINGS = [
    "SET embstr hello",
    ["SET", "raw", "x" * 100],
    ["SET", "binary", b"\x00\xff\r\n\x00"],
    "SET empty ''",
    "SET int 12345",
    "SET negative -42",
    "SET zero 0",
    "SET max 9223372036854775807",
    "SET min -9223372036854775808",
    "SET notint 007",
    "SET float 1.5",
    "SET counter 10", "INCRBY counter 5",
    "SET appended abc", "APPEND appended def",
    "SET ranged hello", "SETRANGE ranged 10 x",
    "SET f 10.5", "INCRBYFLOAT f 0.1",
    "SETBIT bits 100 1",
    "PFADD hll a b c",
]


def test_strings_of_every_encoding(diff):
    diff.same(*STRINGS)
    assert diff("OBJECT", "ENCODING", "int") == b"$3\r\nint\r\n"
    assert diff("OBJECT", "ENCODING", "raw") == b"$3\r\nraw\r\n"
    assert diff("OBJECT", "ENCODING", "embstr") == b"$6\r\nembstr\r\n"
    check_reload(diff, "embstr", "raw", "binary", "empty", "int", "negative", "max",
                 "min", "notint", "float", "counter", "appended", "ranged", "f", "bits", "hll")


def test_lists_small_large_and_ordered(diff):
    diff.same("RPUSH small a 1 -2 3.5 ''", "LPUSH small head",
              ["RPUSH", "large", *numbered("element-", 2000)],
              ["RPUSH", "big-values", *(["v" * 5000] * 10)],
              "RPUSH ab a b", "RPUSH ba b a", "LSET small 1 changed", "LREM large 0 element-7")
    digest = diff("DEBUG", "DIGEST-VALUE", "ab", "ba")
    assert digest.split(b"\r\n")[1] != digest.split(b"\r\n")[2]  # lists keep their order
    check_reload(diff, "small", "large", "big-values", "ab", "ba")


def test_sets_intset_and_hashtable(diff):
    diff.same("SADD ints 3 1 2 -7 9223372036854775807", "SADD strings a b c",
              "SADD mixed 1 2 x", ["SADD", "large-ints", *map(str, range(1000))],
              ["SADD", "large", *numbered("member-", 1000)], "SREM large member-3")
    assert diff("OBJECT", "ENCODING", "ints") == b"$6\r\nintset\r\n"
    assert diff("OBJECT", "ENCODING", "large-ints") == b"$9\r\nhashtable\r\n"
    check_reload(diff, "ints", "strings", "mixed", "large-ints", "large")


def test_hashes_listpack_and_hashtable(diff):
    pairs = [x for i in range(600) for x in (f"field{i}", str(i * 7))]
    diff.same("HSET small a 1 b -2 c 3.5 d ''", ["HSET", "large", *pairs],
              ["HSET", "long-value", "f", "v" * 100], "HDEL large field3",
              "HINCRBY small a 10", "HINCRBYFLOAT small c 0.25")
    assert diff("OBJECT", "ENCODING", "small") == b"$8\r\nlistpack\r\n"
    assert diff("OBJECT", "ENCODING", "large") == b"$9\r\nhashtable\r\n"
    check_reload(diff, "small", "large", "long-value")


SCORES = ["1.5", "0.1", "-inf", "+inf", "1e300", "-1e300", "0", "-0", "3", "-2.5",
          "1e-300", "123456789012345678", "4.9406564584124654e-324", "0.30000000000000004",
          "-9007199254740993", "1e15", "1e16", "1e17"]


def score_pairs(prefix: str) -> list[str]:
    return [x for i, score in enumerate(SCORES) for x in (score, f"{prefix}{i}")]


def test_sorted_sets_listpack_scores(diff):
    diff.same(["ZADD", "lp", *score_pairs("m")], "ZADD lp 7 42 -3 -17",
              "ZINCRBY lp 0.2 m1", "ZADD neg-zero -0 a")
    assert diff("OBJECT", "ENCODING", "lp") == b"$8\r\nlistpack\r\n"
    check_reload(diff, "lp", "neg-zero")


def test_sorted_sets_skiplist_scores(diff):
    many = [x for i in range(200) for x in (str(i / 3), f"member{i}")]
    diff.same(["ZADD", "sl", *score_pairs("m"), *many], "ZADD sl 7 42 -3 -17",
              "ZINCRBY sl 0.2 m1", ["ZADD", "long-member", "-0", "a", "2.5", "b" * 100])
    assert diff("OBJECT", "ENCODING", "sl") == b"$8\r\nskiplist\r\n"
    assert diff("OBJECT", "ENCODING", "long-member") == b"$8\r\nskiplist\r\n"
    check_reload(diff, "sl", "long-member")


def test_sorted_set_results_of_store_commands(diff):
    diff.same("ZADD a 1 x 2.5 y -inf z", "ZADD b 0.1 x 0.2 y",
              "ZUNIONSTORE u 2 a b WEIGHTS 3 0.5", "ZINTERSTORE i 2 a b AGGREGATE MAX")
    check_reload(diff, "u", "i")


def test_streams(diff):
    diff.same("XADD s 1-1 a 1 b 2", "XADD s 1-2 a 3 b 4", "XADD s 2-0 other field",
              "XADD s 5-9 a -12 b 9223372036854775807", "XADD s 6-0 a '' b x",
              "XDEL s 1-2", "XGROUP CREATE s g 0", "XREADGROUP GROUP g c COUNT 2 STREAMS s >")
    diff.same(*[["XADD", "big", f"{i + 1}-{i % 3}", "n", str(i), "text", "t" * (i % 50)]
                for i in range(500)])
    diff.same("XTRIM big MAXLEN 333", "XDEL big 400-1",
              "XADD emptied 1-1 a b", "XDEL emptied 1-1", "XGROUP CREATE made g $ MKSTREAM")
    check_reload(diff, "s", "big", "emptied", "made")


def test_stream_ids_print_unsigned(diff):
    diff.same("XADD top 18446744073709551614-5 f v",
              "XADD top 18446744073709551615-18446744073709551615 f v")
    check_reload(diff, "top")


def test_stream_groups_do_not_change_the_digest(diff):
    diff.same("XADD s 1-1 a 1")
    before = check(diff, "s")
    diff.same("XGROUP CREATE s g 0", "XREADGROUP GROUP g c STREAMS s >")
    assert check(diff, "s") == before


def test_keys_with_expiry(diff):
    diff.same("SET s v", "RPUSH l a", "SADD set 1", "HSET h f v", "ZADD z 1 m",
              "XADD x 1-1 f v", "SET plain v")
    for key in ("s", "l", "set", "h", "z", "x"):
        diff("PEXPIREAT", key, FAR)
    with_ttl = check(diff, "s", "l", "set", "h", "z", "x", "plain")
    diff("PEXPIREAT", "s", FAR + 1000)  # only the presence of a TTL is digested
    assert check(diff, "s") == with_ttl
    diff("PERSIST", "s")
    assert check(diff, "s") != with_ttl
    diff("PEXPIREAT", "s", FAR)
    check_reload(diff, "s", "l", "set", "h", "z", "x", "plain")


def test_several_databases(diff):
    for db in (0, 1, 5, 15):
        diff("SELECT", db)
        diff.same("SET k v", f"RPUSH list{db} a b", f"ZADD z {db}.5 m")
    diff("SELECT", 3)
    diff.same("SET k v")  # the same key-value in another database changes the digest
    diff("SELECT", 1)
    check_reload(diff, "k", "list1", "z")
    for db in (0, 1, 3, 5, 15):
        diff("SELECT", db)
        diff.same("FLUSHDB")
    assert diff("DEBUG", "DIGEST") == ZEROS


def test_logically_expired_keys_are_still_digested(diff):
    """A key past its expiry that nothing has deleted yet is in the digest, as
    computeDatasetDigest() walks db->dict without lookupKey(); the digest does not
    delete it either."""
    diff.same("DEBUG SET-ACTIVE-EXPIRE 0")
    try:
        soon = int(time.time() * 1000) + 300
        diff.same("SET stays v", "SET goes v", "HSET h f v")
        diff("PEXPIREAT", "goes", soon)
        diff("PEXPIREAT", "h", soon)
        while time.time() * 1000 <= soon + 50:
            time.sleep(0.05)
        check(diff, "goes", "h", "stays")
        assert diff("DBSIZE") == b":3\r\n"
    finally:
        diff.same("DEBUG SET-ACTIVE-EXPIRE 1")


def test_one_dataset_of_everything_survives_reload(diff):
    diff.same(*STRINGS, ["ZADD", "z", *score_pairs("m")], "SADD s 1 2 3", "HSET h a 1",
              "RPUSH l 1 2 3", "XADD x 1-1 a 1", "SELECT 2", "SET other 1")
    diff("PEXPIREAT", "other", FAR)
    check_reload(diff, "other")
    diff("SELECT", 0)
    check(diff, "z", "s", "h", "l", "x", "hll")


@pytest.mark.parametrize("command", ["DEBUG RELOAD", "DEBUG DIGEST"])
def test_digest_does_not_change_the_dataset(diff, command):
    diff.same("SET k v", "ZADD z 1.5 a", command)
    check(diff, "k", "z")


def test_rdb_written_by_redis_digests_the_same_once_loaded(diff, tmp_path):
    """Vermilion keeps small collections packed as the RDB file holds them until first
    read: their digest must not depend on that (and must not unpack them)."""
    diff.same(*STRINGS, ["ZADD", "z", *score_pairs("m")], "SADD ints 1 -2 3",
              "SADD strs a b", "HSET h a 1 b x", "RPUSH l 1 x -3", "XADD x 1-1 a 1 b 2",
              "XADD x 2-2 a 3 b 4", ["ZADD", "big", *[x for i in range(300) for x in (i, i)]])
    diff("PEXPIREAT", "h", FAR)
    keys = ["z", "ints", "strs", "h", "l", "x", "big", "int", "hll"]
    expected = diff("DEBUG", "DIGEST"), diff("DEBUG", "DIGEST-VALUE", *keys)
    dir_reply = diff.real.command("CONFIG", "GET", "dir").split(b"\r\n")
    assert diff.real.command("SAVE") == b"+OK\r\n"
    shutil.copy(Path(dir_reply[4].decode()) / "dump.rdb", tmp_path / "dump.rdb")
    server = start_in_dir(VERMILION, tmp_path, "--enable-debug-command", "yes")
    try:
        conn = RawConnection(server.port)
        for _ in range(2):
            assert conn.command("DEBUG", "DIGEST") == expected[0]
            assert conn.command("DEBUG", "DIGEST-VALUE", *keys) == expected[1]
        conn.close()
    finally:
        server.stop()
