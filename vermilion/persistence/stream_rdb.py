"""Streams in RDB files and DUMP payloads (rdb.c rdbSaveObject/rdbLoadObject for
OBJ_STREAM).

Written as RDB_TYPE_STREAM_LISTPACKS_2 (19), what Redis 7.0 writes:

    nodes: len, then per node the 16-byte big-endian master id (a string) and the
           listpack (a string) — master entry (count, deleted, numfields, fields…, 0)
           then entries (flags, ms-diff, seq-diff, [numfields, fields…], values…,
           lp-count)
    length, last_id ms/seq, first_id ms/seq, max_deleted_entry_id ms/seq,
    entries_added (all lengths)
    groups: len, then name, last_id ms/seq, entries_read (a length; -1 wraps to
           2^64-1), the PEL (len, then 16 raw id bytes + 8-byte LE ms delivery time +
           delivery count), the consumers (len, then name, 8-byte seen time, and its
           PEL as bare 16-byte ids)

Read: types 15 (Redis 5/6: no first/max-deleted/entries-added, no entries_read —
derived as rdbLoadObject does), 19, and 21 (Redis 7.2: consumers also carry an
active time, which 7.0 has no use for).

Nodes are written with the live entries only (the in-memory model keeps no deleted
entries); on load, the node model takes the listpack's own counts and byte size.
"""

from __future__ import annotations

import struct

from ..datatypes.stream import (FLAG_DELETED, FLAG_SAMEFIELDS, MAX64,
                                Consumer, Group, Nack, Node, Stream, make_id)
from ..datatypes import encodings as enc
from ..datatypes.encodings import EncodingError

T_STREAM_LISTPACKS, T_STREAM_LISTPACKS_2, T_STREAM_LISTPACKS_3 = 15, 19, 21


# ===================================================================== writing


def _node_listpack(s: Stream, node: Node, sids: list[int]) -> bytes:
    fields = node.fields
    items = [b"%d" % len(sids), b"0", b"%d" % len(fields), *fields, b"0"]
    master_ms, master_seq = node.master >> 64, node.master & MAX64
    for sid in sids:
        flat = s.entries[sid]
        names = flat[0::2]
        nf = len(names)
        same = names == fields
        # streamAppendItem(): the deltas go in as int64, a uint64 difference cast
        # (a seq delta past 2^63 is stored negative; the reader wraps it back).
        items += [b"%d" % (FLAG_SAMEFIELDS if same else 0),
                  b"%d" % _int64((sid >> 64) - master_ms),
                  b"%d" % _int64((sid & MAX64) - master_seq)]
        if same:
            items += flat[1::2]
            items.append(b"%d" % (nf + 3))
        else:
            items.append(b"%d" % nf)
            items += flat
            items.append(b"%d" % (nf * 2 + 4))
    return enc.build_listpack(items)


def _int64(delta: int) -> int:
    return delta - (1 << 64) if delta >= 1 << 63 else delta


def _ms_time(ms: int) -> bytes:
    return struct.pack("<q", ms)


