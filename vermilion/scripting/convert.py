"""Reply values ⇄ Lua values, with Redis 7.0's rules (script_lua.c).

Command reply → Lua (redisProtocolToLuaType): the reply is encoded in the script
client's protocol (RESP2 unless redis.setresp(3)) and parsed back, so every reply
shape (precomputed Raw constants included) converts exactly as Redis converts its
own reply buffer:

    RESP2  integer → number, bulk → string, null bulk / null array → false,
           array → table, status → {ok=...}, error → {err=...}
    RESP3  null → nil, map → {map={...}}, set → {set={m=true}}, double → {double=n},
           boolean → true/false, big number → {big_number="..."},
           verbatim → {verbatim_string={format=..., string=...}}

Lua → reply (luaReplyToRedisReply): number → integer (truncated), string → bulk,
true → 1 (RESP3: #t), false → null (RESP3: #f), table with err= → error, ok= →
status, double= / map= / set= / big_number= → their RESP3 types, other tables →
array up to the first nil.
"""

from __future__ import annotations

from lupa import lua51

from ..protocol.encode import OK, PONG, QUEUED, Raw, ReplySet, Verbatim, encode
from ..protocol.errors import CommandError, sanitize

_lua_type = lua51.lua_type

# -- Lua arguments → command argv -----------------------------------------------------

ARGS_NOT_STRINGS = "ERR Lua redis lib command arguments must be strings or integers"
NO_ARGS = "ERR Please specify at least one argument for this redis lib call"


def lua_args_to_argv(args) -> list[bytes] | str:
    """luaArgsToRedisArgv(): strings as they are, numbers as %.17g; else the error."""
    if not args:
        return NO_ARGS
    argv = []
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            argv.append(arg)
        elif kind is int and -(2**53) <= arg <= 2**53:
            argv.append(b"%d" % arg)
        elif kind is float or kind is int:
            argv.append(b"%.17g" % float(arg))
        else:
            return ARGS_NOT_STRINGS
    return argv


# -- command reply → Lua ----------------------------------------------------------------


