"""List commands (Redis's t_list.c), except the blocking ones (BLPOP & co. live with
the client-blocking machinery).

The value is a ListValue (a deque, see datatypes/listtype.py). As in Redis, argument
errors are reported in the order t_list.c checks them — some commands parse their
integers before looking the key up (LRANGE, LTRIM, LREM), others after (LINDEX, LSET) —
and a list that becomes empty is deleted, never kept.

Pushes and pops account their elements' cost (cost.touched_by) rather than have the
list costed again, and the one-element forms (`LPUSH key x`, `LPOP key`: what
redis-benchmark sends) take a path of their own once the key holds a list.
"""

from itertools import islice
from operator import indexOf

from ..datatypes.listtype import ListValue
from ..keyspace.cost import LIST_ELEMENT, touched_by
from ..protocol import errors
from ..protocol.encode import NULL_ARRAY, OK, Raw
from ..protocol.errors import CommandError
from ..protocol.numbers import LLONG_MIN, parse_int, to_int
from ..propagate import rewrite_mpop
from .registry import command
from ..notify import notify, notify_event


# -- shared helpers (pushGenericCommand, popGenericCommand, lmoveGenericCommand...) -------
# pop_many, parse_where, lmove_generic, parse_mpop and mpop are public
# for the blocking variants (BLPOP, BLMOVE, BLMPOP...), which serve clients the same way.


def elements_cost(values) -> int:
    """What values cost in a list (cost.LIST_ELEMENT)."""
    return sum(map(len, values)) + LIST_ELEMENT * len(values)


def _push(client, argv: list[bytes], head: bool, only_existing: bool) -> int:
    """LPUSH/RPUSH/LPUSHX/RPUSHX: push argv[2:] one by one, reply the new length."""
    db = client.db
    key = argv[1]
    lst = db.lookup_typed(key, ListValue)
    if lst is None:
        if only_existing:
            return 0
        # LPUSH k a b c pushes one at a time, leaving c b a.
        lst = ListValue(reversed(argv[2:]) if head else argv[2:])
        db.set(key, lst)
        notify(client, "lpush" if head else "rpush", key)
        return len(lst)
    values = argv[2:]
    if head:
        lst.extendleft(values)  # one at a time, like LPUSH's loop
    else:
        lst.extend(values)
    touched_by(db, key, elements_cost(values))
    notify(client, "lpush" if head else "rpush", key)
    return len(lst)


def _push_one(client, argv: list[bytes], head: bool) -> int:
    """LPUSH/RPUSH key element onto an existing list; anything else (a new key, a
    packed or expired value, WRONGTYPE) goes the general way."""
    db = client.db
    key = argv[1]
    lst = db.data.get(key) if not db.expires else db.lookup(key)
    if type(lst) is not ListValue:
        return _push(client, argv, head, False)
    value = argv[2]
    if head:
        lst.appendleft(value)
    else:
        lst.append(value)
    touched_by(db, key, len(value) + LIST_ELEMENT)
    if client.server.notifier.classes:
        notify(client, "lpush" if head else "rpush", key)
    return len(lst)


def pop_many(lst: ListValue, count: int, head: bool) -> list[bytes]:
    """Pop up to count elements in pop order (RPOP's come tail first)."""
    n = len(lst)
    if count >= n:
        out = list(lst)
        if not head:
            out.reverse()
        lst.clear()
        return out
    take = lst.popleft if head else lst.pop
    return [take() for _ in range(count)]


def after_pop(db, key: bytes, lst: ListValue, popped) -> None:
    """after_removal() for elements popped from a list: the key goes once the list is
    empty; otherwise the popped elements' cost leaves the key's."""
    if lst:
        touched_by(db, key, -elements_cost(popped))
    else:
        db.delete(key)
        notify_event(db.server, db, "del", key)


def parse_where(raw: bytes) -> bool:
    """getListPositionFromObjectOrReply(): LEFT → head (True), RIGHT → tail (False)."""
    lowered = raw.lower()
    if lowered == b"left":
        return True
    if lowered == b"right":
        return False
    raise CommandError(errors.SYNTAX)


def _positive(raw: bytes, message: str) -> int:
    """getPositiveLongFromObjectOrReply(): >= 0, the same message for non-integers."""
    value = to_int(raw)
    if value is None or value < 0:
        raise CommandError(message)
    return value