def write_stream(w, value: Stream, key: bytes | None = None,
                 rdb_type: int = T_STREAM_LISTPACKS_2) -> None:
    """Type byte, key (when given) and the stream as RDB_TYPE_STREAM_LISTPACKS_2.
    rdb_type 15 or 21 writes the Redis 6 / Redis 7.2 layouts instead (for tests of
    the reader; 7.0 loads neither 21 nor, after writing, expects 15)."""
    w.byte(rdb_type)
    if key is not None:
        w.string(key)
    s = value
    ids = s.ids
    nodes = []
    keys = list(s.node_keys)
    for k, master in enumerate(keys):
        upper = keys[k + 1] if k + 1 < len(keys) else None
        sids = list(s.ids.irange(master, upper, inclusive=(True, False)))
        if sids:  # a node whose entries are all deleted is not saved (Redis drops it)
            nodes.append((s.nodes[master], sids))
    w.length(len(nodes))
    for node, sids in nodes:
        w.string(node.master.to_bytes(16, "big"))
        w.string(_node_listpack(s, node, sids))
    w.length(len(ids))
    v2 = rdb_type >= T_STREAM_LISTPACKS_2
    for sid in (s.last_id, s.first_id, s.max_deleted_id) if v2 else (s.last_id,):
        w.length(sid >> 64)
        w.length(sid & MAX64)
    if v2:
        w.length(s.entries_added)
    w.length(len(s.groups))
    for name in sorted(s.groups):
        g = s.groups[name]
        w.string(name)
        w.length(g.last_id >> 64)
        w.length(g.last_id & MAX64)
        if v2:
            w.length(g.entries_read & MAX64)
        w.length(len(g.pel))
        for sid, nack in g.pel.items():
            w.chunks.append(sid.to_bytes(16, "big") + _ms_time(nack.delivery_time))
            w.length(nack.delivery_count)
        w.length(len(g.consumers))
        for cname in sorted(g.consumers):
            c = g.consumers[cname]
            w.string(cname)
            w.chunks.append(_ms_time(c.seen_time))
            if rdb_type >= T_STREAM_LISTPACKS_3:
                w.chunks.append(_ms_time(c.seen_time))  # active-time: 7.0 keeps none
            w.length(len(c.pel))
            w.chunks.append(b"".join(sid.to_bytes(16, "big") for sid in c.pel))


# ===================================================================== reading


def _corrupt(message: str):
    return EncodingError(message)


# rdbLoadObject()'s message for a node listpack that fails
# streamValidateListpackIntegrity().
LISTPACK_FAILED = "Stream listpack integrity check failed."


def _check_node_layout(items: list[bytes]) -> None:
    """streamValidateListpackIntegrity() with deep=1, over the node's entries (the
    listpack itself already walked): the master entry (count, deleted, the field
    names, a 0), then count + deleted entries of flags, id deltas, the fields unless
    SAMEFIELDS, the values and an lp-count that matches, and nothing after them. Every
    integer slot must hold an integer (lpGetIntegerIfValid())."""
    n = len(items)
    pos = 0

    def integer() -> int:
        nonlocal pos
        if pos >= n:
            raise _corrupt(LISTPACK_FAILED)
        value = enc.canonical_int(items[pos])
        if value is None:
            raise _corrupt(LISTPACK_FAILED)
        pos += 1
        return value

    def skip(count: int) -> None:
        nonlocal pos
        if count < 0 or pos + count > n:
            raise _corrupt(LISTPACK_FAILED)
        pos += count

    entries = integer()
    entries += integer()  # deleted ones are walked too
    master_fields = integer()
    skip(master_fields)
    if integer() != 0:
        raise _corrupt(LISTPACK_FAILED)
    for _ in range(entries):
        flags = integer()
        integer(), integer()  # the id, as deltas from the master id
        fields, extra = master_fields, 3
        if not flags & FLAG_SAMEFIELDS:
            fields = integer()
            skip(fields)
            extra += fields + 1
        skip(fields)
        if integer() != fields + extra:
            raise _corrupt(LISTPACK_FAILED)
    if pos != n:
        raise _corrupt(LISTPACK_FAILED)


