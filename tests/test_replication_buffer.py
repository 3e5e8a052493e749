"""Redis 7.0's shared replication buffer, as a master's replicas see it: the backlog
keeps what a syncing replica still needs beyond repl-backlog-size (so another replica
can continue partially from there), a replica's output buffer is that part of it and
its hard limit is at least repl-backlog-size; INFO connected_clients leaves replicas
out. Each scenario runs with a Vermilion master and a real redis-server master, with
redis-server replicas, and both must be seen doing the same."""

import os
import signal

import pytest

from replication_helpers import caught_up, link_up, wait_until



def repl(client) -> dict:
    return client.info("replication")


def populate(client, count: int, prefix: str, size: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.set(f"{prefix}{i}", "x" * size)
    pipe.execute()


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_a_syncing_replica_keeps_the_backlog_beyond_its_size(servers, kind):
    master_server = servers(kind, "--repl-backlog-size", "16384",
                            "--client-output-buffer-limit", "replica 0 0 0",
                            "--repl-diskless-sync", "no")
    master = master_server.client()
    fast_server, slow_server = servers("redis"), servers("redis")
    fast, slow = fast_server.client(), slow_server.client()
    fast.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: link_up(fast), 15, "sync")
    master.config_set("rdb-key-save-delay", 1000000)  # the slow one's sync never ends
    populate(master, 10, "seed", 100)
    slow.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: master.info("persistence")["rdb_bgsave_in_progress"] == 1
               and slow.role()[3] == b"sync", 15, "the slow sync")
    populate(master, 200, "a", 10000)  # 2 MB
    assert repl(master)["repl_backlog_histlen"] > 2_000_000
    assert master.info("clients")["connected_clients"] == 1  # replicas are not counted
    wait_until(lambda: caught_up(master, fast), 15, "the fast one")
    # The fast replica goes away while 2 MB more are written: the backlog still has
    # its offset (the slow one holds it), so it continues.
    fast.replicaof("127.0.0.1", slow_server.port)
    populate(master, 200, "b", 10000)
    fast.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: caught_up(master, fast), 15, "the fast one back")
    assert master.info("stats")["sync_partial_ok"] == 1
    assert fast.execute_command("DEBUG", "DIGEST") == master.execute_command("DEBUG", "DIGEST")
    # The slow replica's output buffer is what the backlog keeps for it: past the hard
    # limit it is dropped, and the backlog shrinks back.
    os.kill(slow_server.proc.pid, signal.SIGSTOP)
    master.config_set("client-output-buffer-limit", "replica 128kb 0 0")
    master.set("trigger", "A" * 65536)
    wait_until(lambda: repl(master)["connected_slaves"] == 1, 10, "the slow one dropped")
    wait_until(lambda: repl(master)["repl_backlog_histlen"] < 1_000_000, 10, "the backlog")
    os.kill(slow_server.proc.pid, signal.SIGCONT)
    master.config_set("rdb-key-save-delay", 0)


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_a_partial_resync_larger_than_the_output_limit_keeps_the_replica(servers, kind):
    master_server = servers(kind, "--repl-backlog-size", "100mb",
                            "--client-output-buffer-limit", "replica 512kb 0 0")
    master = master_server.client()
    replica = servers("redis").client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: link_up(replica), 15, "sync")
    big = "A" * (4 * 1024 * 1024)
    pipe = master.pipeline(transaction=True)
    pipe.execute_command("CLIENT", "KILL", "TYPE", "replica")
    pipe.set("key", big)
    pipe.set("key", big)
    pipe.execute_command("DEBUG", "SLEEP", 1)  # the replica reconnects meanwhile
    pipe.execute()
    master.set("key", big)
    wait_until(lambda: caught_up(master, replica), 30, "caught up")
    stats = master.info("stats")
    assert (stats["sync_full"], stats["sync_partial_ok"]) == (1, 1)
