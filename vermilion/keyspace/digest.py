"""DEBUG DIGEST / DIGEST-VALUE: debug.c's SHA1 digest of the dataset, bit for bit.

xor_digest() folds SHA1(data) into the digest by xor, so unordered things (keys, set
members, hash fields, sorted set members) digest the same in any order; mix_digest()
then hashes the digest itself, so ordered things (list elements, stream entries, the
parts of one element) digest in order. Redis digests the logical contents, never the
encoding: intset members, listpack integers and int-encoded strings are digested as
their decimal text, which is the bytes Vermilion stores (Redis only integer-encodes
text that prints back identically), so one walk per type serves every encoding.
"""

import hashlib
import struct

from ..datatypes.packed import PackedValue, unpack
from ..datatypes.stream import MAX64
from ..protocol.errors import CommandError
from .database import type_name

# server.h's OBJ_STRING ... OBJ_STREAM (5 is OBJ_MODULE, which Vermilion has none of).
TYPE_CODES = {"string": 0, "list": 1, "set": 2, "zset": 3, "hash": 4, "stream": 6}


def xor_digest(digest: bytearray, data: bytes) -> None:
    """xorDigest(): digest ^= SHA1(data)."""
    for i, byte in enumerate(hashlib.sha1(data).digest()):
        digest[i] ^= byte


def mix_digest(digest: bytearray, data: bytes) -> None:
    """mixDigest(): digest = SHA1(digest ^ SHA1(data))."""
    xor_digest(digest, data)
    digest[:] = hashlib.sha1(digest).digest()


def _pair_digest(first: bytes, second: bytes) -> bytes:
    """The eledigest of a hash field/value or a sorted set member/score: both mixed
    into a fresh 20 zero bytes, the result xored into the value's digest."""
    element = bytearray(20)
    mix_digest(element, first)
    mix_digest(element, second)
    return bytes(element)


def _list_digest(digest: bytearray, value) -> None:
    for item in value:  # head to tail, as listTypeInitIterator(o,0,LIST_TAIL)
        mix_digest(digest, item)


def _set_digest(digest: bytearray, value) -> None:
    for member in value:
        xor_digest(digest, member)


def _zset_digest(digest: bytearray, value) -> None:
    # Both encodings print the score with "%.17g": the skiplist's double directly, the
    # listpack's after zzlGetScore() reads it back, and a listpack stores the score as
    # an integer or as d2string() text, both of which read back as the same double.
    # (Python's %-formatting and glibc's are both correctly rounded: the same text,
    # "inf"/"-inf" and "-0" included.)
    for member, score in value.scores.items():
        xor_digest(digest, _pair_digest(member, b"%.17g" % score))


def _hash_digest(digest: bytearray, value) -> None:
    for field, val in value.items():
        xor_digest(digest, _pair_digest(field, val))


def _stream_digest(digest: bytearray, value) -> None:
    # streamIterator walks the live entries in ID order whatever the listpack nodes
    # are: the ID as "%U.%U" (a dot, not XADD's dash), then each field and value.
    # streamIteratorGetField() gives back the text even when the field is the master
    # entry's (SAMEFIELDS) or an integer entry, so node layout never shows. Consumer
    # groups, last-id and the other metadata are not digested.
    entries = value.entries
    for sid in value.ids:
        mix_digest(digest, b"%d.%d" % (sid >> 64, sid & MAX64))
        for part in entries[sid]:
            mix_digest(digest, part)


def _string_digest(digest: bytearray, value) -> None:
    mix_digest(digest, value)  # mixStringObjectDigest(): the decoded (text) form


_WALKS = {"string": _string_digest, "list": _list_digest, "set": _set_digest,
          "zset": _zset_digest, "hash": _hash_digest, "stream": _stream_digest}


def _stored(db, key: bytes):
    """The value in db->dict, expired or not (debug.c uses dictFind, not lookupKey:
    a logically expired key is digested and stays); a packed value is decoded for the
    walk only, leaving the dataset as it was."""
    value = db.data.get(key)
    if type(value) is PackedValue:
        try:
            value = unpack(value)
        except (ValueError, IndexError, KeyError) as exc:
            raise CommandError(f"ERR Corrupt value for key '{key.decode('utf-8', 'replace')}'"
                               f": {exc}") from None
    return value


def object_digest(digest: bytearray, db, key: bytes, value) -> None:
    """xorObjectDigest(): the type code (big-endian uint32), the contents, and
    "!!expire!!" if the key has a TTL — only that it has one: Redis 7.0 reads the
    expire time (getExpire) but never mixes the time itself in."""
    kind = type_name(value)
    mix_digest(digest, struct.pack(">I", TYPE_CODES[kind]))
    _WALKS[kind](digest, value)
    if key in db.expires:
        xor_digest(digest, b"!!expire!!")


def value_digest(db, key: bytes) -> str:
    """One DEBUG DIGEST-VALUE element: 40 zeros for a missing key."""
    digest = bytearray(20)
    value = _stored(db, key)
    if value is not None:
        object_digest(digest, db, key, value)
    return digest.hex()


def dataset_digest(dbs) -> str:
    """computeDatasetDigest(): per non-empty database, its id (big-endian uint32) mixed
    into the result, then each key's mix(key) + object digest xored in."""
    final = bytearray(20)
    for db in dbs:
        if not db.data:
            continue
        mix_digest(final, struct.pack(">I", db.id))
        for key in list(db.data):
            digest = bytearray(20)
            mix_digest(digest, key)
            object_digest(digest, db, key, _stored(db, key))
            xor_digest(final, digest)
    return final.hex()
