"""The multi-part AOF: no acknowledged write lost to kill -9 with appendfsync always,
and the appendonlydir exchanged with the real redis-server both ways."""

import signal
import time

import pytest

from conftest import ServerProcess, VERMILION, require_binary


def _start(binary, workdir, *args):
    server = ServerProcess(binary, cwd=workdir)
    server.args = ["--dir", str(workdir), "--appendonly", "yes", *args]
    return server.start()


def _vermilion(workdir, *args):
    return _start(VERMILION, workdir, *args)


def _redis(workdir, *args):
    return _start(require_binary("redis-server"), workdir, *args)


def _kill9(server):
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    server.log.close()


def test_kill9_loses_no_acknowledged_write(tmp_path):
    ours = _vermilion(tmp_path, "--appendfsync", "always")
    c = ours.client()
    acknowledged = {}
    for i in range(300):
        key = f"k{i % 50}"
        c.set(key, i)
        acknowledged[key] = str(i).encode()
    c.incrbyfloat("float", "2.5")
    c.set("ttl", "v", ex=1000)
    _kill9(ours)
    again = _vermilion(tmp_path)
    try:
        c = again.client()
        assert {k: c.get(k) for k in acknowledged} == acknowledged
        assert c.get("float") == b"2.5"
        assert 0 < c.pttl("ttl") <= 1_000_000
    finally:
        again.stop()


def test_redis_loads_vermilion_appendonlydir(tmp_path):
    ours = _vermilion(tmp_path, "--appendfsync", "always")
    c = ours.client()
    c.set("before-rewrite", "1")
    c.execute_command("BGREWRITEAOF")
    deadline = time.time() + 10
    while len(list((tmp_path / "appendonlydir").glob("*.base.rdb"))) != 1 or \
            "seq 2 type b" not in (tmp_path / "appendonlydir" / "appendonly.aof.manifest").read_text():
        assert time.time() < deadline, "rewrite did not finish"
        time.sleep(0.05)
    c.set("after-rewrite", "2")
    c.execute_command("SELECT", "4")
    c.execute_command("SET", "in-db-4", "x")
    ours.stop()
    real = _redis(tmp_path)
    try:
        c = real.client()
        assert c.get("before-rewrite") == b"1" and c.get("after-rewrite") == b"2"
        c.execute_command("SELECT", "4")
        assert c.execute_command("GET", "in-db-4") == b"x"
    finally:
        real.stop()


def test_vermilion_loads_redis_appendonlydir(tmp_path):
    real = _redis(tmp_path, "--appendfsync", "always")
    c = real.client()
    c.set("a", "1")
    c.set("b", "x" * 500, px=600_000)
    c.incrbyfloat("f", "0.1")
    c.append("a", "23")
    real.stop()
    ours = _vermilion(tmp_path)
    try:
        c = ours.client()
        assert c.get("a") == b"123" and c.get("b") == b"x" * 500
        assert c.get("f") == b"0.1"
        assert 0 < c.pttl("b") <= 600_000
    finally:
        ours.stop()


def test_truncated_incr_file_loads_with_aof_load_truncated(tmp_path):
    ours = _vermilion(tmp_path, "--appendfsync", "always")
    c = ours.client()
    c.set("complete", "yes")
    _kill9(ours)
    incr = next((tmp_path / "appendonlydir").glob("*.incr.aof"))
    with open(incr, "ab") as f:
        f.write(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf")  # a write cut by a crash
    again = _vermilion(tmp_path)
    try:
        assert again.client().get("complete") == b"yes"
        assert "truncating" in again.log_path.read_text()
    finally:
        again.stop()
