"""Keyspace notifications (Redis 7.0's notify.c).

Command handlers call ``notify(client, event, key)`` once per event, at the point
Redis's t_*.c calls notifyKeyspaceEvent(), e.g. ``notify(client, "lpush", key)``. The
event's class (the notify-keyspace-events letter) comes from EVENT_CLASS, so call sites
stay one line. Events in another db than the client's (MOVE's move_to, COPY ... DB)
use ``notify_event(server, db, event, key)``.

Other helpers' entry points:
  notify_event(server, db, "evicted", key, flag="e")   the eviction code, per evicted key
  expired keys are published from server.expire_hooks (installed with pub/sub)
  streams, blocked-client wake-ups: call notify() with the t_stream.c / t_list.c events
  (EVENT_CLASS already lists the stream events)

Before the first subscription anywhere, notify() is one global test (nobody can hear
an event); after it, one dict lookup of the config value while the config is empty.
'n' (new key) and 'm' (keymiss) events need the dispatcher's help: see begin_command().
"""

from .config import notify_flags

# Event name → class letter (notify.c's NOTIFY_* of each notifyKeyspaceEvent call).
EVENT_CLASS = {
    # generic (g)
    "del": "g", "expire": "g", "persist": "g", "rename_from": "g", "rename_to": "g",
    "move_from": "g", "move_to": "g", "copy_to": "g", "restore": "g",
    # strings ($)
    "set": "$", "setrange": "$", "incrby": "$", "incrbyfloat": "$", "append": "$",
    "setbit": "$", "pfadd": "$",
    # lists (l)
    "lpush": "l", "rpush": "l", "lpop": "l", "rpop": "l", "linsert": "l", "lset": "l",
    "lrem": "l", "ltrim": "l", "sortstore": "l",
    # hashes (h)
    "hset": "h", "hdel": "h", "hincrby": "h", "hincrbyfloat": "h",
    # sets (s)
    "sadd": "s", "srem": "s", "spop": "s", "sinterstore": "s", "sunionstore": "s",
    "sdiffstore": "s",
    # sorted sets (z)
    "zadd": "z", "zincr": "z", "zrem": "z", "zremrangebyscore": "z", "zremrangebyrank": "z",
    "zremrangebylex": "z", "zpopmin": "z", "zpopmax": "z", "zunionstore": "z",
    "zinterstore": "z", "zdiffstore": "z", "zrangestore": "z", "georadiusstore": "z",
    "geosearchstore": "z",
    # streams (t)
    "xadd": "t", "xtrim": "t", "xdel": "t", "xsetid": "t", "xgroup-create": "t",
    "xgroup-createconsumer": "t", "xgroup-delconsumer": "t", "xgroup-destroy": "t",
    "xgroup-setid": "t",
    # the rest
    "expired": "x", "evicted": "e", "new": "n", "keymiss": "m",
}

_FLAGS_CACHE: dict = {}
# Nobody can hear an event before the first subscription: until then notify() is one
# global test (pubsub.state() switches this on).
ACTIVE = False


def _flags(value: str) -> frozenset:
    flags = _FLAGS_CACHE.get(value)
    if flags is None:
        if len(_FLAGS_CACHE) > 64:
            _FLAGS_CACHE.clear()
        flags = _FLAGS_CACHE[value] = notify_flags(value)
    return flags


def notify(client, event: str, key: bytes) -> None:
    """notifyKeyspaceEvent() for key in the client's selected db."""
    if not ACTIVE:
        return
    server = client.server
    value = server.config.values.get("notify-keyspace-events")
    if value:
        if _pending_new:
            _flush_new(server, value)
        elif "n" in value and not _tracking[0]:
            refresh(server)
        _publish(server, value, client.db.id, event, key, EVENT_CLASS[event])


# -- 'n': new keys ----------------------------------------------------------------------
# Redis publishes "new" from dbAdd(), before the creating command's own events. Handlers
# have no such hook, so while the 'n' class is on (rare: it is not part of 'A') every
# command goes through the dispatcher's slow path, which first notes which of its
# arguments name missing keys (begin_command); the next event of the command publishes
# "new" for each of those keys that exists by then, ahead of the event itself.

_pending_new: list = []  # [db, [keys missing when the command began]]
_tracking = [False]
_SENTINEL = object()  # in dispatch.GATED: keeps every command off the fast path


