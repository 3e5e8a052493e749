"""maxmemory: Redis's evict.c — performEvictions() before commands, the eviction pool.

While maxmemory is set (or an LRU/LFU policy needs access data) a check sits in
server.hooks.command_checks: it records the access of the command's keys (lookupKey()'s
LRU clock / updateLFU()) and runs perform_evictions(); when that cannot get under the
limit a denyoom command gets -OOM, reads and DEL still run. Nothing of this costs a
thing while maxmemory is 0 and the policy is not LRU/LFU: the check is not installed.

The policies pick as Redis does: LRU/LFU/volatile-ttl sample maxmemory-samples keys per
database into a pool of the 16 best candidates kept across calls (evictionPoolPopulate),
evicting the best one still present; *-random take a random key of the next database
round robin; volatile-* sample only keys with a TTL. maxmemory-eviction-tenacity bounds
the time of one call; the rest continues from the event loop (evictionTimeProc).
"""

import random
import time

_time = time.time
_random = random.random
_choices = random.choices

from . import memory
from .keyspace.cost import COST_MASK, LRU_CLOCK_MAX, STAMP_SHIFT, LFUParams, lfu_decr, lru_clock
from .log import logger
from .propagate import propagate_raw

try:  # keyspace notifications (notify.py) may land after this module
    from .notify import notify_event
except ImportError:  # pragma: no cover
    notify_event = None
from .protocol import errors
from .protocol.errors import CommandError

EVPOOL_SIZE = 16
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
        self.pool: list = []  # (idle, key, dbid), ascending idle, at most EVPOOL_SIZE
        self.next_db = 0
        self.timer = None  # evictionTimeProc pending
        self.samplers: dict = {}  # (db id, "data" | "expires") → Sampler
        self.key_ranges: dict = {}  # spec → (first, last, step) or None
        self.installed = False
        self.track = 0  # 1: LRU clock, 2: LFU counter kept per key
        self.live: list = []  # the databases that hold keys (or did since the cron)
        self.over = False  # used_memory was over maxmemory at the last measure
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


# The directives configure() applies (Server.__init__ registers it for each).
DIRECTIVES = ("maxmemory", "maxmemory-policy", "maxmemory-samples",
              "maxmemory-eviction-tenacity", "lfu-log-factor", "lfu-decay-time")


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
    memory.refresh_clients(server)
    configure(server)


def configure(server, _value=None) -> None:
    """The apply callback of maxmemory, maxmemory-policy, maxmemory-samples,
    maxmemory-eviction-tenacity, lfu-log-factor and lfu-decay-time."""
    ev = server.evictor
    config = server.config
    ev.maxmemory = config["maxmemory"]
    policy = config["maxmemory-policy"]
    if policy != ev.policy:
        ev.pool = []  # idle scores of another policy do not compare
    ev.policy = policy
    ev.allkeys = policy.startswith("allkeys")
    ev.kind = None if policy == "noeviction" else policy.split("-")[1]
    ev.samples = config["maxmemory-samples"]
    ev.tenacity = config["maxmemory-eviction-tenacity"]
    ev.lfu.log_factor = config["lfu-log-factor"]
    ev.lfu.decay_time = config["lfu-decay-time"]
    ev.track = track = {"lru": 1, "lfu": 2}.get(ev.kind, 0)
    for db in server.dbs:
        if db.track != track:
            _restamp(db, track)
    # A lower limit takes effect at the next command, whatever it is (Redis evicts in
    # performEvictions() before every command).
    ev.over = bool(ev.maxmemory) and \
        memory.used_memory_fast(server, ev.live) > ev.maxmemory
    wanted = bool(ev.maxmemory) or bool(track)
    if wanted and not ev.installed:
        server.hooks.command_checks.append(ev_check)
        ev.installed = True
    elif not wanted and ev.installed:
        server.hooks.command_checks.remove(ev_check)
        ev.installed = False


def _restamp(db, track: int) -> None:
    # A policy switch: every key starts afresh in the new scheme (Redis reinterprets
    # the old bits, "LRU and LFU data will take some time to adjust").
    db.track = track
    meta = db.meta
    if not meta:
        return
    stamp = db.new_stamp() if track else 0
    for key, old in meta.items():
        meta[key] = stamp | (old & COST_MASK)


def swap_accounting(server, a: int, b: int) -> None:
    # SWAPDB swaps data and expires; the accounting goes with them.
    x, y = server.dbs[a], server.dbs[b]
    x.meta, y.meta = y.meta, x.meta
    x.mem, y.mem = y.mem, x.mem
    _refresh_live(server)


def _refresh_live(server) -> None:
    # Databases filled behind the accounting (an RDB load) are found and costed here.
    live = []
    for db in server.dbs:
        if db.data or db.meta:
            if len(db.data) != len(db.meta):
                db.resync_accounting()
            live.append(db)
    server.evictor.live = live


