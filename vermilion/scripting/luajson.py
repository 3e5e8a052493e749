"""cjson.encode / cjson.decode (lua-cjson 2.1 as bundled by Redis), in Python.

Encoding follows lua-cjson: tables whose keys are exactly 1..n are arrays (an empty
table is an object), numbers use %.14g, '/' is escaped; decoding maps null to
cjson.null and arrays/objects to tables.
"""

from __future__ import annotations

import json

from lupa import lua51

_lua_type = lua51.lua_type

_ESCAPES = {ord('"'): '\\"', ord("\\"): "\\\\", ord("/"): "\\/", 8: "\\b", 12: "\\f",
            10: "\\n", 13: "\\r", 9: "\\t"}


class JSONError(Exception):
    pass


def _encode_string(value: bytes) -> str:
    text = value.decode("latin-1")
    out = []
    for ch in text:
        code = ord(ch)
        esc = _ESCAPES.get(code)
        if esc is not None:
            out.append(esc)
        elif code < 32 or code == 127:
            out.append("\\u%04x" % code)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _encode_number(value) -> str:
    if type(value) is float and (value != value or value in (float("inf"), float("-inf"))):
        raise JSONError("Cannot serialise number: must not be NaN or Inf")
    if type(value) is int and abs(value) < 10**14:
        return "%d" % value
    return "%.14g" % float(value)


def _encode(value, null, depth) -> str:
    if depth > 1000:
        raise JSONError("Cannot serialise, excessive nesting (1001)")
    kind = type(value)
    if kind is bytes:
        return _encode_string(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return _encode_number(value)
    if value is None or _lua_type(value) == "userdata":  # cjson.null
        return "null"
    if _lua_type(value) != "table":
        raise JSONError("Cannot serialise %s: type not supported" % _lua_type(value))
    items = list(value.items())
    keys = [k for k, _ in items]
    if items and all(type(k) is int and k > 0 for k in keys):
        n = max(keys)
        # lua-cjson encodes sparse arrays up to a ratio (2) as arrays with nulls.
        if n <= len(keys) * 2 or n <= 10:
            lookup = dict(items)
            return "[" + ",".join(_encode(lookup.get(i), null, depth + 1)
                                  for i in range(1, n + 1)) + "]"
        raise JSONError("Cannot serialise table: excessively sparse array")
    parts = []
    for k, v in items:
        if type(k) is bytes:
            key = _encode_string(k)
        elif type(k) in (int, float):
            key = '"' + _encode_number(k) + '"'
        else:
            raise JSONError("Cannot serialise %s: table key must be a number or string"
                            % _lua_type(k))
        parts.append(key + ":" + _encode(v, null, depth + 1))
    return "{" + ",".join(parts) + "}"


def library(lua, null):
    # Errors are raised as Python exceptions: the script's error handler turns them
    # into "ERR <message>", as luaL_error() from a C function reads in Redis.
    def encode(*args):
        if len(args) != 1:
            raise JSONError("bad argument #1 to 'encode' (expected 1 argument)")
        return _encode(args[0], null, 0).encode("latin-1")

    def to_lua(value):
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if value is None:
            return null
        if isinstance(value, list):
            return lua.table_from([to_lua(v) for v in value])
        if isinstance(value, dict):
            return lua.table_from({to_lua(k): to_lua(v) for k, v in value.items()})
        if isinstance(value, float) and value == int(value) and abs(value) < 2**53:
            return int(value)
        return value

    def decode(*args):
        if len(args) != 1 or type(args[0]) is not bytes:
            raise JSONError("bad argument #1 to 'decode' (string expected)")
        try:
            parsed = json.loads(args[0].decode("utf-8", "surrogateescape"))
        except (ValueError, RecursionError) as exc:
            raise JSONError("Expected value but found invalid token at character %d"
                            % (getattr(exc, "pos", 0) + 1)) from None
        return to_lua(parsed)

    return lua.table_from({
        b"encode": encode,
        b"decode": decode,
        b"null": null,
        b"_NAME": b"cjson",
        b"_VERSION": b"2.1.0",
    })
