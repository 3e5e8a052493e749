"""Vermilion as a replica (replication.c's SLAVE half): it follows a real redis-server
7.0 master (full sync from disk and diskless masters, then the command stream), resyncs
partially after a lost link, takes its old master back after REPLICAOF NO ONE (PSYNC2),
serves a real Redis sub-replica (chained replication), follows a Vermilion master,
authenticates with masterauth, survives its master's death mid-sync; READONLY,
MASTERDOWN and REPLICAOF's replies as Redis gives them."""

import signal
import time

import pytest
import redis

from conftest import RawConnection
from replication_helpers import caught_up, dataset, in_db, info, link_up, wait_until

FAR_FUTURE_MS = 4102444800000  # 2100-01-01: the same absolute TTL on both sides
LIB = ("#!lua name=lib\n"
       "redis.register_function('setone', function(keys, args) "
       "return redis.call('set', keys[1], args[1]) end)\n"
       "redis.register_function{function_name='ro', callback=function() return 1 end, "
       "flags={'no-writes'}}")


def port_of(client) -> int:
    return client.connection_pool.connection_kwargs["port"]


def same_data(master, replica) -> None:
    assert replica.execute_command("DEBUG", "DIGEST") == master.execute_command("DEBUG", "DIGEST")
    assert dataset(replica) == dataset(master)
    assert functions(replica) == functions(master)


def functions(client) -> list:
    """FUNCTION LIST, each library's functions sorted (Redis lists them in dict order)."""
    out = []
    for lib in client.function_list(withcode=True):
        lib = list(lib)
        at = lib.index(b"functions") + 1
        lib[at] = sorted(lib[at])
        out.append(lib)
    return out


def fill(client) -> None:
    """Every type, small and large encodings, a stream with a consumer group, several
    databases, a TTL and a function library."""
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
    client.pfadd("hll", *range(100))
    client.setbit("bits", 1000, 1)
    client.geoadd("geo", (13.361389, 38.115556, "Palermo"))
    for i in range(5):
        client.xadd("stream", {"f": i}, id=f"{i + 1}-1")
    client.xgroup_create("stream", "group", id="0")
    client.xreadgroup("group", "alice", {"stream": ">"}, count=2)
    client.xreadgroup("group", "bob", {"stream": ">"}, count=1)
    client.set("ttl", "v")
    client.pexpireat("ttl", FAR_FUTURE_MS)
    c3 = in_db(client, 3)
    c3.set("in-db3", "v3")
    c3.hset("h3", "f", "v")
    client.function_load(LIB)


def write_families(client) -> None:
    """Writes of several families: relative and absolute expiries, floats, random pops,
    transactions, scripts and functions, streams, other databases."""
    client.set("ex", "v", ex=1000)
    client.expire("str", 2000)
    client.pexpireat("int", FAR_FUTURE_MS)
    client.incrbyfloat("float", 1.5)
    client.hincrbyfloat("hash:small", "f", 2.25)
    client.spop("set:ints")
    client.spop("set:big", 3)
    pipe = client.pipeline(transaction=True)
    pipe.incr("counter").lpush("list:small", "x").zincrby("zset:small", 2, "a")
    pipe.execute()
    client.eval("redis.call('set', KEYS[1], ARGV[1]); redis.call('incr', KEYS[2])",
                2, "s1", "c2", "v")
    client.fcall("setone", 1, "fkey", "fval")
    client.xadd("stream", {"h": "x"}, id="9-1")
    client.xack("stream", "group", "1-1")
    client.xclaim("stream", "group", "carol", 0, ["2-1"])
    client.lmove("list:small", "list:other", "LEFT", "RIGHT")
    c5 = in_db(client, 5)
    c5.mset({"a": 1, "b": 2})
    c5.rpush("l5", "x", "y")
    client.set("short", "v", px=1)  # expires on the master: the replica gets a DEL
    time.sleep(0.01)
    client.get("short")
    client.delete("big")
    client.rename("int", "int2")
    client.sinterstore("inter", ["set:ints", "set:ints"])
    client.zunionstore("zu", ["zset:small", "zset:big"])



def follow(replica_server, master_server, timeout=15.0):
    replica = replica_server.client()
    assert replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: link_up(replica), timeout, "the link up")
    return replica


def log_of(server) -> str:
    return server.log_path.read_text()


