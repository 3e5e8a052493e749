"""Pub/sub (pubsub.c): SUBSCRIBE & co., PUBLISH, PUBSUB, shard channels, the RESP2
subscribed-mode restriction and RESP3 pushes, compared byte for byte with redis-server
7.0; redis-py PubSub objects with several subscribers and patterns; slow subscribers."""

import time

import pytest

from conftest import Differential, RawConnection, start_vermilion


@pytest.fixture
def pubs(vermilion_server, redis_server):
    """A publisher connection on each server, driven in step like diff's."""
    pubs = Differential(RawConnection(vermilion_server.port), RawConnection(redis_server.port),
                        vermilion_server, redis_server)
    yield pubs
    for c in pubs.conns:
        c.close()


# -- replies, byte for byte -------------------------------------------------------------


@pytest.mark.parametrize("proto", [2, 3])
def test_subscribe_unsubscribe_replies(diff, proto):
    # One channel per UNSUBSCRIBE: Redis leaves "all channels" in hash order.
    diff.same(
        ("HELLO", proto),
        ("SUBSCRIBE", "a"), ("SUBSCRIBE", "b"), ("SUBSCRIBE", "a"),
        ("PSUBSCRIBE", "n*"), ("PSUBSCRIBE", "n*"),
        ("UNSUBSCRIBE", "nope"), ("UNSUBSCRIBE", "a"), ("PUNSUBSCRIBE", "x"),
        ("PUNSUBSCRIBE",), ("UNSUBSCRIBE",), ("UNSUBSCRIBE",), ("PUNSUBSCRIBE",),
        ("SSUBSCRIBE", "s"), ("SSUBSCRIBE", "s", "t"), ("SUNSUBSCRIBE", "t"),
        ("SUNSUBSCRIBE",), ("SUNSUBSCRIBE",),
        ("PING",), ("PING", "x"),
        compare_hello=False)


def test_multi_channel_subscribe_replies(diff):
    diff.same(
        ("SUBSCRIBE", "a", "b", "c"), ("PSUBSCRIBE", "x*", "y?"),
        ("UNSUBSCRIBE", "c", "b"), ("PUNSUBSCRIBE", "y?", "zz"),
    )


def test_resp2_subscribed_mode_restrictions(diff):
    diff.same(
        ("SUBSCRIBE", "a"),
        ("GET", "x"), ("SET", "x", "1"), ("CONFIG", "GET", "maxmemory"), ("MULTI",),
        ("PUBLISH", "a", "m"), ("NOSUCH",), ("PING",), ("PING", "hello"),
        ("PSUBSCRIBE", "p*"), ("UNSUBSCRIBE", "a"), ("GET", "x"), ("PUNSUBSCRIBE", "p*"),
        ("GET", "x"), ("PING",),
        ("SSUBSCRIBE", "s"), ("GET", "x"), ("SUNSUBSCRIBE",), ("GET", "x"),
    )


def test_resp3_subscribed_client_runs_anything(diff):
    diff.same(
        ("HELLO", "3"), ("SUBSCRIBE", "a"), ("SET", "x", "1"), ("GET", "x"), ("PING",),
        ("HELLO", "2"), ("GET", "x"), ("RESET",), ("GET", "x"),
        compare_hello=False)


def test_reset_leaves_subscriptions(diff, pubs):
    diff.same(("SUBSCRIBE", "r1"), ("PSUBSCRIBE", "r*"), ("RESET",), ("GET", "x"))
    for p in pubs.conns:
        assert p.command("PUBLISH", "r1", "m") == b":0\r\n"
        assert p.command("PUBSUB", "NUMPAT") == b":0\r\n"


def test_pubsub_introspection(diff, pubs):
    diff.same(("SUBSCRIBE", "news.a", "news.b", "other"), ("PSUBSCRIBE", "news.*", "x"))
    pubs.same(
        ("PUBSUB", "NUMSUB"), ("PUBSUB", "NUMSUB", "news.a", "nope", "news.a"),
        ("PUBSUB", "CHANNELS", "news.[a]"), ("PUBSUB", "CHANNELS", "*z*"),
        ("PUBSUB", "NUMPAT"), ("PUBSUB", "HELP"), ("PUBSUB", "CHANNELS", "a", "b"),
        ("PUBSUB", "NOSUCH"), ("PUBSUB",), ("PUBSUB", "NUMPAT", "x"),
        ("PUBSUB", "SHARDCHANNELS"), ("PUBSUB", "SHARDNUMSUB", "x"),
        ("PUBLISH", "news.a", "hello"), ("PUBLISH", "other", "x"), ("PUBLISH", "none", "x"),
        ("SPUBLISH", "news.a", "x"),
    )
    diff.read(3)  # message news.a, pmessage news.*, message other
    listing = pubs.mine.command("PUBSUB", "CHANNELS")
    assert sorted(listing.split(b"\r\n")[2::2]) == [b"news.a", b"news.b", b"other"]


