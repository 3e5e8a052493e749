"""Stream commands (Redis 7.0's t_stream.c): XADD … XINFO, consumer groups included.

The value is a datatypes.stream.Stream. Every behaviour (argument order, which error
wins, when a consumer is created, how entries_read/lag move) follows t_stream.c of
7.0; the replies are compared byte for byte with redis-server in tests/test_streams.py.

Blocking reads: XREAD/XREADGROUP parse BLOCK; when nothing can be served they call
``serve_blocked_read(client, request, timeout_ms)``, which for now answers as a timed
out read (the null array, as Redis does for a client that cannot block). The blocking
machinery can replace it: ``try_serve(client, request)`` serves a parked request once
its keys change (None while there is still nothing to serve).

Propagation: ``rewrite_for(name)`` declares each ``rewrite(db, argv, reply) ->
list[list[bytes]]`` giving the deterministic records to log (XADD * → the generated id,
XREADGROUP → XCLAIM … FORCE JUSTID per delivered entry + XGROUP SETID, …).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..datatypes.stream import (INVALID_ENTRIES_READ, KEY_MASK, KEY_MUL, MAX64, MAX_ID, Nack,
                                Stream, id_bytes, make_id)
from ..keyspace import database as _database
from ..keyspace.cost import STREAM_NODE, recost, stream_entry_cost, touched_by
from ..notify import notify
from ..protocol import errors
from ..protocol.encode import NULL_ARRAY, OK
from ..protocol.errors import CommandError
from ..protocol.numbers import LLONG_MAX, parse_int, to_int
from .registry import command, rewrite_for

def _now() -> int:
    # Looked up on the module each time, so a clock frozen for a script (keyspace
    # database's now_ms replaced) is the one streams see too, as Redis's mstime() in
    # a script is the script's start time.
    return _database.now_ms()


# -- IDs ---------------------------------------------------------------------------------

_SPACES = b" \t\n\v\f\r"


def _string2ull(raw: bytes) -> int | None:
    """util.c string2ull(): string2ll when it works (negatives refused), else strtoull
    (leading spaces, a sign, leading zeros accepted; overflow refused)."""
    value = to_int(raw)
    if value is not None:
        return value if value >= 0 else None
    s = raw.lstrip(_SPACES)
    neg = False
    if s[:1] in (b"+", b"-"):
        neg = s[:1] == b"-"
        s = s[1:]
    if not s or not s.isdigit() or not s.isascii():
        return None
    value = int(s)
    if value > MAX64:
        return None
    return (-value) & MAX64 if neg else value


def _parse_id(raw: bytes, missing_seq: int = 0, strict: bool = True,
              allow_seq_star: bool = False) -> tuple[int, bool]:
    """streamGenericParseIDOrReply(): (id, seq_given). `-`/`+` only when not strict;
    `<ms>-*` only for XADD (seq_given False)."""
    if len(raw) > 127:
        raise CommandError(errors.STREAM_INVALID_ID)
    if raw == b"-" or raw == b"+":
        if strict:
            raise CommandError(errors.STREAM_INVALID_ID)
        return (0 if raw == b"-" else MAX_ID), True
    ms_part, dash, seq_part = raw.partition(b"-")
    ms = _string2ull(ms_part)
    if ms is None:
        raise CommandError(errors.STREAM_INVALID_ID)
    if not dash:
        return make_id(ms, missing_seq), True
    if allow_seq_star and seq_part == b"*":
        return make_id(ms, 0), False
    seq = _string2ull(seq_part)
    if seq is None:
        raise CommandError(errors.STREAM_INVALID_ID)
    return make_id(ms, seq), True


def parse_strict_id(raw: bytes, missing_seq: int = 0) -> int:
    return _parse_id(raw, missing_seq)[0]


def _parse_interval_id(raw: bytes, missing_seq: int) -> tuple[int, bool]:
    """streamParseIntervalIDOrReply(): `(id` is exclusive (and strict)."""
    if len(raw) > 1 and raw[0] == 40:  # '('
        return _parse_id(raw[1:], missing_seq)[0], True
    return _parse_id(raw, missing_seq, strict=False)[0], False


def _parse_range(start_raw: bytes, end_raw: bytes) -> tuple[int, int]:
    """Start/end of XRANGE, XPENDING: exclusive bounds move by one (streamIncrID /
    streamDecrID), with Redis's error at the ends of the ID space."""
    start, ex = _parse_interval_id(start_raw, 0)
    if ex:
        if start == MAX_ID:
            raise CommandError(errors.STREAM_INVALID_START)
        start += 1  # streamIncrID: ms << 64 | seq, so the seq overflows into ms
    end, ex = _parse_interval_id(end_raw, MAX64)
    if ex:
        if end == 0:
            raise CommandError(errors.STREAM_INVALID_END)
        end -= 1
    return start, end


def _key_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _fmt(template: str, *parts: bytes) -> str:
    return template.format(*(_key_text(p) for p in parts))


# -- reading helpers ---------------------------------------------------------------------


def _stream(db, key: bytes) -> Stream | None:
    return db.lookup_typed(key, Stream)


def _entry(s: Stream, sid: int) -> list:
    return [id_bytes(sid), list(s.entries[sid])]


def _entries(s: Stream, start: int, end: int, count: int, rev: bool = False) -> list:
    """streamReplyWithRange without a group: count 0 means all."""
    out = []
    table = s.table
    for sid in s.range(start, end, rev):
        out.append([id_bytes(sid), list(table[sid * KEY_MUL & KEY_MASK])])
        if len(out) == count:
            break
    return out


def _node_limits(client) -> tuple[int, int]:
    values = client.server.config.values
    return values.get("stream-node-max-bytes", 4096), values.get("stream-node-max-entries", 100)


def _bump_dirty(client, n: int = 1) -> None:
    client.server.dirty += n


def _group_or_error(s: Stream | None, key: bytes, group: bytes):
    g = s.groups.get(group) if s is not None else None
    if g is None:
        raise CommandError(_fmt(errors.STREAM_NOGROUP, key, group))
    return g


# -- XADD / XTRIM ------------------------------------------------------------------------


