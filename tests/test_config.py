"""CONFIG GET / SET / RESETSTAT / REWRITE / HELP against a real redis-server 7.0.

The module starts its own pair of servers (vermilion and redis-server, same argv) so
that CONFIG SET never disturbs the shared session servers; replies are compared byte
for byte through RawConnection.
"""

import pytest

from conftest import RawConnection, start_redis, start_vermilion


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    vm = start_vermilion(tmp_path_factory.mktemp("cfg-vm"))
    rd = start_redis(tmp_path_factory.mktemp("cfg-rd"))
    yield vm, rd
    vm.stop()
    rd.stop()


@pytest.fixture
def conns(pair):
    vm, rd = pair
    a, b = RawConnection(vm.port), RawConnection(rd.port)
    yield a, b
    a.close()
    b.close()


def both(conns, *args) -> bytes:
    """Send to both servers; assert the exact same reply bytes; return them."""
    mine, theirs = conns[0].command(*args), conns[1].command(*args)
    assert mine == theirs, (args, mine, theirs)
    return mine


def as_dict(conn, *patterns) -> dict:
    """CONFIG GET as a dict (RESP2 flat array)."""
    reply = conn.command("CONFIG", "GET", *patterns)
    lines = reply.split(b"\r\n")
    values = [lines[i] for i in range(2, len(lines) - 1, 2)]
    return dict(zip(values[::2], values[1::2]))


def test_config_get_star_has_redis_names_and_defaults(conns):
    mine, theirs = as_dict(conns[0], "*"), as_dict(conns[1], "*")
    assert set(mine) == set(theirs)
    for name in (b"dir", b"port"):  # per process
        mine.pop(name), theirs.pop(name)
    assert mine == theirs


def test_config_get_dir_is_the_working_directory(pair, conns):
    assert as_dict(conns[0], "dir") == {b"dir": str(pair[0].cwd).encode()}


@pytest.mark.parametrize("patterns", [
    ("maxmemory",), ("MAXMEMORY",), ("maxmem*",), ("MAXMEM*",), ("*max*entries*",),
    ("slaveof",), ("slave*",), ("replicaof", "slaveof"), ("maxmemory", "maxmemory", "max*"),
    ("nosuch",), ("h?",), ("[hl]*",), ("use-exit-on-panic",), ("*panic*",),
    ("lua-time-limit", "busy*"), ("hash-max-ziplist-entries",),
])
def test_config_get_patterns(conns, patterns):
    assert as_dict(conns[0], *patterns) == as_dict(conns[1], *patterns)


def test_config_get_resp3_map(conns):
    for conn in conns:
        conn.command("HELLO", "3")
    reply = both(conns, "CONFIG", "GET", "maxmemory")
    assert reply == b"%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"


@pytest.mark.parametrize("args", [
    ("CONFIG", "SET", "daemonize", "yes"),
    ("CONFIG", "SET", "dir", "/tmp"),
    ("CONFIG", "SET", "dbfilename", "x.rdb"),
    ("CONFIG", "SET", "foo", "1"),
    ("CONFIG", "SET", "maxmemory", "1", "maxmemory", "2"),
    ("CONFIG", "SET", "maxmemory", "1", "MAXMEMORY", "2"),
    ("CONFIG", "SET", "maxmemory", "-1"),
    ("CONFIG", "SET", "maxmemory", " 1"),
    ("CONFIG", "SET", "maxmemory", "1xb"),
    ("CONFIG", "SET", "MAXMEMORY", "x"),
    ("CONFIG", "SET", "hz", "abc"),
    ("CONFIG", "SET", "hz", "01"),
    ("CONFIG", "SET", "hz", "-1"),
    ("CONFIG", "SET", "port", "99999"),
    ("CONFIG", "SET", "maxclients", "0"),
    ("CONFIG", "SET", "maxclients", "-1"),
    ("CONFIG", "SET", "hash-max-listpack-entries", "-1"),
    ("CONFIG", "SET", "proto-max-bulk-len", "1000"),
    ("CONFIG", "SET", "maxmemory-clients", "101%"),
    ("CONFIG", "SET", "maxmemory-clients", "x%"),
    ("CONFIG", "SET", "loglevel", "foo"),
    ("CONFIG", "SET", "appendfsync", "sometimes"),
    ("CONFIG", "SET", "slave-read-only", "x"),
    ("CONFIG", "SET", "notify-keyspace-events", "Z"),
    ("CONFIG", "SET", "save", "60"),
    ("CONFIG", "SET", "save", "0 1"),
    ("CONFIG", "SET", "save", "60  1"),
    ("CONFIG", "SET", "save", "60 -1"),
    ("CONFIG", "SET", "client-output-buffer-limit", "master 1 1 1"),
    ("CONFIG", "SET", "client-output-buffer-limit", "normal 1 1"),
    ("CONFIG", "SET", "client-output-buffer-limit", "replica 1 1 -1"),
    ("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1x 1 1"),
    ("CONFIG", "SET", "oom-score-adj-values", "1 2"),
    ("CONFIG", "SET", "oom-score-adj-values", "1 2 3000"),
    ("CONFIG", "SET", "latency-tracking-info-percentiles", "101"),
    ("CONFIG", "SET", "latency-tracking-info-percentiles", "x"),
    ("CONFIG", "SET", "shutdown-on-sigint", "save nosave"),
    ("CONFIG", "SET", "shutdown-on-sigterm", "later"),
    ("CONFIG", "SET", "activedefrag", "yes"),
    ("CONFIG", "SET", "proc-title-template", "{title}"),
    ("CONFIG", "SET", "proc-title-template", "{nope} x"),
    ("CONFIG", "SET", "cluster-announce-hostname", "a_b"),
    ("CONFIG", "SET", "replicaof", "127.0.0.1 1"),
    ("CONFIG", "SET", "slaveof", "no one"),
    ("CONFIG", "SET", "unixsocketperm", "777"),
    ("CONFIG", "SET", "socket-mark-id", "1"),
    ("CONFIG", "SET", "appendfilename", "a/b"),
    ("CONFIG", "SET", "foo", "1", "daemonize", "yes"),
    ("CONFIG", "SET", "daemonize", "yes", "foo", "1"),
    ("CONFIG", "SET", "maxmemory", "x", "foo", "1"),
    ("CONFIG", "SET", "a", "b", "c"),
    ("CONFIG", "SET", "a"),
    ("CONFIG", "GET"),
    ("CONFIG", "NOSUCH"),
    ("CONFIG",),
    ("CONFIG", "REWRITE"),
    ("CONFIG", "REWRITE", "x"),
    ("CONFIG", "HELP"),
])
def test_config_errors_match_redis(conns, args):
    both(conns, *args)


