"""`vermilion k8s render`: write the manifests for the options a user changes."""

import argparse

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
    render.add_argument("--cpu-request", default=defaults.cpu_request)
    render.add_argument("--cpu-limit", default=defaults.cpu_limit)
    render.add_argument("--memory-request", default=defaults.memory_request)
    render.add_argument("--memory-limit", default=defaults.memory_limit)
    k8s_sub.add_parser("simulate", help="run the pod lifecycle scenarios against real servers")


def run(args: argparse.Namespace) -> int:
    if args.k8s_cmd == "simulate":
        from .simulate import main

        return main(args)
    opts = Options(
        name=args.name, namespace=args.namespace, image=args.image, replicas=args.replicas,
        storage_size=args.storage_size, storage_class=args.storage_class,
        maxmemory=args.maxmemory, maxmemory_policy=args.maxmemory_policy,
        extra_config=args.config, password_secret=args.password_secret,
        cpu_request=args.cpu_request, cpu_limit=args.cpu_limit,
        memory_request=args.memory_request, memory_limit=args.memory_limit,
    )
    for path in write_tree(opts, args.output):
        print(path)
    return 0
