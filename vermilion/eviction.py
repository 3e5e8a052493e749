"""maxmemory: Redis's evict.c — performEvictions() before commands, the eviction pool.

While maxmemory is set (or an LRU/LFU policy needs access data) a check sits in
server.hooks.command_checks: it records the access of the command's keys (lookupKey()'s
LRU clock / updateLFU()) and runs perform_evictions(); when that cannot get under the
limit a denyoom command gets -OOM, reads and DEL still run. Nothing of this costs a
thing while maxmemory is 0 and the policy is not LRU/LFU: the check is not installed.

The policies pick as Redis does: LRU/LFU/volatile-ttl sample maxmemory-samples keys per
database for each eviction into a pool of the best candidates kept across calls
(evictionPoolPopulate), evicting the best one still present; *-random take random keys
of the databases in turn; volatile-* sample only keys with a TTL. The sampling is done
in batches of whole-list operations (see "choosing keys"), and small keys are evicted
a batch at a time, a little ahead of need (EVICT_AHEAD). maxmemory-eviction-tenacity
bounds the time of one call; the rest continues from the event loop (evictionTimeProc).
"""

import random
import sys
import time
from bisect import bisect_left
from itertools import chain, compress, groupby, islice, repeat
from operator import and_, eq, gt, is_, itemgetter

_random = random.random
_perf = time.perf_counter
_getsizeof = sys.getsizeof

from . import memory
from .memory import BASE, GC_HEAD, GC_HEADERS
from .keyspace.cost import COST_MASK, LRU_CLOCK_MAX, STAMP_SHIFT, LFUParams, lfu_decr, lru_clock
from .log import logger
from .propagate import propagate_raw

try:  # keyspace notifications (notify.py) may land after this module
    from .notify import notify_event
except ImportError:  # pragma: no cover
    notify_event = None
from .protocol import errors
from .protocol.errors import CommandError

EVICT_OK, EVICT_RUNNING, EVICT_FAIL = 0, 1, 2
ULLONG_MAX = (1 << 64) - 1

# lookupKey() with LOOKUP_NOTOUCH: introspection does not count as an access.
NOTOUCH = frozenset((
    "exists", "type", "ttl", "pttl", "expiretime", "pexpiretime", "touch",
    "object|encoding", "object|freq", "object|idletime", "object|refcount",
    "memory|usage", "debug", "dump", "scan", "keys", "randomkey",
))


class Evictor:
    """The eviction state of one server (evict.c's statics and server fields):
    server.evictor, attached by install() from Server.__init__."""

    def __init__(self, server):
        self.server = server
        self.maxmemory = 0
        self.policy = "noeviction"
        self.allkeys = False
        self.kind = None  # "lru" | "lfu" | "ttl" | "random" | None
        self.samples = 5
        self.tenacity = 10
        self.pool: list = []  # (rank, stamp or TTL seen, key, Sampler, slot): best last
        self.pool_mode = None  # how the pool's candidates were ranked (_refill)
        self.served = 0  # candidates taken from the pool since it was last refilled
        self.next_db = 0
        self.timer = None  # evictionTimeProc pending
        self.samplers: dict = {}  # (db id, allkeys) → Sampler
        self.snapshot_bytes = 0  # the samplers' lists, counted in used_memory
        self.key_ranges = _KeyRanges()  # spec → its key's position, (first, last, step) or None
        self.installed = False
        self.track = 0  # 1: LRU clock, 2: LFU counter kept per key
        self.live: list = []  # the databases that hold keys (or did since the cron)
        self.over = False  # used_memory was over maxmemory at the last measure
        self.clients_counted = 0  # len(server.clients) when their memory was last summed
        # server.lruclock: LRU_CLOCK() as the cron refreshes it (hz times a second, far
        # finer than the 1 s resolution), pre-shifted into meta's stamp bits.
        self.lru_stamp = lru_clock() << STAMP_SHIFT
        # lfu-log-factor / lfu-decay-time, shared with every Database (db.lfu) for
        # lookupKey()'s updateLFU(): one object, updated in place by configure().
        self.lfu = LFUParams()
        # server.script_oom: the eviction check found the server out of memory at the
        # start of the running script (EVAL, FCALL); scriptVerifyOOM() and FCALL read it.
        self.script_oom = False
        self.script_run = None  # the script whose writes script_wrote follows
        self.script_wrote = False
        self.exceeded_since = 0.0
        self.exceeded_total = 0.0
        # -- the clients' memory (updateClientMemUsageAndBucket()) and maxmemory-clients
        self.clients_limit = 0  # getClientEvictionLimit(): bytes, 0 = no client eviction
        self.client_mem: dict = {}  # client id → its bytes as counted in clients_memory
        self.multi_sizes: dict = {}  # client id → its MULTI queue's size (memory.multi_bytes)
        self.traffic_seen = 0  # net input + output bytes when the clients were last summed
        self.last_client = None  # who ran the last command: its buffers changed since


