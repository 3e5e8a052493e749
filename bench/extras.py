"""The sections of `make bench` (bench/run.py) beyond redis-benchmark's default tests,
each measured against redis-server in the same run: the throughput cost of eviction
under the seed's `maxmemory 2mb` / `allkeys-lru`, scripts (EVAL, EVALSHA), streams
(XADD, XREADGROUP) and the memory a small string key costs.

Each function returns a Section: its markdown lines (heading first) and the
redis-benchmark commands it ran, for run.py's Commands section.
"""

import hashlib
import itertools
import shutil
from dataclasses import dataclass, field

import redis

from harness import (VERMILION, Case, Results, Target, benchmark_argv, free_port, goal,
                     interleaved, ops, ratio, run_benchmark, server_argv, start, stop, times)
from memory import growth

SCRIPT = "return redis.call('SET', KEYS[1], ARGV[1])"
SEED_LIMIT = ("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")
EVICTION_TARGET = 0.8
# Under 2mb, 50 clients' query buffers (16 KB or more each) leave Redis nothing to evict
# and it answers OOM (redis-benchmark stops): the eviction runs use 10 clients.
EVICTION_CLIENTS = 10
SCRIPT_TARGETS = {("EVALSHA", 1): 0.6}
STREAM_TARGETS = {("XADD", 1): 0.7}
BYTES_PER_KEY_TARGET = 150


@dataclass
class Section:
    lines: list[str]
    commands: list[str] = field(default_factory=list)


def _ratio_table(results: Results, targets: list[Target], labels: list[str],
                 goals: dict, reference: str | None = None) -> list[str]:
    """Rows of redis vs vermilion ops/s per label and pipelining mode; with a
    `reference` label, each server's rate as a share of its own reference rate too."""
    redis_name, ours_name = targets[0].name, targets[1].name
    # Server CPU per request beside ops/s: unlike ops/s it hardly moves with the load
    # the shared machine's other jobs put on it.
    head = ("| command | mode | redis-server ops/s | vermilion ops/s | ratio | target "
            "| redis CPU µs/req | vermilion CPU µs/req |")
    rule = "|---|---|---:|---:|---:|---:|---:|---:|"
    if reference:
        head += f" redis: of its {reference} | vermilion: of its {reference} |"
        rule += "---:|---:|"
    lines = [head, rule]
    for pipeline in (1, 16):
        for label in labels:
            theirs = results.best(redis_name, pipeline, label)
            ours = results.best(ours_name, pipeline, label)
            row = (f"| {label} | P{pipeline} | {ops(theirs)} | {ops(ours)} | "
                   f"{times(ratio(ours, theirs))} | "
                   f"{goal(ratio(ours, theirs), goals.get((label, pipeline)))} |")
            for name in (redis_name, ours_name):
                cpu = results.cpu.get((name, label, pipeline))
                row += f" {cpu:.2f} |" if cpu else " — |"
            if reference:
                for name, rate in ((redis_name, theirs), (ours_name, ours)):
                    share = ratio(rate, results.best(name, pipeline, reference))
                    row += f" {share:.0%} |" if share else " — |"
            lines.append(row)
    return lines + _failures(results)


def _failures(results: Results) -> list[str]:
    if not results.errors:
        return []
    lines = ["", "Failed runs:", ""]
    lines += [f"- {target}, {label} P{pipeline}: `{message}`"
              for (target, label, pipeline), message in results.errors.items()]
    return lines


def _sized(requests: int, pipeline: int) -> int:
    """Requests of a script or stream run: these commands cost Vermilion several times
    a SET, so a quarter of -n (half pipelined) keeps its runs to seconds."""
    return requests // 4 if pipeline == 1 else requests // 2


def scripts(targets: list[Target], requests: int, rounds: int, clients: int) -> Section:
    """EVAL and EVALSHA of a one-call script, and the plain SET it wraps, on the two
    running servers (redis first)."""
    sha = hashlib.sha1(SCRIPT.encode()).hexdigest()
    for target in targets:
        loaded = redis.Redis(port=target.port).script_load(SCRIPT)
        assert loaded == sha, (target.name, loaded)
    commands = {"SET": ["SET", "key:__rand_int__", "val"],
                "EVAL": ["EVAL", SCRIPT, "1", "key:__rand_int__", "val"],
                "EVALSHA": ["EVALSHA", sha, "1", "key:__rand_int__", "val"]}
    cases = [Case(label, argv, _sized(requests, pipeline), pipeline, ("-r", "100000"),
                  command=True)
             for pipeline in (1, 16) for label, argv in commands.items()]
    results = interleaved(targets, cases, rounds, clients)
    lines = ["## Scripts", "",
             f"`{SCRIPT}` run by EVAL (the script's text every time) and by EVALSHA (after "
             "SCRIPT LOAD on both servers), random keys (`-r 100000`), beside the plain SET "
             f"it wraps; best of {rounds} interleaved rounds.", "",
             *_ratio_table(results, targets, ["SET", "EVAL", "EVALSHA"], SCRIPT_TARGETS,
                           reference="SET"), ""]
    return Section(lines, results.commands)


