"""Memory and eviction, real redis-server and vermilion-server side by side in one run.

1. Accounting vs reality: load 1M string keys, a 1M-field hash, a 1M-member sorted
   set (each into a fresh server) and compare the growth of used_memory with the growth
   of the process's RSS; Redis's bytes per key / element on the same data beside ours.
2. LRU quality (Redis's "LRU test"): a hot set (20% of the keys, 80% of the reads) and
   a cold set under a maxmemory that fits about half of the keys; a miss is answered
   by a SET, as a cache would. Reported: the fraction of hot-set reads that hit once
   the cache is warm, for allkeys-lru / allkeys-lfu with maxmemory-samples 5 and 10.
3. The seed configuration (2mb, allkeys-lru): what 100k SETs leave in each server.
(The throughput cost of eviction is measured by bench/run.py, `make bench`.)

    .venv/bin/python bench/memory.py            # everything, prints markdown
    .venv/bin/python bench/memory.py --write    # and puts the section into BENCHMARKS.md
    .venv/bin/python bench/memory.py --quick    # smaller sizes, a quicker look
"""

import argparse
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).parent))
from harness import ROOT, VERMILION, free_port  # noqa: E402

SECTION = "## Memory and eviction (bench/memory.py)"


def servers() -> list[tuple[str, str]]:
    return [("redis", shutil.which("redis-server")), ("vermilion", str(VERMILION))]


