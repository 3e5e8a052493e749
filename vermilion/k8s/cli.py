"""`vermilion k8s render`: write the manifests for the options a user changes."""

import argparse
import sys

from .manifests import Options
from .render import write_tree


def add_parser(sub) -> None:
    k8s = sub.add_parser("k8s", help="Kubernetes manifests")
    k8s_sub = k8s.add_subparsers(dest="k8s_cmd", required=True)
    render = k8s_sub.add_parser("render", help="render the kustomize base and overlays")
    defaults = Options()
    render.add_argument("-o", "--output", required=True, help="directory to write")
    render.add_argument("--name", default=defaults.name)
    render.add_argument("--namespace", default=None)
    render.add_argument("--image", default=defaults.image)
    render.add_argument("--replicas", type=int, default=defaults.replicas)
    render.add_argument("--storage-size", default=defaults.storage_size)
    render.add_argument("--storage-class", default=None)
    render.add_argument("--maxmemory", default=defaults.maxmemory)
    render.add_argument("--maxmemory-policy", default=defaults.maxmemory_policy)
    render.add_argument("--config", action="append", default=[], metavar="LINE",
                        help="an extra redis.conf line (repeatable)")
    render.add_argument("--password-secret", default=None,
                        help="name of a Secret holding password.conf ('requirepass ...') and password")
    render.add_argument("--tls-secret", default=None, metavar="NAME",
                        help="a Secret with tls.crt, tls.key and ca.crt: port 6379 speaks TLS "
                             "(probes, replication and Sentinel too)")
    render.add_argument("--tls-auth-clients", choices=["yes", "no", "optional"],
                        default=defaults.tls_auth_clients,
                        help="with --tls-secret: whether clients must show a certificate")
    render.add_argument("--tls-plain-port", type=int, default=0, metavar="PORT",
                        help="with --tls-secret: also serve plain TCP on PORT (default: TLS only)")
    render.add_argument("--cpu-request", default=defaults.cpu_request)
    render.add_argument("--cpu-limit", default=defaults.cpu_limit)
    render.add_argument("--memory-request", default=defaults.memory_request)
    render.add_argument("--memory-limit", default=defaults.memory_limit)
    render.add_argument("--min-replicas-to-write", type=int, default=0, metavar="N",
                        help="HA: the master refuses writes unless N replicas are connected")
    render.add_argument("--min-replicas-max-lag", type=int, default=defaults.min_replicas_max_lag)
    render.add_argument("--down-after-ms", type=int, default=defaults.down_after_ms,
                        help="HA: Sentinel's down-after-milliseconds")
    render.add_argument("--failover-timeout-ms", type=int, default=defaults.failover_timeout_ms)
    render.add_argument("--sentinel-image", default=None,
                        help="HA: the Sentinel sidecar's image (default: --image)")
    sim = k8s_sub.add_parser("simulate", help="run the rendered objects as local processes")
    sim.add_argument("scenario", nargs="?", choices=["lifecycle", "failover"],
                     default="lifecycle",
                     help="lifecycle: the single pod's scenarios; failover: the HA set "
                          "with real Sentinels, SIGKILL of the master")
    sim.add_argument("--server", choices=["vermilion", "redis-server"], default="vermilion",
                     help="failover: the server the pods run (redis-server: Debian's, "
                          "to compare)")
    sim.add_argument("--rounds", type=int, default=1,
                     help="failover: kill whichever pod is master this many times")
    sim.add_argument("--down-after-ms", type=int, default=1000)


def run(args: argparse.Namespace) -> int:
    if args.k8s_cmd == "simulate":
        if args.scenario == "failover":
            from .simulate_ha import main
        else:
            from .simulate import main

        return main(args)
    if args.replicas == 2:
        # Sentinel needs a majority of its instances: with two pods, losing one leaves
        # no majority, so two pods would fail over no better than one.
        print("vermilion k8s render: --replicas 2 cannot fail over (no Sentinel majority "
              "survives a lost pod); use 1, or 3 and more", file=sys.stderr)
        return 2
    opts = Options(
        name=args.name, namespace=args.namespace, image=args.image, replicas=args.replicas,
        storage_size=args.storage_size, storage_class=args.storage_class,
        maxmemory=args.maxmemory, maxmemory_policy=args.maxmemory_policy,
        extra_config=args.config, password_secret=args.password_secret,
        cpu_request=args.cpu_request, cpu_limit=args.cpu_limit,
        memory_request=args.memory_request, memory_limit=args.memory_limit,
        min_replicas_to_write=args.min_replicas_to_write,
        min_replicas_max_lag=args.min_replicas_max_lag, down_after_ms=args.down_after_ms,
        failover_timeout_ms=args.failover_timeout_ms, sentinel_image=args.sentinel_image,
        tls_secret=args.tls_secret, tls_auth_clients=args.tls_auth_clients,
        tls_plain_port=args.tls_plain_port,
    )
    for path in write_tree(opts, args.output):
        print(path)
    return 0
