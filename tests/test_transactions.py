"""MULTI / EXEC / DISCARD / WATCH / UNWATCH (multi.c): exact replies against redis-server
7.0, redis-py transactional pipelines, WATCH races between two connections, MONITOR
order and MULTI/EXEC propagation to the AOF."""

import time

import pytest
import redis

from conftest import RawConnection, start_vermilion


# -- replies and errors, byte for byte ------------------------------------------------


@pytest.mark.parametrize("proto", [2, 3])
def test_basic_transaction_replies(diff, proto):
    diff.same(
        ("HELLO", proto, "SETNAME", "x"),
        ("MULTI",), ("SET", "a", "1"), ("INCR", "a"), ("GET", "a"), ("LPUSH", "a", "x"),
        ("EXEC",),
        ("MULTI",), ("EXEC",),
        ("EXEC",), ("DISCARD",),
        ("MULTI",), ("MULTI",), ("WATCH", "x"), ("PING",), ("EXEC",),
        ("MULTI",), ("SET", "b", "1"), ("DISCARD",), ("GET", "b"),
        compare_hello=False)


def test_queue_errors_abort_exec(diff):
    diff.same(
        ("MULTI",), ("SET", "a", "1"), ("NOSUCHCOMMAND", "x"), ("SET", "b"),
        ("EXEC",), ("GET", "a"),
        ("MULTI",), ("SET", "a", "1"), ("CONFIG", "NOSUCH"), ("EXEC",),
        # no-multi commands are refused while queueing (SAVE, SHUTDOWN...)
        ("MULTI",), ("SAVE",), ("EXEC",),
        ("MULTI",), ("SET", "a", "2"), ("EXEC",), ("GET", "a"),
    )


def test_runtime_errors_do_not_roll_back(diff):
    diff.same(
        ("SET", "s", "str"),
        ("MULTI",), ("INCR", "s"), ("SET", "t", "1"), ("LPOP", "s"), ("INCRBY", "t", "x"),
        ("EXEC",), ("GET", "t"),
    )


def test_watch_unwatch_replies(diff):
    diff.same(
        ("WATCH", "a", "b"), ("WATCH", "a"), ("UNWATCH",), ("UNWATCH",),
        ("WATCH", "a"), ("SET", "a", "mine"), ("MULTI",), ("GET", "a"), ("EXEC",),
        ("WATCH", "a"), ("MULTI",), ("GET", "a"), ("EXEC",),
        ("WATCH", "a"), ("SET", "a", "x"), ("UNWATCH",), ("MULTI",), ("PING",), ("EXEC",),
        ("WATCH", "a"), ("SET", "a", "y"), ("MULTI",), ("DISCARD",), ("MULTI",), ("PING",),
        ("EXEC",),
    )


def test_commands_in_multi_still_checked_for_subcommands(diff):
    diff.same(
        ("MULTI",), ("CLIENT", "ID", "x"), ("EXEC",),
        ("MULTI",), ("OBJECT",), ("EXEC",),
        ("MULTI",), ("GET",), ("DISCARD",),
    )


