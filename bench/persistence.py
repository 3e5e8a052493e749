"""Persistence side by side: real redis-server vs vermilion-server in one run.

For a dataset of N keys of mixed types (70% strings, 10% hashes, 10% lists, 5% sets,
5% sorted sets; 5 elements per collection): SAVE time, RDB file size, start-up load time;
then redis-benchmark SET throughput with appendonly no / everysec / always (300k requests,
best of 3 interleaved rounds).
Appends (or replaces) a "Persistence" section in BENCHMARKS.md.

    .venv/bin/python bench/persistence.py              # N = 1,000,000
    .venv/bin/python bench/persistence.py --keys 100000 --out /tmp/p.md
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).parent))
from harness import VERMILION, free_port, replace_section, start, stop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def fill(port: int, keys: int) -> None:
    c = redis.Redis(port=port)
    pipe = c.pipeline(transaction=False)
    for i in range(keys):
        kind = i % 20
        if kind < 14:
            pipe.set(f"str:{i}", f"value-{i}")
        elif kind < 16:
            pipe.hset(f"hash:{i}", mapping={f"f{j}": f"v{j}" for j in range(5)})
        elif kind < 18:
            pipe.rpush(f"list:{i}", *[f"e{j}" for j in range(5)])
        elif kind == 18:
            pipe.sadd(f"set:{i}", *[f"m{j}" for j in range(5)])
        else:
            pipe.zadd(f"zset:{i}", {f"m{j}": j for j in range(5)})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def wait_loaded(port: int, proc, timeout: float = 600) -> float:
    start_time = time.time()
    while time.time() - start_time < timeout:
        if proc.poll() is not None:
            raise SystemExit("server exited while loading")
        try:
            r = redis.Redis(port=port, socket_timeout=5)
            r.ping()
            return time.time() - start_time
        except (redis.ConnectionError, redis.BusyLoadingError, redis.ResponseError):
            time.sleep(0.02)
    raise SystemExit("load timed out")


def server_argv(binary: str, port: int, workdir: str, *extra: str) -> list[str]:
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir, "--save", "",
            *extra]


def snapshot_figures(binary: str, keys: int, loads: int) -> dict:
    workdir = tempfile.mkdtemp(prefix="vbench-")
    port = free_port()
    proc = start(server_argv(binary, port, workdir), port, workdir, "server.log")
    try:
        fill(port, keys)
        c = redis.Redis(port=port)
        t = time.time()
        c.save()
        save_seconds = time.time() - t
        size = (Path(workdir) / "dump.rdb").stat().st_size
    finally:
        stop(proc)
    load_seconds = float("inf")
    for _ in range(loads):  # from launch to the first PING answered, best of `loads`
        port = free_port()
        launched = time.time()
        proc = subprocess.Popen(server_argv(binary, port, workdir), cwd=workdir,
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_loaded(port, proc)
            load_seconds = min(load_seconds, time.time() - launched)
            loaded = redis.Redis(port=port).dbsize()
        finally:
            stop(proc)
    shutil.rmtree(workdir, ignore_errors=True)
    return {"save": save_seconds, "size": size, "load": load_seconds, "keys": loaded}


def set_throughputs(binaries: dict, requests: int, rounds: int) -> dict:
    """Best SET ops/s of `rounds` redis-benchmark runs for each (server, appendonly
    mode), every server started once and the runs interleaved, so that noise on this
    shared machine hits all of them alike."""
    servers = {}
    try:
        for name, binary in binaries.items():
            for mode in (None, "everysec", "always"):
                workdir = tempfile.mkdtemp(prefix="vbench-")
                port = free_port()
                extra = ["--appendonly", "yes", "--appendfsync", mode] if mode else []
                proc = start(server_argv(binary, port, workdir, *extra), port, workdir, "server.log")
                servers[name, mode] = (proc, port, workdir)
        best = {key: 0.0 for key in servers}
        for _ in range(rounds):
            for key, (_, port, _) in servers.items():
                out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-n",
                                      str(requests), "-c", "50", "-q", "--csv"],
                                     capture_output=True, text=True).stdout
                match = re.search(r'"SET","([0-9.]+)"', out)
                best[key] = max(best[key], float(match.group(1)) if match else 0.0)
        return best
    finally:
        for proc, _, workdir in servers.values():
            stop(proc)
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=1_000_000)
    # 300k SETs: runs of ~3 s take in several everysec fsyncs (steady state) and are
    # less noisy on a shared machine than 1-second runs.
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    redis_bin = shutil.which("redis-server")
    ours = snapshot_figures(str(VERMILION), args.keys, args.rounds)
    theirs = snapshot_figures(redis_bin, args.keys, args.rounds)
    lines = [
        "## Persistence",
        "",
        f"Generated by `bench/persistence.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"{args.keys:,} keys (70% strings, 10% hashes, 10% lists, 5% sets, 5% sorted sets, "
        f"5 elements each), both servers in the same run; load times are the best of {args.rounds} "
        "start-ups, from launch to the first PING answered.",
        "",
        "| measure | redis-server | vermilion | ratio (vermilion / redis) |",
        "|---|---:|---:|---:|",
        f"| SAVE (s) | {theirs['save']:.2f} | {ours['save']:.2f} | {ours['save'] / theirs['save']:.1f}× |",
        f"| dump.rdb size (bytes) | {theirs['size']:,} | {ours['size']:,} | {ours['size'] / theirs['size']:.2f}× |",
        f"| start-up load (s) | {theirs['load']:.2f} | {ours['load']:.2f} | {ours['load'] / theirs['load']:.1f}× (target ≤ 5×) |",
        f"| keys after load | {theirs['keys']:,} | {ours['keys']:,} | |",
        "",
        f"SET throughput (`redis-benchmark -t set -n {args.requests} -c 50`, best of "
        f"{args.rounds} interleaved rounds), ops/s:",
        "",
        "| appendonly | redis-server | vermilion | vermilion's cost vs its own `no` |",
        "|---|---:|---:|---:|",
    ]
    best = set_throughputs({"r": redis_bin, "v": str(VERMILION)}, args.requests, args.rounds)
    for mode in (None, "everysec", "always"):
        r, v = best["r", mode], best["v", mode]
        cost = "" if mode is None else f"{(1 - v / best['v', None]) * 100:.0f}%"
        if mode == "everysec":
            cost += " (target ≤ 15%)"
        lines.append(f"| {mode or 'no'} | {r:,.0f} | {v:,.0f} | {cost} |")
    section = "\n".join(lines) + "\n"
    replace_section(Path(args.out), "## Persistence", section)
    print(section)


if __name__ == "__main__":
    main()
