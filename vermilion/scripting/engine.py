"""The script engine: the scripts cache, running a script, BUSY and SCRIPT KILL.

Redis runs a script on its only thread and, once the script has run longer than
busy-reply-threshold (lua-time-limit), re-enters the event loop from a Lua count hook
(luaMaskCountHook → scriptInterrupt → processEventsWhileBlocked) to answer other
clients with -BUSY. An asyncio loop cannot be re-entered from inside one of its
callbacks, so the script runs on its own *stack* instead, on the loop thread:

* A script runs in the engine's runner greenlet, a second C stack on the loop
  thread (no thread hop, no lock). A script that ends before the threshold — nearly
  all — never leaves the EVAL handler. One that cannot reach the count hook at all
  (tailcalls.short_chunk(): no loop, no function of its own, no code loading; Redis
  could never go busy in it either) runs on the loop's own stack: the two switches
  cost a fifth of a short EVALSHA's time in the server.
* The Lua count hook calls interrupt() every 100000 instructions, as Redis's does. Past
  the threshold it switches back to the loop's greenlet: the EVAL handler returns
  without a reply (the caller's reading is paused, its reply is sent when the script
  ends) and the engine is *busy*: a command check answers every other command with
  -BUSY except the allow_busy ones (SCRIPT KILL, SHUTDOWN NOSAVE...). The loop resumes
  the script at its next iteration (call_soon), so from then on the script runs in
  slices of 100000 instructions with the loop's events processed between them — Redis's
  processEventsWhileBlocked at each hook call. The keyspace has one thread, and a
  script never stops in the middle of one of its commands (the hook runs between Lua
  instructions), so every command stays atomic.
* SCRIPT KILL sets a flag that interrupt() returns when the script resumes; the hook
  then raises "Script killed by user with SCRIPT KILL..." (and fires on every
  instruction from then on, so pcall cannot swallow it). A script that already wrote
  cannot be killed (UNKILLABLE), as in Redis.

A script that cannot answer later — inside MULTI/EXEC, or run by an internal client
(the AOF loader, a master's stream) — runs to its end without giving the loop a turn.

Commands the caller pipelined behind a busy EVAL wait for its reply (Redis blocks the
caller), and a script's writes are collected while it runs, then propagated —
wrapped in MULTI/EXEC when there are several, filtered by redis.set_repl().
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from time import perf_counter_ns as _perf
from threading import get_ident

import greenlet

from ..session import Session
from ..keyspace import database
from ..log import logger
from ..propagate import TO_ALL
from ..protocol.encode import NO_REPLY, Raw
from ..protocol.errors import CommandError, sanitize
from .convert import (_STATUS_LINES, CountedError, ScriptCheckError, c_string,
                      finish_reply, lua_to_reply, shaped_to_reply)
from .debugger import LuaDebugger
from .runtime import LuaState

BUSY = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
BUSY_FUNCTION = ("BUSY Redis is busy running a function. You can only call FUNCTION KILL or "
                 "SHUTDOWN NOSAVE.")
NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
NOTBUSY = "NOTBUSY No scripts in execution right now."
UNKILLABLE = ("UNKILLABLE Sorry the script already executed write commands against the "
              "dataset. You can either wait the script termination or kill the server in a "
              "hard way using the SHUTDOWN NOSAVE command.")
UNKNOWN_COMMAND = "ERR Unknown Redis command called from script"
WRONG_ARGS = "ERR Wrong number of args calling Redis command from script"
NOT_ALLOWED = "ERR This Redis command is not allowed from script"
READ_ONLY_WRITE = "ERR Write commands are not allowed from read-only scripts."

DEFAULT_BUSY_THRESHOLD_MS = 5000

# What the runner greenlet hands the loop when the script goes past the threshold.
_SUSPENDED = object()



def script_session(server) -> Session:
    """Redis's lua client: runs the script's commands, without a socket (nothing is
    ever sent to it). It mirrors the caller's db at the start of each script; SELECT
    inside a script changes only this session. Id 0: it takes no client id."""
    session = Session(server, 0, addr="lua")
    session.script = True  # CLIENT_SCRIPT (SORT BY <constant> sorts for scripts)
    session.authenticated = True
    return session


class ScriptRun:
    """One execution of a script."""

    __slots__ = ("sha", "caller", "client", "read_only", "wrote", "write_dirty", "deferrable",
                 "timedout", "captured", "pending", "spec", "state", "function", "started",
                 "threshold")

    def __init__(self, sha, caller, client, read_only, state=None, function=False):
        self.sha = sha  # the script's sha, or the function's name (FCALL)
        self.state = state
        self.function = function
        self.started = time.monotonic()
        self.threshold = None  # busy-reply-threshold in seconds, None: no limit
        self.caller = caller
        self.spec = caller.cmd  # EVAL's spec, for its failed_calls
        self.client = client
        self.read_only = read_only
        self.captured = None
        # The caller's commands pipelined behind a busy script (a list once it is busy).
        self.pending: list | None = None
        self.wrote = False
        # SCRIPT_WRITE_DIRTY: a write command of the script got past its checks; the
        # server-state checks (READONLY replica, MISCONF, NOREPLICAS) no longer apply
        # (scriptVerifyWriteCommandAllow(): a script half done cannot be failed).
        self.write_dirty = False
        self.deferrable = False  # runs in the runner greenlet: it may leave the handler
        self.timedout = False  # past the threshold (SCRIPT_TIMEDOUT): others get -BUSY


def engine_of(server) -> "ScriptEngine":
    engine = server.scripting
    if engine is None:
        engine = server.scripting = ScriptEngine(server)
    return engine


def sha1hex(body: bytes) -> bytes:
    return hashlib.sha1(body).hexdigest().encode()


class ScriptEngine:
    def __init__(self, server):
        self.server = server
        self.bodies: dict[bytes, bytes] = {}  # sha → body (SCRIPT EXISTS, the cache)
        self.functions: dict[bytes, object] = {}  # sha → compiled Lua function
        self.flags: dict[bytes, set | None] = {}  # sha → shebang flags, None: legacy
        # The scripts that run short (tailcalls.short_chunk()): they never reach the
        # count hook, so they run on the loop's stack, without the runner's switches.
        self.short: set[bytes] = set()
        self._state: LuaState | None = None
        self.client = script_session(server)
        self.current: ScriptRun | None = None
        self.kill_requested = False
        self.busy = False  # a script is past the threshold: others get -BUSY
        self._cron_was_paused = False  # DEBUG PAUSE-CRON's state before a busy script
        # The greenlet scripts run in (made on first use, on the thread that runs
        # them: the loop's), and that thread.
        self._runner: greenlet.greenlet | None = None
        self._runner_thread = None
        self._job = None  # (run, runner_fn, fn, keys, args) handed to the runner
        # DEBUG SET-DISABLE-DENY-SCRIPTS (server.script_disable_deny_script): scripts may
        # call noscript commands. Kept across SCRIPT FLUSH, as Redis keeps it.
        self.disable_deny_script = False
        # ACLCheckAllUserCommandPerm() for redis.acl_check_cmd: (user, spec, argv) →
        # (reason, position), handed in by the commands layer (commands/scripting.py).
        self.acl_denial = None
        # The dispatcher's process_command(), handed in by the commands layer too: a
        # script's commands take the path a client's command takes (server.execute()
        # until then).
        self.process_command = None
        # The Lua debugger's session while a SCRIPT DEBUG SYNC client's EVAL runs
        # (debugger.py), else None.
        self.debugger = None
        self.debugging_children: set[int] = set()  # forked sessions' pids (ldb.children)

    # -- the cache ------------------------------------------------------------------

    @property
    def state(self) -> LuaState:
        if self._state is None:
            self._state = LuaState(self)
        return self._state

    def load(self, body: bytes) -> bytes:
        """Compile and cache a script body (EVAL, SCRIPT LOAD); returns its sha."""
        sha = sha1hex(body)
        if sha not in self.functions:
            flags = shebang_flags(body)
            self.functions[sha], short = self.state.compile(_strip_shebang(body))
            if short:
                self.short.add(sha)
            self.bodies[sha] = body
            self.flags[sha] = flags
        return sha

    def flush(self) -> None:
        """SCRIPT FLUSH: a fresh Lua state and an empty cache (scriptingReset)."""
        self.bodies.clear()
        self.functions.clear()
        self.flags.clear()
        self.short.clear()
        self._state = None

    # -- running ------------------------------------------------------------------

    def execute(self, caller, sha: bytes, keys, args, read_only: bool, function=None):
        """Run a cached script for caller; its reply, or NO_REPLY when it went past
        the busy threshold (the reply is then sent when it finishes). function: a
        (LuaState, callback, runs short) registered by a library (FCALL), sha is then
        its name. On every EVAL's path: kept flat."""
        if function is None:
            fn = self.functions[sha]
            state = self._state  # (the state property, without its call: the script is
            runner_fn = state.run  # cached, so the state exists)
            if self.debugger is not None:
                runner_fn = state.run_debug
            short = sha in self.short
        else:
            state, fn, short = function
            runner_fn = state.run_function
        server = self.server
        client = self.client
        client.db = caller.db
        # The script's commands are checked against the caller's user (scriptCall()).
        user = client.user = caller.user
        # Session.refresh_access() of an authenticated session (the script client
        # always is), inlined: it runs for every script.
        client.unchecked = user.unrestricted
        client.acl_fast = user.fast_allows
        client.resp = 2
        run = self.current = ScriptRun(sha, caller, client, read_only, state,
                                       function is not None)
        self.kill_requested = False
        # Each write of the script is propagated by the dispatcher as it runs (effects
        # replication, as in Redis 7), into a block, so more than one write goes out
        # wrapped in MULTI/EXEC and the AOF and replicas apply the script atomically.
        # Inside EXEC the transaction's own block holds them.
        propagation = server.propagation
        captured = run.captured = propagation.open_block()
        if _FREEZE is not None:
            _FREEZE(database.now_ms())
        threshold = server.config.values.get("busy-reply-threshold", DEFAULT_BUSY_THRESHOLD_MS)
        runner = None
        # Only a connection's own command can answer later; inside MULTI/EXEC, for
        # internal clients, or without a threshold (no hook in Redis), the script runs
        # to its end, as does one that runs short (it cannot reach the hook).
        if threshold > 0 and self.debugger is None and not short:
            # (A debugged script has the debugger's hook instead, luaLdbLineHook: it
            # blocks the server until the session ends.)
            run.threshold = threshold / 1000
            if caller.connected and not caller.in_exec and not caller.script \
                    and not self.busy and (caller._flags is None or "x" not in caller._flags):
                runner = self._runner
                if runner is None or runner.dead or self._runner_thread != get_ident():
                    runner = self._new_runner()
        if runner is not None:
            run.deferrable = True
            self._job = (run, runner_fn, fn, keys, args)
            reply = runner.switch()
            if reply is _SUSPENDED:
                self._enter_busy(run)
                return NO_REPLY
        else:
            reply = self._run(run, runner_fn, fn, keys, args)
        self.current = None
        if _FREEZE is not None:
            _FREEZE(None)
        propagation.targets = TO_ALL
        if captured:
            propagation.close_block()
        kind = type(reply)
        if kind is Raw or kind is bytes or kind is int:
            return reply  # (finish_reply() leaves these as they are)
        return finish_reply(reply, caller.resp)

    def debug_session(self, fd: int, body: bytes, forked: bool = False):
        """ldbStartSession() for a SCRIPT DEBUG client's EVAL: the session, which the
        caller ends (end_debug_session()) whatever happens to the EVAL."""
        if not forked:
            logger.warning("Redis synchronous debugging eval session started")
        self.debugger = LuaDebugger(self, fd, body)
        self.debugger.forked = forked
        return self.debugger

    # -- forked debugging sessions (SCRIPT DEBUG YES) -----------------------------------

    def enter_debugging_child(self) -> None:
        """The forked session's child (ldbStartSession()): it serves its one client and
        exits. Its writes must reach no one: nothing is propagated, and every other
        connection's socket is left alone (Redis's child never flushes their replies;
        ours would write at once), nor is the child stopped by the signals the parent
        handles."""
        server = self.server
        server.enter_child()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        logger.warning("Redis forked for debugging eval")
        server.propagation.sinks.clear()
        # closeChildUnusedResourceAfterFork(): the listening sockets closed (this copy of
        # them only: the parent's event loop keeps watching its own), so that clients
        # are refused if the parent dies.
        for listener in [*server.listeners, *server.tls_listeners]:
            for sock in listener.sockets or ():
                try:
                    os.close(sock.fileno())
                except OSError:
                    pass
        for client in list(server.clients.values()):
            if getattr(client, "transport", None) is not None:
                client.transport = _DETACHED

    def send_to_debugging_client(self, fd: int, data: bytes) -> None:
        LuaDebugger(self, fd, b"").write(data)
        logger.warning("Lua debugging session child exiting")

    def adopt_debugging_child(self, pid: int) -> None:
        """The parent's side: the child is reaped when it exits (ldbRemoveChild())."""
        self.server.stats.total_forks += 1
        self.debugging_children.add(pid)
        shutdown_hooks = self.server.hooks.shutdown
        if self._kill_at_shutdown not in shutdown_hooks:
            shutdown_hooks.append(self._kill_at_shutdown)
        self.server.loop.call_later(0.1, self._reap_debugging_children)

    def _reap_debugging_children(self) -> None:
        for pid in list(self.debugging_children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.debugging_children.discard(pid)
        if self.debugging_children:
            self.server.loop.call_later(0.1, self._reap_debugging_children)

    def _kill_at_shutdown(self, flags) -> None:
        # prepareForShutdown(): ldbKillForkedSessions().
        self.kill_debugging_children()

    def kill_debugging_children(self) -> None:
        """ldbKillForkedSessions()."""
        for pid in list(self.debugging_children):
            logger.warning(f"Killing debugging session {pid}")
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def end_debug_session(self) -> None:
        """ldbEndSession(): the last logs and the <endsession> mark."""
        debugger, self.debugger = self.debugger, None
        if debugger is not None:
            debugger.end()
            if not debugger.forked:
                logger.warning("Redis synchronous debugging eval session ended")

    def _run(self, run: ScriptRun, runner_fn, fn, keys, args):
        """The script's reply (a value or a CommandError)."""
        try:
            outcome = runner_fn(fn, keys, args)
            if not outcome[0]:
                return _error_reply(run.sha, outcome[1])
            if len(outcome) > 2:  # a table, and its shape (bootstrap.lua's ended())
                if outcome[2] == b"ok":
                    # A status table: the common ones are precomputed (shaped_to_reply()
                    # gives the same constant, for a text without NUL or CR/LF).
                    status = _STATUS_LINES.get(outcome[3])
                    if status is not None:
                        return status
                return shaped_to_reply(outcome[2:], run.client.resp, run.state.shape)
            return lua_to_reply(outcome[1], run.client.resp, run.state.shape)
        except Exception as exc:  # a bug of ours must not take the server down
            logger.warning(f"Lua script failed: {exc!r}")
            return CommandError("ERR Error running script (call to f_%s): %s"
                                % (run.sha.decode(), sanitize(str(exc))))

    # -- the runner greenlet ------------------------------------------------------------

    def _new_runner(self):
        """The runner greenlet (made on first use; a greenlet runs on the thread that
        made it only: another thread gets its own)."""
        runner = self._runner = greenlet.greenlet(self._runner_main)
        self._runner_thread = get_ident()
        return runner

    def _runner_main(self):
        # Runs one script (self._job) per switch into it; the reply (or _SUSPENDED,
        # from interrupt()) goes back to the runner's parent, the greenlet that made
        # it (the loop's), which switched in: the EVAL handler, or _resume() when the
        # script was suspended.
        back = greenlet.getcurrent().parent.switch
        run = self._run
        while True:
            job, self._job = self._job, None
            back(run(*job))

    def interrupt(self) -> bool:
        """The Lua count hook (every 100000 instructions; scriptInterrupt()): past the
        threshold, give the loop a turn; True when the script must die (SCRIPT KILL)."""
        run = self.current
        if run is None or not run.deferrable:
            return False
        if not run.timedout:
            if run.threshold is None or time.monotonic() - run.started < run.threshold:
                return False
            run.timedout = True
        greenlet.getcurrent().parent.switch(_SUSPENDED)
        return self.kill_requested

    def _resume(self) -> None:
        """The busy script's next slice, from the loop (processEventsWhileBlocked's
        turn is the loop iteration in between)."""
        run = self.current
        if run is None or self._runner is None:
            return
        reply = self._runner.switch()
        if reply is _SUSPENDED:
            self.server.loop.call_soon(self._resume)
        else:
            self._finish_busy(run, reply)

    def _propagate_writes(self, captured) -> None:
        propagation = self.server.propagation
        propagation.targets = TO_ALL
        if captured:
            propagation.close_block()

    # -- BUSY -------------------------------------------------------------------------

    def _enter_busy(self, run: ScriptRun) -> None:
        # scriptInterrupt()'s warning; an EVAL's name is its Lua function's, f_<sha>.
        elapsed = int((time.monotonic() - run.started) * 1000)
        name = run.sha.decode() if run.function else "f_" + run.sha.decode()
        logger.warning(f"Slow script detected: still in execution after {elapsed} "
                       f"milliseconds. You can try killing the script using the "
                       f"{'FUNCTION KILL' if run.function else 'SCRIPT KILL'} command. "
                       f"Script name is: {name}.")
        self.busy = True
        # processEventsWhileBlocked() serves file events only: no serverCron while a
        # script is busy (no active expiry or eviction in the middle of it, a SIGTERM
        # waits for its end), as DEBUG PAUSE-CRON holds the cron.
        self._cron_was_paused = self.server.pause_cron
        self.server.pause_cron = True
        self.server.hooks.command_checks.append(self._refuse_while_busy)
        run.pending = []
        # The caller waits for its reply: its next commands must not run before it.
        run.caller._pause_reading()
        self.server.loop.call_soon(self._resume)

    def _finish_busy(self, run: ScriptRun, reply) -> None:
        self.busy = False
        self.current = None
        if _FREEZE is not None:
            _FREEZE(None)
        if self._refuse_while_busy in self.server.hooks.command_checks:
            self.server.hooks.command_checks.remove(self._refuse_while_busy)
        caller = run.caller
        if isinstance(reply, CommandError):
            run.spec.failed_calls += 1
            if not isinstance(reply, CountedError):
                self.server.count_error(reply)
        self._propagate_writes(run.captured)
        self.server.flush_appends()
        # The cron the script held back runs now, before the reply leaves: Redis's
        # overdue serverCron runs right after the command, its replies written later.
        if self._cron_was_paused:
            self.server.pause_cron = True
        else:
            self.server.resume_cron()
        if caller.closing:
            return
        caller.send(finish_reply(reply, caller.resp))
        if run.pending:
            caller._run(run.pending)
        caller._resume_reading()

    def _refuse_while_busy(self, client, spec, argv) -> None:
        if client is self.client:
            return
        run = self.current
        if run is not None and client is run.caller:
            # Commands pipelined behind the EVAL (same read batch) must run after its
            # reply, as Redis blocks the caller: keep them for later and silence the
            # refusal (CLIENT REPLY SKIP's mechanism drops this one reply).
            run.pending.append(argv)
            client.reply_skip = True
            raise CommandError(BUSY)
        if "allow_busy" in spec.flags and not _saving_shutdown(spec, argv):
            return
        raise CommandError(BUSY_FUNCTION if run is not None and run.function else BUSY)

    def kill(self, function: bool = False) -> None:
        """SCRIPT KILL, or FUNCTION KILL (function=True): each kills only its kind
        (scriptKill())."""
        run = self.current
        if not self.busy or run is None:
            raise CommandError(NOTBUSY)
        if run.function != function:
            raise CommandError(BUSY_FUNCTION if run.function else BUSY)
        if run.wrote:
            raise CommandError(UNKILLABLE)
        self.kill_requested = True

    # -- redis.call -----------------------------------------------------------------

    def _call(self, argv: list[bytes]):
        """scriptCall(): the script-specific checks, then the normal dispatcher (which
        also propagates each write: effects replication, as Redis 7 does). The reply,
        or a CommandError already counted in the error statistics."""
        run = self.current
        commands = self.server.commands
        spec = commands.spellings.get(argv[0]) or commands.spelled(argv[0])
        if spec is not None and spec.subcommands and len(argv) > 1:
            spec = spec.subcommands.get(argv[1].lower())
        if spec is None or (spec.handler is None and not spec.subcommands):
            # Not implemented here; a command Redis refuses in scripts gets its refusal.
            if commands.noscript_in_redis(argv) and not self.disable_deny_script:
                return self._refuse(spec, NOT_ALLOWED)
            return self._refuse(spec, UNKNOWN_COMMAND)
        arity = spec.arity  # (CommandSpec.check_arity(), inlined)
        if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
            return self._refuse(spec, WRONG_ARGS)
        flags = spec.flags
        if "noscript" in flags and not self.disable_deny_script:
            return self._refuse(spec, NOT_ALLOWED)
        if spec.is_write:
            if run.read_only:
                return self._refuse(spec, READ_ONLY_WRITE)
            run.wrote = True
        elif run.read_only and "may_replicate" in flags:
            # scriptVerifyWriteCommandAllow(): may-replicate counts as a write (PUBLISH).
            return self._refuse(spec, READ_ONLY_WRITE)
        elif run.caller.tracking is not None and "readonly" in flags:
            # call(): a script that reads makes its caller track the keys it declared.
            self.server.tracking.script_read(run.caller)
        process_command = self.process_command
        if process_command is None:
            return self.server.execute(run.client, argv)
        client = run.client
        client.clock = _perf()  # (server.execute(), inlined)
        if not spec.is_write or run.write_dirty:
            return process_command(client, argv)
        rejected = spec.rejected_calls
        reply = process_command(client, argv)
        if spec.rejected_calls == rejected:
            run.write_dirty = True  # scriptCall(): past the checks, then call()
        return reply

    def past_first_write(self, client) -> bool:
        """Whether client is the running script's and it already wrote (SCRIPT_WRITE_DIRTY):
        the server-state checks of writes skip it."""
        run = self.current
        return run is not None and run.client is client and run.write_dirty

    def _refuse(self, spec, message: str) -> ScriptCheckError:
        """scriptCall()'s error path: the error is counted now (afterErrorReply()) and
        the command's rejected_calls (incrCommandStatsOnError(ERROR_COMMAND_REJECTED))."""
        if spec is not None:
            spec.rejected_calls += 1
        error = ScriptCheckError(message)
        self.server.count_error(error)
        return error


# Redis freezes the clock for a script's duration (keys don't expire mid-script):
# keyspace.database.freeze_time(ms or None), when the keyspace offers it.
_FREEZE = getattr(database, "freeze_time", None)


class _Detached:
    """A forked debugging child's stand-in for the other clients' transports: whatever
    the child would write to them is dropped, as Redis's child never flushes them."""

    def __getattr__(self, name):
        return _ignore


def _ignore(*args, **kwargs):
    return None


_DETACHED = _Detached()


def _saving_shutdown(spec, argv) -> bool:
    # shutdownCommand(): while a script is busy, only SHUTDOWN NOSAVE may stop the server
    # (a save could capture the script's half-done writes).
    return spec.fullname == "shutdown" and not any(a.lower() == b"nosave" for a in argv[1:])


def _error_reply(sha: bytes, value) -> CommandError:
    """luaCallFunction(): "<err> script: <sha>, on <source>:<line>."."""
    from lupa import lua51

    if lua51.lua_type(value) != "table":
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        return CommandError("ERR Error running script %s, %.100s" % ("f_" + sha.decode(), text))
    err = value[b"err"]
    message = c_string(err).decode("utf-8", "surrogateescape") if isinstance(err, bytes) else ""
    source, line = value[b"source"], value[b"line"]
    if source is not None and line is not None:
        message += " script: %s, on %s:%d." % (
            sha.decode(), source.decode("utf-8", "replace"), int(line))
    counted = value[b"ignore_error_stats_update"]
    return (CountedError if counted else CommandError)(sanitize(message))


def _strip_shebang(body: bytes) -> bytes:
    # The shebang line is not Lua; its newline stays so line numbers are unchanged.
    if body.startswith(b"#!"):
        end = body.find(b"\n")
        return b"" if end < 0 else body[end:]
    return body


SHEBANG_FLAGS = {b"no-writes", b"allow-oom", b"allow-stale", b"no-cluster",
                 b"allow-cross-slot-keys"}


def shebang_flags(body: bytes) -> set[bytes] | None:
    """evalExtractShebangFlags(): None for a legacy script (no shebang), else its flags;
    CommandError for a malformed shebang."""
    if not body.startswith(b"#!"):
        return None
    end = body.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid script shebang")
    parts = body[:end].split(b" ")
    if parts[0] != b"#!lua":
        raise CommandError("ERR Unexpected engine in script shebang: %s"
                           % parts[0].decode("utf-8", "replace"))
    flags: set[bytes] = set()
    for part in parts[1:]:
        if not part:
            continue
        if not part.startswith(b"flags="):
            raise CommandError("ERR Unknown lua shebang option: %s"
                               % part.decode("utf-8", "replace"))
        for flag in part[6:].split(b","):
            if flag and flag not in SHEBANG_FLAGS:
                raise CommandError("ERR Unexpected flag in script shebang: %s"
                                   % flag.decode("utf-8", "replace"))
            flags.add(flag)
    return flags
