"""RDB snapshots and DUMP/RESTORE exchanged with the real redis-server, both ways."""

import signal
import subprocess
import time

import pytest

import redis

from conftest import VERMILION, RawConnection, free_port, require_binary, start_in_dir


def _vermilion(workdir, *args):
    return start_in_dir(VERMILION, workdir, *args)


def _redis(workdir, *args):
    return start_in_dir(require_binary("redis-server"), workdir, *args)


def _fill_strings(client):
    client.set("small", "1")
    client.set("negative", "-70000")
    client.set("big", "123456789012345")
    client.set("text", "hello")
    client.set("long", "x" * 1000)  # LZF-compressed in the file
    client.set(b"bin\x00\xff", b"\x00\x01\xfe\xff")
    client.set("ttl", "v", px=3_600_000)


def test_sigterm_saves_and_restart_restores(tmp_path):
    ours = _vermilion(tmp_path, "--save", "3600", "1")
    c = ours.client()
    for i in range(500):
        c.set(f"k{i}", i)
    ours.proc.send_signal(signal.SIGTERM)
    assert ours.proc.wait(10) == 0
    ours.log.close()
    again = _vermilion(tmp_path, "--save", "3600", "1")
    try:
        c = again.client()
        assert c.dbsize() == 500
        assert c.get("k499") == b"499"
        assert "DB loaded from disk" in again.log_path.read_text()
    finally:
        again.stop()


def test_bgsave_writes_a_snapshot_while_serving(tmp_path):
    ours = _vermilion(tmp_path)
    try:
        c = ours.client()
        c.mset({f"key:{i}": "v" * 10 for i in range(2000)})
        before = c.lastsave()
        assert c.bgsave() is True
        assert c.set("during", "ok")  # the parent keeps serving
        # LASTSAVE counts seconds: a save within the same second leaves it unchanged, so
        # the end of the child is what tells the save is over.
        deadline = time.time() + 10
        while c.lastsave() == before and c.info("persistence")["rdb_bgsave_in_progress"] \
                and time.time() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "dump.rdb").exists()
    finally:
        ours.stop()
    check = subprocess.run([require_binary("redis-check-rdb"), str(tmp_path / "dump.rdb")],
                           capture_output=True, text=True)
    assert "2000 keys read" in check.stdout or "2001 keys read" in check.stdout, check.stdout


@pytest.mark.parametrize("value", [b"", b"7", b"-32768", b"4294967296", b"hello",
                                   b"z" * 300, bytes(range(256))])
def test_dump_payloads_are_byte_identical_to_redis(vermilion_server, redis_server, value):
    ours, real = vermilion_server.client(), redis_server.client()
    ours.set("k", value)
    real.set("k", value)
    assert ours.dump("k") == real.dump("k")


def test_restore_across_servers_both_ways(vermilion_server, redis_server):
    ours, real = vermilion_server.client(), redis_server.client()
    real.set("from-redis", "x" * 100)
    ours.delete("from-redis")
    assert ours.restore("from-redis", 0, real.dump("from-redis")) in (True, b"OK")
    assert ours.get("from-redis") == b"x" * 100
    ours.set("from-us", "12345")
    real.delete("from-us")
    assert real.restore("from-us", 5000, ours.dump("from-us")) in (True, b"OK")
    assert real.get("from-us") == b"12345" and 0 < real.pttl("from-us") <= 5000


@pytest.mark.parametrize("args", [
    ["RESTORE", "k", "0", "garbage"],
    ["RESTORE", "k", "-1", "x"],
    ["RESTORE", "k", "0", "x", "FREQ", "300"],
    ["RESTORE", "k", "0", "x", "IDLETIME", "-1"],
    ["RESTORE", "k", "0", "x", "BOGUS"],
    ["RESTORE", "exists", "0", "x"],
    ["DUMP", "missing"],
])
def test_restore_errors_match_redis(raw, raw_real, args):
    for conn in (raw, raw_real):
        conn.command("SET", "exists", "1")
    assert raw.command(*args) == raw_real.command(*args)


