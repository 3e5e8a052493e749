"""MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis 7.0's multi.c).

Client state, created lazily on the client object:
  multi_queue    None outside MULTI, else the queued (spec, argv) pairs
  multi_aborted  a command was rejected while queueing (EXEC answers EXECABORT)
  dirty_cas      a WATCHed key was modified (EXEC answers a null array)
  watched        {(db_id, key): expired_when_watched} — Redis's watchedKey.expired
Server state: server.key_watchers {(db_id, key): {client: None}} (insertion ordered),
which Database.touched() consults on every change through server.signal_modified.
"""

from ..keyspace.database import now_ms
from ..propagate import propagate_raw
from ..protocol.encode import NO_REPLY, NULL_ARRAY, OK, Raw, _encode
from ..protocol.errors import CommandError
from . import dispatch
from .registry import command

EXECABORT = "EXECABORT Transaction discarded because of previous errors."
NESTED_MULTI = "ERR MULTI calls can not be nested"
EXEC_WITHOUT_MULTI = "ERR EXEC without MULTI"
DISCARD_WITHOUT_MULTI = "ERR DISCARD without MULTI"
WATCH_IN_MULTI = "ERR WATCH inside MULTI is not allowed"


# -- setup -------------------------------------------------------------------------------


def install(server) -> None:
    """Hook the server once: signal_modified with the expired-key rules, expiry and
    SWAPDB touching watchers, and cleanup when a client closes or RESETs."""
    if getattr(server, "_transactions_installed", False):
        return
    server._transactions_installed = True
    # Database.touched() calls server.signal_modified(), which also wakes clients
    # blocked on the key. Where the server wraps whatever handler is assigned with that
    # wake-up (a property), ours replaces its WATCH loop; otherwise we wrap its method.
    if isinstance(getattr(type(server), "signal_modified", None), property):
        server.signal_modified = lambda db, key: touch_watched_key(server, db, key)
    else:
        original = server.signal_modified

        def signal_modified(db, key):
            spared = touch_watched_key(server, db, key)
            original(db, key)
            for client, dirty in spared:
                client.dirty_cas = dirty  # the server's loop marks every watcher left

        server.signal_modified = signal_modified
    server.expire_hooks.append(lambda db, key: touch_watched_key(server, db, key))
    if not hasattr(server, "swapdb_hooks"):
        server.swapdb_hooks = []
    server.swapdb_hooks.append(lambda a, b: _on_swapdb(server, a, b))
    if not hasattr(server, "reset_hooks"):
        server.reset_hooks = []
    server.reset_hooks.append(discard_transaction)
    server.client_close_hooks.append(discard_transaction)


def _key_is_expired(db, key: bytes) -> bool:
    when = db.expires.get(key)
    return when is not None and when <= now_ms()


# -- WATCH -------------------------------------------------------------------------------


def unwatch_all(client) -> None:
    watched = getattr(client, "watched", None)
    if not watched:
        return
    watchers = client.server.key_watchers
    for wkey in watched:
        clients = watchers.get(wkey)
        if clients is not None:
            clients.pop(client, None)
            if not clients:
                del watchers[wkey]
    client.watched = {}


def touch_watched_key(server, db, key: bytes) -> list:
    """touchWatchedKey(): every client watching key is marked dirty (and unwatches all,
    nothing more can change its fate) — except one that WATCHed the key while it was
    already expired: the expired key being deleted is no logical change. Returns the
    spared clients with their dirty flag as it was."""
    clients = server.key_watchers.get((db.id, key))
    if not clients:
        return []
    wkey = (db.id, key)
    spared = []
    for client in list(clients):
        watched = client.watched
        if watched.get(wkey):
            if key not in db.data:
                watched[wkey] = False
                spared.append((client, getattr(client, "dirty_cas", False)))
                continue
            if _key_is_expired(db, key):
                spared.append((client, getattr(client, "dirty_cas", False)))
                continue
            # Overwritten without the lazy delete Redis does first (its write lookups
            # expire the key, which clears the flag): a live value now, so a change.
        client.dirty_cas = True
        unwatch_all(client)
    return spared


def touch_all_watched_in_db(server, db_id: int, emptied, replaced_with) -> None:
    """touchAllWatchedKeysInDb(): FLUSHDB/FLUSHALL (replaced_with None) and SWAPDB.
    emptied: the contents the watchers' db had; replaced_with: what it holds now."""
    for entry, clients in list(server.key_watchers.items()):
        if len(entry) != 2 or entry[0] != db_id:
            continue  # another db, or a marker (the blocking machinery's)
        wdb, key = entry
        in_emptied = key in emptied.data
        in_replaced = replaced_with is not None and key in replaced_with.data
        if not (in_emptied or in_replaced):
            continue
        for client in list(clients):
            watched = client.watched
            wkey = (wdb, key)
            if watched.get(wkey):
                if not in_replaced:
                    watched[wkey] = False  # the expired key is gone: no logical change
                    continue
                if _key_is_expired(replaced_with, key):
                    continue  # expired before, expired still
            elif not in_emptied and _key_is_expired(replaced_with, key):
                watched[wkey] = True  # a missing key replaced by an expired one
                continue
            client.dirty_cas = True


