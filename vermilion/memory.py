"""Memory reporting: used_memory and what it is made of, kept incrementally.

used_memory = BASE (a documented fixed base: Redis 7.0's own used_memory_startup, so a
maxmemory sized for Redis leaves data the same room) + the dataset (key costs, dict
tables, expiry entries, access metadata) + clients (a fixed cost each plus their query
and output buffers, sampled by the cron: summing every client per command would cost
O(clients) on the hot path).

What one key costs, and its access stamp, are keyspace/cost.py's (Database keeps the
per-key costs and their sum as keys change). Here: the totals over the databases and
the clients, MEMORY USAGE / STATS / DOCTOR figures, memory_fields() for INFO's memory
section, the process's RSS and the machine's memory, and the table shrinking the cron
does (tryResizeHashTables()).
"""

import os
import resource
import sys

from .keyspace.cost import obj_bytes, value_cost

BASE = 876208  # Redis 7.0.15's used_memory_startup on this machine (documented base)
CLIENT_COST = 2048  # a connection: Client, parser, transport (query/output buffers apart)

_getsizeof = sys.getsizeof
GC_HEAD = _getsizeof({}) - {}.__sizeof__()  # what getsizeof() adds to a dict's __sizeof__()
GC_HEADERS = 2 * GC_HEAD  # a database's data and meta dicts


# -- totals ----------------------------------------------------------------------------------------


def db_overhead(db) -> tuple[int, int]:
    """(main table, expires table + entries) of one database, in bytes: the main
    table is the keys' dict and the accounting's (Database.meta: collections, and
    every key's access stamp under an LRU/LFU policy)."""
    main = _getsizeof(db.data) + _getsizeof(db.meta)
    expires = _getsizeof(db.expires) + 32 * len(db.expires) if db.expires else 0
    return main, expires


def dataset_bytes(server, dbs=None) -> int:
    """Key costs plus tables of the databases (all, or those given): O(databases),
    never a keyspace walk (db_overhead() inlined: this runs before every command while
    maxmemory is set)."""
    total = 0
    for db in server.dbs if dbs is None else dbs:
        data = db.data
        if data:
            total += db.mem + _getsizeof(data) + _getsizeof(db.meta)
            expires = db.expires
            if expires:
                total += _getsizeof(expires) + 32 * len(expires)
    return total


# What getClientMemoryUsage() adds for a client's state beside its buffers (pointers and
# list/dict entries, not the keys or channels themselves, which are shared).
WATCHED_KEY_COST = 48  # listNode + watchedKey (multiStateMemOverhead)
QUEUED_CMD_COST = 24  # multiCmd, per command queued in MULTI
ARGV_POINTER = 8  # sizeof(robj*) per argument (c->argv)
PATTERN_COST = 24  # listNode in c->pubsub_patterns (pubsubMemOverhead)
CHANNEL_COST = 32  # dictEntry + its table slot in c->pubsub_channels / shard channels
PREFIX_COST = 32  # sizeof(raxNode) * sizeof(raxNode*) per tracking prefix node


PROTO_MBULK_BIG_ARG = 32 * 1024


def query_buffer_bytes(parser) -> int:
    """sdsZmallocSize(c->querybuf): the bytes received and not parsed yet — or, while a
    big bulk argument (PROTO_MBULK_BIG_ARG or more) is arriving, all of it: Redis sizes
    the query buffer for the whole argument as soon as it has read its header
    (processMultibulkBuffer()'s sdsMakeRoomForNonGreedy(querybuf, ll+2))."""
    buffered = parser.buffered()
    # The pending bulk's length with its CRLF (RequestParser._need; 0 when none).
    pending = getattr(parser, "_need", 0)
    if pending - 2 >= PROTO_MBULK_BIG_ARG and pending > buffered:
        return pending
    return buffered


def client_bytes(client, argv=None, multi_sizes: dict | None = None) -> int:
    """getClientMemoryUsage(): one client's memory: its fixed cost, its query buffer with
    the arguments of the command it is receiving (c->argv_len_sum) or running (argv),
    its replies not sent yet, its MULTI queue, WATCHed keys, subscriptions and tracking
    prefixes. multi_sizes: a cache of MULTI queue sizes (multi_bytes())."""
    parser = client.parser
    argv_len = getattr(parser, "argv_bytes", None)  # (a replica's master link has none)
    total = CLIENT_COST + query_buffer_bytes(parser) + client.output_buffer_size()
    if argv_len is not None:
        total += argv_len()
    if argv is not None:
        total += sum(map(len, argv)) + ARGV_POINTER * len(argv)
    if client.multi is not None:
        total += multi_bytes(client, multi_sizes)
    if client.watched:
        total += WATCHED_KEY_COST * len(client.watched)
    subscriptions = client.subscriptions
    if subscriptions.channels or subscriptions.patterns or subscriptions.shard_channels:
        total += PATTERN_COST * len(subscriptions.patterns) + CHANNEL_COST * (
            len(subscriptions.channels) + len(subscriptions.shard_channels))
    tracking = client.tracking
    if tracking is not None and tracking.prefixes:
        total += PREFIX_COST * len(tracking.prefixes)
    return total


