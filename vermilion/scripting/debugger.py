"""LDB, Redis's Lua debugger, in its synchronous mode (SCRIPT DEBUG SYNC; eval.c).

Redis runs a debugged EVAL with a line hook (luaLdbLineHook) and talks to the debugging
client directly on its socket, in blocking mode, from inside the hook: the whole server
waits while the client sits at the debugger prompt, and the client's input is read by
the debugger (ldbRepl), not by the command dispatcher. The same here: the script runs
on the loop thread without ever giving the loop a turn, and the hook reads and writes
the client's file descriptor itself, so every other client waits, as in Redis.

The debugger's state and its commands are here; what must look at the Lua stack
(print, trace, eval, the value dumps) is in bootstrap.lua (api.ldb_*).
"""

from __future__ import annotations

import os
import select
import time

from ..log import logger
from ..protocol.encode import encode, sds_repr
from ..protocol.parser import c_atoi
from .convert import error_table

MAX_BREAKPOINTS = 64  # LDB_BREAKPOINTS_MAX
DEFAULT_MAXLEN = 256  # LDB_MAX_LEN_DEFAULT
SEND_TIMEOUT = 5.0  # connSendTimeout(ldb.conn, 5000)
MAX_QUERY = 1 << 20  # ldbRepl(): past 1MB of input the script fails
DEFAULT_TIMEOUT_MS = 5000

HELP = [
    "Redis Lua debugger help:",
    "[h]elp               Show this help.",
    "[s]tep               Run current line and stop again.",
    "[n]ext               Alias for step.",
    "[c]ontinue           Run till next breakpoint.",
    "[l]ist               List source code around current line.",
    "[l]ist [line]        List source code around [line].",
    "                     line = 0 means: current position.",
    "[l]ist [line] [ctx]  In this form [ctx] specifies how many lines",
    "                     to show before/after [line].",
    "[w]hole              List all source code. Alias for 'list 1 1000000'.",
    "[p]rint              Show all the local variables.",
    "[p]rint <var>        Show the value of the specified variable.",
    "                     Can also show global vars KEYS and ARGV.",
    "[b]reak              Show all breakpoints.",
    "[b]reak <line>       Add a breakpoint to the specified line.",
    "[b]reak -<line>      Remove breakpoint from the specified line.",
    "[b]reak 0            Remove all breakpoints.",
    "[t]race              Show a backtrace.",
    "[e]val <code>        Execute some Lua code (in a different callframe).",
    "[r]edis <cmd>        Execute a Redis command.",
    "[m]axlen [len]       Trim logged Redis replies and Lua var dumps to len.",
    "                     Specifying zero as <len> means unlimited.",
    "[a]bort              Stop the execution of the script. In sync",
    "                     mode dataset changes will be retained.",
    "",
    "Debugger functions you can call from Lua scripts:",
    "redis.debug()        Produce logs in the debugger console.",
    "redis.breakpoint()   Stop execution like if there was a breakpoint in the",
    "                     next line of code.",
]
_CLOSED = object()
UNKNOWN = "<error> Unknown Redis Lua debugger command or wrong number of arguments."


class ProtocolError(Exception):
    pass


def atoi(text: bytes) -> int:
    """C's atoi() into an int: c_atoi() wrapped to 32 bits."""
    return (c_atoi(text) + 2**31) % 2**32 - 2**31


def string2l(text: bytes):
    """string2l(): a strict decimal long, or None."""
    if not text or len(text) > 20 or text != text.strip() or text.startswith(b"+"):
        return None
    if text.startswith(b"0") and len(text) > 1 or text.startswith(b"-0"):
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if -2**63 <= value < 2**63 else None


def command_name(arg: bytes) -> bytes:
    # strcasecmp() stops at a NUL: "s\0x" is "s".
    return arg.split(b"\0", 1)[0].lower()


