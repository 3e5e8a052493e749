"""SLOWLOG and its subcommands (slowlog.c slowlogCommand). The log itself, and what
gets recorded in it, is vermilion/slowlog.py's.
"""

from ..protocol.encode import OK
from ..protocol.errors import CommandError
from ..protocol.numbers import to_int
from .registry import command


SLOWLOG_HELP = [
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
]


@command("slowlog get")
def slowlog_get(client, argv):
    entries = client.server.slowlog.entries
    count = 10
    if len(argv) == 3:
        count = to_int(argv[2])
        if count is None or count < -1:
            raise CommandError("ERR count should be greater than or equal to -1")
        if count == -1:
            count = len(entries)
    return [entry for _, entry in zip(range(count), entries)]


@command("slowlog len")
def slowlog_len(client, argv):
    return len(client.server.slowlog.entries)


@command("slowlog reset")
def slowlog_reset(client, argv):
    client.server.slowlog.reset()
    return OK


@command("slowlog help")
def slowlog_help(client, argv):
    return SLOWLOG_HELP

