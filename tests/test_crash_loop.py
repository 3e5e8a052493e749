"""kill -9 under mixed concurrent writes, a few cycles: the short version of
`make crash-loop` (tests/stress/crash_loop.py, which explains how loss is measured)."""

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "stress"))
import crash_loop  # noqa: E402


def quiet(line):
    pass


def report(result) -> str:
    return crash_loop.table([result]) + "\n" + "\n".join(result.defects)


def test_kill9_cycles_lose_no_acknowledged_write():
    """Five kills with appendfsync always: the second lands just after a BGREWRITEAOF,
    the fourth just after a BGSAVE; every acknowledged write is there after each
    restart, and nothing that was never sent."""
    result = crash_loop.run("vermilion", "always", cycles=5, clients=3, seed=13,
                            write_time=(0.1, 0.3), log=quiet)
    assert result.ok, report(result)
    assert result.cycles == 5 and result.lost == 0 and result.acked > 100, report(result)


def test_the_check_sees_lost_writes():
    """The check is not vacuous: writes cut off the end of the AOF after a kill are
    counted as lost (aof-load-truncated drops the partial command)."""

    def truncate_newest_incr(workdir):
        incr = max((workdir / "appendonlydir").glob("*.incr.aof"), key=os.path.getmtime)
        os.truncate(incr, max(0, incr.stat().st_size - 500))

    result = crash_loop.run("vermilion", "always", cycles=1, clients=2, seed=13,
                            write_time=(0.3, 0.3), log=quiet, after_kill=truncate_newest_incr)
    shutil.rmtree(result.workdir)  # a failed run keeps its directory for a post-mortem
    assert not result.ok
    assert result.lost > 0 or any("matches no prefix" in d for d in result.defects), report(result)