# The directives configure() applies (Server.__init__ registers it for each).
DIRECTIVES = ("maxmemory", "maxmemory-policy", "maxmemory-samples",
              "maxmemory-eviction-tenacity", "lfu-log-factor", "lfu-decay-time",
              "maxmemory-clients")


def install(server) -> None:
    """Attach the memory accounting and maxmemory to a Server (from Server.__init__,
    which also registers cron() and swap_accounting()): its Evictor, the databases'
    hooks and LFU parameters, the used_memory function — fields the Server and Database
    declare."""
    server.evictor = ev = Evictor(server)

    def first_key(db):
        if db not in ev.live:
            ev.live.append(db)

    for db in server.dbs:
        db.on_first_key = first_key
        db.lfu = ev.lfu
    _refresh_live(server)
    server.memory_usage = lambda: memory.used_memory(server)
    refresh_clients(server)
    configure(server)


def configure(server, _value=None) -> None:
    """The apply callback of maxmemory, maxmemory-policy, maxmemory-samples,
    maxmemory-eviction-tenacity, lfu-log-factor, lfu-decay-time and maxmemory-clients."""
    ev = server.evictor
    config = server.config
    ev.maxmemory = config["maxmemory"]
    ev.clients_limit = clients_limit(server)
    policy = config["maxmemory-policy"]
    if policy != ev.policy or not config["maxmemory"]:
        ev.pool = []  # candidates ranked for another policy (or no more eviction)
        ev.samplers = {}  # snapshots of what ranked them
        ev.snapshot_bytes = 0
    ev.policy = policy
    ev.allkeys = policy.startswith("allkeys")
    ev.kind = None if policy == "noeviction" else policy.split("-")[1]
    ev.samples = config["maxmemory-samples"]
    ev.tenacity = config["maxmemory-eviction-tenacity"]
    ev.lfu.log_factor = config["lfu-log-factor"]
    ev.lfu.decay_time = config["lfu-decay-time"]
    ev.track = track = {"lru": 1, "lfu": 2}.get(ev.kind, 0)
    for db in server.dbs:
        db.clock = ev.lru_stamp
        if db.track != track:
            db.restamp(track)
    # A lower limit takes effect at the next command, whatever it is (Redis evicts in
    # performEvictions() before every command).
    ev.over = bool(ev.maxmemory) and \
        memory.used_memory_fast(server, ev.live) > ev.maxmemory
    # A lower maxmemory-clients evicts at the next command (processCommand()'s
    # evictClients()); the clients are summed again before it.
    if ev.clients_limit:
        ev.traffic_seen = SUM_AGAIN
    wanted = bool(ev.maxmemory) or bool(track) or bool(ev.clients_limit)
    if wanted and not ev.installed:
        server.hooks.command_checks.append(ev_check)
        ev.installed = True
    elif not wanted and ev.installed:
        server.hooks.command_checks.remove(ev_check)
        ev.installed = False


def swap_accounting(server, a: int, b: int) -> None:
    # SWAPDB swaps data and expires; the accounting goes with them.
    x, y = server.dbs[a], server.dbs[b]
    x.meta, y.meta = y.meta, x.meta
    x.mem, y.mem = y.mem, x.mem
    server.evictor.pool = []  # candidates name keys of the databases they came from
    _refresh_live(server)


def _refresh_live(server) -> None:
    # The databases that hold keys (a database emptied since is dropped here; one that
    # gets a first key joins at once, through Database.on_first_key).
    server.evictor.live = [db for db in server.dbs if db.data]


def refresh_clients(server) -> int:
    """memory.refresh_clients(), noting how many clients were summed and the traffic
    since which they were."""
    ev = server.evictor
    ev.clients_counted = len(server.clients)
    stats = server.stats
    ev.traffic_seen = stats.total_net_input_bytes + stats.total_net_output_bytes
    return memory.refresh_clients(server)


def client_closed(server, client) -> None:
    """A client left (hooks.client_close): its memory no longer counts (freeClient())."""
    ev = server.evictor
    size = ev.client_mem.pop(client.id, None)
    if size is not None:
        server.clients_memory -= size
    ev.multi_sizes.pop(client.id, None)
    if ev.last_client is client:
        ev.last_client = None


