"""The single place where an executed write becomes a log record (server.c propagateNow).

After a write command changed the dataset, the dispatcher calls ``propagate()``. Commands
whose effect depends on time or chance are rewritten into their deterministic effect
first (DESIGN rule 6): relative expiries become absolute (SET EX → SET PXAT, EXPIRE →
PEXPIREAT), INCRBYFLOAT becomes SET KEEPTTL of the result, SPOP becomes SREM of what was
popped — so the AOF (and later replicas) replay exactly what happened.

The rewrite of a command is declared with it (CommandSpec.rewrite, set by
``@command(..., rewrite=...)``): the built-in ones are below, the stream and blocking
families keep theirs beside their handlers. The records go to the server's Propagation:
its sinks (the AOF; replicas next) receive (db_id, argv); while a transaction or a script
runs, a block collects them, to go out wrapped in MULTI/EXEC (propagatePendingCommands()).
"""

from __future__ import annotations


# Where a record may go (redis.set_repl()'s REPL_AOF / REPL_REPLICA / REPL_ALL).
TO_AOF, TO_REPLICAS, TO_ALL = 1, 2, 3


class Propagation:
    __slots__ = ("sinks", "kinds", "block", "targets")

    def __init__(self):
        self.sinks: list = []  # fn(db_id, argv): the AOF, replicas
        self.kinds: dict = {}  # sink → TO_AOF or TO_REPLICAS
        self.block: list | None = None  # (db_id, argv, targets) of the open block
        self.targets = TO_ALL  # of the records emitted now (a script may narrow it)

    def add_sink(self, sink, kind: int) -> None:
        if sink not in self.kinds:
            self.sinks.append(sink)
            self.kinds[sink] = kind

    def remove_sink(self, sink) -> None:
        if self.kinds.pop(sink, None) is not None:
            self.sinks.remove(sink)

    def emit(self, db_id: int, argv: list[bytes], only: int = TO_ALL) -> None:
        """One record; only: the sinks it may reach (PUBLISH goes to replicas only)."""
        targets = self.targets & only
        if not targets:
            return  # redis.set_repl(redis.REPL_NONE)
        if self.block is not None:
            self.block.append((db_id, argv, targets))
        else:
            self._send(db_id, argv, targets)

    def _send(self, db_id: int, argv: list[bytes], targets: int) -> None:
        for sink in self.sinks:
            if targets == TO_ALL or targets & self.kinds[sink]:
                sink(db_id, argv)

    def open_block(self) -> bool:
        """Collect what follows (EXEC, a script); False when there is nothing to collect
        for, or a block is open already (a script inside EXEC joins the transaction's)."""
        if self.block is not None or not self.sinks:
            return False
        self.block = []
        return True

    def close_block(self) -> None:
        """Emit the block: more than one record goes out inside MULTI ... EXEC, so the
        AOF and replicas apply it atomically (one is atomic as it is)."""
        # emit() never queues a record kept from everyone (redis.set_repl(REPL_NONE)).
        records, self.block = self.block, None
        if len(records) > 1:
            # MULTI/EXEC go wherever a record of the block goes (a script's
            # redis.set_repl may have kept every record from the AOF, say).
            targets = 0
            for record in records:
                targets |= record[2]
            records = [(records[0][0], [b"MULTI"], targets), *records,
                       (records[-1][0], [b"EXEC"], targets)]
        for db_id, argv, targets in records:
            self._send(db_id, argv, targets)


def propagate(server, db, spec, argv: list[bytes], reply) -> None:
    """A client command that changed the dataset, in its deterministic form."""
    rewrite = spec.rewrite
    if rewrite is None:  # most writes are logged as they were sent
        server.propagation.emit(db.id, argv)
        return
    records = rewrite(db, argv, reply)
    propagation = server.propagation
    # propagatePendingCommands(): a command that logs several records (XREADGROUP's
    # XCLAIMs, a blocking pop's...) goes out wrapped in MULTI/EXEC, applied atomically.
    wrap = len(records) > 1 and propagation.open_block()
    for record in records:
        propagation.emit(db.id, record)
    if wrap:
        propagation.close_block()


def propagate_raw(server, db_id: int, argv: list[bytes]) -> None:
    """An effect that is not a client command (expired or evicted key → DEL)."""
    server.propagation.emit(db_id, argv)