@dataclass
class TrimArgs:
    maxlen: int | None = None
    minid: int | None = None
    approx: bool = False
    limit: int = 0
    limit_given: bool = False
    strategy_idx: int = 0  # index of the MAXLEN/MINID value in argv
    nomkstream: bool = False
    id: int | None = None
    seq_given: bool = True
    idpos: int = 0


def _parse_add_or_trim(client, argv: list[bytes], xadd: bool) -> TrimArgs:
    """streamParseAddOrTrimArgsOrReply()."""
    if xadd and argv[2] == b"*":
        return _PLAIN_XADD  # the common `XADD key * field value ...`: nothing to parse
    a = TrimArgs()
    n = len(argv)
    i = 2
    while i < n:
        moreargs = n - 1 - i
        opt = argv[i]
        low = opt.lower()
        if xadd and opt == b"*":
            break
        if (low == b"maxlen" or low == b"minid") and moreargs:
            if a.maxlen is not None or a.minid is not None:
                raise CommandError(errors.STREAM_MAXLEN_AND_MINID)
            a.approx = False
            nxt = argv[i + 1]
            if moreargs >= 2 and nxt == b"~":
                a.approx = True
                i += 1
            elif moreargs >= 2 and nxt == b"=":
                i += 1
            if low == b"maxlen":
                maxlen = parse_int(argv[i + 1])
                if maxlen < 0:
                    raise CommandError(errors.STREAM_MAXLEN_NEGATIVE)
                a.maxlen = maxlen
            else:
                a.minid = parse_strict_id(argv[i + 1])
            i += 1
            a.strategy_idx = i
        elif low == b"limit" and moreargs:
            limit = parse_int(argv[i + 1])
            if limit < 0:
                raise CommandError(errors.STREAM_LIMIT_NEGATIVE)
            a.limit = limit
            a.limit_given = True
            i += 1
        elif xadd and low == b"nomkstream":
            a.nomkstream = True
        elif xadd:
            a.id, a.seq_given = _parse_id(opt, allow_seq_star=True)
            break
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    a.idpos = i
    no_strategy = a.maxlen is None and a.minid is None
    if a.limit and no_strategy:
        raise CommandError(errors.STREAM_LIMIT_NO_STRATEGY)
    if not xadd and no_strategy:
        raise CommandError(errors.XTRIM_NO_STRATEGY)
    if client.loading or "M" in client.flags:
        # mustObeyClient(): the master's stream and the AOF carry the exact result
        # ("MAXLEN = <len>", LIMIT left in place), trimmed without a node budget.
        a.limit = 0
    elif a.limit_given:
        if not a.approx:
            raise CommandError(errors.STREAM_LIMIT_NO_APPROX)
    elif a.approx:
        # No LIMIT with ~: 100 nodes' worth of entries at most, as Redis caps the work.
        entries = client.server.config.values.get("stream-node-max-entries", 100)
        a.limit = 100 * entries
        if a.limit <= 0 or a.limit > 10000:
            a.limit = 10000
    else:
        a.limit = 0
    return a


_PLAIN_XADD = TrimArgs(idpos=2)  # shared and never mutated
_dict_size = dict.__sizeof__  # sys.getsizeof less the constant GC header, without its lookup


def _trim(s: Stream, a: TrimArgs) -> int:
    if a.maxlen is None and a.minid is None:
        return 0
    return s.trim(a.maxlen, a.minid, a.approx, a.limit)


@command("xadd")
def xadd(client, argv):
    """XADD key * field value [field value ...] to an existing stream, the usual XADD,
    is answered here; everything else (options, an explicit id, a new key, WRONGTYPE,
    an exhausted id) by _xadd()."""
    if argv[2] != b"*" or not len(argv) & 1 or len(argv) < 5:
        return _xadd(client, argv)
    db = client.db
    key = argv[1]
    s = db.data.get(key) if not db.expires else db.lookup(key)
    if type(s) is not Stream:
        return _xadd(client, argv)
    last = s.last_id
    if last == MAX_ID:
        return _xadd(client, argv)
    ms = _database.now_ms()
    if ms > (last >> 64):
        sid = ms << 64
        reply = b"%d-0" % ms
    else:
        sid = last + 1
        reply = b"%d-%d" % (sid >> 64, sid & MAX64)
    fields = tuple(argv[3:])
    values = client.server.config.values
    table = s.table
    size = _dict_size(table)
    nodes = len(s.nodes)
    s.append(sid, fields, values.get("stream-node-max-bytes", 4096),
             values.get("stream-node-max-entries", 100))
    touched_by(db, key, _dict_size(table) - size + stream_entry_cost(fields)
               + (STREAM_NODE if len(s.nodes) != nodes else 0))
    if client.server.notifier.classes:
        notify(client, "xadd", key)
    return reply


def _xadd(client, argv):
    a = _parse_add_or_trim(client, argv, True)
    field_pos = a.idpos + 1
    nfields = len(argv) - field_pos
    if nfields < 2 or nfields % 2:
        raise CommandError(errors.wrong_arity("xadd"))
    if a.id is not None and a.seq_given and a.id == 0:
        raise CommandError(errors.XADD_ID_ZERO)
    db = client.db
    key = argv[1]
    s = _stream(db, key)
    created = False
    if s is None:
        if a.nomkstream:
            return None
        s = Stream()
        created = True
    if s.last_id == MAX_ID:
        raise CommandError(errors.STREAM_EXHAUSTED)
    last = s.last_id
    if a.id is None:
        ms = _now()
        sid = make_id(ms, 0) if ms > (last >> 64) else last + 1
    elif not a.seq_given and (a.id >> 64) == (last >> 64):
        if (last & MAX64) == MAX64:
            # 7.0.15 fails here without setting errno to EDOM, so xaddCommand picks
            # its other message.
            raise CommandError(errors.STREAM_ELEMENTS_TOO_LARGE)
        sid = last + 1
    else:
        sid = a.id
    if sid <= last:
        raise CommandError(errors.XADD_ID_TOO_SMALL)
    max_bytes, max_entries = _node_limits(client)
    fields = tuple(argv[field_pos:])
    if created:
        s.append(sid, fields, max_bytes, max_entries)
        db.set(key, s)
    else:
        # The entry's cost is added to the key's, not the stream costed again.
        table = s.table
        size = _dict_size(table)
        nodes = len(s.nodes)
        s.append(sid, fields, max_bytes, max_entries)
        touched_by(db, key, _dict_size(table) - size + stream_entry_cost(fields)
                   + (STREAM_NODE if len(s.nodes) != nodes else 0))
    notify(client, "xadd", key)
    if a is not _PLAIN_XADD and _trim(s, a):
        recost(db, key)  # what the trimming freed (the change was counted once)
        notify(client, "xtrim", key)
    return id_bytes(sid)


