"""Server commands and connection handling: CLIENT, SLOWLOG, LATENCY, MONITOR, DEBUG,
SHUTDOWN, TIME/LASTSAVE/ROLE/WAIT; maxclients, timeout, unix sockets, several binds,
graceful shutdown on SIGTERM, bounded memory for clients that never read, redis-cli.
Error replies are compared byte for byte with a real redis-server 7.0."""

import re
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import VERMILION, RawConnection, require_binary, start_vermilion

ERROR_CASES = [
    ("CLIENT", "SETNAME", "a b"), ("CLIENT", "LIST", "TYPE", "bogus"),
    ("CLIENT", "LIST", "ID", "abc"), ("CLIENT", "LIST", "ID", "0"), ("CLIENT", "LIST", "foo"),
    ("CLIENT", "LIST", "TYPE", "pubsub"), ("CLIENT", "KILL", "1.2.3.4:5"),
    ("CLIENT", "KILL", "ID", "999999"), ("CLIENT", "KILL", "ID", "x"),
    ("CLIENT", "KILL", "TYPE", "bogus"), ("CLIENT", "KILL", "SKIPME", "maybe"),
    ("CLIENT", "KILL", "USER", "nouser"), ("CLIENT", "KILL", "foo"),
    ("CLIENT", "KILL", "ADDR"), ("CLIENT", "KILL", "MAXAGE", "1"),
    ("CLIENT", "KILL", "LADDR", "1.1.1.1:1", "SKIPME", "no"),
    ("CLIENT", "KILL", "ID", "1", "TYPE"),
    ("CLIENT", "PAUSE", "abc"), ("CLIENT", "PAUSE", "-1"), ("CLIENT", "PAUSE", "10", "BOGUS"),
    ("CLIENT", "UNPAUSE"), ("CLIENT", "REPLY", "maybe"), ("CLIENT", "NO-EVICT", "maybe"),
    ("CLIENT", "NO-EVICT", "on"), ("CLIENT", "NO-EVICT", "off"), ("CLIENT", "GETREDIR"),
    ("CLIENT", "TRACKINGINFO"), ("CLIENT", "bogus"), ("CLIENT", "INFO", "x"),
    ("CLIENT", "HELP"), ("CLIENT",), ("CLIENT", "GETNAME"),
    ("SLOWLOG", "GET", "abc"), ("SLOWLOG", "GET", "-2"), ("SLOWLOG", "bogus"),
    ("SLOWLOG", "HELP"), ("SLOWLOG", "RESET"),
    ("LATENCY", "LATEST"), ("LATENCY", "HISTORY", "command"), ("LATENCY", "RESET"),
    ("LATENCY", "RESET", "foo", "command"), ("LATENCY", "GRAPH", "command"),
    ("LATENCY", "DOCTOR"), ("LATENCY", "bogus"), ("LATENCY", "HISTORY"), ("LATENCY", "HELP"),
    ("TIME", "x"), ("WAIT", "0", "0"), ("WAIT", "x", "0"), ("WAIT", "0", "-1"),
    ("WAIT", "0", "x"), ("WAIT", "1"), ("SHUTDOWN", "bogus"), ("SHUTDOWN", "ABORT"),
    ("SHUTDOWN", "NOSAVE", "SAVE"), ("SHUTDOWN", "ABORT", "NOW"), ("DEBUG", "bogus"),
    ("DEBUG", "SLEEP", "0"), ("DEBUG", "OBJECT", "nokey"), ("DEBUG", "SET-ACTIVE-EXPIRE", "1"),
    ("DEBUG",), ("DEBUG", "HELP"), ("MONITOR", "x"), ("INFO", "a", "b"), ("LASTSAVE", "x"),
]


def test_replies_and_errors_match_redis(raw, raw_real):
    for args in ERROR_CASES:
        assert raw.command(*args) == raw_real.command(*args), args


def test_resp3_replies_match_redis(raw, raw_real):
    raw.command("HELLO", 3)
    raw_real.command("HELLO", 3)
    for args in [("CLIENT", "TRACKINGINFO"), ("LATENCY", "LATEST"),
                 ("CLIENT", "LIST", "ID", "0"), ("SLOWLOG", "GET", "0")]:
        assert raw.command(*args) == raw_real.command(*args), args


