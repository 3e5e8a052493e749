"""Crash reports in the log, as Redis's debug.c writes them.

A fatal signal (sigsegvHandler()), a failed assertion (_serverAssert()) or a panic
(_serverPanic()) writes the same report between bugReportStart()'s and bugReportEnd()'s
banners: what happened, the stack trace (Python's, of every thread), INFO, CLIENT LIST,
the client whose command was running, the debug-flagged config — then the process dies
the way Redis's does: by the same signal (core dump and all), by abort(), or with exit
code 1 under use-exit-on-panic.

Signals: SIGABRT gets a Python handler that writes the report, as Redis's
sigaction(SA_SIGINFO) handler does (a real abort() still ends the process: it restores
the default action and raises again once a handler returns). SIGSEGV, SIGBUS, SIGFPE and
SIGILL must not: a Python handler only sets a flag and returns, and the faulting
instruction would fault again forever. faulthandler takes them, writing the
interpreter's stack trace of every thread to the log before the default action.
crash-log-enabled no leaves every one of them at the default action (setupSignalHandlers()).
"""

import faulthandler
import os
import signal
import sys
import threading
import time
import traceback

from . import REDIS_VERSION, info
from .commands.client_cmds import client_info_line
from .log import logger
from .protocol.encode import sds_repr

FATAL_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT)
REPORTED_SIGNALS = (signal.SIGABRT,)  # the ones a Python handler can report (above)
SI_USER = 0  # siginfo's si_code for a signal sent by kill()
SEGV_ACCERR = 2  # si_code of a write to a read-only page (DEBUG SEGFAULT's)
WARNING = 3

# The configs Redis flags DEBUG_CONFIG (config.c), logged under CONFIG DEBUG OUTPUT.
DEBUG_CONFIGS = (
    "lazyfree-lazy-user-del", "sanitize-dump-payload", "proto-max-bulk-len",
    "io-threads-do-reads", "list-compress-depth", "io-threads", "lazyfree-lazy-expire",
    "lazyfree-lazy-server-del", "lazyfree-lazy-eviction", "replica-read-only",
    "repl-diskless-sync", "lazyfree-lazy-user-flush", "repl-diskless-load", "activedefrag",
    "client-query-buffer-limit",
)

BUG_REPORT_START = "\n\n=== REDIS BUG REPORT START: Cut & paste starting from here ===\n"
BUG_REPORT_END = (
    "\n=== REDIS BUG REPORT END. Make sure to include from START to END. ===\n\n"
    "       Please report the crash by opening an issue on github:\n\n"
    "           http://github.com/redis/redis/issues\n\n"
    "  If a Redis module was involved, please open in the module's repo instead.\n\n"
    "  Suspect RAM error? Use redis-server --test-memory to verify it.\n\n"
    "  Some other issues could be detected by redis-server --check-system\n"
)


