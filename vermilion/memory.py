"""Memory accounting: what keys, values, expiries and clients cost, kept incrementally.

Redis counts every zmalloc; Python has no such counter that is cheap per command, so
Vermilion estimates the footprint of a key whenever it is written (Database.touched)
and keeps a per-database sum (Database.mem). The estimates follow CPython's allocator:
a bytes object of n bytes is a 33-byte header plus the data, rounded up to pymalloc's
16-byte alignment; dict tables are measured with sys.getsizeof (O(1)); a collection is
its table size plus its length times the average cost of a few sampled elements (as
Redis's MEMORY USAGE samples nested values). bench/memory.py checks the figure against
the growth of the process's RSS (BENCHMARKS.md).

used_memory = BASE (a documented fixed base: Redis 7.0's own used_memory_startup, so a
maxmemory sized for Redis leaves data the same room) + the dataset (key costs, dict
tables, expiry entries, access metadata) + clients (a fixed cost each plus their query
and output buffers, sampled by the cron: summing every client per command would cost
O(clients) on the hot path).

Also here: the LRU clock and LFU counter helpers of evict.c, MEMORY STATS / DOCTOR
figures and memory_fields() for INFO's memory section.
"""

import random
import sys
import time
from itertools import chain, islice

from .datatypes.packed import PackedValue, packed_cost

# -- per-key costs -----------------------------------------------------------------------------

BASE = 876208  # Redis 7.0.15's used_memory_startup on this machine (documented base)
CLIENT_COST = 2048  # a connection: Client, parser, transport (query/output buffers apart)
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
    n = len(value)
    pool = getattr(value, "_pool", None)
    extra = _getsizeof(pool) if pool is not None else 0
    return _getsizeof(value) + extra + int(n * _mean_cost(*_sampled(value, n, samples)))


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


def key_cost_of(key: bytes, value_bytes: int) -> int:
    """key_cost() given the value's cost."""
    cost = ((len(key) + 48) & -16) + value_bytes
    return cost + META_INT if cost > 256 else cost


def _entry_cost(item) -> int:
    sid, fields = item
    cost = 32 + 8 + _getsizeof(fields) + 16  # id int, SortedList slot, the tuple
    for f in fields if isinstance(fields, tuple) else ():
        cost += _bytes_item(f) if type(f) is bytes else 32
    return cost


def _stream_cost(value, samples) -> int:
    entries = value.entries
    n = len(entries)
    avg = _average(reversed(entries.items()), n, samples, _entry_cost)
    groups = sum(512 + 64 * len(g.pel) for g in islice(value.groups.values(), 64))
    return 512 + _getsizeof(entries) + int(n * avg) + 128 * len(value.nodes) + groups


_ESTIMATORS = {
    "hash": _hash_cost,
    "list": _list_cost,
    "set": _set_cost,
    "zset": _zset_cost,
    "stream": _stream_cost,
}


def register_estimator(type_name: str, estimate) -> None:
    """For a new value type: estimate(value, samples) -> bytes."""
    _ESTIMATORS[type_name] = estimate


# -- LRU clock and LFU counter (evict.c) --------------------------------------------------------

LRU_BITS = 24
LRU_CLOCK_MAX = (1 << LRU_BITS) - 1
LRU_CLOCK_RESOLUTION = 1000  # ms
LFU_INIT_VAL = 5
_time = time.time
_random = random.random


class LFUParams:
    """lfu-log-factor and lfu-decay-time (set by eviction.configure)."""
    log_factor = 10
    decay_time = 1


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


def lfu_decr(stamp: int) -> int:
    """LFUDecrAndReturn(): the counter, less one per lfu-decay-time minutes elapsed."""
    ldt = (stamp >> 8) & 65535
    counter = stamp & 255
    decay = LFUParams.decay_time
    if not decay:
        return counter
    now = lfu_minutes()
    elapsed = now - ldt if now >= ldt else 65535 - ldt + now
    periods = elapsed // decay
    if periods:
        counter = 0 if periods > counter else counter - periods
    return counter


def lfu_incr(counter: int) -> int:
    """LFULogIncr(): increment with probability 1 / ((counter - 5) * lfu-log-factor + 1)."""
    if counter == 255:
        return 255
    base = counter - LFU_INIT_VAL
    if base < 0:
        base = 0
    if _random() < 1.0 / (base * LFUParams.log_factor + 1):
        counter += 1
    return counter


# -- totals ----------------------------------------------------------------------------------------


