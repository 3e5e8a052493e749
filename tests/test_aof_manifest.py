"""The multi-part AOF's manifest and start-up checks, side by side with redis-server 7.0:
the same refusal (exit 1) and the same log lines for a damaged manifest or AOF, the
same manifest after an old-style AOF is upgraded, and SHUTDOWN refused while the first
rewrite after CONFIG SET appendonly yes runs (aof.c, server.c prepareForShutdown)."""

import re
import shutil
import socket
import subprocess
import time

import pytest
import redis

from conftest import VERMILION, free_port, require_binary, start_in_dir

LOG_PREFIX = re.compile(r"^\d+:[CMSX] \d+ \w+ \d+ [\d:.]+ [.*#-] ", re.M)


def _command(*args) -> bytes:
    out = b"*%d\r\n" % len(args)
    for arg in args:
        arg = arg.encode() if isinstance(arg, str) else arg
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return out


def _refused_start(binary, workdir, *args) -> tuple[int, list[str]]:
    """Start a server expected to exit at start-up: its exit code and its log messages
    (the pid/time prefix removed, blank lines dropped)."""
    port = free_port()
    done = subprocess.run([str(binary), "--port", str(port), "--bind", "127.0.0.1",
                           "--save", "", "--dir", str(workdir), "--appendonly", "yes", *args],
                          cwd=workdir, capture_output=True, timeout=20)
    text = LOG_PREFIX.sub("", done.stdout.decode(errors="replace"))
    return done.returncode, [line for line in text.splitlines() if line.strip()]


def _both_refuse(tmp_path, make_files, *args) -> tuple[list[str], list[str]]:
    """The same files for each server; both must exit 1. Their log lines."""
    logs = []
    for name, binary in (("ours", VERMILION), ("redis", require_binary("redis-server"))):
        workdir = tmp_path / name
        (workdir / "appendonlydir").mkdir(parents=True)
        make_files(workdir / "appendonlydir")
        code, lines = _refused_start(binary, workdir, *args)
        assert code == 1, (name, lines)
        logs.append(lines)
    return logs[0], logs[1]


def _manifest(directory, *lines) -> None:
    (directory / "appendonly.aof.manifest").write_text("".join(line + "\n" for line in lines))


@pytest.mark.parametrize("manifest, reason", [
    (["file appendonly.aof.1.base.aof seq 1 type b",
      "file appendonly.aof.1.incr.aof seq 1 type i newkey"], "Invalid AOF manifest file format"),
    (["file appendonly.aof.2.incr.aof seq 2 type i",
      "file appendonly.aof.1.incr.aof seq 1 type i"], "Found a non-monotonic sequence number"),
    (["file appendonly.aof.1.base.aof seq 1 type x"], "Unknown AOF file type"),
    (["file dir/appendonly.aof.1.base.aof seq 1 type b"], "File can't be a path, just a filename"),
    ([], "Found an empty AOF manifest"),
])
def test_bad_manifest_stops_the_start_like_redis(tmp_path, manifest, reason):
    def make(directory):
        (directory / "appendonly.aof.1.base.aof").write_bytes(_command("set", "k1", "v1"))
        (directory / "appendonly.aof.1.incr.aof").write_bytes(_command("set", "k2", "v2"))
        (directory / "appendonly.aof.2.incr.aof").write_bytes(b"")
        _manifest(directory, *manifest)

    ours, theirs = _both_refuse(tmp_path, make)
    # aofLoadManifestFromFile()'s last lines: the banner, the line read, the reason.
    tail = theirs[theirs.index("*** FATAL AOF MANIFEST FILE ERROR ***"):]
    assert tail[-1] == reason
    assert ours[-len(tail):] == tail