def test_message_shapes(diff, pubs):
    for proto in (2, 3):
        diff.same(("HELLO", proto), ("SUBSCRIBE", "c"), ("PSUBSCRIBE", "c*"),
                  ("SSUBSCRIBE", "sc"), compare_hello=False)
        pubs.same(("PUBLISH", "c", "m\r\n1"), ("SPUBLISH", "sc", ""), ("PUBLISH", "cc", "x"))
        diff.read(4)
        diff.same(("RESET",))


def test_publish_to_self_in_resp3_keeps_order(diff):
    # The message pushed during PUBLISH arrives before PUBLISH's own reply, after the
    # replies of the commands before it (even when pipelined).
    diff.hello3()
    data = b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nme\r\n*3\r\n$7\r\nPUBLISH\r\n$2\r\nme\r\n$1\r\nx\r\n"
    data += b"*1\r\n$4\r\nPING\r\n"
    diff.mine.send(data)
    diff.real.send(data)
    diff.read(4)


def test_subscribe_inside_multi(diff):
    diff.same(("MULTI",), ("SUBSCRIBE", "m1"), ("SSUBSCRIBE", "m2"),
              ("EXEC",), ("GET", "x"), ("UNSUBSCRIBE",), ("GET", "x"))


def test_closed_subscriber_is_removed(vermilion_server, raw):
    sub = RawConnection(vermilion_server.port)
    sub.command("SUBSCRIBE", "gone")
    sub.command("PSUBSCRIBE", "gone*")
    sub.command("SSUBSCRIBE", "sgone")
    assert raw.command("PUBSUB", "NUMSUB", "gone") == b"*2\r\n$4\r\ngone\r\n:1\r\n"
    sub.close()
    deadline = time.time() + 5
    while raw.command("PUBLISH", "gone", "x") != b":0\r\n" and time.time() < deadline:
        time.sleep(0.02)
    assert raw.command("PUBSUB", "NUMPAT") == b":0\r\n"
    assert raw.command("PUBSUB", "SHARDNUMSUB", "sgone") == b"*2\r\n$5\r\nsgone\r\n:0\r\n"


def test_client_list_pubsub_fields(vermilion_server, redis_server):
    out = []
    for port in (vermilion_server.port, redis_server.port):
        c = RawConnection(port)
        c.command("SUBSCRIBE", "a", "b")
        c.command("PSUBSCRIBE", "p*")
        c.command("SSUBSCRIBE", "s")
        c.command("PING")
        c.send(b"*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n")
        c.command("UNSUBSCRIBE", "a")  # reads the CLIENT INFO refusal first
        other = RawConnection(port)
        listing = other.command("CLIENT", "LIST", "TYPE", "pubsub")
        fields = [f for f in listing.split() if f.split(b"=")[0] in (b"flags", b"sub", b"psub", b"ssub")]
        out.append(fields)
        c.close()
        other.close()
    assert out[0] == out[1]


# -- redis-py ---------------------------------------------------------------------------