def _at_least_one(raw: bytes, message: str) -> int:
    """getRangeLongFromObjectOrReply(1, LONG_MAX, message) (LMPOP numkeys / COUNT)."""
    value = to_int(raw)
    if value is None or value < 1:
        raise CommandError(message)
    return value


def _clamp_range(start: int, end: int, n: int) -> tuple[int, int] | None:
    """LRANGE/LTRIM index arithmetic: negative indexes from the end, start clamped to 0,
    end to n-1; None when the range is empty."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        return None
    if end >= n:
        end = n - 1
    return start, end


def lmove_generic(client, src: bytes, dst: bytes, from_head: bool, to_head: bool):
    """lmoveGenericCommand(): pop from src, push to dst, reply the element."""
    db = client.db
    source = db.lookup_typed(src, ListValue)
    if source is None:
        return None
    # The destination's type is checked before anything is popped.
    target = db.lookup_typed(dst, ListValue)
    value = source.popleft() if from_head else source.pop()
    cost = len(value) + LIST_ELEMENT
    if target is None:
        db.set(dst, ListValue((value,)))
    else:
        if to_head:
            target.appendleft(value)
        else:
            target.append(value)
        touched_by(db, dst, cost)
    notify(client, "lpush" if to_head else "rpush", dst)
    # Checked after the push: with src == dst a one-element list rotates onto itself.
    notify(client, "lpop" if from_head else "rpop", src)
    if source:
        touched_by(db, src, -cost)
    else:
        db.delete(src)
        notify_event(db.server, db, "del", src)
    return value


# -- push and pop ---------------------------------------------------------------------


@command("lpush")
def lpush(client, argv):
    if len(argv) == 3:
        return _push_one(client, argv, True)
    return _push(client, argv, True, False)


@command("rpush")
def rpush(client, argv):
    if len(argv) == 3:
        return _push_one(client, argv, False)
    return _push(client, argv, False, False)


@command("lpushx")
def lpushx(client, argv):
    return _push(client, argv, True, True)


@command("rpushx")
def rpushx(client, argv):
    return _push(client, argv, False, True)


def _pop(client, argv: list[bytes], head: bool, name: str):
    """popGenericCommand(): LPOP/RPOP key [count]."""
    argc = len(argv)
    if argc > 3:
        # The command table says arity -2; t_list.c itself rejects a third argument.
        raise CommandError(errors.wrong_arity(name))
    db = client.db
    key = argv[1]
    if argc == 2:
        lst = db.data.get(key) if not db.expires else db.lookup(key)
        if type(lst) is not ListValue:
            lst = db.lookup_typed(key, ListValue)  # WRONGTYPE, or a packed list unpacked
            if lst is None:
                return None
        value = lst.popleft() if head else lst.pop()
        if client.server.notifier.classes:
            notify(client, name, key)
        if lst:
            touched_by(db, key, -len(value) - LIST_ELEMENT)
        else:
            db.delete(key)
            notify_event(db.server, db, "del", key)
        return value
    count = _positive(argv[2], errors.MUST_BE_POSITIVE)
    lst = db.lookup_typed(key, ListValue)
    if lst is None:
        # With a count the reply is an array, so a missing key is a null array (*-1).
        return NULL_ARRAY
    if count == 0:
        return []
    out = pop_many(lst, count, head)
    notify(client, name, key)
    after_pop(db, key, lst, out)
    return out


@command("lpop")
def lpop(client, argv):
    return _pop(client, argv, True, "lpop")


@command("rpop")
def rpop(client, argv):
    return _pop(client, argv, False, "rpop")


@command("lmove")
def lmove(client, argv):
    from_head = parse_where(argv[3])
    to_head = parse_where(argv[4])
    return lmove_generic(client, argv[1], argv[2], from_head, to_head)


@command("rpoplpush")
def rpoplpush(client, argv):
    return lmove_generic(client, argv[1], argv[2], False, True)


def parse_mpop(argv: list[bytes], numkeys_idx: int) -> tuple[list[bytes], bool, int]:
    """lmpopGenericCommand()'s parsing, shared with BLMPOP (numkeys after the timeout):
    numkeys key [key ...] LEFT|RIGHT [COUNT count] → (keys, head, count)."""
    numkeys = _at_least_one(argv[numkeys_idx], errors.NUMKEYS_POSITIVE)
    where_idx = numkeys_idx + numkeys + 1
    if where_idx >= len(argv):
        raise CommandError(errors.SYNTAX)
    head = parse_where(argv[where_idx])
    count = -1
    j = where_idx + 1
    while j < len(argv):
        # COUNT may appear once, and needs its value.
        if count == -1 and argv[j].lower() == b"count" and j + 1 < len(argv):
            count = _at_least_one(argv[j + 1], errors.COUNT_POSITIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    return argv[numkeys_idx + 1:where_idx], head, 1 if count == -1 else count


def mpop(db, keys: list[bytes], head: bool, count: int):
    """Pop from the first non-empty list: [key, [elements]], or None if all are empty."""
    for key in keys:
        lst = db.lookup_typed(key, ListValue)
        if lst is None:
            continue
        out = pop_many(lst, count, head)
        notify_event(db.server, db, "lpop" if head else "rpop", key)
        after_pop(db, key, lst, out)
        return [key, out]
    return None


@command("lmpop", rewrite=rewrite_mpop((b"LPOP", b"RPOP")))
def lmpop(client, argv):
    """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]."""
    keys, head, count = parse_mpop(argv, 1)
    reply = mpop(client.db, keys, head, count)
    return NULL_ARRAY if reply is None else reply


# -- reading --------------------------------------------------------------------------


@command("llen")
def llen(client, argv):
    lst = client.db.lookup_typed(argv[1], ListValue)
    return 0 if lst is None else len(lst)


@command("lindex")
def lindex(client, argv):
    lst = client.db.lookup_typed(argv[1], ListValue)
    if lst is None:
        return None  # the key is looked up before the index is parsed
    index = parse_int(argv[2])
    if -len(lst) <= index < len(lst):
        return lst[index]
    return None


@command("lrange")
def lrange(client, argv):
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    lst = client.db.lookup_typed(argv[1], ListValue)
    if lst is None:
        return []
    span = _clamp_range(start, end, len(lst))
    if span is None:
        return _EMPTY_ARRAY
    return bulk_array(lst.range(*span))


_EMPTY_ARRAY = Raw(b"*0\r\n")  # the same bytes in RESP2 and RESP3
# "$<length>" of the bulk strings up to 1 KB long: a lookup instead of a format each.
_BULK_HEADERS = [b"$%d" % n for n in range(1024)]
_bulk_header = _BULK_HEADERS.__getitem__


def bulk_array(items: list[bytes]) -> Raw:
    """The RESP array of bulk strings items (the same bytes in RESP2 and RESP3), built
    by one join. Items of one length (ids, hashes, fixed-size records...) are joined
    with "\r\n$len\r\n" between them; otherwise "*n", then "$len" and the item for
    each, separated by CRLF — two pieces an item, their headers looked up rather than
    formatted."""
    n = len(items)
    if not n:
        return _EMPTY_ARRAY
    lengths = list(map(len, items))
    first = lengths[0]
    if lengths.count(first) == n:
        return Raw(b"*%d\r\n$%d\r\n%s\r\n" % (n, first, (b"\r\n$%d\r\n" % first).join(items)))
    parts = [b""] * (2 * n + 2)
    parts[0] = b"*%d" % n
    try:
        parts[1:-1:2] = map(_bulk_header, lengths)
    except IndexError:  # an item of 1 KB or more
        parts[1:-1:2] = map(b"$%d".__mod__, lengths)
    parts[2:-1:2] = items
    return Raw(b"\r\n".join(parts))


@command("lpos")
def lpos(client, argv):
    """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]."""
    rank, count, maxlen = 1, -1, 0  # count -1: option not given
    j = 3
    argc = len(argv)
    while j < argc:
        opt = argv[j].lower()
        if j + 1 >= argc:
            raise CommandError(errors.SYNTAX)
        value = argv[j + 1]
        if opt == b"rank":
            rank = parse_int(value)
            if rank == 0:
                raise CommandError(errors.LPOS_RANK_ZERO)
        elif opt == b"count":
            count = _positive(value, errors.LPOS_COUNT_NEGATIVE)
        elif opt == b"maxlen":
            maxlen = _positive(value, errors.LPOS_MAXLEN_NEGATIVE)
        else:
            raise CommandError(errors.SYNTAX)
        j += 2
    lst = client.db.lookup_typed(argv[1], ListValue)
    if lst is None:
        return [] if count != -1 else None
    reverse = rank < 0
    limit = count
    if rank == LLONG_MIN:
        # Redis negates the rank in a C long: -LLONG_MIN stays negative, so every
        # match counts as "at or past the rank" and the COUNT limit is never reached.
        rank, limit = 1, 0
    elif reverse:
        rank = -rank
    n = len(lst)
    it = reversed(lst) if reverse else iter(lst)
    if maxlen:
        it = islice(it, maxlen)
    found = _find_matches(it, argv[2], rank, limit if count != -1 else 1)
    if reverse:
        found = [n - 1 - i for i in found]
    if count != -1:
        return found
    return found[0] if found else None


def _find_matches(it, element: bytes, rank: int, limit: int) -> list[int]:
    """Offsets (in iteration order) of the matches from the rank-th on, at most limit
    of them (0 = all). operator.indexOf scans in C and leaves the iterator just past
    the match, so consecutive searches continue where the last one stopped."""
    found: list[int] = []
    pos = -1
    matches = 0
    while True:
        try:
            pos += indexOf(it, element) + 1
        except ValueError:
            return found
        matches += 1
        if matches >= rank:
            found.append(pos)
            if limit and len(found) >= limit:
                return found


# -- in-place changes -----------------------------------------------------------------


@command("lset")
def lset(client, argv):
    db = client.db
    key = argv[1]
    lst = db.lookup_typed(key, ListValue)
    if lst is None:
        raise CommandError(errors.NO_SUCH_KEY)
    index = parse_int(argv[2])
    if not -len(lst) <= index < len(lst):
        raise CommandError(errors.OUT_OF_RANGE)
    old = lst[index]
    lst[index] = argv[3]
    touched_by(db, key, len(argv[3]) - len(old))
    notify(client, "lset", key)
    return OK


@command("ltrim")
def ltrim(client, argv):
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    db = client.db
    key = argv[1]
    lst = db.lookup_typed(key, ListValue)
    if lst is None:
        return OK
    span = _clamp_range(start, end, len(lst))
    if span is None:
        notify(client, "ltrim", key)
        db.delete(key)  # an empty range trims everything away
        notify(client, "del", key)
        return OK
    if span != (0, len(lst) - 1):
        lst.keep_range(*span)
    # Redis signals the key as modified even when nothing was trimmed.
    db.touched(key)
    notify(client, "ltrim", key)
    return OK


@command("lrem")
def lrem(client, argv):
    """LREM key count element: count > 0 from the head, < 0 from the tail, 0 all."""
    to_remove = parse_int(argv[2])
    db = client.db
    key = argv[1]
    lst = db.lookup_typed(key, ListValue)
    if lst is None:
        return 0
    element = argv[3]
    n = len(lst)
    if to_remove < 0:
        found = _find_matches(reversed(lst), element, 1, -to_remove)
        indexes = [n - 1 - i for i in reversed(found)]
    else:
        indexes = _find_matches(iter(lst), element, 1, to_remove)
    if not indexes:
        return 0
    notify(client, "lrem", key)
    if len(indexes) == n:
        db.delete(key)
        notify(client, "del", key)
    else:
        lst.remove_indexes(indexes)
        touched_by(db, key, -(len(element) + LIST_ELEMENT) * len(indexes))
    return len(indexes)


@command("linsert")
def linsert(client, argv):
    """LINSERT key BEFORE|AFTER pivot element: -1 when the pivot is missing."""
    where = argv[2].lower()
    if where == b"after":
        after = True
    elif where == b"before":
        after = False
    else:
        raise CommandError(errors.SYNTAX)
    db = client.db
    key = argv[1]
    lst = db.lookup_typed(key, ListValue)
    if lst is None:
        return 0
    try:
        index = lst.index(argv[3])
    except ValueError:
        return -1
    lst.insert(index + 1 if after else index, argv[4])
    touched_by(db, key, len(argv[4]) + LIST_ELEMENT)
    notify(client, "linsert", key)
    return len(lst)
