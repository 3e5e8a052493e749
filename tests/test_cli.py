"""The vermilion-server command line and redis.conf loading, beside redis-server 7.0.

Start-up failures are compared byte for byte (the FATAL CONFIG FILE ERROR block on
stderr, exit code 1); successful start-ups are compared through CONFIG GET.
"""

import socket
import subprocess
import time

import pytest

from conftest import VERMILION, RawConnection, free_port, require_binary, start_redis, \
    start_vermilion

REDIS = None


def redis_binary() -> str:
    global REDIS
    REDIS = REDIS or require_binary("redis-server")
    return REDIS


def run(binary, args, cwd, stdin_text=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], cwd=cwd, input=stdin_text, text=True,
                          capture_output=True, timeout=20)


def run_both(tmp_path, args, config_text=None, stdin_text=None, files=None):
    """Run both servers with the same config file / argv / stdin; both must fail."""
    results = []
    for name, binary in (("vm", VERMILION), ("rd", redis_binary())):
        cwd = tmp_path / name
        cwd.mkdir()
        for fname, text in (files or {}).items():
            (cwd / fname).write_text(text)
        argv = list(args)
        if config_text is not None:
            (cwd / "test.conf").write_text(config_text)
            argv = ["test.conf", *argv]
        results.append(run(binary, argv, cwd, stdin_text))
    return results


BAD_CONFIGS = [
    "port 1\nfoo bar\n",
    "maxmemory -1\n",
    "maxmemory 1 2\n",
    '  port "7312\n',
    "hz x\n",
    "hz 1\n\n  \n# c\nhz 1 2\n",
    "save 1\n",
    "appendfsync sometimes\n",
    "include\n",
    "rename-command nosuchcommand x\n",
    "rename-command get set\n",
    "sentinel monitor m 127.0.0.1 1 1\n",
    "bind " + " ".join(f"10.0.0.{i}" for i in range(17)) + "\n",
    "notify-keyspace-events Z\n",
    "notify-keyspace-events\n",
    "client-output-buffer-limit master 1 1 1\n",
    "dir /nonexistent/vermilion-test\n",
    "logfile /nonexistent/vermilion-test.log\n",
    "lua-replicate-commands yes\nlist-max-ziplist-entries 5\nlist-max-ziplist-value 1 2\n",
    "user\n",
    "loglevel nothing\n",
    "unixsocketperm 8\n",
    "oom-score-adj-values 1 2\n",
    "replicaof localhost x\n",
    "dbfilename a/b\n",
    "maxmemory-clients 200%\n",
    "maxmemory \"1\\x41\"\n",
    "   \t ignore-warnings 'it\\'s' x\r\n",
    "enable-debug-command maybe\n",
]


@pytest.mark.parametrize("config_text", BAD_CONFIGS)
def test_fatal_config_error_matches_redis(tmp_path, config_text):
    mine, theirs = run_both(tmp_path, [], config_text=config_text)
    assert theirs.returncode == 1
    assert mine.returncode == 1
    assert mine.stderr == theirs.stderr


BAD_ARGVS = [
    ["--port", "1", "--foo", "bar"],
    ["--loglevel", "--foo"],
    ["--maxmemory", "a'b\"c\\d\n\x01"],
    ["--maxmemory", "1", "2"],
    ["--hz", "5", "--hz"],
    ["--port 1", "--nosuch"],
]


@pytest.mark.parametrize("args", BAD_ARGVS)
def test_fatal_command_line_error_matches_redis(tmp_path, args):
    mine, theirs = run_both(tmp_path, args)
    assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr) == (1, theirs.stderr)


def test_fatal_error_line_numbers_span_file_stdin_and_options(tmp_path):
    mine, theirs = run_both(tmp_path, ["--timeout", "1", "--bogus", "-"],
                            config_text="hz 10\n", stdin_text="timeout 3\nmaxmemory 1mb\n")
    assert mine.returncode == theirs.returncode == 1
    assert mine.stderr == theirs.stderr
    assert "at line 6\n" in mine.stderr


