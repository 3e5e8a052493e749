"""REPLICAOF and SLAVEOF (replication.c's replicaofCommand): follow a master, or stop.

The replica side itself is replication/replica.py (server.master_link)."""

from ..log import logger
from ..protocol.encode import OK, Raw
from ..protocol.errors import CommandError
from ..protocol.numbers import to_int
from ..replication.master import NO_FAILOVER
from .client_cmds import client_info_line
from .registry import command

ALREADY_CONNECTED = Raw(b"+OK Already connected to specified master\r\n")


@command("replicaof")
@command("slaveof")
def replicaof(client, argv):
    server = client.server
    link = server.master_link
    # SLAVEOF is not allowed in cluster mode: replication is configured by the cluster.
    if server.config["cluster-enabled"]:
        raise CommandError("ERR REPLICAOF not allowed in cluster mode.")
    if server.replicas.failover_state != NO_FAILOVER:
        raise CommandError("ERR REPLICAOF not allowed while failing over.")
    if argv[1].lower() == b"no" and argv[2].lower() == b"one":
        if link.host is not None:
            link.unset_master()
            logger.notice(f"MASTER MODE enabled (user request from "
                          f"'{client_info_line(client, argv=argv)}')")
        return OK
    if "S" in client.flags:
        # It would have to flush every replica, itself included.
        raise CommandError("ERR Command is not valid when client is a replica.")
    port = to_int(argv[2])
    if port is None or not 0 <= port <= 65535:
        raise CommandError("ERR Invalid master port")
    host = argv[1].decode("utf-8", "replace")
    if link.host is not None and link.host.lower() == host.lower() and link.port == port:
        logger.notice("REPLICAOF would result into synchronization with the master we are "
                      "already connected with. No operation performed.")
        return ALREADY_CONNECTED
    link.set_master(host, port)
    logger.notice(f"REPLICAOF {host}:{port} enabled (user request from "
                  f"'{client_info_line(client, argv=argv)}')")
    return OK
