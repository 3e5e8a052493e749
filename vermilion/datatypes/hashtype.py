"""The hash value: a dict of bytes field → bytes value, plus its Redis encoding.

A dict keeps insertion order and updates values in place, which is exactly the order
a listpack-encoded Redis hash replies in (HGETALL/HKEYS after HSET/HDEL), so small
hashes list their fields as Redis does. The encoding is only bookkeeping for OBJECT
ENCODING: Redis 7.0 keeps a hash as a listpack while it has at most
hash-max-listpack-entries fields and no field or value longer than
hash-max-listpack-value bytes, converts it to a hashtable when a write breaks either
limit, and never converts back (deleting fields does not shrink the encoding).
"""

ENTRIES_CONFIG = "hash-max-listpack-entries"
VALUE_CONFIG = "hash-max-listpack-value"
# config.c's compiled-in defaults (redis.conf ships 128 entries; the binary uses 512).
DEFAULT_ENTRIES = 512
DEFAULT_VALUE = 64


def listpack_limits(config) -> tuple[int, int]:
    """(max entries, max field/value length) from a Config; the compiled-in defaults
    while the config table does not define the directives."""
    values = config.values
    return values.get(ENTRIES_CONFIG, DEFAULT_ENTRIES), values.get(VALUE_CONFIG, DEFAULT_VALUE)


class HashValue(dict):
    """A Redis hash. ``ht`` is True once the hash has been converted to a hashtable."""

    __slots__ = ("ht",)

    type_name = "hash"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.ht = False

    @property
    def encoding(self) -> str:
        return "hashtable" if self.ht else "listpack"

    def copy(self) -> "HashValue":
        # COPY / hashTypeDup keep the source's encoding.
        dup = HashValue(self)
        dup.ht = self.ht
        return dup

    def check_encoding(self, max_entries: int, max_value: int) -> None:
        """Convert to hashtable if the contents exceed the listpack limits (used after
        loading a hash from RDB/RESTORE, where Redis checks the whole hash)."""
        if self.ht:
            return
        if len(self) > max_entries:
            self.ht = True
        elif self and (max(map(len, self)) > max_value or max(map(len, self.values())) > max_value):
            self.ht = True


def from_pairs(pairs, max_entries: int = DEFAULT_ENTRIES,
               max_value: int = DEFAULT_VALUE) -> HashValue:
    """A hash from (field, value) pairs (RDB load, RESTORE). Like rdbLoadObject, the
    encoding follows the contents, whatever encoding the file used."""
    value = HashValue(pairs)
    value.check_encoding(max_entries, max_value)
    return value


def from_flat(flat: list, max_entries: int = DEFAULT_ENTRIES,
              max_value: int = DEFAULT_VALUE) -> HashValue:
    """A hash from field, value, field, value... (a listpack's entries, as the RDB loader
    decodes them), encoded by its contents as from_pairs() does — built without the
    Python-level __init__, since a load creates one per hash key."""
    value = _new_hash(HashValue)
    it = iter(flat)
    dict.update(value, zip(it, it))
    value.ht = len(value) > max_entries or (bool(flat) and max(map(len, flat)) > max_value)
    return value


_new_hash = HashValue.__new__
