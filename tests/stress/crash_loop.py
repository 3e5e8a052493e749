"""Crash loop: kill -9 a server under mixed writes, restart it on the same directory,
and check exactly which acknowledged writes survived. `make crash-loop` runs it.

Each cycle: a few client threads write to the server (each in its own key namespace,
one command or MULTI/EXEC at a time: SET, SET EX, INCR/INCRBY, LPUSH/RPUSH/LPOP/RPOP/
LTRIM, HSET/HDEL/HINCRBY, SADD/SREM, ZADD/ZINCRBY/ZREM, DEL, EXPIRE, PERSIST, and INCR
of one counter they all share); after a random time the server's whole process group
gets SIGKILL — in some cycles just after a BGREWRITEAOF or a BGSAVE, so the kill lands
while the forked child writes. Then the server restarts from its appendonlydir and the
whole keyspace is read back.

How loss is measured exactly: every client keeps a model of its namespace (what the
server must hold if it applied the client's writes in order), and the values it writes
carry sequence numbers, so that almost every write changes the state. The AOF replays a
prefix of the command stream, so the recovered namespace must equal the model after
some prefix of the client's writes of the cycle: the longest such prefix tells how many
acknowledged writes were lost (those after it that got a reply), and the time from the
first lost reply to the kill is the loss window. A recovered state that equals no prefix
(a write half applied, a value never sent, a key nobody wrote) is a defect. The shared
counter must be at least the largest INCR reply anyone got, and at most the number of
INCRs sent.

Pass criteria: `appendfsync always` loses nothing; `appendfsync everysec` loses at most
one second of writes (with kill -9 both should lose nothing: the AOF is written before
a reply leaves, only a machine crash can lose what everysec has not fsynced yet).

    .venv/bin/python tests/stress/crash_loop.py           # Vermilion, 100 cycles per policy
    .venv/bin/python tests/stress/crash_loop.py --redis   # and the same against redis-server
    .venv/bin/python tests/stress/crash_loop.py --cycles 10 --fsync always --seed 42
"""

import argparse
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Conn, Server, ServerDied, server_binary  # noqa: E402

SHARED = b"shared:counter"
ANY = object()  # a reply the model does not predict (ZINCRBY's float formatting)

# Per-client key names: the kind of value is in the name, so no write gets WRONGTYPE.
STRINGS, COUNTERS, LISTS, HASHES, SETS, ZSETS = 4, 3, 3, 3, 3, 3
LIST_MAX = 40  # bounded collections: a bounded AOF rewrite and a bounded check
LONG_TTL = b"100000"  # seconds: keys never expire during a run, the TTL itself is checked


# -- the model --------------------------------------------------------------------