SETS = [
    ("maxmemory", "1k"), ("maxmemory", "1KB"), ("maxmemory", "3mb"), ("maxmemory", "2G"),
    ("maxmemory", "1gb"), ("maxmemory", "5b"), ("maxmemory", ""), ("maxmemory", "mb"),
    ("maxmemory", "18446744073709551616"), ("maxmemory", "99999999999gb"),
    ("maxmemory-clients", "10%"), ("maxmemory-clients", "0%"), ("maxmemory-clients", "1mb"),
    ("hz", "1000"), ("hz", "0"), ("hz", "20"),
    ("notify-keyspace-events", "KEA"), ("notify-keyspace-events", "Kn"),
    ("notify-keyspace-events", "$lshzxetdgn"), ("notify-keyspace-events", "gE"),
    ("notify-keyspace-events", "xKm"), ("notify-keyspace-events", ""),
    ("save", ""), ("save", "+5 0"), ("save", "100 1 200 2"), ("save", "5 -0"),
    ("client-output-buffer-limit", "normal 1mb 2k 3"),
    ("client-output-buffer-limit", "replica 1gb 1 1 pubsub 0 0 0"),
    ("client-output-buffer-limit", "slave 2 3 4"), ("client-output-buffer-limit", ""),
    ("oom-score-adj", "relative"), ("oom-score-adj", "ABSOLUTE"), ("oom-score-adj-values", "1 2 3"),
    ("oom-score-adj-values", "1  2"), ("oom-score-adj-values", "-5 0 +7"),
    ("shutdown-on-sigint", "nosave NOW"), ("shutdown-on-sigint", "now default"),
    ("shutdown-on-sigterm", "force force"),
    ("latency-tracking-info-percentiles", "50 99.90 100.0"),
    ("latency-tracking-info-percentiles", ""), ("latency-tracking-info-percentiles", "0.5"),
    ("slave-read-only", "no"), ("replica-read-only", "YES"),
    ("hash-max-ziplist-entries", "100"), ("lua-time-limit", "100"),
    ("list-max-ziplist-size", "-5"), ("slowlog-log-slower-than", "-1"),
    ("maxmemory-policy", "ALLKEYS-LRU"), ("appendfsync", "always"),
    ("ignore-warnings", "a b"), ("proc-title-template", "{title} {port} x"),
    ("cluster-announce-hostname", "a.b-c"), ("masterauth", "pw"), ("masteruser", "u"),
    ("tls-port", "0"), ("active-expire-effort", "10"), ("lfu-log-factor", "3"),
    ("proto-max-bulk-len", "1mb"), ("client-query-buffer-limit", "2mb"),
    ("repl-backlog-size", "1kb"), ("stream-node-max-bytes", "4kb"),
]


@pytest.mark.parametrize("name,value", SETS)
def test_config_set_then_get_matches_redis(conns, name, value):
    old = {k: v for k, v in as_dict(conns[1], name).items()}
    try:
        both(conns, "CONFIG", "SET", name, value)
        both(conns, "CONFIG", "GET", name)
    finally:
        for k, v in old.items():
            both(conns, "CONFIG", "SET", k, v)


