"""Reply values → RESP2 / RESP3 bytes.

Handlers return plain Python values and this module alone decides their wire form:

    bytes            bulk string            None          null ($-1 / _)
    str              simple string (+OK)    int           integer
    bool             RESP3 boolean, RESP2 :1/:0
    float            RESP3 double, RESP2 bulk string as Redis formats it (%.17g)
    list / tuple     array                  dict          RESP3 map, RESP2 flat array
    BulkStrings      array of bytes only, framed in C
    ReplySet         RESP3 set, RESP2 array Push          RESP3 push, RESP2 array
    Verbatim         RESP3 verbatim (txt), RESP2 bulk
    CommandError     error reply            Raw           bytes already encoded
    NULL_ARRAY       *-1 in RESP2 (null in RESP3)
"""

from hiredis import pack_command

from .errors import CommandError, encode_message, sanitize


class Raw(bytes):
    """Bytes that are already RESP (precomputed constants such as +OK)."""


class BulkStrings(tuple):
    """An array whose items are all bytes (LRANGE, KEYS): framed in C by
    hiredis.pack_command, 1.7x faster than a Python loop on 100 items."""


class ReplySet(list):
    """A set reply (SMEMBERS): '~' in RESP3, a plain array in RESP2."""


class Push(list):
    """An out-of-band push message (pub/sub): '>' in RESP3, an array in RESP2."""


class Verbatim(bytes):
    """A verbatim string (INFO, CLIENT LIST in RESP3: '=N\\r\\ntxt:...')."""


class _NullArray:
    __slots__ = ()


NULL_ARRAY = _NullArray()


class _NoReply:
    __slots__ = ()


# Returned by handlers that answer nothing (CLIENT REPLY OFF/SKIP, MONITOR's switch).
NO_REPLY = _NoReply()

OK = Raw(b"+OK\r\n")
QUEUED = Raw(b"+QUEUED\r\n")
PONG = Raw(b"+PONG\r\n")

_SMALL_INTS = [b":%d\r\n" % i for i in range(-1, 1024)]


_REPR_ESCAPES = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord("\a"): "\\a",
                 ord("\b"): "\\b", ord('"'): '\\"', ord("\\"): "\\\\"}


def sds_repr(data: bytes) -> str:
    """sdscatrepr(): double-quoted, C escapes for \\n \\r \\t \\a \\b " \\, \\xHH for
    other non-printables (MONITOR lines, CONFIG REWRITE values, log lines)."""
    out = ['"']
    for byte in data:
        escaped = _REPR_ESCAPES.get(byte)
        if escaped is not None:
            out.append(escaped)
        elif 32 <= byte < 127:
            out.append(chr(byte))
        else:
            out.append("\\x%02x" % byte)
    out.append('"')
    return "".join(out)


def format_double(value: float) -> bytes:
    """Redis 7.0's addReplyDouble text: %.17g, with inf/-inf spelled that way."""
    if value != value:
        return b"nan"
    if value == float("inf"):
        return b"inf"
    if value == float("-inf"):
        return b"-inf"
    return b"%.17g" % value


def encode(value, resp: int) -> bytes:
    out: list[bytes] = []
    _encode(out, value, resp)
    return b"".join(out)


def _encode(out, value, resp):
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        encoder = _subclass_encoder(value)
    encoder(out, value, resp)


def _bulk(out, value, resp):
    out.append(b"$%d\r\n%s\r\n" % (len(value), value))


def _simple(out, value, resp):
    out.append(b"+%s\r\n" % sanitize(value).encode())


def _int(out, value, resp):
    if -1 <= value < 1023:
        out.append(_SMALL_INTS[value + 1])
    else:
        out.append(b":%d\r\n" % value)


def _none(out, value, resp):
    out.append(b"_\r\n" if resp == 3 else b"$-1\r\n")


def _null_array(out, value, resp):
    out.append(b"_\r\n" if resp == 3 else b"*-1\r\n")


def _bool(out, value, resp):
    if resp == 3:
        out.append(b"#t\r\n" if value else b"#f\r\n")
    else:
        out.append(b":1\r\n" if value else b":0\r\n")


def _double(out, value, resp):
    text = format_double(value)
    if resp == 3:
        out.append(b",%s\r\n" % text)
    else:
        out.append(b"$%d\r\n%s\r\n" % (len(text), text))


def _array(out, value, resp, prefix=b"*"):
    out.append(b"%s%d\r\n" % (prefix, len(value)))
    # Arrays of bulk strings dominate (MGET, KEYS, LRANGE): frame them in one go.
    for item in value:
        if type(item) is bytes:
            out.append(b"$%d\r\n%s\r\n" % (len(item), item))
        else:
            _encode(out, item, resp)


def _bulk_strings(out, value, resp):
    out.append(pack_command(value))


def _set(out, value, resp):
    _array(out, value, resp, b"~" if resp == 3 else b"*")


def _push(out, value, resp):
    _array(out, value, resp, b">" if resp == 3 else b"*")


def _map(out, value, resp):
    if resp == 3:
        out.append(b"%%%d\r\n" % len(value))
    else:
        out.append(b"*%d\r\n" % (len(value) * 2))
    for k, v in value.items():
        _encode(out, k, resp)
        _encode(out, v, resp)


def _verbatim(out, value, resp):
    if resp == 3:
        out.append(b"=%d\r\ntxt:%s\r\n" % (len(value) + 4, value))
    else:
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))


def _error(out, value, resp):
    out.append(b"-%s\r\n" % encode_message(sanitize(value.message)))


def _raw(out, value, resp):
    out.append(value)


_ENCODERS = {
    bytes: _bulk,
    str: _simple,
    int: _int,
    bool: _bool,
    float: _double,
    type(None): _none,
    list: _array,
    tuple: _array,
    dict: _map,
    BulkStrings: _bulk_strings,
    ReplySet: _set,
    Push: _push,
    Verbatim: _verbatim,
    Raw: _raw,
    _NullArray: _null_array,
    CommandError: _error,
}


def _subclass_encoder(value):
    if isinstance(value, CommandError):
        return _error
    # The nearest class with an encoder: a subclass of Raw (itself a bytes) is Raw.
    for base in type(value).__mro__:
        encoder = _ENCODERS.get(base)
        if encoder is not None:
            return encoder
    raise TypeError(f"cannot encode reply of type {type(value).__name__}")
