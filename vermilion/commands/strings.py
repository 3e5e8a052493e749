"""String commands (Redis's t_string.c): GET/SET and friends, counters, ranges, LCS.

Strings are bare ``bytes`` in ``db.data``. Reads go through ``read_value`` so that
keyspace hits/misses are counted as lookupKeyRead() counts them; writes that must keep
the TTL (APPEND, INCR, SETRANGE...) overwrite ``db.data`` directly, which is what
Redis's dbOverwrite()/dbReplaceValue() do.
"""

import platform
import re
from fractions import Fraction

from ..datatypes.packed import PackedValue
from ..keyspace.database import now_ms
from ..propagate import (rewrite_getdel, rewrite_getex, rewrite_getset, rewrite_incrbyfloat,
                         rewrite_set, rewrite_setex)
from ..protocol import errors
from ..protocol.encode import OK
from ..protocol.errors import CommandError
from ..protocol.numbers import LLONG_MAX, LLONG_MIN, to_int
from .registry import command
from ..notify import notify

# -- shared lookups -------------------------------------------------------------------


def read_value(client, key: bytes):
    """lookupKeyRead(): the value or None, counting a keyspace hit or miss (a hit is
    counted before any type check, as Redis does)."""
    db = client.db
    value = db.lookup(key) if db.expires else db.data.get(key)
    if value is None:
        client.server.stats.keyspace_misses += 1
    else:
        client.server.stats.keyspace_hits += 1
        if type(value) is PackedValue:  # (the shortcut above skipped lookup's unpacking)
            value = db.lookup(key)
    return value


def read_string(client, key: bytes) -> bytes | None:
    """lookupKeyRead() + checkType(OBJ_STRING)."""
    value = read_value(client, key)
    if value is not None and type(value) is not bytes:
        raise CommandError(errors.WRONGTYPE)
    return value


def write_string(db, key: bytes) -> bytes | None:
    """lookupKeyWrite() + checkType(OBJ_STRING): no hit/miss accounting."""
    value = db.lookup(key) if db.expires else db.data.get(key)
    if value is not None and type(value) is not bytes:
        raise CommandError(errors.WRONGTYPE)
    return value


def check_string_length(client, size: int) -> None:
    """checkStringLength(): results longer than proto-max-bulk-len are refused."""
    if size > client.server.config["proto-max-bulk-len"]:
        raise CommandError(errors.STRING_TOO_LONG)


def _parse_ll(raw: bytes) -> int:
    """getLongLongFromObjectOrReply() on an argument."""
    if 0 < len(raw) <= 18 and raw.isdigit() and (raw[0] != 48 or len(raw) == 1):
        return int(raw)  # plain non-negative numbers: skip the full string2ll checks
    value = to_int(raw)
    if value is None:
        raise CommandError(errors.NOT_INTEGER)
    return value


# -- GET / SET ------------------------------------------------------------------------


@command("get")
def get(client, argv):
    db = client.db
    key = argv[1]
    value = db.lookup(key) if db.expires else db.data.get(key)
    if value is None:
        client.server.stats.keyspace_misses += 1
        return None
    client.server.stats.keyspace_hits += 1
    if type(value) is not bytes:
        raise CommandError(errors.WRONGTYPE)
    return value


# parseExtendedStringArgumentsOrReply() flags.
_NX, _XX, _EX, _PX, _KEEPTTL, _GET, _EXAT, _PXAT, _PERSIST = (1 << i for i in range(9))
_ANY_EXPIRE = _EX | _PX | _EXAT | _PXAT
_MS_UNITS = _PX | _PXAT

