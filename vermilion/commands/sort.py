"""SORT and SORT_RO (Redis's sort.c): sort a list, set or sorted set by its elements or
by external keys (BY), fetch external keys per element (GET), keep a window (LIMIT)
and optionally store the result as a list (STORE).

The reply order must be Redis's byte for byte, so the comparisons are sortCompare()'s:
numeric sorting breaks score ties with a binary comparison of the elements; ALPHA
compares with strcoll() (the C / C.UTF-8 collation: bytes up to the first NUL) except
when storing, where it compares whole strings in binary; a missing BY value sorts
first under ALPHA and as 0 numerically. glibc's qsort is a stable merge sort, so
equal ALPHA keys keep the container's order, as Python's sort does; a BY sort with a
LIMIT window goes through Redis's (unstable) partial quicksort instead.
"""

import ctypes
import errno
import re
from operator import itemgetter

from ..datatypes.geohash import pqsort
from ..datatypes.hashtype import HashValue
from ..datatypes.listtype import ListValue
from ..datatypes.settype import RedisSet
from ..datatypes.zset import ZSet
from ..protocol import errors
from ..protocol.encode import BulkStrings
from ..protocol.errors import CommandError
from ..protocol.numbers import parse_int
from .acl_cmds import has_full_key_access
from .registry import command
from ..notify import notify
from .strings import read_value

SCORE_ERROR = "ERR One or more scores can't be converted into double"

_SORTABLE = (ListValue, RedisSet, ZSet)


# -- scores: strtod() exactly as glibc parses them -------------------------------------

# Plain decimals convert identically with float() (both round correctly) as long as
# they are too short to overflow or underflow; everything else (spaces, hex, inf, long
# exponents, out of range values) goes to the C library's own strtod.
_DECIMAL = rb"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
_PLAIN_DECIMAL = re.compile(_DECIMAL + rb"\Z")
_SHORT_EXPONENT = re.compile(_DECIMAL + rb"[eE][-+]?[0-9]{1,2}\Z")

_libc = ctypes.CDLL(None, use_errno=True)
_strtod = _libc.strtod
_strtod.restype = ctypes.c_double
_strtod.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]


def _score(value: bytes):
    """The double sortCommand() reads with strtod(), or None where it reports an error
    (trailing garbage, ERANGE overflow/underflow, NaN). strtod sees a C string: it
    stops at an embedded NUL, and an empty string converts to 0 without an error."""
    if len(value) <= 300 and (value.isdigit() or _PLAIN_DECIMAL.match(value)) or \
            len(value) <= 24 and _SHORT_EXPONENT.match(value):
        return float(value)
    text = value.split(b"\0", 1)[0]
    buf = ctypes.create_string_buffer(text)
    end = ctypes.c_char_p()
    ctypes.set_errno(0)
    result = _strtod(buf, ctypes.byref(end))
    used = ctypes.cast(end, ctypes.c_void_p).value - ctypes.addressof(buf)
    if used != len(text) or ctypes.get_errno() == errno.ERANGE or result != result:
        return None
    return result


def _collate(value: bytes) -> bytes:
    # strcoll() in the C / C.UTF-8 locale is strcmp(): unsigned bytes up to the first NUL.
    return value.split(b"\0", 1)[0] if b"\0" in value else value


# -- BY / GET patterns (lookupKeyByPattern) ---------------------------------------------

_ITSELF = object()  # GET #


def _compile_pattern(pattern: bytes):
    """(prefix, suffix, field) for a pattern: the key is prefix + element + suffix, and
    field (or None) the hash field after '->'. _ITSELF for '#', None when there is no
    '*' (a constant pattern fetches nothing). Redis scans the pattern with C string
    functions, so '#', '*' and '->' are only seen before an embedded NUL."""
    if pattern[:1] == b"#" and (len(pattern) == 1 or pattern[1] == 0):
        return _ITSELF
    head = pattern.split(b"\0", 1)[0]
    star = head.find(b"*")
    if star < 0:
        return None
    arrow = head.find(b"->", star + 1)
    if arrow >= 0 and arrow + 2 < len(head):  # '->' with nothing after is part of the key
        return pattern[:star], pattern[star + 1:arrow], pattern[arrow + 2:]
    return pattern[:star], pattern[star + 1:], None


