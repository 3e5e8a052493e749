"""The stream value (Redis's t_stream.c / stream.h): entries, metadata, consumer groups.

Entries live in a dict id → flat (field, value, ...) tuple plus a SortedList of the
live ids, so XADD is O(log n) (amortised O(1) in practice: it appends at the end) and
XRANGE is O(log n + m). An ID is one Python int, ``ms << 64 | seq``: ints compare fast
and order exactly like Redis's 128-bit big-endian rax keys.

They do not hash well, though: an int's hash is its value modulo 2**61 - 1, and
2**64 is 8 modulo that, so ms-seq hashes as 8 ms + seq — a stream taking more than 8
entries a millisecond puts ids of equal hash in the dict (250 a millisecond: 30 of
them a hash, inserts 9x slower), and ids can be chosen to share one hash (a quadratic
XADD). So the dict (Stream.table) is keyed by entry_key(id), the id times a random
odd 128-bit number modulo 2**128 (a bijection whose hashes look random), and
Stream.entries maps ids to fields over it, as a dict would.

Redis keeps the entries in a rax of listpacks ("nodes"). The node boundaries are
visible to clients (XADD/XTRIM with ``~`` only remove whole nodes; XINFO STREAM
reports radix-tree-keys), so the node structure is modelled without storing the
listpacks: each Node knows its master id and fields, its live and deleted counts,
its exact listpack size in bytes and its last id (deleted or not) — what
streamAppendItem() and streamTrim() look at.

Consumer groups: Group (last_delivered_id, entries_read, PEL as a SortedDict id →
Nack, consumers by name). A Nack is shared by the group PEL and its consumer's PEL,
as in Redis.
"""

from __future__ import annotations

import random

from sortedcontainers import SortedDict, SortedList

from .encodings import NUMERIC_START as _NUMERIC_START, backlen_size

MAX64 = (1 << 64) - 1
MAX_ID = (MAX64 << 64) | MAX64
INVALID_ENTRIES_READ = -1  # SCG_INVALID_ENTRIES_READ

# streamAppendItem's flags field of each listpack entry.
FLAG_NONE, FLAG_DELETED, FLAG_SAMEFIELDS = 0, 1, 2


def make_id(ms: int, seq: int) -> int:
    return (ms << 64) | seq


def id_bytes(sid: int) -> bytes:
    return b"%d-%d" % (sid >> 64, sid & MAX64)


# -- listpack sizes (listpack.c), to place node boundaries where Redis does -------------


def lp_int_size(v: int) -> int:
    """Bytes of an integer listpack entry, backlen included."""
    if 0 <= v <= 127:
        return 2
    if -4096 <= v <= 4095:
        return 3
    if -32768 <= v <= 32767:
        return 4
    if -8388608 <= v <= 8388607:
        return 5
    if -2147483648 <= v <= 2147483647:
        return 6
    return 10


def _canonical_int(item: bytes):
    # lpStringToInt64 (string2ll): strings that are canonical int64s are stored as ints.
    n = len(item)
    if n == 0 or n > 20:
        return None
    digits = item[1:] if item[0] == 45 else item
    if not digits.isdigit() or not digits.isascii() or (digits[0] == 48 and n > 1):
        return None
    v = int(item)
    if -(1 << 63) <= v < (1 << 63):
        return v
    return None


def lp_str_size(item: bytes) -> int:
    n = len(item)
    if n < 64 and (not n or item[0] not in _NUMERIC_START):
        return n + 2  # a short word: 6-bit length + data, a one-byte backlen
    if n <= 20:
        v = _canonical_int(item)
        if v is not None:
            return lp_int_size(v)
    if n < 64:
        enc = 1 + n
    elif n < 4096:
        enc = 2 + n
    else:
        enc = 5 + n
    return enc + backlen_size(enc)


# Counts at which an integer's listpack encoding gets longer (lp_int_size steps).
_INT_SIZE_STEPS = frozenset((128, 4096, 32768, 8388608, 2147483648))


