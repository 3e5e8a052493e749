"""Expiry commands (expire.c): EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT with NX/XX/GT/LT,
TTL/PTTL/EXPIRETIME/PEXPIRETIME and PERSIST.

Expiries are absolute unix milliseconds in ``db.expires``; propagate.py logs the
resulting state (PEXPIREAT, or DEL when a time in the past deleted the key).
"""

from ..keyspace.database import now_ms
from ..propagate import rewrite_expire
from ..protocol.errors import CommandError, INVALID_EXPIRE
from ..protocol.numbers import LLONG_MAX, LLONG_MIN, parse_int
from .registry import command
from ..notify import notify

NX, XX, GT, LT = 1, 2, 4, 8
_FLAGS = {b"nx": NX, b"xx": XX, b"gt": GT, b"lt": LT}
NX_INCOMPATIBLE = "ERR NX and XX, GT or LT options at the same time are not compatible"
GT_LT_INCOMPATIBLE = "ERR GT and LT options at the same time are not compatible"


def _parse_flags(argv: list[bytes]) -> int:
    # parseExtendedExpireArgumentsOrReply(): every option is checked before the
    # compatibility rules, and all of it before the time argument.
    flags = 0
    for opt in argv[3:]:
        flag = _FLAGS.get(opt.lower())
        if flag is None:
            text = opt.split(b"\0", 1)[0].decode("utf-8", "replace")
            raise CommandError("ERR Unsupported option " + text.replace("\r", " ").replace("\n", " "))
        flags |= flag
    if flags & NX and flags & (XX | GT | LT):
        raise CommandError(NX_INCOMPATIBLE)
    if flags & GT and flags & LT:
        raise CommandError(GT_LT_INCOMPATIBLE)
    return flags


def _expire_generic(client, argv, relative: bool, seconds: bool, name: str):
    flags = _parse_flags(argv)
    when = parse_int(argv[2])
    invalid = INVALID_EXPIRE.format(name)
    if seconds:
        if when > LLONG_MAX // 1000 or when < -(LLONG_MIN // -1000):
            raise CommandError(invalid)
        when *= 1000
    now = now_ms()
    if relative:
        if when > LLONG_MAX - now:
            raise CommandError(invalid)
        when += now
    db = client.db
    key = argv[1]
    if db.lookup(key) is None:
        return 0
    if flags and not _condition_holds(flags, when, db.get_expire(key)):
        return 0
    if when <= now and not client.server.loading:
        # checkAlreadyExpired(): a time in the past deletes the key (logged as DEL),
        # except while loading: an AOF's PEXPIREAT sets it, the key expires afterwards.
        db.delete(key)
        notify(client, "del", key)
        return 1
    db.set_expire(key, when)
    notify(client, "expire", key)
    return 1


def _condition_holds(flags: int, when: int, current: int | None) -> bool:
    # No TTL counts as an infinite one: GT never holds, LT always does.
    if flags & NX:
        return current is None
    if flags & XX and current is None:
        return False
    if flags & GT:
        return current is not None and when > current
    if flags & LT:
        return current is None or when < current
    return True


@command("expire", rewrite=rewrite_expire)
def expire(client, argv):
    return _expire_generic(client, argv, relative=True, seconds=True, name="expire")


@command("pexpire", rewrite=rewrite_expire)
def pexpire(client, argv):
    return _expire_generic(client, argv, relative=True, seconds=False, name="pexpire")


@command("expireat", rewrite=rewrite_expire)
def expireat(client, argv):
    return _expire_generic(client, argv, relative=False, seconds=True, name="expireat")


@command("pexpireat", rewrite=rewrite_expire)
def pexpireat(client, argv):
    return _expire_generic(client, argv, relative=False, seconds=False, name="pexpireat")


def _ttl_generic(client, argv, in_ms: bool, absolute: bool) -> int:
    db = client.db
    key = argv[1]
    if db.lookup(key) is None:
        return -2
    when = db.get_expire(key)
    if when is None:
        return -1
    ttl = when if absolute else max(when - now_ms(), 0)
    # ttlGenericCommand() rounds milliseconds to the nearest second.
    return ttl if in_ms else (ttl + 500) // 1000


@command("ttl")
def ttl(client, argv):
    return _ttl_generic(client, argv, in_ms=False, absolute=False)


@command("pttl")
def pttl(client, argv):
    return _ttl_generic(client, argv, in_ms=True, absolute=False)


@command("expiretime")
def expiretime(client, argv):
    return _ttl_generic(client, argv, in_ms=False, absolute=True)


@command("pexpiretime")
def pexpiretime(client, argv):
    return _ttl_generic(client, argv, in_ms=True, absolute=True)


@command("persist")
def persist(client, argv):
    db = client.db
    key = argv[1]
    if db.lookup(key) is None:
        return 0
    if not db.persist(key):
        return 0
    notify(client, "persist", key)
    return 1
