"""Command families, one module each (like Redis's t_string.c, t_list.c ...).

Importing this package registers every handler in the command table.
"""

import importlib

FAMILIES = (
    "connection",
    "acl_cmds",
    "module_cmds",
    "strings",
    "bitops",
    "keys",
    "expire",
    "client_cmds",
    "server_cmds",
    "replication_cmds",
    "replicaof",
    "slowlog_cmds",
    "latency_cmds",
    "debug",
    "shutdown",
    "config_cmds",
    "introspection",
    "lists",
    "hashes",
    "sets",
    "zsets",
    "persistence_cmds",
    "scripting",
    "functions",
    "hyperloglog",
    "geo",
    "streams",
    "sort",
    "blocking",
    "memory_cmds",
    "migrate",
    "cluster",
    "transactions",
    "pubsub",
)


def load_all() -> None:
    for name in FAMILIES:
        importlib.import_module(f"{__name__}.{name}")
