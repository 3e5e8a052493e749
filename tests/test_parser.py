"""The sans-IO request parser on byte strings (no server).

Expected behaviour is Redis 7.0's networking.c (processInlineBuffer /
processMultibulkBuffer), checked against a real redis-server in test_protocol.py.
"""

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from vermilion.protocol.parser import ParserLimits, RequestParser, split_args, string2ll


def encode(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def parse_chunks(chunks, authenticated=True, limits=None):
    """Feed the chunks one by one; returns (commands, error, parser)."""
    parser = RequestParser(limits)
    out = []
    for chunk in chunks:
        if parser.feed(chunk):
            out += parser.parse(authenticated)
    return out, parser.error, parser


def read_chunks(chunks):
    """The chunks as a connection reads them: take_one() first (one whole canonical
    command), feed() and parse() otherwise; returns (commands, error, parser)."""
    parser = RequestParser()
    out = []
    for chunk in chunks:
        argv = parser.take_one(chunk)
        if argv is not None:
            out.append(argv)
        elif parser.feed(chunk):
            out += parser.parse()
    return out, parser.error, parser


def parse_all(data: bytes, **kw):
    return parse_chunks([data], **kw)


STREAMS = [
    encode(b"SET", b"key", b"value") + encode(b"GET", b"key"),
    encode(b"SET", b"k", b"a\r\nb\r\n$3\r\n*1\r\n") + encode(b"PING"),  # CRLFs inside a bulk
    encode(b"SET", b"", b"") + encode(b"ECHO", bytes(range(256))),
    b"PING\r\nECHO hello\r\n" + encode(b"GET", b"x") + b"\r\n\r\n" + b"SET a b\n",
    b"*0\r\n*-1\r\n" + encode(b"PING") + b"*0\r\n",
    b'SET "a b" \'c d\' "\\x41\\n"\r\n   \r\nPING\r\n',
    b"\n\r\n" + encode(b"MSET", *[b"k%d" % i for i in range(12)]) + b"\r\n",
    encode(b"ECHO", b"x" * 5000) + encode(b"ECHO", b"y" * 70000),
]

EXPECTED = [
    [[b"SET", b"key", b"value"], [b"GET", b"key"]],
    [[b"SET", b"k", b"a\r\nb\r\n$3\r\n*1\r\n"], [b"PING"]],
    [[b"SET", b"", b""], [b"ECHO", bytes(range(256))]],
    [[b"PING"], [b"ECHO", b"hello"], [b"GET", b"x"], [b"SET", b"a", b"b"]],
    [[b"PING"]],
    [[b"SET", b"a b", b"c d", b"A\n"], [b"PING"]],
    [[b"MSET", *[b"k%d" % i for i in range(12)]]],
    [[b"ECHO", b"x" * 5000], [b"ECHO", b"y" * 70000]],
]


# -- framing ----------------------------------------------------------------------


def test_streams_parse_whole():
    for data, expected in zip(STREAMS, EXPECTED):
        commands, error, parser = parse_all(data)
        assert error is None
        assert commands == expected
        assert parser.buffered() == 0


def test_every_split_point_gives_the_same_commands():
    for data, expected in zip(STREAMS, EXPECTED):
        # The 70 KB stream is checked at a stride; the others at every byte.
        step = 1 if len(data) < 20000 else 97
        for i in range(0, len(data) + 1, step):
            commands, error, _ = parse_chunks([data[:i], data[i:]])
            assert error is None, (data[:40], i)
            assert commands == expected, (data[:40], i)


def test_reading_one_command_at_a_time_gives_the_same_commands():
    for data, expected in zip(STREAMS, EXPECTED):
        step = 1 if len(data) < 20000 else 97
        for i in range(0, len(data) + 1, step):
            commands, error, parser = read_chunks([data[:i], data[i:]])
            assert (commands, error) == (expected, None), (data[:40], i)
            assert parser.buffered() == 0 and parser.incomplete_bytes() == 0


def test_arguments_at_the_fast_paths_edge_parse_the_same():
    # The fast paths compare each "$len" header with a table of 4097 lengths: an
    # argument of 4096 bytes is theirs, one of 4097 leaves the batch to the general
    # parser; a header that lies about its length is never taken. For every count the
    # fast paths unroll (1-5) and past it, the commands come out the same either way.
    for size in (0, 1, 4095, 4096, 4097, 5000):
        for count in (1, 2, 3, 4, 5, 6, 11):
            argv = [b"x" * size if j == count // 2 else b"a%d" % j for j in range(count)]
            data = encode(*argv) + encode(b"PING") + encode(*argv)
            commands, error, _ = parse_all(data)
            assert (commands, error) == ([argv, [b"PING"], argv], None), (size, count)
            commands, error, _ = read_chunks([encode(*argv)])
            assert (commands, error) == ([argv], None), (size, count)
    # (What Redis makes of a lying header is the general parser's: fed a byte at a
    # time, no fast path ever sees a whole command.)
    lying = encode(b"SET", b"k", b"vv").replace(b"$2\r\nvv", b"$1\r\nvv") + encode(b"PING")
    by_byte = parse_chunks([lying[j:j + 1] for j in range(len(lying))])[:2]
    assert parse_all(lying)[:2] == by_byte and by_byte[0][0] == [b"SET", b"k", b"v"]


def test_take_one_takes_only_one_whole_canonical_command():
    parser = RequestParser()
    assert parser.take_one(encode(b"SET", b"k", b"v")) == [b"SET", b"k", b"v"]
    assert parser.take_one(encode(b"X", *[b"a"] * 7)) == [b"X"] + [b"a"] * 7
    for refused in (encode(b"GET", b"k") * 2,  # a batch: parse() reads it
                    encode(b"GET", b"k")[:-1],  # incomplete
                    b"*2\r\n$3\r\nGET\r\n$01\r\nk\r\n",  # not as string2ll prints it
                    encode(b"SET", b"k", b"a\r\nb"),  # a CRLF inside a payload
                    b"GET k\r\nGET j\r\n",  # two inline lines
                    b'SET "a b" c\r\n',  # quotes: split_args() reads them
                    b"\r\n",  # an empty line: no command
                    encode(b"SET", b"k", b"v" * 600)):  # past TAKE_ONE_MAX
        assert parser.take_one(refused) is None, refused
        assert parser.buffered() == 0  # nothing was taken
    assert parser.take_one(b"PING\r\n") == [b"PING"]
    assert parser.take_one(b"SET  a\tb\n") == [b"SET", b"a", b"b"]
    parser.feed(b"*1\r\n")  # something buffered: the next bytes continue it
    assert parser.take_one(encode(b"PING")) is None


def test_three_way_splits():
    data = STREAMS[0] + STREAMS[3] + STREAMS[4]
    expected = EXPECTED[0] + EXPECTED[3] + EXPECTED[4]
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1, 3):
            assert parse_chunks([data[:i], data[i:j], data[j:]])[0] == expected


def test_byte_at_a_time():
    for data, expected in zip(STREAMS[:7], EXPECTED[:7]):
        commands, error, parser = parse_chunks([data[i:i + 1] for i in range(len(data))])
        assert (commands, error) == (expected, None)
        assert parser.buffered() == 0


argvs = st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=6), min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(argvs, st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=50))
def test_random_commands_random_chunking(commands, sizes):
    data = b"".join(encode(*argv) for argv in commands)
    chunks, pos, k = [], 0, 0
    while pos < len(data):
        size = sizes[k % len(sizes)]
        chunks.append(data[pos:pos + size])
        pos += size
        k += 1
    for read in (parse_chunks, read_chunks):
        got, error, parser = read(chunks)
        assert error is None
        assert got == commands
        assert parser.buffered() == 0