def test_config_set_several_pairs(conns):
    try:
        both(conns, "CONFIG", "SET", "maxmemory", "10mb", "hz", "20", "timeout", "5")
        assert as_dict(conns[0], "maxmemory", "hz", "timeout") == {
            b"maxmemory": b"10485760", b"hz": b"20", b"timeout": b"5"}
        # replica-read-only and its alias are distinct entries: no duplicate error.
        both(conns, "CONFIG", "SET", "replica-read-only", "yes", "slave-read-only", "no")
        both(conns, "CONFIG", "GET", "replica-read-only")
    finally:
        both(conns, "CONFIG", "SET", "maxmemory", "0", "hz", "10", "timeout", "0",
             "replica-read-only", "yes")


def test_config_set_rolls_back_every_pair(conns):
    before = as_dict(conns[0], "maxmemory", "hz", "loglevel", "save")
    both(conns, "CONFIG", "SET", "maxmemory", "10mb", "hz", "20", "save", "60 1",
         "loglevel", "bogus")
    assert as_dict(conns[0], "maxmemory", "hz", "loglevel", "save") == before
    both(conns, "CONFIG", "GET", "maxmemory")
    both(conns, "CONFIG", "GET", "save")


def test_config_get_hidden_needs_exact_name(conns):
    assert as_dict(conns[0], "*panic*") == {}
    assert as_dict(conns[0], "use-exit-on-panic") == {b"use-exit-on-panic": b"no"}


def test_requirepass_is_redacted_from_slowlog(pair):
    vm, rd = pair
    for server in pair:
        conn = RawConnection(server.port)
        try:
            conn.command("CONFIG", "SET", "slowlog-log-slower-than", "0")
            conn.command("SLOWLOG", "RESET")
            conn.command("CONFIG", "SET", "requirepass", "sekret")
            conn.command("CONFIG", "SET", "requirepass", "", "slowlog-log-slower-than", "10000")
            log = conn.command("SLOWLOG", "GET")
            assert b"sekret" not in log and b"(redacted)" in log
        finally:
            conn.close()


def test_config_resetstat(pair):
    conn = RawConnection(pair[0].port)
    try:
        conn.command("SET", "k", "v")
        conn.command("GET", "k")
        conn.command("NOSUCHCOMMAND")
        conn.command("INCR", "k")
        assert b"cmdstat_get:calls=" in conn.command("INFO", "commandstats")
        assert b"errorstat_ERR" in conn.command("INFO", "errorstats")
        assert conn.command("CONFIG", "RESETSTAT") == b"+OK\r\n"
        stats = conn.command("INFO", "commandstats")
        assert b"cmdstat_get:" not in stats and b"cmdstat_set:" not in stats
        assert b"errorstat_" not in conn.command("INFO", "errorstats")
        info = conn.command("INFO", "stats")
        assert b"total_error_replies:0\r\n" in info
        assert b"total_connections_received:0\r\n" in info
    finally:
        conn.close()


def test_seed_config_is_visible(tmp_path):
    server = start_vermilion(tmp_path, config_text="maxmemory 2mb\nmaxmemory-policy allkeys-lru\n")
    try:
        conn = RawConnection(server.port)
        assert as_dict(conn, "maxmemory", "maxmemory-policy") == {
            b"maxmemory": b"2097152", b"maxmemory-policy": b"allkeys-lru"}
        conn.close()
    finally:
        server.stop()


REWRITE_SEED = """# top comment
maxmemory 2mb
save 60 1
save 300 10
slave-read-only no
hash-max-ziplist-entries 100
loglevel notice


# end comment
hz 10
timeout 7
"""


def _rewrite(start, tmp_path) -> tuple[str, str, object]:
    """Start with REWRITE_SEED, CONFIG SET, CONFIG REWRITE; the file normalised (port
    and dir differ per process), as written, and the stopped server."""
    server = start(tmp_path, config_text=REWRITE_SEED)
    conn = RawConnection(server.port)
    try:
        assert conn.command("CONFIG", "SET", "maxmemory", "0", "hz", "20", "timeout", "0",
                            "appendfsync", "always", "notify-keyspace-events", "Ex",
                            "client-output-buffer-limit", "pubsub 1mb 0 0",
                            "ignore-warnings", 'a "b"') == b"+OK\r\n"
        assert conn.command("CONFIG", "REWRITE") == b"+OK\r\n"
    finally:
        conn.close()
        server.stop()
    raw = (tmp_path / f"server-{server.port}.conf").read_text()
    text = raw.replace(f"port {server.port}\n", "port P\n").replace(
        f'dir "{tmp_path}"\n', 'dir "D"\n')
    return text, raw, server


