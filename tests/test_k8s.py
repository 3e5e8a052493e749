"""The Kubernetes manifests: rendered from Python, checked in without drift, valid
against Kubernetes' schemas, consistent with the server's real command line."""

import subprocess
import time
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from vermilion.cli import build_config
from vermilion.k8s import manifests
from vermilion.k8s.render import render_tree

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
BIN = Path(sys.executable).parent


def _objects(tree):
    for rel, text in tree.items():
        if rel.endswith("kustomization.yaml"):
            continue
        yield rel, yaml.safe_load(text)


def test_checked_in_tree_matches_renderer():
    tree = render_tree(manifests.Options())
    on_disk = {str(p.relative_to(DEPLOY)): p.read_text() for p in DEPLOY.rglob("*.yaml")}
    assert on_disk == tree, "deploy/kubernetes drifted: run `vermilion k8s render -o deploy/kubernetes`"


@pytest.mark.parametrize("version", ["1.29.0", "1.31.0", "1.33.0"])
def test_manifests_validate_against_kubernetes_schemas(version):
    for rel, obj in _objects(render_tree(manifests.Options(replicas=3, password_secret="pw"))):
        kubernetes_validate.validate(obj, version, strict=True)


def test_kustomization_resources_exist():
    for kust in DEPLOY.rglob("kustomization.yaml"):
        data = yaml.safe_load(kust.read_text())
        for res in data["resources"]:
            assert (kust.parent / res).exists(), f"{kust}: {res} missing"


def test_selectors_match_labels_and_services():
    opts = manifests.Options()
    sts = manifests.statefulset(opts)
    labels = sts["spec"]["template"]["metadata"]["labels"]
    for key, value in sts["spec"]["selector"]["matchLabels"].items():
        assert labels[key] == value
    headless = manifests.headless_service(opts)
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["clusterIP"] == "None"
    for svc in (headless, manifests.service(opts)):
        assert all(labels[k] == v for k, v in svc["spec"]["selector"].items())


def test_configmap_mount_and_command_agree_and_config_loads(tmp_path):
    opts = manifests.Options()
    sts = manifests.statefulset(opts)
    container = sts["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config_volume = next(v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    item = config_volume["configMap"]["items"][0]
    cm = manifests.configmap(opts)
    assert config_volume["configMap"]["name"] == cm["metadata"]["name"]
    assert item["key"] in cm["data"]
    assert container["command"] == ["redis-server", f"{mounts['config']}/{item['path']}"]
    # The rendered redis.conf is one vermilion-server accepts, and it puts data on the claim.
    conf = tmp_path / "redis.conf"
    conf.write_text(cm["data"][item["key"]])
    config = build_config([str(conf)])
    assert config["dir"] == mounts["data"]
    assert config["maxmemory"] == 2 * 1024 * 1024
    assert config["maxmemory-policy"] == "allkeys-lru"
    assert config["appendonly"] is True


def test_seed_overlay_reproduces_article_volume():
    tree = render_tree(manifests.Options())
    pv = yaml.safe_load(tree["overlays/seed/persistentvolume.yaml"])
    assert pv["spec"]["hostPath"]["path"] == "/mnt/data"
    assert pv["spec"]["storageClassName"] == "manual"
    assert pv["spec"]["capacity"]["storage"] == "10Gi"


def test_dockerfile_commands_are_real_entry_points():
    text = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["vermilion-server", "/redis-master/redis.conf"]' in text
    assert "/usr/local/bin/redis-server" in text  # the article's command works verbatim
    assert "STOPSIGNAL SIGTERM" in text and "EXPOSE 6379" in text and "USER 999" in text
    out = subprocess.run([BIN / "vermilion-server", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "v=7.0.15" in out.stdout
    out = subprocess.run([BIN / "vermilion", "ping", "-p", "1"], capture_output=True, text=True)
    assert out.returncode == 1  # nothing listens on port 1: the probe fails, as it must


def test_render_cli_writes_options(tmp_path):
    out = subprocess.run(
        [BIN / "vermilion", "k8s", "render", "-o", str(tmp_path), "--name", "cache",
         "--replicas", "3", "--maxmemory", "64mb", "--config", "hz 20"],
        capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    sts = yaml.safe_load((tmp_path / "statefulset.yaml").read_text())
    assert sts["metadata"]["name"] == "cache" and sts["spec"]["replicas"] == 3
    cm = yaml.safe_load((tmp_path / "configmap.yaml").read_text())
    assert "maxmemory 64mb" in cm["data"]["redis-config"] and "hz 20" in cm["data"]["redis-config"]


@pytest.mark.parametrize("replicas", [1, 3])
def test_tls_manifests_validate(replicas):
    opts = manifests.Options(replicas=replicas, password_secret="pw", tls_secret="redis-tls",
                             tls_plain_port=6380)
    for rel, obj in _objects(render_tree(opts)):
        kubernetes_validate.validate(obj, "1.31.0", strict=True)


@pytest.mark.parametrize("auth_clients", ["optional", "yes"])
@pytest.mark.parametrize("binary", ["vermilion-server", "redis-server"])
def test_tls_secret_config_and_probes_work(tmp_path, binary, auth_clients):
    # The rendered redis.conf with the Secret's files (made here) where the pod mounts
    # them, run by a real server; the manifest's own probe commands must pass, and a
    # plain redis-cli on the TLS port must not.
    from conftest import free_port, require_binary
    from tls_certs import Certs

    certs = Certs(tmp_path / "secret")
    (tmp_path / "secret" / "tls.crt").write_bytes(Path(certs.cert_file).read_bytes())
    (tmp_path / "secret" / "tls.key").write_bytes(Path(certs.key_file).read_bytes())
    opts = manifests.Options(tls_secret="redis-tls", tls_auth_clients=auth_clients)
    container = manifests.container(opts)
    assert {"mountPath": manifests.TLS_PATH, "name": "tls", "readOnly": True} \
        in container["volumeMounts"]
    volume = next(v for v in manifests.statefulset(opts)["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == "tls")
    assert volume["secret"]["secretName"] == "redis-tls"
    text = manifests.redis_conf(opts).replace(manifests.TLS_PATH, str(tmp_path / "secret"))
    text = text.replace(manifests.DATA_PATH, str(tmp_path))
    conf = tmp_path / "redis.conf"
    conf.write_text(text)
    port = free_port()
    exe = str(BIN / binary) if binary == "vermilion-server" else require_binary(binary)
    proc = subprocess.Popen([exe, str(conf), "--tls-port", str(port), "--bind", "127.0.0.1"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def probe(command):
            command = [arg.replace(manifests.TLS_PATH, str(tmp_path / "secret"))
                       for arg in command]
            command[command.index("-p") + 1] = str(port)
            return subprocess.run(command, capture_output=True, timeout=10)

        command = container["readinessProbe"]["exec"]["command"]
        assert "--tls" in command
        deadline = time.time() + 15
        while probe(command).returncode != 0:
            assert time.time() < deadline and proc.poll() is None, "never ready"
            time.sleep(0.1)
        for kind in ("startupProbe", "livenessProbe"):
            done = probe(container[kind]["exec"]["command"])
            assert done.returncode == 0 and done.stdout == b"PONG\n"
        plain = subprocess.run(["redis-cli", "-p", str(port), "-e", "PING"],
                               capture_output=True, timeout=10)
        assert plain.stdout != b"PONG\n"
    finally:
        proc.terminate()
        proc.wait(10)
