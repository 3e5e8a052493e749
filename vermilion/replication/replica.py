"""The replica side (replication.c's SLAVE half): the link to a master.

Interface used by the rest of the server (implementation: see the issue 15 work).
"""

from __future__ import annotations


class MasterLink:
    """server.masterhost/masterport/repl_state/master and everything the replica side
    keeps (replicationSetMaster, syncWithMaster, readSyncBulkPayload, replicationSendAck)."""

    def __init__(self, server):
        self.server = server
        self.host: str | None = None  # server.masterhost: None while a master
        self.port = 0
        self.session = None  # the master's client (a Session without a socket) when linked

    def set_master(self, host: str, port: int) -> None:
        """REPLICAOF host port (replicationSetMaster)."""
        raise NotImplementedError

    def unset_master(self) -> None:
        """REPLICAOF NO ONE (replicationUnsetMaster)."""

    def link_up(self) -> bool:
        return False

    def state_name(self) -> str:
        """ROLE's state: connect, connecting, handshake, sync, connected."""
        return "connect"

    def processed_offset(self) -> int:
        return -1

    def info_fields(self) -> dict:
        """INFO replication's replica fields, master_host … replica_announced."""
        return {}

    def send_ack(self) -> None:
        """REPLCONF ACK <offset> to the master now (REPLCONF GETACK)."""

    def cron(self) -> None:
        """Once a second: connect / reconnect, ACK, repl-timeout."""
