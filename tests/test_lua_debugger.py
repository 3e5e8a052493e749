"""The Lua debugger's synchronous mode (SCRIPT DEBUG SYNC; eval.c ldbRepl and friends),
against redis-server: the same debugger commands give the same bytes on both."""

import socket

import pytest

from conftest import require_binary

require_binary("redis-server")

SCRIPT = (
    "local a = {1,2,'x\\n',{k=3}}\n"
    "local b = 'hi'\n"
    "redis.debug(a, b, 7.5)\n"
    "redis.call('set',KEYS[1],'v')\n"
    "redis.pcall('incr',KEYS[1])\n"
    "redis.breakpoint()\n"
    "local c = 1\n"
    "return redis.call('get',KEYS[1])\n"
)


def encode(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class Debugging:
    """A raw connection that reads whole replies (the debugger's are arrays of status
    replies), keeping everything it read as the transcript."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.transcript = []

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self) -> bytes:
        line = self._line()
        if line[:1] == b"*":
            return line + b"\r\n" + b"".join(self._reply() for _ in range(int(line[1:])))
        if line[:1] == b"$" and int(line[1:]) >= 0:
            while len(self.buf) < int(line[1:]) + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:int(line[1:]) + 2], self.buf[int(line[1:]) + 2:]
            return line + b"\r\n" + data
        return line + b"\r\n"

    def send(self, *args, raw=None, replies=1) -> list:
        self.sock.sendall(raw if raw is not None else encode(*args))
        got = [self._reply() for _ in range(replies)]
        self.transcript.extend(got)
        return got

    def closed(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True


def start(port, script, *keys) -> Debugging:
    conn = Debugging(port)
    assert conn.send("SCRIPT", "DEBUG", "SYNC") == [b"+OK\r\n"]
    conn.send("EVAL", script, len(keys), *keys)
    return conn


def both(vermilion_server, redis_server, session):
    transcripts = []
    for server in (vermilion_server, redis_server):
        transcripts.append(session(server))
    assert transcripts[0] == transcripts[1]
    return transcripts[0]


def test_stepping_and_inspecting(vermilion_server, redis_server):
    def session(server):
        server.client().delete("ldb:key")
        conn = start(server.port, SCRIPT, "ldb:key")
        for command in (["help"], ["list"], ["s"], ["s"], ["print"], ["p", "a"],
                        ["p", "KEYS"], ["p", "nope"], ["b", "5"], ["b"], ["b", "x", "-5", "99"],
                        ["t"], ["e", "1+1"], ["e", "error('boom')"], ["e", "(("],
                        ["r", "set", "a"], ["r", "foo"], ["r", "incr", "ldb:other"],
                        ["m"], ["m", "10"], ["m", "0"], ["w"], ["l", "2", "1"], ["xx"],
                        ["b", "5"], ["c"], ["s"], ["c"]):
            conn.send(*command)
        conn.send("c", replies=2)  # the last logs with <endsession>, then EVAL's reply
        assert conn.closed()
        server.client().delete("ldb:other")
        return conn.transcript

    transcript = both(vermilion_server, redis_server, session)
    assert transcript[1] == (b"*2\r\n+* Stopped at 1, stop reason = step over\r\n"
                             b"+-> 1   local a = {1,2,'x\\n',{k=3}}\r\n")
    assert b"+<value> a = {1; 2; \"x\\n\"; {[\"k\"]=3}}\r\n" in transcript[6]
    assert transcript[-2].endswith(b"+<endsession>\r\n")
    assert transcript[-1] == b"$1\r\nv\r\n"


def test_command_names_are_binary_safe(vermilion_server, redis_server):
    # Tcl unit/scripting "Test scripting debug protocol parsing".
    def session(server):
        conn = start(server.port, "return 'hello'")
        for name in (b"'hello\0world'", b"'hello\0'", b"'\0hello'", b"'\0hello\0'"):
            conn.send(name)
        conn.send(b"s\0x", replies=2)  # strcasecmp() reads "s": a step, to the end
        return conn.transcript

    transcript = both(vermilion_server, redis_server, session)
    assert transcript[2] == (b"*1\r\n+<error> Unknown Redis Lua debugger command or wrong "
                             b"number of arguments.\r\n")


def test_abort_protocol_error_and_evalsha(vermilion_server, redis_server):
    def session(server):
        conn = start(server.port, "return 1")
        conn.send("abort", replies=2)
        conn = start(server.port, "return 1")
        conn.send(raw=b"*x\r\n", replies=2)
        sha_conn = Debugging(server.port)
        sha_conn.send("SCRIPT", "DEBUG", "SYNC")
        sha_conn.send("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 0)
        sha_conn.send("SCRIPT", "DEBUG", "NO")
        sha_conn.send("EVAL", "return 2", 0)
        return conn.transcript + sha_conn.transcript

    transcript = both(vermilion_server, redis_server, session)
    assert transcript[3].startswith(b"-ERR protocol error script: ")
    assert transcript[5] == b"-ERR Please use EVAL instead of EVALSHA for debugging\r\n"


def test_redis_command_with_many_arguments(vermilion_server, redis_server):
    # Tcl unit/scripting "Test scripting debug lua stack overflow".
    def session(server):
        conn = start(server.port, "return 'hello'")
        conn.send(raw=b"*101\r\n$5\r\nredis\r\n" + b"$4\r\ntest\r\n" * 100)
        conn.sock.close()
        assert server.client().ping()
        return conn.transcript

    transcript = both(vermilion_server, redis_server, session)
    assert b"Unknown Redis command called from script" in transcript[-1]


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_other_clients_wait_for_the_session(kind, vermilion_server, redis_server):
    server = vermilion_server if kind == "vermilion" else redis_server
    server.client().delete("ldb:waiting", "ldb:after")
    conn = start(server.port, "local x = 1\nredis.call('set','ldb:after','1')\nreturn x")
    other = Debugging(server.port)
    other.sock.sendall(encode("INCR", "ldb:waiting"))
    # The server runs nothing else while the debugger holds it: the INCR has not run.
    assert conn.send("r", "get", "ldb:waiting")[0].endswith(b"+<reply> NULL\r\n")
    conn.sock.close()  # the session ends, the script runs to its end
    assert other._reply() == b":1\r\n"
    assert server.client().get("ldb:after") == b"1"
    server.client().delete("ldb:waiting", "ldb:after")


def test_forked_session_rolls_back_and_others_are_served(vermilion_server, redis_server):
    # SCRIPT DEBUG YES: a forked child runs the session; the server serves the others
    # meanwhile and the script's writes die with the child.
    def session(server):
        server.client().delete("ldb:forked")
        conn = Debugging(server.port)
        conn.send("SCRIPT", "DEBUG", "YES")
        conn.send("EVAL", "redis.call('set','ldb:forked','1')\n"
                          "return redis.call('get','ldb:forked')", 0)
        conn.send("s")
        assert server.client().ping()  # answered while the session is stopped
        conn.send("c", replies=2)
        assert conn.closed()
        assert server.client().get("ldb:forked") is None
        return conn.transcript

    transcript = both(vermilion_server, redis_server, session)
    assert transcript[-1] == b"$1\r\n1\r\n"
