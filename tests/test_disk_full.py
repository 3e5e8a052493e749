"""A disk that fills never costs an acknowledged write (issue 13), side by side with Redis.

The full disk is real: the server process runs under RLIMIT_FSIZE with SIGXFSZ ignored,
so its writes past the limit fail with EFBIG (or come back short) exactly as on a full
filesystem, and `resource.prlimit` lifts the limit while it runs — "space freed". Each
scenario is run against vermilion-server and redis-server 7.0 with the same inputs, and
ends with kill -9 and a restart that must find every acknowledged write.
"""

import glob
import os
import resource
import signal
import time

import pytest

from conftest import VERMILION, RawConnection, ServerProcess, require_binary

LIMIT = 64 * 1024  # bytes any one file of the server may reach
VALUE = b"v" * 100
AOF_ERRORS = (b"-MISCONF Errors writing to the AOF file: No space left on device\r\n",
              b"-MISCONF Errors writing to the AOF file: File too large\r\n")
RDB_MISCONF = (b"-MISCONF Redis is configured to save RDB snapshots, but it's currently "
               b"unable to persist to disk.")


def _limited(limit: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a core dump
        # Only the soft limit: raising it back needs no privilege.
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return preexec


def _binaries():
    return [("vermilion", VERMILION), ("redis", require_binary("redis-server"))]


def _start(binary, workdir, args, limit=None):
    workdir.mkdir(exist_ok=True)
    server = ServerProcess(binary, cwd=workdir)
    server.args = ["--dir", str(workdir), *args]
    if limit is not None:
        server.preexec_fn = _limited(limit)
    return server.start()


def _kill9(server):
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    server.log.close()


def _lift_limit(server):
    _set_limit(server, resource.RLIM_INFINITY)


def _set_limit(server, limit):
    resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def _fill(conn, prefix, count=4000):
    """SET until the server refuses; the keys it acknowledged, and the refusal."""
    acked = []
    for i in range(count):
        key = b"%s:%d" % (prefix, i)
        reply = conn.command("SET", key, VALUE)
        if reply != b"+OK\r\n":
            return acked, reply
        acked.append(key)
    pytest.fail(f"{count} writes fit under a {LIMIT}-byte file limit")


def _info_field(conn, section, name) -> bytes:
    info = conn.command("INFO", section)
    for line in info.split(b"\r\n"):
        if line.startswith(name + b":"):
            return line.split(b":", 1)[1]
    raise AssertionError(f"{name!r} not in INFO {section}")


def _wait_field(conn, name: bytes, value: bytes, timeout: float = 10.0) -> None:
    """Until INFO persistence shows name:value (a background child has finished)."""
    deadline = time.time() + timeout
    while _info_field(conn, "persistence", name) != value:
        assert time.time() < deadline, f"{name!r} never became {value!r}"
        time.sleep(0.05)


def _wait_writable(conn, timeout=5.0) -> float:
    """Seconds until a write is accepted again (fails the test after timeout)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if conn.command("SET", "probe", "1") == b"+OK\r\n":
            return time.monotonic() - start
        time.sleep(0.02)
    pytest.fail("writes did not resume after space came back")


def _all_present(server, keys) -> None:
    client = server.client()
    values = client.mget(keys) if keys else []
    missing = [k for k, v in zip(keys, values) if v != VALUE]
    client.close()
    assert not missing, f"{len(missing)} acknowledged writes lost, first {missing[:3]}"


AOF_ARGS = ["--appendonly", "yes", "--aof-use-rdb-preamble", "yes",
            "--auto-aof-rewrite-percentage", "0"]


@pytest.mark.parametrize("name,binary", _binaries(), ids=["vermilion", "redis"])
def test_aof_everysec_full_disk_refuses_writes_then_resumes_losing_nothing(tmp_path, name, binary):
    args = AOF_ARGS + ["--appendfsync", "everysec"]
    server = _start(binary, tmp_path, args, limit=LIMIT)
    conn = RawConnection(server.port)
    acked, refusal = _fill(conn, b"before")
    # flushAppendOnlyFile(): the write that hit the full disk was acknowledged (its
    # record stays buffered); the next one is refused with the write error.
    assert refusal in AOF_ERRORS, refusal
    assert conn.command("SET", "more", "x") == refusal
    assert conn.command("PING") == refusal  # writeCommandsDeniedByDiskError() covers PING
    assert conn.command("GET", acked[0]) == b"$100\r\n" + VALUE + b"\r\n"  # reads go on
    assert conn.command("MULTI") == b"+OK\r\n"
    assert conn.command("SET", "in-multi", "x") == refusal
    assert conn.command("EXEC").startswith(b"-EXECABORT")
    assert _info_field(conn, "persistence", b"aof_last_write_status") == b"err"

    _lift_limit(server)
    _wait_writable(conn)
    assert _info_field(conn, "persistence", b"aof_last_write_status") == b"ok"
    after, _ = [], None
    for i in range(200):
        key = b"after:%d" % i
        assert conn.command("SET", key, VALUE) == b"+OK\r\n"
        after.append(key)
    time.sleep(1.2)  # one everysec fsync: kill -9 loses nothing the kernel has
    conn.close()
    _kill9(server)

    server = _start(binary, tmp_path, args)
    try:
        _all_present(server, acked + after)
        assert b"Short read" not in server.log_path.read_bytes() or name == "redis"
    finally:
        server.stop()


@pytest.mark.parametrize("name,binary", _binaries(), ids=["vermilion", "redis"])
def test_aof_always_exits_on_write_error_and_keeps_every_acknowledged_write(tmp_path, name, binary):
    args = AOF_ARGS + ["--appendfsync", "always"]
    server = _start(binary, tmp_path, args, limit=LIMIT)
    conn = RawConnection(server.port)
    acked = []
    with pytest.raises(ConnectionError):
        for i in range(4000):
            key = b"k:%d" % i
            # An acknowledged write is on disk; the one that failed is never answered.
            assert conn.command("SET", key, VALUE) == b"+OK\r\n"
            acked.append(key)
    assert server.proc.wait(10) == 1
    log = server.log_path.read_bytes()
    assert (b"Can't recover from AOF write error when the AOF fsync policy is 'always'. "
            b"Exiting...") in log
    server.log.close()

    server = _start(binary, tmp_path, args)
    try:
        _all_present(server, acked)
        # The short write was cut back: the file ends at a whole record.
        assert b"Short read" not in server.log_path.read_bytes()
    finally:
        server.stop()


@pytest.mark.parametrize("name,binary", _binaries(), ids=["vermilion", "redis"])
def test_failed_bgsave_leaves_no_temp_file_and_writes_resume_after_a_good_save(tmp_path, name, binary):
    limit = 32 * 1024
    server = _start(binary, tmp_path, ["--save", "3600", "1000000"], limit=limit)
    client = server.client()
    pipe = client.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"key:{i}", VALUE)
    pipe.execute()  # far more than one file may hold

    conn = RawConnection(server.port)
    assert conn.command("BGSAVE") == b"+Background saving started\r\n"
    _wait_field(conn, b"rdb_bgsave_in_progress", b"0")
    assert _info_field(conn, "persistence", b"rdb_last_bgsave_status") == b"err"
    assert glob.glob(str(tmp_path / "temp-*.rdb")) == []  # rdbSave() removed it
    assert conn.command("SET", "x", "1").startswith(RDB_MISCONF)
    assert conn.command("PING").startswith(RDB_MISCONF)
    assert conn.command("GET", "key:1") == b"$100\r\n" + VALUE + b"\r\n"

    # SAVE fails the same way, answers -ERR, and cleans up too.
    assert conn.command("SAVE") == b"-ERR\r\n"
    assert glob.glob(str(tmp_path / "temp-*.rdb")) == []

    _lift_limit(server)  # the next fork inherits no limit
    assert conn.command("BGSAVE") == b"+Background saving started\r\n"
    _wait_field(conn, b"rdb_last_bgsave_status", b"ok")
    assert conn.command("SET", "x", "1") == b"+OK\r\n"
    assert conn.command("PING") == b"+PONG\r\n"
    conn.close()
    client.close()
    _kill9(server)
    server = _start(binary, tmp_path, [])
    try:
        assert server.client().dbsize() == 2000
    finally:
        server.stop()


def test_aof_rewrite_failing_on_a_full_disk_cleans_up_and_keeps_logging(tmp_path):
    """A rewrite whose child cannot write its base: the temp file is removed, the
    manifest still names the old files, and the incr file keeps every write."""
    args = AOF_ARGS + ["--appendfsync", "everysec"]
    server = _start(VERMILION, tmp_path, args, limit=LIMIT * 8)
    client = server.client()
    pipe = client.pipeline(transaction=False)
    values = [os.urandom(20).hex().encode() for _ in range(2000)]  # LZF can't shrink them
    for i, value in enumerate(values):
        pipe.set(f"key:{i}", value)  # its snapshot is larger than LIMIT
    pipe.execute()
    conn = RawConnection(server.port)
    _set_limit(server, LIMIT)  # the rewrite's new incr file is empty: only the base fails
    assert conn.command("BGREWRITEAOF") == b"+Background append only file rewriting started\r\n"
    _wait_field(conn, b"aof_rewrite_in_progress", b"0")
    assert _info_field(conn, "persistence", b"aof_last_bgrewrite_status") == b"err"
    assert glob.glob(str(tmp_path / "temp-rewriteaof-*")) == []
    _lift_limit(server)
    assert conn.command("SET", "last", "1") == b"+OK\r\n"
    time.sleep(1.2)
    conn.close()
    client.close()
    _kill9(server)
    server = _start(VERMILION, tmp_path, args)
    try:
        restarted = server.client()
        assert restarted.dbsize() == 2001  # key:*, last
        assert restarted.get("key:1999") == values[1999]
    finally:
        server.stop()
    leftovers = [p for p in os.listdir(tmp_path / "appendonlydir") if p.startswith("temp")]
    assert leftovers == []