# option → (flag, options it conflicts with, takes a value, allowed in SET, in GETEX).
# Redis rejects a conflicting option with a plain syntax error, option by option.
_EXT_OPTIONS = {
    b"nx": (_NX, _XX, False, True, False),
    b"xx": (_XX, _NX, False, True, False),
    b"get": (_GET, 0, False, True, False),
    b"keepttl": (_KEEPTTL, _PERSIST | _ANY_EXPIRE, False, True, False),
    b"persist": (_PERSIST, _ANY_EXPIRE | _KEEPTTL, False, False, True),
    b"ex": (_EX, _KEEPTTL | _PERSIST | _EXAT | _PX | _PXAT, True, True, True),
    b"px": (_PX, _KEEPTTL | _PERSIST | _EX | _EXAT | _PXAT, True, True, True),
    b"exat": (_EXAT, _KEEPTTL | _PERSIST | _EX | _PX | _PXAT, True, True, True),
    b"pxat": (_PXAT, _KEEPTTL | _PERSIST | _EX | _EXAT | _PX, True, True, True),
}


def _parse_extended(argv, start: int, for_set: bool):
    """(flags, expire argument or None) for SET/GETEX options, Redis's syntax errors."""
    flags = 0
    expire = None
    j = start
    argc = len(argv)
    while j < argc:
        option = _EXT_OPTIONS.get(argv[j].lower())
        if option is None:
            raise CommandError(errors.SYNTAX)
        flag, conflicts, has_value, in_set, in_getex = option
        if flags & conflicts or not (in_set if for_set else in_getex):
            raise CommandError(errors.SYNTAX)
        if has_value:
            if j == argc - 1:
                raise CommandError(errors.SYNTAX)
            j += 1
            expire = argv[j]
        flags |= flag
        j += 1
    return flags, expire