def _fetch_all(client, compiled, elements) -> list:
    """For each element, the string (or hash field) the pattern names, or None. Each
    key is read as lookupKeyRead() reads it: lazy expiry, a keyspace hit or miss."""
    if compiled is _ITSELF:
        return list(elements)
    if compiled is None:
        return [None] * len(elements)
    prefix, suffix, field = compiled
    db = client.db
    values = [db.lookup(prefix + e + suffix) for e in elements]
    misses = values.count(None)
    stats = client.server.stats
    stats.keyspace_misses += misses
    stats.keyspace_hits += len(values) - misses
    if field is None:
        return [v if type(v) is bytes else None for v in values]
    return [v.get(field) if type(v) is HashValue else None for v in values]


# -- the command ------------------------------------------------------------------------


class _Options:
    __slots__ = ("desc", "alpha", "offset", "count", "store", "by", "dontsort", "gets")

    def __init__(self):
        self.desc = self.alpha = self.dontsort = False
        self.offset, self.count = 0, -1
        self.store = self.by = None
        self.gets = []


BY_DENIED = "ERR BY option of SORT denied due to insufficient ACL permissions."
GET_DENIED = "ERR GET option of SORT denied due to insufficient ACL permissions."


def _parse(argv: list[bytes], readonly: bool, full_key_access: bool = True) -> _Options:
    """sortCommandGeneric()'s option loop: any order, repeats allowed (the last wins),
    a keyword without enough arguments after it is a syntax error. BY patterns and
    GET read other keys: only a user allowed to read every key may use them."""
    opts = _Options()
    j, argc = 2, len(argv)
    while j < argc:
        word = argv[j].lower()
        left = argc - j - 1
        if word == b"asc":
            opts.desc = False
        elif word == b"desc":
            opts.desc = True
        elif word == b"alpha":
            opts.alpha = True
        elif word == b"limit" and left >= 2:
            opts.offset = parse_int(argv[j + 1])
            opts.count = parse_int(argv[j + 2])
            j += 2
        elif word == b"store" and left >= 1 and not readonly:
            opts.store = argv[j + 1]
            j += 1
        elif word == b"by" and left >= 1:
            opts.by = argv[j + 1]
            # A constant BY (no '*') means "don't sort"; a later BY never clears it.
            if b"*" not in opts.by.split(b"\0", 1)[0]:
                opts.dontsort = True
            elif not full_key_access:
                raise CommandError(BY_DENIED)
            j += 1
        elif word == b"get" and left >= 1:
            if not full_key_access:
                raise CommandError(GET_DENIED)
            opts.gets.append(argv[j + 1])
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    return opts


def _window(opts: _Options, n: int) -> tuple[int, int]:
    """LIMIT offset count clamped to [start, end] inclusive; end < start when empty."""
    start = min(max(opts.offset, 0), n)
    count = min(max(opts.count, -1), n)
    end = n - 1 if count < 0 else start + count - 1
    if start >= n:
        start, end = n - 1, n - 2
    return start, min(end, n - 1)


def _in_script(client) -> bool:
    return client.script  # CLIENT_SCRIPT


def _native_range(value, start: int, end: int, desc: bool) -> list:
    """BY nosort on a list or sorted set: the window of the native order (reversed by
    DESC), read directly as Redis does."""
    n = len(value)
    if end < start:
        return []
    if type(value) is ListValue:
        if not desc:
            return value.range(start, end)
        items = value.range(n - 1 - end, n - 1 - start)
        items.reverse()
        return items
    entries = value.entries(n - 1 - end, n - start, reverse=True) if desc \
        else value.entries(start, end + 1)
    return [member for _, member in entries]


