"""SCAN-family cursors: SCAN, and the HSCAN/SSCAN/ZSCAN of the collection families.

Redis's contract (db.c scanGenericCommand over dictScan): an element present in the
collection from the start to the end of a full iteration is returned at least once;
elements added or removed meanwhile may or may not be; duplicates are allowed; COUNT
is a hint of work per call. Redis gets this from reverse-binary bucket cursors. A
Python dict cannot be walked from a position, so a full iteration here works on a
snapshot instead:

* the first call (cursor 0) returns the first COUNT elements and the second one takes
  ``list(source)`` — one O(N) copy of references per full iteration, amortized over the
  N/COUNT calls that walk it (and never paid by a lone "SCAN 0"); the second call
  walks the snapshot from its start, skipping what the first call returned;
* the cursor encodes (snapshot id, position), so every later call is O(COUNT);
* elements removed since the snapshot are skipped (``key in source``);
* at most MAX_SNAPSHOTS iterations are kept; a cursor whose snapshot is gone, or that
  belongs to another collection, restarts from a fresh snapshot at position 0 —
  duplicates, never misses, as the contract allows. To make room, a snapshot idle for
  IDLE_SECONDS (an abandoned iteration) goes first; otherwise the most recently
  *created* one does, so the oldest iterations always progress and finish even with
  more concurrent scanners than slots (evicting the least recently used instead would
  livelock a round robin of MAX_SNAPSHOTS + 1 scanners);
* a collection no larger than COUNT is returned whole with cursor 0, with no snapshot
  (Redis does the same for its small listpack/intset encodings).

The functions here know nothing of databases: ``scan(source, cursor, count)`` takes
any sized container supporting ``in`` and iteration (dict, set, dict keys).
"""

import time
from collections import OrderedDict
from itertools import islice

from ..protocol.numbers import parse_int
from ..protocol import errors
from ..protocol.errors import CommandError
from .glob import matcher

MAX_SNAPSHOTS = 16
IDLE_SECONDS = 10.0
_POS_BITS = 32
_POS_MASK = (1 << _POS_BITS) - 1
_MAX_ID = (1 << 31) - 1  # cursors stay below 2**63: safe for clients with signed ints
ULONG_MAX = 2**64 - 1
INVALID_CURSOR = "ERR invalid cursor"


class _Snapshot:
    __slots__ = ("source", "keys", "first", "used")

    def __init__(self, source, first: list):
        self.source = source
        self.keys = None  # taken at the second call of the iteration
        self.first = first  # what the first call returned
        self.used = time.monotonic()


class Cursors:
    """The live iterations: snapshot id → snapshot, least recently used first."""

    def __init__(self, limit: int = MAX_SNAPSHOTS):
        self.limit = limit
        self._snapshots: OrderedDict[int, _Snapshot] = OrderedDict()
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._snapshots)

    def _start(self, source, count: int) -> tuple[int, list]:
        """A new iteration. Its first batch is simply the first COUNT elements, O(COUNT):
        the O(N) snapshot waits for a second call, so a lone "SCAN 0" stays cheap."""
        if len(source) <= count:
            return 0, list(source)
        first = list(islice(source, count))
        snapshots = self._snapshots
        while len(snapshots) >= self.limit:
            snapshots.pop(self._victim())
        self._next_id = self._next_id % _MAX_ID + 1
        snapshots[self._next_id] = _Snapshot(source, first)
        return self._next_id << _POS_BITS, first

    def _victim(self) -> int:
        lru_id, lru = next(iter(self._snapshots.items()))
        if time.monotonic() - lru.used >= IDLE_SECONDS:
            return lru_id
        return max(self._snapshots)  # the newest iteration has the least to lose

    def scan(self, source, cursor: int, count: int) -> tuple[int, list]:
        """One step: (next cursor, elements still in source). Cursor 0 ends the iteration."""
        snap_id, pos = cursor >> _POS_BITS, cursor & _POS_MASK
        snap = self._snapshots.get(snap_id) if cursor else None
        if snap is None or snap.source is not source:
            return self._start(source, count)
        keys = snap.keys
        if keys is None:
            # Everything present since the first call is in this snapshot; what the first
            # call returned is skipped (a dict's order may have shifted since).
            keys = snap.keys = list(source)
            pos = 0
        elif pos > len(keys):
            return self._start(source, count)
        self._snapshots.move_to_end(snap_id)
        snap.used = time.monotonic()
        end = pos + count
        first = snap.first
        if first:
            if type(first) is list:
                first = snap.first = set(first)
            batch = [k for k in keys[pos:end] if k in source and k not in first]
        else:
            batch = [k for k in keys[pos:end] if k in source]
        if end >= len(keys):
            del self._snapshots[snap_id]
            return 0, batch
        return (snap_id << _POS_BITS) | end, batch


CURSORS = Cursors()


def scan(source, cursor: int, count: int) -> tuple[int, list]:
    return CURSORS.scan(source, cursor, count)


def parse_cursor(raw: bytes) -> int:
    """parseScanCursorOrReply(): strtoul() base 10 on the C string, which allows a sign
    and leading zeros ("-1" wraps to 2**64-1) but no leading space, trailing bytes or
    overflow."""
    text = raw.split(b"\0", 1)[0]
    if text[:1].isspace():
        raise CommandError(INVALID_CURSOR)
    if not text:
        return 0
    negative = text[:1] == b"-"
    digits = text[1:] if text[:1] in (b"-", b"+") else text
    if not digits or not digits.isdigit() or not digits.isascii():
        raise CommandError(INVALID_CURSOR)
    value = int(digits)
    if value > ULONG_MAX:
        raise CommandError(INVALID_CURSOR)
    return (-value) & ULONG_MAX if negative else value


class ScanOptions:
    __slots__ = ("count", "match", "type")

    def __init__(self):
        self.count = 10
        self.match = None  # a predicate bytes -> bool, None for "everything"
        self.type = None  # a lower-case type name (SCAN only)


def parse_options(argv: list[bytes], start: int, allow_type: bool = False) -> ScanOptions:
    """COUNT / MATCH / TYPE as scanGenericCommand() parses them, later ones winning."""
    opts = ScanOptions()
    i, argc = start, len(argv)
    while i < argc:
        word = argv[i].lower()
        more = argc - i >= 2
        if word == b"count" and more:
            count = parse_int(argv[i + 1])
            if count < 1:
                raise CommandError(errors.SYNTAX)
            opts.count = count
        elif word == b"match" and more:
            pattern = argv[i + 1]
            # Exactly "*" disables matching (it would not even match the empty key).
            opts.match = None if pattern == b"*" else matcher(pattern)
        elif word == b"type" and allow_type and more:
            opts.type = argv[i + 1].split(b"\0", 1)[0].lower().decode("latin-1")
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    return opts
