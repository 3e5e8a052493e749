"""The cost of ACL checks, side by side with redis-server, in one run.

Each server is driven by redis-benchmark (SET and GET, -c 50, plain and -P 16) twice:
as the default user (every permission: Vermilion's dispatcher skips the checks) and as
a user restricted to a key pattern (`on >pw ~key:* +@all`: every command's keys are
matched against the pattern). Best of the interleaved rounds. The issue's target: the
restricted user keeps >= 0.9x of the unrestricted throughput.
Writes (or replaces) the "ACL" section of BENCHMARKS.md.

    .venv/bin/python bench/acl.py [--requests 200000] [--rounds 2] [--out FILE]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import VERMILION, free_port, replace_section, run_benchmark, start, stop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESTRICTED = "user bench on >benchpw ~key:* +@all\nuser default on nopass ~* &* +@all\n"


def throughput(port: int, requests: int, pipeline: int, restricted: bool) -> dict:
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set,get",
            "-c", "50", "-n", str(requests), "-q", "--csv", "-r", "100000"]
    if pipeline > 1:
        argv += ["-P", str(pipeline)]
    if restricted:
        argv += ["--user", "bench", "-a", "benchpw"]
    return run_benchmark(argv)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    servers = {}
    for name, binary in (("redis", "redis-server"), ("vermilion", str(VERMILION))):
        workdir = tempfile.mkdtemp(prefix=f"acl-{name}-")
        conf = Path(workdir) / "users.conf"
        conf.write_text(RESTRICTED)
        port = free_port()
        proc = start([binary, str(conf), "--port", str(port), "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "no"], port, workdir, "server.log")
        servers[name] = (port, proc)
    best: dict = {}
    try:
        for _ in range(args.rounds):
            for pipeline in (1, 16):
                for restricted in (False, True):
                    for name, (port, _proc) in servers.items():
                        rows = throughput(port, args.requests, pipeline, restricted)
                        for test, rps in rows.items():
                            key = (name, pipeline, restricted, test)
                            best[key] = max(best.get(key, 0.0), rps)
    finally:
        for _port, proc in servers.values():
            stop(proc)
    load = os.getloadavg()[0]
    lines = [
        "## ACL (bench/acl.py)",
        "",
        f"redis-benchmark -t set,get -c 50 -n {args.requests:,} -r 100000, best of "
        f"{args.rounds} interleaved rounds, load {load:.2f} at the end. 'default': the "
        "default user (every permission); 'restricted': `user bench on >benchpw ~key:* "
        "+@all`, so every command's keys are matched against the pattern.",
        "",
        "| test | server | default ops/s | restricted ops/s | restricted / default |",
        "|---|---|---:|---:|---:|",
    ]
    for pipeline in (1, 16):
        for test in ("SET", "GET"):
            for name in servers:
                free = best.get((name, pipeline, False, test), 0.0)
                held = best.get((name, pipeline, True, test), 0.0)
                ratio = held / free if free else 0.0
                lines.append(f"| {test} P{pipeline} | {name} | {free:,.0f} | {held:,.0f} | "
                             f"{ratio:.2f} |")
    section = "\n".join(lines) + "\n"
    print(section)
    replace_section(Path(args.out), "## ACL (bench/acl.py)", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
