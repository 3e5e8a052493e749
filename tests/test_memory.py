"""Memory accounting (used_memory, MEMORY USAGE / STATS / DOCTOR / PURGE / HELP)."""

import socket
import time

import pytest
import redis

from conftest import VERMILION, RawConnection, start_in_dir, start_vermilion


@pytest.fixture(scope="module")
def msrv(tmp_path_factory):
    server = start_vermilion(tmp_path_factory.mktemp("memory"), ["--enable-debug-command", "yes"])
    yield server
    server.stop()


@pytest.fixture
def m(msrv):
    c = msrv.client()
    c.flushall()
    yield c
    c.flushall()
    c.close()


def used(c) -> int:
    return c.info("memory")["used_memory"]


# -- replies compared with redis-server ---------------------------------------------------------


@pytest.mark.parametrize("cmd", [
    ("MEMORY", "HELP"),
    ("MEMORY", "PURGE"),
    ("MEMORY", "DOCTOR"),
    ("MEMORY", "USAGE", "missing"),
    ("MEMORY", "USAGE", "k", "SAMPLES", "abc"),
    ("MEMORY", "USAGE", "k", "SAMPLES", "-1"),
    ("MEMORY", "USAGE", "k", "SAMPLES"),
    ("MEMORY", "USAGE", "k", "FOO", "1"),
    ("MEMORY", "USAGE", "missing", "SAMPLES", "x"),
    ("MEMORY", "USAGE"),
    ("MEMORY", "STATS", "extra"),
    ("MEMORY", "NOPE"),
])
def test_replies_match_redis(raw, raw_real, cmd):
    for conn in (raw, raw_real):
        conn.command("SET", "k", "v")
    assert raw.command(*cmd) == raw_real.command(*cmd)


def test_doctor_is_verbatim_in_resp3(raw, raw_real):
    for conn in (raw, raw_real):
        conn.command("HELLO", "3")
    assert raw.command("MEMORY", "DOCTOR") == raw_real.command("MEMORY", "DOCTOR")


def test_usage_is_an_integer_that_grows_with_the_value(m):
    m.set("small", "x" * 10)
    m.set("big", "x" * 10_010)
    small, big = m.memory_usage("small"), m.memory_usage("big")
    assert isinstance(small, int) and 0 < small < 200
    assert 9_900 <= big - small <= 10_100
    m.rpush("list", *[b"e" * 20 for _ in range(1000)])
    usage = m.memory_usage("list")
    assert 1000 * 20 < usage < 1000 * 200
    assert m.memory_usage("list", samples=0) == pytest.approx(usage, rel=0.05)
    # A TTL costs its entry.
    m.expire("big", 100)
    assert m.memory_usage("big") > big


def test_stats_has_redis_fields(m, real):
    m.set("k", "v")
    real.set("k", "v")
    mine = m.memory_stats()
    theirs = real.memory_stats()
    assert set(mine) == set(theirs)
    assert set(mine["db.0"]) == set(theirs["db.0"])
    assert mine["keys.count"] == 1
    assert mine["total.allocated"] == used(m)
    assert mine["startup.allocated"] <= mine["total.allocated"] <= mine["peak.allocated"]


def test_memory_fields_names_are_redis_names(msrv, real):
    from vermilion import memory

    redis_fields = set(real.info("memory"))
    c = msrv.client()
    assert c.info("memory")["used_memory"] >= memory.BASE

    class FakeServer:  # memory_fields() only reads these
        dbs = []
        clients = {}
        config = {"maxmemory": 0, "maxmemory-policy": "noeviction"}

        class replicas:  # no backlog, no replicas
            @staticmethod
            def buffer_bytes():
                return 0, 0

        def note_memory_peak(self, used):
            return used

    fields = memory.memory_fields(FakeServer())
    assert set(fields) <= redis_fields
    for name in ("used_memory", "used_memory_human", "used_memory_rss", "used_memory_peak",
                 "used_memory_dataset", "maxmemory", "maxmemory_human", "maxmemory_policy",
                 "mem_fragmentation_ratio", "used_memory_startup", "mem_clients_normal"):
        assert name in fields
    assert fields["used_memory"] == memory.BASE


# -- used_memory follows the data ----------------------------------------------------------------


def test_used_memory_follows_strings(m):
    base = used(m)
    m.set("big", b"x" * 1_000_000)
    grown = used(m) - base
    assert 1_000_000 <= grown <= 1_010_000
    m.set("big", b"x" * 10)  # an overwrite in place (SET's fast path)
    assert used(m) - base < 2000
    m.delete("big")
    assert abs(used(m) - base) < 2000