def test_missing_file_and_short_read_stop_the_start_like_redis(tmp_path):
    def missing(directory):
        (directory / "appendonly.aof.1.base.aof").write_bytes(_command("set", "k1", "v1"))
        _manifest(directory, "file appendonly.aof.1.base.aof seq 1 type b",
                  "file appendonly.aof.1.incr.aof seq 1 type i")

    ours, theirs = _both_refuse(tmp_path / "missing", missing)
    assert ours[-1] == theirs[-1] == ("Unable to obtain the AOF file appendonly.aof.1.incr.aof "
                                      "length. stat: No such file or directory")

    def short_read(directory):
        (directory / "appendonly.aof.1.incr.aof").write_bytes(
            _command("set", "foo", "hello") + _command("set", "bar", "world")[:-1])
        _manifest(directory, "file appendonly.aof.1.incr.aof seq 1 type i")

    ours, theirs = _both_refuse(tmp_path / "short", short_read, "--aof-load-truncated", "no")
    assert ours[-1] == theirs[-1]
    assert theirs[-1].startswith("Unexpected end of file reading the append only file "
                                 "appendonly.aof.1.incr.aof.")

    def bad_format(directory):
        (directory / "appendonly.aof.1.incr.aof").write_bytes(
            _command("set", "foo", "hello") + b"!!!" + _command("set", "foo", "hello"))
        _manifest(directory, "file appendonly.aof.1.incr.aof seq 1 type i")

    ours, theirs = _both_refuse(tmp_path / "format", bad_format)
    assert ours[-1] == theirs[-1]
    assert theirs[-1].startswith("Bad file format reading the append only file")


def _upgraded(binary, workdir) -> tuple[str, list[str], dict]:
    (workdir / "appendonly.aof").write_bytes(
        _command("set", "k1", "v1") + _command("set", "k2", "v2"))
    server = start_in_dir(binary, workdir, "--appendonly", "yes")
    try:
        client = server.client()
        data = {key: client.get(key) for key in ("k1", "k2")}
        client.set("k3", "v3")
        client.execute_command("BGREWRITEAOF")
        for _ in range(200):
            if client.info("persistence")["aof_rewrite_in_progress"] == 0 and \
                    "seq 2 type b" in (workdir / "appendonlydir" /
                                       "appendonly.aof.manifest").read_text():
                break
            time.sleep(0.05)
        data["k3"] = client.get("k3")
    finally:
        server.stop()
    return ((workdir / "appendonlydir" / "appendonly.aof.manifest").read_text(),
            sorted(p.name for p in (workdir / "appendonlydir").iterdir()), data)


def test_old_style_aof_is_upgraded_like_redis(tmp_path):
    (tmp_path / "ours").mkdir()
    (tmp_path / "redis").mkdir()
    ours = _upgraded(VERMILION, tmp_path / "ours")
    theirs = _upgraded(require_binary("redis-server"), tmp_path / "redis")
    assert ours == theirs
    assert ours[0] == ("file appendonly.aof.2.base.rdb seq 2 type b\n"
                       "file appendonly.aof.2.incr.aof seq 2 type i\n")
    assert ours[2] == {"k1": b"v1", "k2": b"v2", "k3": b"v3"}


def _shutdown_during_initial_rewrite(binary, workdir) -> tuple[str, bool]:
    server = start_in_dir(binary, workdir)
    client = server.client()
    try:
        client.set("k", "v")
        client.config_set("rdb-key-save-delay", 1_000_000)  # one key: 1 s
        client.config_set("appendonly", "yes")
        with pytest.raises(redis.ResponseError) as refused:
            client.shutdown()
        alive = client.ping()
        with socket.create_connection(("127.0.0.1", server.port)) as conn:
            conn.sendall(b"SHUTDOWN NOSAVE FORCE\r\n")
            assert conn.recv(64) == b""  # it exits anyway
        server.proc.wait(10)
    finally:
        server.stop()
    assert "Writing initial AOF, can't exit." in server.log_path.read_text()
    return str(refused.value), alive


def test_shutdown_refused_while_the_initial_aof_is_written(tmp_path):
    (tmp_path / "ours").mkdir()
    (tmp_path / "redis").mkdir()
    ours = _shutdown_during_initial_rewrite(VERMILION, tmp_path / "ours")
    theirs = _shutdown_during_initial_rewrite(require_binary("redis-server"), tmp_path / "redis")
    assert ours == theirs == ("Errors trying to SHUTDOWN. Check logs.", True)


