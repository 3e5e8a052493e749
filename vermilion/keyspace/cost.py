"""The per-key memory cost model, kept incrementally, and the per-key access stamp.

Redis counts every zmalloc; Python has no such counter that is cheap per command, so
Vermilion estimates the footprint of a key whenever it is written (Database.touched)
and keeps a per-database sum (Database.mem). The estimates follow CPython's allocator:
a bytes object of n bytes is a 33-byte header plus the data, rounded up to pymalloc's
16-byte alignment; dict tables are measured with sys.getsizeof (O(1)); a collection is
its table size plus its length times the average cost of a few sampled elements (as
Redis's MEMORY USAGE samples nested values). bench/memory.py checks the figure against
the growth of the process's RSS (BENCHMARKS.md).

A key's cost and its access stamp share one int in Database.meta (STAMP_SHIFT,
COST_MASK). The stamp is evict.c's: the 24-bit LRU clock, or the LFU minutes and
logarithmic counter; the helpers for both are here, with the LFU parameters passed in
(they are per-server state, eviction.Evictor.lfu).

A write that knows what it changed (a pushed or popped element, a new field) need
not cost the whole collection again: touched_by() adds the change's cost instead
(the element's bytes, its slot) to the key's recorded cost, the way Redis's zmalloc
counter follows each allocation. The constants below (LIST_SLOT, ZSET_MEMBER...)
are what the estimators count per element, so the two ways agree.

What the costs add up to (used_memory, MEMORY STATS, INFO memory) is memory.py's.
This module imports nothing above datatypes/ and keeps no state but the table of
estimators, filled at import time; touched_by() works on the Database it is given.
"""

import random
import sys
import time
from itertools import islice

from ..datatypes.packed import PackedValue, packed_cost

# -- per-key costs -----------------------------------------------------------------------------

META_INT = 32  # a per-key metadata int once it is not one of CPython's cached small ints
STAMP_SHIFT = 36  # meta[key] = stamp << 36 | cost: costs up to 64 GB, stamps 24 bits
COST_MASK = (1 << STAMP_SHIFT) - 1
STAMP_BITS = ((1 << 24) - 1) << STAMP_SHIFT
SAMPLES = 5  # OBJ_COMPUTE_SIZE_DEF_SAMPLES

_getsizeof = sys.getsizeof


def obj_bytes(n: int) -> int:
    """A bytes object of length n: 33-byte header + data, 16-byte aligned."""
    return (n + 48) & -16


def key_cost(key: bytes, value) -> int:
    """What storing key = value costs (its dict slot is in the table size)."""
    if type(value) is bytes:
        cost = ((len(key) + 48) & -16) + ((len(value) + 48) & -16)
    else:
        cost = ((len(key) + 48) & -16) + value_cost(value)
    # The cost is stored as an int in meta: past 256 it is an object of its own.
    return cost + META_INT if cost > 256 else cost


def value_cost(value, samples: int = SAMPLES) -> int:
    if type(value) is bytes:
        return obj_bytes(len(value))
    if type(value) is PackedValue:
        return packed_cost(value)
    estimate = _ESTIMATORS.get(getattr(value, "type_name", None))
    if estimate is None:
        return 64 + _getsizeof(value)
    return estimate(value, samples)


def _average(items, count: int, samples: int, each) -> float:
    # Sample the first `samples` elements (0 = all), as objectComputeSize() does.
    if not count:
        return 0.0
    picked = items if samples == 0 or samples >= count else islice(items, samples)
    total = n = 0
    for item in picked:
        total += each(item)
        n += 1
    return total / n if n else 0.0


def _bytes_item(item) -> int:
    return ((len(item) + 48) & -16) if type(item) is bytes else 32


def _pair_item(pair) -> int:
    return _bytes_item(pair[0]) + _bytes_item(pair[1])


# obj_bytes(n) - n, on average: the 33-byte header plus the 16-byte alignment's padding.
ALIGNED_HEADER = 40


def _mean_cost(items, n: int) -> float:
    """The mean obj_bytes() of n items (a sized collection or a list), summed in C: this
    runs for every collection an RDB load creates. An int among them costs 32."""
    if not n:
        return 0.0
    try:
        return sum(map(len, items)) / n + ALIGNED_HEADER
    except TypeError:
        return sum(map(_bytes_item, items)) / n


