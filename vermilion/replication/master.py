"""The master side (replication.c's MASTER half): replicas attached by SYNC/PSYNC.

A client that sends PSYNC (or the old SYNC) becomes a replica. A partial resync
(+CONTINUE) gets the backlog from its offset and then the stream. A full resync
forks a child that writes an RDB snapshot — to the RDB file (repl-diskless-sync no),
sent as "$<len>" bulk once the child is done, or into a pipe that the loop relays
to the replicas' sockets between "$EOF:<mark>" and the mark (diskless), as fast as
the slowest of them takes it (rdbPipeReadHandler). The
stream produced meanwhile stays in the backlog from each replica's starting offset
(Redis 7.0's shared replication buffer: the backlog holds what a syncing replica
still needs beyond repl-backlog-size, and a replica's output buffer is that part of
it, limited by max(its hard limit, repl-backlog-size)); a disk-synced replica
gets it right after the file, a diskless one on its first REPLCONF ACK (the replica
finds the end of an EOF-marked payload only if nothing follows it in the same read).

Stream bytes for online replicas are written at once after a quiet spell and, under
load, gathered and written at most once a millisecond (Redis writes replicas' buffers
from beforeSleep), after the AOF.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

from ..log import logger
from ..protocol.errors import CommandError
from ..keyspace.blocking import can_block

# replstateToString()
WAIT_BGSAVE_START = "wait_bgsave_start"
WAIT_BGSAVE_END = "wait_bgsave_end"
SEND_BULK = "send_bulk"
ONLINE = "online"
_STATE_NAMES = {WAIT_BGSAVE_START: "wait_bgsave", WAIT_BGSAVE_END: "wait_bgsave",
                SEND_BULK: "send_bulk", ONLINE: "online"}

NOREPLICAS = "NOREPLICAS Not enough good replicas to write."
# getFailoverStateString()
NO_FAILOVER = "no-failover"
WAITING_FOR_SYNC = "waiting-for-sync"
FAILOVER_IN_PROGRESS = "failover-in-progress"
PAUSE_FOREVER = 10 ** 9  # seconds: until the failover ends
STREAM_WRITE_DELAY = 0.001  # seconds the stream may wait to be written with more
PIPE_READ = 16 * 1024  # bytes relayed from the diskless child per read (PROTO_IOBUF_LEN)
_MORE_TO_COME = (b"*2\r\n$6\r\nSELECT\r\n", b"*1\r\n$5\r\nMULTI\r\n")
PIPE_POLL = 0.005  # seconds between looks at replicas the relay waits for
EOF_MARK_SIZE = 40  # RDB_EOF_MARK_SIZE
PR_SET_PDEATHSIG = 1  # prctl(2)


def _exit_with_parent(parent: int) -> None:
    """A child writing for replicas dies with its parent (Redis's child notices when
    it reports its progress to the parent and the pipe is gone): the kernel sends it
    SIGUSR1, the signal killRDBChild() uses, when the parent is gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGUSR1)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # gone before the request took effect
        os._exit(1)


class ReplicaLink:
    """What a master knows of one replica (the slave_* fields of its struct client)."""

    __slots__ = ("state", "capa_eof", "capa_psync2", "listening_port", "announced_ip",
                 "ack_off", "ack_time", "pre_psync", "rdb_only",
                 "pending_from", "streaming", "start_on_ack", "asked_at", "rdb_filter",
                 "last_partial_write", "unsent")

    def __init__(self):
        self.state = None
        self.capa_eof = self.capa_psync2 = False
        self.listening_port = 0
        self.announced_ip: str | None = None
        self.ack_off = 0
        self.ack_time = 0.0
        self.pre_psync = False  # attached with SYNC: no REPLCONF ACKs expected
        self.rdb_only = False
        # While it syncs: the offset of the first byte of the stream it will be sent
        # after the snapshot (the backlog keeps everything from there).
        self.pending_from: int | None = None
        self.streaming = False  # takes the stream as it is produced
        self.start_on_ack = False  # diskless: the stream starts on the first ACK
        self.asked_at = 0.0
        # REPLCONF rdb-filter-only: None (everything), else what to keep, e.g.
        # {"functions"} (slave_req's SLAVE_REQ_RDB_EXCLUDE_* bits); forces diskless.
        self.rdb_filter: frozenset | None = None
        # Diskless transfer: when a write of the child's bytes last left some unsent
        # (repl_last_partial_write; 0: all sent), and how many were left then.
        self.last_partial_write = 0.0
        self.unsent = 0


