"""Sorted set commands (Redis's t_zset.c), except the blocking BZPOPMIN/BZPOPMAX/BZMPOP.

Values are ZSet (datatypes/zset.py). Scores are Python floats: the encoder replies them
as RESP3 doubles or, in RESP2, as bulk strings formatted with Redis 7.0's %.17g.
Numbers are parsed the two ways Redis parses them: a score, increment or weight with
string2d() (strtod that must consume everything, no leading space, no overflow, no NaN)
and a range bound with zslParseRange()'s laxer strtod (leading spaces, "" and "(" are
0, overflow is infinity). As in Redis, every argument is validated before the key is
looked up, an emptied sorted set is deleted and the STORE forms replace the destination.
"""

import math
import re

from ..datatypes.settype import RedisSet
from ..datatypes.zset import (DEFAULT_MAX_LISTPACK_ENTRIES, DEFAULT_MAX_LISTPACK_VALUE,
                              LEX_MAX, LEX_MIN, LexRange, ScoreRange, ZSet, from_scores)
from ..keyspace.cost import ALIGNED_HEADER, ZSET_MEMBER, touched_by
from ..keyspace.scan import parse_cursor, parse_options, scan
from ..protocol import errors
from ..protocol.encode import NULL_ARRAY, Raw, format_double
from ..protocol.errors import CommandError
from ..protocol.numbers import LLONG_MAX, LLONG_MIN, parse_int
from ..propagate import rewrite_mpop
from .client_cmds import picks_overflow_output
from .registry import command
from ..notify import after_removal, notify, notify_event, notify_store

MIN_MAX_NOT_FLOAT = "ERR min or max is not a float"
MIN_MAX_NOT_STRING = "ERR min or max not valid string range item"
NAN_RESULT = "ERR resulting score is not a number (NaN)"
XX_NX = "ERR XX and NX options at the same time are not compatible"
GT_LT_NX = "ERR GT, LT, and/or NX options at the same time are not compatible"
INCR_PAIR = "ERR INCR option supports a single increment-element pair"
LIMIT_RANK = ("ERR syntax error, LIMIT is only supported in combination with either "
              "BYSCORE or BYLEX")
WITHSCORES_LEX = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
WEIGHT_NOT_FLOAT = "ERR weight value is not a float"
MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
NUMKEYS_POSITIVE = "ERR numkeys should be greater than 0"
COUNT_POSITIVE = "ERR count should be greater than 0"
LIMIT_NEGATIVE = "ERR LIMIT can't be negative"
OUT_OF_RANGE = "ERR value is out of range"
RANDOM_COUNT_RANGE = ("ERR value is out of range, value must between "
                      "-9223372036854775807 and 9223372036854775807")
EMPTY_ARRAY = Raw(b"*0\r\n")  # the same bytes in RESP2 and RESP3
# The table's size (sys.getsizeof less the constant GC header, without its lookup).
_getsizeof = dict.__sizeof__

# -- number parsing ----------------------------------------------------------------------

# glibc strtod()'s grammar: leading C-locale spaces, a sign, then infinity, NaN, a hex
# float or a decimal. The match is the longest prefix strtod would consume.
_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*(?P<sign>[+-]?)(?:"
    rb"(?P<inf>inf(?:inity)?)"
    rb"|(?P<nan>nan(?:\([0-9a-z_]*\))?)"
    rb"|0x(?P<hex>(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?)"
    rb"|(?P<dec>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?))",
    re.IGNORECASE)
_NONZERO_DEC = re.compile(rb"[1-9]")
_NONZERO_HEX = re.compile(rb"[1-9a-f]", re.IGNORECASE)
_SPACES = b" \t\n\v\f\r"


def strtod(text: bytes) -> tuple[float, int, bool]:
    """(value, bytes consumed, ERANGE) as C's strtod; consumed is 0 when nothing parses."""
    m = _STRTOD.match(text)
    if m is None:
        return 0.0, 0, False
    negative = m.group("sign") == b"-"
    erange = False
    if m.group("inf") is not None:
        value = math.inf
    elif m.group("nan") is not None:
        value = math.nan
    elif m.group("hex") is not None:
        body = m.group("hex")
        try:
            value = float.fromhex("0x" + body.decode("ascii"))
        except OverflowError:
            value = math.inf
        mantissa = re.split(rb"[pP]", body)[0]
        erange = math.isinf(value) or (value == 0 and _NONZERO_HEX.search(mantissa) is not None)
    else:
        body = m.group("dec")
        value = float(body)
        mantissa = re.split(rb"[eE]", body)[0]
        erange = math.isinf(value) or (value == 0 and _NONZERO_DEC.search(mantissa) is not None)
    return (-value if negative else value), m.end(), erange