@command("xtrim")
def xtrim(client, argv):
    a = _parse_add_or_trim(client, argv, False)
    db = client.db
    s = _stream(db, argv[1])
    if s is None:
        return 0
    deleted = _trim(s, a)
    if deleted:
        db.touched(argv[1])
        _bump_dirty(client, deleted - 1)
        notify(client, "xtrim", argv[1])
    return deleted


# -- plain reads and deletes -------------------------------------------------------------


@command("xlen")
def xlen(client, argv):
    s = _stream(client.db, argv[1])
    return len(s.table) if s is not None else 0


def _xrange(client, argv, rev: bool):
    start_raw, end_raw = (argv[3], argv[2]) if rev else (argv[2], argv[3])
    start, end = _parse_range(start_raw, end_raw)
    count = -1
    j = 4
    n = len(argv)
    while j < n:
        if argv[j].lower() == b"count" and j + 1 < n:
            count = max(parse_int(argv[j + 1]), 0)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    s = _stream(client.db, argv[1])
    if s is None:
        return []
    if count == 0:
        return NULL_ARRAY  # xrangeGenericCommand: COUNT 0 answers the null array
    return _entries(s, start, end, 0 if count == -1 else count, rev)


@command("xrange")
def xrange_(client, argv):
    return _xrange(client, argv, False)


@command("xrevrange")
def xrevrange(client, argv):
    return _xrange(client, argv, True)


@command("xdel")
def xdel(client, argv):
    db = client.db
    s = _stream(db, argv[1])
    if s is None:
        return 0
    ids = [parse_strict_id(raw) for raw in argv[2:]]  # all or nothing, as Redis
    deleted = 0
    first_deleted = False
    for sid in ids:
        if s.delete(sid):
            if sid == s.first_id:
                first_deleted = True
            if sid > s.max_deleted_id:
                s.max_deleted_id = sid
            deleted += 1
    if deleted:
        if not s.table:
            s.first_id = 0
        elif first_deleted:
            s.first_id = s.ids[0]
        db.touched(argv[1])
        _bump_dirty(client, deleted - 1)
        notify(client, "xdel", argv[1])
    return deleted


@command("xsetid")
def xsetid(client, argv):
    sid = parse_strict_id(argv[2])
    entries_added = -1
    max_xdel = 0
    i, n = 3, len(argv)
    while i < n:
        moreargs = n - 1 - i
        opt = argv[i].lower()
        if opt == b"entriesadded" and moreargs:
            entries_added = parse_int(argv[i + 1])
            if entries_added < 0:
                raise CommandError(errors.XSETID_ENTRIES_ADDED_NEGATIVE)
        elif opt == b"maxdeletedid" and moreargs:
            max_xdel = parse_strict_id(argv[i + 1])
            if sid < max_xdel:
                raise CommandError(errors.XSETID_SMALLER_THAN_MAXDELETED_ARG)
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    db = client.db
    s = _stream(db, argv[1])
    if s is None:
        raise CommandError(errors.NO_SUCH_KEY)
    # 7.0.15 has no check against the current max_deleted_entry_id (7.2 added one).
    if s.table:
        if sid < s.last_valid_id():
            raise CommandError(errors.XSETID_SMALLER_THAN_TOP)
        if entries_added != -1 and len(s.table) > entries_added:
            raise CommandError(errors.XSETID_ENTRIES_ADDED_SMALL)
    s.last_id = sid
    if entries_added != -1:
        s.entries_added = entries_added
    if max_xdel:
        s.max_deleted_id = max_xdel
    db.touched(argv[1])
    notify(client, "xsetid", argv[1])
    return OK


# -- XREAD / XREADGROUP ------------------------------------------------------------------

GT_ID = object()  # the ">" of XREADGROUP, resolved against the group when served
_MAX_ID_TEXT = b"18446744073709551615-18446744073709551615"  # the same as ">"


@dataclass
class ReadRequest:
    """A parsed XREAD/XREADGROUP: what a blocked client waits for."""

    keys: list
    ids: list  # int ids ("$" already resolved), or GT_ID
    count: int = 0
    group: bytes | None = None
    consumer: bytes | None = None
    noack: bool = False
    timeout_ms: int = -1  # -1: no BLOCK; 0: forever; else absolute unix ms


def _parse_read(argv: list[bytes], xreadgroup: bool,
                script: bool = False) -> tuple[ReadRequest, int]:
    n = len(argv)
    timeout = -1
    count = 0
    streams_arg = 0
    group = consumer = None
    noack = False
    i = 1
    while i < n:
        moreargs = n - i - 1
        opt = argv[i].lower()
        if opt == b"block" and moreargs:
            if script:
                # xreadCommand(): refused from Lua outright (not merely never blocking, as
                # other blocking commands under CLIENT_DENY_BLOCKING), argv[0] as called.
                raise CommandError("ERR %s command is not allowed with BLOCK option from scripts"
                                   % argv[0].decode("utf-8", "replace"))
            i += 1
            timeout = to_int(argv[i])
            if timeout is None:
                raise CommandError(errors.TIMEOUT_NOT_INTEGER)
            if timeout < 0:
                raise CommandError(errors.TIMEOUT_NEGATIVE)
        elif opt == b"count" and moreargs:
            i += 1
            count = max(parse_int(argv[i]), 0)
        elif opt == b"streams" and moreargs:
            streams_arg = i + 1
            if (n - streams_arg) % 2:
                raise CommandError(errors.XREAD_UNBALANCED)
            break
        elif opt == b"group" and moreargs >= 2:
            if not xreadgroup:
                raise CommandError(errors.XREAD_GROUP_OPTION)
            group, consumer = argv[i + 1], argv[i + 2]
            i += 2
        elif opt == b"noack":
            if not xreadgroup:
                raise CommandError(errors.XREAD_NOACK_OPTION)
            noack = True
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if streams_arg == 0:
        raise CommandError(errors.SYNTAX)
    if xreadgroup and group is None:
        raise CommandError(errors.XREADGROUP_MISSING_GROUP)
    nstreams = (n - streams_arg) // 2
    req = ReadRequest(argv[streams_arg:streams_arg + nstreams], [], count, group, consumer,
                      noack, timeout)
    return req, streams_arg


