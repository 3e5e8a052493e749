"""One function per Kubernetes object of the deployment.

The objects are the seed article's (a Service on 6379, a StatefulSet started as
`redis-server /redis-master/redis.conf`, a ConfigMap with `maxmemory 2mb` /
`maxmemory-policy allkeys-lru`, data under /redis-master-data) with its mistakes fixed.
Each fix is stated in FIXES and printed as a comment above the object it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DATA_PATH = "/redis-master-data"
CONFIG_PATH = "/redis-master"
CONFIG_FILE = "redis.conf"
CONFIG_KEY = "redis-config"  # the article's ConfigMap item key
PORT = 6379
TLS_PATH = "/redis-tls"  # the --tls-secret's tls.crt, tls.key and ca.crt


@dataclass
class Options:
    name: str = "redis"
    namespace: str | None = None
    image: str = "vermilion:0.1.0"
    replicas: int = 1
    storage_size: str = "3Gi"
    storage_class: str | None = None
    maxmemory: str = "2mb"
    maxmemory_policy: str = "allkeys-lru"
    extra_config: list[str] = field(default_factory=list)
    password_secret: str | None = None  # name of a Secret with key "password"
    cpu_request: str = "100m"
    cpu_limit: str = "0.1"
    memory_request: str = "64Mi"
    memory_limit: str = "128Mi"
    termination_grace_seconds: int = 60
    # High availability (replicas >= 3): Sentinel's settings and the write safety net.
    down_after_ms: int = 5000
    failover_timeout_ms: int = 10000
    sentinel_image: str | None = None  # None: the Vermilion image (it has redis-sentinel)
    min_replicas_to_write: int = 0
    min_replicas_max_lag: int = 10
    # TLS: a Secret with tls.crt, tls.key and ca.crt (a kubernetes.io/tls Secret, as
    # cert-manager writes it) makes 6379 a TLS port; tls_plain_port also serves plain TCP.
    tls_secret: str | None = None
    tls_auth_clients: str = "optional"
    tls_plain_port: int = 0

    @property
    def ha(self) -> bool:
        """A master, replicas following it and Sentinel: three pods at least, so that a
        majority of Sentinels survives losing one."""
        return self.replicas >= 3

    @property
    def sentinel_service_name(self) -> str:
        return f"{self.name}-sentinel"

    @property
    def labels(self) -> dict:
        return {"app": self.name, "app.kubernetes.io/name": "vermilion",
                "app.kubernetes.io/instance": self.name}

    @property
    def selector(self) -> dict:
        return {"app": self.name}

    @property
    def headless_name(self) -> str:
        return f"{self.name}-headless"


FIXES = {
    "configmap": [
        "Fix: the article's redis.conf never set `dir`, so data was written to the",
        "container's working directory, outside the volume. `dir /redis-master-data`",
        "puts the RDB snapshot and the AOF on the claim, and the AOF is enabled.",
    ],
    "statefulset": [
        "Fixes over the article's StatefulSet:",
        "- volumeClaimTemplates instead of one shared claim: each replica gets its own",
        "  claim; persistentVolumeClaimRetentionPolicy Retain keeps them when the",
        "  StatefulSet is deleted or scaled down (the article's 'volumes outlive it').",
        "- serviceName points at a headless governing Service for stable pod DNS.",
        "- startup, readiness and liveness probes that speak the Redis protocol",
    "  (redis-cli -e: fails on -LOADING; milliseconds of CPU, not a Python start).",
        "- terminationGracePeriodSeconds leaves time to save on SIGTERM.",
        "- runs as non-root with fsGroup (the volume is writable) and a read-only",
        "  root filesystem.",
        "- cpu 0.1 is kept as the article's limit, with a matching request: a limit",
        "  without a request makes the request equal to the limit anyway; memory is",
        "  limited above maxmemory so eviction, not the OOM killer, bounds the data.",
    ],
    "headless": [
        "Fix: a StatefulSet's serviceName must name a headless Service (clusterIP None)",
        "that governs the pods' DNS names (redis-0.redis-headless...). The article",
        "pointed it at the client Service.",
    ],
    "service": ["The client-facing Service on 6379, as in the article."],
    "pdb": ["Added: a PodDisruptionBudget so voluntary evictions never take every pod at once."],
}


def metadata(opts: Options, name: str, extra_labels: dict | None = None) -> dict:
    meta = {"name": name, "labels": dict(opts.labels, **(extra_labels or {}))}
    if opts.namespace:
        meta["namespace"] = opts.namespace
    return meta


def redis_conf(opts: Options) -> str:
    lines = [
        f"maxmemory {opts.maxmemory}",
        f"maxmemory-policy {opts.maxmemory_policy}",
        f"dir {DATA_PATH}",
        "appendonly yes",
        "appendfsync everysec",
    ]
    if opts.tls_secret:
        # TLS on the usual port (clients, probes, replicas and Sentinel all use it);
        # replicas follow their master over TLS too.
        lines += [f"port {opts.tls_plain_port}", f"tls-port {PORT}",
                  f"tls-cert-file {TLS_PATH}/tls.crt", f"tls-key-file {TLS_PATH}/tls.key",
                  f"tls-ca-cert-file {TLS_PATH}/ca.crt",
                  f"tls-auth-clients {opts.tls_auth_clients}", "tls-replication yes"]
    else:
        lines.append(f"port {PORT}")
    if opts.password_secret:
        # With a password, listening on every interface is safe: protected mode
        # stays on and only authenticated clients get in.
        lines += ["bind 0.0.0.0 ::", "protected-mode yes",
                  "include /redis-secret/password.conf"]
    else:
        # Without a password Redis's protected mode would refuse the pod network's
        # clients; listen everywhere and rely on the cluster network policy.
        lines += ["bind 0.0.0.0 ::", "protected-mode no"]
    if opts.min_replicas_to_write:
        # A master refuses writes unless this many replicas acknowledged within the lag:
        # a master cut off from its replicas stops accepting what a failover would drop.
        lines += [f"min-replicas-to-write {opts.min_replicas_to_write}",
                  f"min-replicas-max-lag {opts.min_replicas_max_lag}"]
    return "\n".join(lines + list(opts.extra_config)) + "\n"


def configmap(opts: Options) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(opts, f"{opts.name}-config"),
        "data": {CONFIG_KEY: redis_conf(opts)},
    }


def service(opts: Options) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(opts, opts.name),
        "spec": {
            "ports": _service_ports(opts),
            "selector": opts.selector,
        },
    }


def _service_ports(opts: Options) -> list[dict]:
    ports = [{"port": PORT, "name": "redis-port", "targetPort": "redis"}]
    if opts.tls_secret and opts.tls_plain_port:
        ports.append({"port": opts.tls_plain_port, "name": "redis-plain",
                      "targetPort": "redis-plain"})
    return ports


def headless_service(opts: Options) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(opts, opts.headless_name),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "ports": [{"port": PORT, "name": "redis-port", "targetPort": "redis"}],
            "selector": opts.selector,
        },
    }


def cli_tls_args(opts: Options) -> list[str]:
    """redis-cli's arguments to reach the server over TLS (none without --tls-secret);
    a client certificate (the server's own) only when the server demands one."""
    if not opts.tls_secret:
        return []
    args = ["--tls", "--cacert", f"{TLS_PATH}/ca.crt"]
    if opts.tls_auth_clients == "yes":
        args += ["--cert", f"{TLS_PATH}/tls.crt", "--key", f"{TLS_PATH}/tls.key"]
    return args


def _probe(opts: Options, period: int, failures: int, timeout: int = 3) -> dict:
    # redis-cli (Debian's redis-tools, in the image): a few milliseconds of CPU where a
    # Python start costs ~90 ms. -e makes an error reply (-LOADING, -NOAUTH) exit 1.
    # With a password, redis-cli reads it from REDISCLI_AUTH (set from the Secret).
    command = ["redis-cli", *cli_tls_args(opts), "-e", "-p", str(PORT), "PING"]
    return {"exec": {"command": command}, "periodSeconds": period,
            "timeoutSeconds": timeout, "failureThreshold": failures}


def container(opts: Options) -> dict:
    spec = {
        "name": "redis",
        "image": opts.image,
        "command": ["redis-server", f"{CONFIG_PATH}/{CONFIG_FILE}"],
        "env": [{"name": "MASTER", "value": "true"}],
        "ports": [{"containerPort": PORT, "name": "redis"}],
        "resources": {
            "requests": {"cpu": opts.cpu_request, "memory": opts.memory_request},
            "limits": {"cpu": opts.cpu_limit, "memory": opts.memory_limit},
        },
        "volumeMounts": [
            {"mountPath": DATA_PATH, "name": "data"},
            {"mountPath": CONFIG_PATH, "name": "config"},
        ],
        # Loading a large RDB/AOF can take minutes: the startup probe allows 5 minutes
        # before liveness takes over; readiness fails while -LOADING.
        "startupProbe": _probe(opts, 2, 150),
        "readinessProbe": _probe(opts, 5, 2),
        "livenessProbe": _probe(opts, 10, 3, timeout=5),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 999,
            "runAsGroup": 999,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if opts.password_secret:
        spec["env"].append({"name": "REDISCLI_AUTH", "valueFrom": {
            "secretKeyRef": {"name": opts.password_secret, "key": "password"}}})
        spec["volumeMounts"].append({"mountPath": "/redis-secret", "name": "secret",
                                     "readOnly": True})
    if opts.tls_secret:
        spec["volumeMounts"].append({"mountPath": TLS_PATH, "name": "tls", "readOnly": True})
        if opts.tls_plain_port:
            spec["ports"].append({"containerPort": opts.tls_plain_port, "name": "redis-plain"})
    return spec


def statefulset(opts: Options) -> dict:
    volumes = [{
        "name": "config",
        "configMap": {"name": f"{opts.name}-config",
                      "items": [{"key": CONFIG_KEY, "path": CONFIG_FILE}]},
    }]
    if opts.password_secret:
        volumes.append({"name": "secret", "secret": {
            "secretName": opts.password_secret,
            "items": [{"key": "password.conf", "path": "password.conf"}]}})
    if opts.tls_secret:
        volumes.append({"name": "tls", "secret": {
            "secretName": opts.tls_secret,
            "items": [{"key": key, "path": key} for key in ("tls.crt", "tls.key", "ca.crt")]}})
    claim_spec = {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": opts.storage_size}}}
    if opts.storage_class:
        claim_spec["storageClassName"] = opts.storage_class
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(opts, opts.name),
        "spec": {
            "selector": {"matchLabels": opts.selector},
            "serviceName": opts.headless_name,
            "replicas": opts.replicas,
            "minReadySeconds": 10,
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain",
                                                     "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": opts.labels},
                "spec": {
                    "terminationGracePeriodSeconds": opts.termination_grace_seconds,
                    "securityContext": {"fsGroup": 999, "runAsNonRoot": True,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container(opts)],
                    "volumes": volumes,
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data", "labels": opts.labels},
                "spec": claim_spec,
            }],
        },
    }


def pod_disruption_budget(opts: Options) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(opts, opts.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": opts.selector}},
    }


# file name → (builder, FIXES key): the kustomize base, in apply order.
BASE = {
    "configmap.yaml": (configmap, "configmap"),
    "service.yaml": (service, "service"),
    "service-headless.yaml": (headless_service, "headless"),
    "statefulset.yaml": (statefulset, "statefulset"),
    "poddisruptionbudget.yaml": (pod_disruption_budget, "pdb"),
}


def seed_persistent_volume() -> dict:
    """The article's hostPath volume, verbatim, for single-node clusters."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "default-pv", "labels": {"type": "local"}},
        "spec": {
            "storageClassName": "manual",
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/mnt/data"},
        },
    }
