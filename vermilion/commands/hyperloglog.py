"""HyperLogLog commands (Redis's hyperloglog.c): PFADD, PFCOUNT, PFMERGE, PFDEBUG,
PFSELFTEST.

Values are plain strings in Redis's byte format (datatypes/hll.py), so a HLL made by
Redis works here after GET/SET of its bytes and the other way round. A string that is
not a HLL is refused with Redis's special WRONGTYPE text; a sparse body that does not
cover 16384 registers is INVALIDOBJ. PFCOUNT of one key stores the computed count in
the header's cache (a write, as in Redis, so the value changes and dirty grows).
"""

import math
import random

from ..datatypes import hll
from ..datatypes.hll import HLL, Corrupted
from ..protocol import errors
from ..protocol.encode import OK
from ..protocol.errors import CommandError
from .registry import command
from ..notify import notify
from .strings import read_value, write_string

NO_SUCH_KEY = "ERR The specified key does not exist"
NOT_SPARSE = "ERR HLL encoding is not sparse"
_ENCODING_NAMES = ("dense", "sparse")


def _max_bytes(client) -> int:
    return client.server.config.values.get("hll-sparse-max-bytes",
                                           hll.DEFAULT_SPARSE_MAX_BYTES)


def _check(value) -> bytes:
    """isHLLObjectOrReply(): a string in HLL format, else the matching WRONGTYPE."""
    if type(value) is not bytes:
        raise CommandError(errors.WRONGTYPE)
    if not hll.is_hll(value):
        raise CommandError(hll.NOT_HLL)
    return value


def _open(client, value: bytes) -> HLL:
    return hll.take(value, _max_bytes(client))


def _save(db, key: bytes, created: bool, opened: HLL) -> None:
    # dbAdd() for a new key; an existing one is changed in place and keeps its TTL.
    value = opened.to_bytes()
    if created:
        db.set(key, value)
    else:
        db.replace(key, value)
    db.mark_encoding(key, "raw")  # createHLLObject(), or edited in place
    hll.keep(value, opened)


def _merged_raw(client, keys) -> tuple[bytes, bool]:
    """The register-wise max of the HLLs at keys (missing keys are empty HLLs) and
    whether any of them is dense (PFMERGE then writes a dense result)."""
    raw = bytes(hll.REGISTERS)
    any_dense = False
    for key in keys:
        value = read_value(client, key)
        if value is None:
            continue
        _check(value)
        opened = hll.peek(value)
        any_dense = any_dense or opened.encoding == hll.DENSE
        try:
            raw = hll.raw_max(raw, opened.raw())
        except Corrupted:
            raise CommandError(hll.INVALID_HLL) from None
    return raw, any_dense


@command("pfadd")
def pfadd(client, argv):
    db, key = client.db, argv[1]
    value = write_string(db, key)
    created = value is None
    if created:
        value = hll.empty_sparse()
    else:
        _check(value)
    opened = _open(client, value)
    updated = 1 if created else 0
    try:
        for element in argv[2:]:
            updated += opened.add(element)
    except Corrupted:
        # Registers set before the bad opcode stay set (Redis edits in place), but
        # nothing is signalled and the cache is left as it was.
        db.rewrite_string(key, opened.to_bytes())
        db.mark_encoding(key, "raw")
        raise CommandError(hll.INVALID_HLL) from None
    if updated:
        opened.invalidate()
        _save(db, key, created, opened)
        notify(client, "pfadd", key)
    else:
        hll.keep(value, opened)  # unchanged: the parse still describes the stored bytes
        db.mark_encoding(key, "raw")  # dbUnshareStringValue() all the same
    return 1 if updated else 0


@command("pfcount")
def pfcount(client, argv):
    if len(argv) > 2:
        raw, _ = _merged_raw(client, argv[1:])
        return hll.count_histogram(hll.histogram(raw))
    key = argv[1]
    value = read_value(client, key)
    if value is None:
        return 0
    _check(value)
    client.db.mark_encoding(key, "raw")  # dbUnshareStringValue(), even for a cached count
    card = hll.cached_count(value)
    if card is not None:
        return card
    opened = _open(client, value)
    try:
        card = opened.count()
    except Corrupted:
        raise CommandError(hll.INVALID_HLL) from None
    opened.set_cache(card)
    _save(client.db, key, False, opened)
    return card


