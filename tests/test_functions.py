"""Redis 7.0 functions: FUNCTION LOAD/LIST/DELETE/FLUSH/DUMP/RESTORE/STATS/KILL/HELP,
FCALL and FCALL_RO, compared byte for byte with a real redis-server 7.0."""

import struct
import threading
import time

import pytest
import redis

from conftest import RawConnection, sort_lines, start_vermilion

LIB = ("#!lua name=mylib\n"
       "redis.register_function('echo_key', function(keys, args) return keys[1] end)\n")
LIB_FLAGS = (
    "#!lua name=flagged\n"
    "redis.register_function{function_name='setter', callback=function(keys, args)\n"
    "  return redis.call('set', keys[1], args[1]) end,\n"
    "  flags={'no-writes', 'allow-oom', 'allow-stale', 'no-cluster', 'allow-cross-slot-keys'},\n"
    "  description='tries to write'}\n")
LIB_RW = ("#!lua name=rw\n"
          "redis.register_function('incr2', function(keys, args)\n"
          "  redis.call('incr', keys[1]) return redis.call('incr', keys[1]) end)\n"
          "redis.register_function{function_name='get_it', callback=function(keys)\n"
          "  return redis.call('get', keys[1]) end, flags={'no-writes'}}\n")


def lib(name, body):
    return "#!lua name=%s\n%s" % (name, body)


def fn_lib(name, fname, body, extra=""):
    return lib(name, "redis.register_function('%s', function(keys, args) %s end)%s"
               % (fname, body, extra))


@pytest.fixture
def diff(diff):
    """conftest's diff, with both servers' function libraries flushed."""
    for conn in diff.conns:
        assert conn.command("FUNCTION", "FLUSH") == b"+OK\r\n"
    return diff


# -- redis-py -------------------------------------------------------------------------


def test_load_and_call_with_redis_py(r):
    r.function_flush()
    assert r.function_load(LIB) in (b"mylib", "mylib")
    assert r.fcall("echo_key", 1, "k1", "a") == b"k1"
    assert r.fcall("ECHO_KEY", 1, "k2") == b"k2"  # function names are case-insensitive
    with pytest.raises(redis.ResponseError, match="Library 'mylib' already exists"):
        r.function_load(LIB)
    r.function_load(LIB.replace("keys[1]", "args[1]"), replace=True)
    assert r.fcall("echo_key", 1, "k1", "arg") == b"arg"
    r.function_load(LIB_RW)
    assert r.fcall("incr2", 1, "n") == 2
    assert r.fcall_ro("get_it", 1, "n") == b"2"
    with pytest.raises(redis.ResponseError, match="write flag using \\*_ro command"):
        r.fcall_ro("incr2", 1, "n")
    libs = r.function_list()
    assert len(libs) == 2
    listed = r.function_list(library="my*", withcode=True)
    assert len(listed) == 1
    entry = listed[0]
    if isinstance(entry, list):  # RESP2: a flat list of fields
        entry = dict(zip(entry[::2], entry[1::2]))
    assert entry[b"library_name"] == b"mylib" and entry[b"engine"] == b"LUA"
    assert entry[b"library_code"].startswith(b"#!lua name=mylib\n")
    assert r.function_delete("mylib")
    with pytest.raises(redis.ResponseError, match="Function not found"):
        r.fcall("echo_key", 0)
    with pytest.raises(redis.ResponseError, match="Library not found"):
        r.function_delete("mylib")
    assert r.function_flush("SYNC")
    assert r.function_list() == []


def test_function_writes_and_keys_and_args(r):
    r.function_flush()
    r.function_load(lib("kv", "redis.register_function('mset', function(keys, args)\n"
                              "  for i, k in ipairs(keys) do redis.call('set', k, args[i]) end\n"
                              "  return #keys + #args end)"))
    assert r.fcall("mset", 2, "a", "b", "1", "2") == 4
    assert r.mget("a", "b") == [b"1", b"2"]


def test_dump_restore_with_redis_py(r):
    r.function_flush()
    r.function_load(LIB)
    payload = r.function_dump()
    r.function_flush()
    assert r.function_restore(payload)
    assert r.fcall("echo_key", 1, "x") == b"x"
    with pytest.raises(redis.ResponseError, match="Library mylib already exists"):
        r.function_restore(payload)
    assert r.function_restore(payload, "REPLACE")
    assert r.function_restore(payload, "FLUSH")


