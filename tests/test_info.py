"""INFO: sections, field names and their format, compared with a real redis-server 7.0
(values differ between two servers; names, order of sections and shapes must not)."""

import re

import pytest

from conftest import RawConnection


def sections(text: bytes) -> dict[str, list[str]]:
    """{section title: [field names]} of an INFO reply body."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.decode().split("\r\n"):
        if line.startswith("# "):
            current = line[2:]
            out[current] = []
        elif line and current is not None:
            out[current].append(line.split(":", 1)[0])
    return out


def body(reply: bytes) -> bytes:
    """The payload of a bulk ($) or verbatim (=, 'txt:') reply."""
    header, rest = reply.split(b"\r\n", 1)
    payload = rest[: int(header[1:])]
    return payload[4:] if header.startswith(b"=") else payload


FIXED_SECTIONS = ["Server", "Clients", "Memory", "Persistence", "Stats", "Replication",
                  "CPU", "Cluster"]


@pytest.mark.parametrize("args", [(), ("default",), ("all",), ("everything",),
                                  ("server", "keyspace"), ("cluster", "default"),
                                  ("CLIENTS",), ("bogus",), ("bogus", "cpu")])
def test_sections_selected_like_redis(raw, raw_real, args):
    ours = sections(body(raw.command("INFO", *args)))
    theirs = sections(body(raw_real.command("INFO", *args)))
    assert list(ours) == list(theirs)


def test_field_names_match_redis(raw, raw_real):
    ours = sections(body(raw.command("INFO", "all")))
    theirs = sections(body(raw_real.command("INFO", "all")))
    for title in FIXED_SECTIONS:
        expected = theirs[title]
        got = [f for f in ours[title] if f != "vermilion_version"]
        assert got == expected, title


def test_text_layout(raw, raw_real):
    for args in (("keyspace",), ("cluster", "keyspace"), ("bogus",)):
        raw.command("FLUSHALL")
        raw_real.command("FLUSHALL")
        assert raw.command("INFO", *args) == raw_real.command("INFO", *args), args


def test_resp3_reply_is_verbatim(raw):
    raw.command("HELLO", 3)
    reply = raw.command("INFO", "cluster")
    assert reply == b"=34\r\ntxt:# Cluster\r\ncluster_enabled:0\r\n\r\n"


def test_versions_and_keyspace(r):
    r.set("a", "1")
    r.set("b", "2", ex=100)
    info = r.info("all")
    assert info["redis_version"] == "7.0.15"
    assert "vermilion_version" in info
    assert info["db0"] == {"keys": 2, "expires": 1, "avg_ttl": info["db0"]["avg_ttl"]}


REDIS_EXPORTER_FIELDS = {
    # Numeric fields redis_exporter turns into metrics (a representative set).
    "uptime_in_seconds", "connected_clients", "blocked_clients", "maxclients",
    "used_memory", "used_memory_rss", "used_memory_peak", "used_memory_lua",
    "total_system_memory", "maxmemory", "mem_fragmentation_ratio",
    "total_connections_received", "total_commands_processed", "instantaneous_ops_per_sec",
    "total_net_input_bytes", "total_net_output_bytes", "rejected_connections",
    "expired_keys", "evicted_keys", "keyspace_hits", "keyspace_misses", "pubsub_channels",
    "pubsub_patterns", "latest_fork_usec", "rdb_changes_since_last_save",
    "rdb_bgsave_in_progress", "rdb_last_save_time", "rdb_last_bgsave_time_sec",
    "aof_enabled", "aof_rewrite_in_progress", "connected_slaves", "master_repl_offset",
    "repl_backlog_size", "used_cpu_sys", "used_cpu_user", "used_cpu_sys_children",
    "used_cpu_user_children", "total_error_replies", "loading", "process_id", "tcp_port",
    "cluster_enabled",
}


def test_redis_exporter_fields_parse_as_numbers(r):
    info = r.info("everything")
    for name in REDIS_EXPORTER_FIELDS:
        assert isinstance(info[name], (int, float)), name
    for name in ("run_id", "master_replid"):
        assert re.fullmatch(r"[0-9a-f]{40}", info[name]), name
    assert info["role"] == "master"
    assert info["maxmemory_policy"] == "noeviction"
    assert info["rdb_last_bgsave_status"] == "ok"


def test_commandstats_and_errorstats(r):
    r.get("nokey")
    with pytest.raises(Exception):
        r.execute_command("NOSUCHCOMMAND")
    info = r.info("commandstats")
    stat = info["cmdstat_get"]
    assert stat["calls"] >= 1
    assert set(stat) == {"calls", "usec", "usec_per_call", "rejected_calls", "failed_calls"}
    errors = r.info("errorstats")
    assert errors["errorstat_ERR"]["count"] >= 1


def test_commandstats_line_format(raw):
    raw.command("GET", "x")
    text = body(raw.command("INFO", "commandstats")).decode()
    assert re.search(r"\r\ncmdstat_get:calls=\d+,usec=\d+,usec_per_call=\d+\.\d\d,"
                     r"rejected_calls=\d+,failed_calls=\d+\r\n", text)


def test_subcommand_stats_use_the_pipe_name(raw):
    raw.command("CLIENT", "ID")
    text = body(raw.command("INFO", "commandstats")).decode()
    assert "cmdstat_client|id:calls=" in text


def test_stats_count_connections_and_commands(vermilion_server):
    first = RawConnection(vermilion_server.port)
    before = first.command("INFO", "stats")
    second = RawConnection(vermilion_server.port)
    second.command("PING")
    after = first.command("INFO", "stats")

    def field(text, name):
        return int(re.search(rb"\r\n%s:(\d+)" % name.encode(), text).group(1))

    assert field(after, "total_connections_received") == field(before, "total_connections_received") + 1
    assert field(after, "total_commands_processed") >= field(before, "total_commands_processed") + 2
    assert field(after, "total_net_input_bytes") > field(before, "total_net_input_bytes")
    first.close()
    second.close()


def test_persistence_fields_with_aof_match_redis(tmp_path):
    from conftest import start_redis, start_vermilion

    (tmp_path / "v").mkdir()
    (tmp_path / "r").mkdir()
    ours = start_vermilion(tmp_path / "v", ["--appendonly", "yes"])
    theirs = start_redis(tmp_path / "r", ["--appendonly", "yes"])
    try:
        a, b = RawConnection(ours.port), RawConnection(theirs.port)
        mine = sections(body(a.command("INFO", "persistence")))["Persistence"]
        real = sections(body(b.command("INFO", "persistence")))["Persistence"]
        assert mine == real
        a.close()
        b.close()
    finally:
        ours.stop()
        theirs.stop()


def test_config_resetstat_clears_statistics_like_redis(raw, raw_real):
    for conn in (raw, raw_real):
        conn.command("GET", "x")
        conn.command("NOSUCH")
        assert conn.command("CONFIG", "RESETSTAT") == b"+OK\r\n"
    for section in ("commandstats", "errorstats"):
        ours = sections(body(raw.command("INFO", section)))
        theirs = sections(body(raw_real.command("INFO", section)))
        assert ours == theirs, section
    text = body(raw.command("INFO", "stats")).decode()
    assert "\r\ntotal_error_replies:0\r\n" in text
    assert "\r\nrejected_connections:0\r\n" in text
