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
