"""Database: one of the `databases` numbered keyspaces.

Values are stored bare: a string is a ``bytes`` object (the cheapest thing Python has,
see DESIGN.md's memory figures); other types are objects with a ``type_name``.
Expiries live in a separate dict of absolute unix milliseconds, as Redis keeps
``db->expires``. Every read goes through lookup(), which expires lazily.

Memory accounting (cost.py's model): ``mem`` is the sum of every key's cost, kept as
keys change, so used_memory never walks the keyspace. A string's cost is a function of
the lengths of its key and value (string_cost()), so a string key needs no record of
its own: its cost is taken again from the value being replaced or deleted. ``meta``
holds an entry only for the keys that need one: collections (their cost is estimated,
then followed change by change: key → cost) and, while the eviction policy is LRU or
LFU (``track``), every key's access stamp (key → stamp << STAMP_SHIFT | cost, the
cost bits 0 for a string). A string key under no LRU/LFU policy thus costs what a
``dict[bytes, bytes]`` entry costs, as Redis's dictEntry + robj + sds do.
"""

import random
import time
from itertools import compress, repeat
from operator import is_, is_not

from ..datatypes.packed import PackedValue, unpack
from ..protocol import errors
from .cost import (COST_MASK, LFU_INIT_VAL, STAMP_BITS, STAMP_SHIFT, LFUParams, key_cost,
                   lfu_decr, lfu_incr, lfu_minutes, lru_clock, lru_idle_ms)


def string_cost(key: bytes, value: bytes) -> int:
    """The bytes a string key costs: its key and value objects (cost.obj_bytes: a
    33-byte header plus the data, in pymalloc's 16-byte steps); its slot in the main
    table is counted with the table (memory.dataset_bytes)."""
    return ((len(key) + 48) & -16) + ((len(value) + 48) & -16)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


_STRING_OR_NONE = frozenset((bytes, type(None)))
_BYTES_ONLY = frozenset((bytes,))
# What a string key or value of each length under 4 KB costs in used_memory (string_cost()'s
# halves), looked up a list at a time.
_STRING_COSTS = [(n + 48) & -16 for n in range(4096)]


def string_costs(items) -> int:
    """The summed cost of byte strings (string_cost()'s formula), in C loops."""
    lengths = list(map(len, items))
    try:
        return sum(map(_STRING_COSTS.__getitem__, lengths))
    except IndexError:  # one of 4 KB or more
        return sum([(n + 48) & -16 for n in lengths])


class _ExpiryClock:
    """The time keys expire by. A running script freezes it at its start (keyIsExpired()
    uses scriptTimeSnapshot() while server.script_caller is set): a key the script saw
    does not vanish halfway through it. One per process, as the script running is
    (an instance: setting a class attribute would invalidate the interpreter's
    attribute caches of the class, twice per script)."""

    __slots__ = ("frozen",)

    def __init__(self):
        self.frozen: int | None = None


_EXPIRY_CLOCK = _ExpiryClock()


def freeze_time(ms: int | None) -> None:
    """The scripting engine's hook: freeze expiry at ms, or thaw it (None)."""
    _EXPIRY_CLOCK.frozen = ms


def expiry_now() -> int:
    frozen = _EXPIRY_CLOCK.frozen
    return time.time_ns() // 1_000_000 if frozen is None else frozen


def type_name(value) -> str:
    return "string" if type(value) is bytes else value.type_name