class _Parser:
    """A small RESP2/RESP3 reader over one complete encoded reply."""

    __slots__ = ("data", "pos", "lua", "table")

    def __init__(self, lua, data: bytes):
        self.lua = lua
        self.table = lua.table_from
        self.data = data
        self.pos = 0

    def _line(self) -> bytes:
        end = self.data.index(b"\r\n", self.pos)
        line = self.data[self.pos:end]
        self.pos = end + 2
        return line

    def _bulk(self, length: int) -> bytes:
        start = self.pos
        self.pos = start + length + 2
        return self.data[start:start + length]

    def value(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            n = int(rest)
            return False if n < 0 else self._bulk(n)
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return self.table({b"ok": rest})
        if kind == b"-":
            return self.table({b"err": rest})
        if kind in (b"*", b">"):
            n = int(rest)
            if n < 0:
                return False
            return self.table([self.value() for _ in range(n)])
        if kind == b"%":
            n = int(rest)
            inner = self.table()
            for _ in range(n):
                key = self.value()
                inner[key] = self.value()
            return self.table({b"map": inner})
        if kind == b"~":
            inner = self.table()
            for _ in range(int(rest)):
                inner[self.value()] = True
            return self.table({b"set": inner})
        if kind == b"_":
            return None
        if kind == b"#":
            return rest == b"t"
        if kind == b",":
            return self.table({b"double": float(rest)})
        if kind == b"(":
            return self.table({b"big_number": rest})
        if kind == b"|":
            # redisProtocolToLuaType_Attribute(): attributes are not shown to scripts;
            # the reply that follows them is the value.
            for _ in range(int(rest)):
                self.value()
                self.value()
            return self.value()
        if kind == b"=":
            text = self._bulk(int(rest))
            return self.table({b"verbatim_string": self.table(
                {b"format": text[:3], b"string": text[4:]})})
        raise ValueError(f"unexpected reply type {kind!r}")


# Status replies handlers return as precomputed constants: their text, and back.
_RAW_STATUS = {OK: b"OK", PONG: b"PONG", QUEUED: b"QUEUED"}
_STATUS_LINES = {text: raw for raw, text in _RAW_STATUS.items()}
_CRLF_AS_SPACES = bytes.maketrans(b"\r\n", b"  ")


def reply_to_lua(lua, reply, resp: int):
    """A command's reply value as what redis.call returns to Lua: the value, or a
    status as (text, True), whose {ok=text} table the Lua side makes (bootstrap.lua)."""
    kind = type(reply)
    # Fast paths for the common replies.
    if kind is bytes or kind is int:
        return reply
    if kind is Raw:
        status = _RAW_STATUS.get(reply)
        if status is not None:
            return status, True
    elif kind is str:
        return sanitize(reply).encode(), True
    elif reply is None:
        return False if resp == 2 else None
    return _Parser(lua, encode(reply, resp)).value()


def error_table(lua, message: str, counted: bool = False):
    """luaPushErrorBuff(): {err="CODE message"}; messages here always carry their code.
    counted: a command's error, already in the error statistics, so the script's error
    reply made of it must not count again (Redis's ignore_error_stats_update)."""
    fields = {b"err": message.strip("\r\n").encode("utf-8", "surrogateescape")}
    if counted:
        fields[b"ignore_error_stats_update"] = True
    return lua.table_from(fields)


class CountedError(CommandError):
    """An error reply whose error was already counted in INFO errorstats."""


class ScriptCheckError(CommandError):
    """A command refused by the script checks (it never ran, so it is not counted)."""


# -- Lua → reply ----------------------------------------------------------------------


def _truncate(number) -> int:
    # (long long) cast of a lua_Number: out of range (and NaN) gives LLONG_MIN on x86.
    if type(number) is int:
        return number if -(2**63) <= number < 2**63 else -(2**63)
    if number != number or not -(2**63) <= number < 2**63:
        return -(2**63)
    return int(number)


class BigNumber(bytes):
    """A RESP3 big number reply; RESP2 callers get it as a bulk string."""


# Redis stops converting when the Lua stack is exhausted ("reached lua stack limit");
# nesting is bounded here too, low enough for the encoder's recursion.
MAX_DEPTH = 200
STACK_LIMIT = "ERR reached lua stack limit"


def lua_to_reply(value, script_resp: int, shape, depth: int = 0):
    """luaReplyToRedisReply(): the reply value for a Lua value. shape is the Lua
    state's api.shape (bootstrap.lua), which reads a table the way Redis does."""
    kind = type(value)
    if kind is bytes:
        return value
    if kind is int or kind is float:
        return _truncate(value)
    if kind is bool:
        if script_resp == 2:
            return 1 if value else None
        return value
    if value is None:
        return None
    if _lua_type(value) != "table":
        return None  # functions, userdata...: nil, as Redis does
    if depth >= MAX_DEPTH:
        return CommandError(STACK_LIMIT)
    return _table_to_reply(value, script_resp, shape, depth + 1)


def _table_to_reply(table, script_resp, shape, depth):
    return shaped_to_reply(shape(table), script_resp, shape, depth)


def shaped_to_reply(found, script_resp, shape, depth=1):
    """The reply for a table given its shape: (kind, value, extra) from shape()."""
    kind, value = found[0], found[1]
    if kind == b"err":
        # addReplyErrorFormatEx("-%s", msg): a C string, its trailing CR/LF trimmed.
        error_class = CountedError if found[2] else CommandError
        text = c_string(value).rstrip(b"\r\n")
        return error_class(sanitize(text.decode("utf-8", "surrogateescape")))
    if kind == b"ok":
        # addReplyStatusLength(sdsnew(lua_tostring())) with CR/LF as spaces: the
        # status line itself, precomputed for the common one.
        text = c_string(value)
        return _STATUS_LINES.get(text) or Raw(b"+%s\r\n" % text.translate(_CRLF_AS_SPACES))
    if kind == b"double":
        return float(value)
    if kind == b"big_number":
        return BigNumber(value)
    if kind == b"verbatim_string":
        text = value[b"string"]
        if type(text) is bytes:
            return Verbatim(text)
        return None
    if kind == b"map":
        return {_key(lua_to_reply(k, script_resp, shape, depth)):
                lua_to_reply(v, script_resp, shape, depth) for k, v in value.items()}
    if kind == b"set":
        return ReplySet(lua_to_reply(k, script_resp, shape, depth) for k in value.keys())
    return [lua_to_reply(value[i], script_resp, shape, depth) for i in range(1, found[2] + 1)]


def c_string(value: bytes) -> bytes:
    """A Lua string as Redis reads it with lua_tostring() into an sds: up to a NUL."""
    end = value.find(b"\0")
    return value if end < 0 else value[:end]


def _key(value):
    try:
        hash(value)
        return value
    except TypeError:
        return tuple(value) if isinstance(value, list) else repr(value)


def encode_big_number(value: BigNumber, resp: int) -> Raw:
    value = value.replace(b"\r", b" ").replace(b"\n", b" ")  # one line, as Redis sends it
    if resp == 3:
        return Raw(b"(%s\r\n" % value)
    return Raw(b"$%d\r\n%s\r\n" % (len(value), value))


def finish_reply(reply, resp: int):
    """Replace the reply types encode.py doesn't know (big numbers) for the caller."""
    kind = type(reply)
    if kind is BigNumber:
        return encode_big_number(reply, resp)
    if kind is list or kind is ReplySet:
        return kind(finish_reply(item, resp) for item in reply)
    if kind is dict:
        return {k: finish_reply(v, resp) for k, v in reply.items()}
    return reply

