"""Sans-IO request parser: bytes in, complete commands (lists of bytes) out.

Mirrors networking.c processInlineBuffer()/processMultibulkBuffer() of Redis 7.0,
limits and error wording included. It never touches a socket, so it is tested with
byte strings (tests/test_parser.py).

Like Redis, the parser is incremental: a multibulk command that arrives in pieces
keeps its already-parsed arguments (``_argv``), the number still expected and the
length of the bulk being read, so no byte is parsed twice. While a bulk's payload is
incomplete the incoming chunks are only collected in a list and joined once the
payload is whole, so a 512 MB argument arriving in 64 KB reads costs O(size), not
O(size^2).

Redis scans the header lines with strchr(), which stops at a NUL byte: a header or
inline line containing a NUL before its terminator is "not complete yet" (and, past
64 KB, "too big"), never an error about its content. That is reproduced below, off
the hot path (only when a header fails to parse).

Fastest path: a batch that hiredis's reader (C) parses whole, into lists of bytes
only, with none of the bytes that could start a RESP item Redis would read otherwise
(see _hiredis_batch). hiredis reads the "*N" and "$len" headers with Redis's own
string2ll and, like Redis, skips the two bytes after a payload unchecked, so for
such bytes its reading is Redis's.

Fast path: a batch of pipelined commands from an authenticated client is split on
CRLF in one C call, and each command is accepted while it is in exactly canonical
form: "*N" and "$len" headers spelled as string2ll would print them, each payload
exactly len bytes and followed by CRLF. Such bytes have one reading, Redis's. The
first command that is anything else (inline, "$04", a payload containing CRLF, a
partial tail...) and everything after it go through the general parser below.
"""

import re
from dataclasses import dataclass

import hiredis

INLINE_MAX_SIZE = 64 * 1024  # PROTO_INLINE_MAX_SIZE
INT_MAX = 2**31 - 1
LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)
UNAUTH_MAX_MULTIBULK = 10  # processMultibulkBuffer(): "ll > 10 && authRequired(c)"
UNAUTH_MAX_BULK = 16384  # "ll > 16384 && authRequired(c)"

# Exact header lines -> value, for the lengths clients send all the time. A dict hit
# is both the parse and the validation (string2ll would accept exactly these bytes),
# and every cached value is within the unauthenticated and proto-max-bulk-len limits
# (proto-max-bulk-len cannot be set below 1 MB), so a hit needs no further check.
_COUNT_HEADERS = {b"*%d" % i: i for i in range(1, UNAUTH_MAX_MULTIBULK + 1)}
_BULK_HEADERS = {b"$%d" % i: i for i in range(0, 4097)}

# The fast path is tried on buffers up to this size (uvloop hands over at most 256 KB
# per read); its headers come from these tables, so that an accepted argument is
# always within proto-max-bulk-len (at least 1 MB) and a count within INT_MAX.
FAST_PATH_MAX = 256 * 1024
# Below this size (one or two short commands: what a client that waits for each reply
# sends) the checks around hiredis cost more than they save; _fast reads them.
HIREDIS_MIN = 128
# take_one() is tried on reads up to this size: one command of the usual sizes (MSET of
# ten keys is 325 bytes), while a pipelined batch mostly exceeds it and costs one len().
TAKE_ONE_MAX = 512
_FAST_COUNT = {b"*%d" % i: i for i in range(1, 1025)}.get
# "$len" for each length the fast paths take (_BULK_HEADERS' keys, by length).
_HEADER = [b"$%d" % n for n in range(len(_BULK_HEADERS))]


_SPECIAL_BYTES = b"*\"'\0\v\f"