class Node:
    """One listpack of Redis's rax: what the node-level algorithms need."""

    __slots__ = ("master", "fields", "live", "deleted", "nbytes", "last")

    def __init__(self, master: int, fields: tuple):
        self.master = master
        self.fields = fields
        self.live = 0
        self.deleted = 0
        self.last = master
        # Header (6) + terminator (1) + master entry: count, deleted, numfields,
        # fields..., the 0 terminator.
        self.nbytes = (7 + lp_int_size(0) * 2 + lp_int_size(len(fields))
                       + sum(lp_str_size(f) for f in fields) + lp_int_size(0))

    def set_counts(self, live: int, deleted: int) -> None:
        self.nbytes += (lp_int_size(live) - lp_int_size(self.live)
                        + lp_int_size(deleted) - lp_int_size(self.deleted))
        self.live = live
        self.deleted = deleted

    def copy(self) -> "Node":
        dup = Node.__new__(Node)
        dup.master, dup.fields, dup.live = self.master, self.fields, self.live
        dup.deleted, dup.nbytes, dup.last = self.deleted, self.nbytes, self.last
        return dup


# -- consumer groups -------------------------------------------------------------------


class Nack:
    """A pending entry (streamNACK): owner, last delivery time (ms), delivery count."""

    __slots__ = ("consumer", "delivery_time", "delivery_count")

    def __init__(self, consumer, delivery_time: int, delivery_count: int = 1):
        self.consumer = consumer
        self.delivery_time = delivery_time
        self.delivery_count = delivery_count


class Consumer:
    __slots__ = ("name", "seen_time", "pel", "fresh")

    def __init__(self, name: bytes, seen_time: int):
        self.name = name
        self.seen_time = seen_time
        self.pel: SortedDict = SortedDict()
        self.fresh = False  # made by the command running (XREADGROUP's propagation)


class Group:
    __slots__ = ("name", "last_id", "entries_read", "pel", "consumers")

    def __init__(self, name: bytes, last_id: int, entries_read: int):
        self.name = name
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel: SortedDict = SortedDict()
        self.consumers: dict[bytes, Consumer] = {}

    def create_consumer(self, name: bytes, now: int) -> Consumer:
        consumer = self.consumers[name] = Consumer(name, now)
        return consumer

    def delete_consumer(self, consumer: Consumer) -> None:
        """streamDelConsumer: its pending entries leave the group PEL too."""
        for sid in consumer.pel:
            del self.pel[sid]
        del self.consumers[consumer.name]

    def copy(self) -> "Group":
        dup = Group(self.name, self.last_id, self.entries_read)
        for name, consumer in self.consumers.items():
            c2 = dup.consumers[name] = Consumer(name, consumer.seen_time)
            for sid, nack in consumer.pel.items():
                n2 = Nack(c2, nack.delivery_time, nack.delivery_count)
                c2.pel[sid] = n2
                dup.pel[sid] = n2
        for sid, nack in self.pel.items():
            if sid not in dup.pel:  # an ownerless NACK cannot exist, but stay total
                dup.pel[sid] = Nack(None, nack.delivery_time, nack.delivery_count)
        return dup


# -- entry keys ----------------------------------------------------------------------

# entry_key(id) = id * KEY_MUL mod 2**128, inlined where entries are read in bulk.
KEY_MUL = random.SystemRandom().getrandbits(128) | 1
KEY_MASK = (1 << 128) - 1
_KEY_INV = pow(KEY_MUL, -1, 1 << 128)


def entry_key(sid: int) -> int:
    """The key of entry sid in Stream.table (see the module docstring)."""
    return sid * KEY_MUL & KEY_MASK


def entry_id(key: int) -> int:
    return key * _KEY_INV & KEY_MASK


