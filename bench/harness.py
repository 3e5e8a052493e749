"""What the side-by-side benchmarks share: servers started on free loopback ports and
stopped, redis-benchmark runs and their CSV, a server's CPU time, the interleaved
best-of-rounds loop that runs the same redis-benchmark commands against several servers,
and writing one section of BENCHMARKS.md.
"""

import compileall
import csv
import functools
import io
import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
VERMILION = Path(sys.executable).parent / "vermilion-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.cache
def compile_bytecode() -> None:
    """An installed Vermilion runs from compiled bytecode (pip compiles a wheel as it
    installs it; the Docker image does). A checkout run under PYTHONDONTWRITEBYTECODE
    would instead recompile every module at each server start (0.13 s): compile once, so
    that start-up is measured as deployed."""
    compileall.compile_dir(str(ROOT / "vermilion"), quiet=1)


def start(argv: list[str], port: int, cwd: str, log_name: str) -> subprocess.Popen:
    compile_bytecode()
    log = open(Path(cwd) / log_name, "wb")
    proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{argv[0]} exited; see {cwd}/{log_name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{argv[0]} did not start on port {port}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_argv(binary: str, port: int, *extra: str) -> list[str]:
    """A server on loopback with persistence off, as every throughput run here wants it."""
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", *extra]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), to report server CPU per request:
    unlike ops/s, it hardly depends on what else the shared machine is doing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def benchmark_argv(port: int, requests: int, clients: int, pipeline: int,
                   *more: str) -> list[str]:
    """redis-benchmark's common options; `more` ends with `-t tests` or an arbitrary
    command (which must come last)."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
            "-n", str(requests), "-q", "--csv"]
    if pipeline > 1:
        argv += ["-P", str(pipeline)]
    return argv + list(more)


def run_benchmark(argv: list[str]) -> dict[str, float]:
    """{test: ops/s} of one redis-benchmark run; raises if it fails (redis-benchmark 7.0
    stops at the first error reply, exit status 1)."""
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=True).stdout
    rows = {}
    for row in csv.reader(io.StringIO(out)):
        if len(row) >= 2 and row[0] != "test":
            rows[row[0]] = float(row[1])
    return rows


@dataclass
class Target:
    """A running server that benchmarks are pointed at."""
    name: str
    port: int
    proc: subprocess.Popen


@dataclass
class Case:
    """One redis-benchmark command, run against every target."""
    label: str  # unique among the cases of one pipelining mode
    # What ends the command line: ["-t", "set"], or an arbitrary command; a function
    # of the target when each run needs fresh state (e.g. a new consumer group).
    tail: list[str] | Callable[[Target], list[str]]
    requests: int
    pipeline: int = 1
    options: tuple[str, ...] = ()  # more redis-benchmark options, e.g. ("-d", "100")
    # An arbitrary command's CSV row is named after its text; with command=True the row
    # is filed under the label instead (the text may change between runs).
    command: bool = False


@dataclass
class Results:
    ops: dict = field(default_factory=dict)  # (target, pipeline) → {row: best ops/s}
    cpu: dict = field(default_factory=dict)  # (target, label, pipeline) → least µs/request
    errors: dict = field(default_factory=dict)  # (target, label, pipeline) → message
    commands: list = field(default_factory=list)  # each case's argv once, port as <port>

    def best(self, target: str, pipeline: int, row: str) -> float | None:
        return self.ops.get((target, pipeline), {}).get(row)


def interleaved(targets: list[Target], cases: list[Case], rounds: int, clients: int,
                results: Results | None = None) -> Results:
    """Run every case against every target, `rounds` times, keeping each target's best
    ops/s and least server CPU per request. The targets take turns case by case, and
    swap order every round, so that noise on the shared machine hits them alike; each
    target sees the same commands in the same order (tests that pop what an earlier
    one pushed find the same state). A failed run (an error reply, a crash) is recorded
    in `errors` and the rest goes on."""
    results = results or Results()
    for round_no in range(rounds):
        order = targets if round_no % 2 == 0 else targets[::-1]
        for case in cases:
            for target in order:
                tail = case.tail(target) if callable(case.tail) else case.tail
                argv = benchmark_argv(target.port, case.requests, clients, case.pipeline,
                                      *case.options, *tail)
                if round_no == 0 and target is targets[0]:
                    results.commands.append(
                        shlex.join(argv).replace(f" {target.port} ", " <port> "))
                print(f"[round {round_no + 1}/{rounds}] {target.name}: $ {shlex.join(argv)}",
                      flush=True)
                key = (target.name, case.label, case.pipeline)
                before = cpu_seconds(target.proc.pid)
                try:
                    rows = run_benchmark(argv)
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                    stderr = exc.stderr or ""
                    if isinstance(stderr, bytes):  # TimeoutExpired keeps bytes
                        stderr = stderr.decode(errors="replace")
                    message = stderr.strip().splitlines()
                    results.errors[key] = message[-1] if message else str(exc)
                    print(f"  failed: {results.errors[key]}", flush=True)
                    continue
                used = cpu_seconds(target.proc.pid) - before
                if not rows:
                    results.errors[key] = "no result"
                    continue
                if case.command:
                    rows = {case.label: max(rows.values())}
                per_request = used * 1e6 / (case.requests * len(rows))
                results.cpu[key] = min(results.cpu.get(key, per_request), per_request)
                best = results.ops.setdefault((target.name, case.pipeline), {})
                for row, ops in rows.items():
                    best[row] = max(best.get(row, 0.0), ops)
    return results


def ops(value: float | None) -> str:
    """An ops/s cell; "—" where the server did not serve the test."""
    return f"{value:,.0f}" if value else "—"


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours and theirs else None


def times(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None else "—"


def goal(value: float | None, wanted: float | None) -> str:
    """A target cell: the target and whether the ratio meets it."""
    if not wanted:
        return ""
    return f"≥ {wanted:.2f}× {'✓' if value and value >= wanted else '✗'}"


def replace_section(path: Path, heading: str, section: str) -> None:
    """Write section into BENCHMARKS.md in place of the one under heading (the other
    benchmarks own the rest of the file)."""
    import re

    text = path.read_text() if path.exists() else "# Benchmarks\n"
    text = re.sub(rf"{re.escape(heading)}\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip()
    path.write_text(text + "\n\n" + section)
