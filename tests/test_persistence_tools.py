"""vermilion check-rdb / check-aof [--fix] / rdb dump, on files written by real Redis:
the checks print what redis-check-rdb / redis-check-aof print for the same files, intact
or damaged, and exit with the same codes; vermilion-server refuses a damaged RDB saying
where it is damaged."""

import json
import random
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ServerProcess, free_port, require_binary, start_in_dir
from vermilion.keyspace.database import Database
from vermilion.persistence import rdb as rdb_format

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


# -- the same reports as redis-check-rdb / redis-check-aof, on files real Redis wrote -------

LOG_PREFIX = re.compile(rb"^\d+:C \d\d \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3} ", re.M)


def _normalised(report: bytes) -> bytes:
    """serverLog's "pid:C date time" prefix (the only per-run text) made constant."""
    return LOG_PREFIX.sub(b"<pid>:C <time> ", report)


def _both(tool: str, target: Path, *args, stdin: bytes | None = None):
    """(redis-check-X's report and exit code, vermilion check-X's), each run from the
    target's directory on the same relative name."""
    theirs = subprocess.run([require_binary(f"redis-check-{tool}"), *args, target.name],
                            cwd=target.parent, capture_output=True, input=stdin, timeout=60)
    ours = subprocess.run([str(BIN), f"check-{tool}", target.name, *args], cwd=target.parent,
                          capture_output=True, input=stdin, timeout=60)
    assert b"Traceback" not in ours.stderr, ours.stderr.decode()
    return ((_normalised(theirs.stdout), theirs.returncode),
            (_normalised(ours.stdout), ours.returncode))


def _assert_same_report(tool: str, target: Path, *args, stdin: bytes | None = None):
    """Both tools' reports on target, asserted the same: (the report, the exit code)."""
    theirs, ours = _both(tool, target, *args, stdin=stdin)
    assert ours[0].decode(errors="replace") == theirs[0].decode(errors="replace")
    assert ours[1] == theirs[1]
    return theirs


@pytest.fixture(scope="module")
def redis_rdb(tmp_path_factory):
    """A dump.rdb real Redis wrote, with every type and encoding it saves."""
    workdir = tmp_path_factory.mktemp("rdb")
    server = start_in_dir(require_binary("redis-server"), workdir)
    c = server.client()
    c.set("k", "hello world value")
    c.set("n", 12345)
    c.set("compressed", "abc" * 100)
    c.set("t", "v", ex=10**8)
    c.rpush("list", "a", "b", 3)
    c.rpush("biglist", *[f"element-{i}" * 5 for i in range(300)])
    c.hset("h", mapping={"field": "value", "g": 2})
    c.hset("bighash", mapping={f"f{i}": "v" * 80 for i in range(10)})
    c.sadd("intset", 1, 2, 3)
    c.sadd("set", *[f"m{i}" for i in range(600)])
    c.zadd("z", {"member": 2.5})
    c.zadd("bigz", {f"m{i}": i for i in range(200)})
    c.xadd("stream", {"a": "1"})
    c.xgroup_create("stream", "group", id="0")
    c.xreadgroup("group", "alice", {"stream": ">"})
    c.save()
    server.stop()
    return (workdir / "dump.rdb").read_bytes()


def _damaged(tmp_path, data: bytes, fix_checksum: bool = False) -> Path:
    if fix_checksum:  # the damage alone, behind a checksum that matches it
        data = data[:-8] + struct.pack("<Q", rdb_format.CRC64.calc(data[:-8]))
    path = tmp_path / "dump.rdb"
    path.write_bytes(data)
    return path


def _after(data: bytes, marker: bytes, skip: int = 0) -> int:
    return data.index(marker) + len(marker) + skip


DAMAGE = {
    "intact": lambda d: (d, False),
    "truncated-in-a-value": lambda d: (d[: _after(d, b"\x00\x01k") + 5], False),
    "truncated-in-a-key": lambda d: (d[: _after(d, b"bighash") - 3], False),
    "truncated-in-the-checksum": lambda d: (d[:-3], False),
    "truncated-after-the-header": lambda d: (d[:9], False),
    "value-byte-flipped": lambda d: (_flip(d, _after(d, b"hello wor")), False),
    "string-length-flipped": lambda d: (_flip(d, _after(d, b"\x00\x01k"), 0x30), False),
    "hash-listpack-length-flipped": lambda d: (_flip(d, _after(d, b"\x10\x01h"), 0x05), False),
    "listpack-entry-damaged": lambda d: (_flip(d, _after(d, b"field"), 0x7F), True),
    "stream-entry-flags-damaged": lambda d: (_flip(d, _after(d, b"stream", 36), 0x02), True),
    "set-length-huge": lambda d: (d.replace(b"\x02\x03set", b"\x02\x03set\x81\x10" + b"\0" * 7, 1),
                                  True),
    "checksum-wrong": lambda d: (_flip(d, len(d) - 1), False),
    "checksum-zero": lambda d: (d[:-8] + b"\0" * 8, False),
}