def test_incomplete_command_waits():
    data = encode(b"SET", b"key", b"value")
    for i in range(len(data)):
        commands, error, parser = parse_all(data[:i])
        assert commands == [] and error is None
        assert parser.buffered() <= i  # parsed headers are dropped, as Redis trims qbuf


def test_trailing_crlf_of_a_bulk_is_not_checked():
    # processMultibulkBuffer() skips the two bytes after a payload without looking.
    assert parse_all(b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n")[0] == [[b"PING"], [b"PING"]]


def test_header_lines_end_at_cr_and_skip_the_next_byte():
    # strchr(querybuf, '\r') then qb_pos = newline + 2, the '\n' itself unchecked.
    assert parse_all(b"*1\rx$4\rxPING\r\n")[0] == [[b"PING"]]
    # ... but the byte after '\r' must have arrived.
    assert parse_all(b"*1\r") [0:2] == ([], None)
    assert parse_all(b"*1\r\n$4\r")[0:2] == ([], None)


def test_empty_and_negative_multibulk_are_ignored():
    assert parse_all(b"*0\r\n*-1\r\n*-100\r\n")[0:2] == ([], None)


def test_commands_before_an_error_are_returned():
    commands, error, parser = parse_all(encode(b"PING") + b"PING\r\n" + b"*x\r\n" + encode(b"GET", b"k"))
    assert commands == [[b"PING"], [b"PING"]]
    assert error == "Protocol error: invalid multibulk length"
    # Once in error, nothing more is parsed (the connection is being closed).
    parser.feed(encode(b"PING"))
    assert parser.parse() == []


# -- inline commands --------------------------------------------------------------


def inline(line: bytes):
    return parse_all(line)[0:2]


def test_inline_basic():
    assert inline(b"PING\r\n") == ([[b"PING"]], None)
    assert inline(b"PING\n") == ([[b"PING"]], None)
    assert inline(b"  SET   a\tb  \r\n") == ([[b"SET", b"a", b"b"]], None)
    # Only one '\r' before the '\n' is part of the terminator; others separate words.
    assert inline(b"ECHO a\rb\r\r\n") == ([[b"ECHO", b"a", b"b"]], None)
    assert inline(b"PING\rPING\n") == ([[b"PING", b"PING"]], None)


def test_inline_empty_lines_are_ignored():
    assert inline(b"\r\n\n  \r\n\t\r\nPING\r\n\r\n") == ([[b"PING"]], None)


def test_inline_quotes_and_escapes():
    assert inline(b'ECHO "a b"\r\n') == ([[b"ECHO", b"a b"]], None)
    assert inline(b'ECHO "\\x41\\x4a\\n\\r\\t\\b\\a\\"\\\\\\q"\r\n') == (
        [[b"ECHO", b"AJ\n\r\t\b\a\"\\q"]], None)
    assert inline(b'ECHO "\\x4"\r\n') == ([[b"ECHO", b"x4"]], None)  # not two hex digits
    assert inline(b'ECHO "\\xzz"\r\n') == ([[b"ECHO", b"xzz"]], None)
    assert inline(b"ECHO 'a\\'b' 'c\\nd'\r\n") == ([[b"ECHO", b"a'b", b"c\\nd"]], None)
    assert inline(b'ECHO ""\r\n') == ([[b"ECHO", b""]], None)
    assert inline(b"SET a\"b c\"d\r\n") == ([], "Protocol error: unbalanced quotes in request")
    assert inline(b'SET a"b c" d\r\n') == ([[b"SET", b"ab c", b"d"]], None)


def test_inline_vertical_tab_is_blank_only_between_words():
    # isspace() skips \v and \f before a word, but only ' ', \t, \r, \n end one.
    assert inline(b"ECHO a\x0bb\r\n") == ([[b"ECHO", b"a\x0bb"]], None)
    assert inline(b"ECHO \x0b\x0cb\r\n") == ([[b"ECHO", b"b"]], None)


def test_inline_unbalanced_quotes():
    for line in (b'ECHO "abc\r\n', b"ECHO 'abc\r\n", b'ECHO "a"b\r\n', b"ECHO 'a'b\r\n",
                 b'ECHO "abc\\"\r\n'):
        commands, error, _ = parse_all(b"PING\r\n" + line + b"PING\r\n")
        assert commands == [[b"PING"]], line
        assert error == "Protocol error: unbalanced quotes in request", line


def test_inline_nul_before_newline_is_not_a_line_yet():
    # strchr() stops at the NUL: Redis waits, then calls it too big past 64 KB.
    assert inline(b"ECHO a\x00b\r\nPING\r\n") == ([], None)
    commands, error, _ = parse_all(b"ECHO a\x00b\r\n" + b"x" * 70000)
    assert error == "Protocol error: too big inline request"


def test_too_big_inline_request():
    assert parse_all(b"a" * 65536)[1] is None
    assert parse_all(b"a" * 65537)[1] == "Protocol error: too big inline request"
    commands, error, _ = parse_chunks([b"PING\r\n", b"x" * 40000, b"x" * 40000])
    assert commands == [[b"PING"]]
    assert error == "Protocol error: too big inline request"


# -- multibulk errors ---------------------------------------------------------------

ERRORS = [
    (b"*x\r\n", "invalid multibulk length"),
    (b"*\r\n", "invalid multibulk length"),
    (b"*-0\r\n", "invalid multibulk length"),
    (b"*+1\r\n", "invalid multibulk length"),
    (b"* 1\r\n", "invalid multibulk length"),
    (b"*01\r\n", "invalid multibulk length"),
    (b"*1x\r\n", "invalid multibulk length"),
    (b"*2147483648\r\n", "invalid multibulk length"),  # > INT_MAX
    (b"*99999999999999999999\r\n", "invalid multibulk length"),  # > LLONG_MAX
    (b"*-9999999999999999999\r\n", "invalid multibulk length"),  # < LLONG_MIN
    (b"*1\rx\r\n", "expected '$', got ' '"),  # the '\r' of "\r\n", as a space
    (b"*1\r\nx\r\n", "expected '$', got 'x'"),
    (b"*1\r\n:1\r\n", "expected '$', got ':'"),
    (b"*1\r\n\n\r\n", "expected '$', got ' '"),
    (b"*1\r\n*1\r\n", "expected '$', got '*'"),
    (b"*2\r\n$4\r\nECHO\r\n+a\r\n", "expected '$', got '+'"),
    (b"*1\r\n$\r\n", "invalid bulk length"),
    (b"*1\r\n$-1\r\n", "invalid bulk length"),
    (b"*1\r\n$-0\r\n", "invalid bulk length"),
    (b"*1\r\n$04\r\n", "invalid bulk length"),
    (b"*1\r\n$+4\r\n", "invalid bulk length"),
    (b"*1\r\n$4 \r\n", "invalid bulk length"),
    (b"*1\r\n$536870913\r\n", "invalid bulk length"),  # > 512 MB default
    (b"*1\r\n$99999999999999999999\r\n", "invalid bulk length"),
    (b"*" + b"1" * 65537, "too big mbulk count string"),
    (b"*1\r\n$" + b"1" * 65537, "too big bulk count string"),
]


def test_protocol_errors():
    for data, message in ERRORS:
        commands, error, _ = parse_all(data)
        assert commands == [], data
        assert error == "Protocol error: " + message, data


def test_protocol_errors_at_every_split():
    for data, message in ERRORS[:16]:
        for i in range(len(data) + 1):
            assert parse_chunks([data[:i], data[i:]])[1] == "Protocol error: " + message


def test_error_byte_is_echoed_raw():
    _, error, _ = parse_all(b"*1\r\n\xc8\r\n")
    assert error == "Protocol error: expected '$', got '\xc8'"
    # What the client writes: "-ERR " + error.encode() must be the raw byte, not UTF-8.
    assert error.encode() == b"Protocol error: expected '$', got '\xc8'"


def test_non_dollar_byte_waits_for_its_line():
    # The '$' check happens once the header line is complete, like Redis.
    assert parse_all(b"*1\r\nX")[0:2] == ([], None)
    assert parse_all(b"*1\r\nXYZ\r")[0:2] == ([], None)


def test_nul_in_a_header_is_not_a_line_yet():
    assert parse_all(b"*1\x00\r\n")[0:2] == ([], None)
    assert parse_all(b"*1\r\n\x00$4\r\nPING\r\n")[0:2] == ([], None)
    assert parse_all(b"*1\r\n$4\x00\r\nPING\r\n")[0:2] == ([], None)
    assert parse_all(b"*1\x00" + b"1" * 70000 + b"\r\n")[1] == \
        "Protocol error: too big mbulk count string"
    assert parse_all(b"*1\r\n$\x00" + b"1" * 70000 + b"\r\n")[1] == \
        "Protocol error: too big bulk count string"


def test_unauthenticated_limits():
    ten = encode(*[b"a"] * 10)
    assert parse_all(ten, authenticated=False)[0:2] == ([[b"a"] * 10], None)
    eleven = encode(*[b"a"] * 11)
    assert parse_all(eleven, authenticated=False)[1] == \
        "Protocol error: unauthenticated multibulk length"
    assert parse_all(eleven, authenticated=True)[0] == [[b"a"] * 11]
    ok = encode(b"AUTH", b"x" * 16384)
    assert parse_all(ok, authenticated=False)[0] == [[b"AUTH", b"x" * 16384]]
    big = encode(b"AUTH", b"x" * 16385)
    assert parse_all(big, authenticated=False)[1] == "Protocol error: unauthenticated bulk length"
    assert parse_all(big, authenticated=True)[0] == [[b"AUTH", b"x" * 16385]]
    # Header validity is checked before the authentication limit.
    assert parse_all(b"*1\r\n$-5\r\n", authenticated=False)[1] == "Protocol error: invalid bulk length"
    # Inline commands have no authentication limit.
    line = b"AUTH " + b" ".join([b"a"] * 20) + b"\r\n"
    assert len(parse_all(line, authenticated=False)[0][0]) == 21


def test_proto_max_bulk_len():
    limits = ParserLimits(proto_max_bulk_len=1024 * 1024)
    at_limit = encode(b"SET", b"k", b"v" * (1024 * 1024))
    assert parse_all(at_limit, limits=limits)[0][0][2] == b"v" * (1024 * 1024)
    over = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n"
    assert parse_all(over, limits=limits)[1] == "Protocol error: invalid bulk length"
    # The limit object is shared with the server: CONFIG SET applies to live parsers.
    parser = RequestParser(limits)
    limits.proto_max_bulk_len = 2 * 1024 * 1024
    parser.feed(over)
    assert parser.parse() == [] and parser.error is None


# -- large payloads ---------------------------------------------------------------


def test_large_bulk_in_many_chunks_is_linear():
    payload = bytes(range(256)) * (256 * 1024)  # 64 MB
    data = encode(b"SET", b"big", payload) + encode(b"GET", b"big")
    parser = RequestParser()
    commands = []
    ready = 0
    start = time.perf_counter()
    for i in range(0, len(data), 65536):
        if parser.feed(data[i:i + 65536]):
            ready += 1
            commands += parser.parse()
    elapsed = time.perf_counter() - start
    assert len(commands) == 2
    assert commands[0][0] == b"SET" and commands[0][2] == payload
    assert commands[1] == [b"GET", b"big"]
    # While the payload is incomplete the chunks are only collected, not parsed.
    assert ready < 10
    # Informational (not an assertion on a shared machine): a quadratic re-join of
    # 1024 chunks would copy ~32 GB and take tens of seconds.
    print(f"64 MB bulk in 64 KB chunks: {elapsed:.3f}s")


def test_buffered_counts_partial_command():
    parser = RequestParser()
    data = encode(b"SET", b"key", b"v" * 100000)
    parser.feed(data[:50000])
    parser.parse()
    # The payload bytes so far are buffered; "SET" and "key" are parsed arguments.
    assert parser.buffered() == 50000 - len(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$100000\r\n")
    assert parser.argv_bytes() == 6
    parser.feed(data[50000:])
    assert parser.parse() == [[b"SET", b"key", b"v" * 100000]]
    assert parser.buffered() == 0


def test_many_small_args_in_chunks():
    args = [b"MSET"] + [b"k%d" % i for i in range(20000)]
    data = encode(*args)
    commands, error, parser = parse_chunks([data[i:i + 4096] for i in range(0, len(data), 4096)])
    assert commands == [args] and error is None


# -- helpers ----------------------------------------------------------------------


def test_string2ll():
    assert string2ll(b"0") == 0
    assert string2ll(b"-1") == -1
    assert string2ll(b"9223372036854775807") == 2**63 - 1
    assert string2ll(b"-9223372036854775808") == -(2**63)
    for bad in (b"", b"-", b"-0", b"00", b"01", b"+1", b" 1", b"1 ", b"1.0", b"\xd9\xa1",
                b"9223372036854775808", b"-9223372036854775809", b"1" * 21):
        assert string2ll(bad) is None, bad


def test_split_args_for_config_lines():
    assert split_args(b"save 900 1") == [b"save", b"900", b"1"]
    assert split_args(b'dir "/var/lib/my dir"') == [b"dir", b"/var/lib/my dir"]
    assert split_args(b"") == []
    assert split_args(b"   ") == []
    assert split_args(b'x "unterminated') is None
    assert split_args(b"requirepass 'it\\'s'") == [b"requirepass", b"it's"]
    # The C string ends at a NUL.
    assert split_args(b"a b\x00c d") == [b"a", b"b"]


def test_max_commands_parses_one_at_a_time():
    # An unauthenticated client is parsed command by command: AUTH may lift the limits
    # for the commands pipelined behind it, as in Redis's parse-run-parse loop.
    parser = RequestParser()
    data = encode(b"AUTH", b"pw") + b"PING\r\n" + encode(*[b"x"] * 11)
    parser.feed(data)
    assert parser.parse(False, max_commands=1) == [[b"AUTH", b"pw"]]
    assert parser.has_more()
    assert parser.parse(False, max_commands=1) == [[b"PING"]]
    assert parser.has_more()
    assert parser.parse(True, max_commands=1) == [[b"x"] * 11]
    assert not parser.has_more() and parser.error is None
    parser.feed(encode(*[b"x"] * 11))
    assert parser.parse(False, max_commands=1) == []
    assert parser.error == "Protocol error: unauthenticated multibulk length"
    assert not parser.has_more()


def test_max_commands_with_partial_tail():
    parser = RequestParser()
    parser.feed(encode(b"PING") + encode(b"ECHO", b"abc")[:-3])
    assert parser.parse(max_commands=1) == [[b"PING"]]
    assert parser.has_more()
    assert parser.parse(max_commands=1) == []
    assert not parser.has_more()  # out of data: a caller's loop must stop here
    parser.feed(b"c\r\n")
    assert parser.parse(max_commands=1) == [[b"ECHO", b"abc"]]
    assert not parser.has_more()


def test_one_at_a_time_loop_ends_on_partial_input():
    # The client's loop for unauthenticated clients: parse one, run it, repeat while
    # has_more(). Every kind of partial tail must end it.
    for tail in (b"*1", b"*1\r\n$4", b"*1\r\n$4\r\nPI", b"PIN", b"*2\r\n$4\r\nECHO\r\n"):
        parser = RequestParser()
        parser.feed(b"PING\r\n" + encode(b"PING") + tail)
        got = []
        for _ in range(10):
            got += parser.parse(False, max_commands=1)
            if not parser.has_more():
                break
        assert got == [[b"PING"], [b"PING"]], tail
        assert not parser.has_more() and parser.error is None


def test_incomplete_bytes_is_the_unfinished_tail():
    # What a truncated AOF must be cut by: everything after the last whole command.
    commands = [[b"SET", b"k", b"v" * 40], [b"PING"], [b"SET", b"a\r\nb", b""],
                [b"MSET"] + [b"x"] * 12, [b"ECHO", b"y" * 70000]]
    frames = [encode(*argv) for argv in commands]
    data = b"".join(frames)
    ends = [0]
    for frame in frames:
        ends.append(ends[-1] + len(frame))
    cuts = list(range(0, ends[4] + 1)) + list(range(ends[4], len(data) + 1, 997)) + [len(data)]
    for cut in cuts:
        whole = max(e for e in ends if e <= cut)
        for split in (cut, cut // 2):
            got, error, parser = parse_chunks([data[:split], data[split:cut]])
            assert error is None
            assert got == commands[:ends.index(whole)], cut
            assert parser.incomplete_bytes() == cut - whole, (cut, split)
