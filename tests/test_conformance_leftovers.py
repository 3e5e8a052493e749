"""Small conformance fixes (issue 18), each beside real redis-server where it can be."""

import re
import socket
import subprocess
import time

import pytest

from conftest import VERMILION, require_binary, start_redis, start_vermilion
from replication_helpers import link_up, wait_until


def _wait_until(predicate, attempts=400):
    for _ in range(attempts):
        if predicate():
            return True
        time.sleep(0.025)
    return False


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_bgrewriteaof_inside_exec_is_scheduled(tmp_path, kind):
    """bgrewriteaofCommand(): inside EXEC (server.in_exec) the rewrite is scheduled, and
    the cron starts it once the transaction is over."""
    starter = start_vermilion if kind == "vermilion" else start_redis
    server = starter(tmp_path, ["--dir", str(tmp_path)])
    try:
        client = server.client(single_connection_client=True)
        client.execute_command("MULTI")
        client.execute_command("BGREWRITEAOF")  # +QUEUED
        assert client.execute_command("EXEC") == [
            b"Background append only file rewriting scheduled"]

        def rewrite_done():
            info = client.info("persistence")
            return (not info["aof_rewrite_scheduled"] and not info["aof_rewrite_in_progress"]
                    and info["aof_last_bgrewrite_status"] == "ok")
        assert _wait_until(rewrite_done)
    finally:
        server.stop()


@pytest.mark.parametrize("diskless", ["yes", "no"])
@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_total_forks_counts_the_full_sync_fork(servers, kind, diskless):
    """redisFork() counts every child in stat_total_forks, the replication's RDB too."""
    master_server = servers(kind, "--repl-diskless-sync", diskless)
    master = master_server.client()
    master.set("k", "v")
    assert master.info("stats")["total_forks"] == 0
    replica = servers("redis").client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: link_up(replica), what="the replica's link")
    wait_until(lambda: master.info("persistence")["rdb_bgsave_in_progress"] == 0,
               what="the sync's child to end")
    assert master.info("stats")["total_forks"] == 1


def _saved_rdb(tmp_path) -> bytes:
    """An RDB file redis-server saved: a few strings and a small hash."""
    server = start_redis(tmp_path, ["--dir", str(tmp_path)])
    try:
        client = server.client()
        for i in range(20):
            client.set(f"key:{i}", f"value-{i}" * 3)
        client.hset("hash", mapping={"a": "1", "b": "2"})
        client.save()
    finally:
        server.stop()
    return (tmp_path / "dump.rdb").read_bytes()


def _failed_start(binary, workdir, data: bytes) -> tuple[int, list[str]]:
    """Start a server on a damaged dump.rdb: its exit code, and what it printed from
    the first line about the failure on (log lines without their pid:role and time)."""
    workdir.mkdir()
    (workdir / "dump.rdb").write_bytes(data)
    done = subprocess.run([binary, "--port", "0", "--unixsocket", str(workdir / "s.sock"),
                           "--dir", str(workdir), "--save", ""],
                          cwd=workdir, capture_output=True, timeout=30)
    lines = [re.sub(r"^\d+:[A-Z] \d\d \w+ \d{4} [\d:.]+ [#*.-] ", "", line)
             for line in done.stdout.decode().splitlines()]
    start = next(i for i, line in enumerate(lines)
                 if line.startswith(("Short read", "Wrong RDB checksum", "Internal error",
                                     "Wrong signature")))
    return done.returncode, lines[start:]


@pytest.mark.parametrize("damage", ["truncated", "crc", "signature"])
def test_a_damaged_rdb_at_startup_is_reported_as_redis_does(tmp_path, damage):
    """loadDataFromDisk() -> rdbLoad() -> rdbReportError(): the error line, then the
    redis-check-rdb report on the file, and the exit."""
    data = _saved_rdb(tmp_path)
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "signature":  # no rdbReportError(): loadDataFromDisk()'s errno line
        data = b"RADIS" + data[5:]
    else:
        at = data.index(b"value-7")
        data = data[:at] + b"V" + data[at + 1:]
    redis_code, redis_lines = _failed_start(require_binary("redis-server"),
                                            tmp_path / "redis", data)
    code, lines = _failed_start(str(VERMILION), tmp_path / "vermilion", data)
    assert (code, lines) == (redis_code, redis_lines)
    assert code == 1


@pytest.mark.parametrize("load", ["swapdb", "disabled"])
@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_a_replica_encodes_what_it_loads_by_its_own_limits(servers, kind, load):
    """rdbLoadObject() on the replica converts a listpack past the replica's
    hash-max-listpack-entries / zset-max-listpack-entries, from a socket as from a file."""
    master_server = servers("redis", "--repl-diskless-sync", "yes")
    master = master_server.client()
    master.hset("hash", mapping={f"f{i}": i for i in range(10)})
    master.zadd("zset", {f"m{i}": i for i in range(10)})
    replica = servers(kind, "--repl-diskless-load", load, "--hash-max-listpack-entries", "4",
                      "--zset-max-listpack-entries", "4").client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: link_up(replica), what="the replica's link")
    assert master.object("encoding", "hash") == b"listpack"
    assert replica.object("encoding", "hash") == b"hashtable"
    assert replica.object("encoding", "zset") == b"skiplist"


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_a_refused_shutdown_keeps_listening(tmp_path, kind):
    """prepareForShutdown()/finishShutdown(): a final save that fails refuses the
    shutdown before any listener is closed; new connections are still accepted."""
    import redis
    workdir = tmp_path / "gone"
    workdir.mkdir()
    starter = start_vermilion if kind == "vermilion" else start_redis
    server = starter(tmp_path, ["--dir", str(workdir), "--enable-debug-command", "yes"])
    try:
        workdir.rmdir()  # the final save cannot create its temp file
        for _ in range(3):
            client = server.client()
            with pytest.raises(redis.ResponseError, match="Errors trying to SHUTDOWN"):
                client.shutdown(save=True)
            client.close()
        # A connection the kernel completed while the server was busy, before the
        # refused SHUTDOWN: still in the listener's backlog, accepted afterwards.
        with socket.create_connection(("127.0.0.1", server.port)) as busy:
            busy.sendall(b"DEBUG SLEEP 0.3\r\nSHUTDOWN SAVE\r\n")
            time.sleep(0.05)  # the server is inside DEBUG SLEEP
            with socket.create_connection(("127.0.0.1", server.port)) as waiting:
                waiting.sendall(b"PING\r\n")
                assert _read_until(busy, b"SHUTDOWN") .startswith(b"+OK\r\n-ERR Errors")
                assert _read_until(waiting, b"\r\n") == b"+PONG\r\n"
        assert server.client().ping()
        assert server.proc.poll() is None
    finally:
        server.stop()


def _read_until(sock, end: bytes) -> bytes:
    data = b""
    sock.settimeout(10)
    while end not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data