def _read_node(s: Stream, master: int, blob: bytes, floor: int) -> int:
    """A node's live entries into s; floor: the last entry id of the nodes before
    (ids must keep increasing). Returns the node's last entry id."""
    try:
        items = enc.listpack_entries(blob)
    except EncodingError:
        raise _corrupt(LISTPACK_FAILED) from None
    if not items:
        raise _corrupt("Empty listpack inside stream")
    _check_node_layout(items)
    if master in s.nodes:
        raise _corrupt("Listpack re-added with existing key")
    ints = int
    count, deleted, nmaster = ints(items[0]), ints(items[1]), ints(items[2])
    fields = tuple(items[3:3 + nmaster])
    pos = 4 + nmaster
    node = Node(master, fields)
    node.live, node.deleted, node.nbytes = count, deleted, len(blob)
    master_ms, master_seq = master >> 64, master & MAX64
    live = 0
    n = len(items)
    last = floor
    while pos < n:
        flags = ints(items[pos])
        # The deltas are int64 in the listpack and Redis adds them to the master id
        # as uint64 (lpGetInteger() into a uint64_t): they wrap, as a seq delta
        # past 2^63 has to.
        ms = (master_ms + ints(items[pos + 1])) & MAX64
        seq = (master_seq + ints(items[pos + 2])) & MAX64
        # Vermilion keeps the entries in id order, node by node: ids below their
        # node's master id or out of order cannot be held (Redis would take them and
        # misbehave later).
        sid = make_id(ms, seq)
        if sid < master or sid <= last:
            raise _corrupt("Stream entry IDs out of order")
        last = sid
        pos += 3
        if flags & FLAG_SAMEFIELDS:
            values = items[pos:pos + nmaster]
            pos += nmaster
            flat = [None] * (nmaster * 2)
            flat[0::2] = fields
            flat[1::2] = values
        else:
            nf = ints(items[pos])
            flat = items[pos + 1:pos + 1 + nf * 2]
            pos += 1 + nf * 2
        pos += 1  # lp-count
        node.last = sid
        if not flags & FLAG_DELETED:
            s.entries[sid] = tuple(flat)
            live += 1
    if live != count or count + deleted == 0:
        # The master entry's counts are what the node model keeps; live entries
        # that disagree with them cannot be held.
        raise _corrupt("Stream node entry count mismatch")
    s.nodes[master] = node
    return last


def _id_pair(r) -> int:
    ms = r.length()
    return make_id(ms, r.length())


def _ms(r) -> int:
    return struct.unpack("<q", r.take(8))[0]


