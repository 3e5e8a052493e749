"""Numbers in arguments, with Redis's rules and errors (util.c string2ll, string2ld;
object.c getLongLongFromObjectOrReply...): used by the commands, the data types and the
keyspace alike, so it sits at the bottom with the rest of the wire format."""

import math

from . import errors
from .errors import CommandError

LLONG_MIN = -(2**63)
LLONG_MAX = 2**63 - 1


def to_int(raw: bytes) -> int | None:
    """string2ll(): strict base-10 int64, no spaces, no '+', no leading zeros; else None."""
    n = len(raw)
    if n == 0 or n > 20:
        return None
    digits = raw[1:] if raw[0] == 45 else raw
    if not digits.isdigit() or (digits[0] == 48 and len(digits) > 1) or not digits.isascii():
        return None
    if raw == b"-0":
        return None
    value = int(raw)
    if value < LLONG_MIN or value > LLONG_MAX:
        return None
    return value


def parse_int(raw: bytes, message: str = errors.NOT_INTEGER) -> int:
    value = to_int(raw)
    if value is None:
        raise CommandError(message)
    return value


def parse_range_int(raw: bytes, lo: int, hi: int, message: str = errors.NOT_INTEGER) -> int:
    value = parse_int(raw, message)
    if not lo <= value <= hi:
        raise CommandError(message)
    return value


def to_float(raw: bytes) -> float | None:
    """string2ld()/strtold: decimal or 'inf'; no spaces, no NaN. None when invalid."""
    if not raw or len(raw) > 5000 or raw[0] in b" \t\n\r\v\f" or raw[-1] in b" \t\n\r\v\f":
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    if math.isnan(value):
        return None
    if b"_" in raw:  # Python's float() reads 1_000; strtold does not
        return None
    return value


def parse_float(raw: bytes, message: str = errors.NOT_FLOAT) -> float:
    value = to_float(raw)
    if value is None:
        raise CommandError(message)
    return value


def parse_timeout(raw: bytes) -> float:
    """Blocking timeouts: seconds as a float, 0 = forever (blocked.c getTimeoutFromObjectOrReply)."""
    value = to_float(raw)
    if value is None or math.isinf(value):
        raise CommandError("ERR timeout is not a float or out of range")
    if value < 0:
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    return value
