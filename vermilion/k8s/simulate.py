"""The pod lifecycle of the rendered StatefulSet, simulated with real server processes.

There may be no cluster at hand, so this plays the kubelet's part with the rendered
objects themselves: each pod's ConfigMap item is materialised as a file at its mount
path and each claim is a directory, both remapped under a temporary root; the server is
started with exactly the container's command (``redis-server`` is our image's alias of
``vermilion-server``); stopping sends SIGTERM and waits the pod's grace period, as the
kubelet does. Loopback only: the pod's ``bind``/``port`` are overridden to 127.0.0.1 and
a free port, the one liberty taken with the container's command line.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import manifests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_binary() -> str:
    candidate = Path(sys.executable).parent / "vermilion-server"
    return str(candidate) if candidate.exists() else shutil.which("vermilion-server") or "vermilion-server"


def remap_port(command: list[str], port: int) -> list[str]:
    """A probe's command with the container port (`-p 6379`) replaced by the pod's."""
    out = list(command)
    for i, arg in enumerate(out[:-1]):
        if arg == "-p" and out[i + 1] == str(manifests.PORT):
            out[i + 1] = str(port)
    return out


def run_probe(command: list[str], env: dict | None = None,
              timeout: float = 3.0) -> tuple[bool, float]:
    """Run an exec probe as the kubelet does: success is exit code 0. Returns (ok, CPU
    seconds the probe's process and its children used), from wait4's rusage."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode == 0, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            proc.kill()
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return False, usage.ru_utime + usage.ru_stime
        time.sleep(0.002)


@dataclass
class Pod:
    name: str
    claim: Path
    root: Path
    statefulset: dict
    configmap: dict
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def container(self) -> dict:
        return self.statefulset["spec"]["template"]["spec"]["containers"][0]

    @property
    def grace_seconds(self) -> int:
        return self.statefulset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]

    def _mounts(self) -> dict[str, Path]:
        """Container mount path → host directory for this pod."""
        mounts = {}
        for mount in self.container["volumeMounts"]:
            if mount["name"] == "data":
                mounts[mount["mountPath"]] = self.claim
            else:
                mounts[mount["mountPath"]] = self.root / self.name / mount["name"]
        return mounts

    def _materialise_config(self, mounts: dict[str, Path]) -> None:
        volumes = {v["name"]: v for v in self.statefulset["spec"]["template"]["spec"]["volumes"]}
        config_mount = next(m for m in self.container["volumeMounts"] if m["name"] == "config")
        item = volumes["config"]["configMap"]["items"][0]
        text = self.configmap["data"][item["key"]]
        for container_path, host_path in mounts.items():
            text = text.replace(container_path, str(host_path))
        target = mounts[config_mount["mountPath"]] / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def start(self) -> None:
        mounts = self._mounts()
        for path in mounts.values():
            path.mkdir(parents=True, exist_ok=True)
        self._materialise_config(mounts)
        command = list(self.container["command"]) + list(self.container.get("args", []))
        if command[0] == "redis-server":
            command[0] = _server_binary()
        for i, arg in enumerate(command[1:], 1):
            for container_path, host_path in mounts.items():
                if arg.startswith(container_path + "/"):
                    command[i] = str(host_path) + arg[len(container_path):]
        self.port = _free_port()
        command += ["--port", str(self.port), "--bind", "127.0.0.1"]
        self.log_path = self.root / f"{self.name}.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.root)
        log.close()

    def probe(self, kind: str = "readinessProbe") -> bool:
        """The container's own probe command (`-p 6379` remapped to the pod's port)."""
        return run_probe(remap_port(self.container[kind]["exec"]["command"], self.port))[0]

    def wait_ready(self, timeout: float = 30.0) -> float:
        start = time.time()
        while time.time() - start < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()}")
            if self.probe():
                return time.time() - start
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout}s")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after the grace period — the kubelet's stop."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(self.grace_seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9

    def crash(self) -> None:
        self.proc.kill()
        self.proc.wait()


@dataclass
class StatefulSetSim:
    """A StatefulSet's pods and retained claims under one temp root."""

    root: Path
    options: manifests.Options = field(default_factory=manifests.Options)
    pods: list[Pod] = field(default_factory=list)

    def __post_init__(self):
        self.statefulset = manifests.statefulset(self.options)
        self.configmap = manifests.configmap(self.options)
        self.claim_template = self.statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]

    def claim_dir(self, ordinal: int) -> Path:
        # volumeClaimTemplates name claims <template>-<statefulset>-<ordinal>.
        return self.root / "claims" / f"{self.claim_template}-{self.options.name}-{ordinal}"

    def pod(self, ordinal: int, claim: Path | None = None) -> Pod:
        return Pod(f"{self.options.name}-{ordinal}", claim or self.claim_dir(ordinal),
                   self.root / "pods", self.statefulset, self.configmap)

    def scale(self, replicas: int) -> None:
        # Pods start in order and stop in reverse order (OrderedReady); claims stay.
        while len(self.pods) < replicas:
            pod = self.pod(len(self.pods))
            pod.start()
            pod.wait_ready()
            self.pods.append(pod)
        while len(self.pods) > replicas:
            self.pods.pop().stop()

    def delete(self) -> None:
        while self.pods:
            self.pods.pop().stop()

    def kill_all(self) -> None:
        """Cleanup after a failed scenario: no process outlives the simulation."""
        for pod in self.pods:
            if pod.proc is not None and pod.proc.poll() is None:
                pod.proc.kill()
                pod.proc.wait()