def parse_command(buf: bytes):
    """ldbReplParseCommand(): (argv, bytes used) for a complete multibulk, None when
    more input is needed; ProtocolError for what it refuses. Like Redis's parser, it is
    forgiving: it seeks the '*' and ignores what follows the command."""
    star = buf.find(b"*")
    if star < 0:
        raise ProtocolError()
    end = buf.find(b"\r\n", star)
    if end < 0:
        return None
    argc = atoi(buf[star + 1:end])
    if argc <= 0 or argc > 1024:
        raise ProtocolError()
    pos = end + 2
    argv = []
    while len(argv) < argc:
        if pos >= len(buf) or buf[pos] == 0:
            return None
        if buf[pos:pos + 1] != b"$":
            raise ProtocolError()
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None
        length = atoi(buf[pos + 1:end])
        if length <= 0 or length > 1024:
            raise ProtocolError()
        start = end + 2
        if start + length + 2 > len(buf):
            return None
        argv.append(buf[start:start + length])
        pos = start + length
        if buf[pos:pos + 2] != b"\r\n":
            raise ProtocolError()
        pos += 2
    return argv


def reply_to_human(data: bytes, pos: int = 0):
    """ldbRedisProtocolToHuman(): (text, next position) of the reply at pos."""
    kind = data[pos:pos + 1]
    end = data.find(b"\r", pos + 1)
    head = data[pos + 1:end]
    nxt = end + 2
    if kind == b":":
        return head.decode("latin-1"), nxt
    if kind == b"$":
        length = int(head)
        if length == -1:
            return "NULL", nxt
        return sds_repr(data[nxt:nxt + length]), nxt + length + 2
    if kind in (b"+", b"-"):
        return sds_repr(data[pos:end]), nxt
    if kind in (b"*", b"~", b"%"):
        count = int(head)
        if kind == b"*" and count == -1:
            return "NULL", nxt
        parts = []
        for _ in range(count):
            text, nxt = reply_to_human(data, nxt)
            if kind == b"%":
                value, nxt = reply_to_human(data, nxt)
                text = text + " => " + value
            parts.append(text)
        opening, closing = {b"*": ("[", "]"), b"~": ("~(", ")"), b"%": ("{", "}")}[kind]
        return opening + ",".join(parts) + closing, nxt
    if kind == b"_":
        return "(null)", nxt
    if kind == b"#":
        return ("#true" if head == b"t" else "#false"), nxt
    if kind == b",":
        return "(double) " + head.decode("latin-1"), nxt
    return "", nxt


