"""A script queued in MULTI counts with the flags its shebang declares (queueMultiCommand()
accumulates getCommandFlags(): scriptFlagsToCmdFlags()), against redis-server."""

import redis


def exec_replies(server):
    admin = server.client()
    results = []
    for script in ("#!lua\nreturn 1", "#!lua flags=no-writes\nreturn 1"):
        client = server.client(single_connection_client=True)
        client.execute_command("MULTI")
        client.execute_command("EVAL", script, 0)
        admin.execute_command("REPLICAOF", "127.0.0.1", "1")  # now a read-only replica
        try:
            results.append(client.execute_command("EXEC"))
        except redis.ResponseError as exc:
            results.append(str(exc))
        admin.execute_command("REPLICAOF", "NO", "ONE")
        client.close()
    return results


def test_declared_write_script_aborts_exec_on_a_read_only_replica(servers):
    vermilion, real = servers("vermilion"), servers("redis")
    replies = exec_replies(vermilion)
    assert replies == exec_replies(real)
    assert replies[0].startswith("Transaction discarded because of: READONLY")
    assert replies[1] == [1]
