"""The replica side (replication.c's SLAVE half): the link to a master.

REPLICAOF host port (or `replicaof` in the config) makes this server follow a master:
the cron connects (connectWithMaster), a coroutine runs the handshake (PING, AUTH,
REPLCONF listening-port / ip-address / capa, PSYNC — syncWithMaster), then either
receives the master's snapshot (a "$<len>" or "$EOF:<mark>" payload) and loads it
(readSyncBulkPayload), or continues from where it was (+CONTINUE). The snapshot goes
to a temp file in `dir` that becomes the RDB file and is loaded once whole, while
clients get -LOADING; with repl-diskless-load (swapdb, or on-empty-db into an empty
replica) it is parsed as it arrives, into databases staged aside and swapped in once
loaded whole — served from the old dataset meanwhile when the master's replication id
is ours (async_loading). From there the master's stream is split into commands that
run, in the loop turn that reads them, through
the master's client (a Session without a socket, flag "M": server.master), and the
exact bytes of each applied command go on through server.repl.feed() — into our
backlog and to our own replicas — so that offsets and replication ids stay the
master's (PSYNC2, chained replication).

A lost link caches the master's client (replid, offset, selected db) to PSYNC from on
reconnection (replicationCacheMaster); a server that was a master caches itself
(replicationCacheMasterUsingMyself), so a promoted replica can take its old master
back with a partial resync. Everything runs on the event loop, never blocking it;
bad input from the master drops the link, never the server.
"""

from __future__ import annotations

import asyncio
import os
import time

from ..keyspace.database import now_ms
from ..keyspace.watch import touch_all_watched_in_db
from ..log import logger
from ..persistence import rdb
from ..persistence.aof import apply_appendonly, encode_command
from ..persistence.snapshot import load_functions
from ..propagate import TO_ALL
from ..protocol.encode import sds_repr
from ..protocol.errors import LOADING, CommandError
from ..protocol.parser import RequestParser
from ..session import Session
from .master import FAILOVER_IN_PROGRESS
from .state import new_replid

# repl_state (server.h), as ROLE names them
NONE = "none"
CONNECT = "connect"
CONNECTING = "connecting"
HANDSHAKE = "handshake"
TRANSFER = "sync"
CONNECTED = "connected"

READONLY = "READONLY You can't write against a read only replica."
STALE_FROM_SCRIPT = "ERR Can not execute the command on a stale replica"
MASTERDOWN = ("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to "
              "'no'.")
UNBLOCKED_STATE = ("UNBLOCKED force unblock from blocking operation, instance state "
                   "changed (master -> replica?)")
EOF_MARK_SIZE = 40  # CONFIG_RUN_ID_SIZE
READ_SIZE = 64 * 1024  # PROTO_IOBUF_LEN-ish: bytes asked of the socket per read
MAX_LINE = 64 * 1024  # a handshake reply or a multibulk header longer than this is garbage
FSYNC_EVERY = 8 * 1024 * 1024  # REPL_MAX_WRITTEN_BEFORE_FSYNC
BUSY_RETRY = 0.01  # seconds between looks at a busy script holding the stream back


class _MasterStream(asyncio.Protocol):
    """The master's connection once synchronized: what arrives is applied at once."""

    def __init__(self, link, generation: int):
        self.link = link
        self.generation = generation

    def data_received(self, data: bytes) -> None:
        self.link._received(self.generation, data)

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost follows

    def connection_lost(self, exc) -> None:
        self.link._stream_lost(self.generation)


class _Contents:
    """What a database held before a swap, as touch_all_watched_in_db() reads it."""

    __slots__ = ("data",)

    def __init__(self, data: dict):
        self.data = data


class ProtocolError(Exception):
    """The master's stream cannot be parsed: the link is dropped (and not cached)."""


class _LinkFailed(Exception):
    """A step of the handshake or the transfer failed (already logged)."""


class _BrokenMark(_LinkFailed):
    """The bytes after a diskless payload are not its EOF mark."""


class MasterClient(Session):
    """server.master: the master's client. Commands of the stream run as its commands;
    its replies go nowhere (a master never reads them), except REPLCONF ACK. It is
    listed among the clients (CLIENT LIST shows it with flag M; CLIENT KILL TYPE
    master drops the link, which is then cached for a partial resync)."""

    __slots__ = ("link", "replid", "reploff", "read_reploff", "pre_psync", "parser", "fd",
                 "transport", "deferred", "deferred_bytes", "paused_writing",
                 "paused_reading", "postponed", "obuf_soft_since")

    def __init__(self, link, replid: str, reploff: int):
        server = link.server
        Session.__init__(self, server, server.next_client_id(),
                         addr=f"{link.host}:{link.port}")
        self.link = link
        self.run_as_server()  # the master can do everything
        self.flags.add("M")
        self.replid = replid
        self.reploff = reploff  # the offset of the last byte applied
        self.read_reploff = reploff  # ... and of the last byte read
        self.pre_psync = reploff == -1  # CLIENT_PRE_PSYNC: an old master, no ACKs
        self.parser = link  # buffered(): the stream not applied yet (CLIENT LIST qbuf)
        self.fd = -1
        self.transport = None
        self.deferred = self.deferred_bytes = 0
        self.paused_writing = self.paused_reading = False
        self.postponed = None
        self.obuf_soft_since = 0.0

    def output_buffer_size(self) -> int:
        transport = self.transport
        if transport is None:
            return 0
        try:
            return transport.get_write_buffer_size()
        except Exception:
            return 0

    def close(self) -> None:
        # freeClient(server.master): CLIENT KILL, the idle timeout... The state is
        # cached for a partial resync and the link reconnects at once.
        if self.link.session is self:
            self.link.free_master(cache=True)

    def abort(self) -> None:
        self.close()

    # A busy script of the master's pauses its caller's reading (scripting/engine.py).
    def _pause_reading(self) -> None:
        pass

    def _resume_reading(self) -> None:
        pass

    def resume_unblocked(self) -> None:
        pass

    def resume_postponed(self) -> None:
        # CLIENT UNPAUSE: the stream held since a write of it met the pause runs now.
        if self.link.session is self:
            self.link._apply(self)


