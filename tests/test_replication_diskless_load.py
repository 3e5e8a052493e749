"""repl-diskless-load (replication.c readSyncBulkPayload with a socket rio): a replica
parses its master's RDB as it arrives. swapdb loads into a temp db while the old dataset
stays — served meanwhile (async_loading) when the master is the one it already followed,
refused with -LOADING otherwise — and swaps it in only once loaded whole; a failed
transfer leaves the old dataset. on-empty-db loads from the socket only into an empty
replica. Each scenario runs against a Vermilion replica and a real redis-server replica
of the same real master, and both must be seen doing the same.

The master side of a diskless sync (rdbPipeReadHandler): the child's pipe is read only
as fast as the slowest replica takes it, with Redis's log lines when replicas drop."""

import os
import signal
import time

import pytest

from conftest import RawConnection
from replication_helpers import caught_up, link_up, wait_until

LIB1 = "#!lua name=test\nredis.register_function('test', function() return 'hello1' end)"
LIB2 = "#!lua name=test\nredis.register_function('test', function() return 'hello2' end)"



def persistence(client, field):
    return client.info("persistence")[field]


def diskless_master(servers, *args):
    return servers("redis", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                   "--rdbcompression", "no", *args)


def log_of(server) -> str:
    return server.log_path.read_text()


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_swapdb_from_a_new_master_loads_aside_and_keeps_the_old_data_on_failure(
        servers, kind):
    master_server = diskless_master(servers)
    master = master_server.client()
    # Redis's replica answers clients every loading-process-events-interval-bytes only.
    replica_server = servers(kind, "--repl-diskless-load", "swapdb",
                             "--loading-process-events-interval-bytes", "1024")
    replica = replica_server.client()
    replica.execute_command("DEBUG", "POPULATE", 200, "slave", 10)
    replica.set("mykey", "myvalue")
    master.execute_command("DEBUG", "POPULATE", 300, "master", 20000)
    master.config_set("rdb-key-save-delay", 10000)  # 3 s of transfer
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: persistence(replica, "loading") == 1, 10, "loading")
    assert persistence(replica, "async_loading") == 0
    master.config_set("repl-diskless-sync-delay", 5)  # no new sync at once
    master.execute_command("CLIENT", "KILL", "TYPE", "replica")
    wait_until(lambda: persistence(replica, "loading") == 0, 10, "the load to fail")
    assert replica.get("mykey") == b"myvalue"
    assert replica.dbsize() == 201
    master.config_set("rdb-key-save-delay", 0)
    master.config_set("repl-diskless-sync-delay", 0)  # seen: the next sync can start
    wait_until(lambda: link_up(replica), 30, "the next sync")
    assert replica.get("mykey") is None
    assert replica.dbsize() == 300
    if kind == "vermilion":
        log = log_of(replica_server)
        assert "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to parser" \
            in log
        assert "Internal error in RDB reading offset" in log
        assert "MASTER <-> REPLICA sync: Discarding temporary DB in background" in log
        assert "MASTER <-> REPLICA sync: Swapping active DB with loaded DB" in log
        assert "Flushing old data" not in log


