"""Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX,
BZMPOP) and CLIENT UNBLOCK, with several real connections.

Most tests are scenarios played byte for byte against vermilion and the real
redis-server 7.0: a blocked connection sends its command and reads nothing until
another connection's write serves it. Every wait is bounded (socket timeouts, polls
of INFO's blocked_clients with a deadline).
"""

import socket
import time

import pytest

from conftest import RawConnection, start_vermilion


class Scene:
    """Connections to one server, and a control connection to watch blocked_clients."""

    def __init__(self, port):
        self.port = port
        self.conns = []
        self.control = self.conn()
        self.control.command("FLUSHALL")

    def conn(self, resp=2):
        c = RawConnection(self.port)
        self.conns.append(c)
        if resp == 3:
            c.command("HELLO", "3")
        return c

    def blocked(self) -> int:
        info = self.control.command("INFO", "clients")
        for line in info.split(b"\r\n"):
            if line.startswith(b"blocked_clients:"):
                return int(line.split(b":")[1])
        raise AssertionError("no blocked_clients in INFO")

    def wait_blocked(self, n: int) -> None:
        deadline = time.monotonic() + 3
        while self.blocked() != n:
            assert time.monotonic() < deadline, f"blocked_clients never reached {n}"
            time.sleep(0.005)

    def close(self):
        for c in self.conns:
            c.close()


def send(conn, *args) -> None:
    """Send one command without reading its reply (it is about to block)."""
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    conn.send(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))


def nothing_pending(conn, wait=0.1) -> bool:
    """True when the server sent nothing more on conn within wait seconds."""
    if conn.buf:
        return False
    conn.sock.settimeout(wait)
    try:
        data = conn.sock.recv(65536)
    except socket.timeout:
        return True
    finally:
        conn.sock.settimeout(5)
    conn.buf += data
    return False


@pytest.fixture
def play(diff):
    """play(scenario): the scenario (a function of a Scene returning a transcript) on a
    Scene of each server; the transcripts must be identical (diff.equal)."""
    scenes = []

    def on(server):
        scenes.append(Scene(server.port))
        return scenes[-1]

    yield lambda scenario: diff.equal(lambda server: scenario(on(server)))
    for scene in scenes:
        scene.close()


# -- served by a later write ------------------------------------------------------------


def test_blpop_served_by_later_push(play):
    def scenario(s):
        c1, c2 = s.conn(), s.conn()
        send(c1, "BLPOP", "k", "0")
        s.wait_blocked(1)
        assert nothing_pending(c1)
        pushed = c2.command("RPUSH", "k", "a", "b")
        return [pushed, c1.read_reply(), c2.command("LRANGE", "k", "0", "-1"), s.blocked()]

    out = play(scenario)
    assert out[1] == b"*2\r\n$1\r\nk\r\n$1\r\na\r\n"
    assert out[3] == 0


def test_brpop_resp3_and_served_from_the_ready_key(play):
    def scenario(s):
        c1, c2 = s.conn(resp=3), s.conn()
        send(c1, "BRPOP", "k1", "k2", "0")
        s.wait_blocked(1)
        c2.command("RPUSH", "k2", "x", "y")
        return [c1.read_reply(), c2.command("LRANGE", "k2", "0", "-1")]

    assert play(scenario)[0] == b"*2\r\n$2\r\nk2\r\n$1\r\ny\r\n"


def test_clients_served_in_the_order_they_blocked(play):
    def scenario(s):
        c1, c2, c3, w = s.conn(), s.conn(), s.conn(), s.conn()
        for n, c in enumerate((c1, c2, c3), 1):
            send(c, "BLPOP", "k", "0")
            s.wait_blocked(n)
        w.command("RPUSH", "k", "x", "y")
        out = [c1.read_reply(), c2.read_reply(), nothing_pending(c3), s.blocked()]
        w.command("RPUSH", "k", "z")
        out += [c3.read_reply(), w.command("EXISTS", "k")]
        return out

    out = play(scenario)
    assert out[2] is True and out[3] == 1


