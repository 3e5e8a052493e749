"""Real Redis Sentinel (Debian's redis-sentinel 7.0) monitoring Vermilion servers, side
by side with the same Sentinel monitoring real redis-servers: what Sentinel does to a
monitored server — SLAVEOF inside MULTI with CONFIG REWRITE, renamed commands,
CLIENT KILL TYPE normal/pubsub, the __sentinel__:hello channel, replica-priority 0 —
must work on Vermilion exactly as it works on Redis."""

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from conftest import VERMILION, ServerProcess, free_port, require_binary
from replication_helpers import wait_until as _wait_until


def wait_until(predicate, timeout=30.0, what="condition"):
    # Servers die and change roles under Sentinel: a failed probe means not yet.
    return _wait_until(predicate, timeout, what,
                       tolerate=(redis.ConnectionError, redis.ResponseError))


# Sentinel renames CONFIG on the servers it reconfigures (sentinel rename-command).
SERVER_CONF = "rename-command CONFIG VCONFIG\nrepl-diskless-sync-delay 0\n"


def start_server(kind: str, workdir: Path, extra: str = "") -> ServerProcess:
    workdir.mkdir()
    binary = VERMILION if kind == "vermilion" else require_binary("redis-server")
    return ServerProcess(binary, cwd=workdir, config_text=SERVER_CONF + extra).start()


def start_sentinel(workdir: Path, master_port: int) -> tuple[subprocess.Popen, int, Path]:
    workdir.mkdir()
    port = free_port()
    conf = workdir / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
        "sentinel down-after-milliseconds mymaster 1000\n"
        "sentinel failover-timeout mymaster 10000\n"
        "sentinel rename-command mymaster CONFIG VCONFIG\n")
    log = open(workdir / "sentinel.log", "wb")
    proc = subprocess.Popen([require_binary("redis-server"), str(conf), "--sentinel"],
                            cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    return proc, port, workdir / "sentinel.log"


@pytest.fixture
def cluster(tmp_path):
    started = []

    def start(kind):
        master = start_server(kind, tmp_path / "a")
        good = start_server(kind, tmp_path / "b", f"replicaof 127.0.0.1 {master.port}\n")
        never = start_server(kind, tmp_path / "c", f"replicaof 127.0.0.1 {master.port}\n"
                                                   "replica-priority 0\n")
        started.extend([master, good, never])
        proc, port, log = start_sentinel(tmp_path / "sentinel", master.port)
        started.append(proc)
        return master, good, never, redis.Redis(host="127.0.0.1", port=port), log

    yield start
    for item in started:
        if isinstance(item, ServerProcess):
            item.stop()
        elif item.poll() is None:
            item.terminate()
            item.wait(10)


def replicas_seen(sentinel) -> int:
    return sum(1 for r in sentinel.sentinel_slaves("mymaster")
               if "s_down" not in r["flags"] and r["master-link-status"] == "ok")


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_sentinel_fails_over_and_rewrites_the_configs(cluster, kind):
    master_server, good_server, never_server, sentinel, sentinel_log = cluster(kind)
    master = master_server.client()
    wait_until(lambda: replicas_seen(sentinel) == 2, what="Sentinel sees both replicas")
    # Sentinel announces itself on every monitored server's __sentinel__:hello channel.
    wait_until(lambda: master.pubsub_numsub("__sentinel__:hello")[0][1] >= 1,
               what="Sentinel subscribed to hello")
    for i in range(100):
        master.set(f"key:{i}", i)
    assert master.wait(2, 5000) == 2

    master_server.proc.send_signal(signal.SIGKILL)
    master_server.proc.wait(10)
    started = time.time()
    wait_until(lambda: sentinel.sentinel_get_master_addr_by_name("mymaster")[1]
               == good_server.port, what="the failover")
    elapsed = time.time() - started
    new_master = good_server.client()
    wait_until(lambda: new_master.info("replication")["role"] == "master", what="promotion")
    never = never_server.client()
    wait_until(lambda: never.info("replication").get("master_port") == good_server.port
               and never.info("replication")["master_link_status"] == "up",
               what="the priority-0 replica follows the new master")
    assert never.info("replication")["role"] == "slave"  # never promoted
    assert new_master.mget(*[f"key:{i}" for i in range(100)]) == [str(i).encode() for i in range(100)]
    assert elapsed < 20, elapsed

    # Sentinel sent SLAVEOF and the renamed CONFIG REWRITE: the files say the new roles.
    promoted_conf = Path(good_server.cwd, f"server-{good_server.port}.conf").read_text()
    assert not re.search(r"^(replicaof|slaveof) ", promoted_conf, re.M), promoted_conf
    follower_conf = Path(never_server.cwd, f"server-{never_server.port}.conf").read_text()
    assert f"replicaof 127.0.0.1 {good_server.port}" in follower_conf, follower_conf
    assert "replica-priority 0" in follower_conf
    wait_until(lambda: "+failover-end" in sentinel_log.read_text(), what="+failover-end")
    assert "+promoted-slave" in sentinel_log.read_text()


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_client_kill_by_type_as_sentinel_uses_it(tmp_path, kind):
    """Sentinel disconnects normal and pub/sub clients of a demoted master
    (CLIENT KILL TYPE normal / TYPE pubsub); the killer's own connection survives."""
    server = start_server(kind, tmp_path / "s")
    try:
        killer = server.client()
        killer.ping()
        plain = server.client()
        plain.ping()
        sub = server.client().pubsub()
        sub.subscribe("ch")
        sub.get_message(timeout=2)
        assert killer.client_kill_filter(_type="pubsub") == 1
        assert killer.client_kill_filter(_type="normal", skipme=True) == 1
        assert killer.ping()
        names = [c["cmd"] for c in killer.client_list()]
        assert names == ["client|list"], names
    finally:
        server.stop()