class SyncFork:
    """The child writing an RDB for replicas, and the replicas that wait for it. A
    diskless child writes into a pipe that the loop relays to the replicas it was
    started for (rdb_pipe_conns): the pipe is read only while every one of them took
    all it was given (rdb_pipe_numconns_writing == 0), so the slowest replica paces
    the child. The child exits only once its parent closed exit_pipe, after the
    pipe was drained (rdb_child_exit_pipe)."""

    __slots__ = ("pid", "socket_target", "started", "offset", "pipe", "replicas", "mark",
                 "dirty", "exit_pipe", "conns", "writing", "reading", "poll", "killed")

    def __init__(self, pid, socket_target, offset, replicas, pipe=-1, mark=b"",
                 exit_pipe=-1):
        self.pid = pid
        self.socket_target = socket_target
        self.started = time.time()
        self.offset = offset
        self.pipe = pipe
        self.replicas = replicas
        self.mark = mark
        self.dirty = 0
        self.exit_pipe = exit_pipe
        self.conns = list(replicas) if socket_target else []  # still fed by the pipe
        self.writing: set = set()  # ... and not done with the last bytes read
        self.reading = False  # the pipe's reader is installed
        self.poll = None  # the timer that watches the writing ones drain
        self.killed = False  # no replica left to feed: the child was told to exit