def test_pipelined_reads_after_the_serving_push_see_the_pop(play):
    # handleClientsBlockedOnKeys() runs after each command, not after the batch.
    def scenario(s):
        c1, c2 = s.conn(), s.conn()
        send(c1, "BLPOP", "k", "0")
        s.wait_blocked(1)
        c2.send(b"*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$1\r\na\r\n*2\r\n$4\r\nLLEN\r\n$1\r\nk\r\n")
        return [c2.read_reply(), c2.read_reply(), c1.read_reply()]

    assert play(scenario)[1] == b":0\r\n"


def test_first_non_empty_key_in_argument_order(play):
    def scenario(s):
        c = s.conn()
        c.command("RPUSH", "k2", "a")
        c.command("RPUSH", "k3", "b")
        return [c.command("BLPOP", "k1", "k2", "k3", "0"),
                c.command("BRPOP", "k1", "k2", "k3", "0"),
                c.command("BLPOP", "k", "k", "0.01")]

    out = play(scenario)
    assert out[0] == b"*2\r\n$2\r\nk2\r\n$1\r\na\r\n"


def test_same_key_twice_blocks_once(play):
    def scenario(s):
        c1, c2 = s.conn(), s.conn()
        send(c1, "BLPOP", "k", "k", "0")
        s.wait_blocked(1)
        c2.command("LPUSH", "k", "a")
        return [c1.read_reply(), c2.command("EXISTS", "k")]

    play(scenario)


# -- timeouts ---------------------------------------------------------------------------


@pytest.mark.parametrize("resp", [2, 3])
def test_timeouts_reply_null_array(play, resp):
    def scenario(s):
        c = s.conn(resp=resp)
        out = []
        for args in (("BLPOP", "k", "0.1"), ("BRPOP", "k", "0.05"),
                     ("BLMOVE", "k", "d", "LEFT", "RIGHT", "0.05"),
                     ("BRPOPLPUSH", "k", "d", "0.05"), ("BLMPOP", "0.05", "1", "k", "LEFT"),
                     ("BZPOPMIN", "k", "0.05"), ("BZPOPMAX", "k", "0.05"),
                     ("BZMPOP", "0.05", "1", "k", "MIN")):
            start = time.monotonic()
            out.append(c.command(*args))
            elapsed = time.monotonic() - start
            assert 0.03 < elapsed < 2, (args, elapsed)
        out.append(s.blocked())
        return out

    out = play(scenario)
    assert out[0] == (b"*-1\r\n" if resp == 2 else b"_\r\n")


def test_fractional_timeouts_round_up_to_a_millisecond(play):
    # 7.0 rounds seconds*1000 up: 0.0001 s waits 1 ms; hex floats are seconds too.
    def scenario(s):
        c = s.conn()
        start = time.monotonic()
        out = [c.command("BLPOP", "k", "0.0001"), c.command("BZPOPMIN", "k", "0x0.01p0")]
        assert time.monotonic() - start < 1
        return out

    play(scenario)


def test_tiny_negative_and_huge_timeouts_wait_forever(play):
    # -0.0001 s rounds up to 0 ms (forever); 9223372036854775 s still fits in ms.
    def scenario(s):
        c1, w = s.conn(), s.conn()
        cid = c1.command("CLIENT", "ID")[1:-2]
        out = []
        for t in ("-0.0001", "9223372036854775"):
            send(c1, "BLPOP", "k", t)
            s.wait_blocked(1)
            out += [nothing_pending(c1, 0.05), w.command("CLIENT", "UNBLOCK", cid),
                    c1.read_reply()]
        return out

    assert play(scenario) == [True, b":1\r\n", b"*-1\r\n"] * 2


