"""Keyspace notifications (notify.c): the same command sequence on vermilion and on
redis-server 7.0 must publish the same __keyspace@/__keyevent@ messages in the same
order, for every event class of notify-keyspace-events."""

import time

import pytest
import redis

from conftest import RawConnection

END = "__end__"


class Listener:
    """A PSUBSCRIBE __key*__:* connection that reads until an end marker."""

    def __init__(self, port):
        self.conn = RawConnection(port)
        self.conn.command("PSUBSCRIBE", "__key*__:*")
        self.conn.command("SUBSCRIBE", END)

    def drain(self, publisher) -> list:
        publisher.command("PUBLISH", END, "x")
        events = []
        while True:
            parts = self.conn.read_reply().split(b"\r\n")
            if parts[2] == b"message":
                return events
            events.append((parts[6].decode(), parts[8].decode()))

    def close(self):
        self.conn.close()


@pytest.fixture
def servers(vermilion_server, redis_server):
    """(listener, commander) on each server; the config is restored afterwards."""
    out = []
    for port in (vermilion_server.port, redis_server.port):
        cmd = RawConnection(port)
        cmd.command("FLUSHALL")
        out.append((Listener(port), cmd))
    yield out
    for listener, cmd in out:
        cmd.command("CONFIG", "SET", "notify-keyspace-events", "")
        cmd.command("FLUSHALL")
        listener.close()
        cmd.close()


def events_of(servers, flags, script):
    results = []
    for listener, cmd in servers:
        assert cmd.command("CONFIG", "SET", "notify-keyspace-events", flags) == b"+OK\r\n"
        for line in script:
            args = line.split(" ") if isinstance(line, str) else line
            cmd.command(*args)
        results.append(listener.drain(cmd))
    return results


def assert_same(servers, flags, script):
    mine, theirs = events_of(servers, flags, script)
    assert mine == theirs
    return mine


STRINGS = """set a 1
set b 1 ex 100
getex b exat 1
set c 1
getex c persist
set d 5
expire d 100
getex d persist
incr d
incrby d 3
decr d
incrbyfloat d 1.5
append d x
append e y
setrange e 3 zz
setrange e 0 q
mset f 1 g 2
msetnx h 1 i 2
msetnx h 1 f 2
setnx h 2
setnx new 2
getset f 3
getdel g
getdel g
setex se 100 v
psetex pse 100000 v
set x 1 nx
set x 2 xx get
set x 3 keepttl""".splitlines()

GENERIC = """set k 1
del k nope
set k 1
unlink k
set c 1
rename c c2
rename c2 c2
renamenx c2 e
set e 1
renamenx c2 e
copy c2 c3
copy c2 c3
copy c2 c3 replace
move c3 1
copy c2 c4 db 2
expire c2 100
pexpireat c2 99999999999999
persist c2
persist c2
expire c2 100 nx
expire nokey 10
pexpire c2 -1
set r v""".splitlines()

LISTS = """rpush l a b c d e
lpush l z
lpushx nol x
rpushx l y
lpop l
rpop l 2
lpop l 0
lset l 0 q
linsert l before q w
linsert l before nope w
lrem l 1 w
lrem l 1 absent
ltrim l 0 1
ltrim l 5 6
rpush l2 a b
lmove l2 l3 left right
rpoplpush l2 l3
lmpop 2 l2 l3 left count 5
rpush l4 a
lmove l4 l4 left left
rpush l5 x y
lrem l5 0 x
lrem l5 0 y""".splitlines()

HASHES = """hset h a 1 b 2
hset h a 1
hmset h c 3
hsetnx h a 1
hsetnx h d 3
hincrby h a 5
hincrbyfloat h b 1.5
hdel h a nope
hdel h b c d
hdel h nope""".splitlines()

SETS = """sadd s a b c d
sadd s a
srem s a
srem s nope
smove s s2 b
smove s s2 c
smove s s2 d
smove s2 s2 b
sadd s3 1 2 3
spop s3
spop s3 5
sadd s4 a b
sinterstore s5 s4 s4
sdiffstore s5 s4 s4
sdiffstore s5 s4 s4
sunionstore s6 s4""".splitlines()

ZSETS = """zadd z 1 a 2 b 3 c 4 d 5 e
zadd z incr 2 a
zincrby z 1 b
zadd z nx 1 a
zadd z xx ch 9 a
zadd z gt 1 a
zrem z a nope
zremrangebyrank z 0 0
zremrangebyscore z 3 3
zremrangebyscore z 100 200
zremrangebylex z - +
zadd z2 1 a 2 b 3 c
zpopmin z2
zpopmax z2 5
zadd z3 1 a 2 b
zunionstore z4 1 z3
zinterstore z4 2 z3 nokey
zrangestore z5 z3 0 -1
zdiffstore z5 1 nokey
zmpop 1 z3 min count 10""".splitlines()

