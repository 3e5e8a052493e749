"""SHUTDOWN (db.c shutdownCommand): parse the flags and hand over to the server's
shutdown order (server.py prepare_shutdown / request_shutdown, Redis's
prepareForShutdown and finishShutdown).
"""

from ..protocol import errors
from ..protocol.encode import NO_REPLY
from ..protocol.errors import CommandError
from .registry import command


_SHUTDOWN_WORDS = {b"nosave": "nosave", b"save": "save", b"now": "now", b"force": "force",
                   b"abort": "abort"}


@command("shutdown")
def shutdown(client, argv):
    flags = set()
    for raw in argv[1:]:
        word = _SHUTDOWN_WORDS.get(raw.lower())
        if word is None:
            raise CommandError(errors.SYNTAX)
        flags.add(word)
    if ("abort" in flags and len(flags) > 1) or {"save", "nosave"} <= flags:
        raise CommandError(errors.SYNTAX)
    server = client.server
    if "abort" in flags:
        # With no replicas to wait for, a shutdown never stays pending.
        raise CommandError("ERR No shutdown in progress.")
    if not server.prepare_shutdown(frozenset(flags)):
        raise CommandError("ERR Errors trying to SHUTDOWN. Check logs.")
    server.request_shutdown(0, frozenset(flags), prepared=True)
    client.close_after_reply = True
    return NO_REPLY
