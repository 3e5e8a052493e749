"""INFO commandstats for commands refused before they run, beside redis-server: a known
command (or subcommand) with the wrong number of arguments counts a rejected call
(rejectCommand() on c->cmd); an unknown subcommand names no command and counts none."""

import redis

from conftest import side_by_side


def _refused_then_stats(server) -> dict:
    client = server.client()
    client.config_resetstat()
    for argv in (["GET"], ["CONFIG", "GET"], ["CONFIG"], ["CONFIG", "NOSUCH"], ["EVAL", "a"]):
        try:
            client.execute_command(*argv)
        except redis.ResponseError:
            pass
    with client.pipeline(transaction=True) as pipe:  # refused while queued in MULTI
        pipe.execute_command("SET", "k")
        try:
            pipe.execute()
        except redis.ResponseError:
            pass
    stats = client.info("commandstats")
    return {name: (entry["calls"], entry["rejected_calls"], entry["failed_calls"])
            for name, entry in stats.items() if name not in ("cmdstat_config|resetstat",
                                                            "cmdstat_multi", "cmdstat_info")}


def test_wrong_arity_counts_a_rejected_call_like_redis(tmp_path):
    mine, theirs = side_by_side(tmp_path, _refused_then_stats)
    assert mine == theirs
    assert mine["cmdstat_get"] == (0, 1, 0)