def test_functions_survive_script_flush(r):
    r.function_flush()
    r.function_load(LIB)
    r.script_flush()
    assert r.fcall("echo_key", 1, "x") == b"x"
    assert r.eval("return 1", 0) == 1


# -- exact replies against redis-server ----------------------------------------------------

LOAD_ERRORS = [
    "abc",
    "#!lua",
    "#!lua\n",
    "#!lua x=1\n",
    "#!foo name=a\n",
    "#!lua name=a-b\n",
    "#!lua name=a name=b\n",
    "#!lua name=e\nfoo(",
    "#!lua name=e\nlocal a = 1",
    "#!lua name=e\nerror('x')",
    "#!lua name=e\nredis.call('ping')",
    "#!lua name=e\nlocal x = string.format('%d', 3)",
    "#!lua name=e\nx = 5",
    "#!lua name=e\nredis.register_function('a-b', function() end)",
    "#!lua name=e\nredis.register_function('', function() end)",
    "#!lua name=e\nredis.register_function('x', function() end)\n"
    "redis.register_function('x', function() end)",
    "#!lua name=e\nredis.register_function('x', 5)",
    "#!lua name=e\nredis.register_function(5)",
    "#!lua name=e\nredis.register_function({})",
    "#!lua name=e\nredis.register_function()",
    "#!lua name=e\nredis.register_function('a', function() end, 3)",
    "#!lua name=e\nredis.register_function{function_name='x', callback=function() end, foo=1}",
    "#!lua name=e\nredis.register_function{function_name='x'}",
    "#!lua name=e\nredis.register_function{callback=function() end}",
    "#!lua name=e\nredis.register_function{function_name='x', callback=5}",
    "#!lua name=e\nredis.register_function{function_name={}, callback=function() end}",
    "#!lua name=e\nredis.register_function{function_name='x', callback=function() end, "
    "description=false}",
    "#!lua name=e\nredis.register_function{function_name='x', callback=function() end, flags=5}",
    "#!lua name=e\nredis.register_function{function_name='x', callback=function() end, "
    "flags={'bad'}}",
    "#!lua name=e\nredis.register_function{function_name='x', callback=function() end, "
    "flags={{}}}",
    "#!lua name=e\nredis.register_function{[1]=2}",
]


@pytest.mark.parametrize("code", LOAD_ERRORS)
def test_load_errors_match_redis(diff, code):
    reply = diff("FUNCTION", "LOAD", code)
    assert reply.startswith(b"-ERR")


def test_load_timeout_matches_redis(diff):
    reply = diff("FUNCTION", "LOAD", "#!lua name=e\nwhile true do end")
    assert reply == b"-ERR Error registering functions: ERR FUNCTION LOAD timeout\r\n"
    # The engine is usable afterwards.
    diff("FUNCTION", "LOAD", LIB)
    diff("FCALL", "echo_key", "1", "k")


def test_load_and_call_replies_match_redis(diff):
    for args in [
        ("FUNCTION", "LOAD", LIB),
        ("FUNCTION", "LOAD", LIB),
        ("FUNCTION", "LOAD", "REPLACE", LIB),
        ("FUNCTION", "LOAD", "foo", LIB),
        ("FUNCTION", "LOAD", "replace"),
        ("FUNCTION", "LOAD", fn_lib("other", "echo_key", "return 1")),
        ("FUNCTION", "LOAD", fn_lib("other", "ECHO_KEY", "return 1")),
        ("FUNCTION", "LOAD", "#!LUA name=up\nredis.register_function('up', function() return 1 end)"),
        ("FCALL", "echo_key", "1", "a"),
        ("FCALL", "Echo_Key", "1", "a"),
        ("FCALL", "up", "0"),
        ("FCALL", "nope", "0"),
        ("FCALL", "nope", "x"),
        ("FCALL", "echo_key", "x"),
        ("FCALL", "echo_key", "5"),
        ("FCALL", "echo_key", "-1"),
        ("FCALL", "echo_key", "1"),
        ("FCALL_RO", "echo_key", "1", "a"),
        ("FCALL",),
        ("FCALL", "echo_key"),
    ]:
        diff(*args)


