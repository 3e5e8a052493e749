"""vermilion check-rdb / check-aof [--fix] / rdb dump, on files written by real Redis."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import ServerProcess, require_binary

BIN = Path(sys.executable).parent / "vermilion"


def _redis_files(tmp_path):
    server = ServerProcess(require_binary("redis-server"), cwd=tmp_path)
    server.args = ["--dir", str(tmp_path), "--appendonly", "yes", "--appendfsync", "always"]
    server.start()
    c = server.client()
    c.set("s", "v", px=600_000)
    c.rpush("l", "a", "b")
    c.hset("h", mapping={"f": "v"})
    c.sadd("set", "1", "2")
    c.zadd("z", {"m": 2.5})
    c.save()
    server.stop()
    return tmp_path / "dump.rdb", tmp_path / "appendonlydir"


def _run(*args, **kw):
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, **kw)


def test_check_rdb_accepts_redis_file_and_reports_corruption(tmp_path):
    rdb, _ = _redis_files(tmp_path)
    ok = _run("check-rdb", rdb)
    assert ok.returncode == 0 and "RDB looks OK" in ok.stdout and "5 keys read" in ok.stdout
    data = bytearray(rdb.read_bytes())
    data[30] ^= 0x55
    bad = tmp_path / "bad.rdb"
    bad.write_bytes(bytes(data))
    out = _run("check-rdb", bad)
    assert out.returncode == 1 and "RDB ERROR DETECTED" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_rdb_dump_json_prints_every_key(tmp_path):
    rdb, _ = _redis_files(tmp_path)
    out = _run("rdb", "dump", rdb, "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = {row["key"]: row for row in map(json.loads, out.stdout.splitlines())}
    assert rows["s"]["type"] == "string" and rows["s"]["value"] == "v" and rows["s"]["expire_ms"]
    assert rows["l"]["value"] == ["a", "b"]
    assert rows["h"]["value"] == {"f": "v"}
    assert rows["set"]["value"] == ["1", "2"]
    assert rows["z"]["value"] == [["m", 2.5]]


def test_check_aof_finds_and_fixes_a_truncated_tail(tmp_path):
    _, aofdir = _redis_files(tmp_path)
    assert _run("check-aof", aofdir).returncode == 0
    incr = next(aofdir.glob("*.incr.aof"))
    good = incr.read_bytes()
    incr.write_bytes(good + b"*3\r\n$3\r\nSET\r\n$1\r\nx")
    out = _run("check-aof", aofdir)
    assert out.returncode == 1 and "--fix" in out.stdout
    refused = _run("check-aof", aofdir, "--fix", input="n\n")
    assert refused.returncode == 1 and len(incr.read_bytes()) > len(good)
    fixed = _run("check-aof", aofdir, "--fix", input="y\n")
    assert fixed.returncode == 0 and incr.read_bytes() == good
    # Real Redis's own checker agrees the fixed directory is valid.
    check = subprocess.run([require_binary("redis-check-aof"), str(aofdir / "appendonly.aof.manifest")],
                           capture_output=True, text=True)
    assert "is valid" in check.stdout, check.stdout
