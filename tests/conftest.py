"""Fixtures: real vermilion-server and real redis-server subprocesses on free loopback ports.

Nothing is mocked: every test talks TCP to a server process. The real redis-server 7.0
(Debian's package) must be installed; a missing binary fails the run, never skips.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
VERMILION = Path(sys.executable).parent / "vermilion-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
