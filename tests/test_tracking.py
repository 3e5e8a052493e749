"""CLIENT TRACKING (tracking.c, networking.c's CLIENT TRACKING/CACHING/GETREDIR/
TRACKINGINFO): RESP3 invalidation pushes, RESP2 redirection to __redis__:invalidate,
BCAST with prefixes, OPTIN/OPTOUT, NOLOOP, the null invalidation of FLUSHALL/FLUSHDB,
invalidation on expiry, tracking-table-max-keys, the errors, INFO and CLIENT LIST —
every connection driven in step on vermilion and on redis-server 7.0 and the bytes
compared; then redis-py's client-side cache against vermilion."""

import re
import time

import pytest
import redis
from redis.cache import CacheConfig
from redis.connection import CacheProxyConnection

from conftest import Differential, RawConnection, mask_integers


class Side:
    """More connections driven in step on both servers, like diff's."""

    def __init__(self, vermilion_server, redis_server):
        self.servers = (vermilion_server, redis_server)
        self.opened: list = []

    def connect(self) -> Differential:
        mine, real = (RawConnection(s.port) for s in self.servers)
        self.opened += [mine, real]
        return Differential(mine, real, *self.servers)

    def close(self):
        for conn in self.opened:
            try:
                conn.close()
            except OSError:
                pass


@pytest.fixture
def side(vermilion_server, redis_server):
    side = Side(vermilion_server, redis_server)
    yield side
    side.close()


def client_ids(pair: Differential) -> tuple:
    return tuple(int(conn.command("CLIENT", "ID")[1:-2]) for conn in pair.conns)


def each(pair: Differential, ids: tuple, *args):
    """A command naming a client id: each server's own; the replies compared."""
    replies = [conn.command(*[ids[i] if a is ID else a for a in args])
               for i, conn in enumerate(pair.conns)]
    assert replies[0] == replies[1], replies
    return replies[0]


ID = object()  # stands for the connection's own redirect id in each()


def no_push(pair: Differential):
    """Nothing waits on either connection: the next reply is PING's."""
    pair("PING")


def push(*keys) -> bytes:
    return b">2\r\n$10\r\ninvalidate\r\n*%d\r\n" % len(keys) + b"".join(
        b"$%d\r\n%s\r\n" % (len(k), k) for k in keys)


def settle():
    # BCAST invalidations and expiry leave after the loop turn / with the cron.
    time.sleep(0.05)


# -- default mode, RESP3 pushes ------------------------------------------------------------


def test_resp3_invalidation_after_another_clients_write(diff, side):
    writer = side.connect()
    diff.hello3()
    diff.same("CLIENT TRACKING on")
    writer.same("SET k 1")
    diff.same("GET k")
    writer.same("SET k 2")
    mine = diff.mine.read_reply()
    assert mine == push(b"k") == diff.real.read_reply()
    # The entry went with the invalidation: no second message.
    writer.same("SET k 3")
    no_push(diff)


def test_own_write_invalidates_after_its_reply(diff):
    diff.hello3()
    diff.same("CLIENT TRACKING on", "HSET h f 1", "HGET h f", "MSET a 1 b 2", "MGET a b c")
    diff.same("HDEL h f")
    diff.read()  # the push follows the reply
    diff.same("DEL a b c")
    diff.read(2)
    no_push(diff)


def test_transaction_reply_before_invalidations(diff):
    diff.hello3()
    diff.same("CLIENT TRACKING on", "MSET a 1 b 2", "GET a", "GET b",
              "MULTI", "INCR a", "GET b", "SET b 3", "EXEC")
    diff.read(2)
    no_push(diff)


def test_flushdb_in_transaction_null_after_reply(diff):
    diff.hello3()
    diff.same("CLIENT TRACKING on", "SET a 1", "GET a", "MULTI", "FLUSHDB", "EXEC")
    diff.read()  # >2 invalidate _
    no_push(diff)