class Model:
    """The expected keyspace of one client's namespace: key -> [kind, value, has_ttl]
    with value bytes (string), list, dict (hash), set, or dict member -> float (zset).
    apply() plays one command on it and returns the reply the server must give."""

    __slots__ = ("keys",)

    def __init__(self, keys=None):
        self.keys = keys if keys is not None else {}

    def copy(self) -> "Model":
        return Model({k: [kind, value.copy() if hasattr(value, "copy") else value, ttl]
                      for k, (kind, value, ttl) in self.keys.items()})

    def __eq__(self, other):
        return self.keys == other.keys

    def _get(self, key, kind, empty):
        entry = self.keys.get(key)
        if entry is None:
            entry = self.keys[key] = [kind, empty(), False]
        return entry

    def _drop_if_empty(self, key):
        if not self.keys[key][1]:
            del self.keys[key]

    def apply(self, argv):
        name, key = argv[0], argv[1]
        keys = self.keys
        if key == SHARED:
            return ANY  # tracked by the shared-counter check, not the namespace
        if name == b"SET":
            keys[key] = [b"string", argv[2], len(argv) > 3]  # SET without EX drops the TTL
            return b"OK"
        if name in (b"INCR", b"INCRBY"):
            entry = keys.get(key)
            value = (int(entry[1]) if entry else 0) + (int(argv[2]) if name == b"INCRBY" else 1)
            keys[key] = [b"string", b"%d" % value, entry[2] if entry else False]
            return value
        if name in (b"LPUSH", b"RPUSH"):
            items = self._get(key, b"list", list)[1]
            for element in argv[2:]:
                if name == b"LPUSH":
                    items.insert(0, element)
                else:
                    items.append(element)
            return len(items)
        if name in (b"LPOP", b"RPOP"):
            if key not in keys:
                return None
            element = keys[key][1].pop(0 if name == b"LPOP" else -1)
            self._drop_if_empty(key)
            return element
        if name == b"LTRIM":
            if key in keys:
                items = keys[key][1]
                n = len(items)
                start, stop = int(argv[2]), int(argv[3])
                start, stop = start + n if start < 0 else start, stop + n if stop < 0 else stop
                start = max(start, 0)
                items[:] = items[start:stop + 1] if start <= stop else []
                self._drop_if_empty(key)
            return b"OK"
        if name == b"HSET":
            fields = self._get(key, b"hash", dict)[1]
            added = 0
            for f, v in zip(argv[2::2], argv[3::2]):
                added += f not in fields
                fields[f] = v
            return added
        if name == b"HDEL":
            if key not in keys:
                return 0
            fields = keys[key][1]
            removed = sum(fields.pop(f, None) is not None for f in argv[2:])
            self._drop_if_empty(key)
            return removed
        if name == b"HINCRBY":
            fields = self._get(key, b"hash", dict)[1]
            value = int(fields.get(argv[2], b"0")) + int(argv[3])
            fields[argv[2]] = b"%d" % value
            return value
        if name == b"SADD":
            members = self._get(key, b"set", set)[1]
            before = len(members)
            members.update(argv[2:])
            return len(members) - before
        if name == b"SREM":
            if key not in keys:
                return 0
            members = keys[key][1]
            before = len(members)
            members.difference_update(argv[2:])
            self._drop_if_empty(key)
            return before - len(members)
        if name == b"ZADD":
            scores = self._get(key, b"zset", dict)[1]
            added = 0
            for score, member in zip(argv[2::2], argv[3::2]):
                added += member not in scores
                scores[member] = float(score)
            return added
        if name == b"ZINCRBY":
            scores = self._get(key, b"zset", dict)[1]
            scores[argv[3]] = scores.get(argv[3], 0.0) + float(argv[2])
            return ANY
        if name == b"ZREM":
            if key not in keys:
                return 0
            scores = keys[key][1]
            removed = sum(scores.pop(m, None) is not None for m in argv[2:])
            self._drop_if_empty(key)
            return removed
        if name == b"DEL":
            return sum(keys.pop(k, None) is not None for k in argv[1:])
        if name == b"EXPIRE":
            if key not in keys:
                return 0
            keys[key][2] = True
            return 1
        if name == b"PERSIST":
            if key not in keys or not keys[key][2]:
                return 0
            keys[key][2] = False
            return 1
        raise ValueError(f"model has no {name!r}")


def generate(rng: random.Random, model: Model, wid: int, seq: int) -> list[list[bytes]]:
    """One write of client wid: its commands (several for a MULTI/EXEC)."""
    if rng.random() < 0.08:
        return [[b"MULTI"], *(_command(rng, model, wid, seq, i) for i in range(rng.randint(2, 4))),
                [b"EXEC"]]
    return [_command(rng, model, wid, seq, 0)]