class MasterLink:
    """server.masterhost/masterport/repl_state/master/cached_master and everything the
    replica side keeps (replicationSetMaster, syncWithMaster, readSyncBulkPayload,
    replicationSendAck, replicationCron's replica half)."""

    def __init__(self, server):
        self.server = server
        self.host: str | None = None  # server.masterhost: None while a master
        self.port = 0
        self.session: MasterClient | None = None  # server.master, while linked
        self.cached: MasterClient | None = None  # server.cached_master
        self.state = NONE
        self.down_since = 0.0  # repl_down_since
        # The connection attempt in progress: its coroutine, its streams, its number
        # (a coroutine whose number is no longer current stops at once).
        self.task: asyncio.Task | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.generation = 0
        # The transfer (repl_transfer_*)
        self.transfer_size = -1
        self.transfer_read = 0
        self.transfer_lastio = 0.0
        self.transfer_tmpfile: str | None = None
        self.transfer_fd = -1
        self.master_replid = ""  # from +FULLRESYNC
        self.initial_offset = -1  # master_initial_offset
        self.loading = False  # the received snapshot is being loaded
        self.async_loading = False  # ... while the old dataset serves (swapdb, same id)
        self.aof_stopped = False  # the AOF was stopped for the load (restartAOFAfterSYNC)
        # The stream: bytes read and not yet applied (buf[:applied] ran but, inside a
        # MULTI, is not fed on until EXEC), and the parse position.
        self.buf = bytearray()
        self.applied = 0
        self.pos = 0
        self.need = 0  # the buffer size before the next parse is worth trying
        self._resume_scheduled = False  # a retry of _apply() after a busy script
        self._last_cron = 0.0
        # Keys a writable replica's own clients gave a TTL, (db id, key): they expire
        # here, as nobody else will (expire.c's slaveKeysWithExpire).
        self.expiring: dict = {}
        # The command being checked is a write on a writable replica: its lookups delete
        # a logically expired key (lookupKey() with LOOKUP_WRITE sets
        # EXPIRE_FORCE_DELETE_EXPIRED unless the replica is read-only), so INCR on an
        # expired key starts from a fresh key without TTL. Database.peek reads it.
        self.write_lookups = False

    # -- REPLICAOF ----------------------------------------------------------------------

    def set_master(self, host: str, port: int, startup: bool = False) -> None:
        """REPLICAOF host port (replicationSetMaster). startup: `replicaof` in the
        config — the history to PSYNC from is the RDB file's, if it has one
        (loadDataFromDisk()), never a new id of ours."""
        server = self.server
        if startup:
            self.host, self.port = host, port
            self._become_replica()
            self._restore_history_from_rdb()
            self.state = CONNECT
            logger.notice(f"Connecting to MASTER {host}:{port}")
            self.connect()
            return
        was_master = self.host is None
        self.host = None
        if self.session is not None:
            self.free_master(cache=True)
        self._disconnect_blocked_clients()
        self.host, self.port = host, port
        server.config.values["replicaof"] = (host, port)
        self.cancel_handshake(reconnect=False)
        if was_master:
            self._become_replica()  # logs say "S" from here on, as masterhost is set
            self.discard_cached()
            self._cache_myself()
        self.state = CONNECT
        logger.notice(f"Connecting to MASTER {host}:{port}")
        self.connect()

    def unset_master(self) -> None:
        """REPLICAOF NO ONE (replicationUnsetMaster). The caller logs "MASTER MODE
        enabled" with its client's description."""
        if self.host is None:
            return
        server = self.server
        repl = server.repl
        self.host = None
        logger.role = "M"
        server.set_oom_score()  # the master's class again
        if self.session is not None:
            self.free_master(cache=True)
        self.discard_cached()
        self.cancel_handshake(reconnect=False)
        # The history inherited from the master stays valid as our secondary id up
        # to here: its other replicas can PSYNC with us (shiftReplicationId()).
        if repl.backlog is None:
            repl.create_backlog()
        repl.shift_replid()
        server.replicas.drop_all()  # they learn the new id by reconnecting
        self.state = NONE
        repl.seldb = -1  # the next command we produce starts with SELECT
        repl.no_replicas_since = time.time()
        self.down_since = 0.0
        server.config.values["replicaof"] = None
        repl.follow_master(False)
        server.replica_mode = False
        checks = server.hooks.command_checks
        if self._check in checks:
            checks.remove(self._check)
        self.configure()
        if self.aof_stopped:
            self._restart_aof()

    def _become_replica(self) -> None:
        server = self.server
        server.repl.follow_master(True)
        server.replica_mode = True
        if self._check not in server.hooks.command_checks:
            server.hooks.command_checks.append(self._check)
        logger.role = "S"
        server.set_oom_score()  # the replica's class
        self.configure()

    # -- keys with a TTL written on a writable replica (expireSlaveKeys) --------------------

    def configure(self, server=None, value=None) -> None:
        """A writable replica remembers the keys its own clients give a TTL
        (rememberSlaveKeyWithExpire()): a propagation sink sees every write, installed
        only while this server is a replica with replica-read-only off."""
        server = self.server
        propagation = server.propagation
        if self.host is not None and not server.config["replica-read-only"]:
            propagation.add_sink(self._remember_expiring, TO_ALL)
        else:
            propagation.remove_sink(self._remember_expiring)
            if self.host is None:
                self.expiring.clear()

    def _remember_expiring(self, db_id: int, argv: list) -> None:
        server = self.server
        if server.master_executing or db_id < 0:
            return  # the master's keys expire with its DELs
        spec = server.commands.get(argv[0].lower())
        if spec is None:
            return
        expires = server.dbs[db_id].expires
        for position in spec.key_positions(len(argv)):
            key = argv[position]
            if key in expires:
                self.expiring[(db_id, key)] = None

    def _expire_replica_keys(self) -> None:
        """expireSlaveKeys(): the remembered keys whose TTL passed are deleted (and
        forgotten, as those that lost their TTL or are gone), at most 1 ms a cron."""
        dbs = self.server.dbs
        now = now_ms()
        deadline = time.perf_counter() + 0.001
        for n, entry in enumerate(list(self.expiring)):
            if n % 64 == 63 and time.perf_counter() > deadline:
                break
            db = dbs[entry[0]]
            when = db.expires.get(entry[1])
            if when is None:
                del self.expiring[entry]
            elif when <= now:
                del self.expiring[entry]
                db.expire_now(entry[1])

    def _disconnect_blocked_clients(self) -> None:
        """disconnectAllBlockedClients(): a blocked client waits for a change this
        server will no longer make itself."""
        blocking = self.server.blocking
        for client in list(self.server.clients.values()):
            waiter = client.blocked
            if waiter is None or "M" in client.flags:
                continue
            blocking.unblock(waiter, CommandError(UNBLOCKED_STATE))
            client.close_after_reply = True
            client.close()

    # -- the cached master ----------------------------------------------------------------

    def _cache_myself(self) -> None:
        """replicationCacheMasterUsingMyself(): our own history is what we may continue
        from with the new master (if it was our replica)."""
        logger.notice("Before turning into a replica, using my own master parameters to "
                      "synthesize a cached master: I may be able to synchronize with the "
                      "new master with just a partial transfer.")
        repl = self.server.repl
        self.cached = MasterClient(self, repl.replid, repl.offset)

    def _restore_history_from_rdb(self) -> None:
        """The repl-id / repl-offset / repl-stream-db aux fields of the RDB file just
        loaded: the dataset is that point of the master's history, so a partial resync
        can continue from there."""
        server = self.server
        history = server.repl.history_in_rdb()
        if history is None:
            return
        replid, offset, stream_db = history
        repl = server.repl
        repl.replid = replid
        repl.offset = offset
        self._cache_myself()
        self.cached.select(stream_db)

    def discard_cached(self) -> None:
        if self.cached is None:
            return
        logger.notice("Discarding previously cached master state.")
        self.cached = None

    def free_master(self, cache: bool) -> None:
        """freeClient(server.master): cached for a later PSYNC (replicationCacheMaster)
        unless the stream was broken; then the link is re-established at once
        (replicationHandleMasterDisconnection)."""
        session = self.session
        if session is None:
            return
        server = self.server
        self.session = None
        server.clients.pop(session.id, None)
        self._close_connection()
        logger.warning("Connection with master lost.")
        if cache:
            logger.notice("Caching the disconnected master state.")
            # resetClient() and a discarded transaction: the stream not applied yet
            # comes again after the PSYNC.
            for hook in server.hooks.client_reset:
                hook(session)
            session.read_reploff = session.reploff
            session.closing = False
            session.transport = None
            self.cached = session
        else:
            for hook in server.hooks.client_close:
                hook(session)
        self.buf = bytearray()
        self.applied = self.pos = self.need = 0
        self.state = CONNECT
        self.down_since = time.time()
        if self.host is not None and not server.stopping():
            logger.notice(f"Reconnecting to MASTER {self.host}:{self.port}")
            self.connect()

    def _resurrect_cached(self, writer) -> None:
        """replicationResurrectCachedMaster(): the cached client is the master again."""
        session = self.cached
        self.cached = None
        server = self.server
        session.link = self
        session.addr = f"{self.host}:{self.port}"
        session.run_as_server()
        session.closing = False
        session.last_interaction = time.time()
        self._attach(session, writer)
        self.state = CONNECTED
        self.down_since = 0.0
        server.clients[session.id] = session

    def _attach(self, session: MasterClient, writer) -> None:
        self.session = session
        session.transport = writer.transport
        sock = writer.get_extra_info("socket")
        if sock is not None:
            session.fd = sock.fileno()
        sockname = writer.get_extra_info("sockname")
        if sockname:
            session.laddr = f"{sockname[0]}:{sockname[1]}"

    # -- connecting -------------------------------------------------------------------------

    def connect(self) -> None:
        """connectWithMaster(): start a connection attempt, run by a coroutine."""
        self.generation += 1
        self.state = CONNECTING
        self.transfer_lastio = time.time()
        logger.notice("MASTER <-> REPLICA sync started")
        self.task = self.server.loop.create_task(self._sync_with_master(self.generation))

    def _close_connection(self) -> None:
        self.generation += 1  # the running coroutine, if any, stops at its next step
        task, self.task = self.task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        writer, self.writer = self.writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:
                pass

    def cancel_handshake(self, reconnect: bool) -> bool:
        """cancelReplicationHandshake()"""
        if self.state == TRANSFER:
            self._abort_transfer()
        elif self.state in (CONNECTING, HANDSHAKE):
            self._close_connection()
        else:
            return False
        self.state = CONNECT
        if reconnect and self.host is not None:
            logger.notice(f"Reconnecting to MASTER {self.host}:{self.port} after failure")
            self.connect()
        return True

    def _abort_transfer(self) -> None:
        self._close_connection()
        self._drop_tmpfile()
        self._end_loading()

    def _drop_tmpfile(self) -> None:
        if self.transfer_fd >= 0:
            os.close(self.transfer_fd)
            self.transfer_fd = -1
        if self.transfer_tmpfile is not None:
            try:
                os.unlink(self.transfer_tmpfile)
            except OSError:
                pass
            self.transfer_tmpfile = None

    def _failed(self, generation: int) -> None:
        """syncWithMaster()'s error path: the next cron tick tries again."""
        if generation != self.generation:
            return
        self._close_connection()
        self._drop_tmpfile()
        self.state = CONNECT

    async def _sync_with_master(self, generation: int) -> None:
        try:
            await self._handshake_and_sync(generation)
        except asyncio.CancelledError:
            raise
        except _LinkFailed:
            if self.state == TRANSFER:
                if generation == self.generation:
                    self.cancel_handshake(reconnect=True)
            else:
                self._failed(generation)
        except Exception as exc:  # a bug or garbage from the master: never the server
            logger.warning(f"Replication link error: {exc!r}")
            if generation != self.generation:
                return
            if self.session is not None and self.state == CONNECTED:
                self.free_master(cache=False)
            elif self.state == TRANSFER:
                self.cancel_handshake(reconnect=True)
            else:
                self._failed(generation)

    async def _handshake_and_sync(self, generation: int) -> None:
        server = self.server
        config = server.config
        # tls-replication: connCreateTLS() with the client context (tls.py), which
        # verifies the master's certificate against the CA, not its name.
        ctx = server.tls.client_ctx if config["tls-replication"] else None
        source = config["bind-source-addr"]  # connectWithMaster(): the link's own address
        try:
            reader, writer = await asyncio.open_connection(
                self.host, self.port, limit=MAX_LINE, ssl=ctx,
                local_addr=(source, 0) if source else None)
        except OSError as exc:
            if generation == self.generation:
                logger.warning(f"Error condition on socket for SYNC: "
                               f"{exc.strerror or exc}")
            raise _LinkFailed from None
        if generation != self.generation:
            writer.close()
            return
        self.writer = writer
        logger.notice("Non blocking connect for SYNC fired the event.")
        self.state = HANDSHAKE
        writer.write(encode_command([b"PING"]))
        reply = await self._read_reply(reader, generation)
        if reply[:1] != "+" and not reply.startswith(("-NOAUTH", "-NOPERM",
                                                       "-ERR operation not permitted")):
            logger.warning(f"Error reply to PING from master: '{reply}'")
            raise _LinkFailed
        logger.notice("Master replied to PING, replication can continue...")
        # The rest of the handshake goes out at once; the replies are read in order.
        auth = config["masterauth"]
        out = []
        if auth:
            user = config["masteruser"]
            args = [b"AUTH"] + ([user.encode()] if user else []) + [auth.encode()]
            out.append(encode_command(args))
        # The port the master lists for us: the TLS one when we replicate over TLS.
        port = config["replica-announce-port"] or (
            server.tls_port if config["tls-replication"] and server.tls_port else
            server.tcp_port or config["port"])
        out.append(encode_command([b"REPLCONF", b"listening-port", b"%d" % port]))
        announce_ip = config["replica-announce-ip"]
        if announce_ip:
            out.append(encode_command([b"REPLCONF", b"ip-address", announce_ip.encode()]))
        out.append(encode_command([b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]))
        writer.write(b"".join(out))
        if auth:
            reply = await self._read_reply(reader, generation)
            if reply[:1] == "-":
                logger.warning(f"Unable to AUTH to MASTER: {reply}")
                raise _LinkFailed
        reply = await self._read_reply(reader, generation)
        if reply[:1] == "-":
            logger.notice(f"(Non critical) Master does not understand REPLCONF "
                          f"listening-port: {reply}")
        if announce_ip:
            reply = await self._read_reply(reader, generation)
            if reply[:1] == "-":
                logger.notice(f"(Non critical) Master does not understand REPLCONF "
                              f"ip-address: {reply}")
        reply = await self._read_reply(reader, generation)
        if reply[:1] == "-":
            logger.notice(f"(Non critical) Master does not understand REPLCONF capa: "
                          f"{reply}")
        # PSYNC (slaveTryPartialResynchronization())
        self.initial_offset = -1
        cached = self.cached
        if cached is not None:
            psync_replid, psync_offset = cached.replid, str(cached.reploff + 1)
            logger.notice(f"Trying a partial resynchronization (request "
                          f"{psync_replid}:{psync_offset}).")
        else:
            logger.notice("Partial resynchronization not possible (no cached master)")
            psync_replid, psync_offset = "?", "-1"
        # A master failing over to us (FAILOVER) says so: we become its master.
        replicas = server.replicas
        failing_over = replicas.failover_state == FAILOVER_IN_PROGRESS
        psync = [b"PSYNC", psync_replid.encode(), psync_offset.encode()]
        writer.write(encode_command([*psync, b"FAILOVER"] if failing_over else psync))
        while True:
            try:
                reply = await self._read_reply(reader, generation)
            except _LinkFailed:
                logger.warning("Master did not reply to PSYNC, will try later")
                if failing_over and generation == self.generation:
                    replicas.abort_failover("Failover target rejected psync request")
                raise
            if reply:  # the master may send newlines before its reply
                break
        if failing_over and generation == self.generation:
            if reply.startswith(("+CONTINUE", "+FULLRESYNC")):
                replicas.clear_failover()
            else:
                replicas.abort_failover("Failover target rejected psync request")
                return
        if reply.startswith("+FULLRESYNC"):
            words = reply.split(" ")
            if len(words) < 3 or len(words[1]) != EOF_MARK_SIZE:
                logger.warning("Master replied with wrong +FULLRESYNC syntax.")
                self.master_replid = ""
            else:
                self.master_replid = words[1]
                try:
                    self.initial_offset = int(words[2])
                except ValueError:
                    self.initial_offset = 0
                logger.notice(f"Full resync from master: {self.master_replid}:"
                              f"{self.initial_offset}")
        elif reply.startswith("+CONTINUE"):
            logger.notice("Successful partial resynchronization with master.")
            self._continue(reply, writer)
            logger.notice("MASTER <-> REPLICA sync: Master accepted a Partial "
                          "Resynchronization.")
            await self._stream(reader, generation)
            return
        elif reply.startswith(("-NOMASTERLINK", "-LOADING")):
            logger.notice(f"Master is currently unable to PSYNC but should be in the "
                          f"future: {reply}")
            raise _LinkFailed
        else:
            if not reply.startswith("-ERR"):
                logger.warning(f"Unexpected reply to PSYNC from master: {reply}")
            else:
                logger.notice(f"Master does not support PSYNC or is in error state "
                              f"(reply: {reply})")
            logger.notice("Retrying with SYNC...")
            writer.write(b"SYNC\r\n")
        await self._transfer(reader, writer, generation)

    async def _read_reply(self, reader, generation: int) -> str:
        """receiveSynchronousResponse(): one line, without its CRLF."""
        try:
            line = await reader.readuntil(b"\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
            if generation == self.generation:
                reason = "connection lost" if isinstance(exc, asyncio.IncompleteReadError) \
                    else str(exc)
                logger.warning(f"Failed to read response from the server: {reason}")
                logger.warning("Master did not respond to command during SYNC handshake")
            raise _LinkFailed from None
        if generation != self.generation:
            raise asyncio.CancelledError
        self.transfer_lastio = time.time()
        return line.rstrip(b"\r\n").decode("utf-8", "replace")

    def _continue(self, reply: str, writer) -> None:
        """+CONTINUE [<replid>]: the cached master is the master again."""
        server = self.server
        repl = server.repl
        new = reply[10:].strip()
        cached = self.cached
        if len(new) == EOF_MARK_SIZE and new != cached.replid:
            logger.warning(f"Master replication ID changed to {new}")
            # Our sub-replicas may PSYNC with the old id up to here.
            repl.replid2 = cached.replid
            repl.second_offset = repl.offset + 1
            repl.replid = new
            cached.replid = new
            server.replicas.drop_all()  # they must learn the new id
        self._resurrect_cached(writer)
        if repl.backlog is None:
            repl.offset = self.session.reploff
            repl.create_backlog()

    # -- the snapshot -------------------------------------------------------------------------

    def _use_diskless_load(self) -> bool:
        mode = self.server.config["repl-diskless-load"]
        return mode == "swapdb" or (
            mode == "on-empty-db" and not any(db.data for db in self.server.dbs))

    async def _transfer(self, reader, writer, generation: int) -> None:
        server = self.server
        config = server.config
        diskless = self._use_diskless_load()
        if not diskless:
            directory = config["dir"] or "."
            for _ in range(5):
                name = os.path.join(directory, f"temp-{int(time.time())}.{os.getpid()}.rdb")
                try:
                    self.transfer_fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_EXCL,
                                               0o644)
                    self.transfer_tmpfile = name
                    break
                except FileExistsError:
                    await asyncio.sleep(1)
                except OSError as exc:
                    logger.warning(f"Opening the temp file needed for MASTER <-> REPLICA "
                                   f"synchronization: {exc.strerror}")
                    raise _LinkFailed from None
            else:
                logger.warning("Opening the temp file needed for MASTER <-> REPLICA "
                               "synchronization: File exists")
                raise _LinkFailed
        self.state = TRANSFER
        self.transfer_size = -1
        self.transfer_read = 0
        self.transfer_lastio = time.time()
        target = "to parser" if diskless else "to disk"
        # The bulk header, after the newlines that keep the link alive meanwhile.
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
                reason = "connection lost" if isinstance(exc, asyncio.IncompleteReadError) \
                    else str(exc)
                logger.warning(f"I/O error reading bulk count from MASTER: {reason}")
                raise _LinkFailed from None
            if generation != self.generation:
                return
            self.transfer_lastio = time.time()
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            text = line.decode("utf-8", "replace")
            if line[:1] == b"-":
                logger.warning(f"MASTER aborted replication with an error: {text[1:]}")
                raise _LinkFailed
            if line[:1] != b"$":
                logger.warning(f"Bad protocol from MASTER, the first byte is not '$' (we "
                               f"received '{text}'), are you sure the host and port are "
                               f"right?")
                raise _LinkFailed
            break
        mark = None
        if line.startswith(b"$EOF:") and len(line) - 5 >= EOF_MARK_SIZE:
            mark = line[5:5 + EOF_MARK_SIZE]
            self.transfer_size = 0
            logger.notice(f"MASTER <-> REPLICA sync: receiving streamed RDB from master "
                          f"with EOF {target}")
        else:
            try:
                self.transfer_size = int(line[1:])
            except ValueError:
                self.transfer_size = 0
            logger.notice(f"MASTER <-> REPLICA sync: receiving {self.transfer_size} bytes "
                          f"from master {target}")
        if diskless:
            await self._load_from_socket(reader, writer, generation, mark)
            return
        tail = b""  # the last bytes received, to find the mark across reads
        leftover = b""  # stream bytes that came after an EOF-marked payload
        synced_at = 0
        while True:
            if mark is None:
                left = self.transfer_size - self.transfer_read
                if left <= 0:
                    break
                want = min(left, READ_SIZE)
            else:
                want = READ_SIZE
            try:
                data = await reader.read(want)
            except OSError as exc:
                data = b""
                reason = str(exc)
            else:
                reason = "connection lost"
            self.server.stats.total_net_repl_input_bytes += len(data)
            if generation != self.generation:
                return
            if not data:
                logger.warning(f"I/O error trying to sync with MASTER: {reason}")
                raise _LinkFailed
            self.transfer_lastio = time.time()
            done = False
            if mark is not None:
                window = tail + data
                at = window.find(mark)
                if at >= 0:
                    # The payload ends before the mark; the master may already send
                    # the stream after it.
                    keep = at - len(tail)
                    leftover = window[at + EOF_MARK_SIZE:]
                    if keep < 0:
                        self._truncate_payload(-keep)
                        data = b""
                    else:
                        data = data[:keep]
                    done = True
                else:
                    tail = window[-EOF_MARK_SIZE:]
            if data:
                self._store_payload(data)
            self.transfer_read += len(data) + (EOF_MARK_SIZE if done else 0)
            if self.transfer_read - synced_at >= FSYNC_EVERY:
                os.fdatasync(self.transfer_fd)
                synced_at = self.transfer_read
            if done:
                break
        await self._load_from_disk(reader, writer, generation, mark is not None, leftover)

    def _store_payload(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.transfer_fd, view):]
        except OSError as exc:
            logger.warning(f"Write error or short write writing to the DB dump file "
                           f"needed for MASTER <-> REPLICA synchronization: {exc.strerror}")
            raise _LinkFailed from None

    def _truncate_payload(self, extra: int) -> None:
        """The first bytes of the mark were already stored: take them back."""
        size = os.lseek(self.transfer_fd, 0, os.SEEK_END)
        os.ftruncate(self.transfer_fd, size - extra)
        os.lseek(self.transfer_fd, 0, os.SEEK_END)
        self.transfer_read -= extra

    def _before_load(self, diskless: bool) -> None:
        """stopAppendOnly() and killRDBChild() before the dataset is replaced."""
        server = self.server
        if server.config["appendonly"] and server.aof.enabled:
            apply_appendonly(server, False)
            self.aof_stopped = True
        if server.snapshots.child_pid:
            if not diskless:
                logger.notice(f"Replica is about to load the RDB file received from the "
                              f"master, but there is a pending RDB child running. Killing "
                              f"process {server.snapshots.child_pid} and removing its temp "
                              f"file to avoid any race")
            server.snapshots.wait_child()

    def _attach_to_new_master(self) -> None:
        """replicationAttachToNewMaster(): a new history; our replicas start over too."""
        self.discard_cached()
        self.server.replicas.drop_all()
        self.server.repl.free_backlog()

    async def _load_from_disk(self, reader, writer, generation, usemark, leftover) -> None:
        """readSyncBulkPayload() once the file is whole: it becomes our RDB file and is
        loaded, while clients get -LOADING."""
        server = self.server
        config = server.config
        self._before_load(diskless=False)
        self._attach_to_new_master()
        data = self._install_rdb_file()
        logger.notice("MASTER <-> REPLICA sync: Flushing old data")
        self._empty_data()
        logger.notice("MASTER <-> REPLICA sync: Loading DB in memory")
        self._begin_loading(async_loading=False)
        try:
            result = await self._load(data, writer, generation)
        except rdb.RDBError as exc:
            if generation != self.generation:
                return
            logger.warning(f"Failed trying to load the MASTER synchronization DB from disk: "
                           f"{exc}")
            self.cancel_handshake(reconnect=True)
            self._empty_data()  # the half-loaded data goes
            return
        finally:
            if generation == self.generation:
                self._end_loading()
        if result is None or generation != self.generation:
            return
        del data
        if config["rdb-del-sync-files"] and not config["save"] and not config["appendonly"]:
            logger.notice("Removing the RDB file obtained from the master. This replica has "
                          "persistence disabled")
            try:
                os.unlink(server.snapshots.path)
            except OSError:
                pass
        await self._synced(reader, writer, generation, result.aux, usemark, leftover)

    async def _load_from_socket(self, reader, writer, generation, mark) -> None:
        """readSyncBulkPayload()'s diskless load: the RDB is parsed as it arrives
        (rdbLoadRio over the connection). With repl-diskless-load swapdb it goes to a
        temp db while the old dataset stays (disklessLoadInitTempDb), swapped in only
        once loaded whole; clients meanwhile get -LOADING, unless the master is the
        one we had (same replication id): then the old dataset keeps serving them
        (async_loading). on-empty-db (and an empty replica) loads straight into the
        emptied databases."""
        server = self.server
        config = server.config
        swapdb = config["repl-diskless-load"] == "swapdb"
        self._before_load(diskless=True)
        if not swapdb:
            self._attach_to_new_master()
            logger.notice("MASTER <-> REPLICA sync: Flushing old data")
            self._empty_data()
        logger.notice("MASTER <-> REPLICA sync: Loading DB in memory")
        # The old content is a different point in time of the same data set only
        # while the master's replication id is ours.
        self._begin_loading(async_loading=swapdb and server.repl.replid == self.master_replid)
        # rdbLoadObject() encodes what it loads by the replica's own limits (and
        # sanitize-dump-payload), as iter_load_snapshot's options_of() does for a file.
        load = rdb.StreamLoad(len(server.dbs), log=logger.warning, packed=True,
                              key_delay=config["key-load-delay"],
                              options=rdb.options_of(server.dbs))
        try:
            with rdb.paused_gc():
                leftover = await self._read_rdb(load, reader, writer, generation, mark)
            if leftover is None or generation != self.generation:
                if generation == self.generation:
                    self._end_loading()  # shutting down
                return
            if swapdb:
                await self._no_script_running(generation)
                if generation != self.generation:
                    return
                # We will soon swap in the new dataset and apply the new master's
                # stream: the cached master and our replicas' history go.
                self._attach_to_new_master()
                logger.notice("MASTER <-> REPLICA sync: Swapping active DB with loaded DB")
                self._swap_in(load)
                logger.notice("MASTER <-> REPLICA sync: Discarding old DB in background")
            else:
                rdb.install_staged(server.dbs, load)
                load_functions(server, load.result)
        except (rdb.RDBError, _LinkFailed) as exc:
            if generation != self.generation:
                return
            self._report_load_failure(exc, load)
            self._end_loading()
            self.cancel_handshake(reconnect=True)
            if swapdb:
                logger.notice("MASTER <-> REPLICA sync: Discarding temporary DB in background")
            else:
                self._empty_data()  # what was loaded of it goes
            return
        if generation != self.generation:
            return
        server.dirty += 1  # the dataset changed without a save
        self._end_loading()
        await self._synced(reader, writer, generation, load.result.aux, mark is not None,
                           leftover)

    @staticmethod
    def _report_load_failure(exc, load) -> None:
        """rdbLoadRio()'s report (rdbReportError() in diskless loading) and
        readSyncBulkPayload()'s. A short read is a connection error: the replica
        syncs again. (Redis exits on a corrupt payload from a socket; a replica here
        drops the link and syncs again, as for a corrupt one received on disk.)"""
        if isinstance(exc, _BrokenMark):
            logger.warning("Replication stream EOF marker is broken")
            return
        reason = str(exc.args[0]) if exc.args else "connection lost"
        short = isinstance(exc, _LinkFailed) or exc.reason == rdb.EOF_REASON
        if short:
            logger.warning("Short read or OOM loading DB. Unrecoverable error, aborting now.")
            logger.warning(f"Internal error in RDB reading offset {load.offset()}, function at "
                           f"rdb.c:3240 -> Unexpected EOF reading RDB file. Failure loading "
                           f"rdb format from socket, assuming connection error, resuming "
                           f"operation.")
        else:
            logger.warning(f"Internal error in RDB reading offset {load.offset()}, function at "
                           f"rdb.c:0 -> {exc.reason}. Failure loading rdb format")
        logger.warning(f"Failed trying to load the MASTER synchronization DB from socket: "
                       f"{reason if isinstance(exc, _LinkFailed) else 'Invalid argument'}")

    async def _read_rdb(self, load, reader, writer, generation: int, mark):
        """Feed load from the socket until the RDB is read whole: returns the stream
        bytes that followed it (and the EOF mark), or None if the link was dropped
        meanwhile. Gives the loop a turn every loading-process-events-interval-bytes,
        and the master a newline every second (replicationSendNewlineToMaster)."""
        server = self.server
        config = server.config
        budget = config["loading-process-events-interval-bytes"]
        timeout = config["repl-timeout"]
        stats = server.stats
        newline_at = time.time()
        while True:
            load.key_delay = config["key-load-delay"]  # read at each key, as Redis does
            if load.parse(budget):
                break
            if generation != self.generation or server.stopping():
                return None
            now = time.time()
            if now - newline_at >= 1:
                newline_at = now
                writer.write(b"\n")
            if not load.want():  # a turn for the loop
                await asyncio.sleep(0)
                continue
            quick = False  # past want(): only what comes at once (wished())
            while load.want() or (load.wished() and not load.ended):
                if mark is None:
                    left = self.transfer_size - self.transfer_read
                    if left <= 0:
                        load.feed(b"")  # the RDB wants more than the payload holds
                        break
                else:
                    left = 1 << 62
                size = min(left, max(READ_SIZE, load.want(), load.wished()))
                data = await self._read_some(reader, size, 0.05 if quick else timeout,
                                             quick)
                if generation != self.generation:
                    return None
                if data is None:  # nothing more soon: parse what there is
                    break
                stats.total_net_repl_input_bytes += len(data)
                self.transfer_read += len(data)
                self.transfer_lastio = time.time()
                load.feed(data)
                if not load.want():
                    quick = True
        rest = load.rest
        if mark is None:
            return rest
        # The announced delimiter follows the RDB.
        while len(rest) < EOF_MARK_SIZE:
            data = await self._read_some(reader, EOF_MARK_SIZE - len(rest), timeout, False)
            if generation != self.generation:
                return None
            stats.total_net_repl_input_bytes += len(data)
            rest += data
        if rest[:EOF_MARK_SIZE] != mark:
            raise _BrokenMark
        self.transfer_read += EOF_MARK_SIZE
        return rest[EOF_MARK_SIZE:]

    @staticmethod
    async def _read_some(reader, size: int, timeout: float, quick: bool):
        """Up to size bytes; None (quick) when nothing came within timeout."""
        try:
            data = await asyncio.wait_for(reader.read(size), timeout)
        except asyncio.TimeoutError:
            if quick:
                return None
            raise _LinkFailed("Resource temporarily unavailable") from None
        except OSError as exc:
            raise _LinkFailed(exc.strerror or str(exc)) from None
        if not data:
            raise _LinkFailed("connection lost")
        return data

    async def _no_script_running(self, generation: int) -> None:
        """The swap waits for a script that is running (busy): it is atomic."""
        scripting = self.server.scripting
        while scripting is not None and scripting.current is not None \
                and generation == self.generation:
            await asyncio.sleep(0.01)

    def _swap_in(self, load) -> None:
        """swapMainDbWithTempDb(): the loaded databases replace the active ones, whose
        clients (WATCH, blocked on keys, tracking) see the change; the function
        libraries too (functionsLibCtxSwapWithCurrent)."""
        server = self.server
        dbs = server.dbs
        old = [_Contents(db.data) for db in dbs]
        for db in dbs:
            db.flush()
        rdb.install_staged(dbs, load)
        for db, before in zip(dbs, old):
            if before.data or db.data:
                touch_all_watched_in_db(server, db.id, before, db)
                server.blocking.swapped(db.id, db.id)
        for hook in server.hooks.flushed:
            hook()
        server.functions_engine.flush()
        load_functions(server, load.result)

    async def _synced(self, reader, writer, generation, aux, usemark, leftover) -> None:
        """The end of readSyncBulkPayload(): the link becomes the master's client
        (replicationCreateMasterClient) and its stream is applied from here."""
        server = self.server
        if len(self.master_replid) != EOF_MARK_SIZE:
            # SYNC (a master without PSYNC) or a malformed +FULLRESYNC: a history of
            # our own, that no PSYNC can continue.
            self.master_replid = new_replid()
        session = MasterClient(self, self.master_replid, self.initial_offset)
        if session.pre_psync:
            session.reploff = session.read_reploff = 0
        stream_db = aux.get(b"repl-stream-db")
        if stream_db is not None:
            try:
                db_id = int(stream_db)
            except ValueError:
                db_id = -1
            if 0 <= db_id < len(server.dbs):
                session.select(db_id)
        self._attach(session, writer)
        server.clients[session.id] = session
        self.state = CONNECTED
        self.down_since = 0.0
        # After a full resync the master's history is ours, from scratch.
        server.repl.adopt_history(self.master_replid, session.reploff)
        logger.notice("MASTER <-> REPLICA sync: Finished with success")
        if usemark:
            self.send_ack()  # puts us online with a diskless master
        if self.aof_stopped:
            self._restart_aof()
        self.buf = bytearray(leftover)
        self.applied = self.pos = self.need = 0
        if leftover:
            session.read_reploff += len(leftover)
            self._apply(session)
        await self._stream(reader, generation)

    def _install_rdb_file(self) -> bytes:
        """The received file becomes our RDB file (rename over dbfilename)."""
        path = self.server.snapshots.path
        fd, tmp = self.transfer_fd, self.transfer_tmpfile
        try:
            os.fsync(fd)
        except OSError as exc:
            logger.warning(f"Failed trying to sync the temp DB to disk in MASTER <-> REPLICA "
                           f"synchronization: {exc.strerror}")
            raise _LinkFailed from None
        os.close(fd)
        self.transfer_fd = -1
        try:
            os.rename(tmp, path)
        except OSError as exc:
            logger.warning(f"Failed trying to rename the temp DB into {os.path.basename(path)} "
                           f"in MASTER <-> REPLICA synchronization: {exc.strerror}")
            raise _LinkFailed from None
        self.transfer_tmpfile = None
        try:
            dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            logger.warning(f"Failed trying to load the MASTER synchronization DB from disk: "
                           f"{exc.strerror}")
            raise _LinkFailed from None

    def _empty_data(self) -> None:
        """emptyData(-1, ...): every database and the function libraries."""
        server = self.server
        for db in server.dbs:
            if db.data:
                touch_all_watched_in_db(server, db.id, db, None)
            db.flush()
        server.functions_engine.flush()

    def _begin_loading(self, async_loading: bool) -> None:
        """startLoading(): clients get -LOADING, or with async_loading (the old dataset
        serves them meanwhile) only for the commands flagged no-async-loading."""
        server = self.server
        self.loading = True
        self.async_loading = async_loading
        server.loading = True
        check = self._refuse_during_async_loading if async_loading \
            else server._refuse_while_loading
        if check not in server.hooks.command_checks:
            server.hooks.command_checks.append(check)

    def _end_loading(self) -> None:
        if not self.loading:
            return
        server = self.server
        self.loading = False
        self.async_loading = False
        server.loading = False
        checks = server.hooks.command_checks
        for check in (server._refuse_while_loading, self._refuse_during_async_loading):
            if check in checks:
                checks.remove(check)

    def _refuse_during_async_loading(self, client, spec, argv) -> None:
        # processCommand(): is_deny_async_loading_command, EXEC of one included.
        if "no_async_loading" in spec.flags:
            raise CommandError(LOADING)
        multi = client.multi
        if spec.name == "exec" and multi is not None and spec.container is None \
                and any("no_async_loading" in s.flags for s, _ in multi.queue):
            raise CommandError(LOADING)

    async def _load(self, data: bytes, writer, generation: int):
        """The snapshot into the databases, giving the loop a turn every
        loading-process-events-interval-bytes (clients get -LOADING meanwhile), and
        a newline to the master every second (replicationSendNewlineToMaster)."""
        server = self.server
        steps = rdb.iter_load_snapshot(
            data, server.dbs, now_ms=0, log=logger.warning,
            pause_every=server.config["loading-process-events-interval-bytes"], packed=True)
        newline_at = time.time()
        with rdb.paused_gc():
            await asyncio.sleep(0)
            while True:
                try:
                    next(steps)
                except StopIteration as done:
                    result = done.value
                    break
                now = time.time()
                if now - newline_at >= 1:
                    newline_at = now
                    writer.write(b"\n")
                await asyncio.sleep(0)
                if generation != self.generation or server.stopping():
                    steps.close()
                    return None
        load_functions(server, result)
        return result

    def _restart_aof(self) -> None:
        """restartAOFAfterSYNC(): a new AOF from the new dataset (a rewrite)."""
        try:
            apply_appendonly(self.server, True)
        except Exception:
            logger.warning("Failed enabling the AOF after successful master synchronization! "
                           "Trying it again in one second.")
            return  # the cron tries again
        self.aof_stopped = False

    # -- the stream ------------------------------------------------------------------------------

    async def _stream(self, reader, generation: int) -> None:
        """readQueryFromClient() for the master from here on: its bytes are applied in
        the loop turn that reads them (a client reading this replica right after its
        write reached the master finds it here, as with Redis), by a protocol that
        takes the connection over from the handshake's stream reader."""
        writer = self.writer
        if generation != self.generation or writer is None or self.session is None:
            return
        transport = writer.transport
        # What the reader holds already comes first (asyncio's StreamReader keeps it in
        # its _buffer: there is no public way to take it without waiting).
        held = bytes(reader._buffer)
        reader._buffer.clear()
        eof = reader.at_eof()
        transport.set_protocol(_MasterStream(self, generation))
        if not eof and not transport.is_closing() and not transport.is_reading():
            transport.resume_reading()  # the reader may have paused it
        if held:
            self._received(generation, held)
        if eof:
            self._stream_lost(generation)

    def _received(self, generation: int, data: bytes) -> None:
        if generation != self.generation:
            return
        session = self.session
        if session is None:
            return
        session.last_interaction = time.time()
        session.read_reploff += len(data)
        self.server.stats.total_net_repl_input_bytes += len(data)
        self.buf += data
        self._apply(session)

    def _stream_lost(self, generation: int) -> None:
        if generation != self.generation or self.session is None:
            return
        if self.server.stopping():
            return
        self.free_master(cache=True)

    def _busy_script(self) -> bool:
        """processInputBuffer(): the master's stream waits while a script is busy (it
        is accumulated, not answered -BUSY), and is applied once the script ended."""
        scripting = self.server.scripting
        if scripting is None or not scripting.busy:
            return False
        if not self._resume_scheduled:
            self._resume_scheduled = True
            self.server.loop.call_later(BUSY_RETRY, self._resume_after_script,
                                        self.generation)
        return True

    def _resume_after_script(self, generation: int) -> None:
        self._resume_scheduled = False
        session = self.session
        if generation == self.generation and session is not None:
            self._apply(session)

    def buffered(self) -> int:
        """The query buffer's size (CLIENT LIST qbuf of the master)."""
        return len(self.buf) - self.applied

    def _apply(self, session: MasterClient) -> None:
        """processInputBuffer() for the master: run every complete command; the bytes
        of each applied command (the newlines before it included) advance reploff
        and go on to our backlog and replicas — a transaction's only once its EXEC
        ran (commandProcessed())."""
        buf = self.buf
        size = len(buf)
        if size < self.need:
            return  # a big argument still arriving: nothing to parse yet
        if self._busy_script():
            return
        server = self.server
        if server.pause_until and session in server.postponed:
            return  # held by CLIENT PAUSE (see below): MasterClient.resume_postponed()
        self.need = 0
        pos = self.pos
        fed = self.applied
        fast = RequestParser._fast
        held = False
        try:
            while pos < size and not held:
                first = buf[pos]
                if first == 0x2A:  # '*'
                    # Canonical commands (what masters send) in one go: their extents
                    # follow from their arguments.
                    commands, _span = fast(bytes(buf[pos:]))
                    if commands:
                        batch = [(argv, _canonical_len(argv)) for argv in commands]
                    else:
                        argv, end = _split_multibulk(buf, pos, size)
                        if argv is None:
                            self.need = end
                            break
                        batch = ((argv, end - pos),)
                elif first == 0x0A or first == 0x0D:  # a keep-alive newline
                    nl = buf.find(b"\n", pos)
                    if nl < 0:
                        break
                    if nl != pos and buf[pos:nl] != b"\r":
                        raise ProtocolError("inline")
                    pos = nl + 1
                    continue
                else:
                    raise ProtocolError("inline")
                for argv, length in batch:
                    if argv and server.pause_until and server.must_postpone(session, argv):
                        # processCommand(): the master's client is paused like any
                        # other (only replicas are not); the rest of its stream waits.
                        server.postpone(session)
                        held = True
                        break
                    pos += length
                    if argv:
                        server.master_executing = True
                        try:
                            reply = server.execute(session, argv)
                        finally:
                            server.master_executing = False
                        if isinstance(reply, CommandError):
                            self._error_to_master(session, reply, argv)
                        if self.session is not session:
                            # The command dropped the link: what ran is ours still.
                            self._feed(buf, fed, self.applied)
                            return
                    if session.multi is None:
                        session.reploff += pos - self.applied
                        self.applied = pos
        except ProtocolError as exc:
            self._feed(buf, fed, self.applied)
            self._protocol_error(session, str(exc))
            return
        self._feed(buf, fed, self.applied)
        applied = self.applied
        if applied:
            del buf[:applied]
            pos -= applied
            if self.need:
                self.need -= applied
            self.applied = 0
        self.pos = pos
        if len(buf) - pos > server.config["client-query-buffer-limit"]:
            self._protocol_error(session, "too big")

    def _feed(self, buf, start: int, end: int) -> None:
        """The applied bytes on: our backlog and our replicas get the master's stream
        as it was sent (replicationFeedStreamFromMasterStream)."""
        if end > start:
            self.server.repl.feed(bytes(buf[start:end]))

    def _error_to_master(self, session, error: CommandError, argv) -> None:
        """afterErrorReply() for the master's client: logged (with the end of the
        backlog, showLatestBacklog()), never sent."""
        server = self.server
        server.stats.unexpected_error_replies += 1
        # c->lastcmd: what argv named (an unknown command has none).
        spec = server.commands.get(argv[0].lower())
        ran = session.cmd
        if spec is None:
            name = "<unknown>"
        elif ran is not None and (ran is spec or ran.container is spec):
            name = ran.fullname
        else:
            name = spec.fullname
        logger.warning(f"== CRITICAL == This replica is sending an error to its master: "
                       f"'{error.message[:4096]}' after processing the command '{name}'")
        backlog = server.repl.backlog
        if backlog is not None and backlog.histlen:
            tail = bytes(backlog.buf[-min(256, backlog.histlen):])
            logger.warning(f"Latest backlog is: '{sds_repr(tail)}'")

    def _protocol_error(self, session, what: str) -> None:
        if what == "inline":
            logger.warning("WARNING: Receiving inline protocol from master, master stream "
                           "corruption? Closing the master connection and discarding the "
                           "cached master.")
        else:
            logger.warning(f"Protocol error ({what}) from master: closing the master "
                           f"connection and discarding the cached master.")
        if self.session is session:
            self.free_master(cache=False)

    # -- ACKs ---------------------------------------------------------------------------------------

    def send_ack(self) -> None:
        """REPLCONF ACK <offset> to the master now (replicationSendAck)."""
        session = self.session
        writer = self.writer
        if session is None or writer is None:
            return
        try:
            writer.write(encode_command([b"REPLCONF", b"ACK", b"%d" % session.reploff]))
        except Exception:
            pass

    # -- state for ROLE and INFO ------------------------------------------------------------------

    def link_up(self) -> bool:
        return self.state == CONNECTED

    def state_name(self) -> str:
        """ROLE's state: connect, connecting, handshake, sync, connected."""
        return self.state

    def processed_offset(self) -> int:
        return self.session.reploff if self.session is not None else -1

    def info_fields(self) -> dict:
        """INFO replication's replica fields, master_host … replica_announced."""
        now = time.time()
        config = self.server.config
        client = self.session or self.cached
        reploff = read_reploff = 1
        if client is not None:
            reploff, read_reploff = client.reploff, client.read_reploff
        out = {
            "master_host": self.host,
            "master_port": self.port,
            "master_link_status": "up" if self.state == CONNECTED else "down",
            "master_last_io_seconds_ago": int(now - self.session.last_interaction)
            if self.session is not None else -1,
            "master_sync_in_progress": int(self.state == TRANSFER),
            "slave_read_repl_offset": read_reploff,
            "slave_repl_offset": reploff,
        }
        if self.state == TRANSFER:
            size, read = self.transfer_size, self.transfer_read
            out.update({
                "master_sync_total_bytes": size,
                "master_sync_read_bytes": read,
                "master_sync_left_bytes": size - read,
                "master_sync_perc": "%.2f" % ((read / size) * 100 if size else 0),
                "master_sync_last_io_seconds_ago": int(now - self.transfer_lastio),
            })
        if self.state != CONNECTED:
            out["master_link_down_since_seconds"] = int(now - self.down_since) \
                if self.down_since else -1
        out["slave_priority"] = config["replica-priority"]
        out["slave_read_only"] = int(bool(config["replica-read-only"]))
        out["replica_announced"] = int(bool(config["replica-announced"]))
        return out

    # -- the checks while a replica ---------------------------------------------------------------

    def _obeyed(self, client) -> bool:
        """mustObeyClient(): the master and the AOF loader (and a script they run)."""
        if "M" in client.flags or client.loading:
            return True
        if client.script:
            scripting = self.server.scripting
            run = scripting.current if scripting is not None else None
            if run is not None:
                return "M" in run.caller.flags or run.caller.loading
        return False

    def _check(self, client, spec, argv) -> None:
        """processCommand()'s replica checks: -READONLY, -MASTERDOWN."""
        config = self.server.config
        multi = client.multi
        is_exec = spec.name == "exec" and multi is not None and spec.container is None
        writes = spec.is_write or (is_exec and multi.holds("is_write"))
        if not writes and "no_mandatory_keys" in spec.flags:
            # getCommandFlags(): a script that declares its flags writes unless no-writes
            # (EVAL* and FCALL* are the no_mandatory_keys commands it concerns).
            flags = self.server.script_flags(spec, argv)
            writes = flags is not None and b"no-writes" not in flags
        read_only = config["replica-read-only"]
        self.write_lookups = writes and not read_only
        if read_only and writes and not self._obeyed(client) and not (
                client.script and self.server.scripting.past_first_write(client)):
            raise CommandError(READONLY)
        if self.state != CONNECTED and not config["replica-serve-stale-data"] and (
                not self._stale_allowed(spec, argv)
                or (is_exec and any("stale" not in s.flags for s, _ in multi.queue))) \
                and not self._obeyed(client):
            if client.script:
                # scriptVerifyAllowStale(): a command from an allow-stale script (the
                # script itself got this far) that is not flagged stale.
                raise CommandError(STALE_FROM_SCRIPT)
            raise CommandError(MASTERDOWN)

    def _stale_allowed(self, spec, argv) -> bool:
        """CMD_STALE in getCommandFlags(): a script that declares its flags is stale
        only with allow-stale (scriptFlagsToCmdFlags() replaces EVAL's/FCALL's own)."""
        if "no_mandatory_keys" in spec.flags:  # EVAL*, FCALL*
            flags = self.server.script_flags(spec, argv)
            if flags is not None:
                return b"allow-stale" in flags
        return "stale" in spec.flags

    def shutdown_hook(self, flags) -> None:
        """Shutting down: a transfer in progress is abandoned with its temp file, the
        link closed (nothing reconnects: the server is stopping)."""
        if self.host is None:
            return
        if not self.cancel_handshake(reconnect=False) and self.session is not None:
            self._close_connection()

    # -- cron -----------------------------------------------------------------------------------------

    def cron(self) -> None:
        """Once a second: connect / reconnect, ACK, repl-timeout (replicationCron)."""
        if self.host is None:
            return
        if self.expiring:
            self._expire_replica_keys()
        now = time.time()
        if now - self._last_cron < 1.0:
            return
        self._last_cron = now
        timeout = self.server.config["repl-timeout"]
        if self.state in (CONNECTING, HANDSHAKE) and now - self.transfer_lastio > timeout:
            logger.warning("Timeout connecting to the MASTER...")
            self.cancel_handshake(reconnect=True)
        if self.state == TRANSFER and not self.loading and now - self.transfer_lastio > timeout:
            logger.warning("Timeout receiving bulk data from MASTER... If the problem persists "
                           "try to set the 'repl-timeout' parameter in redis.conf to a larger "
                           "value.")
            self.cancel_handshake(reconnect=True)
        session = self.session
        if self.state == CONNECTED and session is not None \
                and now - session.last_interaction > timeout:
            logger.warning("MASTER timeout: no data nor PING received...")
            self.free_master(cache=True)
        if self.state == CONNECT:
            logger.notice(f"Connecting to MASTER {self.host}:{self.port}")
            self.connect()
        session = self.session
        if session is not None:
            if not session.pre_psync:
                self.send_ack()
        if self.aof_stopped and self.state == CONNECTED:
            self._restart_aof()