def _resolve_ids(client, argv, req: ReadRequest, streams_arg: int) -> list:
    """Parse the IDs, checking types and groups in argument order like xreadCommand."""
    db = client.db
    nstreams = len(req.keys)
    streams = []
    for k, key in enumerate(req.keys):
        raw = argv[streams_arg + nstreams + k]
        s = _stream(db, key)
        if req.group is not None and (s is None or req.group not in s.groups):
            raise CommandError(_fmt(errors.XREADGROUP_NOGROUP, key, req.group))
        streams.append(s)
        if raw == b"$":
            if req.group is not None:
                raise CommandError(errors.XREADGROUP_DOLLAR)
            req.ids.append(s.last_id if s is not None else 0)
        elif raw == b">":
            if req.group is None:
                raise CommandError(errors.XREAD_GT_ID)
            req.ids.append(GT_ID)
        else:
            sid = parse_strict_id(raw)
            # Redis encodes ">" as the maximum ID, so spelling that ID out means ">".
            req.ids.append(GT_ID if sid == MAX_ID and req.group is not None else sid)
    return streams


def _serve_group(client, s: Stream, key: bytes, req: ReadRequest, gt, now: int) -> list | None:
    """One stream of an XREADGROUP: the entries, or None when nothing to serve."""
    group = s.groups[req.group]
    if gt is GT_ID and (not s.table or s.last_valid_id() <= group.last_id):
        return None  # nothing new: Redis does not even create the consumer
    consumer = _consumer_for_read(client, key, group, req.consumer, now)
    if gt is not GT_ID:
        # History: the consumer's own PEL after the given id (delivery counts move,
        # so this is a write to propagate, as Redis counts it dirty).
        _bump_dirty(client)
        return _serve_history(s, consumer, gt + 1 if gt != MAX_ID else gt, req.count, now)
    out = []
    table = s.table
    for sid in s.range(group.last_id + 1, MAX_ID):
        out.append([id_bytes(sid), list(table[sid * KEY_MUL & KEY_MASK])])
        _deliver(s, group, consumer, sid, req.noack, now)
        if len(out) == req.count:
            break
    _bump_dirty(client)
    return out


def _consumer_for_read(client, key: bytes, group, name: bytes, now: int):
    consumer = group.consumers.get(name)
    if consumer is None:  # streamCreateConsumer(SCC_DEFAULT): dirty, notified
        consumer = group.create_consumer(name, now)
        consumer.fresh = True  # for the propagation of a NOACK read
        _bump_dirty(client)
        notify(client, "xgroup-createconsumer", key)
    consumer.seen_time = now
    return consumer


def _deliver(s: Stream, group, consumer, sid: int, noack: bool, now: int) -> None:
    """streamReplyWithRange() with a group: advance last_id/entries_read, add the NACK
    (reassigning it if another consumer had it after an XGROUP SETID)."""
    if sid > group.last_id:
        if group.entries_read != INVALID_ENTRIES_READ and not s.range_has_tombstones(sid):
            group.entries_read += 1
        elif s.entries_added:
            group.entries_read = s.estimate_distance(sid)
        group.last_id = sid
    if noack:
        return
    nack = group.pel.get(sid)
    if nack is None:
        nack = Nack(consumer, now, 1)
        group.pel[sid] = nack
        consumer.pel[sid] = nack
    else:
        old = nack.consumer
        if old is not None:
            old.pel.pop(sid, None)
        nack.consumer = consumer
        nack.delivery_time = now
        nack.delivery_count = 1
        consumer.pel[sid] = nack


def _serve_history(s: Stream, consumer, start: int, count: int, now: int) -> list:
    """streamReplyWithRangeFromConsumerPEL(): deleted entries come back as [id, nil]."""
    out = []
    for sid in consumer.pel.irange(minimum=start):
        if count and len(out) >= count:
            break
        fields = s.entries.get(sid)
        if fields is None:
            out.append([id_bytes(sid), NULL_ARRAY])
        else:
            nack = consumer.pel[sid]
            nack.delivery_time = now
            nack.delivery_count += 1
            out.append([id_bytes(sid), list(fields)])
    return out


class _StreamMap(dict):
    """XREAD's RESP3 map keyed by stream, keeping duplicate keys as Redis emits them."""

    def __init__(self, pairs):
        super().__init__()
        self.pairs = pairs

    def __len__(self):
        return len(self.pairs)

    def items(self):
        return iter(self.pairs)


def _read_reply(client, pairs):
    if client.resp == 3:
        return _StreamMap(pairs)
    return [[k, v] for k, v in pairs]


def try_serve(client, req: ReadRequest, streams=None):
    """Serve req now if any stream has something: the reply, else None. Used for the
    first attempt and by the blocking machinery when a key is signalled."""
    db = client.db
    if streams is None:
        streams = [_stream(db, key) for key in req.keys]
    now = _now()
    pairs = []
    for k, key in enumerate(req.keys):
        s = streams[k]
        gt = req.ids[k]
        if req.group is not None:
            if s is None or req.group not in s.groups:
                continue
            served = _serve_group(client, s, key, req, gt, now)
            if served is None:
                continue
        else:
            if s is None or not s.table or s.last_valid_id() <= gt:
                continue
            served = _entries(s, gt + 1, MAX_ID, req.count)
        pairs.append((key, served))
    if not pairs:
        return None
    return _read_reply(client, pairs)