def test_function_flags_match_redis(diff):
    diff("FUNCTION", "LOAD", LIB_FLAGS)
    diff("FCALL", "setter", "1", "k", "v")
    diff("FCALL_RO", "setter", "1", "k", "v")
    diff("FUNCTION", "LOAD", LIB_RW)
    diff("FCALL", "incr2", "1", "n")
    diff("FCALL_RO", "get_it", "1", "n")
    diff("FCALL_RO", "incr2", "1", "n")
    for resp in ("2", "3"):
        diff.hello(resp)
        diff("FUNCTION", "LIST", "LIBRARYNAME", "flagged")
        diff("FUNCTION", "LIST", "LIBRARYNAME", "flag*", "WITHCODE")


RUNTIME = [
    "error('boom')",
    "return redis.call('nosuch')",
    "return redis.call('get')",
    "return string.format('%d', 3)",
    "return {err='myerr'}",
    "return redis.error_reply('E2 custom')",
    "return redis.status_reply('FINE')",
    "return KEYS",
    "x = 1",
    "return {1, 2, {3, 'a'}, nil, 5}",
    "return 3.99",
    "return redis.call('set', 'k', 'v')",
    "redis.setresp(3) return redis.call('hgetall', 'nokey')",
    "return {double=1.5}",
    "return redis.pcall('incr', 'k')",
    "return #keys .. '/' .. #args",
]


@pytest.mark.parametrize("body", RUNTIME)
def test_runtime_replies_match_redis(diff, body):
    diff("FUNCTION", "LOAD", fn_lib("rt", "f", body))
    for resp in ("2", "3"):
        diff.hello(resp)
        diff("FCALL", "f", "1", "key", "arg")


def test_list_stats_help_and_errors_match_redis(diff):
    diff("FUNCTION", "LOAD", LIB)
    diff("FUNCTION", "LOAD", fn_lib("lib_b", "b1", "return 1",
                                    "\nredis.register_function{function_name='b2', "
                                    "callback=function() return 2 end, description='two'}"))
    for resp in ("2", "3"):
        diff.hello(resp)
        for args in [
            ("FUNCTION", "LIST", "LIBRARYNAME", "mylib"),
            ("FUNCTION", "LIST", "LIBRARYNAME", "MY*", "WITHCODE"),
            ("FUNCTION", "LIST", "LIBRARYNAME", "nomatch"),
            ("FUNCTION", "LIST", "LIBRARYNAME"),
            ("FUNCTION", "LIST", "foo"),
            ("FUNCTION", "LIST", "WITHCODE", "WITHCODE"),
            ("FUNCTION", "LIST", "LIBRARYNAME", "a", "LIBRARYNAME", "b"),
            ("FUNCTION", "STATS"),
            ("FUNCTION", "STATS", "x"),
            ("FUNCTION", "HELP"),
            ("FUNCTION", "KILL"),
            ("FUNCTION", "DELETE", "nope"),
            ("FUNCTION", "DELETE"),
            ("FUNCTION", "FLUSH", "x"),
            ("FUNCTION", "FLUSH", "a", "b"),
            ("FUNCTION", "RESTORE", "a", "b", "c"),
            ("FUNCTION", "RESTORE", "abc"),
            ("FUNCTION", "RESTORE", "abc", "bad"),
            ("FUNCTION", "NOSUCH"),
            ("FUNCTION",),
        ]:
            diff(*args)
    # Functions inside one library come in hash order: compare them as a set.
    diff.hello(2)
    diff("FUNCTION", "LIST", "LIBRARYNAME", "lib_b", mask=sort_lines)
    diff("FUNCTION", "DELETE", "mylib")
    diff("FUNCTION", "STATS")
    diff("FUNCTION", "FLUSH", "ASYNC")
    diff("FUNCTION", "STATS")
    diff("FUNCTION", "LIST")


def _payload(entries: bytes) -> bytes:
    from vermilion.persistence.rdb import CRC64

    body = entries + struct.pack("<H", 10)
    return body + struct.pack("<Q", CRC64.calc(body))


def test_restore_errors_match_redis(diff):
    from vermilion.persistence.rdb import encode_string

    good = b"\xf5" + encode_string(LIB.encode())
    for payload in [
        _payload(b""),
        _payload(b"\x00" + encode_string(b"abc")),
        _payload(b"\xf6" + encode_string(b"abc")),
        _payload(b"\xf6"),
        _payload(b"\xf5"),
        _payload(b"\xf5" + encode_string(b"#!lua name=x\nfoo(")),
        _payload(b"\xf5" + encode_string(b"no shebang")),
        _payload(good + good),
        _payload(good),
        _payload(good),
        _payload(b"\xf5\x40"),
    ]:
        diff("FUNCTION", "RESTORE", payload)
    diff("FUNCTION", "LIST")


