"""SLOWLOG: the last `slowlog-max-len` commands slower than `slowlog-log-slower-than` µs."""

import collections
import time

MAX_ARGC = 32  # SLOWLOG_ENTRY_MAX_ARGC
MAX_STRING = 128  # SLOWLOG_ENTRY_MAX_STRING


class SlowLog:
    """The dispatcher calls record() for every command at or above the server's
    combined threshold; this decides between the slow log itself and the latency
    monitor's "command" / "fast-command" events (server.c call())."""

    def __init__(self, max_len: int = 128):
        self.entries: collections.deque = collections.deque(maxlen=max_len)
        self.next_id = 0
        self.log_threshold = 10000  # slowlog-log-slower-than, µs; -1 = off
        self.latency = None  # LatencyMonitor, when latency-monitor-threshold is set
        self.latency_threshold_ms = 0

    def resize(self, max_len: int) -> None:
        self.entries = collections.deque(self.entries, maxlen=max_len)

    def record(self, client, argv: list[bytes], usec: int) -> None:
        if self.latency is not None and usec >= self.latency_threshold_ms * 1000:
            fast = client.cmd is not None and "fast" in client.cmd.flags
            self.latency.add_sample("fast-command" if fast else "command", usec // 1000)
        if self.entries.maxlen == 0 or not 0 <= self.log_threshold <= usec:
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


class LatencyMonitor:
    """latency.c: per event, the last 160 samples (one per second) of spikes at or
    above latency-monitor-threshold milliseconds, and the all-time maximum."""

    HISTORY = 160  # LATENCY_TS_LEN

    def __init__(self):
        self.events: dict[str, dict] = {}

    def add_sample(self, event: str, ms: int) -> None:
        now = int(time.time())
        ev = self.events.get(event)
        if ev is None:
            ev = self.events[event] = {"samples": collections.deque(maxlen=self.HISTORY), "max": 0}
        ev["max"] = max(ev["max"], ms)
        samples = ev["samples"]
        # latencyAddSample(): samples in the same second keep the highest value.
        if samples and samples[-1][0] == now:
            if ms > samples[-1][1]:
                samples[-1] = (now, ms)
            return
        samples.append((now, ms))

    def add_if_needed(self, threshold_ms: int, event: str, ms: int) -> None:
        if threshold_ms and ms >= threshold_ms:
            self.add_sample(event, ms)

    def latest(self) -> list:
        out = []
        for name, ev in self.events.items():
            if ev["samples"]:
                ts, ms = ev["samples"][-1]
                out.append([name.encode(), ts, ms, ev["max"]])
        return out

    def history(self, event: str) -> list:
        ev = self.events.get(event)
        return [[ts, ms] for ts, ms in ev["samples"]] if ev else []

    def reset(self, names: list[str] | None = None) -> int:
        if names is None:
            count = len(self.events)
            self.events.clear()
            return count
        return sum(1 for name in names if self.events.pop(name, None) is not None)
