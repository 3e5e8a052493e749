"""Keyspace notifications (Redis 7.0's notify.c).

Command handlers call ``notify(client, event, key)`` once per event, at the point
Redis's t_*.c calls notifyKeyspaceEvent(), e.g. ``notify(client, "lpush", key)``. The
event's class (the notify-keyspace-events letter) comes from EVENT_CLASS, so call sites
stay one line. Events in another db than the client's (MOVE's move_to, COPY ... DB)
use ``notify_event(server, db, event, key)``; the eviction code passes flag="e".

The state is the server's Notifier (server.notifier): the enabled classes, parsed
once per CONFIG SET, so a server without notifications pays one truth test per event.
'n' (new key) and 'm' (keymiss) events need the dispatcher's help: while either is on,
the notifier sits in the server's gate, which sends every command through the slow
path, where begin_command() runs first.
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


# The STORE variants name their event after the command (GEORADIUS ... STORE aside).
_STORE_EVENTS = {"georadius": "georadiusstore", "georadiusbymember": "georadiusstore"}
# Read commands whose lookups never notify (LOOKUP_NONOTIFY in Redis).
_NO_KEYMISS = frozenset({"object"})


class Notifier:
    __slots__ = ("server", "classes", "tracking", "pending_db", "pending_new")

    def __init__(self, server):
        self.server = server
        self.classes: frozenset = frozenset()  # the enabled class letters (+K/E)
        self.tracking = False  # 'n' or 'm' on: begin_command() runs before each command
        # 'n': the keys a command named that were missing when it began, in pending_db.
        self.pending_db = None
        self.pending_new: list = []

    def configure(self, value: str) -> None:
        """notify-keyspace-events changed (at start-up and after CONFIG SET)."""
        self.classes = notify_flags(value) if value else frozenset()
        self.tracking = "n" in self.classes or "m" in self.classes
        gate = self.server.gated
        if self.tracking:
            gate.add(self)  # not a client: it keeps every command off the fast path
        else:
            gate.discard(self)
            self.pending_new = []

    def expired(self, db, key: bytes) -> None:
        if self.classes:
            self.fire(db.id, "expired", key, "x")

    # -- publishing ----------------------------------------------------------------------

    def fire(self, db_id: int, event: str, key: bytes, cls: str) -> None:
        """notifyKeyspaceEvent(): publish on __keyspace@db__:key and/or
        __keyevent@db__:event, if the event's class is enabled."""
        classes = self.classes
        if cls not in classes:
            return
        name = event.encode()
        pubsub = self.server.pubsub
        if "K" in classes:
            pubsub.publish(b"__keyspace@%d__:%s" % (db_id, key), name)
        if "E" in classes:
            pubsub.publish(b"__keyevent@%d__:%s" % (db_id, name), key)

    def command_event(self, db_id: int, event: str, key: bytes, cls: str) -> None:
        # A command's own event: the "new" events of keys it created go out first.
        if self.pending_new:
            self._flush_new()
        self.fire(db_id, event, key, cls)

    # -- 'n' and 'm': before each command -----------------------------------------------
    # Redis publishes "new" from dbAdd(), before the creating command's own events.
    # Handlers have no such hook, so while the 'n' class is on (rare: it is not part of
    # 'A') begin_command() first notes which arguments name missing keys; the next event
    # of the command publishes "new" for each of those keys that exists by then.

    def begin_command(self, client, argv, spec=None) -> None:
        db = client.db
        if "m" in self.classes and spec is not None:
            self._publish_keymisses(db, spec, argv)
        if "n" not in self.classes:
            return
        data = db.data
        self.pending_db = db
        self.pending_new = [k for k in argv[1:33] if k not in data or db.is_expired(k)]

    def _publish_keymisses(self, db, spec, argv) -> None:
        """'m': lookupKeyRead() publishes "keymiss" for each key a read command finds
        missing (after expiring it, so "expired" comes first)."""
        if "readonly" not in spec.flags or spec.name in _NO_KEYMISS or spec.container is not None:
            return
        for i in spec.key_positions(len(argv)):
            if db.lookup(argv[i]) is None:
                self.fire(db.id, "keymiss", argv[i], "m")

    def _flush_new(self) -> None:
        db = self.pending_db
        created = [k for k in self.pending_new if k in db.data]
        if not created:
            return
        self.pending_new = [k for k in self.pending_new if k not in db.data]
        for key in dict.fromkeys(created):
            self.fire(db.id, "new", key, "n")


def notify(client, event: str, key: bytes) -> None:
    """notifyKeyspaceEvent() for key in the client's selected db."""
    notifier = client.server.notifier
    if notifier.classes:
        notifier.command_event(client.db.id, event, key, EVENT_CLASS[event])


def notify_event(server, db, event: str, key: bytes, flag: str | None = None) -> None:
    """notifyKeyspaceEvent() for key in db (a Database or a db index); flag marks an
    event that is not a command's own (evicted)."""
    notifier = server.notifier
    if notifier.classes:
        db_id = db if isinstance(db, int) else db.id
        if flag is None:
            notifier.command_event(db_id, event, key, EVENT_CLASS[event])
        else:
            notifier.fire(db_id, event, key, flag)


def after_removal(db, key: bytes, value) -> None:
    """The ending every removal from a collection shares: the key goes once the value
    is empty (Redis never keeps an empty aggregate), with its "del" event; otherwise the
    change is recorded (WATCH, blocked clients, the dirty counter)."""
    if value:
        db.touched(key)
    else:
        db.delete(key)
        notify_event(db.server, db, "del", key)


def notify_new_key(server, db, key: bytes) -> None:
    """'n' for a key that a command creates in another database than its client's
    (MOVE, COPY ... DB): begin_command() only watches the client's own."""
    notifier = server.notifier
    if "n" in notifier.classes:
        notifier.fire(db.id, "new", key, "n")


def notify_store(client, key: bytes) -> None:
    """The event of a STORE result written to key: zunionstore, zrangestore..."""
    if client.server.notifier.classes and client.cmd is not None:
        name = client.cmd.name
        notify(client, _STORE_EVENTS.get(name, name), key)
