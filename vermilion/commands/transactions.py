"""MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis 7.0's multi.c).

Session state: session.multi (a MultiState while in MULTI: the queue and whether a
command was refused while queueing), and the WATCH state kept by keyspace/watch.py.
"""

from ..keyspace.watch import is_watched_key_expired, unwatch_all, watch_keys
from ..protocol.encode import NO_REPLY, NULL_ARRAY, OK, Raw, _encode
from ..protocol.errors import CommandError
from ..session import MultiState
from .acl_cmds import check_queued
from .dispatch import call
from .registry import command

EXECABORT = "EXECABORT Transaction discarded because of previous errors."
NESTED_MULTI = "ERR MULTI calls can not be nested"
EXEC_WITHOUT_MULTI = "ERR EXEC without MULTI"
DISCARD_WITHOUT_MULTI = "ERR DISCARD without MULTI"
WATCH_IN_MULTI = "ERR WATCH inside MULTI is not allowed"


@command("watch")
def watch(client, argv):
    if client.multi is not None:
        raise CommandError(WATCH_IN_MULTI)
    if not client.dirty_cas:  # else no point in watching: EXEC will fail anyway
        watch_keys(client, argv[1:])
    return OK


@command("unwatch")
def unwatch(client, argv):
    unwatch_all(client)
    client.dirty_cas = False
    return OK


# -- MULTI / EXEC ------------------------------------------------------------------------


def discard_transaction(client) -> None:
    """discardTransaction(): leave MULTI, forget the flags and every WATCH."""
    client.discard_transaction()


@command("multi")
def multi(client, argv):
    if client.multi is not None:
        raise CommandError(NESTED_MULTI)
    client.multi = MultiState()
    client.flags.add("x")
    client.refresh_gate()
    return OK


@command("discard")
def discard(client, argv):
    if client.multi is None:
        raise CommandError(DISCARD_WITHOUT_MULTI)
    discard_transaction(client)
    return OK


@command("exec", monitor_after=True)
def exec_(client, argv):
    server = client.server
    try:
        return _exec(client, server)
    finally:
        # EXEC is shown to MONITOR after the commands it ran, as Redis's call() does.
        if server.monitors:
            server.feed_monitors(client, argv)


def _exec(client, server):
    multi = client.multi
    if multi is None:
        raise CommandError(EXEC_WITHOUT_MULTI)
    queue = multi.queue
    if is_watched_key_expired(client):
        client.dirty_cas = True
    if multi.aborted:
        discard_transaction(client)
        raise CommandError(EXECABORT)
    if client.dirty_cas:
        discard_transaction(client)
        return NULL_ARRAY
    unwatch_all(client)  # unwatch ASAP: our own writes must not mark us dirty
    # The client stays in MULTI state (flag x, multi=N in CLIENT LIST) until the end.
    # Blocking commands run inside EXEC as their non-blocking selves (CLIENT_DENY_BLOCKING).
    was_denied = client.deny_blocking
    client.deny_blocking = True
    client.in_exec = True
    # The effects go out as one MULTI ... EXEC block when there is more than one.
    collecting = server.propagation.open_block()
    # The reply is framed here: messages a command pushes to this very client (PUBLISH
    # to itself, keyspace events) sit inside the array before that command's reply,
    # where Redis 7.0 writes them.
    out = [b"*%d\r\n" % len(queue)]
    pushes = client.push_buffer
    resp = client.resp
    try:
        for spec, argv in queue:
            # ACL rules may have changed since the command was queued (execCommand()),
            # or the user itself (AUTH inside the transaction).
            denied = not client.user.unrestricted and check_queued(client, spec, argv)
            reply = denied or call(client, spec, argv)
            if pushes:
                out += pushes
                pushes.clear()
            _encode(out, None if reply is NO_REPLY else reply, resp)
    finally:
        client.deny_blocking = was_denied
        client.in_exec = False
        if collecting:
            server.propagation.close_block()
        discard_transaction(client)
    return Raw(b"".join(out))
