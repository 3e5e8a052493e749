"""INFO: the sections of server.c genRedisInfoString(), field names exactly as Redis's.

Each section is a function returning an ordered dict of field → value, read from the
state the server declares (server.snapshots, server.aof, server.blocking...), in
Redis's field order; a new field goes in its section's function. The text is "# Title\\r\\n" + "name:value\\r\\n" lines, sections joined by a
blank line; INFO sends it as a bulk string (a verbatim string in RESP3).
"""

import os
import platform
import resource
import sys
import time

from . import REDIS_VERSION, __version__
from .memory import bytes_to_human, memory_fields, rss_bytes, total_system_memory

TITLES = {
    "server": "Server", "clients": "Clients", "memory": "Memory",
    "persistence": "Persistence", "stats": "Stats", "replication": "Replication",
    "cpu": "CPU", "modules": "Modules", "commandstats": "Commandstats",
    "errorstats": "Errorstats", "latencystats": "Latencystats", "cluster": "Cluster",
    "keyspace": "Keyspace",
}
ALL = tuple(TITLES)
# "INFO" / "INFO default": everything but the per-command statistics.
DEFAULT = tuple(s for s in ALL if s not in ("commandstats", "latencystats"))

LRU_CLOCK_MAX = (1 << 24) - 1


def select_sections(args: list[bytes]) -> list[str]:
    """genInfoSectionDict(): names are case-insensitive, unknown ones are ignored,
    'default', 'all' and 'everything' expand; output keeps Redis's section order."""
    wanted: set[str] = set()
    if not args:
        wanted.update(DEFAULT)
    for raw in args:
        name = raw.decode("utf-8", "replace").lower()
        if name == "default":
            wanted.update(DEFAULT)
        elif name in ("all", "everything"):
            wanted.update(ALL)
        elif name in TITLES:
            wanted.add(name)
    return [s for s in ALL if s in wanted]


def render(server, sections: list[str]) -> bytes:
    parts = []
    for name in sections:
        fields = SECTIONS[name](server)
        lines = ["# %s\r\n" % TITLES[name]]
        lines.extend("%s:%s\r\n" % (k, _fmt(v)) for k, v in fields.items())
        parts.append("".join(lines))
    return "\r\n".join(parts).encode()


def _fmt(value) -> str:
    if isinstance(value, float):
        return "%.2f" % value
    return str(value)



# -- sections --------------------------------------------------------------------------

def server_section(server) -> dict:
    now = time.time()
    uptime = int(now - server.start_time)
    uname = platform.uname()
    fields = {
        "redis_version": REDIS_VERSION,
        "vermilion_version": __version__,
        "redis_git_sha1": "00000000",
        "redis_git_dirty": 0,
        "redis_build_id": "0",
        "redis_mode": "standalone",
        "os": f"{uname.system} {uname.release} {uname.machine}",
        "arch_bits": 64,
        "monotonic_clock": "POSIX clock_gettime",
        "multiplexing_api": "epoll",
        "atomicvar_api": "c11-builtin",
        "gcc_version": "0.0.0",
        "process_id": os.getpid(),
        "process_supervised": "no",
        "run_id": server.run_id,
        "tcp_port": server.tcp_port or server.config["port"],
        "server_time_usec": time.time_ns() // 1000,
        "uptime_in_seconds": uptime,
        "uptime_in_days": uptime // 86400,
        "hz": server.config["hz"],
        "configured_hz": server.config["hz"],
        "lru_clock": int(now) & LRU_CLOCK_MAX,
        "executable": os.path.abspath(sys.argv[0]),
        "config_file": server.config.config_file,
        "io_threads_active": 0,
    }
    if server.shutdown_deadline:  # waiting for replicas before exiting
        fields["shutdown_in_milliseconds"] = max(int((server.shutdown_deadline - now) * 1000), 0)
    return fields


def clients_section(server) -> dict:
    return {
        # listLength(server.clients) - listLength(server.slaves): replicas are not counted
        "connected_clients": len(server.clients) - len(server.replicas.replicas),
        "cluster_connections": 0,
        "maxclients": server.config["maxclients"],
        "client_recent_max_input_buffer": server.recent_max_input_buffer(),
        "client_recent_max_output_buffer": server.recent_max_output_buffer(),
        # Clients held by CLIENT PAUSE count too (blockClient(c, BLOCKED_POSTPONE)).
        "blocked_clients": server.blocking.blocked_clients + len(server.postponed),
        "tracking_clients": server.tracking.clients,
        "clients_in_timeout_table": server.blocking.clients_in_timeout_table,
    }