@command("pfmerge")
def pfmerge(client, argv):
    raw, any_dense = _merged_raw(client, argv[1:])
    db, key = client.db, argv[1]
    value = write_string(db, key)
    created = value is None
    opened = _open(client, hll.empty_sparse() if created else value)
    try:
        if any_dense:
            opened.to_dense()
        opened.merge_from(raw)
    except Corrupted:
        raise CommandError(hll.INVALID_HLL) from None
    opened.invalidate()
    _save(db, key, created, opened)
    notify(client, "pfadd", key)
    return OK


# -- PFDEBUG -----------------------------------------------------------------------------


def _debug_getreg(opened: HLL, was_sparse: bool):
    return list(opened.raw())


def _debug_decode(opened: HLL, was_sparse: bool):
    if not was_sparse:
        raise CommandError(NOT_SPARSE)
    return opened.decode().encode()


def _debug_encoding(opened: HLL, was_sparse: bool):
    return _ENCODING_NAMES[opened.encoding]


def _debug_todense(opened: HLL, was_sparse: bool):
    return 1 if was_sparse else 0


# name -> (handler, converts a sparse value to dense first)
_PFDEBUG = {
    b"getreg": (_debug_getreg, True),
    b"decode": (_debug_decode, False),
    b"encoding": (_debug_encoding, False),
    b"todense": (_debug_todense, True),
}


@command("pfdebug")
def pfdebug(client, argv):
    db, key = client.db, argv[2]
    value = write_string(db, key)
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    _check(value)
    entry = _PFDEBUG.get(argv[1].lower())
    if entry is None:
        raise CommandError("ERR Unknown PFDEBUG subcommand '%s'"
                           % argv[1].decode("utf-8", "replace"))
    handler, densify = entry
    db.mark_encoding(key, "raw")  # dbUnshareStringValue()
    opened = _open(client, value)
    was_sparse = opened.encoding == hll.SPARSE
    if densify and was_sparse:
        try:
            opened.to_dense()
        except Corrupted:
            raise CommandError(hll.INVALID_HLL) from None
        _save(db, key, False, opened)  # the encoding change is propagated
    return handler(opened, was_sparse)


# -- PFSELFTEST --------------------------------------------------------------------------


@command("pfselftest")
def pfselftest(client, argv):
    """Redis checks register access and the estimator on 10M elements; we check the
    same properties on a budget that keeps the server responsive."""
    rng = random.Random()
    raw = bytes(rng.randrange(64) for _ in range(hll.REGISTERS))
    back = hll.dense_to_raw(hll.raw_to_dense(raw))
    if back != raw:
        index = next(i for i in range(hll.REGISTERS) if back[i] != raw[i])
        raise CommandError("ERR TESTFAILED Register %d should be %d but is %d"
                           % (index, raw[index], back[index]))
    dense = HLL(hll.MAGIC + bytes(12) + bytes(hll.DENSE_SIZE - hll.HDR_SIZE))
    sparse = HLL(hll.empty_sparse(), _max_bytes(client))
    seed = rng.getrandbits(64)
    checkpoint = 1
    for j in range(1, 10001):
        element = (j ^ seed).to_bytes(8, "little")
        dense.add(element)
        sparse.add(element)
        if j == checkpoint:
            if dense.count() != sparse.count():
                raise CommandError("ERR TESTFAILED dense/sparse disagree")
            error = abs(checkpoint - dense.count())
            limit = 1 if j == 10 else math.ceil(1.04 / 128 * 6 * checkpoint)
            if error > limit:
                raise CommandError("ERR TESTFAILED Too big error. card:%d abserr:%d"
                                   % (checkpoint, error))
            checkpoint *= 10
    return OK
