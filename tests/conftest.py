"""Fixtures: real vermilion-server and real redis-server subprocesses on free loopback ports.

Nothing is mocked: every test talks TCP to a server process. The real redis-server 7.0
(Debian's package) must be installed; a missing binary fails the run, never skips.
"""

import collections
import inspect
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff


def quick_client_retries():
    """redis-py (6+) retries a command 3 times on a connection error, sleeping up to 1, 2
    and 4 s in between (its default Retry): a test that expects a dropped or refused
    connection waited out ~7 s per error. The same 3 retries, 20-80 ms apart, for every
    client built with the default (rq's, celery's and the Sentinel client's included)."""
    for client_class in (redis.Redis, redis.asyncio.Redis):
        default = inspect.signature(client_class.__init__).parameters["retry"].default
        if isinstance(default, redis.retry.Retry):  # redis-py 5's default is None: no sleeps
            default._backoff = ExponentialBackoff(cap=0.08, base=0.01)


quick_client_retries()

ROOT = Path(__file__).resolve().parent.parent
VERMILION = Path(sys.executable).parent / "vermilion-server"


def _port_slice() -> range:
    """The ports this process hands out: its own slice of 20000-31999, below the kernel's
    ephemeral ports (32768+, which bind(0) and every outgoing connection take from),
    one slice per pytest-xdist worker, so that two workers never pick the same port
    between the check and the server's bind."""
    workers = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), 1)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    index = int(worker) % workers if worker.isdigit() else 0
    size = 12000 // workers
    return range(20000 + index * size, 20000 + (index + 1) * size)


_PORTS = _port_slice()
_recent_ports = collections.deque(maxlen=256)  # handed out, maybe not bound yet
_port_picker = random.Random(os.getpid())  # separate pytest runs on one machine: apart


def free_port() -> int:
    """A random port of this process's slice that nothing holds (bound without
    SO_REUSEADDR: a port still in TIME_WAIT is passed over too) and that this process
    has not handed out lately."""
    for _ in range(1000):
        port = _port_picker.choice(_PORTS)
        if port in _recent_ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _recent_ports.append(port)
        return port
    raise RuntimeError(f"no free port in {_PORTS}")


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run .ci/run (apt-get install redis-server redis-tools)")
    return path


class ServerProcess:
    """A server subprocess: vermilion-server or redis-server, same argv conventions."""

    def __init__(self, binary, args=(), cwd=None, config_text=None):
        self.port = free_port()
        self.binary = str(binary)
        self.cwd = cwd
        self.args = list(args)
        self.config_text = config_text
        self.proc = None
        self.preexec_fn = None  # run in the child before exec (limits a test imposes)

    def start(self, timeout=10.0):
        argv = [self.binary]
        if self.config_text is not None:
            path = Path(self.cwd) / f"server-{self.port}.conf"
            path.write_text(self.config_text)
            argv.append(str(path))
        argv += ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += self.args
        self.log_path = Path(self.cwd) / f"server-{self.port}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=self.cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=self.preexec_fn,
                                     restore_signals=self.preexec_fn is None)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.binary} exited: {self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    reply = s.recv(64)
                    if reply and not reply.startswith(b"-LOADING"):
                        return self
                    time.sleep(0.05)
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.binary} did not start on port {self.port}")

    def client(self, **kw) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


def start_in_dir(binary, workdir, *args) -> ServerProcess:
    """A server whose `dir` is workdir, so its RDB/AOF files land there (args come after
    ServerProcess's own --save "" and may override it)."""
    server = ServerProcess(binary, cwd=workdir)
    server.args = ["--dir", str(workdir), *args]
    return server.start()


def start_vermilion(tmp_path, args=(), config_text=None) -> ServerProcess:
    return ServerProcess(VERMILION, args, cwd=tmp_path, config_text=config_text).start()


def start_redis(tmp_path, args=(), config_text=None) -> ServerProcess:
    return ServerProcess(require_binary("redis-server"), args, cwd=tmp_path,
                         config_text=config_text).start()