# -- DUMP / RESTORE across servers ----------------------------------------------------------

LIBS = [LIB, LIB_FLAGS, LIB_RW, "#!lua name=big\n" + "-- padding\n" * 50 +
        "redis.register_function('big', function() return 'big' end)"]


@pytest.mark.parametrize("direction", ["real_to_vermilion", "vermilion_to_real"])
def test_dump_restore_across_servers(diff, direction):
    mine, real = diff.conns
    src, dst = (real, mine) if direction == "real_to_vermilion" else (mine, real)
    for code in LIBS:
        assert src.command("FUNCTION", "LOAD", code).startswith(b"$")
    payload_reply = src.command("FUNCTION", "DUMP")
    payload = payload_reply.split(b"\r\n", 1)[1][:-2]
    assert dst.command("FUNCTION", "RESTORE", payload) == b"+OK\r\n"
    for args in [("FCALL", "echo_key", "1", "k"), ("FCALL", "incr2", "1", "n"),
                 ("FCALL_RO", "get_it", "1", "n"), ("FCALL", "big", "0")]:
        assert dst.command(*args) == src.command(*args)
    diff.hello3()
    for name in ("mylib", "flagged", "big"):
        args = ("FUNCTION", "LIST", "LIBRARYNAME", name, "WITHCODE")
        assert dst.command(*args) == src.command(*args)
    # The restored libraries dump again into a payload the source accepts.
    again = dst.command("FUNCTION", "DUMP").split(b"\r\n", 1)[1][:-2]
    assert src.command("FUNCTION", "RESTORE", again, "REPLACE") == b"+OK\r\n"
    # (Which library collides first depends on hash order: only the kind of error.)
    for conn in (src, dst):
        assert conn.command("FUNCTION", "RESTORE", again).startswith(b"-ERR Library ")


def test_restore_policies_match_redis(diff):
    diff("FUNCTION", "LOAD", LIB)
    payload = diff.real.command("FUNCTION", "DUMP").split(b"\r\n", 1)[1][:-2]
    diff("FUNCTION", "LOAD", fn_lib("other", "o1", "return 1"))
    diff("FUNCTION", "RESTORE", payload)
    diff("FUNCTION", "RESTORE", payload, "append")
    diff("FUNCTION", "RESTORE", payload, "REPLACE")
    diff("FUNCTION", "DELETE", "mylib")
    diff("FUNCTION", "LOAD", fn_lib("third", "echo_key", "return 3"))
    diff("FUNCTION", "RESTORE", payload, "REPLACE")
    diff("FCALL", "echo_key", "1", "k")
    diff("FUNCTION", "RESTORE", payload, "FLUSH")
    diff("FCALL", "echo_key", "1", "k")
    diff("FCALL", "o1", "0")
    diff("FUNCTION", "LIST")


# -- BUSY and FUNCTION KILL -------------------------------------------------------------------


def _wait_busy(conn, deadline=5.0):
    end = time.time() + deadline
    while time.time() < end:
        reply = conn.command("PING")
        if reply.startswith(b"-BUSY"):
            return reply
        time.sleep(0.02)
    return None