@pytest.mark.parametrize("kind", ["hash", "list", "set", "zset"])
def test_used_memory_follows_collections(m, kind):
    base = used(m)
    members = [b"member:%06d" % i for i in range(20_000)]
    for start in range(0, 20_000, 5000):
        members_part = members[start:start + 5000]
        if kind == "hash":
            m.hset("c", mapping={x: b"v" * 20 for x in members_part})
        elif kind == "list":
            m.rpush("c", *members_part)
        elif kind == "set":
            m.sadd("c", *members_part)
        else:
            m.zadd("c", {x: i for i, x in enumerate(members_part)})
    grown = used(m) - base
    usage = m.memory_usage("c", samples=0)
    assert grown == pytest.approx(usage, rel=0.15)
    per_member = grown / 20_000
    assert 20 < per_member < 400
    m.delete("c")
    assert abs(used(m) - base) < 4096


def test_accounting_survives_debug_reload_swapdb_and_flush(m):
    base = used(m)
    p = m.pipeline(transaction=False)
    for i in range(5000):
        p.set(f"k:{i}", b"v" * 50)
        p.hset(f"h:{i % 10}", f"f{i}", "x")
    p.execute()
    filled = used(m)
    assert filled - base > 5000 * 100
    m.execute_command("DEBUG", "RELOAD")
    assert used(m) == pytest.approx(filled, rel=0.1)
    m.swapdb(0, 1)
    assert used(m) == pytest.approx(filled, rel=0.1)
    m.swapdb(0, 1)
    m.flushall()
    time.sleep(0.25)  # the cron gives an emptied table back, as tryResizeHashTables
    assert used(m) - base < 4096


def test_keys_loaded_from_rdb_give_their_memory_back_one_by_one(m):
    """A load costs each key as it reads it: deleting the loaded keys one at a time
    (short strings, long strings, every collection) brings used_memory back down."""
    base = used(m)
    p = m.pipeline(transaction=False)
    for i in range(2000):
        p.set(f"short:{i}", b"v" * 10)
        p.set(f"long:{i}", b"w" * 200, ex=1000)
        p.hset(f"h:{i % 50}", f"f{i}", "x")
        p.rpush(f"l:{i % 50}", i)
        p.sadd(f"s:{i % 50}", f"m{i}")
        p.zadd(f"z:{i % 50}", {f"m{i}": i})
    p.execute()
    filled = used(m)
    m.execute_command("DEBUG", "RELOAD")
    assert used(m) - base == pytest.approx(filled - base, rel=0.02)  # costed as written
    p = m.pipeline(transaction=False)
    for key in m.keys("*"):
        p.delete(key)
    p.execute()
    assert m.dbsize() == 0
    assert used(m) - base < 64 * 1024  # only the emptied tables' slots remain


def test_client_query_buffer_is_counted(msrv, m):
    base = used(m)
    s = socket.create_connection(("127.0.0.1", msrv.port))
    try:
        # Half a 2 MB bulk: it waits in the query buffer.
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n" + b"x" * 1_000_000)
        deadline = time.time() + 3
        while used(m) - base < 900_000 and time.time() < deadline:
            time.sleep(0.05)
        assert used(m) - base >= 900_000
    finally:
        s.close()
    deadline = time.time() + 3
    while used(m) - base > 100_000 and time.time() < deadline:
        time.sleep(0.05)
    assert used(m) - base < 100_000


def test_info_memory_reports_the_limit(m):
    m.config_set("maxmemory", "3mb")
    try:
        info = m.info("memory")
        assert info["maxmemory"] == 3 * 1024 * 1024
        assert info["maxmemory_human"] == "3.00M"
        assert info["used_memory"] <= info["used_memory_peak"]
    finally:
        m.config_set("maxmemory", 0)


def test_raw_usage_for_each_type(msrv):
    conn = RawConnection(msrv.port)
    try:
        conn.command("FLUSHALL")
        conn.command("SET", "s", "v")
        conn.command("RPUSH", "l", "a")
        conn.command("HSET", "h", "f", "v")
        conn.command("SADD", "set", "m")
        conn.command("ZADD", "z", "1", "m")
        conn.command("XADD", "x", "*", "f", "v")
        conn.command("PFADD", "hll", "a")
        for key in ("s", "l", "h", "set", "z", "x", "hll"):
            reply = conn.command("MEMORY", "USAGE", key)
            assert reply.startswith(b":") and int(reply[1:]) > 0, key
    finally:
        conn.command("FLUSHALL")
        conn.close()


