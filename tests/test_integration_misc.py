"""Behaviours the Tcl integration units check that have no family of their own: a
writable replica's writes on logically expired keys (integration/replication-3). Each
runs against redis-server too."""

import pytest
import redis

from replication_helpers import wait_until

KINDS = ["vermilion", "redis"]


def _follow(master, replica) -> None:
    replica.client().replicaof("127.0.0.1", master.port)
    wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up",
               what="the replica's link")


@pytest.mark.parametrize("kind", KINDS)
def test_only_a_writable_replica_deletes_the_expired_key_it_writes(servers, kind):
    # lookupKey() with LOOKUP_WRITE: on a writable replica a write command deletes the
    # expired key it finds (so INCR starts from a new key without TTL); a read only hides
    # it, and a read-only replica refuses the write and keeps the key for its master's DEL.
    master = servers(kind, "--repl-diskless-sync-delay", "0")
    replica = servers(kind)
    _follow(master, replica)
    m, s = master.client(), replica.client()
    m.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    m.set("key1", 5, px=10)
    m.set("key2", 5, px=10)
    wait_until(lambda: s.dbsize() == 2 and s.exists("key1", "key2") == 0,
               what="the keys to reach the replica and expire")
    with pytest.raises(redis.exceptions.ReadOnlyError):
        s.incr("key1")
    assert s.dbsize() == 2
    s.config_set("replica-read-only", "no")
    assert s.incr("key1") == 1
    assert s.ttl("key1") == -1
    assert s.get("key2") is None
    assert s.dbsize() == 2  # key2: a read does not delete it
