"""Sans-IO request parser: bytes in, complete commands (lists of bytes) out.

Mirrors networking.c processInlineBuffer()/processMultibulkBuffer(), limits and
error wording included. It never touches a socket, so it is tested with byte strings.
"""

from dataclasses import dataclass

INLINE_MAX_SIZE = 64 * 1024  # PROTO_INLINE_MAX_SIZE
INT_MAX = 2**31 - 1
UNAUTH_MAX_MULTIBULK = 10
UNAUTH_MAX_BULK = 16384


class ProtocolError(Exception):
    """The client sent something Redis would answer with a protocol error and a close."""


@dataclass
class ParserLimits:
    proto_max_bulk_len: int = 512 * 1024 * 1024


def _strict_int(raw: bytes) -> int | None:
    """string2ll(): an optional '-', then digits, no spaces, no '+', no leading zeros."""
    if not raw or len(raw) > 20:
        return None
    if raw[0] == 45:  # '-'
        digits = raw[1:]
    else:
        digits = raw
    if not digits.isdigit() or (digits[0] == 48 and len(digits) > 1):
        return None
    return int(raw)


class RequestParser:
    __slots__ = ("limits", "_buf", "_chunks", "_chunks_len", "_need", "error")

    def __init__(self, limits: ParserLimits | None = None):
        self.limits = limits or ParserLimits()
        self._buf = b""
        self._chunks: list[bytes] = []
        self._chunks_len = 0
        self._need = 0  # bytes required before parsing can progress (large bulks)
        self.error: str | None = None

    def buffered(self) -> int:
        return len(self._buf) + self._chunks_len

    def feed(self, data: bytes) -> bool:
        """Add data; returns True when parse() may produce something."""
        if self._need and len(self._buf) + self._chunks_len + len(data) < self._need:
            # Waiting for a large bulk: collect chunks instead of re-joining each time.
            self._chunks.append(data)
            self._chunks_len += len(data)
            return False
        if self._chunks:
            self._chunks.append(data)
            self._buf = self._buf + b"".join(self._chunks)
            self._chunks = []
            self._chunks_len = 0
        elif self._buf:
            self._buf += data
        else:
            self._buf = data
        self._need = 0
        return True

    def parse(self, authenticated: bool = True) -> list[list[bytes]]:
        """Every complete command in the buffer. On a protocol error, the commands
        before it are returned and ``self.error`` is set (the caller replies and closes)."""
        buf = self._buf
        n = len(buf)
        pos = 0
        out = []
        max_bulk = self.limits.proto_max_bulk_len
        try:
            while pos < n and self.error is None:
                if buf[pos] != 42:  # not '*': an inline command
                    end = buf.find(b"\n", pos)
                    if end < 0:
                        if n - pos > INLINE_MAX_SIZE:
                            raise ProtocolError("Protocol error: too big inline request")
                        break
                    line = buf[pos:end]
                    if line.endswith(b"\r"):
                        line = line[:-1]
                    pos = end + 1
                    argv = split_args(line)
                    if argv is None:
                        raise ProtocolError("Protocol error: unbalanced quotes in request")
                    if argv:
                        out.append(argv)
                    continue
                # Multibulk: *<count>\r\n then <count> times $<len>\r\n<bytes>\r\n
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    if n - pos > INLINE_MAX_SIZE:
                        raise ProtocolError("Protocol error: too big mbulk count string")
                    break
                count = _strict_int(buf[pos + 1 : end])
                if count is None or count > INT_MAX:
                    raise ProtocolError("Protocol error: invalid multibulk length")
                if count > UNAUTH_MAX_MULTIBULK and not authenticated:
                    raise ProtocolError("Protocol error: unauthenticated multibulk length")
                cur = end + 2
                if count <= 0:
                    pos = cur
                    continue
                argv = []
                complete = True
                for _ in range(count):
                    if cur >= n:
                        complete = False
                        break
                    if buf[cur] != 36:  # '$'
                        raise ProtocolError(
                            "Protocol error: expected '$', got '%s'" % chr(buf[cur])
                        )
                    end = buf.find(b"\r\n", cur)
                    if end < 0:
                        if n - cur > INLINE_MAX_SIZE:
                            raise ProtocolError("Protocol error: too big bulk count string")
                        complete = False
                        break
                    size = _strict_int(buf[cur + 1 : end])
                    if size is None or size < 0 or size > max_bulk:
                        raise ProtocolError("Protocol error: invalid bulk length")
                    if size > UNAUTH_MAX_BULK and not authenticated:
                        raise ProtocolError("Protocol error: unauthenticated bulk length")
                    start = end + 2
                    stop = start + size
                    if stop + 2 > n:
                        complete = False
                        self._need = stop + 2 - pos
                        break
                    argv.append(buf[start:stop])
                    cur = stop + 2  # like Redis, the trailing CRLF is skipped unchecked
                if not complete:
                    break
                out.append(argv)
                pos = cur
        except ProtocolError as exc:
            self.error = str(exc)
            pos = n
        self._buf = buf[pos:] if pos else buf
        if self._need:
            self._need = max(0, self._need - 0)
        return out


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}
_HEX = b"0123456789abcdefABCDEF"


def split_args(line: bytes) -> list[bytes] | None:
    """sdssplitargs(): whitespace-separated words, "double" quotes with \\xHH and C escapes,
    'single' quotes with only \\'. Returns None for unbalanced quotes (or a quote not
    followed by a space), as Redis does for inline commands and redis.conf lines."""
    if b'"' not in line and b"'" not in line:
        return line.split()
    args = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \n\r\t\v\f":
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            if in_double:
                if i >= n:
                    return None
                c = line[i]
                if (
                    c == 92 and i + 3 < n and line[i + 1] == 120
                    and line[i + 2] in _HEX and line[i + 3] in _HEX
                ):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    current += _ESCAPES.get(line[i], bytes([line[i]]))
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in b" \n\r\t\v\f":
                        return None
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    current.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in b" \n\r\t\v\f":
                        return None
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \n\r\t\v\f":
                    break
                if c == 34:
                    in_double = True
                elif c == 39:
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))