def memory_section(server) -> dict:
    fields = _base_memory_section(server)
    if server.evictor is not None:
        # memory.py's accounting is the real figure; this module keeps the Lua fields.
        fields.update(memory_fields(server))
    return fields


def _base_memory_section(server) -> dict:
    used = server.used_memory()
    rss = rss_bytes()
    peak = server.note_memory_peak(used)
    startup = server.used_memory_startup
    dataset = max(used - startup, 0)
    maxmemory = server.config["maxmemory"]
    frag = rss / used if used else 0.0
    backlog_bytes, replication_buffers = server.replicas.buffer_bytes()
    return {
        "used_memory": used,
        "used_memory_human": bytes_to_human(used),
        "used_memory_rss": rss,
        "used_memory_rss_human": bytes_to_human(rss),
        "used_memory_peak": peak,
        "used_memory_peak_human": bytes_to_human(peak),
        "used_memory_peak_perc": "%.2f%%" % (used * 100 / peak if peak else 0),
        "used_memory_overhead": startup,
        "used_memory_startup": startup,
        "used_memory_dataset": dataset,
        "used_memory_dataset_perc": "%.2f%%" % (dataset * 100 / used if used else 0),
        "allocator_allocated": used,
        "allocator_active": used,
        "allocator_resident": rss,
        "total_system_memory": total_system_memory(),
        "total_system_memory_human": bytes_to_human(total_system_memory()),
        "used_memory_lua": 32768,
        "used_memory_vm_eval": 32768,
        "used_memory_lua_human": "32.00K",
        "used_memory_scripts_eval": 0,
        "number_of_cached_scripts": len(server.scripting.bodies) if server.scripting else 0,
        "number_of_functions": server.functions_engine.counts()[0],
        "number_of_libraries": server.functions_engine.counts()[1],
        "used_memory_vm_functions": 32768,
        "used_memory_vm_total": 65536,
        "used_memory_vm_total_human": "64.00K",
        "used_memory_functions": 0,
        "used_memory_scripts": 0,
        "used_memory_scripts_human": "0B",
        "maxmemory": maxmemory,
        "maxmemory_human": bytes_to_human(maxmemory),
        "maxmemory_policy": server.config["maxmemory-policy"],
        "allocator_frag_ratio": 1.0,
        "allocator_frag_bytes": 0,
        "allocator_rss_ratio": frag,
        "allocator_rss_bytes": rss - used,
        "rss_overhead_ratio": 1.0,
        "rss_overhead_bytes": 0,
        "mem_fragmentation_ratio": frag,
        "mem_fragmentation_bytes": rss - used,
        "mem_not_counted_for_evict": 0,
        "mem_replication_backlog": backlog_bytes,
        "mem_total_replication_buffers": replication_buffers,
        "mem_clients_slaves": 0,
        "mem_clients_normal": sum(c.output_buffer_size() for c in server.clients.values()
                                  if c.replica is None),
        "mem_cluster_links": 0,
        "mem_aof_buffer": 0,
        "mem_allocator": "libc",
        "active_defrag_running": 0,
        "lazyfree_pending_objects": 0,
        "lazyfreed_objects": server.stats.lazyfreed_objects,
    }