def _expire_at_ms(raw: bytes, flags: int, command_name: str) -> int:
    """getExpireMillisecondsOrReply(): absolute unix ms, or Redis's errors."""
    ms = _parse_ll(raw)
    seconds = not flags & _MS_UNITS
    if ms <= 0 or (seconds and ms > LLONG_MAX // 1000):
        raise CommandError(errors.INVALID_EXPIRE.format(command_name))
    if seconds:
        ms *= 1000
    if flags & (_EX | _PX):
        ms += now_ms()
    if ms > LLONG_MAX:  # Redis sees the signed overflow as a non-positive time
        raise CommandError(errors.INVALID_EXPIRE.format(command_name))
    return ms


def _set_generic(client, flags, key, value, expire, command_name, ok_reply=OK, abort_reply=None):
    """setGenericCommand(): SET with options, SETNX, SETEX, PSETEX."""
    db = client.db
    when = _expire_at_ms(expire, flags, command_name) if expire is not None else None
    reply = ok_reply
    if flags & _GET:
        reply = read_string(client, key)
    found = (db.lookup(key) if db.expires else db.data.get(key)) is not None
    if (flags & _NX and found) or (flags & _XX and not found):
        return reply if flags & _GET else abort_reply
    db.set(key, value, keep_ttl=bool(flags & _KEEPTTL) or when is not None)
    notify(client, "set", key)
    if when is not None:
        # setGenericCommand() sets the expiry even when it is already past (no
        # checkAlreadyExpired() here): the key expires on its next access, like any
        # other. Part of the same change as the value (one dirty for both).
        db.expires[key] = when
        notify(client, "expire", key)
    return reply


@command("set", rewrite=rewrite_set)
def set_(client, argv):
    if len(argv) == 3:
        # Plain SET key value: the benchmarked path, no option parsing at all.
        key = argv[1]
        client.db.set_plain_string(key, argv[2])
        if client.server.notifier.classes:
            notify(client, "set", key)
        return OK
    flags, expire = _parse_extended(argv, 3, True)
    return _set_generic(client, flags, argv[1], argv[2], expire, "set")


@command("setnx")
def setnx(client, argv):
    return _set_generic(client, _NX, argv[1], argv[2], None, "setnx", 1, 0)


@command("setex", rewrite=rewrite_setex)
def setex(client, argv):
    return _set_generic(client, _EX, argv[1], argv[3], argv[2], "setex")


@command("psetex", rewrite=rewrite_setex)
def psetex(client, argv):
    return _set_generic(client, _PX, argv[1], argv[3], argv[2], "psetex")


@command("getset", rewrite=rewrite_getset)
def getset(client, argv):
    old = read_string(client, argv[1])
    client.db.set(argv[1], argv[2])
    notify(client, "set", argv[1])
    return old


@command("getdel", rewrite=rewrite_getdel)
def getdel(client, argv):
    value = read_string(client, argv[1])
    if value is not None:
        client.db.delete(argv[1])
        notify(client, "del", argv[1])
    return value


@command("getex", rewrite=rewrite_getex)
def getex(client, argv):
    flags, expire = _parse_extended(argv, 2, False)
    key = argv[1]
    value = read_string(client, key)
    if value is None:
        return None
    db = client.db
    if expire is not None:
        when = _expire_at_ms(expire, flags, "getex")
        if flags & (_EXAT | _PXAT) and when <= now_ms():
            db.delete(key)
            notify(client, "del", key)
        else:
            db.set_expire(key, when)
            notify(client, "expire", key)
    elif flags & _PERSIST:
        if db.persist(key):
            notify(client, "persist", key)
    return value


@command("mget")
def mget(client, argv):
    db = client.db
    stats = client.server.stats
    lookup = db.lookup if db.expires else db.data.get
    out = []
    for key in argv[1:]:
        value = lookup(key)
        if value is None:
            stats.keyspace_misses += 1
        else:
            stats.keyspace_hits += 1
            if type(value) is not bytes:
                value = None  # MGET answers nil for a key of another type
        out.append(value)
    return out


def _mset_generic(client, argv, nx: bool):
    if len(argv) % 2 == 0:
        raise CommandError(errors.wrong_arity(argv[0].decode("utf-8", "replace").lower()))
    db = client.db
    if nx and any(db.exists(argv[j]) for j in range(1, len(argv), 2)):
        return 0
    if client.server.notifier.classes:
        for j in range(1, len(argv), 2):
            db.set_plain_string(argv[j], argv[j + 1])
            notify(client, "set", argv[j])
    else:  # nobody listens: no per-key notify() call
        db.set_plain_strings(argv)
    return 1 if nx else OK


@command("mset")
def mset(client, argv):
    return _mset_generic(client, argv, False)


@command("msetnx")
def msetnx(client, argv):
    return _mset_generic(client, argv, True)


@command("append")
def append(client, argv):
    db = client.db
    key = argv[1]
    old = write_string(db, key)
    if old is None:
        db.set(key, argv[2])
        notify(client, "append", key)
        return len(argv[2])
    check_string_length(client, len(old) + len(argv[2]))
    new = old + argv[2]
    db.replace(key, new)
    db.mark_encoding(key, "raw")  # appended in place (dbUnshareStringValue)
    notify(client, "append", key)
    return len(new)


@command("strlen")
def strlen(client, argv):
    value = read_string(client, argv[1])
    return 0 if value is None else len(value)


# -- counters -------------------------------------------------------------------------


def _parse_counter(old: bytes) -> int:
    """getLongLongFromObject() on a stored value: string2ll() accepts exactly the
    canonical decimal text of an int64 (no '+', no leading zeros or spaces, no "-0")."""
    if len(old) <= 18 and old.isdigit() and (old[0] != 48 or len(old) == 1):
        return int(old)  # the common case: a plain non-negative counter
    try:
        value = int(old) if len(old) <= 20 else None
    except ValueError:
        value = None
    if value is None or b"%d" % value != old or not LLONG_MIN <= value <= LLONG_MAX:
        raise CommandError(errors.NOT_INTEGER)
    return value


def _incr_by(client, key: bytes, incr: int) -> int:
    """incrDecrCommand(): the TTL is kept, the result stored as its decimal text."""
    db = client.db
    old = db.lookup(key) if db.expires else db.data.get(key)
    if old is None:
        value = incr
    elif type(old) is not bytes:
        raise CommandError(errors.WRONGTYPE)
    else:
        value = _parse_counter(old) + incr
        if value > LLONG_MAX or value < LLONG_MIN:
            raise CommandError(errors.OVERFLOW)
    db.set_plain_string(key, b"%d" % value, keep_ttl=True)
    notify(client, "incrby", key)
    return value


@command("incr")
def incr(client, argv):
    # The benchmarked path: _incr_by() inlined for a plain counter.
    db = client.db
    key = argv[1]
    old = db.lookup(key) if db.expires else db.data.get(key)
    if type(old) is bytes and len(old) <= 18 and old.isdigit() and (old[0] != 48 or len(old) == 1):
        value = int(old) + 1
        db.set_plain_string(key, b"%d" % value, True)
        if client.server.notifier.classes:
            notify(client, "incrby", key)
        return value
    return _incr_by(client, key, 1)


@command("decr")
def decr(client, argv):
    return _incr_by(client, argv[1], -1)


@command("incrby")
def incrby(client, argv):
    return _incr_by(client, argv[1], _parse_ll(argv[2]))


@command("decrby")
def decrby(client, argv):
    incr = _parse_ll(argv[2])
    if incr == LLONG_MIN:  # -LLONG_MIN does not fit a long long
        raise CommandError(errors.DECREMENT_OVERFLOW)
    return _incr_by(client, argv[1], -incr)


# INCRBYFLOAT works in C `long double`: on x86-64 the 80-bit extended format with a
# 64-bit significand, on 64-bit ARM IEEE quad (113 bits). Python has no such type, so
# values are exact Fractions rounded to that format after parsing and after the
# addition, which gives the same digits as Redis's "%.17Lf" (0.1 + 0.2 is "0.3"
# there, not "0.30000000000000004").
_LD_MANT_BITS = 113 if platform.machine().lower() in ("aarch64", "arm64") else 64
_LD_MIN_EXP = -16382  # exponent of the smallest normal number
_LD_OVERFLOW = Fraction(2) ** 16384
_MAX_LONG_DOUBLE_CHARS = 5 * 1024
_DEC_RE = re.compile(rb"([+-]?)(\d+\.?\d*|\.\d+)(?:[eE]([+-]?\d+))?\Z")
_HEX_RE = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP]([+-]?\d+))?\Z")
_INF_RE = re.compile(rb"[+-]?(?:inf|infinity)\Z", re.IGNORECASE)
_C_SPACE = b" \t\n\v\f\r"


