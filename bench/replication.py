"""Replication side by side: real redis-server vs vermilion-server as masters (and as
replicas), in one run.

1. Full sync: a master holding N mixed keys (bench/persistence.py's dataset), a replica
   told REPLICAOF; seconds from the command to the replica's link up with every key.
   Pairs: redis→redis, vermilion→redis, vermilion→vermilion, redis→vermilion.
2. SET throughput of a master with no replica and with one replica attached
   (`redis-benchmark -t set -c 50`, plain and -P 16), best of the rounds.
3. Lag: right after the -P 16 run, how far behind the master the replica's offset is,
   and how long until it catches up.
Writes (or replaces) the "Replication" section of BENCHMARKS.md.

    .venv/bin/python bench/replication.py                  # N = 1,000,000
    .venv/bin/python bench/replication.py --keys 100000 --out /tmp/r.md
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).parent))
from persistence import fill, server_argv  # noqa: E402
from harness import VERMILION, free_port, replace_section, start, stop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class Pair:
    """A master and a replica process, each in its own directory."""

    def __init__(self, master_bin: str, replica_bin: str):
        self.dirs = [tempfile.mkdtemp(prefix="vrepl-") for _ in range(2)]
        self.ports = [free_port(), free_port()]
        extra = ("--repl-diskless-sync-delay", "0", "--repl-backlog-size", "64mb")
        self.procs = [
            start(server_argv(master_bin, self.ports[0], self.dirs[0], *extra), self.ports[0],
                  self.dirs[0], "master.log"),
            start(server_argv(replica_bin, self.ports[1], self.dirs[1], *extra), self.ports[1],
                  self.dirs[1], "replica.log"),
        ]
        self.master = redis.Redis(port=self.ports[0], socket_timeout=600)
        self.replica = redis.Redis(port=self.ports[1], socket_timeout=600)

    def attach(self) -> float:
        begin = time.time()
        self.replica.replicaof("127.0.0.1", self.ports[0])
        while True:
            try:
                if self.replica.info("replication").get("master_link_status") == "up":
                    return time.time() - begin
            except redis.BusyLoadingError:
                pass
            time.sleep(0.01)

    def offsets(self) -> tuple[int, int]:
        return (self.master.info("replication")["master_repl_offset"],
                self.replica.info("replication").get("slave_repl_offset", 0))

    def close(self) -> None:
        for proc in self.procs:
            stop(proc)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


def full_sync_seconds(master_bin: str, replica_bin: str, keys: int) -> float:
    pair = Pair(master_bin, replica_bin)
    try:
        fill(pair.ports[0], keys)
        seconds = pair.attach()
        assert pair.replica.dbsize() == pair.master.dbsize() == keys
        return seconds
    finally:
        pair.close()


def set_ops(port: int, requests: int, pipeline: int) -> float:
    argv = ["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(requests), "-c", "50",
            "-r", "100000", "-q", "--csv", "-P", str(pipeline)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600).stdout
    return float(out.strip().splitlines()[-1].split(",")[1].strip('"'))


def throughput(master_bin: str, replica_bin: str, requests: int, rounds: int) -> dict:
    """ops/s without and with a replica attached, and the lag after the -P 16 run."""
    pair = Pair(master_bin, replica_bin)
    best: dict = {}
    try:
        for label in ("alone", "replica"):
            if label == "replica":
                pair.attach()
            for _ in range(rounds):
                for pipeline in (1, 16):
                    ops = set_ops(pair.ports[0], requests if pipeline == 1 else requests * 4,
                                  pipeline)
                    best[label, pipeline] = max(best.get((label, pipeline), 0), ops)
        master_off, replica_off = pair.offsets()
        behind = master_off - replica_off
        begin = time.time()
        while pair.offsets()[1] < master_off and time.time() - begin < 60:
            time.sleep(0.005)
        best["behind"] = behind
        best["catch_up"] = time.time() - begin
        return best
    finally:
        pair.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    redis_bin, ours = shutil.which("redis-server"), str(VERMILION)
    load = os.getloadavg()[0]
    pairs = {"redis → redis": (redis_bin, redis_bin), "vermilion → redis": (ours, redis_bin),
             "vermilion → vermilion": (ours, ours), "redis → vermilion": (redis_bin, ours)}
    syncs = {name: full_sync_seconds(m, r, args.keys) for name, (m, r) in pairs.items()}
    rates = {name: throughput(pairs[name][0], pairs[name][1], args.requests, args.rounds)
             for name in ("redis → redis", "vermilion → redis", "vermilion → vermilion")}
    base = syncs["redis → redis"]
    lines = [
        "## Replication",
        "",
        f"Generated by `bench/replication.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f" (load average {load:.2f} at the start, 2 cores shared by master, replica and "
        "redis-benchmark). Full sync: "
        f"{args.keys:,} mixed keys (bench/persistence.py's dataset), diskless, seconds from "
        "REPLICAOF to the replica's link up.",
        "",
        "| master → replica | full sync (s) | vs redis → redis (target ≤ 3×) |",
        "|---|---:|---:|",
    ]
    for name, seconds in syncs.items():
        lines.append(f"| {name} | {seconds:.2f} | {seconds / base:.1f}× |")
    lines += [
        "",
        f"SET throughput of the master (`redis-benchmark -t set -c 50 -r 100000`, best of "
        f"{args.rounds}), ops/s, alone and with one replica attached; then how far the "
        "replica was behind right after the -P 16 run, and how long it took to catch up:",
        "",
        "| master → replica | P1 alone | P1 with replica | kept | P16 alone | P16 with replica "
        "| kept (target ≥ 90%) | behind (bytes) | caught up (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rates.items():
        lines.append(
            f"| {name} | {r['alone', 1]:,.0f} | {r['replica', 1]:,.0f} | "
            f"{r['replica', 1] / r['alone', 1]:.0%} | {r['alone', 16]:,.0f} | "
            f"{r['replica', 16]:,.0f} | {r['replica', 16] / r['alone', 16]:.0%} | "
            f"{r['behind']:,} | {r['catch_up']:.2f} |")
    section = "\n".join(lines) + "\n"
    replace_section(Path(args.out), "## Replication", section)
    print(section)


if __name__ == "__main__":
    main()
