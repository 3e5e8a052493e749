"""ACL users against real redis-server 7.0: the same rules, replies and errors byte for
byte, the same refusals (-NOPERM) at top level, in MULTI/EXEC and in scripts, the
same ACL LOG, and the same users in config files, aclfiles and CONFIG REWRITE.

Each test gets its own pair of servers (users would leak between tests otherwise)."""

import re
import subprocess
import time

import pytest
import redis

from conftest import (RawConnection, Differential, ServerProcess, free_port, start_redis,
                      start_vermilion)


@pytest.fixture
def pair(tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "r").mkdir()
    mine, real = start_vermilion(tmp_path / "v"), start_redis(tmp_path / "r")
    yield mine, real
    mine.stop()
    real.stop()


@pytest.fixture
def acl_diff(pair):
    mine, real = pair
    return Differential(RawConnection(mine.port), RawConnection(real.port), mine, real)


def connect(server, *auth) -> RawConnection:
    conn = RawConnection(server.port)
    if auth:
        assert conn.command("AUTH", *auth) == b"+OK\r\n"
    return conn


def both(acl_diff, *auth):
    """A second connection to each server, authenticated as auth."""
    return Differential(connect(acl_diff.vermilion_server, *auth),
                        connect(acl_diff.redis_server, *auth))


def rule_words(reply: bytes) -> list:
    """Redis lists single-command rules in its command dict's order, which a random
    hash seed shuffles per process: the words of a reply, sorted (bulk lengths out)."""
    return sorted(w for w in re.split(rb"[\r\n ]+", reply) if not w.startswith(b"$"))


def test_user_rules_are_described_as_redis_describes_them(acl_diff):
    acl_diff.same(mask=rule_words, *(
        "ACL SETUSER alice on >p1 >p2 <p1 ~k* %R~r* %W~w* &news* +@read -get +config|get",
        "ACL GETUSER alice",
        "ACL SETUSER bob reset",
        "ACL GETUSER bob",
        "ACL SETUSER carol +@all -@dangerous allkeys allchannels nopass on",
        "ACL SETUSER carol -@dangerous",
        "ACL SETUSER dave on nopass (~s* +get) (%R~t* +@string)",
        "ACL GETUSER dave",
        "ACL SETUSER dave clearselectors",
        "ACL GETUSER dave",
        "ACL SETUSER erin +select|0 ~e* on",
        "ACL GETUSER erin",
        "ACL SETUSER frank #" + "a" * 64 + " !" + "a" * 64,
        "ACL GETUSER frank",
        "ACL USERS",
        "ACL DELUSER bob nobody frank",
        "ACL USERS",
        "ACL WHOAMI",
        "ACL GETUSER nobody",
        "ACL LIST"))


@pytest.mark.parametrize("rule", [
    "bogus", "#abc", "!" + "b" * 64, "<notset", "+nosuch", "-@nosuch", "+config|get|x",
    "+get|", "(+get", "(~x nosuch)", "~a b", "&a\x00",
])
def test_bad_rules_get_redis_errors_and_change_nothing(acl_diff, rule):
    acl_diff.same("ACL SETUSER alice on >pw ~k* +get",
                  ["ACL", "SETUSER", "alice", "off", rule],
                  "ACL GETUSER alice")


def test_pattern_after_star_is_refused(acl_diff):
    acl_diff.same("ACL SETUSER u allkeys ~foo", "ACL SETUSER u allchannels &foo",
                  "ACL SETUSER u resetkeys ~foo ~foo %R~foo", "ACL GETUSER u",
                  "ACL SETUSER 'a b' on", "ACL DELUSER default")


def test_refusals_name_the_command_key_and_channel(acl_diff):
    acl_diff.same("ACL SETUSER alice on >pw ~k* %R~ro* &ch* +get +set +publish +subscribe "
                  "+psubscribe +config|get +select|0")
    alice = both(acl_diff, "alice", "pw")
    alice.same(
        "SET k1 v", "GET k1", "SET other v", "GET ro1", "SET ro1 v", "INCR k1",
        "PUBLISH ch1 m", "PUBLISH other m", "CONFIG GET maxmemory", "CONFIG SET port 1",
        "SELECT 0", "SELECT 1", "ACL WHOAMI", "PING", "AUTH alice wrong",
    )
    alice.same("SUBSCRIBE other")
    alice.same("PSUBSCRIBE ch*")
    alice.same("PSUBSCRIBE c*")


