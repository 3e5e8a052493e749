"""The single place where an executed write becomes a log record (server.c propagateNow).

After a write command changed the dataset, the dispatcher calls ``propagate()``. Commands
whose effect depends on time or chance are rewritten into their deterministic effect
first (DESIGN rule 6): relative expiries become absolute (SET EX → SET PXAT, EXPIRE →
PEXPIREAT), INCRBYFLOAT becomes SET KEEPTTL of the result, SPOP becomes SREM of what was
popped — so the AOF (and later replicas) replay exactly what happened.

Sinks (the AOF; replicas later) register on ``server.propagation_sinks`` and receive
(db_id, argv) records.
"""

from __future__ import annotations

from .protocol.errors import CommandError


def propagate(server, db, argv: list[bytes], reply) -> None:
    rewriter = REWRITES.get(argv[0].lower())
    if rewriter is None:  # most writes are logged as they were sent
        for sink in server.propagation_sinks:
            sink(db.id, argv)
        return
    for record in rewriter(db, argv, reply):
        for sink in server.propagation_sinks:
            sink(db.id, record)


def propagate_raw(server, db_id: int, argv: list[bytes]) -> None:
    """An effect that is not a client command (expired or evicted key → DEL)."""
    for sink in server.propagation_sinks:
        sink(db_id, argv)


def _expiry_state(db, key: bytes) -> list[list[bytes]]:
    # The key's state after the command: gone → DEL, with TTL → PEXPIREAT, else PERSIST.
    if key not in db.data:
        return [[b"DEL", key]]
    when = db.expires.get(key)
    if when is None:
        return [[b"PERSIST", key]]
    return [[b"PEXPIREAT", key, b"%d" % when]]


def _set(db, argv, reply):
    if len(argv) == 3:
        return [argv]  # SET key value: already deterministic (the common case)
    key = argv[1]
    has_relative = any(a.lower() in (b"ex", b"px", b"exat") for a in argv[3:])
    if not has_relative:
        return [argv]
    if key not in db.data:  # an expiry in the past deleted the key
        return [[b"DEL", key]]
    out = [b"SET", key, db.data[key]]
    when = db.expires.get(key)
    if when is not None:
        out += [b"PXAT", b"%d" % when]
    for opt in argv[3:]:
        if opt.lower() in (b"nx", b"xx", b"keepttl"):
            pass  # the condition held, since the key changed; the TTL is explicit now
    return [out]


def _setex(db, argv, reply):
    key = argv[1]
    if key not in db.data:
        return [[b"DEL", key]]
    return [[b"SET", key, db.data[key], b"PXAT", b"%d" % db.expires[key]]]


def _expire(db, argv, reply):
    return _expiry_state(db, argv[1])


def _getex(db, argv, reply):
    return _expiry_state(db, argv[1])


def _incrbyfloat(db, argv, reply):
    # Float formatting may differ between machines: log the result, keeping the TTL.
    return [[b"SET", argv[1], db.data[argv[1]], b"KEEPTTL"]]


def _hincrbyfloat(db, argv, reply):
    return [[b"HSET", argv[1], argv[2], db.data[argv[1]][argv[2]]]]


def _spop(db, argv, reply):
    members = reply if isinstance(reply, list) else [reply]
    members = [m for m in members if m is not None]
    if not members:
        return []
    return [[b"SREM", argv[1], *members]]


def _restore(db, argv, reply):
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


REWRITES = {
    b"set": _set,
    b"setex": _setex,
    b"psetex": _setex,
    b"expire": _expire,
    b"pexpire": _expire,
    b"expireat": _expire,
    b"pexpireat": _expire,
    b"getex": _getex,
    b"incrbyfloat": _incrbyfloat,
    b"hincrbyfloat": _hincrbyfloat,
    b"spop": _spop,
    b"restore": _restore,
}

# Command families that own their rewrites (streams) add them to REWRITES when the
# command table loads them.

__all__ = ["propagate", "propagate_raw", "REWRITES", "CommandError"]