def _flip(data: bytes, at: int, mask: int = 0x01) -> bytes:
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_check_rdb_reports_as_redis_check_rdb(tmp_path, redis_rdb, damage):
    data, fix_checksum = DAMAGE[damage](redis_rdb)
    assert damage == "intact" or data != redis_rdb
    path = _damaged(tmp_path, data, fix_checksum)
    report, code = _assert_same_report("rdb", path)
    assert (code == 0) == (b"RDB looks OK" in report) == (damage in ("intact", "checksum-zero"))


def test_check_rdb_of_a_missing_file(tmp_path):
    _assert_same_report("rdb", tmp_path / "nothing.rdb")


def test_server_refuses_a_corrupt_rdb_naming_key_type_and_offset(tmp_path, redis_rdb):
    """vermilion-server exits non-zero on a damaged dump.rdb, leaves it as it was, and
    its log names what redis-check-rdb names: the key, its type, the offset."""
    cases = {
        "truncated": (redis_rdb[: _after(redis_rdb, b"\x00\x01k") + 5], False,
                      [b"Unexpected EOF reading RDB file", b"Reading key 'k'",
                       b"Reading type 0 (string)"]),
        "listpack": (_flip(redis_rdb, _after(redis_rdb, b"\x10\x01h"), 0x05), False,
                     [b"Reading key 'h'", b"Reading type 16 (hash-listpack)"]),
        "checksum": (_flip(redis_rdb, len(redis_rdb) - 1), False,
                     [b"Wrong RDB checksum expected: (", b"RDB CRC error"]),
    }
    for name, (data, fix_checksum, expected) in cases.items():
        workdir = tmp_path / name
        workdir.mkdir()
        path = _damaged(workdir, data, fix_checksum)
        before = path.read_bytes()
        their_report = subprocess.run([require_binary("redis-check-rdb"), str(path)],
                                      capture_output=True).stdout
        # The offset of the error block (not of the progress lines before it).
        offset = re.search(rb"\[offset (\d+)\] (?!Checking|AUX|Selecting)", their_report)
        server = subprocess.run(
            [str(Path(sys.executable).parent / "vermilion-server"), "--port", str(free_port()),
             "--bind", "127.0.0.1", "--dir", str(workdir), "--save", ""],
            capture_output=True, timeout=60)
        log = server.stdout + server.stderr
        assert server.returncode != 0, log
        assert path.read_bytes() == before
        assert b"[offset %s]" % offset.group(1) in log, (log, their_report)
        for text in expected:
            assert text in log, (text, log)


@pytest.fixture(scope="module")
def redis_aofs(tmp_path_factory):
    """AOFs real Redis wrote, as {layout: {file name: bytes}}: "rdb-base" (its default:
    an RDB base file, then an incr file), "aof-base" (aof-use-rdb-preamble no, the incr
    records split over two incr files, as a failed rewrite leaves them) and "old-style"
    (one file: an RDB preamble, then the commands)."""
    layouts = {}
    for layout, preamble in (("rdb-base", "yes"), ("aof-base", "no")):
        workdir = tmp_path_factory.mktemp(layout)
        server = start_in_dir(require_binary("redis-server"), workdir, "--appendonly", "yes",
                              "--aof-use-rdb-preamble", preamble, "--appendfsync", "always")
        c = server.client()
        c.set("before", "rewrite")
        c.hset("h", mapping={"f": "v"})
        c.bgrewriteaof()
        _wait_rewrite(c)
        for i in range(6):
            c.set(f"k{i}", "v" * i)
        pipe = c.pipeline(transaction=True)
        pipe.incr("counter")
        pipe.rpush("list", "a", "b")
        pipe.execute()
        c.set("last", "value")
        server.stop()
        aofdir = workdir / "appendonlydir"
        layouts[layout] = {p.name: p.read_bytes() for p in aofdir.iterdir()}
    files = layouts["aof-base"]
    incr = next(name for name in files if name.endswith(".incr.aof"))
    data = files.pop(incr)
    cut = data.index(b"*3\r\n$3\r\nSET\r\n$2\r\nk3")
    seq = int(incr.split(".")[2])
    second = incr.replace(f".{seq}.incr", f".{seq + 1}.incr")
    files[incr], files[second] = data[:cut], data[cut:]
    manifest = next(name for name in files if name.endswith(".manifest"))
    files[manifest] += f"file {second} seq {seq + 1} type i\n".encode()
    rdb_files = layouts["rdb-base"]
    layouts["old-style"] = {"appendonly.aof": b"".join(
        rdb_files[name] for name in sorted(rdb_files, key=lambda n: (".incr." in n, n))
        if not name.endswith(".manifest"))}
    return layouts


