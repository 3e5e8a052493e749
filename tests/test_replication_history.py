"""What a master's replication history records besides its clients' writes, and what a
replica does with keys that expire: each scenario runs with Vermilion and with a real
redis-server in the same role, and both must be seen doing the same.

- A master restarting on the RDB file of its history feeds the DELs of the keys that
  expired meanwhile into its backlog (rdbLoadRio with RDBFLAGS_FEED_REPL): its
  replicas continue with a partial resync and drop them too, or sync in full when
  the DELs overflow the backlog.
- CONFIG RESETSTAT resets sync_full / sync_partial_ok / sync_partial_err.
- A master's first PING to its replicas comes a repl-ping-replica-period after start.
- A writable replica expires the keys its own clients gave a TTL (expireSlaveKeys),
  never those of its master; DEBUG OBJECT still finds a logically expired key.
- DEBUG REPLICATE feeds a command to the replicas only; an error applying the
  master's stream is logged with the command and the end of the backlog."""

import time

import pytest
import redis

from conftest import NO_SYNC_DELAY, VERMILION, ServerProcess, require_binary, stop_all
from replication_helpers import caught_up, in_db, link_up, wait_until


@pytest.fixture
def servers(tmp_path):
    started = []

    def start(kind, *args, directory=None, port=None):
        if directory is None:
            directory = tmp_path / f"s{len(started)}"
            directory.mkdir()
        args = ["--dir", str(directory), "--enable-debug-command", "yes", *NO_SYNC_DELAY,
                *args]
        binary = VERMILION if kind == "vermilion" else require_binary("redis-server")
        server = ServerProcess(binary, args, cwd=directory)
        if port is not None:
            server.port = port
        server.start()
        server.directory = directory
        started.append(server)
        return server

    yield start
    stop_all(started)  # replicas first


def repl(client) -> dict:
    return client.info("replication")


def restart(servers, server, kind, *args):
    """SIGTERM (the final save keeps the history in the RDB file), then start again
    on the same port and directory."""
    server.stop()
    return servers(kind, *args, directory=server.directory, port=server.port)


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
@pytest.mark.parametrize("backlog", ["1mb", "16384"])
def test_a_restarted_master_feeds_the_dels_of_keys_that_expired_meanwhile(
        servers, kind, backlog):
    master_server = servers(kind, "--save", "3600 1", "--repl-backlog-size", backlog,
                            "--repl-ping-replica-period", "3600")
    master = master_server.client()
    replica_server = servers("redis")
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: link_up(replica), 15, "sync")
    master.set("stays", "v")
    master.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
    for i in range(2048):
        in_db(master, i % 16).set(f"k{i}", "somevalue", px=10)
    wait_until(lambda: caught_up(master, replica), 15, "caught up")
    time.sleep(0.05)
    offset = repl(master)["master_repl_offset"]
    # No lagging replica: the shutdown sends no GETACK that would move the offset.
    wait_until(lambda: repl(master)["slave0"]["offset"] == offset, 5, "the replica's ACK")
    master_server = restart(servers, master_server, kind, "--save", "3600 1",
                            "--repl-backlog-size", backlog,
                            "--repl-ping-replica-period", "3600")
    master = master_server.client()
    assert master.info("persistence")["rdb_last_load_keys_expired"] == 2048
    history = repl(master)
    if backlog == "1mb":  # every DEL in the backlog
        assert history["master_repl_offset"] == offset + history["repl_backlog_histlen"]
    assert history["master_repl_offset"] > offset
    wait_until(lambda: caught_up(master, replica), 30, "the replica back")
    stats = master.info("stats")
    if backlog == "1mb":  # the replica continues
        assert (stats["sync_partial_ok"], stats["sync_full"]) == (1, 0)
    else:  # the DELs overflowed it: a full sync
        assert repl(master)["repl_backlog_first_byte_offset"] > \
            repl(master)["second_repl_offset"]
        assert (stats["sync_partial_ok"], stats["sync_full"]) == (0, 1)
    assert replica.dbsize() == 1
    assert replica.execute_command("DEBUG", "DIGEST") == master.execute_command("DEBUG", "DIGEST")


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_resetstat_resets_the_sync_counters(servers, kind):
    master_server = servers(kind)
    master = master_server.client()
    replica = servers("redis").client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: link_up(replica), 15, "sync")
    master.execute_command("CLIENT", "KILL", "TYPE", "replica")
    wait_until(lambda: master.info("stats")["sync_partial_ok"] == 1, 15, "the partial resync")
    assert master.info("stats")["sync_full"] == 1
    master.config_resetstat()
    stats = master.info("stats")
    assert (stats["sync_full"], stats["sync_partial_ok"], stats["sync_partial_err"]) == (0, 0, 0)


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_no_ping_to_a_replica_attached_right_after_start(servers, kind):
    master_server = servers(kind, "--repl-ping-replica-period", "3600")
    replica = servers("redis").client()
    replica.replicaof("127.0.0.1", master_server.port)  # within the master's first second
    wait_until(lambda: link_up(replica), 15, "sync")
    time.sleep(1.5)
    assert repl(master_server.client())["master_repl_offset"] == 0


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_a_writable_replica_expires_only_the_keys_its_clients_gave_a_ttl(servers, kind):
    master_server = servers("redis")
    master = master_server.client()
    replica_server = servers(kind)
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: link_up(replica), 15, "sync")
    # The master's stream reaches the replica (after a diskless sync a master streams to
    # a replica once its first ACK has come, replicaPutOnline): the master's key below
    # then arrives well within the 300 ms the replica's own keys live.
    master.set("flowing", 1)
    wait_until(lambda: replica.get("flowing") == b"1", 15, "the stream")
    replica.config_set("replica-read-only", "no")
    mine = in_db(replica, 5)
    mine.set("key1", 1, px=300)
    mine.set("key2", 2, px=300)
    mine.set("key3", 3)
    mine.pexpire("key3", 300)
    master.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
    in_db(master, 5).set("from-master", 1, px=300)
    wait_until(lambda: in_db(replica, 5).dbsize() == 4, 5, "the master's key")
    time.sleep(1.5)
    # The replica's own keys are gone; the master's stays until its DEL.
    assert mine.dbsize() == 1
    assert mine.exists("from-master") == 0
    assert mine.execute_command("DEBUG", "OBJECT", "from-master").startswith(b"Value at:")
    master.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 1)
    wait_until(lambda: mine.dbsize() == 0, 5, "the master's DEL")


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_debug_replicate_and_errors_applying_the_stream(servers, kind):
    master_server = servers(kind)
    master = master_server.client()
    replica_server = servers("vermilion", "--propagation-error-behavior", "ignore")
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: link_up(replica), 15, "sync")
    master.set("before", 1)
    wait_until(lambda: caught_up(master, replica), 10, "the replica's backlog to hold it")
    assert master.execute_command("DEBUG", "REPLICATE", "fake-command-1") == b"OK"
    master.set("foo", "bar")
    assert master.execute_command("WAIT", 1, 2000) == 1
    log = replica_server.log_path.read_text()
    assert log.count("fake-command-1") == 1
    assert ("== CRITICAL == This replica is sending an error to its master: 'ERR unknown "
            "command 'fake-command-1', with args beginning with: ' after processing the "
            "command '<unknown>'") in log
    assert "Latest backlog is: '" in log
    assert replica.get("foo") == b"bar"
    assert master.get("fake-command-1") is None  # nothing ran on the master