def serve_blocked_read(client, req: ReadRequest, timeout_ms: int, argv: list[bytes]):
    """Park the client on req.keys (the blocked-clients machinery of BLPOP) until
    try_serve() answers or the timeout (absolute unix ms, 0 = forever) passes; inside
    MULTI or a script it answers the null array at once, as Redis does."""
    from ..keyspace.blocking import block_client
    from ..propagate import propagate

    relative = 0 if timeout_ms == 0 else max(timeout_ms - _now(), 1)

    def on_ready(blocked, key):
        # serveClientsBlockedOnStreamKey(): only the signalled key is served, and only
        # while it holds a stream. A key deleted or replaced by another type leaves an
        # XREAD waiting but ends an XREADGROUP (unblockDeletedStreamReadgroupClients()):
        # its group went with the stream.
        value = blocked.db.lookup(key)
        if type(value) is not Stream:
            if req.group is not None:
                return CommandError("UNBLOCKED the stream key no longer exists")
            return None
        if req.group is not None and req.group not in value.groups:
            return CommandError("NOGROUP the consumer group this client was blocked on "
                                "no longer exists")
        index = req.keys.index(key)
        single = replace(req, keys=[key], ids=[req.ids[index]])
        reply = try_serve(blocked, single, [value])
        if reply is not None and req.group is not None:
            # A served XREADGROUP changed the group: log it like the immediate form.
            propagate(blocked.server, blocked.db, blocked.server.commands.lookup(argv), argv, reply)
        return reply

    return block_client(client, req.keys, relative, on_ready, when_missing=req.group is not None)


def _xread_generic(client, argv, xreadgroup: bool):
    req, streams_arg = _parse_read(argv, xreadgroup, client.script)
    streams = _resolve_ids(client, argv, req, streams_arg)
    reply = try_serve(client, req, streams)
    if reply is not None:
        return reply
    if req.timeout_ms != -1:
        timeout = req.timeout_ms
        if timeout > 0:
            timeout += _now()
        return serve_blocked_read(client, req, timeout, argv)
    return NULL_ARRAY


@command("xread")
def xread(client, argv):
    return _xread_generic(client, argv, False)


@command("xreadgroup")
def xreadgroup(client, argv):
    return _xread_generic(client, argv, True)


# -- XGROUP ------------------------------------------------------------------------------

XGROUP_HELP = [
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
]


def _subcommand_syntax(argv, container: str) -> CommandError:
    return CommandError(errors.SUBCOMMAND_SYNTAX.format(_key_text(argv[1]), container))


def _entries_read_arg(raw: bytes) -> int:
    value = parse_int(raw)
    if value < 0 and value != INVALID_ENTRIES_READ:
        raise CommandError(errors.ENTRIESREAD_INVALID)
    return value


def _xgroup_stream(client, argv, mkstream: bool = False) -> Stream | None:
    s = _stream(client.db, argv[2])
    if s is None and not mkstream:
        raise CommandError(errors.XGROUP_KEY_MUST_EXIST)
    return s


def _xgroup_group(s: Stream, argv):
    g = s.groups.get(argv[3])
    if g is None:
        raise CommandError(_fmt(errors.STREAM_NO_SUCH_GROUP, argv[3], argv[2]))
    return g


@command("xgroup help")
def xgroup_help(client, argv):
    return XGROUP_HELP


@command("xgroup create")
def xgroup_create(client, argv):
    mkstream = False
    entries_read = INVALID_ENTRIES_READ
    i, n = 5, len(argv)
    while i < n:
        opt = argv[i].lower()
        if opt == b"mkstream":
            mkstream = True
            i += 1
        elif opt == b"entriesread" and i + 1 < n:
            entries_read = _entries_read_arg(argv[i + 1])
            i += 2
        else:
            raise _subcommand_syntax(argv, "XGROUP")
    s = _xgroup_stream(client, argv, mkstream)
    if n > 8:
        raise _subcommand_syntax(argv, "XGROUP")
    if argv[4] == b"$":
        sid = s.last_id if s is not None else 0
    else:
        sid = parse_strict_id(argv[4])
    db = client.db
    if s is None:
        s = Stream()
        db.set(argv[2], s)
    name = argv[3]
    if name in s.groups:
        raise CommandError(errors.BUSYGROUP)
    from ..datatypes.stream import Group

    s.groups[name] = Group(name, sid, entries_read)
    db.touched(argv[2])
    notify(client, "xgroup-create", argv[2])
    return OK


@command("xgroup setid")
def xgroup_setid(client, argv):
    n = len(argv)
    entries_read = INVALID_ENTRIES_READ
    if n == 7:
        if argv[5].lower() != b"entriesread":
            raise _subcommand_syntax(argv, "XGROUP")
        entries_read = _entries_read_arg(argv[6])
    elif n != 5:
        raise _subcommand_syntax(argv, "XGROUP")
    s = _xgroup_stream(client, argv)
    g = _xgroup_group(s, argv)
    if argv[4] == b"$":
        sid = s.last_id
    else:
        sid = _parse_id(argv[4], strict=False)[0]
    g.last_id = sid
    g.entries_read = entries_read
    client.db.touched(argv[2])
    notify(client, "xgroup-setid", argv[2])
    return OK


@command("xgroup destroy")
def xgroup_destroy(client, argv):
    s = _xgroup_stream(client, argv)
    if s.groups.pop(argv[3], None) is None:
        return 0
    client.db.touched(argv[2])
    notify(client, "xgroup-destroy", argv[2])
    return 1


@command("xgroup createconsumer")
def xgroup_createconsumer(client, argv):
    s = _xgroup_stream(client, argv)
    g = _xgroup_group(s, argv)
    if argv[4] in g.consumers:
        return 0
    g.create_consumer(argv[4], _now())
    client.db.touched(argv[2])
    notify(client, "xgroup-createconsumer", argv[2])
    return 1


@command("xgroup delconsumer")
def xgroup_delconsumer(client, argv):
    s = _xgroup_stream(client, argv)
    g = _xgroup_group(s, argv)
    consumer = g.consumers.get(argv[4])
    if consumer is None:
        return 0
    pending = len(consumer.pel)
    g.delete_consumer(consumer)
    client.db.touched(argv[2])
    notify(client, "xgroup-delconsumer", argv[2])
    return pending