# A parsed literal infinity: strtold accepts "inf", only the resulting sum is refused.
_INF = object()


def _ld_round(x: Fraction) -> Fraction | None:
    """x rounded to the nearest long double (ties to even); None on overflow."""
    if x == 0:
        return x
    n, d = abs(x.numerator), x.denominator
    e = n.bit_length() - d.bit_length()
    if (n << max(-e, 0)) < (d << max(e, 0)):
        e -= 1  # now 2**e <= |x| < 2**(e+1)
    q = max(e, _LD_MIN_EXP) - (_LD_MANT_BITS - 1)  # exponent of one unit in the last place
    num, den = (n, d << q) if q >= 0 else (n << -q, d)
    m, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and m & 1):
        m += 1
    value = Fraction(m << q) if q >= 0 else Fraction(m, 1 << -q)
    if value >= _LD_OVERFLOW:
        return None
    return value if x > 0 else -value


def _parse_decimal_digits(digits: bytes) -> int:
    # int() refuses more than 4300 digits (sys.int_max_str_digits); inputs reach 5119.
    if len(digits) <= 4000:
        return int(digits)
    return int(digits[:4000]) * 10 ** (len(digits) - 4000) + _parse_decimal_digits(digits[4000:])


def _exponent(text: bytes | None) -> int:
    # Clamped: any exponent this large over/underflows anyway, and int() refuses
    # thousands of digits.
    if not text:
        return 0
    if len(text.lstrip(b"+-").lstrip(b"0")) > 9:
        return -(10**9) if text[:1] == b"-" else 10**9
    return int(text)