def parse_score(raw: bytes, message: str = errors.NOT_FLOAT) -> float:
    """getDoubleFromObject() / string2d(): the whole string, no leading space, no NaN,
    no overflow to ±HUGE_VAL nor underflow to zero."""
    if raw.isdigit() and len(raw) < 16:  # the common case: a small plain integer
        return float(raw)
    if not raw or raw[0] in _SPACES:
        raise CommandError(message)
    value, end, erange = strtod(raw)
    if end != len(raw) or value != value or (erange and (math.isinf(value) or value == 0)):
        raise CommandError(message)
    return value


def _score_bound(raw: bytes) -> tuple[float, bool]:
    # zslParseRange(): strtod on the sds up to its first NUL; eptr must reach the end.
    exclusive = raw[:1] == b"("
    text = raw[1:] if exclusive else raw
    nul = text.find(b"\0")
    if nul >= 0:
        text = text[:nul]
    value, end, _ = strtod(text)
    if end != len(text) or value != value:
        raise CommandError(MIN_MAX_NOT_FLOAT)
    return value, exclusive


def parse_score_range(lo: bytes, hi: bytes) -> ScoreRange:
    lo_value, lo_ex = _score_bound(lo)
    hi_value, hi_ex = _score_bound(hi)
    return ScoreRange(lo_value, lo_ex, hi_value, hi_ex)


def _lex_bound(raw: bytes):
    # zslParseLexRangeItem(): '+' / '-' alone, or '(' / '[' then the string.
    first, rest = raw[:1], raw[1:]
    if first in (b"+", b"-"):
        if rest[:1] not in (b"", b"\0"):
            raise CommandError(MIN_MAX_NOT_STRING)
        return (LEX_MAX if first == b"+" else LEX_MIN), True
    if first == b"(":
        return rest, True
    if first == b"[":
        return rest, False
    raise CommandError(MIN_MAX_NOT_STRING)


def parse_lex_range(lo: bytes, hi: bytes) -> LexRange:
    lo_value, lo_ex = _lex_bound(lo)
    hi_value, hi_ex = _lex_bound(hi)
    return LexRange(lo_value, lo_ex, hi_value, hi_ex)


def _positive(raw: bytes, message: str = MUST_BE_POSITIVE) -> int:
    """getPositiveLongFromObjectOrReply(): one text for a non-integer and a negative."""
    return _range_long(raw, 0, LLONG_MAX, message)


def _range_long(raw: bytes, lo: int, hi: int, message: str) -> int:
    """getRangeLongFromObjectOrReply() with a message: one text for every failure."""
    value = parse_int(raw, message)
    if not lo <= value <= hi:
        raise CommandError(message)
    return value


# -- helpers -----------------------------------------------------------------------------


def zset_limits(client) -> tuple[int, int]:
    """(zset-max-listpack-entries, zset-max-listpack-value), for every writer of sorted
    sets (GEOADD and the STORE forms too)."""
    values = client.server.config.values
    return (values.get("zset-max-listpack-entries", DEFAULT_MAX_LISTPACK_ENTRIES),
            values.get("zset-max-listpack-value", DEFAULT_MAX_LISTPACK_VALUE))


def _lookup(client, key: bytes):
    return client.db.lookup_typed(key, ZSet)


def _scored(entries, withscores: bool, resp: int) -> list:
    """(score, member) entries as the ZRANGE family replies them: members only, or with
    scores flat in RESP2 and as [member, score] pairs in RESP3."""
    if not withscores:
        return [member for _, member in entries]
    if resp == 3:
        return [[member, score] for score, member in entries]
    out = []
    for score, member in entries:
        out.append(member)
        out.append(score)
    return out