def test_busy_function_and_function_kill(tmp_path):
    server = start_vermilion(tmp_path)
    try:
        caller = RawConnection(server.port)
        other = RawConnection(server.port)
        assert other.command("CONFIG", "SET", "busy-reply-threshold", "50") == b"+OK\r\n"
        assert other.command("FUNCTION", "LOAD", lib(
            "loop", "redis.register_function('spin', function() while true do end end)\n"
                    "redis.register_function('spinw', function(keys)\n"
                    "  redis.call('set', keys[1], '1') local i = 0\n"
                    "  while i < 3e7 do i = i + 1 end return i end)")) == b"$4\r\nloop\r\n"
        caller.send(b"*3\r\n$5\r\nFCALL\r\n$4\r\nspin\r\n$1\r\n0\r\n")
        assert _wait_busy(other) == (b"-BUSY Redis is busy running a function. You can only "
                                     b"call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n")
        stats = other.command("FUNCTION", "STATS")
        assert stats.startswith(b"*4\r\n$14\r\nrunning_script\r\n*6\r\n$4\r\nname\r\n$4\r\nspin\r\n"
                                b"$7\r\ncommand\r\n*3\r\n$5\r\nFCALL\r\n$4\r\nspin\r\n$1\r\n0\r\n"
                                b"$11\r\nduration_ms\r\n:")
        assert other.command("SCRIPT", "KILL") == (
            b"-BUSY Redis is busy running a function. You can only call FUNCTION KILL or "
            b"SHUTDOWN NOSAVE.\r\n")
        assert other.command("FUNCTION", "KILL") == b"+OK\r\n"
        assert caller.read_reply().startswith(b"-ERR Script killed by user with SCRIPT KILL...")
        assert other.command("FUNCTION", "KILL") == (
            b"-NOTBUSY No scripts in execution right now.\r\n")
        assert caller.command("PING") == b"+PONG\r\n"

        # A function that wrote cannot be killed: it finishes and answers.
        caller.send(b"*4\r\n$5\r\nFCALL\r\n$5\r\nspinw\r\n$1\r\n1\r\n$1\r\nw\r\n")
        assert _wait_busy(other) is not None
        assert other.command("FUNCTION", "KILL").startswith(b"-UNKILLABLE Sorry the script")
        caller.sock.settimeout(30)
        assert caller.read_reply() == b":30000000\r\n"
        assert other.command("GET", "w") == b"$1\r\n1\r\n"

        # While an EVAL is busy, FUNCTION KILL and FUNCTION STATS refuse.
        caller.send(b"*3\r\n$4\r\nEVAL\r\n$17\r\nwhile true do end\r\n$1\r\n0\r\n")
        assert _wait_busy(other) is not None
        busy_script = (b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL "
                       b"or SHUTDOWN NOSAVE.\r\n")
        assert other.command("FUNCTION", "KILL") == busy_script
        assert other.command("FUNCTION", "STATS") == busy_script
        assert other.command("SCRIPT", "KILL") == b"+OK\r\n"
        assert caller.read_reply().startswith(b"-ERR Script killed")
        caller.close()
        other.close()
    finally:
        server.stop()


@pytest.mark.parametrize("body", [
    # A function without a loop of its own runs on the loop's stack; these reach one
    # through the library's own locals, or code loaded at run time.
    "local function spin() while true do end end\n"
    "redis.register_function('f', function() return spin() end)",
    "redis.register_function('f', function() return loadstring('while true do end')() end)",
])
def test_a_function_reaching_a_loop_answers_busy(tmp_path, body):
    server = start_vermilion(tmp_path)
    try:
        caller = RawConnection(server.port)
        other = RawConnection(server.port)
        assert other.command("CONFIG", "SET", "busy-reply-threshold", "50") == b"+OK\r\n"
        assert other.command("FUNCTION", "LOAD", lib("reach", body)) == b"$5\r\nreach\r\n"
        caller.send(b"*3\r\n$5\r\nFCALL\r\n$1\r\nf\r\n$1\r\n0\r\n")
        assert _wait_busy(other) is not None
        assert other.command("FUNCTION", "KILL") == b"+OK\r\n"
        assert caller.read_reply().startswith(b"-ERR Script killed by user with SCRIPT KILL...")
        assert caller.command("PING") == b"+PONG\r\n"
        caller.close()
        other.close()
    finally:
        server.stop()


def test_fcall_writes_are_propagated_as_effects(tmp_path):
    server = start_vermilion(tmp_path, ["--appendonly", "yes", "--appendfsync", "always"])
    try:
        conn = RawConnection(server.port)
        assert conn.command("FUNCTION", "LOAD", LIB_RW) == b"$2\r\nrw\r\n"
        assert conn.command("FCALL", "incr2", "1", "n") == b":2\r\n"
        conn.close()
    finally:
        server.stop()
    aof = b"".join(p.read_bytes() for p in sorted(tmp_path.rglob("*.aof*")) if p.is_file())
    commands = aof.upper()
    assert b"$8\r\nFUNCTION\r\n$4\r\nLOAD\r\n" in commands
    assert commands.count(b"$4\r\nINCR\r\n") == 2
    assert b"FCALL" not in commands


