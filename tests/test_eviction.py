"""maxmemory and the eight maxmemory-policy values (evict.c), beside real redis-server."""

import socket
import time

import pytest
import redis

from conftest import RawConnection, start_redis, start_vermilion

OOM = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
VALUE = b"v" * 100


@pytest.fixture(scope="module")
def vsrv(tmp_path_factory):
    server = start_vermilion(tmp_path_factory.mktemp("evict"), ["--enable-debug-command", "yes"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rsrv(tmp_path_factory):
    server = start_redis(tmp_path_factory.mktemp("evict-redis"), ["--enable-debug-command", "yes"])
    yield server
    server.stop()


def _reset(c):
    c.config_set("maxmemory", 0)
    c.config_set("maxmemory-policy", "noeviction")
    c.config_set("maxmemory-samples", 5)
    c.config_set("lfu-log-factor", 10)
    c.config_set("lfu-decay-time", 1)
    c.flushall()
    c.config_resetstat()


@pytest.fixture
def v(vsrv):
    c = vsrv.client()
    _reset(c)
    yield c
    _reset(c)
    c.close()


@pytest.fixture
def rr(rsrv):
    c = rsrv.client()
    _reset(c)
    yield c
    _reset(c)
    c.close()


def used(c) -> int:
    return c.info("memory")["used_memory"]


def evicted(c) -> int:
    return c.info("stats")["evicted_keys"]


def fill(c, prefix: str, count: int, ttl: int | None = None, batch: int = 500):
    """SET count keys (pipelined); errors (OOM) are returned, not raised."""
    errors = 0
    for start in range(0, count, batch):
        p = c.pipeline(transaction=False)
        for i in range(start, min(start + batch, count)):
            if ttl is None:
                p.set(f"{prefix}:{i}", VALUE)
            else:
                p.set(f"{prefix}:{i}", VALUE, ex=ttl + i)
        for reply in p.execute(raise_on_error=False):
            errors += isinstance(reply, redis.ResponseError)
    return errors


def limit_above_now(c, extra: int) -> int:
    limit = used(c) + extra
    c.config_set("maxmemory", limit)
    return limit


# -- the seed configuration --------------------------------------------------------------------


def test_seed_config_file_keeps_under_2mb(tmp_path):
    server = start_vermilion(tmp_path, config_text="maxmemory 2mb\nmaxmemory-policy allkeys-lru\n")
    try:
        c = server.client()
        assert fill(c, "key", 100_000, batch=2000) == 0
        info = c.info("memory")
        assert info["maxmemory"] == 2 * 1024 * 1024
        assert info["maxmemory_policy"] == "allkeys-lru"
        # Checked before each command: at most the last command's key over the limit.
        assert info["used_memory"] <= 2 * 1024 * 1024 + 1024
        assert evicted(c) > 90_000
        assert c.ping()
        # The LRU clock ticks once a second, so the newest keys tie and a few of them
        # go too: real Redis keeps the last 10 and ~94 of the last 100 in this run.
        recent = c.mget([f"key:{i}" for i in range(99_900, 100_000)])
        assert all(value == VALUE for value in recent[-10:])
        assert sum(value == VALUE for value in recent) >= 80
        assert c.dbsize() + evicted(c) == 100_000
    finally:
        server.stop()


def test_hot_keys_survive_allkeys_lru(v):
    # The LRU clock has a resolution of one second (LRU_CLOCK_RESOLUTION): rounds a
    # second apart, the hot set read every round, room for about two rounds of cold keys.
    v.config_set("maxmemory-policy", "allkeys-lru")
    hot = [f"hot:{i}" for i in range(100)]
    for key in hot:
        v.set(key, VALUE)
    v.config_set("maxmemory", used(v) + 400_000)
    for round_ in range(4):
        time.sleep(1.05)
        v.mget(hot)
        fill(v, f"cold{round_}", 600)
    assert evicted(v) > 500
    alive = sum(x is not None for x in v.mget(hot))
    assert alive >= 95
    # The victims are the oldest cold keys.
    assert sum(v.exists(f"cold3:{i}") for i in range(600)) > 500
    assert sum(v.exists(f"cold0:{i}") for i in range(600)) < 100


def test_hot_keys_survive_allkeys_lfu(v):
    v.config_set("maxmemory-policy", "allkeys-lfu")
    hot = [f"hot:{i}" for i in range(100)]
    for key in hot:
        v.set(key, VALUE)
    for _ in range(20):
        v.mget(hot)
    v.config_set("maxmemory", used(v) + 400_000)
    for round_ in range(6):
        fill(v, f"cold{round_}", 1000)
    assert evicted(v) > 2000
    alive = sum(x is not None for x in v.mget(hot))
    assert alive >= 90


# -- each policy -------------------------------------------------------------------------------


def test_noeviction_refuses_denyoom_commands_like_redis(vsrv, rsrv, v, rr):
    conns = [RawConnection(vsrv.port), RawConnection(rsrv.port)]
    try:
        for conn in conns:
            conn.command("SET", "present", "1")
            conn.command("RPUSH", "list", "a")
            conn.command("CONFIG", "SET", "maxmemory", "1")
        commands = [
            ("SET", "k", "v"), ("GET", "present"), ("INCR", "present"), ("LPUSH", "list", "x"),
            ("APPEND", "present", "x"), ("LRANGE", "list", "0", "-1"), ("EXPIRE", "present", "100"),
            ("PERSIST", "present"), ("SADD", "s", "a"), ("HSET", "h", "f", "v"),
            ("EXISTS", "present"), ("LPOP", "list"), ("DEL", "present"), ("DEL", "nothing"),
            ("MSET", "a", "1"), ("SETRANGE", "x", "0", "y"), ("PING",), ("DBSIZE",),
        ]
        for cmd in commands:
            mine, theirs = (conn.command(*cmd) for conn in conns)
            assert mine == theirs, cmd
        assert conns[0].command("SET", "k", "v") == OOM
        info = conns[0].command("INFO", "stats")
        assert b"evicted_keys:0\r\n" in info
    finally:
        for conn in conns:
            conn.command("CONFIG", "SET", "maxmemory", "0")
            conn.close()


def test_noeviction_refuses_once_full(v):
    v.config_set("maxmemory", used(v) + 100_000)
    errors = fill(v, "k", 2000)
    assert errors > 0
    assert evicted(v) == 0
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        v.set("one-more", VALUE)
    assert v.get("k:0") == VALUE
    assert v.delete("k:0", "k:1") == 2


def test_allkeys_random_evicts_any_key(v):
    v.config_set("maxmemory-policy", "allkeys-random")
    limit = limit_above_now(v, 200_000)
    assert fill(v, "k", 5000) == 0
    assert used(v) <= limit + 1024
    assert evicted(v) > 1000
    # Read together, in one EXEC: any command may evict first while memory is over the
    # limit (the replies' output buffers count too), so two reads apart can disagree.
    with v.pipeline(transaction=True) as pipe:
        survivors, stats = pipe.dbsize().info("stats").execute()
    assert 0 < survivors < 5000
    assert survivors + stats["evicted_keys"] == 5000
    # Random victims: a key survives n later evictions with probability ~e^(-n/size),
    # so survivors reach well back before the last `size` writes.
    assert sum(v.exists(f"k:{i}") for i in range(5000 - 2 * survivors)) > 0


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-lfu", "volatile-random",
                                    "volatile-ttl"])
