"""The rendered StatefulSet's pod lifecycle, played with real server processes
(vermilion/k8s/simulate.py): nothing acknowledged is ever lost."""

import socket
import time

from vermilion.k8s import manifests
from vermilion.k8s.simulate import StatefulSetSim, run_scenarios


def test_all_lifecycle_scenarios_lose_nothing(tmp_path):
    lines = []
    assert run_scenarios(tmp_path, out=lines.append), "\n".join(lines)
    assert any("claims retained: ['data-redis-0', 'data-redis-1', 'data-redis-2']" in l for l in lines)


def test_data_lands_on_the_claim(tmp_path):
    sim = StatefulSetSim(tmp_path)
    sim.scale(1)
    pod = sim.pods[0]
    import redis

    redis.Redis(port=pod.port).set("k", "v")
    sim.delete()
    claim = sim.claim_dir(0)
    manifest = claim / "appendonlydir" / "appendonly.aof.manifest"
    assert manifest.exists(), sorted(p.name for p in claim.rglob("*"))
    incr = next((claim / "appendonlydir").glob("*.incr.aof")).read_bytes()
    assert b"$1\r\nk\r\n$1\r\nv\r\n" in incr
    assert not (tmp_path / "pods" / "appendonlydir").exists()  # nothing outside the claim


def _ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(100)
    except OSError:
        return None


def test_readiness_probe_fails_while_loading_then_passes(tmp_path):
    # A dataset bigger than the article's 2mb cache: raise maxmemory so nothing is evicted.
    sim = StatefulSetSim(tmp_path, manifests.Options(maxmemory="256mb"))
    try:
        _readiness_while_loading(sim)
    finally:
        _stop_all(sim)


def _stop_all(sim):
    for pod in sim.pods:
        if pod.proc is not None and pod.proc.poll() is None:
            pod.proc.kill()
            pod.proc.wait()


def _readiness_while_loading(sim):
    import redis

    sim.scale(1)
    pod = sim.pods[0]
    c = redis.Redis(port=pod.port)
    pipe = c.pipeline(transaction=False)
    for i in range(150_000):
        pipe.set(f"key:{i}", i)
        if i % 10_000 == 0:
            pipe.execute()
    pipe.execute()
    pod.stop()
    pod.start()
    seen_loading = probe_failed_while_loading = False
    deadline = time.time() + 60
    while time.time() < deadline:
        reply = _ping(pod.port)
        if reply and reply.startswith(b"-LOADING"):
            seen_loading = True
            probe_failed_while_loading = probe_failed_while_loading or not pod.probe()
        elif reply == b"+PONG\r\n":
            break
        time.sleep(0.01)
    assert seen_loading and probe_failed_while_loading
    assert pod.probe()
    assert redis.Redis(port=pod.port).dbsize() == 150_000
    sim.delete()