def test_restore_busykey_and_replace(raw, raw_real):
    for conn in (raw, raw_real):
        conn.command("SET", "src", "v")
    payload = raw_real.command("DUMP", "src").split(b"\r\n", 1)[1][:-2]
    for conn in (raw, raw_real):
        assert conn.command("RESTORE", "src", "0", payload) == \
            b"-BUSYKEY Target key name already exists.\r\n"
        assert conn.command("RESTORE", "src", "0", payload, "REPLACE") == b"+OK\r\n"
        assert conn.command("RESTORE", "gone", "1", payload, "ABSTTL") == b"+OK\r\n"
        assert conn.command("EXISTS", "gone") == b":0\r\n"


def _fill_collections(c):
    """Small and large values of each type, so every encoding Redis 7.0 picks is used:
    listpack/quicklist lists, listpack/hashtable hashes, intset/hashtable sets,
    listpack/skiplist sorted sets."""
    c.rpush("list:small", "a", "1", "-300", "b" * 70)
    c.rpush("list:big", *[f"item-{i}" for i in range(3000)])
    c.hset("hash:small", mapping={"f1": "v1", "f2": "12345"})
    c.hset("hash:big", mapping={f"field-{i}": f"value-{i}" for i in range(300)})
    c.sadd("set:ints", 1, 2, 3, -70000, 2**40)
    c.sadd("set:big", *[f"member-{i}" for i in range(600)])
    c.sadd("set:strings", "x", "y")
    c.zadd("zset:small", {"a": 1, "b": 2.5, "c": -3, "d": float("inf")})
    c.zadd("zset:big", {f"m{i}": i / 7 for i in range(300)})
    c.expire("list:small", 3600)


def _collections_of(c):
    return {
        "list:small": c.lrange("list:small", 0, -1),
        "list:big": c.lrange("list:big", 0, -1),
        "hash:small": c.hgetall("hash:small"),
        "hash:big": c.hgetall("hash:big"),
        "set:ints": c.smembers("set:ints"),
        "set:big": c.smembers("set:big"),
        "set:strings": c.smembers("set:strings"),
        "zset:small": c.zrange("zset:small", 0, -1, withscores=True),
        "zset:big": c.zrange("zset:big", 0, -1, withscores=True),
        "ttl": c.ttl("list:small") > 0,
        # Redis 7.0 picks these compact encodings on load: both servers must agree.
        "encodings": [c.object("encoding", k) for k in ("hash:small", "set:ints", "zset:small")],
    }


def _strings_of(c):
    return {k: (c.get(k), c.pttl(k) > 0) for k in c.keys("*")}


def _save_with(start, tmp_path, fill, state, **client_options):
    """Start a server in tmp_path, fill it, SAVE, stop it: the state it had."""
    server = start(tmp_path)
    try:
        c = server.client(**client_options)
        fill(c)
        expected = state(c)
        c.save()
    finally:
        server.stop()
    if start is _vermilion:  # Redis's own checker accepts every file we write
        check = subprocess.run([require_binary("redis-check-rdb"), str(tmp_path / "dump.rdb")],
                               capture_output=True, text=True)
        assert "RDB looks OK" in check.stdout, check.stdout
    return expected


def _load_with(start, tmp_path, state, **client_options):
    server = start(tmp_path)
    try:
        return state(server.client(**client_options))
    finally:
        server.stop()


DIRECTIONS = {"redis-to-vermilion": (_redis, _vermilion), "vermilion-to-redis": (_vermilion, _redis)}
DATASETS = {"strings": (_fill_strings, _strings_of), "collections": (_fill_collections, _collections_of)}


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_rdb_files_cross_servers(tmp_path, dataset, direction):
    (writer, reader), (fill, state) = DIRECTIONS[direction], DATASETS[dataset]
    expected = _save_with(writer, tmp_path, fill, state)
    assert _load_with(reader, tmp_path, state) == expected


