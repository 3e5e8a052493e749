"""Redis 7.0 functions (functions.c, function_lua.c): libraries of Lua functions.

A library is loaded from code that starts with a `#!lua name=<lib>` line; running the
code once registers its functions (redis.register_function, bootstrap.lua). Functions
live in their own Lua state, apart from EVAL's (SCRIPT FLUSH does not touch them,
FUNCTION FLUSH makes a new one), as in Redis. Function names are case-insensitive
(Redis's functions dict uses a case-insensitive hash), library names are not.

FUNCTION DUMP's payload is what Redis writes: per library RDB_OPCODE_FUNCTION2 and the
code as an RDB string, then the 2-byte RDB version and the CRC64.
"""

from __future__ import annotations

import struct

from ..persistence import rdb
from ..protocol.errors import CommandError
from ..protocol.parser import split_args
from .engine import _strip_shebang, engine_of
from .runtime import LuaState

ENGINE_NAME = b"LUA"
NAME_ERROR = ("ERR Library names can only contain letters, numbers, or underscores(_) and "
              "must be at least one character long")


class Function:
    __slots__ = ("name", "callback", "flags", "description", "library", "short")

    def __init__(self, name, callback, flags, description, library, short=False):
        self.name = name
        self.callback = callback
        self.short = short  # it cannot reach the count hook (tailcalls.short_chunk())
        self.flags = flags  # list of bytes, in Redis's scripts_flags_def order
        self.description = description
        self.library = library


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name: bytes, code: bytes):
        self.name = name
        self.code = code  # the whole code, shebang included (FUNCTION LIST WITHCODE)
        self.functions: dict[bytes, Function] = {}


class Libraries:
    """functionsLibCtx: the libraries and the functions by (lower-cased) name."""

    def __init__(self):
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Function] = {}

    def link(self, lib: Library) -> None:
        self.libraries[lib.name] = lib
        for fn in lib.functions.values():
            self.functions[fn.name.lower()] = fn

    def unlink(self, lib: Library) -> None:
        del self.libraries[lib.name]
        for fn in lib.functions.values():
            self.functions.pop(fn.name.lower(), None)

    def function_count(self) -> int:
        return len(self.functions)


