"""Vermilion as a master: real redis-server 7.0 replicas follow it (replication.c's
master half), by full sync (disk and diskless) and by partial resync; WAIT,
min-replicas-to-write, the output-buffer limit of a slow replica, redis-cli --rdb."""

import os
import signal
import subprocess
import time

import pytest
import redis

from conftest import (NO_SYNC_DELAY, RawConnection, require_binary, start_redis, start_vermilion,
                      stop_all)
from replication_helpers import caught_up, dataset, info, link_up, wait_until

FAR_FUTURE_MS = 4102444800000  # 2100-01-01: the same absolute TTL on both sides


def fill(client) -> None:
    """Every type, in the encodings small and large collections get."""
    client.set("str", "hello")
    client.set("int", 12345)
    client.set("big", "x" * 5000)
    client.rpush("list:small", *range(5))
    client.rpush("list:big", *[f"item-{i}" for i in range(1000)])
    client.sadd("set:ints", *range(10))
    client.sadd("set:big", *[f"m{i}" for i in range(600)])
    client.hset("hash:small", mapping={"a": 1, "b": "two"})
    client.hset("hash:big", mapping={f"f{i}": i for i in range(600)})
    client.zadd("zset:small", {"a": 1.5, "b": -2, "c": 0.1})
    client.zadd("zset:big", {f"z{i}": i / 3 for i in range(300)})
    client.xadd("stream", {"f": "v"}, id="1-1")
    client.xadd("stream", {"g": "w"}, id="2-1")
    client.xgroup_create("stream", "group", id="0")
    client.xreadgroup("group", "consumer", {"stream": ">"}, count=1)
    client.set("ttl", "v")
    client.pexpireat("ttl", FAR_FUTURE_MS)
    c3 = redis.Redis(host="127.0.0.1", port=client.connection_pool.connection_kwargs["port"], db=3)
    c3.set("in-db3", "v3")
    client.function_load("#!lua name=lib\nredis.register_function('one', function() return 1 end)")


def write_families(client) -> None:
    """Writes whose stream form is a rewrite: relative expiries, floats, random pops,
    transactions, scripts, other databases."""
    client.set("ex", "v", ex=1000)
    client.expire("str", 2000)
    client.incrbyfloat("float", 1.5)
    client.hincrbyfloat("hash:small", "f", 2.25)
    client.spop("set:ints")
    client.spop("set:big", 3)
    pipe = client.pipeline(transaction=True)
    pipe.incr("counter").lpush("list:small", "x").zincrby("zset:small", 2, "a")
    pipe.execute()
    client.eval("redis.call('set', KEYS[1], ARGV[1]); redis.call('incr', KEYS[2])", 2, "s1", "c2", "v")
    client.fcall("one", 0)
    client.xadd("stream", {"h": "x"}, id="3-1")
    client.xack("stream", "group", "1-1")
    client.blmove("list:small", "list:other", 0, "LEFT", "RIGHT")
    c5 = redis.Redis(host="127.0.0.1", port=client.connection_pool.connection_kwargs["port"], db=5)
    c5.mset({"a": 1, "b": 2})
    client.set("short", "v", px=1)  # expires on the master: the replica gets a DEL
    time.sleep(0.01)
    client.get("short")
    client.delete("big")
    client.rename("int", "int2")


@pytest.fixture
def servers(tmp_path):
    started = []

    def start(kind, *args):  # a master's sync at once, unless args set the delay
        server = (start_vermilion if kind == "vermilion" else start_redis)(
            tmp_path, [*NO_SYNC_DELAY, *args])
        started.append(server)
        return server

    yield start
    stop_all(started)  # replicas first


