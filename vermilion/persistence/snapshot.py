"""RDB snapshots for a running server: SAVE, BGSAVE in a forked child, save points
checked by the cron, loading at start-up and the final save at shutdown (rdb.c
rdbSave/rdbSaveBackground/rdbLoad, server.c serverCron's save-point check).

A snapshot is written to a temp file, fsynced and renamed over `dbfilename`, so a
crash mid-save never damages the previous snapshot.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from ..log import logger
from ..protocol.errors import CommandError
from . import rdb, tools
from .childinfo import ChildInfo

BGSAVE_RETRY_DELAY = 5  # CONFIG_BGSAVE_RETRY_DELAY: seconds after a failed bgsave


class Snapshots:
    """The persistence state INFO reports, and the operations on it."""

    def __init__(self, server):
        self.server = server
        self.child_pid = 0
        self.child_started = 0.0
        self.dirty_at_fork = 0
        self.last_bgsave_ok = True
        self.last_bgsave_try = 0.0
        self.last_bgsave_seconds = -1
        self.scheduled = False
        self.changes_at_save = 0
        self.loaded_keys = 0
        self.loaded_expired = 0
        # The aux fields of the RDB file loaded at startup ({} without one): its
        # repl-id/repl-offset let replication continue from it (loadDataFromDisk's rsi).
        self.loaded_aux: dict[bytes, bytes] = {}
        self.loaded_expired_keys: list = []  # (db, key) it skipped as expired
        self.saves = 0
        self.child_info = ChildInfo()  # what the BGSAVE child reports (childinfo.c)
        self.last_cow_size = 0  # rdb_last_cow_size

    # -- paths ------------------------------------------------------------------

    @property
    def path(self) -> str:
        config = self.server.config
        return os.path.join(config["dir"] or ".", config["dbfilename"])

    def _limits(self) -> dict:
        config = self.server.config.values
        return {k: config.get(k) for k in ("list-max-listpack-size",) if k in config}

    # -- saving -----------------------------------------------------------------

    def temp_path(self, pid: int) -> str:
        # rdbSave(): "temp-<pid>.rdb" beside the target, so the rename is atomic.
        return os.path.join(os.path.dirname(self.path) or ".", "temp-%d.rdb" % pid)

    def write_stream(self, out, aux: dict | None = None, keep=None, progress=None) -> None:
        """The snapshot, to a binary file object (a replica's pipe, diskless sync).
        keep: None for everything, else a set naming the parts kept: "functions" (the
        keys go only when keep is None; REPLCONF rdb-filter-only)."""
        config = self.server.config
        functions = self.server.functions_engine.codes()
        if keep is not None and "functions" not in keep:
            functions = ()
        rdb.dump_snapshot(self.server.dbs if keep is None else (), out,
                          compression=_yes(config, "rdbcompression"),
                          functions=functions,
                          checksum=_yes(config, "rdbchecksum"), limits=self._limits(), aux=aux,
                          key_delay_us=config["rdb-key-save-delay"], progress=progress)

    def write_file(self, path: str, aux: dict | None = None, progress=None) -> None:
        """rdbSave(): write the snapshot to a temp file, fsync, rename over path. On
        failure the temp file is removed (a full disk must not stay full because of
        it), the reason is logged as Redis logs it, and OSError propagates."""
        if aux is None:  # rdbSave(..., rsi): a point of the replication history
            aux = self.server.repl.save_info()
        directory = os.path.dirname(path) or "."
        temp = self.temp_path(os.getpid())
        try:
            f = open(temp, "wb")
        except OSError as exc:
            logger.warning(f"Failed opening the temp RDB file {os.path.basename(temp)} (in "
                           f"server root dir {os.getcwd()}) for saving: {exc.strerror}")
            raise
        step = "rdbSaveRio"
        try:
            with f:
                self.write_stream(f, aux, progress=progress)
                step = "fflush"
                f.flush()
                step = "fsync"
                os.fsync(f.fileno())
                step = "fclose"
        except OSError as exc:
            logger.warning(f"Write error saving DB on disk({step}): {exc.strerror}")
            _unlink_quietly(temp)
            raise
        try:
            os.replace(temp, path)
        except OSError as exc:
            logger.warning(f"Error moving temp DB file {os.path.basename(temp)} on the final "
                           f"destination {path} (in server root dir {os.getcwd()}): "
                           f"{exc.strerror}")
            _unlink_quietly(temp)
            raise
        _fsync_dir(directory)

    def save(self) -> None:
        """SAVE: synchronous, in the event loop (as Redis blocks for SAVE). A failure
        answers -ERR and, as rdbSave() does, leaves the BGSAVE status alone."""
        if self.child_pid:
            raise CommandError("ERR Background save already in progress")
        try:
            self.write_file(self.path)
        except OSError:
            raise CommandError("ERR") from None
        logger.notice("DB saved on disk")
        self.saved(time.time())

    def saved(self, when: float, dirty_done: int | None = None) -> None:
        server = self.server
        server.dirty = server.dirty - dirty_done if dirty_done is not None else 0
        server.dirty = max(server.dirty, 0)
        server.lastsave = int(when)
        self.saves += 1
        self._set_bgsave_ok(True)

    def bgsave(self) -> None:
        """Fork a child that writes the snapshot: the copy-on-write memory *is* the
        point-in-time snapshot, and the parent keeps serving."""
        self.last_bgsave_try = time.time()
        self.dirty_at_fork = self.server.dirty
        info = self.child_info
        info.start(sum(len(db.data) for db in self.server.dbs))
        try:
            pid = os.fork()
        except OSError as exc:
            self._set_bgsave_ok(False)
            logger.warning(f"Can't save in background: fork: {exc.strerror}")
            raise CommandError("ERR") from None
        if pid == 0:  # the child: write and leave without running any parent cleanup
            self.server.enter_child("redis-rdb-bgsave")
            code = 0
            try:
                self.write_file(self.path, progress=info.progress)
                logger.notice("DB saved on disk")
                info.report_final(info.keys_total)  # sendChildCowInfo(..., "RDB")
            except BaseException:
                code = 1
            os._exit(code)
        self.server.stats.total_forks += 1
        self.child_pid = pid
        self.child_started = time.time()
        logger.notice(f"Background saving started by pid {pid}")

    def check_child(self) -> None:
        """Reap a finished BGSAVE child (called by the cron)."""
        if not self.child_pid:
            return
        try:
            pid, status = os.waitpid(self.child_pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.child_pid, 1 << 8
        if pid == 0:
            return
        self.child_pid = 0
        self.last_bgsave_seconds = int(time.time() - self.child_started)
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            self.last_cow_size = self.child_info.final_cow()
        self.child_info.finish()
        if code == 0:
            logger.notice("Background saving terminated with success")
            self.saved(self.child_started, self.dirty_at_fork)
        elif code > 0:  # the child removed its own temp file
            logger.warning("Background saving error")
            self._set_bgsave_ok(False)
        else:
            # backgroundSaveDoneHandlerDisk(): a killed child cannot clean up after
            # itself; SIGUSR1 is the way to stop one without it counting as an error.
            logger.warning(f"Background saving terminated by signal {-code}")
            _unlink_quietly(self.temp_path(pid))
            if -code != signal.SIGUSR1:
                self._set_bgsave_ok(False)
        if self.scheduled:
            self.scheduled = False
            self.bgsave()

    def cron(self) -> None:
        self.check_child()
        if self.child_pid:
            return
        server = self.server
        now = time.time()
        for seconds, changes in server.config["save"]:
            if server.dirty >= changes and now - server.lastsave > seconds and (
                self.last_bgsave_ok or now - self.last_bgsave_try > BGSAVE_RETRY_DELAY
            ):
                logger.notice(f"{changes} changes in {seconds} seconds. Saving...")
                try:
                    self.bgsave()
                except CommandError:
                    pass
                break

    def wait_child(self) -> None:
        """Shutdown: a running BGSAVE child is killed, as Redis does (killRDBChild)."""
        if self.child_pid:
            logger.warning("There is a child saving an .rdb. Killing it!")
            try:
                os.kill(self.child_pid, 9)
                os.waitpid(self.child_pid, 0)
            except OSError:
                pass
            _unlink_quietly(self.temp_path(self.child_pid))
            self.child_pid = 0

    def shutdown_hook(self, flags) -> None:
        self.wait_child()
        config = self.server.config
        wants_save = ("save" in flags) or (bool(config["save"]) and "nosave" not in flags)
        if not wants_save:
            return
        logger.notice("Saving the final RDB snapshot before exiting.")
        try:
            self.write_file(self.path)
        except OSError as exc:
            logger.warning(f"Error trying to save the DB, can't exit. ({exc.strerror})")
            raise
        logger.notice("DB saved on disk")
        self.saved(time.time())

    def _set_bgsave_ok(self, ok: bool) -> None:
        if ok != self.last_bgsave_ok:
            self.last_bgsave_ok = ok
            self.server.disk_errors.refresh()  # stop-writes-on-bgsave-error

    # -- loading ------------------------------------------------------------------

    async def load_at_startup(self) -> None:
        path = self.path
        if not os.path.exists(path):
            return
        start = time.time()
        try:
            with open(path, "rb") as f:
                data = f.read()
            steps = rdb.iter_load_snapshot(
                data, self.server.dbs, log=logger.warning,
                pause_every=self.server.config["loading-process-events-interval-bytes"],
                packed=True)
            with rdb.paused_gc():
                result = await _serving_clients_between(steps, self.server.stopping)
            if result is None:
                logger.warning("Loading interrupted by a shutdown request.")
                return
            load_functions(self.server, result)
        except rdb.RDBError as exc:
            raise SystemExit(self._report_load_failure(exc)) from None
        aux = result.aux
        if b"redis-ver" in aux:
            logger.notice(f"Loading RDB produced by version {aux[b'redis-ver'].decode()}")
        if b"ctime" in aux:
            logger.notice(f"RDB age {int(time.time()) - int(aux[b'ctime'])} seconds")
        if not result.empty_keys:  # rdb.py logs rdbLoad()'s warning version otherwise
            logger.notice(f"Done loading RDB, keys loaded: {result.keys}, "
                          f"keys expired: {result.expired}.")
        logger.notice("DB loaded from disk: %.3f seconds" % (time.time() - start))
        self.loaded_keys = result.keys
        self.loaded_expired = result.expired
        self.loaded_aux = aux
        self.loaded_expired_keys = result.expired_keys
        self.server.dirty = 0
        self.server.lastsave = int(time.time())

    def _report_load_failure(self, exc: rdb.RDBError) -> int:
        """The exit code of a start-up load that failed, after Redis's lines for it. A
        failure rdbLoad() reports with rdbReportError() (a damaged value, a short read,
        the CRC) logs its line, then runs redis-check-rdb on the file
        (redis_check_rdb_main(), whose report is printed on stdout and which exits the
        process with its own code; its rdbReportError() in check mode logs "Terminating
        server after rdb file reading failure."). Others (signature, version) get
        loadDataFromDisk()'s "Fatal error loading the DB" with rdbLoad()'s errno."""
        if exc.offset is None:
            if exc.reason.startswith(("Wrong signature", "Can't handle RDB format")):
                logger.warning(exc.reason)
                logger.warning("Fatal error loading the DB: Invalid argument. Exiting.")
            else:
                logger.warning(f"Fatal error loading the DB: {exc}. Exiting.")
            return 1
        if exc.head:
            logger.warning(exc.head)
        logger.warning(self._report_error_line(exc))
        sys.stdout.flush()
        return tools.check_rdb(self.server.config["dbfilename"])

    def _report_error_line(self, exc: rdb.RDBError) -> str:
        """rdbReportError()'s line: its offset is server.loading_loaded_bytes, which
        rdbLoadProgressCallback() advances once per loading-process-events-interval-bytes
        read (0 for a smaller file)."""
        interval = self.server.config["loading-process-events-interval-bytes"]
        loaded = exc.offset // interval * interval if interval > 0 else 0
        line = _RDBLOAD_REPORT_LINES.get(exc.reason)
        if line is None:
            return rdb.corruption_log_line(exc.reason, loaded)
        return (f"Internal error in RDB reading offset {loaded}, function at "
                f"rdb.c:{line} -> {exc.reason}")


# rdbLoadRioWithLoadingCtx()'s own rdbReportError() calls, the CRC check and the short
# read of its eoferr label: their __LINE__ as the redis-server 7.0.15 the tests compare
# with logs it (Debian's build; 3216 and 3240 in the upstream tag), as rdb.RDB_C_LINES.
_RDBLOAD_REPORT_LINES = {"RDB CRC error": 3225, rdb.EOF_REASON: 3249}


async def _serving_clients_between(steps, stopping):
    """Run a loading generator, letting the event loop run between its steps; its
    return value, or None when a shutdown (SHUTDOWN is allowed while loading) ends the
    load before it is done, as Redis exits from within its loading loop."""
    await asyncio.sleep(0)  # connections already waiting learn of the load at once
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        await asyncio.sleep(0)
        if stopping():
            steps.close()
            return None


def load_functions(server, result, replace: bool = True) -> None:
    """Function libraries found in an RDB file are loaded once the keys are in; a
    library that fails to load fails the load, as Redis refuses to start. replace=False:
    a library that exists already is such a failure (a load without ALLOW_DUP)."""
    for code in result.functions:
        try:
            server.functions_engine.load_from_rdb(code, replace)
        except CommandError as exc:
            raise rdb.RDBError(f"Failed loading a function library: {exc.message}") from None


def _yes(config, name: str) -> bool:
    return bool(config.values.get(name, True))


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