class ReplicaSet:
    """server.slaves and the master's side of replication."""

    def __init__(self, server):
        self.server = server
        self.replicas: list = []  # the clients, in attach order (server.slaves)
        self.fork: SyncFork | None = None
        self.batch: list[bytes] = []  # stream bytes of this turn, not yet written
        self._flush_scheduled = False
        self._last_flush = 0.0  # loop time of the last write of the stream
        self.waits: list = []  # (waiter, offset, numreplicas) of blocked WAITs
        self.get_ack = False  # send REPLCONF GETACK * before the loop sleeps
        self.good_replicas = 0  # repl_good_slaves_count
        self.sync_full = self.sync_partial_ok = self.sync_partial_err = 0
        self._last_cron = 0.0
        self._cron_loops = 0
        # FAILOVER: NO_FAILOVER, WAITING_FOR_SYNC or FAILOVER_IN_PROGRESS, its target
        # (host, port) once known, its deadline (0: none) and FORCE.
        self.failover_state = NO_FAILOVER
        self.failover_target: tuple | None = None
        self.failover_end = 0.0
        self.failover_force = False

    # -- naming and INFO -------------------------------------------------------------

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT (resetServerStats()): the sync counters start over."""
        self.sync_full = self.sync_partial_ok = self.sync_partial_err = 0

    @staticmethod
    def name(client) -> str:
        """replicationGetSlaveName()"""
        link = client.replica
        ip = link.announced_ip or client.addr.rsplit(":", 1)[0]
        if link.listening_port:
            return f"{ip}:{link.listening_port}"
        return f"{ip}:<unknown-replica-port>"

    def info_lines(self) -> dict:
        out = {}
        now = time.time()
        for i, client in enumerate(self.replicas):
            link = client.replica
            ip = link.announced_ip or client.addr.rsplit(":", 1)[0]
            lag = int(now - link.ack_time) if link.state == ONLINE else 0
            out[f"slave{i}"] = (f"ip={ip},port={link.listening_port},"
                                f"state={_STATE_NAMES[link.state]},"
                                f"offset={link.ack_off},lag={lag}")
        return out

    def role_entries(self) -> list:
        out = []
        for client in self.replicas:
            link = client.replica
            if link.state != ONLINE:
                continue
            ip = link.announced_ip or client.addr.rsplit(":", 1)[0]
            out.append([ip.encode(), b"%d" % link.listening_port, b"%d" % link.ack_off])
        return out

    # -- SYNC / PSYNC ------------------------------------------------------------------

    def sync(self, client, argv: list[bytes]) -> None:
        """syncCommand()"""
        server = self.server
        repl = server.repl
        link = client.replica
        if link is None:
            link = client.replica = ReplicaLink()
        psync = argv[0].lower() == b"psync"
        if psync and len(argv) > 3 and argv[3].lower() == b"failover":
            self._failover_request(client, argv[1].decode("latin-1"))
        if self.failover_state != NO_FAILOVER:
            raise CommandError("NOMASTERLINK Can't SYNC while failing over")
        if server.master_link.host is not None and not server.master_link.link_up():
            raise CommandError("NOMASTERLINK Can't SYNC while not connected with my master")
        logger.notice(f"Replica {self.name(client)} asks for synchronization")
        if psync:
            try:
                offset = int(argv[2])
            except ValueError:
                logger.warning(f"Replica {self.name(client)} asks for synchronization but "
                               f"with a wrong offset")
                raise CommandError("ERR value is not an integer or out of range") from None
            replid = argv[1].decode("latin-1")
            reason = repl.can_continue(replid, offset)
            if reason is None:
                self._continue(client, offset)
                self.sync_partial_ok += 1
                return
            if reason == "":
                logger.notice(f"Full resync requested by replica {self.name(client)}")
            elif reason == "lack of backlog":
                logger.notice(f"Unable to partial resync with replica {self.name(client)} for "
                              f"lack of backlog (Replica request was: {offset}).")
                if offset > repl.offset:
                    logger.warning(f"Warning: replica {self.name(client)} tried to PSYNC with an "
                                   f"offset that is greater than the master replication offset.")
            else:
                logger.notice(f"Partial resynchronization not accepted: {reason}")
            if replid != "?":
                self.sync_partial_err += 1
        else:
            link.pre_psync = True
        self.sync_full += 1
        link.state = WAIT_BGSAVE_START
        link.asked_at = time.time()
        client.flags.add("S")
        client.refresh_access()  # an attached replica takes the checked path
        self.replicas.append(client)
        if len(self.replicas) == 1 and repl.backlog is None:
            repl.change_replid()
            repl.clear_replid2()
            repl.create_backlog()
            logger.notice(f"Replication backlog created, my new replication IDs are "
                          f"'{repl.replid}' and '{repl.replid2}'")
        fork = self.fork
        if fork is not None and not fork.socket_target:
            # A disk snapshot for replicas is being written: attach to it, with the
            # stream the others have gathered since it started.
            other = next((r for r in fork.replicas if r.replica.state == WAIT_BGSAVE_END), None)
            if other is not None and link.capa_eof >= other.replica.capa_eof:
                self.flush()
                self._setup_full_resync(client, fork.offset)
                link.pending_from = other.replica.pending_from
                self.refresh_backlog_pin()
                fork.replicas.append(client)
                logger.notice("Waiting for end of BGSAVE for SYNC")
            else:
                logger.notice("Can't attach the replica to the current BGSAVE. Waiting for "
                              "next BGSAVE for SYNC")
        elif fork is not None:
            logger.notice("Current BGSAVE has socket target. Waiting for next BGSAVE for SYNC")
        elif server.config["repl-diskless-sync"] and link.capa_eof \
                and server.config["repl-diskless-sync-delay"]:
            logger.notice("Delay next BGSAVE for diskless SYNC")
        else:
            self._start_fork()

    def _continue(self, client, offset: int) -> None:
        """The partial resync: +CONTINUE, the backlog from offset, then the stream."""
        repl = self.server.repl
        link = client.replica
        self.flush()  # what this turn produced so far is in the backlog already
        client.flags.add("S")
        client.refresh_access()  # an attached replica takes the checked path
        link.state = ONLINE
        link.ack_time = time.time()
        self.replicas.append(client)
        head = (b"+CONTINUE %s\r\n" % repl.replid.encode()) if link.capa_psync2 \
            else b"+CONTINUE\r\n"
        backlog = repl.backlog.since(offset)
        client.write(head + backlog)
        link.streaming = True
        logger.notice(f"Partial resynchronization request from {self.name(client)} accepted. "
                      f"Sending {len(backlog)} bytes of backlog starting from offset {offset}.")
        self.refresh_good_replicas()

    def _setup_full_resync(self, client, offset: int) -> None:
        """replicationSetupSlaveForFullResync()"""
        link = client.replica
        link.state = WAIT_BGSAVE_END
        link.pending_from = offset + 1
        self.refresh_backlog_pin()
        self.server.repl.seldb = -1  # the stream re-selects its database for it
        if not link.pre_psync:
            client.write(b"+FULLRESYNC %s %d\r\n" % (self.server.repl.replid.encode(), offset))

    def _failover_request(self, client, replid: str) -> None:
        """PSYNC <replid> <offset> FAILOVER: our master hands over to us."""
        server = self.server
        logger.warning(f"Failover request received for replid {replid}.")
        if server.master_link.host is None:
            raise CommandError("ERR PSYNC FAILOVER can't be sent to a master.")
        if replid != server.repl.replid:
            raise CommandError("ERR PSYNC FAILOVER replid must match my replid.")
        server.master_link.unset_master()
        logger.notice(f"MASTER MODE enabled (failover request from "
                      f"'{server.describe_client(client)}')")

    # -- the RDB child ------------------------------------------------------------------

    def _start_fork(self) -> None:
        """startBgsaveForReplication(): every replica waiting to start is served by it."""
        server = self.server
        repl = server.repl
        waiting = [c for c in self.replicas if c.replica.state == WAIT_BGSAVE_START]
        if not waiting:
            return
        # One child serves the replicas that want what the first one wants.
        rdb_filter = waiting[0].replica.rdb_filter
        waiting = [c for c in waiting if c.replica.rdb_filter == rdb_filter]
        eof = all(c.replica.capa_eof for c in waiting)
        socket_target = (bool(server.config["repl-diskless-sync"]) or rdb_filter is not None) \
            and eof
        logger.notice("Starting BGSAVE for SYNC with target: "
                      + ("replicas sockets" if socket_target else "disk"))
        self.flush()
        aux = repl.save_info()
        offset = repl.offset
        read_end = write_end = exit_read = exit_write = -1
        mark = b""
        if socket_target:
            read_end, write_end = os.pipe()
            exit_read, exit_write = os.pipe()
            mark = os.urandom(EOF_MARK_SIZE // 2).hex().encode()
        try:
            pid = os.fork()
        except OSError as exc:
            logger.warning(f"Can't save in background: fork: {exc.strerror}")
            for fd in (read_end, write_end, exit_read, exit_write):
                if fd >= 0:
                    os.close(fd)
            self._fail_waiting(waiting, "BGSAVE failed, replication can't continue")
            return
        if pid == 0:
            self._child(socket_target, write_end, read_end, aux, rdb_filter, mark,
                        exit_read, exit_write)
        server.stats.total_forks += 1  # redisFork() counts the full sync's child too
        if socket_target:
            os.close(write_end)
            os.close(exit_read)
            os.set_blocking(read_end, False)
            logger.notice(f"Background RDB transfer started by pid {pid}")
        else:
            logger.notice(f"Background saving started by pid {pid}")
        self.fork = SyncFork(pid, socket_target, offset, waiting, read_end, mark, exit_write)
        self.fork.dirty = server.dirty
        for client in waiting:
            self._setup_full_resync(client, offset)
            if socket_target:
                client.write(b"$EOF:" + mark + b"\r\n")
        if socket_target:
            self._read_pipe(self.fork, True)

    def _child(self, socket_target: bool, write_end: int, read_end: int, aux: dict,
               rdb_filter, mark: bytes, exit_read: int, exit_write: int) -> None:
        """In the forked child: write the snapshot and leave without any cleanup. A
        diskless one writes the RDB and the EOF mark into the pipe (the read end
        closed: if the parent dies, the child gets a write error and exits), then
        waits for the parent to say it read everything (rdbSaveToSlavesSockets)."""
        parent = os.getppid()
        self.server.enter_child("redis-rdb-to-slaves" if socket_target else "redis-rdb-bgsave")
        _exit_with_parent(parent)
        code = 0
        try:
            snapshots = self.server.snapshots
            if socket_target:
                os.close(read_end)
                os.close(exit_write)
                # rioFdWrite(): small writes gather up to PROTO_IOBUF_LEN first.
                with os.fdopen(write_end, "wb", buffering=PIPE_READ) as out:
                    snapshots.write_stream(out, aux, rdb_filter)
                    out.write(mark)
            else:
                snapshots.write_file(snapshots.path, aux)
                logger.notice("DB saved on disk")
        except BaseException:
            code = 1
        if socket_target:
            try:
                os.read(exit_read, 1)  # returns once the parent closed its end
            except BaseException:
                pass
        os._exit(code)

    # -- relaying the diskless child's pipe (rdbPipeReadHandler, rdbPipeWriteHandler) --

    def _read_pipe(self, fork: SyncFork, on: bool) -> None:
        if fork.pipe < 0 or fork.reading == on or (on and fork.killed):
            return
        fork.reading = on
        if on:
            self.server.loop.add_reader(fork.pipe, self._relay_pipe)
        else:
            self.server.loop.remove_reader(fork.pipe)

    @staticmethod
    def _unsent(client) -> int:
        transport = client.transport
        try:
            return transport.get_write_buffer_size()
        except Exception:
            return 0

    def _relay_pipe(self) -> None:
        """rdbPipeReadHandler(): the child's bytes to every replica it feeds; as soon as
        one could not take them all, the pipe waits until it has."""
        fork = self.fork
        if fork is None or fork.pipe < 0:
            return
        stats = self.server.stats
        while True:
            try:
                data = os.read(fork.pipe, PIPE_READ)
            except BlockingIOError:
                return
            except OSError as exc:
                logger.warning(f"Diskless rdb transfer, read error sending DB to replicas: "
                               f"{exc.strerror}")
                for client in list(fork.conns):
                    self._drop(client)
                self._kill_child(fork)
                return
            if not data:
                # The write end was closed: everything was read.
                self._read_pipe(fork, False)
                logger.warning(f"Diskless rdb transfer, done reading from pipe, "
                               f"{len(fork.conns)} replicas still up.")
                # The child may exit now; once it is reaped, the replicas go online.
                self._close_exit_pipe(fork)
                return
            now = time.time()
            alive = 0
            for client in list(fork.conns):
                if client.closing or client.transport is None \
                        or client.transport.is_closing():
                    logger.warning("Diskless rdb transfer, write error sending DB to "
                                   "replica: Connection reset by peer")
                    self._drop(client)
                    continue
                client.transport.write(data)
                stats.total_net_repl_output_bytes += len(data)
                unsent = self._unsent(client)
                if unsent:
                    link = client.replica
                    link.last_partial_write = now
                    link.unsent = unsent
                    fork.writing.add(client)
                alive += 1
            if not alive:
                logger.warning("Diskless rdb transfer, last replica dropped, killing fork "
                               "child.")
                self._kill_child(fork)
            if fork.writing or not alive:
                self._read_pipe(fork, False)
                if fork.writing:
                    self._watch_writing(fork)
                return

    def _watch_writing(self, fork: SyncFork) -> None:
        if fork.poll is None:
            fork.poll = self.server.loop.call_later(PIPE_POLL, self._writing_progress, fork)

    def _writing_progress(self, fork: SyncFork) -> None:
        """rdbPipeWriteHandler(): the replicas a write left bytes for, as their sockets
        take them; once none is left behind the pipe is read again."""
        fork.poll = None
        if self.fork is not fork:
            return
        now = time.time()
        for client in list(fork.writing):
            unsent = self._unsent(client) if client.transport is not None else 0
            link = client.replica
            if not unsent:
                fork.writing.discard(client)
                if link is not None:
                    link.last_partial_write = 0.0
            elif link is not None and unsent < link.unsent:
                link.last_partial_write = now  # a partial write
                link.unsent = unsent
        if fork.writing:
            self._watch_writing(fork)
        elif fork.pipe >= 0:
            self._read_pipe(fork, True)

    def _conn_removed(self, fork: SyncFork, client) -> None:
        """A replica the pipe fed is gone (rdbPipeWriteHandlerConnRemoved)."""
        if client in fork.conns:
            fork.conns.remove(client)
        if client in fork.writing:
            fork.writing.discard(client)
            if not fork.writing and fork.pipe >= 0:
                self._read_pipe(fork, True)

    def _drop(self, client) -> None:
        """freeClient() of a replica: what its socket holds unsent is dropped too."""
        self.detach(client)
        client.abort()

    def _close_exit_pipe(self, fork: SyncFork) -> None:
        if fork.exit_pipe >= 0:
            os.close(fork.exit_pipe)
            fork.exit_pipe = -1

    def _close_pipes(self, fork: SyncFork) -> None:
        self._close_exit_pipe(fork)
        if fork.poll is not None:
            fork.poll.cancel()
            fork.poll = None
        if fork.pipe >= 0:
            self._read_pipe(fork, False)
            os.close(fork.pipe)
            fork.pipe = -1
        fork.conns = []
        fork.writing.clear()

    def kill_child(self) -> None:
        """killRDBChild() of the child writing for replicas, if one runs."""
        if self.fork is not None:
            self._kill_child(self.fork)

    @staticmethod
    def _kill_child(fork: SyncFork) -> None:
        """killRDBChild(): the cron reaps it (and tells its replicas)."""
        fork.killed = True
        try:
            os.kill(fork.pid, signal.SIGUSR1)
        except OSError:
            pass

    def _reap(self, block: bool = False) -> None:
        """checkChildrenDone() for the replication child."""
        fork = self.fork
        if fork is None:
            return
        try:
            pid, status = os.waitpid(fork.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status = fork.pid, 1 << 8
        if pid == 0:
            return
        self.fork = None
        code = os.waitstatus_to_exitcode(status)
        ok = code == 0
        if fork.socket_target:
            self._close_pipes(fork)
            if ok:
                logger.notice("Background RDB transfer terminated with success")
            elif code > 0:
                logger.warning("Background transfer error")
            else:
                logger.warning(f"Background transfer terminated by signal {-code}")
        elif ok:
            logger.notice("Background saving terminated with success")
            self.server.snapshots.saved(fork.started, fork.dirty)
        elif code > 0:
            logger.warning("Background saving error")
        else:
            logger.warning(f"Background saving terminated by signal {-code}")
            try:  # rdbRemoveTempFile(): a killed child leaves its temp file
                os.unlink(self.server.snapshots.temp_path(fork.pid))
            except OSError:
                pass
        self._child_done(fork, ok)

    def _child_done(self, fork: SyncFork, ok: bool) -> None:
        """updateSlavesWaitingBgsave()"""
        waiting = [c for c in fork.replicas
                   if not c.closing and c.replica is not None and c.replica.state == WAIT_BGSAVE_END]
        if not ok:
            for client in waiting:
                logger.warning("SYNC failed. BGSAVE child returned an error")
                self._fail_waiting([client], None)
            return
        if fork.socket_target:
            for client in waiting:
                logger.notice(f"Streamed RDB transfer with replica {self.name(client)} "
                              f"succeeded (socket). Waiting for REPLCONF ACK from slave to "
                              f"enable streaming")
                # The replica loads what it got; its first ACK starts the stream.
                client.replica.start_on_ack = True
                self._put_online(client, stream=False)
            return
        try:
            with open(self.server.snapshots.path, "rb") as f:
                payload = f.read()
        except OSError as exc:
            logger.warning(f"SYNC failed. Can't open/stat DB after BGSAVE: {exc.strerror}")
            self._fail_waiting(waiting, None)
            return
        for client in waiting:
            client.replica.state = SEND_BULK
            self._send(client, b"$%d\r\n" % len(payload))
            self._send(client, payload)
            self._put_online(client, stream=True)

    def _send(self, client, data: bytes) -> None:
        """The RDB transfer's bytes, straight to the socket (the stream goes through
        client.write, with the output-buffer limits)."""
        self.server.stats.total_net_repl_output_bytes += len(data)
        client.transport.write(data)

    def _fail_waiting(self, clients, error: str | None) -> None:
        for client in clients:
            self.detach(client)
            if error:
                client.write(b"-%s\r\n" % error.encode())
            client.close()

    def _put_online(self, client, stream: bool) -> None:
        """replicaPutOnline() (+ replicaStartCommandStream() when stream)."""
        link = client.replica
        if link.rdb_only:
            # redis-cli --rdb: the snapshot was all it asked for.
            logger.notice(f"RDB transfer completed, rdb only replica ({self.name(client)}) "
                          f"should be disconnected asap")
            self.detach(client)
            client.close()
            return
        link.state = ONLINE
        link.ack_time = time.time()
        self.refresh_good_replicas()
        logger.notice(f"Synchronization with replica {self.name(client)} succeeded")
        if stream:
            self._start_stream(client)

    def _start_stream(self, client) -> None:
        link = client.replica
        self.flush()
        link.start_on_ack = False
        start, link.pending_from = link.pending_from, None
        backlog = self.server.repl.backlog
        if start is not None and backlog is not None:
            pending = backlog.since(start)
            if pending:
                client.write(pending)
        link.streaming = True
        self.refresh_backlog_pin()

    # -- the stream ------------------------------------------------------------------

    def stream(self, data: bytes) -> None:
        """ReplicationState's output: bytes for every replica that takes the stream."""
        if not self.replicas:
            return
        self.batch.append(data)
        loop = self.server.loop
        if not self._flush_scheduled and loop is not None:
            # Redis writes the stream once per event-loop turn; a Python write call per
            # turn costs as much as the command when each turn runs one (clients that
            # do not pipeline), so under load the stream goes out at most once per
            # STREAM_WRITE_DELAY; a write after a quiet spell goes out at once, before
            # the reply that acknowledges it (a client reading a replica right after
            # its write to the master finds it there, as with Redis). The backlog and
            # offsets are current at once; WAIT (GETACK) and every replica state
            # change flush without waiting.
            wait = self._last_flush + STREAM_WRITE_DELAY - loop.time()
            if wait > 0:
                self._flush_scheduled = True
                loop.call_later(wait, self.flush)
            elif data.startswith(_MORE_TO_COME) or self.server.aof.enabled:
                # A SELECT or a MULTI: the rest comes in this turn, and goes with them.
                # With the AOF on, the stream waits for the turn's end, when the AOF
                # has every record of it (beforeSleep writes the AOF first).
                self._flush_scheduled = True
                loop.call_soon(self.flush)
            else:
                self.flush()

    def flush(self) -> None:
        """Write this turn's stream: to online replicas, or to the pending list of those
        still syncing. Called before any replica changes state, so each gets exactly
        the bytes produced after its starting offset."""
        self._flush_scheduled = False
        loop = self.server.loop
        if loop is not None:
            self._last_flush = loop.time()
        if self.get_ack:
            self.get_ack = False
            self.server.repl.sink(self.server.repl.seldb, [b"REPLCONF", b"GETACK", b"*"])
        if not self.batch:
            return
        if self.server.aof.buffer:
            self.server.flush_appends()  # the AOF first, as beforeSleep() does
        data = b"".join(self.batch)
        self.batch = []
        for client in list(self.replicas):
            link = client.replica
            if link.streaming:
                client.write(data)
            elif link.pending_from is not None:
                self._check_pending_limit(client)

    def _check_pending_limit(self, client) -> None:
        """The stream a syncing replica has not received yet is part of its output
        buffer (Redis keeps it there): past the hard replica limit, it is dropped."""
        hard = self.server.hard_output_limit(client)
        if hard and self._pending_bytes(client) >= hard:
            logger.warning(f"Client {self.name(client)} scheduled to be closed ASAP for "
                           f"overcoming of output buffer limits.")
            self.detach(client)
            client.abort()

    # -- REPLCONF ----------------------------------------------------------------------

    def replconf_ack(self, client, offset: int) -> None:
        link = client.replica
        if link is None or "S" not in client.flags:
            return
        if offset > link.ack_off:
            link.ack_off = offset
        link.ack_time = time.time()
        if self.fork is not None and link.state == WAIT_BGSAVE_END:
            self._reap()
        if link.start_on_ack and link.state == ONLINE:
            self._start_stream(client)
        if self.waits:
            self.process_waits()

    # -- memory --------------------------------------------------------------------------

    def buffer_bytes(self) -> tuple[int, int]:
        """(mem_replication_backlog, mem_total_replication_buffers): Redis 7.0 shares
        one buffer between the backlog and the replicas' output; it holds what the
        backlog keeps and what the slowest replica has not taken yet."""
        backlog = self.server.repl.backlog
        held = backlog.histlen if backlog is not None else 0
        behind = max((c.output_buffer_size() for c in self.replicas), default=0)
        return held, held + behind

    def _pending_bytes(self, client) -> int:
        start = client.replica.pending_from
        return 0 if start is None else self.server.repl.offset - start + 1

    def refresh_backlog_pin(self) -> None:
        """The backlog keeps every byte a syncing replica will be sent, even past
        repl-backlog-size (a block referenced by a replica is never trimmed)."""
        backlog = self.server.repl.backlog
        if backlog is None:
            return
        starts = [c.replica.pending_from for c in self.replicas
                  if c.replica is not None and c.replica.pending_from is not None]
        backlog.pin(min(starts) if starts else None)

    # -- shutdown ------------------------------------------------------------------------

    def ready_to_shutdown(self) -> bool:
        """isReadyToShutdown(): every replica acknowledged the whole stream."""
        offset = self.server.repl.offset
        return all(c.replica.ack_off == offset for c in self.replicas)

    def request_acks(self) -> None:
        """sendGetackToReplicas(), before the loop sleeps (with the stream so far)."""
        if not self.get_ack and self.server.loop is not None:
            self.server.loop.call_soon(self.flush)
        self.get_ack = True

    def log_lagging(self) -> None:
        """finishShutdown()'s report on the replicas."""
        offset = self.server.repl.offset
        now = time.time()
        lagging = 0
        for client in self.replicas:
            link = client.replica
            if link.ack_off == offset:
                continue
            lagging += 1
            lag = int(now - link.ack_time) if link.state == ONLINE else 0
            logger.warning(f"Lagging replica {self.name(client)} reported offset "
                           f"{offset - link.ack_off} behind master, lag={lag}, "
                           f"state={_STATE_NAMES[link.state]}.")
        if self.replicas:
            logger.notice(f"{len(self.replicas) - lagging} of {len(self.replicas)} replicas "
                          "are in sync when shutting down.")

    # -- WAIT ----------------------------------------------------------------------------

    def acks_at(self, offset: int) -> int:
        return sum(1 for c in self.replicas
                   if c.replica.state == ONLINE and c.replica.ack_off >= offset)

    def wait(self, client, numreplicas: int, timeout_ms: int):
        """waitCommand()"""
        offset = client.woff
        acked = self.acks_at(offset)
        if acked >= numreplicas or not can_block(client):
            return acked
        waiter = self.server.blocking.block_client(
            client, [], timeout_ms, on_ready=lambda c, key: None,
            on_timeout=lambda c: self.acks_at(offset))
        self.waits.append((client.blocked, offset, numreplicas))
        self.request_acks()
        return waiter

    def process_waits(self) -> None:
        """processClientsWaitingReplicas()"""
        still = []
        for waiter, offset, numreplicas in self.waits:
            if waiter.client.blocked is not waiter:
                continue  # timed out, unblocked or gone
            acked = self.acks_at(offset)
            if acked >= numreplicas:
                self.server.blocking.unblock(waiter, acked)
            else:
                still.append((waiter, offset, numreplicas))
        self.waits = still

    # -- min-replicas-to-write --------------------------------------------------------------

    def refresh_good_replicas(self) -> None:
        config = self.server.config
        max_lag = config["min-replicas-max-lag"]
        if not config["min-replicas-to-write"] or not max_lag:
            return
        now = time.time()
        self.good_replicas = sum(1 for c in self.replicas
                                 if c.replica.state == ONLINE and int(now - c.replica.ack_time) <= max_lag)

    def configure(self, server=None, value=None) -> None:
        """min-replicas-to-write/-max-lag set: the check is installed only while on."""
        checks = self.server.hooks.command_checks
        config = self.server.config
        on = bool(config["min-replicas-to-write"] and config["min-replicas-max-lag"])
        if on:
            self.refresh_good_replicas()
            if self._check_good_replicas not in checks:
                checks.append(self._check_good_replicas)
        elif self._check_good_replicas in checks:
            checks.remove(self._check_good_replicas)

    def _check_good_replicas(self, client, spec, argv) -> None:
        # processCommand(): a master refuses writes (EXEC of queued writes included)
        # while fewer replicas than min-replicas-to-write acknowledged within the lag.
        if self.server.master_link.host is not None:
            return
        multi = client.multi
        writes = spec.is_write or (spec.name == "exec" and multi is not None
                                   and multi.holds("is_write"))
        if writes and self.good_replicas < self.server.config["min-replicas-to-write"] \
                and not (client.script and self.server.scripting.past_first_write(client)):
            raise CommandError(NOREPLICAS)

    # -- FAILOVER --------------------------------------------------------------------------

    def find(self, host: str, port: int):
        """findReplica(): the replica announcing host:port."""
        for client in self.replicas:
            link = client.replica
            ip = link.announced_ip or client.addr.rsplit(":", 1)[0]
            if ip.lower() == host.lower() and link.listening_port == port:
                return client
        return None

    def start_failover(self, target: tuple | None, timeout_ms: int, force: bool) -> None:
        """failoverCommand() once its arguments are checked: writes pause until a
        replica has everything, then this server follows it (updateFailoverStatus)."""
        server = self.server
        if target is not None:
            logger.notice(f"FAILOVER requested to {target[0]}:{target[1]}.")
        else:
            logger.notice("FAILOVER requested to any replica.")
        self.failover_target = target
        self.failover_end = time.time() + timeout_ms / 1000 if timeout_ms else 0.0
        self.failover_force = force
        self.failover_state = WAITING_FOR_SYNC
        server.pause_clients(time.time() + PAUSE_FOREVER, writes_only=True)

    def abort_failover(self, reason: str) -> None:
        """abortFailover()"""
        if self.failover_state == NO_FAILOVER:
            return
        if self.failover_target is not None:
            host, port = self.failover_target
            logger.notice(f"FAILOVER to {host}:{port} aborted: {reason}")
        else:
            logger.notice(f"FAILOVER to any replica aborted: {reason}")
        if self.failover_state == FAILOVER_IN_PROGRESS:
            self.server.master_link.unset_master()
        self.clear_failover()

    def clear_failover(self) -> None:
        """clearFailoverState(): the failover is over, one way or the other."""
        was = self.failover_state
        self.failover_state = NO_FAILOVER
        self.failover_target = None
        self.failover_end = 0.0
        self.failover_force = False
        if was != NO_FAILOVER:
            self.server.unpause_clients()

    def _failover_cron(self, now: float) -> None:
        """updateFailoverStatus()"""
        if self.failover_state != WAITING_FOR_SYNC:
            return
        offset = self.server.repl.offset
        if self.failover_end and self.failover_end <= now:
            if self.failover_force:
                host, port = self.failover_target
                logger.notice(f"FAILOVER to {host}:{port} time out exceeded, failing over.")
                self._hand_over()
            else:
                self.abort_failover("Replica never caught up before timeout")
            return
        if self.failover_target is not None:
            replica = self.find(*self.failover_target)
        else:
            replica = next((c for c in self.replicas if c.replica.ack_off == offset), None)
            if replica is not None:
                link = replica.replica
                self.failover_target = (link.announced_ip or replica.addr.rsplit(":", 1)[0],
                                        link.listening_port)
        if replica is not None and replica.replica.ack_off == offset:
            host, port = self.failover_target
            logger.notice(f"Failover target {host}:{port} is synced, failing over.")
            self._hand_over()

    def _hand_over(self) -> None:
        # The master link sends PSYNC ... FAILOVER while failover_state says so.
        self.failover_state = FAILOVER_IN_PROGRESS
        self.server.master_link.set_master(*self.failover_target)

    # -- cron and detaching ------------------------------------------------------------------

    def cron(self) -> None:
        """replicationCron()'s master half, once a second (ten times a second while
        failing over, so that the failover progresses and times out on time)."""
        now = time.time()
        period = 1.0 if self.failover_state == NO_FAILOVER else 0.1
        if now - self._last_cron < period:
            if self.fork is not None:
                self._reap()
            return
        # Redis's first replicationCron() runs as the server starts, before any replica
        # can attach (its loop counter then says 1); ours runs a cron period later.
        first = self._last_cron == 0.0
        self._last_cron = now
        server = self.server
        repl = server.repl
        config = server.config
        self._failover_cron(now)
        if self.fork is not None:
            self._reap()
        if self.replicas and not first \
                and self._cron_loops % config["repl-ping-replica-period"] == 0 \
                and not repl.replica_of_master and self.failover_state == NO_FAILOVER:
            repl.sink(repl.seldb, [b"PING"])
        self._cron_loops += 1
        timeout = config["repl-timeout"]
        for client in list(self.replicas):
            link = client.replica
            presync = link.state == WAIT_BGSAVE_START or (
                link.state == WAIT_BGSAVE_END and self.fork is not None
                and not self.fork.socket_target)
            if presync and client.transport is not None:
                client.transport.write(b"\n")
            fork = self.fork
            if link.state == WAIT_BGSAVE_END and fork is not None and fork.socket_target \
                    and link.last_partial_write and now - link.last_partial_write > timeout:
                logger.warning(f"Disconnecting timedout replica (full sync): "
                               f"{self.name(client)}")
                self._drop(client)
                continue
            if link.state == ONLINE and not link.pre_psync and now - link.ack_time > timeout:
                logger.warning(f"Disconnecting timedout replica (streaming sync): "
                               f"{self.name(client)}")
                client.close()
                self.detach(client)
        ttl = config["repl-backlog-ttl"]
        if not self.replicas and ttl and repl.backlog is not None \
                and server.master_link.host is None and now - repl.no_replicas_since > ttl:
            repl.change_replid()
            repl.clear_replid2()
            repl.free_backlog()
            logger.notice(f"Replication backlog freed after {ttl} seconds without connected "
                          f"replicas.")
        if self.fork is None and self._should_start_fork(now):
            self._start_fork()
        self.refresh_good_replicas()

    def _should_start_fork(self, now: float) -> bool:
        waiting = [c for c in self.replicas if c.replica.state == WAIT_BGSAVE_START]
        if not waiting:
            return False
        config = self.server.config
        most = config["repl-diskless-sync-max-replicas"]
        idle = max(int(now - c.replica.asked_at) for c in waiting)
        return (not config["repl-diskless-sync"] or (most and len(waiting) >= most)
                or idle >= config["repl-diskless-sync-delay"])

    def client_closed(self, client) -> None:
        if client.replica is not None:
            self.detach(client)

    def detach(self, client) -> None:
        """The replica is gone (or dropped): forget it."""
        if client not in self.replicas:
            return
        link = client.replica
        self.replicas.remove(client)
        client.clear_flag("S")
        client.refresh_access()
        if link.state == ONLINE:
            logger.notice(f"Connection with replica {self.name(client)} lost.")
        fork = self.fork
        if link.state == WAIT_BGSAVE_END and fork is not None and not fork.socket_target \
                and not self.server.config["save"] \
                and not any(c.replica.state == WAIT_BGSAVE_END for c in self.replicas):
            # freeClient(): the snapshot no other replica waits for is not worth its
            # memory (with save points, it still is: it will be the RDB file).
            self._kill_child(fork)
        link.state = None
        link.pending_from = None
        link.streaming = False
        if not self.replicas:
            self.server.repl.no_replicas_since = time.time()
        if fork is not None and client in fork.replicas:
            fork.replicas.remove(client)
            self._conn_removed(fork, client)
        self.refresh_backlog_pin()
        self.refresh_good_replicas()

    def drop_all(self) -> None:
        """disconnectSlaves(): every replica must sync again (a new history)."""
        for client in list(self.replicas):
            self.detach(client)
            client.close()
