"""The multi-part append-only file of Redis 7 (aof.c).

``appenddirname/`` holds a manifest (``appendonly.aof.manifest``), one base file (an RDB
snapshot, ``appendonly.aof.N.base.rdb``, or RESP commands with aof-use-rdb-preamble no)
and incremental files of RESP commands (``appendonly.aof.N.incr.aof``). Real Redis 7.0
loads this directory and we load its.

The manifest (AofManifest, aofManifest) is read strictly at start-up, with Redis's
errors; every change to it (a new incr file, a rewrite done, history deleted) is made on
a copy, persisted, and only then adopted. A rewrite forks a child writing the next base
while the parent switches to a new incr file; once the child is done, the base and the
incr files it covers become history, deleted unless aof-disable-auto-gc. CONFIG SET
appendonly yes waits for its first rewrite (AOF_WAIT_REWRITE): writes meanwhile go to
a temp incr file that becomes the first incr file. An old-style single AOF in dir is
moved into the directory as its base (aofUpgradePrepare()).

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
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import hiredis
from hiredis import pack_command

from ..config import ConfigError
from ..datatypes.packed import PackedValue, unpack
from ..datatypes.stream import id_bytes
from ..log import logger
from ..protocol.encode import sds_repr
from ..protocol.parser import c_atoi, split_args
from ..session import Session
from . import rdb

TYPE_BASE, TYPE_HIST, TYPE_INCR = "b", "h", "i"
AOF_OFF, AOF_ON, AOF_WAIT_REWRITE = 0, 1, 2  # server.aof_state
# loadAppendOnlyFiles() / loadSingleAppendOnlyFile() results (server.h AOF_OK ...).
AOF_OK, AOF_NOT_EXIST, AOF_EMPTY, AOF_OPEN_ERR, AOF_FAILED, AOF_TRUNCATED = range(6)
WRITE_ERROR_LOG_RATE = 30  # AOF_WRITE_LOG_ERROR_RATE: seconds between write-error logs
# aofRewriteLimited(): after this many failed rewrites in a row, automatic rewrites back
# off (1, 2, 4 ... 60 minutes) so a full disk is not hit by a fork every cron tick.
REWRITE_LIMIT_THRESHOLD = 3
REWRITE_LIMIT_MAX_MINUTES = 60
MANIFEST_MAX_LINE = 1024  # aofLoadManifestFromFile()'s fgets buffer, less its NUL
ANNOTATION_LINE_MAX_LEN = 1024  # AOF_ANNOTATION_LINE_MAX_LEN: the loader's line buffer


class AOFError(Exception):
    pass


class AofInfo:
    """aofInfo: one line of the manifest."""
    __slots__ = ("name", "seq", "type")

    def __init__(self, name: str, seq: int, kind: str):
        self.name, self.seq, self.type = name, seq, kind

    def line(self) -> str:
        """aofInfoFormat(): a name with spaces, quotes or control characters is written
        quoted (sdscatrepr), so sdssplitargs() reads it back whole."""
        raw = os.fsencode(self.name)
        name = sds_repr(raw) if _needs_repr(raw) else self.name
        return f"file {name} seq {self.seq} type {self.type}\n"

    def copy(self, kind: str | None = None) -> "AofInfo":
        return AofInfo(self.name, self.seq, self.type if kind is None else kind)


class AofManifest:
    """aofManifest: at most one base, the history files (waiting to be deleted) and
    the incr files, with the last sequence numbers handed out."""

    def __init__(self):
        self.base: AofInfo | None = None
        self.incrs: list[AofInfo] = []
        self.history: list[AofInfo] = []
        self.base_seq = 0  # curr_base_file_seq
        self.incr_seq = 0  # curr_incr_file_seq
        self.dirty = False

    def dup(self) -> "AofManifest":
        am = AofManifest()
        am.base = self.base.copy() if self.base else None
        am.incrs = [i.copy() for i in self.incrs]
        am.history = [i.copy() for i in self.history]
        am.base_seq, am.incr_seq, am.dirty = self.base_seq, self.incr_seq, self.dirty
        return am

    def text(self) -> str:
        """getAofManifestAsString(): base first, then history, then incr files."""
        infos = ([self.base] if self.base else []) + self.history + self.incrs
        return "".join(info.line() for info in infos)

    def new_base_name(self, prefix: str, rdb_format: bool) -> str:
        """getNewBaseFileNameAndMarkPreAsHistory()."""
        if self.base is not None:
            self.history.insert(0, self.base.copy(TYPE_HIST))
        self.base_seq += 1
        suffix = ".rdb" if rdb_format else ".aof"
        self.base = AofInfo(f"{prefix}.{self.base_seq}.base{suffix}", self.base_seq, TYPE_BASE)
        self.dirty = True
        return self.base.name

    def new_incr_name(self, prefix: str) -> str:
        """getNewIncrAofName()."""
        self.incr_seq += 1
        info = AofInfo(f"{prefix}.{self.incr_seq}.incr.aof", self.incr_seq, TYPE_INCR)
        self.incrs.append(info)
        self.dirty = True
        return info.name

    def last_incr_name(self, prefix: str) -> str:
        """getLastIncrAofName(): the last incr file, or a new one."""
        return self.incrs[-1].name if self.incrs else self.new_incr_name(prefix)

    def mark_rewritten_incrs_as_history(self, keep_last: bool) -> None:
        """markRewrittenIncrAofAsHistory(): every incr file the new base covers, i.e.
        all but the one being written (keep_last: the AOF is on)."""
        if not self.incrs:
            return
        kept = self.incrs[-1:] if keep_last else []
        covered = self.incrs[:-1] if keep_last else self.incrs
        for info in covered:
            self.history.insert(0, info.copy(TYPE_HIST))
        self.incrs = kept
        self.dirty = True

    def files_num(self) -> int:
        return (1 if self.base else 0) + len(self.incrs)


class ManifestError(Exception):
    """aofLoadManifestFromFile()'s loaderr: the reason and the line it was read at."""

    def __init__(self, reason: str, line: str | None = None, number: int = 0):
        super().__init__(reason)
        self.reason, self.line, self.number = reason, line, number

    def log(self) -> None:
        logger.warning("\n*** FATAL AOF MANIFEST FILE ERROR ***\n")
        if self.line is not None:
            logger.warning(f"Reading the manifest file, at line {self.number}\n")
            logger.warning(f">>> '{self.line}'\n")
        logger.warning(f"{self.reason}\n")