def test_dryrun_and_cat(acl_diff):
    acl_diff.same("ACL SETUSER alice on ~k* +@string -append",
                  "ACL DRYRUN alice get k1", "ACL DRYRUN alice get x",
                  "ACL DRYRUN alice append k1 v", "ACL DRYRUN alice lpush k1 v",
                  "ACL DRYRUN nobody get k", "ACL DRYRUN alice nosuch",
                  "ACL DRYRUN alice get", "ACL CAT", "ACL CAT nosuch", "ACL CAT geo x",
                  "ACL GENPASS 0", "ACL GENPASS 5000", "ACL GENPASS x", "ACL HELP",
                  "ACL NOSUCH", "ACL LOAD", "ACL SAVE")
    for category in ("read", "write", "admin", "dangerous", "scripting", "connection"):
        mine, real = (set(acl_diff.mine.command("ACL", "CAT", category).split(b"\r\n")),
                      set(acl_diff.real.command("ACL", "CAT", category).split(b"\r\n")))
        assert mine == real, category
    assert len(acl_diff.mine.command("ACL", "GENPASS", "10")) == len(b"$3\r\nabc\r\n")


def test_multi_exec_and_scripts_are_checked(acl_diff):
    acl_diff.same("ACL SETUSER alice on >pw ~k* +multi +exec +get +set +eval +incr")
    alice = both(acl_diff, "alice", "pw")
    alice.same("MULTI", "SET k1 1", "LPUSH k2 x", "GET nope", "EXEC")
    alice.same("MULTI", "SET k1 1", "INCR k1")
    acl_diff.same("ACL SETUSER alice -incr")
    alice.same("EXEC")
    alice.same("EVAL \"return redis.call('get', KEYS[1])\" 1 k1",
               "EVAL \"return redis.call('get', 'x')\" 0",
               "EVAL \"return redis.pcall('lpush', 'k1', 'a')\" 0",
               "EVAL \"return redis.call('lpush', 'k1', 'a')\" 0")


def _log_fields(conn, count=10):
    """ACL LOG entries without the fields that differ by nature (age, client-info)."""
    client = redis.Redis(port=conn, decode_responses=True)
    out = []
    for entry in client.acl_log(count):
        out.append({k: entry[k] for k in ("count", "reason", "context", "object", "username")})
        assert "id" in entry["client-info"]  # redis-py parses the CLIENT LIST line
    return out


def test_acl_log_records_denials_as_redis_does(acl_diff):
    acl_diff.same("ACL SETUSER alice on >pw ~k* +get +multi +exec +eval",
                  "ACL LOG RESET")
    alice = both(acl_diff, "alice", "pw")
    alice.same("GET x", "GET x", "SET k v", "MULTI", "GET y", "DISCARD",
               "EVAL \"return redis.call('get', 'z')\" 0", "AUTH alice nope", "AUTH nobody x")
    mine, real = acl_diff.pair(lambda s: _log_fields(s.port))
    assert mine == real
    acl_diff.same("ACL LOG RESET", "ACL LOG", "ACL LOG x", "CONFIG SET acllog-max-len 1")
    alice.same("GET a", "GET b")
    mine, real = acl_diff.pair(lambda s: _log_fields(s.port))
    assert mine == real and len(mine) == 1


def test_auth_hello_and_the_default_user(acl_diff):
    acl_diff.same("AUTH x", "AUTH default x", "CONFIG SET requirepass secret",
                  "ACL GETUSER default")
    fresh = both(acl_diff)
    fresh.same("GET k", "AUTH wrong", "AUTH default wrong", "HELLO 2 AUTH default wrong",
               "ACL WHOAMI", "AUTH secret", "ACL WHOAMI")
    acl_diff.same("ACL SETUSER alice on >pw +@all ~*", "ACL SETUSER off1 off >pw +@all")
    other = both(acl_diff)
    other.same("AUTH off1 pw", "AUTH alice pw", "ACL WHOAMI", "RESET", "ACL WHOAMI", "GET k")
    acl_diff.same("CONFIG SET requirepass ''")
    other.same("GET k", "ACL WHOAMI")


def test_deleting_or_disabling_users_drops_their_clients(pair):
    mine, real = pair
    for server in pair:
        admin = server.client()
        admin.acl_setuser("alice", enabled=True, passwords=["+pw"], keys=["*"],
                          commands=["+@all"], channels=["*"])
        alice = server.client(username="alice", password="pw")
        assert alice.ping()
        sub = server.client(username="alice", password="pw").pubsub()
        sub.subscribe("news")
        sub.get_message(timeout=1)
        admin.acl_setuser("alice", channels=["other"], reset_channels=True)
        with pytest.raises(redis.ConnectionError):
            for _ in range(20):
                sub.get_message(timeout=0.1)
                time.sleep(0.05)
            sub.subscribe("x")
        assert admin.acl_deluser("alice") == 1
        with pytest.raises((redis.ConnectionError, redis.AuthenticationError)):
            alice.ping()