def streams(targets: list[Target], requests: int, rounds: int, clients: int) -> Section:
    """XADD, and XREADGROUP of one new entry per call from a pre-filled stream (a new
    consumer group for every run, so that every call delivers an entry)."""
    entries = max(_sized(requests, pipeline) for pipeline in (1, 16))
    for target in targets:
        c = redis.Redis(port=target.port)
        c.delete("bench:stream")
        for first in range(0, entries, 5000):
            pipe = c.pipeline(transaction=False)
            for _ in range(first, min(first + 5000, entries)):
                pipe.xadd("bench:stream", {"field": "value"})
            pipe.execute()
    groups = itertools.count()

    def read_group(target: Target) -> list[str]:
        group = f"g{next(groups)}"
        redis.Redis(port=target.port).xgroup_create("bench:stream", group, id="0")
        return ["XREADGROUP", "GROUP", group, "c", "COUNT", "1", "STREAMS", "bench:stream", ">"]

    cases = [case for pipeline in (1, 16) for case in (
        Case("XADD", ["XADD", "mystream", "*", "field", "value"], _sized(requests, pipeline),
             pipeline, command=True),
        Case("XREADGROUP", read_group, _sized(requests, pipeline), pipeline, command=True))]
    results = interleaved(targets, cases, rounds, clients)
    lines = ["## Streams (XADD, XREADGROUP)", "",
             "`XADD mystream * field value`, and `XREADGROUP GROUP g c COUNT 1 STREAMS "
             "bench:stream >` from a stream pre-filled with as many entries as a run reads, "
             "with a new consumer group for every run (so every call delivers one entry and "
             f"adds it to the group's pending list); best of {rounds} interleaved rounds.", "",
             *_ratio_table(results, targets, ["XADD", "XREADGROUP"], STREAM_TARGETS), ""]
    return Section(lines, results.commands)


def eviction(workdir: str, requests: int, rounds: int) -> Section:
    """SET throughput under the seed's 2mb allkeys-lru (evicting all along) against the
    same server without a limit, for both servers: four servers, runs interleaved."""
    targets = []
    try:
        for name, binary in (("redis", shutil.which("redis-server")),
                             ("vermilion", str(VERMILION))):
            for limited in (False, True):
                port = free_port()
                label = f"{name} 2mb" if limited else name
                proc = start(server_argv(binary, port, *(SEED_LIMIT if limited else ())),
                             port, workdir, f"eviction-{label.replace(' ', '-')}.log")
                targets.append(Target(label, port, proc))
        options = ("-d", "100", "-r", "1000000")
        for target in targets:  # fill to the limit first: the measured runs evict all along
            run_benchmark(benchmark_argv(target.port, 50_000, EVICTION_CLIENTS, 16, *options,
                                         "-t", "set"))
        # With 10 clients a run not pipelined waits on round trips: half of -n is enough.
        cases = [Case("SET", ["-t", "set"], requests * 2 if pipeline > 1 else requests // 2,
                      pipeline, options) for pipeline in (1, 16)]
        results = interleaved(targets, cases, rounds, EVICTION_CLIENTS)
        stats = {}
        for target in targets:
            c = redis.Redis(port=target.port)
            stats[target.name] = (c.info("stats")["evicted_keys"], c.dbsize())
    finally:
        for target in targets:
            stop(target.proc)
    lines = ["## Eviction cost", "",
             f"SET throughput (`-t set -d 100 -r 1000000 -c {EVICTION_CLIENTS}`, after "
             "50,000 SETs that fill the limit) of a server under the seed's `maxmemory 2mb` / "
             "`maxmemory-policy allkeys-lru` (`" + " ".join(SEED_LIMIT) + "` on the "
             "server's command line), which evicts all along, against the same server "
             f"without a limit; four servers, best of {rounds} interleaved rounds. "
             f"{EVICTION_CLIENTS} clients, not 50: under 2 MB, 50 clients' query buffers leave "
             "Redis nothing to evict and it answers OOM.", "",
             "| server | mode | no limit ops/s | 2mb allkeys-lru ops/s | evicting / not | target "
             "| keys evicted | keys held at the end |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name in ("redis", "vermilion"):
        for pipeline in (1, 16):
            free = results.best(name, pipeline, "SET")
            held = results.best(f"{name} 2mb", pipeline, "SET")
            cell = goal(ratio(held, free), EVICTION_TARGET if name == "vermilion" else None)
            evicted, keys = stats[f"{name} 2mb"]
            if not evicted:
                cell += " (nothing was evicted!)"
            lines.append(f"| {name} | P{pipeline} | {ops(free)} | {ops(held)} | "
                         f"{times(ratio(held, free))} | {cell} | {evicted:,} | {keys:,} |")
    lines += _failures(results) + [""]
    return Section(lines, results.commands)


def bytes_per_key(workdir: str, keys: int) -> Section:
    """used_memory and RSS growth per small string key (bench/memory.py's measure)."""
    grown = growth(workdir, lambda: ([b"SET", b"key:%08d" % i, b"val"] for i in range(keys)))
    lines = ["## Bytes per key", "",
             f"{keys:,} keys `key:NNNNNNNN` → 3-byte value, SET by pipelines of 5,000 into a "
             "fresh, empty server (bench/memory.py's growth()); the growth of INFO "
             "used_memory and of the process's RSS, per key. Target for Vermilion: "
             f"≤ {BYTES_PER_KEY_TARGET} B.", "",
             "| server | used_memory Δ / key | RSS Δ / key | target |",
             "|---|---:|---:|---:|"]
    for name, (used, rss) in grown.items():
        goal = ""
        if name == "vermilion":
            goal = " ".join(f"{what} {'✓' if value / keys <= BYTES_PER_KEY_TARGET else '✗'}"
                            for what, value in (("used", used), ("RSS", rss)))
        lines.append(f"| {name} | {used / keys:.0f} B | {rss / keys:.0f} B | {goal} |")
    return Section(lines + [""])
