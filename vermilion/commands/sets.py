"""Set commands (Redis's t_set.c): SADD ... SSCAN.

Values are RedisSet (datatypes/settype.py). As in Redis, an emptied set is deleted,
every multi-key command checks all its keys' types before doing anything (a missing key
is an empty set), and results are replied in the order Redis would iterate them, so an
all-integer (intset) result comes out in ascending numeric order.
"""

from ..datatypes.settype import DEFAULT_MAX_INTSET_ENTRIES, RedisSet, from_members
from ..keyspace.cost import ALIGNED_HEADER, touched_by
from ..keyspace.scan import parse_cursor, parse_options, scan
from ..propagate import rewrite_spop
from ..protocol import errors
from ..protocol.encode import ReplySet
from ..protocol.errors import CommandError
from ..protocol.numbers import LLONG_MIN, parse_int
from .client_cmds import picks_overflow_output
from .registry import command
from ..notify import after_removal, notify, notify_event

# The table's size (sys.getsizeof less the constant GC header, without its lookup).
_getsizeof = set.__sizeof__

NUMKEYS_POSITIVE = "ERR numkeys should be greater than 0"
TOO_MANY_KEYS = "ERR Number of keys can't be greater than number of args"
LIMIT_NEGATIVE = "ERR LIMIT can't be negative"
MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
RANDOM_COUNT_RANGE = ("ERR value is out of range, value must between "
                      "-9223372036854775807 and 9223372036854775807")


def max_intset_entries(client) -> int:
    return client.server.config.values.get("set-max-intset-entries", DEFAULT_MAX_INTSET_ENTRIES)


def _lookup(client, key: bytes):
    return client.db.lookup_typed(key, RedisSet)


def _lookup_all(db, keys) -> list:
    # Redis type-checks every key before computing, so WRONGTYPE wins over a missing key.
    return [db.lookup_typed(key, RedisSet) for key in keys]


def _positive(raw: bytes, message: str) -> int:
    """getPositiveLongFromObjectOrReply(): msg for a non-integer and a negative alike."""
    value = parse_int(raw, message)
    if value < 0:
        raise CommandError(message)
    return value


def _store(db, key: bytes, members, limit: int) -> int:
    """The STORE variants: the result replaces dst (dropping its TTL); empty deletes it."""
    value = from_members(members, limit)
    if not value:
        if key in db.data: notify_event(db.server, db, "del", key)  # noqa: E701
        db.delete(key)
        return 0
    db.set(key, value)
    return len(value)


# -- single-key commands -----------------------------------------------------------------


@command("sadd")
def sadd(client, argv):
    db, key = client.db, argv[1]
    if len(argv) == 3:
        # SADD key member: a member already there changes nothing (no dirty, no event).
        value = db.data.get(key) if not db.expires else db.lookup(key)
        if type(value) is RedisSet and argv[2] in value:
            return 0
    value = _lookup(client, key)
    if value is None:
        value = RedisSet()
        added = value.add_members(argv[2:], max_intset_entries(client))
        db.set(key, value)
        notify(client, "sadd", key)
        return added
    size = _getsizeof(value)
    added = value.add_members(argv[2:], max_intset_entries(client))
    if added:
        touched_by(db, key, set_growth(value, size, argv[2:], added))
        notify(client, "sadd", key)
    return added


def set_growth(value: RedisSet, size_before: int, members, added: int) -> int:
    """The cost of members added to a set of table size size_before: the table's
    growth and their bytes (all of them when all were new, else as many times their
    average as were added)."""
    if added == len(members):
        elements = sum(map(len, members)) + ALIGNED_HEADER * added
    else:
        elements = (sum(map(len, members)) * added) // len(members) + ALIGNED_HEADER * added
    return _getsizeof(value) - size_before + elements


def _after_removal(db, key: bytes, value: RedisSet, members) -> None:
    """after_removal() for members removed from a set: their bytes leave the key's
    cost (a set's table does not shrink as it empties)."""
    if value:
        touched_by(db, key, -(sum(map(len, members)) + ALIGNED_HEADER * len(members)))
    else:
        db.delete(key)
        notify_event(db.server, db, "del", key)