def _get(p, timeout=2.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = p.get_message(timeout=0.1)
        if m is not None:
            return m
    raise AssertionError("no message")


def test_redis_py_several_subscribers_and_patterns(r, vermilion_server):
    proto = r.connection_pool.connection_kwargs.get("protocol", 2)
    subs = [vermilion_server.client(protocol=proto).pubsub() for _ in range(3)]
    subs[0].subscribe("orders")
    subs[1].psubscribe("ord*")
    subs[2].subscribe("orders")
    subs[2].psubscribe("o*", "x*")
    for s in subs:
        while s.get_message(timeout=0.2) is not None:
            pass
    assert r.publish("orders", "o-1") == 4  # two channel, two pattern deliveries
    assert _get(subs[0]) == {"type": "message", "pattern": None, "channel": b"orders",
                             "data": b"o-1"}
    assert _get(subs[1]) == {"type": "pmessage", "pattern": b"ord*", "channel": b"orders",
                             "data": b"o-1"}
    got = [_get(subs[2]), _get(subs[2])]
    assert [m["type"] for m in got] == ["message", "pmessage"]
    assert r.pubsub_numsub("orders") == [(b"orders", 2)]
    assert r.pubsub_numpat() == 3
    assert sorted(r.pubsub_channels()) == [b"orders"]
    for s in subs:
        s.close()


def test_redis_py_handlers_and_shard_channels(r, vermilion_server):
    proto = r.connection_pool.connection_kwargs.get("protocol", 2)
    client = vermilion_server.client(protocol=proto)
    seen = []
    p = client.pubsub()
    p.subscribe(**{"cb": lambda m: seen.append(m["data"])})
    p.ssubscribe("shard")
    while p.get_message(timeout=0.2) is not None:
        pass
    assert r.publish("cb", "one") == 1
    assert r.spublish("shard", "two") == 1
    assert r.pubsub_shardnumsub("shard") == [(b"shard", 1)]
    deadline = time.time() + 2
    smessage = None
    while time.time() < deadline and (not seen or smessage is None):
        m = p.get_message(timeout=0.1)
        if m and m["type"] == "smessage":
            smessage = m
    assert seen == [b"one"]
    assert smessage["channel"] == b"shard" and smessage["data"] == b"two"
    p.close()
    client.close()


def test_redis_py_asyncio_pubsub(vermilion_server):
    import asyncio

    import redis.asyncio as aioredis

    async def scenario(proto):
        client = aioredis.Redis(port=vermilion_server.port, protocol=proto)
        p = client.pubsub()
        await p.psubscribe("aio.*")
        await p.get_message(timeout=1)
        assert await client.publish("aio.x", "v") == 1
        message = None
        for _ in range(20):
            message = await p.get_message(timeout=0.1)
            if message:
                break
        assert message["type"] == "pmessage" and message["data"] == b"v"
        await p.aclose()
        await client.aclose()

    for proto in (2, 3):
        asyncio.run(scenario(proto))


# -- slow subscribers ---------------------------------------------------------------------


def test_slow_subscriber_is_disconnected(tmp_path):
    server = start_vermilion(tmp_path)
    try:
        server.client().config_set("client-output-buffer-limit", "pubsub 256kb 128kb 1")
        slow = RawConnection(server.port)
        slow.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
        slow.command("SUBSCRIBE", "flood")
        pub = server.client()
        payload = b"x" * 10000
        deadline = time.time() + 10
        while time.time() < deadline:
            if pub.publish("flood", payload) == 0:
                break  # the subscriber is gone
        assert pub.publish("flood", payload) == 0
        assert pub.pubsub_numsub("flood") == [(b"flood", 0)]
        pub.close()
        slow.close()
    finally:
        server.stop()


def test_publish_to_self_inside_multi(diff):
    # Redis 7.0 writes the pushes inside EXEC's array, before the PUBLISH replies.
    diff.same(("HELLO", "3"), ("SUBSCRIBE", "foo"), ("MULTI",),
              ("PING", "abc"), ("PUBLISH", "foo", "bar"),
              ("PUBLISH", "foo", "vaz"), ("PING", "def"), ("EXEC",), compare_hello=False)


def test_pushes_ignore_client_reply_off(diff):
    # pubsub.tcl "PubSub messages with CLIENT REPLY OFF": in RESP3 the confirmations
    # and messages are pushes, which CLIENT REPLY OFF does not silence.
    for conn in diff.conns:
        conn.command("HELLO", "3")
        conn.send(b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n")
    diff.same(("SUBSCRIBE", "channel"), ("PSUBSCRIBE", "ch*"))
    for conn in diff.conns:
        conn.send(b"*3\r\n$7\r\nPUBLISH\r\n$7\r\nchannel\r\n$5\r\nhello\r\n")
    diff.read(2)  # message, pmessage; PUBLISH's own reply is dropped
    diff.same(("UNSUBSCRIBE", "channel"), ("PUNSUBSCRIBE", "ch*"))
    diff.same(("CLIENT", "REPLY", "ON"), ("PING",))


def test_info_stats_pubsub_counts(vermilion_server, redis_server):
    out = []
    for port in (vermilion_server.port, redis_server.port):
        sub = RawConnection(port)
        sub.command("SUBSCRIBE", "i1", "i2")
        sub.command("PSUBSCRIBE", "p*", "p*")
        sub.command("SSUBSCRIBE", "s1")
        info = RawConnection(port)
        text = info.command("INFO", "stats")
        out.append([line for line in text.split(b"\r\n") if line.startswith(b"pubsub")])
        sub.close()
        info.close()
    assert out[0] == out[1] == [b"pubsub_channels:2", b"pubsub_patterns:1",
                                b"pubsubshard_channels:1"]


def test_resp2_confirmations_and_events_ignore_client_reply_off(diff):
    # pubsub.tcl "Keyspace notifications: we receive keyspace notifications": in RESP2
    # too the (un)subscribe confirmations are pushes (CLIENT_PUSHING), never silenced.
    diff.same(("CONFIG", "SET", "notify-keyspace-events", "KA"))
    for conn in diff.conns:
        conn.send(b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n")
    try:
        diff.same(("PSUBSCRIBE", "*"))
        for server in (diff.vermilion_server, diff.redis_server):
            RawConnection(server.port).command("SET", "foo", "bar")
        diff.read(1)
        diff.same(("PUNSUBSCRIBE", "*"))
    finally:
        for server in (diff.vermilion_server, diff.redis_server):
            RawConnection(server.port).command("CONFIG", "SET", "notify-keyspace-events", "")
