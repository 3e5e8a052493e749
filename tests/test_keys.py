"""Generic key commands (commands/keys.py, keyspace/scan.py): behaviour over RESP2 and
RESP3, and replies compared byte for byte with redis-server on the same sequences."""

import time

import pytest

from conftest import sort_lines, start_vermilion


def scan_all(client, count=10, **kw):
    return list(client.scan_iter(count=count, **kw))


# -- flushing, DBSIZE, DEL, EXISTS -------------------------------------------------------------


def test_flush_commands_exact(diff):
    diff.same(
        ("SET", "a", "1"), ("DBSIZE",), ("FLUSHDB",), ("DBSIZE",),
        ("SET", "a", "1"), ("FLUSHDB", "ASYNC"), ("FLUSHDB", "sync"), ("FLUSHDB", "lazy"),
        ("FLUSHDB", "ASYNC", "SYNC"), ("FLUSHALL", "x"), ("FLUSHALL", "SYNC", "x"),
        ("FLUSHALL", "async"), ("FLUSHALL",), ("DBSIZE", "x"))


def test_flushdb_only_flushes_the_selected_db(diff):
    for conn in diff.conns:
        conn.command("SELECT", "1")
    diff.same(
        ("SET", "one", "1"), ("SELECT", "0"), ("SET", "zero", "0"), ("SET", "zero2", "0"),
        ("FLUSHDB",), ("DBSIZE",), ("SELECT", "1"), ("DBSIZE",), ("FLUSHALL",), ("DBSIZE",))
    for conn in diff.conns:
        conn.command("SELECT", "0")


def test_flushall_and_dbsize(r):
    r.mset({"a": 1, "b": 2, "c": 3})
    assert r.dbsize() == 3
    assert r.flushall() is True
    assert r.dbsize() == 0
    r.set("x", 1)
    assert r.flushdb(asynchronous=True) is True
    assert r.dbsize() == 0


def test_del_unlink_exists(r):
    r.mset({"a": 1, "b": 2, "c": 3})
    assert r.exists("a", "a", "b", "nope") == 3
    assert r.delete("a", "a", "nope") == 1
    assert r.unlink("b", "c", "b") == 2
    assert r.exists("a", "b", "c") == 0
    r.rpush("list", "x")
    assert r.delete("list") == 1


def test_del_exists_exact(diff):
    diff.same(
        ("SET", "a", "1"), ("SET", "b", "2"), ("EXISTS", "a", "a", "b", "zz"),
        ("DEL", "a", "zz", "a"), ("UNLINK", "b"), ("UNLINK", "b"), ("DEL",), ("EXISTS",),
        ("TOUCH", "a"), ("SET", "c", "x"), ("TOUCH", "c", "c", "d"))


# -- TYPE and OBJECT ---------------------------------------------------------------------------


def test_type_of_every_family(diff):
    diff.same(
        ("SET", "s", "v"), ("RPUSH", "l", "a"), ("HSET", "h", "f", "v"), ("SADD", "st", "m"),
        ("ZADD", "z", "1", "m"),
        ("TYPE", "s"), ("TYPE", "l"), ("TYPE", "h"), ("TYPE", "st"), ("TYPE", "z"),
        ("TYPE", "missing"), ("TYPE",), ("TYPE", "a", "b"))


def test_object_string_encodings(diff):
    values = ["123", "-9223372036854775808", "9223372036854775807", "9223372036854775808",
              "0", "-0", "01", "+1", " 1", "1.5", "x" * 44, "x" * 45, "1" * 21, ""]
    for i, value in enumerate(values):
        diff.same(("SET", f"k{i}", value), ("OBJECT", "ENCODING", f"k{i}"),
                  ("OBJECT", "REFCOUNT", f"k{i}"))
    diff.same(
        ("SET", "n", "9999"), ("OBJECT", "REFCOUNT", "n"),
        ("SET", "n", "10000"), ("OBJECT", "REFCOUNT", "n"),
        ("RPUSH", "l", "a"), ("OBJECT", "ENCODING", "l"), ("OBJECT", "REFCOUNT", "l"))