# The RESP type bytes whose items hiredis turns into bytes or lists (status "+",
# bignum "(", set "~", push ">", attribute "|", map "%"): Redis reads none of them as a
# command or an argument. A batch containing one of these bytes anywhere (often only
# inside a payload: "+inf", "a|b") is left to the parsers below. Every other item type
# hiredis knows gives an int, float, bool, None, str or error object, which the
# bytes-only check in _hiredis_batch refuses.
_HIREDIS_UNSURE = b"+(~>|%"
# Up to this size one translate() finds them fastest; past it, six memchr() scans (`in`).
_TRANSLATE_MAX = 1024
_PROBE = b":-1\r\n"
# hiredis allocates an array's list from its header: "*2000000000" alone would ask
# for 16 GB. Counts of five digits or more (or such bytes in a payload) are left to
# the parsers below, which allocate as arguments arrive.
_big_count = re.compile(rb"\*[0-9]{5}").search
_join_all = b"".join


def _canonical_args(parts: list[bytes], i: int, count: int) -> list[bytes] | None:
    """The arguments of the command whose "*count" header is parts[i] in a buffer split
    on CRLF, when every "$len" header is canonical and equals its payload's length (the
    header _HEADER gives for that length: compared, not hashed and looked up); else
    None. Unrolled for the usual 1-5 arguments: slicing and map cost twice as much."""
    try:
        if count == 1:
            a = parts[i + 2]
            if parts[i + 1] != _HEADER[len(a)]:
                return None
            return [a]
        if count == 2:
            a, b = parts[i + 2], parts[i + 4]
            if parts[i + 1] != _HEADER[len(a)] or parts[i + 3] != _HEADER[len(b)]:
                return None
            return [a, b]
        if count == 3:
            a, b, c = parts[i + 2], parts[i + 4], parts[i + 6]
            if (parts[i + 1] != _HEADER[len(a)] or parts[i + 3] != _HEADER[len(b)]
                    or parts[i + 5] != _HEADER[len(c)]):
                return None
            return [a, b, c]
        if count == 4:  # HSET h f v, LRANGE l 0 99, EVALSHA sha 1 k...
            a, b, c, d = parts[i + 2], parts[i + 4], parts[i + 6], parts[i + 8]
            if (parts[i + 1] != _HEADER[len(a)] or parts[i + 3] != _HEADER[len(b)]
                    or parts[i + 5] != _HEADER[len(c)] or parts[i + 7] != _HEADER[len(d)]):
                return None
            return [a, b, c, d]
        if count == 5:  # XADD s * f v, EVALSHA sha 1 k a...
            a, b, c = parts[i + 2], parts[i + 4], parts[i + 6]
            d, e = parts[i + 8], parts[i + 10]
            if (parts[i + 1] != _HEADER[len(a)] or parts[i + 3] != _HEADER[len(b)]
                    or parts[i + 5] != _HEADER[len(c)] or parts[i + 7] != _HEADER[len(d)]
                    or parts[i + 9] != _HEADER[len(e)]):
                return None
            return [a, b, c, d, e]
        end = i + 1 + 2 * count
        args = parts[i + 2:end:2]
        if list(map(_HEADER.__getitem__, map(len, args))) != parts[i + 1:end:2]:
            return None
        return args
    except IndexError:  # an argument past the table (4 KB): the general parser's
        return None


def _has_special(buf: bytes) -> bool:
    """Whether buf holds anything the plain inline fast path cannot take (one C pass:
    six `in` tests cost seven times more)."""
    return len(buf.translate(None, _SPECIAL_BYTES)) != len(buf)


class _Scratch:
    """A hiredis reader borrowed by _hiredis_batch. It holds nothing between calls:
    each call either drains it or replaces it."""

    reader = hiredis.Reader()


