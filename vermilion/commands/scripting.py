"""Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (eval.c).

The Lua side lives in vermilion/scripting/: the runtime, the conversions and the
engine that runs scripts (worker thread, BUSY replies, SCRIPT KILL).
"""

from ..protocol.encode import OK
from ..protocol.errors import CommandError
from ..scripting.convert import CountedError
from ..scripting.engine import NOSCRIPT, engine_of, sha1hex, shebang_flags
from ..protocol.numbers import parse_int
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
    return _eval(client, argv, by_sha=False, read_only=False)


@command("eval_ro")
def eval_ro(client, argv):
    return _eval(client, argv, by_sha=False, read_only=True)


@command("evalsha")
def evalsha(client, argv):
    return _eval(client, argv, by_sha=True, read_only=False)


@command("evalsha_ro")
def evalsha_ro(client, argv):
    return _eval(client, argv, by_sha=True, read_only=True)


def _eval(client, argv, by_sha: bool, read_only: bool):
    """evalGenericCommand(): numkeys, the script (cached or compiled), then run it."""
    server = client.server
    if server.monitors:
        _feed_monitors(server, client, argv)
    if by_sha and len(argv[1]) != 40:
        raise CommandError(NOSCRIPT)  # evalShaCommand() checks the length first
    numkeys = parse_int(argv[2])
    if numkeys > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    engine = engine_of(server)
    if by_sha:
        sha = argv[1].lower()
        if sha not in engine.functions:
            raise CommandError(NOSCRIPT)
    else:
        sha = sha1hex(argv[1])
        if sha not in engine.functions:
            shebang_flags(argv[1])
            engine.load(argv[1])
    flags = shebang_flags(engine.bodies[sha])
    if flags is not None:
        # A script that declares its flags must declare no-writes to run as *_RO.
        if b"no-writes" in flags:
            read_only = True
        elif read_only:
            raise CommandError("ERR Can not execute a script with write flag using *_ro command.")
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


def _feed_monitors(server, client, argv) -> None:
    """EVAL* are skip_monitor for the dispatcher, yet Redis shows them to MONITOR."""
    if server.monitors:
        server.feed_monitors(client, argv, always=True)


@command("script load")
def script_load(client, argv):
    body = argv[2]
    shebang_flags(body)
    return engine_of(client.server).load(body)


@command("script exists")
def script_exists(client, argv):
    functions = engine_of(client.server).functions
    return [1 if sha.lower() in functions else 0 for sha in argv[2:]]


@command("script flush")
def script_flush(client, argv):
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
        raise CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    engine_of(client.server).flush()
    return OK


@command("script kill")
def script_kill(client, argv):
    engine_of(client.server).kill()
    return OK


@command("script debug")
def script_debug(client, argv):
    mode = argv[2].lower()
    if mode == b"no":
        return OK
    if mode in (b"yes", b"sync"):
        # The Lua debugger (LDB) is not implemented.
        raise CommandError("ERR SCRIPT DEBUG is not supported by this server")
    raise CommandError("ERR Use SCRIPT DEBUG YES/SYNC/NO")


@command("script help")
def script_help(client, argv):
    return SCRIPT_HELP

