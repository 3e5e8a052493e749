"""Hostile input: random bytes and malformed frames.

Against the parser alone: however the bytes are chunked, the result (commands, then
maybe one protocol error) is the same. Against a vermilion-server subprocess: after
every example the server still answers PING on a new connection, and once the fuzzing
connections are gone its client count is back to 1 (nothing leaked). At the end, the
short version of `make fuzz`: seeded generated frames (tests/stress/fuzz_protocol.py)
through the parser and over TCP.
"""

import re
import socket
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import RawConnection, start_vermilion
from vermilion.protocol.parser import RequestParser

# The stress scripts (make fuzz) run as plain files, so their directory goes on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent / "stress"))
import fuzz_protocol  # noqa: E402

EXAMPLES = 100

# Commands that cannot stop, pause, block or reconfigure the server under fuzzing.
SAFE_COMMANDS = [b"PING", b"ECHO", b"SET", b"GET", b"DEL", b"INCR", b"APPEND", b"MGET",
                 b"EXISTS", b"STRLEN", b"GETRANGE", b"SETRANGE", b"TYPE", b"DBSIZE",
                 b"CLIENT", b"HELLO", b"SELECT", b"LPUSH", b"LRANGE", b"nosuchcmd"]

small_int = st.one_of(st.integers(-3, 20), st.sampled_from([2**31, 2**63, -2**63, 10**20]))
number_text = st.one_of(
    small_int.map(lambda i: b"%d" % i),
    st.sampled_from([b"", b"-0", b"01", b"+1", b" 1", b"x", b"1.5", b"\x00", b"1\x00"]),
)
arg = st.one_of(st.binary(max_size=12), st.sampled_from([b"", b"\r\n", b"*1", b"$1", b'"', b"'"]))


def encode(args) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


valid_frame = st.builds(lambda name, args: encode([name] + args),
                        st.sampled_from(SAFE_COMMANDS), st.lists(arg, max_size=4))
inline_line = st.builds(
    lambda name, args, end: name + b" " + b" ".join(args) + end,
    st.sampled_from(SAFE_COMMANDS), st.lists(arg, max_size=3),
    st.sampled_from([b"\r\n", b"\n", b"\r", b""]))
fragment = st.one_of(
    valid_frame,
    inline_line,
    number_text.map(lambda t: b"*" + t + b"\r\n"),
    number_text.map(lambda t: b"$" + t + b"\r\n"),
    st.sampled_from([b"\r\n", b"\r", b"\n", b"*", b"$", b"\x00", b":1\r\n", b"+OK\r\n",
                     b"*0\r\n", b"*-1\r\n", b'"', b"'", b"\\x4", b"\xc8"]),
    st.binary(max_size=40),
)
malformed = st.lists(fragment, min_size=1, max_size=12).map(b"".join)
hostile = st.one_of(st.binary(min_size=1, max_size=300), malformed)


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, pos, k = [], 0, 0
    while pos < len(data):
        size = sizes[k % len(sizes)]
        chunks.append(data[pos:pos + size])
        pos += size
        k += 1
    return chunks


def run_parser(chunks):
    parser = RequestParser()
    out = []
    for chunk in chunks:
        if parser.feed(chunk):
            out += parser.parse()
        if parser.error is not None:
            break
    return out, parser.error, None if parser.error else parser.incomplete_bytes()


@settings(max_examples=300, deadline=None)
@given(hostile, st.lists(st.integers(1, 17), min_size=1, max_size=20))
def test_parser_result_does_not_depend_on_chunking(data, sizes):
    assert run_parser(chunked(data, sizes)) == run_parser([data])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_parser_never_raises(data):
    commands, error, _ = run_parser([data])
    assert all(isinstance(argv, list) and argv for argv in commands)
    assert all(type(a) is bytes for argv in commands for a in argv)
    assert error is None or error.startswith("Protocol error: ")


# -- against a server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    server = start_vermilion(tmp_path_factory.mktemp("fuzz"))
    yield server
    server.stop()


def connected_clients(conn: RawConnection) -> int:
    info = conn.command("INFO", "clients")
    match = re.search(rb"connected_clients:(\d+)", info)
    assert match, info[:200]
    return int(match.group(1))


