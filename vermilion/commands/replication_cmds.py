"""SYNC, PSYNC, REPLCONF, WAIT and ROLE (replication.c's commands; REPLICAOF is in
replicaof.py, with the replica side)."""

from ..protocol import errors
from ..protocol.encode import NO_REPLY, OK
from ..protocol.errors import CommandError
from ..protocol.numbers import to_int
from ..protocol.parser import split_args
from ..replication.master import NO_FAILOVER, ONLINE, ReplicaLink
from .client_cmds import timeout_ms
from .registry import command

WAIT_ON_REPLICA = (
    "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 "
    "if a replica is configured to be writable (which is not the default) writes to "
    "replicas are just local and are not propagated.")


@command("sync")
@command("psync")
def sync(client, argv):
    if "S" in client.flags:
        return NO_REPLY  # already a replica: ignored
    client.server.replicas.sync(client, argv)
    return NO_REPLY  # the replies (+FULLRESYNC, +CONTINUE, the payload) are written apart


def _replconf_port(client, raw: bytes) -> None:
    port = to_int(raw)
    if port is None:
        raise CommandError(errors.NOT_INTEGER)
    _link(client).listening_port = port


def _replconf_ip(client, raw: bytes) -> None:
    if len(raw) >= 256:  # NET_HOST_STR_LEN
        raise CommandError(f"ERR REPLCONF ip-address provided by replica instance is too "
                           f"long: {len(raw)} bytes")
    _link(client).announced_ip = raw.decode("utf-8", "replace")


def _replconf_capa(client, raw: bytes) -> None:
    capa = raw.lower()  # capabilities this master does not know are ignored
    if capa == b"eof":
        _link(client).capa_eof = True
    elif capa == b"psync2":
        _link(client).capa_psync2 = True


def _replconf_rdb_only(client, raw: bytes) -> None:
    value = to_int(raw)
    if value not in (0, 1):
        raise CommandError("ERR value is out of range, must be between 0 and 1"
                           if value is not None else errors.NOT_INTEGER)
    _link(client).rdb_only = bool(value)


def _replconf_rdb_filter(client, raw: bytes) -> None:
    words = split_args(raw)
    if words is None:
        raise CommandError("ERR Missing rdb-filter-only values")
    keep = set()
    for word in words:
        if word.lower() != b"functions":
            raise CommandError(f"ERR Unsupported rdb-filter-only option: "
                               f"{word.decode('utf-8', 'replace')}")
        keep.add("functions")
    _link(client).rdb_filter = frozenset(keep)


_REPLCONF_OPTIONS = {b"rdb-filter-only": _replconf_rdb_filter, b"listening-port": _replconf_port, b"ip-address": _replconf_ip,
                     b"capa": _replconf_capa, b"rdb-only": _replconf_rdb_only}


def _link(client):
    if client.replica is None:
        client.replica = ReplicaLink()
    return client.replica


@command("replconf")
def replconf(client, argv):
    if len(argv) % 2 == 0:
        raise CommandError(errors.SYNTAX)
    server = client.server
    for i in range(1, len(argv), 2):
        option = argv[i].lower()
        if option == b"ack":
            # REPLCONF ACK <offset> [FACK <offset>]: never answered.
            offset = to_int(argv[i + 1])
            if offset is not None:
                server.replicas.replconf_ack(client, offset)
            return NO_REPLY
        if option == b"getack":
            if client is server.master_link.session:
                server.master_link.send_ack()
            return NO_REPLY
        handler = _REPLCONF_OPTIONS.get(option)
        if handler is None:
            raise CommandError(f"ERR Unrecognized REPLCONF option: "
                               f"{argv[i].decode('utf-8', 'replace')}")
        handler(client, argv[i + 1])
    return OK


@command("wait")
def wait(client, argv):
    server = client.server
    if server.master_link.host is not None:
        raise CommandError(WAIT_ON_REPLICA)
    numreplicas = to_int(argv[1])
    if numreplicas is None:
        raise CommandError(errors.NOT_INTEGER)
    timeout = timeout_ms(argv[2])
    return server.replicas.wait(client, numreplicas, timeout)


@command("role")
def role(client, argv):
    server = client.server
    link = server.master_link
    if link.host is None:
        return [b"master", server.repl.offset, server.replicas.role_entries()]
    return [b"slave", link.host.encode(), link.port, link.state_name().encode(),
            link.processed_offset()]


@command("failover")
def failover(client, argv):
    """FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] (failoverCommand)."""
    server = client.server
    replicas = server.replicas
    if server.config["cluster-enabled"]:
        raise CommandError("ERR FAILOVER not allowed in cluster mode. Use CLUSTER FAILOVER "
                           "command instead.")
    if len(argv) == 2 and argv[1].lower() == b"abort":
        if replicas.failover_state == NO_FAILOVER:
            raise CommandError("ERR No failover in progress.")
        replicas.abort_failover("Failover manually aborted")
        return OK
    timeout, force, target = _failover_options(argv)
    if replicas.failover_state != NO_FAILOVER:
        raise CommandError("ERR FAILOVER already in progress.")
    if server.master_link.host is not None:
        raise CommandError("ERR FAILOVER is not valid when server is a replica.")
    if not replicas.replicas:
        raise CommandError("ERR FAILOVER requires connected replicas.")
    if force and (not timeout or target is None):
        raise CommandError("ERR FAILOVER with force option requires both a timeout and "
                           "target HOST and IP.")
    if target is not None:
        replica = replicas.find(*target)
        if replica is None:
            raise CommandError("ERR FAILOVER target HOST and PORT is not a replica.")
        if replica.replica.state != ONLINE:
            raise CommandError("ERR FAILOVER target replica is not online.")
    replicas.start_failover(target, timeout, force)
    return OK


def _failover_options(argv) -> tuple:
    timeout, force, target = 0, False, None
    i = 1
    while i < len(argv):
        word = argv[i].lower()
        if word == b"timeout" and i + 1 < len(argv) and not timeout:
            timeout = to_int(argv[i + 1])
            if timeout is None:
                raise CommandError(errors.NOT_INTEGER)
            if timeout <= 0:
                raise CommandError("ERR FAILOVER timeout must be greater than 0")
            i += 2
        elif word == b"to" and i + 2 < len(argv) and target is None:
            port = to_int(argv[i + 2])
            if port is None:
                raise CommandError(errors.NOT_INTEGER)
            target = (argv[i + 1].decode("utf-8", "replace"), port)
            i += 3
        elif word == b"force" and not force:
            force = True
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
    return timeout, force, target