def test_config_rewrite_matches_redis(tmp_path):
    (tmp_path / "vm").mkdir()
    (tmp_path / "rd").mkdir()
    mine, raw, _ = _rewrite(start_vermilion, tmp_path / "vm")
    theirs, _, _ = _rewrite(start_redis, tmp_path / "rd")
    head_mine, _, tail_mine = mine.partition("# Generated by CONFIG REWRITE\n")
    head_theirs, _, tail_theirs = theirs.partition("# Generated by CONFIG REWRITE\n")
    assert head_mine == head_theirs
    assert "maxmemory 0\n" in head_mine and "hash-max-listpack-entries 100\n" in head_mine
    # Redis appends in hash order; its ACL 'user' lines come too (the default user).
    assert set(tail_mine.splitlines()) == set(tail_theirs.splitlines())
    assert "user default on nopass ~* &* +@all" in tail_mine.splitlines()
    # Round trip: the rewritten file starts a server with the same values.
    again = start_vermilion(tmp_path / "vm", config_text=raw)
    try:
        conn = RawConnection(again.port)
        got = as_dict(conn, "maxmemory", "hz", "timeout", "appendfsync", "save",
                      "notify-keyspace-events", "client-output-buffer-limit",
                      "ignore-warnings", "replica-read-only", "hash-max-listpack-entries")
        conn.close()
    finally:
        again.stop()
    assert got == {
        b"maxmemory": b"0", b"hz": b"20", b"timeout": b"0", b"appendfsync": b"always",
        b"save": b"", b"notify-keyspace-events": b"xE",
        b"client-output-buffer-limit":
            b"normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 0 0",
        b"ignore-warnings": b'a "b"', b"replica-read-only": b"no",
        b"hash-max-listpack-entries": b"100"}


def test_config_set_port_and_bind_rebind_listeners(tmp_path, pair):
    from conftest import free_port

    server = start_vermilion(tmp_path)
    try:
        conn = RawConnection(server.port)
        new_port = free_port()
        assert conn.command("CONFIG", "SET", "port", new_port) == b"+OK\r\n"
        moved = RawConnection(new_port)
        assert moved.command("PING") == b"+PONG\r\n"
        with pytest.raises(OSError):
            RawConnection(server.port)
        # A port in use: refused as Redis does, the old listener keeps serving.
        real = RawConnection(pair[1].port)
        mine = moved.command("CONFIG", "SET", "port", pair[1].port)
        assert mine == real.command("CONFIG", "SET", "port", new_port)
        assert mine == (b"-ERR CONFIG SET failed (possibly related to argument 'port') - "
                        b"Unable to listen on this port. Check server logs.\r\n")
        real.close()
        assert RawConnection(new_port).command("PING") == b"+PONG\r\n"
        assert moved.command("CONFIG", "GET", "port") == b"*2\r\n$4\r\nport\r\n$%d\r\n%d\r\n" % (
            len(str(new_port)), new_port)
        # An address this host does not have: Redis refuses it unless optional ("-").
        error = moved.command("CONFIG", "SET", "bind", "127.0.0.1 10.255.255.1")
        assert error == (b"-ERR CONFIG SET failed (possibly related to argument 'bind') - "
                         b"Failed to bind to specified addresses.\r\n")
        assert RawConnection(new_port).command("PING") == b"+PONG\r\n"
        assert moved.command("CONFIG", "SET", "bind", "127.0.0.1 -10.255.255.1") == b"+OK\r\n"
        assert RawConnection(new_port).command("PING") == b"+PONG\r\n"
    finally:
        server.stop()


def test_config_set_bind_unavailable_matches_redis(conns):
    both(conns, "CONFIG", "SET", "bind", "127.0.0.1 10.255.255.1")
    both(conns, "CONFIG", "GET", "bind")


def test_protected_configs_local(tmp_path):
    """enable-protected-configs local: a loopback client may set dir and dbfilename."""
    got = []
    for start, name in ((start_vermilion, "vm"), (start_redis, "rd")):
        cwd = tmp_path / name
        (cwd / "sub").mkdir(parents=True)
        server = start(cwd, ["--enable-protected-configs", "local"])
        conn = RawConnection(server.port)
        try:
            replies = [conn.command("CONFIG", "SET", "dir", str(cwd / "sub")),
                       conn.command("CONFIG", "SET", "dir", "/nonexistent/dir"),
                       conn.command("CONFIG", "SET", "dbfilename", "x.rdb"),
                       conn.command("CONFIG", "GET", "dbfilename")]
            dir_reply = conn.command("CONFIG", "GET", "dir")
            assert dir_reply.endswith(b"\r\n" + str(cwd / "sub").encode() + b"\r\n")
            got.append(replies)
        finally:
            conn.close()
            server.stop()
    assert got[0] == got[1]
    assert got[0][1] == (b"-ERR CONFIG SET failed (possibly related to argument 'dir') - "
                         b"No such file or directory\r\n")


