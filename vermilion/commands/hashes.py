"""Hash commands (Redis's t_hash.c).

The value is a HashValue (a dict, see datatypes/hashtype.py). Every write that adds
or replaces fields ends with _convert_if_needed(), the listpack → hashtable encoding
decision Redis makes (hashTypeTryConversion / hashTypeSet). A hash whose last field is
deleted is deleted, never kept empty; a hash is stored only once it has a field.
"""

import random
from fractions import Fraction
from itertools import islice

from ..datatypes.hashtype import (DEFAULT_ENTRIES, DEFAULT_VALUE, ENTRIES_CONFIG, VALUE_CONFIG,
                                  HashValue, listpack_limits)
from ..keyspace.cost import ALIGNED_HEADER, touched_by
from ..keyspace.scan import parse_cursor, parse_options, scan
from ..propagate import rewrite_hincrbyfloat
from ..protocol import errors
from ..protocol.encode import OK
from ..protocol.errors import CommandError
from ..protocol.numbers import LLONG_MAX, LLONG_MIN, parse_int, to_int
from .client_cmds import picks_overflow_output
from .registry import command
from ..notify import after_removal, notify

# HINCRBYFLOAT computes in C long double like INCRBYFLOAT; strings.py emulates the
# 80-bit format (parse = string2ld, format = ld2string LD_STR_HUMAN) and is reused here.
from .strings import _INF, _format_long_double, _ld_round, _parse_long_double

_LONG_MAX_HALF = LLONG_MAX // 2  # HRANDFIELD WITHVALUES: count * 2 must fit a long
# The table's size (sys.getsizeof less the constant GC header, without its lookup).
_getsizeof = dict.__sizeof__


# -- shared helpers -------------------------------------------------------------------


def _write_hash(db, key: bytes) -> tuple[HashValue, bool]:
    """hashTypeLookupWriteOrCreate(): (hash, created). A created hash is stored by
    _commit once it has fields, so a failing command never leaves an empty key."""
    h = db.lookup_typed(key, HashValue)
    if h is None:
        return HashValue(), True
    return h, False


def _commit(db, key: bytes, h: HashValue, created: bool, delta: int) -> None:
    """Store a created hash; account delta bytes of change to an existing one."""
    if created:
        db.set(key, h)
    else:
        touched_by(db, key, delta)


def _store_field(h: HashValue, field: bytes, value: bytes) -> int:
    """h[field] = value; returns the cost it adds (a new field's bytes and the table's
    growth, or the new value's length less the old one's)."""
    old = h.get(field)
    if old is None:
        size = _getsizeof(h)
        h[field] = value
        return _getsizeof(h) - size + len(field) + len(value) + 2 * ALIGNED_HEADER
    h[field] = value
    return len(value) - len(old)


def _convert_if_needed(client, h: HashValue, strings) -> None:
    """Convert a listpack hash to hashtable when a written field/value is longer than
    hash-max-listpack-value or the hash outgrew hash-max-listpack-entries (checked
    after the write, as hashTypeSet does). Conversion is one-way."""
    max_entries, max_value = listpack_limits(client.server.config)
    if len(h) > max_entries:
        h.ht = True
        return
    for s in strings:
        if len(s) > max_value:
            h.ht = True
            return


def _hset_generic(client, argv: list[bytes], name: str) -> int:
    """HSET/HMSET key field value [field value ...]: the number of new fields."""
    n = len(argv)
    if n & 1:
        raise CommandError(errors.wrong_arity(name))
    db = client.db
    key = argv[1]
    h, created = _write_hash(db, key)
    before = len(h)
    delta = 0
    if created:
        # Later duplicates win, as each pair is set in turn.
        h.update(zip(argv[2::2], argv[3::2]))
    else:
        size = _getsizeof(h)
        get = h.get
        for i in range(2, n, 2):
            field, value = argv[i], argv[i + 1]
            old = get(field)
            delta += (len(value) - len(old) if old is not None
                      else len(field) + len(value) + 2 * ALIGNED_HEADER)
            h[field] = value
        delta += _getsizeof(h) - size
    if not h.ht:
        # hashTypeTryConversion looks at every argument, values of existing fields too.
        _convert_if_needed(client, h, argv[2:])
    _commit(db, key, h, created, delta)
    notify(client, "hset", key)
    return len(h) - before