def test_timeout_argument_errors(play):
    def scenario(s):
        c = s.conn()
        out = []
        for t in ("abc", "inf", "-inf", "nan", "-1", "1e20", " 1", "", "9223372036854775807",
                  "9223372036854776", "0x7FFFFFFFFFFFFF", "1e16", "0x", "1e", "--1"):
            out += [c.command("BLPOP", "k", t), c.command("BZPOPMAX", "k", t),
                    c.command("BLMOVE", "k", "d", "LEFT", "LEFT", t),
                    c.command("BLMPOP", t, "1", "k", "LEFT"), c.command("BZMPOP", t, "1", "k", "MAX")]
        return out

    out = play(scenario)
    assert b"-ERR timeout is not a float or out of range\r\n" in out
    assert b"-ERR timeout is negative\r\n" in out


def test_argument_errors_vs_redis(play):
    def scenario(s):
        c = s.conn()
        c.command("SET", "s", "x")
        c.command("RPUSH", "l", "a", "b", "c", "d")  # never emptied: nothing blocks
        cases = [
            ("BLPOP", "s", "0"), ("BLPOP", "nokey", "s", "l", "0"), ("BLPOP", "l", "s", "0"),
            ("BLPOP",), ("BLPOP", "k"), ("BLMPOP", "abc", "0", "l", "LEFT"),
            ("BLMPOP", "0", "0", "l", "LEFT"), ("BLMPOP", "0", "1", "l"),
            ("BLMPOP", "0", "1", "l", "MIDDLE"), ("BLMPOP", "0", "1", "l", "LEFT", "COUNT", "0"),
            ("BLMPOP", "0", "1", "l", "LEFT", "COUNT", "1", "COUNT", "2"),
            ("BLMPOP", "0", "2", "l", "LEFT"), ("BLMPOP", "0", "99999999999999999999", "l", "LEFT"),
            ("BLMPOP", "0", "1", "l", "LEFT", "COUNT"),
            ("BZMPOP", "0", "1", "l", "MIN"), ("BZMPOP", "abc", "1", "z", "MID"),
            ("BZMPOP", "0", "0", "z", "MIN"), ("BZMPOP", "0", "1", "z", "MIN", "COUNT", "-1"),
            ("BZPOPMIN", "l", "0"), ("BZPOPMAX", "s", "0"),
            ("BLMOVE", "l", "d", "UP", "LEFT", "abc"), ("BLMOVE", "l", "s", "LEFT", "LEFT", "0"),
            ("BLMOVE", "s", "d", "LEFT", "LEFT", "0"), ("BRPOPLPUSH", "l", "s", "0"),
            ("CLIENT", "UNBLOCK", "abc"), ("CLIENT", "UNBLOCK", "1", "foo"),
            ("CLIENT", "UNBLOCK", "abc", "foo"), ("CLIENT", "UNBLOCK", "999999", "TIMEOUT"),
            ("CLIENT", "UNBLOCK", "1", "TIMEOUT", "extra"), ("CLIENT", "UNBLOCK"),
        ]
        return [c.command(*args) for args in cases] + [c.command("LRANGE", "l", "0", "-1")]

    play(scenario)


def test_immediate_serves_like_the_non_blocking_forms(play):
    def scenario(s):
        out = []
        for resp in (2, 3):
            c = s.conn(resp=resp)
            c.command("FLUSHALL")
            c.command("RPUSH", "l", "a", "b", "c", "d")
            c.command("ZADD", "z", "1", "a", "2.5", "b", "3", "c")
            out += [c.command("BLMPOP", "0", "2", "x", "l", "RIGHT", "COUNT", "2"),
                    c.command("BLMOVE", "l", "l2", "LEFT", "RIGHT", "0"),
                    c.command("BRPOPLPUSH", "l", "l2", "0"),
                    c.command("LRANGE", "l2", "0", "-1"), c.command("EXISTS", "l"),
                    c.command("BZPOPMIN", "nz", "z", "0"), c.command("BZPOPMAX", "z", "0"),
                    c.command("BZMPOP", "0", "1", "z", "MAX", "COUNT", "9"),
                    c.command("EXISTS", "z")]
        return out

    play(scenario)