def _parse_long_double(raw: bytes):
    """string2ld(): a Fraction, _INF (a literal infinity), or None when invalid."""
    if not raw or len(raw) >= _MAX_LONG_DOUBLE_CHARS or raw[0] in _C_SPACE:
        return None
    if b"\0" in raw:
        return None  # strtold would stop there, short of the whole argument
    m = _DEC_RE.match(raw)
    if m:
        sign, digits, exp = m.groups()
        exp = _exponent(exp)
        int_part, _, frac_part = digits.partition(b".")
        exp -= len(frac_part)
        all_digits = (int_part + frac_part).lstrip(b"0")
        if not all_digits:
            return Fraction(0)
        magnitude = len(all_digits) + exp
        if magnitude > 4940:
            return None  # ERANGE overflow to HUGE_VAL
        if magnitude < -4980:
            return None  # ERANGE underflow to zero
        exact = Fraction(_parse_decimal_digits(all_digits)) * Fraction(10) ** exp
    else:
        m = _HEX_RE.match(raw)
        if m:
            sign, digits, exp = m.groups()
            exp = _exponent(exp)
            int_part, _, frac_part = digits.partition(b".")
            mantissa = int(int_part + frac_part or b"0", 16)
            exp -= 4 * len(frac_part)
            if mantissa == 0:
                return Fraction(0)
            magnitude = mantissa.bit_length() + exp
            if magnitude > 16400:
                return None
            if magnitude < -16540:
                return None
            exact = Fraction(mantissa) * Fraction(2) ** exp
        elif _INF_RE.match(raw):
            return _INF
        else:
            return None
    value = _ld_round(exact)
    if value is None or value == 0:
        return None  # out of range: Redis refuses ERANGE results
    return -value if sign == b"-" else value


def _format_long_double(value: Fraction) -> bytes:
    """ld2string(LD_STR_HUMAN): "%.17Lf" with trailing zeros (and '.') trimmed."""
    q = value * 10**17
    whole, rem = divmod(q.numerator, q.denominator)
    if 2 * rem > q.denominator or (2 * rem == q.denominator and whole & 1):
        whole += 1
    negative = whole < 0
    digits = _decimal_text(abs(whole)).rjust(18, b"0")
    text = digits[:-17] + b"." + digits[-17:]
    text = text.rstrip(b"0").rstrip(b".")
    if negative and text != b"0":
        text = b"-" + text
    return text


_CHUNK = 10**4000


def _decimal_text(n: int) -> bytes:
    # Python refuses int -> str beyond 4300 digits (sys.int_max_str_digits); a long
    # double reaches 4933 integer digits, so big values are converted in pieces.
    if n < _CHUNK:
        return b"%d" % n
    high, low = divmod(n, _CHUNK)
    return _decimal_text(high) + b"%04000d" % low


def _ld_value(raw: bytes):
    value = _parse_long_double(raw)
    if value is None:
        raise CommandError(errors.NOT_FLOAT)
    return value


@command("incrbyfloat", rewrite=rewrite_incrbyfloat)
def incrbyfloat(client, argv):
    db = client.db
    key = argv[1]
    old = write_string(db, key)
    value = Fraction(0) if old is None else _ld_value(old)
    incr = _ld_value(argv[2])
    # Any sum with an infinity is an infinity or a NaN: refused either way.
    total = None if value is _INF or incr is _INF else _ld_round(value + incr)
    if total is None:
        raise CommandError(errors.INCR_NAN_INF)
    new = _format_long_double(total)
    if old is None:
        db.set(key, new)
    else:
        db.replace(key, new)
    # createStringObjectFromLongDouble(): never int-encoded, even for "3".
    db.mark_encoding(key, "embstr" if len(new) <= 44 else "raw")
    notify(client, "incrbyfloat", key)
    return new


# -- ranges ---------------------------------------------------------------------------


def _getrange(client, argv):
    start = _parse_ll(argv[2])
    end = _parse_ll(argv[3])
    value = read_string(client, argv[1])
    if not value:
        return b""
    if start < 0 and end < 0 and start > end:
        return b""
    n = len(value)
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = max(n + end, 0)
    if end >= n:
        end = n - 1
    if start > end:
        return b""
    return value[start:end + 1]


command("getrange")(_getrange)
command("substr")(_getrange)