def _resync_same_master(master):
    """The replica's link dropped with a backlog too small to continue: a full sync
    from the master whose replication id the replica has."""
    pipe = master.pipeline(transaction=True)
    pipe.execute_command("CLIENT", "KILL", "TYPE", "replica")
    pipe.config_set("repl-backlog-size", 16384)
    for i in range(10):
        pipe.set(f"{i} string_{i}", "A" * 16384)
    pipe.execute()


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
@pytest.mark.parametrize("outcome", ["aborted", "successful"])
def test_swapdb_from_the_same_master_serves_the_old_data_meanwhile(servers, kind, outcome):
    master_server = diskless_master(servers)
    master = master_server.client()
    replica_server = servers(kind, "--repl-diskless-load", "swapdb",
                             "--replica-read-only", "no",
                             "--loading-process-events-interval-bytes", "1024")
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: link_up(replica), 15, "the first sync")
    replica.execute_command("DEBUG", "POPULATE", 300, "slave", 10)
    master.execute_command("DEBUG", "POPULATE", 300, "master", 20000)
    replica.set("mykey", "myvalue")
    replica.function_load(LIB1)
    master.function_load(LIB2)
    if outcome == "successful":
        _resync_same_master(master)
        wait_until(lambda: caught_up(master, replica), 30, "the full sync")
        assert replica.get("mykey") is None
        assert replica.fcall("test", 0) == b"hello2"
        assert replica.dbsize() == 310
        return
    master.config_set("rdb-key-save-delay", 10000)
    _resync_same_master(master)
    wait_until(lambda: persistence(replica, "async_loading") == 1, 10, "async_loading")
    assert persistence(replica, "loading") == 0
    assert replica.get("mykey") == b"myvalue"
    assert replica.fcall("test", 0) == b"hello1"
    assert replica.dbsize() == 301
    raw = RawConnection(replica_server.port)
    assert raw.command("REPLICAOF", "NO", "ONE").startswith(b"-LOADING")
    assert raw.command("CONFIG", "SET", "appendonly", "no").startswith(b"-LOADING")
    assert raw.command("PING") == b"+PONG\r\n"
    raw.close()
    master.config_set("repl-diskless-sync-delay", 5)
    master.execute_command("CLIENT", "KILL", "TYPE", "replica")
    wait_until(lambda: persistence(replica, "async_loading") == 0, 10, "the load to fail")
    assert replica.get("mykey") == b"myvalue"
    assert replica.fcall("test", 0) == b"hello1"
    assert replica.dbsize() == 301
    master.config_set("rdb-key-save-delay", 0)


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_on_empty_db_loads_from_the_socket_only_when_empty(servers, kind):
    master_server = diskless_master(servers)
    master = master_server.client()
    master.execute_command("DEBUG", "POPULATE", 1000, "k", 100)
    empty_server = servers(kind, "--repl-diskless-load", "on-empty-db")
    full_server = servers(kind, "--repl-diskless-load", "on-empty-db")
    full_server.client().set("mine", "v")
    for server in (empty_server, full_server):
        client = server.client()
        client.replicaof("127.0.0.1", master_server.port)
        wait_until(lambda: caught_up(master, client), 15, "sync")
        assert client.dbsize() == 1000
        assert client.get("mine") is None
    assert "from master with EOF to parser" in log_of(empty_server)
    assert "from master with EOF to disk" in log_of(full_server)


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_a_corrupt_or_cut_stream_fails_the_load_and_syncs_again(servers, kind):
    """A short read mid-payload (the link killed at random points, as Redis's 'diskless
    loading short read' does) never loads a partial dataset."""
    master_server = diskless_master(servers)
    master = master_server.client()
    master.function_load(LIB2)
    for i in range(30):
        master.set(f"s{i}", "x" * (i * 10000))
        master.hset(f"h{i}", mapping={f"f{j}": "y" * (j * 100) for j in range(50)})
        master.rpush(f"l{i}", *[f"e{j}" * (j + 1) for j in range(200)])
        master.xadd("stream", {"a": i})
    master.config_set("rdb-key-save-delay", 10000)  # 1.2 s a sync
    # A cut replica asks again at once: the master's next transfer waits 1 s, so that
    # the replica is seen between two loads, serving its old dataset.
    master.config_set("repl-diskless-sync-delay", 1)
    replica_server = servers(kind, "--repl-diskless-load", "swapdb",
                             "--loading-process-events-interval-bytes", "1024")
    replica = replica_server.client()
    replica.set("mine", "v")
    replica.replicaof("127.0.0.1", master_server.port)
    for attempt in range(4):
        wait_until(lambda: log_of(replica_server).count("Loading DB in memory") > attempt,
                   10, "loading")
        time.sleep(0.1 * attempt)
        master.execute_command("CLIENT", "KILL", "TYPE", "replica")
        wait_until(lambda: persistence(replica, "loading") == 0, 10, "the load to end")
        # The kill cut the payload: the old dataset stays.
        assert replica.get("mine") == b"v"
        assert replica.dbsize() == 1
    if kind == "vermilion":
        assert log_of(replica_server).count("Internal error in RDB reading offset") == 4
    master.config_set("rdb-key-save-delay", 0)
    master.config_set("repl-diskless-sync-delay", 0)
    wait_until(lambda: caught_up(master, replica), 30, "sync")
    assert replica.execute_command("DEBUG", "DIGEST") == master.execute_command("DEBUG", "DIGEST")
    assert replica.function_list(withcode=True)[0][-1] == LIB2.encode()


