"""Behaviours of Redis's spawn-mode units (unit/client-eviction, unit/maxmemory,
unit/pause, unit/obuf-limits), each run on vermilion-server and on redis-server 7.0:
client eviction before a command (processCommand's evictClients), keys not expired
while clients are paused, RAND* with a huge negative count stopped by the output
buffer limit."""

import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from conftest import start_redis, start_vermilion


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """One vermilion-server and one redis-server for the module (each test restores
    the settings it changes)."""
    started = [start("--enable-debug-command", tmp_path_factory)
               for start in (_vermilion, _redis)]
    yield started
    for server in started:
        server.stop()


def _vermilion(flag, factory):
    return start_vermilion(factory.mktemp("vermilion"), [flag, "yes"])


def _redis(flag, factory):
    return start_redis(factory.mktemp("redis"), [flag, "yes"])


def _both(pair):
    for server in pair:
        server.client().flushall()
    return pair


def test_client_evicted_before_running_a_large_command(pair):
    # client-eviction.tcl "client evicted due to large argv": the command whose
    # arguments take the clients past maxmemory-clients is not run, its client is freed.
    for server in _both(pair):
        control = server.client()
        control.config_set("maxmemory-clients", 3_000_000)
        victim = server.client(retry=Retry(NoBackoff(), 0))
        victim.client_setname("victim")
        victim.mset({"k": "v", "k2": "v" * 1_000_000})
        assert victim.get("k") == b"v"
        with pytest.raises(redis.ConnectionError):
            victim.mset({"k": "v2", "k2": "v" * 3_000_000})
        names = [c["name"] for c in control.client_list()]
        assert "victim" not in names
        assert control.get("k") == b"v"
        assert control.info("stats")["evicted_clients"] == 1
        control.config_set("maxmemory-clients", 0)


def test_client_list_tot_mem_counts_the_multi_queue(pair):
    for server in _both(pair):
        control = server.client()
        queued = server.client()
        queued.client_setname("queued")
        pipe = queued.pipeline(transaction=False)
        pipe.execute_command("MULTI")
        pipe.execute_command("SET", "k", "v" * 100_000)
        pipe.execute()
        line = [c for c in control.client_list() if c["name"] == "queued"][0]
        assert 100_000 < int(line["tot-mem"]) < 300_000


def test_keys_not_expired_while_clients_are_paused(pair):
    # pause.tcl: a key past its TTL reads as gone, but is not deleted (no DEL
    # propagated) until the pause ends.
    for server in _both(pair):
        client = server.client()
        client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
        before = client.info("stats")["expired_keys"]
        client.set("k", "v", px=1)
        client.execute_command("CLIENT", "PAUSE", 100_000, "WRITE")
        time.sleep(0.01)
        assert client.get("k") is None
        assert client.info("stats")["expired_keys"] == before
        client.execute_command("CLIENT", "UNPAUSE")
        assert client.get("k") is None
        assert client.info("stats")["expired_keys"] == before + 1
        client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 1)


def test_random_picks_stop_at_the_output_limit(pair):
    # obuf-limits.tcl "HRANDFIELD with huge count stopped mid-run".
    for server in _both(pair):
        control = server.client()
        control.hset("h", "a", "b")
        control.sadd("s", "a")
        control.zadd("z", {"a": 1})
        control.config_set("client-output-buffer-limit", "normal 1000000 0 0")
        for command in (("HRANDFIELD", "h", -999_999_999), ("SRANDMEMBER", "s", -999_999_999),
                        ("ZRANDMEMBER", "z", -999_999_999, "WITHSCORES")):
            victim = server.client(retry=Retry(NoBackoff(), 0))
            with pytest.raises(redis.ConnectionError):
                victim.execute_command(*command)
        control.config_set("client-output-buffer-limit", "normal 0 0 0")
        assert control.ping()


def test_debug_config_rewrite_force_all_writes_defaults(tmp_path):
    # introspection.tcl: DEBUG CONFIG-REWRITE-FORCE-ALL, a restart, the same CONFIG GET.
    for start in (start_vermilion, start_redis):
        directory = tmp_path / start.__name__
        directory.mkdir()
        server = start(directory, ["--enable-debug-command", "yes"], config_text="hz 11\n")
        try:
            client = server.client()
            assert client.execute_command("DEBUG", "CONFIG-REWRITE-FORCE-ALL") == b"OK"
            written = next(directory.glob("server-*.conf")).read_text()
            assert "hz 11" in written
            assert "\nmaxmemory-clients 0\n" in written  # a default, written all the same
        finally:
            server.stop()


def test_client_unblock_error_counts_a_failed_call(pair):
    # info.tcl "errorstats: blocking commands": BLPOP calls=1, failed_calls=1.
    for server in _both(pair):
        control = server.client()
        control.config_resetstat()
        blocked = server.client(socket_timeout=5)
        blocked_id = blocked.client_id()
        conn = blocked.connection_pool.get_connection()
        conn.send_command("BLPOP", "nolist", 0)
        for _ in range(200):
            if control.info("clients")["blocked_clients"]:
                break
            time.sleep(0.01)
        assert control.client_unblock(blocked_id, error=True)
        with pytest.raises(redis.ResponseError):
            conn.read_response()
        stats = control.info("commandstats")["cmdstat_blpop"]
        assert (stats["calls"], stats["failed_calls"]) == (1, 1)