def _store(client, dst: bytes, scores: dict) -> int:
    """A STORE result replaces dst (its TTL too); an empty result deletes it."""
    db = client.db
    if not scores:
        if dst in db.data: notify_event(db.server, db, "del", dst)  # noqa: E701
        db.delete(dst)
        return 0
    db.set(dst, from_scores(scores, *zset_limits(client)))
    notify_store(client, dst)
    return len(scores)


# -- ZADD / ZINCRBY ----------------------------------------------------------------------

_ZADD_FLAGS = frozenset((b"nx", b"xx", b"ch", b"incr", b"gt", b"lt"))


def members_cost(members) -> int:
    """What members cost in a sorted set beyond its table (cost.py's _zset_cost)."""
    return sum(map(len, members)) + (ALIGNED_HEADER + ZSET_MEMBER) * len(members)


def _after_removal(db, key: bytes, zs: ZSet, members) -> None:
    """after_removal() for members removed from a sorted set: their cost leaves the
    key's (the dict's table does not shrink)."""
    if zs:
        touched_by(db, key, -members_cost(members))
    else:
        db.delete(key)
        notify_event(db.server, db, "del", key)


def _zadd_one(client, db, key: bytes, zs: ZSet, score: float, member: bytes) -> int:
    """ZADD key score member without options on an existing sorted set."""
    scores = zs.scores
    current = scores.get(member)
    if current is None:
        size = _getsizeof(scores)
        if zs.listpack:
            zs.insert(member, score, *zset_limits(client))
        else:
            scores[member] = score
            zs.order.add((score, member))
        touched_by(db, key, _getsizeof(scores) - size + len(member) + ALIGNED_HEADER + ZSET_MEMBER)
        if client.server.notifier.classes:
            notify(client, "zadd", key)
        return 1
    if current == score:
        return 0  # nothing changes: no dirty, no event
    zs.set(member, score)
    touched_by(db, key, 0)
    if client.server.notifier.classes:
        notify(client, "zadd", key)
    return 0


@command("zadd")
def zadd(client, argv):
    if len(argv) == 4:
        raw = argv[2]
        if raw.isdigit() and len(raw) < 16:  # a plain integer score (parse_score's fast case)
            db = client.db
            key = argv[1]
            zs = db.data.get(key) if not db.expires else db.lookup(key)
            if type(zs) is ZSet:
                return _zadd_one(client, db, key, zs, float(raw), argv[3])
    i, flags = 2, set()
    while i < len(argv):
        flag = argv[i].lower()
        if flag not in _ZADD_FLAGS:
            break
        flags.add(flag)
        i += 1
    pairs = argv[i:]
    if not pairs or len(pairs) % 2:
        raise CommandError(errors.SYNTAX)
    nx, xx, gt, lt = (f in flags for f in (b"nx", b"xx", b"gt", b"lt"))
    if nx and xx:
        raise CommandError(XX_NX)
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError(GT_LT_NX)
    incr = b"incr" in flags
    if incr and len(pairs) > 2:
        raise CommandError(INCR_PAIR)
    items = [(parse_score(pairs[j]), pairs[j + 1]) for j in range(0, len(pairs), 2)]
    added, updated, processed, score = _zadd_apply(client, argv[1], items, flags)
    if incr:
        return score if processed else None
    return added + updated if b"ch" in flags else added


@command("zincrby")
def zincrby(client, argv):
    _, _, processed, score = _zadd_apply(
        client, argv[1], [(parse_score(argv[2]), argv[3])], frozenset((b"incr",)))
    return score if processed else None


def _zadd_apply(client, key: bytes, items, flags):
    """zsetAdd() for each (score, member): (added, updated, processed, last score)."""
    db = client.db
    zs = _lookup(client, key)
    xx = b"xx" in flags
    if zs is None and xx:
        return 0, 0, 0, None  # no key + XX: nothing to do
    created = zs is None
    if created:
        zs = ZSet()
    nx, incr = b"nx" in flags, b"incr" in flags
    gt, lt = b"gt" in flags, b"lt" in flags
    max_entries, max_value = zset_limits(client)
    added = updated = processed = 0
    score = None
    scores, order_add = zs.scores, zs.order.add
    size = _getsizeof(scores)
    added_bytes = 0
    for score, member in items:
        current = scores.get(member)
        if current is None:
            if xx:
                continue
            if zs.listpack:
                zs.insert(member, score, max_entries, max_value)
            else:  # the hot path of big sorted sets, inlined
                scores[member] = score
                order_add((score, member))
            added_bytes += len(member)
            added += 1
            processed += 1
            continue
        if nx:
            continue
        if incr:
            score += current
            if score != score:  # inf + -inf; INCR has a single pair, nothing changed yet
                raise CommandError(NAN_RESULT)
        if (lt and score >= current) or (gt and score <= current):
            continue
        processed += 1
        if score != current:
            zs.set(member, score)
            updated += 1
    if created:
        db.set(key, zs)  # never empty: without XX the first pair is always added
        notify(client, "zincr" if incr else "zadd", key)
    elif added or updated:
        touched_by(db, key, _getsizeof(scores) - size + added_bytes
                   + (ALIGNED_HEADER + ZSET_MEMBER) * added)
        notify(client, "zincr" if incr else "zadd", key)
    return added, updated, processed, score


