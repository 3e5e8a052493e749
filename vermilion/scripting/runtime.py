"""The Lua state: lupa's Lua 5.1 with Redis's script environment (bootstrap.lua) and
the Python half of the redis library, cjson and bit.

One LuaState per server, as Redis has one lua_State; SCRIPT FLUSH makes a new one.
The state runs scripts for an engine (engine.py) that executes their commands.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from lupa import lua51

from .. import REDIS_VERSION
from ..acl import OK as ACL_OK
from ..log import logger
from . import luabit, luajson, luamsgpack, luastruct
from .tailcalls import short_chunk, without_tail_calls
from .convert import (_RAW_STATUS, NO_ARGS, ScriptCheckError, error_table, lua_args_to_argv,
                      reply_to_lua)
from ..protocol.encode import Raw
from ..protocol.errors import CommandError

_BOOTSTRAP = resources.files("vermilion.scripting").joinpath("bootstrap.lua").read_bytes()
_VERSION_NUM = sum(int(p) << s for p, s in zip(REDIS_VERSION.split("."), (16, 8, 0)))
# Up to this many keys and arguments go to Lua as plain values (bootstrap.lua's
# split), more as two tables (a call's arguments take Lua C-stack slots).
_FEW_ARGS = 32
_LOG_LEVELS = (logger.debug, logger.verbose, logger.notice, logger.warning)


def lua_tostring(value) -> bytes | None:
    """lua_tolstring(): strings as they are, numbers as Lua prints them (%.14g)."""
    if type(value) is bytes:
        return value
    if type(value) in (int, float) and type(value) is not bool:
        if type(value) is int and abs(value) < 10**14:
            return b"%d" % value
        return b"%.14g" % float(value)
    return None


_PY_TYPES = {bytes: b"string", int: b"number", float: b"number", bool: b"boolean",
             type(None): b"nil"}


class LuaArgumentError(Exception):
    pass


def _lua_type_of(*args):
    """type(): Lua's answer, with our Python library functions as "function"."""
    if not args:
        raise LuaArgumentError("bad argument #1 to 'type' (value expected)")
    value = args[0]
    name = _PY_TYPES.get(type(value))
    if name is not None:
        return name
    kind = lua51.lua_type(value)
    if kind is None:
        return b"function" if callable(value) else b"userdata"
    return kind.encode()


class ScriptError(Exception):
    """Raised by a redis.* function to raise a Lua error; carries the error table."""

    def __init__(self, table):
        super().__init__("script error")
        self.table = table