def test_stdin_only_error(tmp_path):
    mine, theirs = run_both(tmp_path, ["-"], stdin_text="maxmemory 2mb\nbad directive\n")
    assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr)
    assert ">>> 'bad directive'" in mine.stderr


@pytest.mark.parametrize("config_text,args", [
    (None, ["/nonexistent/x.conf"]),
    ("include /nonexistent/y.conf\n", []),
    ("include missing-relative.conf\n", []),
])
def test_cannot_open_config_file(tmp_path, config_text, args):
    mine, theirs = run_both(tmp_path, args, config_text=config_text)
    assert mine.returncode == theirs.returncode == 1
    # A log line on stdout: "<pid>:C <date> # Fatal error, can't open config file ..."
    message = theirs.stdout.split(" # ", 1)[1]
    assert message.startswith("Fatal error, can't open config file")
    assert mine.stdout.split(" # ", 1)[1] == message


def test_version(tmp_path):
    mine = run(VERMILION, ["--version"], tmp_path)
    theirs = run(redis_binary(), ["-v"], tmp_path)
    assert mine.returncode == theirs.returncode == 0
    assert mine.stdout.startswith("Redis server v=7.0.15 sha=")
    assert mine.stdout.split(" malloc=")[0] == theirs.stdout.split(" malloc=")[0]
    assert run(VERMILION, ["-v"], tmp_path).stdout == mine.stdout


def test_help(tmp_path):
    mine = run(VERMILION, ["--help"], tmp_path)
    theirs = run(redis_binary(), ["-h"], tmp_path)
    assert mine.returncode == theirs.returncode == 1
    assert mine.stdout == theirs.stdout == ""
    assert mine.stderr.startswith("Usage: ./vermilion-server [/path/to/redis.conf] [options] [-]\n")
    assert run(VERMILION, ["-h"], tmp_path).stderr == mine.stderr


# -- successful start-ups, compared through CONFIG GET ------------------------------------

RICH_CONFIG = r"""# a comment line
   maxmemory 2MB
maxmemory-policy "allkeys-lru"
ignore-warnings "a\x41\tb \"q\""
proc-title-template '{title} {port} it\'s'
slave-read-only no
hash-max-ziplist-value 1kb
notify-keyspace-events "KEA"
client-output-buffer-limit normal 1mb 2mb 3 pubsub 1gb 0 0
oom-score-adj-values 10 20 30
latency-tracking-info-percentiles 1.5 99
include inc.conf
timeout 5
lua-replicate-commands yes
list-max-ziplist-entries 5
hz 1000
maxmemory-clients 5%
rename-command flushdb ""
"""
INCLUDED = "hz 20\ntimeout 9\nset-max-intset-entries 99\n"
COMPARED = ("maxmemory", "maxmemory-policy", "ignore-warnings", "proc-title-template",
            "replica-read-only", "hash-max-listpack-value", "notify-keyspace-events",
            "client-output-buffer-limit", "oom-score-adj-values",
            "latency-tracking-info-percentiles", "timeout", "hz", "set-max-intset-entries",
            "maxmemory-clients", "save")


def _get(port, *names) -> dict:
    conn = RawConnection(port)
    try:
        out = {}
        for name in names:
            reply = conn.command("CONFIG", "GET", name).split(b"\r\n")
            out[name] = reply[4] if len(reply) > 4 else None
        out["flushdb"] = conn.command("FLUSHDB")[:20]
        return out
    finally:
        conn.close()