# -- single-member reads and removal -----------------------------------------------------


@command("zcard")
def zcard(client, argv):
    zs = _lookup(client, argv[1])
    return len(zs) if zs is not None else 0


@command("zscore")
def zscore(client, argv):
    zs = _lookup(client, argv[1])
    return zs.score(argv[2]) if zs is not None else None


@command("zmscore")
def zmscore(client, argv):
    zs = _lookup(client, argv[1])
    if zs is None:
        return [None] * (len(argv) - 2)
    return [zs.score(member) for member in argv[2:]]


@command("zrank")
def zrank(client, argv):
    zs = _lookup(client, argv[1])
    return zs.rank(argv[2]) if zs is not None else None


@command("zrevrank")
def zrevrank(client, argv):
    zs = _lookup(client, argv[1])
    return zs.rank(argv[2], reverse=True) if zs is not None else None


@command("zrem")
def zrem(client, argv):
    db, key = client.db, argv[1]
    zs = _lookup(client, key)
    if zs is None:
        return 0
    gone = [member for member in argv[2:] if zs.remove(member)]
    if gone:
        notify(client, "zrem", key)
        _after_removal(db, key, zs, gone)
    return len(gone)


# -- counting and removing ranges --------------------------------------------------------


@command("zcount")
def zcount(client, argv):
    rng = parse_score_range(argv[2], argv[3])
    zs = _lookup(client, argv[1])
    if zs is None:
        return 0
    start, end = zs.score_span(rng)
    return end - start


@command("zlexcount")
def zlexcount(client, argv):
    rng = parse_lex_range(argv[2], argv[3])
    zs = _lookup(client, argv[1])
    if zs is None:
        return 0
    return zs.lex_count(rng)