# -- the other blocking commands, served later ----------------------------------------------


def test_blmove_and_brpoplpush_served_later(play):
    def scenario(s):
        c1, c2, w = s.conn(), s.conn(), s.conn()
        send(c1, "BLMOVE", "src", "dst", "RIGHT", "LEFT", "0")
        s.wait_blocked(1)
        # A BLPOP on the destination is served by the move (BLMOVE pushes onto it).
        send(c2, "BLPOP", "dst", "0")
        s.wait_blocked(2)
        w.command("RPUSH", "src", "a", "b")
        out = [c1.read_reply(), c2.read_reply(), w.command("LRANGE", "src", "0", "-1"),
               w.command("EXISTS", "dst")]
        send(c1, "BRPOPLPUSH", "src2", "dst2", "0")
        s.wait_blocked(1)
        w.command("LPUSH", "src2", "x")
        out += [c1.read_reply(), w.command("LRANGE", "dst2", "0", "-1"), s.blocked()]
        return out

    out = play(scenario)
    assert out[0] == b"$1\r\nb\r\n"


def test_blmove_onto_a_wrong_type_destination(play):
    def scenario(s):
        c1, w = s.conn(), s.conn()
        send(c1, "BLMOVE", "src", "dst", "LEFT", "LEFT", "0")
        s.wait_blocked(1)
        w.command("SET", "dst", "string")
        w.command("RPUSH", "src", "a")
        return [c1.read_reply(), w.command("LRANGE", "src", "0", "-1"), s.blocked()]

    assert play(scenario)[0].startswith(b"-WRONGTYPE")


@pytest.mark.parametrize("resp", [2, 3])
def test_zset_and_mpop_blocking_served_later(play, resp):
    def scenario(s):
        a, b, c, d, w = (s.conn(resp=resp) for _ in range(5))
        send(a, "BZPOPMIN", "z1", "0")
        s.wait_blocked(1)
        send(b, "BZPOPMAX", "z1", "0")
        s.wait_blocked(2)
        send(c, "BZMPOP", "0", "2", "z0", "z1", "MAX", "COUNT", "2")
        s.wait_blocked(3)
        send(d, "BLMPOP", "0", "2", "l0", "l1", "RIGHT", "COUNT", "5")
        s.wait_blocked(4)
        w.command("ZADD", "z1", "1", "a", "2", "b", "3.5", "c", "4", "d", "5", "e")
        w.command("RPUSH", "l1", "x", "y", "z")
        return [a.read_reply(), b.read_reply(), c.read_reply(), d.read_reply(),
                w.command("ZRANGE", "z1", "0", "-1", "WITHSCORES"), w.command("EXISTS", "l1"),
                s.blocked()]

    play(scenario)


def test_blocked_on_a_key_of_another_type_keeps_waiting(play):
    def scenario(s):
        c1, w = s.conn(), s.conn()
        send(c1, "BLPOP", "k", "0.3")
        s.wait_blocked(1)
        w.command("ZADD", "k", "1", "a")
        out = [nothing_pending(c1, 0.05), s.blocked()]
        out.append(c1.read_reply())
        return out

    assert play(scenario)[-1] == b"*-1\r\n"


# -- wake-ups from MULTI/EXEC and other commands ---------------------------------------------


def test_pushes_inside_multi_exec_serve_after_exec(play):
    def scenario(s):
        c1, w = s.conn(), s.conn()
        send(c1, "BLPOP", "k", "0")
        s.wait_blocked(1)
        out = [w.command("MULTI"), w.command("LPUSH", "k", "a"), w.command("LPUSH", "k", "b"),
               w.command("LPUSH", "k", "c"), w.command("EXEC")]
        out += [c1.read_reply(), w.command("LRANGE", "k", "0", "-1")]
        return out

    out = play(scenario)
    assert out[5] == b"*2\r\n$1\r\nk\r\n$1\r\nc\r\n"