def test_out_of_memory_matches_redis(diff):
    lib_code = lib("oom", "redis.register_function('w', function(k) return redis.call('set', k[1], 'x') end)\n"
                          "redis.register_function{function_name='ao', callback=function(k)\n"
                          "  return redis.call('set', k[1], 'x') end, flags={'allow-oom'}}\n"
                          "redis.register_function{function_name='r', callback=function(k)\n"
                          "  return redis.call('get', k[1]) end, flags={'no-writes'}}\n"
                          "redis.register_function{function_name='rs', callback=function(k)\n"
                          "  return redis.call('set', k[1], 'y') end, flags={'no-writes'}}")
    diff("FUNCTION", "LOAD", lib_code)
    try:
        for conn in diff.conns:
            assert conn.command("CONFIG", "SET", "maxmemory", "1") == b"+OK\r\n"
        for args in [("FCALL", "w", "1", "k"), ("FCALL", "w", "x"), ("FCALL", "ao", "1", "k"),
                     ("FCALL", "r", "1", "k"), ("FCALL_RO", "r", "1", "k"),
                     ("FCALL", "rs", "1", "k"), ("FCALL", "nope", "0"),
                     ("FUNCTION", "LOAD", LIB)]:
            diff(*args)
    finally:
        for conn in diff.conns:
            conn.command("CONFIG", "SET", "maxmemory", "0")


def test_rdb_hooks_round_trip():
    """FunctionsEngine.codes() / load_from_rdb(): what rdb.py saves as FUNCTION2 entries
    and loads back (a library of the same name is replaced, as on DEBUG RELOAD)."""
    from vermilion.config import Config
    from vermilion.persistence import rdb
    from vermilion.server import Server

    source = Server(Config()).functions_engine
    assert source.codes() == []
    for code in LIBS:
        source.create(code.encode(), False)
    saved = source.codes()
    assert sorted(saved) == sorted(code.encode() for code in LIBS)
    assert source.counts() == (5, 4)
    # As rdb.py writes and reads them: an opcode and an RDB string each.
    data = b"".join(bytes([rdb.OP_FUNCTION2]) + rdb.encode_string(code) for code in saved)
    reader = rdb.Reader(data)
    target = Server(Config()).functions_engine
    while reader.pos < len(data):
        assert reader.byte() == rdb.OP_FUNCTION2
        target.load_from_rdb(reader.string())
    target.load_from_rdb(saved[0])  # again: replaced, not an error
    assert target.counts() == (5, 4)
    assert target.lookup(b"ECHO_KEY").flags == []
    assert target.lookup(b"setter").flags == [
        b"no-writes", b"allow-oom", b"allow-stale", b"no-cluster", b"allow-cross-slot-keys"]
    with pytest.raises(Exception, match="Missing library metadata"):
        target.load_from_rdb(b"return 1")


LOAD_ENVIRONMENT = [
    'redis.setresp(3)',
    'redis.sha1hex("a")',
    'local v = redis.REDIS_VERSION_NUM',
    'redis.log(redis.LOG_NOTICE, "x", 1)',
    'redis.log(99, "x")',
    'redis.log()',
    'local g = _G',
    'redis.foo = 1',
    'redis.register_function = nil',
    'return 1',
    'local t = redis.error_reply',
    'redis.register_function("a", function() return redis.register_function("b", function() end) end)',
    'redis.register_function("a", function() return redis.setresp(3) end)',
    'redis.register_function("a", function() return type(redis.register_function) end)',
    'redis.register_function("a", function() return _G.x end)',
    'local f = function() return 1 end redis.register_function("a", f) redis.register_function("b", f)',
    'redis.register_function{function_name=1, callback=function() return 1 end}',
    'redis.register_function{function_name="a", callback=function() return 1 end, flags={"NO-WRITES"}}',
    'redis.register_function{function_name="a", callback=function() return 1 end, flags={}}',
    'redis.register_function("a", function() return redis.call("fcall", "a", 0) end)',
    'redis.register_function("a", function() return redis.call("eval", "return 1", 0) end)',
    'redis.register_function("a", function() return redis.call("function", "list") end)',
    'redis.register_function("a", function() return redis.call("function", "load", "x") end)',
    'local n = 0 redis.register_function("a", function() n = n + 1 return n end)',
]


@pytest.mark.parametrize("body", LOAD_ENVIRONMENT)
def test_load_environment_matches_redis(diff, body):
    diff("FUNCTION", "LOAD", "REPLACE", "#!lua name=p\n" + body)
    for args in [("FCALL", "a", "0"), ("FCALL", "b", "0"), ("FCALL", "a", "0"),
                 ("FCALL_RO", "a", "0"), ("FUNCTION", "LIST", "LIBRARYNAME", "x*")]:
        diff(*args)