def attach(replica_server, master_server):
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: link_up(replica), what="the replica's link")
    return replica


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_redis_replica_full_sync_then_stream(servers, diskless):
    master_server = servers("vermilion", "--repl-diskless-sync", diskless,
                            "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    fill(master)
    replica = attach(servers("redis"), master_server)
    wait_until(lambda: caught_up(master, replica), what="the full sync")
    assert dataset(replica) == dataset(master)
    assert replica.function_list()[0][1] == b"lib"  # [library_name, lib, ...]
    write_families(master)
    wait_until(lambda: caught_up(master, replica), what="the stream")
    assert dataset(replica) == dataset(master)
    assert replica.exists("short") == 0
    stats = info(master, "stats")
    assert stats["sync_full"] == 1
    # The RDB and the stream count as replication traffic, on both sides alike.
    received = info(replica, "stats")["total_net_repl_input_bytes"]
    assert 0 < received <= stats["total_net_repl_output_bytes"] <= received + 100
    replicas = info(master)
    assert replicas["connected_slaves"] == 1
    assert replicas["slave0"]["state"] == "online"
    assert replicas["slave0"]["port"] == replica.connection_pool.connection_kwargs["port"]


def test_wait_counts_acknowledging_replicas(servers):
    master_server = servers("vermilion", "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    assert master.wait(0, 0) == 0
    replica = attach(servers("redis"), master_server)
    master.set("k", "v")
    assert master.wait(1, 5000) == 1
    assert replica.get("k") == b"v"
    # Two replicas asked for, one exists: the timeout answers with the count.
    assert master.wait(2, 200) == 1
    role = master.execute_command("ROLE")
    assert role[0] == b"master" and role[1] == info(master)["master_repl_offset"]
    assert role[2][0][1] == str(replica.connection_pool.connection_kwargs["port"]).encode()
    with pytest.raises(redis.ResponseError, match="^WAIT cannot be used with replica"):
        # The same command on a replica: Redis's error, from the real one and ours.
        replica.wait(1, 10)


def test_partial_resync_after_the_link_drops(servers):
    master_server = servers("vermilion", "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    replica = attach(servers("redis"), master_server)
    master.set("before", "1")
    wait_until(lambda: caught_up(master, replica), what="sync")
    replica.client_kill_filter(_type="master")
    master.set("during", "2")  # may land before or after the reconnection: either way kept
    wait_until(lambda: caught_up(master, replica), what="the resync")
    master.set("after", "3")
    wait_until(lambda: caught_up(master, replica), what="the stream")
    assert replica.mget("before", "during", "after") == [b"1", b"2", b"3"]
    stats = info(master, "stats")
    assert stats["sync_full"] == 1
    assert stats["sync_partial_ok"] == 1


def test_psync2_a_promoted_redis_replica_takes_back_the_vermilion_master(servers):
    """The Vermilion master becomes a replica of its promoted replica and continues
    with a partial resync (replid2), not a full one."""
    master_server = servers("vermilion", "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    replica_server = servers("redis", "--repl-diskless-sync-delay", "0")
    replica = attach(replica_server, master_server)
    master.set("k", "v")
    wait_until(lambda: caught_up(master, replica), what="sync")
    replica.replicaof("no", "one")
    replica.set("written-on-the-new-master", "1")
    master.replicaof("127.0.0.1", replica_server.port)
    wait_until(lambda: caught_up(replica, master), what="the old master following")
    assert master.get("written-on-the-new-master") == b"1"
    assert info(replica, "stats")["sync_partial_ok"] == 1
    assert info(replica, "stats")["sync_full"] == 0


def test_min_replicas_to_write(servers):
    master_server = servers("vermilion", "--repl-diskless-sync-delay", "0",
                            "--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")
    master = master_server.client()
    with pytest.raises(redis.ResponseError, match="^NOREPLICAS Not enough good replicas to write."):
        master.set("k", "v")
    assert master.get("k") is None  # reads are never refused
    assert info(master)["min_slaves_good_slaves"] == 0
    attach(servers("redis"), master_server)
    wait_until(lambda: info(master)["min_slaves_good_slaves"] == 1, what="a good replica")
    assert master.set("k", "v")


def test_a_slow_replica_is_dropped_at_its_output_limit(servers):
    master_server = servers("vermilion", "--repl-diskless-sync-delay", "0",
                            "--client-output-buffer-limit", "replica 256kb 0 0")
    master = master_server.client()
    replica_server = servers("redis")
    attach(replica_server, master_server)
    os.kill(replica_server.proc.pid, signal.SIGSTOP)
    try:
        value = "x" * 10000
        for i in range(2000):  # 20 MB: far over what the socket buffers hold
            master.set(f"k{i % 10}", value)
            if i % 100 == 0 and info(master)["connected_slaves"] == 0:
                break
        wait_until(lambda: info(master)["connected_slaves"] == 0, what="the drop")
    finally:
        os.kill(replica_server.proc.pid, signal.SIGCONT)
    log = master_server.log_path.read_text()
    assert "scheduled to be closed ASAP for overcoming of output buffer limits" in log


def test_redis_cli_rdb_and_replica(servers, tmp_path):
    master_server = servers("vermilion")
    master = master_server.client()
    fill(master)
    out = tmp_path / "dump-from-cli.rdb"
    cli = require_binary("redis-cli")
    done = subprocess.run([cli, "-p", str(master_server.port), "--rdb", str(out)],
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    # redis-server loads what redis-cli received, keys and function included.
    loaded = servers("redis", "--dir", str(tmp_path), "--dbfilename", out.name)
    assert dataset(loaded.client()) == dataset(master)
    assert info(master)["connected_slaves"] == 0  # an rdb-only replica leaves at once


def test_sync_errors(servers):
    master = servers("vermilion").client()
    with pytest.raises(redis.ResponseError, match="^Unrecognized REPLCONF option: nope"):
        master.execute_command("REPLCONF", "nope", "1")
    with pytest.raises(redis.ResponseError, match="^syntax error"):
        master.execute_command("REPLCONF", "listening-port")
    assert master.execute_command("REPLCONF", "listening-port", "1234") == b"OK"
    with pytest.raises(redis.ResponseError, match="^value is not an integer or out of range"):
        master.execute_command("WAIT", "x", "0")
    with pytest.raises(redis.ResponseError, match="^timeout is negative"):
        master.execute_command("WAIT", "1", "-1")


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_a_master_restarted_on_its_rdb_continues_its_history(servers, tmp_path, kind):
    """SHUTDOWN SAVE writes repl-id/repl-offset into the RDB file; the restarted master
    keeps that history as its secondary id, so its replica resynchronizes partially
    (loadDataFromDisk, the iAmMaster case) — Redis does it, Vermilion the same."""
    data_dir = tmp_path / "master"
    data_dir.mkdir()
    master_server = servers(kind, "--dir", str(data_dir), "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    fill(master)  # before the replica: XREADGROUP's stream form drifts entries-read
    replica = attach(servers("redis"), master_server)
    master.set("streamed", 1)
    wait_until(lambda: caught_up(master, replica), what="the sync")
    replid = info(master)["master_replid"]
    started = time.time()
    cli = require_binary("redis-cli")
    subprocess.run([cli, "-p", str(master_server.port), "SHUTDOWN", "SAVE"], timeout=15)
    master_server.proc.wait(10)
    # Waited for the replica's acknowledgement (a REPLCONF GETACK away), not the 10 s
    # of shutdown-timeout; the replica holds everything the master wrote.
    assert time.time() - started < 5
    offset = info(replica)["slave_repl_offset"]
    master_server.start()
    master = master_server.client()
    restarted = info(master)
    assert restarted["master_replid2"] == replid
    assert restarted["second_repl_offset"] == offset + 1
    assert restarted["repl_backlog_active"] == 1
    wait_until(lambda: caught_up(master, replica), what="the resync")
    master.set("after-restart", 1)
    wait_until(lambda: caught_up(master, replica), what="the stream")
    assert dataset(replica) == dataset(master)
    stats = info(master, "stats")
    assert (stats["sync_full"], stats["sync_partial_ok"]) == (0, 1)


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_shutdown_waits_for_a_lagging_replica_and_can_be_aborted(servers, kind):
    """prepareForShutdown(): with a replica behind, SHUTDOWN blocks (writes paused) up to
    shutdown-timeout; SHUTDOWN ABORT ends the wait; SIGTERM waits the same way, then
    exits with the lag logged when the replica never catches up."""
    master_server = servers(kind, "--shutdown-timeout", "2", "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    replica_server = servers("redis")
    replica = attach(replica_server, master_server)
    master.set("k", "v")
    wait_until(lambda: caught_up(master, replica), what="the sync")
    os.kill(replica_server.proc.pid, signal.SIGSTOP)  # it will not acknowledge
    master.set("unacknowledged", 1)
    # One buffer shared by the backlog and the replicas' output, as Redis 7.0 reports it.
    memory = info(master, "memory")
    assert memory["mem_total_replication_buffers"] >= info(master)["repl_backlog_histlen"] > 0

    blocked = RawConnection(master_server.port)
    blocked.send(b"*1\r\n$8\r\nSHUTDOWN\r\n")
    blocked.sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        blocked.read_reply()
    assert 0 < info(master, "server")["shutdown_in_milliseconds"] <= 2000
    assert master.get("k") == b"v"  # reads go on; writes wait
    other = RawConnection(master_server.port)
    assert other.command("SHUTDOWN", "ABORT") == b"+OK\r\n"
    blocked.sock.settimeout(5)
    assert blocked.read_reply() == b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    assert other.command("SHUTDOWN", "ABORT") == b"-ERR No shutdown in progress.\r\n"
    assert other.command("SET", "after-abort", "1") == b"+OK\r\n"
    started = time.time()
    master_server.proc.send_signal(signal.SIGTERM)
    master_server.proc.wait(10)
    assert 1.5 < time.time() - started < 6  # the 2 s of shutdown-timeout, then out
    log = master_server.log_path.read_text()
    assert "Waiting for replicas before shutting down." in log
    assert "Shutdown manually aborted." in log
    assert "Lagging replica" in log and "0 of 1 replicas are in sync when shutting down." in log


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_failover_to_a_stopped_replica_times_out_on_time(servers, kind):
    """FAILOVER TO ... TIMEOUT 500 to a replica that never catches up is aborted about
    500 ms later: replicationCron runs ten times a second while failing over."""
    master_server = servers(kind)
    master = master_server.client()
    replica_server = servers("redis")
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: info(master).get("slave0", {}).get("state") == "online", 15, "sync")
    os.kill(replica_server.proc.pid, signal.SIGSTOP)
    try:
        master.set("case", 1)
        started = time.time()
        assert master.execute_command("FAILOVER", "TO", "127.0.0.1", replica_server.port,
                                      "TIMEOUT", 500) == b"OK"
        wait_until(lambda: info(master)["master_failover_state"] == "no-failover", 2.0,
                   "the failover to be aborted")
        assert time.time() - started < 0.8
        assert info(master)["role"] == "master"
        assert master.set("after", 1)  # writes are no longer paused
    finally:
        os.kill(replica_server.proc.pid, signal.SIGCONT)
    wait_until(lambda: caught_up(master, replica), 15, "caught up")
