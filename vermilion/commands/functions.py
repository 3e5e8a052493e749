"""Functions commands: FUNCTION *, FCALL, FCALL_RO (functions.c).

The libraries live in vermilion/scripting/library.py; a function runs on the script
engine (vermilion/scripting/engine.py) like an EVAL: BUSY, FUNCTION KILL, effects
propagation.
"""

import time

from ..protocol import errors
from ..protocol.encode import OK, ReplySet
from ..protocol.errors import CommandError
from ..scripting.convert import CountedError
from ..scripting.engine import BUSY
from ..keyspace.glob import stringmatch
from ..protocol.numbers import parse_int
from .registry import command
from .scripting import (SMALL_NUMKEYS, _feed_monitors, prepare_run, refuse_on_oom,
                        script_engine)

FUNCTION_HELP = [
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
]


def _subcommand_syntax(argv) -> CommandError:
    return CommandError(errors.SUBCOMMAND_SYNTAX.format(
        argv[1].decode("utf-8", "replace"), argv[0].decode("utf-8", "replace").upper()))


@command("function load")
def function_load(client, argv):
    replace = False
    pos = 2
    while pos < len(argv) - 1:
        arg = argv[pos]
        pos += 1
        if arg.lower() == b"replace":
            replace = True
            continue
        raise CommandError("ERR Unknown option given: %s" % arg.decode("utf-8", "replace"))
    if pos >= len(argv):
        raise CommandError("ERR Function code is missing")
    # No load timeout for a client that must be obeyed (the AOF's, a master's).
    timeout = not client.loading
    name = client.server.functions_engine.create(argv[pos], replace, timeout=timeout)
    client.server.dirty += 1
    return name


@command("function delete")
def function_delete(client, argv):
    fe = client.server.functions_engine
    lib = fe.current.libraries.get(argv[2])
    if lib is None:
        raise CommandError("ERR Library not found")
    fe.current.unlink(lib)
    client.server.dirty += 1
    return OK


@command("function flush")
def function_flush(client, argv):
    if len(argv) > 3:
        raise _subcommand_syntax(argv)
    if len(argv) == 3 and argv[2].lower() not in (b"sync", b"async"):
        raise CommandError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    client.server.functions_engine.flush()
    client.server.dirty += 1
    return OK


@command("function list")
def function_list(client, argv):
    with_code = False
    pattern = None
    i = 2
    while i < len(argv):
        arg = argv[i]
        if not with_code and arg.lower() == b"withcode":
            with_code = True
        elif pattern is None and arg.lower() == b"libraryname":
            if i >= len(argv) - 1:
                raise CommandError("ERR library name argument was not given")
            i += 1
            pattern = argv[i]
        else:
            raise CommandError("ERR Unknown argument %s" % arg.decode("utf-8", "replace"))
        i += 1
    reply = []
    for lib in client.server.functions_engine.current.libraries.values():
        if pattern is not None and not _match(pattern, lib.name):
            continue
        entry = {
            b"library_name": lib.name,
            b"engine": b"LUA",
            b"functions": [{b"name": fn.name, b"description": fn.description,
                            b"flags": ReplySet(f.decode() for f in fn.flags)}
                           for fn in lib.functions.values()],
        }
        if with_code:
            entry[b"library_code"] = lib.code
        reply.append(entry)
    return reply


def _match(pattern: bytes, name: bytes) -> bool:
    return stringmatch(pattern, name, nocase=True)  # stringmatchlen(..., nocase=1)


@command("function stats")
def function_stats(client, argv):
    engine = script_engine(client.server)
    run = engine.current if engine.busy else None
    if run is not None and not run.function:
        raise CommandError(BUSY)  # functionStatsCommand(): not while an EVAL runs
    running = None
    if run is not None:
        running = {b"name": run.sha, b"command": list(engine.fcall_argv or []),
                   b"duration_ms": int((time.monotonic() - run.started) * 1000)}
    current = client.server.functions_engine.current
    return {b"running_script": running,
            b"engines": {b"LUA": {b"libraries_count": len(current.libraries),
                                  b"functions_count": current.function_count()}}}


@command("function kill")
def function_kill(client, argv):
    script_engine(client.server).kill(function=True)
    return OK


@command("function dump")
def function_dump(client, argv):
    return client.server.functions_engine.dump()


@command("function restore")
def function_restore(client, argv):
    if len(argv) > 4:
        raise _subcommand_syntax(argv)
    policy = argv[3].lower() if len(argv) == 4 else b"append"
    if policy not in (b"append", b"replace", b"flush"):
        raise CommandError(
            "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
    client.server.functions_engine.restore(argv[2], policy)
    client.server.dirty += 1
    return OK


@command("function help")
def function_help(client, argv):
    return FUNCTION_HELP


@command("fcall")
def fcall(client, argv):
    return _fcall(client, argv, read_only=False)


@command("fcall_ro")
def fcall_ro(client, argv):
    return _fcall(client, argv, read_only=True)


def _fcall(client, argv, read_only: bool):
    """fcallCommandGeneric()."""
    server = client.server
    if server.monitors:
        _feed_monitors(server, client, argv)
    fn = server.functions_engine.lookup(argv[1])
    if fn is None:
        raise CommandError("ERR Function not found")
    # fcallGetCommandFlags(): a function's flags are its command flags.
    refuse_on_oom(server, fn.flags)
    numkeys = SMALL_NUMKEYS.get(argv[2])
    if numkeys is None:
        numkeys = parse_int(argv[2], "ERR Bad number of keys provided")
    if numkeys > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    prepare_run(client, fn.flags, read_only)
    read_only = read_only or b"no-writes" in fn.flags
    keys = argv[3:3 + numkeys]
    args = argv[3 + numkeys:]
    engine = script_engine(server)
    engine.fcall_argv = argv  # FUNCTION STATS shows the running command
    reply = engine.execute(client, fn.name, keys, args, read_only,
                           function=(server.functions_engine.state, fn.callback, fn.short))
    if isinstance(reply, CommandError):
        if not isinstance(reply, CountedError):
            raise reply
        client.cmd.failed_calls += 1
    return reply