@command("srem")
def srem(client, argv):
    db, key = client.db, argv[1]
    value = _lookup(client, key)
    if value is None:
        return 0
    gone = []
    for member in argv[2:]:
        if member in value:
            value.discard(member)
            gone.append(member)
    if gone:
        notify(client, "srem", key)
        _after_removal(db, key, value, gone)
    return len(gone)


@command("scard")
def scard(client, argv):
    value = _lookup(client, argv[1])
    return len(value) if value is not None else 0


@command("sismember")
def sismember(client, argv):
    value = _lookup(client, argv[1])
    return int(value is not None and argv[2] in value)


@command("smismember")
def smismember(client, argv):
    value = _lookup(client, argv[1])
    if value is None:
        return [0] * (len(argv) - 2)
    return [int(member in value) for member in argv[2:]]


@command("smembers")
def smembers(client, argv):
    # Redis 7.0 serves SMEMBERS with SINTER of one key.
    value = _lookup(client, argv[1])
    return ReplySet(value.ordered()) if value is not None else ReplySet()


@command("smove")
def smove(client, argv):
    db, src_key, dst_key, member = client.db, argv[1], argv[2], argv[3]
    src = db.lookup(src_key)
    dst = db.lookup(dst_key)
    if src is None:
        return 0  # even when dst has the wrong type: Redis answers 0 first
    if type(src) is not RedisSet or (dst is not None and type(dst) is not RedisSet):
        raise CommandError(errors.WRONGTYPE)
    if src is dst:
        return int(member in src)
    if member not in src:
        return 0
    src.discard(member)
    notify(client, "srem", src_key)
    after_removal(db, src_key, src)
    limit = max_intset_entries(client)
    if dst is None:
        dst = RedisSet()
        dst.add_member(member, limit)
        db.set(dst_key, dst)
        notify(client, "sadd", dst_key)
    elif dst.add_member(member, limit):
        db.touched(dst_key)
        notify(client, "sadd", dst_key)
    return 1


# -- random members ----------------------------------------------------------------------


@command("spop", rewrite=rewrite_spop)
def spop(client, argv):
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 3:
        return _spop_count(client, argv[1], _positive(argv[2], MUST_BE_POSITIVE))
    db, key = client.db, argv[1]
    value = db.data.get(key) if not db.expires else db.lookup(key)
    if value is None:
        return None
    if type(value) is not RedisSet:
        value = _lookup(client, key)  # WRONGTYPE, or a packed set unpacked
    member = value.pop_random(1)[0]
    if client.server.notifier.classes:
        notify(client, "spop", key)
    if value:
        touched_by(db, key, -len(member) - ALIGNED_HEADER)
    else:
        db.delete(key)
        notify_event(db.server, db, "del", key)
    return member


def _spop_count(client, key: bytes, count: int):
    db = client.db
    value = _lookup(client, key)
    if value is None or count == 0:
        return ReplySet()
    notify(client, "spop", key)
    if count >= len(value):
        # The whole set, as SUNION of the key would reply it; the key goes away.
        members = value.ordered()
        db.delete(key)
        notify(client, "del", key)
        return ReplySet(members)
    members = value.pop_random(count)
    _after_removal(db, key, value, members)
    return ReplySet(members)


@command("srandmember")
def srandmember(client, argv):
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 3:
        return _srandmember_count(client, argv)
    value = _lookup(client, argv[1])
    return value.random_member() if value is not None else None


def _srandmember_count(client, argv):
    count = parse_int(argv[2])
    if count == LLONG_MIN:  # getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)
        raise CommandError(RANDOM_COUNT_RANGE)
    value = _lookup(client, argv[1])
    if value is None or count == 0:
        return []
    if count < 0:
        if picks_overflow_output(client, -count):
            return []  # (the client is closed: nothing reaches it)
        # A negative count may repeat members, and always gives exactly -count of them.
        return value.random_members(-count, unique=False)
    if count >= len(value):
        return value.ordered()
    return value.random_members(count, unique=True)


