"""Redis 7.0.15's own Tcl test suite against Vermilion, beside real redis-server on the
same machine, as the per-unit table of docs/compatibility.md (`make conformance`).

The runner is ../shared/conformance/redis-tests.sh (its README says how the two modes
work). Each mode runs the unit list once for vermilion-server and once for Debian's
redis-server, unless --redis-from names a file of runner output for Redis (a TOTAL-less
or complete `redis-tests.sh redis ...` log, e.g. the conformance kit's
baseline-spawn.txt). The table and the totals are rewritten between the markers of
docs/compatibility.md; the prose around them (deliberate differences) is kept.

    .venv/bin/python tools/conformance.py [--modes external,spawn] [--units U ...]
        [--redis-from MODE=FILE] [--vermilion-from MODE=FILE] [--runner PATH]
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(os.environ.get("CONFORMANCE_DIR", ROOT.parent / "shared" / "conformance")) \
    / "redis-tests.sh"
SERVER = Path(sys.executable).parent / "vermilion-server"
DOC = ROOT / "docs" / "compatibility.md"
BEGIN, END = "<!-- conformance:begin -->", "<!-- conformance:end -->"
LINE = re.compile(r"^(\S+)\s+ok\s+(\d+)\s+err\s+(\d+)\s+exception\s+(\d+)(.*)$")


ELAPSED = re.compile(r"^elapsed (\d+)$", re.MULTILINE)


def elapsed_of(text: str) -> int | None:
    """The seconds a run took, from the "elapsed N" line run() (or a wrapper script
    timing a background run) appends to the runner's output."""
    match = ELAPSED.search(text)
    return int(match.group(1)) if match else None


def parse(text: str) -> dict:
    """unit → (ok, err, exception, note) from runner output."""
    out = {}
    for line in text.splitlines():
        match = LINE.match(line.strip())
        if match and match.group(1) != "TOTAL":
            unit, ok, err, exc, note = match.groups()
            out[unit] = (int(ok), int(err), int(exc), note.strip())
    return out


def run(runner: Path, server: str, mode: str, units: list[str]) -> str:
    """The runner's output for server in mode, with an "elapsed N" line appended."""
    env = dict(os.environ, REDIS_TESTS_WORK=f"/tmp/vermilion-conformance-{Path(server).name}")
    argv = ["bash", str(runner), server, f"--{mode}", *units]
    print("running:", " ".join(argv), flush=True)
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    sys.stdout.write(done.stdout)
    if done.returncode not in (0, 1) and not done.stdout:
        raise SystemExit(f"the runner failed: {done.stderr}")
    return done.stdout + f"\nelapsed {round(time.monotonic() - start)}\n"


def shares(mine: dict, redis: dict) -> str:
    """Vermilion's ok count against Redis's for each list of units (unit/, integration/)."""
    parts = []
    for prefix in ("unit/", "integration/"):
        theirs = sum(v[0] for k, v in redis.items() if k.startswith(prefix))
        ours = sum(v[0] for k, v in mine.items() if k.startswith(prefix))
        if theirs:
            parts.append(f"`{prefix}` {ours} of {theirs} ({ours / theirs:.1%})")
    return ("Vermilion's ok count against Redis's: " + "; ".join(parts) + ".\n") if parts else ""


def table(mode: str, mine: dict, redis: dict, note: str = "") -> list[str]:
    lines = [f"### {mode} mode", "", note + shares(mine, redis),
             "| unit | Redis ok | Vermilion ok | err | exceptions | share of Redis |",
             "|---|---:|---:|---:|---:|---:|"]
    totals = [0, 0, 0, 0]
    for unit in sorted(set(mine) | set(redis)):
        r_ok = redis.get(unit, (0, 0, 0, ""))[0]
        ok, err, exc, note = mine.get(unit, (0, 0, 0, "not run"))
        share = f"{ok / r_ok:.0%}" if r_ok else "—"
        suffix = f" {note}" if note else ""
        lines.append(f"| {unit} | {r_ok} | {ok} | {err} | {exc}{suffix} | {share} |")
        totals = [totals[0] + r_ok, totals[1] + ok, totals[2] + err, totals[3] + exc]
    share = f"{totals[1] / totals[0]:.1%}" if totals[0] else "—"
    lines.append(f"| **total** | **{totals[0]}** | **{totals[1]}** | **{totals[2]}** | "
                 f"**{totals[3]}** | **{share}** |")
    return lines + [""]


def suite_time(redis: int | None, mine: int | None) -> str:
    """The line on how long the suite took against each server, when both are known."""
    if not redis or not mine:
        return ""
    return (f"The suite took {redis} s against redis-server and {mine} s against "
            f"Vermilion ({mine / redis:.2f}×).\n")


def write_doc(sections: list[str]) -> None:
    text = DOC.read_text() if DOC.exists() else f"# Compatibility\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    DOC.write_text(head + BEGIN + "\n" + "\n".join(sections) + END + tail)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="external,spawn")
    parser.add_argument("--units", nargs="*", default=[])
    parser.add_argument("--redis-from", action="append", default=[],
                        help="MODE=FILE: Redis's counts from runner output instead of a run")
    parser.add_argument("--vermilion-from", action="append", default=[],
                        help="MODE=FILE: Vermilion's counts from runner output of an earlier "
                             "run (e.g. one left running in the background)")
    parser.add_argument("--runner", default=str(RUNNER))
    args = parser.parse_args(argv)
    runner = Path(args.runner)
    if not runner.exists():
        raise SystemExit(f"the conformance runner is missing: {runner} (set CONFORMANCE_DIR)")
    reuse = dict(item.split("=", 1) for item in args.redis_from)
    earlier = dict(item.split("=", 1) for item in args.vermilion_from)
    sections = []
    for mode in args.modes.split(","):
        if mode in earlier:
            mine = Path(earlier[mode]).read_text()
        else:
            mine = run(runner, str(SERVER), mode, args.units)
        if mode in reuse:
            redis = Path(reuse[mode]).read_text()
        else:
            redis = run(runner, "redis", mode, args.units)
        sections += table(mode, parse(mine), parse(redis),
                          suite_time(elapsed_of(redis), elapsed_of(mine)))
    if earlier or reuse:
        head = ("Rendered by `tools/conformance.py` from the runner's output of earlier full "
                "runs (`--vermilion-from`/`--redis-from`)")
    else:
        head = (f"Measured with `make conformance` on this machine (load "
                f"{os.getloadavg()[0]:.2f} at the end)")
    sections.insert(0, head + "; Redis is Debian's redis-server 7.0.15.\n")
    write_doc(sections)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