def test_rename_move_and_copy_onto_the_key_wake(play):
    def scenario(s):
        c1, c2, c3, w = s.conn(), s.conn(), s.conn(), s.conn()
        for n, (c, key) in enumerate(((c1, "k1"), (c2, "k2"), (c3, "k3")), 1):
            send(c, "BLPOP", key, "0")
            s.wait_blocked(n)
        w.command("RPUSH", "tmp", "a")
        w.command("RENAME", "tmp", "k1")
        w.command("SELECT", "1")
        w.command("RPUSH", "k2", "b")
        w.command("MOVE", "k2", "0")
        w.command("SELECT", "0")
        w.command("RPUSH", "src", "c")
        w.command("COPY", "src", "k3")
        return [c1.read_reply(), c2.read_reply(), c3.read_reply(), s.blocked()]

    play(scenario)


def test_sort_store_and_restore_onto_the_key_wake(play):
    def scenario(s):
        c1, c2, w = s.conn(), s.conn(), s.conn()
        send(c1, "BRPOP", "k1", "0")
        s.wait_blocked(1)
        send(c2, "BZPOPMIN", "k2", "0")
        s.wait_blocked(2)
        w.command("RPUSH", "src", "3", "1", "2")
        w.command("SORT", "src", "STORE", "k1")
        w.command("ZADD", "z", "1", "m")
        dump = w.command("DUMP", "z")
        w.command("RESTORE", "k2", "0", dump.split(b"\r\n", 1)[1][:-2])
        return [c1.read_reply(), c2.read_reply(), w.command("LRANGE", "k1", "0", "-1"),
                s.blocked()]

    play(scenario)


def test_chained_circular_and_failing_moves(play):
    # list.tcl: "Linked LMOVEs", "Circular BRPOPLPUSH", "BRPOPLPUSH with multiple
    # blocked clients" (the first fails on a wrong-type target, the second is served).
    def scenario(s):
        a, b, w = s.conn(), s.conn(), s.conn()
        send(a, "BLMOVE", "l1", "l2", "LEFT", "RIGHT", "0")
        s.wait_blocked(1)
        send(b, "BLMOVE", "l2", "l3", "LEFT", "RIGHT", "0")
        s.wait_blocked(2)
        w.command("RPUSH", "l1", "foo")
        out = [a.read_reply(), b.read_reply(), w.command("LRANGE", "l3", "0", "-1")]
        send(a, "BRPOPLPUSH", "c1", "c2", "0")
        s.wait_blocked(1)
        send(b, "BRPOPLPUSH", "c2", "c1", "0")
        s.wait_blocked(2)
        w.command("RPUSH", "c1", "foo")
        out += [a.read_reply(), b.read_reply(), w.command("LRANGE", "c1", "0", "-1"),
                w.command("EXISTS", "c2")]
        w.command("SET", "t1", "nolist")
        send(a, "BRPOPLPUSH", "bl", "t1", "0")
        s.wait_blocked(1)
        send(b, "BRPOPLPUSH", "bl", "t2", "0")
        s.wait_blocked(2)
        w.command("LPUSH", "bl", "foo")
        out += [a.read_reply(), b.read_reply(), w.command("LRANGE", "t2", "0", "-1"),
                w.command("EXISTS", "bl")]
        return out

    play(scenario)


def test_served_move_touches_watched_destination(play):
    def scenario(s):
        blocked, watcher, w = s.conn(), s.conn(), s.conn()
        w.command("SET", "somekey", "somevalue")
        send(blocked, "BRPOPLPUSH", "srclist", "dstlist", "0")
        s.wait_blocked(1)
        out = [watcher.command("WATCH", "dstlist"), watcher.command("MULTI"),
               watcher.command("GET", "somekey"), w.command("LPUSH", "srclist", "element"),
               blocked.read_reply(), watcher.command("EXEC")]
        return out

    assert play(scenario)[-1] == b"*-1\r\n"