def _signed(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


def _check_node_shallow(blob: bytes, master: int, masters: set) -> None:
    """What rdbLoadObject() checks of a node without deep sanitization: the listpack's
    header (lpValidateIntegrity() with deep=0), a first entry (lpFirst()), and a master
    id not seen before. (A first entry that is itself damaged makes Redis's lpFirst()
    assert; it is refused here.)"""
    if not enc.listpack_frame_ok(blob):
        raise _corrupt(LISTPACK_FAILED)
    if blob[6] == 0xFF:
        raise _corrupt("Empty listpack inside stream")
    try:
        enc.first_listpack_entry(blob)
    except EncodingError:
        raise _corrupt(LISTPACK_FAILED) from None
    if master in masters:
        raise _corrupt("Listpack re-added with existing key")
    masters.add(master)


def _first_entry_walk(nodes: list[tuple[int, bytes]]) -> None:
    """streamGetEdgeID(first) as rdbLoadObject() runs it on a Redis 5/6 stream, whose
    first id is not stored, over node listpacks only frame-checked: the iterator's
    walk (streamIteratorGetID()) up to the first live entry, each step an lpNext()
    that asserts the entry it lands on is whole and each count an lpGetInteger() that
    asserts it is a number. Where Redis would assert (or read a missing entry), an
    EncodingError."""

    def integer(item) -> int:
        value = None if item is None else enc.canonical_int(item)
        if value is None:
            raise _corrupt(LISTPACK_FAILED)
        return value

    for _master, blob in sorted(nodes):
        entries = enc.iter_listpack(blob)
        step = lambda: next(entries, None)  # noqa: E731 (lpNext(): None past the end)
        step(), step()  # count, deleted
        master_fields = integer(step())
        for _ in range(master_fields + 1):  # the fields, then the master's 0
            if step() is None:
                raise _corrupt(LISTPACK_FAILED)
        while True:
            flags_item = step()
            if flags_item is None:
                break  # this node has no live entry: on to the next one
            flags = integer(flags_item)
            integer(step()), integer(step())  # the id
            fields = master_fields if flags & FLAG_SAMEFIELDS else integer(step())
            if fields < 0:
                raise _corrupt(LISTPACK_FAILED)
            if not flags & FLAG_DELETED:
                return
            for _ in range(fields if flags & FLAG_SAMEFIELDS else fields * 2):
                if step() is None:
                    raise _corrupt(LISTPACK_FAILED)


def read_stream(r, rdb_type: int, shallow: bool = False) -> Stream:
    """A Stream from an RDB value of type 15, 19 or 21 (the type byte already read).

    shallow: only rdbLoadObject()'s checks without deep sanitization — the node
    listpacks' headers, and all of the rest (ids, lengths, groups, PELs, consumers) —
    for a RESTORE that keeps the value packed; what is returned then holds no entries."""
    s = Stream()
    last = -1
    masters: set[int] = set()
    shallow_nodes = []
    for _ in range(r.length()):
        raw_key = r.string()
        if len(raw_key) != 16:
            raise _corrupt("Stream node key entry is not the size of a stream ID")
        blob = r.string()
        master = int.from_bytes(raw_key, "big")
        if shallow:
            _check_node_shallow(blob, master, masters)
            shallow_nodes.append((master, blob))
            continue
        if master <= last and master not in s.nodes:
            raise _corrupt("Stream entry IDs out of order")
        last = _read_node(s, master, blob, last)
    s.node_keys.update(s.nodes)
    s.ids.update(s.entries)
    length = r.length()
    if length and not (masters if shallow else s.nodes):
        raise _corrupt("Stream length inconsistent with rax entries")
    if length != len(s.entries) and not shallow:
        # Vermilion counts the entries it holds; a stored length that disagrees
        # cannot be kept (Redis keeps it and replies with it).
        raise _corrupt("Stream length inconsistent with its entries")
    s.last_id = _id_pair(r)
    if s.ids and s.last_id < s.ids[-1]:
        # XADD * would then make an id that exists already.
        raise _corrupt("Stream last ID below its last entry")
    if shallow and rdb_type < T_STREAM_LISTPACKS_2:
        _first_entry_walk(shallow_nodes)
    if rdb_type >= T_STREAM_LISTPACKS_2:
        s.first_id = _id_pair(r)
        s.max_deleted_id = _id_pair(r)
        s.entries_added = r.length()
    else:
        # Redis 5/6 files: as rdbLoadObject, entries_added starts at the length.
        s.entries_added = length
        s.first_id = s.ids[0] if s.ids else 0
    for _ in range(r.length()):
        name = r.string()
        last_id = _id_pair(r)
        if rdb_type >= T_STREAM_LISTPACKS_2:
            entries_read = _signed(r.length())
        else:
            entries_read = s.estimate_distance(last_id)
        if name in s.groups:
            raise _corrupt("Duplicated consumer group name %s"
                           % name.decode("utf-8", "backslashreplace"))
        g = s.groups[name] = Group(name, last_id, entries_read)
        for _ in range(r.length()):
            sid = int.from_bytes(r.take(16), "big")
            delivery_time = _ms(r)
            if sid in g.pel:
                raise _corrupt("Duplicated global PEL entry loading stream consumer group")
            g.pel[sid] = Nack(None, delivery_time, r.length())
        for _ in range(r.length()):
            cname = r.string()
            c = Consumer(cname, _ms(r))
            if rdb_type >= T_STREAM_LISTPACKS_3:
                _ms(r)  # active-time (7.2); 7.0 has seen-time only
            if cname in g.consumers:
                raise _corrupt("Duplicate stream consumer detected.")
            g.consumers[cname] = c
            for _ in range(r.length()):
                sid = int.from_bytes(r.take(16), "big")
                nack = g.pel.get(sid)
                if nack is None:
                    raise _corrupt("Consumer entry not found in group global PEL")
                if sid in c.pel or nack.consumer is not None:
                    # (Redis lets a second consumer take a NACK over; two owners
                    # would leave one of them with a NACK that is not its own.)
                    raise _corrupt("Duplicated consumer PEL entry  loading a stream "
                                   "consumer group")
                nack.consumer = c
                c.pel[sid] = nack
        if not shallow and any(n.consumer is None for n in g.pel.values()):
            # Checked by Redis under deep sanitization only; a NACK without its
            # consumer cannot be held here at all.
            raise _corrupt("Stream CG PEL entry without consumer")
    return s