# Bytes of network traffic (per client, at least REFRESH_BYTES in all) after which the
# clients are summed again before a command: query buffers filled by clients that do not
# complete a command, replies piling up for clients that do not read them (a PUBLISH to
# subscribers) — what Redis's incremental updateClientMemUsage() follows at each read and
# write. O(clients) per that much traffic.
REFRESH_BYTES = 64 * 1024
SUM_AGAIN = -(1 << 62)  # a traffic mark that any traffic passes: sum at the next command
REFRESH_BYTES_PER_CLIENT = 1024


def _update_clients(server, ev, client, argv) -> bool:
    """The clients' memory before a command: all of them again after enough traffic,
    and under maxmemory-clients the client about to run and the one that ran last
    (processCommandAndResetClient()'s updateClientMemUsageAndBucket() after a command,
    which its replies made grow). True when all were summed again."""
    stats = server.stats
    traffic = stats.total_net_input_bytes + stats.total_net_output_bytes
    clients = server.clients
    refreshed = traffic - ev.traffic_seen > max(
        REFRESH_BYTES, REFRESH_BYTES_PER_CLIENT * len(clients))
    if refreshed:
        refresh_clients(server)
    if ev.clients_limit:
        last = ev.last_client
        if last is not None and last is not client:
            _recount(server, ev, last, None)
        # Redis counts a command's arguments when it saw the command incomplete at the
        # end of a read (updateClientMemUsage() in readQueryFromClient()): one bigger
        # than a read buffer (PROTO_IOBUF_LEN). A small one is counted after it ran.
        if sum(map(len, argv)) <= PROTO_IOBUF_LEN:
            argv = None
        _recount(server, ev, client, argv)
        ev.last_client = client
    return refreshed


PROTO_IOBUF_LEN = 16 * 1024


def _recount(server, ev, client, argv) -> None:
    # updateClientMemoryUsage() of one client (not replicas, nor one being closed).
    if client.closing or memory.is_replica(client):
        return
    size = memory.client_bytes(client, argv, ev.multi_sizes)
    server.clients_memory += size - ev.client_mem.get(client.id, 0)
    ev.client_mem[client.id] = size


def cron(server) -> None:
    ev = server.evictor
    stamp = lru_clock() << STAMP_SHIFT
    if stamp != ev.lru_stamp:
        # A new second: one new int object, shared by every key stamped until the next.
        ev.lru_stamp = stamp
        for db in server.dbs:
            db.clock = stamp
    refresh_clients(server)
    if ev.clients_limit:
        evict_clients(server)
    _drop_stale_snapshots(ev)
    memory.shrink_tables(server)
    _refresh_live(server)
    ev = server.evictor
    if ev.maxmemory and ev.timer is None:
        perform_evictions(server)
    elif ev.exceeded_since:
        _note_exceeded(ev, False)


# -- the per-command check ---------------------------------------------------------------------


def ev_check(client, spec, argv) -> None:
    # Runs before every command while installed: keep it to a few dict operations.
    server = client.server
    ev = server.evictor
    if ev.clients_limit:
        _check_clients(server, ev, client, argv)
    elif ev.maxmemory:
        # (Under maxmemory alone, only past REFRESH_BYTES of traffic: _update_clients()
        # then decides by the number of clients.)
        stats = server.stats
        if stats.total_net_input_bytes + stats.total_net_output_bytes - ev.traffic_seen \
                > REFRESH_BYTES and client.connected and _update_clients(server, ev, client, argv):
            ev.over = True  # measure used_memory below with the clients as they are now
    track = ev.track
    if track:
        # lookupKey()'s access update for the command's keys.
        where = ev.key_ranges[spec]
        if where.__class__ is int:  # one key (GET, SET, HSET...)
            if where < len(argv):
                if track == 1:
                    # The clock the cron keeps: the shared int itself for a string (its
                    # entry holds no cost).
                    meta = client.db.meta
                    key = argv[where]
                    old = meta.get(key)
                    if old is not None:
                        cost = old & COST_MASK
                        meta[key] = ev.lru_stamp | cost if cost else ev.lru_stamp
                else:
                    client.db.note_access(argv[where])
        elif where is not None:
            _note_keys(ev, client.db, where, argv)
    maxmemory = ev.maxmemory
    if maxmemory and (spec.denyoom or ev.over or spec.fullname in _CHECKED
                      or client.multi is not None):
        # performEvictions() before the commands whose outcome depends on it (denyoom,
        # EXEC, anything queued in MULTI, a script's start), and before every command
        # while memory is known to be over the limit (after CONFIG SET maxmemory, or
        # when the cron found it so), as Redis runs it before all commands.
        if client.script:  # the running script's session (scriptVerifyOOM())
            _script_check(ev, server.scripting.current, spec)
            return
        # memory.used_memory_fast() inlined
        used = BASE + server.clients_memory + ev.snapshot_bytes
        for db in ev.live:
            used += db.mem + db.data.__sizeof__() + db.meta.__sizeof__() + GC_HEADERS
            if db.expires:
                expires = db.expires
                used += expires.__sizeof__() + GC_HEAD + 32 * len(expires)
        if used <= maxmemory:
            # A write may take memory over the limit: measure again before the next
            # command, whatever it is (a GETBIT after a big SETBIT evicts first).
            ev.over = spec.denyoom
            if ev.script_oom and spec.fullname in _SCRIPT_STARTS:
                ev.script_oom = False
            return
        oom = perform_evictions(server, used) == EVICT_FAIL
        if (oom or ev.script_oom) and spec.fullname in _SCRIPT_STARTS:
            ev.script_oom = oom
        if oom and _reject_on_oom(client, spec):
            raise CommandError(errors.OOM)