def test_redis_py_acl_api(pair):
    results = []
    for server in pair:
        client = server.client(decode_responses=True)
        assert client.acl_setuser("bob", enabled=True, passwords=["+secret"],
                                  keys=["cache:*"], commands=["+get", "+set"])
        user = client.acl_getuser("bob")
        # Single-command rules come in Redis's dict order (random per process): sorted.
        results.append((user["flags"], user["keys"], sorted(user["commands"]),
                        client.acl_users()))
        bob = server.client(username="bob", password="secret", decode_responses=True)
        assert bob.set("cache:a", "1") and bob.get("cache:a") == "1"
        with pytest.raises(redis.exceptions.NoPermissionError):
            bob.set("other", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            bob.acl_whoami()
    assert results[0] == results[1]


def test_sort_by_and_get_need_access_to_every_key(acl_diff):
    acl_diff.same("RPUSH k1 3 1 2", "ACL SETUSER alice on >pw ~k* +sort")
    alice = both(acl_diff, "alice", "pw")
    alice.same("SORT k1", "SORT k1 BY w_*", "SORT k1 BY nosort", "SORT k1 GET #",
               "SORT k1 GET w_*")


def _conf(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("binary", ["vermilion", "redis"])
def test_config_file_users_and_rewrite(tmp_path, binary):
    start = start_vermilion if binary == "vermilion" else start_redis
    server = start(tmp_path, config_text="user alice on >pw ~k* +get\nuser default on nopass ~* &* +@all\n")
    try:
        client = server.client(decode_responses=True)
        assert client.acl_list() == ["user alice on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~k* resetchannels -@all +get",
                                     "user default on nopass sanitize-payload ~* &* +@all"]
        client.acl_setuser("bob", enabled=True, passwords=["+x"], commands=["+ping"])
        client.config_rewrite()
        text = (tmp_path / f"server-{server.port}.conf").read_text()
        assert "user bob on #2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881 resetchannels -@all +ping" in text
        assert "user alice on" in text and "user default on nopass" in text
    finally:
        server.stop()


@pytest.mark.parametrize("text, error", [
    ("user x on bogus\n", "Error in user declaration 'x': Syntax error"),
    ("user x on\nuser x off\n", "Error in user declaration 'x': Duplicate user found"),
])
def test_bad_user_lines_stop_the_server_as_redis_does(tmp_path, text, error):
    outputs = []
    for binary in ("vermilion-server", "redis-server"):
        exe = str(__import__("conftest").VERMILION) if binary == "vermilion-server" else binary
        conf = _conf(tmp_path, "bad.conf", text)
        done = subprocess.run([exe, str(conf), "--port", "0"], capture_output=True, timeout=20)
        assert done.returncode == 1
        outputs.append(done.stdout + done.stderr)
    assert error.encode() in outputs[0] and error.encode() in outputs[1]


def test_aclfile_load_save_and_exclusive_with_user_lines(tmp_path):
    for name in ("vermilion", "redis"):
        workdir = tmp_path / name
        workdir.mkdir()
        aclfile = _conf(workdir, "users.acl", "user alice on >pw ~* +@all\nuser default on nopass ~* &* +@all\n")
        start = start_vermilion if name == "vermilion" else start_redis
        server = start(workdir, args=["--aclfile", str(aclfile)])
        try:
            client = server.client(decode_responses=True)
            assert client.acl_users() == ["alice", "default"]
            client.acl_setuser("bob", enabled=True, passwords=["+b"], commands=["+ping"])
            assert client.acl_save()
            saved = aclfile.read_text()
            assert "user bob on #" in saved and saved.startswith("user alice on #")
            aclfile.write_text("user carol on nopass +@all ~*\nuser default on nopass ~* &* +@all\n")
            alice = server.client(username="alice", password="pw")
            assert alice.ping()
            assert client.acl_load()
            assert client.acl_users() == ["carol", "default"]
            with pytest.raises(redis.ConnectionError):
                alice.ping()
            aclfile.write_text("user carol on bogus\nbad line\n")
            with pytest.raises(redis.ResponseError) as err:
                client.acl_load()
            assert "WARNING: ACL errors detected" in str(err.value)
            assert client.acl_users() == ["carol", "default"]
        finally:
            server.stop()
        both_conf = _conf(workdir, "both.conf", f"aclfile {aclfile}\nuser x on\n")
        exe = str(__import__("conftest").VERMILION) if name == "vermilion" else "redis-server"
        done = subprocess.run([exe, str(both_conf), "--port", str(free_port())],
                              capture_output=True, timeout=20)
        assert done.returncode == 1
        assert b"declare users directly in your redis.conf, but not both" in done.stdout + done.stderr


def test_module_and_lolwut_answer_as_redis(acl_diff):
    acl_diff.both_protocols("MODULE LIST", "MODULE LOAD /nonexistent.so", "MODULE UNLOAD x",
                            "MODULE HELP", "MODULE NOSUCH", "LOLWUT", "LOLWUT VERSION x")


def test_client_list_and_kill_by_user(acl_diff):
    acl_diff.same("ACL SETUSER alice on >pw +@all ~*", "CLIENT KILL USER nobody",
                  "CLIENT KILL USER alice")
    for server in (acl_diff.vermilion_server, acl_diff.redis_server):
        alice = server.client(username="alice", password="pw")
        alice.client_setname("a1")
        admin = server.client(decode_responses=True)
        users = {c["name"]: c["user"] for c in admin.client_list()}
        assert users["a1"] == "alice" and set(users.values()) == {"alice", "default"}
        assert admin.execute_command("CLIENT", "KILL", "USER", "alice") == 1
        assert "a1" not in {c["name"] for c in admin.client_list()}


def test_percent_rules_need_a_permission(acl_diff):
    acl_diff.same(*(["ACL", "SETUSER", "tt", rule] for rule in
                    ("%R", "%RW", "%~x", "%", "%R~", "%WR~k", "%RR~k", "%w~lower")),
                  "ACL GETUSER tt")


def test_aof_replay_and_the_master_link_are_not_acl_checked(tmp_path):
    """Redis's internal clients have no user: a default user restricted to app:* keys
    still gets every key back from the AOF, and a replica applies every write."""
    conf = ("user default on nopass ~app:* &* +@all\nuser admin on >pw ~* &* +@all\n"
            "appendonly yes\nappendfsync always\nrepl-diskless-sync-delay 0\n")
    server = start_vermilion(tmp_path, config_text=conf)
    try:
        admin = server.client(username="admin", password="pw")
        admin.set("app:1", "a")
        admin.set("other:1", "b")
        replica_dir = tmp_path / "replica"
        replica_dir.mkdir()
        replica = start_vermilion(replica_dir, config_text="user default on nopass ~app:* &* +@all\n"
                                  "user admin on >pw ~* &* +@all\n")
        try:
            radmin = replica.client(username="admin", password="pw")
            radmin.replicaof("127.0.0.1", server.port)
            admin.set("other:2", "c")
            deadline = time.time() + 10
            while time.time() < deadline and radmin.get("other:2") != b"c":
                time.sleep(0.05)
            assert radmin.get("other:1") == b"b" and radmin.get("other:2") == b"c"
            assert "user=(superuser)" in radmin.execute_command("CLIENT", "LIST").decode() \
                or b"flags=M" not in radmin.execute_command("CLIENT", "LIST")
        finally:
            replica.stop()
    finally:
        server.stop()
    server = ServerProcess(server.binary, cwd=tmp_path, config_text=conf)
    server.start()
    try:
        admin = server.client(username="admin", password="pw")
        assert sorted(admin.keys("*")) == [b"app:1", b"other:1", b"other:2"]
    finally:
        server.stop()


def test_exec_refused_aborts_the_transaction(acl_diff):
    acl_diff.same("ACL SETUSER m on >pw ~* +multi +get +set +discard")
    m = both(acl_diff, "m", "pw")
    m.same("MULTI", "GET k", "EXEC", "GET k", "DISCARD")


def test_keys_found_by_getkeys_functions_are_checked(acl_diff):
    acl_diff.same("ACL SETUSER g on >pw ~foo* +@all")
    g = both(acl_diff, "g", "pw")
    g.same("GEOADD foo 0 0 m", "GEORADIUS foo 0 0 1 km STORE bar",
           "GEORADIUS foo 0 0 1 km STORE foo2", "XREAD STREAMS foo bar 0 0",
           "ZUNIONSTORE foo3 2 foo bar", "ZUNIONSTORE foo3 1 foo",
           "EVAL \"return 1\" 1 bar", "SINTERCARD 2 foo bar", "LMPOP 2 foo bar LEFT")


def test_auth_inside_multi_rechecks_at_exec(acl_diff):
    acl_diff.same("ACL SETUSER low on >x ~* +auth +multi +exec +get",
                  "ACL SETUSER high on >y ~* +@all")
    conns = both(acl_diff, "high", "y")
    conns.same("MULTI", "SET k v", "AUTH low x", "INCR n", "EXEC")


def test_subscribed_resp2_client_gets_noperm_first(acl_diff):
    acl_diff.same("ACL SETUSER s on >pw &ch +subscribe +ping")
    s = both(acl_diff, "s", "pw")
    s.same("SUBSCRIBE ch")
    s.same("GET k", "PING")
