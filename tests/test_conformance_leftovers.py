"""Small conformance fixes (issue 18), each beside real redis-server where it can be."""

import time

import pytest

from conftest import start_redis, start_vermilion
from replication_helpers import link_up, wait_until


def _wait_until(predicate, attempts=400):
    for _ in range(attempts):
        if predicate():
            return True
        time.sleep(0.025)
    return False


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_bgrewriteaof_inside_exec_is_scheduled(tmp_path, kind):
    """bgrewriteaofCommand(): inside EXEC (server.in_exec) the rewrite is scheduled, and
    the cron starts it once the transaction is over."""
    starter = start_vermilion if kind == "vermilion" else start_redis
    server = starter(tmp_path, ["--dir", str(tmp_path)])
    try:
        client = server.client(single_connection_client=True)
        client.execute_command("MULTI")
        client.execute_command("BGREWRITEAOF")  # +QUEUED
        assert client.execute_command("EXEC") == [
            b"Background append only file rewriting scheduled"]

        def rewrite_done():
            info = client.info("persistence")
            return (not info["aof_rewrite_scheduled"] and not info["aof_rewrite_in_progress"]
                    and info["aof_last_bgrewrite_status"] == "ok")
        assert _wait_until(rewrite_done)
    finally:
        server.stop()


@pytest.mark.parametrize("diskless", ["yes", "no"])
@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_total_forks_counts_the_full_sync_fork(servers, kind, diskless):
    """redisFork() counts every child in stat_total_forks, the replication's RDB too."""
    master_server = servers(kind, "--repl-diskless-sync", diskless)
    master = master_server.client()
    master.set("k", "v")
    assert master.info("stats")["total_forks"] == 0
    replica = servers("redis").client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: link_up(replica), what="the replica's link")
    wait_until(lambda: master.info("persistence")["rdb_bgsave_in_progress"] == 0,
               what="the sync's child to end")
    assert master.info("stats")["total_forks"] == 1
