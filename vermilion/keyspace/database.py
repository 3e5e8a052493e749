"""Database: one of the `databases` numbered keyspaces.

Values are stored bare: a string is a ``bytes`` object (the cheapest thing Python has,
see DESIGN.md's memory figures); other types are objects with a ``type_name``.
Expiries live in a separate dict of absolute unix milliseconds, as Redis keeps
``db->expires``. Every read goes through lookup(), which expires lazily.
"""

import random
import time

from ..protocol import errors


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def type_name(value) -> str:
    return "string" if type(value) is bytes else value.type_name


class Database:
    __slots__ = ("id", "data", "expires", "server", "avg_ttl", "expires_cursor",
                 "expire_keys", "expire_keys_source",
                 "random_keys", "random_keys_source", "random_picks")

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

    def __len__(self) -> int:
        return len(self.data)

    # -- reading -----------------------------------------------------------------

    def lookup(self, key: bytes):
        """The value of key, or None; an expired key is deleted on the way."""
        if self.expires:
            when = self.expires.get(key)
            if when is not None and when <= now_ms():
                self.expire_now(key)
                return None
        return self.data.get(key)

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
        return self.lookup(key) is not None

    def is_expired(self, key: bytes) -> bool:
        when = self.expires.get(key)
        return when is not None and when <= now_ms()

    # -- writing -----------------------------------------------------------------

    def set(self, key: bytes, value, keep_ttl: bool = False) -> None:
        """Store value, dropping any TTL unless keep_ttl (SET semantics)."""
        self.data[key] = value
        if not keep_ttl and self.expires:
            self.expires.pop(key, None)
        self.touched(key)

    def replace(self, key: bytes, value) -> None:
        """Overwrite the value of an existing key keeping its TTL (APPEND, INCR...)."""
        self.data[key] = value
        self.touched(key)

    def delete(self, key: bytes) -> bool:
        if self.data.pop(key, _MISSING) is _MISSING:
            return False
        if self.expires:
            self.expires.pop(key, None)
        self.touched(key)
        return True

    def expire_now(self, key: bytes) -> None:
        """Remove a key whose TTL has passed (lazily or from the active cycle)."""
        self.data.pop(key, None)
        self.expires.pop(key, None)
        server = self.server
        if server is not None:
            server.stats.expired_keys += 1
            server.key_expired(self, key)

    def touched(self, key: bytes) -> None:
        """Called after every change of key: WATCH, dirty counter, notifications hook."""
        server = self.server
        if server is not None:
            server.dirty += 1
            if server.key_watchers:
                server.signal_modified(self, key)

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
        return removed

    # -- access metadata (OBJECT IDLETIME / FREQ, TOUCH) ---------------------------------
    # Not tracked: a per-key clock would cost a dict entry per key and a store on every
    # read of the hot path. Keys report as just accessed; an LRU/LFU eviction policy that
    # needs real data can replace these three methods.

    def note_access(self, key: bytes) -> None:
        """TOUCH: mark key as accessed now."""

    def idle_ms(self, key: bytes) -> int:
        return 0

    def lfu_freq(self, key: bytes) -> int:
        return LFU_INIT_VAL

    def random_key(self) -> bytes | None:
        """A random key that has not expired; expired picks are reclaimed on the way, as
        dbRandomKey() does, so this ends with a live key or an empty database."""
        data = self.data
        while data:
            key = self.sample_key()
            if not self.is_expired(key):
                return key
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
LFU_INIT_VAL = 5  # the counter of a new key under an LFU policy (evict.c)