def test_blocking_commands_inside_multi_do_not_block(play):
    def scenario(s):
        out = []
        for resp in (2, 3):
            c = s.conn(resp=resp)
            out += [c.command("MULTI"), c.command("BLPOP", "nk", "0"),
                    c.command("BLMOVE", "nk", "d", "LEFT", "LEFT", "0"),
                    c.command("BRPOPLPUSH", "nk", "d", "0"), c.command("BZPOPMIN", "nk", "0"),
                    c.command("BZMPOP", "0", "1", "nk", "MIN"),
                    c.command("BLMPOP", "0", "1", "nk", "LEFT"), c.command("EXEC")]
        return out

    out = play(scenario)
    assert out[7] == b"*6\r\n*-1\r\n$-1\r\n$-1\r\n*-1\r\n*-1\r\n*-1\r\n"


# -- CLIENT UNBLOCK, disconnects, pipelines -----------------------------------------------


def unblocked_errors(conn) -> int:
    for line in conn.command("INFO", "errorstats").split(b"\r\n"):
        if line.startswith(b"errorstat_UNBLOCKED:count="):
            return int(line.split(b"=")[1].split(b",")[0])
    return 0


@pytest.mark.parametrize("reason", [None, "TIMEOUT", "ERROR"])
def test_client_unblock(play, reason):
    def scenario(s):
        c1, w = s.conn(), s.conn()
        cid = int(c1.command("CLIENT", "ID")[1:-2])
        before = unblocked_errors(w)
        send(c1, "BZPOPMIN", "k", "0")
        s.wait_blocked(1)
        args = ("CLIENT", "UNBLOCK", cid) + ((reason,) if reason else ())
        out = [w.command(*args), c1.read_reply(), s.blocked(), w.command(*args),
               c1.command("PING")]
        out.append(unblocked_errors(w) - before)  # errorstats count the -UNBLOCKED
        return out

    out = play(scenario)
    assert out[0] == b":1\r\n" and out[3] == b":0\r\n"
    if reason == "ERROR":
        assert out[1] == b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    else:
        assert out[1] == b"*-1\r\n"


def test_disconnect_while_blocked_cleans_up(play):
    def scenario(s):
        c1, c2, w = s.conn(), s.conn(), s.conn()
        send(c1, "BLPOP", "k", "0")
        s.wait_blocked(1)
        send(c2, "BLMOVE", "k", "d", "LEFT", "LEFT", "0")
        s.wait_blocked(2)
        c1.close()
        c2.close()
        s.wait_blocked(0)
        w.command("RPUSH", "k", "a", "b")
        return [w.command("LRANGE", "k", "0", "-1"), w.command("EXISTS", "d")]

    assert play(scenario)[0] == b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"


def test_pipelined_commands_wait_for_the_blocked_one(play):
    def scenario(s):
        c1, w = s.conn(), s.conn()
        c1.send(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nk\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n"
                b"*2\r\n$4\r\nLLEN\r\n$1\r\nk\r\n")
        s.wait_blocked(1)
        out = [nothing_pending(c1)]
        send(c1, "ECHO", "later")  # arrives while blocked: waits in the query buffer
        out.append(nothing_pending(c1))
        w.command("RPUSH", "k", "a", "b")
        out += [c1.read_reply(), c1.read_reply(), c1.read_reply(), c1.read_reply()]
        return out

    out = play(scenario)
    assert out[:2] == [True, True]
    assert out[3:] == [b"+PONG\r\n", b":1\r\n", b"$5\r\nlater\r\n"]


