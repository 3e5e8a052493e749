"""The replication stream itself, byte for byte against redis-server 7.0: the same
commands sent to both masters must produce the same stream for a replica attached with
SYNC (as Redis's own propagation tests read it), absolute times masked."""

import re
import socket
import time

import pytest

from conftest import start_redis, start_vermilion


class StreamReader:
    """A replica speaking the old SYNC protocol: skip the RDB payload, then collect the
    commands its master sends."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.sock.sendall(b"SYNC\r\n")
        while True:
            line = self._line()
            if line:  # newlines are keep-alives while the snapshot is written
                break
        assert line.startswith(b"$"), line
        self._take(int(line[1:]))

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("master closed the link")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf and not self.buf.startswith(b"\n"):
            self._fill()
        if self.buf.startswith(b"\n"):
            self.buf = self.buf[1:]
            return b""
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def command(self) -> list[bytes]:
        line = self._line()
        while not line:
            line = self._line()
        assert line.startswith(b"*"), line
        argv = []
        for _ in range(int(line[1:])):
            head = self._line()
            argv.append(self._take(int(head[1:]) + 2)[:-2])
        return argv

    def commands_until(self, marker: bytes) -> list[list[bytes]]:
        """Everything up to the SET of the marker key (excluded); PINGs dropped."""
        out = []
        while True:
            argv = self.command()
            if argv[:2] == [b"SET", marker] or argv[:2] == [b"set", marker]:
                return out
            if argv[0].upper() != b"PING":
                out.append(argv)


def _masked(commands):
    """Absolute times differ between two runs: mask the digits after PXAT/PEXPIREAT."""
    out = []
    for argv in commands:
        argv = list(argv)
        if argv[0].upper() == b"PEXPIREAT":
            argv[2] = b"<ms>"
        # Ids of entries added with "*" hold the time too.
        argv = [re.sub(rb"^\d{13}-\d+$", b"<ms>-<seq>", a) for a in argv]
        for i, arg in enumerate(argv[1:-1], 1):
            if arg.upper() in (b"PXAT", b"EXAT", b"TIME"):
                argv[i + 1] = b"<ms>"
        out.append(argv)
    return out


SCENARIOS = {
    "strings": [["SET", "a", "1"], ["INCR", "a"], ["APPEND", "a", "x"], ["SET", "b", "v", "EX", "100"],
                ["SET", "c", "v", "PX", "100000", "NX"], ["SETEX", "d", "100", "v"], ["GETEX", "d", "PERSIST"],
                ["GETEX", "d", "EX", "50"], ["INCRBYFLOAT", "f", "1.5"], ["GETDEL", "a"], ["MSET", "x", "1", "y", "2"],
                ["GETSET", "x", "3"], ["SET", "x", "4", "GET"], ["SETNX", "y", "5"], ["MSETNX", "p", "1"]],
    "expiry": [["SET", "k", "v"], ["EXPIRE", "k", "100"], ["PEXPIRE", "k", "100000"], ["EXPIREAT", "k", "4102444800"],
               ["PERSIST", "k"], ["EXPIRE", "k", "-1"], ["SET", "gone", "v", "PX", "1"]],
    "collections": [["RPUSH", "l", "a", "b", "c"], ["LPOP", "l"], ["LMOVE", "l", "l2", "LEFT", "RIGHT"],
                    ["SADD", "s", "1", "2", "3"], ["SREM", "s", "1"], ["HSET", "h", "f", "1"],
                    ["HINCRBYFLOAT", "h", "f", "0.5"], ["ZADD", "z", "1", "a", "2", "b"], ["ZINCRBY", "z", "3", "a"],
                    ["ZPOPMIN", "z"], ["BLPOP", "l2", "0"], ["BZPOPMAX", "z", "0"]],
    "transactions": [["MULTI"], ["SET", "t", "1"], ["INCR", "t"], ["EXEC"], ["MULTI"], ["GET", "t"], ["EXEC"]],
    "scripts": [["EVAL", "redis.call('set', KEYS[1], 'x'); redis.call('incr', KEYS[2])", "2", "s1", "s2"],
                ["EVAL", "return redis.call('get', KEYS[1])", "1", "s1"],
                ["EVAL", "redis.call('set', KEYS[1], 'y')", "1", "s3"]],
    "databases": [["SELECT", "2"], ["SET", "in2", "v"], ["SELECT", "0"], ["SET", "in0", "v"], ["SWAPDB", "0", "2"],
                  ["MOVE", "in0", "5"], ["FLUSHDB"]],
    "streams": [["XADD", "st", "1-1", "f", "v"], ["XGROUP", "CREATE", "st", "g", "0"],
                ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "st", ">"], ["XACK", "st", "g", "1-1"],
                ["XTRIM", "st", "MAXLEN", "0"], ["XADD", "st", "MAXLEN", "5", "2-1", "f", "v"],
                ["XADD", "st", "MAXLEN", "~", "1", "*", "f", "v"], ["XADD", "st", "3-*", "f", "v"],
                ["XREADGROUP", "GROUP", "g", "c2", "NOACK", "STREAMS", "st", ">"],
                ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "st", "0"],
                ["XCLAIM", "st", "g", "c3", "0", "2-1"], ["XAUTOCLAIM", "st", "g", "c4", "0", "0"],
                ["XGROUP", "SETID", "st", "g", "$"], ["XDEL", "st", "2-1"]],
    "more": [["RPUSH", "l", "a", "b", "c", "d"], ["LMPOP", "1", "l", "LEFT", "COUNT", "2"], ["RPOPLPUSH", "l", "l3"],
             ["LSET", "l3", "0", "x"], ["LINSERT", "l3", "BEFORE", "x", "y"], ["LTRIM", "l3", "0", "0"],
             ["SADD", "s1", "a", "b", "c"], ["SADD", "s2", "b"], ["SINTERSTORE", "s3", "s1", "s2"],
             ["SMOVE", "s1", "s2", "a"], ["SPOP", "s1", "5"], ["ZADD", "z", "1", "a", "2", "b", "3", "c"],
             ["ZMPOP", "1", "z", "MIN"], ["ZUNIONSTORE", "z2", "1", "z"], ["ZREMRANGEBYSCORE", "z", "0", "2"],
             ["HSETNX", "h", "f", "v"], ["HINCRBY", "h", "n", "5"], ["HDEL", "h", "f"], ["INCRBY", "i", "5"],
             ["DECR", "i"], ["BITOP", "OR", "dest", "i", "i"], ["PFADD", "p1", "a"], ["PFMERGE", "p2", "p1"],
             ["GEOADD", "g", "13.361389", "38.115556", "Palermo"],
             ["SORT", "l3", "ALPHA", "STORE", "sorted"], ["EXPIRE", "nokey", "10"], ["SET", "e", "v"],
             ["EXPIRE", "e", "0"], ["SET", "e2", "v"], ["PEXPIREAT", "e2", "1"], ["SETRANGE", "sr", "2", "x"]],
    "functions": [["FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function(k, a) "
                   "redis.call('set', k[1], a[1]) redis.call('incr', 'n') end)"],
                  ["FCALL", "f", "1", "fk", "fv"], ["FUNCTION", "DELETE", "lib"],
                  ["EVAL", "redis.set_repl(redis.REPL_NONE) redis.call('set', 'hidden', 1) "
                   "redis.set_repl(redis.REPL_ALL) redis.call('set', 'shown', 1)", "0"]],
    "pubsub": [["PUBLISH", "ch", "m1"], ["MULTI"], ["PUBLISH", "bla", "bla"], ["EXEC"],
               ["EVAL", "redis.call('publish', 'ch', 'from-script') redis.call('set', 'p', 1)",
                "0"], ["SPUBLISH", "sch", "m2"]],
    "keys": [["SET", "r", "v"], ["RENAME", "r", "r2"], ["COPY", "r2", "r3"], ["UNLINK", "r2"], ["DEL", "r3", "nope"],
             ["SET", "n", "1"], ["SETRANGE", "n", "5", "x"], ["SETBIT", "bits", "7", "1"], ["PFADD", "hll", "a"]],
}


@pytest.fixture(scope="module")
def masters(tmp_path_factory):
    args = ["--repl-ping-replica-period", "3600"]
    ours = start_vermilion(tmp_path_factory.mktemp("v"), args)
    theirs = start_redis(tmp_path_factory.mktemp("r"), args)
    yield ours, theirs
    ours.stop()
    theirs.stop()


def _run(server, commands, marker):
    stream = StreamReader(server.port)
    client = server.client()
    client.flushall()
    for argv in commands:
        if argv[0] == "SELECT":
            # One connection throughout: SELECT must stay in effect for what follows.
            client.execute_command(*argv)
            continue
        try:
            client.execute_command(*argv)
        except Exception:
            pass
    time.sleep(0.01)  # let "gone" expire on both before the marker
    client.get("gone")
    client.execute_command("SELECT", "0")
    client.set(marker, "end")
    got = stream.commands_until(marker.encode())
    stream.sock.close()
    return got


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_stream_matches_redis(masters, scenario):
    ours, theirs = masters
    commands = SCENARIOS[scenario]
    marker = f"marker-{scenario}"
    mine = _masked(_run(ours, commands, marker))
    real = _masked(_run(theirs, commands, marker))
    assert mine == real
