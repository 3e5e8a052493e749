"""What the stress scripts share: a server subprocess that can be SIGKILLed with its
forked children and restarted on the same directory, and a bare RESP client.

Not pytest fixtures (tests/conftest.py has those): the scripts run for minutes under
`make crash-loop` / `make fuzz`, and tests/test_crash_loop.py and tests/test_fuzz.py run
short versions of them through the same code.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import hiredis

ROOT = Path(__file__).resolve().parent.parent.parent
VERMILION = Path(sys.executable).parent / "vermilion-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_binary(name: str) -> str:
    """'vermilion' or 'redis' -> the executable."""
    if name == "vermilion":
        return str(VERMILION)
    path = shutil.which("redis-server")
    if path is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    return path


def rss_kb(pid: int) -> int:
    """Resident set size of a process, in KB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """A vermilion-server or redis-server on loopback with `dir` = workdir. Each start
    takes a fresh port and appends to one log file (a marker line per start), so the
    log of a whole crash loop reads in order."""

    def __init__(self, binary: str, workdir: Path, args=()):
        self.binary = binary
        self.workdir = Path(workdir)
        self.args = list(args)
        self.log_path = self.workdir / "server.log"
        self.proc = None
        self.port = None
        self.starts = 0

    def start(self, timeout: float = 60.0) -> "Server":
        self.port = free_port()
        self.starts += 1
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.workdir), "--save", "", *self.args]
        with open(self.log_path, "ab") as log:
            log.write(b"==== start %d: %s\n" % (self.starts, " ".join(argv).encode()))
            log.flush()
            # Its own process group: kill9() takes the forked BGSAVE/BGREWRITEAOF child
            # down with the server, as the end of a container (or an OOM kill) does.
            self.proc = subprocess.Popen(argv, cwd=self.workdir, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerDied(f"{self.binary} exited with {self.proc.returncode} at start "
                                 f"{self.starts}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.02)
        self.kill9()
        raise ServerDied(f"{self.binary} did not answer PING within {timeout} s:\n"
                         f"{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        self.kill9()  # and any child left behind

    def rss_kb(self) -> int:
        return rss_kb(self.proc.pid) if self.alive() else 0

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class ServerDied(Exception):
    pass


class Conn:
    """A blocking RESP connection: hiredis frames the replies, error replies come back
    as hiredis.ReplyError values (not raised), a dead server raises ConnectionError.
    No retries and no reconnects, unlike redis-py: a write that got no reply must stay
    'in flight', never be sent twice."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader()

    def send(self, commands) -> None:
        self.sock.sendall(b"".join(hiredis.pack_command(tuple(argv)) for argv in commands))

    def read(self):
        while True:
            reply = self.reader.gets()
            if reply is not False:
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by the server")
            self.reader.feed(data)

    def pipeline(self, commands) -> list:
        self.send(commands)
        return [self.read() for _ in commands]

    def call(self, *argv):
        return self.pipeline([argv])[0]

    def close(self) -> None:
        self.sock.close()