# -- following a real Redis master ---------------------------------------------------------


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_follows_a_real_redis_master(servers, diskless):
    master_server = servers("redis", "--repl-diskless-sync", diskless,
                            "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    fill(master)
    replica_server = servers("vermilion")
    replica = follow(replica_server, master_server)
    wait_until(lambda: caught_up(master, replica), what="the replica caught up")
    same_data(master, replica)
    write_families(master)
    wait_until(lambda: caught_up(master, replica), what="the stream applied")
    same_data(master, replica)
    # A replica keeps its TTLs as the master set them, absolute.
    assert replica.pexpiretime("int2") == FAR_FUTURE_MS
    log = log_of(replica_server)
    for line in ("Connecting to MASTER 127.0.0.1:%d" % master_server.port,
                 "MASTER <-> REPLICA sync started",
                 "Master replied to PING, replication can continue...",
                 "Full resync from master: ",
                 "MASTER <-> REPLICA sync: Flushing old data",
                 "MASTER <-> REPLICA sync: Loading DB in memory",
                 "MASTER <-> REPLICA sync: Finished with success"):
        assert line in log
    if diskless == "yes":
        assert "receiving streamed RDB from master with EOF to disk" in log
    else:
        assert "bytes from master to disk" in log
    assert ":S " in log.splitlines()[-1]
    # ROLE and INFO as a replica
    role = replica.execute_command("ROLE")
    assert role[:4] == [b"slave", b"127.0.0.1", master_server.port, b"connected"]
    assert role[4] == info(master)["master_repl_offset"]
    fields = info(replica)
    assert list(fields)[:12] == [
        "role", "master_host", "master_port", "master_link_status",
        "master_last_io_seconds_ago", "master_sync_in_progress", "slave_read_repl_offset",
        "slave_repl_offset", "slave_priority", "slave_read_only", "replica_announced",
        "connected_slaves"]
    assert fields["master_replid"] == info(master)["master_replid"]
    # The master sees us online, at its offset (our ACKs).
    wait_until(lambda: info(master).get("slave0", {}).get("offset")
               == info(master)["master_repl_offset"], what="the ACKed offset")
    assert info(master)["slave0"]["port"] == replica_server.port
    # The master's client is listed, flag M.
    masters = replica.client_list(_type="master")
    assert len(masters) == 1 and masters[0]["flags"] == "M"
    # What came from the master counts as replication traffic, as the master counts it.
    received = info(replica, "stats")["total_net_repl_input_bytes"]
    sent = info(master, "stats")["total_net_repl_output_bytes"]
    assert 0 < sent - 200 <= received <= sent


def test_diskless_load_from_a_real_master(servers):
    master_server = servers("redis", "--repl-diskless-sync", "yes",
                            "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    fill(master)
    replica_server = servers("vermilion", "--repl-diskless-load", "on-empty-db")
    replica = follow(replica_server, master_server)
    wait_until(lambda: caught_up(master, replica))
    same_data(master, replica)
    assert "receiving streamed RDB from master with EOF to parser" in log_of(replica_server)


def test_the_received_rdb_becomes_the_replicas_rdb_file(servers, tmp_path):
    master_server = servers("redis", "--repl-diskless-sync", "no")
    master = master_server.client()
    fill(master)
    replica_server = servers("vermilion")
    replica = follow(replica_server, master_server)
    wait_until(lambda: caught_up(master, replica))
    path = tmp_path / "s1" / "dump.rdb"
    assert path.exists()
    assert not list((tmp_path / "s1").glob("temp-*.rdb"))


def test_partial_resync_after_client_kill_type_master(servers):
    master_server = servers("redis", "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    fill(master)
    replica = follow(servers("vermilion"), master_server)
    wait_until(lambda: caught_up(master, replica))
    before = info(master, "stats")
    for round_ in range(3):
        master.set(f"before-kill-{round_}", round_)
        wait_until(lambda: caught_up(master, replica))
        assert replica.client_kill_filter(_type="master") == 1
        master.set(f"after-kill-{round_}", round_)  # into the backlog while we are away
        wait_until(lambda: caught_up(master, replica), what="the partial resync")
    after = info(master, "stats")
    assert after["sync_partial_ok"] == before["sync_partial_ok"] + 3
    assert after["sync_full"] == before["sync_full"]
    same_data(master, replica)


def test_link_lost_mid_transaction_resends_the_whole_transaction(servers):
    """A MULTI whose EXEC did not arrive is dropped with the link and comes again."""
    master_server = servers("redis", "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    replica = follow(servers("vermilion"), master_server)
    for i in range(20):
        pipe = master.pipeline(transaction=True)
        pipe.incr("a").incr("b").rpush("l", i)
        pipe.execute()
        if i % 5 == 0:
            replica.client_kill_filter(_type="master")
    wait_until(lambda: caught_up(master, replica))
    same_data(master, replica)


def test_replicaof_no_one_then_the_old_master_follows_with_a_partial_resync(servers):
    """PSYNC2: the promoted replica keeps its master's history as its secondary id; the
    old master (and a sibling replica) continue from their offsets."""
    master_server = servers("redis", "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    fill(master)
    vermilion_server = servers("vermilion")
    promoted = follow(vermilion_server, master_server)
    sibling_server = servers("redis")
    sibling = follow(sibling_server, master_server)
    master.set("last", "one")
    wait_until(lambda: caught_up(master, promoted) and caught_up(master, sibling))
    old_id = info(master)["master_replid"]
    offset = info(master)["master_repl_offset"]
    assert promoted.replicaof("NO", "ONE")
    fields = info(promoted)
    assert fields["role"] == "master"
    assert fields["master_replid2"] == old_id
    assert fields["second_repl_offset"] == offset + 1
    assert "MASTER MODE enabled (user request from 'id=" in log_of(vermilion_server)
    promoted.set("written-on-promoted", 1)  # writable now
    # The old master and the sibling follow the promoted replica.
    sibling.replicaof("127.0.0.1", vermilion_server.port)
    master.replicaof("127.0.0.1", vermilion_server.port)
    wait_until(lambda: caught_up(promoted, master) and caught_up(promoted, sibling),
               what="both followers caught up")
    stats = info(promoted, "stats")
    assert stats["sync_partial_ok"] == 2 and stats["sync_full"] == 0
    promoted.set("after", "switch")
    wait_until(lambda: caught_up(promoted, master) and caught_up(promoted, sibling))
    same_data(promoted, master)
    same_data(promoted, sibling)


def test_a_former_master_psyncs_with_its_own_history(servers):
    """replicationCacheMasterUsingMyself(): a Vermilion master turned replica of its own
    replica continues partially."""
    vm_server = servers("vermilion")
    vm = vm_server.client()
    fill(vm)
    r_server = servers("redis")
    r = follow(r_server, vm_server)
    wait_until(lambda: caught_up(vm, r))
    r.replicaof("NO", "ONE")
    r.set("on-redis", 1)
    vm.replicaof("127.0.0.1", r_server.port)
    wait_until(lambda: caught_up(r, vm), what="vermilion caught up")
    assert info(r, "stats")["sync_partial_ok"] == 1
    assert info(r, "stats")["sync_full"] == 0
    assert "Before turning into a replica, using my own master parameters" in log_of(vm_server)
    same_data(r, vm)


# -- the checks while a replica -----------------------------------------------------------------


def test_read_only_replica_refuses_writes_but_runs_reads(servers):
    master_server = servers("redis")
    master = master_server.client()
    master.set("k", "v")
    master.function_load(LIB)
    replica = follow(servers("vermilion"), master_server)
    wait_until(lambda: caught_up(master, replica))
    with pytest.raises(redis.exceptions.ReadOnlyError) as exc:
        replica.set("k", "mine")
    assert str(exc.value) == "You can't write against a read only replica."
    assert replica.get("k") == b"v"
    # EXEC of queued writes: the write is refused while queueing, EXEC aborts.
    raw = redis.Redis(host="127.0.0.1", port=replica.connection_pool.connection_kwargs["port"])
    pipe = raw.pipeline(transaction=True)
    pipe.get("k").set("k", "x")
    with pytest.raises(redis.exceptions.ResponseError):
        pipe.execute()
    # A script's write is refused too; reads in scripts are fine.
    with pytest.raises(redis.exceptions.ReadOnlyError) as exc:
        replica.eval("return redis.call('set', 'k', 'x')", 0)
    assert "You can't write against a read only replica." in str(exc.value)
    assert replica.eval("return redis.call('get', 'k')", 0) == b"v"
    assert replica.fcall_ro("ro", 0) == 1
    # replica-read-only no: local writes are allowed (and not propagated).
    replica.config_set("replica-read-only", "no")
    assert replica.set("local", "1")
    assert info(replica)["slave_read_only"] == 0
    assert master.get("local") is None


def test_serve_stale_data_no_gives_masterdown_while_the_link_is_down(servers):
    master_server = servers("redis")
    master = master_server.client()
    master.set("k", "v")
    replica = follow(servers("vermilion", "--replica-serve-stale-data", "no"), master_server)
    wait_until(lambda: caught_up(master, replica))
    assert replica.get("k") == b"v"
    master_server.proc.send_signal(signal.SIGSTOP)
    try:
        replica.client_kill_filter(_type="master")
        wait_until(lambda: not link_up(replica), what="the link down")
        with pytest.raises(redis.exceptions.ResponseError) as exc:
            replica.get("k")
        assert str(exc.value) == ("Link with MASTER is down and "
                                  "replica-serve-stale-data is set to 'no'.")
        assert info(replica)["master_link_status"] == "down"
        assert info(replica)["master_link_down_since_seconds"] >= 0
        with pytest.raises(redis.exceptions.MasterDownError):
            replica.ping()  # not a 'stale' command either
        replica.config_set("replica-serve-stale-data", "yes")
        assert replica.get("k") == b"v"
        replica.config_set("replica-serve-stale-data", "no")
    finally:
        master_server.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: link_up(replica), what="the link up again")
    assert replica.get("k") == b"v"


def test_replicaof_replies_as_redis(servers):
    mine = servers("vermilion").client()
    real = servers("redis").client()
    master_server = servers("redis")
    for client in (mine, real):
        for bad in ("abc", "70000", "-1"):
            with pytest.raises(redis.exceptions.ResponseError) as exc:
                client.execute_command("REPLICAOF", "127.0.0.1", bad)
            assert str(exc.value) == "Invalid master port"
        with pytest.raises(redis.exceptions.ResponseError) as exc:
            client.execute_command("REPLICAOF", "127.0.0.1")
        assert str(exc.value) == "wrong number of arguments for 'replicaof' command"
        assert client.execute_command("REPLICAOF", "NO", "ONE")
        assert client.execute_command("SLAVEOF", "127.0.0.1", master_server.port) is True
        assert client.execute_command("REPLICAOF", "127.0.0.1", master_server.port) \
            == b"OK Already connected to specified master"
        wait_until(lambda: link_up(client))
        assert client.execute_command("SLAVEOF", "no", "one") is True
        assert info(client)["role"] == "master"
    assert mine.execute_command("COMMAND", "INFO", "replicaof") \
        == real.execute_command("COMMAND", "INFO", "replicaof")
    assert mine.config_get("replicaof") == real.config_get("replicaof")


def test_replicaof_unblocks_blocked_clients(servers):
    master_server = servers("redis")
    replica_server = servers("vermilion")
    other = replica_server.client()
    raw = RawConnection(replica_server.port)
    raw.send(b"*3\r\n$5\r\nBLPOP\r\n$7\r\nnothing\r\n$1\r\n0\r\n")
    wait_until(lambda: other.info("clients")["blocked_clients"] == 1, what="blocked")
    other.replicaof("127.0.0.1", master_server.port)
    assert raw.read_reply() == (b"-UNBLOCKED force unblock from blocking operation, instance "
                                b"state changed (master -> replica?)\r\n")
    raw.close()


# -- topologies ------------------------------------------------------------------------------------


def test_chained_redis_master_vermilion_replica_redis_subreplica(servers):
    master_server = servers("redis", "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    fill(master)
    middle_server = servers("vermilion", "--repl-diskless-sync-delay", "0")
    middle = follow(middle_server, master_server)
    wait_until(lambda: caught_up(master, middle))
    # The master's stream is in db 3 when the leaf syncs: the snapshot we send it
    # must say so (repl-stream-db), since the proxied stream has no SELECT for it.
    in_db(master, 3).set("db3-before-leaf", 1)
    wait_until(lambda: caught_up(master, middle))
    leaf = follow(servers("redis"), middle_server)
    in_db(master, 3).set("db3-after-leaf", 1)
    write_families(master)
    wait_until(lambda: caught_up(master, middle) and caught_up(master, leaf),
               what="the chain caught up")
    same_data(master, middle)
    same_data(master, leaf)
    # The same history all along the chain.
    assert info(leaf)["master_replid"] == info(master)["master_replid"]
    # The leaf resyncs partially with us after a lost link.
    leaf.client_kill_filter(_type="master")
    master.set("while-away", 1)
    wait_until(lambda: caught_up(master, leaf))
    assert info(middle, "stats")["sync_partial_ok"] == 1
    same_data(master, leaf)
    # The middle one loses its master: the leaf stays, and the chain heals.
    middle.client_kill_filter(_type="master")
    master.set("after-middle-loss", 1)
    wait_until(lambda: caught_up(master, middle) and caught_up(master, leaf))
    same_data(master, leaf)


def test_vermilion_replica_of_a_vermilion_master(servers):
    for diskless in ("yes", "no"):
        master_server = servers("vermilion", "--repl-diskless-sync", diskless,
                                "--repl-diskless-sync-delay", "0")
        master = master_server.client()
        fill(master)
        replica = follow(servers("vermilion"), master_server)
        wait_until(lambda: caught_up(master, replica))
        write_families(master)
        wait_until(lambda: caught_up(master, replica), what="the stream applied")
        same_data(master, replica)
        replica.client_kill_filter(_type="master")
        master.set("after-kill", 1)
        wait_until(lambda: caught_up(master, replica))
        assert info(master, "stats")["sync_partial_ok"] == 1
        same_data(master, replica)


def test_a_paused_replica_reads_the_stream_but_applies_it_after_the_pause(servers):
    """processCommand(): only replicas escape CLIENT PAUSE, a master's link does not: a
    replica paused for writes reads its master's writes (slave_read_repl_offset) and
    applies them (slave_repl_offset, the keys) once unpaused — beside a real replica."""
    master_server = servers("redis")
    master = master_server.client()
    replicas = [follow(servers(kind), master_server) for kind in ("redis", "vermilion")]
    master.set("before", 1)
    for replica in replicas:
        wait_until(lambda: caught_up(master, replica))
    applied = info(master)["master_repl_offset"]
    for replica in replicas:
        assert replica.client_pause(100_000, all=False)
    master.set("during", 2)
    master.incr("before")
    offset = info(master)["master_repl_offset"]
    for replica in replicas:
        wait_until(lambda: info(replica)["slave_read_repl_offset"] == offset, what="the read")
    time.sleep(0.2)
    for replica in replicas:
        assert info(replica)["slave_repl_offset"] == applied
        assert replica.get("during") is None and replica.get("before") == b"1"
        assert replica.client_unpause()
    for replica in replicas:
        wait_until(lambda: caught_up(master, replica), what="the stream applied")
        assert replica.mget("before", "during") == [b"2", b"2"]


def test_masterauth_with_requirepass_on_the_master(servers):
    master_server = servers("redis", "--requirepass", "s3cret")
    master = master_server.client(password="s3cret")
    fill(master)
    replica_server = servers("vermilion")
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: "Unable to AUTH to MASTER" in log_of(replica_server)
               or "-NOAUTH" in log_of(replica_server), what="refused without a password")
    assert not link_up(replica)
    replica.config_set("masterauth", "s3cret")
    wait_until(lambda: link_up(replica), what="the link up with masterauth")
    wait_until(lambda: caught_up(master, replica))
    same_data(master, replica)


def test_masteruser_sends_auth_user_password(servers):
    master_server = servers("redis")
    master = master_server.client()
    master.acl_setuser("repl", enabled=True, passwords=["+pw"], commands=["+@all"], keys=["*"],
                       channels=["*"])
    master.config_set("requirepass", "other")
    master = master_server.client(password="other")
    master.set("k", "v")
    replica = servers("vermilion", "--masteruser", "repl", "--masterauth", "pw").client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: caught_up(master, replica))
    assert replica.get("k") == b"v"


def test_replicaof_in_the_config_at_startup(servers):
    master_server = servers("redis")
    master = master_server.client()
    fill(master)
    replica_server = servers("vermilion", "--replicaof", "127.0.0.1", str(master_server.port))
    replica = replica_server.client()
    wait_until(lambda: caught_up(master, replica))
    same_data(master, replica)
    assert replica.config_get("replicaof") == {"replicaof": f"127.0.0.1 {master_server.port}"}
    assert "Partial resynchronization not possible (no cached master)" in log_of(replica_server)


def test_master_killed_mid_sync_and_restarted(servers, tmp_path):
    master_server = servers("redis", "--repl-diskless-sync", "yes",
                            "--repl-diskless-sync-delay", "0", "--appendonly", "yes")
    master = master_server.client()
    # Enough data that the transfer takes a while, slowed further by rdb-key-save-delay.
    for i in range(20):
        master.execute_command("DEBUG", "POPULATE", 1000, f"p{i}", 100)
    master.config_set("rdb-key-save-delay", 200)  # microseconds per key
    replica_server = servers("vermilion")
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    def transferring():
        fields = info(replica)
        return fields if fields.get("master_sync_in_progress") == 1 else None

    fields = wait_until(transferring, what="the transfer started")
    keys = list(fields)
    at = keys.index("slave_repl_offset")
    assert keys[at + 1:at + 7] == [
        "master_sync_total_bytes", "master_sync_read_bytes", "master_sync_left_bytes",
        "master_sync_perc", "master_sync_last_io_seconds_ago",
        "master_link_down_since_seconds"]
    assert replica.execute_command("ROLE")[3] in (b"sync", b"connected")
    master_server.proc.kill()
    master_server.proc.wait()
    wait_until(lambda: "I/O error trying to sync with MASTER" in log_of(replica_server)
               or "Error condition on socket for SYNC" in log_of(replica_server),
               what="the failed transfer noticed")
    assert not link_up(replica)
    assert replica.ping()
    # Restarted on the same port (and the same AOF): the replica ends consistent.
    master_server.args = [a for a in master_server.args]
    master_server.start()
    master = master_server.client()
    master.config_set("rdb-key-save-delay", 0)
    master.set("after-restart", 1)
    wait_until(lambda: caught_up(master, replica), timeout=30, what="caught up after restart")
    same_data(master, replica)
    assert not list((tmp_path / "s1").glob("temp-*.rdb"))


def test_loading_clients_get_loading_during_the_sync(servers):
    master_server = servers("redis", "--repl-diskless-sync", "no")
    master = master_server.client()
    for i in range(10):
        master.execute_command("DEBUG", "POPULATE", 20000, f"p{i}", 50)
    replica_server = servers("vermilion", "--loading-process-events-interval-bytes", "1024")
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    # A raw connection: redis-py takes -LOADING for a connection error and retries.
    raw = RawConnection(replica_server.port)
    seen_loading = False
    deadline = time.time() + 30
    while time.time() < deadline:
        if raw.command("GET", "x").startswith(b"-LOADING Redis is loading the dataset in memory"):
            seen_loading = True
        if link_up(replica):
            break
        time.sleep(0.001)
    raw.close()
    wait_until(lambda: caught_up(master, replica), timeout=30)
    assert replica.dbsize() == master.dbsize()
    assert seen_loading


# -- persistence on a replica, timeouts ---------------------------------------------------------


def test_a_replica_with_appendonly_restarts_its_aof_from_the_synced_data(servers, tmp_path):
    master_server = servers("redis", "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    fill(master)
    replica_server = servers("vermilion", "--appendonly", "yes")
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: caught_up(master, replica))
    wait_until(lambda: info(replica, "persistence")["aof_rewrite_in_progress"] == 0
               and info(replica, "persistence")["aof_enabled"] == 1, what="the AOF back on")
    write_families(master)
    wait_until(lambda: caught_up(master, replica))
    same_data(master, replica)
    # What the replica logged in its AOF is the dataset: a restart without a master
    # loads exactly it.
    replica_server.stop()
    restarted = servers("vermilion", "--appendonly", "yes", "--dir", str(tmp_path / "s1"))
    same_data(master, restarted.client())


def test_restart_continues_from_the_received_rdb_with_a_partial_resync(servers, tmp_path):
    master_server = servers("redis", "--repl-diskless-sync", "no")
    master = master_server.client()
    fill(master)
    replica_server = servers("vermilion")
    replica = follow(replica_server, master_server)
    master.set("after-the-snapshot", 1)  # applied from the stream, not in the file
    wait_until(lambda: caught_up(master, replica))
    replica_server.stop()
    restarted = servers("vermilion", "--dir", str(tmp_path / "s1"),
                        "--replicaof", "127.0.0.1", str(master_server.port))
    replica = restarted.client()
    wait_until(lambda: caught_up(master, replica))
    assert info(master, "stats")["sync_partial_ok"] == 1
    assert info(master, "stats")["sync_full"] == 1
    same_data(master, replica)


def test_replica_bgsave_saves_the_received_dataset(servers, tmp_path):
    master_server = servers("redis", "--repl-diskless-sync", "yes",
                            "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    fill(master)
    write_families(master)
    replica_server = servers("vermilion")
    replica = follow(replica_server, master_server)
    wait_until(lambda: caught_up(master, replica))
    replica.bgsave()
    wait_until(lambda: "Background saving terminated with success" in log_of(replica_server))
    copy = servers("vermilion", "--dir", str(tmp_path / "s1"))
    same_data(master, copy.client())
    # Its own RDB carries the master's replid and offset (rdbPopulateSaveInfo): from
    # it, a restarted replica continues with a partial resync.
    master.set("after-the-save", 1)
    replica_server.stop()
    restarted = servers("vermilion", "--dir", str(tmp_path / "s1"),
                        "--replicaof", "127.0.0.1", str(master_server.port))
    replica = restarted.client()
    wait_until(lambda: caught_up(master, replica))
    assert info(master, "stats")["sync_partial_ok"] == 1
    same_data(master, replica)


def test_repl_timeout_drops_a_silent_master_and_reconnects(servers):
    master_server = servers("redis", "--repl-ping-replica-period", "1")
    master = master_server.client()
    master.set("k", "v")
    replica_server = servers("vermilion", "--repl-timeout", "2")
    replica = follow(replica_server, master_server)
    master_server.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: "MASTER timeout: no data nor PING received..." in log_of(replica_server),
                   timeout=10, what="the timeout")
        assert not link_up(replica)
    finally:
        master_server.proc.send_signal(signal.SIGCONT)
    master.set("k2", "v2")
    wait_until(lambda: caught_up(master, replica), what="reconnected")
    assert replica.get("k2") == b"v2"


# -- a scripted master: the byte-level protocol ---------------------------------------------------


class ScriptedMaster:
    """A listening socket that plays a master's part by hand: the handshake replies,
    +FULLRESYNC, a payload, then whatever stream bytes the test sends."""

    def __init__(self):
        import socket

        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.server.settimeout(15)
        self.port = self.server.getsockname()[1]
        self.conn = None
        self.received = b""

    def accept(self):
        self.conn, _ = self.server.accept()
        self.conn.settimeout(15)
        self.received = b""
        return self

    def read_until(self, needle: bytes) -> bytes:
        while needle not in self.received:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise ConnectionError("replica closed")
            self.received += chunk
        return self.received

    def handshake(self, replid: str, rdb: bytes, offset: int = 0, eof_mark: bool = False):
        self.read_until(b"PING\r\n")
        self.conn.sendall(b"+PONG\r\n")
        self.read_until(b"psync2\r\n")
        self.conn.sendall(b"+OK\r\n+OK\r\n")
        self.read_until(b"PSYNC\r\n")
        psync = self.read_until(b"\r\n$")  # the PSYNC's arguments follow
        self.conn.sendall(b"\n")  # keep-alives before the reply are skipped
        self.conn.sendall(b"+FULLRESYNC %s %d\r\n\n\n" % (replid.encode(), offset))
        if eof_mark:
            mark = b"m" * 40
            self.conn.sendall(b"$EOF:" + mark + b"\r\n" + rdb + mark)
        else:
            self.conn.sendall(b"$%d\r\n" % len(rdb) + rdb)
        return psync

    def send(self, data: bytes):
        self.conn.sendall(data)

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.server.close()


def empty_rdb(servers) -> bytes:
    """A snapshot of a real redis-server holding one key."""
    real_server = servers("redis")
    real = real_server.client()
    real.set("from-rdb", "yes")
    real.save()
    return (real_server.log_path.parent / "dump.rdb").read_bytes()


def command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


@pytest.mark.parametrize("eof_mark", [False, True])
def test_stream_bytes_split_anywhere_newlines_and_a_broken_stream(servers, eof_mark):
    rdb = empty_rdb(servers)
    master = ScriptedMaster()
    try:
        replica_server = servers("vermilion")
        replica = replica_server.client()
        replica.replicaof("127.0.0.1", master.port)
        master.accept()
        replid = "a" * 40
        master.handshake(replid, rdb, offset=100, eof_mark=eof_mark)
        wait_until(lambda: link_up(replica), what="the link up")
        assert replica.get("from-rdb") == b"yes"
        assert info(replica)["master_replid"] == replid
        big = b"v" * 300_000
        stream = (b"\n" + command(b"SELECT", b"2") + command(b"SET", b"big", big)
                  + command(b"MULTI") + command(b"INCR", b"n") + command(b"INCR", b"n")
                  + command(b"EXEC") + b"\r\n" + command(b"PING"))
        # One byte at a time for the first bytes, then in odd-sized pieces.
        for i in range(0, 200):
            master.send(stream[i:i + 1])
        for i in range(200, len(stream), 7777):
            master.send(stream[i:i + 7777])
        wait_until(lambda: info(replica)["slave_repl_offset"] == 100 + len(stream),
                   what="the stream applied")
        assert info(replica)["master_repl_offset"] == 100 + len(stream)
        r2 = in_db(replica, 2)
        assert r2.get("big") == big and r2.get("n") == b"2"
        # REPLCONF GETACK: answered with the offset before it.
        master.received = b""
        master.send(command(b"REPLCONF", b"GETACK", b"*"))
        ack = b"%d" % (100 + len(stream))
        master.read_until(b"ACK\r\n$%d\r\n%s\r\n" % (len(ack), ack))
        # An error reply to the master is logged, never sent.
        master.send(command(b"INCR", b"big"))
        wait_until(lambda: "== CRITICAL == This replica is sending an error to its master: "
                           "'ERR value is not an integer or out of range' after processing "
                           "the command 'incr'" in log_of(replica_server))
        # Garbage: the link is dropped (not cached) and the replica starts over.
        master.send(b"GARBAGE\r\n")
        wait_until(lambda: "Receiving inline protocol from master" in log_of(replica_server))
        assert replica.ping()
        master.accept()
        psync = master.handshake("b" * 40, rdb)
        assert b"$1\r\n?\r\n$2\r\n-1" in psync
        wait_until(lambda: link_up(replica) and info(replica)["master_replid"] == "b" * 40)
        assert replica.dbsize() == 1 and r2.dbsize() == 0
    finally:
        master.close()


def test_a_broken_payload_is_retried(servers):
    rdb = empty_rdb(servers)
    master = ScriptedMaster()
    try:
        replica_server = servers("vermilion")
        replica = replica_server.client()
        replica.set("mine", 1)
        replica.replicaof("127.0.0.1", master.port)
        master.accept()
        master.handshake("c" * 40, rdb[:-20] + b"\x00" * 20)  # a bad checksum and EOF
        wait_until(lambda: "Failed trying to load the MASTER synchronization DB from disk"
                   in log_of(replica_server), what="the load refused")
        assert replica.ping()
        master.accept()
        master.handshake("c" * 40, rdb)
        wait_until(lambda: link_up(replica))
        assert replica.keys() == [b"from-rdb"]
    finally:
        master.close()


def test_an_unreachable_master_is_retried_every_second(servers):
    from conftest import free_port

    replica_server = servers("vermilion")
    replica = replica_server.client()
    port = free_port()
    replica.replicaof("127.0.0.1", port)
    wait_until(lambda: log_of(replica_server).count(f"Connecting to MASTER 127.0.0.1:{port}") >= 3,
               what="three attempts")
    assert "Error condition on socket for SYNC: Connection refused" in log_of(replica_server)
    fields = info(replica)
    assert fields["master_link_status"] == "down"
    assert fields["master_link_down_since_seconds"] == -1
    assert replica.execute_command("ROLE")[3] in (b"connect", b"connecting")
    assert replica.replicaof("NO", "ONE")
    assert info(replica)["role"] == "master"
    assert replica.set("k", "v")


def test_switching_to_a_promoted_sibling_continues_partially(servers):
    """REPLICAOF of another master while linked: the old master's state is cached and
    the promoted sibling, which shares its history, accepts a partial resync."""
    master_server = servers("redis", "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    fill(master)
    sibling_server = servers("redis")
    sibling = follow(sibling_server, master_server)
    replica_server = servers("vermilion")
    replica = follow(replica_server, master_server)
    write_families(master)
    wait_until(lambda: caught_up(master, replica) and caught_up(master, sibling))
    sibling.replicaof("NO", "ONE")
    sibling.set("on-the-new-master", 1)
    assert replica.replicaof("127.0.0.1", sibling_server.port)
    wait_until(lambda: caught_up(sibling, replica), what="following the sibling")
    stats = info(sibling, "stats")
    assert stats["sync_partial_ok"] == 1 and stats["sync_full"] == 0
    assert info(replica)["master_replid"] == info(sibling)["master_replid"]
    assert info(replica)["master_replid2"] == info(sibling)["master_replid2"]
    same_data(sibling, replica)


def test_shutdown_mid_transfer_leaves_no_temp_file(servers, tmp_path):
    master_server = servers("redis", "--repl-diskless-sync", "yes",
                            "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    master.execute_command("DEBUG", "POPULATE", 20000, "p", 100)
    master.config_set("rdb-key-save-delay", 500)
    replica_server = servers("vermilion")
    replica = replica_server.client()
    replica.replicaof("127.0.0.1", master_server.port)
    wait_until(lambda: list((tmp_path / "s1").glob("temp-*.rdb"))
               and info(replica).get("master_sync_in_progress") == 1, what="the transfer")
    replica_server.proc.send_signal(signal.SIGTERM)
    assert replica_server.proc.wait(10) == 0
    assert not list((tmp_path / "s1").glob("temp-*.rdb"))
    master.config_set("rdb-key-save-delay", 0)


def test_a_master_without_psync_gets_sync(servers):
    rdb = empty_rdb(servers)
    master = ScriptedMaster()
    try:
        replica_server = servers("vermilion")
        replica = replica_server.client()
        replica.replicaof("127.0.0.1", master.port)
        master.accept()
        master.read_until(b"PING\r\n")
        master.send(b"+PONG\r\n")
        master.read_until(b"psync2\r\n")
        master.send(b"+OK\r\n+OK\r\n")
        master.read_until(b"PSYNC\r\n")
        master.send(b"-ERR unknown command 'PSYNC'\r\n")
        master.read_until(b"SYNC\r\n")
        master.send(b"$%d\r\n" % len(rdb) + rdb + command(b"SET", b"k", b"v"))
        wait_until(lambda: link_up(replica) and replica.get("k") == b"v")
        log = log_of(replica_server)
        assert "Master does not support PSYNC or is in error state (reply: -ERR unknown " \
               "command 'PSYNC')" in log
        assert "Retrying with SYNC..." in log
        assert replica.get("from-rdb") == b"yes"
    finally:
        master.close()


def test_announced_address_and_config_rewrite(servers, tmp_path):
    master_server = servers("redis", "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    replica_server = servers("vermilion", "--replica-announce-ip", "10.1.2.3",
                             "--replica-announce-port", "4321", config_text="")
    replica = follow(replica_server, master_server)
    wait_until(lambda: info(master).get("slave0", {}).get("state") == "online")
    assert info(master)["slave0"]["ip"] == "10.1.2.3"
    assert info(master)["slave0"]["port"] == 4321
    assert replica.config_rewrite()
    conf = (tmp_path / "s1" / f"server-{replica_server.port}.conf").read_text()
    assert f"replicaof 127.0.0.1 {master_server.port}" in conf
    replica.replicaof("NO", "ONE")
    assert replica.config_get("replicaof") == {"replicaof": ""}
    assert replica.config_rewrite()
    conf = (tmp_path / "s1" / f"server-{replica_server.port}.conf").read_text()
    assert "replicaof" not in conf


# -- FAILOVER ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("master_kind", ["vermilion", "redis"])
def test_failover_swaps_master_and_vermilion_replica(servers, master_kind):
    """FAILOVER on the master: it waits until we have everything, then follows us with
    PSYNC ... FAILOVER, which makes us the master; no full sync anywhere."""
    master_server = servers(master_kind, "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    fill(master)
    replica_server = servers("vermilion")
    replica = follow(replica_server, master_server)
    write_families(master)
    wait_until(lambda: caught_up(master, replica))
    assert master.execute_command("FAILOVER") in (b"OK", "OK", True)
    wait_until(lambda: info(replica)["role"] == "master" and info(master)["role"] == "slave"
               and caught_up(replica, master), what="roles swapped")
    assert info(master)["master_port"] == replica_server.port
    assert info(master)["master_failover_state"] == "no-failover"
    assert info(replica, "stats")["sync_full"] == 0
    replica.set("on-the-new-master", 1)
    wait_until(lambda: caught_up(replica, master))
    same_data(replica, master)
    # REPLICAOF is refused while a failover waits (its target stopped, it cannot ACK).
    master_server.proc.send_signal(signal.SIGSTOP)
    try:
        replica.set("unacked", 1)
        assert replica.execute_command("FAILOVER", "TIMEOUT", 60000)
        with pytest.raises(redis.exceptions.ResponseError) as exc:
            replica.execute_command("REPLICAOF", "NO", "ONE")
        assert str(exc.value) == "REPLICAOF not allowed while failing over."
        assert replica.execute_command("FAILOVER", "ABORT")
    finally:
        master_server.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: caught_up(replica, master))


def test_keys_expired_on_the_master_stay_until_its_del(servers):
    """A snapshot may hold keys already expired on the master: a replica loads them
    (hidden from reads) and deletes them when the master's DEL comes."""
    master_server = servers("redis", "--repl-diskless-sync-delay", "0")
    master = master_server.client()
    master.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
    master.set("gone", "v", px=1)
    master.set("kept", "v")
    time.sleep(0.05)
    replica = follow(servers("vermilion"), master_server)
    wait_until(lambda: caught_up(master, replica))
    assert replica.dbsize() == 2  # loaded, as the master still holds it
    assert replica.get("gone") is None  # ... but reads do not see it
    assert master.get("gone") is None  # the master expires it: DEL to its replicas
    wait_until(lambda: caught_up(master, replica))
    assert replica.dbsize() == 1


def test_links_killed_while_the_master_is_under_load(servers):
    """redis-benchmark writes many families on the master while the replica's link is
    killed again and again: every reconnection continues partially, and the replica
    ends with the master's data and offset."""
    import subprocess
    import threading

    from conftest import require_binary

    master_server = servers("redis", "--repl-diskless-sync-delay", "0",
                            "--repl-backlog-size", "64mb")
    master = master_server.client()
    replica = follow(servers("vermilion"), master_server)
    stop = threading.Event()

    def partial_resyncs() -> int:
        return info(master, "stats")["sync_partial_ok"]

    def killer():
        # Under load and until three reconnections have happened (a fast benchmark may
        # end before the replica's once-a-second reconnect has come round three times).
        deadline = time.time() + 30
        while not (stop.is_set() and partial_resyncs() >= 3) and time.time() < deadline:
            try:
                replica.client_kill_filter(_type="master")
            except redis.exceptions.RedisError:
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        subprocess.run([require_binary("redis-benchmark"), "-p", str(master_server.port),
                        "-n", "20000", "-r", "1000", "-P", "8", "-q",
                        "-t", "set,incr,lpush,rpop,sadd,hset,spop,zadd,lrange_100,mset"],
                       check=True, capture_output=True, timeout=120)
    finally:
        stop.set()
        thread.join()
    wait_until(lambda: caught_up(master, replica), timeout=30)
    assert info(master, "stats")["sync_full"] == 1
    assert partial_resyncs() >= 3
    same_data(master, replica)


def test_chain_of_three_vermilion_servers(servers):
    top_server = servers("vermilion", "--repl-diskless-sync-delay", "0")
    top = top_server.client()
    fill(top)
    middle_server = servers("vermilion", "--repl-diskless-sync", "no")
    middle = follow(middle_server, top_server)
    in_db(top, 4).set("db4", 1)
    wait_until(lambda: caught_up(top, middle))
    leaf = follow(servers("vermilion"), middle_server)
    in_db(top, 4).set("db4-after", 1)
    write_families(top)
    wait_until(lambda: caught_up(top, middle) and caught_up(top, leaf))
    same_data(top, middle)
    same_data(top, leaf)
    leaf.client_kill_filter(_type="master")
    top.set("while-away", 1)
    wait_until(lambda: caught_up(top, leaf))
    assert info(middle, "stats")["sync_partial_ok"] == 1
    same_data(top, leaf)


@pytest.mark.parametrize("kind", ["vermilion", "redis"])
def test_the_masters_stream_waits_for_a_busy_script_and_is_applied_after(servers, kind):
    """processInputBuffer(): while a script is busy the master's stream accumulates
    (never answered -BUSY, so never lost) and is applied once the script ends."""
    master_server = servers("redis")
    master = master_server.client()
    replica_server = servers(kind, "--lua-time-limit", "200")
    replica = follow(replica_server, master_server)
    raw = RawConnection(replica_server.port)
    script = b"local i = 0 while true do i = i + 1 end"
    raw.send(b"*3\r\n$4\r\nEVAL\r\n$%d\r\n%s\r\n$1\r\n0\r\n" % (len(script), script))
    time.sleep(0.5)  # busy from here
    for _ in range(100):
        master.incr("n")
    wait_until(lambda: info(master)["master_repl_offset"] > 0)
    time.sleep(0.3)
    with pytest.raises(redis.ResponseError, match="BUSY"):
        replica.get("n")
    replica.script_kill()
    raw.close()
    # (-BUSY until the killed script is seen to stop)
    wait_until(lambda: caught_up(master, replica), 10, "the stream applied",
               tolerate=(redis.ResponseError,))
    assert replica.get("n") == b"100"
    assert "CRITICAL" not in log_of(replica_server)


def test_a_read_on_the_replica_right_after_the_masters_write_sees_it(servers):
    """The stream goes out with the reply that acknowledges the write, and the replica
    applies it in the turn that reads it: most reads right after a write see it (Redis:
    all of them on this machine)."""
    master_server = servers("vermilion")
    master = master_server.client()
    replica = follow(servers("vermilion"), master_server)
    time.sleep(1.2)  # past the first writes of the link
    seen = 0
    for _ in range(40):
        value = master.incr("x")
        seen += int(replica.get("x") or 0) == value
        time.sleep(0.01)
    assert seen >= 20