# How the string was built decides its encoding: in place (APPEND, SETRANGE, SETBIT,
# BITFIELD, BITOP, PFADD/PFMERGE) makes it raw whatever it holds, INCRBYFLOAT embstr;
# RENAME/COPY/MOVE/SWAPDB keep it, any other write of the key decides it anew.
BUILT_STRINGS = [
    ["SET k 12", "APPEND k 3"], ["APPEND k 12"], ["SET k abc", "APPEND k ''"],
    ["SETRANGE k 0 12"], ["SET k 123", "SETRANGE k 0 9"], ["SET k 123", "SETRANGE k 1 ''"],
    ["SETBIT k 1 1"], ["SET k 1", "SETBIT k 0 0"], ["BITFIELD k SET u8 0 49"],
    ["SET k 5", "BITFIELD k GET u8 0"], ["SET a 1", "SET b 2", "BITOP OR k a b"],
    ["INCRBYFLOAT k 3"], ["SET k 2", "INCRBYFLOAT k 1"], ["INCRBYFLOAT k 1.5"],
    ["PFADD k a"], ["PFADD k a", "PFADD k a"], ["PFADD a x", "PFMERGE k a"],
    ["PFADD k a", "PFCOUNT k"],
    ["SET j 12", "APPEND j 3", "RENAME j k"], ["SET j 12", "APPEND j 3", "COPY j k"],
    ["SET k 12", "APPEND k 3", "MOVE k 1", "SELECT 1"],
    ["SET k 12", "APPEND k 3", "SWAPDB 0 1", "SELECT 1"],
    ["SET k 12", "APPEND k 3", "SET k 12"], ["SET k 12", "APPEND k 3", "INCR k"],
    ["SET k 12", "APPEND k 3", "DECR k"], ["SET k 12", "APPEND k 3", "INCRBY k 2"],
    ["SET k 12", "APPEND k 3", "MSET k 7"], ["SET k 12", "APPEND k 3", "GETSET k 5"],
    ["SET k 12", "APPEND k 3", "EXPIRE k 100"], ["SET k 12", "APPEND k 3", "PERSIST k"],
    ["SET k 12", "APPEND k 3", "DEL k", "SET k 1"],
]


@pytest.mark.parametrize("script", BUILT_STRINGS, ids=" / ".join)
def test_object_encoding_of_strings_follows_how_they_were_built(diff, script):
    for conn in diff.conns:
        conn.command("FLUSHALL")
    steps = [tuple(a if a != "''" else "" for a in line.split(" ")) for line in script]
    diff.same(*steps, ("OBJECT", "ENCODING", "k"), ("OBJECT", "REFCOUNT", "k"),
              ("SELECT", "0"))


def test_object_errors_and_help(diff):
    diff.same(
        ("SET", "k", "v"),
        ("OBJECT", "ENCODING", "missing"), ("OBJECT", "REFCOUNT", "missing"),
        ("OBJECT", "IDLETIME", "missing"), ("OBJECT", "FREQ", "missing"),
        ("OBJECT", "FREQ", "k"), ("OBJECT", "HELP"), ("OBJECT", "help", "x"),
        ("OBJECT", "nope", "k"), ("OBJECT",), ("OBJECT", "ENCODING"),
        ("OBJECT", "ENCODING", "k", "extra"))
    diff.hello3()
    diff.same(("OBJECT", "ENCODING", "missing"), ("OBJECT", "HELP"))


def test_object_idletime_is_a_number(r):
    r.set("k", "v")
    assert r.object("idletime", "k") == 0
    assert r.object("idletime", "missing") is None


def test_object_under_lfu_policy(tmp_path, redis_server):
    server = start_vermilion(tmp_path, ["--maxmemory-policy", "allkeys-lfu"])
    try:
        from conftest import Differential, RawConnection, start_redis

        real_server = start_redis(tmp_path, ["--maxmemory-policy", "allkeys-lfu"])
        try:
            diff = Differential(RawConnection(server.port), RawConnection(real_server.port))
            diff.same(("SET", "k", "v"), ("OBJECT", "IDLETIME", "k"),
                      ("OBJECT", "IDLETIME", "missing"), ("OBJECT", "FREQ", "missing"))
            assert diff.mine.command("OBJECT", "FREQ", "k").startswith(b":")
            diff.mine.close()
            diff.real.close()
        finally:
            real_server.stop()
    finally:
        server.stop()


# -- RENAME, MOVE, COPY -------------------------------------------------------------------------


