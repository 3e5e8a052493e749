"""Golden files: old-format RDB files and what real Redis 7.0 loads from them (tests/data)."""

import json
import random
import shutil
from pathlib import Path

import pytest

from conftest import ServerProcess, VERMILION
from vermilion.keyspace.database import Database
from vermilion.persistence import rdb

DATA = Path(__file__).parent / "data"


def _contents(c):
    out = {}
    for key in sorted(c.keys("*")):
        kind = c.type(key).decode()
        if kind == "list":
            v = [x.decode("latin-1") for x in c.lrange(key, 0, -1)]
        elif kind == "hash":
            v = {k.decode("latin-1"): x.decode("latin-1") for k, x in c.hgetall(key).items()}
        elif kind == "set":
            v = sorted(x.decode("latin-1") for x in c.smembers(key))
        elif kind == "zset":
            v = [[m.decode("latin-1"), s] for m, s in c.zrange(key, 0, -1, withscores=True)]
        else:
            v = c.get(key).decode("latin-1")
        out[key.decode("latin-1")] = {"type": kind, "value": v, "expires": c.ttl(key) > 0}
    return out


@pytest.mark.parametrize("name", ["encodings-v6", "encodings-v9"])
def test_golden_file_loads_as_redis_loaded_it(tmp_path, name):
    shutil.copy(DATA / f"{name}.rdb", tmp_path / "dump.rdb")
    server = ServerProcess(VERMILION, cwd=tmp_path)
    server.args = ["--dir", str(tmp_path)]
    server.start()
    try:
        assert _contents(server.client()) == json.loads((DATA / f"{name}.json").read_text())
    finally:
        server.stop()


@pytest.mark.parametrize("checksum", [True, False])
def test_corrupted_files_fail_cleanly(checksum):
    """Cut at random offsets or with bytes flipped, a file is refused with RDBError —
    never another exception, never a half-loaded keyspace."""
    original = (DATA / "encodings-v9.rdb").read_bytes()
    if not checksum:  # a zero CRC disables the check, so the parser itself is exercised
        original = original[:-8] + b"\0" * 8
    rng = random.Random(1234)
    for _ in range(400):
        data = bytearray(original)
        if rng.random() < 0.5:
            data = data[: rng.randrange(len(data) - 8)]
        else:
            for _ in range(rng.randint(1, 4)):
                pos = rng.randrange(9, len(data) - 9)
                data[pos] = rng.randrange(256)
        dbs = [Database(i) for i in range(16)]
        try:
            rdb.load_snapshot(bytes(data), dbs)
        except rdb.RDBError:
            assert all(not db.data for db in dbs)
