"""Bitmap commands (Redis's bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD.

Bitmaps are plain strings (bare ``bytes``); bit 0 is the most significant bit of the
first byte. Whole-string work goes through Python's big integers (int.from_bytes,
int.bit_count) and bytes methods, which run at C speed on megabyte strings.
"""

from ..protocol import errors
from ..protocol.errors import CommandError
from ..protocol.numbers import to_int
from .registry import command
from ..notify import notify
from .strings import read_value, write_string


def _int_or(raw: bytes, message: str) -> int:
    value = to_int(raw)
    if value is None:
        raise CommandError(message)
    return value


def _wrap64(value: int) -> int:
    """A C int64 result: Redis multiplies '#N' offsets without an overflow check."""
    return ((value + 2**63) % 2**64) - 2**63


def _bit_offset(client, raw: bytes, bits: int = 0) -> int:
    """getBitOffsetFromArgument(): '#N' means N*bits when bits is given (BITFIELD);
    the byte holding the bit must stay below proto-max-bulk-len."""
    hashed = bits > 0 and raw[:1] == b"#"
    offset = _int_or(raw[1:] if hashed else raw, errors.BIT_OFFSET)
    if hashed:
        offset = _wrap64(offset * bits)
    if offset < 0 or (offset >> 3) >= client.server.config["proto-max-bulk-len"]:
        raise CommandError(errors.BIT_OFFSET)
    return offset


def _read_bitmap(client, key: bytes) -> bytes | None:
    value = read_value(client, key)
    if value is not None and type(value) is not bytes:
        raise CommandError(errors.WRONGTYPE)
    return value


def _store(db, key: bytes, old: bytes | None, new: bytes) -> None:
    # A new key has no TTL; an existing one keeps it (dbUnshareStringValue()). Either
    # way the string is one Redis edits in place: raw-encoded.
    if old is None:
        db.set(key, new)
    else:
        db.replace(key, new)
    db.mark_encoding(key, "raw")


# -- SETBIT / GETBIT ------------------------------------------------------------------


@command("setbit")
def setbit(client, argv):
    offset = _bit_offset(client, argv[2])
    on = _int_or(argv[3], errors.BIT_VALUE)
    if on & ~1:
        raise CommandError(errors.BIT_VALUE)
    db = client.db
    key = argv[1]
    old = write_string(db, key)
    index = offset >> 3
    shift = 7 - (offset & 7)
    if old is not None and index < len(old) and (old[index] >> shift) & 1 == on:
        # setbitCommand(): a key neither created nor grown nor changed is no write (no
        # dirty, no notification, nothing to propagate) — though dbUnshareStringValue()
        # has made the string raw already.
        db.mark_encoding(key, "raw")
        return on
    buf = bytearray(old or b"")  # one copy in, one out: cheaper than slicing around the byte
    if index >= len(buf):
        buf.extend(bytes(index + 1 - len(buf)))
    previous = (buf[index] >> shift) & 1
    buf[index] = (buf[index] & ~(1 << shift)) | (on << shift)
    _store(db, key, old, bytes(buf))
    notify(client, "setbit", key)
    return previous


@command("getbit")
def getbit(client, argv):
    offset = _bit_offset(client, argv[2])
    value = _read_bitmap(client, argv[1])
    index = offset >> 3
    if value is None or index >= len(value):
        return 0
    return (value[index] >> (7 - (offset & 7))) & 1


# -- BITCOUNT / BITPOS ----------------------------------------------------------------


def _unit_is_bit(raw: bytes) -> bool:
    unit = raw.lower()
    if unit == b"bit":
        return True
    if unit == b"byte":
        return False
    raise CommandError(errors.SYNTAX)


def _clamp_range(start: int, end: int, total: int) -> tuple[int, int]:
    """Redis's negative-index conversion, end clamped to the last position."""
    if start < 0:
        start = max(total + start, 0)
    if end < 0:
        end = max(total + end, 0)
    if end >= total:
        end = total - 1
    return start, end


@command("bitcount")
def bitcount(client, argv):
    # Redis 7.0 looks the key up before it parses the range: a missing key is 0
    # whatever the arguments.
    value = _read_bitmap(client, argv[1])
    if value is None:
        return 0
    argc = len(argv)
    if argc == 2:
        return int.from_bytes(value, "big").bit_count()
    if argc not in (4, 5):
        raise CommandError(errors.SYNTAX)
    start = _int_or(argv[2], errors.NOT_INTEGER)
    end = _int_or(argv[3], errors.NOT_INTEGER)
    if start < 0 and end < 0 and start > end:
        return 0
    is_bit = argc == 5 and _unit_is_bit(argv[4])
    total = len(value) * 8 if is_bit else len(value)
    start, end = _clamp_range(start, end, total)
    if start > end:
        return 0
    if not is_bit:
        return int.from_bytes(value[start:end + 1], "big").bit_count()
    first, last = start >> 3, end >> 3
    n = int.from_bytes(value[first:last + 1], "big")
    n >>= 7 - (end & 7)  # drop the bits after end
    n &= (1 << (end - start + 1)) - 1  # and those before start
    return n.bit_count()