def multi_bytes(client, cache: dict | None) -> int:
    """multiStateMemOverhead()'s queue part: the queued commands' arguments
    (mstate.argv_len_sums) and entries. With a cache (client id → (queue, entries
    counted, bytes)) only the commands queued since the last call are summed."""
    queue = client.multi.queue
    counted, total = 0, 0
    if cache is not None:
        seen = cache.get(client.id)
        if seen is not None and seen[0] is queue and seen[1] <= len(queue):
            _, counted, total = seen
    for _spec, argv in queue[counted:]:
        total += sum(map(len, argv)) + QUEUED_CMD_COST
    if cache is not None:
        cache[client.id] = (queue, len(queue), total)
    return total


def is_replica(client) -> bool:
    flags = getattr(client, "_flags", None)  # (Session.flags would make the set)
    return bool(flags) and "S" in flags


def clients_bytes(server) -> int:
    """The clients' memory but the replicas': what maxmemory counts (Redis leaves the
    replicas' output out, freeMemoryGetNotCountedMemory(), so that a slow replica
    cannot make the master evict its keys)."""
    return refresh_clients(server)


def replicas_bytes(server) -> int:
    """The replica connections' memory (INFO mem_clients_slaves): in used_memory, not
    counted for eviction."""
    # (A replica being closed no longer counts: CLIENT KILL TYPE SLAVE frees it at once.)
    return sum(client_bytes(c) for c in list(server.clients.values())
               if is_replica(c) and not c.closing)


def refresh_clients(server) -> int:
    """Sum the clients again into server.clients_memory (the cron, MEMORY STATS, INFO),
    noting each one's figure in the evictor's client_mem (what client eviction and the
    per-command updates adjust). A client being closed no longer counts: Redis frees
    it (its buffers with it) at once."""
    evictor = getattr(server, "evictor", None)
    if evictor is None:
        server.clients_memory = total = sum(
            client_bytes(c) for c in list(server.clients.values())
            if not is_replica(c) and not c.closing)
        return total
    sizes = evictor.client_mem
    sizes.clear()
    cache = evictor.multi_sizes
    total = 0
    for client in list(server.clients.values()):
        if client.closing or is_replica(client):
            continue
        sizes[client.id] = size = client_bytes(client, None, cache)
        total += size
    server.clients_memory = total
    return total


def used_memory(server) -> int:
    """used_memory as INFO / MEMORY STATS report it: every database, every client."""
    return BASE + dataset_bytes(server) + server.clients_memory + replicas_bytes(server) \
        + eviction_bytes(server)


def eviction_bytes(server) -> int:
    """The eviction's own memory: its snapshots of the keys (eviction.Sampler)."""
    evictor = getattr(server, "evictor", None)
    return evictor.snapshot_bytes if evictor is not None else 0


def used_memory_fast(server, live: list) -> int:
    """The same figure for the OOM check before a command (what maxmemory counts: no
    replica buffers): only the databases known to hold keys, a handful of operations
    (dict.__sizeof__() is what sys.getsizeof() adds the GC header to, without
    getsizeof's special-method lookup: a fifth of the time)."""
    total = BASE + server.clients_memory + server.evictor.snapshot_bytes
    for db in live:
        total += db.mem + db.data.__sizeof__() + db.meta.__sizeof__() + GC_HEADERS
        expires = db.expires
        if expires:
            total += expires.__sizeof__() + GC_HEAD + 32 * len(expires)
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


# -- the process and the machine ----------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """zmalloc_get_rss(): resident pages from /proc/self/statm."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def total_system_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * _PAGE
    except (ValueError, OSError, AttributeError):
        return 0


def bytes_to_human(n: int) -> str:
    # bytesToHuman(): B below 1024, then K, M, G, T, P with two decimals.
    if n < 1024:
        return "%dB" % n
    for unit in "KMGTP":
        n /= 1024
        if n < 1024 or unit == "P":
            return "%.2f%s" % (n, unit)
    return "%.2fP" % n  # pragma: no cover


# -- INFO memory / MEMORY STATS -------------------------------------------------------------------


def memory_stats(server) -> dict:
    """The figures MEMORY STATS and INFO memory share (objectComputeSize's
    getMemoryOverheadData())."""
    clients = refresh_clients(server)
    replicas = replicas_bytes(server)
    eviction = eviction_bytes(server)
    used = BASE + dataset_bytes(server) + clients + replicas + eviction
    peak = server.note_memory_peak(used)
    dbs = []
    overhead = BASE + clients + replicas + eviction
    keys = 0
    for db in server.dbs:
        if not db.data:
            continue
        main, expires = db_overhead(db)
        dbs.append((db.id, main, expires))
        overhead += main + expires
        keys += len(db.data)
    dataset = max(used - overhead, 0)
    rss = rss_bytes()
    return {
        "used": used, "peak": peak, "startup": BASE, "clients": clients, "dbs": dbs,
        "replicas": replicas,
        "overhead": overhead, "keys": keys, "dataset": dataset, "rss": rss,
        # (backlog, total replication buffers): replication/master.py, via the server
        "replication": server.replicas.buffer_bytes(),
    }


def memory_fields(server) -> dict:
    """INFO's memory section with Redis 7.0's field names."""
    s = memory_stats(server)
    used, peak, rss, dataset = s["used"], s["peak"], s["rss"], s["dataset"]
    maxmemory = server.config["maxmemory"]
    system = total_system_memory()
    frag = rss / used if used else 0.0
    h = bytes_to_human
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
        "mem_not_counted_for_evict": s["replicas"],
        "mem_replication_backlog": s["replication"][0],
        "mem_total_replication_buffers": s["replication"][1],
        "mem_clients_slaves": s["replicas"],
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
