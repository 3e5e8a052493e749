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

The same reading tells whether a chunk runs short (short_chunk()): a script that can
never reach the count hook, which Redis sets for 100000 instructions, runs to its end
in Redis without a chance of -BUSY, and so may here (engine.py runs it on the loop's
stack, without the runner greenlet's switches).

The dump is the format of lundump.c/ldump.c for Lua 5.1 on this machine (the header
says sizes and endianness); anything else is returned unchanged.
"""

from __future__ import annotations

import struct

_HEADER_FIXED = b"\x1bLua\x51\x00"
_OP_MASK = 0x3F
_OP_GETUPVAL = 4
_OP_GETGLOBAL = 5
_OP_JMP = 22
_OP_CALL = 28
_OP_TAILCALL = 29
_OP_FORLOOP = 31
_OP_TFORLOOP = 33
_MAXARG_SBX = ((1 << 18) - 1) >> 1  # sBx = Bx - this (lopcodes.h)
# luaMaskCountHook's period in Redis (and in bootstrap.lua).
HOOK_EVERY = 100000
# The globals through which a script can reach code it did not bring: loadstring and
# load make functions of text, _G holds them under names built at run time.
_CODE_LOADERS = frozenset({b"loadstring", b"load", b"_G"})
# Constant types in a dump (lobject.h).
_TNIL, _TBOOLEAN, _TNUMBER, _TSTRING = 0, 1, 3, 4


class _Reader:
    __slots__ = ("data", "pos", "int_fmt", "size_fmt", "num_size", "short")

    def __init__(self, data: bytearray, int_fmt: str, size_fmt: str, num_size: int):
        self.data = data
        self.pos = 12
        self.int_fmt = int_fmt
        self.size_fmt = size_fmt
        self.num_size = num_size
        self.short = False  # (the main function's, once read: see function())

    def int(self) -> int:
        value = struct.unpack_from(self.int_fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(self.int_fmt)
        return value

    def skip_string(self) -> bytes:
        """Steps over a string; returns it (without its terminating NUL)."""
        size = struct.unpack_from(self.size_fmt, self.data, self.pos)[0]
        start = self.pos + struct.calcsize(self.size_fmt)
        self.pos = start + size
        return bytes(self.data[start:start + size - 1])

    def function(self, main: bool = False) -> None:
        """LoadFunction(): patches the code of this prototype and of its children; for
        the main function, sets self.short: no loop (a backward jump), no function of
        its own (so no recursion), no upvalue read (a library's function reaches the
        library's other functions that way) and no global that loads code, in fewer
        instructions than the count hook's period, so that no run of it can reach the
        hook."""
        data = self.data
        self.skip_string()  # source
        self.pos += 2 * struct.calcsize(self.int_fmt) + 4  # lines, nups/params/vararg/stack
        ncode = self.int()
        ins_fmt = self.int_fmt[0] + "I"
        loops = False
        globals_read = set()  # constant indexes of the globals GETGLOBAL reads
        for _ in range(ncode):
            ins = struct.unpack_from(ins_fmt, data, self.pos)[0]
            op = ins & _OP_MASK
            if op == _OP_TAILCALL:
                struct.pack_into(ins_fmt, data, self.pos, (ins & ~_OP_MASK) | _OP_CALL)
            elif op == _OP_GETGLOBAL:
                globals_read.add(ins >> 14)
            elif op == _OP_FORLOOP or op == _OP_TFORLOOP or op == _OP_GETUPVAL or (
                    op == _OP_JMP and (ins >> 14) < _MAXARG_SBX):
                loops = True
            self.pos += 4
        names = set()
        for index in range(self.int()):  # constants
            kind = data[self.pos]
            self.pos += 1
            if kind == _TBOOLEAN:
                self.pos += 1
            elif kind == _TNUMBER:
                self.pos += self.num_size
            elif kind == _TSTRING:
                text = self.skip_string()
                if index in globals_read:
                    names.add(text)
            elif kind != _TNIL:
                raise ValueError("unknown constant type %d" % kind)
        children = self.int()
        for _ in range(children):  # nested prototypes
            self.function()
        if main:
            self.short = (not loops and not children and ncode < HOOK_EVERY
                          and names.isdisjoint(_CODE_LOADERS))
        nlines = self.int()  # lineinfo
        self.pos += nlines * struct.calcsize(self.int_fmt)
        for _ in range(self.int()):  # locvars
            self.skip_string()
            self.pos += 2 * struct.calcsize(self.int_fmt)
        for _ in range(self.int()):  # upvalue names
            self.skip_string()


def without_tail_calls(dump: bytes) -> bytes:
    """The chunk dump with every TAILCALL made a CALL (unchanged if not understood)."""
    reader = _read(dump)
    return dump if reader is None else bytes(reader.data)


def short_chunk(dump: bytes) -> bool:
    """Whether no run of the chunk can reach the count hook (see _Reader.function());
    False for a dump not understood."""
    reader = _read(dump)
    return reader is not None and reader.short


def _read(dump: bytes) -> _Reader | None:
    if len(dump) < 12 or not dump.startswith(_HEADER_FIXED):
        return None
    little, int_size, size_size, ins_size, num_size = dump[6], dump[7], dump[8], dump[9], dump[10]
    if ins_size != 4 or int_size != 4 or size_size not in (4, 8):
        return None
    order = "<" if little else ">"
    reader = _Reader(bytearray(dump), order + "i", order + ("Q" if size_size == 8 else "I"),
                     num_size)
    try:
        reader.function(main=True)
    except (struct.error, ValueError, IndexError):
        return None
    if reader.pos != len(dump):
        return None
    return reader