def _wait_rewrite(c) -> None:
    for _ in range(200):
        info = c.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return
        time.sleep(0.05)
    raise AssertionError("BGREWRITEAOF did not finish")


def _incr_files(files) -> list[str]:
    return sorted((n for n in files if ".incr." in n), key=lambda n: int(n.split(".")[2]))


def _cut_in_record(data: bytes, marker: bytes) -> bytes:
    """data cut in the middle of the record that holds marker."""
    return data[: data.index(marker) + len(marker) // 2]


def _in_last(layout, change):
    return lambda files: {**files, _incr_files(files)[-1]: change(files[_incr_files(files)[-1]])}


def _in_first(layout, change):
    return lambda files: {**files, _incr_files(files)[0]: change(files[_incr_files(files)[0]])}


def _base(files) -> str:
    return next(n for n in files if ".base." in n)


AOF_DAMAGE = {
    ("rdb-base", "intact"): lambda files: files,
    ("aof-base", "intact"): lambda files: files,
    ("old-style", "intact"): lambda files: files,
    ("aof-base", "garbage-record-in-the-middle-file"): _in_first(
        "aof-base", lambda d: d.replace(b"*3\r\n$3\r\nSET\r\n$2\r\nk1", b"garbage\r\n*3\r\n$3"
                                         b"\r\nSET\r\n$2\r\nk1", 1)),
    ("rdb-base", "garbage-record"): _in_last(
        "rdb-base", lambda d: d.replace(b"$2\r\nk2\r\n", b"$9\r\nk2\r\n", 1)),
    ("aof-base", "bad-argument-count"): _in_last(
        "aof-base", lambda d: d.replace(b"*3\r\n$3\r\nSET\r\n$4\r\nlast", b"*x\r\n$3\r\nSET"
                                         b"\r\n$4\r\nlast", 1)),
    ("aof-base", "truncated-record-in-the-middle-file"): _in_first(
        "aof-base", lambda d: _cut_in_record(d, b"$2\r\nk2\r\n$2\r\nvv\r\n")),
    ("aof-base", "truncated-record-in-the-last-file"): _in_last(
        "aof-base", lambda d: _cut_in_record(d, b"$4\r\nlast\r\n$5\r\nvalue\r\n")),
    ("rdb-base", "truncated-record-in-the-last-file"): _in_last(
        "rdb-base", lambda d: d[:-3]),
    ("aof-base", "multi-without-exec"): _in_last(
        "aof-base", lambda d: d[: d.index(b"*1\r\n$4\r\nEXEC")]),
    ("aof-base", "exec-without-multi"): _in_last(
        "aof-base", lambda d: d.replace(b"*1\r\n$5\r\nMULTI\r\n", b"", 1)),
    ("rdb-base", "rdb-base-truncated"): lambda files: {
        **files, _base(files): files[_base(files)][:-20]},
    ("rdb-base", "rdb-base-checksum-wrong"): lambda files: {
        **files, _base(files): _flip(files[_base(files)], len(files[_base(files)]) - 1)},
    ("rdb-base", "rdb-base-listpack-damaged"): lambda files: {
        **files, _base(files): _with_checksum(_flip(files[_base(files)],
                                                    _after(files[_base(files)], b"\x81f"), 0x7F))},
    ("aof-base", "incr-file-missing"): lambda files: {
        n: d for n, d in files.items() if n != _incr_files(files)[-1]},
    ("aof-base", "incr-file-empty"): _in_last("aof-base", lambda d: b""),
    ("aof-base", "manifest-line-invalid"): lambda files: {
        **files, "appendonly.aof.manifest": files["appendonly.aof.manifest"] + b"file x seq\n"},
    ("aof-base", "manifest-type-unknown"): lambda files: {
        **files, "appendonly.aof.manifest": files["appendonly.aof.manifest"].replace(
            b"type b", b"type q")},
    ("old-style", "truncated"): lambda files: {"appendonly.aof": files["appendonly.aof"][:-7]},
    ("old-style", "preamble-truncated"): lambda files: {
        "appendonly.aof": files["appendonly.aof"][:100]},
}


def _with_checksum(data: bytes) -> bytes:
    return data[:-8] + struct.pack("<Q", rdb_format.CRC64.calc(data[:-8]))


def _aof_dir(tmp_path, files) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path / ("appendonly.aof.manifest" if "appendonly.aof.manifest" in files
                       else "appendonly.aof")


@pytest.mark.parametrize("layout,damage", sorted(AOF_DAMAGE))
def test_check_aof_reports_as_redis_check_aof(tmp_path, redis_aofs, layout, damage):
    files = AOF_DAMAGE[layout, damage](dict(redis_aofs[layout]))
    assert damage == "intact" or files != redis_aofs[layout]
    target = _aof_dir(tmp_path, files)
    report, code = _assert_same_report("aof", target)
    assert (code == 0) == (damage in ("intact", "incr-file-empty")), report  # empty is valid


@pytest.mark.parametrize("damage", ["truncated-record-in-the-last-file",
                                    "truncated-record-in-the-middle-file",
                                    "multi-without-exec"])
@pytest.mark.parametrize("answer", [b"y\n", b"n\n"])
def test_check_aof_fix_does_what_redis_check_aof_does(tmp_path, redis_aofs, damage, answer):
    """--fix: the same question, the same answer taken, and the same bytes left in the
    files (only the last file may be cut, at the last complete record or transaction)."""
    files = AOF_DAMAGE["aof-base", damage](dict(redis_aofs["aof-base"]))
    theirs_dir = _aof_dir(tmp_path / "theirs", files)
    ours_dir = _aof_dir(tmp_path / "ours", files)
    theirs = subprocess.run([require_binary("redis-check-aof"), "--fix", theirs_dir.name],
                            cwd=theirs_dir.parent, capture_output=True, input=answer)
    ours = subprocess.run([str(BIN), "check-aof", "--fix", ours_dir.name],
                          cwd=ours_dir.parent, capture_output=True, input=answer)
    assert _normalised(ours.stdout).decode() == _normalised(theirs.stdout).decode()
    assert ours.returncode == theirs.returncode
    for name in files:
        assert (ours_dir.parent / name).read_bytes() == (theirs_dir.parent / name).read_bytes()


def test_check_aof_takes_the_appendonlydir_itself(tmp_path, redis_aofs):
    """A directory is checked as its manifest would be (redis-check-aof needs the
    manifest's path)."""
    target = _aof_dir(tmp_path / "appendonlydir", AOF_DAMAGE["aof-base", "multi-without-exec"](
        dict(redis_aofs["aof-base"])))
    theirs = subprocess.run([require_binary("redis-check-aof"),
                             "appendonlydir/appendonly.aof.manifest"], cwd=tmp_path,
                            capture_output=True)
    ours = subprocess.run([str(BIN), "check-aof", "appendonlydir"], cwd=tmp_path,
                          capture_output=True)
    assert target.exists()
    assert _normalised(ours.stdout) == _normalised(theirs.stdout)
    assert ours.returncode == theirs.returncode == 1


def test_loader_refuses_any_damage_with_a_located_rdb_error(redis_rdb):
    """Random damage behind a checksum that matches it (so the parser meets it): the
    load raises RDBError, never another exception, leaves the keyspace empty, and
    says where it stopped."""
    rng = random.Random(2026)
    for _ in range(300):
        data = bytearray(redis_rdb)
        if rng.random() < 0.3:
            data = data[: rng.randrange(9, len(data))]
        else:
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(9, len(data) - 9)] = rng.randrange(256)
            data = _with_checksum(bytes(data))
        for packed in (False, True):
            dbs = [Database(i) for i in range(16)]
            try:
                rdb_format.load_snapshot(bytes(data), dbs, packed=packed)
            except rdb_format.RDBError as error:
                assert all(not db.data for db in dbs)
                assert error.offset is not None and f"[offset {error.offset}]" in str(error)
