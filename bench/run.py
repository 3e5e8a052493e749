"""Side-by-side benchmark of redis-server, vermilion-server and the Python floor (make bench).

Runs every test redis-benchmark 7.0 runs by default (no -t) against the three servers,
on the same machine in the same run, not pipelined and with -P 16, one redis-benchmark
run per test, the servers taking turns test by test and swapping order every round,
best of N rounds. Then the sections of bench/extras.py against redis-server and
Vermilion: the cost of eviction under the seed's 2mb allkeys-lru, scripts, streams,
bytes per key. Writes BENCHMARKS.md with ops/s, ratios against the issue's targets,
server CPU per request, the machine and the exact commands, keeping the sections the
other benchmarks (bench/*.py) wrote.

    .venv/bin/python bench/run.py            # full run (3 rounds), writes BENCHMARKS.md
    .venv/bin/python bench/run.py -n 20000 --rounds 1 --out /tmp/b.md   # a quicker look
    .venv/bin/python bench/run.py -n 20000 --rounds 1 --sections scripts,streams --out /tmp/b.md
"""

import argparse
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import extras
from harness import (ROOT, VERMILION, Case, Target, free_port, goal, interleaved, ops, ratio,
                     server_argv, start, stop, times)

# The Python floor: the thinnest useful uvloop + hiredis server (no expiry, stats or
# persistence), run beside the two so the ratios say how much is our own overhead.
THIN_SERVER = Path(os.environ.get("THIN_SERVER", ROOT.parent / "shared" / "bench" / "thin_server.py"))
SERVERS = ("redis", "vermilion", "floor")
# redis-benchmark 7.0's default tests in the order it runs them, by their -t names. The
# LRANGE tests run as one group: selecting any of them makes redis-benchmark first run
# "LPUSH (needed to benchmark LRANGE)", which fills their list.
LRANGE = "lrange_100,lrange_300,lrange_500,lrange_600"
DEFAULT_TESTS = ("ping_inline", "ping_mbulk", "set", "get", "incr", "lpush", "rpush", "lpop",
                 "rpop", "sadd", "hset", "spop", "zadd", "zpopmin", LRANGE, "mset")
SECTIONS = ("default", "scripts", "streams", "eviction", "bytes")
GEOMEAN_TARGET = {16: 0.5}


def target(test: str, pipeline: int) -> float:
    """The issue's target for a default test, as a fraction of Redis's ops/s."""
    if test.startswith("MSET"):
        return 0.5
    if pipeline == 1:
        return 0.5 if test.startswith("LRANGE_") else 0.9
    return 0.5 if test in ("SET", "GET", "INCR") else 0.35