def test_accounting_stays_o1_when_the_oldest_entries_go(m):
    # A hash used as a queue (and XTRIM on a stream) deletes the oldest entries: the
    # size estimate must not walk the dead slots they leave in the dict each time
    # (scanning from the front, this loop does ~10^10 slot steps).
    p = m.pipeline(transaction=False)
    for start in range(0, 150_000, 10_000):
        p.hset("q", mapping={b"f%d" % i: b"v" for i in range(start, start + 10_000)})
    for i in range(5_000):
        p.xadd("s", {"f": "v"}, maxlen=100)
    p.execute()
    started = time.time()
    for start in range(0, 140_000, 20_000):
        p = m.pipeline(transaction=False)
        for i in range(start, start + 20_000):
            p.hdel("q", b"f%d" % i)
        p.execute()
    assert time.time() - started < 8
    assert m.hlen("q") == 10_000
    assert m.xlen("s") == 100


def test_collections_kept_packed_after_a_restart_are_costed_packed_then_unpacked(tmp_path):
    """After a start-up load, small collections cost their listpack until first read
    (as Redis keeps them); reading them grows used_memory to the unpacked cost, and
    deleting them all gives it back."""
    server = start_in_dir(VERMILION, tmp_path)
    c = server.client()
    base = used(c)
    p = c.pipeline(transaction=False)
    for i in range(3000):
        p.hset(f"h:{i}", mapping={f"f{j}": f"value-{j}" for j in range(8)})
    p.execute()
    unpacked = used(c) - base
    c.save()
    server.stop()
    server = start_in_dir(VERMILION, tmp_path)
    try:
        c = server.client()
        packed = used(c) - base
        assert packed < unpacked / 3
        p = c.pipeline(transaction=False)
        for i in range(3000):
            p.hgetall(f"h:{i}")
        assert all(len(fields) == 8 for fields in p.execute())
        assert used(c) - base == pytest.approx(unpacked, rel=0.05)
        p = c.pipeline(transaction=False)
        for i in range(3000):
            p.delete(f"h:{i}")
        p.execute()
        assert used(c) - base < 64 * 1024  # only the emptied tables' slots remain
    finally:
        server.stop()


# -- exact accounting, a compact string key ----------------------------------------------------


def dataset(c) -> int:
    """MEMORY STATS dataset.bytes: used_memory less the tables, clients and base, i.e.
    the sum of the keys' accounted costs."""
    return c.memory_stats()["dataset.bytes"]


# A sentinel per database: b"sentinel" → b"v", two 48-byte bytes objects (a database
# without keys is left out of the sums, so each keeps one to be seen).
SENTINEL_COST = 96


def _random_writes(c, rng, ops: int) -> None:
    keys = [f"k{i}" for i in range(40)]
    for _ in range(ops):
        key, other = rng.choice(keys), rng.choice(keys)
        op = rng.randrange(24)
        value = b"x" * rng.choice((0, 1, 3, 15, 16, 17, 100, 208, 209, 300, 5000))
        try:
            if op == 0:
                c.set(key, value)
            elif op == 1:
                c.set(key, value, ex=rng.choice((1, 1000)))
            elif op == 2:
                c.append(key, value)
            elif op == 3:
                c.setrange(key, rng.randrange(400), b"y" * rng.randrange(1, 50))
            elif op == 4:
                c.incrby(f"n{key}", rng.randrange(-10**12, 10**12))
            elif op == 5:
                c.incrbyfloat(f"n{key}", 1.5)
            elif op == 6:
                c.getset(key, value)
            elif op == 7:
                c.getdel(key)
            elif op == 8:  # (a key twice in one MSET: the second value wins)
                c.execute_command("MSET", key, value, other, b"z", key, value[:7])
            elif op == 9:
                c.delete(key)
            elif op == 10:
                c.rename(key, other)
            elif op == 11:
                c.copy(key, other, replace=True)
            elif op == 12:
                c.move(key, 1)
            elif op == 13:
                c.expire(key, rng.choice((1, 1000)))
            elif op == 14:
                c.persist(key)
            elif op == 15:
                c.hset(key, f"f{rng.randrange(20)}", value)
            elif op == 16:
                c.rpush(key, *([value] * rng.randrange(1, 10)))
            elif op == 17:
                c.lpop(key, rng.randrange(1, 5))
            elif op == 18:
                c.sadd(key, *(b"m%d" % rng.randrange(50) for _ in range(5)))
            elif op == 19:
                c.zadd(key, {b"m%d" % rng.randrange(50): 1.0})
            elif op == 20:
                dumped = c.dump(key)
                if dumped is not None:
                    c.restore(other, 0, dumped, replace=True)
            elif op == 21:
                c.setbit(key, rng.randrange(5000), 1)
            elif op == 22:
                c.pfadd(key, *(b"e%d" % rng.randrange(1000) for _ in range(3)))
            else:
                c.delete(key)
                c.set(key, value)  # a collection's name taken by a string, and back
        except redis.ResponseError:
            pass  # WRONGTYPE, ERR no such key...


