"""Memory accounting (used_memory, MEMORY USAGE / STATS / DOCTOR / PURGE / HELP)."""

import socket
import time

import pytest

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