def _on_swapdb(server, first: int, second: int) -> None:
    # Called after the swap: dbs[second] now holds what dbs[first] had, and back.
    dbs = server.dbs
    touch_all_watched_in_db(server, first, dbs[second], dbs[first])
    if second != first:
        touch_all_watched_in_db(server, second, dbs[first], dbs[second])


@command("watch")
def watch(client, argv):
    if getattr(client, "multi_queue", None) is not None:
        raise CommandError(WATCH_IN_MULTI)
    server = client.server
    install(server)
    if getattr(client, "dirty_cas", False):
        return OK  # no point in watching: EXEC will fail anyway
    watched = getattr(client, "watched", None)
    if watched is None:
        watched = client.watched = {}
    db = client.db
    watchers = server.key_watchers
    for key in argv[1:]:
        wkey = (db.id, key)
        if wkey in watched:
            continue
        watched[wkey] = _key_is_expired(db, key)
        watchers.setdefault(wkey, {})[client] = None
    return OK


@command("unwatch")
def unwatch(client, argv):
    unwatch_all(client)
    client.dirty_cas = False
    return OK


# -- MULTI / EXEC ------------------------------------------------------------------------


def discard_transaction(client) -> None:
    """discardTransaction(): leave MULTI, forget the flags and every WATCH."""
    client.multi_queue = None
    client.multi_aborted = False
    client.dirty_cas = False
    client.flags.discard("x")
    unwatch_all(client)
    dispatch.refresh_gate(client)


@command("multi")
def multi(client, argv):
    if getattr(client, "multi_queue", None) is not None:
        raise CommandError(NESTED_MULTI)
    install(client.server)
    client.multi_queue = []
    client.multi_aborted = False
    client.flags.add("x")
    dispatch.refresh_gate(client)
    return OK


@command("discard")
def discard(client, argv):
    if getattr(client, "multi_queue", None) is None:
        raise CommandError(DISCARD_WITHOUT_MULTI)
    discard_transaction(client)
    return OK


def exec_flags(client) -> frozenset:
    """The union of the queued commands' flags: processCommand() treats EXEC as a write
    (or denyoom...) command when its transaction holds one (mstate.cmd_flags)."""
    queue = getattr(client, "multi_queue", None) or ()
    flags = set()
    for spec, _argv in queue:
        flags |= spec.flags
    return frozenset(flags)


def _is_watched_key_expired(client) -> bool:
    # isWatchedKeyExpired(): keys expired since WATCH (not yet reclaimed) fail EXEC.
    dbs = client.server.dbs
    for (db_id, key), expired_then in getattr(client, "watched", {}).items():
        if not expired_then and _key_is_expired(dbs[db_id], key):
            return True
    return False


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
    queue = getattr(client, "multi_queue", None)
    if queue is None:
        raise CommandError(EXEC_WITHOUT_MULTI)
    if _is_watched_key_expired(client):
        client.dirty_cas = True
    if client.multi_aborted:
        discard_transaction(client)
        raise CommandError(EXECABORT)
    if getattr(client, "dirty_cas", False):
        discard_transaction(client)
        return NULL_ARRAY
    unwatch_all(client)  # unwatch ASAP: our own writes must not mark us dirty
    # The client stays in MULTI state (flag x, multi=N in CLIENT LIST) until the end.
    # Blocking commands run inside EXEC as their non-blocking selves (CLIENT_DENY_BLOCKING).
    was_denied = getattr(client, "deny_blocking", False)
    client.deny_blocking = True
    client.in_exec = True
    sinks = server.propagation_sinks
    records: list = []
    if sinks:
        # Collect the effects, then emit them as one MULTI ... EXEC block when there is
        # more than one (propagatePendingCommands(): a single command is atomic as is).
        collector = [lambda db_id, rec: records.append((db_id, rec))]
        server.propagation_sinks = collector
    # The reply is framed here: messages a command pushes to this very client (PUBLISH
    # to itself, keyspace events) sit inside the array before that command's reply,
    # where Redis 7.0 writes them.
    out = [b"*%d\r\n" % len(queue)]
    pushes = getattr(client, "push_buffer", None)
    call = dispatch.call
    resp = client.resp
    try:
        for spec, argv in queue:
            reply = call(client, spec, argv)
            if pushes:
                out += pushes
                pushes.clear()
            _encode(out, None if reply is NO_REPLY else reply, resp)
    finally:
        client.deny_blocking = was_denied
        client.in_exec = False
        if sinks:
            added = server.propagation_sinks[1:] if server.propagation_sinks is collector else []
            server.propagation_sinks = sinks
            sinks.extend(added)
            _emit(server, records)
        discard_transaction(client)
    return Raw(b"".join(out))


def _emit(server, records: list) -> None:
    if not records:
        return
    if len(records) == 1:
        propagate_raw(server, *records[0])
        return
    propagate_raw(server, records[0][0], [b"MULTI"])
    for db_id, rec in records:
        propagate_raw(server, db_id, rec)
    propagate_raw(server, records[-1][0], [b"EXEC"])