def _hiredis_batch(buf: bytes) -> list[list[bytes]] | None:
    """The commands of buf when hiredis reads them exactly as Redis would: buf holds
    whole "*N" commands of "$len" arguments and nothing else. None when unsure (the
    caller's parsers then decide, with Redis's errors)."""
    if len(buf) <= _TRANSLATE_MAX:
        if len(buf.translate(None, _HIREDIS_UNSURE)) != len(buf):
            return None
    elif (b"+" in buf or b"(" in buf or b"~" in buf or b">" in buf or b"|" in buf
            or b"%" in buf):
        return None
    if _big_count(buf):
        return None
    reader = _Scratch.reader
    try:
        reader.feed(buf)
        gets = reader.gets
        out = []
        item = gets()
        while item is not False:  # (not iter(gets, False): ":0" gives 0, == False)
            out.append(item)
            item = gets()
        # Was every byte used up by whole items? has_data() cannot tell (a partial
        # item's bytes are consumed into the reader's state): a probe item fed after
        # them comes back alone exactly when the reader was between items.
        reader.feed(_PROBE)
        probe = reader.gets()
        whole = type(probe) is int and probe == -1 and not reader.has_data()
    except hiredis.ProtocolError:
        whole = False
    if not whole:  # a partial tail (or an error): left to the parsers below
        _Scratch.reader = hiredis.Reader()
        return None
    try:
        # Fails on anything but lists of bytes (nested arrays, nulls, integers, a
        # top-level bulk whose bytes iterate as ints...), in C.
        list(map(_join_all, out))
    except TypeError:
        return None
    if not all(out):  # "*0": Redis reads no command there
        return None
    return out


class ProtocolError(Exception):
    """The client sent something Redis would answer with a protocol error and a close."""


class ErrorText(str):
    """A protocol error message. Redis echoes the offending byte raw ("expected '$',
    got '\\xc8'"), so the text is latin-1: ``encode()`` gives back the exact bytes."""

    __slots__ = ()

    def encode(self, encoding="latin-1", errors="strict"):
        return str.encode(self, "latin-1", errors)


@dataclass
class ParserLimits:
    proto_max_bulk_len: int = 512 * 1024 * 1024


_C_ATOI = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]+)").match


def c_atoi(text: bytes) -> int:
    """C's atoi()/atoll(): leading blanks, a sign, the digits that follow; 0 when there
    are none. Where Redis parses with them (manifest fields, DEBUG and SCRIPT DEBUG
    arguments, numkeys in key extraction), a malformed number is not an error."""
    match = _C_ATOI(text)
    return int(match.group(1)) if match else 0


def string2ll(raw: bytes) -> int | None:
    """util.c string2ll(): optional '-', then digits without leading zeros ("0" alone
    is fine, "-0" is not), no spaces or '+', fits a signed 64-bit integer."""
    if not raw or len(raw) > 20:  # slen >= LONG_STR_SIZE (21)
        return None
    digits = raw[1:] if raw[0] == 45 else raw  # '-'
    if not digits.isdigit():
        return None
    if digits[0] == 48 and len(raw) > 1:  # '0' must be alone (and unsigned)
        return None
    value = int(raw)
    if value > LLONG_MAX or value < LLONG_MIN:
        return None
    return value


def _error_byte(byte: int) -> str:
    # addReplyErrorFormat() maps \r and \n in the message to spaces.
    return " " if byte in (10, 13) else chr(byte)