def test_volatile_policies_only_evict_keys_with_ttl(v, policy):
    v.config_set("maxmemory-policy", policy)
    fill(v, "keep", 300)
    limit = limit_above_now(v, 150_000)
    assert fill(v, "ttl", 3000, ttl=1000) == 0
    assert evicted(v) > 500
    assert used(v) <= limit + 1024
    assert sum(v.exists(f"keep:{i}") for i in range(300)) == 300
    # Nothing evictable left: a volatile policy with only persistent keys → OOM.
    v.delete(*[f"ttl:{i}" for i in range(3000)])
    errors = fill(v, "more", 3000)
    assert errors > 0
    assert sum(v.exists(f"keep:{i}") for i in range(300)) == 300
    # (The pipeline's replies counted while it ran: once they are sent and the cron
    # counts the clients again, a few more keys may fit before the next OOM.)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        for i in range(1000):
            v.set(f"one-more:{i}", VALUE)
    assert v.get("keep:0") == VALUE


def test_volatile_ttl_evicts_shortest_ttl_first(v):
    v.config_set("maxmemory-policy", "volatile-ttl")
    v.config_set("maxmemory-samples", 64)
    p = v.pipeline(transaction=False)
    for i in range(1000):
        p.set(f"t:{i}", VALUE, ex=10_000 + i * 10)  # t:0 expires first
    p.execute()
    limit = used(v) - 40_000
    v.config_set("maxmemory", limit)
    v.ping()
    gone = [i for i in range(1000) if not v.exists(f"t:{i}")]
    assert len(gone) > 50
    # The pool keeps the 16 best of 64 samples a round: the victims are nearly all
    # among the shortest TTLs.
    assert sorted(gone)[len(gone) // 2] < 250
    assert sum(1 for i in gone if i >= 500) < len(gone) * 0.1


def test_config_set_maxmemory_lower_evicts_down(v):
    v.config_set("maxmemory-policy", "allkeys-lru")
    fill(v, "k", 5000)
    before = used(v)
    target = before - 300_000
    v.config_set("maxmemory", target)
    deadline = time.time() + 5
    while used(v) > target and time.time() < deadline:
        time.sleep(0.05)
    assert used(v) <= target
    assert evicted(v) > 500
    assert v.dbsize() == 5000 - evicted(v)


def test_eviction_is_counted_and_resets(v):
    v.config_set("maxmemory-policy", "allkeys-lru")
    limit_above_now(v, 100_000)
    fill(v, "k", 3000)
    assert evicted(v) > 0
    # Lift the limit first: memory may still be over it after the last SET, and every
    # command evicts before it runs while it is (performEvictions() in processCommand).
    v.config_set("maxmemory", 0)
    v.config_resetstat()
    assert evicted(v) == 0


def test_evicted_keys_reach_the_aof_as_del(tmp_path):
    args = ["--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "allkeys-lru"]
    server = start_vermilion(tmp_path, args)
    try:
        c = server.client()
        c.config_set("maxmemory", used(c) + 100_000)
        fill(c, "k", 2000)
        assert evicted(c) > 0
        aof = b"".join(p.read_bytes() for p in tmp_path.rglob("*.incr.aof"))
        assert b"$3\r\nDEL\r\n" in aof
        survivors = sorted(c.keys("*"))
    finally:
        server.stop()
    # Replaying the AOF (no maxmemory now) gives back exactly the survivors.
    server = start_vermilion(tmp_path, args)
    try:
        assert sorted(server.client().keys("*")) == survivors
    finally:
        server.stop()


# -- LRU / LFU metadata: OBJECT IDLETIME and OBJECT FREQ ---------------------------------------


def test_object_freq_needs_an_lfu_policy_like_redis(vsrv, rsrv, v, rr):
    for c in (v, rr):
        c.set("k", "v")
    mine = RawConnection(vsrv.port)
    theirs = RawConnection(rsrv.port)
    try:
        assert mine.command("OBJECT", "FREQ", "k") == theirs.command("OBJECT", "FREQ", "k")
        for c in (v, rr):
            c.config_set("maxmemory-policy", "allkeys-lfu")
            c.config_set("lfu-log-factor", 0)  # every access counts: deterministic
            c.set("f", "v")
        assert mine.command("OBJECT", "FREQ", "f") == theirs.command("OBJECT", "FREQ", "f") \
            == b":5\r\n"
        for _ in range(7):
            for c in (v, rr):
                c.get("f")
        assert mine.command("OBJECT", "FREQ", "f") == theirs.command("OBJECT", "FREQ", "f") \
            == b":12\r\n"
        # Introspection does not count as an access (LOOKUP_NOTOUCH).
        for cmd in (("TYPE", "f"), ("EXISTS", "f"), ("TTL", "f"), ("OBJECT", "FREQ", "f")):
            mine.command(*cmd)
            theirs.command(*cmd)
        assert mine.command("OBJECT", "FREQ", "f") == theirs.command("OBJECT", "FREQ", "f")
        assert mine.command("OBJECT", "IDLETIME", "f") == theirs.command("OBJECT", "IDLETIME", "f")
    finally:
        mine.close()
        theirs.close()


def test_lfu_counter_grows_logarithmically(v):
    v.config_set("maxmemory-policy", "allkeys-lfu")
    v.set("hot", "v")
    v.set("cold", "v")
    p = v.pipeline(transaction=False)
    for _ in range(2000):
        p.get("hot")
    p.execute()
    hot = v.object("freq", "hot")
    # lfu-log-factor 10: ~1000 hits reach ~18, a million ~100 (redis.conf's table).
    assert 12 <= hot <= 40
    assert v.object("freq", "cold") == 5


def test_object_idletime_tracks_access_under_lru(v):
    v.config_set("maxmemory-policy", "allkeys-lru")
    v.set("a", "1")
    v.set("b", "1")
    time.sleep(2.1)
    v.get("a")
    v.touch("b")  # TOUCH resets the idle time too
    v.set("c", "1")
    # Reset (they were idle 2 s): 0, or 1 if the 1-second LRU clock ticked meanwhile.
    assert v.object("idletime", "a") <= 1
    assert v.object("idletime", "b") <= 1
    v.config_set("maxmemory-policy", "volatile-lru")
    time.sleep(1.1)
    assert v.object("idletime", "c") >= 1
    assert v.object("idletime", "c") <= 2


# -- client eviction: maxmemory-clients and CLIENT NO-EVICT ------------------------------------


def _half_sent_bulk(port: int, no_evict: bool) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if no_evict:
        s.sendall(b"CLIENT NO-EVICT on\r\n")
        assert s.recv(64) == b"+OK\r\n"
    # 1.5 MB of a 3 MB argument: it sits in the query buffer.
    try:
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n" + b"x" * 1_500_000)
    except OSError:
        pass  # evicted while still sending
    return s


def _closed_within(s: socket.socket, seconds: float) -> bool:
    s.settimeout(seconds)
    try:
        return s.recv(64) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


@pytest.mark.parametrize("server", ["vermilion", "redis"])
def test_maxmemory_clients_evicts_the_biggest_client_but_not_no_evict(vsrv, rsrv, server):
    port, srv = (vsrv.port, vsrv) if server == "vermilion" else (rsrv.port, rsrv)
    c = srv.client(single_connection_client=True)
    # The clients' total counts NO-EVICT clients too; only the others can go.
    c.execute_command("CLIENT", "NO-EVICT", "on")
    c.config_resetstat()
    c.config_set("maxmemory-clients", "1mb")
    try:
        protected = _half_sent_bulk(port, no_evict=True)
        assert not _closed_within(protected, 0.5)
        assert c.info("stats")["evicted_clients"] == 0
        victim = _half_sent_bulk(port, no_evict=False)
        assert _closed_within(victim, 3)
        assert c.info("stats")["evicted_clients"] == 1
        assert not _closed_within(protected, 0.3)
        assert c.ping()
        victim.close()
        protected.close()
    finally:
        c.config_set("maxmemory-clients", 0)
        c.close()


def test_scripts_follow_redis_oom_rules(vsrv, rsrv, v, rr):
    conns = [RawConnection(vsrv.port), RawConnection(rsrv.port)]
    try:
        for conn in conns:
            conn.command("SET", "present", "1")
            conn.command("CONFIG", "SET", "maxmemory", "1")
        # Reads inside a script run; a write refused with OOM (script_oom at EVAL start).
        read = ("EVAL", "return redis.call('GET', KEYS[1])", "1", "present")
        write = ("EVAL", "return redis.pcall('SET', KEYS[1], 'x')", "1", "k")
        delete = ("EVAL", "return redis.call('DEL', KEYS[1])", "1", "present")
        mine, theirs = (conn.command(*read) for conn in conns)
        assert mine == theirs == b"$1\r\n1\r\n"
        mine, theirs = (conn.command(*write) for conn in conns)
        assert mine.startswith(b"-OOM command not allowed") and theirs.startswith(b"-OOM")
        mine, theirs = (conn.command(*delete) for conn in conns)
        assert mine == theirs == b":1\r\n"
    finally:
        for conn in conns:
            conn.command("CONFIG", "SET", "maxmemory", "0")
            conn.close()


# -- choosing the victims ----------------------------------------------------------------------


def evict_down(c, by: int) -> None:
    """CONFIG SET maxmemory `by` bytes under used_memory, and wait until the evictions
    it starts are over (each call is time-bound; the rest runs from the event loop)."""
    limit = used(c) - by
    c.config_set("maxmemory", limit)
    deadline = time.time() + 5
    while used(c) > limit + 1024 and time.time() < deadline:  # (INFO's own buffers vary)
        time.sleep(0.02)
    assert used(c) <= limit + 1024


def test_keys_restored_long_idle_go_first_like_redis(vsrv, rsrv, v, rr):
    """RESTORE ... IDLETIME sets the LRU clock back (objectSetLRUOrLFU); an idle time
    longer than the 24-bit clock's age wraps it to half a cycle ahead, which still
    reads as the oldest. Both kinds are evicted far sooner than the fresh keys, on both
    servers (sampled LRU: not all of them, and not in the same numbers)."""
    for name, c in (("vermilion", v), ("redis", rr)):
        c.config_set("maxmemory-policy", "allkeys-lru")
        c.config_set("maxmemory-samples", 10)
        fill(c, "fresh", 2000)
        payload = c.dump("fresh:0")
        for i in range(20):
            c.restore(f"idle:{i}", 0, payload, idletime=100_000)
            c.restore(f"ancient:{i}", 0, payload, idletime=1_000_000_000)
        assert c.object("idletime", "idle:0") == 100_000
        assert c.object("idletime", "ancient:0") > 100_000
        while evicted(c) < 400:  # (the servers' keys cost different bytes)
            evict_down(c, 20_000)
        gone = evicted(c)
        idle_gone = sum(not c.exists(f"idle:{i}") for i in range(20))
        ancient_gone = sum(not c.exists(f"ancient:{i}") for i in range(20))
        fresh_rate = (gone - idle_gone - ancient_gone) / 2000
        assert idle_gone / 20 > min(0.85, 3 * fresh_rate), (name, gone, idle_gone, ancient_gone)
        assert ancient_gone / 20 > min(0.85, 3 * fresh_rate), (name, gone, idle_gone, ancient_gone)


def test_every_database_gives_keys(v):
    """evictionPoolPopulate() samples every database: under allkeys-lru the victims are
    the older keys, whichever database they are in (the evicting client's or another);
    under volatile-lru, only keys with a TTL go, from whichever database holds them."""
    v.config_set("maxmemory-policy", "allkeys-lru")
    other = v.connection_pool.connection_kwargs.copy()
    other["db"] = 5
    v5 = redis.Redis(**other)
    try:
        fill(v5, "five", 1500)
        time.sleep(2.1)  # LRU clock ticks (1 s): db 5's keys are the older, all of them
        fill(v, "zero", 1500)
        evict_down(v, 100_000)
        assert evicted(v) > 200
        assert v.dbsize() == 1500
        assert v5.dbsize() == 1500 - evicted(v)
        v.config_set("maxmemory", 0)
        v.flushall()
        v.config_resetstat()
        v.config_set("maxmemory-policy", "volatile-lru")
        fill(v5, "five", 1500, ttl=1000)
        fill(v, "zero", 1500)
        evict_down(v, 100_000)
        assert evicted(v) > 200
        assert v.dbsize() == 1500
        assert v5.dbsize() == 1500 - evicted(v)
    finally:
        v5.close()


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random",
                                    "volatile-ttl"])
