"""Connection commands (PING, ECHO, QUIT, RESET, SELECT, SWAPDB, HELLO, AUTH) and
requirepass, compared byte for byte with a real redis-server 7.0."""

import re

import pytest
import redis

from pathlib import Path

from conftest import RawConnection, require_binary, start_redis, start_vermilion


def normalize(reply: bytes) -> bytes:
    # HELLO's reply carries the connection id, which differs between two servers.
    return re.sub(rb"(\$2\r\nid\r\n):\d+", rb"\1:ID", reply)


SEQUENCES = [
    [("PING",), ("PING", "x"), ("PING", "a", "b"), ("ECHO",), ("ECHO", "a", "b"), ("ECHO", ""),
     ("SELECT", "16"), ("SELECT", "-1"), ("SELECT", "x"), ("SELECT", "1.5"), ("SELECT", "1"),
     ("SWAPDB", "0", "x"), ("SWAPDB", "x", "0"), ("SWAPDB", "0", "99"), ("SWAPDB", "0", "1"),
     ("SWAPDB", "-1", "0")],
    [("AUTH", "x"), ("AUTH", "a", "b"), ("AUTH", "default", "x"), ("AUTH", "a", "b", "c"),
     ("HELLO", "4"), ("HELLO", "x"), ("HELLO", "3", "AUTH", "default"),
     ("HELLO", "3", "SETNAME", "a b"), ("HELLO", "3", "foo"),
     ("HELLO", "2", "AUTH", "default", "anything"), ("HELLO", "1"), ("HELLO", "-1"),
     ("HELLO", "3", "SETNAME"), ("HELLO",), ("HELLO", "3", "SETNAME", "bob"),
     ("CLIENT", "GETNAME"), ("RESET",), ("CLIENT", "GETNAME"), ("PING",)],
    [("HELLO", "3"), ("PING",), ("ECHO", "x"), ("RESET",), ("PING",), ("QUIT",)],
]


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_connection_commands_match_redis(raw, raw_real, sequence):
    for args in sequence:
        assert normalize(raw.command(*args)) == normalize(raw_real.command(*args)), args


REQUIREPASS_SEQUENCE = [
    ("GET", "x"), ("PING",), ("HELLO",), ("HELLO", "3"), ("HELLO", "3", "SETNAME", "a b"),
    ("AUTH", "wrong"), ("AUTH", "default", "wrong"), ("AUTH", "someone", "secret"),
    ("HELLO", "3", "AUTH", "default", "wrong"), ("GET", "x"), ("AUTH", "secret"),
    ("GET", "x"), ("RESET",), ("GET", "x"), ("HELLO", "3", "AUTH", "default", "secret"),
    ("GET", "x"), ("AUTH", "default", "secret"), ("QUIT",),
]


@pytest.fixture(scope="module")
def password_servers(tmp_path_factory):
    ours = start_vermilion(tmp_path_factory.mktemp("v"), ["--requirepass", "secret"])
    theirs = start_redis(tmp_path_factory.mktemp("r"), ["--requirepass", "secret"])
    yield ours, theirs
    ours.stop()
    theirs.stop()


def test_requirepass_matches_redis(password_servers):
    ours, theirs = password_servers
    a, b = RawConnection(ours.port), RawConnection(theirs.port)
    for args in REQUIREPASS_SEQUENCE:
        assert normalize(a.command(*args)) == normalize(b.command(*args)), args
    a.close()
    b.close()


def test_requirepass_with_redis_py(password_servers):
    ours, _ = password_servers
    client = ours.client(password="secret", protocol=3)
    assert client.ping()
    client.set("k", "v")
    assert client.get("k") == b"v"
    client.close()
    anonymous = ours.client()
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.get("k")
    anonymous.close()


def test_protected_mode_refuses_non_loopback_peers():
    """The refusal itself needs a non-loopback peer, which tests can't make: check the
    admission rule in-process with a stand-in for the connection."""
    from vermilion.config import Config
    from vermilion.server import DENIED_MESSAGE, Server

    class Peer:
        unix = False

        def __init__(self, addr):
            self.addr = addr

    server = Server(Config())
    assert server.admit(Peer("10.1.2.3:5000")) == DENIED_MESSAGE
    assert server.admit(Peer("[2001:db8::1]:5000")) == DENIED_MESSAGE
    for local in ("127.0.0.1:5000", "[::1]:5000"):
        assert server.admit(Peer(local)) is None
    # CONFIG SET requirepass gives the default user a password: no longer protected.
    apply_requirepass = server.hooks.config_apply["requirepass"]
    server.config.values["requirepass"] = "pw"
    apply_requirepass(server, "pw")
    assert server.admit(Peer("10.1.2.3:5000")) is None
    server.config.values["requirepass"] = ""
    apply_requirepass(server, "")
    server.config.values["protected-mode"] = False
    assert server.admit(Peer("10.1.2.3:5000")) is None
    # Byte for byte the text inside the real redis-server binary (typo included).
    binary = Path(require_binary("redis-server")).resolve().read_bytes()
    assert b"-" + DENIED_MESSAGE.encode() + b"\r\n" in binary


def test_select_and_swapdb_with_redis_py(r):
    r.set("in0", "a")
    r.execute_command("SWAPDB", 0, 1)
    assert r.get("in0") is None
    r.execute_command("SELECT", 1)
    assert r.get("in0") == b"a"
    r.execute_command("SWAPDB", 0, 1)
    r.execute_command("SELECT", 0)
    assert r.get("in0") == b"a"


def test_reset_ends_monitor_like_redis(vermilion_server, redis_server):
    def run(port: int) -> list[bytes]:
        watcher = RawConnection(port)
        out = [watcher.command("MONITOR"), watcher.command("RESET")]
        actor = RawConnection(port)
        actor.command("SET", "after-reset", "1")
        out.append(watcher.command("PING"))  # no feed line arrives before the PONG
        out.append(watcher.command("CLIENT", "INFO").split(b" flags=")[1][:2])
        watcher.close()
        actor.close()
        return out

    assert run(vermilion_server.port) == run(redis_server.port)
