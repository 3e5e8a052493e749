"""Scripts on a stale replica (replica-serve-stale-data no, master unreachable), beside
redis-server: a script that declares its flags is stale only with allow-stale
(scriptFlagsToCmdFlags() replaces EVAL's/FCALL's own flags, so processCommand() answers
MASTERDOWN before the script runs); inside an allow-stale script a command without the
stale flag gets scriptVerifyAllowStale()'s error."""

import redis

from conftest import side_by_side

LIBRARY = """#!lua name=stale
redis.register_function{function_name='plain', callback=function() return 'hello' end,
                        flags={'no-writes'}}
redis.register_function{function_name='allowed', callback=function() return 'hello' end,
                        flags={'allow-stale', 'no-writes'}}
redis.register_function{function_name='reads', callback=function()
                        return redis.call('get', 'x') end, flags={'allow-stale', 'no-writes'}}
"""
CALLS = [
    ("EVAL", "return redis.call('get','x')", 1, "x"),
    ("EVAL", "#!lua flags=no-writes\nreturn 1", 0),
    ("EVAL", "#!lua flags=allow-stale,no-writes\nreturn 1", 0),
    ("EVAL", "#!lua flags=allow-stale,no-writes\nreturn redis.call('get','x')", 1, "x"),
    ("FCALL", "plain", 0),
    ("FCALL", "allowed", 0),
    ("FCALL", "reads", 0),
]


def _replies(server) -> list:
    client = server.client()
    client.function_load(LIBRARY)
    client.config_set("replica-serve-stale-data", "no")
    client.replicaof("127.0.0.1", 1)  # nobody there: the link stays down
    out = []
    for call in CALLS:
        try:
            out.append(client.execute_command(*call))
        except redis.ResponseError as exc:
            out.append(str(exc))
    client.replicaof("no", "one")
    return out


def test_stale_replica_script_replies_match_redis(tmp_path):
    mine, theirs = side_by_side(tmp_path, _replies)
    assert mine == theirs
    assert mine[1].startswith("Link with MASTER is down and")  # (redis-py drops the prefix)