def persistence_section(server) -> dict:
    now = time.time()
    snap = server.snapshots
    aof = server.aof
    # The child writing an RDB for replicas is an RDB child too (CHILD_TYPE_RDB).
    sync_fork = server.replicas.fork
    bgsave_pid = snap.child_pid or (sync_fork.pid if sync_fork is not None else 0)
    rewrite_pid = aof.rewrite_child
    aof_on = bool(server.config["appendonly"])
    fields = {
        # A replica's swapdb load from its own master serves the old dataset meanwhile.
        "loading": int(server.loading and not server.master_link.async_loading),
        "async_loading": int(server.master_link.async_loading),
        # What the BGSAVE child reported so far (zeros without one: resetChildState()).
        **snap.child_info.read(),
        "rdb_changes_since_last_save": server.dirty,
        "rdb_bgsave_in_progress": int(bool(bgsave_pid)),
        "rdb_last_save_time": server.lastsave,
        "rdb_last_bgsave_status": "ok" if snap.last_bgsave_ok else "err",
        "rdb_last_bgsave_time_sec": snap.last_bgsave_seconds,
        "rdb_current_bgsave_time_sec":
            int(now - (snap.child_started if snap.child_pid else sync_fork.started))
            if bgsave_pid else -1,
        "rdb_saves": snap.saves,
        "rdb_last_cow_size": snap.last_cow_size,
        "rdb_last_load_keys_expired": snap.loaded_expired,
        "rdb_last_load_keys_loaded": snap.loaded_keys,
        "aof_enabled": int(aof_on),
        "aof_rewrite_in_progress": int(bool(rewrite_pid)),
        "aof_rewrite_scheduled": int(bool(aof.rewrite_scheduled)),
        "aof_last_rewrite_time_sec": aof.last_rewrite_seconds,
        "aof_current_rewrite_time_sec":
            int(now - aof.rewrite_started) if rewrite_pid else -1,
        "aof_last_bgrewrite_status": "ok" if aof.last_rewrite_ok else "err",
        "aof_rewrites": aof.rewrites,
        "aof_rewrites_consecutive_failures": aof.consecutive_failures,
        "aof_last_write_status": "ok" if aof.last_write_ok else "err",
        "aof_last_cow_size": 0,
        "module_fork_in_progress": 0,
        "module_fork_last_cow_size": 0,
    }
    if aof_on:
        fields.update({
            "aof_current_size": aof.current_size,
            "aof_base_size": aof.base_size,
            "aof_pending_rewrite": int(bool(aof.rewrite_scheduled)),
            "aof_buffer_length": len(aof.buffer or b""),
            "aof_pending_bio_fsync": 0,
            "aof_delayed_fsync": 0,
        })
    return fields


def stats_section(server) -> dict:
    fields = _base_stats_section(server)
    if server.evictor is not None:
        from .eviction import stats_fields

        fields.update(stats_fields(server))
    return fields


def _base_stats_section(server) -> dict:
    st = server.stats
    inst = server.instantaneous
    return {
        "total_connections_received": st.total_connections_received,
        "total_commands_processed": st.total_commands_processed,
        "instantaneous_ops_per_sec": int(inst.get("ops", 0)),
        "total_net_input_bytes": st.total_net_input_bytes,
        "total_net_output_bytes": st.total_net_output_bytes,
        "total_net_repl_input_bytes": st.total_net_repl_input_bytes,
        "total_net_repl_output_bytes": st.total_net_repl_output_bytes,
        "instantaneous_input_kbps": inst.get("in", 0) / 1024,
        "instantaneous_output_kbps": inst.get("out", 0) / 1024,
        "instantaneous_input_repl_kbps": inst.get("repl_in", 0) / 1024,
        "instantaneous_output_repl_kbps": inst.get("repl_out", 0) / 1024,
        "rejected_connections": st.rejected_connections,
        "sync_full": server.replicas.sync_full,
        "sync_partial_ok": server.replicas.sync_partial_ok,
        "sync_partial_err": server.replicas.sync_partial_err,
        "expired_keys": st.expired_keys,
        "expired_stale_perc": st.expired_stale_perc,
        "expired_time_cap_reached_count": st.expired_time_cap_reached_count,
        "expire_cycle_cpu_milliseconds": st.expire_cycle_cpu_milliseconds,
        "evicted_keys": st.evicted_keys,
        "evicted_clients": st.evicted_clients,
        "total_eviction_exceeded_time": 0,
        "current_eviction_exceeded_time": 0,
        "keyspace_hits": st.keyspace_hits,
        "keyspace_misses": st.keyspace_misses,
        "pubsub_channels": len(server.pubsub.channels),
        "pubsub_patterns": len(server.pubsub.patterns),
        "pubsubshard_channels": len(server.pubsub.shard),
        "latest_fork_usec": 0,
        "total_forks": st.total_forks,
        "migrate_cached_sockets": len(server.migrate_sockets),
        "slave_expires_tracked_keys": 0,
        "active_defrag_hits": 0,
        "active_defrag_misses": 0,
        "active_defrag_key_hits": 0,
        "active_defrag_key_misses": 0,
        "total_active_defrag_time": 0,
        "current_active_defrag_time": 0,
        **server.tracking.stats(),
        "unexpected_error_replies": st.unexpected_error_replies,
        "total_error_replies": st.total_error_replies,
        "dump_payload_sanitizations": 0,
        "total_reads_processed": st.total_reads_processed,
        "total_writes_processed": st.total_writes_processed,
        "io_threaded_reads_processed": 0,
        "io_threaded_writes_processed": 0,
        "reply_buffer_shrinks": 0,
        "reply_buffer_expands": 0,
    }