class CrashLog:
    """The server's crash reporting: its signal handlers and the report itself."""

    def __init__(self, server):
        self.server = server
        self.started = False  # bugReportStart() printed its banner (once per report)
        self.installed = False
        self._fault_file = None  # the log file faulthandler writes to

    # -- signal handlers (setupSignalHandlers / setupSigSegvAction) -----------------

    def install(self) -> None:
        """Install or remove the fatal-signal handlers as crash-log-enabled says."""
        if self.server.config["crash-log-enabled"]:
            self._enable_faulthandler()
            for sig in REPORTED_SIGNALS:
                signal.signal(sig, self._on_fatal_signal)
            self.installed = True
        else:
            self.remove()

    def configure(self, server=None, value=None) -> None:
        """CONFIG SET crash-log-enabled (updateSighandlerEnabled())."""
        self.install()

    def remove(self) -> None:
        """removeSignalHandlers(): a crash from here on gets the default action."""
        faulthandler.disable()
        for sig in FATAL_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        self.installed = False

    def _enable_faulthandler(self) -> None:
        path = self.server.config["logfile"]
        try:
            if path and self._fault_file is None:
                self._fault_file = open(path, "a")
            faulthandler.enable(self._fault_file or sys.stdout, all_threads=True)
        except (OSError, ValueError, AttributeError):
            pass  # no usable file descriptor: the Python handlers still report

    def _on_fatal_signal(self, sig: int, frame) -> None:
        self.crash_by_signal(sig, SI_USER, frame)

    # -- the reports ---------------------------------------------------------------

    def crash_by_signal(self, sig: int, si_code: int, frame=None, client=None,
                        argv: list | None = None, address: int | None = None) -> None:
        """sigsegvHandler(): the report, then death by the same signal."""
        self.bug_report_start()
        logger.warning("Redis %s crashed by signal: %d, si_code: %d"
                       % (REDIS_VERSION, sig, si_code))
        if address is not None and sig in (signal.SIGSEGV, signal.SIGBUS):
            logger.warning("Accessing address: 0x%x" % address)
        self.log_stack_trace(frame)
        self.print_crash_report(client, argv)
        self.bug_report_end(kill_via_signal=True, sig=sig)

    def segfault(self, client=None, argv=None, frame=None) -> None:
        """DEBUG SEGFAULT: what a write to a read-only page ends in, the report only
        while the SIGSEGV handler is installed (crash-log-enabled)."""
        if self.installed:
            self.crash_by_signal(signal.SIGSEGV, SEGV_ACCERR, frame, client, argv)
        faulthandler.disable()
        signal.signal(signal.SIGSEGV, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGSEGV)

    def assertion_failed(self, expression: str, where: str, client=None,
                         argv: list | None = None, frame=None) -> None:
        """_serverAssertWithInfo(): the client's context, the assertion, the report,
        then abort() with the handlers removed (so no second report)."""
        if client is not None and argv is not None:
            self.bug_report_start()
            logger.warning("=== ASSERTION FAILED CLIENT CONTEXT ===")
            logger.warning("client->conn = fd=%s, addr=%s" % (client.fd, client.addr))
            logger.warning("client->argc = %d" % len(argv))
            for n, arg in enumerate(argv):
                logger.warning('client->argv[%d] = "%s" (refcount: 1)'
                               % (n, arg.decode("utf-8", "replace")))
        self.bug_report_start()
        logger.warning("=== ASSERTION FAILED ===")
        logger.warning("==> %s '%s' is not true" % (where, expression))
        if self.server.config["crash-log-enabled"]:
            self.log_stack_trace(frame)
            self.print_crash_report(client, argv)
        self.remove()
        self.bug_report_end(kill_via_signal=False)

    def panic(self, message: str, where: str, client=None, argv=None, frame=None) -> None:
        """_serverPanic(): Guru Meditation, the report, then abort()."""
        self.bug_report_start()
        logger.warning("------------------------------------------------")
        logger.warning("!!! Software Failure. Press left mouse button to continue")
        logger.warning("Guru Meditation: %s #%s" % (message, where))
        if self.server.config["crash-log-enabled"]:
            self.log_stack_trace(frame)
            self.print_crash_report(client, argv)
        self.remove()
        self.bug_report_end(kill_via_signal=False)

    def bug_report_start(self) -> None:
        if not self.started:
            logger.raw(WARNING, BUG_REPORT_START)
            self.started = True

    def log_stack_trace(self, frame=None) -> None:
        """logStackTrace(): the interpreter's stack of every thread, the interrupted
        (or crashing) one first."""
        lines = ["\n------ STACK TRACE ------\n", "\nBacktrace:\n"]
        frames = sys._current_frames()
        main = frame if frame is not None else sys._getframe(1)
        lines.extend(traceback.format_stack(main))
        for ident, other in frames.items():
            if other is main or ident == threading.get_ident():
                continue
            lines.append("\nThread %d:\n" % ident)
            lines.extend(traceback.format_stack(other))
        logger.raw(WARNING, "".join(lines))

    def print_crash_report(self, client=None, argv=None) -> None:
        """printCrashReport(): INFO, CLIENT LIST, the current client, the debug configs
        (no modules; no memory test, which has nothing to find under Python)."""
        server = self.server
        out = logger.raw
        try:
            text = info.render(server, info.select_sections([b"all"]))
            text = text.decode("utf-8", "replace")
        except Exception as exc:  # a report must survive a broken section
            text = "(INFO failed: %r)\n" % exc
        out(WARNING, "\n------ INFO OUTPUT ------\n" + text.replace("\r\n", "\n"))
        now = time.time()
        clients = "".join(_client_line(c, now) for c in list(server.clients.values()))
        out(WARNING, "\n------ CLIENT LIST OUTPUT ------\n" + clients)
        if client is not None:
            self._log_current_client(client, argv or [], now)
        out(WARNING, "\n------ CONFIG DEBUG OUTPUT ------\n"
            + "".join(_config_line(server.config, name) for name in DEBUG_CONFIGS))

    def _log_current_client(self, client, argv, now) -> None:
        """logCurrentClient(): its CLIENT LIST line, its arguments (sdscatrepr'd, at
        most 128 bytes each) and whether its first argument names a key."""
        logger.raw(WARNING, "\n------ CURRENT CLIENT INFO ------\n")
        logger.raw(WARNING, _client_line(client, now, argv))
        for n, arg in enumerate(argv):
            logger.raw(WARNING, "argv[%d]: '%s'\n" % (n, sds_repr(arg[:128])))
        if len(argv) > 1:
            value = client.db.data.get(argv[1])
            if value is not None:
                logger.warning("key '%s' found in DB containing the following object:"
                               % argv[1].decode("utf-8", "replace"))
                logger.warning("Object type: %s" % type(value).__name__)

    def bug_report_end(self, kill_via_signal: bool, sig: int = 0) -> None:
        """bugReportEnd(): the closing banner, then the process ends: by sig at its
        default action, else by abort() (or exit(1) under use-exit-on-panic)."""
        server = self.server
        logger.raw(WARNING, BUG_REPORT_END)
        config = server.config
        if config["daemonize"] and config["supervised"] == "no" and config["pidfile"]:
            try:
                os.unlink(config["pidfile"])
            except OSError:
                pass
        sys.stdout.flush()
        if not kill_via_signal:
            if config["use-exit-on-panic"]:
                os._exit(1)
            sig = signal.SIGABRT
        faulthandler.disable()
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # not reached: the default action ends the process


def _client_line(client, now, argv=None) -> str:
    try:
        return client_info_line(client, now, argv) + "\n"
    except Exception as exc:
        return "id=%s (unprintable: %r)\n" % (getattr(client, "id", "?"), exc)


def _config_line(config, name: str) -> str:
    try:
        return "%s %s\n" % (name, config.format(name))
    except Exception:
        return ""