@pytest.mark.parametrize("protocol", [2, 3])
def test_role_of_a_master_matches_redis_but_for_the_offset(raw, raw_real, protocol):
    # The shared servers' offsets depend on which replication tests ran before.
    raw.command("HELLO", protocol)
    raw_real.command("HELLO", protocol)
    offset = re.compile(rb":\d+\r\n")
    mine, theirs = raw.command("ROLE"), raw_real.command("ROLE")
    assert mine.startswith(b"*3\r\n$6\r\nmaster\r\n:"), mine
    assert offset.sub(b":N\r\n", mine) == offset.sub(b":N\r\n", theirs)


def _fields(line: bytes) -> list[bytes]:
    return [part.split(b"=", 1)[0] for part in line.split(b" ")]


def _payload(reply: bytes) -> bytes:
    header, rest = reply.split(b"\r\n", 1)
    data = rest[: int(header[1:])]
    return data[4:] if header.startswith(b"=") else data


def test_client_list_format_matches_redis(raw, raw_real):
    ours = _payload(raw.command("CLIENT", "LIST", "ID", raw.command("CLIENT", "ID")[1:-2]))
    theirs = _payload(raw_real.command("CLIENT", "LIST", "ID", raw_real.command("CLIENT", "ID")[1:-2]))
    assert ours.endswith(b"\n") and theirs.endswith(b"\n")
    assert _fields(ours.strip()) == _fields(theirs.strip())
    assert re.fullmatch(
        rb"id=\d+ addr=127\.0\.0\.1:\d+ laddr=127\.0\.0\.1:\d+ fd=\d+ name= age=\d+ idle=\d+ "
        rb"flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=\d+ qbuf-free=\d+ argv-mem=\d+ "
        rb"multi-mem=0 rbs=\d+ rbp=\d+ obl=0 oll=0 omem=0 tot-mem=\d+ events=r "
        rb"cmd=client\|list user=default redir=-1 resp=2\n", ours)


def test_client_info_and_names(r):
    assert r.client_getname() is None
    assert r.client_setname("worker-1")
    assert r.client_getname() in ("worker-1", b"worker-1")
    info = r.client_info()
    assert info["name"] == "worker-1"
    assert info["cmd"] == "client|info"
    assert int(info["id"]) == r.client_id()
    listed = [c for c in r.client_list() if int(c["id"]) == r.client_id()]
    assert listed and listed[0]["name"] == "worker-1"
    assert r.client_setname("")
    assert r.client_getname() is None


def test_client_list_type_and_ids(r):
    ids = {int(c["id"]) for c in r.client_list(_type="normal")}
    assert r.client_id() in ids
    assert r.client_list(_type="pubsub") == []
    assert [int(c["id"]) for c in r.client_list(client_id=[r.client_id()])] == [r.client_id()]


def test_client_kill_by_id_and_addr(vermilion_server):
    admin = RawConnection(vermilion_server.port)
    victim = RawConnection(vermilion_server.port)
    victim_id = victim.command("CLIENT", "ID")[1:-2]
    assert admin.command("CLIENT", "KILL", "ID", victim_id) == b":1\r\n"
    with pytest.raises((ConnectionError, OSError)):
        victim.command("PING")
    other = RawConnection(vermilion_server.port)
    other.command("PING")  # accepted and registered before the KILL
    addr = "127.0.0.1:%d" % other.sock.getsockname()[1]
    assert admin.command("CLIENT", "KILL", addr) == b"+OK\r\n"
    with pytest.raises((ConnectionError, OSError)):
        other.command("PING")
    admin.close()


def test_client_kill_skipme_no_closes_after_the_reply(vermilion_server):
    conn = RawConnection(vermilion_server.port)
    my_id = conn.command("CLIENT", "ID")[1:-2]
    assert conn.command("CLIENT", "KILL", "ID", my_id, "SKIPME", "no") == b":1\r\n"
    with pytest.raises((ConnectionError, OSError)):
        conn.command("PING")