def parse_manifest(data: bytes) -> AofManifest:
    """aofLoadManifestFromFile(): strict, line by line as fgets() reads them (at most
    1024 bytes a line); raises ManifestError with Redis's wording."""
    am = AofManifest()
    max_incr_seq = 0
    pos, number = 0, 0
    while True:
        if pos >= len(data):
            if number == 0:
                raise ManifestError("Found an empty AOF manifest")
            return am
        newline = data.find(b"\n", pos, pos + MANIFEST_MAX_LINE)
        end = newline + 1 if newline >= 0 else min(len(data), pos + MANIFEST_MAX_LINE)
        chunk, pos = data[pos:end], end
        number += 1
        if chunk[:1] == b"#":
            continue  # a comment
        if newline < 0:
            raise ManifestError("The AOF manifest file contains too long line")
        line = chunk.strip(b" \t\r\n")
        text = line.decode("utf-8", "surrogateescape")
        if not line:
            raise ManifestError("Invalid AOF manifest file format", text, number)
        argv = split_args(line)
        # 'argc < 6' leaves room for keys a later version may add.
        if argv is None or len(argv) < 6 or len(argv) % 2:
            raise ManifestError("Invalid AOF manifest file format", text, number)
        name, seq, kind = None, 0, ""
        for key, value in zip(argv[0::2], argv[1::2]):
            key = key.lower()
            if key == b"file":
                name = os.fsdecode(value)
                if "/" in name or "\\" in name:  # pathIsBaseName()
                    raise ManifestError("File can't be a path, just a filename", text, number)
            elif key == b"seq":
                seq = c_atoi(value)
            elif key == b"type":
                kind = value[:1].decode("latin-1")
        if name is None or not seq or not kind:
            raise ManifestError("Invalid AOF manifest file format", text, number)
        info = AofInfo(name, seq, kind)
        if kind == TYPE_BASE:
            if am.base is not None:
                raise ManifestError("Found duplicate base file information", text, number)
            am.base, am.base_seq = info, seq
        elif kind == TYPE_HIST:
            am.history.append(info)
        elif kind == TYPE_INCR:
            if seq <= max_incr_seq:
                raise ManifestError("Found a non-monotonic sequence number", text, number)
            am.incrs.append(info)
            am.incr_seq = max_incr_seq = seq
        else:
            raise ManifestError("Unknown AOF file type", text, number)


def _whole_commands(data: bytes, pos: int) -> list | None:
    """Every command of data[pos:] when it is nothing but well-formed multibulk
    commands (what the loader reads the same way), else None: hiredis stops at an
    annotation, a stray byte or a cut command, and the careful reader takes over."""
    reader = hiredis.Reader()
    out = []
    size = len(data)
    try:
        # Fed a slice at a time: hiredis moves what is left of its buffer as it
        # consumes it, which over a whole large file would be quadratic.
        for start in range(pos, size, 65536):
            reader.feed(data, start, min(65536, size - start))
            while True:
                item = reader.gets()
                if item is False:
                    break
                if type(item) is not list or not item \
                        or any(type(arg) is not bytes for arg in item):
                    return None
                out.append(item)
    except hiredis.ProtocolError:
        return None
    return None if reader.has_data() else out


def _offset_after(data: bytes, pos: int, count: int) -> int:
    """The offset after the first count commands from pos (all well-formed)."""
    find = data.find
    for _ in range(count):
        end = find(b"\n", pos) + 1
        argc = int(data[pos + 1 : end])
        pos = end
        for _ in range(argc):
            end = find(b"\n", pos) + 1
            pos = end + int(data[pos + 1 : end]) + 2
    return pos


def _known_command(commands, argv: list, name_lower: bytes, filename: str) -> bool:
    """lookupCommand() for the loader (an unknown subcommand is no command either);
    logs Redis's line for an unknown one."""
    spec = commands.get(name_lower)
    if spec is not None and spec.subcommands and len(argv) > 1 \
            and argv[1].lower() not in spec.subcommands:
        spec = None
    if spec is None:
        logger.warning(f"Unknown command '{argv[0].decode('utf-8', 'replace')}' "
                       f"reading the append only file {filename}")
        return False
    return True


