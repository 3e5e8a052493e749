"""A small collection kept as the RDB file holds it, until a command first reads it.

Redis keeps small hashes, sorted sets and lists as one listpack blob, and an RDB file
stores exactly that blob: loading one is a copy. Vermilion's collections are Python
objects, and decoding a listpack byte by byte in Python is most of the cost of loading
a dataset of small collections (a 5-field hash: ~5 µs). So the start-up load keeps each
such value packed — the blob, its RDB type and its Redis type — and Database.lookup()
unpacks it into the real value the first time a command reads the key. Until then it
costs its blob's bytes; DEL, EXISTS, TYPE, TOUCH and SCAN TYPE (Database.peek()) see
it without unpacking it, and a SAVE or BGSAVE writes the blob back as it came. (The
AOF's RDB base loads the same way.)

Only the blob's frame (its total-bytes header and terminator) is checked at load, as
Redis checks a listpack without sanitize-dump-payload; a blob that turns out corrupt
when unpacked gets the reading command an error reply, never a wrong value. A RESTORE
without deep sanitization holds the same way a value that passes only Redis's shallow
checks (a listpack or intset, or a whole stream value, whose blob is then its RDB
bytes): Redis would take it and assert later, Vermilion errs on the first read.
"""

from collections.abc import Callable


class PackedValue:
    __slots__ = ("rdb_type", "blob", "type_name")

    def __init__(self, rdb_type: int, blob: bytes, type_name: str):
        self.rdb_type = rdb_type
        self.blob = blob
        self.type_name = type_name


# rdb_type -> builds the value from the blob; the RDB module registers its decoders.
UNPACKERS: dict[int, Callable[[bytes], object]] = {}

# A PackedValue's own bytes beyond its blob: the object with its three slots.
PACKED_OVERHEAD = 56


def unpack(value: PackedValue):
    """The collection a packed value stands for (EncodingError/ValueError if corrupt)."""
    return UNPACKERS[value.rdb_type](value.blob)


def packed_cost(value: PackedValue) -> int:
    return PACKED_OVERHEAD + ((len(value.blob) + 48) & -16)