def _rank_span(start: int, end: int, length: int) -> tuple[int, int]:
    """Redis's rank clamping: negative ranks count from the end; half-open result."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    if start < 0:
        start = 0
    if start > end or start >= length:
        return 0, 0
    return start, min(end, length - 1) + 1


def _zremrange(client, argv, span_of):
    """ZREMRANGEBY*: span_of(zs) gives the positions, after the arguments were parsed."""
    db, key = client.db, argv[1]
    zs = _lookup(client, key)
    if zs is None:
        return 0
    removed = zs.delete_span(*span_of(zs))
    if removed:
        notify(client, argv[0].decode().lower(), key)
        after_removal(db, key, zs)
    return removed


@command("zremrangebyrank")
def zremrangebyrank(client, argv):
    start, end = parse_int(argv[2]), parse_int(argv[3])
    return _zremrange(client, argv, lambda zs: _rank_span(start, end, len(zs)))


@command("zremrangebyscore")
def zremrangebyscore(client, argv):
    rng = parse_score_range(argv[2], argv[3])
    return _zremrange(client, argv, lambda zs: zs.score_span(rng))


@command("zremrangebylex")
def zremrangebylex(client, argv):
    rng = parse_lex_range(argv[2], argv[3])
    return _zremrange(client, argv, lambda zs: zs.lex_delete_span(rng))


# -- the ZRANGE family -------------------------------------------------------------------

RANK, SCORE, LEX = "rank", "score", "lex"


def _zrange(client, argv, first: int, dst, reverse, kind):
    """zrangeGenericCommand(): argv[first] is the source key, then min and max; reverse
    and kind are None where REV / BYSCORE / BYLEX may still be given as options."""
    withscores, offset, limit = False, 0, -1
    j = first + 3
    while j < len(argv):
        opt = argv[j].lower()
        if dst is None and opt == b"withscores":
            withscores = True
        elif opt == b"limit" and len(argv) - j - 1 >= 2:
            offset, limit = parse_int(argv[j + 1]), parse_int(argv[j + 2])
            j += 2
        elif reverse is None and opt == b"rev":
            reverse = True
        elif kind is None and opt in (b"byscore", b"bylex"):
            kind = SCORE if opt == b"byscore" else LEX
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    reverse = bool(reverse)
    kind = kind or RANK
    if limit != -1 and kind == RANK:
        raise CommandError(LIMIT_RANK)
    if withscores and kind == LEX:
        raise CommandError(WITHSCORES_LEX)
    lo, hi = argv[first + 1], argv[first + 2]
    if reverse and kind != RANK:
        lo, hi = hi, lo  # the range is given as max, min
    if kind == RANK:
        rng = (parse_int(lo), parse_int(hi))
    elif kind == SCORE:
        rng = parse_score_range(lo, hi)
    else:
        rng = parse_lex_range(lo, hi)
    zs = _lookup(client, argv[first])
    entries = _range_entries(zs, kind, rng, reverse, offset, limit) if zs is not None else []
    if dst is not None:
        return _store(client, dst, {member: score for score, member in entries})
    return _scored(entries, withscores, client.resp)


def _range_entries(zs: ZSet, kind, rng, reverse: bool, offset: int, limit: int) -> list:
    if kind == RANK:
        start, end = _rank_span(rng[0], rng[1], len(zs))
        if reverse:  # ranks count from the top
            start, end = len(zs) - end, len(zs) - start
        return zs.entries(start, end, reverse)
    if kind == LEX:
        return zs.lex_walk(rng, reverse, offset, limit)
    start, end = zs.score_span(rng)
    if offset < 0:
        return []  # Redis skips "offset--" elements: a negative offset skips them all
    if reverse:
        end -= offset
        if limit >= 0:
            start = max(start, end - limit)
    else:
        start += offset
        if limit >= 0:
            end = min(end, start + limit)
    return zs.entries(start, end, reverse)


def _range_command(name, first, store, reverse, kind):
    def handler(client, argv):
        return _zrange(client, argv, first, argv[1] if store else None, reverse, kind)

    handler.__name__ = name
    command(name)(handler)


for _args in (("zrange", 1, False, None, None),
              ("zrangestore", 2, True, None, None),
              ("zrevrange", 1, False, True, RANK),
              ("zrangebyscore", 1, False, False, SCORE),
              ("zrevrangebyscore", 1, False, True, SCORE),
              ("zrangebylex", 1, False, False, LEX),
              ("zrevrangebylex", 1, False, True, LEX)):
    _range_command(*_args)


# -- popping -----------------------------------------------------------------------------


def _pop_entries(client, key: bytes, zs: ZSet, count: int, maximum: bool) -> list:
    taken = zs.pop(count, maximum)
    notify(client, "zpopmax" if maximum else "zpopmin", key)
    _after_removal(client.db, key, zs, [member for _, member in taken])
    return taken


def _zpop(client, argv, maximum: bool):
    if len(argv) == 2:
        db = client.db
        if (db.data.get(argv[1]) if not db.expires else db.lookup(argv[1])) is None:
            return EMPTY_ARRAY  # (ZPOPMIN of a missing key: what redis-benchmark mostly sends)
    elif len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    count = _positive(argv[2]) if len(argv) == 3 else None
    zs = _lookup(client, argv[1])
    if zs is None or count == 0:
        return EMPTY_ARRAY
    taken = _pop_entries(client, argv[1], zs, 1 if count is None else count, maximum)
    # RESP3 nests [member, score] pairs when a COUNT was given; RESP2 is always flat.
    return _scored(taken, True, client.resp if count is not None else 2)


@command("zpopmin")
def zpopmin(client, argv):
    return _zpop(client, argv, False)


@command("zpopmax")
def zpopmax(client, argv):
    return _zpop(client, argv, True)


@command("zmpop", rewrite=rewrite_mpop((b"ZPOPMIN", b"ZPOPMAX")))
def zmpop(client, argv):
    numkeys = _range_long(argv[1], 1, LLONG_MAX, NUMKEYS_POSITIVE)
    where = 2 + numkeys
    if where >= len(argv):
        raise CommandError(errors.SYNTAX)
    side = argv[where].lower()
    if side not in (b"min", b"max"):
        raise CommandError(errors.SYNTAX)
    count = None
    j = where + 1
    while j < len(argv):
        if count is None and argv[j].lower() == b"count" and j + 1 < len(argv):
            count = _range_long(argv[j + 1], 1, LLONG_MAX, COUNT_POSITIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    popped = pop_first(client, argv[2:where], count or 1, side == b"max")
    if popped is None:
        return NULL_ARRAY
    key, taken = popped
    return [key, [[member, score] for score, member in taken]]


def pop_first(client, keys, count: int, maximum: bool):
    """genericZpopCommand()'s core, shared with the blocking pops: the first existing
    key (type-checked in order; later keys are not looked at) loses up to count of its
    lowest (highest) members. (key, [(score, member), ...]), or None when none exists."""
    for key in keys:
        zs = _lookup(client, key)
        if zs is not None:
            return key, _pop_entries(client, key, zs, count, maximum)
    return None


# -- random members ----------------------------------------------------------------------


@command("zrandmember")
def zrandmember(client, argv):
    if len(argv) == 2:
        zs = _lookup(client, argv[1])
        return zs.random_entries(1, False)[0][1] if zs is not None else None
    count = parse_int(argv[2])
    if count == LLONG_MIN:  # getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)
        raise CommandError(RANDOM_COUNT_RANGE)
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withscores"):
        raise CommandError(errors.SYNTAX)
    withscores = len(argv) == 4
    if withscores and not -(LLONG_MAX // 2) <= count <= LLONG_MAX // 2:
        raise CommandError(OUT_OF_RANGE)
    zs = _lookup(client, argv[1])
    if zs is None or count == 0:
        return []
    if count < 0 and picks_overflow_output(client, -count * (2 if withscores else 1)):
        return []  # (the client is closed: nothing reaches it)
    # A negative count may repeat members and always gives exactly -count of them.
    entries = zs.random_entries(abs(count), unique=count > 0)
    return _scored(entries, withscores, client.resp)


# -- ZUNION / ZINTER / ZDIFF and their STORE forms, ZINTERCARD ---------------------------

UNION, INTER, DIFF = "union", "inter", "diff"
_AGGREGATES = {b"sum": "sum", b"min": "min", b"max": "max"}


def _source_items(value):
    """(member, score) of an input: a plain set counts every member with score 1."""
    if value is None:
        return ()
    if type(value) is RedisSet:
        return ((member, 1.0) for member in value)
    return value.scores.items()


def _aggregate(how: str, current: float, value: float) -> float:
    if how == "sum":
        total = current + value
        return 0.0 if total != total else total  # inf + -inf is taken as 0, as Redis does
    if how == "min":
        return value if value < current else current
    return value if value > current else current


def _weighted(score: float, weight: float) -> float:
    product = score * weight
    return 0.0 if product != product else product  # inf * 0 is 0 in Redis


def _zsetop(client, argv, numkeys_at: int, op: str, dst=None, card_only=False):
    """zunionInterDiffGenericCommand(): parse, type-check every input, compute."""
    setnum = parse_int(argv[numkeys_at])
    if setnum < 1:
        raise CommandError("ERR at least 1 input key is needed for '%s' command"
                           % argv[0].decode("utf-8", "replace").lower())
    if setnum > len(argv) - numkeys_at - 1:
        raise CommandError(errors.SYNTAX)
    db = client.db
    keys = argv[numkeys_at + 1:numkeys_at + 1 + setnum]
    sources = []
    for key in keys:  # the inputs are checked before the options, as Redis does
        value = db.lookup(key)
        if value is not None and type(value) is not ZSet and type(value) is not RedisSet:
            raise CommandError(errors.WRONGTYPE)
        sources.append(value)
    weights, how, withscores, limit = [1.0] * setnum, "sum", False, 0
    j = numkeys_at + 1 + setnum
    while j < len(argv):
        remaining = len(argv) - j
        opt = argv[j].lower()
        if op != DIFF and not card_only and remaining >= setnum + 1 and opt == b"weights":
            weights = [parse_score(w, WEIGHT_NOT_FLOAT) for w in argv[j + 1:j + 1 + setnum]]
            j += setnum + 1
        elif op != DIFF and not card_only and remaining >= 2 and opt == b"aggregate":
            how = _AGGREGATES.get(argv[j + 1].lower())
            if how is None:
                raise CommandError(errors.SYNTAX)
            j += 2
        elif dst is None and not card_only and opt == b"withscores":
            withscores = True
            j += 1
        elif card_only and remaining >= 2 and opt == b"limit":
            limit = _positive(argv[j + 1], LIMIT_NEGATIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    if op == DIFF:
        result = _diff(sources)
    else:
        # Redis walks the inputs smallest first (qsort by cardinality, stable here).
        ranked = sorted(zip(sources, weights), key=lambda sw: len(sw[0]) if sw[0] else 0)
        result = _inter(ranked, how, limit) if op == INTER else _union(ranked, how)
    if card_only:
        return len(result)
    if dst is not None:
        return _store(client, dst, result)
    entries = sorted((score, member) for member, score in result.items())
    return _scored(entries, withscores, client.resp)


def _union(ranked, how: str) -> dict:
    result: dict = {}
    for value, weight in ranked:
        for member, score in _source_items(value):
            score = _weighted(score, weight)
            current = result.get(member)
            result[member] = score if current is None else _aggregate(how, current, score)
    return result


def _inter(ranked, how: str, limit: int = 0) -> dict:
    first, weight = ranked[0]
    others = ranked[1:]
    if not first or any(not value for value, _ in others):
        return {}
    result: dict = {}
    for member, score in _source_items(first):
        score = _weighted(score, weight)
        for value, other_weight in others:
            other = _member_score(value, member)
            if other is None:
                break
            # Only the first input's product is NaN-guarded in Redis's ZINTER loop: an
            # inf * 0 here is NaN, which SUM turns into 0 and MIN/MAX ignore.
            score = _aggregate(how, score, other * other_weight)
        else:
            result[member] = score
            if len(result) == limit:
                break
    return result


def _member_score(value, member: bytes):
    if type(value) is RedisSet:
        return 1.0 if member in value else None
    return value.scores.get(member)


def _diff(sources) -> dict:
    first = sources[0]
    if not first:
        return {}
    others = [value for value in sources[1:] if value]
    return {member: score for member, score in _source_items(first)
            if not any(member in value for value in others)}


@command("zunion")
def zunion(client, argv):
    return _zsetop(client, argv, 1, UNION)


@command("zinter")
def zinter(client, argv):
    return _zsetop(client, argv, 1, INTER)


@command("zdiff")
def zdiff(client, argv):
    return _zsetop(client, argv, 1, DIFF)


@command("zunionstore")
def zunionstore(client, argv):
    return _zsetop(client, argv, 2, UNION, dst=argv[1])


@command("zinterstore")
def zinterstore(client, argv):
    return _zsetop(client, argv, 2, INTER, dst=argv[1])


@command("zdiffstore")
def zdiffstore(client, argv):
    return _zsetop(client, argv, 2, DIFF, dst=argv[1])


@command("zintercard")
def zintercard(client, argv):
    return _zsetop(client, argv, 1, INTER, card_only=True)


# -- ZSCAN -------------------------------------------------------------------------------


@command("zscan")
def zscan(client, argv):
    """ZSCAN key cursor [MATCH pattern] [COUNT count]: cursor checked before the key,
    options after it. A listpack comes back whole in score order with cursor 0, as
    Redis does for compact encodings; scores are bulk strings in both protocols, in
    the %.17g text Redis stores or prints (ld2string of the double)."""
    cursor = parse_cursor(argv[2])
    zs = _lookup(client, argv[1])
    if zs is None:
        return [b"0", []]
    opts = parse_options(argv, 3)
    if zs.listpack:
        next_cursor, batch = 0, [member for _, member in zs.order]
    else:
        next_cursor, batch = scan(zs.scores, cursor, opts.count)
    if opts.match is not None:
        batch = [member for member in batch if opts.match(member)]
    out = []
    scores = zs.scores
    for member in batch:
        out.append(member)
        out.append(format_double(scores[member]))
    return [b"%d" % next_cursor, out]