def wait_for_one_client(port: int, timeout: float = 5.0) -> int:
    conn = RawConnection(port)
    try:
        deadline = time.monotonic() + timeout
        count = connected_clients(conn)
        while count != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
            count = connected_clients(conn)
        return count
    finally:
        conn.close()


def send_hostile(port: int, chunks: list[bytes], read_timeout: float = 0.05) -> None:
    """Send the chunks, then hang up (half-close first, as a client that is done)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(read_timeout)
            while sock.recv(65536):  # drain replies until closed or quiet
                pass
        except OSError:  # the server closed first (protocol error), or went quiet
            pass


def test_server_survives_hostile_input(fuzz_server):
    port = fuzz_server.port
    seen = []

    @settings(max_examples=EXAMPLES, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(hostile, st.lists(st.integers(1, 64), min_size=1, max_size=8))
    def example(data, sizes):
        seen.append(data)
        send_hostile(port, chunked(data, sizes))
        conn = RawConnection(port)
        try:
            assert conn.command("PING") == b"+PONG\r\n", data
        finally:
            conn.close()

    example()
    assert len(seen) >= EXAMPLES // 2
    assert wait_for_one_client(port) == 1


def test_abandoned_partial_commands_are_freed(fuzz_server):
    """Clients that vanish mid-command, mid-bulk or mid-line leave nothing behind."""
    port = fuzz_server.port
    partials = [b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n" + b"x" * 50000,
                b"*2\r\n$4\r\nECHO", b"ECHO \"unterminated", b"x" * 30000, b"*1\r\n"]
    socks = []
    for data in partials * 4:
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        sock.sendall(data)
        socks.append(sock)
    conn = RawConnection(port)
    try:
        deadline = time.monotonic() + 5
        while connected_clients(conn) < len(socks) + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert connected_clients(conn) == len(socks) + 1
    finally:
        conn.close()
    for sock in socks:
        sock.close()
    assert wait_for_one_client(port) == 1
    assert RawConnection(port).command("PING") == b"+PONG\r\n"


def run_parser_slow(data: bytes):
    """One command per parse() call: max_commands disables both fast paths."""
    parser = RequestParser()
    out = []
    parser.feed(data)
    while True:
        commands = parser.parse(max_commands=1)
        out += commands
        if not commands or parser.error is not None:
            break
    return out, parser.error, None if parser.error else parser.incomplete_bytes()


plain_inline = st.lists(
    st.builds(lambda words, sep, end: sep.join(words) + end,
              st.lists(st.binary(min_size=1, max_size=6).filter(lambda w: not w.isspace()),
                       max_size=4),
              st.sampled_from([b" ", b"\t", b"  ", b"\r", b" \r "]),
              st.sampled_from([b"\r\n", b"\n", b"\r\r\n", b" \n"])),
    min_size=1, max_size=10).map(b"".join)
canonical = st.lists(st.lists(st.binary(max_size=20), min_size=1, max_size=5),
                     min_size=1, max_size=10).map(lambda cmds: b"".join(map(encode, cmds)))


@settings(max_examples=300, deadline=None)
@given(st.one_of(hostile, plain_inline, canonical,
                 st.tuples(canonical, hostile).map(b"".join)))
def test_fast_paths_agree_with_the_general_parser(data):
    assert run_parser([data]) == run_parser_slow(data)


# -- differential: the same hostile bytes to vermilion and redis-server -------------------

# No CLIENT (ids, ages, addresses differ) and nothing that blocks or reconfigures.
DIFF_COMMANDS = [name for name in SAFE_COMMANDS if name != b"CLIENT"]
diff_frame = st.builds(lambda name, args: encode([name] + args),
                       st.sampled_from(DIFF_COMMANDS), st.lists(arg, max_size=4))
diff_inline = st.builds(
    lambda name, args, end: name + b" " + b" ".join(args) + end,
    st.sampled_from(DIFF_COMMANDS), st.lists(arg, max_size=3),
    st.sampled_from([b"\r\n", b"\n", b"\r", b""]))
diff_fragment = st.one_of(
    diff_frame, diff_inline,
    number_text.map(lambda t: b"*" + t + b"\r\n"),
    number_text.map(lambda t: b"$" + t + b"\r\n"),
    st.sampled_from([b"\r\n", b"\r", b"\n", b"*", b"$", b"\x00", b":1\r\n", b"+OK\r\n",
                     b"*0\r\n", b"*-1\r\n", b'"', b"'", b"\\x4", b"\xc8"]),
    st.binary(max_size=40).filter(lambda b: b"client" not in b.lower()),
)
diff_input = st.lists(diff_fragment, min_size=1, max_size=10).map(b"".join)


def exchange(port: int, data: bytes) -> bytes:
    """Send data, half-close, and read until the server closes: every reply it sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        out = b""
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
        return out