# -- multi-key algebra -------------------------------------------------------------------


def _intersection(sets, limit: int = 0) -> list:
    """Members of all sets, in the iteration order of the smallest (sinterGenericCommand
    walks the smallest set and probes the others); stops at limit when it is > 0."""
    if not sets or any(s is None for s in sets):
        return []
    sets = sorted(sets, key=len)
    first, others = sets[0], sets[1:]
    out = []
    for member in first.ordered():
        for other in others:
            if member not in other:
                break
        else:
            out.append(member)
            if len(out) == limit:
                break
    return out


def _union(sets) -> set:
    result = set()
    for s in sets:
        if s is not None:
            result.update(s)
    return result


def _difference(sets) -> set:
    first = sets[0]
    if first is None:
        return set()
    result = set(first)
    for s in sets[1:]:
        if s is not None:
            result.difference_update(s)
            if not result:
                break
    return result


def _ordered_result(members, client) -> ReplySet:
    # The reply walks a fresh result set, an intset when every member is an integer.
    return ReplySet(from_members(members, max_intset_entries(client)).ordered())


@command("sinter")
def sinter(client, argv):
    return ReplySet(_intersection(_lookup_all(client.db, argv[1:])))


@command("sinterstore")
def sinterstore(client, argv):
    db = client.db
    members = _intersection(_lookup_all(db, argv[2:]))
    stored = _store(db, argv[1], members, max_intset_entries(client))
    if stored: notify(client, "sinterstore", argv[1])  # noqa: E701
    return stored


@command("sintercard")
def sintercard(client, argv):
    numkeys = parse_int(argv[1], NUMKEYS_POSITIVE)
    if numkeys < 1:
        raise CommandError(NUMKEYS_POSITIVE)
    if numkeys > len(argv) - 2:
        raise CommandError(TOO_MANY_KEYS)
    limit = 0
    i = 2 + numkeys
    while i < len(argv):
        if argv[i].lower() == b"limit" and i + 1 < len(argv):
            limit = _positive(argv[i + 1], LIMIT_NEGATIVE)
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    return len(_intersection(_lookup_all(client.db, argv[2:2 + numkeys]), limit))


@command("sunion")
def sunion(client, argv):
    return _ordered_result(_union(_lookup_all(client.db, argv[1:])), client)


@command("sunionstore")
def sunionstore(client, argv):
    db = client.db
    members = _union(_lookup_all(db, argv[2:]))
    stored = _store(db, argv[1], members, max_intset_entries(client))
    if stored: notify(client, "sunionstore", argv[1])  # noqa: E701
    return stored


@command("sdiff")
def sdiff(client, argv):
    return _ordered_result(_difference(_lookup_all(client.db, argv[1:])), client)


@command("sdiffstore")
def sdiffstore(client, argv):
    db = client.db
    members = _difference(_lookup_all(db, argv[2:]))
    stored = _store(db, argv[1], members, max_intset_entries(client))
    if stored: notify(client, "sdiffstore", argv[1])  # noqa: E701
    return stored


# -- SSCAN -------------------------------------------------------------------------------


@command("sscan")
def sscan(client, argv):
    """SSCAN key cursor [MATCH pattern] [COUNT count]: the cursor is checked before the
    key and the options after it (a missing key answers an empty scan whatever they
    are), as sscanCommand() + scanGenericCommand() do. An intset comes back whole, in
    order, with cursor 0 (Redis ignores COUNT for its compact encodings)."""
    cursor = parse_cursor(argv[2])
    value = _lookup(client, argv[1])
    if value is None:
        return [b"0", []]
    opts = parse_options(argv, 3)
    if value.intset:
        next_cursor, batch = 0, value.ordered()
    else:
        next_cursor, batch = scan(value, cursor, opts.count)
    if opts.match is not None:
        batch = [member for member in batch if opts.match(member)]
    return [b"%d" % next_cursor, batch]
