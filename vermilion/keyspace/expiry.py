"""The active expiry cycle (expire.c activeExpireCycle, the slow cycle run by the cron).

Keys with a TTL that nobody reads would never expire lazily; the cron calls
``active_expire_cycle(server)`` `hz` times a second. As in Redis, per database it
samples up to 20 keys that have a TTL, deletes the expired ones, and repeats while more
than 10% of a sample had expired (ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE), within a time
budget of 25% of the cron period (checked every 16 samples). It keeps INFO's
expired_stale_perc, expired_time_cap_reached_count, expire_cycle_cpu_milliseconds and
the keyspace avg_ttl; expired_keys is counted by Database.expire_now().

Sampling: Redis walks random buckets of its hash table. A Python dict cannot be sampled
randomly or walked from a saved position once it changes size, so each database keeps
a snapshot list of its TTL keys (``db.expire_keys``) walked 20 at a time from
``db.expires_cursor``. A key renewed or deleted since the snapshot is skipped (checked
against ``db.expires``); keys added later are seen at the next pass, when the walk
reaches the end and takes a new snapshot. The O(N) copy happens once per full pass, so
each sampled key costs O(1) amortized, and a cycle where nothing expires checks 20 keys
per database.
"""

import time

from .database import now_ms

KEYS_PER_LOOP = 20  # ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP
ACCEPTABLE_STALE = 10  # ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE (percent)
SLOW_TIME_PERC = 25  # ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC
TIME_CHECK_EVERY = 16  # iterations between clock reads, as Redis does

def _effort(server) -> int:
    # activeExpireCycle(): effort 1..10 shifts keys per loop, stale % and time budget.
    return server.config.values.get("active-expire-effort", 1) - 1


def active_expire_cycle(server) -> None:
    if server.replica_mode:
        return  # a replica's keys expire when its master's DEL arrives (activeExpireCycle
        # runs only on masters)
    effort = _effort(server)
    keys_per_loop = KEYS_PER_LOOP + KEYS_PER_LOOP // 4 * effort
    acceptable_stale = ACCEPTABLE_STALE - effort
    time_perc = SLOW_TIME_PERC + 2 * effort
    start = time.perf_counter()
    deadline = start + time_perc / 100.0 / server.config["hz"]

    stats = server.stats
    total_sampled = total_expired = 0
    timelimit_exit = False
    for db in server.dbs:
        if not db.expires:
            continue
        sampled, expired, timelimit_exit = _expire_db(
            db, keys_per_loop, acceptable_stale, deadline)
        total_sampled += sampled
        total_expired += expired
        if timelimit_exit:
            stats.expired_time_cap_reached_count += 1
            break

    used_us = int((time.perf_counter() - start) * 1_000_000)
    total_us = stats.expire_cycle_time_used_us + used_us
    stats.expire_cycle_time_used_us = total_us
    stats.expire_cycle_cpu_milliseconds = total_us // 1000
    # latencyAddSampleIfNeeded("expire-cycle"): a cycle slower than the threshold.
    server.latency.add_if_needed(server.config["latency-monitor-threshold"], "expire-cycle",
                                 used_us // 1000)
    # A moving average of the share of sampled keys found expired, kept as a percentage
    # (what INFO prints as expired_stale_perc; Redis stores the fraction, prints x100).
    current = 100.0 * total_expired / total_sampled if total_sampled else 0.0
    stats.expired_stale_perc = current * 0.05 + stats.expired_stale_perc * 0.95


def _expire_db(db, keys_per_loop: int, acceptable_stale: int, deadline: float):
    """Sample and expire in db until few samples are stale or time is up.
    Returns (sampled, expired, hit the time limit)."""
    now = now_ms()
    total_sampled = total_expired = 0
    ttl_sum = ttl_samples = 0
    iterations = 0
    timelimit_exit = False
    expire_now = db.expire_now
    while True:
        expires = db.expires
        if not expires:
            break
        keys = db.expire_keys
        pos = db.expires_cursor
        if db.expire_keys_source is not expires or pos >= len(keys):
            keys = db.expire_keys = list(expires)
            db.expire_keys_source = expires
            pos = 0
        end = pos + keys_per_loop
        db.expires_cursor = end
        sampled = expired = 0
        get = expires.get
        for key in keys[pos:end]:
            when = get(key)
            if when is None:  # deleted or persisted since the snapshot
                continue
            sampled += 1
            if when <= now:
                expire_now(key)
                expired += 1
            else:
                ttl_sum += when - now
                ttl_samples += 1
        total_sampled += sampled
        total_expired += expired
        iterations += 1
        if iterations % TIME_CHECK_EVERY == 0 and time.perf_counter() > deadline:
            timelimit_exit = True
            break
        # Redis repeats while a sample was empty or too stale (integer percent).
        if sampled and expired * 100 // sampled <= acceptable_stale:
            break
    if ttl_samples:
        # Running estimate shown by INFO keyspace avg_ttl.
        avg = ttl_sum // ttl_samples
        db.avg_ttl = (db.avg_ttl // 50) * 49 + avg // 50 if db.avg_ttl else avg
    return total_sampled, total_expired, timelimit_exit
