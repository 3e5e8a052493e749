"""oom-score-adj: the Linux OOM killer's preference for this process (Redis's
setOOMScoreAdj() in config.c). On Kubernetes it decides which pod's server the kernel
kills first under memory pressure, so replicas and fork children can be offered first.

Classes are Redis's: 0 master, 1 replica, 2 background child (BGSAVE, AOF rewrite,
replication payloads). With `oom-score-adj yes`/`relative` the class's value is added
to the score the process had before Vermilion first changed it; `absolute` writes the
value itself; `no` puts that original score back.
"""

from __future__ import annotations

from .log import logger

MASTER, REPLICA, BGCHILD = 0, 1, 2
PROC_FILE = "/proc/self/oom_score_adj"


class OomScore:
    """The one piece of state setOOMScoreAdj() keeps: the score before Vermilion took
    control of it (oom_score_adj_base), while it has."""

    def __init__(self, path: str = PROC_FILE):
        self.path = path
        self.base: int | None = None  # None: never adjusted by us (or given back)

    def apply(self, mode: str, values, process_class: int) -> bool:
        """Write the score for process_class under mode; False (logged as Redis logs
        it) when the kernel refuses, e.g. lowering the score without privileges."""
        if mode != "no":
            if self.base is None:
                self.base = self._read()
                if self.base is None:
                    return False
            value = values[process_class]
            if mode in ("yes", "relative"):
                value += self.base
            value = max(-1000, min(1000, value))
        elif self.base is not None:
            value, self.base = self.base, None
        else:
            return True
        try:
            with open(self.path, "w") as f:
                f.write("%d\n" % value)
        except OSError as exc:
            logger.warning(f"Unable to write oom_score_adj: {exc.strerror}")
            return False
        return True

    def _read(self) -> int | None:
        try:
            with open(self.path) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError) as exc:
            logger.warning(f"Unable to read oom_score_adj: {exc}")
            return None