def cron(server) -> None:
    ev = server.evictor
    ev.lru_stamp = lru_clock() << STAMP_SHIFT
    memory.refresh_clients(server)
    evict_clients(server)
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
    if ev.track:
        ranges = ev.key_ranges.get(spec, _UNSET)
        if ranges is _UNSET:
            ranges = _key_range(ev, spec)
        if ranges is not None:
            first = ranges[0]
            if ev.track == 1 and first == ranges[1] and first < len(argv):
                # One key under LRU (GET, SET, HSET...): the clock the cron keeps.
                meta = client.db.meta
                key = argv[first]
                old = meta.get(key)
                if old is not None:
                    meta[key] = ev.lru_stamp | (old & COST_MASK)
            else:
                _note_keys(ev, client.db, ranges, argv)
    if ev.maxmemory and (spec.denyoom or ev.over or spec.fullname in _CHECKED
                         or client.multi is not None):
        # performEvictions() before the commands whose outcome depends on it (denyoom,
        # EXEC, anything queued in MULTI, a script's start), and before every command
        # while memory is known to be over the limit (after CONFIG SET maxmemory, or
        # when the cron found it so), as Redis runs it before all commands.
        scripting = server.scripting
        run = scripting.current if scripting is not None else None
        if run is not None and client is run.client:
            _script_check(ev, run, spec)
            return
        used = memory.used_memory_fast(server, ev.live)
        oom = used > ev.maxmemory and perform_evictions(server, used) == EVICT_FAIL
        if used <= ev.maxmemory:
            # A write may take memory over the limit: measure again before the next
            # command, whatever it is (a GETBIT after a big SETBIT evicts first).
            ev.over = spec.denyoom
        if spec.fullname in _SCRIPT_STARTS:
            ev.script_oom = oom
        if oom and _reject_on_oom(client, spec):
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


_UNSET = object()


def _key_range(ev, spec):
    ranges = None
    if spec.first_key and spec.fullname not in NOTOUCH:
        ranges = (spec.first_key, spec.last_key, spec.key_step or 1)
    ev.key_ranges[spec] = ranges
    return ranges


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
                meta[key] = stamp | (old & COST_MASK)
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
    if not _safe_to_evict(server):
        return EVICT_OK
    if used is None:
        used = memory.used_memory_fast(server, ev.live)
    if used <= ev.maxmemory:
        ev.over = False
        _note_exceeded(ev, False)
        return EVICT_OK
    ev.over = True
    if ev.kind is None:
        _note_exceeded(ev, True)
        return EVICT_FAIL
    to_free = used - ev.maxmemory
    limit_us = eviction_time_limit_us(ev.tenacity)
    start = time.perf_counter()
    freed = keys_freed = 0
    result = EVICT_OK
    pick = _pick_random if ev.kind == "random" else _pick_from_pool
    while freed < to_free:
        found = pick(ev, server)
        if found is None:
            result = EVICT_FAIL
            break
        db, key = found
        freed += _evict(server, db, key)
        keys_freed += 1
        if keys_freed % 16 == 0:
            # The dict tables do not shrink, so measure again rather than trust the sum.
            if memory.used_memory_fast(server, ev.live) <= ev.maxmemory:
                break
            if (time.perf_counter() - start) * 1e6 > limit_us:
                _start_timer(server)
                result = EVICT_RUNNING
                break
    if result == EVICT_OK and ev.timer is not None:
        result = EVICT_RUNNING
    ev.over = result != EVICT_OK
    _note_exceeded(ev, result != EVICT_OK)
    return result


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


def _evict(server, db, key: bytes) -> int:
    """Delete an evicted key as Redis does: WATCH signalled, counted, DEL propagated
    (propagateDeletion(): UNLINK under lazyfree-lazy-eviction)."""
    freed = db.evict(key)
    server.stats.evicted_keys += 1
    if notify_event is not None:
        notify_event(server, db, "evicted", key, flag="e")
    if server.propagation.sinks:
        cmd = b"UNLINK" if server.config["lazyfree-lazy-eviction"] else b"DEL"
        propagate_raw(server, db.id, [cmd, key])
    return freed


# -- choosing keys -----------------------------------------------------------------------------


class Sampler:
    """Random keys of a dict in O(1) amortised: a list copy of its keys taken again
    after it served len/8 picks or when the dict object changed (as Database's
    sample_key); stale picks are skipped by the caller."""
    __slots__ = ("keys", "source", "picks")

    def __init__(self):
        self.keys: list = []
        self.source = None
        self.picks = 0

    def sample(self, d: dict, count: int) -> list:
        """Up to count distinct-ish live keys (dictGetSomeKeys() returns live keys)."""
        n = len(d)
        if n <= count:
            return list(d)
        keys = self.keys
        if self.source is not d or self.picks > len(keys) // 8 or not keys:
            self.keys = keys = list(d)
            self.source = d
            self.picks = 0
        self.picks += count
        out = [key for key in _choices(keys, k=count) if key in d]
        if len(out) < count:
            # Stale picks (keys deleted since the copy): once more, then a fresh copy.
            out += [key for key in _choices(keys, k=count - len(out)) if key in d]
            if len(out) < count:
                self.picks = len(keys)
        return out


