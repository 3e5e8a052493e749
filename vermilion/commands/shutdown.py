"""SHUTDOWN (db.c shutdownCommand): parse the flags and hand over to the server's
shutdown order (server.py prepare_shutdown / finish_shutdown / request_shutdown, Redis's
prepareForShutdown and finishShutdown). With replicas behind, the client stays blocked
while the server waits for them (shutdown-timeout); SHUTDOWN ABORT cancels the wait.
"""

from ..keyspace.blocking import BLOCKED, can_block
from ..protocol import errors
from ..protocol.encode import NO_REPLY, OK
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
        if not server.abort_shutdown():
            raise CommandError("ERR No shutdown in progress.")
        return OK
    if "now" not in flags and not can_block(client):
        raise CommandError("ERR SHUTDOWN without NOW or ABORT isn't allowed for DENY "
                           "BLOCKING client")
    outcome = server.prepare_shutdown(frozenset(flags), client)
    if outcome is None:
        return BLOCKED  # until the replicas caught up (then the server exits) or ABORT
    if not outcome:
        raise CommandError("ERR Errors trying to SHUTDOWN. Check logs.")
    server.request_shutdown(0, server.shutdown_flags, prepared=True)
    client.close_after_reply = True
    return NO_REPLY