class LuaDebugger:
    """One synchronous debugging session (Redis's global `ldb`, for one EVAL)."""

    def __init__(self, engine, fd: int, body: bytes):
        self.engine = engine
        self.fd = fd
        self.forked = False  # SCRIPT DEBUG YES: a child runs the session
        self.logs: list[bytes] = []
        self.cbuf = b""
        self.step = True  # ldbEnable(): the script stops at its first line
        self.luabp = False
        self.breakpoints: list[int] = []
        self.maxlen = DEFAULT_MAXLEN
        self.maxlen_hint_sent = False
        self.currentline = -1
        self.started = time.monotonic()
        # ldbStartSession(): the source without its trailing newlines, split in lines.
        self.lines = body.rstrip(b"\r\n").split(b"\n") if body.rstrip(b"\r\n") else []

    # -- the log --------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """ldbIsEnabled(): commands and their replies are logged while stepping."""
        return self.step

    def log(self, entry) -> None:
        self.logs.append(entry if isinstance(entry, bytes)
                         else entry.encode("utf-8", "surrogateescape"))

    def log_maxlen(self, entry) -> None:
        """ldbLogWithMaxLen()."""
        if isinstance(entry, str):
            entry = entry.encode("utf-8", "surrogateescape")
        trimmed = False
        if self.maxlen and len(entry) > self.maxlen:
            entry = entry[:self.maxlen] + b" ..."
            trimmed = True
        self.log(entry)
        if trimmed and not self.maxlen_hint_sent:
            self.maxlen_hint_sent = True
            self.log("<hint> The above reply was trimmed. Use 'maxlen 0' to disable trimming.")

    def send_logs(self) -> None:
        """ldbSendLogs(): the log as an array of status replies, CR/LF made spaces."""
        out = [b"*%d\r\n" % len(self.logs)]
        for entry in self.logs:
            out.append(b"+" + entry.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n")
        self.logs = []
        self.write(b"".join(out))

    def log_command(self, argv) -> None:
        """luaRedisGenericCommand()'s "<redis> ..." line (the count is Redis's)."""
        line = b"<redis>"
        for j, arg in enumerate(argv):
            if j == 10:
                line += b" ... (%d more)" % (len(argv) - j - 1)
                break
            line += b" " + arg
        self.log(line)

    def log_reply(self, reply, resp: int) -> None:
        """ldbLogRedisReply()."""
        text, _ = reply_to_human(encode(reply, resp))
        self.log_maxlen("<reply> " + text)

    def log_source_line(self, lnum: int) -> None:
        """ldbLogSourceLine()."""
        line = self.lines[lnum - 1] if 1 <= lnum <= len(self.lines) \
            else b"<out of range source code line>"
        current = lnum == self.currentline
        bp = lnum in self.breakpoints
        prefix = b"->#" if current and bp else b"-> " if current else b"  #" if bp else b"   "
        self.log(b"%s%-3d %s" % (prefix, lnum, line))

    # -- the socket -----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        # A blocking write with Redis's 5 s send timeout; errors are left for the next
        # read to find (ldbSendLogs() ignores them too).
        deadline = time.monotonic() + SEND_TIMEOUT
        while data and self.fd >= 0:
            try:
                sent = os.write(self.fd, data)
                data = data[sent:]
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                select.select([], [self.fd], [], left)
            except OSError:
                return

    def _read(self) -> bytes:
        """Blocks until the client sends something; b"" once it is gone."""
        while True:
            try:
                return os.read(self.fd, 1024)
            except BlockingIOError:
                select.select([self.fd], [], [])
            except InterruptedError:
                continue
            except OSError:
                return b""

    # -- the hook and the REPL ----------------------------------------------------------

    def line_hook(self, is_count: bool, line: int):
        """luaLdbLineHook(): None to go on, or the error table the script dies with."""
        self.currentline = line
        bp = line in self.breakpoints or self.luabp
        timeout = False
        if is_count and not self.step and not bp:
            threshold = self.engine.server.config.values.get("busy-reply-threshold", 0)
            limit = (threshold or DEFAULT_TIMEOUT_MS) / 1000
            if time.monotonic() - self.started < limit:
                return None
            timeout = self.step = True
        if not (self.step or bp):
            return None
        reason = "step over"
        if bp:
            reason = "redis.breakpoint() called" if self.luabp else "break point"
        elif timeout:
            reason = "timeout reached, infinite loop?"
        self.step = self.luabp = False
        self.log("* Stopped at %d, stop reason = %s" % (line, reason))
        self.log_source_line(line)
        self.send_logs()
        outcome = self.repl()
        if outcome is _CLOSED:
            if timeout:
                # The script would otherwise keep the server blocked for good.
                return self._error(
                    "timeout during Lua debugging with client closing connection")
        elif outcome is not None:
            return outcome
        self.started = time.monotonic()
        return None

    def _error(self, message: str):
        return error_table(self.engine.state.lua, "ERR " + message)

    def repl(self):
        """ldbRepl(): runs debugger commands until one resumes the script. None to go
        on, _CLOSED when the client is gone, or an error table (abort, protocol error)."""
        while True:
            argv = None
            while argv is None:
                try:
                    argv = parse_command(self.cbuf) if self.cbuf else None
                except ProtocolError:
                    return self._error("protocol error")
                if argv is not None:
                    break
                data = self._read() if self.fd >= 0 else b""
                if not data:
                    # The client is gone: the script runs on without stopping.
                    self.fd = -1
                    self.step = False
                    self.breakpoints = []
                    return _CLOSED
                self.cbuf += data
                if len(self.cbuf) > MAX_QUERY:
                    self.cbuf = b""
                    return self._error("max client buffer reached")
            self.cbuf = b""
            name = command_name(argv[0])
            if name in (b"h", b"help"):
                for line in HELP:
                    self.log(line)
            elif name in (b"s", b"step", b"n", b"next"):
                self.step = True
                return None
            elif name in (b"c", b"continue"):
                return None
            elif name in (b"t", b"trace"):
                self.trace()
            elif name in (b"m", b"maxlen"):
                self.set_maxlen(argv)
            elif name in (b"b", b"break"):
                self.breakpoint(argv)
            elif name in (b"e", b"eval"):
                self.eval(argv)
            elif name in (b"a", b"abort"):
                return self._error("script aborted for user request")
            elif len(argv) > 1 and name in (b"r", b"redis"):
                self.redis(argv)
            elif name in (b"p", b"print"):
                self.print(argv)
            elif name in (b"l", b"list"):
                around, context = self.currentline, 5
                if len(argv) > 1:
                    number = atoi(argv[1])
                    if number > 0:
                        around = number
                if len(argv) > 2:
                    context = atoi(argv[2])
                self.list(around, context)
            elif name in (b"w", b"whole"):
                self.list(1, 1000000)
            else:
                self.log(UNKNOWN)
            self.send_logs()

    # -- the commands ---------------------------------------------------------------------

    def list(self, around: int, context: int) -> None:
        """ldbList()."""
        for lnum in range(1, len(self.lines) + 1):
            if around != 0 and abs(around - lnum) > context:
                continue
            self.log_source_line(lnum)

    def breakpoint(self, argv) -> None:
        """ldbBreak()."""
        if len(argv) == 1:
            if not self.breakpoints:
                self.log("No breakpoints set. Use 'b <line>' to add one.")
                return
            self.log("%d breakpoints set:" % len(self.breakpoints))
            for line in self.breakpoints:
                self.log_source_line(line)
            return
        for arg in argv[1:]:
            line = string2l(arg)
            if line is None:
                self.log(b"Invalid argument:'" + arg + b"'")
            elif line == 0:
                self.breakpoints = []
                self.log("All breakpoints removed.")
            elif line > 0:
                if len(self.breakpoints) == MAX_BREAKPOINTS:
                    self.log("Too many breakpoints set.")
                elif 0 < line <= len(self.lines) and line not in self.breakpoints:
                    self.breakpoints.append(line)
                    self.list(line, 1)
                else:
                    self.log("Wrong line number.")
            elif -line in self.breakpoints:
                self.breakpoints.remove(-line)
                self.log("Breakpoint removed.")
            else:
                self.log("No breakpoint in the specified line.")

    def set_maxlen(self, argv) -> None:
        """ldbMaxlen()."""
        if len(argv) == 2:
            value = atoi(argv[1])
            self.maxlen_hint_sent = True  # the user knows about the command
            if value != 0 and value <= 60:
                value = 60
            self.maxlen = value
        if self.maxlen:
            self.log("<value> replies are truncated at %d bytes." % self.maxlen)
        else:
            self.log("<value> replies are unlimited.")

    def print(self, argv) -> None:
        """ldbPrint() and ldbPrintAll()."""
        api = self.engine.state
        if len(argv) == 2:
            found = api.ldb_print(argv[1])
            if found is None:
                self.log("No such variable.")
            else:
                self.log_maxlen(b"<value> " + found)
            return
        variables = api.ldb_print_all()
        count = len(variables)
        for i in range(1, count + 1, 2):
            self.log_maxlen(b"<value> %s = %s" % (variables[i], variables[i + 1]))
        if count == 0:
            self.log("No local variables in the current context.")

    def trace(self) -> None:
        """ldbTrace()."""
        frames = self.engine.state.ldb_trace()
        count = len(frames)
        for i in range(1, count + 1, 2):
            self.log(frames[i])
            self.log_source_line(int(frames[i + 1]))
        if count == 0:
            self.log("<error> Can't retrieve Lua stack.")

    def eval(self, argv) -> None:
        """ldbEval(): the code is tried as an expression first, then as a statement."""
        ok, text = self.engine.state.ldb_eval(b" ".join(argv[1:]))
        if ok:
            self.log_maxlen(b"<retval> " + text)
        else:
            self.log(b"<error> " + text)

    def redis(self, argv) -> None:
        """ldbRedis(): redis.call() with stepping forced on, so that the command and its
        reply are logged; its result is dropped."""
        self.step = True
        try:
            self.engine.state.debugger_call(argv[1:])
        except Exception as exc:  # the error was logged by the call
            logger.debug(f"LDB redis command failed: {exc!r}")
        self.step = False

    # -- redis.debug() and redis.breakpoint() ---------------------------------------------

    def debug_log(self, text: bytes) -> None:
        """luaRedisDebugCommand()."""
        self.log(b"<debug> line %d: %s" % (self.currentline, text))

    def end(self) -> None:
        """ldbEndSession(): the remaining logs and the <endsession> mark."""
        self.log("<endsession>")
        self.send_logs()
