"""What a forked saving child tells its parent while it works (childinfo.c).

Redis's child writes records to a pipe: the keys it has written so far and its
copy-on-write size, which INFO persistence shows as current_save_keys_processed,
current_fork_perc, current_cow_size (and its age and peak), and at exit as
rdb_last_cow_size. Here the child writes the same numbers into a page of memory shared
with the parent (an anonymous MAP_SHARED mapping made before the fork): the latest
value is all the parent ever reads from the pipe anyway.

The copy-on-write size is the child's Private_Dirty memory (zmalloc_get_private_dirty()
reads the same line of /proc/self/smaps), measured no more often than its own cost
times CHILD_COW_DUTY_CYCLE allows, as sendChildInfoGeneric() throttles it.
"""

from __future__ import annotations

import mmap
import struct
import time

from ..log import logger

CHILD_COW_DUTY_CYCLE = 100
# keys written, CoW bytes, CoW peak, when the CoW was measured (ms, 0: never), final
_LAYOUT = struct.Struct("<qqqqq")


def private_dirty_bytes() -> int:
    """zmalloc_get_private_dirty(-1): this process's pages written since the fork."""
    try:
        with open("/proc/self/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Private_Dirty:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class ChildInfo:
    """The shared page, and each side's view of it."""

    def __init__(self):
        self.page = mmap.mmap(-1, mmap.PAGESIZE)  # anonymous and MAP_SHARED
        self.keys_total = 0  # current_save_keys_total: the keys when the child forked
        # The child's own bookkeeping (sendChildInfoGeneric()'s statics).
        self._cow = 0
        self._peak = 0
        self._cow_updated = 0.0  # monotonic
        self._cow_wall_ms = 0  # the same moment, as INFO's age needs it
        self._cow_cost = 0.0
        self._sum_cow = 0
        self._readings = 0

    # -- the parent ------------------------------------------------------------------

    def start(self, keys_total: int) -> None:
        """Before the fork: nothing reported yet (resetChildState())."""
        self.keys_total = keys_total
        _LAYOUT.pack_into(self.page, 0, 0, 0, 0, 0, 0)

    def read(self) -> dict:
        """The fields INFO persistence shows for the running child."""
        keys, cow, peak, updated_ms, _ = _LAYOUT.unpack_from(self.page, 0)
        total = self.keys_total
        return {
            "current_cow_peak": peak,
            "current_cow_size": cow,
            "current_cow_size_age": int(time.time() - updated_ms / 1000) if updated_ms else 0,
            "current_fork_perc": "%.2f" % (keys * 100 / total if total else 0.0),
            "current_save_keys_processed": keys,
            "current_save_keys_total": total,
        }

    def final_cow(self) -> int:
        """The CoW size the child reported as it finished (CHILD_INFO_TYPE_RDB_COW_SIZE)."""
        return _LAYOUT.unpack_from(self.page, 0)[4]

    def finish(self) -> None:
        """The child is gone: the current_* fields read zero again."""
        self.keys_total = 0
        _LAYOUT.pack_into(self.page, 0, 0, 0, 0, 0, _LAYOUT.unpack_from(self.page, 0)[4])

    # -- the child -------------------------------------------------------------------

    def progress(self, keys: int) -> None:
        """sendChildInfo(CHILD_INFO_TYPE_CURRENT_INFO, keys): the CoW is measured again
        only once its last measure's cost times the duty cycle has passed."""
        now = time.monotonic()
        if not self._cow_updated or now - self._cow_updated > self._cow_cost * CHILD_COW_DUTY_CYCLE:
            self._measure(now, "RDB", final=False)
        _LAYOUT.pack_into(self.page, 0, keys, self._cow, self._peak, self._cow_wall_ms, 0)

    def report_final(self, keys: int, name: str = "RDB") -> None:
        """At the child's exit: the CoW it cost, logged as Redis's child logs it."""
        self._measure(time.monotonic(), name, final=True)
        _LAYOUT.pack_into(self.page, 0, keys, self._cow, self._peak, self._cow_wall_ms,
                          self._cow)

    def _measure(self, now: float, name: str, final: bool) -> None:
        cow = private_dirty_bytes()
        self._cow_updated = time.monotonic()
        self._cow_wall_ms = int(time.time() * 1000)
        self._cow_cost = self._cow_updated - now
        self._cow = cow
        self._peak = max(self._peak, cow)
        self._sum_cow += cow
        self._readings += 1
        if cow or final:
            log = logger.notice if final else logger.verbose
            log("Fork CoW for %s: current %d MB, peak %d MB, average %d MB"
                % (name, cow >> 20, self._peak >> 20, (self._sum_cow // self._readings) >> 20))