def test_rename_exact(diff):
    diff.same(
        ("RENAME", "nope", "x"), ("RENAMENX", "nope", "x"), ("RENAME", "nope", "nope"),
        ("SET", "a", "1"), ("RENAME", "a", "a"), ("RENAMENX", "a", "a"),
        ("SET", "b", "2"), ("RENAMENX", "a", "b"), ("RENAME", "a", "b"), ("GET", "b"),
        ("EXISTS", "a"), ("RENAMENX", "b", "c"), ("GET", "c"), ("RENAME", "c"),
        ("RPUSH", "l", "x"), ("RENAME", "l", "c"), ("TYPE", "c"), ("LRANGE", "c", "0", "-1"))


def test_rename_carries_the_ttl(r):
    r.set("src", "v", ex=100)
    r.set("dst", "old", ex=5000)
    assert r.rename("src", "dst")
    assert 90 <= r.ttl("dst") <= 100
    r.set("plain", "v")
    r.set("dst2", "old", ex=5000)
    r.rename("plain", "dst2")
    assert r.ttl("dst2") == -1  # the destination's TTL goes with its old value
    assert r.get("dst2") == b"v"


def test_rename_of_expired_key_is_no_such_key(diff):
    for conn in diff.conns:
        conn.command("SET", "k", "v", "PX", "1")
    time.sleep(0.02)
    diff.same(("RENAME", "k", "x"), ("EXISTS", "x"))


def test_move_exact(diff):
    diff.same(
        ("SET", "k", "v"), ("MOVE", "k", "0"), ("MOVE", "k", "abc"), ("MOVE", "k", "-1"),
        ("MOVE", "k", "16"), ("MOVE", "k", "99999999999"), ("MOVE", "nope", "1"),
        ("MOVE", "k", "1"), ("EXISTS", "k"), ("SET", "k", "again"), ("MOVE", "k", "1"),
        ("SELECT", "1"), ("GET", "k"), ("FLUSHDB",), ("SELECT", "0"))


def test_move_carries_the_ttl(r):
    r.set("k", "v", px=100000)
    assert r.move("k", 2)
    r.execute_command("SELECT", 2)
    try:
        assert 90000 < r.pttl("k") <= 100000
    finally:
        r.flushdb()
        r.execute_command("SELECT", 0)


def test_copy_exact(diff):
    diff.same(
        ("SET", "a", "1"), ("COPY", "a", "a"), ("COPY", "a", "a", "DB", "0"),
        ("COPY", "a", "b"), ("GET", "b"), ("COPY", "a", "b"), ("SET", "a", "2"),
        ("COPY", "a", "b", "REPLACE"), ("GET", "b"), ("COPY", "nope", "b"),
        ("COPY", "a", "b", "DB"), ("COPY", "a", "b", "DB", "x"), ("COPY", "a", "b", "DB", "99"),
        ("COPY", "a", "b", "DB", "-5000000000"), ("COPY", "a", "b", "foo"),
        ("COPY", "a", "a", "DB", "3"), ("COPY", "a", "a", "DB", "3", "REPLACE", "REPLACE"),
        ("SELECT", "3"), ("GET", "a"), ("FLUSHDB",), ("SELECT", "0"),
        ("RPUSH", "l", "x", "y"), ("COPY", "l", "l2"), ("RPUSH", "l2", "z"),
        ("LRANGE", "l", "0", "-1"), ("LRANGE", "l2", "0", "-1"),
        ("HSET", "h", "f", "v"), ("COPY", "h", "h2"), ("HSET", "h2", "g", "w"), ("HLEN", "h"),
        ("SADD", "s", "m"), ("COPY", "s", "s2"), ("SADD", "s2", "n"), ("SCARD", "s"),
        ("ZADD", "z", "1", "m"), ("COPY", "z", "z2"), ("ZADD", "z2", "2", "n"), ("ZCARD", "z"))


def test_copy_carries_the_ttl(r):
    r.set("a", "v", ex=100)
    r.set("b", "old")
    assert r.copy("a", "b", replace=True)
    assert 90 <= r.ttl("b") <= 100
    assert r.ttl("a") > 0


# -- KEYS, RANDOMKEY ----------------------------------------------------------------------------


def test_keys(r):
    r.mset({"foo_a": 1, "foo_b": 2, "foo_c": 3, "key_x": 4, "key_y": 5, "": 6})
    assert sorted(r.keys("foo*")) == [b"foo_a", b"foo_b", b"foo_c"]
    assert sorted(r.keys("*")) == [b"", b"foo_a", b"foo_b", b"foo_c", b"key_x", b"key_y"]
    assert sorted(r.keys("key_[xz]")) == [b"key_x"]
    assert r.keys("nothing*") == []