def _c_integer(text: bytes) -> int:
    """atoi()/strtol() of a line of the AOF: int() for the usual digits (and their
    CRLF), atoll()'s walk for anything else (int() would also take "1_000")."""
    try:
        value = int(text)
    except ValueError:
        return c_atoi(text)
    return c_atoi(text) if b"_" in text else value


def _needs_repr(name: bytes) -> bool:
    """sdsneedsrepr()."""
    return any(b in b'\\"\n\r\t\a\b' or b < 33 or b > 126 for b in name)


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
        self.state = AOF_OFF  # server.aof_state
        self.manifest = AofManifest()
        self.manifest_loaded = False
        self.flush_sleep_us = 0  # DEBUG AOF-FLUSH-SLEEP (server.aof_flush_sleep)
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
        self.pending_fsync = False
        self.rewrites = 0
        self.consecutive_failures = 0
        self.last_rewrite_seconds = -1
        # Redis's bio thread: everysec fsyncs and closes of old files happen off the loop.
        self.bio = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aof-bio")
        self.fsync_in_flight = None
        self.last_timestamp = 0

    @property
    def enabled(self) -> bool:
        return self.state != AOF_OFF

    # -- paths -------------------------------------------------------------------------

    @property
    def server_dir(self) -> str:
        return self.server.config["dir"] or "."

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
        if self.state != AOF_ON and not (self.state == AOF_WAIT_REWRITE and self.rewrite_child):
            # feedAppendOnlyFile(): AOF_WAIT_REWRITE with no child yet (scheduled behind
            # a BGSAVE) keeps nothing: the rewrite's base will hold it.
            return
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
        if self.flush_sleep_us:
            time.sleep(self.flush_sleep_us / 1e6)  # flushAppendOnlyFile(): aof_flush_sleep
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
        if self.rewrite_scheduled and not self.has_active_child() \
                and not self._rewrite_limited():
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

    # -- the manifest -------------------------------------------------------------------------

    def load_manifest_from_disk(self) -> None:
        """aofLoadManifestFromDisk(): no directory or no manifest is an empty manifest
        (an upgrade from an old-style AOF, or a first start); a manifest that cannot be
        read or parsed raises ManifestError (already logged; Redis exits)."""
        self.manifest = AofManifest()
        self.manifest_loaded = True
        if not os.path.isdir(self.directory) or not os.path.exists(self.manifest_path):
            return
        try:
            with open(self.manifest_path, "rb") as f:
                data = f.read()
        except OSError as exc:
            logger.warning(f"Fatal error: can't open the AOF manifest file "
                           f"{self.manifest_path} for reading: {_strerror(exc)}")
            raise ManifestError(_strerror(exc)) from None
        try:
            self.manifest = parse_manifest(data)
        except ManifestError as exc:
            exc.log()
            raise

    def load_manifest_at_startup(self) -> None:
        """main(): the manifest is read (and its history files deleted) whatever
        appendonly says, so a later CONFIG SET appendonly yes or BGREWRITEAOF continues
        its sequence numbers; a bad manifest stops the start-up as Redis's exit(1)."""
        try:
            self.load_manifest_from_disk()
        except ManifestError:
            os._exit(1)
        self.delete_history_files()

    def _ensure_manifest(self) -> None:
        if not self.manifest_loaded:
            try:
                self.load_manifest_from_disk()
            except ManifestError as exc:
                raise AOFError(exc.reason) from None

    def persist_manifest(self, am: AofManifest) -> bool:
        """persistAofManifest(): only when changed; a temp file, fsynced, renamed over
        the manifest, the directory fsynced. False (logged) on failure."""
        if not am.dirty:
            return True
        temp_name = "temp-" + self.prefix + ".manifest"
        temp = self._path(temp_name)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
        except OSError as exc:
            logger.warning(f"Can't open the AOF manifest file {temp_name}: {_strerror(exc)}")
            return False
        try:
            written, error = _write_all(fd, os.fsencode(am.text()))
            if error is not None:
                logger.warning(f"Error trying to write the temporary AOF manifest file "
                               f"{temp_name}: {_strerror(error)}")
                return False
            try:
                os.fsync(fd)
            except OSError as exc:
                logger.warning(f"Fail to fsync the temp AOF file {temp_name}: {_strerror(exc)}.")
                return False
            try:
                os.replace(temp, self.manifest_path)
            except OSError as exc:
                logger.warning(f"Error trying to rename the temporary AOF manifest file "
                               f"{temp_name} into {self.prefix}.manifest: {_strerror(exc)}")
                return False
        finally:
            os.close(fd)
        _fsync_dir(self.directory)
        am.dirty = False
        return True

    def delete_history_files(self) -> bool:
        """aofDelHistoryFiles(): unless aof-disable-auto-gc, the history files go (in
        the background) and the manifest forgets them."""
        am = self.manifest
        if self.config_values.get("aof-disable-auto-gc") or not am.history:
            return True
        for info in am.history:
            logger.notice(f"Removing the history file {info.name} in the background")
            _unlink_quietly(self._path(info.name))  # bg_unlink(): the unlink itself is synchronous
        am.history = []
        am.dirty = True
        return self.persist_manifest(am)

    def apply_auto_gc(self, server, disabled) -> None:
        """updateAofAutoGCEnabled(): turning the collection back on deletes at once."""
        if not disabled:
            self.delete_history_files()

    # -- start-up ---------------------------------------------------------------------------

    def start(self) -> bool:
        """main() with appendonly yes: read the manifest, load the files it names
        (loadDataFromDisk()), then open the last incr file for appending (creating a
        base first when there is no AOF at all). A failure logs Redis's lines and exits
        the process, as Redis does. Returns True when data was loaded from the AOF."""
        self.state = AOF_ON
        try:
            self.load_manifest_from_disk()
        except ManifestError:
            os._exit(1)
        start = time.time()
        with rdb.paused_gc():
            status = self.load_files(self.manifest)
        if status in (AOF_FAILED, AOF_OPEN_ERR):
            os._exit(1)
        if status != AOF_NOT_EXIST:
            logger.notice("DB loaded from append only file: %.3f seconds" % (time.time() - start))
        if not self._open_on_server_start():
            os._exit(1)
        self.delete_history_files()
        return status in (AOF_OK, AOF_TRUNCATED)

    def _open_on_server_start(self) -> bool:
        """aofOpenIfNeededOnServerStart(): a base of the (empty) dataset when there is
        no AOF yet, then the last incr file (or a new one) opened for appending."""
        am = self.manifest
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            logger.warning(f"Can't open or create append-only dir {self.directory}: "
                           f"{_strerror(exc)}")
            return False
        had_incrs = bool(am.incrs)
        if am.base is None and not am.incrs:
            name = am.new_base_name(self.prefix, self._rdb_preamble())
            if not self._rewrite_to_file(self._path(name)):
                return False
            logger.notice(f"Creating AOF base file {name} on server start")
        name = am.last_incr_name(self.prefix)
        try:
            self.fd = os.open(self._path(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            logger.warning(f"Can't open the append-only file {name}: {_strerror(exc)}")
            return False
        if not self.persist_manifest(am):
            return False
        self.incr_size = os.fstat(self.fd).st_size
        if had_incrs:
            logger.notice(f"Opening AOF incr file {name} on server start")
        else:
            logger.notice(f"Creating AOF incr file {name} on server start")
        return True

    def reload(self) -> None:
        """DEBUG LOADAOF (debug.c): flush what is buffered, empty the dataset, read the
        manifest from disk again and replay every file, as a start-up load would. The
        replayed commands go nowhere (loading propagates nothing). Raises AOFError
        (logged; Redis exits) unless the files loaded or were empty."""
        server = self.server
        if self.state == AOF_ON:
            self.flush()
        for db in server.dbs:
            db.flush()
        server.functions_engine.flush()  # emptyData() takes the libraries too
        try:
            self.load_manifest_from_disk()
        except ManifestError as exc:
            raise AOFError(exc.reason) from None
        self.delete_history_files()
        propagation = server.propagation
        sinks, propagation.sinks = propagation.sinks, []
        was_loading, server.loading = server.loading, True  # startLoading()
        try:
            with rdb.paused_gc():
                status = self.load_files(self.manifest)
        finally:
            propagation.sinks = sinks
            server.loading = was_loading
        if status not in (AOF_OK, AOF_EMPTY):
            raise AOFError("the AOF could not be loaded")

    def load_files(self, am: AofManifest) -> int:
        """loadAppendOnlyFiles(): the base, then each incr file, in order. Only the last
        file may be truncated (aof-load-truncated)."""
        old_style = os.path.join(self.server_dir, self.prefix)
        if os.path.exists(old_style):
            base = am.base
            if (not os.path.isdir(self.directory)
                    or (base is None and not am.incrs)
                    or (base is not None and not am.incrs and base.name == self.prefix
                        and not os.path.exists(self._path(self.prefix)))):
                if not self._upgrade_prepare(am):
                    return AOF_FAILED
        if am.base is None and not am.incrs:
            return AOF_NOT_EXIST
        total_num = am.files_num()
        total_size = 0
        for info in ([am.base] if am.base else []) + am.incrs:
            size, status = self.file_size(info.name)
            if status != AOF_OK:
                # A file the manifest names but the disk lacks is fatal.
                return AOF_FAILED if status == AOF_NOT_EXIST else status
            total_size += size
        if total_size == 0:
            return AOF_EMPTY
        self.current_size = 0
        base_size = 0
        number = 0
        status = AOF_OK
        for info in ([am.base] if am.base else []) + am.incrs:
            kind = "base" if info is am.base else "incr"
            if info is am.base:
                base_size, _ = self.file_size(info.name)
            number += 1
            last_file = number == total_num
            start = time.time()
            status = self._load_single_file(info.name)
            if status == AOF_OK or (status == AOF_TRUNCATED and last_file):
                logger.notice(f"DB loaded from {kind} file {info.name}: "
                              "%.3f seconds" % (time.time() - start))
            if status == AOF_EMPTY and kind == "incr":
                # Some file has data (total_size > 0): an empty incr file is fine.
                status = AOF_OK
            if status == AOF_TRUNCATED and not last_file:
                status = AOF_FAILED
                logger.warning("Fatal error: the truncated file is not the last file")
            if status in (AOF_OPEN_ERR, AOF_FAILED):
                return status
        self.current_size = total_size
        # Not persisted anywhere: the base alone, so the first automatic rewrite may
        # come early (as Redis says of aof_rewrite_base_size after a restart).
        self.base_size = base_size
        return status

    def file_size(self, name: str) -> tuple[int, int]:
        """getAppendOnlyFileSize(): (size, status); a stat failure is logged."""
        try:
            return os.stat(self._path(name)).st_size, AOF_OK
        except OSError as exc:
            logger.warning(f"Unable to obtain the AOF file {name} length. stat: "
                           f"{_strerror(exc)}")
            return 0, AOF_NOT_EXIST if exc.errno == errno.ENOENT else AOF_OPEN_ERR

    def _upgrade_prepare(self, am: AofManifest) -> bool:
        """aofUpgradePrepare(): an old-style AOF (appendfilename in dir) becomes the base
        of a manifest in appenddirname: the manifest first, then the file moved, so an
        interrupted upgrade is simply done again at the next start."""
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            logger.warning(f"Can't open or create append-only dir {self.directory}: "
                           f"{_strerror(exc)}")
            return False
        am.base = AofInfo(self.prefix, 1, TYPE_BASE)
        am.base_seq = 1
        am.dirty = True
        if not self.persist_manifest(am):
            return False
        try:
            os.rename(os.path.join(self.server_dir, self.prefix), self._path(self.prefix))
        except OSError as exc:
            logger.warning(f"Error trying to move the old AOF file {self.prefix} into dir "
                           f"{self.config_values.get('appenddirname')}: {_strerror(exc)}")
            return False
        logger.notice(f"Successfully migrated an old-style AOF file ({self.prefix}) into the "
                      f"AOF directory ({self.config_values.get('appenddirname')}).")
        return True

    def _load_single_file(self, name: str) -> int:
        """loadSingleAppendOnlyFile(): an RDB part (a base, or an old-style preamble)
        then RESP commands, replayed by a client without a socket. Its results and log
        lines are Redis's; a short read is truncated away with aof-load-truncated."""
        path = self._path(name)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            if os.path.exists(path) or exc.errno != errno.ENOENT:
                logger.warning(f"Fatal error: can't open the append log file {name} for "
                               f"reading: {_strerror(exc)}")
                return AOF_OPEN_ERR
            logger.warning(f"The append log file {name} doesn't exist: {_strerror(exc)}")
            return AOF_NOT_EXIST
        if not data:
            return AOF_EMPTY
        pos = 0
        if data.startswith(b"REDIS"):
            old_style = name == self.prefix
            logger.notice("Reading RDB preamble from AOF file..." if old_style
                          else "Reading RDB base file on AOF loading...")
            try:
                from .snapshot import load_functions

                # Packed as a start-up RDB load is (small collections until first read).
                load_functions(self.server, rdb.load_snapshot(data, self.server.dbs,
                                                              packed=True))
            except rdb.RDBError as exc:
                what = "preamble of the AOF file" if old_style else "base file"
                logger.warning(f"Error reading the RDB {what} {name}, AOF loading aborted")
                # Not truncated away even with aof-load-truncated (Redis would cut the
                # file at offset 0): a damaged base is never silently dropped.
                logger.warning(f"Unrecoverable error reading the append only file {name}: "
                               f"{exc}")
                return AOF_FAILED
            if not old_style:
                return AOF_OK  # a base file is the RDB alone
            pos = rdb_length(data)
            logger.notice("Reading the remaining AOF tail...")
        return self._replay(data, pos, name)

    def _replay(self, data: bytes, pos: int, name: str) -> int:
        """The RESP part of loadSingleAppendOnlyFile(), read as its fgets()/fread() do."""
        from ..protocol.errors import CommandError

        server = self.server
        client = Session(server, 0, addr="aof")  # the AOF client: no replies
        client.run_as_server()
        client.loading = True
        whole = _whole_commands(data, pos)
        if whole is not None:
            return self._replay_whole(client, whole, data, pos, name)
        valid_up_to = valid_before_multi = pos
        size = len(data)
        commands = server.commands
        failure = None
        find = data.find
        limit = ANNOTATION_LINE_MAX_LEN - 1  # what one fgets() returns at most
        while pos < size:
            # fgets(): a line through its newline, or what is left of the file.
            end = find(b"\n", pos, pos + limit) + 1 or min(size, pos + limit)
            first = data[pos]
            if first == 35:  # '#': an annotation (#TS:...)
                pos = end
                continue
            if first != 42:  # not '*'
                failure = "format"
                break
            if end == pos + 1:  # "*" and the end of the file
                failure = "eof"
                break
            argc = _c_integer(data[pos + 1 : end])
            pos = end
            if argc < 1:
                failure = "format"
                break
            argv = []
            for _ in range(argc):
                if pos >= size:
                    failure = "eof"
                    break
                end = find(b"\n", pos, pos + limit) + 1 or min(size, pos + limit)
                if data[pos] != 36:  # not '$'
                    failure = "format"
                    break
                length = _c_integer(data[pos + 1 : end])
                pos = end + length
                if length < 0 or pos > size:
                    failure = "eof"
                    break
                argv.append(data[end:pos])
                pos += 2  # the CRLF, read and not checked
                if pos > size:
                    failure = "eof"
                    break
            if failure:
                break
            name_lower = argv[0].lower()
            if not _known_command(commands, argv, name_lower, name):
                return AOF_FAILED
            if name_lower == b"multi" and client.multi is None:
                valid_before_multi = valid_up_to
            reply = server.execute(client, argv)
            if isinstance(reply, CommandError):
                logger.warning(f"Error replaying AOF command {argv[0]!r}: {reply.message}")
            valid_up_to = pos
        if failure is None and client.multi is not None:
            # The protocol is whole but the transaction never ended: drop its tail.
            logger.warning(f"Revert incomplete MULTI/EXEC transaction in AOF file {name}")
            valid_up_to = valid_before_multi
            failure = "eof"
        if failure is None:
            return AOF_OK
        if failure == "format":
            logger.warning(f"Bad file format reading the append only file {name}: make a "
                           "backup of your AOF file, then use ./redis-check-aof --fix "
                           "<filename.manifest>")
            return AOF_FAILED
        return self._short_read(name, valid_up_to)

    def _replay_whole(self, client, whole: list, data: bytes, pos: int, name: str) -> int:
        """_replay() for a file that is nothing but whole commands (hiredis parsed it in
        one go, at C speed): only an unknown command or an unfinished MULTI can fail it."""
        from ..protocol.errors import CommandError

        server = self.server
        execute = server.execute
        commands = server.commands
        multi_at = 0
        for index, argv in enumerate(whole):
            name_lower = argv[0].lower()
            if not _known_command(commands, argv, name_lower, name):
                return AOF_FAILED
            if name_lower == b"multi" and client.multi is None:
                multi_at = index
            reply = execute(client, argv)
            if isinstance(reply, CommandError):
                logger.warning(f"Error replaying AOF command {argv[0]!r}: {reply.message}")
        if client.multi is None:
            return AOF_OK
        logger.warning(f"Revert incomplete MULTI/EXEC transaction in AOF file {name}")
        return self._short_read(name, _offset_after(data, pos, multi_at))

    def _short_read(self, name: str, valid_up_to: int) -> int:
        """loadSingleAppendOnlyFile()'s uxeof: cut the file back to its last whole
        command with aof-load-truncated, else fail."""
        if self.config_values.get("aof-load-truncated", True):
            logger.warning(f"!!! Warning: short read while loading the AOF file {name}!!!")
            logger.warning(f"!!! Truncating the AOF {name} at offset {valid_up_to} !!!")
            try:
                os.truncate(self._path(name), valid_up_to)
            except OSError as exc:
                logger.warning(f"Error truncating the AOF file {name}: {_strerror(exc)}")
            else:
                logger.warning(f"AOF {name} loaded anyway because aof-load-truncated is "
                               "enabled")
                return AOF_TRUNCATED
        logger.warning(f"Unexpected end of file reading the append only file {name}. You can: "
                       "1) Make a backup of your AOF file, then use ./redis-check-aof --fix "
                       "<filename.manifest>. 2) Alternatively you can set the "
                       "'aof-load-truncated' configuration option to yes and restart the "
                       "server.")
        return AOF_FAILED

    # -- files ---------------------------------------------------------------------------------

    def _rdb_preamble(self) -> bool:
        return bool(self.config_values.get("aof-use-rdb-preamble", True))

    def _write_base_file(self, path: str) -> None:
        """Write a base (the dataset as RDB or as commands) to path, fsynced; on any
        failure the partial file is removed before the error propagates."""
        try:
            with open(path, "wb") as f:
                if self._rdb_preamble():
                    rdb.dump_snapshot(self.server.dbs, f, aux={b"aof-base": b"1"},
                                      functions=self.server.functions_engine.codes(),
                                      key_delay_us=self.server.config["rdb-key-save-delay"])
                else:
                    if self.config_values.get("aof-timestamp-enabled"):
                        # rewriteAppendOnlyFileRio(): the base starts with its time.
                        f.write(b"#TS:%d\r\n" % int(time.time()))
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

    def _rewrite_to_file(self, path: str) -> bool:
        """rewriteAppendOnlyFile(): a temp file in dir renamed to path once whole."""
        temp = os.path.join(self.server_dir, "temp-rewriteaof-%d.aof" % os.getpid())
        try:
            self._write_base_file(temp)
        except OSError as exc:
            logger.warning(f"Write error writing append only file on disk: {_strerror(exc)}")
            return False
        try:
            os.replace(temp, path)
        except OSError as exc:
            logger.warning("Error moving temp append only file on the final destination: "
                           f"{_strerror(exc)}")
            _unlink_quietly(temp)
            return False
        return True

    def _temp_incr_name(self) -> str:
        return "temp-" + self.prefix + ".incr"  # getTempIncrAofName()

    def open_new_incr(self) -> bool:
        """openNewIncrAofForAppend(): with the AOF on, a new incr file and the manifest
        naming it, both or neither (False, logged, nothing changed); while waiting for
        the first rewrite, the temp incr file that collects writes until it is done."""
        if self.state == AOF_OFF:
            return True
        temp_am = None
        if self.state == AOF_WAIT_REWRITE:
            name = self._temp_incr_name()
        else:
            temp_am = self.manifest.dup()
            name = temp_am.new_incr_name(self.prefix)
        try:
            fd = os.open(self._path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND,
                         0o644)
        except OSError as exc:
            logger.warning(f"Can't open the append-only file {name}: {_strerror(exc)}")
            return False
        if temp_am is not None and not self.persist_manifest(temp_am):
            os.close(fd)
            _unlink_quietly(self._path(name))
            return False
        logger.notice(f"Creating AOF incr file {name} on background rewrite")
        if self.fd >= 0:
            # In everysec a late fsync is fine as long as it happens; in always the old
            # file is already synced (openNewIncrAofForAppend()).
            self.bio.submit(_fsync_and_close, self.fd)
            self.last_fsync = time.time()
        self.fd = fd
        self.incr_size = 0
        if temp_am is not None:
            self.manifest = temp_am
        return True

    # -- rewrite (BGREWRITEAOF) -------------------------------------------------------------------

    def has_active_child(self) -> bool:
        """hasActiveChildProcess(): a rewrite, a BGSAVE or an RDB for replicas."""
        return bool(self.rewrite_child or self.server.snapshots.child_pid
                    or self.server.replicas.fork is not None)

    def _temp_base_path(self, pid: int) -> str:
        # rewriteAppendOnlyFileBackground(): the child's file, in the server's dir,
        # renamed into appenddirname by the parent once the child succeeded.
        return os.path.join(self.server_dir, "temp-rewriteaof-bg-%d.aof" % pid)

    def rewrite(self) -> bool:
        """rewriteAppendOnlyFileBackground(): fork a child writing a new base; the
        parent switches to a new incr file now, so nothing written meanwhile is lost or
        needs merging (Redis 7's design). False (logged, aof_last_bgrewrite_status err)
        when it could not start."""
        if self.has_active_child():
            return False
        self._ensure_manifest()
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            logger.warning(f"Can't open or create append-only dir {self.directory}: "
                           f"{_strerror(exc)}")
            self.last_rewrite_ok = False
            return False
        self.selected_db = -1  # the next write starts with a SELECT
        self.flush()
        if not self.open_new_incr():
            self.last_rewrite_ok = False
            return False
        self.rewrites += 1  # stat_aof_rewrites counts the rewrites started
        try:
            pid = os.fork()
        except OSError as exc:
            self.last_rewrite_ok = False
            logger.warning(f"Can't rewrite append only file in background: fork: "
                           f"{_strerror(exc)}")
            return False
        if pid == 0:
            self.server.enter_child("redis-aof-rewrite")
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
        self.server.stats.total_forks += 1
        self.rewrite_child = pid
        self.rewrite_started = time.time()
        self.rewrite_scheduled = False
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
        self._rewrite_done(pid, status)

    def _rewrite_done(self, pid: int, status: int) -> None:
        """backgroundRewriteDoneHandler()."""
        self.rewrite_child = 0
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            logger.notice("Background AOF rewrite terminated with success")
            if self._install_new_base(pid):
                self.last_rewrite_ok = True
                self.consecutive_failures = 0
                logger.notice("Background AOF rewrite finished successfully")
                if self.state == AOF_WAIT_REWRITE:
                    self.state = AOF_ON
            else:
                self.last_rewrite_ok = False
                self.consecutive_failures += 1
        elif code > 0:
            self.last_rewrite_ok = False
            self.consecutive_failures += 1
            logger.warning("Background AOF rewrite terminated with error")
        else:
            if -code != signal.SIGUSR1:  # the way to stop a child without an error
                self.last_rewrite_ok = False
                self.consecutive_failures += 1
            logger.warning(f"Background AOF rewrite terminated by signal {-code}")
        self._remove_temp_files(pid)
        if self.state == AOF_WAIT_REWRITE:
            self.buffer.clear()
            name = self._temp_incr_name()
            logger.notice(f"Removing the temp incr aof file {name} in the background")
            _unlink_quietly(self._path(name))  # bg_unlink(): the unlink itself is synchronous
        self.last_rewrite_seconds = int(time.time() - self.rewrite_started)
        if self.state == AOF_WAIT_REWRITE:
            self.rewrite_scheduled = True  # until the AOF is on, try again

    def _remove_temp_files(self, pid: int) -> None:
        """aofRemoveTempFile(): never left to fill the disk."""
        _unlink_quietly(self._temp_base_path(pid))
        _unlink_quietly(os.path.join(self.server_dir, "temp-rewriteaof-%d.aof" % pid))

    def _install_new_base(self, pid: int) -> bool:
        """backgroundRewriteDoneHandler()'s success: the child's file becomes the next
        base (and, while waiting for the first rewrite, the temp incr file the next
        incr), the files the base covers become history, the manifest is persisted;
        False on any failure, with the old manifest (and so the old files) in force."""
        temp = self._temp_base_path(pid)
        temp_am = self.manifest.dup()
        name = temp_am.new_base_name(self.prefix, self._rdb_preamble())
        try:
            os.rename(temp, self._path(name))
        except OSError as exc:
            logger.warning(f"Error trying to rename the temporary AOF base file "
                           f"{os.path.basename(temp)} into {name}: {_strerror(exc)}")
            return False
        logger.notice(f"Successfully renamed the temporary AOF base file "
                      f"{os.path.basename(temp)} into {name}")
        new_incr = None
        if self.state == AOF_WAIT_REWRITE:
            temp_incr = self._temp_incr_name()
            new_incr = temp_am.new_incr_name(self.prefix)
            try:
                os.rename(self._path(temp_incr), self._path(new_incr))
            except OSError as exc:
                logger.warning(f"Error trying to rename the temporary AOF incr file "
                               f"{temp_incr} into {new_incr}: {_strerror(exc)}")
                _unlink_quietly(self._path(name))
                return False
            logger.notice(f"Successfully renamed the temporary AOF incr file {temp_incr} "
                          f"into {new_incr}")
        temp_am.mark_rewritten_incrs_as_history(keep_last=self.fd >= 0)
        if not self.persist_manifest(temp_am):
            _unlink_quietly(self._path(name))
            if new_incr is not None:
                _unlink_quietly(self._path(new_incr))
            return False
        self.manifest = temp_am
        if self.state != AOF_OFF:
            self.current_size = self.file_size(name)[0] + self.incr_size
            self.base_size = self.current_size
        self.delete_history_files()
        return True


    def _maybe_auto_rewrite(self) -> None:
        config = self.server.config.values
        percentage = config.get("auto-aof-rewrite-percentage", 100)
        min_size = config.get("auto-aof-rewrite-min-size", 64 * 1024 * 1024)
        if self.state != AOF_ON or not percentage or self.current_size <= min_size \
                or self.has_active_child():
            return
        base = self.base_size or 1
        growth = self.current_size * 100 // base - 100
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
        self._remove_temp_files(child)
        self.rewrite_child = 0

    def refuses_shutdown(self, flags) -> bool:
        """prepareForShutdown(): while the first rewrite after CONFIG SET appendonly yes
        runs there is no AOF yet, so the server refuses to exit without FORCE. Asked
        before anything stops (the listeners stay open when it refuses)."""
        if self.state != AOF_WAIT_REWRITE or not self.rewrite_child:
            return False
        if "force" in flags:
            logger.warning("Writing initial AOF. Exit anyway.")
            return False
        logger.warning("Writing initial AOF, can't exit.")
        return True

    def shutdown_hook(self, flags) -> None:
        """prepareForShutdown()'s AOF part: kill a rewrite (the AOF we have holds the
        whole dataset anyway), then flush and fsync."""
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
    """CONFIG SET appendonly: startAppendOnly() / stopAppendOnly()."""
    aof = server.aof
    if value and not aof.enabled:
        _start_appendonly(server, aof)
    elif not value and aof.enabled:
        _stop_appendonly(server, aof)


def _start_appendonly(server, aof) -> None:
    """startAppendOnly(): nothing is logged until the first rewrite's base exists
    (AOF_WAIT_REWRITE); writes meanwhile go to a temp incr file while its child runs."""
    try:
        aof._ensure_manifest()
    except AOFError as exc:
        raise ConfigError(f"Unable to turn on AOF. Check server logs. ({exc})") from None
    aof.state = AOF_WAIT_REWRITE
    if aof.has_active_child() and not aof.rewrite_child:
        aof.rewrite_scheduled = True
        logger.warning("AOF was enabled but there is already another background operation. "
                       "An AOF background was scheduled to start when possible.")
    elif any(client.in_exec for client in server.clients.values()):
        # server.in_exec: the fork waits for the transaction's end (the cron starts it).
        aof.rewrite_scheduled = True
        logger.warning("AOF was enabled during a transaction. An AOF background was "
                       "scheduled to start when possible.")
    else:
        if aof.rewrite_child:
            logger.warning("AOF was enabled but there is already an AOF rewriting in "
                           "background. Stopping background AOF and starting a rewrite now.")
            aof.kill_rewrite_child()
        if not aof.rewrite():
            aof.state = AOF_OFF
            logger.warning("Redis needs to enable the AOF but can't trigger a background AOF "
                           "rewrite operation. Check the above logs for more info about the "
                           "error.")
            raise ConfigError("Unable to turn on AOF. Check server logs.")
    aof.last_fsync = time.time()
    # A write error of the AOF before it was turned off no longer stops writes.
    if aof.fsync_errno:
        logger.warning("AOF reopen, just ignore the AOF fsync error in bio job")
        aof.fsync_errno = 0
    if not aof.last_write_ok:
        logger.warning("AOF reopen, just ignore the last error.")
        aof.last_write_ok = True
    server.disk_errors.refresh()
    server.enable_aof_logging()


def _stop_appendonly(server, aof) -> None:
    """stopAppendOnly(): flush and fsync what is buffered, close the incr file, stop a
    rewrite; what could not be written is dropped with the AOF itself."""
    aof.flush()
    if aof.fd >= 0:
        try:
            os.fsync(aof.fd)
            aof.last_fsync = time.time()
        except OSError as exc:
            logger.warning(f"Fail to fsync the AOF file: {_strerror(exc)}")
        os.close(aof.fd)
    aof.fd = -1
    aof.selected_db = -1
    aof.state = AOF_OFF
    aof.rewrite_scheduled = False
    aof.incr_size = 0
    aof.kill_rewrite_child()
    aof.buffer.clear()
    server.disable_aof_logging()
    aof.last_write_ok = True
    aof.fsync_errno = 0
    server.disk_errors.refresh()


def rdb_length(data: bytes) -> int:
    """Where the RDB preamble of an old-style AOF ends (its tail of commands follows),
    found as redis-check-rdb walks it."""
    from .tools import rdb_preamble_length

    return rdb_preamble_length(data)


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