# -- the master's side of a diskless transfer ------------------------------------------------


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
@pytest.mark.parametrize("drop", ["no", "slow", "all"])
def test_the_rdb_pipe_goes_at_the_slowest_replicas_pace(servers, kind, drop):
    master_server = servers(kind, "--repl-diskless-sync", "yes",
                            "--repl-diskless-sync-delay", "5",
                            "--repl-diskless-sync-max-replicas", "2", "--rdbcompression", "no")
    master = master_server.client()
    master.execute_command("DEBUG", "POPULATE", 4000, "test", 10000)
    slow_server = servers("redis", "--repl-diskless-load", "swapdb",
                          "--key-load-delay", "500")  # 4000 keys: at least 2 s
    fast_server = servers("redis")
    slow, fast = slow_server.client(), fast_server.client()
    slow.replicaof("127.0.0.1", master_server.port)
    fast.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: "Loading DB in memory" in log_of(slow_server), 15, "loading")
    time.sleep(0.5)
    # The child is still writing: the slow replica holds the pipe back.
    assert persistence(master, "rdb_bgsave_in_progress") == 1
    master.incr(drop)
    alive = [slow, fast]
    if drop in ("slow", "all"):
        slow_server.proc.kill()
        alive.remove(slow)
    if drop == "all":
        fast_server.proc.kill()
        alive.remove(fast)
    wait_until(lambda: persistence(master, "rdb_bgsave_in_progress") == 0, 30, "the child")
    log = log_of(master_server)
    if drop == "all":
        wait_until(lambda: "Diskless rdb transfer, last replica dropped, killing fork child"
                   in log_of(master_server), 5, "the log line")
    else:
        assert f"Diskless rdb transfer, done reading from pipe, {len(alive)} replicas still up" \
            in log
    for replica in alive:
        wait_until(lambda: caught_up(master, replica), 30, "sync")
        assert replica.execute_command("DEBUG", "DIGEST") == \
            master.execute_command("DEBUG", "DIGEST")


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_a_replica_stuck_mid_transfer_is_dropped_after_repl_timeout(servers, kind):
    master_server = servers(kind, "--repl-diskless-sync", "yes",
                            "--repl-diskless-sync-delay", "0", "--rdbcompression", "no")
    master = master_server.client()
    master.execute_command("DEBUG", "POPULATE", 4000, "test", 10000)
    replica_server = servers("redis", "--repl-diskless-load", "swapdb",
                             "--key-load-delay", "1000")
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: "Loading DB in memory" in log_of(replica_server), 15, "loading")
    master.config_set("repl-timeout", 2)
    os.kill(replica_server.proc.pid, signal.SIGSTOP)
    wait_until(lambda: "Disconnecting timedout replica (full sync)" in log_of(master_server),
               15, "the timeout")
    wait_until(lambda: persistence(master, "rdb_bgsave_in_progress") == 0, 15, "the child")
    os.kill(replica_server.proc.pid, signal.SIGCONT)
    replica.config_set("key-load-delay", 0)  # stuck no more: the next sync at full speed
    master.config_set("repl-timeout", 60)
    wait_until(lambda: caught_up(master, replica), 60, "the next sync")


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_flushall_kills_the_child_writing_for_replicas(servers, kind):
    master_server = servers(kind, "--repl-diskless-sync", "yes",
                            "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    # 10 ms a key: the replica sees its first bytes after ~1 MB (1-3 s), the child would
    # go on for 10 s.
    master.config_set("rdb-key-save-delay", 10000)
    master.execute_command("DEBUG", "POPULATE", 1000, "test", 10000)
    replica_server = servers("redis", "--repl-diskless-load", "swapdb")
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: "Loading DB in memory" in log_of(replica_server), 15, "loading")
    started = log_of(master_server).count("Background RDB transfer started by pid")
    master.flushall()
    wait_until(lambda: log_of(master_server).count("Background RDB transfer started by pid")
               > started, 15, "a new child")
    assert master.ping()
    master.config_set("rdb-key-save-delay", 0)
    master.config_set("repl-diskless-sync-delay", 0)
    wait_until(lambda: caught_up(master, replica), 30, "sync")
    assert replica.dbsize() == 0