def test_keys_with_odd_patterns_exact(diff):
    diff.same(("SET", "a[b", "1"), ("SET", "*", "2"), ("SET", "\\", "3"))
    for pattern in ("a\\[b", "[", "\\", "\\*", "a[[]b", "[^a]"):
        diff.same(("KEYS", pattern), mask=sort_lines)


def test_expired_keys_are_hidden_but_counted_by_dbsize(diff):
    # With the active cycle off, expired keys linger: DBSIZE counts them (as Redis does),
    # KEYS/EXISTS/SCAN/TYPE do not show them.
    for conn in diff.conns:
        assert conn.command("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"+OK\r\n"
    try:
        diff.same(("SET", "live", "1"), ("SET", "gone", "1", "PX", "1"),
                  ("SET", "gone2", "1", "PX", "1"))
        time.sleep(0.02)
        diff.same(("DBSIZE",), ("KEYS", "*"), ("KEYS", "g*"), ("DBSIZE",),
                  ("SCAN", "0", "TYPE", "string"), ("DBSIZE",), ("EXISTS", "gone", "gone2"),
                  ("DBSIZE",), ("TYPE", "gone"), ("RANDOMKEY",))
    finally:
        for conn in diff.conns:
            conn.command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_randomkey(r):
    assert r.randomkey() is None
    r.mset({"a": 1, "b": 2, "c": 3})
    seen = {r.randomkey() for _ in range(200)}
    assert seen == {b"a", b"b", b"c"}


# -- SCAN --------------------------------------------------------------------------------------


def test_scan_full_iteration(r):
    keys = {f"key:{i}".encode() for i in range(1000)}
    r.mset({k: 1 for k in keys})
    for count in (1, 7, 100, 5000):
        assert set(scan_all(r, count=count)) == keys


def test_scan_reply_shape(r):
    r.set("a", 1)
    cursor, keys = r.scan(0)
    assert cursor == 0 and keys == [b"a"]
    raw_reply = r.execute_command("SCAN", "0")
    assert raw_reply[0] in (b"0", 0)


def test_scan_match_and_type(r):
    for i in range(200):
        r.set(f"str:{i}", i)
        r.rpush(f"list:{i}", i)
    assert len(set(scan_all(r, match="str:*"))) == 200
    assert len(set(scan_all(r, match="str:1?"))) == 10
    assert len(set(scan_all(r, _type="LIST"))) == 200
    assert set(scan_all(r, _type="list", match="*:5")) == {b"list:5"}
    assert scan_all(r, _type="hash") == []
    assert scan_all(r, _type="nosuchtype") == []


def test_scan_never_misses_keys_while_the_table_grows(r):
    original = {f"orig:{i}".encode() for i in range(2000)}
    r.mset({k: 1 for k in original})
    seen, cursor, added, steps = set(), 0, 0, 0
    while True:
        cursor, keys = r.scan(cursor, count=50)
        seen.update(keys)
        # Grow by more than we read, and churn keys that exist only briefly.
        r.mset({f"new:{added + j}": 1 for j in range(80)})
        r.set("temp", 1)
        r.delete("temp")
        added += 80
        steps += 1
        if cursor == 0 or steps > 1000:
            break
    assert cursor == 0
    assert original <= seen


def test_scan_never_misses_keys_while_the_table_shrinks(r):
    stay = {f"stay:{i}".encode() for i in range(500)}
    go = [f"go:{i}".encode() for i in range(1500)]
    r.mset({k: 1 for k in stay})
    r.mset({k: 1 for k in go})
    seen, cursor = set(), 0
    while True:
        cursor, keys = r.scan(cursor, count=40)
        seen.update(keys)
        if go:
            r.delete(*go[:60])
            del go[:60]
        if cursor == 0:
            break
    assert stay <= seen
    assert not any(k.startswith(b"go:") for k in seen - {f"go:{i}".encode() for i in range(1500)})


def test_many_concurrent_scans_complete_without_misses(r):
    keys = {f"k{i}".encode() for i in range(300)}
    r.mset({k: 1 for k in keys})
    # More interleaved iterations than kept snapshots: evicted ones restart (duplicates
    # allowed) but every one of them still finishes having seen every key.
    iterations = [{"cursor": 0, "seen": set(), "done": False} for _ in range(40)]
    for _ in range(2000):
        pending = [it for it in iterations if not it["done"]]
        if not pending:
            break
        for it in pending[:20]:
            it["cursor"], batch = r.scan(it["cursor"], count=30)
            it["seen"].update(batch)
            it["done"] = it["cursor"] == 0
        for it in pending[20:]:
            it["cursor"], batch = r.scan(it["cursor"], count=30)
            it["seen"].update(batch)
            it["done"] = it["cursor"] == 0
    assert all(it["done"] and it["seen"] == keys for it in iterations)


def test_scan_survives_flushall_mid_iteration(r):
    r.mset({f"old{i}": 1 for i in range(100)})
    cursor, _ = r.scan(0, count=10)
    assert cursor != 0
    r.flushall()
    r.mset({f"new{i}": 1 for i in range(50)})
    seen = set()
    for _ in range(100):
        cursor, batch = r.scan(cursor, count=10)
        seen.update(batch)
        if cursor == 0:
            break
    assert cursor == 0
    assert not any(k.startswith(b"old") for k in seen)
    assert {f"new{i}".encode() for i in range(50)} <= seen


def test_scan_errors_exact(diff):
    diff.same(
        ("SET", "a", "1"),
        ("SCAN", "abc"), ("SCAN", " 1"), ("SCAN", "1 "), ("SCAN", "0x1"),
        ("SCAN", "18446744073709551616"), ("SCAN", "-18446744073709551616"),
        ("SCAN", "+"), ("SCAN", "-"), ("SCAN", "1.5"),
        ("SCAN", "0", "COUNT"), ("SCAN", "0", "COUNT", "0"), ("SCAN", "0", "COUNT", "-3"),
        ("SCAN", "0", "COUNT", "x"), ("SCAN", "0", "COUNT", "99999999999999999999"),
        ("SCAN", "0", "MATCH"), ("SCAN", "0", "TYPE"), ("SCAN", "0", "foo", "bar"),
        ("SCAN", "0", "MATCH", "*", "COUNT", "0"), ("SCAN",),
        ("SCAN", "0", "COUNT", "10", "MATCH", "a"), ("SCAN", "0", "MATCH", "*"),
        ("SCAN", "0", "TYPE", "STRING"), ("SCAN", "0", "TYPE", "list"))


def test_scan_cursor_forms_accepted_like_strtoul(raw, raw_real):
    # Redis parses the cursor with strtoul(): a sign, leading zeros and even an empty
    # string are accepted; the replies then depend on the table layout, so compare
    # only whether each is accepted.
    for cursor in ("", "00", "+0", "-0", "-1", "18446744073709551615", "007"):
        mine, theirs = raw.command("SCAN", cursor), raw_real.command("SCAN", cursor)
        assert mine[:1] == theirs[:1] == b"*", cursor



def test_flushall_saves_when_save_points_are_set(tmp_path):
    # flushAllDataAndResetRDB(): with save points the empty dataset is saved at once and
    # the dirty counter is reset; without them the changes stay counted.
    server = start_vermilion(tmp_path, ["--save", "3600", "1"])
    try:
        client = server.client()
        client.set("key", "value")
        client.flushall()
        assert client.info("persistence")["rdb_changes_since_last_save"] == 0
        assert (tmp_path / "dump.rdb").exists()
        client.close()
    finally:
        server.stop()


def test_flushall_keeps_dirty_without_save_points(r):
    r.set("key", "value")
    r.flushall()
    assert r.info("persistence")["rdb_changes_since_last_save"] > 0


def test_scan_type_none_keeps_keys_expired_by_the_type_lookup(diff):
    # Redis quirk: the TYPE filter's lookup expires the key and reports "none"; the
    # expiry filter after it then finds no TTL left and keeps the key.
    for conn in diff.conns:
        conn.command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        for conn in diff.conns:
            conn.command("SET", "k", "v", "PX", "1")
            conn.command("SET", "live", "v")
        time.sleep(0.02)
        diff.same(("SCAN", "0", "TYPE", "none"), ("DBSIZE",), ("SCAN", "0", "TYPE", "none"),
                  mask=sort_lines)
    finally:
        for conn in diff.conns:
            conn.command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_scan_cursor_guarantee_under_random_churn():
    # Unit level: several interleaved iterations over a dict that keeps changing, with
    # fewer snapshot slots than scanners; every key present from the start to the end of
    # an iteration must have been returned by it.
    import random

    from vermilion.keyspace.scan import Cursors

    rnd = random.Random(5)
    cursors = Cursors(limit=3)
    d = {i: None for i in range(300)}
    next_key = 300
    scanners = []
    finished = 0
    for step in range(4000):
        if len(scanners) < 5:
            scanners.append({"cursor": 0, "seen": set(), "start": set(d), "deleted": set()})
        s = rnd.choice(scanners)
        s["cursor"], batch = cursors.scan(d, s["cursor"], rnd.randint(1, 40))
        s["seen"].update(batch)
        if s["cursor"] == 0:
            must = s["start"] - s["deleted"]
            assert must <= s["seen"]
            scanners.remove(s)
            finished += 1
        for _ in range(rnd.randint(0, 6)):  # churn: add, delete, re-add
            if rnd.random() < 0.5 and d:
                victim = rnd.choice(list(d))
                del d[victim]
                for other in scanners:
                    other["deleted"].add(victim)
            else:
                d[next_key] = None
                next_key += 1
    assert finished > 50


# -- MIGRATE (cluster.c migrateCommand) -------------------------------------------------


def _migrate_scenario(target, closed_port):
    """A function of a source server: MIGRATE to `target` (a real redis-server with
    requirepass "pw"), every reply and the target's view after each step."""
    from conftest import RawConnection

    def run(source):
        src, dst = RawConnection(source.port), RawConnection(target.port)
        out = []
        try:
            dst.command("AUTH", "pw")
            dst.command("FLUSHALL")
            src.command("FLUSHALL")
            host, port = "127.0.0.1", str(target.port)
            auth = ["AUTH", "pw"]
            steps = [
                ["MIGRATE", host, port, "nosuch", "0", "1000", *auth],  # +NOKEY
                ["SET", "k", "v"], ["MIGRATE", host, port, "k", "0", "1000"],  # NOAUTH
                ["MIGRATE", host, port, "k", "0", "1000", "AUTH", "bad"],
                ["MIGRATE", host, port, "k", "0", "1000", "AUTH2", "default", "pw"],
                ["EXISTS", "k"],
                ["SET", "k", "v2"], ["MIGRATE", host, port, "k", "0", "1000", *auth],  # BUSYKEY
                ["MIGRATE", host, port, "k", "0", "1000", "COPY", "REPLACE", *auth],
                ["GET", "k"],
                ["SET", "t", "x", "PX", "100000"], ["RPUSH", "l", "a", "b"],
                ["MIGRATE", host, port, "", "3", "0", *auth, "KEYS", "t", "l", "gone"],
                ["EXISTS", "t", "l"],
                ["MIGRATE", host, port, "k", "0", "1000", "KEYS", "a"],
                ["MIGRATE", host, port, "k", "0", "1000", "BOGUS"],
                ["MIGRATE", host, port, "k", "0", "1000", "AUTH"],
                ["MIGRATE", host, port, "k", "x", "1000"],
                ["MIGRATE", host, port, "k", "0", "zz"],
                ["MIGRATE", host, closed_port, "k", "0", "1000"],
                ["MIGRATE", host, port],
            ]
            for step in steps:
                out.append(src.command(*step))
                out.append(dst.command("SELECT", "0") + dst.command("GET", "k"))
            dst.command("SELECT", "3")
            out.append(dst.command("LRANGE", "l", "0", "-1"))
            out.append(0 < int(dst.command("PTTL", "t")[1:-2]) <= 100000)
            return out
        finally:
            src.close()
            dst.close()

    return run


def test_migrate_matches_redis(diff, tmp_path):
    from conftest import free_port, start_redis

    target = start_redis(tmp_path, ["--requirepass", "pw"])
    try:
        diff.equal(_migrate_scenario(target, str(free_port())))
    finally:
        target.stop()


def test_migrate_keeps_its_connection_to_a_target_like_redis(tmp_path):
    """migrateGetSocket(): the connection to a target stays open (INFO
    migrate_cached_sockets), the next MIGRATE there reuses it and does not SELECT the
    same database again (the target's MONITOR shows it), and one the target dropped is
    replaced on the next MIGRATE, which still succeeds."""
    from conftest import RawConnection, side_by_side, start_redis

    (tmp_path / "target").mkdir()
    target = start_redis(tmp_path / "target")

    def cached(src) -> bytes:
        info = src.command("INFO", "stats")
        return info[info.index(b"migrate_cached_sockets:"):].split(b"\r\n")[0]

    def run(source):
        src, dst = RawConnection(source.port), RawConnection(target.port)
        try:
            dst.command("FLUSHALL")
            port = str(target.port)
            out = [cached(src)]
            monitor = RawConnection(target.port)
            monitor.send(b"MONITOR\r\n")
            monitor.read_reply()
            for key in ("a", "b", "c"):
                src.command("SET", key, "v")
            for key, db in (("a", "4"), ("b", "4"), ("c", "5")):
                out.append(src.command("MIGRATE", "127.0.0.1", port, key, db, "1000"))
            dst.command("ECHO", "end")
            seen = []
            while not seen or b'"ECHO"' not in seen[-1]:
                seen.append(monitor.read_reply())
            monitor.close()
            out.append([line[line.index(b'"'):] for line in seen if b'"SELECT"' in line])
            out.append(cached(src))
            dst.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            src.command("SET", "d", "v")
            out.append(src.command("MIGRATE", "127.0.0.1", port, "d", "5", "1000"))
            out.append([dst.command("SELECT", db) + dst.command("DBSIZE") for db in "45"])
            out.append(cached(src))
            return out
        finally:
            src.close()
            dst.close()

    try:
        mine, theirs = side_by_side(tmp_path, run)
    finally:
        target.stop()
    assert mine == theirs
    assert mine[0] == b"migrate_cached_sockets:0" and mine[-1] == b"migrate_cached_sockets:1"
    assert mine[4] == [b'"SELECT" "4"\r\n', b'"SELECT" "5"\r\n']  # not for "b"


def test_migrate_propagates_del_of_moved_keys(diff, tmp_path):
    # The move is logged as DEL of the moved keys (replicas / AOF never see MIGRATE).
    from conftest import RawConnection, start_redis

    target = start_redis(tmp_path)

    def stream(source):
        src = RawConnection(source.port)
        mon = RawConnection(source.port)
        try:
            src.command("FLUSHALL")
            src.command("MSET", "a", "1", "b", "2", "c", "3")
            mon.send(b"SYNC\r\n")  # the RDB, then the stream: read raw, up to SET end
            while b"connected_slaves:1" not in src.command("INFO", "replication"):
                pass
            src.command("MIGRATE", "127.0.0.1", str(target.port), "", "0", "1000",
                        "REPLACE", "KEYS", "a", "zz", "b")
            src.command("MIGRATE", "127.0.0.1", str(target.port), "c", "0", "1000", "COPY",
                        "REPLACE")
            src.command("SET", "end", "1")
            data = b""
            last = b"$3\r\nend\r\n$1\r\n1\r\n"
            while last not in data:
                data += mon.sock.recv(65536)
            # (up to that SET: the master's periodic PING may follow it in the same read)
            return data[data.index(b"*2\r\n$6\r\nSELECT"):data.index(last) + len(last)]
        finally:
            src.close()
            mon.close()

    try:
        diff.equal(stream)
    finally:
        target.stop()


def test_lazyfreed_objects_counts_what_redis_frees_in_background(vermilion_server, redis_server):
    """UNLINK of a value costlier to free than LAZYFREE_THRESHOLD, and FLUSHALL ASYNC's
    keys, count in INFO lazyfreed_objects; a small value is freed inline."""
    import redis as redis_py

    counts = []
    for server in (vermilion_server, redis_server):
        client = redis_py.Redis(port=server.port)
        client.flushall()
        client.config_resetstat()
        client.sadd("big", *range(1000))
        client.sadd("small", "a", "b")
        client.rpush("biglist", *range(100000))
        client.xadd("tiny", {"a": "b"})
        client.unlink("big", "small", "tiny", "biglist")
        client.mset({"k1": 1, "k2": 2})
        client.flushall(asynchronous=True)
        counts.append(_lazyfreed_once_settled(client))
    assert counts[0] == counts[1] == 3  # the big set, then k1 and k2


def _lazyfreed_once_settled(client, deadline_seconds=5.0):
    """lazyfreed_objects once nothing is pending: Redis's lazyfree thread counts an
    object only after freeing it, so a read right after FLUSHALL ASYNC can come early."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        memory = client.info("memory")
        if memory["lazyfree_pending_objects"] == 0 or time.monotonic() > deadline:
            # read once more: the thread lowers pending just before it raises freed
            return client.info("memory")["lazyfreed_objects"]
        time.sleep(0.01)