def _expiry_state(db, key: bytes) -> list[list[bytes]]:
    # The key's state after the command: gone → DEL, with TTL → PEXPIREAT, else PERSIST.
    if key not in db.data:
        return [[b"DEL", key]]
    when = db.expires.get(key)
    if when is None:
        return [[b"PERSIST", key]]
    return [[b"PEXPIREAT", key, b"%d" % when]]


def rewrite_set(db, argv, reply):
    if len(argv) == 3:
        return [argv]  # SET key value: already deterministic (the common case)
    key = argv[1]
    # setGenericCommand(): any expiry option (PXAT included) goes out as "PXAT <ms>",
    # spelled as Redis spells it.
    has_expiry = any(a.lower() in (b"ex", b"px", b"exat", b"pxat") for a in argv[3:])
    if not has_expiry:
        # setCommand(): GET changes the reply, not the effect: it is left out.
        return [[*argv[:3], *(a for a in argv[3:] if a.lower() != b"get")]]
    if key not in db.data:  # an expiry in the past deleted the key
        return [[b"DEL", key]]
    # NX/XX/KEEPTTL go: the condition held, since the key changed, and the TTL is
    # explicit now.
    out = [b"SET", key, db.data[key]]
    when = db.expires.get(key)
    if when is not None:
        out += [b"PXAT", b"%d" % when]
    return [out]


def rewrite_setex(db, argv, reply):
    key = argv[1]
    if key not in db.data:
        return [[b"DEL", key]]
    return [[b"SET", key, db.data[key], b"PXAT", b"%d" % db.expires[key]]]


def rewrite_getdel(db, argv, reply):
    # getdelCommand(): logged as the deletion it was (UNLINK under lazyfree-lazy-user-del).
    if db.server is not None and db.server.config["lazyfree-lazy-user-del"]:
        return [[b"UNLINK", argv[1]]]
    return [[b"DEL", argv[1]]]


def rewrite_getset(db, argv, reply):
    # getsetCommand(): logged as SET.
    return [[b"SET", *argv[1:]]]


def rewrite_expire(db, argv, reply):
    return _expiry_state(db, argv[1])


def rewrite_getex(db, argv, reply):
    return _expiry_state(db, argv[1])


def rewrite_incrbyfloat(db, argv, reply):
    # Float formatting may differ between machines: log the result, keeping the TTL.
    return [[b"SET", argv[1], db.data[argv[1]], b"KEEPTTL"]]


def rewrite_hincrbyfloat(db, argv, reply):
    return [[b"HSET", argv[1], argv[2], db.data[argv[1]][argv[2]]]]


def rewrite_spop(db, argv, reply):
    """spopCommand(): SREM of the member popped; with a count, the whole set popped is
    a DEL, else one SREM per member (spopWithCountCommand), wrapped in MULTI/EXEC."""
    members = reply if isinstance(reply, list) else [reply]
    members = [m for m in members if m is not None]
    if not members:
        return []
    if len(argv) == 2:
        return [[b"SREM", argv[1], members[0]]]
    if argv[1] not in db.data:
        return [[b"DEL", argv[1]]]
    return [[b"SREM", argv[1], m] for m in members]


def rewrite_mpop(pop_names: tuple):
    """LMPOP/ZMPOP (listPopRangeAndReplyWithKey, genericZpopCommand): logged as
    LPOP/RPOP/ZPOPMIN/ZPOPMAX key <count popped>; pop_names = (first side, other side)."""
    def rewrite(db, argv, reply):
        if not isinstance(reply, list) or len(reply) != 2:
            return []
        side = argv[2 + int(argv[1])].lower()
        name = pop_names[0] if side in (b"left", b"min") else pop_names[1]
        return [[name, reply[0], b"%d" % len(reply[1])]]
    return rewrite


def rewrite_restore(db, argv, reply):
    key = argv[1]
    if key not in db.data:
        return [[b"DEL", key]]
    out = [a for a in argv]
    when = db.expires.get(key)
    # A relative TTL becomes ABSTTL with the absolute time.
    if when is not None and b"absttl" not in (a.lower() for a in argv[4:]):
        out[2] = b"%d" % when
        out.append(b"ABSTTL")
    return [out]