class Server:
    def __init__(self, name: str, binary: str, workdir: str, args=()):
        self.name = name
        self.port = free_port()
        self.log = open(Path(workdir) / f"{name}-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", *args], cwd=workdir, stdout=self.log,
            stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                self.client().ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise SystemExit(f"{name} did not start")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=120)

    def rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def send_batches(port: int, commands) -> None:
    """Pipeline raw RESP commands in batches and drain the replies."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        batch, n = [], 0
        for argv in commands:
            batch.append(b"*%d\r\n" % len(argv)
                         + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv))
            n += 1
            if n == 5000:
                _flush(s, batch, n)
                batch, n = [], 0
        if n:
            _flush(s, batch, n)


def _flush(s, batch, n) -> None:
    s.sendall(b"".join(batch))
    seen, buf = 0, b""
    while seen < n:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk
        lines = buf.count(b"\r\n")
        if lines >= n:  # every reply here is one line (+OK / :1)
            seen = lines
    if b"-" in buf[:1] or b"\r\n-" in buf:
        raise SystemExit("error reply: %r" % buf[:200])


DATASETS = {
    "1M strings (SET key:N, 10-byte values)":
        lambda n: ([b"SET", b"key:%07d" % i, b"value:%04d" % (i % 10000)] for i in range(n)),
    "1M-field hash (HSET h field:N value)":
        lambda n: ([b"HSET", b"h", b"field:%07d" % i, b"value:%04d" % (i % 10000)]
                   for i in range(n)),
    "1M-member sorted set (ZADD z N member:N)":
        lambda n: ([b"ZADD", b"z", b"%d" % i, b"member:%07d" % i] for i in range(n)),
}


def accounting(workdir: str, n: int) -> list[str]:
    rows = ["| dataset | redis bytes/elem | redis Δused / ΔRSS | vermilion bytes/elem (Δused) "
            "| vermilion ΔRSS/elem | Δused / ΔRSS | within ±25% |",
            "|---|---:|---:|---:|---:|---:|:---:|"]
    for label, make in DATASETS.items():
        res = growth(workdir, lambda: make(n))
        (ru, rr), (vu, vr) = res["redis"], res["vermilion"]
        ratio = vu / vr if vr else 0.0
        ok = "✓" if 0.75 <= ratio <= 1.25 else "✗"
        label = label.replace("1M", _count(n))
        rows.append(f"| {label} | {ru / n:.0f} | {ru / rr if rr else 0:.2f} "
                    f"| {vu / n:.0f} | {vr / n:.0f} | {ratio:.2f} | {ok} |")
        print(rows[-1], flush=True)
    return rows


def growth(workdir: str, commands) -> dict[str, tuple[int, int]]:
    """Each server's growth of used_memory and of its RSS, in bytes, when the commands
    `commands()` yields (argv lists answered by one-line replies) are pipelined into a
    fresh, empty server."""
    res = {}
    for name, binary in servers():
        server = Server(name, binary, workdir)
        try:
            c = server.client()
            time.sleep(0.3)
            used0, rss0 = c.info("memory")["used_memory"], server.rss()
            send_batches(server.port, commands())
            time.sleep(0.5)  # a cron tick: client buffers settle
            used1, rss1 = c.info("memory")["used_memory"], server.rss()
            res[name] = (used1 - used0, rss1 - rss0)
        finally:
            server.stop()
    return res


def _count(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n:,}"


def lru_quality(workdir: str, keys: int, seconds: float) -> list[str]:
    rows = ["| policy | samples | redis hot hit rate (keys held) | vermilion hot hit rate "
            "(keys held) | difference |",
            "|---|---:|---:|---:|---:|"]
    for policy in ("allkeys-lru", "allkeys-lfu"):
        for samples in (5, 10):
            rates = {}
            for name, binary in servers():
                server = Server(name, binary, workdir)
                try:
                    rates[name] = _lru_run(server.client(), policy, samples, keys, seconds)
                finally:
                    server.stop()
            (rrate, rheld), (vrate, vheld) = rates["redis"], rates["vermilion"]
            diff = (vrate - rrate) * 100
            rows.append(f"| {policy} | {samples} | {rrate:.1%} ({rheld:,}) | "
                        f"{vrate:.1%} ({vheld:,}) | {diff:+.1f} pts |")
            print(rows[-1], flush=True)
    return rows


def _lru_run(c, policy: str, samples: int, keys: int, seconds: float) -> tuple[float, int]:
    value = b"x" * 100
    hot = keys // 5
    c.config_set("maxmemory-policy", policy)
    c.config_set("maxmemory-samples", samples)
    base = c.info("memory")["used_memory"]
    p = c.pipeline(transaction=False)
    for i in range(keys):
        p.set(b"k:%d" % i, value)
    p.execute()
    full = c.info("memory")["used_memory"]
    rng = random.Random(42)
    # Calibrate the limit until the cache holds about half of the keys (per-key costs
    # and table sizes differ between the servers; the algorithm is what is compared).
    # Python dict tables regrow in steps under churn, so the count is averaged.
    limit = base + (full - base) // 2
    for _ in range(6):
        c.config_set("maxmemory", limit)
        counts = []
        for _ in range(8):
            _lru_traffic(c, rng, hot, keys, value, 0.1)
            counts.append(c.dbsize())
        held = sum(counts) / len(counts) / keys
        if abs(held - 0.5) < 0.015:
            break
        limit = base + int((limit - base) * (1 + (0.5 / held - 1) * 0.7))
    hits = reads = 0
    start = time.time()
    while time.time() - start < seconds:
        batch, replies = _lru_traffic(c, rng, hot, keys, value, 0)
        if time.time() - start > seconds / 2:  # warm: measure the second half only
            for k, reply in zip(batch, replies):
                if k < hot:
                    reads += 1
                    hits += reply is not None
    return (hits / reads if reads else 0.0), c.dbsize()


def _lru_traffic(c, rng, hot, keys, value, seconds):
    """One batch (seconds=0) or batches for `seconds`: 80% of reads on the hot set, a
    miss answered by a SET."""
    start = time.time()
    while True:
        batch = [rng.randrange(hot) if rng.random() < 0.8 else rng.randrange(hot, keys)
                 for _ in range(200)]
        p = c.pipeline(transaction=False)
        for k in batch:
            p.get(b"k:%d" % k)
        replies = p.execute()
        p = c.pipeline(transaction=False)
        for k, reply in zip(batch, replies):
            if reply is None:
                p.set(b"k:%d" % k, value)
        p.execute(raise_on_error=False)
        if time.time() - start >= seconds:
            return batch, replies


def seed_config(workdir: str) -> list[str]:
    """The seed's ConfigMap: maxmemory 2mb / allkeys-lru, 100k SETs of 100 bytes."""
    rows = ["| server | seconds | keys kept | evicted | used_memory | last 100 keys kept |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, binary in servers():
        server = Server(name, binary, workdir, ["--maxmemory", "2mb",
                                                "--maxmemory-policy", "allkeys-lru"])
        try:
            c = server.client()
            value = b"v" * 100
            start = time.time()
            for first in range(0, 100_000, 2000):
                p = c.pipeline(transaction=False)
                for i in range(first, first + 2000):
                    p.set(b"key:%d" % i, value)
                p.execute()
            took = time.time() - start
            last = sum(x is not None for x in c.mget([b"key:%d" % i
                                                       for i in range(99_900, 100_000)]))
            rows.append(f"| {name} | {took:.1f} | {c.dbsize():,} | "
                        f"{c.info('stats')['evicted_keys']:,} | "
                        f"{c.info('memory')['used_memory']:,} | {last} |")
            print(rows[-1], flush=True)
        finally:
            server.stop()
    return rows


def write_section(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    start = doc.find(SECTION)
    if start >= 0:
        end = doc.find("\n## ", start + len(SECTION))
        doc = doc[:start] + text + (doc[end + 1:] if end >= 0 else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 200_000 if args.quick else 1_000_000
    lru_keys, lru_seconds = (10_000, 4.0) if args.quick else (20_000, 10.0)
    with tempfile.TemporaryDirectory() as workdir:
        acc = accounting(workdir, n)
        lru = lru_quality(workdir, lru_keys, lru_seconds)
        seed = seed_config(workdir)
    text = "\n".join([
        SECTION, "",
        f"Generated by `bench/memory.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f"; a fresh server per dataset and per run.", "",
        "### used_memory against RSS", "",
        f"{_count(n)} elements loaded by pipelined commands into an empty server. used_memory "
        "is Vermilion's incremental estimate (memory.py); the target is Δused_memory within "
        "±25% of ΔRSS. Redis's own bytes per element (its used_memory, jemalloc) beside it.",
        "", *acc, "",
        "### LRU quality", "",
        f"{lru_keys:,} keys of 100 bytes, 20% of them hot and read 80% of the time; "
        "maxmemory calibrated per server until the cache holds about half of them (the "
        "servers' per-key costs differ; the algorithm is compared); a miss is followed by a "
        "SET. Hit rate of "
        f"hot-set reads over the second half of a {lru_seconds:.0f} s run. Target: "
        "Vermilion ≥ Redis − 2 points.", "",
        *lru, "",
        "### The seed configuration", "",
        "`maxmemory 2mb` / `allkeys-lru`, 100,000 SETs of 100-byte values pipelined by "
        "2,000. Both servers count the 2 MB on top of the same 876 KB base (Vermilion "
        "uses Redis's used_memory_startup as its documented base); a Python key costs "
        "about twice a Redis key, so Vermilion keeps fewer keys in the same budget.", "",
        *seed, "",
    ])
    print()
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