def _sampler(ev, db_id: int, which: str) -> Sampler:
    sampler = ev.samplers.get((db_id, which))
    if sampler is None:
        sampler = ev.samplers[(db_id, which)] = Sampler()
    return sampler


def _populate(ev, db, keys: list) -> None:
    """evictionPoolPopulate(): insert the sampled keys by idle score into the pool."""
    pool = ev.pool
    kind = ev.kind
    meta = db.meta
    expires = db.expires
    clock = int(_time()) & LRU_CLOCK_MAX
    decay_time = ev.lfu.decay_time
    dbid = db.id
    for key in keys:
        if kind == "lru":
            stamp = meta.get(key)
            if stamp is None:
                continue
            lru = stamp >> STAMP_SHIFT
            # estimateObjectIdleTime(), in clock units (the order is what matters).
            idle = clock - lru if clock >= lru else clock + (LRU_CLOCK_MAX - lru)
        elif kind == "lfu":
            stamp = meta.get(key)
            if stamp is None:
                continue
            idle = 255 - lfu_decr(stamp >> STAMP_SHIFT, decay_time)
        else:
            when = expires.get(key)
            if when is None:
                continue
            idle = ULLONG_MAX - when
        # The first slot whose candidate is not worse (smaller idle) than this one.
        k = 0
        size = len(pool)
        while k < size and pool[k][0] < idle:
            k += 1
        if k == 0 and size == EVPOOL_SIZE:
            continue  # worse than every candidate of a full pool
        if size < EVPOOL_SIZE:
            pool.insert(k, (idle, key, dbid))
        else:
            # Full: drop the worst (leftmost) candidate to make room.
            pool.pop(0)
            pool.insert(k - 1, (idle, key, dbid))


def _pick_from_pool(ev, server):
    """LRU, LFU and volatile-ttl: refill the pool from every database, then take the
    best candidate that still exists ("ghosts" are dropped)."""
    pool = ev.pool
    samples = ev.samples
    for _ in range(64):  # bounded: a pool only of ghosts round after round ends it
        total = 0
        for db in ev.live:
            d = db.data if ev.allkeys else db.expires
            if d:
                total += len(d)
                which = "data" if ev.allkeys else "expires"
                _populate(ev, db, _sampler(ev, db.id, which).sample(d, samples))
        if not total:
            return None
        while pool:
            idle, key, dbid = pool.pop()
            db = server.dbs[dbid]
            if key in (db.data if ev.allkeys else db.expires):
                return db, key
    return None


def _pick_random(ev, server):
    """allkeys-random / volatile-random: a random key of the next non-empty database."""
    dbs = server.dbs
    n = len(dbs)
    for _ in range(n):
        ev.next_db = j = (ev.next_db + 1) % n
        db = dbs[j]
        d = db.data if ev.allkeys else db.expires
        if d:
            keys = _sampler(ev, j, "data" if ev.allkeys else "expires").sample(d, 1)
            if keys:
                return db, keys[0]
            return db, next(iter(d))
    return None


# -- client eviction (maxmemory-clients) -------------------------------------------------------


def client_memory(client) -> int:
    return memory.CLIENT_COST + client.parser.buffered() + client.output_buffer_size()


def clients_limit(server) -> int:
    # maxmemory-clients: bytes, or a negative percentage of maxmemory (0 = off).
    limit = server.config["maxmemory-clients"]
    if limit < 0:
        limit = server.config["maxmemory"] * -limit // 100
    return limit


def evict_clients(server) -> int:
    """evictClients(): while the clients' memory passes maxmemory-clients, close the
    biggest evictable client (normal or pub/sub, not CLIENT NO-EVICT). From the cron."""
    limit = clients_limit(server)
    if not limit:
        return 0
    clients = list(server.clients.values())
    sizes = [(client_memory(c), i, c) for i, c in enumerate(clients)]
    total = sum(size for size, _, _ in sizes)
    if total <= limit:
        return 0
    candidates = sorted((x for x in sizes if _evictable_client(x[2])), reverse=True)
    evicted = 0
    for size, _, client in candidates:
        if total <= limit:
            break
        logger.verbose("Evicting client: id=%d" % getattr(client, "id", 0))
        client.close()
        total -= size
        server.stats.evicted_clients += 1
        evicted += 1
    return evicted


def _evictable_client(client) -> bool:
    # clientEvictionAllowed(): not NO-EVICT, not a replica or master connection.
    if client.no_evict:
        return False
    return not (client.flags & {"S", "M"})
