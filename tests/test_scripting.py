"""Lua scripting: EVAL/EVALSHA/EVAL_RO/EVALSHA_RO/SCRIPT, the redis.* API, conversions,
the sandbox, BUSY / SCRIPT KILL, and propagation of a script's writes to the AOF.

Replies and error strings are compared byte for byte with a real redis-server 7.0.
"""

import threading
import time
from pathlib import Path

import pytest
import redis
from redis.lock import Lock

from conftest import start_vermilion

# Each case is sent as is to both servers; the raw replies must be identical.
SAME_AS_REDIS = [
    # conversions Lua → reply
    ("EVAL", "return {1,2,3,'ciao',{1,2}, nil, 5}", "0"),
    ("EVAL", "return {1.5, 2.9, -3.7, true, false}", "0"),
    ("EVAL", "return 3.99", "0"),
    ("EVAL", "return -3.99", "0"),
    ("EVAL", "return true", "0"),
    ("EVAL", "return false", "0"),
    ("EVAL", "return nil", "0"),
    ("EVAL", "return", "0"),
    ("EVAL", "return {}", "0"),
    ("EVAL", "return _G", "0"),
    ("EVAL", "local a = {}; setmetatable(a,{__index=function() foo() end}) return a", "0"),
    ("EVAL", "local a = {}; setmetatable(a,{__index=function() redis.call('set', 'x', '1') end})"
             " return {a, redis.call('exists', 'x')}", "1", "x"),
    ("EVAL", "return {err=1, ok='x'}", "0"),
    ("EVAL", "return {1, {err='inner'}, 3}", "0"),
    ("EVAL", "return {ok='fine'}", "0"),
    ("EVAL", "return {err='My Error'}", "0"),
    ("EVAL", "return redis.status_reply('FOO')", "0"),
    ("EVAL", "return redis.error_reply('My Error')", "0"),
    ("EVAL", "return redis.error_reply('-X y')", "0"),
    ("EVAL", "return redis.error_reply()", "0"),
    ("EVAL", "return {double=1.5}", "0"),
    ("EVAL", "return {big_number='123'}", "0"),
    ("EVAL", "return {map={a=1}}", "0"),
    ("EVAL", "return {set={a=true}}", "0"),
    ("EVAL", "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}", "2", "k1", "k2", "a1", "a2"),
    # conversions reply → Lua
    ("EVAL", "return redis.call('get','nokey')", "0"),
    ("EVAL", "return {redis.call('get','nokey')}", "0"),
    ("EVAL", "return type(redis.call('get','nokey'))", "0"),
    ("EVAL", "return redis.call('ping')", "0"),
    ("EVAL", "return redis.call('set','x',0.1)", "0"),
    ("EVAL", "redis.call('set','x',0.1) return redis.call('get','x')", "0"),
    ("EVAL", "redis.call('rpush','l','a','b') return redis.call('lrange','l',0,-1)", "0"),
    ("EVAL", "redis.call('hset','h','f','v') return redis.call('hgetall','h')", "0"),
    ("EVAL", "redis.setresp(3) redis.call('hset','h','f','v') return redis.call('hgetall','h')", "0"),
    ("EVAL", "redis.setresp(3) return redis.call('hgetall','nokey')", "0"),
    ("EVAL", "redis.setresp(3) return type(redis.call('get','nokey'))", "0"),
    ("EVAL", "redis.setresp(3) return {true, false, redis.call('exists', 'nokey')}", "0"),
    ("EVAL", "redis.setresp(3) return true", "0"),
    ("EVAL", "redis.setresp(3) return false", "0"),
    ("EVAL", "redis.setresp(3) return {double=0.1}", "0"),
    ("EVAL", "redis.setresp(3) redis.call('zadd','z',1.5,'m') return redis.call('zscore','z','m')", "0"),
    ("EVAL", "redis.setresp(3) redis.call('zadd','z',1.5,'m') "
             "return redis.call('zrange','z',0,-1,'withscores')", "0"),
    ("EVAL", "redis.call('zadd','z',1.5,'m') return redis.call('zrange','z',0,-1,'withscores')", "0"),
    ("EVAL", "redis.setresp(3) redis.call('sadd','s','m') return redis.call('smembers','s')", "0"),
    ("EVAL", "return redis.call('incr','n')", "0"),
    # errors
    ("EVAL", "return error('x')", "0"),
    ("EVAL", "error('ERR x', 0)", "0"),
    ("EVAL", "error({err='FOO bar'})", "0"),
    ("EVAL", "return a", "0"),
    ("EVAL", "a=1", "0"),
    ("EVAL", "redis.x=1", "0"),
    ("EVAL", "string.x=1", "0"),
    ("EVAL", "setmetatable(_G, {})", "0"),
    ("EVAL", "rawset(_G,'a',1)", "0"),
    ("EVAL", "return os", "0"),
    ("EVAL", "return io", "0"),
    ("EVAL", "return require", "0"),
    ("EVAL", "return loadfile", "0"),
    ("EVAL", "return dofile", "0"),
    ("EVAL", "return redis.call('nosuch')", "0"),
    # a failed redis.call in tail position still reports the script's line (scripts
    # are compiled without tail calls: tailcalls.py), however it is reached
    ("EVAL", "local function f() return redis.call('nosuch') end\nreturn f()", "0"),
    ("EVAL", "local c = redis.call\n\nreturn c('nosuch')", "0"),
    ("EVAL", "local r = redis\nreturn r.pcall('nosuch'), 1", "0"),
    ("EVAL", "local function f(n) if n == 0 then\nreturn redis.call('nosuch') end\n"
             "return f(n - 1) end\nreturn f(100)", "0"),
    ("EVAL", "return loadstring('return redis.call(\"nosuch\")')()", "0"),
    ("EVAL", "return pcall(redis.call, 'nosuch')", "0"),
    ("EVAL", "return redis.call('set', 'x')", "0"),
    ("EVAL", "return redis.call()", "0"),
    ("EVAL", "return redis.call({})", "0"),
    # luaPushErrorBuff() and the error reply of a returned {err=} (C strings, trimmed)
    ("EVAL", "return redis.error_reply('')", "0"),
    ("EVAL", "return redis.error_reply('NOSPACE')", "0"),
    ("EVAL", "return redis.error_reply('-NOSPACE')", "0"),
    ("EVAL", "return redis.error_reply('x\\0y z')", "0"),
    ("EVAL", "return redis.error_reply('\\r\\nX y\\r\\n')", "0"),
    ("EVAL", "return redis.error_reply(' lead')", "0"),
    ("EVAL", "return {err='\\r\\n'}", "0"),
    ("EVAL", "return {err='a\\0b'}", "0"),
    ("EVAL", "error('a\\0b')", "0"),
    ("EVAL", "local t = redis.pcall('select', 99) local r = {} for k, v in pairs(t) do "
             "r[#r+1] = k r[#r+1] = tostring(v) end table.sort(r) return r", "0"),
    ("EVAL", "local t = redis.error_reply('x') local r = {} for k, v in pairs(t) do "
             "r[#r+1] = k r[#r+1] = tostring(v) end table.sort(r) return r", "0"),
    ("EVAL", "return redis.call()", "0"),
    ("EVAL", "return redis.call('get')", "0"),
    ("EVAL", "return redis.call('get',{})", "0"),
    ("EVAL", "return redis.call('config')", "0"),
    ("EVAL", "return redis.call('config','nosuch')", "0"),
    ("EVAL", "return redis.call('eval','return 1', 0)", "0"),
    ("EVAL", "return redis.call('client','list')", "0"),
    ("EVAL", "redis.call('set','s','x') return redis.call('incr','s')", "0"),
    ("EVAL", "redis.call('set','s','x') return redis.pcall('incr','s')", "0"),
    ("EVAL", "return redis.pcall('nosuch')", "0"),
    ("EVAL", "return redis.pcall()", "0"),
    ("EVAL", "return {pcall(redis.call, 'nosuch')}", "0"),
    ("EVAL", "local ok, e = pcall(redis.call,'nosuch'); error(e)", "0"),
    ("EVAL", "local ok, e = pcall(error, {err='X y'}); return {type(e), e}", "0"),
    ("EVAL", "return x(", "0"),
    ("EVAL", "return 1", "-1"),
    ("EVAL", "return 1", "2", "a"),
    ("EVAL", "return 1", "x"),
    ("EVAL_RO", "return redis.call('set','a','b')", "0"),
    ("EVAL_RO", "return redis.call('get','a')", "0"),
    ("EVAL", "#!lua flags=no-writes\nreturn redis.call('set','a','b')", "0"),
    ("EVAL", "#!python\nreturn 1", "0"),
    ("EVAL", "#!lua foo\nreturn 1", "0"),
    ("EVAL", "#!lua flags=bar\nreturn 1", "0"),
    ("EVAL", "#!lua", "0"),
    ("EVAL_RO", "#!lua\nreturn 1", "0"),
    ("EVAL_RO", "#!lua flags=no-writes\nreturn 1", "0"),
    ("EVAL", "#!lua flags=no-writes,allow-oom\nreturn redis.call('get', 'x')", "0"),
    ("EVAL", "#!lua name=x\nreturn 1", "0"),
    ("EVAL", "#!lua  flags=no-writes\nreturn 1", "0"),
    ("EVAL", "#!lua flags=\nreturn 1", "0"),
    ("EVAL", "return ARGV[1]", "0", b"\x00\xff\r\n"),
    ("EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"),
    ("EVALSHA", "abc", "-1"),
    ("EVALSHA_RO", "ffffffffffffffffffffffffffffffffffffffff", "0"),
    # the redis library
    ("EVAL", "return redis.sha1hex('')", "0"),
    ("EVAL", "return redis.sha1hex(12)", "0"),
    ("EVAL", "return redis.sha1hex()", "0"),
    ("EVAL", "return redis.log()", "0"),
    ("EVAL", "return redis.log('a','b')", "0"),
    ("EVAL", "return redis.log(99,'x')", "0"),
    ("EVAL", "return redis.log(redis.LOG_WARNING,'from a script')", "0"),
    ("EVAL", "return redis.setresp()", "0"),
    ("EVAL", "return redis.setresp(4)", "0"),
    ("EVAL", "return redis.set_repl()", "0"),
    ("EVAL", "return redis.set_repl(9)", "0"),
    ("EVAL", "return redis.set_repl(redis.REPL_ALL)", "0"),
    ("EVAL", "return redis.replicate_commands()", "0"),
    ("EVAL", "return redis.breakpoint()", "0"),
    ("EVAL", "return redis.acl_check_cmd('nosuch')", "0"),
    ("EVAL", "return redis.acl_check_cmd('get','a')", "0"),
    ("EVAL", "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}", "0"),
    ("EVAL", "return {redis.REPL_NONE, redis.REPL_AOF, redis.REPL_REPLICA, redis.REPL_ALL}", "0"),
    ("EVAL", "return redis.REDIS_VERSION_NUM > 0x070000", "0"),
    # cjson and bit
    ("EVAL", "return cjson.encode({1,2,{a='x/y'}})", "0"),
    ("EVAL", "return cjson.encode({a={}, b=cjson.null})", "0"),
    ("EVAL", "return cjson.encode({1.5, 10/3, 1e20})", "0"),
    ("EVAL", "return cjson.decode('[1,2,{\"a\":3}]')[3].a", "0"),
    ("EVAL", "return cjson.decode('x')", "0"),
    ("EVAL", "return cjson.encode(function() end)", "0"),
    ("EVAL", "return cjson.encode({a={b={c='d'}}, [1]=2})", "0"),
    ("EVAL", "return cjson.encode({1, 'two', true, false, {}, {x=1}})", "0"),
    ("EVAL", "return cjson.encode('\\1\\127\\200\\t')", "0"),
    ("EVAL", "return cjson.encode(123456789012345)", "0"),
    ("EVAL", "return cjson.encode(0.1)", "0"),
    ("EVAL", "return cjson.encode(-1.5e-7)", "0"),
    ("EVAL", "return cjson.encode({[1]=1, [3]=3})", "0"),
    ("EVAL", "return cjson.encode({[1]=1, [30]=3})", "0"),
    ("EVAL", "return cjson.encode({[1.5]=1})", "0"),
    ("EVAL", "return cjson.encode({[true]=1})", "0"),
    ("EVAL", "return cjson.encode(1/0)", "0"),
    ("EVAL", "return cjson.encode()", "0"),
    ("EVAL", "return cjson.decode('\"\\\\u00e9\\\\ud83d\\\\ude00\"')", "0"),
    ("EVAL", "return cjson.decode('12345678901234567890')", "0"),
    ("EVAL", "return tostring(cjson.decode('1.5e300'))", "0"),
    ("EVAL", "return cjson.decode('{\"a\":')", "0"),
    ("EVAL", "return cjson.decode('[1,2')", "0"),
    ("EVAL", "return cjson.decode('{1:2}')", "0"),
    ("EVAL", "return cjson.decode('')", "0"),
    ("EVAL", "return cjson.decode('[1] x')", "0"),
    ("EVAL", "return cjson.decode(1)", "0"),
    ("EVAL", "return cjson.decode()", "0"),
    ("EVAL", "return cjson.decode('\"abc')", "0"),
    ("EVAL", "return {cjson.decode('true'), cjson.decode('false')}", "0"),
    ("EVAL", "return cjson.decode('{\"a\":{\"b\":[1,{\"c\":null}]}}').a.b[2].c == cjson.null", "0"),
    # cjson's configuration functions (lua_cjson.c json_cfg_*); each EVAL restores the default
    ("EVAL", "return {cjson.encode_keep_buffer(false), cjson.encode_keep_buffer(true)}", "0"),
    ("EVAL", "return cjson.encode_keep_buffer('maybe')", "0"),
    ("EVAL", "return cjson.encode_keep_buffer(1, 2)", "0"),
    ("EVAL", "local ok, e = pcall(cjson.encode, {a={b=1}}) cjson.encode_max_depth(1)"
             " local ok2, e2 = pcall(cjson.encode, {a={b=1}}) cjson.encode_max_depth(1000)"
             " return {tostring(ok), e, tostring(ok2), e2}", "0"),
    ("EVAL", "return cjson.encode_max_depth(0)", "0"),
    ("EVAL", "return cjson.encode_max_depth('x')", "0"),
    ("EVAL", "cjson.decode_max_depth(1) local ok, e = pcall(cjson.decode, '{\"o\": [1]}')"
             " cjson.decode_max_depth(1000) return {tostring(ok), e}", "0"),
    ("EVAL", "local a = cjson.encode_invalid_numbers(true) local x = cjson.encode({0/0, 1/0, -1/0})"
             " local b = cjson.encode_invalid_numbers('null') local y = cjson.encode({0/0, 1/0})"
             " local c = cjson.encode_invalid_numbers(false)"
             " return {tostring(a), x, b, y, tostring(c)}", "0"),
    ("EVAL", "local p = cjson.encode_number_precision(3) local x = cjson.encode(3.14159)"
             " cjson.encode_number_precision(14) return {p, x}", "0"),
    ("EVAL", "local a, b, c = cjson.encode_sparse_array(true) local x = cjson.encode({[1]=1, [30]=3})"
             " cjson.encode_sparse_array(false) return {tostring(a), b, c, x}", "0"),
    ("EVAL", "cjson.decode_invalid_numbers(false) local ok, e = pcall(cjson.decode, '[0x10]')"
             " cjson.decode_invalid_numbers(true) return {tostring(ok), e, cjson.decode('[0x10]')[1]}", "0"),
    # xreadCommand(): BLOCK is refused from scripts, named as the script called it
    ("EVAL", "return redis.call('xread','BLOCK',0,'STREAMS','s','$')", "0"),
    ("EVAL", "return redis.pcall('XREADGROUP','group','g','c','BLOCK',0,'STREAMS','s','>')", "0"),
    ("EVAL", "return redis.pcall('XREAD','COUNT',1,'STREAMS','s','0')", "0"),
    ("EVAL", "return bit.tohex(65535)", "0"),
    ("EVAL", "return {bit.band(0xff, 0x0f), bit.bor(1,2), bit.bxor(3,1), bit.lshift(1,31),"
             " bit.rshift(-1, 28), bit.bnot(0), bit.arshift(-256, 4), bit.tobit(2^32+5)}", "0"),
    ("EVAL", "return {type(redis.call), type(cjson.encode), type(bit.band), type(cjson.null),"
             " type(1), type(nil), type({}), type(type)}", "0"),
    ("EVAL", "return type()", "0"),
    # cmsgpack and struct
    ("EVAL", "return cmsgpack.pack({1,2,3})", "0"),
    ("EVAL", "return cmsgpack.pack({a=1})", "0"),
    ("EVAL", "return cmsgpack.pack(1.5, -1, 2^40, 'abc', true, false, nil)", "0"),
    ("EVAL", "return {cmsgpack.unpack(cmsgpack.pack(1,2,'x', {1,{a=2}}))}", "0"),
    ("EVAL", "return cmsgpack.pack(-2^40, 3.0, 0.1, 255, 65536, -33)", "0"),
    ("EVAL", "return cmsgpack.pack(string.rep('a', 40))", "0"),
    ("EVAL", "return cmsgpack.pack({})", "0"),
    ("EVAL", "local a = {x=nil,y=5} local b = {a,a} a.x = b return cmsgpack.pack(a)", "0"),
    ("EVAL", "return cmsgpack.unpack('\\205')", "0"),
    ("EVAL", "return cmsgpack.pack()", "0"),
    # lua_cmsgpack.c mp_unpack_one / mp_unpack_limit: the next offset, then the values
    ("EVAL", "local s = cmsgpack.pack(1, 'two', {3}) local o, a = cmsgpack.unpack_one(s)"
             " local o2, b = cmsgpack.unpack_one(s, o) local o3, c = cmsgpack.unpack_one(s, o2)"
             " return {o, a, o2, b, o3, c[1]}", "0"),
    ("EVAL", "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_limit(s, 2)}", "0"),
    ("EVAL", "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_limit(s, 5, 1)}", "0"),
    ("EVAL", "local s = cmsgpack.pack(1) return {cmsgpack.unpack_one(s, 1)}", "0"),
    ("EVAL", "return cmsgpack.unpack_one('abc', 9)", "0"),
    ("EVAL", "return cmsgpack.unpack_limit('abc', -1)", "0"),
    ("EVAL", "return cmsgpack.unpack_limit('abc')", "0"),
    ("EVAL", "return cmsgpack.unpack_one()", "0"),
    ("EVAL", "return cmsgpack.unpack_one('\\205')", "0"),
    ("EVAL", "return struct.pack('>I2', 258)", "0"),
    ("EVAL", "return {struct.unpack('<i4s', struct.pack('<i4', -2) .. 'xy')}", "0"),
    ("EVAL", "return {struct.unpack('<i4s', struct.pack('<i4', -2) .. 'xy\\0')}", "0"),
    ("EVAL", "return struct.size('i4d')", "0"),
    ("EVAL", "return struct.size('!8i4d')", "0"),
    ("EVAL", "return {struct.unpack('>HBc3', struct.pack('>HBc3', 513, 7, 'abcd'))}", "0"),
    ("EVAL", "return struct.pack('q', 1)", "0"),
    ("EVAL", "return {struct.unpack('Bc0', '\\3abcd')}", "0"),
    # the sandbox holds for code loaded by the script; bytecode is refused
    ("EVAL", "local f = loadstring('return os') return f()", "0"),
    ("EVAL", "local f = loadstring('x = 1') return f()", "0"),
    ("EVAL", "return loadstring(string.dump(function() return 1 end))", "0"),
    ("EVAL", "return print", "0"),
    ("EVAL", "local g = getmetatable(_G) g.__index = {}", "0"),
    ("EVAL", "_G = {}", "0"),
    ("EVAL", "redis = function() return 1 end", "0"),
    ("EVAL", "redis.call = function() return 1 end", "0"),
    ("EVAL", "cjson.encode = function() return 1 end", "0"),
    ("EVAL", "cmsgpack.pack = function() return 1 end", "0"),
    ("EVAL", "bit.lshift = function() return 1 end", "0"),
    ("EVAL", "return loadstring(string.dump(function() return 1 end))()", "0"),
    ("EVAL", "loadfile('some file')", "0"),
    ("EVAL", "dofile('some file')", "0"),
    ("EVAL", "print('some data')", "0"),
    ("EVAL", "return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')", "0"),
    ("EVAL", "local a = {x=nil,y=5} local b = {x=a} a['x'] = b local e = cmsgpack.pack(a) "
             "local re = cmsgpack.unpack(e) return {e, re.x.x.x.x.x.x.x.x.y == re.y, re.y == 5,"
             " re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x == nil}", "0"),
    ("EVAL", "local value = 9007199254740991 redis.call('set','foo',value) "
             "return redis.call('get','foo')", "0"),
    ("EVAL", "redis.call('set', 'key', '12039611435714932082') return redis.call('get', 'key')", "0"),
    ("EVAL", "return redis.pcall('blpop','x',0)", "1", "x"),
    ("EVAL", "return redis.call('cluster', 'reset', 'hard')", "0"),
    ("EVAL", "redis.call('set','invalid')", "0"),
    ("EVAL", "local f = loadstring('x = 1') f() return 1", "0"),
    ("EVAL", "local f = loadstring('return redis.call(\"nosuch\")') f() return 1", "0"),
    ("EVAL", "return {pcall(cjson.decode, 'x')}", "0"),
    # SCRIPT
    ("SCRIPT", "LOAD", "return 1"),
    ("SCRIPT", "LOAD", "return x("),
    ("SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "ffff"),
    ("SCRIPT", "FLUSH", "foo"),
    ("SCRIPT", "FLUSH", "ASYNC"),
    ("SCRIPT", "FLUSH"),
    ("SCRIPT", "KILL"),
    ("SCRIPT", "HELP"),
    ("SCRIPT", "DEBUG", "foo"),
    ("SCRIPT", "EXISTS"),
]


@pytest.mark.parametrize("args", SAME_AS_REDIS, ids=lambda a: " ".join(map(str, a))[:60])
def test_same_reply_as_redis(raw, raw_real, args):
    assert raw.command(*args) == raw_real.command(*args)


def test_same_replies_in_resp3(raw, raw_real):
    for conn in (raw, raw_real):
        conn.command("HELLO", "3")
    for args in [("EVAL", "return {double=1.5}", "0"),
                 ("EVAL", "return {big_number='123'}", "0"),
                 ("EVAL", "return {map={a=1}}", "0"),
                 ("EVAL", "return {set={a=true}}", "0"),
                 ("EVAL", "return true", "0"),
                 ("EVAL", "return false", "0"),
                 ("EVAL", "return nil", "0"),
                 ("EVAL", "redis.setresp(3) return true", "0"),
                 ("EVAL", "redis.setresp(3) return false", "0"),
                 ("EVAL", "redis.setresp(3) return redis.call('hgetall','nokey')", "0")]:
        assert raw.command(*args) == raw_real.command(*args), args


def test_evalsha_after_eval_and_load(raw, raw_real):
    for conn in (raw, raw_real):
        sha = conn.command("SCRIPT", "LOAD", "return ARGV[1]")
        assert sha == b"$40\r\n" + b"%s\r\n" % sha[5:45]
    for args in [("EVALSHA", sha[5:45], "0", "hello"),
                 ("EVALSHA", sha[5:45].upper(), "0", "hello"),
                 ("EVALSHA_RO", sha[5:45], "0", "ro"),
                 ("SCRIPT", "EXISTS", sha[5:45], sha[5:45].upper(), "0" * 40)]:
        assert raw.command(*args) == raw_real.command(*args)
    for conn in (raw, raw_real):
        assert conn.command("SCRIPT", "FLUSH") == b"+OK\r\n"
    assert raw.command("EVALSHA", sha[5:45], "0") == raw_real.command("EVALSHA", sha[5:45], "0")


def test_recursive_reply_is_cut_with_an_error(raw):
    reply = raw.command("EVAL", "local a = {}; local b = {a}; a[1] = b; return a", "0")
    assert reply.startswith(b"*1\r\n*1\r\n")
    assert reply.endswith(b"-ERR reached lua stack limit\r\n")
    assert raw.command("PING") == b"+PONG\r\n"


MASSIVE = "local a = {} for i=1,7999 do a[i] = 1 end\n"


@pytest.mark.parametrize("script", [
    # "Script check unpack with massive arguments": 8001 arguments reach the command.
    MASSIVE + "return redis.call('lpush', KEYS[1], unpack(a))",
    MASSIVE + "return redis.pcall('lpush', KEYS[1], unpack(a))",
    MASSIVE + "return redis.call('nosuch', KEYS[1], unpack(a))",
    MASSIVE + "return redis.pcall('nosuch', KEYS[1], unpack(a))",
    MASSIVE + "a[3000] = {} return redis.call('lpush', KEYS[1], unpack(a))",
    MASSIVE + "local n = redis.call('rpush', KEYS[1], unpack(a))\nreturn {n, redis.call('llen', KEYS[1])}",
    "local a = {} for i=1,300 do a[i] = i end return redis.call('rpush', KEYS[1], unpack(a))",
])
def test_unpack_with_massive_arguments(raw, raw_real, script):
    args = ("EVAL", script, "1", "l")
    assert raw.command(*args) == raw_real.command(*args)


def test_monitor_shows_eval_then_the_script_commands(vermilion_server, raw):
    from conftest import RawConnection

    monitor = RawConnection(vermilion_server.port)
    assert monitor.command("MONITOR") == b"+OK\r\n"
    raw.command("EVAL", "redis.call('set',KEYS[1],ARGV[1])", "1", "foo", "bar")
    first, second = monitor.read_reply(), monitor.read_reply()
    assert first.endswith(b'"EVAL" "redis.call(\'set\',KEYS[1],ARGV[1])" "1" "foo" "bar"\r\n')
    assert b"[0 lua]" in second and second.endswith(b'"set" "foo" "bar"\r\n')
    monitor.close()


def test_info_counts_cached_scripts(r):
    r.script_flush()
    assert r.info("memory")["number_of_cached_scripts"] == 0
    r.eval("return 1", 0)
    r.script_load("return 2")
    assert r.info("memory")["number_of_cached_scripts"] == 2
    r.script_flush()
    assert r.info("memory")["number_of_cached_scripts"] == 0


def test_error_statistics_match_redis(vermilion_server, real):
    mine = vermilion_server.client()
    stats = []
    for client in (mine, real):
        client.set("s", "x")
        client.config_resetstat()
        for script in ["return redis.call('incr','s')", "return redis.pcall('incr','s')",
                       "return {err='FOO x'}", "error('x')", "return redis.call('nosuch')",
                       "return 1"]:
            try:
                client.eval(script, 0)
            except redis.ResponseError:
                pass
        info = client.info("all")
        stats.append((info["errorstat_ERR"], info["errorstat_FOO"], info["total_error_replies"],
                      info["cmdstat_eval"]["calls"], info["cmdstat_eval"]["failed_calls"],
                      info["cmdstat_incr"]["failed_calls"]))
    mine.close()
    assert stats[0] == stats[1]


@pytest.mark.parametrize("command", [
    ("EVAL", "return redis.pcall('nosuch')", "0"),
    ("EVAL", "return redis.call('set','x')", "0"),
    ("EVAL", "local t = redis.pcall('set','x') return 1", "0"),
    ("EVAL_RO", "return redis.call('set','x','y')", "1", "x"),
    ("EVAL_RO", "local t = redis.pcall('set','x','y') return 1", "1", "x"),
    ("EVAL_RO", "return redis.call('publish','c','m')", "0"),
    ("EVAL", "return redis.call('client','list')", "0"),
    ("EVAL", "local t = redis.pcall('select',99) return 1", "0"),
    ("EVAL", "return redis.call('select',99)", "0"),
    ("EVAL", "return redis.error_reply('')", "0"),
    ("EVAL", "return redis.pcall()", "0"),
    ("EVAL", "local t = redis.pcall({}) return 1", "0"),
])
def test_error_and_command_statistics_as_redis(raw, raw_real, command):
    # scriptCall(): a refused command counts its error when refused and its
    # rejected_calls; the script's own error reply does not count it again
    # (unit/scripting "Consistent eval error reporting").
    def stats(conn):
        conn.command("CONFIG", "RESETSTAT")
        reply = conn.command(*command)
        lines = [line for line in conn.command("INFO", "all").split(b"\r\n")
                 if line.startswith((b"errorstat_", b"total_error_replies"))
                 or (line.startswith(b"cmdstat_") and not line.startswith(
                     (b"cmdstat_config", b"cmdstat_info")))]
        return reply, sorted(line.split(b",usec=")[0] + b"|" + line.split(b"usec_per_call=")[-1]
                             .split(b",", 1)[-1] if b"usec=" in line else line for line in lines)

    assert stats(raw) == stats(raw_real)


def test_select_inside_script_changes_only_the_script_db(raw, raw_real):
    for conn in (raw, raw_real):
        assert conn.command("EVAL", "redis.call('select', 1) redis.call('set','k','in1') "
                            "return redis.call('get','k')", "0") == b"$3\r\nin1\r\n"
        assert conn.command("GET", "k") == b"$-1\r\n"
        conn.command("SELECT", "1")
        assert conn.command("GET", "k") == b"$3\r\nin1\r\n"
        conn.command("SELECT", "0")


def test_keys_and_args_with_redis_py(r):
    script = "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])"
    assert r.eval(script, 1, "key", "value") == b"value"
    assert r.get("key") == b"value"
    sha = r.script_load(script)
    assert r.evalsha(sha, 1, "key2", "v2") == b"v2"
    assert r.script_exists(sha, "0" * 40) == [True, False]
    registered = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert registered(keys=["n"], args=[5]) == 5
    assert registered(keys=["n"], args=[5]) == 10
    with pytest.raises(redis.ResponseError, match="Write commands are not allowed"):
        r.eval_ro("return redis.call('set', KEYS[1], 'x')", 1, "key")
    assert r.eval_ro("return redis.call('get', KEYS[1])", 1, "key") == b"value"
    with pytest.raises(redis.exceptions.NoScriptError):
        r.evalsha("0" * 40, 0)


def test_resp3_conversions_with_redis_py(r):
    r.hset("h", mapping={"a": "1"})
    reply = r.eval("redis.setresp(3) return redis.call('hgetall', 'h')", 0)
    # A map from a RESP3 script is a map (RESP3 caller) or a flat array (RESP2 caller).
    assert reply in ({b"a": b"1"}, [b"a", b"1"])
    assert r.eval("return {double=3.5}", 0) in (3.5, b"3.5")


def test_redis_py_lock(r):
    lock = Lock(r, "resource", timeout=5)
    assert lock.acquire(blocking=False)
    assert r.get("resource") is not None
    other = Lock(r, "resource", timeout=5)
    assert not other.acquire(blocking=False)
    assert lock.extend(5)
    assert lock.owned()
    lock.release()
    assert r.get("resource") is None
    assert other.acquire(blocking=False)
    other.release()


def test_script_writes_reach_the_aof(tmp_path):
    server = start_vermilion(tmp_path, ["--appendonly", "yes"])
    try:
        c = server.client()
        c.eval("redis.call('set', KEYS[1], ARGV[1]) redis.call('rpush', 'list', 'a', 'b') "
               "redis.call('select', 2) redis.call('set', 'in2', 'x') "
               "redis.call('set', 'tmp', 'y', 'EX', 100)", 1, "key", "val")
        c.close()
    finally:
        server.stop()
    server.start()
    try:
        c = server.client()
        assert c.get("key") == b"val"
        assert c.lrange("list", 0, -1) == [b"a", b"b"]
        c.select(2)
        assert c.get("in2") == b"x"
        assert 0 < c.ttl("tmp") <= 100
        c.close()
    finally:
        server.stop()


def test_set_repl_chooses_what_reaches_the_aof(tmp_path):
    server = start_vermilion(tmp_path, ["--appendonly", "yes"])
    try:
        c = server.client()
        c.eval("redis.call('set','a','1') redis.set_repl(redis.REPL_NONE) "
               "redis.call('set','b','2') redis.set_repl(redis.REPL_AOF) "
               "redis.call('set','c','3') redis.set_repl(redis.REPL_ALL) "
               "redis.call('set','d','4')", 4, "a", "b", "c", "d")
        assert c.mget("a", "b", "c", "d") == [b"1", b"2", b"3", b"4"]
        c.close()
    finally:
        server.stop()
    server.start()
    try:
        c = server.client()
        assert c.mget("a", "b", "c", "d") == [b"1", None, b"3", b"4"]
        c.close()
    finally:
        server.stop()


def test_big_number_reply_is_one_line(raw, raw_real):
    for resp in ("2", "3"):
        for conn in (raw, raw_real):
            conn.command("HELLO", resp)
        args = ("EVAL", "return {big_number='123\\r\\n123'}", "0")
        assert raw.command(*args) == raw_real.command(*args)


def test_busy_and_script_kill(tmp_path):
    server = start_vermilion(tmp_path)
    try:
        caller = server.client(socket_timeout=10)
        other = server.client(socket_timeout=10)
        other.config_set("busy-reply-threshold", 100)
        outcome = {}

        def run(script):
            try:
                outcome["reply"] = caller.eval(script, 0)
            except redis.ResponseError as exc:
                outcome["error"] = str(exc)

        # A pure-Lua endless loop (with a pcall trying to swallow the kill).
        runner = threading.Thread(target=run, args=(
            "local i = 0 while true do i = i + 1 pcall(function() end) end",))
        runner.start()
        deadline = time.time() + 5
        busy = None
        while time.time() < deadline:
            try:
                other.ping()
            except redis.exceptions.BusyLoadingError as exc:
                busy = str(exc)
                break
            except redis.ResponseError as exc:
                busy = str(exc)
                break
            time.sleep(0.02)
        assert busy is not None and "Redis is busy running a script" in busy
        with pytest.raises(redis.ResponseError, match="BUSY"):
            other.set("k", "v")
        assert other.script_kill()
        runner.join(5)
        assert not runner.is_alive()
        assert outcome["error"].startswith("Script killed by user with SCRIPT KILL...")
        assert other.ping() and caller.ping()
        with pytest.raises(redis.ResponseError, match="NOTBUSY"):
            other.script_kill()

        # A script that wrote cannot be killed; it finishes and answers its caller.
        outcome.clear()
        runner = threading.Thread(target=run, args=(
            "redis.call('set','w','1') local i = 0 while i < 4e7 do i = i + 1 end return 7",))
        runner.start()
        deadline = time.time() + 5
        refused = None
        while time.time() < deadline and refused is None:
            try:
                other.script_kill()
            except redis.ResponseError as exc:
                if "UNKILLABLE" in str(exc):
                    refused = str(exc)
            time.sleep(0.02)
        assert refused is not None and refused.startswith("UNKILLABLE Sorry the script already executed")
        runner.join(20)
        assert outcome == {"reply": 7}
        assert other.get("w") == b"1"
    finally:
        server.stop()


# Scripts without a loop of their own run on the loop's stack (they cannot reach the
# count hook, as in Redis); each of these brings its loop another way, and must still
# answer -BUSY and die by SCRIPT KILL.
LOOPS_FROM_ELSEWHERE = [
    "return loadstring('local i = 0 while true do i = i + 1 end')()",
    "return _G['load' .. 'string']('local i = 0 while true do i = i + 1 end')()",
    "local spin = function() local i = 0 while true do i = i + 1 end end return spin()",
    "local t = {} t[1] = 1 return t[1] + #redis.call('ping') + (function() while true do end end)()",
]


@pytest.mark.parametrize("script", LOOPS_FROM_ELSEWHERE)
def test_a_loop_brought_by_code_answers_busy(tmp_path, script):
    server = start_vermilion(tmp_path)
    try:
        caller = server.client(socket_timeout=10)
        other = server.client(socket_timeout=10)
        other.config_set("busy-reply-threshold", 100)
        outcome = {}

        def run():
            try:
                outcome["reply"] = caller.eval(script, 0)
            except redis.ResponseError as exc:
                outcome["error"] = str(exc)

        runner = threading.Thread(target=run)
        runner.start()
        deadline = time.time() + 5
        busy = None
        while time.time() < deadline and busy is None:
            try:
                other.ping()
            except redis.ResponseError as exc:
                busy = str(exc)
            time.sleep(0.02)
        assert busy is not None and busy.startswith("BUSY Redis is busy running a script")
        assert other.script_kill()
        runner.join(5)
        assert not runner.is_alive()
        assert outcome["error"].startswith("Script killed by user with SCRIPT KILL...")
        assert caller.eval("return redis.call('ping')", 0) == b"PONG"
    finally:
        server.stop()


def test_busy_script_stays_atomic_across_its_slices(tmp_path):
    # Past the threshold the script runs in slices with the loop's events between them:
    # each of its commands is whole, nobody else writes meanwhile, its reply is right.
    server = start_vermilion(tmp_path)
    try:
        caller = server.client(socket_timeout=30)
        other = server.client(socket_timeout=10)
        other.config_set("busy-reply-threshold", 20)
        outcome = {}
        # 50,000 rounds: about 50 slices of 20 ms, -BUSY refusals between them.
        script = ("local n = 0 for i = 1, 50000 do n = n + redis.call('incr', KEYS[1]) "
                  "redis.call('rpush', KEYS[2], i) redis.call('ltrim', KEYS[2], -1, -1) end "
                  "return {redis.call('get', KEYS[1]), n, redis.call('lrange', KEYS[2], 0, -1)}")
        runner = threading.Thread(target=lambda: outcome.setdefault(
            "reply", caller.eval(script, 2, "counter", "list")))
        runner.start()
        refused = 0
        deadline = time.time() + 20
        while runner.is_alive() and time.time() < deadline:
            try:
                other.set("counter", "0")
            except redis.ResponseError as exc:
                assert str(exc).startswith("BUSY Redis is busy running a script")
                refused += 1
            time.sleep(0.005)
        runner.join(20)
        assert refused > 0
        # The script's own last reads prove no SET got in between its slices. (Its key
        # is not read back here: a SET sent after the script ended, before this thread
        # saw the reply, may legitimately have overwritten it.)
        assert outcome["reply"] == [b"50000", 50000 * 50001 // 2, [b"50000"]]
    finally:
        server.stop()


def test_no_busy_reply_when_the_threshold_is_zero(tmp_path):
    # busy-reply-threshold 0: no hook (luaCallFunction), the script runs to its end and
    # the others wait for it instead of getting -BUSY.
    server = start_vermilion(tmp_path)
    try:
        caller = server.client(socket_timeout=30)
        other = server.client(socket_timeout=30)
        other.config_set("busy-reply-threshold", 0)
        outcome = {}
        runner = threading.Thread(target=lambda: outcome.setdefault("reply", caller.eval(
            "local i = 0 while i < 1e7 do i = i + 1 end return i", 0)))
        runner.start()
        time.sleep(0.1)
        assert other.ping()
        runner.join(30)
        assert outcome["reply"] == 10000000
    finally:
        server.stop()


def test_a_busy_script_holds_the_cron_as_redis(tmp_path):
    # processEventsWhileBlocked() serves clients, not serverCron: no active expiry
    # while the script is busy (its DBSIZE still counts the expired key).
    from conftest import RawConnection, start_redis

    replies = []
    for start in (start_vermilion, start_redis):
        (tmp_path / start.__name__).mkdir()
        server = start(tmp_path / start.__name__)
        try:
            conn = RawConnection(server.port)
            conn.sock.settimeout(30)
            conn.command("CONFIG", "SET", "busy-reply-threshold", "20")
            conn.command("SET", "gone", "x", "PX", "30")
            replies.append(conn.command(
                "EVAL", "local t = redis.call('time') local i = 0 "
                        "while i < 1e7 do i = i + 1 if i % 1e6 == 0 then redis.call('ping') end end "
                        "return redis.call('dbsize')", "0"))
            conn.close()
        finally:
            server.stop()
    assert replies == [b":1\r\n", b":1\r\n"]


def test_sigterm_waits_for_a_busy_script(tmp_path):
    # A signal is acted on by serverCron, which does not run while a script is busy:
    # the script ends (its caller gets the reply), then the server shuts down.
    import signal

    from conftest import RawConnection

    server = start_vermilion(tmp_path)
    try:
        conn = RawConnection(server.port)
        conn.sock.settimeout(30)
        conn.command("CONFIG", "SET", "busy-reply-threshold", "20")
        body = b"redis.call('set', 'k', 'v') local i = 0 while i < 3e7 do i = i + 1 end return i"
        conn.send(b"*3\r\n$4\r\nEVAL\r\n$%d\r\n%s\r\n$1\r\n0\r\n" % (len(body), body))
        other = RawConnection(server.port)
        deadline = time.time() + 5
        while time.time() < deadline and not other.command("PING").startswith(b"-BUSY"):
            time.sleep(0.01)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        assert server.proc.poll() is None
        assert conn.read_reply() == b":30000000\r\n"
        assert server.proc.wait(10) == 0
    finally:
        server.stop()


def test_busy_error_bytes(tmp_path):
    server = start_vermilion(tmp_path)
    try:
        caller = server.client(socket_timeout=10)
        caller.config_set("busy-reply-threshold", 50)
        runner = threading.Thread(
            target=lambda: _ignore(caller.eval, "while true do end", 0))
        runner.start()
        from conftest import RawConnection

        conn = RawConnection(server.port)
        deadline = time.time() + 5
        reply = b""
        while time.time() < deadline:
            reply = conn.command("GET", "x")
            if reply.startswith(b"-BUSY"):
                break
            time.sleep(0.02)
        assert reply == (b"-BUSY Redis is busy running a script. You can only call "
                         b"SCRIPT KILL or SHUTDOWN NOSAVE.\r\n")
        assert conn.command("SCRIPT", "KILL") == b"+OK\r\n"
        runner.join(5)
        assert conn.command("PING") == b"+PONG\r\n"
        conn.close()
    finally:
        server.stop()


def test_commands_pipelined_behind_a_busy_script_keep_their_order(tmp_path):
    from conftest import RawConnection

    server = start_vermilion(tmp_path)
    try:
        conn = RawConnection(server.port)
        assert conn.command("CONFIG", "SET", "busy-reply-threshold", "50") == b"+OK\r\n"
        slow = "local i = 0 while i < 2e7 do i = i + 1 end return i"
        batch = [("EVAL", slow, "0"), ("SET", "k", "v"), ("GET", "k"), ("PING",)]
        other = RawConnection(server.port)
        for _ in range(3):  # (the later rounds find the script cached, its runner made)
            conn.send(b"".join(
                b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode())
                                               for a in c)
                for c in batch))
            deadline = time.time() + 5
            seen_busy = False
            while time.time() < deadline and not seen_busy:
                seen_busy = other.command("PING").startswith(b"-BUSY")
            assert seen_busy
            assert [conn.read_reply() for _ in batch] == [
                b":20000000\r\n", b"+OK\r\n", b"$1\r\nv\r\n", b"+PONG\r\n"]
            assert other.command("GET", "k") == b"$1\r\nv\r\n"
        conn.close()
        other.close()
    finally:
        server.stop()


