"""SLOWLOG against real redis-server: what is logged for commands that hide their
secrets (redactClientCommandArgument()) and for blocked commands, which are logged when
they are served (updateStatsOnUnblock()), as they were sent."""

import time

import redis

from conftest import RawConnection


def logged_args(server) -> list:
    client = redis.Redis(port=server.port)
    port = str(server.port).encode()
    return [entry["command"].replace(port, b"PORT") for entry in client.slowlog_get(10)]


def both_servers(vermilion_server, redis_server, scenario):
    out = []
    for server in (vermilion_server, redis_server):
        client = redis.Redis(port=server.port)
        client.config_set("slowlog-log-slower-than", 0)
        client.slowlog_reset()
        try:
            scenario(server)
        finally:
            client.config_set("slowlog-log-slower-than", 10000)
        out.append(logged_args(server))
    return out


def test_secrets_are_redacted(vermilion_server, redis_server):
    def scenario(server):
        conn = RawConnection(server.port)
        port = str(server.port)
        conn.command("MIGRATE", "127.0.0.1", port, "nokey", "9", "5000", "AUTH", "pw")
        conn.command("MIGRATE", "127.0.0.1", port, "nokey", "9", "5000", "AUTH2", "u", "pw")
        conn.command("ACL", "SETUSER", "slowlog-user", "on", ">secret")
        conn.command("ACL", "DELUSER", "slowlog-user")
        conn.close()

    mine, theirs = both_servers(vermilion_server, redis_server, scenario)
    assert mine == theirs
    assert not any(b"pw" in b" ".join([c]) or b"secret" in c for c in mine)


def test_blocked_command_is_logged_when_served(vermilion_server, redis_server):
    counts, newest = [], []

    def scenario(server):
        admin = RawConnection(server.port)
        admin.command("DEL", "slowlist")
        waiter = RawConnection(server.port)
        waiter.send(b"*3\r\n$5\r\nBLPOP\r\n$8\r\nslowlist\r\n$1\r\n0\r\n")
        time.sleep(0.2)
        before = redis.Redis(port=server.port).info("commandstats").get("cmdstat_blpop", {})
        admin.command("SLOWLOG", "RESET")
        admin.command("MULTI")
        admin.command("LPUSH", "slowlist", "foo")
        admin.command("EXEC")
        assert waiter.read_reply().startswith(b"*2\r\n")
        newest.append(logged_args(server)[0])
        after = redis.Redis(port=server.port).info("commandstats")["cmdstat_blpop"]
        counts.append(after["calls"] - before.get("calls", 0))
        waiter.close()
        admin.close()

    mine, theirs = both_servers(vermilion_server, redis_server, scenario)
    assert newest == [b"BLPOP slowlist 0"] * 2
    assert mine == theirs
    assert counts == [0, 0]  # its call was counted when it blocked, not again