OTHERS = """geoadd g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
georadius g 15 37 200 km store g2
georadiusbymember g Palermo 300 km storedist g2
geosearchstore g3 g frommember Palermo byradius 100 km
georadius g 0 0 1 km store g2
pfadd hll a b c
pfadd hll a
pfmerge hll2 hll
setbit bits 7 1
bitop or bits2 bits
bitop or bits2 nokey
bitfield bf set u8 0 255 get u8 0
bitfield bf incrby u2 100 1 overflow fail incrby u2 102 1
bitfield bf2 get u8 0
rpush sl 3 1 2
sort sl store sl2
sort sl limit 5 5 store sl2
set num 10""".splitlines()


@pytest.mark.parametrize("script", [STRINGS, GENERIC, LISTS, HASHES, SETS, ZSETS, OTHERS],
                         ids=["strings", "generic", "lists", "hashes", "sets", "zsets", "others"])
def test_same_events_as_redis(servers, script):
    events = assert_same(servers, "KEA", script)
    assert events  # the sequence does publish something


@pytest.mark.parametrize("flags", ["K$", "El", "Kg", "Eh", "Ksz", "KEg$", "AK", "E", "Kx", "A"])
def test_event_classes_filter(servers, flags):
    assert_same(servers, flags, STRINGS[:8] + GENERIC[:8] + LISTS[:4] + HASHES[:3]
                + SETS[:3] + ZSETS[:3])


def test_transaction_events(servers):
    assert_same(servers, "KEA", ["multi", "set t 1", "lpush tl x", "incr t", "exec",
                                 "multi", "set t 2", "discard"])


def test_events_in_other_databases(servers):
    assert_same(servers, "KEA", ["select 3", "set a 1", "move a 4", "select 4", "del a",
                                 "select 0"])


def test_lazy_expired_event(servers):
    for listener, cmd in servers:
        cmd.command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        mine, theirs = events_of(servers, "KEA", ["set e 1 px 30"])
        time.sleep(0.08)
        for listener, cmd in servers:
            cmd.command("GET", "e")
        after = [listener.drain(cmd) for listener, cmd in servers]
    finally:
        for listener, cmd in servers:
            cmd.command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    assert mine == theirs
    assert after[0] == after[1] == [("__keyspace@0__:e", "expired"),
                                    ("__keyevent@0__:expired", "e")]


def test_active_expired_event(servers):
    for listener, cmd in servers:
        cmd.command("CONFIG", "SET", "notify-keyspace-events", "Ex")
        cmd.command("SET", "act", "1", "PX", "20")
    for listener, cmd in servers:
        # No command touches the key: only the active cycle can expire it.
        conn = listener.conn
        reply = conn.read_reply()
        assert reply == (b"*4\r\n$8\r\npmessage\r\n$10\r\n__key*__:*\r\n"
                         b"$22\r\n__keyevent@0__:expired\r\n$3\r\nact\r\n")


def test_no_events_when_disabled(servers):
    assert_same(servers, "", ["set a 1", "del a"])
    mine, _ = events_of(servers, "", ["set a 1", "del a"])
    assert mine == []


def test_resp3_keyspace_push(vermilion_server, redis_server):
    out = []
    for port in (vermilion_server.port, redis_server.port):
        c = RawConnection(port)
        c.command("HELLO", "3")
        c.command("CONFIG", "SET", "notify-keyspace-events", "K$")
        c.command("SUBSCRIBE", "__keyspace@0__:mine")
        # The event pushed to the client running the command precedes its reply.
        out.append((c.command("SET", "mine", "1"), c.read_reply()))
        c.command("CONFIG", "SET", "notify-keyspace-events", "")
        c.command("DEL", "mine")
        c.close()
    assert out[0] == out[1]


NEW_KEYS = """set foo bar
set foo baz
set bar bar
mset a 1 b 2 foo 3
rpush l x
rpush l y
hset h f v
sadd s m
smove s s2 m
zadd z 1 a
incr n
append ap x
setrange sr 2 x
setbit sb 1 1
pfadd p a
rename foo foo2
lmove l l2 left right
copy bar bar2
sunionstore su s2
zunionstore zu 1 z
geoadd g 1 1 m
set bar xx
del bar
set bar y
multi
set m1 1
set m1 2
lpush m2 x
exec""".splitlines()


@pytest.mark.parametrize("flags", ["En", "Kgn", "KE$ln"])
def test_new_key_events(servers, flags):
    # pubsub.tcl "Keyspace notifications: new key test": 'n' fires when a key is
    # created (dbAdd), before the creating command's own event.
    events = assert_same(servers, flags, NEW_KEYS)
    assert ("__keyevent@0__:new", "foo") in events or ("__keyspace@0__:foo", "new") in events


def test_all_classes_plus_new_reads_back_as_AKE_yet_keeps_new(servers):
    # 'A' does not cover 'n': CONFIG GET shows "AKE" for "KEAn" (the string form has no
    # room for it) while the server keeps the 'n' bit and publishes new-key events.
    events = assert_same(servers, "KEAn", NEW_KEYS)
    assert ("__keyevent@0__:new", "foo") in events
    for _, cmd in servers:
        assert cmd.command("CONFIG", "GET", "notify-keyspace-events") == \
            b"*2\r\n$22\r\nnotify-keyspace-events\r\n$3\r\nAKE\r\n"