def test_only_shutdown_nosave_stops_a_busy_script(tmp_path):
    from conftest import RawConnection

    server = start_vermilion(tmp_path)
    try:
        conn = RawConnection(server.port)
        conn.command("CONFIG", "SET", "busy-reply-threshold", "50")
        conn.send(b"*3\r\n$4\r\nEVAL\r\n$17\r\nwhile true do end\r\n$1\r\n0\r\n")
        other = RawConnection(server.port)
        deadline = time.time() + 5
        while time.time() < deadline and not other.command("PING").startswith(b"-BUSY"):
            pass
        assert other.command("SHUTDOWN") == (b"-BUSY Redis is busy running a script. You can only "
                                             b"call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n")
        other.send(b"SHUTDOWN NOSAVE\r\n")
        assert server.proc.wait(10) == 0
    finally:
        server.stop()


def _ignore(fn, *args):
    try:
        fn(*args)
    except redis.RedisError:
        pass


def test_acl_check_cmd_as_redis(vermilion_server, redis_server):
    from conftest import RawConnection

    cases = [("return redis.acl_check_cmd('set','xx',1)", "1", "xx"),
             ("return redis.acl_check_cmd('hset','xx','f',1)", "1", "xx"),
             ("return redis.acl_check_cmd('set','yy',1)", "0"),
             ("return redis.acl_check_cmd('set','xx')", "1", "xx"),
             ("return redis.acl_check_cmd('config','get','x')", "0"),
             ("return redis.acl_check_cmd('invalid-cmd','arg')", "0"),
             ("return redis.acl_check_cmd('config','nosuch')", "0")]
    replies = []
    for server in (vermilion_server, redis_server):
        admin = RawConnection(server.port)
        admin.command("ACL", "SETUSER", "scriptbob", "on", ">123", "+@scripting", "+set",
                      "~x*")
        conn = RawConnection(server.port)
        assert conn.command("AUTH", "scriptbob", "123") == b"+OK\r\n"
        replies.append([conn.command("EVAL", *case) for case in cases])
        conn.close()
        admin.command("ACL", "DELUSER", "scriptbob")
        admin.close()
    assert replies[0] == replies[1]
    assert replies[0][:3] == [b":1\r\n", b"$-1\r\n", b"$-1\r\n"]