class FunctionsEngine:
    """The server's functions: the current libraries and their Lua state."""

    def __init__(self, server):
        self.server = server
        self.current = Libraries()
        self._state: LuaState | None = None

    @property
    def state(self) -> LuaState:
        if self._state is None:
            self._state = LuaState(engine_of(self.server))
        return self._state

    def flush(self) -> None:
        """FUNCTION FLUSH: no libraries, a fresh Lua state (functionsLibCtxClearCurrent)."""
        self.current = Libraries()
        self._state = None

    def lookup(self, name: bytes) -> Function | None:
        return self.current.functions.get(name.lower())

    def counts(self) -> tuple[int, int]:
        """(number_of_functions, number_of_libraries) for INFO memory."""
        return len(self.current.functions), len(self.current.libraries)

    # -- RDB (persistence reaches these through server.functions_engine) --------------

    def codes(self) -> list[bytes]:
        """Each library's full code, for one RDB_OPCODE_FUNCTION2 entry each."""
        return [lib.code for lib in self.current.libraries.values()]

    def load_from_rdb(self, code: bytes, replace: bool = True) -> None:
        """rdbFunctionLoad(): load a library read from an RDB file (no load timeout, as
        for a master's commands). A library of the same name is replaced unless
        replace is False (DEBUG RELOAD NOFLUSH without MERGE: RDBFLAGS_ALLOW_DUP unset),
        when it fails the load. Raises CommandError."""
        self.create(code, replace, timeout=False)

    # -- loading --------------------------------------------------------------------

    def create(self, code: bytes, replace: bool, ctx: Libraries | None = None,
               timeout: bool = True) -> bytes:
        """functionsCreateWithLibraryCtx(): compile code into ctx (the current libraries
        by default); returns the library name, raises CommandError."""
        ctx = self.current if ctx is None else ctx
        engine, name = extract_metadata(code)
        if not _valid_name(name):
            raise CommandError(NAME_ERROR)
        if engine.upper() != ENGINE_NAME:
            raise CommandError("ERR Engine '%s' not found" % engine.decode("utf-8", "replace"))
        old = ctx.libraries.get(name)
        if old is not None and not replace:
            raise CommandError("ERR Library '%s' already exists" % name.decode("utf-8", "replace"))
        lib = Library(name, code)
        for fname, callback, flags, desc, short in self.state.load_library(
                _strip_shebang(code), timeout):
            lib.functions[fname] = Function(fname, callback, flags, desc, lib, short)
        if not lib.functions:
            raise CommandError("ERR No functions registered")
        for fn in lib.functions.values():
            other = ctx.functions.get(fn.name.lower())
            if other is not None and other.library is not old:
                raise CommandError("ERR Function %s already exists" % fn.name.decode("utf-8", "replace"))
        if old is not None:
            ctx.unlink(old)
        ctx.link(lib)
        return name

    def join(self, src: Libraries, replace: bool) -> None:
        """libraryJoin(): add src's libraries to the current ones, all or nothing."""
        dst = self.current
        replaced = []
        for lib in src.libraries.values():
            old = dst.libraries.get(lib.name)
            if old is not None:
                if not replace:
                    raise CommandError("ERR Library %s already exists" % lib.name.decode("utf-8", "replace"))
                replaced.append(old)
        gone = {id(old) for old in replaced}
        for key, fn in src.functions.items():
            other = dst.functions.get(key)
            if other is not None and id(other.library) not in gone:
                raise CommandError("ERR Function %s already exists" % fn.name.decode("utf-8", "replace"))
        for old in replaced:
            dst.unlink(old)
        for lib in src.libraries.values():
            dst.link(lib)

    # -- DUMP / RESTORE ---------------------------------------------------------------

    def dump(self) -> bytes:
        # rdbSaveRawString(): LZF only with rdbcompression on.
        compress = bool(self.server.config.values.get("rdbcompression", True))
        body = b"".join(bytes([rdb.OP_FUNCTION2]) + rdb.encode_string(lib.code, compress)
                        for lib in self.current.libraries.values())
        body += struct.pack("<H", rdb.RDB_VERSION)
        return body + struct.pack("<Q", rdb.CRC64.calc(body))

    def restore(self, payload: bytes, policy: bytes) -> None:
        if len(payload) < 10:
            raise CommandError("ERR DUMP payload version or checksum are wrong")
        version = struct.unpack("<H", payload[-10:-8])[0]
        crc = struct.unpack("<Q", payload[-8:])[0]
        if version > rdb.MAX_READ_VERSION or (crc != 0 and rdb.CRC64.calc(payload[:-8]) != crc):
            raise CommandError("ERR DUMP payload version or checksum are wrong")
        ctx = Libraries()
        reader = rdb.Reader(payload[:-10])
        while reader.pos < len(reader.buf):
            try:
                op = reader.byte()
            except rdb.RDBError:
                raise CommandError("ERR can not read data type") from None
            if op == rdb.OP_FUNCTION_PRE_GA:
                _refuse_pre_ga(reader)
            if op != rdb.OP_FUNCTION2:
                raise CommandError("ERR given type is not a function")
            try:
                code = reader.string()
            except rdb.RDBError:
                raise CommandError("ERR Failed loading library payload") from None
            self.create(code, False, ctx)
        if policy == b"flush":
            self.current = ctx
        else:
            self.join(ctx, policy == b"replace")


def _refuse_pre_ga(reader) -> None:
    """rdbFunctionLoad() reads a pre-GA (RDB_OPCODE_FUNCTION) entry's header before
    refusing the format."""
    for what in ("library name", "engine name"):
        try:
            reader.string()
        except rdb.RDBError:
            raise CommandError("ERR Failed loading %s" % what) from None
    raise CommandError("ERR Pre-GA function format not supported")


def extract_metadata(code: bytes) -> tuple[bytes, bytes]:
    """functionExtractLibMetaData(): (engine, library name) from the shebang line."""
    if not code.startswith(b"#!"):
        raise CommandError("ERR Missing library metadata")
    end = code.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid library metadata")
    parts = split_args(code[:end])  # sdssplitargs(): name="x" is the word name=x
    if not parts:
        raise CommandError("ERR Invalid library metadata")
    engine, name = parts[0][2:], None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                raise CommandError("ERR Invalid metadata value, name argument was given multiple times")
            name = part[5:]
            continue
        raise CommandError("ERR Invalid metadata value given: %s" % part.decode("utf-8", "replace"))
    if name is None:
        raise CommandError("ERR Library name was not given")
    return engine, name


def _valid_name(name: bytes) -> bool:
    return bool(name) and all(c == 0x5F or 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A
                              or 0x61 <= c <= 0x7A for c in name)
