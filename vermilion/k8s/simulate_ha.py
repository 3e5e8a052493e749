"""`vermilion k8s simulate failover`: the rendered HA StatefulSet as local processes.

Each pod's two containers run with exactly their rendered commands
(`sh /redis-master/ha.sh redis|sentinel`) over the rendered ConfigMap items, written at
their mount paths under a temporary root, and a directory per claim: three servers and
three real Sentinels (Debian's redis-sentinel). What the cluster would provide is
replaced, and only that:

- the pod's environment: `POD_NAME`/`POD_NAMESPACE` as the downward API gives them,
  `$(VAR)` expanded as the kubelet does, then the variables that name addresses
  (ha.REMAPPED_ENV) remapped to loopback: every pod announces 127.0.0.1 with a free port
  of its own for the server and for its Sentinel, the seed is pod 0's, and the Sentinel
  Service becomes the list of the three Sentinels (ha.sh asks them in turn);
- the container's `--bind 127.0.0.1` (loopback only), as the lifecycle simulator does;
- PATH: a directory standing for the image's, where `redis-server` is vermilion-server
  (or Debian's redis-server with `--server redis-server`, to compare).

Then it writes through redis-py's Sentinel client with `WAIT 1` after each write, kills
the master's server with SIGKILL (the container's crash: its Sentinel sidecar lives on),
measures the seconds until a write succeeds on the new master, restarts the killed
pod's server on its old claim and checks that it comes back as a replica of the new
master holding the new master's data. Nothing acknowledged by WAIT may be lost.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import ha, manifests
from .simulate import _free_port, _server_binary, run_probe

NAMESPACE = "default"


def _image_bin(root: Path, server: str) -> Path:
    """The image's PATH entries: redis-server is Vermilion (or Debian's, to compare)."""
    bin_dir = root / "image-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    targets = {
        "redis-server": _server_binary() if server == "vermilion" else "/usr/bin/redis-server",
        "redis-sentinel": "/usr/bin/redis-sentinel",
        "redis-cli": "/usr/bin/redis-cli",
    }
    for name, target in targets.items():
        link = bin_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return bin_dir


def _expand(value: str, env: dict) -> str:
    # The kubelet's $(VAR) expansion of variables defined earlier in the list.
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: env.get(m.group(1), m.group(0)), value)


@dataclass
class HAPod:
    ordinal: int
    cluster: "HACluster"
    redis_port: int = 0
    sentinel_port: int = 0
    redis_proc: subprocess.Popen | None = None
    sentinel_proc: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return f"{self.cluster.options.name}-{self.ordinal}"

    @property
    def claim(self) -> Path:
        return self.cluster.root / "claims" / f"data-{self.name}"

    @property
    def config_dir(self) -> Path:
        return self.cluster.root / "pods" / self.name / "config"

    def container(self, name: str) -> dict:
        pod = self.cluster.statefulset["spec"]["template"]["spec"]
        return next(c for c in pod["containers"] if c["name"] == name)

    def mounts(self) -> dict[str, Path]:
        mounts = {}
        for mount in self.container("redis")["volumeMounts"]:
            mounts[mount["mountPath"]] = self.claim if mount["name"] == "data" else self.config_dir
        # Longest first: /redis-master-data before /redis-master.
        return dict(sorted(mounts.items(), key=lambda kv: -len(kv[0])))

    def remap_paths(self, text: str) -> str:
        for container_path, host_path in self.mounts().items():
            text = text.replace(container_path, str(host_path))
        return text

    def materialise(self) -> None:
        self.claim.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        pod = self.cluster.statefulset["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "config")
        for item in volume["configMap"]["items"]:
            text = self.cluster.configmap["data"][item["key"]]
            (self.config_dir / item["path"]).write_text(self.remap_paths(text))

    def env(self, container: str) -> dict:
        c = self.cluster
        remapped = {
            "VERMILION_ANNOUNCE_HOST": "127.0.0.1",
            "VERMILION_PORT": str(self.redis_port),
            "VERMILION_SENTINEL_PORT": str(self.sentinel_port),
            "VERMILION_SEED": f"127.0.0.1:{c.pods[0].redis_port}",
            "VERMILION_SENTINELS": " ".join(f"127.0.0.1:{p.sentinel_port}" for p in c.pods),
        }
        assert set(remapped) == set(ha.REMAPPED_ENV)
        env = {}
        for item in self.container(container)["env"]:
            if "valueFrom" in item:
                path = item["valueFrom"].get("fieldRef", {}).get("fieldPath")
                value = {"metadata.name": self.name, "metadata.namespace": NAMESPACE}.get(path)
                if value is None:
                    continue
            else:
                value = _expand(item["value"], env)
            env[item["name"]] = remapped.get(item["name"], value)
        base = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR")}
        base["PATH"] = f"{c.bin_dir}:/usr/bin:/bin"
        return {**base, **env}

    def command(self, container: str) -> list[str]:
        spec = self.container(container)
        cmd = [self.remap_paths(a) for a in spec["command"] + spec.get("args", [])]
        return cmd + ["--bind", "127.0.0.1"]

    def _start(self, container: str) -> subprocess.Popen:
        log = open(self.cluster.root / f"{self.name}-{container}.log", "ab")
        try:
            return subprocess.Popen(self.command(container), env=self.env(container),
                                    stdout=log, stderr=subprocess.STDOUT, cwd=self.claim)
        finally:
            log.close()

    def start_redis(self) -> None:
        self.redis_proc = self._start("redis")

    def start_sentinel(self) -> None:
        self.sentinel_proc = self._start("sentinel")

    def probe(self, kind: str = "readinessProbe", container: str = "redis") -> tuple[bool, float]:
        cmd = [self.remap_paths(a) for a in self.container(container)[kind]["exec"]["command"]]
        return run_probe(cmd, self.env(container))

    def client(self, **kw):
        import redis

        kw.setdefault("socket_timeout", 2)
        return redis.Redis(host="127.0.0.1", port=self.redis_port, **kw)

    def sentinel_client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.sentinel_port, socket_timeout=2,
                           decode_responses=True)

    def role(self) -> str | None:
        try:
            return self.client().execute_command("ROLE")[0].decode()
        except Exception:
            return None

    def log(self, container: str = "redis") -> str:
        path = self.cluster.root / f"{self.name}-{container}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _stop(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class HACluster:
    root: Path
    server: str = "vermilion"
    down_after_ms: int = 1000
    replicas: int = 3
    out: callable = print
    pods: list[HAPod] = field(default_factory=list)

    def __post_init__(self):
        # A bigger maxmemory than the article's 2mb: the writes here must not be evicted.
        self.options = manifests.Options(replicas=self.replicas, maxmemory="64mb",
                                         down_after_ms=self.down_after_ms,
                                         failover_timeout_ms=max(3000, 3 * self.down_after_ms))
        assert self.options.ha
        self.statefulset = ha.statefulset(self.options)
        self.configmap = ha.configmap(self.options)
        self.bin_dir = _image_bin(self.root, self.server)
        self.pods = [HAPod(i, self) for i in range(self.replicas)]
        for pod in self.pods:
            pod.redis_port, pod.sentinel_port = _free_port(), _free_port()

    @property
    def master_name(self) -> str:
        return self.options.name

    def start(self, timeout: float = 30.0) -> float:
        """Every pod at once (podManagementPolicy Parallel); returns the seconds until all
        servers are ready and every Sentinel knows every replica and peer."""
        t0 = time.monotonic()
        for pod in self.pods:
            pod.materialise()
        for pod in self.pods:
            pod.start_sentinel()
            pod.start_redis()
        self.wait(lambda: all(p.probe()[0] for p in self.pods), timeout, "servers ready")
        self.wait(self.sentinels_converged, timeout, "Sentinels converged")
        return time.monotonic() - t0

    def sentinels_converged(self) -> bool:
        others = len(self.pods) - 1
        for pod in self.pods:
            try:
                s = pod.sentinel_client()
                replicas = s.execute_command("SENTINEL", "REPLICAS", self.master_name)
                peers = s.execute_command("SENTINEL", "SENTINELS", self.master_name)
            except Exception:
                return False
            ok_replicas = [r for r in replicas if "s_down" not in _flags(r)]
            if len(ok_replicas) < others or len(peers) < others:
                return False
        return True

    def wait(self, predicate, timeout: float, what: str) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            for pod in self.pods:
                if pod.redis_proc is not None and pod.redis_proc.poll() is not None \
                        and pod.redis_proc.returncode not in (-9, 0):
                    raise RuntimeError(f"{pod.name} exited {pod.redis_proc.returncode}:\n"
                                       + pod.log()[-3000:])
            if predicate():
                return time.monotonic() - t0
            time.sleep(0.05)
        raise RuntimeError(f"timed out after {timeout}s waiting for: {what}\n" + self.logs())

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} {c}\n{p.log(c)[-2500:]}" for p in self.pods
                         for c in ("redis", "sentinel"))

    def master(self) -> HAPod:
        s = self.sentinel_for_clients()
        host, port = s.discover_master(self.master_name)
        return next(p for p in self.pods if p.redis_port == int(port))

    def sentinel_for_clients(self):
        from redis.sentinel import Sentinel

        return Sentinel([("127.0.0.1", p.sentinel_port) for p in self.pods],
                        socket_timeout=0.5, socket_connect_timeout=0.5)

    def shutdown(self) -> None:
        for pod in self.pods:
            _stop(pod.redis_proc)
        for pod in self.pods:
            _stop(pod.sentinel_proc)

    def kill_all(self) -> None:
        for pod in self.pods:
            for proc in (pod.redis_proc, pod.sentinel_proc):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _flags(entry) -> str:
    if isinstance(entry, dict):
        return entry.get("flags", "")
    items = list(entry)
    return dict(zip(items[::2], items[1::2])).get("flags", "")


class Writer(threading.Thread):
    """Writes k:<n> = n through the Sentinel-aware client, `WAIT 1 <ms>` after each;
    a write counts as acknowledged when WAIT says a replica has it."""

    def __init__(self, cluster: HACluster, prefix: str):
        super().__init__(daemon=True)
        self.cluster, self.prefix = cluster, prefix
        self.acked: dict[bytes, bytes] = {}
        self.successes: list[tuple[float, float, bool]] = []  # (sent, done, acked)
        self.errors: dict[str, int] = {}
        self.stop_flag = threading.Event()
        self.n = 0

    def run(self):
        from redis.sentinel import Sentinel

        sentinel = Sentinel([("127.0.0.1", p.sentinel_port) for p in self.cluster.pods],
                            socket_timeout=0.5, socket_connect_timeout=0.5)
        client = sentinel.master_for(self.cluster.master_name, socket_timeout=1.0,
                                     socket_connect_timeout=0.5)
        while not self.stop_flag.is_set():
            key, value = f"{self.prefix}:{self.n}".encode(), str(self.n).encode()
            sent = time.monotonic()
            try:
                client.set(key, value)
                acks = client.execute_command("WAIT", 1, 1000)
            except Exception as exc:  # connection refused, timeouts, READONLY, no master
                name = type(exc).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                time.sleep(0.02)
                continue
            self.n += 1
            if acks >= 1:
                self.acked[key] = value
            self.successes.append((sent, time.monotonic(), acks >= 1))
            time.sleep(0.002)


def failover_round(cluster: HACluster, round_no: int, out) -> dict:
    old = cluster.master()
    writer = Writer(cluster, f"r{round_no}")
    writer.start()
    cluster.wait(lambda: len(writer.acked) >= 100, 30, "100 acknowledged writes")
    killed_at = time.monotonic()
    old.redis_proc.kill()
    old.redis_proc.wait()
    out(f"round {round_no}: SIGKILL {old.name} (master) after {len(writer.acked)} "
        f"acknowledged writes")
    # Readiness of a replica is its master link: with the master gone, not ready.
    survivor = next(p for p in cluster.pods if p is not old)
    survivor_ready = survivor.probe()[0] if survivor.role() == "slave" else None
    cluster.wait(lambda: any(s > killed_at for s, _, _ in writer.successes), 30,
                 "a write on a new master")
    first_write = min(d for s, d, _ in writer.successes if s > killed_at) - killed_at
    cluster.wait(lambda: any(s > killed_at and a for s, _, a in writer.successes), 30,
                 "a WAIT-acknowledged write on the new master")
    first_acked = min(d for s, d, a in writer.successes if s > killed_at and a) - killed_at
    new = cluster.master()
    if survivor_ready is not None:
        out(f"round {round_no}: readiness of replica {survivor.name} with its master killed: "
            + ("READY (wrong)" if survivor_ready else "not ready"))
    out(f"round {round_no}: {new.name} is master; first write {first_write:.2f} s after the "
        f"kill, first WAIT-acknowledged write {first_acked:.2f} s "
        f"(client errors meanwhile: {writer.errors})")

    # The killed pod's container restarts on its claim: ha.sh asks the Sentinels.
    old.start_redis()
    cluster.wait(lambda: old.role() is not None, 30, f"{old.name} answering")
    first_role = old.role()
    cluster.wait(lambda: old.probe()[0], 30, f"{old.name} ready (master link up)")
    rejoined = time.monotonic() - killed_at
    writer.stop_flag.set()
    writer.join(10)
    # The Sentinels may still be moving the restarted pod to the new master (a first
    # REPLICAOF from ha.sh, then theirs): it must end up following the new master. The
    # master is asked again each time: two Sentinels that started failovers in two
    # epochs end with the later epoch's choice, which may be another replica.
    def follows_new():
        nonlocal new
        try:
            new = cluster.master()
        except Exception:  # (no master known for a moment)
            return False
        role = old.client().execute_command("ROLE")
        return role[0] == b"slave" and int(role[2]) == new.redis_port \
            and role[3] == b"connected"
    cluster.wait(follows_new, 30, f"{old.name} replicating from {new.name}")

    # Until the old pod has applied everything the master has.
    def caught_up():
        info = new.client().info("replication")
        offset = info.get("master_repl_offset")
        return old.client().info("replication").get("slave_repl_offset") == offset
    cluster.wait(caught_up, 30, f"{old.name} caught up with {new.name}")
    master_data = new.client()
    lost_on_master = [k for k, v in writer.acked.items() if master_data.get(k) != v]
    old_client = old.client()
    keys = [k for k in master_data.scan_iter(f"r{round_no}:*", count=1000)]
    differs = [k for k in keys if old_client.get(k) != master_data.get(k)]
    old_role = old_client.execute_command("ROLE")
    follows = (old_role[0] == b"slave" and int(old_role[2]) == new.redis_port)
    out(f"round {round_no}: {old.name} restarted as {first_role} (never a second master), "
        f"ready as a replica of {new.name} {rejoined:.2f} s after the kill; "
        f"{len(keys) - len(differs)}/{len(keys)} keys of the new master identical on it")
    out(f"round {round_no}: {len(writer.acked) - len(lost_on_master)}/{len(writer.acked)} "
        f"WAIT-acknowledged writes on the new master"
        + (f"; LOST {lost_on_master[:5]}" if lost_on_master else ""))
    return {"first_write": first_write, "first_acked": first_acked, "rejoined": rejoined,
            "lost": len(lost_on_master), "acked": len(writer.acked),
            "old_came_back_as": first_role, "old_follows_new": follows,
            "replica_differs": len(differs), "old": old.name, "new": new.name,
            "survivor_ready_without_master": survivor_ready}


def measure_probes(cluster: HACluster, out, n: int = 20) -> dict:
    """CPU of one run of each probe (wait4's rusage of the probe's process tree)."""
    figures = {}
    pod = cluster.pods[0]
    for label, kind, container in (("ready", "readinessProbe", "redis"),
                                   ("live", "livenessProbe", "redis"),
                                   ("sentinel", "livenessProbe", "sentinel")):
        cpu = [pod.probe(kind, container)[1] for _ in range(n)]
        figures[label] = sum(cpu) / n
    vping = Path(sys.executable).parent / "vermilion"
    cpu = [run_probe([str(vping), "ping", "-p", str(pod.redis_port)])[1] for _ in range(5)]
    figures["vermilion ping"] = sum(cpu) / len(cpu)
    out("probe CPU per run: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in figures.items()))
    return figures


def run_failover(root: Path, server: str = "vermilion", rounds: int = 1,
                 down_after_ms: int = 1000, out=print, probes: bool = True) -> dict:
    cluster = HACluster(root, server=server, down_after_ms=down_after_ms, out=out)
    try:
        took = cluster.start()
        out(f"{server}: 3 pods (server + Sentinel each) ready and Sentinels converged in "
            f"{took:.1f} s; master {cluster.master().name}")
        result = {"rounds": [], "server": server}
        if probes:
            result["probe_cpu"] = measure_probes(cluster, out)
        for r in range(1, rounds + 1):
            result["rounds"].append(failover_round(cluster, r, out))
            if r < rounds:
                cluster.wait(cluster.sentinels_converged, 30, "Sentinels converged again")
        firsts = [r["first_write"] for r in result["rounds"]]
        result["ok"] = all(r["lost"] == 0 and r["old_follows_new"] and r["replica_differs"] == 0
                           and r["old_came_back_as"] == "slave" for r in result["rounds"])
        out(f"{server}: new master writable after the kill: "
            + ", ".join(f"{f:.2f}" for f in firsts) + " s"
            + (f" (max {max(firsts):.2f})" if len(firsts) > 1 else "")
            + ("; nothing acknowledged lost" if result["ok"] else "; FAILED"))
        cluster.shutdown()
        return result
    finally:
        cluster.kill_all()


def main(args) -> int:
    with tempfile.TemporaryDirectory(prefix="vermilion-ha-") as tmp:
        try:
            result = run_failover(Path(tmp), server=args.server, rounds=args.rounds,
                                  down_after_ms=args.down_after_ms)
        except RuntimeError as exc:
            print(f"failover simulation failed: {exc}", file=sys.stderr)
            return 1
    return 0 if result["ok"] else 1