def _read_hash(client, key: bytes) -> HashValue | None:
    return client.db.lookup_typed(key, HashValue)


# -- writes ---------------------------------------------------------------------------


@command("hset")
def hset(client, argv):
    if len(argv) == 4:
        # HSET key field value on an existing hash (what redis-benchmark sends): the
        # cost moves by what changed, the encoding is checked against this pair only.
        db = client.db
        key = argv[1]
        h = db.data.get(key) if not db.expires else db.lookup(key)
        if type(h) is HashValue:
            field, value = argv[2], argv[3]
            old = h.get(field)
            if old is None:
                size = _getsizeof(h)
                h[field] = value
                delta = _getsizeof(h) - size + len(field) + len(value) + 2 * ALIGNED_HEADER
            else:
                h[field] = value
                delta = len(value) - len(old)
            if not h.ht:
                values = client.server.config.values
                max_value = values.get(VALUE_CONFIG, DEFAULT_VALUE)
                if (len(field) > max_value or len(value) > max_value
                        or len(h) > values.get(ENTRIES_CONFIG, DEFAULT_ENTRIES)):
                    h.ht = True
            touched_by(db, key, delta)
            if client.server.notifier.classes:
                notify(client, "hset", key)
            return 0 if old is not None else 1
    return _hset_generic(client, argv, "hset")


@command("hmset")
def hmset(client, argv):
    _hset_generic(client, argv, "hmset")
    return OK


@command("hsetnx")
def hsetnx(client, argv):
    db = client.db
    key = argv[1]
    h, created = _write_hash(db, key)
    if argv[2] in h:
        return 0  # no conversion either: Redis checks the sizes only when it writes
    delta = _store_field(h, argv[2], argv[3])
    if not h.ht:
        _convert_if_needed(client, h, argv[2:4])
    _commit(db, key, h, created, delta)
    notify(client, "hset", key)
    return 1


@command("hdel")
def hdel(client, argv):
    db = client.db
    key = argv[1]
    h = db.lookup_typed(key, HashValue)
    if h is None:
        return 0
    deleted = freed = 0
    pop = h.pop
    for field in argv[2:]:
        value = pop(field, None)
        if value is not None:
            deleted += 1
            freed += len(field) + len(value) + 2 * ALIGNED_HEADER
            if not h:
                break  # Redis stops at the first field that empties the hash
    if deleted:
        notify(client, "hdel", key)
        if h:
            touched_by(db, key, -freed)  # (a dict's table does not shrink)
        else:
            after_removal(db, key, h)
    return deleted


@command("hincrby")
def hincrby(client, argv):
    incr = parse_int(argv[3])
    db = client.db
    key = argv[1]
    h, created = _write_hash(db, key)
    field = argv[2]
    old = h.get(field)
    if old is None:
        value = 0
    else:
        value = to_int(old)
        if value is None:
            raise CommandError(errors.HASH_NOT_INTEGER)
    value += incr
    if value > LLONG_MAX or value < LLONG_MIN:
        raise CommandError(errors.OVERFLOW)
    new = b"%d" % value
    delta = _store_field(h, field, new)
    if not h.ht:
        _convert_if_needed(client, h, (field, new))
    _commit(db, key, h, created, delta)
    notify(client, "hincrby", key)
    return value


@command("hincrbyfloat", rewrite=rewrite_hincrbyfloat)
def hincrbyfloat(client, argv):
    incr = _parse_long_double(argv[3])
    if incr is None:
        raise CommandError(errors.NOT_FLOAT)
    if incr is _INF:
        raise CommandError(errors.NAN_OR_INFINITY)
    db = client.db
    key = argv[1]
    h, created = _write_hash(db, key)
    field = argv[2]
    old = h.get(field)
    if old is None:
        value = Fraction(0)
    else:
        value = _parse_long_double(old)
        if value is None:
            raise CommandError(errors.HASH_NOT_FLOAT)
    total = None if value is _INF else _ld_round(value + incr)
    if total is None:
        raise CommandError(errors.INCR_NAN_INF)
    new = _format_long_double(total)
    delta = _store_field(h, field, new)
    if not h.ht:
        _convert_if_needed(client, h, (field, new))
    _commit(db, key, h, created, delta)
    notify(client, "hincrbyfloat", key)
    return new


