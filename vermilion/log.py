"""Logging in Redis's format: ``pid:M 25 Nov 2026 14:00:00.123 * message``."""

import os
import sys
import time

LEVELS = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3, "nothing": 4}
_MARKS = ".-*#"


class Logger:
    def __init__(self):
        self.level = LEVELS["notice"]
        self.path = ""
        self.role = "M"

    def configure(self, level: str, path: str) -> None:
        self.level = LEVELS.get(level, self.level)
        self.path = path

    def log(self, level: int, message: str) -> None:
        if level < self.level:
            return
        now = time.time()
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(now))
        self.raw(level, "%d:%s %s.%03d %s %s\n" % (
            os.getpid(), self.role, stamp, int(now * 1000) % 1000, _MARKS[level], message
        ))

    def raw(self, level: int, line: str) -> None:
        """serverLogRaw(LL_RAW): the text as it is, no prefix (the ASCII logo)."""
        if level < self.level:
            return
        if self.path:
            try:
                with open(self.path, "a") as f:
                    f.write(line)
                return
            except OSError:
                pass
        sys.stdout.write(line)
        sys.stdout.flush()

    def debug(self, msg: str) -> None:
        self.log(0, msg)

    def verbose(self, msg: str) -> None:
        self.log(1, msg)

    def notice(self, msg: str) -> None:
        self.log(2, msg)

    def warning(self, msg: str) -> None:
        self.log(3, msg)


logger = Logger()