def _canonical_len(argv: list) -> int:
    """The bytes of argv as a canonical multibulk request."""
    total = 3 + len(str(len(argv)))
    for arg in argv:
        n = len(arg)
        total += n + 5 + (1 if n < 10 else 2 if n < 100 else 3 if n < 1000 else len(str(n)))
    return total


def _split_multibulk(buf, pos: int, size: int):
    """One "*N $len arg ..." command at pos: (argv, end), or (None, the buffer size
    needed before trying again) when incomplete."""
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        if size - pos > MAX_LINE:
            raise ProtocolError("too big multibulk count")
        return None, size + 1
    try:
        count = int(buf[pos + 1:nl])
    except ValueError:
        raise ProtocolError("invalid multibulk length") from None
    p = nl + 2
    argv = []
    for _ in range(count):
        if p >= size:
            return None, size + 1
        if buf[p] != 0x24:  # '$'
            raise ProtocolError(f"expected '$', got '{chr(buf[p])}'")
        nl = buf.find(b"\r\n", p)
        if nl < 0:
            if size - p > MAX_LINE:
                raise ProtocolError("too big bulk count")
            return None, size + 1
        try:
            length = int(buf[p + 1:nl])
        except ValueError:
            raise ProtocolError("invalid bulk length") from None
        if length < 0:
            raise ProtocolError("invalid bulk length")
        start = nl + 2
        end = start + length
        if end + 2 > size:
            return None, end + 2
        argv.append(bytes(buf[start:end]))
        p = end + 2
    return argv, p
