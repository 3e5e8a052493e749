"""SLOWLOG: the last `slowlog-max-len` commands slower than `slowlog-log-slower-than` µs."""

import collections
import time

MAX_ARGC = 32  # SLOWLOG_ENTRY_MAX_ARGC
MAX_STRING = 128  # SLOWLOG_ENTRY_MAX_STRING


class SlowLog:
    def __init__(self, max_len: int = 128):
        self.entries: collections.deque = collections.deque(maxlen=max_len)
        self.next_id = 0

    def resize(self, max_len: int) -> None:
        self.entries = collections.deque(self.entries, maxlen=max_len)

    def record(self, client, argv: list[bytes], usec: int) -> None:
        if self.entries.maxlen == 0:
            return
        self.entries.appendleft(
            [self.next_id, int(time.time()), usec, _trim_args(argv),
             client.addr.encode(), client.name]
        )
        self.next_id += 1

    def reset(self) -> None:
        self.entries.clear()


def _trim_args(argv: list[bytes]) -> list[bytes]:
    # slowlogCreateEntry(): at most 32 args, each at most 128 bytes, with the
    # "... (N more arguments)" and "... (N more bytes)" markers Redis uses.
    shown = argv if len(argv) <= MAX_ARGC else argv[: MAX_ARGC - 1]
    out = []
    for arg in shown:
        if len(arg) > MAX_STRING:
            arg = arg[:MAX_STRING] + b"... (%d more bytes)" % (len(arg) - MAX_STRING)
        out.append(arg)
    if len(argv) > MAX_ARGC:
        out.append(b"... (%d more arguments)" % (len(argv) - MAX_ARGC + 1))
    return out