# Values every directive is tried with; the replies and the value read back must be
# Redis's. Skipped: what changes the process (port, bind, dir, daemonize...), what Redis
# itself applies slowly (maxclients raises the fd limit in steps), and auth.
FUZZ_VALUES = ["", "0", "-1", "1", "1.5", "yes", "NO", "1k", "1KB", "5%", "-100%",
               "99999999999999999999", "2147483648", "4294967296", "abc", "a b", "0777",
               " 1", "+1", "01", "1 2 3", "normal 1 2 3", "9223372036854775808", "0x10",
               "local", "1e3"]
FUZZ_SKIP = {"dir", "port", "bind", "daemonize", "requirepass", "masterauth", "appendonly",
             "logfile", "oom-score-adj", "oom-score-adj-values", "crash-log-enabled",
             "maxclients"}


def _pipeline(conn, commands) -> list:
    """Send every command in one write, then read the replies (fast under load)."""
    data = b""
    for args in commands:
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        data += b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    conn.send(data)
    return [conn.read_reply() for _ in commands]


def test_config_set_every_directive_like_redis(conns):
    names = sorted({n.decode() for n in as_dict(conns[1], "*")} - FUZZ_SKIP)
    defaults = as_dict(conns[1], *names)
    mismatches = []
    for name in names:
        commands = []
        for value in FUZZ_VALUES:
            commands += [("CONFIG", "SET", name, value), ("CONFIG", "GET", name),
                         ("CONFIG", "SET", name, defaults[name.encode()])]
        mine, theirs = _pipeline(conns[0], commands), _pipeline(conns[1], commands)
        mismatches += [(commands[i], mine[i], theirs[i])
                       for i in range(len(commands)) if mine[i] != theirs[i]]
    assert mismatches == []


def test_typed_values_other_modules_read():
    """The contract of config["name"] for the modules that read it (no server needed)."""
    from vermilion.config import Config, ConfigFileError, notify_flags

    config = Config()
    config.load_text("maxmemory 2mb\nsave 60 1\nsave 300 10\nbind 127.0.0.1 -::1\n"
                     "client-output-buffer-limit pubsub 1mb 0 0\nnotify-keyspace-events Ex\n"
                     "replicaof 10.0.0.1 6380\nmaxmemory-clients 5%\nhz 900\n"
                     "shutdown-on-sigterm now nosave\nappendonly yes\n")
    assert config["maxmemory"] == 2 * 1024 * 1024
    assert config["save"] == ((60, 1), (300, 10))
    assert config["bind"] == ("127.0.0.1", "-::1")
    assert config["client-output-buffer-limit"]["pubsub"] == (1024 * 1024, 0, 0)
    assert config["client-output-buffer-limit"]["replica"] == (256 * 1024**2, 64 * 1024**2, 60)
    assert config["notify-keyspace-events"] == "xE" and "x" in notify_flags("AE")
    assert config["replicaof"] == ("10.0.0.1", 6380)
    assert config["maxmemory-clients"] == -5  # a percentage, stored negative as Redis does
    assert config["hz"] == 500
    assert config["shutdown-on-sigterm"] == "nosave now"
    assert config["appendonly"] is True and config["requirepass"] == ""
    with pytest.raises(ConfigFileError) as info:
        config.load_text("hz 10\n\nmaxmemory lots\n")
    assert (info.value.line_number, info.value.line, info.value.reason) == (
        3, "maxmemory lots", "argument must be a memory value")


# -- start-up: the same argv / config file given to vermilion-server and redis-server --------
#
# Each case runs both binaries side by side (in parallel, on free loopback ports) and
# compares what came out: the values CONFIG GET reads back when both start, or the exit
# status and the FATAL CONFIG FILE ERROR block (stderr, byte for byte) when they fail.

import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

from conftest import VERMILION, free_port, require_binary  # noqa: E402


def _launch(binary, cwd, args, config, stdin, first=None):
    """The config file first (t.conf, or `first` as given), then --port/--bind, then the
    case's args (a '-' that must be the first argument stays first). No --save "": some
    cases are about save."""
    port = free_port()
    argv = [str(binary)]
    if config is not None:
        (cwd / "t.conf").write_bytes(config.encode() if isinstance(config, str) else config)
        argv.append("t.conf")
    elif first is not None:
        argv.append(first)
    args = list(args)
    if args[:1] == ["-"]:
        argv.append(args.pop(0))
    argv += ["--port", str(port), "--bind", "127.0.0.1", *args]
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    if stdin is not None:
        proc.stdin.write(stdin.encode() if isinstance(stdin, str) else stdin)
    proc.stdin.close()
    return proc, port