def _command(rng, model, wid, seq, sub) -> list[bytes]:
    tag = b"%d.%d.%d" % (wid, seq, sub)  # unique: a value no other write sends
    prefix = b"c%d:" % wid

    def key(kind: bytes, count: int) -> bytes:
        return prefix + kind + b"%d" % rng.randrange(count)

    roll = rng.random()
    if roll < 0.03:
        return [b"INCR", SHARED]
    if roll < 0.15:
        k = key(b"s", STRINGS)
        return [b"SET", k, b"v" + tag] + ([b"EX", LONG_TTL] if rng.random() < 0.2 else [])
    if roll < 0.27:
        k = key(b"n", COUNTERS)
        return [b"INCR", k] if rng.random() < 0.6 else [b"INCRBY", k, b"%d" % rng.randint(-5, 50)]
    if roll < 0.45:
        k = key(b"l", LISTS)
        items = model.keys.get(k)
        if items and len(items[1]) > LIST_MAX:
            return [b"LTRIM", k, b"-%d" % (LIST_MAX // 2), b"-1"]
        choice = rng.random()
        if choice < 0.15:
            return [rng.choice([b"LPOP", b"RPOP"]), k]
        elements = [b"e" + tag + b".%d" % i for i in range(rng.randint(1, 3))]
        return [b"LPUSH" if choice < 0.55 else b"RPUSH", k, *elements]
    if roll < 0.6:
        k = key(b"h", HASHES)
        choice = rng.random()
        if choice < 0.15:
            return [b"HDEL", k, b"f%d" % rng.randrange(12)]
        if choice < 0.3:
            return [b"HINCRBY", k, b"count", b"%d" % rng.randint(1, 9)]
        return [b"HSET", k, b"f%d" % rng.randrange(12), b"h" + tag,
                *([b"f%d" % rng.randrange(12), b"i" + tag] if rng.random() < 0.3 else [])]
    if roll < 0.72:
        k = key(b"t", SETS)
        if rng.random() < 0.25:
            return [b"SREM", k, b"m%d" % rng.randrange(30)]
        return [b"SADD", k, *(b"m%d" % rng.randrange(30) for _ in range(rng.randint(1, 3)))]
    if roll < 0.84:
        k = key(b"z", ZSETS)
        choice = rng.random()
        if choice < 0.2:
            return [b"ZREM", k, b"m%d" % rng.randrange(20)]
        if choice < 0.45:
            return [b"ZINCRBY", k, b"%d" % rng.randint(-3, 9), b"m%d" % rng.randrange(20)]
        return [b"ZADD", k, b"%d" % (seq % 1000), b"m%d" % rng.randrange(20)]
    any_key = rng.choice([b"s", b"n", b"l", b"h", b"t", b"z"])
    k = prefix + any_key + b"0"
    if roll < 0.9:
        return [b"DEL", k]
    if roll < 0.97:
        return [b"EXPIRE", k, LONG_TTL]
    return [b"PERSIST", k]


# -- reading a namespace back ----------------------------------------------------------


def read_keyspace(conn: Conn) -> tuple[dict[bytes, list], int, list[bytes]]:
    """The whole keyspace as {client namespace prefix: Model}, the shared counter, and
    the keys no client owns."""
    keys = conn.call(b"KEYS", b"*")
    kinds = conn.pipeline([[b"TYPE", k] for k in keys])
    fetch = {b"string": b"GET", b"list": b"LRANGE", b"hash": b"HGETALL",
             b"set": b"SMEMBERS", b"zset": b"ZRANGE"}
    commands = []
    for k, kind in zip(keys, kinds):
        name = fetch.get(kind, b"TYPE")
        commands.append([name, k, b"0", b"-1", b"WITHSCORES"] if name == b"ZRANGE" else
                        [name, k, b"0", b"-1"] if name == b"LRANGE" else [name, k])
        commands.append([b"PTTL", k])
    replies = conn.pipeline(commands)
    spaces: dict[bytes, Model] = {}
    shared, strangers = 0, []
    for i, (k, kind) in enumerate(zip(keys, kinds)):
        value, pttl = replies[2 * i], replies[2 * i + 1]
        if k == SHARED:
            shared = int(value)
            continue
        match = re.match(rb"(c\d+:)", k)
        if not match or kind not in fetch:
            strangers.append(k)
            continue
        if kind == b"hash":
            value = dict(zip(value[::2], value[1::2]))
        elif kind == b"set":
            value = set(value)
        elif kind == b"zset":
            value = {m: float(s) for m, s in zip(value[::2], value[1::2])}
        spaces.setdefault(match.group(1), Model()).keys[k] = [kind, value, pttl != -1]
    return spaces, shared, strangers


def model_diff(expected: Model, got: Model, limit: int = 6) -> str:
    lines = []
    for k in sorted(set(expected.keys) | set(got.keys)):
        a, b = expected.keys.get(k), got.keys.get(k)
        if a != b:
            lines.append(f"  {k!r}: expected {a!r}, recovered {b!r}")
    more = f"\n  ... {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


# -- the writers ------------------------------------------------------------------------


def _body(commands: list[list[bytes]]) -> list[list[bytes]]:
    """The commands of a write without its MULTI and EXEC."""
    return commands[1:-1] if commands[0] == [b"MULTI"] else commands


class Writer:
    """One client: writes until the kill, one write at a time, and remembers each
    write of the cycle with the time its reply arrived (None: no reply)."""

    def __init__(self, wid: int, seed: str):
        self.wid = wid
        self.prefix = b"c%d:" % wid
        self.rng = random.Random(seed)
        self.model = Model()  # the live model: base + the acknowledged writes
        self.base = Model()  # the verified state at the start of the cycle
        self.seq = 0
        self.ops: list[tuple[list[list[bytes]], float | None]] = []
        self.shared_acks: list[tuple[int, float]] = []
        self.shared_sent = 0
        self.defects: list[str] = []

    def start_cycle(self, base: Model) -> None:
        self.base = base
        self.model = base.copy()
        self.ops = []
        self.shared_acks = []
        self.shared_sent = 0

    def run(self, port: int, stop: threading.Event) -> None:
        try:
            conn = Conn(port)
        except OSError as exc:
            self.defects.append(f"client {self.wid}: cannot connect: {exc}")
            return
        try:
            while not stop.is_set():
                self.seq += 1
                commands = generate(self.rng, self.model, self.wid, self.seq)
                self.ops.append((commands, None))
                body = _body(commands)
                self.shared_sent += sum(argv[1] == SHARED for argv in body)
                try:
                    replies = conn.pipeline(commands)
                except (OSError, ConnectionError):
                    return  # killed: this write is in flight, applied or not
                acked = time.monotonic()
                self.ops[-1] = (commands, acked)
                got = replies[-1] if len(body) < len(commands) else replies  # EXEC's array
                expected = [self.model.apply(argv) for argv in body]
                if not isinstance(got, list) or len(got) != len(expected) or any(
                        e is not ANY and e != g for e, g in zip(expected, got)):
                    self.defects.append(f"client {self.wid}: reply {got!r} to {body!r}, "
                                        f"expected {expected!r}")
                    continue
                self.shared_acks += [(reply, acked) for argv, reply in zip(body, got)
                                     if argv[1] == SHARED]
        finally:
            conn.close()

    def recover(self, recovered: Model, kill_time: float) -> tuple[int, int, float, str | None]:
        """Match the recovered namespace against the prefixes of this cycle's writes.
        Returns (acknowledged, lost, loss window in s, defect or None) and makes the
        matching state the base of the next cycle."""
        acked = sum(1 for _, t in self.ops if t is not None)
        state = self.base.copy()
        best = 0 if state == recovered else None
        for i, (commands, _) in enumerate(self.ops):
            for argv in _body(commands):
                state.apply(argv)
            if state == recovered:
                best = i + 1
        if best is None:
            expected = self.model
            defect = (f"client {self.wid}: recovered state matches no prefix of the "
                      f"{len(self.ops)} writes of the cycle ({acked} acknowledged):\n"
                      f"{model_diff(expected, recovered)}\n  last writes: "
                      f"{[c for c, _ in self.ops[-3:]]!r}")
            self.base = recovered.copy()
            return acked, 0, 0.0, defect
        state = self.base.copy()
        for commands, _ in self.ops[:best]:
            for argv in _body(commands):
                state.apply(argv)
        self.base = state
        lost = max(0, acked - best)
        window = max(0.0, kill_time - self.ops[best][1]) if lost else 0.0
        return acked, lost, window, None


# -- one run: a server, an fsync policy, N cycles ----------------------------------------


@dataclass
class Result:
    server: str
    fsync: str
    cycles: int = 0
    acked: int = 0
    lost: int = 0
    max_lost_per_kill: int = 0
    max_window: float = 0.0
    kills_in_rewrite: int = 0
    kills_in_bgsave: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    defects: list[str] = field(default_factory=list)
    workdir: str = ""

    @property
    def ok(self) -> bool:
        if self.defects:
            return False
        if self.fsync == "always":
            return self.lost == 0
        return self.max_window <= 1.0


def info_field(info: bytes, name: str) -> str:
    match = re.search(rb"^%s:(.*?)\r?$" % name.encode(), info, re.M)
    return match.group(1).decode() if match else ""


def run(server_name: str, fsync: str, cycles: int, clients: int = 4, seed: int = 0,
        write_time: tuple[float, float] = (0.15, 0.6), max_seconds: float = 600.0,
        keep: bool = False, log=print, after_kill=None) -> Result:
    """cycles kill -9 cycles of one server with one appendfsync policy. after_kill(workdir),
    if given, runs between each kill and the restart (the tests use it to damage the AOF
    and see the check catch it)."""
    result = Result(server_name, fsync)
    rng = random.Random(f"{seed}:{server_name}:{fsync}")
    workdir = Path(tempfile.mkdtemp(prefix=f"crash-loop-{server_name}-{fsync}-"))
    result.workdir = str(workdir)
    # A small auto-rewrite threshold: automatic rewrites happen every few cycles too.
    server = Server(server_binary(server_name), workdir,
                    ["--appendonly", "yes", "--appendfsync", fsync,
                     "--auto-aof-rewrite-min-size", "1mb"])
    writers = [Writer(w, f"{seed}:{server_name}:{fsync}:{w}") for w in range(clients)]
    shared = 0
    started = time.monotonic()
    try:
        server.start()
        for cycle in range(cycles):
            if time.monotonic() - started > max_seconds:
                result.stopped_early = True
                log(f"  time limit of {max_seconds:.0f} s reached after {cycle} cycles")
                break
            for writer in writers:
                writer.start_cycle(writer.base)
            stop = threading.Event()
            threads = [threading.Thread(target=w.run, args=(server.port, stop)) for w in writers]
            for thread in threads:
                thread.start()
            duration = rng.uniform(*write_time)
            background = (b"BGREWRITEAOF" if cycle % 4 == 1 else
                          b"BGSAVE" if cycle % 4 == 3 else None)
            control = Conn(server.port)
            if background:
                time.sleep(duration * rng.uniform(0.3, 0.9))
                control.call(background)  # OK, or an error while one is already running
                time.sleep(rng.uniform(0.0, 0.02))
            else:
                time.sleep(duration)
            info = control.call(b"INFO", b"persistence")
            kill_time = time.monotonic()
            server.kill9()
            control.close()
            stop.set()
            for thread in threads:
                thread.join(30)
            result.kills_in_rewrite += info_field(info, "aof_rewrite_in_progress") == "1"
            result.kills_in_bgsave += info_field(info, "rdb_bgsave_in_progress") == "1"
            if after_kill:
                after_kill(workdir)
            try:
                server.start()
            except ServerDied as exc:
                result.defects.append(f"cycle {cycle}: restart failed after kill -9: {exc}")
                break
            conn = Conn(server.port)
            spaces, recovered_shared, strangers = read_keyspace(conn)
            conn.close()
            cycle_lost, cycle_window = 0, 0.0
            if strangers:
                result.defects.append(f"cycle {cycle}: keys nobody wrote: {strangers[:5]!r}")
            for writer in writers:
                acked, lost, window, defect = writer.recover(
                    spaces.pop(writer.prefix, Model()), kill_time)
                result.acked += acked
                cycle_lost += lost
                cycle_window = max(cycle_window, window)
                if defect:
                    result.defects.append(f"cycle {cycle}: {defect}")
                result.defects += [f"cycle {cycle}: {d}" for d in writer.defects]
                writer.defects = []
            if spaces:
                result.defects.append(f"cycle {cycle}: namespaces nobody owns: {list(spaces)!r}")
            # The shared counter: at least the largest reply, at most what was sent.
            acks = sorted(a for w in writers for a in w.shared_acks)
            sent = sum(w.shared_sent for w in writers)
            result.acked += len(acks)
            if recovered_shared > shared + sent:
                result.defects.append(f"cycle {cycle}: shared counter {recovered_shared} > "
                                      f"{shared} + {sent} INCRs sent")
            lost_acks = [t for value, t in acks if value > recovered_shared]
            if lost_acks:
                cycle_lost += len(lost_acks)
                cycle_window = max(cycle_window, kill_time - min(lost_acks))
            shared = recovered_shared
            result.lost += cycle_lost
            result.max_lost_per_kill = max(result.max_lost_per_kill, cycle_lost)
            result.max_window = max(result.max_window, cycle_window)
            result.cycles += 1
            if cycle_lost or (cycle + 1) % 10 == 0 or cycle + 1 == cycles:
                log(f"  {server_name} {fsync} cycle {cycle + 1}/{cycles}: {result.acked} acked, "
                    f"{result.lost} lost (this kill: {cycle_lost}, {cycle_window * 1000:.0f} ms), "
                    f"{len(result.defects)} defects")
    except ServerDied as exc:
        result.defects.append(f"server died: {exc}")
    finally:
        server.stop()
        result.seconds = time.monotonic() - started
        if result.defects:
            result.defects.append(f"server log tail ({server.log_path}):\n{server.log_tail(40)}")
        if result.ok and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def table(results: list[Result]) -> str:
    head = ("server", "fsync", "cycles", "acked writes", "lost", "max lost/kill",
            "max loss window", "kills in rewrite/bgsave", "defects", "time", "result")
    rows = [head] + [(r.server, r.fsync, str(r.cycles), str(r.acked), str(r.lost),
                      str(r.max_lost_per_kill), f"{r.max_window * 1000:.0f} ms",
                      f"{r.kills_in_rewrite}/{r.kills_in_bgsave}",
                      str(sum(1 for d in r.defects if not d.startswith("server log"))),
                      f"{r.seconds:.0f} s", "ok" if r.ok else "FAIL") for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--fsync", choices=["always", "everysec", "both"], default="both")
    parser.add_argument("--redis", action="store_true",
                        help="run the same loop against redis-server too, for comparison")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="time limit of each (server, fsync) run")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"crash loop: seed {seed} (rerun with --seed {seed}), {args.cycles} cycles, "
          f"{args.clients} clients", flush=True)
    policies = ["always", "everysec"] if args.fsync == "both" else [args.fsync]
    servers = ["vermilion", "redis"] if args.redis else ["vermilion"]
    results = []
    for server_name in servers:
        for fsync in policies:
            results.append(run(server_name, fsync, args.cycles, args.clients, seed,
                               max_seconds=args.max_seconds, keep=args.keep,
                               log=lambda line: print(line, flush=True)))
    print()
    print(table(results))
    for r in results:
        if r.defects:
            print(f"\n{r.server} {r.fsync}: {len(r.defects)} defects (data kept in {r.workdir}, "
                  f"seed {seed}):")
            for defect in r.defects[:20]:
                print("- " + defect)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