def test_blocked_flag_and_info(vermilion_server):
    s = Scene(vermilion_server.port)
    try:
        c1 = s.conn()
        send(c1, "BLPOP", "k", "5")
        s.wait_blocked(1)
        listing = s.control.command("CLIENT", "LIST")
        line = [ln for ln in listing.split(b"\n") if b"cmd=blpop" in ln]
        assert line and b"flags=b " in line[0]
        info = s.control.command("INFO", "clients")
        assert b"clients_in_timeout_table:1" in info
        s.control.command("RPUSH", "k", "v")
        assert c1.read_reply() == b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n"
        s.wait_blocked(0)
        assert b"clients_in_timeout_table:0" in s.control.command("INFO", "clients")
    finally:
        s.close()


def test_swapdb_serves_blocked_clients(play):
    def scenario(s):
        c1, w = s.conn(), s.conn()
        send(c1, "BLPOP", "k", "0")
        s.wait_blocked(1)
        w.command("SELECT", "1")
        w.command("RPUSH", "k", "a")
        w.command("SWAPDB", "0", "1")
        return [c1.read_reply(), s.blocked()]

    play(scenario)


def test_served_pops_are_propagated_to_the_aof(tmp_path):
    server = start_vermilion(tmp_path, ["--appendonly", "yes", "--appendfsync", "always"])
    try:
        s = Scene(server.port)
        c1, c2, w = s.conn(), s.conn(), s.conn()
        send(c1, "BLPOP", "k", "0")
        s.wait_blocked(1)
        send(c2, "BZMPOP", "0", "1", "z", "MAX", "COUNT", "5")
        s.wait_blocked(2)
        w.command("RPUSH", "k", "a", "b")
        w.command("ZADD", "z", "1", "m", "2", "n")
        c1.read_reply()
        c2.read_reply()
        w.command("RPUSH", "l", "x")
        w.command("BRPOP", "l", "0")
        s.close()
        aof = b"".join(p.read_bytes() for p in tmp_path.rglob("*.incr.aof"))
        assert b"BLPOP" not in aof.upper() and b"BZMPOP" not in aof.upper()
        assert b"*2\r\n$4\r\nLPOP\r\n$1\r\nk\r\n" in aof
        assert b"*3\r\n$7\r\nZPOPMAX\r\n$1\r\nz\r\n$1\r\n2\r\n" in aof
        assert b"*2\r\n$4\r\nRPOP\r\n$1\r\nl\r\n" in aof
        # Replaying the AOF gives the same data.
        server.stop()
        server.start()
        r = server.client()
        assert r.lrange("k", 0, -1) == [b"b"]
        assert r.exists("z", "l") == 0
        r.close()
    finally:
        server.stop()


def test_keyspace_events_of_immediate_and_served_pops(play):
    def scenario(s):
        listener, c1, w = s.conn(), s.conn(), s.conn()
        w.command("CONFIG", "SET", "notify-keyspace-events", "KEA")
        try:
            listener.command("PSUBSCRIBE", "__keyevent*__:*")
            listener.command("SUBSCRIBE", "__end__")
            w.command("RPUSH", "l", "a", "b")
            w.command("ZADD", "z", "1", "a", "2", "b")
            w.command("BLPOP", "l", "0")
            w.command("BZMPOP", "0", "1", "z", "MAX", "COUNT", "5")
            for blocking, push in (
                    (("BRPOP", "k", "0"), ("RPUSH", "k", "x")),
                    (("BLMOVE", "k", "d", "LEFT", "RIGHT", "0"), ("LPUSH", "k", "x")),
                    (("BLMPOP", "0", "1", "k", "LEFT", "COUNT", "3"), ("RPUSH", "k", "x")),
                    (("BZPOPMIN", "zk", "0"), ("ZADD", "zk", "1", "m", "2", "n")),
                    (("BZMPOP", "0", "1", "zk2", "MIN", "COUNT", "2"), ("ZADD", "zk2", "1", "m"))):
                send(c1, *blocking)
                s.wait_blocked(1)
                w.command(*push)
                c1.read_reply()
            w.command("PUBLISH", "__end__", "x")
            events = []
            while True:
                parts = listener.read_reply().split(b"\r\n")
                if parts[2] == b"message":
                    return events
                events.append((parts[6], parts[8]))
        finally:
            w.command("CONFIG", "SET", "notify-keyspace-events", "")

    play(scenario)


