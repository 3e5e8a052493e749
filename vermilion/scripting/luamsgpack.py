"""cmsgpack (lua-cmsgpack 0.4, as bundled by Redis), in Python.

pack(...) concatenates the encodings of its arguments; unpack(s) returns every value
in s. Integral numbers pack as the smallest integer type, others as float when float32
holds them exactly, else double; tables whose keys are 1..n pack as arrays, other
tables as maps; nesting deeper than 16 (circular references) packs as nil.
"""

from __future__ import annotations

import struct

from lupa import lua51

_lua_type = lua51.lua_type
MAX_NESTING = 16


class MsgpackError(Exception):
    pass


def _pack_int(n: int, out: list) -> None:
    if n >= 0:
        if n <= 0x7F:
            out.append(bytes((n,)))
        elif n <= 0xFF:
            out.append(b"\xcc" + struct.pack(">B", n))
        elif n <= 0xFFFF:
            out.append(b"\xcd" + struct.pack(">H", n))
        elif n <= 0xFFFFFFFF:
            out.append(b"\xce" + struct.pack(">I", n))
        else:
            out.append(b"\xcf" + struct.pack(">Q", n & 0xFFFFFFFFFFFFFFFF))
    elif n >= -32:
        out.append(struct.pack(">b", n))
    elif n >= -128:
        out.append(b"\xd0" + struct.pack(">b", n))
    elif n >= -32768:
        out.append(b"\xd1" + struct.pack(">h", n))
    elif n >= -(2**31):
        out.append(b"\xd2" + struct.pack(">i", n))
    else:
        out.append(b"\xd3" + struct.pack(">q", max(n, -(2**63))))


def _pack_number(x, out: list) -> None:
    if type(x) is int or (x == x and x not in (float("inf"), float("-inf")) and x == int(x)
                          and -(2**63) <= x < 2**64):
        _pack_int(int(x), out)
        return
    as_float = struct.pack(">f", x)
    if struct.unpack(">f", as_float)[0] == x or x != x:
        out.append(b"\xca" + as_float)
    else:
        out.append(b"\xcb" + struct.pack(">d", x))


def _pack_string(s: bytes, out: list) -> None:
    n = len(s)
    if n < 32:
        out.append(bytes((0xA0 | n,)))
    elif n <= 0xFF:
        out.append(b"\xd9" + bytes((n,)))
    elif n <= 0xFFFF:
        out.append(b"\xda" + struct.pack(">H", n))
    else:
        out.append(b"\xdb" + struct.pack(">I", n))
    out.append(s)


def _header(n: int, fix: int, tag16: bytes, tag32: bytes) -> bytes:
    if n <= 15:
        return bytes((fix | n,))
    if n <= 0xFFFF:
        return tag16 + struct.pack(">H", n)
    return tag32 + struct.pack(">I", n)


def _pack(value, out: list, level: int) -> None:
    kind = type(value)
    if kind is bytes:
        _pack_string(value, out)
    elif kind is bool:
        out.append(b"\xc3" if value else b"\xc2")
    elif kind is int or kind is float:
        _pack_number(value, out)
    elif value is None or _lua_type(value) != "table" or level >= MAX_NESTING:
        out.append(b"\xc0")
    else:
        items = list(value.items())
        keys = [k for k, _ in items]
        if all(type(k) is int and k > 0 for k in keys) and (not keys or max(keys) == len(keys)):
            lookup = dict(items)
            out.append(_header(len(keys), 0x90, b"\xdc", b"\xdd"))
            for i in range(1, len(keys) + 1):
                _pack(lookup[i], out, level + 1)
        else:
            out.append(_header(len(items), 0x80, b"\xde", b"\xdf"))
            for k, v in items:
                _pack(k, out, level + 1)
                _pack(v, out, level + 1)