def test_debug_set_disable_deny_scripts(raw, raw_real):
    script = ("EVAL", "return type(redis.call('client','list'))", "0")
    replies = []
    for conn in (raw, raw_real):
        try:
            assert conn.command("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1") == b"+OK\r\n"
            assert conn.command(*script) == b"$6\r\nstring\r\n"
            assert conn.command("SCRIPT", "FLUSH") == b"+OK\r\n"  # the switch stays on
            assert conn.command(*script) == b"$6\r\nstring\r\n"
            # RESP3 attributes are not shown to scripts (redisProtocolToLuaType_Attribute).
            replies.append([conn.command("EVAL", "redis.setresp(%d) return redis.call("
                                         "'debug', 'protocol', '%s')" % (resp, kind), "0")
                            for resp in (2, 3) for kind in ("attrib", "bignum", "verbatim")])
        finally:
            assert conn.command("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0") == b"+OK\r\n"
    assert raw.command(*script) == raw_real.command(*script)
    assert replies[0] == replies[1]
    assert replies[0][3] == b"$39\r\nSome real reply following the attribute\r\n"


def test_scripts_refused_before_they_run_as_redis(tmp_path):
    # scriptPrepareForRun() and processCommand()'s OOM refusal for scripts that declare
    # flags: min-replicas-to-write, maxmemory.
    from conftest import RawConnection, start_redis

    outputs = []
    for start in (start_vermilion, start_redis):
        (tmp_path / start.__name__).mkdir()
        server = start(tmp_path / start.__name__)
        try:
            conn = RawConnection(server.port)
            out = [conn.command("SET", "x", "some value"),
                   conn.command("CONFIG", "SET", "min-replicas-to-write", "1")]
            for body in ("#!lua flags=no-writes\nreturn redis.call('get','x')",
                         "return redis.call('get','x')",
                         "#!lua\nreturn redis.call('get','x')",
                         "return redis.call('set','x', 1)"):
                out.append(conn.command("EVAL", body, "1", "x"))
            out.append(conn.command("CONFIG", "SET", "min-replicas-to-write", "0"))
            out.append(conn.command("CONFIG", "SET", "maxmemory", "1"))
            for body in ("#!lua flags=\nreturn 1", "#!lua flags=allow-oom\nreturn 1",
                         "#!lua flags=no-writes\nreturn redis.call('get','x')",
                         "redis.call('set','x',1) return 1", "return redis.call('get','x')"):
                out.append(conn.command("EVAL", body, "1", "x"))
            out.append(conn.command("CONFIG", "SET", "maxmemory", "0"))
            outputs.append(out)
            conn.close()
        finally:
            server.stop()
    assert outputs[0] == outputs[1]