def default_cases(requests: int) -> list[Case]:
    cases = []
    for pipeline in (1, 16):
        for tests in DEFAULT_TESTS:
            if tests == LRANGE:
                # LRANGE_600 goes at a tenth of a SET's rate or less: a fifth of -n keeps
                # the group's runs to seconds (and its list above 600 elements).
                cases.append(Case("LRANGE_* (and their LPUSH)", ["-t", tests],
                                  max(requests // 5, 1000), pipeline))
            else:
                # Pipelined, a run of -n requests would last a fraction of a second.
                cases.append(Case(tests.upper(), ["-t", tests],
                                  requests * (2 if pipeline > 1 else 1), pipeline))
    return cases


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "missing"

    import hiredis
    import uvloop

    import vermilion
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": "%s (%s, %s)" % (platform.python_version(), sys.base_prefix, _build()),
        "redis-server": version(["redis-server", "--version"]),
        "redis-benchmark": version(["redis-benchmark", "--version"]),
        "vermilion": vermilion.__version__,
        "uvloop": uvloop.__version__,
        "hiredis": hiredis.__version__,
    }


def _build() -> str:
    """How the interpreter was built: the same code runs 10-25 % faster per command on a
    build with profile-guided optimisation (README)."""
    if sys.base_prefix == "/usr":
        return "Debian's build: PGO and LTO"
    if "--enable-optimizations" in (sysconfig.get_config_var("CONFIG_ARGS") or ""):
        return "PGO"
    return "no PGO"


def _geomean(values) -> float | None:
    values = [v for v in values if v]
    return statistics.geometric_mean(values) if values else None


def ops_table(results, pipeline: int) -> list[str]:
    tests = list(dict.fromkeys(test for name in SERVERS
                               for test in results.ops.get((name, pipeline), {})))
    lines = ["| test | redis-server ops/s | vermilion ops/s | ratio | Python floor ops/s "
             "| floor ratio | target |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    both = []  # (redis, vermilion, floor) of the tests redis and vermilion both served
    for test in tests:
        theirs, ours, floor = (results.best(name, pipeline, test) for name in SERVERS)
        ours_ratio = ratio(ours, theirs)
        lines.append(f"| {test} | {ops(theirs)} | {ops(ours)} | {times(ours_ratio)} | "
                     f"{ops(floor)} | {times(ratio(floor, theirs))} | "
                     f"{goal(ours_ratio, target(test, pipeline))} |")
        if ours_ratio:
            both.append((theirs, ours, floor))
    # The geometric mean of the ratios (= the ratio of the geometric means): one figure
    # in which every test weighs the same, whatever its absolute rate.
    theirs, ours = _geomean(r[0] for r in both), _geomean(r[1] for r in both)
    floors = [r for r in both if r[2]]
    floor_ratio = _geomean(r[2] / r[0] for r in floors) if len(floors) == len(both) else None
    mean = ratio(ours, theirs)
    of = f" ({len(both)} of {len(tests)} tests)" if len(both) < len(tests) else ""
    floor_mean = ops(_geomean(r[2] for r in floors)) if floor_ratio else "—"
    lines.append(f"| **geometric mean**{of} | {ops(theirs)} | {ops(ours)} | "
                 f"**{times(mean)}** | {floor_mean} | {times(floor_ratio)} | "
                 f"{goal(mean, GEOMEAN_TARGET.get(pipeline))} |")
    return lines


def cpu_table(results) -> list[str]:
    labels = list(dict.fromkeys(label for (_, label, _) in results.cpu))
    lines = ["| test | P1 redis | P1 vermilion | ratio | P1 floor | P16 redis | P16 vermilion "
             "| ratio | P16 floor |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ratios = {1: [], 16: []}
    for label in labels:
        row = f"| {label} |"
        for pipeline in (1, 16):
            theirs, ours, floor = (results.cpu.get((name, label, pipeline)) for name in SERVERS)
            ours_ratio = ratio(ours, theirs)
            ratios[pipeline].append(ours_ratio)
            row += "".join(f" {v:.2f} |" if v else " — |" for v in (theirs, ours))
            row += f" {ours_ratio:.1f}× |" if ours_ratio else " — |"
            row += f" {floor:.2f} |" if floor else " — |"
        lines.append(row)
    means = [_geomean(ratios[p]) for p in (1, 16)]
    lines.append("| **geometric mean of the ratios** | | | "
                 + " | | | | ".join(f"**{m:.1f}×**" if m else "—" for m in means) + " | |")
    return lines


def render(results, sections, commands, info, args) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `bench/run.py` (`make bench`): real `redis-server`, `vermilion-server`",
             "and the Python floor (`../shared/bench/thin_server.py`: uvloop + hiredis, a dict,",
             "nothing else) side by side on the same machine in the same run, loopback TCP,",
             "persistence off.",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Each number is the best of",
             f"{args.rounds} rounds (servers taking turns test by test, alternating who goes",
             "first), ops/s as reported by redis-benchmark.", ""]
    if results is not None:
        lines += ["Every test `redis-benchmark` 7.0 runs by default (no `-t`), one",
                  f"redis-benchmark run per test (`-c {args.clients}`; `-n {args.requests}` "
                  f"not pipelined, `-n {args.requests * 2}` with -P 16; the LRANGE tests",
                  f"together, after the LPUSH that fills their list, `-n "
                  f"{max(args.requests // 5, 1000)}`).", ""]
        for label, pipeline in (("Not pipelined", 1), ("Pipelined (-P 16)", 16)):
            lines += [f"## {label}", "", *ops_table(results, pipeline), ""]
            failed = [f"- {server}, {test}: `{message}`"
                      for (server, test, p), message in results.errors.items() if p == pipeline]
            if failed:
                lines += ["Failed runs (redis-benchmark stops at an error reply; the Python",
                          "floor only serves the commands of its CMDS table):", "", *failed, ""]
        lines += ["## Server CPU per request", "",
                  "CPU time (user + system) of the server process during a redis-benchmark",
                  "run, divided by the requests of that run, in µs; the lowest of the rounds.",
                  "This is the cost that bounds throughput once the client is not the",
                  "bottleneck, and it moves much less than ops/s on a busy machine. The",
                  "LRANGE row covers the LPUSH that fills the list and the four LRANGE tests.",
                  "", *cpu_table(results), ""]
    for section in sections:
        lines += section.lines
    lines += ["## Machine", ""]
    lines += [f"- {name}: {value}" for name, value in info.items()]
    lines += ["", "## Commands", "", "Servers:", "", "```", *commands["servers"], "```", "",
              "Benchmarks (each run against every server of its table, taking turns):", "",
              "```", *commands["bench"], "```", "", "Driver:", "", "```",
              f"{Path(sys.executable).name} bench/run.py -n {args.requests} -c {args.clients} "
              f"--rounds {args.rounds} --keys {args.keys} --sections {args.sections}",
              "```", "",
              "The machine is shared (2 cores, other jobs running): ops/s ratios move a lot",
              "between runs, -P 16 ones by up to 2x, because redis-benchmark, the server and",
              "the other jobs compete for the same two cores. redis-benchmark uses one core, so",
              "non-pipelined numbers are largely bounded by the client. The CPU-per-request",
              "table is the comparison to trust.", ""]
    return "\n".join(lines)


def summary(results) -> None:
    for pipeline in (1, 16):
        print(f"-P {pipeline}:")
        for test, theirs in results.ops.get(("redis", pipeline), {}).items():
            ours = results.best("vermilion", pipeline, test)
            floor = results.best("floor", pipeline, test)
            print(f"  {test:36} redis {theirs:>12,.0f}  vermilion {ours or 0:>12,.0f}  "
                  f"{times(ratio(ours, theirs))}  floor {times(ratio(floor, theirs))}",
                  flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--requests", type=int, default=100000,
                        help="requests of a non-pipelined run of one test (others scale it)")
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3,
                        help="repeat everything, keep each server's best (the machine is shared)")
    parser.add_argument("--keys", type=int, default=200_000,
                        help="keys loaded for the bytes-per-key section")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"a comma-separated subset of {','.join(SECTIONS)} (a partial "
                             "run writes only those: use --out for a quick look)")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    chosen = args.sections.split(",")
    if not set(chosen) <= set(SECTIONS):
        parser.error(f"--sections: choose among {','.join(SECTIONS)}")
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install redis-server redis-tools)")
    if not THIN_SERVER.exists():
        raise SystemExit(f"the Python floor is missing: {THIN_SERVER} (set THIN_SERVER)")

    workdir = tempfile.mkdtemp(prefix="vermilion-bench-")
    ports = {name: free_port() for name in SERVERS}
    argvs = {"redis": server_argv("redis-server", ports["redis"]),
             "vermilion": server_argv(str(VERMILION), ports["vermilion"]),
             "floor": [sys.executable, str(THIN_SERVER), str(ports["floor"])]}
    # The floor serves the default tests only; eviction and bytes per key start their own.
    wanted = (SERVERS if "default" in chosen
              else SERVERS[:2] if {"scripts", "streams"} & set(chosen) else ())
    began, loads = time.time(), [os.getloadavg()]
    targets, results, sections = [], None, []
    try:
        for name in wanted:
            proc = start(argvs[name], ports[name], workdir, f"{name}.log")
            targets.append(Target(name, ports[name], proc))
        if "default" in chosen:
            results = interleaved(targets, default_cases(args.requests), args.rounds,
                                  args.clients)
            summary(results)
        for name in ("scripts", "streams"):
            if name in chosen:
                sections.append(getattr(extras, name)(targets[:2], args.requests, args.rounds,
                                                      args.clients))
    finally:
        for target in targets:
            stop(target.proc)
    if "eviction" in chosen:
        sections.append(extras.eviction(workdir, args.requests, args.rounds))
    if "bytes" in chosen:
        sections.append(extras.bytes_per_key(workdir, args.keys))
    loads.append(os.getloadavg())
    for section in sections:
        print("\n".join(section.lines), flush=True)

    def shown(name: str) -> str:
        argv = argvs[name]
        return shlex.join([Path(argv[0]).name, *argv[1:]]).replace(str(ports[name]), "<port>")
    commands = {"servers": [shown(name) for name in wanted],
                "bench": ([] if results is None else results.commands)
                + [c for section in sections for c in section.commands]}
    info = machine()
    info["load average (1/5/15 min) before, after"] = "; ".join(
        " ".join("%.2f" % x for x in load) for load in loads)
    info["duration of the run"] = f"{(time.time() - began) / 60:.1f} min"
    out = Path(args.out)
    kept = _sections_of_other_benchmarks(out.read_text()) if out.exists() else ""
    out.write_text(render(results, sections, commands, info, args).rstrip() + "\n" + kept)
    print(f"wrote {args.out}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


# Sections written by the other benchmarks (persistence.py, memory.py, datatypes.py, ...)
# survive a rerun of this one.
OTHER_SECTIONS = ("## After the wiring redesign", "## Persistence", "## Memory",
                  "## Streams and HyperLogLog", "## Replication", "## TLS", "## ACL")


def _sections_of_other_benchmarks(text: str) -> str:
    kept = []
    for match in re.finditer(r"^## .*?(?=^## |\Z)", text, flags=re.S | re.M):
        if match.group(0).startswith(OTHER_SECTIONS):
            kept.append(match.group(0).rstrip() + "\n")
    return ("\n" + "\n".join(kept)) if kept else ""


if __name__ == "__main__":
    sys.exit(main())