def test_fcall_inside_multi_matches_redis(diff):
    diff("FUNCTION", "LOAD", LIB_RW)
    for args in [("MULTI",), ("FCALL", "incr2", "1", "n"), ("FCALL_RO", "get_it", "1", "n"),
                 ("FCALL", "nope", "0"), ("FUNCTION", "DELETE", "rw"), ("EXEC",),
                 ("FCALL", "incr2", "1", "n"), ("GET", "n")]:
        diff(*args)


def test_asyncio_redis_py(vermilion_server):
    import asyncio

    import redis.asyncio as aioredis

    async def main():
        results = []
        for protocol in (2, 3):
            client = aioredis.Redis(port=vermilion_server.port, protocol=protocol)
            try:
                await client.function_flush()
                await client.function_load(LIB_RW)
                await client.delete("n")
                results.append(await client.fcall("incr2", 1, "n"))
                results.append(await client.fcall_ro("get_it", 1, "n"))
                results.append(len(await client.function_list()))
            finally:
                await client.aclose()
        return results

    assert asyncio.run(main()) == [2, b"2", 1] * 2


def test_dump_payload_is_byte_identical_to_redis(diff):
    diff("FUNCTION", "DUMP")  # no libraries: just the version and the CRC
    diff("FUNCTION", "LOAD", LIBS[-1])  # long enough for LZF
    try:
        for compression in ("yes", "no"):
            for conn in diff.conns:
                assert conn.command("CONFIG", "SET", "rdbcompression", compression) == b"+OK\r\n"
            diff("FUNCTION", "DUMP")
    finally:
        for conn in diff.conns:
            conn.command("CONFIG", "SET", "rdbcompression", "yes")


def test_functions_come_back_from_the_aof(tmp_path):
    server = start_vermilion(tmp_path, ["--appendonly", "yes", "--appendfsync", "always"])
    try:
        conn = RawConnection(server.port)
        assert conn.command("FUNCTION", "LOAD", LIB_RW) == b"$2\r\nrw\r\n"
        assert conn.command("FUNCTION", "LOAD", LIB) == b"$5\r\nmylib\r\n"
        assert conn.command("FUNCTION", "DELETE", "mylib") == b"+OK\r\n"
        assert conn.command("FCALL", "incr2", "1", "n") == b":2\r\n"
        conn.close()
    finally:
        server.stop()
    server.start()
    try:
        conn = RawConnection(server.port)
        assert conn.command("FCALL", "incr2", "1", "n") == b":4\r\n"
        assert conn.command("FCALL", "echo_key", "1", "n") == b"-ERR Function not found\r\n"
        conn.close()
    finally:
        server.stop()


def test_shebang_is_split_like_sdssplitargs(diff):
    # functionExtractLibMetaData() splits the shebang with sdssplitargs(): quotes group.
    diff.same(["FUNCTION", "LOAD", "REPLACE", "#!lua name=\"foo\"\n"
               "redis.register_function('foo', function() return 1 end)"],
              ["FUNCTION", "LOAD", "#!lua name=\"unbalanced\nredis.register_function('u', "
               "function() return 1 end)"],
              ["FUNCTION", "LOAD", "#!lua 'name=x y'\nredis.register_function('u', "
               "function() return 1 end)"],
              "FUNCTION LIST")


def test_debug_reload_flushes_libraries_and_refuses_duplicates(diff):
    # emptyData() takes the libraries too; NOFLUSH without MERGE finds the library
    # already there and fails the load (rdbFunctionLoad() without ALLOW_DUP).
    diff.same(["FUNCTION", "LOAD", "#!lua name=test\n"
               "redis.register_function('test', function() return 'hello' end)"],
              "SET x 1",
              "DEBUG RELOAD",
              "FUNCTION LIST",
              "DEBUG RELOAD NOFLUSH MERGE",
              "FUNCTION LIST",
              "FCALL test 0",
              "FUNCTION DELETE test",
              "DEBUG RELOAD NOSAVE NOFLUSH MERGE",
              "FUNCTION LIST", "GET x",
              "FLUSHALL",  # no keys to clash with: only the library fails the load
              "DEBUG RELOAD NOFLUSH",
              "FUNCTION LIST")
    diff("FUNCTION", "FLUSH")
