"""The multi-part append-only file of Redis 7 (aof.c).

``appenddirname/`` holds a manifest (``appendonly.aof.manifest``), one base file (an RDB
snapshot, ``appendonly.aof.N.base.rdb``, or RESP commands with aof-use-rdb-preamble no)
and incremental files of RESP commands (``appendonly.aof.N.incr.aof``). Real Redis 7.0
loads this directory and we load its.

Durability: every propagated write is appended to a buffer; ``flush()`` writes the
buffer before any reply of that batch leaves the server, and with ``appendfsync always``
fsyncs it too, so an acknowledged write survives kill -9. ``everysec`` fsyncs from the
cron once a second; ``no`` leaves it to the kernel.

Write errors (a full disk) follow flushAppendOnlyFile(): the buffer is kept until it is
written whole, a short write is cut back off the file so it never ends in half a record,
and while writing fails the server refuses writes with -MISCONF (DiskErrors) and retries
on every flush; with ``always`` it exits, since the replies of this batch must not leave.
"""

from __future__ import annotations

import errno
import os
import time
from concurrent.futures import ThreadPoolExecutor

from hiredis import pack_command

from ..config import ConfigError
from ..datatypes.packed import PackedValue, unpack
from ..datatypes.stream import id_bytes
from ..log import logger
from ..protocol.parser import RequestParser
from ..session import Session
from . import rdb

TYPE_BASE, TYPE_HIST, TYPE_INCR = "b", "h", "i"
WRITE_ERROR_LOG_RATE = 30  # AOF_WRITE_LOG_ERROR_RATE: seconds between write-error logs
# aofRewriteLimited(): after this many failed rewrites in a row, automatic rewrites back
# off (1, 2, 4 ... 60 minutes) so a full disk is not hit by a fork every cron tick.
REWRITE_LIMIT_THRESHOLD = 3
REWRITE_LIMIT_MAX_MINUTES = 60


class ManifestEntry:
    __slots__ = ("name", "seq", "type")

    def __init__(self, name: str, seq: int, kind: str):
        self.name, self.seq, self.type = name, seq, kind

    def line(self) -> str:
        return f"file {self.name} seq {self.seq} type {self.type}\n"


class AOFError(Exception):
    pass


def parse_manifest(text: str) -> list[ManifestEntry]:
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        fields = dict(zip(words[0::2], words[1::2]))
        if len(words) % 2 or "file" not in fields or "seq" not in fields or "type" not in fields:
            raise AOFError(f"Invalid AOF manifest file format (line {number})")
        entries.append(ManifestEntry(fields["file"], int(fields["seq"]), fields["type"]))
    return entries


def encode_command(argv: list[bytes]) -> bytes:
    """One command as RESP, framed in C by hiredis (2.4x faster than a Python join —
    this runs once per logged write)."""
    try:
        return pack_command(tuple(argv))
    except TypeError:  # a bytearray or memoryview among the arguments
        return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


