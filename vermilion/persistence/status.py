"""INFO persistence: the fields Redis 7.0 prints, from the live snapshot and AOF state."""

import time


def persistence_fields(server) -> dict:
    snap, aof = server.snapshots, server.aof
    now = time.time()
    fields = {
        "loading": int(server.loading),
        "async_loading": 0,
        "current_cow_peak": 0,
        "current_cow_size": 0,
        "current_cow_size_age": 0,
        "current_fork_perc": "0.00",
        "current_save_keys_processed": 0,
        "current_save_keys_total": 0,
        "rdb_changes_since_last_save": server.dirty,
        "rdb_bgsave_in_progress": int(bool(snap.child_pid)),
        "rdb_last_save_time": server.lastsave,
        "rdb_last_bgsave_status": "ok" if snap.last_bgsave_ok else "err",
        "rdb_last_bgsave_time_sec": snap.last_bgsave_seconds,
        "rdb_current_bgsave_time_sec": int(now - snap.child_started) if snap.child_pid else -1,
        "rdb_saves": snap.saves,
        "rdb_last_cow_size": 0,
        "rdb_last_load_keys_expired": snap.loaded_expired,
        "rdb_last_load_keys_loaded": snap.loaded_keys,
        "aof_enabled": int(aof.enabled),
        "aof_rewrite_in_progress": int(bool(aof.rewrite_child)),
        "aof_rewrite_scheduled": int(aof.rewrite_scheduled),
        "aof_last_rewrite_time_sec": aof.last_rewrite_seconds,
        "aof_current_rewrite_time_sec": int(now - aof.rewrite_started) if aof.rewrite_child else -1,
        "aof_last_bgrewrite_status": "ok" if aof.last_rewrite_ok else "err",
        "aof_rewrites": aof.rewrites,
        "aof_rewrites_consecutive_failures": aof.consecutive_failures,
        "aof_last_write_status": "ok" if aof.last_write_ok else "err",
        "aof_last_cow_size": 0,
        "module_fork_in_progress": 0,
        "module_fork_last_cow_size": 0,
    }
    if aof.enabled:
        # Redis adds these only while the AOF is on.
        fields.update({
            "aof_current_size": aof.current_size,
            "aof_base_size": aof.base_size,
            "aof_pending_rewrite": int(aof.rewrite_scheduled),
            "aof_buffer_length": sum(len(b) for b in aof.buffer),
            "aof_pending_bio_fsync": 0,
            "aof_delayed_fsync": 0,
        })
    return fields