@pytest.mark.parametrize("key", ["list:small", "list:big", "hash:small", "hash:big",
                                 "set:ints", "set:big", "zset:small", "zset:big"])
def test_collection_dump_restores_on_redis_and_back(vermilion_server, redis_server, key):
    ours, real = vermilion_server.client(), redis_server.client()
    ours.flushall()
    real.flushall()
    _fill_collections(ours)
    _fill_collections(real)
    expected = _collections_of(real)[key]
    payload = ours.dump(key)
    real.delete(key)
    real.restore(key, 0, payload)
    assert _collections_of(real)[key] == expected
    payload = real.dump(key)
    ours.delete(key)
    ours.restore(key, 0, payload)
    assert _collections_of(ours)[key] == expected


def test_debug_reload_round_trips_the_dataset(vermilion_server):
    c = vermilion_server.client()
    c.flushall()
    _fill_collections(c)
    c.set("s", "v", px=600_000)
    before = _collections_of(c)
    assert c.execute_command("DEBUG", "RELOAD") in (b"OK", "OK", True)
    assert _collections_of(c) == before
    assert c.get("s") == b"v" and 0 < c.pttl("s") <= 600_000


def _fill_stream(c):
    for i in range(1, 300):
        c.xadd("events", {"n": i, "payload": "x" * (i % 7)}, id=f"{i}-1")
    c.xgroup_create("events", "workers", id="0")
    c.xreadgroup("workers", "alice", {"events": ">"}, count=5)
    c.xack("events", "workers", "2-1")
    c.xdel("events", "10-1")


def _stream_state(c):
    groups = [{k: v for k, v in g.items() if k != "lag" or v is not None}
              for g in c.xinfo_groups("events")]
    pending = c.xpending_range("events", "workers", "-", "+", 100)
    return (c.xrange("events"), groups, [(p["message_id"], p["consumer"]) for p in pending])


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_streams_with_groups_cross_rdb(tmp_path, direction):
    writer, reader = DIRECTIONS[direction]
    expected = _save_with(writer, tmp_path, _fill_stream, _stream_state, decode_responses=True)
    assert _load_with(reader, tmp_path, _stream_state, decode_responses=True) == expected


LIBRARY = "#!lua name=mylib\nredis.register_function('hello', function(keys, args) return 'hi ' .. args[1] end)"


def _load_library(c):
    c.execute_command("FUNCTION", "LOAD", LIBRARY)
    c.set("k", "v")


def _library_state(c):
    return c.execute_command("FCALL", "hello", "0", "there"), c.get("k")


@pytest.mark.parametrize("direction", [*DIRECTIONS, "vermilion-to-vermilion"])
def test_function_libraries_travel_in_the_rdb(tmp_path, direction):
    writer, reader = DIRECTIONS.get(direction, (_vermilion, _vermilion))
    _save_with(writer, tmp_path, _load_library, lambda c: None)
    assert _load_with(reader, tmp_path, _library_state) == (b"hi there", b"v")


def _saved_200k_keys(tmp_path) -> bytes:
    """dump.rdb of 200,000 string keys (a load long enough to be caught); its bytes."""
    ours = _vermilion(tmp_path)
    c = ours.client()
    for start in range(0, 200_000, 20_000):
        c.mset({f"key:{i}": f"value-{i}" for i in range(start, start + 20_000)})
    c.save()
    ours.stop()
    return (tmp_path / "dump.rdb").read_bytes()