def _check_clients(server, ev, client, argv) -> None:
    """ev_check() under maxmemory-clients: the clients' memory summed as it changed
    (_update_clients()), then processCommand()'s evictClients() before the key eviction,
    after the last command's replies grew some client's output buffer."""
    if client.connected and _update_clients(server, ev, client, argv):
        ev.over = True  # measure used_memory with the clients as they are now
    if server.clients_memory >= ev.clients_limit and client.connected:
        evict_clients(server)
        if client.closing:
            # It evicted the client itself: the command is not run (C_ERR), and
            # nothing reaches it any more.
            raise CommandError(errors.OOM)


# Commands that run a script: processCommand() saves server.script_oom at their start.
_SCRIPT_STARTS = frozenset(("eval", "eval_ro", "evalsha", "evalsha_ro", "fcall", "fcall_ro"))
_CHECKED = _SCRIPT_STARTS | {"exec"}


def _script_check(ev, run, spec) -> None:
    """scriptVerifyOOM(): no evictions inside a script; a denyoom command is refused
    when the script started out of memory and has not written yet."""
    if ev.script_run is not run:
        ev.script_run = run
        ev.script_wrote = False
    if spec.denyoom and ev.script_oom and not ev.script_wrote:
        raise CommandError(errors.OOM)
    if spec.is_write:
        ev.script_wrote = True


# processCommand(): inside MULTI everything but these is refused on OOM (queueing
# itself costs memory); EXEC counts as denyoom when its queue holds a denyoom command.
_MULTI_ALLOWED = frozenset(("exec", "discard", "quit", "reset"))


def _reject_on_oom(client, spec) -> bool:
    if spec.denyoom:
        return True
    if client.multi is None:
        return False
    if spec.fullname == "exec":
        return client.multi.holds("denyoom")
    return spec.fullname not in _MULTI_ALLOWED


class _KeyRanges(dict):
    """Where each command's keys are, computed on first use: the position of its one
    key, (first, last, step) for several, None for none (or a command that does not
    count as an access)."""

    def __missing__(self, spec):
        where = None
        if spec.first_key and spec.fullname not in NOTOUCH:
            if spec.first_key == spec.last_key:
                where = spec.first_key
            else:
                where = (spec.first_key, spec.last_key, spec.key_step or 1)
        self[spec] = where
        return where


def _note_keys(ev, db, ranges, argv) -> None:
    # lookupKey() updates the access data of every key a command reads or writes.
    meta = db.meta
    if not meta:
        return
    first, last, step = ranges
    argc = len(argv)
    if last < 0:
        last += argc
    if last >= argc:
        last = argc - 1
    if ev.track == 1:
        # The LRU clock: one store per existing key.
        stamp = ev.lru_stamp
        get = meta.get
        for i in range(first, last + 1, step):
            key = argv[i]
            old = get(key)
            if old is not None:
                cost = old & COST_MASK
                meta[key] = stamp | cost if cost else stamp
    else:
        note = db.note_access
        for i in range(first, last + 1, step):
            note(argv[i])


# -- performEvictions --------------------------------------------------------------------------


def eviction_time_limit_us(tenacity: int) -> float:
    # evictionTimeLimitUs(): 0..500 µs linearly up to 10, then +15% a step, 100 = none.
    if tenacity <= 10:
        return 50.0 * tenacity
    if tenacity < 100:
        return 500.0 * 1.15 ** (tenacity - 10.0)
    return float("inf")


def _safe_to_evict(server) -> bool:
    # isSafeToPerformEvictions(): not while loading, nor while writes are paused, nor
    # on a replica that ignores maxmemory (its master's DELs evict for it).
    if server.loading:
        return False
    if server.replica_mode and server.config["replica-ignore-maxmemory"]:
        return False
    if server.pause_until and server.pause_until > time.time():
        return False
    return True