def _elements(value) -> list:
    if type(value) is ZSet:
        return list(value.scores)
    if type(value) is RedisSet:
        return value.ordered()
    return list(value)


def _sorted(client, elements: list, opts: _Options, start: int, end: int) -> list:
    """Sort elements as sortCompare() orders them (DESC negates the whole comparison)."""
    if not opts.alpha:
        return _sorted_numeric(client, elements, opts)
    binary = opts.store is not None
    if opts.by is None:
        if binary or not any(b"\0" in e for e in elements):
            return sorted(elements, reverse=opts.desc)
        return sorted(elements, key=_collate, reverse=opts.desc)
    values = _fetch_all(client, _compile_pattern(opts.by), elements)
    # A missing BY value sorts before every present one, even an empty string.
    keyed = [((0, b"") if v is None else (1, v if binary else _collate(v)), e)
             for v, e in zip(values, elements)]
    if start != 0 or end != len(elements) - 1:
        # Equal ALPHA keys: only the partial quicksort reproduces Redis's order.
        pqsort(keyed, itemgetter(0), opts.desc, start, end)
    else:
        keyed.sort(key=itemgetter(0), reverse=opts.desc)
    return [e for _, e in keyed]


def _sorted_numeric(client, elements: list, opts: _Options) -> list:
    """Numeric order, ties in binary order of the elements: a total order, so the
    partial quicksort Redis uses for a LIMIT window gives the same rows as a full sort."""
    if opts.by is None:
        scores = [_score(e) for e in elements]
    else:
        values = _fetch_all(client, _compile_pattern(opts.by), elements)
        scores = [0.0 if v is None else _score(v) for v in values]  # missing: 0
    if None in scores:  # reported after every BY lookup was made, as Redis does
        raise CommandError(SCORE_ERROR)
    pairs = list(zip(scores, elements))
    pairs.sort(reverse=opts.desc)
    return [e for _, e in pairs]


def _sort(client, argv: list[bytes], readonly: bool):
    """sortCommandGeneric()."""
    opts = _parse(argv, readonly, has_full_key_access(client, client.cmd, argv))
    value = read_value(client, argv[1])
    if value is None:
        value = ListValue()
    elif type(value) not in _SORTABLE:
        raise CommandError(errors.WRONGTYPE)
    if opts.dontsort and type(value) is RedisSet and (opts.store is not None or _in_script(client)):
        # A set has no order of its own: what is stored or seen by a script must not
        # depend on hashing, so Redis sorts it ALPHA instead.
        opts.dontsort, opts.alpha, opts.by = False, True, None
    start, end = _window(opts, len(value))
    if opts.dontsort and type(value) is not RedisSet:
        rows = _native_range(value, start, end, opts.desc)
    else:
        rows = _elements(value)
        if not opts.dontsort:
            rows = _sorted(client, rows, opts, start, end)
        rows = rows[start:end + 1] if end >= start else []
    return _output(client, rows, opts)


def _output(client, rows: list, opts: _Options):
    gets = [_fetch_all(client, _compile_pattern(p), rows) for p in opts.gets]
    # GET values come row by row, each row's patterns in order.
    out = [v for row in zip(*gets) for v in row] if gets else rows
    if opts.store is None:
        # Without GET every row is a bulk string: framed in one go.
        return out if gets else BulkStrings(out)
    db = client.db
    if out:
        # Missing GET values are stored as empty strings.
        db.set(opts.store, ListValue(b"" if v is None else v for v in out))
        notify(client, "sortstore", opts.store)
    else:
        if opts.store in db.data: notify(client, "del", opts.store)  # noqa: E701
        db.delete(opts.store)
    return len(out)


@command("sort")
def sort(client, argv):
    return _sort(client, argv, readonly=False)


@command("sort_ro")
def sort_ro(client, argv):
    return _sort(client, argv, readonly=True)