def _start_loading(tmp_path, *args):
    """(process, port) of a server loading tmp_path's dump.rdb, pausing to serve
    clients every 4 KB of the file."""
    port = free_port()
    proc = subprocess.Popen([VERMILION, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--dir", str(tmp_path),
                             "--loading-process-events-interval-bytes", "4096", *args],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return proc, port


def _batches_while_loading(port, batch: bytes, replies: int):
    """Send batch on fresh connections until one is accepted, yielding its replies
    each time (a batch runs in one turn of the loop: its replies agree)."""
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = RawConnection(port)
        except OSError:
            time.sleep(0.005)
            continue
        conn.send(batch)
        yield [conn.read_reply() for _ in range(replies)]
        conn.close()


def test_clients_get_loading_while_the_rdb_loads_then_the_data(tmp_path):
    """Start-up loads the RDB while listening: until it is all in, commands get Redis's
    -LOADING error and INFO (allowed while loading) says loading:1; then every key is
    there. The loader pauses every loading-process-events-interval-bytes to serve."""
    _saved_200k_keys(tmp_path)
    proc, port = _start_loading(tmp_path)
    replies = set()
    try:
        batch = b"GET key:199999\r\nINFO persistence\r\n"
        for reply, info in _batches_while_loading(port, batch, 2):
            if reply == b"$12\r\nvalue-199999\r\n":
                break
            replies.add(reply)
            assert b"\r\nloading:1\r\n" in info
        assert replies == {b"-LOADING Redis is loading the dataset in memory\r\n"}
        assert redis.Redis(port=port).dbsize() == 200_000
    finally:
        proc.terminate()
        proc.wait(10)


def test_shutdown_while_loading_never_saves_over_the_file(tmp_path):
    """SHUTDOWN SAVE (allowed while loading) must not write the half-loaded dataset over
    the file being loaded: prepareForShutdown() turns it into NOSAVE, and the server
    exits without finishing the load."""
    snapshot = _saved_200k_keys(tmp_path)
    proc, port = _start_loading(tmp_path, "--save", "3600", "1")
    try:
        # The SHUTDOWN runs in the same turn as the GET that saw -LOADING.
        for (reply,) in _batches_while_loading(port, b"GET key:1\r\nSHUTDOWN SAVE\r\n", 1):
            assert reply.startswith(b"-LOADING"), "the load ended before the probe"
            break
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / "dump.rdb").read_bytes() == snapshot
    again = _vermilion(tmp_path)
    try:
        assert again.client().dbsize() == 200_000
    finally:
        again.stop()


def _introspection_of(c):
    """What can be asked of keys without reading their values, then a read of each."""
    keys = sorted(c.keys("*"))
    return {
        "types": {k: c.type(k) for k in keys},
        "scan hash": sorted(c.scan_iter(_type="hash")),
        "scan list": sorted(c.scan_iter(_type="list")),
        "encodings": {k: c.object("encoding", k) for k in keys},
        "values": _collections_of(c),
    }


def test_small_collections_loaded_at_start_up_save_back_as_they_came(tmp_path):
    """A start-up load keeps small hashes, sorted sets and lists as their listpacks
    until read: untouched, a SAVE writes them back and Redis loads the same dataset;
    TYPE, SCAN TYPE, OBJECT ENCODING and every read answer as Redis does."""
    expected = _save_with(_redis, tmp_path, _fill_collections, _collections_of)
    ours = _vermilion(tmp_path, "--save", "3600", "1")
    try:
        c = ours.client()
        assert c.dbsize() == 9
        c.save()  # nothing read yet: the packed values are written as they were read
    finally:
        ours.stop()
    assert _load_with(_redis, tmp_path, _collections_of) == expected
    assert _load_with(_vermilion, tmp_path, _introspection_of) == \
        _load_with(_redis, tmp_path, _introspection_of)


