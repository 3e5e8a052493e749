"""Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (eval.c).

The Lua side lives in vermilion/scripting/: the runtime, the conversions and the
engine that runs scripts (BUSY replies, SCRIPT KILL). Here: what processCommand() and
scriptPrepareForRun() check before a script runs (shared with FCALL).
"""

import os

from ..persistence.diskerror import RDB_MISCONF
from ..protocol import errors
from ..protocol.encode import NO_REPLY, OK, encode
from ..protocol.errors import CommandError
from ..protocol.parser import c_atoi
from ..scripting.convert import CountedError
from ..scripting.engine import NOSCRIPT, engine_of, sha1hex, shebang_flags
from ..protocol.numbers import parse_int
from ..replication.master import NOREPLICAS
from ..replication.replica import CONNECTED, MASTERDOWN
from .acl_cmds import denial
from .dispatch import process_command
from .registry import command

SCRIPT_HELP = [
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
]


@command("eval")
def eval_(client, argv):
    return _eval(client, argv, False, False)


@command("eval_ro")
def eval_ro(client, argv):
    return _eval(client, argv, False, True)


@command("evalsha")
def evalsha(client, argv):
    return _eval(client, argv, True, False)


@command("evalsha_ro")
def evalsha_ro(client, argv):
    return _eval(client, argv, True, True)


def script_engine(server):
    """The server's script engine (engine_of()), with what it needs of this layer: the
    ACL check redis.acl_check_cmd asks (ACLCheckAllUserCommandPerm()) and the
    dispatcher that runs the script's commands."""
    engine = server.scripting
    if engine is None or engine.acl_denial is None:
        engine = engine_of(server)
        engine.acl_denial = denial
        engine.process_command = process_command
    return engine


# numkeys as most scripts and functions give it (string2ll's result, without its
# checks).
SMALL_NUMKEYS = {b"%d" % i: i for i in range(32)}


def _eval(client, argv, by_sha: bool, read_only: bool):
    """evalCommand(): a SCRIPT DEBUG client's EVAL runs in a debugging session."""
    server = client.server
    if server.monitors:
        _feed_monitors(server, client, argv)
    engine = server.scripting
    if engine is None or engine.acl_denial is None:
        engine = script_engine(server)
    if client.lua_debug is None:
        return _eval_generic(client, argv, by_sha, read_only, engine)
    if by_sha:
        if len(argv[1]) != 40:
            raise CommandError(NOSCRIPT)  # evalShaCommand() checks the length first
        raise CommandError("ERR Please use EVAL instead of EVALSHA for debugging")
    return _eval_debugging(client, argv, read_only, engine)


def _eval_debugging(client, argv, read_only: bool, engine):
    """evalGenericCommandWithDebugging(): the whole EVAL, its errors too, inside the
    session; the connection is closed after its reply, which marks the session's end
    for the client (ldbEndSession()'s CLIENT_CLOSE_AFTER_REPLY)."""
    if client.lua_debug == b"yes":
        return _eval_forked_debugging(client, argv, read_only, engine)
    engine.debug_session(getattr(client, "fd", -1), argv[1])
    try:
        return _eval_generic(client, argv, False, read_only, engine)
    finally:
        engine.end_debug_session()
        client.close_after_reply = True


def _eval_forked_debugging(client, argv, read_only: bool, engine):
    """ldbStartSession()'s forked session (SCRIPT DEBUG YES): a child runs the debugged
    script, talking to the client on its own copy of the socket, and exits after the
    reply, so the script's changes die with it; the parent forgets the client (closing
    only its copy of the socket) and goes on serving the others."""
    fd = getattr(client, "fd", -1)
    try:
        pid = os.fork()
    except OSError as exc:
        client.lua_debug = None  # ldbDisable()
        raise CommandError("ERR Fork() failed: can't run EVAL in debugging mode: %s"
                           % exc.strerror) from None
    if pid:
        engine.adopt_debugging_child(pid)
        client.lua_debug = None
        client.close()  # freeClientAsync(): the child has the conversation now
        return NO_REPLY
    code = 0
    try:
        engine.enter_debugging_child()
        engine.debug_session(fd, argv[1], forked=True)
        try:
            reply = _eval_generic(client, argv, False, read_only, engine)
        except CommandError as exc:
            reply = exc
        engine.end_debug_session()
        # ldbEndSession(): writeToClient() of the EVAL's reply, then exitFromChild().
        engine.send_to_debugging_client(fd, encode(reply, client.resp))
    except BaseException:
        code = 1
    os._exit(code)


