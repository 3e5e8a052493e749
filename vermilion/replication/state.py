"""The replication history of this server: replid/replid2, the offsets, the backlog.

Every byte of the replication stream this server produces (as a master) or proxies
(as a replica of a master) goes through ``feed()``: it advances master_repl_offset,
lands in the backlog (for partial resynchronisation), and is handed to the attached
replicas. A master builds the stream from the propagation path (``sink``, one more
propagation sink, with SELECT when the database changes); a replica feeds the bytes its
master sent, unchanged, so that its own replicas share the master's replid and offsets
(replicationFeedStreamFromMasterStream) — PSYNC2 depends on it.
"""

from __future__ import annotations

import os
import time

from ..log import logger
from ..persistence.aof import encode_command
from ..propagate import TO_REPLICAS

NO_REPLID2 = "0" * 40


def new_replid() -> str:
    return os.urandom(20).hex()


class Backlog:
    """The last repl-backlog-size bytes of the stream (Redis's replBacklog).

    A bytearray trimmed from the front once it holds twice its size, so appending
    stays amortised O(1): histlen never reports more than size."""

    __slots__ = ("buf", "size", "end", "pinned")

    def __init__(self, size: int, offset: int):
        self.buf = bytearray()
        self.size = size
        self.end = offset  # the offset of the last byte held (master_repl_offset)
        # The first offset a replica still needs (None: none): everything from there
        # is kept, however far past size (Redis 7.0's shared replication buffer).
        self.pinned: int | None = None

    def _keep(self) -> int:
        pinned = self.pinned
        return self.size if pinned is None else max(self.size, self.end - pinned + 1)

    def append(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        self.end += len(data)
        if len(buf) > 2 * self.size:
            keep = self._keep()
            if len(buf) > 2 * keep:
                del buf[: len(buf) - keep]

    def pin(self, offset: int | None) -> None:
        """Keep the bytes from offset on (None: only the last size bytes)."""
        self.pinned = offset
        keep = self._keep()
        if len(self.buf) > 2 * keep:
            del self.buf[: len(self.buf) - keep]

    @property
    def histlen(self) -> int:
        return min(len(self.buf), self._keep())

    @property
    def first_offset(self) -> int:
        """repl_backlog->offset: the offset of the first byte held."""
        return self.end - self.histlen + 1

    def since(self, offset: int) -> bytes:
        """addReplyReplicationBacklog(): the bytes from offset (first_offset ≤ offset ≤
        end + 1) to the end."""
        return bytes(self.buf[len(self.buf) - (self.end - offset + 1):])

    def resize(self, size: int) -> None:
        self.size = size
        keep = self._keep()
        if len(self.buf) > keep:
            del self.buf[: len(self.buf) - keep]


class ReplicationState:
    """server.replid/replid2/master_repl_offset/second_replid_offset/repl_backlog and
    slaveseldb, and the stream that flows through them."""

    __slots__ = ("server", "replid", "replid2", "offset", "second_offset", "backlog",
                 "seldb", "outputs", "no_replicas_since", "replica_of_master")

    def __init__(self, server):
        self.server = server
        self.replid = new_replid()
        self.replid2 = NO_REPLID2
        self.offset = 0  # master_repl_offset
        self.second_offset = -1  # second_replid_offset
        self.backlog: Backlog | None = None
        self.seldb = -1  # the database the stream last selected (-1: SELECT next)
        # fn(bytes) of every attached replica that takes the stream (master.py)
        self.outputs: list = []
        self.no_replicas_since = 0.0  # repl_no_slaves_since, for repl-backlog-ttl
        # True while this server follows a master: its own writes never enter the
        # stream, the master's bytes do (replicationFeedSlaves returns at once).
        self.replica_of_master = False

    # -- the ids ---------------------------------------------------------------------

    def change_replid(self) -> None:
        self.replid = new_replid()

    def clear_replid2(self) -> None:
        self.replid2 = NO_REPLID2
        self.second_offset = -1

    def shift_replid(self) -> None:
        """shiftReplicationId(): a replica promoted to master keeps accepting PSYNC for
        its old history up to where it is now, and starts a new one."""
        self.replid2 = self.replid
        self.second_offset = self.offset + 1
        self.change_replid()
        logger.warning(f"Setting secondary replication ID to {self.replid2}, valid up to "
                       f"offset: {self.second_offset}. New replication ID is {self.replid}")

    def adopt_history(self, replid: str, offset: int) -> None:
        """After a full sync from a master: its history becomes ours, from scratch."""
        self.replid = replid
        self.offset = offset
        self.clear_replid2()
        self.free_backlog()
        self.create_backlog()

    def history_in_rdb(self) -> tuple[str, int, int] | None:
        """The repl-id, repl-offset and repl-stream-db aux fields of the RDB file loaded
        at startup (loadDataFromDisk's rsi), when valid; None otherwise (no RDB file
        loaded: none there, or the AOF was)."""
        server = self.server
        aux = server.snapshots.loaded_aux
        try:
            replid = aux[b"repl-id"].decode()
            offset = int(aux[b"repl-offset"])
            stream_db = int(aux[b"repl-stream-db"])
        except (KeyError, ValueError, UnicodeDecodeError):
            return None
        if len(replid) != len(NO_REPLID2) or offset < 0 or not 0 <= stream_db < len(server.dbs):
            return None
        return replid, offset, stream_db

    def continue_history_from_rdb(self) -> None:
        """A master restarted on an RDB file of its history keeps it as its secondary
        id, so that its replicas (and itself restarted with replicas, after SHUTDOWN
        waited for them) resynchronize partially (loadDataFromDisk's iAmMaster case)."""
        history = self.history_in_rdb()
        if history is None:
            return
        replid, offset, _ = history
        self.replid2 = replid
        self.second_offset = offset + 1
        self.offset = offset
        self.create_backlog()
        self.no_replicas_since = time.time()
        # rdbLoadRio() with RDBFLAGS_FEED_REPL: the keys that expired while the server
        # was down leave its history as DELs, so its replicas drop them too.
        server = self.server
        delete = b"UNLINK" if server.config["lazyfree-lazy-expire"] else b"DEL"
        for db_id, key in server.snapshots.loaded_expired_keys:
            self.sink(db_id, [delete, key])
        server.snapshots.loaded_expired_keys = []

    def save_info(self) -> dict | None:
        """rdbPopulateSaveInfo(): the aux fields every RDB file of ours carries while it
        is a point of a replication history, so that a restart on it can continue
        with a partial resync: a master with a backlog, or a replica linked to (or
        caching) its master. None otherwise."""
        if not self.replica_of_master:
            if self.backlog is None:
                return None
            stream_db = max(self.seldb, 0)
        else:
            link = self.server.master_link
            master = link.session or link.cached
            if master is None:
                return None
            stream_db = master.db.id
        return {b"repl-stream-db": b"%d" % stream_db, b"repl-id": self.replid.encode(),
                b"repl-offset": b"%d" % self.offset}

    # -- the backlog -----------------------------------------------------------------

    def create_backlog(self) -> None:
        """createReplicationBacklog(): from now on every write enters the stream (the
        sink is registered only while there is a backlog: a standalone server pays
        nothing for replication)."""
        if self.backlog is None:
            self.backlog = Backlog(self.server.config["repl-backlog-size"], self.offset)
            self._place_sink()

    def free_backlog(self) -> None:
        self.backlog = None
        self._place_sink()

    def follow_master(self, following: bool) -> None:
        """While this server applies and proxies its master's stream, its own writes
        never enter it (replicationFeedSlaves returns at once): the sink is off, so the
        commands from the master cost no propagation work unless the AOF wants them."""
        self.replica_of_master = following
        self._place_sink()

    def _place_sink(self) -> None:
        if self.backlog is not None and not self.replica_of_master:
            self.server.propagation.add_sink(self.sink, TO_REPLICAS)
        else:
            self.server.propagation.remove_sink(self.sink)

    def resize_backlog(self, size: int) -> None:
        if self.backlog is not None:
            self.backlog.resize(size)

    def can_continue(self, replid: str, offset: int) -> str | None:
        """masterTryPartialResynchronization()'s tests: None when a PSYNC replid offset
        can continue from the backlog, else the reason it cannot (a log line)."""
        if replid != self.replid and (replid != self.replid2 or offset > self.second_offset):
            if replid == "?":
                return ""
            if replid not in (self.replid, self.replid2):
                return (f"Replication ID mismatch (Replica asked for '{replid}', my "
                        f"replication IDs are '{self.replid}' and '{self.replid2}')")
            return (f"Requested offset for second ID was {offset}, but I can reply up to "
                    f"{self.second_offset}")
        backlog = self.backlog
        if backlog is None or offset < backlog.first_offset or offset > backlog.end + 1:
            return "lack of backlog"
        return None

    # -- the stream --------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes of the stream: into the backlog and to every replica taking it."""
        backlog = self.backlog
        if backlog is None:
            return
        backlog.append(data)
        self.offset = backlog.end
        for output in self.outputs:
            output(data)

    def sink(self, db_id: int, argv: list[bytes]) -> None:
        """The propagation sink (TO_REPLICAS): a command as it enters the stream,
        preceded by SELECT when it runs in another database than the last one."""
        if self.backlog is None or self.replica_of_master:
            return
        if db_id != self.seldb and db_id >= 0:
            self.seldb = db_id
            db = b"%d" % db_id
            self.feed(b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n" % (len(db), db))
        self.feed(encode_command(argv))