def db_overhead(db) -> tuple[int, int]:
    """(main table, expires table + entries) of one database, in bytes."""
    main = _getsizeof(db.data) + _getsizeof(db.meta)
    if db.track:
        main += META_INT * len(db.meta)
    expires = _getsizeof(db.expires) + 32 * len(db.expires) if db.expires else 0
    return main, expires


def dataset_bytes(server, dbs=None) -> int:
    """Key costs plus tables of the databases (all, or those given): O(databases),
    never a keyspace walk (db_overhead() inlined: this runs before every command while
    maxmemory is set)."""
    total = 0
    for db in server.dbs if dbs is None else dbs:
        meta = db.meta
        if meta or db.data:
            data = db.data
            if len(meta) != len(data):
                db.resync_accounting()
                meta = db.meta
            total += db.mem + _getsizeof(data) + _getsizeof(meta)
            if db.track:
                total += META_INT * len(meta)
            expires = db.expires
            if expires:
                total += _getsizeof(expires) + 32 * len(expires)
    return total


class ClientMemory:
    """Client buffers, re-summed by the cron (and on demand by MEMORY STATS / INFO)."""
    __slots__ = ("total",)

    def __init__(self):
        self.total = 0


def clients_bytes(server) -> int:
    total = 0
    for client in list(server.clients.values()):
        total += CLIENT_COST + client.parser.buffered() + client.output_buffer_size()
    return total


def refresh_clients(server) -> int:
    state = server.__dict__.get("client_memory")
    if state is None:
        state = server.client_memory = ClientMemory()
    state.total = clients_bytes(server)
    return state.total


def used_memory(server) -> int:
    """used_memory as INFO / MEMORY STATS report it: every database, keys loaded behind
    the accounting's back (an RDB load) costed first."""
    state = server.__dict__.get("client_memory")
    clients = state.total if state is not None else 0
    return BASE + dataset_bytes(server) + clients


def used_memory_fast(server, live: list) -> int:
    """The same figure for the OOM check before a command: only the databases known to
    hold keys, no resync (the cron does it), a handful of operations."""
    total = BASE + server.client_memory.total
    for db in live:
        meta = db.meta
        total += db.mem + _getsizeof(db.data) + _getsizeof(meta)
        if db.track:
            total += META_INT * len(meta)
        expires = db.expires
        if expires:
            total += _getsizeof(expires) + 32 * len(expires)
    return total


def usage_of(db, key: bytes, samples: int) -> int | None:
    """MEMORY USAGE: the key's bytes with values sampled `samples` times (0 = all)."""
    value = db.data.get(key)
    if value is None:
        return None
    cost = obj_bytes(len(key)) + value_cost(value, samples)
    # Its share of the main table (a slot: hash, key and value pointers) and its TTL.
    cost += 24 + (40 if key in db.expires else 0)
    return cost


# -- INFO memory / MEMORY STATS -------------------------------------------------------------------


def _info_helpers():
    from . import info  # lazily: info.py may import this module

    return info


def memory_stats(server) -> dict:
    """The figures MEMORY STATS and INFO memory share (objectComputeSize's
    getMemoryOverheadData())."""
    info = _info_helpers()
    clients = refresh_clients(server)
    used = used_memory(server)
    peak = server.note_memory_peak(used)
    dbs = []
    overhead = BASE + clients
    keys = 0
    for db in server.dbs:
        if not db.data:
            continue
        main, expires = db_overhead(db)
        dbs.append((db.id, main, expires))
        overhead += main + expires
        keys += len(db.data)
    dataset = max(used - overhead, 0)
    rss = info.rss_bytes()
    return {
        "used": used, "peak": peak, "startup": BASE, "clients": clients, "dbs": dbs,
        "overhead": overhead, "keys": keys, "dataset": dataset, "rss": rss,
    }