class Database:
    __slots__ = ("id", "data", "expires", "server", "avg_ttl", "expires_cursor",
                 "expire_keys", "expire_keys_source",
                 "random_keys", "random_keys_source", "random_picks",
                 "meta", "mem", "track", "clock", "lfu", "lfu_stamps", "on_first_key",
                 "encodings")

    def __init__(self, db_id: int, server=None):
        self.id = db_id
        self.data: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}
        self.server = server
        self.avg_ttl = 0
        # The active expiry cycle's walk over a snapshot of the TTL keys (expiry.py).
        self.expires_cursor = 0
        self.expire_keys: list = []
        self.expire_keys_source = None
        # RANDOMKEY's cached list of keys (sample_key).
        self.random_keys: list = []
        self.random_keys_source = None
        self.random_picks = 0
        # Memory accounting (the module docstring): mem = the sum of the keys' costs;
        # meta = key → (access stamp << STAMP_SHIFT) | cost for the collections, and for
        # every key while `track` says the eviction policy needs access stamps (0 none,
        # 1 LRU, 2 LFU). The stamp is the 24-bit LRU clock or LFU (minutes << 8 |
        # counter); a string's entry holds the stamp alone (its cost is string_cost()),
        # so keys stamped in the same second share one int object (`clock`).
        self.meta: dict[bytes, int] = {}
        # String keys whose Redis encoding is not the one their content implies: "raw"
        # for strings changed in place (APPEND, SETRANGE, SETBIT...), "embstr" for an
        # INCRBYFLOAT result. Any other write of the key forgets it.
        self.encodings: dict[bytes, str] = {}
        self.mem = 0
        self.track = 0
        # server.lruclock pre-shifted into meta's stamp bits: the eviction cron keeps it
        # (evict.c's LRU_CLOCK() reads the cron's clock too), one int object per second.
        self.clock = lru_clock() << STAMP_SHIFT
        # lfu-log-factor / lfu-decay-time: the server's (eviction.install shares its
        # Evictor's with every database), Redis's defaults for a database on its own.
        self.lfu = LFUParams()
        # LFU stamps (pre-shifted) as shared int objects: 256 counters a minute, so keys
        # with the same counter share one int rather than own one each.
        self.lfu_stamps: dict[int, int] = {}
        self.on_first_key = None  # (db) when the database gets its first key (eviction)

    def __len__(self) -> int:
        return len(self.data)

    # -- reading -----------------------------------------------------------------

    def lookup(self, key: bytes):
        """The value of key, or None; an expired key is deleted on the way, a value
        still packed as the RDB file held it is unpacked."""
        value = self.peek(key) if self.expires else self.data.get(key)
        if type(value) is PackedValue:
            value = self._unpack(key, value)
        return value

    def peek(self, key: bytes):
        """The value of key as stored (a packed value stays packed), or None; an expired
        key is deleted on the way. For what only asks whether a key exists or its type
        (DEL, EXISTS, TYPE, SCAN TYPE), so a corrupt packed value can still be deleted."""
        if self.expires:
            when = self.expires.get(key)
            if when is not None and when <= expiry_now():
                server = self.server
                if server is not None and server.loading:
                    # keyIsExpired(): never while loading. An AOF replays PEXPIREAT
                    # then later writes to the key, as they happened: it expires after.
                    return self.data.get(key)
                if server is not None and server.replica_mode:
                    # expireIfNeeded() on a replica: the key stays until its master's
                    # DEL arrives; clients see it gone, the master's commands do not.
                    if server.master_executing:
                        return self.data.get(key)
                    if not server.master_link.write_lookups:
                        return None
                    # ...but a write on a writable replica deletes it (LOOKUP_WRITE).
                if server is not None and server.pause_until:
                    # expireIfNeeded(): while clients are paused the key reads as
                    # expired but stays (checkClientPauseTimeoutAndReturnIfPaused()),
                    # so that no DEL is propagated while writes are paused.
                    return None
                self.expire_now(key)
                return None
        return self.data.get(key)

    def _unpack(self, key: bytes, packed: PackedValue):
        """Replace a packed value by the collection it stands for, in place: not a
        change of the dataset (no dirty, no WATCH), only of its memory cost."""
        try:
            value = unpack(packed)
        except (ValueError, IndexError, KeyError) as exc:
            # (Packed by a start-up load, or by a RESTORE without deep sanitization.)
            raise errors.CommandError(
                f"ERR Corrupt value for key '{key.decode('utf-8', 'replace')}': {exc}"
            ) from None
        self.data[key] = value
        old = self.meta.get(key)
        if old is not None:
            delta = key_cost(key, value) - (old & COST_MASK)
            self.meta[key] = old + delta
            self.mem += delta
        return value

    def lookup_string(self, key: bytes) -> bytes | None:
        value = self.lookup(key)
        if value is not None and type(value) is not bytes:
            raise errors.CommandError(errors.WRONGTYPE)
        return value

    def lookup_typed(self, key: bytes, cls):
        """The value if it is of class cls, None if missing, WRONGTYPE otherwise."""
        value = self.lookup(key)
        if value is not None and type(value) is not cls:
            raise errors.CommandError(errors.WRONGTYPE)
        return value

    def exists(self, key: bytes) -> bool:
        return self.peek(key) is not None

    def is_expired(self, key: bytes) -> bool:
        when = self.expires.get(key)
        return when is not None and when <= expiry_now()

    # -- writing -----------------------------------------------------------------

    def set(self, key: bytes, value, keep_ttl: bool = False) -> None:
        """Store value, dropping any TTL unless keep_ttl (SET semantics)."""
        data = self.data
        old = data.get(key)
        data[key] = value
        if self.encodings:
            self.encodings.pop(key, None)
        if not keep_ttl and self.expires:
            self.expires.pop(key, None)
        self._account(key, old, value)

    def replace(self, key: bytes, value) -> None:
        """Overwrite the value of an existing key keeping its TTL (APPEND, INCR...)."""
        data = self.data
        old = data.get(key)
        data[key] = value
        if self.encodings:
            self.encodings.pop(key, None)
        self._account(key, old, value)

    def _account(self, key: bytes, old, value) -> None:
        """key's value went from old (None: a new key) to value: the cost difference
        into mem, meta kept (stamps survive an overwrite: dbSetValue() keeps the LFU
        data of the value it replaces), then dirty and WATCH."""
        meta = self.meta
        track = self.track
        if type(value) is bytes:
            cost = ((len(key) + 48) & -16) + ((len(value) + 48) & -16)
            entry = 0  # a string's cost is not recorded
        else:
            cost = entry = key_cost(key, value)
        if old is None:
            if track:
                stamp = self.new_stamp()
                meta[key] = stamp | entry if entry else stamp
            elif entry:
                meta[key] = entry
            self.mem += cost
            if len(self.data) == 1 and self.on_first_key is not None:
                self.on_first_key(self)
        else:
            recorded = meta.get(key)
            if type(old) is bytes:
                self.mem += cost - ((len(key) + 48) & -16) - ((len(old) + 48) & -16)
            elif recorded is not None:
                self.mem += cost - (recorded & COST_MASK)
            else:
                self.mem += cost
            if recorded is not None:
                if entry:
                    meta[key] = (recorded & STAMP_BITS) | entry
                elif not track:
                    del meta[key]
                elif recorded & COST_MASK:  # a collection became a string
                    meta[key] = recorded & STAMP_BITS
            elif track:
                stamp = self.new_stamp()
                meta[key] = stamp | entry if entry else stamp
            elif entry:
                meta[key] = entry
        server = self.server
        if server is not None:
            server.dirty += 1
            if server.key_watchers:
                server.signal_modified(self, key)

    def _forget(self, key: bytes, value) -> int:
        """The accounting of a key just removed from data (value its value): its cost,
        taken out of mem and returned, and its meta entry gone."""
        old = self.meta.pop(key, None) if self.meta else None
        if type(value) is bytes:
            cost = ((len(key) + 48) & -16) + ((len(value) + 48) & -16)
        else:
            cost = old & COST_MASK if old is not None else 0
        self.mem -= cost
        return cost

    def delete(self, key: bytes) -> bool:
        value = self.data.pop(key, None)
        if value is None:
            return False
        if self.encodings:
            self.encodings.pop(key, None)
        if self.expires:
            self.expires.pop(key, None)
        self._forget(key, value)
        server = self.server
        if server is not None:
            server.dirty += 1
            if server.key_watchers:
                server.signal_modified(self, key)
        return True

    def evict(self, keys: list[bytes]) -> int:
        """Remove keys for maxmemory (evict.c dbSyncDelete() for each): WATCH sees them,
        the dirty counter does not. Returns the bytes the accounting freed. A batch at
        a time, in C loops (eviction.py evicts several keys per call while they are
        small); every key must be present, once."""
        data = self.data
        values = list(map(data.pop, keys))
        if self.encodings:
            for key in keys:
                self.encodings.pop(key, None)
        recorded = list(map(self.meta.pop, keys, repeat(None)))
        if _BYTES_ONLY.issuperset(map(type, values)):
            freed = string_costs(keys) + string_costs(values)
        else:
            freed = 0
            for key, value, cost in zip(keys, values, recorded):
                if type(value) is bytes:
                    freed += string_cost(key, value)
                elif cost is not None:
                    freed += cost & COST_MASK
        self.mem -= freed
        expires = self.expires
        if expires:
            gone = list(map(expires.pop, keys, repeat(None)))
            freed += EXPIRE_COST * (len(gone) - gone.count(None))
        server = self.server
        if server is not None and server.key_watchers:
            for key in keys:
                server.signal_modified(self, key)
        return freed

    def expire_now(self, key: bytes) -> None:
        """Remove a key whose TTL has passed (lazily or from the active cycle)."""
        value = self.data.pop(key, None)
        if self.encodings:
            self.encodings.pop(key, None)
        self.expires.pop(key, None)
        if value is not None:
            self._forget(key, value)
        server = self.server
        if server is not None:
            server.stats.expired_keys += 1
            server.key_expired(self, key)

    def set_plain_string(self, key: bytes, value: bytes, keep_ttl: bool = False) -> None:
        """SET key value without options (or INCR, keep_ttl) — the benchmarked paths —
        in one call: store, drop the TTL, account the cost (_account()'s string case),
        count the change."""
        data = self.data
        old = data.get(key)
        data[key] = value
        if self.encodings:
            self.encodings.pop(key, None)
        if self.expires and not keep_ttl:
            self.expires.pop(key, None)
        track = self.track
        if track == 1 and (old is None or type(old) is bytes):
            # An LRU policy: a new object's stamp, the clock shared by the second's keys.
            self.meta[key] = self.clock
        elif track:
            self._account(key, old, value)
            return
        if old is None:
            self.mem += ((len(key) + 48) & -16) + ((len(value) + 48) & -16)
            if len(data) == 1 and self.on_first_key is not None:
                self.on_first_key(self)
        elif type(old) is bytes:
            # The usual overwrite: no meta entry on either side.
            self.mem += ((len(value) + 48) & -16) - ((len(old) + 48) & -16)
        else:
            self._account(key, old, value)
            return
        server = self.server
        if server is not None:
            server.dirty += 1
            if server.key_watchers:
                server.signal_modified(self, key)

    def set_plain_strings(self, argv: list[bytes]) -> None:
        """MSET: set_plain_string() for each key/value pair of argv[1:], in one call, with
        the pairs handled a list at a time (ten keys per command in redis-benchmark: a
        Python loop over them was most of the command)."""
        server = self.server
        if self.track or server is None or server.key_watchers or not self.data:
            # (an LRU/LFU stamp per key, WATCH, an empty database's first key)
            for j in range(1, len(argv), 2):
                self.set_plain_string(argv[j], argv[j + 1])
            return
        data = self.data
        pairs = dict(zip(argv[1::2], argv[2::2]))  # (a key given twice: its last value)
        olds = list(map(data.get, pairs))
        if not _STRING_OR_NONE.issuperset(map(type, olds)):
            # A collection becomes a string: its meta entry goes too (one at a time).
            for key, value in pairs.items():
                self.set_plain_string(key, value)
            server.dirty += len(argv) // 2 - len(pairs)
            return
        grown = string_costs(pairs.values())
        new = olds.count(None)
        if new == len(olds):
            grown += string_costs(pairs)
        elif new:
            grown += string_costs(compress(pairs, map(is_, olds, repeat(None))))
            grown -= string_costs(compress(olds, map(is_not, olds, repeat(None))))
        else:
            grown -= string_costs(olds)
        data.update(pairs)
        encodings = self.encodings
        if encodings:
            for key in pairs:
                encodings.pop(key, None)
        expires = self.expires
        if expires:
            for key in pairs:
                expires.pop(key, None)
        self.mem += grown
        server.dirty += len(argv) // 2

    def touched(self, key: bytes) -> None:
        """Called after a change of key that is not a new value (a collection changed in
        place, a TTL set or removed): memory accounting, WATCH, dirty counter.

        A collection's cost is estimated again (O(1): its table size and a few sampled
        elements) and the difference to the cost recorded in meta goes into mem, so
        used_memory never needs a keyspace walk. A string's cost changes only with its
        value, which set()/replace() account."""
        value = self.data.get(key)
        if value is not None and type(value) is not bytes:
            meta = self.meta
            old = meta.get(key)
            cost = key_cost(key, value)
            if old is None:
                meta[key] = self.new_stamp() | cost if self.track else cost
                self.mem += cost
            else:
                delta = cost - (old & COST_MASK)
                if delta:  # the cost sits in the low bits: adding keeps the stamp
                    meta[key] = old + delta
                    self.mem += delta
        server = self.server
        if server is not None:
            server.dirty += 1
            if server.key_watchers:
                server.signal_modified(self, key)

    def rewrite_string(self, key: bytes, value: bytes) -> None:
        """The string at an existing key edited in place behind the command's back (a
        corrupt HLL keeps the registers set before the bad opcode): its cost follows,
        nothing is signalled (no dirty, no WATCH, its encoding kept). Writing data[key]
        directly would leave the accounting with the old length's cost."""
        old = self.data[key]
        self.data[key] = value
        self.mem += ((len(value) + 48) & -16) - ((len(old) + 48) & -16)

    def mark_encoding(self, key: bytes, encoding: str) -> None:
        """The string at key has the Redis encoding given, whatever its content."""
        self.encodings[key] = encoding

    def set_expire(self, key: bytes, when_ms: int) -> None:
        self.expires[key] = when_ms
        self.touched(key)

    def get_expire(self, key: bytes) -> int | None:
        return self.expires.get(key)

    def persist(self, key: bytes) -> bool:
        if self.expires.pop(key, None) is None:
            return False
        self.touched(key)
        return True

    def flush(self) -> int:
        removed = len(self.data)
        self.data = {}
        self.expires = {}
        self.avg_ttl = 0
        self.expire_keys = []
        self.expire_keys_source = None
        self.expires_cursor = 0
        self.random_keys = []
        self.random_keys_source = None
        self.meta = {}
        self.mem = 0
        self.encodings = {}
        return removed

    def merge_loaded(self, data: dict, expires: dict, costs: dict | None = None) -> None:
        """Loaded keys on top of the dataset (DEBUG RELOAD MERGE): each replaces the key
        of its name, if any, as set() would (the replaced key's cost and string encoding
        go). costs: the load's meta for its keys that need an entry (collections)."""
        costs = costs or {}
        current = self.data
        encodings = self.encodings
        for key, value in data.items():
            old = current.get(key)
            if old is not None:
                self._forget(key, old)
                del current[key]
                encodings.pop(key, None)
            current[key] = value
            if type(value) is bytes:
                cost = string_cost(key, value)
                entry = 0
            else:
                cost = entry = costs.get(key, 0) or key_cost(key, value)
            if self.track:
                stamp = self.new_stamp()
                self.meta[key] = stamp | entry if entry else stamp
            elif entry:
                self.meta[key] = entry
            self.mem += cost
        self.expires.update(expires)
        if current and self.on_first_key is not None:
            self.on_first_key(self)

    def adopt_accounting(self, costs: dict, strings: int = 0) -> None:
        """Take over the accounting an RDB load made for the keys it installed (data is
        the load's dict): costs = key → cost of the keys that need a meta entry (the
        collections), strings = the summed cost of the string keys."""
        data = self.data
        mem = strings + sum(costs.values())
        if self.track:
            stamp = self.new_stamp()
            meta = dict.fromkeys(data, stamp)  # in C: the strings' entries, all at once
            for key, cost in costs.items():
                meta[key] = stamp | cost
            costs = meta
        self.meta = costs
        self.mem = mem
        if data and self.on_first_key is not None:
            self.on_first_key(self)

    def restamp(self, track: int) -> None:
        """The eviction policy now needs (1 LRU, 2 LFU) or no longer needs (0) access
        stamps: every key starts afresh in the new scheme (Redis reinterprets the old
        bits, "LRU and LFU data will take some time to adjust"). O(n), on CONFIG SET."""
        self.track = track
        meta = self.meta
        if track:
            stamp = self.new_stamp()
            fresh = dict.fromkeys(self.data, stamp)
            for key, old in meta.items():
                cost = old & COST_MASK
                if cost:
                    fresh[key] = stamp | cost
        else:
            fresh = {key: old & COST_MASK for key, old in meta.items() if old & COST_MASK}
        self.meta = fresh

    # -- access metadata (OBJECT IDLETIME / FREQ, TOUCH, eviction) -------------------------
    # Kept in the high bits of meta[key] only while the maxmemory-policy is LRU or LFU
    # (track); otherwise keys report as just accessed, which costs nothing per read.

    def new_stamp(self) -> int:
        # A new object: lru = LRU_CLOCK(), or LFU minutes << 8 | LFU_INIT_VAL.
        if self.track == 1:
            return self.clock
        return self.lfu_stamp((lfu_minutes() << 8) | LFU_INIT_VAL)

    def lfu_stamp(self, stamp: int) -> int:
        """stamp << STAMP_SHIFT, one int object per value (lfu_stamps)."""
        shifted = stamp << STAMP_SHIFT
        stamps = self.lfu_stamps
        found = stamps.get(shifted)
        if found is None:
            if len(stamps) >= 1024:  # minutes gone by: their stamps are rare now
                stamps.clear()
            stamps[shifted] = found = shifted
        return found

    def note_access(self, key: bytes) -> None:
        """lookupKey()'s access update: the LRU clock, or updateLFU()."""
        old = self.meta.get(key)
        if old is None or not self.track:
            return
        cost = old & COST_MASK
        if self.track == 1:
            stamp = self.clock
        else:
            lfu = self.lfu
            counter = lfu_incr(lfu_decr(old >> STAMP_SHIFT, lfu.decay_time), lfu.log_factor)
            stamp = self.lfu_stamp((lfu_minutes() << 8) | counter)
        self.meta[key] = stamp | cost if cost else stamp

    def idle_ms(self, key: bytes) -> int:
        old = self.meta.get(key)
        if old is None or self.track != 1:
            return 0
        return lru_idle_ms(old >> STAMP_SHIFT)

    def lfu_freq(self, key: bytes) -> int:
        old = self.meta.get(key)
        if old is None or self.track != 2:
            return LFU_INIT_VAL
        return lfu_decr(old >> STAMP_SHIFT, self.lfu.decay_time)

    def cost(self, key: bytes) -> int:
        """The accounted bytes of key (0 if unknown)."""
        value = self.data.get(key)
        if type(value) is bytes:
            return string_cost(key, value)
        return self.meta.get(key, 0) & COST_MASK

    def random_key(self) -> bytes | None:
        """A random key that has not expired; expired picks are reclaimed on the way, as
        dbRandomKey() does, so this ends with a live key or an empty database."""
        data = self.data
        server = self.server
        tries = 100  # dbRandomKey()'s maxtries on a replica, where nothing is reclaimed
        while data:
            key = self.sample_key()
            if not self.is_expired(key):
                return key
            if server is not None and server.replica_mode:
                tries -= 1
                if not tries:
                    return key  # every key may be logically expired: give one anyway
                continue
            self.expire_now(key)
        return None

    def sample_key(self) -> bytes:
        """A uniformly random key of a non-empty database (expired or not).

        A dict cannot be indexed, so picks come from a cached list of the keys, taken
        again once it has served len/8 picks, or when it misses (keys deleted): O(1)
        amortized per pick, and keys added since the last copy wait for the next one."""
        data = self.data
        if len(data) <= 64:
            return random.choice(list(data))
        keys = self.random_keys
        if self.random_keys_source is not data or self.random_picks > len(keys) // 8:
            keys = self._refresh_random_keys()
        for _ in range(4):
            self.random_picks += 1
            key = random.choice(keys)
            if key in data:
                return key
        return random.choice(self._refresh_random_keys())

    def _refresh_random_keys(self) -> list:
        self.random_keys = keys = list(self.data)
        self.random_keys_source = self.data
        self.random_picks = 0
        return keys


EXPIRE_COST = 40  # an expires entry: the int of the absolute time plus its dict slot