def test_config_file_include_quotes_units_and_overrides(tmp_path):
    results = []
    for start, name in ((start_vermilion, "vm"), (start_redis, "rd")):
        cwd = tmp_path / name
        cwd.mkdir()
        (cwd / "inc.conf").write_text(INCLUDED)
        server = start(cwd, ["--timeout", "11", "--maxmemory", "5mb"], config_text=RICH_CONFIG)
        try:
            results.append(_get(server.port, *COMPARED))
        finally:
            server.stop()
    assert results[0] == results[1]
    assert results[0]["maxmemory"] == b"5242880" and results[0]["timeout"] == b"11"
    assert results[0]["ignore-warnings"] == b'aA\tb "q"'


def _start_with_stdin(binary, cwd, args, stdin_text):
    port = free_port()
    log = open(cwd / "server.log", "wb")
    proc = subprocess.Popen([str(binary), *args, "--port", str(port), "--bind", "127.0.0.1", "-"],
                            cwd=cwd, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)
    proc.stdin.write(stdin_text.encode())
    proc.stdin.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        assert proc.poll() is None, (cwd / "server.log").read_text()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64):
                    return proc, port, log
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")


def test_config_from_stdin_with_save_semantics(tmp_path):
    # Read from stdin after --options ('-' last). The first 'save' line of a file drops
    # the defaults and later ones append, until an include ends the "reading the file"
    # state (config.c reading_config_file): then each save line replaces.
    text = RICH_CONFIG.replace("include inc.conf\n", "") + "save 60 1\nsave 300 10\n"
    results = []
    for binary, name in ((VERMILION, "vm"), (redis_binary(), "rd")):
        cwd = tmp_path / name
        cwd.mkdir()
        proc, port, log = _start_with_stdin(binary, cwd, ["--dbfilename", "x.rdb"], text)
        try:
            results.append(_get(port, *COMPARED, "dbfilename"))
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()
    assert results[0] == results[1]
    assert results[0]["save"] == b"60 1 300 10"
    assert results[0]["maxmemory"] == b"2097152"


@pytest.mark.parametrize("config_text,args,expected", [
    ("save 60 1\nsave 300 10\n", [], b"60 1 300 10"),
    ("save 60 1\n", ["--save", "900", "1"], b"60 1 900 1"),
    ("save 60 1\n", ["--save", ""], b""),
    ("save 60 1\n", ["--save"], b""),  # a bare --save, last or before --x, is save ""
    ("save 60 1\n", ["--save", "--hz", "5"], b""),
    ("save 60 1\ninclude empty.conf\nsave 70 2\n", [], b"70 2"),  # include ends "reading"
    ("", [], b"3600 1 300 100 60 10000"),
])
def test_save_lines_accumulate_like_redis(tmp_path, config_text, args, expected):
    got = []
    for binary, name in ((VERMILION, "vm"), (redis_binary(), "rd")):
        cwd = tmp_path / name
        cwd.mkdir()
        (cwd / "s.conf").write_text(config_text)
        (cwd / "empty.conf").write_text("")
        port = free_port()
        log = open(cwd / "log", "wb")
        proc = subprocess.Popen([str(binary), "s.conf", "--port", str(port), "--bind",
                                 "127.0.0.1", *args], cwd=cwd, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 10
            while True:
                assert proc.poll() is None and time.time() < deadline
                try:
                    got.append(_get(port, "save")["save"])
                    break
                except OSError:
                    time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()
    assert got[0] == got[1] == expected


@pytest.mark.parametrize("config_text,files", [
    ("timeout 1\ninclude inc.conf\nhz 5\n", {"inc.conf": "hz 10\n\nbogus 1\n"}),
    ("include nomatch-*.conf\nbogus\n", {}),
    ("include part-*.conf\nhz 1 2\n", {"part-a.conf": "hz 10\n", "part-b.conf": "timeout 1\n"}),
    ("include part-*.conf\n", {"part-a.conf": "hz 10", "part-b.conf": "timeout x\n"}),
])
def test_include_errors_match_redis(tmp_path, config_text, files):
    mine, theirs = run_both(tmp_path, [], config_text=config_text, files=files)
    assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr)
    assert mine.returncode == 1