def _sampled(items, count: int, samples: int):
    """(items, how many) that objectComputeSize() looks at: all of a collection of
    up to `samples` elements (or when samples is 0), else the first `samples`."""
    if samples == 0 or samples >= count:
        return items, count
    picked = list(islice(items, samples))
    return picked, len(picked)


# Dicts are sampled from their newest entries (reversed): a dict keeps the slots of
# deleted entries until it resizes, and the usual deletions are of the oldest entries
# (XTRIM, a hash or zset used as a queue), so a scan from the front could cross
# millions of dead slots on every write.


def _hash_cost(value, samples) -> int:
    n = len(value)
    if samples == 0 or samples >= n:
        per_field = _mean_cost(value, n) + _mean_cost(value.values(), n)
    else:
        picked = list(islice(reversed(value.items()), samples))
        per_field = sum(map(_pair_item, picked)) / len(picked)
    return _getsizeof(value) + int(n * per_field)


def _list_cost(value, samples) -> int:
    n = len(value)
    return _getsizeof(value) + int(n * _mean_cost(*_sampled(value, n, samples)))


def _set_cost(value, samples) -> int:
    # (A set's random-pick pool, settype.py, is a cache that reads build and any
    # change may drop: it is not counted, so that adding and removing members can be
    # accounted by what they change.)
    n = len(value)
    return _getsizeof(value) + int(n * _mean_cost(*_sampled(value, n, samples)))


# A sorted-set member beyond its bytes: the score float (32), the (score, member) tuple
# with its GC header (80) and the SortedList's pointer and index share (~12).
ZSET_MEMBER = 32 + 80 + 12


def _zset_cost(value, samples) -> int:
    scores = value.scores
    n = len(scores)
    members = scores if samples == 0 or samples >= n else reversed(scores)
    avg = _mean_cost(*_sampled(members, n, samples))
    return 120 + _getsizeof(scores) + int(n * (avg + ZSET_MEMBER))


# The same estimates for a collection just decoded from a compact blob (an RDB load),
# from its flat entries summed in C rather than by walking the value: every element
# counted, which is what the estimators above do for up to SAMPLES elements.


def flat_cost(value, flat: list) -> int:
    """A hash, list or set: its table plus every field, value or element it holds."""
    return _getsizeof(value) + sum(map(len, flat)) + ALIGNED_HEADER * len(flat)


def flat_zset_cost(value, flat: list) -> int:
    n = len(value.scores)
    member_bytes = sum(map(len, flat[0::2])) if n else 0
    return (120 + _getsizeof(value.scores) + member_bytes
            + int(n * (ALIGNED_HEADER + ZSET_MEMBER)))


# A deque's pointer to one element: 64-slot blocks of 528 bytes, 8.25 bytes a slot.
LIST_SLOT = 8
# An element of n bytes costs n + LIST_ELEMENT in a list (the average of obj_bytes(n) -
# n, as the estimators and flat_cost() count it, and its slot); a set member or hash
# field or value n + ALIGNED_HEADER beside its table, a sorted-set member
# n + ALIGNED_HEADER + ZSET_MEMBER.
LIST_ELEMENT = ALIGNED_HEADER + LIST_SLOT


def touched_by(db, key: bytes, delta: int) -> None:
    """Database.touched() for a change of key whose cost change the caller knows
    (delta bytes): the recorded cost moves by delta, no estimate is made. Falls back
    to touched() for a key not costed yet (loaded behind the accounting's back) or
    when delta would take the cost below zero (the sampled estimate it started from
    was low): the cost shares its int with the access stamp, it must not borrow."""
    meta = db.meta
    old = meta.get(key)
    if old is None or (delta < 0 and (old & COST_MASK) + delta < 0):
        db.touched(key)
        return
    if delta:
        meta[key] = old + delta
        db.mem += delta
    server = db.server
    if server is not None:
        server.dirty += 1
        if server.key_watchers:
            server.signal_modified(db, key)


def recost(db, key: bytes) -> None:
    """The key's cost estimated again and nothing else (no dirty count, no WATCH): for
    a command that already counted its change through touched_by() and changed more
    than it can tell (XADD's trimming)."""
    meta = db.meta
    old = meta.get(key)
    value = db.data.get(key)
    if old is None or value is None:
        return
    delta = key_cost(key, value) - (old & COST_MASK)
    if delta:
        meta[key] = old + delta
        db.mem += delta


def key_cost_of(key: bytes, value_bytes: int) -> int:
    """key_cost() given the value's cost."""
    cost = ((len(key) + 48) & -16) + value_bytes
    return cost + META_INT if cost > 256 else cost