def test_the_cron_a_busy_script_held_back_runs_as_soon_as_it_ends(tmp_path):
    """No serverCron while a script is busy; once it ends, the overdue cron runs before
    the next command, as Redis's overdue time event does: an AOF rewrite that finished
    meanwhile is done, and SHUTDOWN NOSAVE is not refused as "Writing initial AOF"."""
    from conftest import RawConnection, side_by_side

    def run(server):
        r, rd = RawConnection(server.port), RawConnection(server.port)
        try:
            r.command("CONFIG", "SET", "lua-time-limit", "10")
            r.command("CONFIG", "SET", "appendonly", "yes")  # its first rewrite starts
            rd.send(b"*3\r\n$4\r\nEVAL\r\n$14\r\nwhile 1 do end\r\n$1\r\n0\r\n")
            deadline = time.time() + 5
            while time.time() < deadline and not r.command("PING").startswith(b"-BUSY"):
                pass
            while time.time() < deadline and any(
                    _state(child) not in ("Z", None) for child in _children(server.proc.pid)):
                time.sleep(0.01)  # until the rewrite's child has exited (not reaped yet)
            time.sleep(0.25)  # and the cron is overdue (hz 10: a tick every 100 ms)
            killed = r.command("SCRIPT", "KILL")
            reply = rd.read_reply()
            info = r.command("INFO", "persistence")
            return killed, reply[:30], b"aof_rewrite_in_progress:0" in info
        finally:
            r.close()
            rd.close()

    mine, theirs = side_by_side(tmp_path, run)
    assert theirs == (b"+OK\r\n", b"-ERR Script killed by user wit", True)
    assert mine == theirs


def _children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def _state(pid: str) -> str | None:
    """A process's state letter (Z: exited, not reaped yet), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
