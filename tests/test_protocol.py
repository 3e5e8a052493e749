"""The wire protocol over real sockets, compared byte for byte with a real redis-server:
protocol errors (same -ERR line, then the connection is closed, other clients keep
being served), pipelining, inline commands, unauthenticated limits."""

import socket
import time

import pytest

from conftest import RawConnection, start_redis, start_vermilion


def encode(*args) -> bytes:
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def until_closed(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send data, then read everything until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:  # closed with our bytes still unread
                return out
            if not chunk:
                return out
            out += chunk
        raise AssertionError(f"connection not closed; got {out[:200]!r}")


def quiet_for(port: int, data: bytes, wait: float = 0.3) -> bytes:
    """Send data; return what arrived within `wait` seconds (the connection stays open)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        out = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return out + b"<closed>"
                out += chunk
        except socket.timeout:
            return out


def ping_ok(port: int) -> bool:
    conn = RawConnection(port)
    try:
        return conn.command("PING") == b"+PONG\r\n"
    finally:
        conn.close()


MALFORMED = [
    b"*x\r\n",
    b"*-0\r\n",
    b"*01\r\n",
    b"*2147483648\r\n",
    b"*-9999999999999999999\r\n",
    b"*1\rx\r\n",
    b"*1\r\nx\r\n",
    b"*1\r\n\n\r\n",
    b"*1\r\n\xc8\r\n",
    b"*1\r\n:1\r\n",
    b"*2\r\n$4\r\nECHO\r\n+a\r\n",
    b"*1\r\n$-1\r\n",
    b"*1\r\n$-0\r\n",
    b"*1\r\n$04\r\n",
    b"*1\r\n$+4\r\n",
    b"*1\r\n$536870913\r\n",
    b"*1\r\n$99999999999999999999\r\n",
    b'ECHO "unbalanced\r\n',
    b"ECHO 'a'b\r\n",
    b'SET "a"b c\r\n',
    # Valid commands before the error are answered first.
    encode("SET", "k", "v") + b"PING\r\n" + encode("GET", "k") + b"*1\r\n$x\r\n" + encode("PING"),
    b"PING\r\n*1\r\n$4\r\nPING\r\n" + b"*1\r\n!\r\n",
]


@pytest.mark.parametrize("data", MALFORMED, ids=[repr(d[:24]) for d in MALFORMED])
def test_protocol_error_reply_then_close(diff, data):
    got, expected = diff.pair(lambda server: until_closed(server.port, data))
    assert expected.endswith(b"\r\n") and b"-ERR Protocol error: " in expected
    assert got == expected
    assert ping_ok(diff.vermilion_server.port)


def test_too_big_requests(diff):
    for data in (b"x" * 70000, b"*" + b"1" * 70000, b"*1\r\n$" + b"1" * 70000,
                 b"PING\r\n" + b"ECHO \x00" + b"a" * 70000):
        got, expected = diff.pair(lambda server: until_closed(server.port, data))
        assert got == expected, data[:20]
        assert b"too big" in got


@pytest.mark.parametrize("data", [
    b"*1\r\nX",  # the '$' check waits for the end of the header line
    b"*1\r\n\x00$4\r\nPING\r\n",  # strchr() stops at a NUL: never a complete line
    b"*1\x00\r\n",
    b"ECHO a\x00b\r\nPING\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc",
])
def test_incomplete_requests_wait(diff, data):
    got, expected = diff.pair(lambda server: quiet_for(server.port, data))
    assert got == expected == b""


def test_other_clients_keep_being_served(vermilion_server):
    bystander = RawConnection(vermilion_server.port)
    try:
        assert bystander.command("SET", "bystander", "1") == b"+OK\r\n"
        for data in MALFORMED[:6]:
            until_closed(vermilion_server.port, data)
        assert bystander.command("INCR", "bystander") == b":2\r\n"
    finally:
        bystander.close()


def test_inline_commands(raw, raw_real):
    lines = [
        b"PING\r\n",
        b"PING\n",
        b'ECHO "a b"\r\n',
        b"ECHO 'it\\'s'\r\n",
        b'ECHO "\\x41\\x42\\n\\t"\r\n',
        b"ECHO a\x0bb\r\n",
        b"SET inline \"v v\"\r\nGET inline\r\n",
        b"\r\n\r\n   \r\nPING\r\n",
        b"ECHO a\rb\r\r\n",  # a CR inside the line separates words
        b"PING\rPING\n",
        b'ECHO ""\r\n',
        b"  PING   \r\n",
    ]
    for line in lines:
        replies = 2 if b"GET inline" in line else 1
        raw.send(line)
        raw_real.send(line)
        got = b"".join(raw.read_reply() for _ in range(replies))
        expected = b"".join(raw_real.read_reply() for _ in range(replies))
        assert got == expected, line
    assert raw.command("PING") == b"+PONG\r\n"


def test_pipelining_many_commands_in_one_write(raw, raw_real):
    commands = []
    for i in range(2000):
        commands.append(encode("SET", f"key:{i % 37}", f"value-{i}"))
        commands.append(encode("GET", f"key:{(i * 7) % 37}"))
        commands.append(encode("INCR", f"counter:{i % 5}"))
        commands.append(b"ECHO inline-%d\r\n" % i)
    data = b"".join(commands)
    raw.send(data)
    raw_real.send(data)
    for i in range(len(commands)):
        assert raw.read_reply() == raw_real.read_reply(), i
    assert raw.command("DBSIZE") == raw_real.command("DBSIZE")


def test_pipeline_split_in_odd_pieces(raw, raw_real):
    data = b"".join(encode("SET", f"s{i}", "x" * i) for i in range(200))
    data += b"".join(encode("STRLEN", f"s{i}") for i in range(200))
    for conn in (raw, raw_real):
        for i in range(0, len(data), 777):
            conn.send(data[i:i + 777])
            time.sleep(0.001)
    for i in range(400):
        assert raw.read_reply() == raw_real.read_reply(), i


def test_big_value_in_many_writes(raw, raw_real):
    value = bytes(range(256)) * 40000  # ~10 MB
    data = encode("SET", "big", value)
    for conn in (raw, raw_real):
        for i in range(0, len(data), 65536):
            conn.send(data[i:i + 65536])
        assert conn.read_reply() == b"+OK\r\n"
    assert raw.command("STRLEN", "big") == raw_real.command("STRLEN", "big") == b":10240000\r\n"
    assert raw.command("GET", "big") == raw_real.command("GET", "big")


def test_empty_multibulk_and_negative_are_ignored(raw, raw_real):
    for conn in (raw, raw_real):
        conn.send(b"*0\r\n*-1\r\n*-5\r\n")
    assert raw.command("PING") == raw_real.command("PING") == b"+PONG\r\n"


def test_unauthenticated_limits(tmp_path):
    vermilion = start_vermilion(tmp_path, ["--requirepass", "secret"])
    real = start_redis(tmp_path, ["--requirepass", "secret"])
    try:
        cases = [
            encode(*["x"] * 11),
            # Only the header: sending the payload too would leave unread bytes, and
            # a close with unread input is a reset that may swallow the reply.
            b"*2\r\n$4\r\nAUTH\r\n$16385\r\n",
            b"PING\r\n" + encode(*["x"] * 20),
        ]
        for data in cases:
            got, expected = (until_closed(s.port, data) for s in (vermilion, real))
            assert got == expected, data[:30]
            assert b"unauthenticated" in got
        # At the limits the command runs (and is refused for lack of AUTH).
        for data in (encode(*["x"] * 10), encode("AUTH", "x" * 16384)):
            got, expected = (quiet_for(s.port, data) for s in (vermilion, real))
            assert got == expected, data[:30]
        # Once authenticated, the limits are gone.
        for server in (vermilion, real):
            conn = RawConnection(server.port)
            assert conn.command("AUTH", "secret") == b"+OK\r\n"
            assert conn.command("MSET", *["k", "v"] * 10) == b"+OK\r\n"
            assert conn.command("ECHO", "y" * 20000) == b"$20000\r\n" + b"y" * 20000 + b"\r\n"
            conn.close()
    finally:
        vermilion.stop()
        real.stop()


def test_proto_max_bulk_len_config(raw, raw_real):
    header = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n"
    try:
        for conn in (raw, raw_real):
            assert conn.command("CONFIG", "SET", "proto-max-bulk-len", "1mb") == b"+OK\r\n"
            conn.send(header)
            assert conn.read_reply() == b"-ERR Protocol error: invalid bulk length\r\n"
    finally:
        for conn in (RawConnection(raw.sock.getpeername()[1]),
                     RawConnection(raw_real.sock.getpeername()[1])):
            conn.command("CONFIG", "SET", "proto-max-bulk-len", "512mb")
            conn.close()


def test_auth_pipelined_before_a_long_command(tmp_path):
    """redis-benchmark -a sends AUTH in the same write as its first pipeline: Redis runs
    AUTH before parsing the next command, so the unauthenticated limits no longer apply.
    (Needs Client to parse an unauthenticated client one command at a time.)"""
    data = encode("AUTH", "secret") + encode("MSET", *["k", "v"] * 10) + encode("GET", "k")
    replies = []
    for start in (start_vermilion, start_redis):
        server = start(tmp_path, ["--requirepass", "secret"])
        try:
            conn = RawConnection(server.port)
            conn.send(data)
            replies.append([conn.read_reply() for _ in range(3)])
            conn.close()
        finally:
            server.stop()
    assert replies[0] == replies[1] == [b"+OK\r\n", b"+OK\r\n", b"$1\r\nv\r\n"]


def test_query_buffer_limit_closes_the_connection(raw, raw_real):
    """client-query-buffer-limit counts what is buffered of an incomplete command;
    past it the connection is closed without a reply (freeClientAsync)."""
    try:
        for conn in (raw, raw_real):
            assert conn.command("CONFIG", "SET", "client-query-buffer-limit", "1mb") == b"+OK\r\n"
        data = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n" + b"x" * 2000000
        for port in (raw.sock.getpeername()[1], raw_real.sock.getpeername()[1]):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                try:
                    sock.sendall(data)
                    out = sock.recv(65536)
                except (ConnectionResetError, BrokenPipeError):
                    out = b""
                assert out == b"", port
            assert ping_ok(port)
    finally:
        for conn in (raw, raw_real):
            conn.command("CONFIG", "SET", "client-query-buffer-limit", "1gb")


def test_query_buffer_limit_ignores_parsed_arguments(raw, raw_real):
    """Redis 7.0 compares only the unparsed query buffer with the limit: the arguments
    of an incomplete command that are already parsed do not count."""
    try:
        for conn in (raw, raw_real):
            assert conn.command("CONFIG", "SET", "client-query-buffer-limit", "1mb") == b"+OK\r\n"
        count = 150000  # ~2.4 MB of small arguments, the command never completed
        data = b"*%d\r\n$4\r\nMSET\r\n" % (count + 1) + b"$10\r\n0123456789\r\n" * (count - 2)
        for port in (raw.sock.getpeername()[1], raw_real.sock.getpeername()[1]):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(data)
                sock.sendall(b"$10\r\n0123456789\r\n$1\r\nx\r\n")
                assert RawConnection.read_reply(_Reader(sock)) == b"+OK\r\n", port
    finally:
        for conn in (raw, raw_real):
            conn.command("CONFIG", "SET", "client-query-buffer-limit", "1gb")


class _Reader(RawConnection):
    """RawConnection's reply reader over an existing socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