def _eval_generic(client, argv, by_sha: bool, read_only: bool, engine):
    """evalGenericCommand(): numkeys, the script (cached or compiled), then run it."""
    server = client.server
    if by_sha:
        sha = argv[1]
        if len(sha) != 40:
            raise CommandError(NOSCRIPT)  # evalShaCommand() checks the length first
        declared = engine.flags  # (a sha given in lower case is looked up as it is)
        if sha in declared:
            flags = declared[sha]
        else:
            sha = sha.lower()
            flags = declared.get(sha)
    else:
        sha = sha1hex(argv[1])
        flags = engine.flags[sha] if sha in engine.flags else _declared_flags(argv[1])
    if flags is not None:
        refuse_on_oom(server, flags)
    numkeys = SMALL_NUMKEYS.get(argv[2])
    if numkeys is None:
        numkeys = parse_int(argv[2])
    if numkeys > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    if sha not in engine.functions:
        if by_sha:
            raise CommandError(NOSCRIPT)
        engine.load(argv[1])
        flags = engine.flags[sha]
    if flags is None:
        if server.master_link.host is not None:
            prepare_legacy_run(client)
    else:
        prepare_run(client, flags, read_only)
        read_only = read_only or b"no-writes" in flags
    keys = argv[3:3 + numkeys]
    args = argv[3 + numkeys:]
    reply = engine.execute(client, sha, keys, args, read_only)
    if isinstance(reply, CommandError):
        # A failed script is a failed EVAL. Raised, the dispatcher also counts its
        # error; one made of a command's error was counted when that command failed.
        if not isinstance(reply, CountedError):
            raise reply
        client.cmd.failed_calls += 1
    return reply


def _declared_flags(body: bytes):
    """evalGetCommandFlags() of a script not cached yet: its shebang flags, or None
    (legacy, and a malformed shebang, whose error comes later)."""
    try:
        return shebang_flags(body)
    except CommandError:
        return None


_SCRIPT_COMMANDS = frozenset({"eval", "eval_ro", "evalsha", "evalsha_ro", "fcall", "fcall_ro"})


def declared_script_flags(server, spec, argv):
    """getCommandFlags()'s script part (evalGetCommandFlags(), fcallGetCommandFlags()):
    the flags an EVAL*/FCALL* script declares, which replace the command's own
    (scriptFlagsToCmdFlags(): write unless no-writes, and no may_replicate); None when
    the command's flags stand (not a script command, a legacy script, an unknown sha or
    function, a malformed shebang)."""
    name = spec.fullname
    if name not in _SCRIPT_COMMANDS or len(argv) < 2:
        return None
    if name.startswith("fcall"):
        fn = server.functions_engine.lookup(argv[1])
        return None if fn is None else fn.flags
    engine = server.scripting
    if name.startswith("evalsha"):
        if len(argv[1]) != 40 or engine is None:
            return None
        return engine.flags.get(argv[1].lower())
    if engine is not None:
        sha = sha1hex(argv[1])
        if sha in engine.flags:
            return engine.flags[sha]
    return _declared_flags(argv[1])


def refuse_on_oom(server, flags) -> None:
    """processCommand()'s OOM refusal of a script that declares its flags
    (scriptFlagsToCmdFlags()): without allow-oom or no-writes it is a denyoom command,
    refused before its arguments are looked at while out of memory (the eviction check
    set evictor.script_oom at its start). With either, its denyoom commands are not
    refused either (SCRIPT_ALLOW_OOM)."""
    evictor = server.evictor
    if evictor is not None and evictor.script_oom and server.config["maxmemory"]:
        if b"allow-oom" not in flags and b"no-writes" not in flags:
            raise CommandError(errors.OOM)
        evictor.script_oom = False


RO_WITH_WRITE = "ERR Can not execute a script with write flag using *_ro command."
STALE_SCRIPT = ("MASTERDOWN Link with MASTER is down, replica-serve-stale-data is set to 'no' "
                "and 'allow-stale' flag is not set on the script.")