def side_by_side(tmp_path, run) -> tuple:
    """run(server) on a fresh vermilion-server, then on a fresh redis-server, each in a
    directory of its own: (Vermilion's result, Redis's)."""
    results = []
    for start, name in ((start_vermilion, "vermilion"), (start_redis, "redis")):
        (tmp_path / name).mkdir()
        server = start(tmp_path / name)
        try:
            results.append(run(server))
        finally:
            server.stop()
    return tuple(results)


# A master's first diskless transfer at once, not after the 5 s Redis gives latecomers.
NO_SYNC_DELAY = ("--repl-diskless-sync-delay", "0")


@pytest.fixture
def servers(tmp_path):
    """start(kind, *args, config_text=None): a vermilion-server or redis-server in a
    directory of its own, DEBUG enabled; every one is stopped after the test (resumed
    first if a test left it SIGSTOPped). The replication tests' fixture: as a master, a
    server starts a diskless transfer at once (repl-diskless-sync-delay 0, where the
    default waits 5 s for more replicas), unless a test's args set the delay."""
    started = []

    def start(kind, *args, config_text=None):
        directory = tmp_path / f"s{len(started)}"
        directory.mkdir()
        args = ["--dir", str(directory), "--enable-debug-command", "yes",
                *NO_SYNC_DELAY, *args]
        starter = start_vermilion if kind == "vermilion" else start_redis
        server = starter(directory, args, config_text=config_text)
        started.append(server)
        return server

    yield start
    stop_all(started)


def stop_all(started: list) -> None:
    """Stop servers in the reverse order of their start, resuming any left SIGSTOPped.
    Replicas (started after their master) go first: a master stopping with a replica
    attached waits for it (shutdown-timeout) when it lags or is mid-sync."""
    for server in reversed(started):
        if server.proc.poll() is None:
            try:
                os.kill(server.proc.pid, signal.SIGCONT)
            except OSError:
                pass
        server.stop()