def run_scenarios(root: Path, out=print) -> bool:
    """Every lifecycle scenario; prints what happened, returns True when nothing was lost."""
    sims: list[StatefulSetSim] = []
    try:
        return _run_scenarios(root, out, sims)
    finally:
        for sim in sims:
            sim.kill_all()


def _run_scenarios(root: Path, out, sims: list) -> bool:
    import redis

    ok = True

    def client(pod):
        return redis.Redis(host="127.0.0.1", port=pod.port)

    def check(label, pod, expected):
        nonlocal ok
        got = {k: client(pod).get(k) for k in expected}
        lost = [k for k, v in expected.items() if got[k] != v]
        ok = ok and not lost
        out(f"{label}: {len(expected) - len(lost)}/{len(expected)} acknowledged writes readable"
            + (f"; LOST {lost[:5]}" if lost else ""))

    sim = StatefulSetSim(root)
    sims.append(sim)
    sim.scale(1)
    pod = sim.pods[0]
    data = {}
    for i in range(200):
        client(pod).set(f"key:{i}", i)
        data[f"key:{i}".encode()] = str(i).encode()

    code = pod.stop()
    out(f"rolling restart: {pod.name} stopped with exit code {code}")
    pod.start()
    pod.wait_ready()
    check("rolling restart", pod, data)

    client(pod).set("after-restart", "1")
    data[b"after-restart"] = b"1"
    pod.crash()
    out(f"crash: {pod.name} killed with SIGKILL")
    pod.start()
    pod.wait_ready()
    check("crash", pod, data)

    pod.stop()
    moved = root / "elsewhere" / pod.claim.name
    shutil.move(str(pod.claim), str(moved))
    pod.claim = moved
    out(f"reschedule: claim re-attached at {moved}")
    pod.start()
    pod.wait_ready()
    check("reschedule", pod, data)
    pod.stop()
    shutil.move(str(moved), str(sim.claim_dir(0)))
    pod.claim = sim.claim_dir(0)
    pod.start()
    pod.wait_ready()

    sim.scale(3)
    client(sim.pods[2]).set("only-on-pod-2", "x")
    out("scale 1→3: pods " + ", ".join(p.name for p in sim.pods) + " each on its own claim")
    sim.scale(1)
    retained = sorted(p.name for p in (root / "claims").iterdir())
    out(f"scale 3→1: claims retained: {retained}")
    sim.scale(3)
    check("scale 1→3→1→3 (pod-2's claim re-attached)", sim.pods[2], {b"only-on-pod-2": b"x"})
    sim.scale(1)

    sim.delete()
    out("delete StatefulSet: all pods stopped, claims retained")
    sim = StatefulSetSim(root)
    sims.append(sim)
    sim.scale(1)
    check("recreate StatefulSet", sim.pods[0], data)
    sim.delete()
    out("all scenarios: " + ("nothing lost" if ok else "DATA LOST"))
    return ok


def main(args) -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vermilion-k8s-") as tmp:
        return 0 if run_scenarios(Path(tmp)) else 1