@command("bitpos")
def bitpos(client, argv):
    bit = _int_or(argv[2], errors.NOT_INTEGER)
    if bit not in (0, 1):
        raise CommandError(errors.BITPOS_BIT)
    value = _read_bitmap(client, argv[1])
    if value is None:
        # A missing key is an infinite run of zeros.
        return -1 if bit else 0
    argc = len(argv)
    end_given = False
    is_bit = False
    if argc == 3:
        start, end = 0, len(value) - 1
    elif argc in (4, 5, 6):
        start = _int_or(argv[3], errors.NOT_INTEGER)
        if argc == 6:
            is_bit = _unit_is_bit(argv[5])
        total = len(value) * 8 if is_bit else len(value)
        if argc >= 5:
            end = _int_or(argv[4], errors.NOT_INTEGER)
            end_given = True
        else:
            end = total - 1
        start, end = _clamp_range(start, end, total)
    else:
        raise CommandError(errors.SYNTAX)
    if start > end:
        return -1
    if not is_bit:
        start, end = start * 8, end * 8 + 7
    found = _first_bit(value, bit, start, end)
    if found >= 0:
        return found
    if bit == 1 or end_given:
        return -1
    # Looking for a clear bit with no explicit end: the string continues with zeros.
    return ((end >> 3) + 1) * 8


_SCAN_CHUNK = 8192  # bytes per big-int probe: early exit without per-byte Python loops


def _first_bit(value: bytes, bit: int, start: int, end: int) -> int:
    """Position of the first bit equal to `bit` in bits start..end, or -1.

    Each chunk becomes one big integer (flipped when looking for a 0) whose bit_length
    locates the first match; bits of the edge bytes outside the range are masked off."""
    first, last = start >> 3, end >> 3
    pos = first
    while pos <= last:
        stop = min(pos + _SCAN_CHUNK, last + 1)
        width = 8 * (stop - pos)
        n = int.from_bytes(value[pos:stop], "big")
        if not bit:
            n ^= (1 << width) - 1
        if pos == first:
            n &= (1 << (width - (start & 7))) - 1
        if stop == last + 1:
            drop = 7 - (end & 7)
            n = (n >> drop) << drop
        if n:
            return pos * 8 + width - n.bit_length()
        pos = stop
    return -1


# -- BITOP ----------------------------------------------------------------------------

_BITOPS = {
    b"and": lambda a, b: a & b,
    b"or": lambda a, b: a | b,
    b"xor": lambda a, b: a ^ b,
    b"not": None,
}


@command("bitop")
def bitop(client, argv):
    op = argv[1].lower()
    if op not in _BITOPS:
        raise CommandError(errors.SYNTAX)
    if op == b"not" and len(argv) != 4:
        raise CommandError(errors.BITOP_NOT_ONE_KEY)
    sources = [_read_bitmap(client, key) or b"" for key in argv[3:]]
    maxlen = max(len(s) for s in sources)
    db = client.db
    target = argv[2]
    if maxlen == 0:
        # An empty result deletes the destination.
        if target in db.data: notify(client, "del", target)  # noqa: E701
        db.delete(target)
        return 0
    # Shorter strings are zero-padded on the right: shift them to maxlen bytes.
    numbers = [int.from_bytes(s, "big") << (8 * (maxlen - len(s))) for s in sources]
    combine = _BITOPS[op]
    if combine is None:
        result = ~numbers[0] & ((1 << (8 * maxlen)) - 1)
    else:
        result = numbers[0]
        for n in numbers[1:]:
            result = combine(result, n)
    db.set(target, result.to_bytes(maxlen, "big"))
    db.mark_encoding(target, "raw")  # createObject(OBJ_STRING, res)
    notify(client, "set", target)
    return maxlen


# -- BITFIELD -------------------------------------------------------------------------

_WRAP, _SAT, _FAIL = 0, 1, 2
_OVERFLOW_TYPES = {b"wrap": _WRAP, b"sat": _SAT, b"fail": _FAIL}
_GET, _SET, _INCRBY = 0, 1, 2
_SUBCOMMANDS = {b"get": (_GET, 2), b"set": (_SET, 3), b"incrby": (_INCRBY, 3)}


def _bitfield_type(raw: bytes) -> tuple[bool, int]:
    """getBitfieldTypeFromArgument(): (signed, bits) for i1..i64 / u1..u63."""
    sign = raw[:1]
    bits = to_int(raw[1:])
    if sign not in (b"i", b"u") or bits is None or bits < 1 or bits > (64 if sign == b"i" else 63):
        raise CommandError(errors.BITFIELD_TYPE)
    return sign == b"i", bits