def _outcome(proc, port, names, cwd):
    """("exit", status, stderr, last log message) or ("ok", {name: CONFIG GET value});
    the server's working directory reads as "T"."""
    here = str(cwd).encode()
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            out, err = proc.stdout.read(), proc.stderr.read()
            # The last log line's message (after "pid:X date # ").
            last = out.splitlines()[-1].split(b" # ", 1)[-1] if out.strip() else b""
            proc.stdout.close()
            proc.stderr.close()
            return ("exit", proc.returncode, err.replace(here, b"T"), last.replace(here, b"T"))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.02)
    else:
        proc.kill()
        raise AssertionError("server neither started nor exited")
    conn = RawConnection(port)
    try:
        values = {name: as_dict(conn, name).get(name.encode()) for name in names}
        return ("ok", {name: value.replace(here, b"T") if value else value
                       for name, value in values.items()})
    finally:
        conn.close()
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def start_both(tmp_path, args=(), config=None, names=(), stdin=None, files=None, first=None):
    """Run vermilion-server and redis-server alike; assert the same outcome; return it.
    `files` are written (sub-directories too) in each server's working directory."""
    launched = []
    for binary, sub in ((VERMILION, "vm"), (require_binary("redis-server"), "rd")):
        cwd = tmp_path / sub
        cwd.mkdir(parents=True)
        for name, text in (files or {}).items():
            (cwd / name).parent.mkdir(parents=True, exist_ok=True)
            (cwd / name).write_text(text)
        launched.append((*_launch(binary, cwd, args, config, stdin, first), cwd))
    mine, theirs = (_outcome(proc, port, names, cwd) for proc, port, cwd in launched)
    assert mine == theirs
    return mine


MULTI_ARG_NAMES = ("save", "client-output-buffer-limit", "oom-score-adj-values",
                   "shutdown-on-sigterm", "shutdown-on-sigint",
                   "latency-tracking-info-percentiles", "bind", "replicaof")


def test_multi_arg_configs_as_one_argument_on_the_command_line(tmp_path):
    # loadServerConfigFromString(): a MULTI_ARG_CONFIG with one non-empty argument is
    # split again with sdssplitargs() (so quotes and tabs inside it work too).
    got = start_both(tmp_path, [
        "--save", "3600 1 300 100 60 10000",
        "--client-output-buffer-limit", "normal 0 0 0 pubsub 32mb 8mb 60",
        "--oom-score-adj-values", "1 2 3", "--shutdown-on-sigterm", "nosave now",
        "--shutdown-on-sigint", "'now'  force", "--latency-tracking-info-percentiles",
        "50\t99", "--bind", "127.0.0.1 -::1", "--replicaof", "127.0.0.1 1"],
        names=MULTI_ARG_NAMES)
    assert got[1]["save"] == b"3600 1 300 100 60 10000"
    assert got[1]["client-output-buffer-limit"].endswith(b"pubsub 33554432 8388608 60")


def test_multi_arg_configs_as_one_argument_in_the_file(tmp_path):
    got = start_both(tmp_path, config=(
        'save 10 1\nsave "3600 1 300 100"\n'  # file save lines still accumulate
        'client-output-buffer-limit "replica 1mb 2mb 3 pubsub 1 2 3"\n'
        "oom-score-adj-values '1 2 3'\nlatency-tracking-info-percentiles \"50 \\\"99\\\"\"\n"
        'bind "127.0.0.1 -::1"\n'), args=["--bind", "127.0.0.1"], names=MULTI_ARG_NAMES)
    assert got[1]["save"] == b"10 1 3600 1 300 100"


def test_multi_arg_one_argument_with_unbalanced_quotes_is_no_arguments(tmp_path):
    # sdssplitargs() fails: the config is set with no arguments at all (no error).
    got = start_both(tmp_path, config="save 5 5\nsave \"1 '2\"\n", args=[
        "--client-output-buffer-limit", "normal 1 '2", "--latency-tracking-info-percentiles",
        '1 "2'], names=MULTI_ARG_NAMES)
    assert got[1]["save"] == b"5 5"
    got = start_both(tmp_path / "again", ["--save", '60 "1'], names=["save"])
    assert got[1]["save"] == b""


@pytest.mark.parametrize("args,config", [
    (["--save", "60 x"], None),
    (["--save", "60 1 300"], None),
    (["--oom-score-adj-values", "1 '2"], None),
    (["--oom-score-adj-values", "1 2 3 4"], None),
    (["--client-output-buffer-limit", "normal 1 1"], None),
    (["--shutdown-on-sigint", "save nosave"], None),
    (["--replicaof", "127.0.0.1"], None),
    (["--notify-keyspace-events", "K E"], None),  # not a MULTI_ARG config
    (["--rename-command", "get foo"], None),  # a directive, not a config: not split
    (["--maxmemory", "1 mb"], None),
    ([], 'rename-command "get foo"\n'),
    ([], 'client-output-buffer-limit "replica 1mb 2mb 3" pubsub 1 2 3\n'),  # 2+ args: as is
    ([], 'dir "/ /"\n'),
    ([], 'bind "' + " ".join(f"10.0.0.{i}" for i in range(17)) + '"\n'),
])
def test_multi_arg_one_argument_errors(tmp_path, args, config):
    assert start_both(tmp_path, args, config)[:2] == ("exit", 1)