def memory_fields(server) -> dict:
    """INFO's memory section with Redis 7.0's field names."""
    info = _info_helpers()
    s = memory_stats(server)
    used, peak, rss, dataset = s["used"], s["peak"], s["rss"], s["dataset"]
    maxmemory = server.config["maxmemory"]
    system = info.total_system_memory()
    frag = rss / used if used else 0.0
    h = info.bytes_to_human
    return {
        "used_memory": used,
        "used_memory_human": h(used),
        "used_memory_rss": rss,
        "used_memory_rss_human": h(rss),
        "used_memory_peak": peak,
        "used_memory_peak_human": h(peak),
        "used_memory_peak_perc": "%.2f%%" % (used * 100 / peak if peak else 0),
        "used_memory_overhead": s["overhead"],
        "used_memory_startup": BASE,
        "used_memory_dataset": dataset,
        "used_memory_dataset_perc": "%.2f%%" % (dataset * 100 / (used - BASE)
                                                if used > BASE else 0),
        "allocator_allocated": used,
        "allocator_active": used,
        "allocator_resident": rss,
        "total_system_memory": system,
        "total_system_memory_human": h(system),
        "maxmemory": maxmemory,
        "maxmemory_human": h(maxmemory),
        "maxmemory_policy": server.config["maxmemory-policy"],
        "allocator_frag_ratio": 1.0,
        "allocator_frag_bytes": 0,
        "allocator_rss_ratio": round(frag, 2),
        "allocator_rss_bytes": rss - used,
        "rss_overhead_ratio": 1.0,
        "rss_overhead_bytes": 0,
        "mem_fragmentation_ratio": round(frag, 2),
        "mem_fragmentation_bytes": rss - used,
        "mem_not_counted_for_evict": 0,
        "mem_replication_backlog": 0,
        "mem_total_replication_buffers": 0,
        "mem_clients_slaves": 0,
        "mem_clients_normal": s["clients"],
        "mem_cluster_links": 0,
        "mem_aof_buffer": 0,
        "mem_allocator": "libc",
    }


def doctor(server) -> str:
    """MEMORY DOCTOR (getMemoryDoctorReport()): the empty-instance answer below 5 MB,
    then the checks Vermilion can make (peak, big buffers, RSS ratio)."""
    s = memory_stats(server)
    if s["used"] < 1024 * 1024 * 5:
        return ("Hi Sam, this instance is empty or is using very little memory, my issues "
                "detector can't be used in these conditions. Please, leave for your "
                "mission on Earth and fill it with some data. The new Sam and I will be "
                "back to our programming as soon as I finished rebooting.\n")
    issues = []
    if s["peak"] / s["used"] > 1.5:
        issues.append(" * Peak memory: In the past this instance used more than 150% the "
                      "memory that is currently using. The allocator is normally not able "
                      "to release memory after a peak, so you can expect to see a big "
                      "fragmentation ratio, however this is actually harmless and is only "
                      "due to the memory peak, and if the Redis instance Resident Set Size "
                      "(RSS) is currently bigger than expected, the memory will be used as "
                      "soon as you fill the Redis instance with more data. If the memory "
                      "peak was only occasional and you want to try to reclaim memory, "
                      "please try the MEMORY PURGE command, otherwise the only other option "
                      "is to shutdown and restart the instance.\n\n")
    nclients = len(server.clients) or 1
    if s["clients"] / nclients > 1024 * 200:
        issues.append(" * Big client buffers: The clients output buffers are in the "
                      "average greater than 200K per client. This may result from "
                      "different causes, like Pub/Sub clients subscribed to channels bot "
                      "not receiving data fast enough, so that data piles on the Redis "
                      "instance output buffer, or clients sending commands with large "
                      "replies or very large sequences of commands in the same pipeline. "
                      "Please use the CLIENT LIST command in order to investigate the issue "
                      "if it causes problems in your instance, or to understand better why "
                      "certain clients are using a big amount of memory.\n\n")
    if not issues:
        return "Hi Sam, I can't find any memory issue in your instance. I can only account " \
               "for what occurs on this base.\n"
    return ("Sam, I detected a few issues in this Redis instance memory implants:\n\n"
            + "".join(issues)
            + "I'm here to keep you safe, Sam. I want to help you.\n")


# -- table resizing ------------------------------------------------------------------------------

SPARSE_BYTES = 100  # per live key: a table at least 1.5x bigger than a fresh copy's


def shrink_tables(server) -> None:
    """tryResizeHashTables() / dictExpandAllowed(): Python dicts never shrink on delete
    and a churning dict (evictions then inserts) regrows to 3x its live keys. Redis
    resizes a table under 10% full and holds back expansions that would pass maxmemory;
    here a table costing more than ~100 bytes per live key is copied (a fresh dict is
    sized for 1.5x what it holds), which keeps eviction from paying for empty slots."""
    for db in server.dbs:
        for name in ("data", "meta", "expires"):
            d = getattr(db, name)
            size = _getsizeof(d)
            if size > 16384 and size > SPARSE_BYTES * len(d) + 16384:
                setattr(db, name, dict(d))
