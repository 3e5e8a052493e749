"""CLIENT PAUSE (networking.c pauseClients, server.c processCommand): which commands a
pause holds, judged as Redis 7.0 judges them (getCommandFlags(): a script's declared
flags for EVAL*/FCALL*, the queued commands' for EXEC), and how a held client shows
(blocked, flag b in CLIENT LIST, counted in INFO's blocked_clients). Every case runs
against a real redis-server too and must come out the same."""

import socket

import pytest

from conftest import RawConnection

NO_WRITES = "#!lua flags=no-writes\nreturn 'ro'"
SHEBANG_WRITE = "#!lua\nreturn 'rw'"
LIBRARY = """#!lua name=pauselib
redis.register_function{function_name='pause_ro', callback=function() return 'ro' end,
                        flags={'no-writes'}}
redis.register_function('pause_rw', function() return 'rw' end)
"""

# (name, pause mode, commands sent before the pause, the command sent during it)
CASES = [
    ("get", "WRITE", [], ["GET", "pk"]),
    ("ping", "WRITE", [], ["PING"]),
    ("set", "WRITE", [], ["SET", "pk", "v"]),
    ("pfcount may replicate", "WRITE", [], ["PFCOUNT", "hll"]),
    ("publish may replicate", "WRITE", [], ["PUBLISH", "ch", "m"]),
    ("eval legacy", "WRITE", [], ["EVAL", "return 1", "0"]),
    ("eval shebang no flags", "WRITE", [], ["EVAL", SHEBANG_WRITE, "0"]),
    ("eval no-writes", "WRITE", [], ["EVAL", NO_WRITES, "0"]),
    ("eval_ro legacy", "WRITE", [], ["EVAL_RO", "return 1", "0"]),
    ("evalsha no-writes", "WRITE", [["SCRIPT", "LOAD", NO_WRITES]],
     ["EVALSHA", "sha:" + NO_WRITES, "0"]),
    ("evalsha shebang write", "WRITE", [["SCRIPT", "LOAD", SHEBANG_WRITE]],
     ["EVALSHA", "sha:" + SHEBANG_WRITE, "0"]),
    ("fcall no-writes", "WRITE", [], ["FCALL", "pause_ro", "0"]),
    ("fcall write", "WRITE", [], ["FCALL", "pause_rw", "0"]),
    ("exec of reads", "WRITE", [["MULTI"], ["GET", "pk"], ["PING"]], ["EXEC"]),
    ("exec of a write", "WRITE", [["MULTI"], ["SET", "pk", "v"]], ["EXEC"]),
    ("exec of no-writes scripts", "WRITE", [["MULTI"], ["EVAL", NO_WRITES, "0"]], ["EXEC"]),
    ("exec of a write script", "WRITE", [["MULTI"], ["EVAL", SHEBANG_WRITE, "0"]], ["EXEC"]),
    ("wrong arity", "WRITE", [], ["SET", "pk"]),
    ("wrong arity, pause all", "ALL", [], ["SET", "pk"]),
    ("unknown command, pause all", "ALL", [], ["NOSUCHCOMMAND"]),
    ("ping, pause all", "ALL", [], ["PING"]),
]


def _resolve(args, admin):
    out = []
    for a in args:
        if a.startswith("sha:"):
            a = admin.execute_command("SCRIPT", "LOAD", a[4:])
            a = a.decode() if isinstance(a, bytes) else a
        out.append(a)
    return out


def _run_case(server, mode, before, during):
    """(held, blocked_clients while held, flag b shown, the reply)."""
    admin = server.client()
    admin.flushall()
    admin.execute_command("FUNCTION", "LOAD", "REPLACE", LIBRARY)
    worker = RawConnection(server.port)
    try:
        worker_id = int(worker.command("CLIENT", "ID")[1:-2])
        for args in before:
            worker.command(*_resolve(args, admin))
        during = _resolve(during, admin)
        # Under ALL even CLIENT UNPAUSE waits: that pause is short, and runs out.
        admin.execute_command("CLIENT", "PAUSE", 10000 if mode == "WRITE" else 800, mode)
        try:
            worker.send(b"*%d\r\n" % len(during) + b"".join(
                b"$%d\r\n%s\r\n" % (len(p.encode()), p.encode()) for p in during))
            worker.sock.settimeout(0.3)
            try:
                reply = worker.read_reply()
                return False, None, None, reply
            except socket.timeout:
                pass
            if mode == "ALL":  # (INFO and CLIENT LIST would wait as well)
                worker.sock.settimeout(5)
                return True, None, None, worker.read_reply()
            blocked = admin.info("clients")["blocked_clients"]
            line = admin.execute_command("CLIENT", "LIST", "ID", worker_id)
            line = line.decode() if isinstance(line, bytes) else line
            flags = dict(f.split("=", 1) for f in line.split())["flags"]
        finally:
            if mode == "WRITE":
                admin.execute_command("CLIENT", "UNPAUSE")
        worker.sock.settimeout(5)
        return True, blocked, "b" in flags, worker.read_reply()
    finally:
        worker.close()
        admin.close()


@pytest.mark.parametrize("name,mode,before,during", CASES, ids=[c[0] for c in CASES])
def test_pause_holds_what_redis_holds(vermilion_server, redis_server, name, mode, before,
                                      during):
    theirs = _run_case(redis_server, mode, before, during)
    ours = _run_case(vermilion_server, mode, before, during)
    assert ours == theirs
    if theirs[0] and mode == "WRITE":
        assert theirs[1:3] == (1, True)
