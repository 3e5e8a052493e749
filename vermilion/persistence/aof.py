"""The multi-part append-only file of Redis 7 (aof.c).

``appenddirname/`` holds a manifest (``appendonly.aof.manifest``), one base file (an RDB
snapshot, ``appendonly.aof.N.base.rdb``, or RESP commands with aof-use-rdb-preamble no)
and incremental files of RESP commands (``appendonly.aof.N.incr.aof``). Real Redis 7.0
loads this directory and we load its.

Durability: every propagated write is appended to a buffer; ``flush()`` writes the
buffer before any reply of that batch leaves the server, and with ``appendfsync always``
fsyncs it too, so an acknowledged write survives kill -9. ``everysec`` fsyncs from the
cron once a second; ``no`` leaves it to the kernel.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from hiredis import pack_command

from ..datatypes.packed import PackedValue, unpack
from ..log import logger
from ..protocol.parser import RequestParser
from . import rdb

TYPE_BASE, TYPE_HIST, TYPE_INCR = "b", "h", "i"


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
        self.last_write_ok = True
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
        data = b"".join(self.buffer)
        self.buffer.clear()
        try:
            view = memoryview(data)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
            self.current_size += len(data)
            self.last_write_ok = True
        except OSError as exc:
            self.last_write_ok = False
            logger.warning(f"Error writing to the AOF file: {exc.strerror}")
            return
        if self.server.config["appendfsync"] == "always" and not self._fsync_paused():
            os.fsync(self.fd)  # before the reply leaves: the write is on disk when acked
            self.last_fsync = time.time()
        else:
            self.pending_fsync = True

    def _fsync_paused(self) -> bool:
        # no-appendfsync-on-rewrite: while a child writes, skip fsync to spare the disk.
        return bool(self.server.config.values.get("no-appendfsync-on-rewrite")) and bool(
            self.rewrite_child or self.server.snapshots.child_pid)

    def cron(self) -> None:
        self.flush()
        if (self.pending_fsync and self.server.config["appendfsync"] != "no"
                and time.time() - self.last_fsync >= 1 and not self._fsync_paused()
                and (self.fsync_in_flight is None or self.fsync_in_flight.done())):
            self.fsync_in_flight = self.bio.submit(_fsync_quietly, self.fd)
            self.pending_fsync = False
            self.last_fsync = time.time()
        self._check_rewrite_child()
        self._maybe_auto_rewrite()

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
            # Keep appending to the last incr file, as Redis does after a restart.
            self.fd = os.open(self._path(incrs[-1].name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        else:
            self._open_new_incr()
        return loaded

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
        from ..commands.dispatch import process_command
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
        client = ReplayClient(self.server)
        for argv in commands:
            if len(argv) == 1 and argv[0].startswith(b"#"):
                continue  # an annotation (#TS:...), not a command
            reply = process_command(client, argv)
            if isinstance(reply, CommandError):
                logger.warning(f"Error replaying AOF command {argv[0]!r}: {reply.message}")

    # -- files ---------------------------------------------------------------------------------

    def _next_seq(self, kind: str) -> int:
        return max((e.seq for e in self.entries if e.type == kind), default=0) + 1

    def _write_manifest(self) -> None:
        temp = self.manifest_path + ".tmp"
        with open(temp, "w") as f:
            for entry in self.entries:
                f.write(entry.line())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, self.manifest_path)
        _fsync_dir(self.directory)

    def _base_name(self, seq: int) -> str:
        preamble = self.server.config.values.get("aof-use-rdb-preamble", True)
        return f"{self.prefix}.{seq}.base.{'rdb' if preamble else 'aof'}"

    def _write_base_file(self, path: str) -> None:
        temp = path + ".tmp"
        with open(temp, "wb") as f:
            if self.server.config.values.get("aof-use-rdb-preamble", True):
                from .snapshot import libraries_for_rdb

                rdb.dump_snapshot(self.server.dbs, f, aux={b"aof-base": b"1"},
                                  functions=libraries_for_rdb(self.server))
            else:
                from ..scripting.library import aof_rewrite_commands

                for argv in aof_rewrite_commands(self.server):  # FUNCTION LOAD per library
                    f.write(encode_command(argv) if isinstance(argv, list) else argv)
                for argv in dataset_as_commands(self.server.dbs):
                    f.write(argv)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)

    def _write_base_sync(self) -> None:
        seq = self._next_seq(TYPE_BASE)
        name = self._base_name(seq)
        self._write_base_file(self._path(name))
        self.entries = [e for e in self.entries if e.type != TYPE_BASE]
        self.entries.insert(0, ManifestEntry(name, seq, TYPE_BASE))
        self.base_size = os.path.getsize(self._path(name))

    def _open_new_incr(self) -> None:
        incr_seqs = [e.seq for e in self.entries if e.type == TYPE_INCR]
        seq = max(incr_seqs, default=0) + 1
        name = f"{self.prefix}.{seq}.incr.aof"
        self.entries.append(ManifestEntry(name, seq, TYPE_INCR))
        if self.fd >= 0:
            self.flush()
            old_fd = self.fd
            self.bio.submit(_fsync_and_close, old_fd)
        self.fd = os.open(self._path(name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.selected_db = -1
        self._write_manifest()

    # -- rewrite (BGREWRITEAOF) -------------------------------------------------------------------

    def rewrite(self) -> None:
        """Fork a child writing a new base; the parent switches to a new incr file now,
        so nothing written meanwhile is lost or needs merging (Redis 7's design)."""
        self.flush()
        self._open_new_incr()
        seq = self._next_seq(TYPE_BASE)
        name = self._base_name(seq)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                self._write_base_file(self._path(name))
            except BaseException:
                code = 1
            os._exit(code)
        self.rewrite_child = pid
        self.rewrite_started = time.time()
        self._pending_base = (name, seq)
        self._incr_at_fork = self.entries[-1]
        logger.notice(f"Background append only file rewriting started by pid {pid}")

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
        if os.waitstatus_to_exitcode(status) != 0:
            self.last_rewrite_ok = False
            self.consecutive_failures += 1
            logger.warning("Background AOF rewrite terminated with error")
            return
        name, seq = self._pending_base
        keep_from = self.entries.index(self._incr_at_fork)
        obsolete = [e for e in self.entries[:keep_from]]
        self.entries = [ManifestEntry(name, seq, TYPE_BASE)] + self.entries[keep_from:]
        self._write_manifest()
        for entry in obsolete:
            try:
                os.unlink(self._path(entry.name))
            except OSError:
                pass
        self.base_size = os.path.getsize(self._path(name))
        self.current_size = self.base_size + sum(
            os.path.getsize(self._path(e.name)) for e in self.entries if e.type == TYPE_INCR)
        self.last_rewrite_ok = True
        self.rewrites += 1
        self.consecutive_failures = 0
        logger.notice("Background AOF rewrite terminated with success")
        logger.notice("Background AOF rewrite finished successfully")
        if self.rewrite_scheduled:
            self.rewrite_scheduled = False
            self.rewrite()

    def _maybe_auto_rewrite(self) -> None:
        config = self.server.config.values
        percentage = config.get("auto-aof-rewrite-percentage", 100)
        min_size = config.get("auto-aof-rewrite-min-size", 64 * 1024 * 1024)
        if self.rewrite_child or not percentage or self.current_size < min_size:
            return
        base = self.base_size or 1
        growth = (self.current_size - base) * 100 // base
        if growth >= percentage:
            logger.notice(f"Starting automatic rewriting of AOF on {growth}% growth")
            self.rewrite()

    def shutdown_hook(self, flags) -> None:
        if self.rewrite_child:
            try:
                os.kill(self.rewrite_child, 9)
                os.waitpid(self.rewrite_child, 0)
            except OSError:
                pass
            self.rewrite_child = 0
        if self.fd >= 0:
            logger.notice("Calling fsync() on the AOF file.")
            self.flush()
            self.bio.shutdown(wait=True)
            os.fsync(self.fd)


class ReplayClient:
    """The fake client that replays AOF commands (Redis's AOF client: no replies)."""

    def __init__(self, server):
        self.server = server
        self.config_values = server.config.values
        self.db = server.dbs[0]
        self.resp = 2
        self.authenticated = True
        self.id = 0
        self.name = b""
        self.flags = set()
        self.addr = "aof"
        self.unix = False
        self.cmd = None
        self.closing = False
        self.close_after_reply = False
        self.reply_off = self.reply_skip = self.reply_skip_next = False
        self.loading_client = True

    def select(self, index: int) -> None:
        self.db = self.server.dbs[index]


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
        from ..commands.streams import stream_as_commands

        return stream_as_commands(key, value)
    if kind == "zset":
        flat = []
        for member, score in rdb.zset_pairs(value):
            flat += [rdb.score_text(score) if score == score else b"nan", member]
        return [[b"ZADD", key, *flat]]
    raise AOFError(f"cannot rewrite a value of type {kind}")


def install(server) -> AppendOnlyFile | None:
    aof = AppendOnlyFile(server)
    server.aof = aof
    from ..config import BY_NAME

    BY_NAME["appendonly"].apply = _apply_appendonly
    return aof


def _apply_appendonly(server, value) -> None:
    """CONFIG SET appendonly: yes builds the AOF (a base of the current dataset) before
    logging to it, as Redis's startAppendOnly does; no stops logging."""
    aof = server.aof
    if value and not aof.enabled:
        os.makedirs(aof.directory, exist_ok=True)
        if os.path.exists(aof.manifest_path):
            with open(aof.manifest_path) as f:
                aof.entries = parse_manifest(f.read())
        aof.enabled = True
        aof.rewrite()  # new incr file now, new base from the forked child
        server.enable_aof_logging()
    elif not value and aof.enabled:
        aof.flush()
        aof.enabled = False
        server.disable_aof_logging()


def _fsync_quietly(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError:
        pass


def _fsync_and_close(fd: int) -> None:
    _fsync_quietly(fd)
    try:
        os.close(fd)
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