# A stream entry beyond its fields' bytes and its tuple: the id int (32), its slot in
# the ids SortedList (8) and 16 more (_entry_cost()).
STREAM_ENTRY = 32 + 8 + 16
STREAM_NODE = 128  # one listpack node of the rax, as _stream_cost() counts it


def _entry_cost(item) -> int:
    sid, fields = item
    cost = STREAM_ENTRY + _getsizeof(fields)  # id int, SortedList slot, the tuple
    for f in fields if isinstance(fields, tuple) else ():
        cost += _bytes_item(f) if type(f) is bytes else 32
    return cost


_TUPLE_BASE = _getsizeof(())  # a tuple of n items: this + 8 n


def stream_entry_cost(fields: tuple) -> int:
    """_entry_cost() of an entry whose fields are bytes (XADD's)."""
    if len(fields) == 2:
        return (STREAM_ENTRY + _TUPLE_BASE + 16 + ((len(fields[0]) + 48) & -16)
                + ((len(fields[1]) + 48) & -16))
    cost = STREAM_ENTRY + _TUPLE_BASE + 8 * len(fields)
    for f in fields:
        cost += (len(f) + 48) & -16
    return cost


def _stream_cost(value, samples) -> int:
    entries = value.table  # entry key → fields (the key is not what is costed)
    n = len(entries)
    avg = _average(reversed(entries.items()), n, samples, _entry_cost)
    groups = sum(512 + 64 * len(g.pel) for g in islice(value.groups.values(), 64))
    return 512 + _getsizeof(entries) + int(n * avg) + STREAM_NODE * len(value.nodes) + groups


_ESTIMATORS = {
    "hash": _hash_cost,
    "list": _list_cost,
    "set": _set_cost,
    "zset": _zset_cost,
    "stream": _stream_cost,
}


def register_estimator(type_name: str, estimate) -> None:
    """For a new value type (at import time): estimate(value, samples) -> bytes."""
    _ESTIMATORS[type_name] = estimate


# -- LRU clock and LFU counter (evict.c) --------------------------------------------------------

LRU_BITS = 24
LRU_CLOCK_MAX = (1 << LRU_BITS) - 1
LRU_CLOCK_RESOLUTION = 1000  # ms
LFU_INIT_VAL = 5  # the counter of a new key under an LFU policy
_time = time.time
_random = random.random


class LFUParams:
    """lfu-log-factor and lfu-decay-time of one server: eviction.Evictor holds it,
    eviction.configure() keeps it current and every Database of the server refers to
    it (Database.lfu) for the access updates."""
    __slots__ = ("log_factor", "decay_time")

    def __init__(self, log_factor: int = 10, decay_time: int = 1):
        self.log_factor = log_factor
        self.decay_time = decay_time


def lru_clock() -> int:
    # getLRUClock(): mstime() / LRU_CLOCK_RESOLUTION, 24 bits.
    return int(_time()) & LRU_CLOCK_MAX


def lru_idle_ms(lru: int) -> int:
    # estimateObjectIdleTime(): the clock wraps every 194 days.
    clock = lru_clock()
    if clock >= lru:
        return (clock - lru) * LRU_CLOCK_RESOLUTION
    return (clock + (LRU_CLOCK_MAX - lru)) * LRU_CLOCK_RESOLUTION


def lfu_minutes() -> int:
    # LFUGetTimeInMinutes(): 16 bits of unix minutes.
    return (int(_time()) // 60) & 65535


def lfu_decr(stamp: int, decay_time: int) -> int:
    """LFUDecrAndReturn(): the counter, less one per lfu-decay-time minutes elapsed."""
    ldt = (stamp >> 8) & 65535
    counter = stamp & 255
    if not decay_time:
        return counter
    now = lfu_minutes()
    elapsed = now - ldt if now >= ldt else 65535 - ldt + now
    periods = elapsed // decay_time
    if periods:
        counter = 0 if periods > counter else counter - periods
    return counter


def lfu_incr(counter: int, log_factor: int) -> int:
    """LFULogIncr(): increment with probability 1 / ((counter - 5) * lfu-log-factor + 1)."""
    if counter == 255:
        return 255
    base = counter - LFU_INIT_VAL
    if base < 0:
        base = 0
    if _random() < 1.0 / (base * log_factor + 1):
        counter += 1
    return counter