def test_history_files_and_auto_gc_like_redis(tmp_path):
    """Two rewrites with aof-disable-auto-gc yes keep the history in the manifest;
    turning the collection back on deletes it at once (updateAofAutoGCEnabled())."""
    results = []
    for name, binary in (("ours", VERMILION), ("redis", require_binary("redis-server"))):
        workdir = tmp_path / name
        workdir.mkdir()
        server = start_in_dir(binary, workdir, "--appendonly", "yes",
                              "--aof-disable-auto-gc", "yes")
        manifest = workdir / "appendonlydir" / "appendonly.aof.manifest"
        try:
            client = server.client()
            for seq in (2, 3):
                client.set("k", seq)
                client.execute_command("BGREWRITEAOF")
                for _ in range(200):
                    if f"seq {seq} type b" in manifest.read_text() and \
                            client.info("persistence")["aof_rewrite_in_progress"] == 0:
                        break
                    time.sleep(0.05)
            kept = manifest.read_text()
            client.config_set("aof-disable-auto-gc", "no")
            collected = manifest.read_text()
            files = sorted(p.name for p in (workdir / "appendonlydir").iterdir())
        finally:
            server.stop()
        results.append((kept, collected, files))
        shutil.rmtree(workdir)
    assert results[0] == results[1]
    assert "type h" in results[0][0] and "type h" not in results[0][1]


def test_expiry_in_the_past_is_replayed_as_written(tmp_path):
    """checkAlreadyExpired()/keyIsExpired() while loading: PEXPIREAT 1000 then RPUSH on
    the same key leaves one list that has expired by the end of the load, not a new list
    without a TTL."""
    replies = []
    for name, binary in (("ours", VERMILION), ("redis", require_binary("redis-server"))):
        workdir = tmp_path / name
        (workdir / "appendonlydir").mkdir(parents=True)
        (workdir / "appendonlydir" / "appendonly.aof.1.incr.aof").write_bytes(
            _command("rpush", "list", "foo") + _command("pexpireat", "list", "1000")
            + _command("rpush", "list", "bar") + _command("set", "other", "1"))
        _manifest(workdir / "appendonlydir", "file appendonly.aof.1.incr.aof seq 1 type i")
        server = start_in_dir(binary, workdir, "--appendonly", "yes")
        try:
            client = server.client()
            replies.append((client.llen("list"), client.get("other")))
        finally:
            server.stop()
    assert replies[0] == replies[1] == (0, b"1")


@pytest.mark.parametrize("annotated", [False, True], ids=["commands-only", "annotated"])
def test_unfinished_multi_and_short_read_are_cut_like_redis(tmp_path, annotated):
    """aof-load-truncated yes: an unfinished MULTI is cut back to before it, a command
    cut short to the last whole one (files of commands only take hiredis's path,
    annotated ones the line reader's)."""
    stamp = b"#TS:1628217470\r\n" if annotated else b""
    files = {
        "multi": stamp + _command("set", "foo", "hello") + _command("multi")
        + _command("set", "bar", "world"),
        "short": stamp + _command("incr", "n") + _command("incr", "n")
        + _command("incr", "n")[:-3],
    }
    results = []
    for name, binary in (("ours", VERMILION), ("redis", require_binary("redis-server"))):
        for case, content in files.items():
            workdir = tmp_path / name / case
            (workdir / "appendonlydir").mkdir(parents=True)
            incr = workdir / "appendonlydir" / "appendonly.aof.1.incr.aof"
            incr.write_bytes(content)
            _manifest(workdir / "appendonlydir", "file appendonly.aof.1.incr.aof seq 1 type i")
            server = start_in_dir(binary, workdir, "--appendonly", "yes")
            try:
                client = server.client()
                state = (client.get("foo"), client.get("bar"), client.get("n"))
            finally:
                server.stop()
            results.append((case, state, incr.read_bytes()))
    assert results[:2] == results[2:]
