"""MEMORY USAGE / STATS / DOCTOR / PURGE / MALLOC-STATS / HELP (object.c memoryCommand)."""

import gc

from .. import memory
from ..keyspace.cost import SAMPLES
from ..protocol import errors
from ..protocol.encode import OK, Verbatim
from ..protocol.errors import CommandError
from ..protocol.numbers import to_int
from .registry import command

MEMORY_HELP = [
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
]


@command("memory usage")
def memory_usage(client, argv):
    samples = SAMPLES
    j = 3
    while j < len(argv):
        # Only "SAMPLES <n>" pairs; a negative count is a syntax error, 0 means all.
        if argv[j].lower() != b"samples" or j + 1 >= len(argv):
            raise CommandError(errors.SYNTAX)
        samples = to_int(argv[j + 1])
        if samples is None:
            raise CommandError(errors.NOT_INTEGER)
        if samples < 0:
            raise CommandError(errors.SYNTAX)
        j += 2
    # dictFind() on the main dict: no lazy expiry, no access update.
    return memory.usage_of(client.db, argv[2], samples)


@command("memory stats")
def memory_stats(client, argv):
    s = memory.memory_stats(client.server)
    used, startup = s["used"], s["startup"]
    net = used - startup
    reply = {
        b"peak.allocated": s["peak"],
        b"total.allocated": used,
        b"startup.allocated": startup,
        b"replication.backlog": 0,
        b"clients.slaves": s["replicas"],
        b"clients.normal": s["clients"],
        b"cluster.links": 0,
        b"aof.buffer": 0,
        b"lua.caches": 0,
        b"functions.caches": 0,
    }
    for db_id, main, expires in s["dbs"]:
        reply[b"db.%d" % db_id] = {
            b"overhead.hashtable.main": main,
            b"overhead.hashtable.expires": expires,
            b"overhead.hashtable.slot-to-keys": 0,
        }
    keys = s["keys"]
    rss = s["rss"]
    reply.update({
        b"overhead.total": s["overhead"],
        b"keys.count": keys,
        b"keys.bytes-per-key": net // keys if keys else 0,
        b"dataset.bytes": s["dataset"],
        b"dataset.percentage": s["dataset"] * 100.0 / net if net > 0 else 0.0,
        b"peak.percentage": used * 100.0 / s["peak"] if s["peak"] else 0.0,
        b"allocator.allocated": used,
        b"allocator.active": used,
        b"allocator.resident": rss,
        b"allocator-fragmentation.ratio": 1.0,
        b"allocator-fragmentation.bytes": 0,
        b"allocator-rss.ratio": rss / used if used else 0.0,
        b"allocator-rss.bytes": rss - used,
        b"rss-overhead.ratio": 1.0,
        b"rss-overhead.bytes": 0,
        b"fragmentation": rss / used if used else 0.0,
        b"fragmentation.bytes": rss - used,
    })
    return reply


@command("memory doctor")
def memory_doctor(client, argv):
    return Verbatim(memory.doctor(client.server).encode())


@command("memory malloc-stats")
def memory_malloc_stats(client, argv):
    # Not jemalloc: Redis's answer for any other allocator.
    return Verbatim(b"Stats not supported for the current allocator")


@command("memory purge")
def memory_purge(client, argv):
    # jemalloc_purge() releases dirty pages; the nearest Python thing is a full collection.
    gc.collect()
    return OK


@command("memory help")
def memory_help(client, argv):
    return MEMORY_HELP