def test_scripts_wake_blocked_clients_only_after_they_end(play):
    def scenario(s):
        c1, w = s.conn(), s.conn()
        send(c1, "BLPOP", "k", "0")
        s.wait_blocked(1)
        # Pushed and popped back inside one script: nothing to serve after it.
        out = [w.command("EVAL", "redis.call('rpush', KEYS[1], 'a') "
                                 "return redis.call('lpop', KEYS[1])", "1", "k"),
               nothing_pending(c1, 0.05), s.blocked()]
        out += [w.command("EVAL", "return redis.call('rpush', KEYS[1], 'b', 'c')", "1", "k"),
                c1.read_reply(), w.command("LRANGE", "k", "0", "-1"),
                w.command("EVAL", "return redis.call('blpop', KEYS[1], 0)", "1", "k")]
        return out

    play(scenario)


def test_xread_block_is_served_by_a_later_xadd(vermilion_server):
    import threading

    reader = vermilion_server.client()
    writer = vermilion_server.client()
    reader.delete("events")
    result = {}

    def read():
        result["reply"] = reader.xread({"events": "$"}, block=5000)

    thread = threading.Thread(target=read)
    thread.start()
    time.sleep(0.2)
    writer.xadd("events", {"k": "v"}, id="5-1")
    thread.join(5)
    assert result["reply"] == [[b"events", [(b"5-1", {b"k": b"v"})]]]
    assert reader.xread({"events": "$"}, block=100) is None or reader.xread({"events": "$"}, block=100) == []


def test_xreadgroup_block_delivers_exactly_once(vermilion_server):
    import threading

    c = vermilion_server.client()
    c.delete("jobs")
    c.xgroup_create("jobs", "workers", id="$", mkstream=True)
    replies = []

    def consume(name):
        conn = vermilion_server.client()
        replies.append(conn.xreadgroup("workers", name, {"jobs": ">"}, count=1, block=1500))

    threads = [threading.Thread(target=consume, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    c.xadd("jobs", {"job": "1"}, id="1-1")
    for t in threads:
        t.join(5)
    delivered = [r for r in replies if r]
    assert len(delivered) == 1  # one consumer got it, the other timed out
    assert c.xpending("jobs", "workers")["pending"] == 1


def test_flushall_wakes_a_blocked_xreadgroup(vermilion_server, redis_server):
    """signalFlushedDb() → scanDatabaseForDeletedStreams(): the blocked group reader
    learns that its stream is gone, on both servers alike."""
    replies = []
    for server in (vermilion_server, redis_server):
        admin = RawConnection(server.port)
        admin.command("DEL", "flushstream")
        admin.command("XADD", "flushstream", "666", "f", "v")
        admin.command("XGROUP", "CREATE", "flushstream", "g", "$")
        reader = RawConnection(server.port)
        reader.send(b"*9\r\n$10\r\nXREADGROUP\r\n$5\r\nGROUP\r\n$1\r\ng\r\n$5\r\nAlice\r\n"
                    b"$5\r\nBLOCK\r\n$1\r\n0\r\n$7\r\nSTREAMS\r\n$11\r\nflushstream\r\n"
                    b"$1\r\n>\r\n")
        time.sleep(0.2)
        assert admin.command("FLUSHALL") == b"+OK\r\n"
        replies.append(reader.read_reply())
        reader.close()
        admin.close()
    assert replies[0] == replies[1] == b"-UNBLOCKED the stream key no longer exists\r\n"