def test_new_key_events_of_keys_replaced_or_made_in_another_db(servers, redis_server):
    # dbAdd() publishes "new": also for a key MOVE or COPY ... DB creates in another
    # database, and for a key RENAME, COPY REPLACE or RESTORE REPLACE replaces (Redis
    # deletes the old one, then adds).
    source = redis.Redis(port=redis_server.port)
    source.set("tmp", "1")
    payload = source.dump("tmp")
    source.delete("tmp")
    script = ["set e 1", "move e 1", "set f 1", "copy f g", "copy f h db 1",
              "copy f g replace", "copy f h db 1 replace", "set a 1", "set b 2", "rename a b",
              "set c 1", [b"restore", b"c", b"0", payload, b"replace"],
              [b"restore", b"d", b"0", payload]]
    events = assert_same(servers, "KEAn", script)
    assert ("__keyevent@1__:new", "e") in events


def test_new_key_tracking_stops(servers):
    assert_same(servers, "En", ["set t1 1"])
    assert_same(servers, "E$", ["set t2 1", "set t3 1"])


STREAM_SEQUENCE = [
    ("XADD", "s", "1-1", "f", "v"),
    ("XADD", "s", "MAXLEN", "1", "2-1", "f", "v"),
    ("XDEL", "s", "2-1"),
    ("XADD", "s", "3-1", "f", "v"),
    ("XTRIM", "s", "MAXLEN", "0"),
    ("XSETID", "s", "10-1"),
    ("XGROUP", "CREATE", "s", "g", "$"),
    ("XGROUP", "SETID", "s", "g", "0"),
    ("XGROUP", "CREATECONSUMER", "s", "g", "alice"),
    ("XGROUP", "DELCONSUMER", "s", "g", "alice"),
    ("XGROUP", "DESTROY", "s", "g"),
]


def _recorded_events(server, flags, commands):
    """Every keyspace event the commands publish on server, in order."""
    conn = server.client()
    conn.flushall()
    conn.config_set("notify-keyspace-events", flags)
    sub = server.client().pubsub()
    sub.psubscribe("__key*__:*")
    sub.get_message(timeout=1)
    for command in commands:
        conn.execute_command(*command)
    conn.execute_command("PING")
    events = []
    deadline = time.time() + 5
    while time.time() < deadline:
        message = sub.get_message(timeout=0.2)
        if message is None:
            break
        if message["type"] == "pmessage":
            events.append((message["channel"], message["data"]))
    sub.close()
    conn.config_set("notify-keyspace-events", "")
    return events


def _stream_events(server):
    return _recorded_events(server, "KEA", STREAM_SEQUENCE)


def test_stream_events_match_redis(vermilion_server, redis_server):
    ours = _stream_events(vermilion_server)
    assert ours == _stream_events(redis_server)
    assert (b"__keyevent@0__:xgroup-createconsumer", b"s") in ours


KEYMISS_SEQUENCE = [
    ("GET", "missing"), ("SET", "present", "1"), ("MGET", "present", "a", "b"),
    ("EXISTS", "a", "present", "a"), ("TYPE", "nope"), ("TTL", "nope"), ("STRLEN", "x"),
    ("LRANGE", "l", "0", "-1"), ("HGET", "h", "f"), ("SMEMBERS", "s"), ("ZSCORE", "z", "m"),
    ("OBJECT", "ENCODING", "nope"), ("GETRANGE", "x", "0", "1"), ("SET", "w", "1"),
]


def _keymiss_events(server):
    return _recorded_events(server, "KEm", KEYMISS_SEQUENCE)


def test_keymiss_events_match_redis(vermilion_server, redis_server):
    ours = _keymiss_events(vermilion_server)
    assert ours == _keymiss_events(redis_server)
    assert (b"__keyevent@0__:keymiss", b"missing") in ours


def test_xclaim_and_xautoclaim_announce_the_consumers_they_create(diff):
    # pubsub.tcl "Keyspace notifications: stream events test".
    diff.same("CONFIG SET notify-keyspace-events Kt", "DEL mystream")
    for conn in diff.conns:
        conn.command("PSUBSCRIBE", "*")
    try:
        for server in (diff.vermilion_server, diff.redis_server):
            admin = RawConnection(server.port)
            for command in ("XGROUP CREATE mystream mygroup $ MKSTREAM",
                            "XGROUP CREATECONSUMER mystream mygroup Bob",
                            "XADD mystream 1 field1 A",
                            "XREADGROUP GROUP mygroup Alice STREAMS mystream >",
                            "XCLAIM mystream mygroup Mike 0 1-0 FORCE",
                            "XGROUP DELCONSUMER mystream mygroup Lee",
                            "XAUTOCLAIM mystream mygroup Bob 0 1-0",
                            "XAUTOCLAIM mystream mygroup Zed 0 1-0",
                            "XGROUP DELCONSUMER mystream mygroup Bob"):
                admin.command(*command.split())
            admin.close()
        diff.read(7)
    finally:
        for server in (diff.vermilion_server, diff.redis_server):
            admin = RawConnection(server.port)
            admin.command("CONFIG", "SET", "notify-keyspace-events", "")
            admin.command("DEL", "mystream")
            admin.close()