def test_config_set_multi_arg_one_value(conns):
    # performInterfaceSet(): CONFIG SET splits on single spaces (no quotes, no tabs).
    try:
        for name, value in (("save", "3600 1 300 100"), ("save", "60 '1'"), ("save", "\t60 1"),
                            ("client-output-buffer-limit", "normal 0 0 0 pubsub 32mb 8mb 60"),
                            ("client-output-buffer-limit", "normal  0 0 0"),
                            ("oom-score-adj-values", "1\t2 3"), ("bind", "127.0.0.1 -::1"),
                            ("latency-tracking-info-percentiles", "50  99")):
            both(conns, "CONFIG", "SET", name, value)
            both(conns, "CONFIG", "GET", name)
    finally:
        both(conns, "CONFIG", "SET", "save", "", "bind", "127.0.0.1",
             "client-output-buffer-limit",
             "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60")


def test_dir_is_entered_while_the_file_is_read(tmp_path):
    # setConfigDirOption() chdir()s at once: later includes and 'dir' lines are relative
    # to it, and a bad 'dir' fails at its own line even if a later 'dir' would do.
    files = {"inc.conf": "hz 3\n", "sub/inc.conf": "hz 7\n", "sub/inner/x.conf": "hz 11\n"}
    got = start_both(tmp_path / "a", config="dir sub\ninclude inc.conf\n", names=["hz", "dir"],
                     files=files)
    assert got[1] == {"hz": b"7", "dir": b"T/sub"}
    got = start_both(tmp_path / "b", config="dir sub\ndir inner\ninclude x.conf\n",
                     names=["hz", "dir"], files=files)
    assert got[1] == {"hz": b"11", "dir": b"T/sub/inner"}
    got = start_both(tmp_path / "c", config="dir /nonexistent\ndir /tmp\nbogus\n")
    assert b"at line 1\n" in got[2] and got[2].endswith(b"No such file or directory\n")
    start_both(tmp_path / "d", config="dir t.conf\n")
    # The log file is checked (created) in the new directory.
    start_both(tmp_path / "e", config="dir sub\nlogfile l.log\n", names=["logfile"],
               files={"sub/keep": ""})
    assert (tmp_path / "e" / "vm" / "sub" / "l.log").exists()
    assert not (tmp_path / "e" / "vm" / "l.log").exists()


FILE_CASES = [
    # sdssplitargs() quoting: escapes, a closing quote glued to a word, a lone quote.
    ('ignore-warnings "a\\x41\\x4\\n\\"" \'b\\\'c\'\n', None),
    ('maxmemory "1mb"x\n', None),
    ("maxmemory '1mb'x\n", None),
    ('maxmemory "1mb\\"\n', None),
    ('maxmemory "1mb\\\n', None),
    ("port 6379 # not a comment\n", None),
    # trimming and separators: \r\n endings, tabs, a leading \v is blank, inside it is not
    ("maxmemory\t1mb\r\nhz 5\r\n", ["maxmemory", "hz"]),
    ("\v maxmemory 1mb\n", ["maxmemory"]),
    ("maxmemory\v1mb\n", None),
    # values: booleans are yes/no only, memory units (k = 1000, kb = 1024), percents
    ("appendonly YES\nactiverehashing No\n", ["appendonly", "activerehashing"]),
    ("appendonly 1\n", None), ("appendonly true\n", None), ('appendonly ""\n', None),
    ("maxmemory 1k\nproto-max-bulk-len 2Gb\nrepl-backlog-size 3MB\n",
     ["maxmemory", "proto-max-bulk-len", "repl-backlog-size"]),
    ("maxmemory 1.5mb\n", None), ("maxmemory +1\n", None), ("maxmemory 1 gb\n", None),
    ("maxmemory-clients 5%\n", ["maxmemory-clients"]),
    ("maxmemory-clients 5%%\n", None), ("maxmemory-clients -5%\n", None),
    ("timeout 1.0\n", None), ("timeout 99999999999\n", None), ("loglevel DEBUG\n", ["loglevel"]),
    # the last of repeated single-value directives wins; names are case-insensitive
    ("hz 5\nHZ 6\nSlave-Read-Only no\n", ["hz", "replica-read-only"]),
    # C's tolower(): a Kelvin sign is not a 'k'
    ("maxmemory 1\u212ab\n", None), ("tcp-\u212aeepalive 1\n", None),
    # deprecated directives, module options, odd directives
    ("list-max-ziplist-entries 1 2\n", None), ("lua-replicate-commands\n", None),
    ("foo.bar\n", None), ("sentinel\nhz 5\n", ["hz"]),
    ("rename-command get get\n", ["hz"]),  # the old name goes first: no "already exists"
    ("rename-command get set\n", None),
    # save: "" clears, then lines accumulate again
    ('save 60 1\nsave ""\nsave 70 2\nsave 80 3\n', ["save"]),
    ('save ""\nsave 70 2\n', ["save"]), ("save 0 1\n", None), ('save "" 1\n', None),
    # checks made after the last line: no line number
    ("cluster-enabled yes\nreplicaof 127.0.0.1 1\n", None),
    # what Redis does next with the config and Vermilion cannot: abort alike
    ("tls-port 1\n", None), ("loadmodule /nonexistent/mod.so\n", None),
    ("foo.bar 1 2\n", None),
]


