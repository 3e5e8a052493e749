"""Expiry (commands/expire.py, keyspace/expiry.py): the EXPIRE and TTL families compared
byte for byte with redis-server, and the active expiry cycle reclaiming keys nobody
reads."""

import time

from conftest import start_vermilion


def test_expire_options_exact(diff):
    diff.same(
        ("SET", "k", "v"),
        ("EXPIRE", "k", "100", "XX"), ("EXPIRE", "k", "100", "GT"), ("TTL", "k"),
        ("EXPIRE", "k", "100", "LT"), ("TTL", "k"),
        ("EXPIRE", "k", "200", "NX"), ("TTL", "k"),
        ("EXPIRE", "k", "200", "XX"), ("TTL", "k"),
        ("EXPIRE", "k", "100", "GT"), ("EXPIRE", "k", "300", "GT"), ("TTL", "k"),
        ("EXPIRE", "k", "400", "LT"), ("EXPIRE", "k", "50", "lt"), ("TTL", "k"),
        ("EXPIRE", "k", "60", "XX", "GT"), ("TTL", "k"),
        ("EXPIRE", "k", "10", "XX", "LT"), ("TTL", "k"),
        ("EXPIRE", "k", "10", "NX", "XX"), ("EXPIRE", "k", "10", "NX", "GT"),
        ("EXPIRE", "k", "10", "NX", "LT"), ("EXPIRE", "k", "10", "GT", "LT"),
        ("EXPIRE", "k", "10", "NX", "NX"), ("EXPIRE", "k", "5", "XX", "XX", "GT", "GT"),
        ("EXPIRE", "k", "10", "FOO"), ("EXPIRE", "k", "10", "NX", "bar"),
        ("EXPIRE", "k", "10", "GT", "LT", "bad"), ("EXPIRE", "k", "abc", "NX", "XX"),
        ("EXPIRE", "k", "abc", "bad"), ("EXPIRE", "missing", "10"),
        ("EXPIRE", "missing", "10", "XX"), ("EXPIRE", "missing", "abc"),
        ("PERSIST", "k"), ("PERSIST", "k"), ("TTL", "k"), ("PERSIST", "missing"),
        ("EXPIRE", "k", "100", "LT"), ("TTL", "k"))


def test_expire_overflow_exact(diff):
    diff.same(
        ("SET", "k", "v"),
        ("EXPIRE", "k", "9223372036854775807"), ("EXPIRE", "k", "9223372036854776"),
        ("EXPIRE", "k", "9223372036854775"), ("TTL", "k"), ("PERSIST", "k"),
        ("PEXPIRE", "k", "9223372036854775807"), ("PEXPIRE", "missing", "9223372036854775807"),
        ("EXPIREAT", "k", "9223372036854775807"), ("EXPIREAT", "k", "-9223372036854775808"),
        ("PEXPIREAT", "k", "9223372036854775807"), ("PEXPIRETIME", "k"), ("EXPIRETIME", "k"),
        ("EXPIRE", "k", "-9223372036854776"), ("EXPIRE", "k", "9223372036854775808"),
        ("EXPIRE", "k", "1.5"), ("EXPIRE", "k", ""), ("EXPIRE", "k", " 1"),
        ("EXPIRE", "k"), ("TTL",), ("PERSIST",))


def test_time_in_the_past_deletes_the_key(diff):
    for cmd in ("EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"):
        diff.same(("SET", "k", "v"), (cmd, "k", "-1"), ("EXISTS", "k"),
                  ("SET", "k", "v"), (cmd, "k", "0"), ("EXISTS", "k"))
    diff.same(("SET", "k", "v"), ("EXPIRE", "k", "-100", "NX"), ("EXISTS", "k"),
              ("SET", "k", "v", "EX", "100"), ("EXPIRE", "k", "-100", "GT"), ("EXISTS", "k"),
              ("EXPIRE", "k", "-100", "LT"), ("EXISTS", "k"))


def test_ttl_family_missing_and_persistent(diff):
    diff.same(
        ("TTL", "missing"), ("PTTL", "missing"), ("EXPIRETIME", "missing"),
        ("PEXPIRETIME", "missing"), ("SET", "k", "v"), ("TTL", "k"), ("PTTL", "k"),
        ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"),
        ("PEXPIREAT", "k", "4102444800123"), ("PEXPIRETIME", "k"), ("EXPIRETIME", "k"),
        ("PEXPIREAT", "k", "4102444800499"), ("EXPIRETIME", "k"),
        ("PEXPIREAT", "k", "4102444800500"), ("EXPIRETIME", "k"),
        ("EXPIREAT", "k", "4102444800"), ("PEXPIRETIME", "k"))