# -- reads ----------------------------------------------------------------------------


@command("hget")
def hget(client, argv):
    h = client.db.lookup_typed(argv[1], HashValue)
    if h is None:
        return None
    return h.get(argv[2])


@command("hmget")
def hmget(client, argv):
    h = _read_hash(client, argv[1])
    if h is None:
        return [None] * (len(argv) - 2)
    get = h.get
    return [get(field) for field in argv[2:]]


@command("hlen")
def hlen(client, argv):
    h = _read_hash(client, argv[1])
    return 0 if h is None else len(h)


@command("hstrlen")
def hstrlen(client, argv):
    h = _read_hash(client, argv[1])
    if h is None:
        return 0
    value = h.get(argv[2])
    return 0 if value is None else len(value)


@command("hexists")
def hexists(client, argv):
    h = _read_hash(client, argv[1])
    return 1 if h is not None and argv[2] in h else 0


@command("hkeys")
def hkeys(client, argv):
    h = _read_hash(client, argv[1])
    return [] if h is None else list(h)


@command("hvals")
def hvals(client, argv):
    h = _read_hash(client, argv[1])
    return [] if h is None else list(h.values())


@command("hgetall")
def hgetall(client, argv):
    # A plain dict copy: a RESP3 map / RESP2 flat array, and safe to encode later
    # (inside EXEC) even if a following command changes the hash.
    h = _read_hash(client, argv[1])
    return {} if h is None else dict(h)


# -- HRANDFIELD -----------------------------------------------------------------------


@command("hrandfield")
def hrandfield(client, argv):
    """HRANDFIELD key [count [WITHVALUES]]."""
    argc = len(argv)
    if argc == 2:
        h = _read_hash(client, argv[1])
        if h is None:
            return None
        # A uniform pick without copying the fields: skip a random number of them in C.
        return next(islice(h, random.randrange(len(h)), None))
    count = to_int(argv[2])
    if count is None:
        raise CommandError(errors.NOT_INTEGER)
    if count == LLONG_MIN:
        # getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX): -count must fit a long.
        raise CommandError(errors.VALUE_NOT_IN_LONG_RANGE)
    withvalues = False
    if argc > 4 or (argc == 4 and argv[3].lower() != b"withvalues"):
        raise CommandError(errors.SYNTAX)
    if argc == 4:
        withvalues = True
        if not -_LONG_MAX_HALF <= count <= _LONG_MAX_HALF:
            raise CommandError(errors.VALUE_OUT_OF_RANGE)
    h = _read_hash(client, argv[1])
    if h is None or count == 0:
        return []
    if count < 0 and picks_overflow_output(client, -count * (2 if withvalues else 1)):
        return []  # (the client is closed: nothing reaches it)
    fields = _random_fields(h, count)
    if not withvalues:
        return fields
    if client.resp == 3:
        # RESP3 nests each field with its value: [[f, v], ...].
        return [[f, h[f]] for f in fields]
    out = []
    for f in fields:
        out += (f, h[f])
    return out


def _random_fields(h: HashValue, count: int) -> list[bytes]:
    """A negative count samples with repetition (-count fields, random order); a
    positive one returns distinct fields, the whole hash when count >= its size."""
    if count < 0:
        return random.choices(list(h), k=-count)
    if count >= len(h):
        return list(h)
    return random.sample(list(h), count)


# -- HSCAN ----------------------------------------------------------------------------


@command("hscan")
def hscan(client, argv):
    """HSCAN key cursor [MATCH pattern] [COUNT count].

    A listpack-encoded hash is returned whole in one reply with cursor 0, as Redis
    does (COUNT is ignored there); a hashtable hash is paged by the shared snapshot
    cursors of keyspace/scan.py. The cursor is parsed before the key is looked up,
    the options after (a missing key ignores bad options), as hscanCommand does."""
    cursor = parse_cursor(argv[2])
    h = _read_hash(client, argv[1])
    if h is None:
        return [b"0", []]
    opts = parse_options(argv, 3)
    if h.ht:
        next_cursor, fields = scan(h, cursor, opts.count)
    else:
        next_cursor, fields = 0, list(h)
    match = opts.match
    if match is not None:
        fields = [f for f in fields if match(f)]
    out = []
    for f in fields:
        out += (f, h[f])
    return [b"%d" % next_cursor, out]