class Entries:
    """Stream.entries: id → fields over the stream's table, with a dict's interface
    (the persistence and digest code read and fill streams through it)."""

    __slots__ = ("table",)

    def __init__(self, table: dict):
        self.table = table

    def __len__(self) -> int:
        return len(self.table)

    def __bool__(self) -> bool:
        return bool(self.table)

    def __getitem__(self, sid: int) -> tuple:
        return self.table[sid * KEY_MUL & KEY_MASK]

    def __setitem__(self, sid: int, fields: tuple) -> None:
        self.table[sid * KEY_MUL & KEY_MASK] = fields

    def __delitem__(self, sid: int) -> None:
        del self.table[sid * KEY_MUL & KEY_MASK]

    def __contains__(self, sid: int) -> bool:
        return sid * KEY_MUL & KEY_MASK in self.table

    def get(self, sid: int, default=None):
        return self.table.get(sid * KEY_MUL & KEY_MASK, default)

    def pop(self, sid: int, *default):
        return self.table.pop(sid * KEY_MUL & KEY_MASK, *default)

    def __iter__(self):
        """The ids, in the order they were added."""
        return map(entry_id, self.table)

    keys = __iter__

    def values(self):
        return self.table.values()

    def items(self):
        return zip(map(entry_id, self.table), self.table.values())

    def __eq__(self, other) -> bool:
        if isinstance(other, Entries):
            return self.table == other.table
        if isinstance(other, dict):
            return dict(self.items()) == other
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return f"Entries({dict(self.items())!r})"


# -- the stream -------------------------------------------------------------------------


def _add_last(ids: SortedList, sid: int) -> None:
    """ids.add(sid) for an id above every other (XADD's): SortedList.add() and its
    _expand() for that case, spelled out on sortedcontainers 2.x's fields (_lists,
    _maxes, _index, _load, _len) when the last sublist has room and no positional index
    is built; SortedList.add() itself otherwise."""
    lists = ids._lists
    if lists and not ids._index and sid > ids._maxes[-1] \
            and len(lists[-1]) < ids._load << 1:
        lists[-1].append(sid)
        ids._maxes[-1] = sid
        ids._len += 1
    else:
        ids.add(sid)