def replication_section(server) -> dict:
    link = server.master_link
    replicas = server.replicas
    repl = server.repl
    out = {"role": "master" if link.host is None else "slave"}
    if link.host is not None:
        out.update(link.info_fields())
    out["connected_slaves"] = len(replicas.replicas)
    config = server.config
    if config["min-replicas-to-write"] and config["min-replicas-max-lag"]:
        out["min_slaves_good_slaves"] = replicas.good_replicas
    out.update(replicas.info_lines())
    backlog = repl.backlog
    out.update({
        "master_failover_state": replicas.failover_state,
        "master_replid": repl.replid,
        "master_replid2": repl.replid2,
        "master_repl_offset": repl.offset,
        "second_repl_offset": repl.second_offset,
        "repl_backlog_active": int(backlog is not None),
        "repl_backlog_size": config["repl-backlog-size"],
        "repl_backlog_first_byte_offset": backlog.first_offset if backlog else 0,
        "repl_backlog_histlen": backlog.histlen if backlog else 0,
    })
    return out


def cpu_section(server) -> dict:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    thread = resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF))
    return {
        "used_cpu_sys": "%.6f" % me.ru_stime,
        "used_cpu_user": "%.6f" % me.ru_utime,
        "used_cpu_sys_children": "%.6f" % kids.ru_stime,
        "used_cpu_user_children": "%.6f" % kids.ru_utime,
        "used_cpu_sys_main_thread": "%.6f" % thread.ru_stime,
        "used_cpu_user_main_thread": "%.6f" % thread.ru_utime,
    }


def modules_section(server) -> dict:
    return {}


def commandstats_section(server) -> dict:
    out = {}
    for spec in sorted(server.commands.every_spec(), key=lambda s: s.fullname):
        if spec.calls or spec.rejected_calls or spec.failed_calls:
            per_call = spec.usec / spec.calls if spec.calls else 0.0
            out["cmdstat_" + spec.fullname] = (
                "calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d"
                % (spec.calls, spec.usec, per_call, spec.rejected_calls, spec.failed_calls))
    return out


def errorstats_section(server) -> dict:
    return {"errorstat_" + code: "count=%d" % n
            for code, n in sorted(server.stats.errorstats.items())}


def latencystats_section(server) -> dict:
    """latency_percentiles_usec_<command>, while latency-tracking is on (genRedisInfoString
    LatencyStats). Redis keeps an HDR histogram of every command's durations; Vermilion
    keeps each command's calls and total time (commandstats), so every percentile is
    the mean duration — the approximation LATENCY HISTOGRAM makes too."""
    if not server.config["latency-tracking"]:
        return {}
    labels = [_percentile_label(p) for p in server.config["latency-tracking-info-percentiles"]]
    out = {}
    for spec in sorted(server.commands.every_spec(), key=lambda s: s.fullname):
        if spec.calls:
            mean = "%.3f" % (spec.usec / spec.calls)
            out["latency_percentiles_usec_" + spec.fullname] = ",".join(
                "p%s=%s" % (label, mean) for label in labels)
    return out


def _percentile_label(percentile: float) -> str:
    # sprintf("%f") then trimDoubleString(): 50.0 → "50", 99.9 → "99.9".
    return ("%f" % percentile).rstrip("0").rstrip(".")


def cluster_section(server) -> dict:
    return {"cluster_enabled": 0}


def keyspace_section(server) -> dict:
    return {
        "db%d" % db.id: "keys=%d,expires=%d,avg_ttl=%d" % (len(db.data), len(db.expires), db.avg_ttl)
        for db in server.dbs if db.data
    }


SECTIONS = {
    "server": server_section, "clients": clients_section, "memory": memory_section,
    "persistence": persistence_section, "stats": stats_section,
    "replication": replication_section, "cpu": cpu_section, "modules": modules_section,
    "commandstats": commandstats_section, "errorstats": errorstats_section,
    "latencystats": latencystats_section, "cluster": cluster_section,
    "keyspace": keyspace_section,
}
