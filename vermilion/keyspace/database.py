"""Database: one of the `databases` numbered keyspaces.

Values are stored bare: a string is a ``bytes`` object (the cheapest thing Python has,
see DESIGN.md's memory figures); other types are objects with a ``type_name``.
Expiries live in a separate dict of absolute unix milliseconds, as Redis keeps
``db->expires``. Every read goes through lookup(), which expires lazily.
"""

import random
import time

from ..datatypes.packed import PackedValue, unpack
from ..protocol import errors
from .cost import (COST_MASK, LFU_INIT_VAL, META_INT, STAMP_SHIFT, LFUParams, key_cost,
                   lfu_decr, lfu_incr, lfu_minutes, lru_clock, lru_idle_ms)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def type_name(value) -> str:
    return "string" if type(value) is bytes else value.type_name


class Database:
    __slots__ = ("id", "data", "expires", "server", "avg_ttl", "expires_cursor",
                 "expire_keys", "expire_keys_source",
                 "random_keys", "random_keys_source", "random_picks",
                 "meta", "mem", "track", "lfu", "on_first_key", "encodings")

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
        # Memory accounting (cost.py): key → (access stamp << STAMP_SHIFT) | cost in
        # bytes of the key and its value, and mem = the sum of the costs. The stamp is the
        # 24-bit LRU clock or LFU (minutes << 8 | counter), kept only while `track` says
        # the eviction policy needs it (0 none, 1 LRU, 2 LFU): one small int per key.
        self.meta: dict[bytes, int] = {}
        # String keys whose Redis encoding is not the one their content implies: "raw"
        # for strings changed in place (APPEND, SETRANGE, SETBIT...), "embstr" for an
        # INCRBYFLOAT result. Any other write of the key forgets it.
        self.encodings: dict[bytes, str] = {}
        self.mem = 0
        self.track = 0
        # lfu-log-factor / lfu-decay-time: the server's (eviction.install shares its
        # Evictor's with every database), Redis's defaults for a database on its own.
        self.lfu = LFUParams()
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
            if when is not None and when <= now_ms():
                server = self.server
                if server is not None and server.replica_mode:
                    # expireIfNeeded() on a replica: the key stays until its master's
                    # DEL arrives; clients see it gone, the master's commands do not.
                    return self.data.get(key) if server.master_executing else None
                self.expire_now(key)
                return None
        return self.data.get(key)

    def _unpack(self, key: bytes, packed: PackedValue):
        """Replace a packed value by the collection it stands for, in place: not a
        change of the dataset (no dirty, no WATCH), only of its memory cost."""
        try:
            value = unpack(packed)
        except (ValueError, IndexError, KeyError) as exc:
            raise errors.CommandError(
                f"ERR Corrupt value for key '{key.decode('utf-8', 'replace')}' in the "
                f"dataset loaded at start-up: {exc}") from None
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
        return when is not None and when <= now_ms()

    # -- writing -----------------------------------------------------------------

    def set(self, key: bytes, value, keep_ttl: bool = False) -> None:
        """Store value, dropping any TTL unless keep_ttl (SET semantics)."""
        self.data[key] = value
        if self.encodings:
            self.encodings.pop(key, None)
        if not keep_ttl and self.expires:
            self.expires.pop(key, None)
        self.touched(key)

    def replace(self, key: bytes, value) -> None:
        """Overwrite the value of an existing key keeping its TTL (APPEND, INCR...)."""
        self.data[key] = value
        if self.encodings:
            self.encodings.pop(key, None)
        self.touched(key)

    def delete(self, key: bytes) -> bool:
        if self.data.pop(key, _MISSING) is _MISSING:
            return False
        if self.encodings:
            self.encodings.pop(key, None)
        if self.expires:
            self.expires.pop(key, None)
        self.touched(key)
        return True

    def evict(self, key: bytes) -> int:
        """Remove key for maxmemory (evict.c dbSyncDelete): WATCH sees it, the dirty
        counter does not. Returns the bytes the accounting freed."""
        self.data.pop(key, None)
        if self.encodings:
            self.encodings.pop(key, None)
        freed = 0
        if self.expires.pop(key, None) is not None:
            freed = EXPIRE_COST
        old = self.meta.pop(key, None)
        if old is not None:
            cost = old & COST_MASK
            self.mem -= cost
            freed += cost
        server = self.server
        if server is not None and server.key_watchers:
            server.signal_modified(self, key)
        return freed

    def expire_now(self, key: bytes) -> None:
        """Remove a key whose TTL has passed (lazily or from the active cycle)."""
        self.data.pop(key, None)
        if self.encodings:
            self.encodings.pop(key, None)
        self.expires.pop(key, None)
        old = self.meta.pop(key, None)
        if old is not None:
            self.mem -= old & COST_MASK
        server = self.server
        if server is not None:
            server.stats.expired_keys += 1
            server.key_expired(self, key)

    def set_plain_string(self, key: bytes, value: bytes, keep_ttl: bool = False) -> None:
        """SET key value without options (or INCR, keep_ttl) — the benchmarked paths —
        in one call: store, drop the TTL, account the cost (touched()'s string branch),
        count the change."""
        self.data[key] = value
        if self.encodings:
            self.encodings.pop(key, None)
        if self.expires and not keep_ttl:
            self.expires.pop(key, None)
        cost = ((len(key) + 48) & -16) + ((len(value) + 48) & -16)
        if cost > 256:
            cost += META_INT
        meta = self.meta
        old = meta.get(key)
        if old is None:
            meta[key] = self.new_stamp() | cost if self.track else cost
            self.mem += cost
            if len(meta) == 1 and self.on_first_key is not None:
                self.on_first_key(self)
        else:
            delta = cost - (old & COST_MASK)
            if delta:
                meta[key] = old + delta
                self.mem += delta
        server = self.server
        if server is not None:
            server.dirty += 1
            if server.key_watchers:
                server.signal_modified(self, key)

    def touched(self, key: bytes) -> None:
        """Called after every change of key: memory accounting, WATCH, dirty counter.

        The key's cost is estimated again (O(1): strings by length, collections from
        their table size and a few sampled elements) and the difference to the cost
        recorded in meta goes into mem, so used_memory never needs a keyspace walk."""
        value = self.data.get(key)
        meta = self.meta
        old = meta.get(key)
        if type(value) is bytes:
            # key_cost() inlined for strings: this runs on every SET.
            cost = ((len(key) + 48) & -16) + ((len(value) + 48) & -16)
            if cost > 256:
                cost += META_INT
        elif value is None:
            if old is not None:
                del meta[key]
                self.mem -= old & COST_MASK
            cost = None
        else:
            cost = key_cost(key, value)
        if cost is not None:
            if old is None:
                meta[key] = self.new_stamp() | cost if self.track else cost
                self.mem += cost
                if len(meta) == 1 and self.on_first_key is not None:
                    self.on_first_key(self)
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

    def merge_loaded(self, data: dict, expires: dict) -> None:
        """Loaded keys on top of the dataset (DEBUG RELOAD MERGE): the keys they replace
        lose their cost and string encoding; the accounting costs them again (resync)
        on its next read."""
        for key in data:
            old = self.meta.pop(key, None)
            if old is not None:
                self.mem -= old & COST_MASK
            self.encodings.pop(key, None)
        self.data.update(data)
        self.expires.update(expires)

    def adopt_accounting(self, costs: dict) -> None:
        """Take over the per-key costs an RDB load computed for the keys it installed."""
        if self.track:
            stamp = self.new_stamp()
            costs = {key: stamp | cost for key, cost in costs.items()}
        self.meta = costs
        self.mem = sum(cost & COST_MASK for cost in costs.values()) if self.track \
            else sum(costs.values())

    def resync_accounting(self) -> None:
        """Account keys added behind the Database's back (an RDB load fills data in one
        update): cost the missing ones, forget the gone ones. O(n), run only when the
        number of accounted keys differs from the number of keys."""
        data, meta = self.data, self.meta
        for key in [k for k in meta if k not in data]:
            self.mem -= meta.pop(key) & COST_MASK
        stamp = self.new_stamp() if self.track else 0
        for key, value in data.items():
            if key not in meta:
                cost = key_cost(key, value)
                meta[key] = stamp | cost
                self.mem += cost

    # -- access metadata (OBJECT IDLETIME / FREQ, TOUCH, eviction) -------------------------
    # Kept in the high bits of meta[key] only while the maxmemory-policy is LRU or LFU
    # (track); otherwise keys report as just accessed, which costs nothing per read.

    def new_stamp(self) -> int:
        # A new object: lru = LRU_CLOCK(), or LFU minutes << 8 | LFU_INIT_VAL.
        if self.track == 1:
            return lru_clock() << STAMP_SHIFT
        return ((lfu_minutes() << 8) | LFU_INIT_VAL) << STAMP_SHIFT

    def note_access(self, key: bytes) -> None:
        """lookupKey()'s access update: the LRU clock, or updateLFU()."""
        old = self.meta.get(key)
        if old is None or not self.track:
            return
        if self.track == 1:
            stamp = lru_clock()
        else:
            lfu = self.lfu
            counter = lfu_incr(lfu_decr(old >> STAMP_SHIFT, lfu.decay_time), lfu.log_factor)
            stamp = (lfu_minutes() << 8) | counter
        self.meta[key] = (stamp << STAMP_SHIFT) | (old & COST_MASK)

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


_MISSING = object()
EXPIRE_COST = 40  # an expires entry: the int of the absolute time plus its dict slot