def begin_command(client, argv, spec=None) -> None:
    db = client.db
    value = client.server.config.values.get("notify-keyspace-events") or ""
    if "m" in value and spec is not None:
        _publish_keymisses(client, db, value, spec, argv)
    if "n" not in value:
        return
    data = db.data
    missing = [k for k in argv[1:33] if k not in data or db.is_expired(k)]
    _pending_new[:] = [db, missing] if missing else []


# Read commands whose lookups never notify (LOOKUP_NONOTIFY in Redis).
_NO_KEYMISS = frozenset({"object"})


def _publish_keymisses(client, db, value, spec, argv) -> None:
    """'m': lookupKeyRead() publishes "keymiss" for each key a read command finds
    missing (after expiring it, so "expired" comes first)."""
    if "readonly" not in spec.flags or spec.name in _NO_KEYMISS or spec.container is not None:
        return
    for i in spec.key_positions(len(argv)):
        if db.lookup(argv[i]) is None:
            _publish(client.server, value, db.id, "keymiss", argv[i], "m")


def notify_new_key(server, db, key: bytes) -> None:
    """'n' for a key that a command creates in another database than its client's
    (MOVE, COPY ... DB): begin_command() only watches the client's own."""
    value = server.config.values.get("notify-keyspace-events")
    if ACTIVE and value and "n" in value:
        _publish(server, value, db.id, "new", key, "n")


def _flush_new(server, value: str) -> None:
    db, missing = _pending_new
    created = [k for k in missing if k in db.data]
    if not created:
        return
    rest = [k for k in missing if k not in db.data]
    _pending_new[:] = [db, rest] if rest else []
    for key in dict.fromkeys(created):
        _publish(server, value, db.id, "new", key, "n")


def refresh(server) -> None:
    """Turn new-key tracking on or off after notify-keyspace-events changed."""
    from .commands import dispatch

    value = server.config.values.get("notify-keyspace-events") or ""
    on = ACTIVE and ("n" in value or "m" in value)
    _tracking[0] = on
    dispatch.track_new_keys(on, _SENTINEL)
    if not on:
        _pending_new.clear()


# The STORE variants name their event after the command (GEORADIUS ... STORE aside).
_STORE_EVENTS = {"georadius": "georadiusstore", "georadiusbymember": "georadiusstore"}


def notify_store(client, key: bytes) -> None:
    """The event of a STORE result written to key: zunionstore, zrangestore..."""
    if ACTIVE and client.cmd is not None:
        name = client.cmd.name
        notify(client, _STORE_EVENTS.get(name, name), key)


def notify_event(server, db, event: str, key: bytes, flag: str | None = None) -> None:
    """notifyKeyspaceEvent() for key in db (a Database or a db index)."""
    if not ACTIVE:
        return
    value = server.config.values.get("notify-keyspace-events")
    if value:
        if _pending_new and flag is None:  # a command's event, not expired/evicted
            _flush_new(server, value)
        db_id = db if isinstance(db, int) else db.id
        _publish(server, value, db_id, event, key, flag or EVENT_CLASS[event])


def _publish(server, value: str, db_id: int, event: str, key: bytes, cls: str) -> None:
    flags = _flags(value)
    if cls not in flags:
        return
    from .commands.pubsub import publish

    name = event.encode()
    if "K" in flags:
        publish(server, b"__keyspace@%d__:%s" % (db_id, key), name)
    if "E" in flags:
        publish(server, b"__keyevent@%d__:%s" % (db_id, name), key)


def install(server) -> None:
    """Publish 'expired' for keys removed by lazy or active expiry."""
    if getattr(server, "_notify_installed", False):
        return
    server._notify_installed = True
    global ACTIVE
    ACTIVE = True
    server.expire_hooks.append(lambda db, key: notify_event(server, db, "expired", key, "x"))
    # CONFIG SET of notify-keyspace-events may turn the 'n' class on or off.
    from .commands.registry import COMMANDS

    config = COMMANDS.get(b"config")
    spec = config.subcommands.get(b"set") if config is not None else None
    if spec is not None and spec.handler is not None:
        handler = spec.handler

        def config_set(client, argv):
            try:
                return handler(client, argv)
            finally:
                refresh(client.server)

        spec.handler = config_set
    refresh(server)