@pytest.mark.parametrize("config,names", FILE_CASES)
def test_config_file_parsing_like_redis(tmp_path, config, names):
    got = start_both(tmp_path, config=config, names=names or ())
    assert got[0] == ("ok" if names else "exit")


def test_config_file_error_bytes_are_printed_raw(tmp_path):
    # The '>>> line' shows the line's bytes as they are, not Python escapes; a NUL ends
    # what fgets() + sdscat() keep of that line (so the next line is glued on).
    got = start_both(tmp_path, config=b"maxmemory \xff\xfe\n")
    assert b">>> 'maxmemory \xff\xfe'" in got[2]
    got = start_both(tmp_path / "nul", config=b"hz 5\0junk\nfoo\n")
    assert b">>> 'hz 5foo'" in got[2]


@pytest.mark.parametrize("args,stdin,names", [
    (["-", "--hz", "5", "-"], "timeout 3\n", ["hz", "timeout"]),  # '-' first and last
    (["--hz", "5", "-", "--timeout", "3"], None, None),  # a '-' in between is a value
    (["--hz", "-"], "timeout 3\n", None),  # the last '-' is stdin, so --hz has no value
    (["--save", "-"], "save 70 1\n", ["save"]),
    (["--maxmemory 1mb", "--hz", "7"], None, ["maxmemory", "hz"]),
    (["--maxmemory 1mb", "7"], None, None),
    (["--ignore-warnings", "a\"b'c\\d\te\x01"], None, ["ignore-warnings"]),
    (["-"], "hz 5\rtimeout 3\n", None),  # a lone \r stays inside its line
    (["--sentinel"], None, None),
])
def test_command_line_like_redis(tmp_path, args, stdin, names):
    got = start_both(tmp_path, args, stdin=stdin, names=names or ())
    assert got[0] == ("ok" if names else "exit")


@pytest.mark.parametrize("first,files,names", [
    # getAbsolutePath(): trimmed of blanks, made absolute before it is opened.
    (" x.conf\t", {"x.conf": "hz 6\n"}, ["hz"]),
    ("x.conf", {"x.conf": "bogus\n"}, None),
    ("missing.conf", {}, None),  # the error names the absolute path
    ("adir", {"adir/f": ""}, ["hz"]),  # fopen() opens a directory: an empty file
])
def test_config_file_path_like_redis(tmp_path, first, files, names):
    got = start_both(tmp_path, first=first, files=files, names=names or ())
    if first == "missing.conf":
        assert got[3] == b"Fatal error, can't open config file 'T/missing.conf': No such " \
                         b"file or directory"


def _oom_score(pid: int) -> int:
    with open(f"/proc/{pid}/oom_score_adj") as f:
        return int(f.read())


def _child_of(pid: int):
    import subprocess

    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def test_oom_score_adj_follows_the_role_and_children(pair):
    """setOOMScoreAdj(): the class value over the score the process started with,
    master/replica as the role changes, bgchild in a BGSAVE child; 'no' restores it."""
    seen = []
    for server in pair:
        client = server.client()
        base = _oom_score(server.proc.pid)
        client.config_set("oom-score-adj-values", "10 20 30")
        client.config_set("oom-score-adj", "yes")
        scores = [_oom_score(server.proc.pid) - base]
        client.config_set("oom-score-adj-values", "15 20 30")
        scores.append(_oom_score(server.proc.pid) - base)
        client.replicaof("localhost", 1)
        scores.append(_oom_score(server.proc.pid) - base)
        client.replicaof("no", "one")
        scores.append(_oom_score(server.proc.pid) - base)
        client.set("key-a", "value-a")
        client.config_set("rdb-key-save-delay", 1000000)
        client.bgsave()
        deadline = time.time() + 5
        child = None
        while time.time() < deadline:
            child = _child_of(server.proc.pid)
            if child is not None and _oom_score(child) - base == 30:
                break
            time.sleep(0.02)
        scores.append(_oom_score(child) - base if child else None)
        client.config_set("rdb-key-save-delay", 0)
        client.config_set("oom-score-adj", "no")
        scores.append(_oom_score(server.proc.pid) - base)
        seen.append(scores)
    assert seen[0] == seen[1] == [10, 15, 20, 15, 30, 0]