@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    from conftest import start_redis
    server = start_redis(tmp_path_factory.mktemp("fuzz-redis"))
    yield server
    server.stop()


def _without_client_ids(reply: bytes) -> bytes:
    # HELLO's reply carries the connection's id, which depends on how many connections
    # each server has seen: the one field two correct servers may differ in.
    return re.sub(rb"\$2\r\nid\r\n:\d+\r\n", b"$2\r\nid\r\n:ID\r\n", reply)


def test_hostile_input_answered_like_redis(fuzz_server, real_server):
    """The same bytes get the same bytes back, up to the close: replies to the commands
    before a protocol error, the error line, nothing for an incomplete tail."""
    ports = (fuzz_server.port, real_server.port)
    for port in ports:
        conn = RawConnection(port)
        conn.command("FLUSHALL")
        conn.close()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(diff_input)
    def example(data):
        got, expected = (_without_client_ids(exchange(port, data)) for port in ports)
        assert got == expected, f"input {data!r}"

    example()


# -- generated frames at scale: the short version of `make fuzz` ---------------------------


def test_generated_frames_through_the_parser():
    """20k seeded frames (tests/stress/fuzz_protocol.py): nothing escapes the parser but
    its own error, cutting never changes the result, well-formed frames parse to what
    they encode, memory stays flat (traced over the first 5k)."""
    result = fuzz_protocol.fuzz_parser(20_000, seed=13, trace_frames=5_000, log=lambda line: None)
    assert not result.defects, "\n".join(result.defects)
    assert result.frames >= 20_000 and result.exact > 500 and result.errors > 100


def test_generated_frames_over_tcp(fuzz_server):
    """2k seeded frames over TCP, cut at random points: the server stays up, answers
    PING, ends each protocol error with -ERR Protocol error and a close, keeps no
    client behind and its RSS bounded."""
    result = fuzz_protocol.fuzz_tcp(2_000, seed=13, port=fuzz_server.port,
                                    pid=fuzz_server.proc.pid, log=lambda line: None)
    assert not result.defects, "\n".join(result.defects)
    assert result.frames >= 2_000 and result.protocol_errors > 10


@pytest.mark.parametrize("data", [
    b"*1\r\n+OK\r\n",                          # a status item where Redis wants '$'
    b"*2\r\n$3\r\nGET\r\n(12\r\n",             # a bignum item
    b"~1\r\n$4\r\nPING\r\n",                   # a set at top level: Redis reads a line
    b">1\r\n$4\r\nPING\r\n",                   # a push at top level
    b"%1\r\n$1\r\na\r\n$1\r\nb\r\n",           # a map at top level
    b"*1\r\n*1\r\n$1\r\na\r\n",                # a nested array
    b"*1\r\n$-1\r\n",                          # a null argument
    b"*1\r\n:5\r\n",                           # an integer argument
    b"*0\r\n*1\r\n$4\r\nPING\r\n",             # no command, then one
    b"*1\r\n$4\r\nPING\r\n:0\r\n",             # an integer item after a command
    b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",  # the bytes after a payload unchecked
    b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n",  # a partial tail
    b"*1\r\n$4\r\nPING\r\n*",                  # a tail of one byte
    b"*1\r\n$4\r\nPING\r\nPING\r\n",           # an inline command after a multibulk one
    b"*1\r\n$04\r\nPING\r\n",                  # a non-canonical length
    b"*2000000000\r\n$1\r\na\r\n",             # a count hiredis would allocate for
])
def test_hiredis_front_end_reads_as_redis(data):
    """The batch reader in C (hiredis) is only trusted where its reading is Redis's:
    every shape it would read differently gives what the general parser gives."""
    assert run_parser([data]) == run_parser_slow(data)