def test_evicting_all_along_keeps_under_the_limit_like_redis(vsrv, rsrv, v, rr, policy):
    """Random keys written under a limit far below the dataset (the seed's workload):
    every SET evicts, used_memory stays at the limit, every key written is either held
    or counted evicted; the keys held are as many as Redis holds within a factor."""
    import random

    held = {}
    for name, c in (("vermilion", v), ("redis", rr)):
        c.config_set("maxmemory-policy", policy)
        limit = limit_above_now(c, 1_000_000)
        keys = [b"r:%d" % i for i in random.Random(7).sample(range(1_000_000), 10_000)]
        for start in range(0, len(keys), 500):
            p = c.pipeline(transaction=False)
            for key in keys[start:start + 500]:
                p.set(key, VALUE, ex=10_000) if policy == "volatile-ttl" else p.set(key, VALUE)
            assert not any(isinstance(r, Exception) for r in p.execute(raise_on_error=False))
            assert used(c) <= limit + 1024
        # One command for both figures: every command may evict before it runs.
        info = c.execute_command("INFO", "stats", "keyspace")
        assert info["db0"]["keys"] + info["evicted_keys"] == len(keys)
        held[name] = info["db0"]["keys"]
    # (Python's dicts under this churn take 75 to 150 bytes a key of table, twice under
    # an LRU/LFU policy (the stamps' dict): Vermilion holds 40-75% of Redis's keys.)
    assert 0.3 < held["vermilion"] / held["redis"] < 1.5


def test_big_keys_are_evicted_one_per_write_like_redis(v, rr):
    """Small keys are evicted a batch at a time, a little ahead of need (EVICT_AHEAD):
    a key as big as that margin or bigger is still evicted only when needed, one per
    write of a new key, as performEvictions() does."""
    big = b"b" * 100_000
    for c in (v, rr):
        c.config_set("maxmemory-policy", "allkeys-lru")
        limit_above_now(c, 2_000_000)
        deltas = []
        for i in range(60):
            before = evicted(c)
            c.set(f"big:{i}", big)
            deltas.append(evicted(c) - before)
        first = next(i for i, d in enumerate(deltas) if d)
        assert 10 < first < 30  # ~20 keys of 100 KB fit in 2 MB
        assert set(deltas[first + 1:]) == {1}, (c.connection_pool.connection_kwargs["port"], str(deltas))
        assert used(c) <= int(c.config_get("maxmemory")["maxmemory"])