# -- XACK / XPENDING / XCLAIM / XAUTOCLAIM -----------------------------------------------


@command("xack")
def xack(client, argv):
    db = client.db
    s = _stream(db, argv[1])
    g = s.groups.get(argv[2]) if s is not None else None
    if g is None:
        return 0
    ids = [parse_strict_id(raw) for raw in argv[3:]]
    acked = 0
    for sid in ids:
        nack = g.pel.pop(sid, None)
        if nack is not None:
            nack.consumer.pel.pop(sid, None)
            acked += 1
    if acked:
        _bump_dirty(client, acked)
    return acked


@command("xpending")
def xpending(client, argv):
    n = len(argv)
    if n != 3 and (n < 6 or n > 9):
        raise CommandError(errors.SYNTAX)
    minidle = 0
    consumer_name = None
    if n >= 6:
        idx = 3
        if argv[3].lower() == b"idle":
            minidle = parse_int(argv[4])
            if n < 8:
                raise CommandError(errors.SYNTAX)
            idx += 2
        count = max(parse_int(argv[idx + 2]), 0)
        start, end = _parse_range(argv[idx], argv[idx + 1])
        if idx + 3 < n:
            consumer_name = argv[idx + 3]
    s = _stream(client.db, argv[1])
    g = _group_or_error(s, argv[1], argv[2])
    if n == 3:
        if not g.pel:
            return [0, None, None, NULL_ARRAY]
        owners = [[name, b"%d" % len(c.pel)] for name, c in sorted(g.consumers.items())
                  if c.pel]
        return [len(g.pel), id_bytes(g.pel.peekitem(0)[0]), id_bytes(g.pel.peekitem(-1)[0]),
                owners]
    pel = g.pel
    if consumer_name is not None:
        consumer = g.consumers.get(consumer_name)
        if consumer is None:
            return []
        pel = consumer.pel
    now = _now()
    out = []
    if start > end or not count:
        return out
    for sid in pel.irange(start, end):
        nack = pel[sid]
        if minidle and now - nack.delivery_time < minidle:
            continue
        out.append([id_bytes(sid), nack.consumer.name, max(now - nack.delivery_time, 0),
                    nack.delivery_count])
        if len(out) == count:
            break
    return out


def _claim(g, consumer, sid: int, nack, delivery_time: int, retrycount: int,
           justid: bool) -> None:
    if nack.consumer is not consumer and nack.consumer is not None:
        nack.consumer.pel.pop(sid, None)
    nack.delivery_time = delivery_time
    if retrycount >= 0:
        nack.delivery_count = retrycount
    elif not justid:
        nack.delivery_count += 1
    if nack.consumer is not consumer:
        consumer.pel[sid] = nack
        nack.consumer = consumer


def _drop_nack(g, sid: int) -> None:
    nack = g.pel.pop(sid)
    if nack.consumer is not None:
        nack.consumer.pel.pop(sid, None)


def _claimed_reply(s: Stream, sid: int, justid: bool):
    if justid:
        return id_bytes(sid)
    return _entry(s, sid)