@command("setrange")
def setrange(client, argv):
    offset = _parse_ll(argv[2])
    if offset < 0:
        raise CommandError(errors.OFFSET_OUT_OF_RANGE)
    patch = argv[3]
    db = client.db
    key = argv[1]
    old = write_string(db, key)
    if old is None:
        if not patch:
            return 0
        check_string_length(client, offset + len(patch))
        db.set(key, bytes(offset) + patch)
        db.mark_encoding(key, "raw")
        notify(client, "setrange", key)
        return offset + len(patch)
    if not patch:
        return len(old)
    check_string_length(client, offset + len(patch))
    buf = bytearray(old)
    if len(buf) < offset:
        buf.extend(bytes(offset - len(buf)))
    buf[offset:offset + len(patch)] = patch
    db.replace(key, bytes(buf))
    db.mark_encoding(key, "raw")
    notify(client, "setrange", key)
    return len(buf)


# -- LCS ------------------------------------------------------------------------------


def _lcs_rows(a: bytes, b: bytes) -> list[int]:
    """Bit-parallel LCS (Allison-Dix / Hyyrö): rows[i] has a 0 bit at position j for
    each unit of LCS(a[:i], b[:j+1]) growth, so LCS(i, j) = j - popcount(low j bits).
    This is the dynamic-programming table of Redis's lcsCommand() in O(n*m/wordsize)."""
    blen = len(b)
    mask = (1 << blen) - 1
    positions: dict[int, int] = {}
    for j, ch in enumerate(b):
        positions[ch] = positions.get(ch, 0) | (1 << j)
    v = mask
    rows = [v]
    for ch in a:
        u = v & positions.get(ch, 0)
        v = ((v + u) | (v - u)) & mask
        rows.append(v)
    return rows


@command("lcs")
def lcs(client, argv):
    a = read_value(client, argv[1])
    b = read_value(client, argv[2])
    if (a is not None and type(a) is not bytes) or (b is not None and type(b) is not bytes):
        raise CommandError(errors.LCS_WRONGTYPE)
    a = a or b""
    b = b or b""
    get_len = get_idx = with_match_len = False
    min_match_len = 0
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        if opt == b"idx":
            get_idx = True
        elif opt == b"len":
            get_len = True
        elif opt == b"withmatchlen":
            with_match_len = True
        elif opt == b"minmatchlen" and j + 1 < len(argv):
            min_match_len = max(_parse_ll(argv[j + 1]), 0)
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    if get_len and get_idx:
        raise CommandError(errors.LCS_LEN_AND_IDX)
    if len(a) >= 2**32 - 2 or len(b) >= 2**32 - 2:
        raise CommandError(errors.LCS_TOO_LONG)
    # Redis refuses a DP table (uint32 cells) larger than proto-max-bulk-len.
    if (len(a) + 1) * (len(b) + 1) * 4 > client.server.config["proto-max-bulk-len"]:
        raise CommandError(errors.LCS_MEMORY)
    rows = _lcs_rows(a, b)
    blen = len(b)
    total = blen - rows[-1].bit_count()
    if get_len:
        return total
    matches, result = _lcs_walk(a, b, rows, total, min_match_len, with_match_len, get_idx)
    if get_idx:
        return {b"matches": matches, b"len": total}
    return result


def _lcs_walk(a, b, rows, total, min_match_len, with_match_len, want_ranges):
    """Redis's backward walk over the table: the LCS string and the matched ranges,
    with its exact tie-breaking and range-emission rules."""

    def cell(i, j):
        return j - (rows[i] & ((1 << j) - 1)).bit_count()

    alen, blen = len(a), len(b)
    result = bytearray(total)
    idx = total
    matches = []
    i, j = alen, blen
    a_start = alen  # alen means "no range open"
    a_end = b_start = b_end = 0
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            result[idx - 1] = a[i - 1]
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            i -= 1
            j -= 1
        else:
            if cell(i - 1, j) > cell(i, j - 1):
                i -= 1
            else:
                j -= 1
            if a_start != alen:
                emit = True
        if emit:
            match_len = a_end - a_start + 1
            if want_ranges and (min_match_len == 0 or match_len >= min_match_len):
                entry = [[a_start, a_end], [b_start, b_end]]
                if with_match_len:
                    entry.append(match_len)
                matches.append(entry)
            a_start = alen
    return matches, bytes(result)
