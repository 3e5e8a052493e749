"""Behaviours the Tcl integration units check that have no family of their own: a
writable replica's writes on logically expired keys (integration/replication-3), the
crash report in the log (integration/logging). Each runs against redis-server too."""

import signal
import socket
import time

import pytest
import redis

from replication_helpers import wait_until

KINDS = ["vermilion", "redis"]


def _follow(master, replica) -> None:
    replica.client().replicaof("127.0.0.1", master.port)
    wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up",
               what="the replica's link")


@pytest.mark.parametrize("kind", KINDS)
def test_only_a_writable_replica_deletes_the_expired_key_it_writes(servers, kind):
    # lookupKey() with LOOKUP_WRITE: on a writable replica a write command deletes the
    # expired key it finds (so INCR starts from a new key without TTL); a read only hides
    # it, and a read-only replica refuses the write and keeps the key for its master's DEL.
    master = servers(kind, "--repl-diskless-sync-delay", "0")
    replica = servers(kind)
    _follow(master, replica)
    m, s = master.client(), replica.client()
    m.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    m.set("key1", 5, px=10)
    m.set("key2", 5, px=10)
    wait_until(lambda: s.dbsize() == 2 and s.exists("key1", "key2") == 0,
               what="the keys to reach the replica and expire")
    with pytest.raises(redis.exceptions.ReadOnlyError):
        s.incr("key1")
    assert s.dbsize() == 2
    s.config_set("replica-read-only", "no")
    assert s.incr("key1") == 1
    assert s.ttl("key1") == -1
    assert s.get("key2") is None
    assert s.dbsize() == 2  # key2: a read does not delete it


# The crash tests' servers: no memory test after the report (Redis's takes seconds).
NO_MEMTEST = ("--crash-memcheck-enabled", "no")


def _crash_with(server, *command) -> None:
    """Send a command the server dies of (over a plain socket: redis-py would retry it
    against the dead server for seconds) and wait for the connection to close."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(b" ".join(command) + b"\r\n")
        while sock.recv(4096):
            pass


def _exit_and_log(server) -> tuple[int, str]:
    """The server's exit status once it is gone, and its log."""
    return _wait_for_exit(server), server.log_path.read_text(errors="replace")


def _wait_for_exit(server) -> int:
    deadline = time.time() + 15
    while server.proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    return server.proc.poll()


@pytest.mark.parametrize("kind", KINDS)
def test_sigabrt_writes_a_crash_report_and_dies_by_it(servers, kind):
    server = servers(kind, *NO_MEMTEST)
    server.client().ping()
    server.proc.send_signal(signal.SIGABRT)
    status, log = _exit_and_log(server)
    assert status == -signal.SIGABRT
    assert "=== REDIS BUG REPORT START: Cut & paste starting from here ===" in log
    assert "crashed by signal: 6" in log
    assert "------ INFO OUTPUT ------" in log
    assert "------ CLIENT LIST OUTPUT ------" in log
    assert "=== REDIS BUG REPORT END. Make sure to include from START to END. ===" in log


@pytest.mark.parametrize("kind", KINDS)
def test_debug_segfault_writes_a_crash_report(servers, kind):
    server = servers(kind, *NO_MEMTEST)
    _crash_with(server, b"DEBUG", b"SEGFAULT")
    status, log = _exit_and_log(server)
    assert status == -signal.SIGSEGV
    assert "crashed by signal: 11" in log
    assert "------ CURRENT CLIENT INFO ------" in log
    assert "argv[1]: '\"SEGFAULT\"'" in log


@pytest.mark.parametrize("kind", KINDS)
def test_debug_assert_logs_the_failed_assertion_then_aborts(servers, kind):
    server = servers(kind, *NO_MEMTEST)
    _crash_with(server, b"DEBUG", b"ASSERT")
    status, log = _exit_and_log(server)
    assert status == -signal.SIGABRT
    assert "=== ASSERTION FAILED ===" in log
    assert "'1 == 2' is not true" in log
    assert "crashed by signal" not in log  # abort() after the handlers are removed


@pytest.mark.parametrize("kind", KINDS)
def test_debug_panic_with_use_exit_on_panic_exits_1(servers, kind):
    server = servers(kind, "--use-exit-on-panic", "yes", *NO_MEMTEST)
    _crash_with(server, b"DEBUG", b"PANIC")
    status, log = _exit_and_log(server)
    assert status == 1
    assert "Guru Meditation: DEBUG PANIC called at Unix time" in log


@pytest.mark.parametrize("kind", ["vermilion"])
def test_crash_log_disabled_dies_without_a_report(servers, kind):
    server = servers(kind, "--crash-log-enabled", "no", *NO_MEMTEST)
    server.client().ping()
    server.proc.send_signal(signal.SIGABRT)
    assert _wait_for_exit(server) == -signal.SIGABRT
    assert "crashed by signal" not in server.log_path.read_text(errors="replace")


@pytest.mark.parametrize("kind", KINDS)
def test_bgsave_child_reports_its_progress(servers, kind):
    # childinfo.c: while the BGSAVE child works INFO shows the keys it wrote, the share
    # of the total and its copy-on-write size; at the end they read zero again.
    server = servers(kind)
    c = server.client()
    c.execute_command("DEBUG", "POPULATE", 5000)
    c.config_set("rdb-key-save-delay", 300)
    c.bgsave()
    seen = {}
    for _ in range(400):  # bounded: the save takes about two seconds
        persistence = c.info("persistence")
        if not persistence["rdb_bgsave_in_progress"]:
            break
        if persistence["current_save_keys_processed"]:
            seen = persistence
        time.sleep(0.02)
    assert seen, "no progress was reported while the child worked"
    assert seen["current_save_keys_total"] == 5000
    assert 0 < seen["current_save_keys_processed"] <= 5000
    assert float(seen["current_fork_perc"]) > 0
    assert seen["current_cow_size"] >= 0
    wait_until(lambda: not c.info("persistence")["rdb_bgsave_in_progress"],
               what="the save to end")
    done = c.info("persistence")
    assert done["rdb_last_bgsave_status"] == "ok"
    assert done["current_save_keys_processed"] == done["current_save_keys_total"] == 0
    assert done["current_fork_perc"] == 0


@pytest.mark.parametrize("kind", ["vermilion"])
def test_debug_segfault_without_crash_log_dies_silently(servers, kind):
    server = servers(kind, *NO_MEMTEST)
    c = server.client()
    c.config_set("crash-log-enabled", "no")
    _crash_with(server, b"DEBUG", b"SEGFAULT")
    assert _wait_for_exit(server) == -signal.SIGSEGV
    assert "crashed by signal" not in server.log_path.read_text(errors="replace")


def test_a_fault_signal_leaves_a_python_stack_trace_and_kills(servers):
    # SIGSEGV cannot be reported from Python code (a handler that returns would re-run
    # the faulting instruction forever): faulthandler writes the stack trace, then the
    # default action ends the process, as Redis's handler ends with the same signal.
    server = servers("vermilion", *NO_MEMTEST)
    server.client().ping()
    server.proc.send_signal(signal.SIGSEGV)
    assert _wait_for_exit(server) == -signal.SIGSEGV
    assert "Segmentation fault" in server.log_path.read_text(errors="replace")