@command("xclaim")
def xclaim(client, argv):
    s = _stream(client.db, argv[1])
    g = _group_or_error(s, argv[1], argv[2])
    minidle = to_int(argv[4])
    if minidle is None:
        raise CommandError(errors.XCLAIM_MIN_IDLE)
    minidle = max(minidle, 0)
    n = len(argv)
    ids = []
    j = 5
    while j < n:
        try:
            ids.append(parse_strict_id(argv[j]))
        except CommandError:
            break
        j += 1
    now = _now()
    force = justid = False
    delivery_time = retrycount = -1
    last_id = 0
    while j < n:
        moreargs = n - 1 - j
        opt = argv[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt in _XCLAIM_VALUE_OPTS and moreargs:
            j += 1
            if opt == b"lastid":
                last_id = parse_strict_id(argv[j])
            else:
                value = to_int(argv[j])
                if value is None:
                    raise CommandError(_XCLAIM_VALUE_OPTS[opt])
                if opt == b"idle":
                    delivery_time = now - value
                elif opt == b"time":
                    delivery_time = value
                else:
                    retrycount = value
        else:
            raise CommandError(errors.XCLAIM_UNKNOWN_OPTION.format(_key_text(argv[j])))
        j += 1
    if last_id > g.last_id:
        g.last_id = last_id
        _bump_dirty(client)
    if delivery_time != -1:
        if delivery_time < 0 or delivery_time > now:
            delivery_time = now
    else:
        delivery_time = now
    consumer = None
    out = []
    for sid in ids:
        nack = g.pel.get(sid)
        if sid not in s.entries:
            if nack is not None:
                _drop_nack(g, sid)
                _bump_dirty(client)
            continue
        if force and nack is None:
            nack = g.pel[sid] = Nack(None, now, 1)
        if nack is None:
            continue
        if nack.consumer is not None and minidle and now - nack.delivery_time < minidle:
            continue
        if consumer is None:
            consumer = g.consumers.get(argv[3])
            if consumer is None:  # streamCreateConsumer(SCC_DEFAULT): dirty, notified
                consumer = g.create_consumer(argv[3], now)
                _bump_dirty(client)
                notify(client, "xgroup-createconsumer", argv[1])
            consumer.seen_time = now
        _claim(g, consumer, sid, nack, delivery_time, retrycount, justid)
        out.append(_claimed_reply(s, sid, justid))
        _bump_dirty(client)
    return out


_XCLAIM_VALUE_OPTS = {
    b"idle": errors.XCLAIM_IDLE,
    b"time": errors.XCLAIM_TIME,
    b"retrycount": errors.XCLAIM_RETRYCOUNT,
    b"lastid": None,
}

_XAUTOCLAIM_MAX_COUNT = LLONG_MAX // 16  # LONG_MAX / max(sizeof(streamID), 10)


@command("xautoclaim")
def xautoclaim(client, argv):
    minidle = to_int(argv[4])
    if minidle is None:
        raise CommandError(errors.XAUTOCLAIM_MIN_IDLE)
    minidle = max(minidle, 0)
    start, ex = _parse_interval_id(argv[5], 0)
    if ex:
        if start == MAX_ID:
            raise CommandError(errors.STREAM_INVALID_START)
        start += 1
    count = 100
    justid = False
    j, n = 6, len(argv)
    while j < n:
        moreargs = n - 1 - j
        opt = argv[j].lower()
        if opt == b"count" and moreargs:
            count = to_int(argv[j + 1])
            if count is None or not 1 <= count <= _XAUTOCLAIM_MAX_COUNT:
                raise CommandError(errors.XAUTOCLAIM_COUNT)
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    s = _stream(client.db, argv[1])
    g = _group_or_error(s, argv[1], argv[2])
    attempts = count * 10
    now = _now()
    consumer = None
    claimed = []
    deleted = []
    pel = g.pel
    cursor = 0
    it = iter(list(pel.irange(minimum=start)))
    pending = next(it, None)
    while pending is not None:
        if attempts == 0 or count == 0:
            break
        attempts -= 1
        sid = pending
        pending = next(it, None)
        nack = pel[sid]
        if sid not in s.entries:
            _drop_nack(g, sid)
            deleted.append(id_bytes(sid))
            count -= 1
            _bump_dirty(client)
            continue
        if minidle and now - nack.delivery_time < minidle:
            continue
        if consumer is None:
            consumer = g.consumers.get(argv[3])
            if consumer is None:  # streamCreateConsumer(SCC_DEFAULT): dirty, notified
                consumer = g.create_consumer(argv[3], now)
                _bump_dirty(client)
                notify(client, "xgroup-createconsumer", argv[1])
            consumer.seen_time = now
        _claim(g, consumer, sid, nack, now, -1, justid)
        claimed.append(_claimed_reply(s, sid, justid))
        count -= 1
        _bump_dirty(client)
    cursor = pending if pending is not None else 0
    return [id_bytes(cursor), claimed, deleted]


# -- XINFO -------------------------------------------------------------------------------

XINFO_HELP = [
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
]


@command("xinfo help")
def xinfo_help(client, argv):
    return XINFO_HELP


def _xinfo_stream_key(client, argv) -> Stream:
    s = _stream(client.db, argv[2])
    if s is None:
        raise CommandError(errors.NO_SUCH_KEY)
    return s


@command("xinfo consumers")
def xinfo_consumers(client, argv):
    s = _xinfo_stream_key(client, argv)
    g = s.groups.get(argv[3])
    if g is None:
        raise CommandError(_fmt(errors.STREAM_NO_SUCH_GROUP, argv[3], argv[2]))
    now = _now()
    return [{b"name": c.name, b"pending": len(c.pel), b"idle": max(now - c.seen_time, 0)}
            for _, c in sorted(g.consumers.items())]


@command("xinfo groups")
def xinfo_groups(client, argv):
    s = _xinfo_stream_key(client, argv)
    return [{b"name": name, b"consumers": len(g.consumers), b"pending": len(g.pel),
             b"last-delivered-id": id_bytes(g.last_id),
             b"entries-read": g.entries_read if g.entries_read != INVALID_ENTRIES_READ else None,
             b"lag": s.group_lag(g)}
            for name, g in sorted(s.groups.items())]


@command("xinfo stream")
def xinfo_stream(client, argv):
    s = _xinfo_stream_key(client, argv)  # xinfoCommand looks the key up before the options
    opts = argv[3:]
    full = bool(opts)
    count = 10
    if opts:
        if len(opts) not in (1, 3) or opts[0].lower() != b"full":
            raise _subcommand_syntax(argv, "XINFO")
        if len(opts) == 3:
            if opts[1].lower() != b"count":
                raise _subcommand_syntax(argv, "XINFO")
            count = parse_int(opts[2])
            if count < 0:
                count = 10
    info = {
        b"length": len(s.table),
        b"radix-tree-keys": len(s.node_keys),
        b"radix-tree-nodes": s.radix_tree_nodes(),
        b"last-generated-id": id_bytes(s.last_id),
        b"max-deleted-entry-id": id_bytes(s.max_deleted_id),
        b"entries-added": s.entries_added,
        b"recorded-first-entry-id": id_bytes(s.first_id),
    }
    if not full:
        info[b"groups"] = len(s.groups)
        info[b"first-entry"] = _entry(s, s.ids[0]) if s.ids else None
        info[b"last-entry"] = _entry(s, s.ids[-1]) if s.ids else None
        return info
    info[b"entries"] = _entries(s, 0, MAX_ID, count)
    info[b"groups"] = [_xinfo_full_group(s, name, g, count)
                       for name, g in sorted(s.groups.items())]
    return info


def _xinfo_full_group(s: Stream, name: bytes, g, count: int) -> dict:
    pending = []
    for sid, nack in g.pel.items():
        if count and len(pending) >= count:
            break
        pending.append([id_bytes(sid), nack.consumer.name, nack.delivery_time,
                        nack.delivery_count])
    consumers = []
    for cname, c in sorted(g.consumers.items()):
        cpel = []
        for sid, nack in c.pel.items():
            if count and len(cpel) >= count:
                break
            cpel.append([id_bytes(sid), nack.delivery_time, nack.delivery_count])
        consumers.append({b"name": cname, b"seen-time": c.seen_time,
                          b"pel-count": len(c.pel), b"pending": cpel})
    return {
        b"name": name,
        b"last-delivered-id": id_bytes(g.last_id),
        b"entries-read": g.entries_read if g.entries_read != INVALID_ENTRIES_READ else None,
        b"lag": s.group_lag(g),
        b"pel-count": len(g.pel),
        b"pending": pending,
        b"consumers": consumers,
    }


# -- propagation -------------------------------------------------------------------------


def _rewrite_xadd(db, argv, reply):
    """xaddCommand(): a "~" trim goes out as "=" with the resulting length (MAXLEN) or
    first id (MINID) in place, everything else as sent (LIMIT too: the master's and the
    AOF's clients ignore it); a generated id is written in place of `*` / `<ms>-*`."""
    if reply is None:
        return []  # NOMKSTREAM on a missing key
    out = list(argv)
    _rewrite_approx_trim(db, out, xadd=True)
    idpos = _idpos(out)
    if out[idpos] != reply:
        out[idpos] = reply
    return [out]


def _rewrite_xtrim(db, argv, reply):
    out = list(argv)
    _rewrite_approx_trim(db, out, xadd=False)
    return [out]


def _rewrite_approx_trim(db, argv: list, xadd: bool) -> None:
    """streamRewriteApproxSpecifier() + streamRewriteTrimArgument(), in place."""
    s = db.data.get(argv[1])
    i, n = 2, len(argv)
    while i < n:
        low = argv[i].lower()
        if xadd and argv[i] == b"*":
            return
        if low in (b"maxlen", b"minid") and i + 2 < n and argv[i + 1] == b"~":
            if not isinstance(s, Stream):
                return
            argv[i + 1] = b"="
            if low == b"maxlen":
                argv[i + 2] = b"%d" % len(s.table)
            else:
                argv[i + 2] = id_bytes(s.ids[0] if s.ids else MAX_ID)
            return
        i += 1


def _idpos(argv: list) -> int:
    """The position of XADD's id argument (after the trim options and NOMKSTREAM)."""
    i, n = 2, len(argv)
    while i < n:
        low = argv[i].lower()
        if argv[i] == b"*":
            return i
        if low in (b"maxlen", b"minid") and i + 1 < n:
            i += 3 if argv[i + 1] in (b"~", b"=") else 2
        elif low == b"limit":
            i += 2
        elif low == b"nomkstream":
            i += 1
        else:
            return i
    return i


def _xclaim_record(key: bytes, group_name: bytes, g, sid: int) -> list[bytes]:
    """streamPropagateXCLAIM(): an idempotent XCLAIM recreating the NACK as it is."""
    nack = g.pel[sid]
    return [b"XCLAIM", key, group_name, nack.consumer.name, b"0", id_bytes(sid),
            b"TIME", b"%d" % nack.delivery_time, b"RETRYCOUNT", b"%d" % nack.delivery_count,
            b"FORCE", b"JUSTID", b"LASTID", id_bytes(g.last_id)]


def _setid_record(key: bytes, group_name: bytes, g) -> list[bytes]:
    return [b"XGROUP", b"SETID", key, group_name, id_bytes(g.last_id), b"ENTRIESREAD",
            b"%d" % g.entries_read]


def _reply_pairs(reply):
    if isinstance(reply, _StreamMap):
        return list(reply.pairs)
    if isinstance(reply, list):
        return [(p[0], p[1]) for p in reply]
    return []


def _rewrite_xreadgroup(db, argv, reply):
    """streamReplyWithRange()'s propagation: an XCLAIM per entry delivered (the NACK as
    it is now); with NOACK, the consumer's creation (XGROUP CREATECONSUMER, only if this
    read made it) and the group's new last id (XGROUP SETID). A read of the consumer's
    own history (an id instead of ">") propagates nothing."""
    try:
        req, streams_arg = _parse_read(argv, True)
    except CommandError:
        return []
    ids = argv[streams_arg + len(req.keys):]
    out = []
    served = {k: v for k, v in _reply_pairs(reply)}
    for k, key in enumerate(req.keys):
        s = db.data.get(key)
        if not isinstance(s, Stream) or req.group not in s.groups:
            continue
        g = s.groups[req.group]
        consumer = g.consumers.get(req.consumer)
        fresh = consumer is not None and consumer.fresh
        if fresh:
            consumer.fresh = False
        if req.noack and fresh:
            out.append([b"XGROUP", b"CREATECONSUMER", key, req.group, req.consumer])
        entries = served.pop(key, None)
        if not entries or (ids[k] != b">" and ids[k] != _MAX_ID_TEXT):
            continue  # a read of the consumer's own history
        if req.noack:
            out.append(_setid_record(key, req.group, g))
            continue
        for entry in entries:
            sid = parse_strict_id(entry[0])
            if sid in g.pel:
                out.append(_xclaim_record(key, req.group, g, sid))
    return out


def _claim_records(db, key, group_name, consumer_name, claimed_ids, gone_ids, lastid=False):
    """XCLAIM/XAUTOCLAIM: an XCLAIM per NACK claimed or dropped, in id order; with
    XCLAIM's LASTID and nothing claimed, the group's last id (XGROUP SETID)."""
    s = db.data.get(key)
    if not isinstance(s, Stream) or group_name not in s.groups:
        return []
    g = s.groups[group_name]
    gone = set(gone_ids)
    out = []
    for sid in sorted(set(claimed_ids) | gone):
        if sid in gone:
            # The entry is gone, and so is its NACK now (Redis logs the NACK as it was;
            # replaying this drops it just the same).
            out.append([b"XCLAIM", key, group_name, consumer_name, b"0", id_bytes(sid),
                        b"JUSTID"])
        elif sid in g.pel:
            out.append(_xclaim_record(key, group_name, g, sid))
    if not out and lastid:
        out.append(_setid_record(key, group_name, g))
    return out


def _rewrite_xclaim(db, argv, reply):
    ids = []
    for raw in argv[5:]:
        try:
            ids.append(parse_strict_id(raw))
        except CommandError:
            break
    s = db.data.get(argv[1])
    if not isinstance(s, Stream):
        return []
    gone = [sid for sid in ids if sid not in s.entries]
    claimed = [sid for sid in ids if sid in s.entries]
    lastid = any(a.lower() == b"lastid" for a in argv[5:])
    return _claim_records(db, argv[1], argv[2], argv[3], claimed, gone, lastid)


def _rewrite_xautoclaim(db, argv, reply):
    if not isinstance(reply, list) or len(reply) != 3:
        return []
    claimed = [parse_strict_id(e if isinstance(e, bytes) else e[0]) for e in reply[1]]
    gone = [parse_strict_id(e) for e in reply[2]]
    return _claim_records(db, argv[1], argv[2], argv[3], claimed, gone)


rewrite_for("xadd")(_rewrite_xadd)
rewrite_for("xtrim")(_rewrite_xtrim)
rewrite_for("xreadgroup")(_rewrite_xreadgroup)
rewrite_for("xclaim")(_rewrite_xclaim)
rewrite_for("xautoclaim")(_rewrite_xautoclaim)