class Stream:
    __slots__ = ("table", "entries", "ids", "nodes", "node_keys", "tail", "last_id",
                 "max_deleted_id", "entries_added", "first_id", "groups")

    type_name = "stream"
    encoding = "stream"

    def __init__(self):
        self.table: dict[int, tuple] = {}  # entry_key(id) → (field, value, ...)
        self.entries = Entries(self.table)
        self.ids = SortedList()
        self.nodes: dict[int, Node] = {}
        self.node_keys = SortedList()
        # The last node, where XADD appends; None when not known (a stream just loaded,
        # or whose last node went): then it is nodes[node_keys[-1]].
        self.tail: Node | None = None
        self.last_id = 0
        self.max_deleted_id = 0
        self.entries_added = 0
        self.first_id = 0
        self.groups: dict[bytes, Group] = {}

    def __len__(self) -> int:
        return len(self.table)

    def copy(self) -> "Stream":
        dup = Stream()
        dup.table = dict(self.table)
        dup.entries = Entries(dup.table)
        dup.ids = SortedList(self.ids)
        dup.nodes = {k: n.copy() for k, n in self.nodes.items()}
        dup.node_keys = SortedList(self.node_keys)
        dup.last_id, dup.max_deleted_id = self.last_id, self.max_deleted_id
        dup.entries_added, dup.first_id = self.entries_added, self.first_id
        dup.groups = {name: g.copy() for name, g in self.groups.items()}
        return dup

    # -- entries ------------------------------------------------------------------

    def last_valid_id(self) -> int:
        """streamLastValidID: the last live entry, 0-0 when empty."""
        return self.ids[-1] if self.ids else 0

    def append(self, sid: int, fields: tuple, max_bytes: int = 4096,
               max_entries: int = 100) -> None:
        """streamAppendItem() once the id is known to be valid: the node it lands in
        follows stream-node-max-bytes / stream-node-max-entries like Redis."""
        node = self.tail
        if node is not None and len(fields) == 2 and 0 < max_bytes <= 0xFFFFFFFF:
            # The usual XADD, `XADD key * field value` with the field of the last node,
            # which has room: the general path below spelled out (same results).
            names = node.fields
            value = fields[1]
            if len(names) == 1 and names[0] == fields[0] \
                    and node.nbytes + len(fields[0]) + len(value) < max_bytes \
                    and not (max_entries and node.live + node.deleted >= max_entries):
                live = node.live = node.live + 1
                if live in _INT_SIZE_STEPS:
                    node.nbytes += lp_int_size(live) - lp_int_size(live - 1)
                master = node.master
                ms_diff = (sid >> 64) - (master >> 64)
                seq_diff = (sid & MAX64) - (master & MAX64)
                n = len(value)
                node.nbytes += (
                    (2 if 0 <= ms_diff <= 127 else lp_int_size(ms_diff))
                    + (2 if 0 <= seq_diff <= 127 else lp_int_size(seq_diff))
                    + (n + 6 if n < 64 and (not n or value[0] not in _NUMERIC_START)
                       else lp_str_size(value) + 4))
                node.last = sid
                table = self.table
                table[sid * KEY_MUL & KEY_MASK] = fields
                _add_last(self.ids, sid)
                self.entries_added += 1
                self.last_id = sid
                if len(table) == 1:
                    self.first_id = sid
                return
        pair = len(fields) == 2
        names = fields[:1] if pair else fields[0::2]
        node = self.tail
        if node is None and self.nodes:
            node = self.nodes[self.node_keys[-1]]
        if node is not None:
            if max_bytes == 0 or max_bytes > 0xFFFFFFFF:
                max_bytes = 0xFFFFFFFF  # STREAM_LISTPACK_MAX_SIZE
            if node.nbytes + (len(fields[0]) + len(fields[1]) if pair
                              else sum(map(len, fields))) >= max_bytes:
                node = None
            elif max_entries and node.live + node.deleted >= max_entries:
                node = None
        if node is None:
            node = Node(sid, names)
            self.nodes[sid] = node
            self.node_keys.add(sid)
            same = True
        else:
            same = names == node.fields
        self.tail = node
        live = node.live + 1
        node.live = live
        if live in _INT_SIZE_STEPS:  # the count's listpack encoding grows
            node.nbytes += lp_int_size(live) - lp_int_size(live - 1)
        master = node.master
        nf = len(names)
        ms_diff = (sid >> 64) - (master >> 64)
        seq_diff = (sid & MAX64) - (master & MAX64)
        size = 2 + (2 if 0 <= ms_diff <= 127 else lp_int_size(ms_diff)) \
            + (2 if 0 <= seq_diff <= 127 else lp_int_size(seq_diff))
        if same:
            # The values, then lp-count = nf + 3 (one byte up to 127 fields).
            size += (lp_str_size(fields[1]) if pair else sum(map(lp_str_size, fields[1::2]))) \
                + (2 if nf < 125 else lp_int_size(nf + 3))
        else:
            size += lp_int_size(nf) + sum(map(lp_str_size, fields)) + lp_int_size(nf * 2 + 4)
        node.nbytes += size
        node.last = sid
        table = self.table
        table[sid * KEY_MUL & KEY_MASK] = fields
        self.ids.add(sid)
        self.entries_added += 1
        self.last_id = sid
        if len(table) == 1:
            self.first_id = sid

    def _node_of(self, sid: int) -> Node:
        keys = self.node_keys
        return self.nodes[keys[keys.bisect_right(sid) - 1]]

    def delete(self, sid: int) -> bool:
        """streamDeleteItem: mark deleted in its node, drop an emptied node."""
        if self.table.pop(sid * KEY_MUL & KEY_MASK, None) is None:
            return False
        self.ids.remove(sid)
        node = self._node_of(sid)
        if node.live == 1:
            del self.nodes[node.master]
            self.node_keys.remove(node.master)
            if node is self.tail:
                self.tail = None
        else:
            node.set_counts(node.live - 1, node.deleted + 1)
        return True

    def _drop_front(self, count: int) -> None:
        ids = self.ids
        table = self.table
        for sid in ids[:count]:
            del table[sid * KEY_MUL & KEY_MASK]
        del ids[:count]

    def trim(self, maxlen: int | None, minid: int | None, approx: bool, limit: int) -> int:
        """streamTrim(): whole nodes first; with approx stop at the first node that
        cannot go whole, else mark entries of that node deleted. Returns the count."""
        deleted = 0
        keys = self.node_keys
        while keys:
            if maxlen is not None and len(self.table) <= maxlen:
                break
            node = self.nodes[keys[0]]
            live = node.live
            if limit and deleted + live > limit:
                break
            if maxlen is not None:
                remove_node = len(self.table) - live >= maxlen
            else:
                remove_node = node.last < minid
            if remove_node:
                self._drop_front(live)
                del self.nodes[node.master]
                if node is self.tail:
                    self.tail = None
                keys.pop(0)
                deleted += live
                continue
            if approx:
                break
            # Exact: mark the node's leading entries deleted (its live entries are the
            # first `live` ids of the stream, the nodes before it being gone).
            if maxlen is not None:
                n = min(len(self.table) - maxlen, live)
            else:
                n = min(self.ids.bisect_left(minid), live)
            if n:
                self._drop_front(n)
                node.set_counts(live - n, node.deleted + n)
                deleted += n
            break
        if deleted:
            self.first_id = self.ids[0] if self.ids else 0
        return deleted

    def range(self, start: int, end: int, rev: bool = False):
        """Live ids in [start, end], in order (or reversed)."""
        if start > end:
            return iter(())
        return self.ids.irange(start, end, reverse=rev)

    # -- metadata Redis computes ---------------------------------------------------

    def estimate_distance(self, sid: int) -> int:
        """streamEstimateDistanceFromFirstEverEntry() (7.0): the logical read counter
        of sid, or INVALID_ENTRIES_READ when it cannot be known."""
        if not self.entries_added:
            return 0
        if not self.table and sid <= self.last_id:
            return self.entries_added
        if sid == self.last_id:
            return self.entries_added
        if sid > self.last_id:
            return INVALID_ENTRIES_READ
        if self.max_deleted_id == 0 or self.max_deleted_id < self.first_id:
            if sid < self.first_id:
                return self.entries_added - len(self.table)
            if sid == self.first_id:
                return self.entries_added - len(self.table) + 1
        return INVALID_ENTRIES_READ

    def range_has_tombstones(self, start: int | None) -> bool:
        """streamRangeHasTombstones(s, start, NULL)."""
        if not self.table or self.max_deleted_id == 0:
            return False
        if self.first_id > self.max_deleted_id:
            return False
        return (start or 0) <= self.max_deleted_id

    def group_lag(self, group: Group):
        """streamReplyWithCGLag(): the lag, or None when it cannot be computed."""
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and \
                not self.range_has_tombstones(group.last_id):
            return self.entries_added - group.entries_read
        read = self.estimate_distance(group.last_id)
        if read != INVALID_ENTRIES_READ:
            return self.entries_added - read
        return None

    def radix_tree_nodes(self) -> int:
        """The rax node count of the node keys (16-byte big-endian ids), counted on the
        compressed trie rax builds: a node per compressed run, per branch, per key."""
        keys = [k.to_bytes(16, "big") for k in self.node_keys]
        if not keys:
            return 1
        return _rax_nodes(keys, 0, len(keys), 0)


def _rax_nodes(keys: list, lo: int, hi: int, depth: int) -> int:
    # keys[lo:hi] share their first `depth` bytes; all keys are 16 bytes long.
    if hi - lo == 1:
        return 2 if depth < 16 else 1
    first, last = keys[lo], keys[hi - 1]
    p = depth
    while first[p] == last[p]:
        p += 1
    count = 1 if p > depth else 0  # a compressed node for the common run
    count += 1  # the branching node at byte p
    i = lo
    while i < hi:
        b = keys[i][p]
        j = i + 1
        while j < hi and keys[j][p] == b:
            j += 1
        count += _rax_nodes(keys, i, j, p + 1)
        i = j
    return count