def test_a_corrupt_listpack_behind_a_valid_checksum_costs_one_error_reply(tmp_path):
    """A blob kept packed is checked when first read: a damaged one (a file written
    without a checksum) gets that command an error; the server keeps serving."""
    real = _redis(tmp_path, "--rdbchecksum", "no")
    try:
        c = real.client()
        c.hset("h", mapping={"field": "value", "other": "thing"})
        c.set("k", "v")
        c.save()
    finally:
        real.stop()
    data = bytearray((tmp_path / "dump.rdb").read_bytes())
    at = data.index(b"field")
    data[at - 1] = 0xF5  # the entry's encoding byte becomes an unknown one
    (tmp_path / "dump.rdb").write_bytes(bytes(data))
    ours = _vermilion(tmp_path)
    try:
        raw = RawConnection(ours.port)
        assert raw.command("TYPE", "h") == b"+hash\r\n"
        for _ in range(2):
            assert raw.command("HGETALL", "h").startswith(b"-ERR Corrupt value for key 'h'")
        assert raw.command("GET", "k") == b"$1\r\nv\r\n"
        assert raw.command("DEL", "h") == b":1\r\n"  # deleting needs no unpacking
        assert raw.command("DBSIZE") == b":1\r\n"
    finally:
        ours.stop()


# Each runs on a server that has just loaded the file, so it meets the values packed.
READS_AFTER_LOAD = [
    ("SORT", "l"), ("SORT", "l", "BY", "w_*->f"),
    ("SORT", "l", "BY", "w_*->f", "GET", "w_*->name"), ("SORT_RO", "l", "ALPHA", "DESC"),
    ("GEOPOS", "g", "a", "b"), ("GEODIST", "g", "a", "b", "km"),
    ("GEOHASH", "g", "a"), ("GEOSEARCH", "g", "FROMMEMBER", "a", "BYRADIUS", "500", "km", "ASC"),
    ("ZRANGE", "g", "0", "-1", "WITHSCORES"), ("LRANGE", "l", "0", "-1"), ("HGETALL", "w_2"),
    ("TYPE", "w_1"), ("EXISTS", "l", "g"), ("SCAN", "0", "TYPE", "zset"),
    ("OBJECT", "ENCODING", "g"), ("DUMP", "w_1"),
    ("DEL", "l", "w_3"),  # last: Redis answers them all from one load
]


def _fill_for_reads(c):
    c.rpush("l", 3, 1, 2)
    for i, (weight, name) in enumerate([(30, "c"), (10, "a"), (20, "b")], start=1):
        c.hset(f"w_{i}", mapping={"f": weight, "name": name})
    c.geoadd("g", [13.361389, 38.115556, "a", 15.087269, 37.502669, "b"])


def test_reads_of_values_loaded_packed_match_redis(tmp_path):
    """SORT (BY/GET through hashes), GEO, range reads and key commands meet values a
    start-up load kept packed: every reply is Redis's on the same file."""
    _save_with(_redis, tmp_path, _fill_for_reads, lambda c: None)
    real = _redis(tmp_path)
    try:
        expected = []
        for command in READS_AFTER_LOAD:
            conn = RawConnection(real.port)
            expected.append(conn.command(*command))
            conn.close()
    finally:
        real.stop()
    for command, reply in zip(READS_AFTER_LOAD, expected):
        ours = _vermilion(tmp_path)
        try:
            assert RawConnection(ours.port).command(*command) == reply, command
        finally:
            ours.stop()



