"""DEBUG subcommands (debug.c) that Redis's own test suite relies on, compared with the
real redis-server: byte for byte where the reply does not carry addresses or hashes,
otherwise by the facts the suite reads out of it."""

import re

from conftest import RawConnection, require_binary, start_in_dir, VERMILION


def _address(raw, key) -> bytes:
    return raw.command("DEBUG", "OBJECT", key).split()[1]


def test_debug_object_address_survives_incr_in_place(diff):
    # incrDecrCommand() changes an unshared integer object in place: DEBUG OBJECT's
    # "Value at:" stays (incr.tcl "INCR can modify objects in-place").
    def same_address(conn):
        conn.command("SET", "foo", "20000")
        conn.command("INCR", "foo")
        old = _address(conn, "foo")
        conn.command("INCR", "foo")
        return old.startswith(b"at:") and old == _address(conn, "foo")

    assert same_address(diff.mine) and same_address(diff.real)
    diff("DEBUG", "OBJECT", "nosuchkey")


def test_debug_htstats_key_errors_and_empty_db(diff):
    diff.same("DEBUG HTSTATS-KEY nosuch",
              "HSET small a b",
              "DEBUG HTSTATS-KEY small",  # listpack: no hash table
              "SADD ints 1 2 3",
              "DEBUG HTSTATS-KEY ints",  # intset
              "SET s x",
              "DEBUG HTSTATS-KEY s",
              "DEBUG HTSTATS 99",
              "DEBUG HTSTATS x",
              "SELECT 5",
              "DEBUG HTSTATS 5",
              "SET k v",
              "DEBUG HTSTATS-KEY k")
    diff.hello3()
    diff("DEBUG", "HTSTATS", "6")  # a verbatim string in RESP3


def test_debug_htstats_key_describes_a_hashtable(diff):
    # The chains depend on each server's hash function: compare what set.tcl reads.
    members = ["m:%d" % i for i in range(200)]
    facts = []
    for conn in diff.conns:
        conn.command("SADD", "big", *members)
        conn.command("HSET", "h", "f", "v" * 100)  # a long value: hashtable
        conn.command("ZADD", "z", *[x for i, m in enumerate(members) for x in (i, m)])
        for key in ("big", "h", "z"):
            text = conn.command("DEBUG", "HTSTATS-KEY", key).decode()
            assert text.startswith("$") and "Hash table 0 stats (main hash table):" in text
            # Redis may be caught rehashing: the elements are split over two tables.
            facts.append((key, sum(map(int, re.findall(r"number of elements: (\d+)", text))),
                          int(re.search(r"different slots: (\d+)", text).group(1)) > 1,
                          int(re.search(r"max chain length: (\d+)", text).group(1)) >= 1))
    assert facts[:3] == facts[3:]


def _loadaof_scenario(port):
    conn = RawConnection(port)
    try:
        out = [conn.command("CONFIG", "SET", "appendonly", "yes")]
        while True:  # the first rewrite (the base) done, as waitForBgrewriteaof
            info = conn.command("INFO", "persistence")
            if b"aof_rewrite_in_progress:0" in info and b"aof_rewrite_scheduled:0" in info:
                break
        for command in (["SET", "foo", "bar", "EX", "100"], ["SET", "foo", "bar2", "KEEPTTL"],
                        ["SET", "gone", "x", "EX", "100"], ["GETEX", "gone", "PERSIST"],
                        ["RPUSH", "l", "a", "b"], ["SELECT", "3"], ["SADD", "s", "m"],
                        ["SELECT", "0"], ["DEBUG", "LOADAOF"], ["GET", "foo"],
                        ["TTL", "gone"], ["LRANGE", "l", "0", "-1"], ["DBSIZE"],
                        ["SELECT", "3"], ["SMEMBERS", "s"]):
            out.append(conn.command(*command))
        ttl = int(conn.command("SELECT", "0") and conn.command("TTL", "foo")[1:-2])
        out.append(90 < ttl <= 100)
        out.append(conn.command("INFO", "persistence").split(b"rdb_changes_since_last_save:")[1]
                   .split(b"\r\n")[0])
        return out
    finally:
        conn.close()


def test_debug_loadaof_reloads_the_append_only_file(tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "r").mkdir()
    mine = start_in_dir(VERMILION, tmp_path / "v", "--enable-debug-command", "yes")
    real = start_in_dir(require_binary("redis-server"), tmp_path / "r",
                        "--enable-debug-command", "yes")
    try:
        assert _loadaof_scenario(mine.port) == _loadaof_scenario(real.port)
    finally:
        mine.stop()
        real.stop()


def test_debug_reload_encodes_by_the_current_limits(diff):
    # rdbLoadObject() converts what it loads by the server's settings (zset.tcl "ZSCORE
    # after a DEBUG RELOAD - skiplist" reloads under zset-max-ziplist-entries 0).
    try:
        diff.same("ZADD z 1 a 2 b", "HSET h f v", "SADD s 1 2 3", "SADD t a b",
                  "CONFIG SET zset-max-ziplist-entries 0",
                  "CONFIG SET zset-max-ziplist-value 0",
                  "CONFIG SET hash-max-listpack-entries 0",
                  "DEBUG RELOAD",
                  "OBJECT ENCODING z", "OBJECT ENCODING h", "OBJECT ENCODING s",
                  "ZRANGE z 0 -1 WITHSCORES",
                  "CONFIG SET zset-max-ziplist-entries 128",
                  "CONFIG SET zset-max-ziplist-value 64",
                  "CONFIG SET hash-max-listpack-entries 512",
                  "CONFIG SET set-max-intset-entries 2",
                  "DEBUG RELOAD",
                  "OBJECT ENCODING z", "OBJECT ENCODING h", "OBJECT ENCODING s",
                  "OBJECT ENCODING t")
    finally:
        diff.same("CONFIG SET zset-max-ziplist-entries 128", "CONFIG SET zset-max-ziplist-value 64",
                  "CONFIG SET hash-max-listpack-entries 512", "CONFIG SET set-max-intset-entries 512")


def test_debug_protocol_replies_of_every_type(diff):
    types = ["string", "integer", "double", "bignum", "null", "array", "set", "map",
             "attrib", "push", "verbatim", "true", "false", "nosuch"]
    diff.both_protocols(*[f"DEBUG PROTOCOL {name}" for name in types])