@pytest.mark.parametrize("flush", ["FLUSHALL", "FLUSHDB", "FLUSHALL ASYNC", "FLUSHDB SYNC",
                                   "DEBUG RELOAD"])
def test_flush_sends_null_to_every_tracking_client(diff, side, flush):
    other = side.connect()
    writer = side.connect()
    diff.hello3()
    diff.same("CLIENT TRACKING on", "GET a")
    other.hello3()
    other.same("CLIENT TRACKING on BCAST PREFIX x")
    writer.same(flush)
    diff.read()
    other.read()
    info = [conn.command("INFO", "stats") for conn in diff.conns]
    assert all(b"tracking_total_keys:0\r\n" in i for i in info)
    no_push(diff)


def test_lazy_expiry_invalidates_after_the_reply(diff):
    diff.hello3()
    diff.same("DEBUG SET-ACTIVE-EXPIRE 0", "CLIENT TRACKING on",
              "MULTI", "MSET x 1 y 2", "PEXPIRE y 50", "GET y", "EXEC")
    time.sleep(0.1)
    diff.same("MGET x y")
    diff.read()
    diff.same("DEBUG SET-ACTIVE-EXPIRE 1")


def test_active_expiry_invalidates(diff):
    diff.hello3()
    diff.same("CLIENT TRACKING on", "SET e 1 PX 30", "GET e")
    time.sleep(0.3)  # the expiry cycle deletes it
    diff.read()
    no_push(diff)


def test_blocked_client_gets_reply_then_invalidation(diff, side):
    writer = side.connect()
    diff.hello3()
    diff.same("CLIENT TRACKING on", "RPUSH dst a", "LRANGE dst 0 -1")
    for conn in diff.conns:
        conn.send(b"*6\r\n$6\r\nBLMOVE\r\n$3\r\nsrc\r\n$3\r\ndst\r\n$4\r\nLEFT\r\n"
                  b"$4\r\nLEFT\r\n$1\r\n0\r\n")
    time.sleep(0.1)
    writer.same("RPUSH src foo")
    diff.read(2)  # foo, then the invalidation of dst
    no_push(diff)