class _Reader:
    def __init__(self, lua, data: bytes):
        self.lua = lua
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MsgpackError("Missing bytes in input.")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, n: int):
        return struct.unpack(fmt, self.take(n))[0]

    def value(self):
        b = self.take(1)[0]
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return b - 0x100
        if 0xA0 <= b <= 0xBF:
            return self.take(b & 0x1F)
        if 0x90 <= b <= 0x9F:
            return self.array(b & 0x0F)
        if 0x80 <= b <= 0x8F:
            return self.map(b & 0x0F)
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if b in simple:
            return simple[b]
        sized = {0xCC: (">B", 1), 0xCD: (">H", 2), 0xCE: (">I", 4), 0xCF: (">Q", 8),
                 0xD0: (">b", 1), 0xD1: (">h", 2), 0xD2: (">i", 4), 0xD3: (">q", 8),
                 0xCA: (">f", 4), 0xCB: (">d", 8)}
        if b in sized:
            return self.unpack(*sized[b])
        lengths = {0xD9: (">B", 1), 0xDA: (">H", 2), 0xDB: (">I", 4),
                   0xC4: (">B", 1), 0xC5: (">H", 2), 0xC6: (">I", 4)}
        if b in lengths:
            return self.take(self.unpack(*lengths[b]))
        if b in (0xDC, 0xDD):
            return self.array(self.unpack(">H", 2) if b == 0xDC else self.unpack(">I", 4))
        if b in (0xDE, 0xDF):
            return self.map(self.unpack(">H", 2) if b == 0xDE else self.unpack(">I", 4))
        raise MsgpackError("Bad data format in input.")

    def array(self, n: int):
        return self.lua.table_from([self.value() for _ in range(n)])

    def map(self, n: int):
        table = self.lua.table_from()
        for _ in range(n):
            key = self.value()
            val = self.value()
            if key is not None:
                table[key] = val
        return table


def _type_name(value) -> str:
    if type(value) is bool:
        return "boolean"
    if type(value) is bytes:
        return "string"
    if type(value) in (int, float):
        return "number"
    if value is None:
        return "nil"
    return _lua_type(value) or "userdata"


def library(lua):
    def pack(*args):
        if not args:
            raise MsgpackError("bad argument #0 to 'pack' (MessagePack pack needs input.)")
        out: list = []
        for arg in args:
            _pack(arg, out, 0)
        return b"".join(out)

    def unpack(*args):
        if not args or type(args[0]) is not bytes:
            raise MsgpackError("MessagePack unpack needs a string.")
        reader = _Reader(lua, args[0])
        values = []
        while reader.pos < len(reader.data):
            values.append(reader.value())
        return tuple(values)

    def unpack_full(data, limit: int, offset: int):
        # mp_unpack_full(): up to `limit` values from `offset`, preceded by the offset
        # to continue from (-1 once the input is used up).
        if offset < 0 or limit < 0:
            raise MsgpackError("Invalid request to unpack with offset of %d and limit of %d."
                               % (offset, len(data)))
        if offset > len(data):
            raise MsgpackError("Start offset %d greater than input length %d."
                               % (offset, len(data)))
        reader = _Reader(lua, data)
        reader.pos = offset
        values = []
        while reader.pos < len(data) and len(values) < limit:
            values.append(reader.value())
        return (-1 if reader.pos >= len(data) else reader.pos, *values)

    def integer_arg(args, index: int, name: str, default=None) -> int:
        # luaL_checkinteger() / luaL_optinteger()
        value = args[index - 1] if len(args) >= index else None
        if value is None and default is not None:
            return default
        if type(value) is bytes:
            try:
                value = float(value)
            except ValueError:
                pass
        if type(value) not in (int, float):
            got = "no value" if len(args) < index else _type_name(value)
            raise MsgpackError("bad argument #%d to '%s' (number expected, got %s)"
                               % (index, name, got))
        return int(value)

    def string_arg(args, name: str) -> bytes:
        value = args[0] if args else None
        if type(value) in (int, float):
            return (b"%d" % value) if type(value) is int else (b"%.14g" % value)
        if type(value) is not bytes:
            got = "no value" if not args else _type_name(value)
            raise MsgpackError("bad argument #1 to '%s' (string expected, got %s)" % (name, got))
        return value

    def unpack_one(*args):
        offset = integer_arg(args, 2, "unpack_one", 0)
        return unpack_full(string_arg(args, "unpack_one"), 1, offset)

    def unpack_limit(*args):
        limit = integer_arg(args, 2, "unpack_limit")
        offset = integer_arg(args, 3, "unpack_limit", 0)
        return unpack_full(string_arg(args, "unpack_limit"), limit, offset)

    return lua.table_from({
        b"pack": pack,
        b"unpack": unpack,
        b"unpack_one": unpack_one,
        b"unpack_limit": unpack_limit,
        b"_NAME": b"cmsgpack",
        b"_VERSION": b"lua-cmsgpack 0.4.0",
    })