class RequestParser:
    __slots__ = (
        "limits", "_buf", "_chunks", "_chunks_len", "_need",
        "_argv", "_argv_bytes", "_remaining", "_bulklen", "error", "_more",
        "_fed", "_base", "_cmd_start",
    )

    def __init__(self, limits: ParserLimits | None = None):
        self.limits = limits or ParserLimits()
        self._buf = b""
        # While a bulk payload is incomplete: the chunks received after _buf, their
        # total length, and the length _buf + chunks must reach (payload + CRLF).
        self._chunks: list[bytes] = []
        self._chunks_len = 0
        self._need = 0
        # The multibulk command being parsed (None between commands).
        self._argv: list[bytes] | None = None
        self._argv_bytes = 0
        self._remaining = 0  # multibulklen: arguments still to read
        self._bulklen = -1  # length of the bulk being read, -1 while reading its header
        self.error: str | None = None
        self._more = False  # the last parse() stopped at max_commands, not for want of data
        # Stream offsets: bytes fed so far, offset of _buf[0], start of the incomplete
        # multibulk command (while _argv is not None).
        self._fed = 0
        self._base = 0
        self._cmd_start = 0

    def buffered(self) -> int:
        """The query buffer's length: bytes received and not parsed yet, for
        client-query-buffer-limit. As in Redis 7.0, the arguments of the incomplete
        command that are already parsed are not counted (its querybuf no longer holds
        them; maxmemory-clients is what bounds those): see argv_bytes()."""
        return len(self._buf) + self._chunks_len

    def incomplete_bytes(self) -> int:
        """Bytes fed but not returned by parse() as (or skipped as) whole commands,
        counted from the start of the first such command: after parsing a truncated
        AOF, what the file must be cut by to end on a whole command."""
        if self._argv is not None:
            return self._fed - self._cmd_start
        return self._fed - self._base

    def argv_bytes(self) -> int:
        """Bytes in the already-parsed arguments of the incomplete command (Redis's
        c->argv_len_sum), for client memory accounting."""
        return self._argv_bytes

    def has_more(self) -> bool:
        """Whether the last parse() stopped at max_commands with bytes left to parse:
        only then can calling parse() again, without new data, return more. (After a
        parse that ran out of data, or an error, it is False: a loop on it ends.)"""
        return self._more

    def feed(self, data: bytes) -> bool:
        """Add data; returns True when parse() may produce something."""
        self._fed += len(data)
        if self._need:
            # Waiting for a bulk payload: collect, join once it is complete.
            self._chunks.append(data)
            self._chunks_len += len(data)
            if len(self._buf) + self._chunks_len < self._need:
                return False
            self._chunks.insert(0, self._buf)
            self._buf = b"".join(self._chunks)
            self._chunks = []
            self._chunks_len = 0
            self._need = 0
        elif self._buf:
            self._buf += data
        else:
            self._buf = data
        return True

    def take_one(self, data: bytes) -> list[bytes] | None:
        """The command data holds when it is exactly one command in canonical form (see
        _fast), or one plain inline line, and nothing is buffered: what a client that
        waits for each reply sends, read in one step instead of feed() and parse(). None
        otherwise, and nothing is taken: the caller feeds data as usual. For
        authenticated clients only."""
        if (not 0 < len(data) <= TAKE_ONE_MAX or self._buf or self._need
                or self.error is not None or self._argv is not None):
            return None
        if data[0] != 42:  # not '*': one plain inline line (parse()'s inline fast path)
            if data.find(b"\n") != len(data) - 1 or _has_special(data):
                return None
            args = data.split()  # (the line's CR or LF ends it: whitespace here)
        else:
            parts = data.split(b"\r\n")
            count = _FAST_COUNT(parts[0])
            if count is None or len(parts) != 2 * count + 2 or parts[-1]:
                return None
            args = _canonical_args(parts, 0, count)
        if not args:  # (None, or a blank inline line)
            return None
        size = len(data)
        self._fed += size
        self._base += size
        return args

    def parse(self, authenticated: bool = True, max_commands: int = 0) -> list[list[bytes]]:
        """Every complete command in the buffer (at most max_commands if given). On a
        protocol error, the commands before it are returned and ``self.error`` is set
        (the caller replies and closes).

        Redis parses one command, runs it, then parses the next: for a client that is
        not authenticated yet, the limits on the next command depend on whether the
        AUTH before it succeeded. Such a client is parsed with max_commands=1."""
        self._more = False
        if self.error is not None or self._need:
            return []
        buf = self._buf
        n = len(buf)
        argv = self._argv
        if (argv is None and authenticated and not max_commands and n <= FAST_PATH_MAX
                and n and buf[0] == 42):
            out = _hiredis_batch(buf) if n >= HIREDIS_MIN else None
            if out is not None:
                self._buf = b""
                self._base += n
                return out
            out, pos = self._fast(buf)
            if pos == n:
                self._buf = b""
                self._base += n
                return out
        elif (argv is None and not max_commands and n <= INLINE_MAX_SIZE and n
                and buf[-1] == 10 and buf[0] != 42 and not _has_special(buf)):
            # Only plain inline lines (redis-benchmark's PING_INLINE, telnet): no
            # quotes, no NUL/\v/\f, no multibulk; bytes.split() is sdssplitargs here.
            self._buf = b""
            self._base += n
            return [words for words in map(bytes.split, buf.split(b"\n")) if words]
        else:
            out, pos = [], 0
        started = len(argv) if argv is not None else 0
        remaining = self._remaining
        bulklen = self._bulklen
        count_headers = _COUNT_HEADERS
        bulk_headers = _BULK_HEADERS
        cmd_pos = -1  # where the last multibulk header read in this call starts
        try:
            while True:
                if argv is None:
                    if pos >= n:
                        break
                    if buf[pos] != 42:  # not '*': an inline command
                        end = buf.find(b"\n", pos)
                        if end < 0 or buf.find(b"\0", pos, end) >= 0:
                            if n - pos > INLINE_MAX_SIZE:
                                raise ProtocolError("Protocol error: too big inline request")
                            break
                        if end - pos > INLINE_MAX_SIZE:
                            # Redis reads at most 16 KB at a time and gives up on a
                            # line once 64 KB of it are buffered without a newline.
                            raise ProtocolError("Protocol error: too big inline request")
                        line = buf[pos:end - 1] if end > pos and buf[end - 1] == 13 else buf[pos:end]
                        pos = end + 1
                        words = split_args(line)
                        if words is None:
                            raise ProtocolError("Protocol error: unbalanced quotes in request")
                        if words:
                            out.append(words)
                            if len(out) == max_commands:
                                self._more = pos < n
                                break
                        continue
                    # "*<count>\r": Redis looks for the '\r' and skips it and the
                    # byte after it unchecked, so it needs one byte past the '\r'.
                    cmd_pos = pos
                    end = buf.find(b"\r", pos)
                    if end < 0 or end + 1 >= n:
                        if end < 0 and n - pos > INLINE_MAX_SIZE:
                            raise ProtocolError("Protocol error: too big mbulk count string")
                        break
                    count = count_headers.get(buf[pos:end])
                    if count is None:
                        if buf.find(b"\0", pos, end) >= 0:  # strchr() stopped at the NUL
                            if n - pos > INLINE_MAX_SIZE:
                                raise ProtocolError("Protocol error: too big mbulk count string")
                            break
                        count = string2ll(buf[pos + 1:end])
                        if count is None or count > INT_MAX:
                            raise ProtocolError("Protocol error: invalid multibulk length")
                        if count > UNAUTH_MAX_MULTIBULK and not authenticated:
                            raise ProtocolError("Protocol error: unauthenticated multibulk length")
                    pos = end + 2
                    if count <= 0:  # *0 and *-1 are no command at all
                        continue
                    argv = []
                    started = 0
                    self._argv_bytes = 0
                    remaining = count
                    bulklen = -1
                while remaining:
                    if bulklen < 0:
                        end = buf.find(b"\r", pos)
                        if end < 0 or end + 1 >= n:
                            if end < 0 and n - pos > INLINE_MAX_SIZE:
                                raise ProtocolError("Protocol error: too big bulk count string")
                            break
                        bulklen = bulk_headers.get(buf[pos:end], -1)
                        if bulklen < 0:
                            bulklen = self._bulk_header(buf, pos, end, authenticated)
                            if bulklen < 0:  # NUL in the header: incomplete
                                if n - pos > INLINE_MAX_SIZE:
                                    raise ProtocolError("Protocol error: too big bulk count string")
                                break
                        pos = end + 2
                    stop = pos + bulklen
                    if stop + 2 > n:
                        break
                    argv.append(buf[pos:stop])
                    pos = stop + 2  # like Redis, the trailing CRLF is skipped unchecked
                    bulklen = -1
                    remaining -= 1
                if remaining:
                    break
                out.append(argv)
                argv = None
                if len(out) == max_commands:
                    self._more = pos < n
                    break
        except ProtocolError as exc:
            self._more = False
            self.error = ErrorText(exc.args[0])
            self._buf = b""
            self._base = self._fed
            self._argv = None
            self._argv_bytes = 0
            return out
        self._buf = buf[pos:] if pos else buf
        if argv is not None and cmd_pos >= 0 and argv is not self._argv:
            self._cmd_start = self._base + cmd_pos
        self._base += pos
        self._argv = argv
        self._remaining = remaining
        self._bulklen = bulklen
        if argv is not None:
            self._argv_bytes += sum(map(len, argv[started:]))
            if bulklen >= 0:
                # Collect the payload's chunks without re-joining until it is whole.
                self._need = bulklen + 2
        else:
            self._argv_bytes = 0
        return out

    @staticmethod
    def _fast(buf: bytes) -> tuple[list[list[bytes]], int]:
        """The leading canonical commands of buf, and the number of bytes they span."""
        parts = buf.split(b"\r\n")
        out = []
        append = out.append
        i = 0
        last = len(parts) - 1  # the bytes after the final CRLF (often b"")
        count_of = _FAST_COUNT
        while i < last:
            count = count_of(parts[i])
            if count is None:
                break
            end = i + 1 + 2 * count
            if end > last:
                break
            args = _canonical_args(parts, i, count)
            if args is None:
                break
            append(args)
            i = end
        if i == last:
            return out, len(buf) - len(parts[last])
        return out, sum(map(len, parts[:i])) + 2 * i

    def _bulk_header(self, buf: bytes, pos: int, end: int, authenticated: bool) -> int:
        """The slow path of a "$<len>\\r" header: validation and Redis's errors.
        Returns -1 when strchr() would not have found the line yet (a NUL)."""
        if buf.find(b"\0", pos, end) >= 0:
            return -1
        if buf[pos] != 36:  # '$'
            raise ProtocolError("Protocol error: expected '$', got '%s'" % _error_byte(buf[pos]))
        size = string2ll(buf[pos + 1:end])
        if size is None or size < 0 or size > self.limits.proto_max_bulk_len:
            raise ProtocolError("Protocol error: invalid bulk length")
        if size > UNAUTH_MAX_BULK and not authenticated:
            raise ProtocolError("Protocol error: unauthenticated bulk length")
        return size


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}
_HEX = b"0123456789abcdefABCDEF"
_SPACE = b" \n\r\t\v\f"  # isspace() in the C locale
_TOKEN_END = b" \n\r\t"  # what ends an unquoted token (not \v or \f)


def split_args(line: bytes) -> list[bytes] | None:
    """sdssplitargs(): whitespace-separated words, "double" quotes with \\xHH and C escapes,
    'single' quotes with only \\'. Returns None for unbalanced quotes (or a quote not
    followed by a space), as Redis does for inline commands and redis.conf lines.

    Leading blanks are any isspace() byte, but an unquoted word only ends at a space,
    tab, CR or LF: "a\\vb" is one word. The C string ends at the first NUL."""
    nul = line.find(b"\0")
    if nul >= 0:
        line = line[:nul]
    if b'"' not in line and b"'" not in line and b"\v" not in line and b"\f" not in line:
        return line.split()
    args = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACE:
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
                    if i + 1 < n and line[i + 1] not in _SPACE:
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
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in _TOKEN_END:
                    break
                if c == 34:
                    in_double = True
                elif c == 39:
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))