def test_reply_off_does_not_silence_pushes(diff, side):
    writer = side.connect()
    diff.hello3()
    diff.same("CLIENT TRACKING on", "SET foo bar", "GET foo")
    for conn in diff.conns:
        conn.send(b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n")
    writer.same("SET foo bar2")
    diff.read()
    diff.same("CLIENT REPLY ON")
    no_push(diff)


def test_resp2_without_redirect_gets_nothing(diff, side):
    writer = side.connect()
    diff.same("CLIENT TRACKING on", "SET k 1", "GET k")
    writer.same("SET k 2", "FLUSHALL")
    no_push(diff)


# -- redirection ------------------------------------------------------------------------------


@pytest.fixture
def redirected(side):
    """A RESP2 connection subscribed to __redis__:invalidate and each side's id of it."""
    target = side.connect()
    ids = client_ids(target)
    target.same("SUBSCRIBE __redis__:invalidate")
    return target, ids


def test_resp2_redirect_to_invalidate_channel(diff, side, redirected):
    target, ids = redirected
    writer = side.connect()
    each(diff, ids, "CLIENT", "TRACKING", "on", "REDIRECT", ID)
    diff.same("SET a 1", "SET b 1", "GET a", "INCR b", "INCR a")
    target.read()  # message __redis__:invalidate [a]
    assert [c.command("CLIENT", "GETREDIR") for c in diff.conns] == [b":%d\r\n" % i for i in ids]
    diff.same("GET a")
    writer.same("FLUSHALL")
    target.read()  # the null: $-1 for a RESP2 tracker
    diff.same("HELLO 3", compare_hello=False)
    diff.same("GET b")
    writer.same("SET b 9", "FLUSHDB")
    target.read(2)  # [b], then the RESP3 tracker's null: _
    no_push(target)


def test_redirect_to_resp3_client_pushes(diff, side):
    target = side.connect()
    target.hello3()
    ids = client_ids(target)
    writer = side.connect()
    each(diff, ids, "CLIENT", "TRACKING", "on", "REDIRECT", ID)
    diff.same("GET k")
    writer.same("SET k 1")
    target.read()
    no_push(diff)


def test_broken_redirect(diff, side):
    target = side.connect()
    ids = client_ids(target)
    writer = side.connect()
    diff.hello3()
    each(diff, ids, "CLIENT", "TRACKING", "on", "REDIRECT", ID)
    diff.same("GET k")
    target.same("QUIT")
    time.sleep(0.05)
    writer.same("SET k 1")
    mine, theirs = diff.mine.read_reply(), diff.real.read_reply()
    assert mine == b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n" % ids[0]
    assert theirs == b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n" % ids[1]
    assert b"broken_redirect" in diff.mine.command("CLIENT", "TRACKINGINFO")
    flags = [re.search(rb"flags=(\w+)", c.command("CLIENT", "INFO")).group(1) for c in diff.conns]
    assert flags[0] == flags[1] == b"tR"


# -- BCAST -------------------------------------------------------------------------------------


def test_bcast_prefixes_batched_per_prefix(diff, side, redirected):
    target, ids = redirected
    each(diff, ids, "CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", ID,
         "PREFIX", "b:", "PREFIX", "a:")
    diff.same("MULTI", "INCR b:2", "INCR a:2", "INCR a:1", "INCR b:1", "INCR c:1", "EXEC")
    settle()
    target.read(2)  # a: then b:, each sorted
    each(diff, ids, "CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", ID, "PREFIX", "c:")
    diff("CLIENT", "TRACKINGINFO", mask=mask_integers)
    diff.same("INCR c:9")
    settle()
    target.read()
    no_push(target)


def test_bcast_empty_prefix_and_noloop(diff, side):
    writer = side.connect()
    diff.hello3()
    diff.same("CLIENT TRACKING on BCAST NOLOOP", "CLIENT TRACKINGINFO")
    writer.same("SET other1 1")
    settle()
    diff.read()
    diff.same("SET loop 1")
    settle()
    writer.same("SET other2 1")
    settle()
    diff.read()
    no_push(diff)


def test_bcast_lazy_expiry_is_not_filtered_by_noloop(diff):
    diff.hello3()
    diff.same("DEBUG SET-ACTIVE-EXPIRE 0", "CLIENT TRACKING on BCAST NOLOOP",
              "SET mykey v PX 1", "SET mykeyother v")
    time.sleep(0.05)
    diff.same("GET mykey")
    settle()
    diff.read()  # only mykey: expired by no client
    no_push(diff)
    diff.same("DEBUG SET-ACTIVE-EXPIRE 1")


def test_switch_to_bcast_drops_earlier_keys(diff, side):
    writer = side.connect()
    diff.hello3()
    diff.same("CLIENT TRACKING on", "GET key1", "CLIENT TRACKING off", "CLIENT TRACKING on BCAST")
    writer.same("INCR key1")
    settle()
    diff.read()  # the BCAST message only
    no_push(diff)


# -- OPTIN / OPTOUT / NOLOOP -------------------------------------------------------------------


def test_optin_and_optout(diff, side):
    writer = side.connect()
    diff.hello3()
    diff.same("CLIENT TRACKING on OPTIN", "GET k1", "CLIENT CACHING yes", "GET k2",
              "GET k3", "CLIENT CACHING yes", "MULTI", "GET k4", "EXEC")
    writer.same("MSET k1 1 k2 1 k3 1 k4 1")
    diff.read(2)  # k2, k4
    no_push(diff)
    diff.same("CLIENT TRACKING off", "CLIENT TRACKING on OPTOUT", "GET k1",
              "CLIENT CACHING no", "GET k2", "GET k3")
    writer.same("MSET k1 1 k2 1 k3 1")
    diff.read(2)  # k1, k3
    no_push(diff)


def test_noloop_default_mode(diff, side):
    writer = side.connect()
    diff.hello3()
    diff.same("CLIENT TRACKING on NOLOOP", "MGET a b c")
    writer.same("SET a 1")
    diff.read()
    diff.same("SET b 1", "SET c 1")
    no_push(diff)


def test_scripts_track_their_declared_keys_when_they_read(diff, side):
    writer = side.connect()
    diff.hello3()
    diff.same("CLIENT TRACKING on")
    diff.same(("EVAL", "redis.call('set', 'k3', 'bar')", "2", "k1", "k2"))
    writer.same("MSET k2 2 k1 2")
    no_push(diff)
    diff.same(("EVAL", "return redis.call('get', 'k3')", "2", "k1", "k2"))
    writer.same("MSET k2 2 k1 2")
    diff.read(2)
    diff.same(("EVAL_RO", "return redis.call('ping')", "2", "k1", "k2"))
    writer.same("MSET k2 2 k1 2")
    no_push(diff)


# -- state and introspection -------------------------------------------------------------------


def test_trackinginfo_getredir_and_client_list(diff):
    for proto in (2, 3):
        diff.hello(proto)
        diff.same(
            "CLIENT TRACKINGINFO", "CLIENT GETREDIR",
            "CLIENT TRACKING on", "CLIENT TRACKINGINFO", "CLIENT GETREDIR",
            "CLIENT TRACKING on NOLOOP", "CLIENT TRACKINGINFO",
            "CLIENT TRACKING off", "CLIENT TRACKING on optin", "CLIENT TRACKINGINFO",
            "CLIENT CACHING yes", "CLIENT TRACKINGINFO",
            "CLIENT TRACKING off", "CLIENT TRACKING on optout", "CLIENT CACHING no",
            "CLIENT TRACKINGINFO",
            "CLIENT TRACKING off", "CLIENT TRACKING on BCAST PREFIX foo PREFIX bar",
            "CLIENT TRACKINGINFO", "CLIENT TRACKING on BCAST", "CLIENT TRACKINGINFO",
            "CLIENT TRACKING off", "CLIENT TRACKINGINFO", "CLIENT GETREDIR",
            compare_hello=False)
    lines = [c.command("CLIENT", "TRACKING", "on", "BCAST") and c.command("CLIENT", "INFO")
             for c in diff.conns]
    for line in lines:
        assert b" flags=tB " in line and b" redir=0 " in line


def test_errors(diff):
    diff.same(
        "CLIENT TRACKING", "CLIENT TRACKING maybe", "CLIENT TRACKING on BOGUS",
        "CLIENT TRACKING on REDIRECT", "CLIENT TRACKING on REDIRECT x",
        "CLIENT TRACKING on REDIRECT 999999", "CLIENT TRACKING on REDIRECT 0",
        "CLIENT TRACKING on PREFIX a", "CLIENT TRACKING on BCAST OPTIN",
        "CLIENT TRACKING on BCAST OPTOUT", "CLIENT TRACKING on OPTIN OPTOUT",
        "CLIENT TRACKING on BCAST PREFIX FOOBAR PREFIX FOO",
        "CLIENT TRACKING on BCAST PREFIX FOO PREFIX FOOBAR",
        "CLIENT CACHING yes", "CLIENT CACHING", "CLIENT GETREDIR x", "CLIENT TRACKINGINFO x",
        "CLIENT TRACKING on OPTIN", "CLIENT CACHING no", "CLIENT CACHING maybe",
        "CLIENT TRACKING on OPTOUT", "CLIENT TRACKING on BCAST",
        "CLIENT TRACKING off", "CLIENT TRACKING on OPTOUT", "CLIENT CACHING yes",
        "CLIENT TRACKING off", "CLIENT TRACKING on BCAST PREFIX FOO PREFIX BAR",
        "CLIENT TRACKING on BCAST PREFIX FO", "CLIENT TRACKING on BCAST PREFIX BARB",
        "CLIENT TRACKING on BCAST PREFIX BAR", "CLIENT TRACKING on", "CLIENT TRACKING off",
        "CLIENT TRACKINGINFO", "CLIENT HELP",
    )


def test_prefix_overlap_among_later_new_prefixes_errs_then_enables(diff):
    # Redis 7.0 answers the error and then +OK (and tracking is on).
    diff.same("CLIENT TRACKING on BCAST PREFIX a PREFIX b PREFIX bc")
    diff.read()
    diff.same("CLIENT TRACKINGINFO")


def test_info_fields(diff, side, redirected):
    target, ids = redirected
    other = side.connect()
    writer = side.connect()
    each(diff, ids, "CLIENT", "TRACKING", "on", "REDIRECT", ID)
    diff.same("GET key1", "GET key2", "GET key2")
    other.same("CLIENT TRACKING on BCAST PREFIX prefix:", "GET key1")
    writer.same("SET prefix:key1 1")

    def fields(server):
        info = redis.Redis(port=server.port).info()
        return {k: info[k] for k in ("tracking_clients", "tracking_total_keys",
                                     "tracking_total_items", "tracking_total_prefixes")}

    assert diff.equal(fields) == {"tracking_clients": 2, "tracking_total_keys": 2,
                                  "tracking_total_items": 2, "tracking_total_prefixes": 1}


def test_reset_turns_tracking_off(diff):
    diff.same("CLIENT TRACKING on BCAST PREFIX p", "RESET", "CLIENT TRACKINGINFO")


def test_tracking_table_max_keys(diff, side, redirected):
    target, ids = redirected
    conf = side.connect()
    each(diff, ids, "CLIENT", "TRACKING", "on", "REDIRECT", ID, "NOLOOP")
    diff.same("MSET key1 1 key2 2", "MGET key1 key2")
    try:
        conf.same("CONFIG SET tracking-table-max-keys 1")
        for conn in target.conns:
            assert conn.read_reply().startswith(
                b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$4\r\nkey")
        conf.same("INFO keyspace")
        keys = [c.command("INFO", "stats") for c in conf.conns]
        assert all(b"tracking_total_keys:1\r\n" in k for k in keys)
    finally:
        conf.same("CONFIG SET tracking-table-max-keys 1000000")


# -- redis-py's client-side cache -----------------------------------------------------------


@pytest.fixture
def csc_any_version(monkeypatch):
    # redis-py enables its client-side cache only for servers that say they are 7.4 or
    # later (a policy: 7.0's tracking is what the cache uses); both servers here say
    # 7.0.15, so the floor is lowered for this test.
    monkeypatch.setattr(CacheProxyConnection, "MIN_ALLOWED_VERSION", "7.0.0")


def _cache_scenario(server) -> list:
    cached = redis.Redis(port=server.port, protocol=3, cache_config=CacheConfig())
    writer = redis.Redis(port=server.port)
    seen = []
    try:
        writer.flushall()
        writer.set("foo", "bar")
        seen.append(cached.get("foo"))
        cache = cached.get_cache()
        seen.append(cache.size)
        seen.append(cached.get("foo"))  # from the cache
        writer.set("foo", "baz")
        deadline = time.time() + 5
        while cached.get("foo") != b"baz":
            assert time.time() < deadline, "the invalidation never arrived"
            time.sleep(0.01)
        seen.append(cached.get("foo"))
        cached.mget("a", "b")
        seen.append(cache.size)
        writer.flushall()  # a null invalidation: the whole cache goes
        deadline = time.time() + 5
        while cache.size:
            assert time.time() < deadline, "the flush invalidation never arrived"
            cached.ping()
            time.sleep(0.01)
        seen.append(cached.get("foo"))
    finally:
        cached.close()
        writer.close()
    return seen


def test_redis_py_client_side_cache(diff, csc_any_version):
    assert diff.equal(_cache_scenario) == [b"bar", 1, b"bar", b"baz", 2, None]
