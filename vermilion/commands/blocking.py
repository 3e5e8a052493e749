"""The blocking list and sorted-set commands: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
BZPOPMIN, BZPOPMAX, BZMPOP (t_list.c blockingPopGenericCommand / blmoveGenericCommand,
t_zset.c blockingGenericZpopCommand; serving as blocked.c does).

When data is there they act as their non-blocking forms (the helpers of lists.py and
zsets.py) and are propagated as those (BLPOP → LPOP, BLMOVE → LMOVE...). Otherwise the
client blocks (keyspace/blocking.py) with an on_ready callback that serves it from
whichever of its keys became ready; the served pop is propagated there. Inside
MULTI/EXEC or a script they never block: an empty wait answers as a timeout at once.
"""

from ..datatypes.listtype import ListValue
from ..datatypes.zset import ZSet
from ..keyspace.blocking import can_block, parse_timeout_ms
from ..notify import notify_event
from ..propagate import propagate_raw
from ..protocol import errors
from ..protocol.encode import NULL_ARRAY
from ..protocol.errors import CommandError
from ..protocol.numbers import LLONG_MAX, to_int
from .lists import after_pop, lmove_generic, mpop, parse_mpop, parse_where
from .registry import command, rewrite_for
from .zsets import pop_first

_SIDE = {True: b"LEFT", False: b"RIGHT"}
_LIST_POP = {True: b"LPOP", False: b"RPOP"}
_ZSET_POP = {False: b"ZPOPMIN", True: b"ZPOPMAX"}


def _block(client, keys, timeout_ms: int, on_ready, deny_reply=NULL_ARRAY):
    """Block client on keys, or, where blocking is denied, answer as a timeout now."""
    if not can_block(client):
        return deny_reply
    return client.server.blocking.block_client(client, keys, timeout_ms, on_ready)


def _propagate(client, argv: list[bytes]) -> None:
    server = client.server
    if server.propagation.sinks:
        propagate_raw(server, client.db.id, argv)


# -- BLPOP / BRPOP / BLMPOP ----------------------------------------------------------------


def _list_pop(db, key: bytes, head: bool, count: int):
    """Pop from a list: one element (count -1, BLPOP) or up to count (BLMPOP)."""
    lst = db.lookup_typed(key, ListValue)
    if lst is None:
        return None
    if count == -1:
        value = lst.popleft() if head else lst.pop()
        notify_event(db.server, db, "lpop" if head else "rpop", key)
        after_pop(db, key, lst, (value,))
        return [key, value]
    return mpop(db, [key], head, count)


def _serve_list_pop(head: bool, count: int):
    def on_ready(client, key):
        # serveClientBlockedOnList(): from the key that became ready, if it is a list.
        if type(client.db.lookup(key)) is not ListValue:
            return None
        reply = _list_pop(client.db, key, head, count)
        record = [_LIST_POP[head], key]
        if count != -1:
            record.append(b"%d" % len(reply[1]))
        _propagate(client, record)
        return reply

    return on_ready


def _bpop(client, keys: list[bytes], head: bool, timeout_ms: int, count: int):
    """blockingPopGenericCommand(): the first non-empty list in argument order serves
    at once; a key of another type on the way is WRONGTYPE."""
    db = client.db
    for key in keys:
        reply = _list_pop(db, key, head, count)
        if reply is not None:
            return reply
    return _block(client, keys, timeout_ms, _serve_list_pop(head, count))


@command("blpop")
def blpop(client, argv):
    timeout = parse_timeout_ms(argv[-1])
    return _bpop(client, argv[1:-1], True, timeout, -1)


@command("brpop")
def brpop(client, argv):
    timeout = parse_timeout_ms(argv[-1])
    return _bpop(client, argv[1:-1], False, timeout, -1)


@command("blmpop")
def blmpop(client, argv):
    """BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]: the arguments
    after the timeout are checked first, as lmpopGenericCommand() does."""
    keys, head, count = parse_mpop(argv, 2)
    timeout = parse_timeout_ms(argv[1])
    return _bpop(client, keys, head, timeout, count)


def _rewrite_pop(db, argv, reply):
    # Served at once: replicated as [LR]POP key (BLMPOP: with the count popped).
    name = argv[0].lower()
    if name == b"blmpop":
        head = argv[3 + int(argv[2])].lower() == b"left"
        return [[_LIST_POP[head], reply[0], b"%d" % len(reply[1])]]
    return [[_LIST_POP[name == b"blpop"], reply[0]]]


# -- BLMOVE / BRPOPLPUSH ---------------------------------------------------------------------


def _serve_move(src: bytes, dst: bytes, from_head: bool, to_head: bool, rpoplpush: bool):
    def on_ready(client, key):
        if type(client.db.lookup(src)) is not ListValue:
            return None
        # A destination of another type: the client gets WRONGTYPE, nothing moves.
        value = lmove_generic(client, src, dst, from_head, to_head)
        record = [b"RPOPLPUSH", src, dst] if rpoplpush else \
            [b"LMOVE", src, dst, _SIDE[from_head], _SIDE[to_head]]
        _propagate(client, record)
        return value

    return on_ready