class AppendOnlyFile:
    def __init__(self, server):
        self.server = server
        self.config_values = server.config.values
        self.buffer: list[bytes] = []
        self.selected_db = -1
        self.fd = -1
        self.entries: list[ManifestEntry] = []
        self.last_fsync = time.time()
        self.rewrite_child = 0
        self.rewrite_started = 0.0
        self.rewrite_scheduled = False
        self.last_rewrite_ok = True
        self.last_write_ok = True  # aof_last_write_status
        self.write_errno = 0  # aof_last_write_errno: what -MISCONF reports
        self.last_error_log = 0.0
        self.fsync_errno = 0  # set by a failed background fsync (aof_bio_fsync_status)
        self.incr_size = 0  # bytes of the open incr file known good (aof_last_incr_size)
        self.rewrite_delay_minutes = 0
        self.next_rewrite_time = 0.0
        self.current_size = 0
        self.base_size = 0
        self.enabled = False
        self.pending_fsync = False
        self.rewrites = 0
        self.consecutive_failures = 0
        self.last_rewrite_seconds = -1
        # Redis's bio thread: everysec fsyncs and closes of old files happen off the loop.
        self.bio = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aof-bio")
        self.fsync_in_flight = None
        self.last_timestamp = 0

    # -- paths -------------------------------------------------------------------------

    @property
    def directory(self) -> str:
        config = self.server.config
        return os.path.join(config["dir"] or ".", config["appenddirname"])

    @property
    def prefix(self) -> str:
        return self.server.config["appendfilename"]

    @property
    def manifest_path(self) -> str:
        return os.path.join(self.directory, self.prefix + ".manifest")

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    # -- propagation sink ----------------------------------------------------------------

    def feed(self, db_id: int, argv: list[bytes]) -> None:
        if db_id != self.selected_db or self.config_values.get("aof-timestamp-enabled"):
            self._annotate(db_id)
        self.buffer.append(encode_command(argv))

    def _annotate(self, db_id: int) -> None:
        """What goes before a record: a #TS:<unix time> line (aof-timestamp-enabled,
        skipped on load) once a second, a SELECT when the database changes."""
        if self.config_values.get("aof-timestamp-enabled"):
            now = int(time.time())
            if now != self.last_timestamp:
                self.buffer.append(b"#TS:%d\r\n" % now)
                self.last_timestamp = now
        if db_id != self.selected_db:
            self.buffer.append(encode_command([b"SELECT", b"%d" % db_id]))
            self.selected_db = db_id

    def flush(self) -> None:
        """Write the buffer (and fsync with appendfsync always). Called before replies
        are sent, so nothing is acknowledged that is not in the file."""
        if not self.buffer or self.fd < 0:
            return
        data = b"".join(self.buffer) if len(self.buffer) > 1 else self.buffer[0]
        written, error = _write_all(self.fd, data)
        if written != len(data):
            self._write_failed(data, written, error)
            return
        self.buffer.clear()
        self.current_size += written
        self.incr_size += written
        if not self.last_write_ok:
            logger.warning("AOF write error looks solved, Redis can write again.")
            self.last_write_ok = True
            self.server.disk_errors.refresh()
        if self.server.config["appendfsync"] == "always" and not self._fsync_paused():
            # Before the reply leaves: the write is on disk when it is acknowledged.
            try:
                os.fdatasync(self.fd)
            except OSError as exc:
                logger.warning("Can't persist AOF for fsync error when the AOF fsync policy "
                               f"is 'always': {exc.strerror}. Exiting...")
                os._exit(1)
            self.last_fsync = time.time()
        else:
            self.pending_fsync = True

    def _write_failed(self, data: bytes, written: int, error: OSError | None) -> None:
        """flushAppendOnlyFile()'s error path: keep what was not written, never leave
        half a record in the file, and refuse writes until a flush succeeds."""
        now = time.time()
        can_log = now - self.last_error_log > WRITE_ERROR_LOG_RATE
        if can_log:
            self.last_error_log = now
        if written == 0 and error is not None:
            if can_log:
                logger.warning(f"Error writing to the AOF file: {_strerror(error)}")
            self.write_errno = error.errno or errno.EIO
        else:
            if can_log:
                logger.warning(f"Short write while writing to the AOF file: "
                               f"(nwritten={written}, expected={len(data)})")
            try:
                os.ftruncate(self.fd, self.incr_size)
                written = 0  # the partial record is gone: retry the whole buffer
            except OSError as exc:
                if can_log:
                    logger.warning("Could not remove short write from the append-only file.  "
                                   "Redis may refuse to load the AOF the next time it "
                                   f"starts.  ftruncate: {_strerror(exc)}")
            self.write_errno = errno.ENOSPC
        if self.server.config["appendfsync"] == "always":
            # The replies of this batch are waiting for this write: they must never be
            # sent, and the changes cannot be rolled back, so the only safe way out is
            # to exit (the AOF still ends at the last acknowledged write).
            logger.warning("Can't recover from AOF write error when the AOF fsync policy "
                           "is 'always'. Exiting...")
            os._exit(1)
        if written:  # the head reached the file and could not be cut: keep the rest
            self.current_size += written
            self.incr_size += written
            data = data[written:]
        self.buffer[:] = [data]
        if self.last_write_ok:
            self.last_write_ok = False
            self.server.disk_errors.refresh()

    @property
    def write_error(self) -> int:
        """The errno that currently makes writes fail (0 when none): a failed write, or
        a failed background fsync (writeCommandsDeniedByDiskError())."""
        if not self.last_write_ok:
            return self.write_errno
        return self.fsync_errno

    def _fsync_paused(self) -> bool:
        # no-appendfsync-on-rewrite: while a child writes, skip fsync to spare the disk.
        return bool(self.server.config.values.get("no-appendfsync-on-rewrite")) and bool(
            self.rewrite_child or self.server.snapshots.child_pid)

    def cron(self) -> None:
        self.flush()  # also the retry of a failed write
        in_flight = self.fsync_in_flight
        if in_flight is not None and in_flight.done():
            self.fsync_in_flight = None
            self._fsync_done(in_flight.result())
            in_flight = None
        if (self.pending_fsync and self.server.config["appendfsync"] != "no"
                and time.time() - self.last_fsync >= 1 and not self._fsync_paused()
                and in_flight is None):
            self.fsync_in_flight = self.bio.submit(_fsync_errno, self.fd)
            self.pending_fsync = False
            self.last_fsync = time.time()
        self._maybe_auto_rewrite()

    def child_cron(self) -> None:
        """Runs whether or not appendonly is on (BGREWRITEAOF works either way): reap
        the rewrite child, start a rewrite that waited for a BGSAVE to end."""
        self._check_rewrite_child()
        if self.rewrite_scheduled and not self.rewrite_child \
                and not self.server.snapshots.child_pid and not self._rewrite_limited():
            self.rewrite()

    def _fsync_done(self, error: int) -> None:
        """bio.c: a failed background fsync refuses writes until one succeeds."""
        if bool(error) == bool(self.fsync_errno):
            self.fsync_errno = error
            return
        if error:
            logger.warning(f"Fail to fsync the AOF file: {os.strerror(error)}")
        self.fsync_errno = error
        if error:
            self.pending_fsync = True  # the data is not known to be on disk: try again
        self.server.disk_errors.refresh()

    # -- start-up ---------------------------------------------------------------------------

    def start(self) -> bool:
        """Load the AOF if it exists, then open the incr file for appending.
        Returns True when data was loaded from the AOF."""
        self.enabled = True
        loaded = False
        if os.path.exists(self.manifest_path):
            with open(self.manifest_path) as f:
                self.entries = parse_manifest(f.read())
            with rdb.paused_gc():
                self._load_all()
            loaded = True
        else:
            os.makedirs(self.directory, exist_ok=True)
            # No AOF yet: the current dataset (perhaps loaded from an RDB) becomes the base.
            self.entries = []
            self._write_base_sync()
        incrs = [e for e in self.entries if e.type == TYPE_INCR]
        if incrs:
            self._open_last_incr(incrs[-1])
        else:
            self._open_new_incr()
        return loaded

    def reload(self) -> None:
        """DEBUG LOADAOF (debug.c): flush what is buffered, empty the dataset, read the
        manifest from disk again and replay every file, as a start-up load would. The
        replayed commands go nowhere (loading propagates nothing); a manifest that is
        missing or names a missing file raises AOFError (Redis exits)."""
        server = self.server
        if self.enabled:
            self.flush()
        for db in server.dbs:
            db.flush()
        server.functions_engine.flush()  # emptyData() takes the libraries too
        if not os.path.exists(self.manifest_path):
            raise AOFError("The AOF manifest file doesn't exist")
        with open(self.manifest_path) as f:
            self.entries = parse_manifest(f.read())
        self.current_size = 0
        propagation = server.propagation
        sinks, propagation.sinks = propagation.sinks, []
        try:
            with rdb.paused_gc():
                self._load_all()
        finally:
            propagation.sinks = sinks

    def _load_all(self) -> None:
        start = time.time()
        keys_before = sum(len(db.data) for db in self.server.dbs)
        for entry in self.entries:
            if entry.type == TYPE_HIST:
                continue
            path = self._path(entry.name)
            if not os.path.exists(path):
                raise AOFError(f"The AOF file {entry.name} doesn't exist")
            with open(path, "rb") as f:
                data = f.read()
            last = entry is self.entries[-1]
            if data.startswith(b"REDIS"):
                from .snapshot import load_functions

                # Packed as a start-up RDB load is (small collections until first read).
                load_functions(self.server, rdb.load_snapshot(data, self.server.dbs,
                                                              packed=True))
                logger.notice(f"Reading RDB base file on AOF loading...")
            else:
                self._replay(data, entry.name, last)
            if entry.type == TYPE_BASE:
                self.base_size = len(data)
            self.current_size += len(data)
            logger.notice(f"DB loaded from {'base' if entry.type == TYPE_BASE else 'incr'} "
                          f"file {entry.name}: %.3f seconds" % (time.time() - start))
        keys = sum(len(db.data) for db in self.server.dbs) - keys_before
        logger.notice("DB loaded from append only file: %.3f seconds (%d keys)"
                      % (time.time() - start, keys))

    def _replay(self, data: bytes, name: str, is_last: bool) -> None:
        from ..protocol.errors import CommandError

        parser = RequestParser()
        parser.limits.proto_max_bulk_len = 2**62
        parser.feed(data)
        commands = parser.parse()
        leftover = parser.incomplete_bytes()
        if parser.error is not None:
            raise AOFError(f"Bad file format reading the append only file {name}: {parser.error}")
        if leftover:
            if not (is_last and self.server.config.values.get("aof-load-truncated", True)):
                raise AOFError(f"Unexpected end of file reading the append only file {name}")
            logger.warning(f"!!! Warning: short read while loading the AOF file {name}!!! "
                           f"AOF loaded anyway because aof-load-truncated is enabled; "
                           f"truncating {leftover} bytes")
            with open(self._path(name), "r+b") as f:
                f.truncate(len(data) - leftover)
        client = Session(self.server, 0, addr="aof")  # the AOF client: no replies
        client.run_as_server()
        client.loading = True
        for argv in commands:
            if len(argv) == 1 and argv[0].startswith(b"#"):
                continue  # an annotation (#TS:...), not a command
            reply = self.server.execute(client, argv)
            if isinstance(reply, CommandError):
                logger.warning(f"Error replaying AOF command {argv[0]!r}: {reply.message}")

    # -- files ---------------------------------------------------------------------------------

    def _next_seq(self, kind: str) -> int:
        return max((e.seq for e in self.entries if e.type == kind), default=0) + 1

    def _write_manifest(self, entries: list[ManifestEntry] | None = None) -> None:
        """persistAofManifest(): a temp file, fsynced, renamed over the manifest, the
        directory fsynced. Raises OSError (after removing the temp file) on failure."""
        temp = os.path.join(self.directory, "temp-" + self.prefix + ".manifest")
        try:
            with open(temp, "w") as f:
                for entry in self.entries if entries is None else entries:
                    f.write(entry.line())
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self.manifest_path)
        except OSError as exc:
            logger.warning(f"Error trying to write the temporary AOF manifest file "
                           f"{os.path.basename(temp)}: {_strerror(exc)}")
            _unlink_quietly(temp)
            raise
        _fsync_dir(self.directory)

    def _base_name(self, seq: int) -> str:
        preamble = self.server.config.values.get("aof-use-rdb-preamble", True)
        return f"{self.prefix}.{seq}.base.{'rdb' if preamble else 'aof'}"

    def _write_base_file(self, path: str) -> None:
        """Write a base (the dataset as RDB or as commands) to path, fsynced; on any
        failure the partial file is removed before the error propagates."""
        try:
            with open(path, "wb") as f:
                if self.server.config.values.get("aof-use-rdb-preamble", True):
                    rdb.dump_snapshot(self.server.dbs, f, aux={b"aof-base": b"1"},
                                      functions=self.server.functions_engine.codes(),
                                      key_delay_us=self.server.config["rdb-key-save-delay"])
                else:
                    # rewriteFunctions(): one FUNCTION LOAD per library, before the dbs.
                    for code in self.server.functions_engine.codes():
                        f.write(encode_command([b"FUNCTION", b"LOAD", code]))
                    for argv in dataset_as_commands(self.server.dbs):
                        f.write(argv)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            _unlink_quietly(path)
            raise

    def _write_base_sync(self) -> None:
        seq = self._next_seq(TYPE_BASE)
        name = self._base_name(seq)
        temp = self._path(name) + ".tmp"
        self._write_base_file(temp)
        os.replace(temp, self._path(name))
        self.entries = [e for e in self.entries if e.type != TYPE_BASE]
        self.entries.insert(0, ManifestEntry(name, seq, TYPE_BASE))
        self.base_size = os.path.getsize(self._path(name))

    def _open_new_incr(self) -> None:
        """openNewIncrAofForAppend(): the new file and the manifest naming it first; only
        once both exist does the server switch to them (raises OSError, changing
        nothing, when either fails)."""
        seq = self._next_seq(TYPE_INCR)
        name = f"{self.prefix}.{seq}.incr.aof"
        entries = self.entries + [ManifestEntry(name, seq, TYPE_INCR)]
        try:
            fd = os.open(self._path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND,
                         0o644)
        except OSError as exc:
            logger.warning(f"Can't open the append-only file {name}: {_strerror(exc)}")
            raise
        try:
            self._write_manifest(entries)
        except OSError:
            os.close(fd)
            _unlink_quietly(self._path(name))
            raise
        if self.fd >= 0:
            # In everysec a late fsync is fine as long as it happens; in always the old
            # file is already synced (openNewIncrAofForAppend()).
            self.bio.submit(_fsync_and_close, self.fd)
            self.last_fsync = time.time()
        self.fd = fd
        self.incr_size = 0
        self.entries = entries
        self.selected_db = -1

    def _open_last_incr(self, entry: ManifestEntry) -> None:
        # Keep appending to the last incr file, as Redis does after a restart.
        self.fd = os.open(self._path(entry.name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.incr_size = os.fstat(self.fd).st_size

    # -- rewrite (BGREWRITEAOF) -------------------------------------------------------------------

    def _temp_base_path(self, pid: int) -> str:
        # rewriteAppendOnlyFileBackground(): the child's file, in the server's dir,
        # renamed into appenddirname by the parent once the child succeeded.
        return os.path.join(self.server.config["dir"] or ".", "temp-rewriteaof-bg-%d.aof" % pid)

    def rewrite(self) -> bool:
        """Fork a child writing a new base; the parent switches to a new incr file now,
        so nothing written meanwhile is lost or needs merging (Redis 7's design).
        False (logged, aof_last_bgrewrite_status err) when it could not start."""
        self.selected_db = -1
        self.flush()
        try:
            os.makedirs(self.directory, exist_ok=True)
            self._open_new_incr()
            pid = os.fork()
        except OSError as exc:
            if exc.filename is None:
                logger.warning("Can't rewrite append only file in background: fork: "
                               f"{_strerror(exc)}")
            self.last_rewrite_ok = False
            return False
        if pid == 0:
            self.server.enter_child()
            code = 0
            try:
                self._write_base_file(self._temp_base_path(os.getpid()))
                logger.notice("Successfully created the temporary AOF base file "
                              f"temp-rewriteaof-bg-{os.getpid()}.aof")
            except BaseException as exc:
                if isinstance(exc, OSError):
                    logger.warning("Write error writing append only file on disk: "
                                   f"{_strerror(exc)}")
                code = 1
            os._exit(code)
        self.rewrite_child = pid
        self.rewrite_started = time.time()
        self.rewrite_scheduled = False
        self._incr_at_fork = self.entries[-1]
        logger.notice(f"Background append only file rewriting started by pid {pid}")
        return True

    def _check_rewrite_child(self) -> None:
        if not self.rewrite_child:
            return
        try:
            pid, status = os.waitpid(self.rewrite_child, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.rewrite_child, 1 << 8
        if pid == 0:
            return
        self.rewrite_child = 0
        self.last_rewrite_seconds = int(time.time() - self.rewrite_started)
        temp = self._temp_base_path(pid)
        code = os.waitstatus_to_exitcode(status)
        if code != 0 or not self._install_new_base(temp):
            _unlink_quietly(temp)  # aofRemoveTempFile(): never left to fill the disk
            self.last_rewrite_ok = False
            self.consecutive_failures += 1
            if code < 0:
                logger.warning(f"Background AOF rewrite terminated by signal {-code}")
            elif code > 0:
                logger.warning("Background AOF rewrite terminated with error")
            return
        self.last_rewrite_ok = True
        self.rewrites += 1
        self.consecutive_failures = 0
        logger.notice("Background AOF rewrite terminated with success")
        logger.notice("Background AOF rewrite finished successfully")

    def _install_new_base(self, temp: str) -> bool:
        """backgroundRewriteDoneHandler(): rename the child's file to the next base and
        persist a manifest that drops the files it replaces; False on any failure,
        with the old manifest (and so the old files) still in force."""
        seq = self._next_seq(TYPE_BASE)
        name = self._base_name(seq)
        keep_from = self.entries.index(self._incr_at_fork)
        obsolete = self.entries[:keep_from]
        entries = [ManifestEntry(name, seq, TYPE_BASE)] + self.entries[keep_from:]
        try:
            os.replace(temp, self._path(name))
        except OSError as exc:
            logger.warning(f"Error trying to rename the temporary AOF file {os.path.basename(temp)} "
                           f"into {name}: {_strerror(exc)}")
            return False
        try:
            self._write_manifest(entries)
        except OSError:
            _unlink_quietly(self._path(name))
            return False
        self.entries = entries
        for entry in obsolete:
            _unlink_quietly(self._path(entry.name))
        self.base_size = os.path.getsize(self._path(name))
        self.current_size = self.base_size + sum(
            os.path.getsize(self._path(e.name)) for e in self.entries if e.type == TYPE_INCR)
        return True

    def _maybe_auto_rewrite(self) -> None:
        config = self.server.config.values
        percentage = config.get("auto-aof-rewrite-percentage", 100)
        min_size = config.get("auto-aof-rewrite-min-size", 64 * 1024 * 1024)
        if self.rewrite_child or not percentage or self.current_size < min_size \
                or self.server.snapshots.child_pid:
            return
        base = self.base_size or 1
        growth = (self.current_size - base) * 100 // base
        if growth >= percentage and not self._rewrite_limited():
            logger.notice(f"Starting automatic rewriting of AOF on {growth}% growth")
            self.rewrite()

    def _rewrite_limited(self) -> bool:
        """aofRewriteLimited(): after repeated failures, automatic rewrites wait 1, 2,
        4 ... 60 minutes between attempts."""
        if self.consecutive_failures < REWRITE_LIMIT_THRESHOLD:
            self.rewrite_delay_minutes = 0
            self.next_rewrite_time = 0.0
            return False
        now = time.time()
        if self.next_rewrite_time:
            if now < self.next_rewrite_time:
                return True
            self.next_rewrite_time = 0.0
            return False
        self.rewrite_delay_minutes = min(max(self.rewrite_delay_minutes * 2, 1),
                                         REWRITE_LIMIT_MAX_MINUTES)
        self.next_rewrite_time = now + self.rewrite_delay_minutes * 60
        logger.warning("Background AOF rewrite has repeatedly failed and triggered the limit, "
                       f"will retry in {self.rewrite_delay_minutes} minutes")
        return True

    def kill_rewrite_child(self) -> None:
        """killAppendOnlyChild(): stop a running rewrite, wait for it, drop its file."""
        child = self.rewrite_child
        if not child:
            return
        logger.notice(f"Killing running AOF rewrite child: {child}")
        try:
            os.kill(child, 9)
            os.waitpid(child, 0)
        except OSError:
            pass
        _unlink_quietly(self._temp_base_path(child))
        self.rewrite_child = 0

    def shutdown_hook(self, flags) -> None:
        if self.rewrite_child:
            logger.warning("There is a child rewriting the AOF. Killing it!")
            self.kill_rewrite_child()
        if self.fd >= 0:
            logger.notice("Calling fsync() on the AOF file.")
            self.flush()
            self.bio.shutdown(wait=True)
            try:
                os.fsync(self.fd)
            except OSError as exc:
                logger.warning(f"Fail to fsync the AOF file: {_strerror(exc)}.")


def dataset_as_commands(dbs):
    """aof-use-rdb-preamble no: the base as RESP commands (rewriteAppendOnlyFileRio)."""
    for db in dbs:
        if not db.data:
            continue
        yield encode_command([b"SELECT", b"%d" % db.id])
        for key, value in db.data.items():
            for argv in _value_commands(key, value):
                yield encode_command(argv)
            when = db.expires.get(key)
            if when is not None:
                yield encode_command([b"PEXPIREAT", key, b"%d" % when])


def _value_commands(key: bytes, value):
    if type(value) is bytes:
        return [[b"SET", key, value]]
    if type(value) is PackedValue:
        value = unpack(value)
    kind = value.type_name
    if kind == "list":
        return [[b"RPUSH", key, *list(value)]]
    if kind == "set":
        return [[b"SADD", key, *list(value)]]
    if kind == "hash":
        flat = []
        for f, v in value.items():
            flat += [f, v]
        return [[b"HSET", key, *flat]]
    if kind == "stream":
        return stream_as_commands(key, value)
    if kind == "zset":
        flat = []
        for member, score in rdb.zset_pairs(value):
            flat += [rdb.score_text(score) if score == score else b"nan", member]
        return [[b"ZADD", key, *flat]]
    raise AOFError(f"cannot rewrite a value of type {kind}")


def stream_as_commands(key: bytes, s) -> list[list[bytes]]:
    """aof.c rewriteStreamObject() (7.0): a stream as the commands that rebuild it, for
    an AOF base without RDB preamble. XADD per entry (or the `MAXLEN 0` trick for an
    empty stream), XSETID with ENTRIESADDED/MAXDELETEDID, XGROUP CREATE … ENTRIESREAD
    per group, XCLAIM … FORCE per pending entry, CREATECONSUMER for idle consumers."""
    out = []
    entries = s.entries
    if entries:
        for sid in s.ids:
            out.append([b"XADD", key, id_bytes(sid), *entries[sid]])
    else:
        out.append([b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"])
    out.append([b"XSETID", key, id_bytes(s.last_id), b"ENTRIESADDED", b"%d" % s.entries_added,
                b"MAXDELETEDID", id_bytes(s.max_deleted_id)])
    for name in sorted(s.groups):
        g = s.groups[name]
        out.append([b"XGROUP", b"CREATE", key, name, id_bytes(g.last_id), b"ENTRIESREAD",
                    b"%d" % g.entries_read])
        for cname in sorted(g.consumers):
            c = g.consumers[cname]
            if not c.pel:
                out.append([b"XGROUP", b"CREATECONSUMER", key, name, cname])
                continue
            for sid, nack in c.pel.items():
                out.append([b"XCLAIM", key, name, cname, b"0", id_bytes(sid), b"TIME",
                            b"%d" % nack.delivery_time, b"RETRYCOUNT",
                            b"%d" % nack.delivery_count, b"JUSTID", b"FORCE"])
    return out


def apply_appendonly(server, value) -> None:
    """CONFIG SET appendonly: yes builds the AOF (a base of the current dataset) before
    logging to it, as Redis's startAppendOnly does; no stops logging."""
    aof = server.aof
    if value and not aof.enabled:
        os.makedirs(aof.directory, exist_ok=True)
        if os.path.exists(aof.manifest_path):
            with open(aof.manifest_path) as f:
                aof.entries = parse_manifest(f.read())
        # A new incr file now, a new base from the forked child (startAppendOnly()).
        if not aof.rewrite():
            logger.warning("Redis needs to enable the AOF but can't trigger a background AOF "
                           "rewrite operation. Check the above logs for more info about the "
                           "error.")
            raise ConfigError("Unable to turn on AOF. Check server logs.")
        aof.enabled = True
        server.enable_aof_logging()
    elif not value and aof.enabled:
        aof.flush()
        aof.kill_rewrite_child()  # stopAppendOnly()
        aof.enabled = False
        server.disable_aof_logging()
        # stopAppendOnly(): what could not be written is dropped with the AOF itself,
        # and its write error no longer stops writes.
        aof.buffer.clear()
        aof.last_write_ok = True
        aof.fsync_errno = 0
        server.disk_errors.refresh()


def _write_all(fd: int, data: bytes) -> tuple[int, OSError | None]:
    """aofWrite(): retry short writes; (bytes written, the error that stopped it)."""
    view = memoryview(data)
    total = 0
    while total < len(data):
        try:
            total += os.write(fd, view[total:])
        except InterruptedError:
            continue
        except OSError as exc:
            return total, exc
    return total, None


def _strerror(exc: OSError) -> str:
    return exc.strerror or os.strerror(exc.errno or errno.EIO)


def _fsync_errno(fd: int) -> int:
    """A background fsync (bio.c): its errno, 0 on success. EBADF/EINVAL mean the fd
    was closed meanwhile, not that the data failed to reach the disk."""
    try:
        os.fdatasync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EBADF, errno.EINVAL):
            return exc.errno or errno.EIO
    return 0


def _fsync_and_close(fd: int) -> None:
    _fsync_errno(fd)
    try:
        os.close(fd)
    except OSError:
        pass


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