def _send_and_collect(port: int, data: bytes, wait: float = 0.3) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        out = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out


def _inline(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode()


def test_client_reply_modes_match_redis(vermilion_server, redis_server):
    script = _inline("CLIENT REPLY SKIP", "SET a 1", "GET a", "CLIENT REPLY OFF", "GET a",
                     "CLIENT REPLY SKIP", "PING", "CLIENT REPLY ON", "ECHO back", "DEL a")
    ours = _send_and_collect(vermilion_server.port, script)
    theirs = _send_and_collect(redis_server.port, script)
    assert ours == theirs == b"$1\r\n1\r\n+OK\r\n$4\r\nback\r\n:1\r\n"


def test_client_pause_write_holds_writes_not_reads(vermilion_server):
    admin = RawConnection(vermilion_server.port)
    worker = RawConnection(vermilion_server.port)
    worker.command("SET", "pk", "1")
    assert admin.command("CLIENT", "PAUSE", "5000", "WRITE") == b"+OK\r\n"
    try:
        assert worker.command("GET", "pk") == b"$1\r\n1\r\n"
        worker.sock.settimeout(0.3)
        worker.send(b"*3\r\n$3\r\nSET\r\n$2\r\npk\r\n$1\r\n2\r\n*2\r\n$3\r\nGET\r\n$2\r\npk\r\n")
        with pytest.raises(socket.timeout):
            worker.read_reply()
    finally:
        assert admin.command("CLIENT", "UNPAUSE") == b"+OK\r\n"
    worker.sock.settimeout(5)
    # The held SET runs on unpause, then the GET queued behind it.
    assert worker.read_reply() == b"+OK\r\n"
    assert worker.read_reply() == b"$1\r\n2\r\n"
    admin.close()
    worker.close()


def test_client_pause_all_ends_after_its_timeout(vermilion_server):
    admin = RawConnection(vermilion_server.port)
    worker = RawConnection(vermilion_server.port)
    assert admin.command("CLIENT", "PAUSE", "400") == b"+OK\r\n"
    start = time.monotonic()
    assert worker.command("PING") == b"+PONG\r\n"
    assert time.monotonic() - start >= 0.3
    admin.close()
    worker.close()


def test_monitor_feed(vermilion_server):
    watcher = RawConnection(vermilion_server.port)
    assert watcher.command("MONITOR") == b"+OK\r\n"
    actor = RawConnection(vermilion_server.port)
    actor.command("SET", "mon key", "v\n1")
    line = watcher._line()
    port = actor.sock.getsockname()[1]
    assert re.fullmatch(rb'\+\d+\.\d{6} \[0 127\.0\.0\.1:%d\] "SET" "mon key" "v\\n1"' % port, line)
    flags = _payload(actor.command("CLIENT", "LIST"))
    assert b" flags=O " in flags
    watcher.close()
    actor.close()


def test_time_lastsave_role(r):
    seconds, micros = r.time()
    assert abs(seconds - time.time()) < 5 and 0 <= micros < 1_000_000
    assert isinstance(r.lastsave(), object)
    role, offset, replicas = r.execute_command("ROLE")
    # The offset is whatever earlier tests that attached to this server streamed.
    assert role in (b"master", "master") and offset >= 0 and replicas == []
    assert r.execute_command("WAIT", 0, 0) == 0


# -- dedicated servers ---------------------------------------------------------------------

def test_slowlog_records_and_resets(tmp_path):
    server = start_vermilion(tmp_path, ["--slowlog-log-slower-than", "0", "--slowlog-max-len", "3"])
    try:
        client = server.client()
        client.client_setname("slowpoke")
        client.slowlog_reset()
        client.set("k", "v" * 200)
        entries = client.slowlog_get(10)
        assert entries, entries
        newest = entries[0]
        assert newest["command"].startswith(b"SET k vvvv") and b"... (72 more bytes)" in newest["command"]
        assert newest["client_name"] == b"slowpoke"
        raw = RawConnection(server.port)
        reply = raw.command("SLOWLOG", "GET", "1")
        # The newest entry is redis-py's SLOWLOG GET 10: [id, time, µs, args, addr, name].
        assert re.fullmatch(rb"\*1\r\n\*6\r\n:\d+\r\n:\d+\r\n:\d+\r\n\*3\r\n\$7\r\nSLOWLOG\r\n"
                            rb"\$3\r\nGET\r\n\$2\r\n10\r\n\$15\r\n127\.0\.0\.1:\d+\r\n"
                            rb"\$8\r\nslowpoke\r\n", reply), reply
        for _ in range(5):
            client.ping()
        assert client.slowlog_len() == 3
        assert raw.command("SLOWLOG", "RESET") == b"+OK\r\n"
        # SLOWLOG RESET itself is logged after the reset.
        assert client.slowlog_len() <= 1
        raw.close()
    finally:
        server.stop()


def test_debug_is_denied_by_default(tmp_path):
    server = start_vermilion(tmp_path)
    try:
        raw = RawConnection(server.port)
        assert raw.command("DEBUG", "SLEEP", "0") == (
            b'-ERR DEBUG command not allowed. If the enable-debug-command option is set to '
            b'"local", you can run it from a local connection, otherwise you need to set this '
            b'option in the configuration file, and then restart the server.\r\n')
        raw.close()
    finally:
        server.stop()


def test_debug_local_allows_loopback(tmp_path):
    server = start_vermilion(tmp_path, ["--enable-debug-command", "local"])
    try:
        raw = RawConnection(server.port)
        assert raw.command("DEBUG", "SLEEP", "0") == b"+OK\r\n"
        assert raw.command("SET", "n", "123") == b"+OK\r\n"
        assert b"encoding:int" in raw.command("DEBUG", "OBJECT", "n")
        assert raw.command("DEBUG", "POPULATE", "10") == b"+OK\r\n"
        assert raw.command("DBSIZE") == b":11\r\n"
        raw.close()
    finally:
        server.stop()


def _wait_exit(proc, timeout=10.0) -> int:
    return proc.wait(timeout)


def test_sigterm_exits_zero_and_removes_the_pidfile(tmp_path):
    pidfile = tmp_path / "v.pid"
    server = start_vermilion(tmp_path, ["--pidfile", str(pidfile)])
    assert pidfile.read_text().strip() == str(server.proc.pid)
    server.proc.send_signal(signal.SIGTERM)
    assert _wait_exit(server.proc) == 0
    assert not pidfile.exists()
    server.log.close()
    log = server.log_path.read_text()
    assert "Received SIGTERM scheduling shutdown..." in log
    assert "Redis is now ready to exit, bye bye..." in log


def test_shutdown_command(tmp_path):
    pidfile = tmp_path / "v.pid"
    server = start_vermilion(tmp_path, ["--pidfile", str(pidfile)])
    raw = RawConnection(server.port)
    raw.send(b"SHUTDOWN NOSAVE\r\n")
    with pytest.raises((ConnectionError, OSError)):
        raw.read_reply()
    assert _wait_exit(server.proc) == 0
    assert not pidfile.exists()
    server.log.close()
    log = server.log_path.read_text()
    assert "User requested shutdown..." in log
    assert re.search(r"^\d+:M \d\d \w{3} \d{4} [\d:.]+ # Redis is now ready to exit, bye bye\.\.\.$",
                     log, re.M)


def test_startup_log_lines(tmp_path):
    server = start_vermilion(tmp_path)
    try:
        log = server.log_path.read_text()
        assert re.search(r"^\d+:C \d\d \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3} # oO0OoO0OoO0Oo Redis is "
                         r"starting oO0OoO0OoO0Oo$", log, re.M)
        assert "Redis version=7.0.15, bits=64" in log
        assert f"Running mode=standalone, port={server.port}." in log
        assert re.search(r"^\d+:M .* \* Ready to accept connections$", log, re.M)
    finally:
        server.stop()


def test_maxclients(tmp_path):
    server = start_vermilion(tmp_path, ["--maxclients", "2"])
    try:
        first = RawConnection(server.port)
        second = RawConnection(server.port)
        third = RawConnection(server.port)
        assert third._line() == b"-ERR max number of clients reached"
        with pytest.raises((ConnectionError, OSError)):
            third._fill()
        assert first.command("PING") == b"+PONG\r\n"
        assert b"rejected_connections:1\r\n" in first.command("INFO", "stats")
        first.close()
        second.close()
    finally:
        server.stop()


def test_idle_timeout_closes_clients(tmp_path):
    server = start_vermilion(tmp_path, ["--timeout", "1"])
    try:
        idle = RawConnection(server.port)
        idle.command("PING")
        time.sleep(2.2)
        with pytest.raises((ConnectionError, OSError)):
            idle.command("PING")
    finally:
        server.stop()


def test_bind_several_addresses(tmp_path):
    server = start_vermilion(tmp_path, ["--bind", "127.0.0.1", "127.0.0.2"])
    try:
        for host in ("127.0.0.1", "127.0.0.2"):
            with socket.create_connection((host, server.port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                assert sock.recv(64) == b"+PONG\r\n"
    finally:
        server.stop()


def _start_unix_only(tmp_path: Path, extra=()) -> tuple[subprocess.Popen, Path]:
    path = tmp_path / "v.sock"
    log = open(tmp_path / "unix.log", "wb")
    proc = subprocess.Popen([str(VERMILION), "--port", "0", "--unixsocket", str(path),
                             "--unixsocketperm", "700", "--save", "", *extra],
                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 10
    while not path.exists():
        assert proc.poll() is None and time.time() < deadline, (tmp_path / "unix.log").read_text()
        time.sleep(0.05)
    return proc, path


def test_unix_socket_only(tmp_path):
    proc, path = _start_unix_only(tmp_path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(path))
            sock.sendall(b"CLIENT LIST\r\n")
            time.sleep(0.2)
            reply = sock.recv(65536)
        assert f"addr={path}:0 laddr={path}:0 ".encode() in reply
        assert b" flags=U " in reply
        cli = subprocess.run([require_binary("redis-cli"), "-s", str(path), "PING"],
                             capture_output=True, timeout=10)
        assert cli.stdout == b"PONG\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert not path.exists()


def test_redis_cli_works(vermilion_server):
    cli = require_binary("redis-cli")

    def run(*args):
        return subprocess.run([cli, "-p", str(vermilion_server.port), *args],
                              capture_output=True, timeout=10).stdout

    assert run("PING") == b"PONG\n"
    assert run("SET", "cli-key", "hello world") == b"OK\n"
    assert run("GET", "cli-key") == b"hello world\n"
    assert run("--no-raw", "GET", "nokey") == b"(nil)\n"
    assert b"redis_version:7.0.15" in run("INFO", "server")
    assert run("-3", "PING") == b"PONG\n"


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_client_that_never_reads_does_not_grow_memory(tmp_path):
    """Pipelined GETs of a 100 KB value, replies never read: the server stops reading
    from the client once its replies back up, so its memory stays bounded."""
    server = start_vermilion(tmp_path)
    try:
        setup = RawConnection(server.port)
        setup.command("SET", "big", "x" * 100_000)
        before = _rss_kb(server.proc.pid)
        request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 1000
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 3
        # Up to 50,000 GETs (5 GB of replies if they all were buffered).
        while sent < 50 * len(request) and time.monotonic() < deadline:
            try:
                sent += sock.send(request)
            except BlockingIOError:
                time.sleep(0.01)
        time.sleep(0.5)  # let the server work through whatever it has read
        growth_mb = (_rss_kb(server.proc.pid) - before) / 1024
        assert growth_mb < 100, growth_mb
        assert setup.command("PING") == b"+PONG\r\n"
        sock.close()
        # A client that does read gets every reply of a long pipeline, in order.
        client = server.client()
        pipe = client.pipeline(transaction=False)
        for i in range(300):
            pipe.get("big")
            pipe.echo(str(i))
        replies = pipe.execute()
        assert replies[::2] == [b"x" * 100_000] * 300
        assert replies[1::2] == [str(i).encode() for i in range(300)]
        setup.close()
    finally:
        server.stop()


def test_latency_monitor_tracks_slow_commands(tmp_path):
    server = start_vermilion(tmp_path, ["--latency-monitor-threshold", "5",
                                        "--enable-debug-command", "yes"])
    try:
        raw = RawConnection(server.port)
        assert raw.command("LATENCY", "LATEST") == b"*0\r\n"
        assert raw.command("LATENCY", "DOCTOR").startswith(b"$") and b"no latency spike" in \
            raw.command("LATENCY", "DOCTOR")
        assert raw.command("DEBUG", "SLEEP", "0.02") == b"+OK\r\n"
        latest = raw.command("LATENCY", "LATEST")
        match = re.fullmatch(rb"\*1\r\n\*4\r\n\$7\r\ncommand\r\n:(\d+)\r\n:(\d+)\r\n:(\d+)\r\n", latest)
        assert match, latest
        assert abs(int(match.group(1)) - time.time()) < 5 and int(match.group(2)) >= 20
        assert re.fullmatch(rb"\*1\r\n\*2\r\n:\d+\r\n:\d+\r\n", raw.command("LATENCY", "HISTORY", "command"))
        assert b"command - high" in raw.command("LATENCY", "GRAPH", "command")
        assert b"1. command: 1 latency spikes" in raw.command("LATENCY", "DOCTOR")
        assert raw.command("LATENCY", "RESET", "command") == b":1\r\n"
        assert raw.command("LATENCY", "LATEST") == b"*0\r\n"
        raw.close()
    finally:
        server.stop()


def test_output_buffer_limits_close_the_client(monkeypatch):
    """checkClientOutputBufferLimits() in-process: a hard limit closes at once, a soft
    limit only after its seconds have passed while still over it."""
    from vermilion.connection import Connection
    from vermilion.config import Config
    from vermilion.server import Server

    used = {"bytes": 0}
    aborted = []

    class Probe(Connection):  # a Connection has __slots__: override the methods in a subclass
        def output_buffer_size(self):
            return used["bytes"]

        def abort(self):
            aborted.append(True)

    server = Server(Config())
    client = Probe(server)
    server.obuf_limits["normal"] = (10_000, 1_000, 1)
    used["bytes"] = 5_000
    server.check_output_limits(client)
    assert not aborted and client.obuf_soft_since  # over soft: the clock starts
    client.obuf_soft_since -= 2  # ... and two seconds later it is still over
    server.check_output_limits(client)
    assert aborted == [True]
    aborted.clear()
    used["bytes"] = 20_000
    client.obuf_soft_since = 0
    server.check_output_limits(client)
    assert aborted == [True]
    client.flags.add("P")
    server.obuf_limits["pubsub"] = (0, 0, 0)
    aborted.clear()
    server.check_output_limits(client)
    assert aborted == []


def test_monitor_hides_admin_commands_and_passwords_like_redis(vermilion_server, redis_server):
    def feed(port: int) -> list[bytes]:
        watcher = RawConnection(port)
        assert watcher.command("MONITOR") == b"+OK\r\n"
        actor = RawConnection(port)
        for args in (("SET", "a", "b"), ("AUTH", "x"), ("HELLO", "2", "AUTH", "default", "pw"),
                     ("CLIENT", "LIST"), ("DEBUG", "SLEEP", "0"), ("INFO", "server"),
                     ("NOSUCH",), ("GET",), ("ECHO", "done")):
            actor.command(*args)
        lines = []
        while not lines or b'"done"' not in lines[-1]:
            line = watcher._line()
            lines.append(re.sub(rb"^\+\d+\.\d+ \[0 127\.0\.0\.1:\d+\] ", b"", line))
        watcher.close()
        actor.close()
        return lines

    assert feed(vermilion_server.port) == feed(redis_server.port)


def test_debug_digest_matches_redis(raw, raw_real):
    """debug.c's dataset digest: same data, same digest as the real server."""
    setup = [("DEBUG", "DIGEST"), ("SET", "s", "hello"), ("SET", "n", "123"),
             ("RPUSH", "l", "a", "b", "1"), ("SADD", "st", "x", "y"),
             ("HSET", "h", "f", "v", "g", "2"), ("ZADD", "z", "0.1", "m", "2", "n"),
             ("SET", "e", "1", "EX", "100"), ("SELECT", "3"), ("SET", "k3", "v")]
    for args in setup:
        assert raw.command(*args) == raw_real.command(*args), args
    for args in [("DEBUG", "DIGEST"), ("DEBUG", "DIGEST-VALUE", "k3", "nokey"),
                 ("SELECT", "0"), ("DEBUG", "DIGEST-VALUE", "s", "n", "l", "st", "h", "z", "e")]:
        assert raw.command(*args) == raw_real.command(*args), args
    raw.command("FLUSHALL")
    raw_real.command("FLUSHALL")


def test_client_list_counts_the_running_command_like_redis(raw, raw_real):
    """introspection.tcl: CLIENT LIST shows qbuf=26 and the argv memory of itself."""
    for conn in (raw, raw_real):
        line = _payload(conn.command("CLIENT", "LIST"))
        assert b" qbuf=26 " in line and b" argv-mem=10 " in line, line
        line = _payload(conn.command("CLIENT", "INFO"))
        assert b" qbuf=26 " in line and b" argv-mem=10 " in line, line


def test_latency_histogram_shape_matches_redis(raw, raw_real):
    def shape(reply: bytes) -> bytes:
        # Bucket bounds and counts depend on timings: compare the structure only.
        return re.sub(rb"(histogram_usec\r\n)[*%]\d+\r\n(:\d+\r\n)+", rb"\1...", reply)

    for conn in (raw, raw_real):
        conn.command("CONFIG", "RESETSTAT")
        conn.command("SET", "a", "b")
        conn.command("SET", "a", "b")
        conn.command("CONFIG", "SET", "maxmemory", "0")
    for args in (("LATENCY", "HISTOGRAM", "set", "nosuch", "config|set"),
                 ("LATENCY", "HISTOGRAM", "get")):
        ours, theirs = raw.command(*args), raw_real.command(*args)
        assert shape(ours) == shape(theirs), args
    # A container stands for its called subcommands (in hash order in Redis).
    names = [set(re.findall(rb"\$\d+\r\n(config\|[a-z]+)\r\n", conn.command("LATENCY", "HISTOGRAM", "config")))
             for conn in (raw, raw_real)]
    assert names[0] == names[1] and b"config|set" in names[0]
    assert re.search(rb"\$5\r\ncalls\r\n:2\r\n\$14\r\nhistogram_usec\r\n\*2\r\n:\d+\r\n:2\r\n",
                     raw.command("LATENCY", "HISTOGRAM", "set"))


def test_the_process_title_follows_proc_title_template_like_redis(tmp_path):
    """redisSetProcTitle(): what ps shows is proc-title-template expanded, at start-up
    and after CONFIG SET; a template with an unknown variable is refused."""
    import redis as redis_py
    from conftest import side_by_side

    def run(server):
        def title() -> list[str]:
            # Each server's own port and program name made alike, the rest compared.
            words = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes().rstrip(b"\0")
            words = words.decode().replace(str(server.port), "PORT").split(" ")
            return [Path(w).name.replace("vermilion", "redis") if w.startswith("/") else w
                    for w in words]

        client = redis_py.Redis(port=server.port)
        default = title()
        client.config_set("proc-title-template", "TEST {title} {listen-addr} {port} "
                                                 "{tls-port} {unixsocket} {config-file}")
        custom = title()
        with pytest.raises(redis_py.ResponseError, match="template format is invalid"):
            client.config_set("proc-title-template", "{invalid-var}")
        return default, custom, title()

    mine, theirs = side_by_side(tmp_path, run)
    assert mine == theirs
    assert mine[0] == ["redis-server", "127.0.0.1:PORT"]
    assert mine[1] == mine[2] == ["TEST", "redis-server", "127.0.0.1:PORT", "PORT", "0", "", "-"]