@pytest.fixture(scope="session")
def vermilion_server(tmp_path_factory):
    server = start_vermilion(tmp_path_factory.mktemp("vermilion"),
                             ["--enable-debug-command", "yes"])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = start_redis(tmp_path_factory.mktemp("redis"), ["--enable-debug-command", "yes"])
    yield server
    server.stop()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def r(request, vermilion_server):
    """A redis-py client on the shared vermilion server, both protocols; db flushed."""
    client = vermilion_server.client(protocol=request.param)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def real(redis_server):
    """A redis-py client on the real redis-server (RESP2), flushed."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


class RawConnection:
    """A bare socket speaking bytes, to compare replies exactly (error strings, types)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def command(self, *args) -> bytes:
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.send(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        return self.read_reply()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_reply(self) -> bytes:
        """One complete reply, as the raw bytes the server sent."""
        line = self._line()
        out = line + b"\r\n"
        kind = line[:1]
        if kind in (b"$", b"=", b"!"):
            size = int(line[1:])
            if size >= 0:
                while len(self.buf) < size + 2:
                    self._fill()
                out += self.buf[: size + 2]
                self.buf = self.buf[size + 2:]
        elif kind in (b"*", b"~", b">", b"%", b"|"):
            count = int(line[1:])
            if kind in (b"%", b"|"):
                count *= 2
            for _ in range(max(count, 0)):
                out += self.read_reply()
        return out

    def close(self):
        self.sock.close()


@pytest.fixture
def raw(vermilion_server):
    conn = RawConnection(vermilion_server.port)
    conn.command("FLUSHALL")
    yield conn
    conn.close()


@pytest.fixture
def raw_real(redis_server):
    conn = RawConnection(redis_server.port)
    conn.command("FLUSHALL")
    yield conn
    conn.close()


# -- differential testing: the same commands on vermilion and on redis-server ---------------


def mask_integers(reply: bytes) -> bytes:
    """The reply with every RESP integer replaced by :N — for replies carrying values that
    move with the clock (stream idle times, delivery times)."""
    return re.sub(rb":\d+\r\n", b":N\r\n", reply)


def sort_lines(reply: bytes) -> bytes:
    """The reply's lines in sorted order — to compare arrays up to element order (KEYS,
    whose order is the hash table's)."""
    return b"\r\n".join(sorted(reply.split(b"\r\n")))


def as_args(command) -> list:
    """A command given as a string (split like a shell line: quotes group words) or as a
    sequence of arguments."""
    return shlex.split(command) if isinstance(command, str) else list(command)


class Differential:
    """Two raw connections, one to vermilion and one to the real redis-server, driven in
    step: every reply is compared byte for byte.

    diff(*args, mask=None)    one command on both; asserts identical replies; returns ours
    diff.same(*commands)      each command (a string or a sequence of arguments) on both
    diff.both_protocols(…)    diff.same in RESP2, then again in RESP3
    diff.mismatches(commands) all the commands run, the differing replies listed
    diff.read(count)          the next replies (pushes) read on both, compared
    diff.hello3()             both connections switched to RESP3 (diff.hello(proto): any)
    diff.mine, diff.real      each side, for asymmetric checks (diff.conns: both;
                              diff.vermilion_server, diff.redis_server: the servers)
    diff.pair(fn), equal(fn)  fn(server) on each server: the pair / asserted equal

    A mask (mask_integers, sort_lines, …) is applied to both replies before comparing:
    for values that legitimately differ between the two servers."""

    def __init__(self, mine, real, vermilion_server=None, redis_server=None):
        self.mine, self.real = mine, real
        self.conns = (mine, real)
        self.vermilion_server, self.redis_server = vermilion_server, redis_server

    def __call__(self, *args, mask=None) -> bytes:
        mine, theirs = self.mine.command(*args), self.real.command(*args)
        if mask is not None:
            assert mask(mine) == mask(theirs), args
        else:
            assert mine == theirs, args
        return mine

    def same(self, *commands, mask=None, compare_hello=True):
        """Each command on both servers, every reply byte-identical. With
        compare_hello=False, HELLO commands switch both connections' protocol without
        comparing their replies (they carry the client id)."""
        for command in commands:
            args = as_args(command)
            if not compare_hello and args[0] == "HELLO":
                self.mine.command(*args), self.real.command(*args)
            else:
                self(*args, mask=mask)

    def mismatches(self, commands) -> list:
        """Every command on both servers, none stopping the run: the (command, ours,
        theirs) triples whose replies differ (assert it is [] to see them all at once)."""
        out = []
        for command in commands:
            args = as_args(command)
            mine, theirs = self.mine.command(*args), self.real.command(*args)
            if mine != theirs:
                out.append((command, mine, theirs))
        return out

    def read(self, count=1):
        """The next `count` replies (pushes) each connection receives, compared."""
        for _ in range(count):
            mine, theirs = self.mine.read_reply(), self.real.read_reply()
            assert mine == theirs, (mine, theirs)

    def hello(self, proto):
        """Both connections switched to RESP `proto` (HELLO's reply has the client id:
        only its type is checked, a map in RESP3, an array in RESP2)."""
        kind = b"%" if int(proto) == 3 else b"*"
        for conn in self.conns:
            reply = conn.command("HELLO", proto)
            assert reply.startswith(kind), reply

    def hello3(self):
        self.hello(3)

    def both_protocols(self, *commands):
        """The same sequence in RESP2, then again (after FLUSHALL) in RESP3."""
        self.same(*commands)
        self.same("FLUSHALL")
        self.hello3()
        self.same(*commands)

    def pair(self, fn):
        """(fn(vermilion_server), fn(redis_server)), not compared: for checks of each."""
        return fn(self.vermilion_server), fn(self.redis_server)

    def equal(self, fn):
        """fn(server) on each server (a scenario over connections of its own): the
        results must be equal; returns vermilion's."""
        mine, theirs = self.pair(fn)
        assert mine == theirs, f"vermilion: {mine}\nredis:     {theirs}"
        return mine


@pytest.fixture
def diff(raw, raw_real, vermilion_server, redis_server):
    """A Differential over `raw` and `raw_real` (the same connections: a test may take
    those too); both servers flushed."""
    return Differential(raw, raw_real, vermilion_server, redis_server)


def local_session(config_values: dict | None = None):
    """A Session on a real Server object built in this process (no socket, no event
    loop), for tests that call command handlers directly: the server, its keyspace and
    its config are the real ones, only the network is left out."""
    from vermilion.config import Config
    from vermilion.server import Server
    from vermilion.session import Session

    config = Config()
    config.values.update(config_values or {})
    server = Server(config)
    return Session(server, 1)
