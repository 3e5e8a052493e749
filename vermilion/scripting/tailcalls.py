"""Compiled Lua 5.1 chunks without tail calls (TAILCALL → CALL), for redis.call.

redis.call and redis.pcall are C functions in Redis. A C function called in tail
position (`return redis.call(...)`) keeps its caller's frame, and the error handler
reports the script line of a failed call from that frame ("... script: <sha>, on
@user_script:1."). Here they are small Lua functions (bootstrap.lua): the call into
Python cannot take more than ~7997 arguments (lupa needs Lua C-stack slots of its own,
Lua 5.1 allows LUAI_MAXCSTACK = 8000), so redis.call packs a long argument list into one
table first, as `redis.call("lpush", "l", unpack(a))` with 8001 values needs. A Lua
function called in tail position replaces its caller's frame, and the line would be
lost; so a script's chunk is compiled, dumped (string.dump) and its TAILCALL
instructions turned into CALL before it is loaded again. The following RETURN A 0
returns what the call left on the stack, so the result is the same; what differs is
only that a tail call keeps its caller's frame, as calls into C do: a script that
recurses through tail calls deeper than LUAI_MAXCALLS (20000) gets "stack overflow",
where Redis's Lua would go on.

The dump is the format of lundump.c/ldump.c for Lua 5.1 on this machine (the header
says sizes and endianness); anything else is returned unchanged.
"""

from __future__ import annotations

import struct

_HEADER_FIXED = b"\x1bLua\x51\x00"
_OP_MASK = 0x3F
_OP_CALL = 28
_OP_TAILCALL = 29
# Constant types in a dump (lobject.h).
_TNIL, _TBOOLEAN, _TNUMBER, _TSTRING = 0, 1, 3, 4


class _Reader:
    __slots__ = ("data", "pos", "int_fmt", "size_fmt", "num_size")

    def __init__(self, data: bytearray, int_fmt: str, size_fmt: str, num_size: int):
        self.data = data
        self.pos = 12
        self.int_fmt = int_fmt
        self.size_fmt = size_fmt
        self.num_size = num_size

    def int(self) -> int:
        value = struct.unpack_from(self.int_fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(self.int_fmt)
        return value

    def skip_string(self) -> None:
        size = struct.unpack_from(self.size_fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(self.size_fmt) + size

    def function(self) -> None:
        """LoadFunction(): patches the code of this prototype and of its children."""
        data = self.data
        self.skip_string()  # source
        self.pos += 2 * struct.calcsize(self.int_fmt) + 4  # lines, nups/params/vararg/stack
        ncode = self.int()
        ins_fmt = self.int_fmt[0] + "I"
        for _ in range(ncode):
            ins = struct.unpack_from(ins_fmt, data, self.pos)[0]
            if ins & _OP_MASK == _OP_TAILCALL:
                struct.pack_into(ins_fmt, data, self.pos, (ins & ~_OP_MASK) | _OP_CALL)
            self.pos += 4
        for _ in range(self.int()):  # constants
            kind = data[self.pos]
            self.pos += 1
            if kind == _TBOOLEAN:
                self.pos += 1
            elif kind == _TNUMBER:
                self.pos += self.num_size
            elif kind == _TSTRING:
                self.skip_string()
            elif kind != _TNIL:
                raise ValueError("unknown constant type %d" % kind)
        for _ in range(self.int()):  # nested prototypes
            self.function()
        nlines = self.int()  # lineinfo
        self.pos += nlines * struct.calcsize(self.int_fmt)
        for _ in range(self.int()):  # locvars
            self.skip_string()
            self.pos += 2 * struct.calcsize(self.int_fmt)
        for _ in range(self.int()):  # upvalue names
            self.skip_string()


def without_tail_calls(dump: bytes) -> bytes:
    """The chunk dump with every TAILCALL made a CALL (unchanged if not understood)."""
    if len(dump) < 12 or not dump.startswith(_HEADER_FIXED):
        return dump
    little, int_size, size_size, ins_size, num_size = dump[6], dump[7], dump[8], dump[9], dump[10]
    if ins_size != 4 or int_size != 4 or size_size not in (4, 8):
        return dump
    order = "<" if little else ">"
    reader = _Reader(bytearray(dump), order + "i", order + ("Q" if size_size == 8 else "I"),
                     num_size)
    try:
        reader.function()
    except (struct.error, ValueError, IndexError):
        return dump
    if reader.pos != len(dump):
        return dump
    return bytes(reader.data)