@pytest.mark.parametrize("policy", ["noeviction", "allkeys-lru", "allkeys-lfu", "switching"])
def test_accounting_is_exact_through_random_writes(m, policy):
    """Whatever a key goes through (strings grown and shrunk in place, turned into
    collections and back, renamed, copied, moved, restored, expired, the dataset reloaded
    and swapped, the eviction policy switched), deleting the keys one by one gives every
    accounted byte back: what is left is exactly the sentinels' cost."""
    import random

    rng = random.Random(f"accounting-{policy}")
    policies = ["noeviction", "allkeys-lru", "allkeys-lfu", "volatile-lru"]
    try:
        m.config_set("maxmemory-policy", policy if policy != "switching" else "noeviction")
        for db in (0, 1):
            m.execute_command("SELECT", db)
            m.set("sentinel", "v")
        m.execute_command("SELECT", 0)
        for round_ in range(6):
            _random_writes(m, rng, 400)
            if round_ == 2:
                m.execute_command("DEBUG", "RELOAD")
            elif round_ == 3:
                m.swapdb(0, 1)
            elif round_ == 4:
                m.execute_command("DEBUG", "RELOAD", "MERGE", "NOFLUSH", "NOSAVE")
            if policy == "switching":
                m.config_set("maxmemory-policy", rng.choice(policies))
        time.sleep(1.1)  # the keys given a 1 s TTL expire (lazily or actively)
        for db in (0, 1):
            m.execute_command("SELECT", db)
            for key in m.keys("*"):
                if key != b"sentinel":
                    m.delete(key)
        m.execute_command("SELECT", 0)
        assert dataset(m) == 2 * SENTINEL_COST
    finally:
        m.execute_command("SELECT", 0)
        m.config_set("maxmemory-policy", "noeviction")
        m.flushall()


def test_a_small_string_key_costs_what_its_objects_take(m, real):
    """No per-key record beside the key and its value while no LRU/LFU policy needs
    access stamps: 100,000 keys `key:NNNNNNNN` → 3 bytes cost their two 48-byte bytes
    objects and their share of the table, under 150 bytes each (Redis: ~91)."""
    n = 100_000

    def grow(c) -> float:
        before = used(c)
        for start in range(0, n, 10_000):
            p = c.pipeline(transaction=False)
            for i in range(start, start + 10_000):
                p.set(b"key:%08d" % i, b"val")
            p.execute()
        return (used(c) - before) / n

    real.flushall()
    try:
        ours, theirs = grow(m), grow(real)
    finally:
        real.flushall()
    assert ours <= 150
    assert theirs < ours < 2 * theirs
    # An LRU policy adds one table entry per key for the stamp (the stamp itself, an
    # int shared by the keys of a second, costs nothing per key).
    m.config_set("maxmemory-policy", "allkeys-lru")
    try:
        stamped = dataset(m)
        assert stamped == pytest.approx(96 * n, rel=0.01)
        assert used(m) / n < 230
    finally:
        m.config_set("maxmemory-policy", "noeviction")


def test_the_arguments_of_a_command_being_received_are_counted(msrv, m, real):
    """c->argv_len_sum: the bulks already read of a command still arriving count in the
    clients' memory (mem_clients_normal), as Redis counts them."""
    results = {}
    for name, port, c in (("vermilion", msrv.port, m), ("redis", real.connection_pool
                                                         .connection_kwargs["port"], real)):
        base = c.info("memory")["mem_clients_normal"]
        s = socket.create_connection(("127.0.0.1", port))
        try:
            # 20 of 30 arguments of 100 KB each: 2 MB of parsed arguments, no query buffer.
            s.sendall(b"*30\r\n$4\r\nMSET\r\n" + (b"$100000\r\n" + b"x" * 100_000 + b"\r\n") * 20)
            deadline = time.time() + 3
            grown = 0
            while time.time() < deadline:
                grown = c.info("memory")["mem_clients_normal"] - base
                if grown >= 1_900_000:
                    break
                time.sleep(0.05)
            results[name] = grown
        finally:
            s.close()
    assert results["vermilion"] >= 1_900_000, results
    assert results["redis"] >= 1_900_000, results
