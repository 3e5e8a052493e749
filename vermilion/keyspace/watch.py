"""WATCH bookkeeping below the commands (Redis's multi.c watch functions, which db.c
calls as keys change).

Server state: server.key_watchers {(db_id, key): {session: None}} (insertion ordered),
which Database.touched() consults on every change through server.signal_modified().
Session state: session.watched {(db_id, key): expired_when_watched} — Redis's
watchedKey.expired — and session.dirty_cas (EXEC will fail).
"""

from __future__ import annotations

from .database import expiry_now


def key_is_expired(db, key: bytes) -> bool:
    when = db.expires.get(key)
    return when is not None and when <= expiry_now()


def watch_keys(client, keys) -> None:
    """watchForKey() for each key not yet watched by client in its db."""
    watched = client.watched
    if watched is None:
        watched = client.watched = {}
    db = client.db
    watchers = client.server.key_watchers
    for key in keys:
        wkey = (db.id, key)
        if wkey in watched:
            continue
        watched[wkey] = key_is_expired(db, key)
        watchers.setdefault(wkey, {})[client] = None


def unwatch_all(client) -> None:
    watched = client.watched
    if not watched:
        return
    watchers = client.server.key_watchers
    for wkey in watched:
        clients = watchers.get(wkey)
        if clients is not None:
            clients.pop(client, None)
            if not clients:
                del watchers[wkey]
    client.watched = None


def is_watched_key_expired(client) -> bool:
    # isWatchedKeyExpired(): keys expired since WATCH (not yet reclaimed) fail EXEC.
    dbs = client.server.dbs
    for (db_id, key), expired_then in (client.watched or {}).items():
        if not expired_then and key_is_expired(dbs[db_id], key):
            return True
    return False


def touch_watched_key(server, db, key: bytes) -> None:
    """touchWatchedKey(): every client watching key is marked dirty (and unwatches all,
    nothing more can change its fate) — except one that WATCHed the key while it was
    already expired: the expired key being deleted is no logical change."""
    clients = server.key_watchers.get((db.id, key))
    if not clients:
        return
    wkey = (db.id, key)
    for client in list(clients):
        watched = client.watched
        if watched.get(wkey):
            if key not in db.data:
                watched[wkey] = False
                continue
            if key_is_expired(db, key):
                continue
            # Overwritten without the lazy delete Redis does first (its write lookups
            # expire the key, which clears the flag): a live value now, so a change.
        client.dirty_cas = True
        unwatch_all(client)


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
                if key_is_expired(replaced_with, key):
                    continue  # expired before, expired still
            elif not in_emptied and key_is_expired(replaced_with, key):
                watched[wkey] = True  # a missing key replaced by an expired one
                continue
            client.dirty_cas = True
            unwatch_all(client)  # nothing more can change its fate


def touch_swapped_dbs(server, first: int, second: int) -> None:
    # Called after SWAPDB: dbs[second] now holds what dbs[first] had, and back.
    dbs = server.dbs
    touch_all_watched_in_db(server, first, dbs[second], dbs[first])
    if second != first:
        touch_all_watched_in_db(server, second, dbs[first], dbs[second])