READONLY_SCRIPT = "READONLY Can not run script with write flag on readonly replica"
MISCONF_SCRIPT_RDB = ("MISCONF Redis is configured to save RDB snapshots, but it's currently "
                      "unable to persist to disk. Writable scripts are blocked. Use 'no-writes' "
                      "flag for read only scripts.")
MISCONF_SCRIPT_AOF = ("MISCONF Redis is configured to persist data to AOF, but it's currently "
                      "unable to persist to disk. Writable scripts are blocked. Use 'no-writes' "
                      "flag for read only scripts. AOF error: %s")


def _running_stale(server) -> bool:
    link = server.master_link
    return (link.host is not None and link.state != CONNECTED
            and not server.config["replica-serve-stale-data"])


def _must_obey(client) -> bool:
    # mustObeyClient(): the master's stream and the AOF loader.
    return "M" in client.flags or client.loading


def prepare_legacy_run(client) -> None:
    """scriptPrepareForRun() of an EVAL without a shebang (SCRIPT_FLAG_EVAL_COMPAT_MODE):
    a stale replica refuses it (EVAL itself may run stale)."""
    if _running_stale(client.server):
        raise CommandError(MASTERDOWN)


def prepare_run(client, flags, read_only: bool) -> None:
    """scriptPrepareForRun()'s refusals of a script that declares its flags (an EVAL
    with a shebang, every function), in its order."""
    server = client.server
    if _running_stale(server) and b"allow-stale" not in flags:
        raise CommandError(STALE_SCRIPT)
    if b"no-writes" in flags:
        return
    config = server.config
    obey = _must_obey(client)
    if server.master_link.host is not None and config["replica-read-only"] and not obey:
        raise CommandError(READONLY_SCRIPT)
    disk = server.disk_errors.denial()
    if disk is not None and not obey:
        if disk == RDB_MISCONF:
            raise CommandError(MISCONF_SCRIPT_RDB)
        raise CommandError(MISCONF_SCRIPT_AOF % os.strerror(server.aof.write_error))
    if read_only:
        raise CommandError(RO_WITH_WRITE)
    if server.master_link.host is None and config["min-replicas-max-lag"] \
            and config["min-replicas-to-write"] \
            and server.replicas.good_replicas < config["min-replicas-to-write"]:
        raise CommandError(NOREPLICAS)


def _feed_monitors(server, client, argv) -> None:
    """EVAL* are skip_monitor for the dispatcher, yet Redis shows them to MONITOR."""
    if server.monitors:
        server.feed_monitors(client, argv, always=True)


@command("script load")
def script_load(client, argv):
    body = argv[2]
    shebang_flags(body)
    return script_engine(client.server).load(body)


@command("script exists")
def script_exists(client, argv):
    functions = script_engine(client.server).functions
    return [1 if sha.lower() in functions else 0 for sha in argv[2:]]


@command("script flush")
def script_flush(client, argv):
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
        raise CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    script_engine(client.server).flush()
    return OK


@command("script kill")
def script_kill(client, argv):
    script_engine(client.server).kill()
    return OK


@command("script debug")
def script_debug(client, argv):
    mode = argv[2].lower()
    if mode == b"no":
        client.lua_debug = None  # ldbDisable()
        return OK
    if mode == b"sync":
        # ldbEnable() + CLIENT_LUA_DEBUG_SYNC: the client's next EVAL is debugged, the
        # server blocked meanwhile (scripting/debugger.py).
        client.lua_debug = b"sync"
        return OK
    if mode == b"yes":
        # ldbEnable(): the next EVAL is debugged in a forked child (changes rolled back).
        client.lua_debug = b"yes"
        return OK
    raise CommandError("ERR Use SCRIPT DEBUG YES/SYNC/NO")


@command("debug set-disable-deny-scripts", argc=(3, 3))
def debug_set_disable_deny_scripts(client, argv):
    # debugCommand(): atoi() of the argument (anything not a number is 0).
    script_engine(client.server).disable_deny_script = bool(c_atoi(argv[2]))
    return OK


@command("script help")
def script_help(client, argv):
    return SCRIPT_HELP