def _parse_bitfield(client, argv):
    """The operations (opcode, signed, bits, offset, value, overflow) and the highest
    bit written, with Redis's errors in Redis's order."""
    ops = []
    overflow = _WRAP
    highest = -1
    j = 2
    argc = len(argv)
    while j < argc:
        remaining = argc - j - 1
        name = argv[j].lower()
        if name == b"overflow" and remaining >= 1:
            overflow = _OVERFLOW_TYPES.get(argv[j + 1].lower())
            if overflow is None:
                raise CommandError(errors.BITFIELD_OVERFLOW_TYPE)
            j += 2
            continue
        sub = _SUBCOMMANDS.get(name)
        if sub is None or remaining < sub[1]:
            raise CommandError(errors.SYNTAX)
        opcode = sub[0]
        signed, bits = _bitfield_type(argv[j + 1])
        offset = _bit_offset(client, argv[j + 2], bits)
        value = 0
        if opcode != _GET:
            highest = max(highest, offset + bits - 1)
            value = _int_or(argv[j + 3], errors.NOT_INTEGER)
        ops.append((opcode, signed, bits, offset, value, overflow))
        j += 1 + sub[1]
    return ops, highest


def _get_field(buf, offset: int, bits: int, signed: bool) -> int:
    first, last = offset >> 3, (offset + bits - 1) >> 3
    chunk = bytes(buf[first:last + 1])
    size = last - first + 1
    if len(chunk) < size:
        chunk += bytes(size - len(chunk))  # reads past the end see zeros
    shift = size * 8 - (offset & 7) - bits
    n = (int.from_bytes(chunk, "big") >> shift) & ((1 << bits) - 1)
    if signed and n >> (bits - 1):
        n -= 1 << bits
    return n


def _set_field(buf: bytearray, offset: int, bits: int, value: int) -> None:
    first, last = offset >> 3, (offset + bits - 1) >> 3
    size = last - first + 1
    shift = size * 8 - (offset & 7) - bits
    mask = ((1 << bits) - 1) << shift
    n = int.from_bytes(buf[first:last + 1], "big")
    n = (n & ~mask) | ((value << shift) & mask)
    buf[first:last + 1] = n.to_bytes(size, "big")


def _apply_overflow(value: int, incr: int, signed: bool, bits: int, overflow: int):
    """check(Un)signedBitfieldOverflow(): the value to store, or None for FAIL."""
    if signed:
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        # The operand is a C uint64: a negative SET value is a huge unsigned one.
        value &= 2**64 - 1
        low, high = 0, (1 << bits) - 1
    total = value + incr
    if low <= total <= high:
        return total
    if overflow == _FAIL:
        return None
    if overflow == _SAT:
        return high if total > high else low
    wrapped = total & ((1 << bits) - 1)
    if signed and wrapped >> (bits - 1):
        wrapped -= 1 << bits
    return wrapped


def _bitfield(client, argv, readonly_command: bool):
    ops, highest = _parse_bitfield(client, argv)
    key = argv[1]
    if highest < 0:
        value = _read_bitmap(client, key)
        return [_get_field(value or b"", offset, bits, signed)
                for _, signed, bits, offset, _, _ in ops]
    if readonly_command:
        raise CommandError(errors.BITFIELD_RO_GET_ONLY)
    db = client.db
    old = write_string(db, key)
    buf = bytearray(old or b"")
    needed = (highest >> 3) + 1
    grown = old is None or len(buf) < needed  # lookupStringForBitCommand()'s dirty
    if len(buf) < needed:
        buf.extend(bytes(needed - len(buf)))
    replies = []
    changes = 0
    for opcode, signed, bits, offset, operand, overflow in ops:
        if opcode == _GET:
            replies.append(_get_field(buf, offset, bits, signed))
            continue
        current = _get_field(buf, offset, bits, signed)
        if opcode == _INCRBY:
            new = _apply_overflow(current, operand, signed, bits, overflow)
            reply = new
        else:
            new = _apply_overflow(operand, 0, signed, bits, overflow)
            reply = current
        if new is None:
            replies.append(None)
            continue
        replies.append(reply)
        if grown or new != current:
            changes += 1
        _set_field(buf, offset, bits, new)
    # bitfieldGeneric(): dirty grows by the number of SET/INCRBY that changed something
    # (all of them on a created or grown string); a created or grown string is stored
    # even when every operation FAILed, but counts as no change then.
    if grown or changes:
        server = client.server
        dirty = server.dirty
        _store(db, key, old, bytes(buf))
        server.dirty = dirty + changes
    else:
        db.mark_encoding(key, "raw")  # dbUnshareStringValue()
    if changes:
        notify(client, "setbit", key)
    return replies


@command("bitfield")
def bitfield(client, argv):
    return _bitfield(client, argv, False)


@command("bitfield_ro")
def bitfield_ro(client, argv):
    return _bitfield(client, argv, True)