# Every command meets a key of its own, untouched since the load; after a write, a full
# read of the key shows what the write left.
PACKED_FIRST_COMMANDS = {
    "h": ("HGETALL", [
        "HGET {k} f1", "HMGET {k} f1 nope f2", "HKEYS {k}", "HVALS {k}", "HLEN {k}",
        "HEXISTS {k} f2", "HSTRLEN {k} f1", "HSCAN {k} 0", "HINCRBY {k} n 5",
        "HINCRBYFLOAT {k} n 1.5", "HSET {k} f9 v9", "HDEL {k} f1", "HSETNX {k} f1 z",
        "OBJECT ENCODING {k}", "COPY {k} {k}y", "EXPIRE {k} 100", "SORT {k}", "LLEN {k}"]),
    "z": ("ZRANGE", [
        "ZSCORE {k} a", "ZMSCORE {k} a zz b", "ZRANK {k} b", "ZREVRANK {k} b", "ZCARD {k}",
        "ZCOUNT {k} -inf +inf", "ZRANGEBYSCORE {k} 1 2", "ZRANGEBYLEX {k} - +",
        "ZINCRBY {k} 2 a", "ZADD {k} 9 q", "ZREM {k} a", "ZPOPMIN {k}", "ZPOPMAX {k} 2",
        "ZSCAN {k} 0", "ZINTER 1 {k} WITHSCORES", "ZREMRANGEBYRANK {k} 0 0", "SORT {k}",
        "GEOPOS {k} a"]),
    "l": ("LRANGE", [
        "LLEN {k}", "LINDEX {k} 1", "LPOS {k} b", "LPOP {k}", "RPOP {k} 2", "LPUSH {k} z",
        "LSET {k} 0 q", "LINSERT {k} BEFORE b n", "LREM {k} 1 a", "LTRIM {k} 1 -1",
        "LMOVE {k} {k} LEFT RIGHT", "SORT {k} ALPHA", "BLPOP {k} 1", "LMPOP 1 {k} LEFT",
        "GET {k}", "APPEND {k} x"]),
}
_FULL_READS = {"HGETALL": "HGETALL {k}", "ZRANGE": "ZRANGE {k} 0 -1 WITHSCORES",
               "LRANGE": "LRANGE {k} 0 -1"}


def _fill_packable(c):
    for prefix, (_, commands) in PACKED_FIRST_COMMANDS.items():
        for i in range(len(commands)):
            key = f"{prefix}{i}"
            if prefix == "h":
                c.hset(key, mapping={"f1": "v1", "f2": "22", "n": "3"})
            elif prefix == "z":
                c.zadd(key, {"a": 1, "b": 2, "c": 2})
            else:
                c.rpush(key, "a", "b", "7", "a")


def _first_commands_on(client):
    conn = RawConnection(client.connection_pool.connection_kwargs["port"])
    replies = []
    for prefix, (read, commands) in PACKED_FIRST_COMMANDS.items():
        for i, command in enumerate(commands):
            key = f"{prefix}{i}"
            replies.append((command, conn.command(*command.format(k=key).split())))
            replies.append((read, conn.command(*_FULL_READS[read].format(k=key).split())))
    return replies


def test_first_command_on_each_packed_collection_answers_as_redis(tmp_path):
    _save_with(_redis, tmp_path, _fill_packable, lambda c: None)
    assert _load_with(_vermilion, tmp_path, _first_commands_on) == \
        _load_with(_redis, tmp_path, _first_commands_on)


def test_restore_idletime_and_freq_set_the_access_data(diff):
    # objectSetLRUOrLFU(): IDLETIME under an LRU policy, FREQ under an LFU one.
    try:
        diff.same("SET foo bar", "CONFIG SET maxmemory-policy allkeys-lru")
        payload = diff.mine.command("DUMP", "foo").split(b"\r\n", 1)[1][:-2]
        for conn in diff.conns:
            conn.command("DEL", "foo")
            assert conn.command("RESTORE", "foo", "0", payload, "IDLETIME", "1000") == b"+OK\r\n"
            assert 1000 <= int(conn.command("OBJECT", "IDLETIME", "foo")[1:-2]) <= 1010
        diff("GET", "foo")
        diff.same("DEL foo", "CONFIG SET maxmemory-policy allkeys-lfu")
        diff("RESTORE", "foo", "0", payload, "FREQ", "100")
        diff.same("OBJECT FREQ foo", "GET foo")  # (GET may bump the counter: not compared after)
        diff("RESTORE", "foo", "0", payload, "FREQ", "7", "REPLACE")
        diff("OBJECT", "FREQ", "foo")
    finally:
        diff.same("CONFIG SET maxmemory-policy noeviction")