class LuaState:
    def __init__(self, engine):
        self.engine = engine
        lua = self.lua = lua51.LuaRuntime(
            unpack_returned_tuples=True, encoding=None,
            register_eval=False, register_builtins=False)
        self.null = lua.eval("newproxy(false)")  # cjson.null: a unique userdata
        py = lua.table_from({
            b"call": self._call,
            b"pcall": self._pcall,
            b"call_table": self._call_table,
            b"pcall_table": self._pcall_table,
            b"without_tail_calls": without_tail_calls,
            b"unwrap": self._unwrap,
            b"type": _lua_type_of,
            b"sha1hex": self._sha1hex,
            b"log": self._log,
            b"setresp": self._setresp,
            b"set_repl": self._set_repl,
            b"acl_check_cmd": self._acl_check_cmd,
            b"interrupt": engine.interrupt,
            b"ldb_line": self._ldb_line,
            b"ldb_debug": self._ldb_debug,
            b"ldb_breakpoint": self._ldb_breakpoint,
            b"version": REDIS_VERSION.encode(),
            b"version_num": _VERSION_NUM,
            b"cjson": luajson.library(lua, self.null),
            b"bit": luabit.library(lua),
            b"cmsgpack": luamsgpack.library(lua),
            b"struct": luastruct.library(lua),
            b"null": self.null,
        })
        api = lua.execute(_BOOTSTRAP, py)
        self._compile = api[b"compile"]
        self._run = api[b"run"]
        self._run_args = api[b"run_args"]
        self._run_function_args = api[b"run_function_args"]
        self._load_library = api[b"load_library"]
        self._run_function = api[b"run_function"]
        self._dump = api[b"dump"]
        self.shape = api[b"shape"]
        self._run_debug = api[b"run_debug"]
        self.ldb_print = api[b"ldb_print"]
        self.ldb_print_all = api[b"ldb_print_all"]
        self.ldb_trace = api[b"ldb_trace"]
        self.ldb_eval = api[b"ldb_eval"]
        self.table = lua.table_from

    def compile(self, body: bytes):
        """(the script's function, whether it runs short: tailcalls.short_chunk()), or
        raise CommandError with Redis's compile error."""
        fn, err, code = self._compile(body)
        if fn is None:
            message = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
            raise CommandError("ERR Error compiling script (new function): " + message)
        return fn, short_chunk(code)

    def run(self, fn, keys: list[bytes], args: list[bytes]):
        """(ok, value): the script's return value or its error table."""
        if len(keys) + len(args) <= _FEW_ARGS:
            return self._run_args(fn, len(keys), *keys, *args)
        return self._run(fn, self.table(keys), self.table(args))

    def run_debug(self, fn, keys: list[bytes], args: list[bytes]):
        """run() under the Lua debugger's line hook (a SCRIPT DEBUG SYNC session)."""
        return self._run_debug(fn, self.table(keys), self.table(args))

    def load_library(self, code: bytes, timeout: bool = True):
        """Run a library's code (FUNCTION LOAD): [(name, callback, flags, description,
        whether the callback runs short: tailcalls.short_chunk())], or raise
        CommandError with Redis's error."""
        result = self._load_library(code, timeout)
        registered, err = result if type(result) is tuple else (result, None)
        if registered is None:
            message = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
            raise CommandError("ERR " + message)
        functions = []
        for i in range(1, len(registered) + 1):
            name, callback, flags, desc = (registered[i][j] for j in (1, 2, 3, 4))
            functions.append((name, callback,
                              [flags[k] for k in range(1, len(flags) + 1)], desc,
                              short_chunk(self._dump(callback))))
        return functions

    def run_function(self, fn, keys: list[bytes], args: list[bytes]):
        """(ok, value) of a registered function called with (keys, args)."""
        if len(keys) + len(args) <= _FEW_ARGS:
            return self._run_function_args(fn, len(keys), *keys, *args)
        return self._run_function(fn, self.table(keys), self.table(args))

    # -- the Python half of the redis library (see bootstrap.lua) -------------------------

    def _error(self, message: str, counted: bool = False):
        debugger = self.engine.debugger
        if debugger is not None and debugger.enabled and not counted:
            # luaPushErrorBuff() logs the error while the debugger steps (a command's
            # error was logged by _call(), with its reply).
            debugger.log("<error> " + message.removeprefix("ERR "))
        raise ScriptError(error_table(self.lua, message, counted))

    @staticmethod
    def _unwrap(exc):
        """(error value, wants the script position) for an exception raised to Lua."""
        if isinstance(exc, ScriptError):
            return exc.table, False
        return str(exc).encode("utf-8", "replace"), True

    def _call(self, *args):
        """redis.call: a failing command raises its error."""
        for arg in args:
            if type(arg) is not bytes:
                argv = lua_args_to_argv(args)
                if type(argv) is str:
                    return self._error(argv)
                break
        else:
            if not args:
                return self._error(NO_ARGS)
            argv = list(args)
        engine = self.engine
        debugger = engine.debugger
        if debugger is not None and debugger.enabled:
            return self._logged_call(debugger, argv)
        reply = engine._call(argv)
        kind = type(reply)
        if kind is bytes or kind is int:
            return reply
        if kind is Raw:  # (reply_to_lua()'s first case, inlined: SET's +OK...)
            status = _RAW_STATUS.get(reply)
            if status is not None:
                return status, True
        if isinstance(reply, CommandError):
            # Counted already, by the dispatcher or the script checks (scriptCall()):
            # ignore_error_stats_update.
            return self._error(reply.message, counted=True)
        return reply_to_lua(self.lua, reply, engine.client.resp)

    def _logged_call(self, debugger, argv):
        """redis.call while the debugger steps: the command and its reply are logged
        (luaRedisGenericCommand()'s "<redis>", then ldbLogRedisReply())."""
        debugger.log_command(argv)
        engine = self.engine
        reply = engine._call(argv)
        if isinstance(reply, ScriptCheckError):
            # scriptCall()'s refusals: their text, without an error code.
            debugger.log("<error> " + reply.message.removeprefix("ERR "))
        elif isinstance(reply, CommandError):
            # redisProtocolToLuaType_Error() logs "-CODE msg", then the reply itself.
            debugger.log("<error> -" + reply.message)
            debugger.log_reply(reply, engine.client.resp)
        else:
            debugger.log_reply(reply, engine.client.resp)
        if isinstance(reply, CommandError):
            return self._error(reply.message, counted=True)
        if type(reply) is Raw:
            status = _RAW_STATUS.get(reply)
            if status is not None:
                return status, True
        if type(reply) in (bytes, int):
            return reply
        return reply_to_lua(self.lua, reply, engine.client.resp)

    def debugger_call(self, argv):
        """The debugger's redis command (ldbRedis())."""
        return self._call(*argv)

    # -- the Lua debugger's hooks -----------------------------------------------------

    def _ldb_line(self, is_count, line):
        debugger = self.engine.debugger
        if debugger is None:
            return None
        return debugger.line_hook(bool(is_count), int(line))

    def _ldb_debug(self, text):
        debugger = self.engine.debugger
        if debugger is not None:
            debugger.debug_log(text)

    def _ldb_breakpoint(self):
        debugger = self.engine.debugger
        if debugger is not None:
            debugger.luabp = True

    def _pcall(self, *args):
        """redis.pcall: every error, argument errors included, is returned as {err=}."""
        try:
            return self._call(*args)
        except ScriptError as exc:
            return exc.table

    def _call_table(self, table, n):
        """redis.call with its many arguments packed in one table (bootstrap.lua)."""
        return self._call(*[table[i] for i in range(1, n + 1)])

    def _pcall_table(self, table, n):
        return self._pcall(*[table[i] for i in range(1, n + 1)])

    def _sha1hex(self, *args):
        text = lua_tostring(args[0]) if len(args) == 1 else None
        if text is None:
            return self._error("ERR wrong number of arguments")
        return hashlib.sha1(text).hexdigest().encode()

    def _log(self, *args):
        if len(args) < 2:
            return self._error("ERR redis.log() requires two arguments or more.")
        level = args[0]
        if type(level) not in (int, float) or type(level) is bool:
            return self._error("ERR First argument must be a number (log level).")
        if not 0 <= level <= 3:
            return self._error("ERR Invalid debug level.")
        parts = [lua_tostring(a) for a in args[1:]]
        text = b" ".join(p for p in parts if p is not None)
        _LOG_LEVELS[int(level)](text.decode("utf-8", "replace"))

    def _setresp(self, *args):
        if len(args) != 1:
            return self._error("ERR redis.setresp() requires one argument.")
        if args[0] not in (2, 3):
            return self._error("ERR RESP version must be 2 or 3.")
        self.engine.current.client.resp = int(args[0])

    def _set_repl(self, *args):
        if len(args) != 1:
            return self._error("ERR redis.set_repl() requires two arguments.")
        if type(args[0]) not in (int, float) or args[0] not in (0, 1, 2, 3):
            return self._error(
                "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
        self.engine.server.propagation.targets = int(args[0])  # redis.set_repl()

    def _acl_check_cmd(self, *args):
        """luaRedisAclCheckCmdPermissionsCommand(): whether the script's caller may run
        the command (lookupCommand() finds it without an arity check)."""
        argv = lua_args_to_argv(args)
        if type(argv) is str:
            return self._error(argv)
        engine = self.engine
        commands = engine.server.commands
        spec = commands.get(argv[0].lower())
        if spec is not None and spec.subcommands and len(argv) > 1:
            spec = spec.subcommands.get(argv[1].lower())
        if spec is None:
            return self._error("ERR Invalid command passed to redis.acl_check_cmd()")
        run = engine.current
        if run is None or engine.acl_denial is None:
            return True
        reason, _ = engine.acl_denial(run.caller.user, spec, argv)
        return reason == ACL_OK
