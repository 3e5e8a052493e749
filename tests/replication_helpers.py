"""Waiting on replication, shared by the replication tests: a master and its replicas
are separate processes, so a test waits (bounded) for what it then asserts."""

import time

import redis


def wait_until(predicate, timeout=15.0, what="condition", tolerate=()):
    """predicate's first truthy value within timeout seconds; exceptions in tolerate
    (a server restarting, say) count as not yet."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
        except tolerate:
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def info(client, section="replication") -> dict:
    return client.info(section)


def link_up(replica) -> bool:
    try:
        return info(replica).get("master_link_status") == "up"
    except redis.exceptions.BusyLoadingError:
        return False


def caught_up(master, replica) -> bool:
    """The replica has applied everything the master produced so far."""
    offset = info(master)["master_repl_offset"]
    return link_up(replica) and info(replica).get("slave_repl_offset") == offset \
        and info(replica)["master_repl_offset"] == offset


def in_db(client, db: int) -> redis.Redis:
    """The same server (and password) in another database."""
    kwargs = client.connection_pool.connection_kwargs
    return redis.Redis(host="127.0.0.1", port=kwargs["port"], password=kwargs.get("password"),
                       db=db)


def dataset(client) -> dict:
    """Every key of every non-empty db read by type, with its absolute expiry: what a
    replica must hold, independent of how each server encodes it."""
    out = {}
    for db_name, _ in client.info("keyspace").items():
        db = int(db_name[2:])
        c = in_db(client, db)
        for key in c.scan_iter(count=1000):
            kind = c.type(key).decode()
            if kind == "string":
                value = c.get(key)
            elif kind == "list":
                value = c.lrange(key, 0, -1)
            elif kind == "set":
                value = sorted(c.smembers(key))
            elif kind == "hash":
                value = sorted(c.hgetall(key).items())
            elif kind == "zset":
                value = c.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":
                value = (c.xrange(key), c.xinfo_groups(key),
                         c.execute_command("XINFO", "STREAM", key)[1],
                         [(p["message_id"], p["consumer"], p["times_delivered"])
                          for p in c.xpending_range(key, "group", "-", "+", 100)]
                         if any(g["name"] == b"group" for g in c.xinfo_groups(key)) else None)
            else:
                value = kind
            out[(db, key)] = (kind, value, c.pexpiretime(key))
    return out