def perform_evictions(server, used: int | None = None) -> int:
    """Evict keys until used_memory is under maxmemory: EVICT_OK, EVICT_RUNNING (the
    time limit was hit, the rest continues from the loop) or EVICT_FAIL."""
    ev = server.evictor
    if (server.loading or server.replica_mode or server.pause_until) \
            and not _safe_to_evict(server):
        return EVICT_OK
    if used is None:
        used = memory.used_memory_fast(server, ev.live)
    maxmemory = ev.maxmemory
    if used > maxmemory and len(server.clients) != ev.clients_counted:
        # Clients came or went since the cron summed their buffers: a client gone with
        # megabytes of replies must not cost keys (Redis frees its buffers at once).
        before = server.clients_memory
        used += refresh_clients(server) - before
    if used <= maxmemory:
        ev.over = False
        if ev.exceeded_since:
            _note_exceeded(ev, False)
        return EVICT_OK
    kind = ev.kind
    if kind is None:
        ev.over = True
        _note_exceeded(ev, True)
        return EVICT_FAIL
    # The keys evicted ahead (see EVICT_AHEAD): what must be freed, and what may be.
    need = used - maxmemory
    want = need + min(EVICT_AHEAD, maxmemory >> 9)
    start = _perf()
    freed = keys_freed = 0
    key_bytes = 0  # what the keys this call evicted freed, on average
    measure_at = 16
    result = EVICT_OK
    pool = ev.pool
    served = ev.served
    # Past need, only keys that fit what is left of the margin: a big key is evicted
    # when a write needs the room, not ahead of it.
    while freed < need or (freed < want and key_bytes <= want - freed):
        # The best candidates of the pool, checked: a key gone, renewed or accessed since
        # it was sampled (its stamp or TTL changed) is a ghost and is dropped, as
        # evictionPoolPopulate()'s picks are when their key is gone.
        if not pool or served >= REFILL_EVERY:
            _refill(ev, server)
            pool = ev.pool
            if not pool:
                # Nothing to evict: no key (with a TTL, for volatile-*), or a sample of
                # only ghosts, which a fresh copy of the keys fixes (a copy that is
                # fresh is all live keys: one more try then decides).
                _refill(ev, server)
                pool = ev.pool
                if not pool:
                    if freed < need:
                        result = EVICT_FAIL
                    break
            served = 0
        # As many as the keys evicted so far say are needed (one while their size is
        # unknown), within the refill's period.
        if not key_bytes:
            n = 1
        elif freed < need:
            n = min(len(pool), REFILL_EVERY - served, (want - freed) // key_bytes + 1)
        else:
            n = min(len(pool), REFILL_EVERY - served, (want - freed) // key_bytes)
        batch = pool[-n:]
        del pool[-n:]
        served += n
        count, size = _evict_batch(server, ev, batch)
        if count:
            freed += size
            keys_freed += count
            key_bytes = freed // keys_freed
        if keys_freed >= measure_at:
            measure_at = keys_freed + 16
            # The dict tables do not shrink, so measure again rather than trust the sum.
            if memory.used_memory_fast(server, ev.live) <= maxmemory:
                break
            if (_perf() - start) * 1e6 > eviction_time_limit_us(ev.tenacity):
                _start_timer(server)
                result = EVICT_RUNNING
                break
    ev.served = served
    if result == EVICT_OK and ev.timer is not None:
        result = EVICT_RUNNING
    ev.over = over = result != EVICT_OK
    if over or ev.exceeded_since:
        _note_exceeded(ev, over)
    return result


def _evict_batch(server, ev, batch: list) -> tuple[int, int]:
    """Evict the candidates of batch (pool entries) that are still what was sampled:
    (keys evicted, bytes freed). Each slot is dropped from its snapshot either way. In
    C loops, one database's run of candidates at a time (one run, in the usual case)."""
    kind = ev.kind
    allkeys = ev.allkeys
    count = freed = 0
    for sampler, entries in groupby(batch, _fourth):
        entries = list(entries)
        keys = list(map(_third, entries))
        sampler.drop(keys, list(map(_fifth, entries)))
        db = sampler.db
        if kind == "lru" or kind == "lfu":
            alive = map(eq, map(db.meta.get, keys), map(_second, entries))
            if not allkeys:
                alive = map(and_, alive, map(db.expires.__contains__, keys))
        elif kind == "ttl":
            alive = map(eq, map(db.expires.get, keys), map(_second, entries))
        else:
            alive = map((db.data if allkeys else db.expires).__contains__, keys)
        # (dict.fromkeys: a key sampled twice is in the pool twice)
        victims = list(dict.fromkeys(compress(keys, alive)))
        if not victims:
            continue
        freed += db.evict(victims)
        count += len(victims)
        server.stats.evicted_keys += len(victims)
        if server.notifier.classes:
            for key in victims:
                notify_event(server, db, "evicted", key, flag="e")
        if server.propagation.sinks:
            cmd = b"UNLINK" if server.config["lazyfree-lazy-eviction"] else b"DEL"
            for key in victims:
                propagate_raw(server, db.id, [cmd, key])
    return count, freed


def stats_fields(server) -> dict:
    """INFO stats' eviction timing fields (stat_last_eviction_exceeded_time), in ms."""
    ev = server.evictor
    current = (time.monotonic() - ev.exceeded_since) if ev.exceeded_since else 0.0
    return {
        "total_eviction_exceeded_time": int((ev.exceeded_total + current) * 1000),
        "current_eviction_exceeded_time": int(current * 1000),
    }


def _note_exceeded(ev, exceeded: bool) -> None:
    # stat_last_eviction_exceeded_time / total_eviction_exceeded_time (INFO stats).
    if exceeded:
        if not ev.exceeded_since:
            ev.exceeded_since = time.monotonic()
    elif ev.exceeded_since:
        ev.exceeded_total += time.monotonic() - ev.exceeded_since
        ev.exceeded_since = 0.0


def _start_timer(server) -> None:
    # startEvictionTimeProc(): continue on the next loop iteration while EVICT_RUNNING.
    ev = server.evictor
    if ev.timer is not None or server.loop is None:
        return

    def proc():
        ev.timer = None
        if ev.maxmemory and perform_evictions(server) == EVICT_RUNNING and ev.timer is None:
            _start_timer(server)

    ev.timer = server.loop.call_soon(proc)


# -- choosing keys -----------------------------------------------------------------------------
# evictionPoolPopulate() samples maxmemory-samples keys of every database before each
# eviction into a pool of the 16 best candidates kept across calls, and evicts the best.
# Here the same sampling rate is taken in batches: every REFILL_EVERY evictions (or when
# the pool runs dry) samples * REFILL_EVERY keys of every database are sampled at once
# and the best POOL_SIZE of them and of the candidates left are kept.
#
# A sample is a lattice slice of a snapshot (Sampler) of the keys and, for LRU, LFU and
# TTL, of what ranks them: the access stamps (shared ints, a handful of objects) or the
# expire times. Slicing, sorting and picking are whole-list operations on those ints;
# only the picked keys are touched, which matters on a big keyspace where every key
# read is a cache miss. A snapshot value can be stale (the key was read, renewed or
# deleted since): every candidate is checked again when its turn comes
# (_evict_batch), and its slot in the snapshot is dropped either way (Sampler.drop).

REFILL_EVERY = 32
POOL_SIZE = 64
# performEvictions() frees until used memory is under maxmemory: under steady writes of
# new keys every command evicts about one, a key at a time. Here a call goes on past
# that, up to EVICT_AHEAD bytes more (at most a 512th of maxmemory), with keys that fit
# what is left of that margin (a bigger key is evicted only when a write needs its
# room, as in Redis), taken from the pool in batches sized by the keys evicted so far:
# a batch is a few C-level list operations (_evict_batch), and the next commands find
# memory under the limit. Under the seed's 2mb allkeys-lru with 100-byte values that
# is ~17 keys a call, and SET runs ~20% faster than a key per call.
EVICT_AHEAD = 4096
GHOST = 1 << 128  # a dropped slot's value: after every real stamp or expire time
_GHOST_KEY = object()  # a dropped slot's key where the snapshot has no values: in no dict


class Sampler:
    """A snapshot of one database's keys (and, when asked, their values) sampled in
    lattice slices [offset::step] at a random offset: every key equally likely, spread
    over the whole keyspace, one C-level slice. It is taken again when the dict object
    changed, after it served twice its length in samples, when a quarter of its slots
    were dropped (keys evicted or found stale), or when the dict grew a quarter past it
    (keys added since the snapshot are not sampled until the next one). A snapshot costs
    ~20 ns a key (mostly cache misses on the keys' reference counts): under steady
    eviction one is taken every n/4 evictions."""
    __slots__ = ("db", "keys", "vals", "source", "picks", "ghosts", "nbytes")

    def __init__(self, db):
        self.db = db
        self.nbytes = 0  # the snapshot lists' size (Evictor.snapshot_bytes sums them)
        self.keys: list = []
        self.vals: list | None = None
        self.source = None
        self.picks = 0
        self.ghosts = 0

    def lattice(self, source: dict, count: int, values: bool) -> tuple[int, int]:
        """(offset, step) of a sample of about count slots of a snapshot of source
        (all of them when it is that small)."""
        m = len(self.keys)
        n = len(source)
        if self.source is not source or n <= count or self.ghosts * 4 > m \
                or self.picks > m << 1 or n * 4 > m * 5 or (values and self.vals is None):
            self.keys = list(source)
            self.vals = list(source.values()) if values else None
            self.source = source
            self.picks = self.ghosts = 0
            self.nbytes = _getsizeof(self.keys) + (_getsizeof(self.vals) if values else 0)
            m = n
        self.picks += count
        if m <= count:
            return 0, 1
        step = m // count
        return int(_random() * step), step

    def drop(self, keys: list, slots: list) -> None:
        """The candidates at slots (their keys) were evicted or found stale: not to be
        sampled again. A snapshot taken since is another list: a slot there that holds
        another key, or is past its end, is left alone."""
        snapshot = self.keys
        try:
            held = list(map(is_, map(snapshot.__getitem__, slots), keys))
        except IndexError:  # a shorter snapshot since
            n = len(snapshot)
            held = [slot < n and snapshot[slot] is key for slot, key in zip(slots, keys)]
        dropped = list(compress(slots, held))
        marks, mark = (self.vals, GHOST) if self.vals is not None else (snapshot, _GHOST_KEY)
        for slot in dropped:
            marks[slot] = mark
        self.ghosts += len(dropped)


def _sampler(ev, db, allkeys: bool) -> Sampler:
    sampler = ev.samplers.get((db.id, allkeys))
    if sampler is None or sampler.db is not db:
        sampler = ev.samplers[(db.id, allkeys)] = Sampler(db)
    return sampler


_first = itemgetter(0)
_second, _third, _fourth, _fifth = (itemgetter(i) for i in range(1, 5))


def _take(seq, positions: list) -> list:
    """[seq[i] for i in positions], in C."""
    if len(positions) == 1:
        return [seq[positions[0]]]
    return list(itemgetter(*positions)(seq))


def _refill(ev, server) -> None:
    """evictionPoolPopulate() for a batch of evictions: ev.pool = the best candidates,
    (rank, what was seen, key, sampler, slot) with the best (smallest rank) last, from
    fresh samples of every database and the candidates still in the pool."""
    kind = ev.kind
    allkeys = ev.allkeys
    if kind == "random":
        ev.pool = _random_candidates(ev, server)
        return
    want = ev.samples * REFILL_EVERY
    samples = []  # (sampler, offset, step, values seen, their ranks: smaller is better)
    for db in ev.live:
        if not (db.data if allkeys else db.expires):
            continue
        sampler = _sampler(ev, db, allkeys)
        if kind == "ttl" or allkeys:
            # The snapshot's values order the keys: expire times, or the access stamps
            # (under an LRU/LFU policy every key has its meta entry).
            offset, step = sampler.lattice(db.expires if kind == "ttl" else db.meta,
                                           want, True)
            seen = sampler.vals[offset::step]
        else:
            # volatile-lru/lfu: the keys with a TTL, their stamps looked up.
            offset, step = sampler.lattice(db.expires, want, False)
            seen = list(map(db.meta.get, sampler.keys[offset::step], repeat(GHOST)))
        samples.append([sampler, offset, step, seen, seen])
    mode = kind
    if kind == "lfu":
        # The counter after its decay (LFUDecrAndReturn): the smaller, the better. The
        # stamps are shared ints, so a table of the few distinct ones does it.
        decay = ev.lfu.decay_time
        _rank_by(samples, lambda value: lfu_decr(value >> STAMP_SHIFT, decay))
    order = _order(samples)
    live = bisect_left(order, GHOST)
    if kind == "lru" and live and order[live - 1] > ev.lru_stamp | COST_MASK:
        # Stamps from before the 24-bit clock's wrap (every 194 days, or set back by
        # RESTORE IDLETIME): rank by the idle time itself (negated: the smaller, the
        # better), as estimateObjectIdleTime() measures it.
        clock = ev.lru_stamp >> STAMP_SHIFT
        _rank_by(samples, lambda value: -((clock - (value >> STAMP_SHIFT)) & LRU_CLOCK_MAX))
        mode = "lru-wrapped"
        order = _order(samples)
    # Candidates left from a refill that ranked another way are dropped (their slots
    # stay in the snapshots, to be sampled again).
    picked = ev.pool if ev.pool_mode == mode else []
    ev.pool_mode = mode
    if live:
        threshold = order[min(live, POOL_SIZE) - 1]
        # Every rank under the threshold, and as many equal to it as fit the pool.
        quota = POOL_SIZE - bisect_left(order, threshold)
        for sampler, offset, step, seen, ranks in samples:
            slots = range(offset, offset + step * len(seen), step)
            if order[0] == threshold:  # the usual LRU case: one second's stamps
                below = ()
            else:
                below = list(compress(range(len(seen)), map(gt, repeat(threshold), ranks)))
            ties = ()
            if quota > 0:
                ties = list(islice(compress(range(len(seen)), map(eq, repeat(threshold), ranks)),
                                   quota))
                quota -= len(ties)
            if below or ties:
                chosen = [*below, *ties]
                where = _take(slots, chosen)
                picked += zip(_take(ranks, chosen), _take(seen, chosen),
                              _take(sampler.keys, where), repeat(sampler), where)
    picked.sort(key=_first)
    del picked[POOL_SIZE:]
    picked.reverse()  # the best (smallest rank) last
    ev.pool = picked
    _count_snapshots(ev)


def _count_snapshots(ev) -> None:
    ev.snapshot_bytes = sum(sampler.nbytes for sampler in ev.samplers.values())


def _drop_stale_snapshots(ev) -> None:
    """From the cron: a snapshot of a dict its database no longer uses (FLUSHDB, SWAPDB,
    a load) holds the old keys alive; it goes (a new one is taken when needed)."""
    stale = [where for where, sampler in ev.samplers.items()
             if sampler.source is not None and sampler.source is not sampler.db.meta
             and sampler.source is not sampler.db.data
             and sampler.source is not sampler.db.expires]
    for where in stale:
        del ev.samplers[where]
    if stale:
        ev.pool = []
        _count_snapshots(ev)


def _order(samples: list) -> list:
    """The samples' ranks, sorted."""
    if len(samples) == 1:
        return sorted(samples[0][4])
    return sorted(chain.from_iterable(sample[4] for sample in samples))


def _rank_by(samples: list, rank) -> None:
    """Each sample's ranks: rank(value) for each value seen, computed once per distinct
    value (the stamps are shared ints), a dropped slot ranking last."""
    for sample in samples:
        seen = sample[3]
        table = {value: rank(value) for value in set(seen) if value is not GHOST}
        sample[4] = list(map(table.get, seen, repeat(GHOST)))


def _random_candidates(ev, server) -> list:
    """allkeys-random / volatile-random: random keys of the non-empty databases taken
    in turn (performEvictions() takes one from the next database each time), the first
    to be evicted last in the list."""
    dbs = server.dbs
    n = len(dbs)
    per_db = []
    for _ in range(n):
        ev.next_db = j = (ev.next_db + 1) % n
        db = dbs[j]
        keyspace = db.data if ev.allkeys else db.expires
        if keyspace:
            sampler = _sampler(ev, db, ev.allkeys)
            offset, step = sampler.lattice(keyspace, REFILL_EVERY, False)
            keys = sampler.keys[offset::step][:REFILL_EVERY]
            per_db.append([(0, None, key, sampler, offset + i * step)
                           for i, key in enumerate(keys)])
    out = [entry for round_ in zip(*per_db) for entry in round_] if len(per_db) > 1 \
        else (per_db[0] if per_db else [])
    out.reverse()
    _count_snapshots(ev)
    return out


# -- client eviction (maxmemory-clients) -------------------------------------------------------


def clients_limit(server) -> int:
    """getClientEvictionLimit(): maxmemory-clients in bytes (a negative value is a
    percentage of maxmemory, nothing while maxmemory is 0), at least 128 KB so that a
    bad setting cannot cut every client off; 0 = no client eviction."""
    limit = server.config["maxmemory-clients"]
    if limit < 0:
        limit = server.config["maxmemory"] * -limit // 100
        if not limit:
            return 0
    elif not limit:
        return 0
    return max(limit, 128 * 1024)


def evict_clients(server) -> int:
    """evictClients(): while the normal and pub/sub clients' memory is at or over
    maxmemory-clients, free the biggest evictable client (not CLIENT NO-EVICT, not a
    replica nor the master link) — at once, its buffers with it. From the cron and
    before every command (see ev_check)."""
    ev = server.evictor
    limit = ev.clients_limit
    if not limit or server.clients_memory < limit:
        return 0
    clients = server.clients
    sizes = ev.client_mem
    candidates = sorted(((size, cid) for cid, size in sizes.items()), reverse=True)
    evicted = 0
    for size, cid in candidates:
        if server.clients_memory < limit:
            break
        client = clients.get(cid)
        if client is None or client.closing or not _evictable_client(client):
            continue
        logger.notice("Evicting client: %s" % server.describe_client(client))
        client.abort()  # freeClient(): its unsent replies go with it
        server.clients_memory -= sizes.pop(cid)
        server.stats.evicted_clients += 1
        evicted += 1
    if server.clients_memory >= limit:
        logger.warning("Over client maxmemory after evicting all evictable clients")
    return evicted


def _evictable_client(client) -> bool:
    # clientEvictionAllowed(): not NO-EVICT, not a replica or master connection.
    if client.no_evict:
        return False
    return not (client.flags & {"S", "M"})