def _bmove(client, src: bytes, dst: bytes, from_head: bool, to_head: bool, raw_timeout: bytes,
           rpoplpush: bool):
    """blmoveGenericCommand(): an existing source moves at once (LMOVE), else block
    on it; denied blocking answers a null bulk here (addReplyNull), not *-1."""
    timeout = parse_timeout_ms(raw_timeout)
    if client.db.lookup_typed(src, ListValue) is not None:
        return lmove_generic(client, src, dst, from_head, to_head)
    return _block(client, [src], timeout, _serve_move(src, dst, from_head, to_head, rpoplpush),
                  None)


@command("blmove")
def blmove(client, argv):
    from_head = parse_where(argv[3])
    to_head = parse_where(argv[4])
    return _bmove(client, argv[1], argv[2], from_head, to_head, argv[5], False)


@command("brpoplpush")
def brpoplpush(client, argv):
    return _bmove(client, argv[1], argv[2], False, True, argv[3], True)


def _rewrite_blmove(db, argv, reply):
    return [[b"LMOVE", *argv[1:5]]]


def _rewrite_brpoplpush(db, argv, reply):
    return [[b"RPOPLPUSH", argv[1], argv[2]]]


# -- BZPOPMIN / BZPOPMAX / BZMPOP ------------------------------------------------------------


def _zset_reply(popped, count: int):
    """BZPOP[MIN|MAX]: [key, member, score]; BZMPOP: [key, [[member, score], ...]]."""
    key, taken = popped
    if count == -1:
        score, member = taken[0]
        return [key, member, score]
    return [key, [[member, score] for score, member in taken]]


def _serve_zpop(maximum: bool, count: int):
    def on_ready(client, key):
        if type(client.db.lookup(key)) is not ZSet:
            return None
        popped = pop_first(client, [key], 1 if count == -1 else count, maximum)
        record = [_ZSET_POP[maximum], key]
        if count != -1:
            record.append(b"%d" % len(popped[1]))
        _propagate(client, record)
        return _zset_reply(popped, count)

    return on_ready


def _bzpop(client, keys: list[bytes], maximum: bool, timeout_ms: int, count: int):
    popped = pop_first(client, keys, 1 if count == -1 else count, maximum)
    if popped is not None:
        return _zset_reply(popped, count)
    return _block(client, keys, timeout_ms, _serve_zpop(maximum, count))


@command("bzpopmin")
def bzpopmin(client, argv):
    timeout = parse_timeout_ms(argv[-1])
    return _bzpop(client, argv[1:-1], False, timeout, -1)


@command("bzpopmax")
def bzpopmax(client, argv):
    timeout = parse_timeout_ms(argv[-1])
    return _bzpop(client, argv[1:-1], True, timeout, -1)


def _range_long(raw: bytes, message: str) -> int:
    # getRangeLongFromObjectOrReply(c, raw, 1, LONG_MAX, ...).
    value = to_int(raw)
    if value is None or not 1 <= value <= LLONG_MAX:
        raise CommandError(message)
    return value


def parse_zmpop(argv: list[bytes], numkeys_idx: int) -> tuple[list[bytes], bool, int]:
    """zmpopGenericCommand()'s parsing: numkeys key [key ...] MIN|MAX [COUNT count] →
    (keys, maximum, count), count 1 when not given."""
    numkeys = _range_long(argv[numkeys_idx], errors.NUMKEYS_POSITIVE)
    where = numkeys_idx + 1 + numkeys
    if where >= len(argv):
        raise CommandError(errors.SYNTAX)
    side = argv[where].lower()
    if side not in (b"min", b"max"):
        raise CommandError(errors.SYNTAX)
    count = None
    j = where + 1
    while j < len(argv):
        if count is None and argv[j].lower() == b"count" and j + 1 < len(argv):
            count = _range_long(argv[j + 1], errors.COUNT_POSITIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    return argv[numkeys_idx + 1:where], side == b"max", count or 1


@command("bzmpop")
def bzmpop(client, argv):
    """BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]."""
    keys, maximum, count = parse_zmpop(argv, 2)
    timeout = parse_timeout_ms(argv[1])
    return _bzpop(client, keys, maximum, timeout, count)


def _rewrite_zpop(db, argv, reply):
    name = argv[0].lower()
    if name == b"bzmpop":
        maximum = argv[3 + int(argv[2])].lower() == b"max"
        return [[_ZSET_POP[maximum], reply[0], b"%d" % len(reply[1])]]
    return [[_ZSET_POP[name == b"bzpopmax"], reply[0]]]


# Served at once, they replicate as their non-blocking forms (rewriteClientCommandVector).
rewrite_for("blpop", "brpop", "blmpop")(_rewrite_pop)
rewrite_for("blmove")(_rewrite_blmove)
rewrite_for("brpoplpush")(_rewrite_brpoplpush)
rewrite_for("bzpopmin", "bzpopmax", "bzmpop")(_rewrite_zpop)