def test_ttl_values(r):
    r.set("k", "v")
    assert r.expire("k", 100)
    assert 99 <= r.ttl("k") <= 100
    assert 99000 <= r.pttl("k") <= 100000
    assert r.pexpire("k", 1500)
    assert r.ttl("k") in (1, 2)  # rounded to the nearest second, as Redis does
    now = time.time()
    assert abs(r.expiretime("k") - (now + 1.5)) <= 1.5
    assert r.expireat("k", int(now) + 1000)
    assert r.expiretime("k") == int(now) + 1000
    assert r.pexpiretime("k") == (int(now) + 1000) * 1000
    assert r.persist("k")
    assert r.ttl("k") == -1


def test_set_clears_and_keepttl_keeps(r):
    r.set("k", "v", ex=100)
    r.set("k", "w")
    assert r.ttl("k") == -1
    r.set("k", "v", ex=100)
    r.append("k", "x")
    assert r.ttl("k") > 0


def test_keys_expire_lazily(r):
    r.set("k", "v", px=30)
    assert r.exists("k") == 1
    time.sleep(0.05)
    assert r.exists("k") == 0
    assert r.get("k") is None
    assert r.ttl("k") == -2


def test_expired_keys_never_listed(diff):
    for conn in diff.conns:
        conn.command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        for conn in diff.conns:
            for i in range(20):
                conn.command("SET", f"gone{i}", "v", "PX", "1")
            conn.command("SET", "live", "v")
        time.sleep(0.02)
        diff.same(("DBSIZE",), ("KEYS", "*"), ("KEYS", "gone*"),
                  ("SCAN", "0", "COUNT", "1000"), ("DBSIZE",), ("EXISTS", "gone1"),
                  ("TTL", "gone2"), ("PERSIST", "gone3"), ("EXPIRE", "gone4", "100"),
                  ("RANDOMKEY",), ("DBSIZE",))
    finally:
        for conn in diff.conns:
            conn.command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def _wait_for_dbsize(client, target, timeout):
    deadline = time.time() + timeout
    size = client.dbsize()
    while size != target and time.time() < deadline:
        time.sleep(0.05)
        size = client.dbsize()
    return size


def test_active_expiry_reclaims_untouched_keys(r):
    before = r.info("stats")["expired_keys"]
    pipe = r.pipeline(transaction=False)
    for i in range(20000):
        pipe.set(f"short:{i}", "v", px=100)
    for i in range(100):
        pipe.set(f"long:{i}", "v", ex=1000)
        pipe.set(f"plain:{i}", "v")
    pipe.execute()
    # Nobody reads the short keys again: only the active cycle can remove them.
    assert _wait_for_dbsize(r, 200, 5.0) == 200
    assert r.info("stats")["expired_keys"] - before >= 19000
    assert r.exists(*[f"long:{i}" for i in range(100)]) == 100


def test_active_expiry_is_cheap_when_nothing_expires(tmp_path):
    server = start_vermilion(tmp_path, ["--hz", "100"])
    try:
        client = server.client()
        pipe = client.pipeline(transaction=False)
        for i in range(50000):
            pipe.set(f"k:{i}", "v", ex=10000)
        pipe.execute()
        start = client.info("stats")["expire_cycle_cpu_milliseconds"]
        time.sleep(1.0)  # 100 cycles
        used = client.info("stats")["expire_cycle_cpu_milliseconds"] - start
        assert used < 100
        assert client.dbsize() == 50000
        client.close()
    finally:
        server.stop()


def test_active_expiry_across_databases_and_stats(raw):
    raw.command("SELECT", "5")
    try:
        for i in range(200):
            raw.command("SET", f"k{i}", "v", "PX", "50")
        deadline = time.time() + 5
        while raw.command("DBSIZE") != b":0\r\n" and time.time() < deadline:
            time.sleep(0.05)
        assert raw.command("DBSIZE") == b":0\r\n"
    finally:
        raw.command("FLUSHDB")
        raw.command("SELECT", "0")


def test_debug_set_active_expire_stops_the_cycle(raw):
    assert raw.command("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"+OK\r\n"
    try:
        for i in range(100):
            raw.command("SET", f"k{i}", "v", "PX", "10")
        time.sleep(0.4)
        assert raw.command("DBSIZE") == b":100\r\n"
    finally:
        raw.command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    deadline = time.time() + 5
    while raw.command("DBSIZE") != b":0\r\n" and time.time() < deadline:
        time.sleep(0.05)
    assert raw.command("DBSIZE") == b":0\r\n"