def test_resp3_exec_reply_shapes(diff):
    diff.same(
        ("HELLO", "3"),
        ("HSET", "h", "f", "v"),
        ("MULTI",), ("HGETALL", "h"), ("ZADD", "z", "1", "a"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("SMEMBERS", "nokey"), ("EXEC",),
        ("WATCH", "h"), ("HSET", "h", "g", "w"), ("MULTI",), ("PING",), ("EXEC",),
        compare_hello=False)


def _fields(reply: bytes) -> list:
    return [f for f in reply.replace(b"\r\n", b" ").split() if f.split(b"=")[0] in (b"flags", b"multi")]


def test_client_list_shows_multi(raw, raw_real):
    # Inside EXEC the client is still in MULTI state: flags=x, multi=<queued>.
    out = []
    for conn in (raw, raw_real):
        conn.command("MULTI")
        conn.command("SET", "a", "1")
        conn.command("CLIENT", "INFO")
        out.append((_fields(conn.command("EXEC")), _fields(conn.command("CLIENT", "INFO"))))
    assert out[0] == out[1]
    assert out[0] == ([b"flags=x", b"multi=2"], [b"flags=N", b"multi=-1"])


# -- WATCH races with a second client ---------------------------------------------------


@pytest.fixture
def pair(vermilion_server, redis_server):
    conns = [RawConnection(vermilion_server.port), RawConnection(vermilion_server.port),
             RawConnection(redis_server.port), RawConnection(redis_server.port)]
    for c in conns:
        c.command("FLUSHALL")
    yield conns
    for c in conns:
        c.close()


def _race(pair, setup, other):
    """Client 1 WATCHes, client 2 runs `other`, client 1 runs a transaction: the EXEC
    reply on both servers."""
    out = []
    for me, them in (pair[0:2], pair[2:4]):
        for args in setup:
            me.command(*args)
        me.command("WATCH", "k")
        for args in other:
            them.command(*args)
        me.command("MULTI")
        me.command("SET", "k", "from-tx")
        out.append(me.command("EXEC"))
        me.command("FLUSHALL")
    assert out[0] == out[1], out
    return out[0]


@pytest.mark.parametrize("setup, other, aborted", [
    ([("SET", "k", "1")], [("SET", "k", "2")], True),
    ([("SET", "k", "1")], [("SET", "k", "1")], True),  # same value still counts
    ([("SET", "k", "1")], [("GET", "k")], False),
    ([("SET", "k", "1")], [("SET", "other", "1")], False),
    ([], [("LPUSH", "k", "x")], True),
    ([("SET", "k", "1")], [("DEL", "k")], True),
    ([], [("DEL", "k")], False),
    ([("SET", "k", "1")], [("EXPIRE", "k", "100")], True),
    ([("SET", "k", "1")], [("RENAME", "k", "k2")], True),
    ([("SET", "j", "1")], [("RENAME", "j", "k")], True),
    ([("SET", "k", "1")], [("FLUSHDB",)], True),
    ([], [("FLUSHALL",)], False),  # the key did not exist: nothing changed
    ([("SET", "k", "1")], [("FLUSHALL",)], True),
    ([("SELECT", "1"), ("SET", "k", "1"), ("SELECT", "0")], [("SWAPDB", "0", "1")], True),
    ([], [("SWAPDB", "0", "1")], False),
    ([("SET", "k", "1")], [("SELECT", "1"), ("SET", "k", "2")], False),
])
def test_watch_race(pair, setup, other, aborted):
    reply = _race(pair, setup, other)
    assert (reply == b"*-1\r\n") is aborted


def test_watch_expired_key_semantics(pair):
    # isWatchedKeyExpired(): a key that expires after WATCH fails EXEC; a key that was
    # already expired (stale) when watched does not, even once it is deleted.
    out = []
    for me, them in (pair[0:2], pair[2:4]):
        me.command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        try:
            me.command("SET", "k", "1", "PX", "50")
            me.command("WATCH", "k")
            time.sleep(0.1)
            me.command("MULTI")
            me.command("PING")
            first = me.command("EXEC")
            me.command("SET", "k", "1", "PX", "20")
            time.sleep(0.05)
            me.command("WATCH", "k")  # stale now
            them.command("EXISTS", "k")  # deletes it lazily: no logical change
            me.command("MULTI")
            me.command("PING")
            second = me.command("EXEC")
            out.append((first, second))
        finally:
            me.command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    assert out[0] == out[1] == (b"*-1\r\n", b"*1\r\n+PONG\r\n"), out


def test_watch_then_own_writes_do_not_abort(pair):
    out = []
    for me, _ in (pair[0:2], pair[2:4]):
        me.command("WATCH", "k")
        me.command("MULTI")
        me.command("SET", "k", "1")
        me.command("INCR", "k")
        out.append(me.command("EXEC"))
    assert out[0] == out[1] == b"*2\r\n+OK\r\n:2\r\n"


def test_closed_watcher_is_forgotten(vermilion_server):
    a = RawConnection(vermilion_server.port)
    a.command("WATCH", "k1", "k2")
    a.close()
    b = RawConnection(vermilion_server.port)
    try:
        b.command("SET", "k1", "x")  # must not touch the closed client
        assert b.command("PING") == b"+PONG\r\n"
    finally:
        b.command("DEL", "k1")
        b.close()


# -- redis-py ---------------------------------------------------------------------------


def test_redis_py_transactional_pipeline(r):
    pipe = r.pipeline(transaction=True)
    pipe.set("a", 1).incr("a").lpush("l", "x", "y").lrange("l", 0, -1)
    assert pipe.execute() == [True, 2, 2, [b"y", b"x"]]


def test_redis_py_pipeline_runtime_error(r):
    r.set("s", "text")
    pipe = r.pipeline(transaction=True)
    pipe.set("ok", 1).incr("s").get("ok")
    with pytest.raises(redis.ResponseError):
        pipe.execute()
    assert r.get("ok") == b"1"
    pipe = r.pipeline(transaction=True)
    pipe.incr("s").get("ok")
    result = pipe.execute(raise_on_error=False)
    assert isinstance(result[0], redis.ResponseError) and result[1] == b"1"


def test_redis_py_watch_retry(r, vermilion_server):
    other = vermilion_server.client()
    r.set("counter", 10)
    attempts = 0

    def incr(pipe):
        nonlocal attempts
        attempts += 1
        value = int(pipe.get("counter"))
        if attempts == 1:
            other.incr("counter")  # a concurrent change: the first EXEC must fail
        pipe.multi()
        pipe.set("counter", value + 1)

    r.transaction(incr, "counter")
    assert attempts == 2
    assert r.get("counter") == b"12"
    other.close()


def test_redis_py_watch_error(r, vermilion_server):
    other = vermilion_server.client()
    with r.pipeline() as pipe:
        pipe.watch("w")
        other.set("w", 1)
        pipe.multi()
        pipe.set("w", 2)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("w") == b"1"
    other.close()


# -- MONITOR order and propagation --------------------------------------------------------


def _monitor_lines(port, actions, count):
    mon = RawConnection(port)
    mon.command("MONITOR")
    cli = RawConnection(port)
    for args in actions:
        cli.command(*args)
    lines = []
    for _ in range(count):
        lines.append(mon.read_reply())
    mon.close()
    cli.close()
    return [line.split(b"] ", 1)[1].strip() for line in lines]


def test_monitor_shows_exec_after_its_commands(vermilion_server, redis_server):
    actions = [("MULTI",), ("SET", "m", "1"), ("EXEC",), ("MULTI",), ("SYNTAX", "err"),
               ("EXEC",), ("PING",)]
    # The refused command is never shown: one line fewer than actions.
    mine = _monitor_lines(vermilion_server.port, actions, len(actions) - 1)
    theirs = _monitor_lines(redis_server.port, actions, len(actions) - 1)
    assert mine == theirs
    assert mine[:3] == [b'"MULTI"', b'"SET" "m" "1"', b'"EXEC"']


def test_exec_is_propagated_as_one_block(tmp_path):
    server = start_vermilion(tmp_path, ["--appendonly", "yes"])
    try:
        c = server.client()
        c.execute_command("MULTI")
        c.execute_command("SET", "a", "1")
        c.execute_command("GET", "a")
        c.execute_command("INCR", "a")
        c.execute_command("EXEC")
        c.execute_command("MULTI")
        c.execute_command("SET", "single", "1")
        c.execute_command("EXEC")
        c.execute_command("MULTI")
        c.execute_command("GET", "a")
        c.execute_command("EXEC")
        c.close()
        incr = sorted((tmp_path / "appendonlydir").glob("*.incr.aof"))[-1].read_bytes()
        commands = [p for p in incr.split(b"\r\n") if p and p[:1] not in b"*$"]
        assert commands == [b"SELECT", b"0", b"MULTI", b"SET", b"a", b"1", b"INCR", b"a",
                            b"EXEC", b"SET", b"single", b"1"]
    finally:
        server.stop()
    # The AOF with its MULTI/EXEC block loads back.
    server = start_vermilion(tmp_path, ["--appendonly", "yes"])
    try:
        c = server.client()
        assert c.get("a") == b"2" and c.get("single") == b"1"
        c.close()
    finally:
        server.stop()


# -- differential: random transactions -------------------------------------------------

_RANDOM_COMMANDS = [
    ("SET", "{k}", "{v}"), ("GET", "{k}"), ("INCR", "{k}"), ("APPEND", "{k}", "{v}"),
    ("LPUSH", "{k}", "{v}"), ("RPOP", "{k}"), ("SADD", "{k}", "{v}"), ("HSET", "{k}", "f", "{v}"),
    ("DEL", "{k}"), ("EXISTS", "{k}", "{k}"), ("EXPIRE", "{k}", "100"), ("TTL", "{k}"),
    ("ZADD", "{k}", "1", "{v}"), ("TYPE", "{k}"), ("STRLEN", "{k}"), ("LLEN", "{k}"),
    ("SET", "{k}"), ("GET",), ("NOPE", "{k}"), ("INCRBY", "{k}", "x"), ("PING",),
    ("WATCH", "{k}"), ("MULTI",), ("SELECT", "1"), ("SELECT", "0"), ("ECHO", "{v}"),
]


@pytest.mark.parametrize("seed", range(12))
def test_random_transactions_match_redis(pair, seed):
    import random

    rng = random.Random(seed)
    conns = [(pair[0], pair[1]), (pair[2], pair[3])]
    for _ in range(6):
        keys = [f"k{i}" for i in range(3)]
        watch = rng.random() < 0.5
        body = []
        for _ in range(rng.randint(0, 6)):
            cmd = rng.choice(_RANDOM_COMMANDS)
            body.append(tuple(a.format(k=rng.choice(keys), v=rng.choice(["1", "a", "7"]))
                              for a in cmd))
        other = (("SET", rng.choice(keys), "x"),) if rng.random() < 0.5 else ()
        end = "EXEC" if rng.random() < 0.85 else "DISCARD"
        outs = []
        for me, them in conns:
            out = []
            if watch:
                out.append(me.command("WATCH", *keys[:2]))
            for args in other:
                them.command(*args)
            out.append(me.command("MULTI"))
            out += [me.command(*args) for args in body]
            out.append(me.command(end))
            out.append(me.command("SELECT", "0"))
            outs.append(out)
        assert outs[0] == outs[1], (body, other, end)


# multi.tcl's stale-key cases: a key already expired when WATCHed is "missing"; it
# being deleted, or swapped for nothing or another stale key, changes nothing.
_STALE_CASES = {
    "swapdb_stale_with_nothing": [("SELECT", "1"), ("SET", "x", "foo", "PX", "1"), ("SLEEP",),
                                  ("WATCH", "x"), ("SWAPDB", "0", "1")],
    "swapdb_nothing_with_stale": [("SET", "x", "foo", "PX", "1"), ("SLEEP",), ("SELECT", "1"),
                                  ("WATCH", "x"), ("SWAPDB", "0", "1")],
    "swapdb_stale_with_stale": [("SELECT", "1"), ("SET", "x", "foo", "PX", "1"),
                                ("SELECT", "0"), ("SET", "x", "bar", "PX", "1"), ("SLEEP",),
                                ("SELECT", "1"), ("WATCH", "x"), ("SWAPDB", "0", "1")],
    "swapdb_stale_with_live": [("SELECT", "1"), ("SET", "x", "foo", "PX", "1"),
                               ("SELECT", "0"), ("SET", "x", "bar"), ("SLEEP",),
                               ("SELECT", "1"), ("WATCH", "x"), ("SWAPDB", "0", "1")],
    "stale_deleted_by_del": [("SET", "x", "foo", "PX", "1"), ("SLEEP",), ("WATCH", "x"),
                             ("DEL", "x")],
    "stale_then_set": [("SET", "x", "foo", "PX", "1"), ("SLEEP",), ("WATCH", "x"),
                       ("SET", "x", "new")],
}


@pytest.mark.parametrize("case", sorted(_STALE_CASES))
def test_watch_stale_keys_like_redis(pair, case):
    out = []
    for me in (pair[0], pair[2]):
        me.command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        try:
            for args in _STALE_CASES[case]:
                if args == ("SLEEP",):
                    time.sleep(0.01)
                else:
                    me.command(*args)
            me.command("MULTI")
            me.command("PING")
            out.append(me.command("EXEC"))
        finally:
            me.command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
            me.command("SELECT", "0")
    assert out[0] == out[1], out
