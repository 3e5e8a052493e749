"""Connection: one per client socket (an asyncio.Protocol) — a Session with a socket.

The per-client state (protocol version, auth, selected database, MULTI...) is the
Session's; the Connection adds what a socket needs: the transport, the query buffer (a
sans-IO RequestParser), flow control and the output path. Replies of one read batch go out in
one write, at most FLUSH_BYTES (plus one reply) are ever encoded ahead of the transport,
and what waits to be sent (the transport's buffer and the replies held back for the
AOF) is held to client-output-buffer-limit as it grows, as Redis checks it in
_addReplyProtoToList(). A client whose class has no hard limit (normal clients, by
default) gets flow control instead: once 32 MB of its replies wait unread
(server.FLOW_CONTROL_BYTES: Redis never stops reading, and a client that pipelines
everything before it reads must not deadlock), it stops being read from and the rest of
its batch waits, so it cannot grow our memory without bound either —
unless maxmemory is set: then, as in Redis, its output grows and counts in used_memory,
where eviction (of keys, or of clients under maxmemory-clients) answers it.

A server may hold tens of thousands of idle connections: Session and Connection declare
their fields in __slots__ (no per-instance dict) and allocate nothing a client may never
use (the parser comes with the first bytes, the flag set with the first flag).
"""

import asyncio
import socket
import sys
import time

from .commands.client_cmds import client_info_line
from .commands.dispatch import internal_error, process_command
from .keyspace.blocking import BLOCKED
from .log import logger
from .protocol.encode import (_ENCODERS, _SMALL_INTS, NO_REPLY, NULL_ARRAY, BulkStrings, Raw,
                              Verbatim, _encode)
from .protocol.errors import CommandError
from .propagate import propagate
from .protocol.parser import RequestParser
from .session import Session

_perf = time.perf_counter_ns



# _run keeps one piece of `out` per reply, so that a reply's size is one len(): the
# encoders of the types that give one piece; any other type (an array or a map gives
# one piece per element) is encoded apart and joined.
_one_piece_encoder = {t: _ENCODERS[t] for t in (
    bytes, str, int, bool, float, type(None), Raw, Verbatim, BulkStrings, type(NULL_ARRAY),
    CommandError)}.get

# The query buffer of every connection that has sent nothing yet (much of an idle
# connection pool): empty and never fed, only read (buffered() for CLIENT LIST, INFO).
_NO_INPUT = RequestParser()

_BULK_HEADERS = [b"$%d\r\n" % size for size in range(1024)]
CRLF = b"\r\n"

# uvloop's default write high-water mark: past it the transport calls pause_writing().
HIGH_WATER = 64 * 1024
# Bytes of replies gathered before a mid-batch write (see _run): one high-water mark's
# worth, so that a peer that doesn't read is noticed after one such write.
FLUSH_BYTES = HIGH_WATER


class Connection(Session, asyncio.Protocol):
    # The connection's own state; the per-client state is the Session's (session.py).
    connected = True
    __slots__ = ("parser", "transport", "fd", "deferred", "deferred_bytes",
                 "paused_writing", "paused_reading", "postponed", "obuf_soft_since")

    def __init__(self, server, unix: bool = False):
        Session.__init__(self, server, server.next_client_id())
        self.unix = unix
        self.parser = _NO_INPUT  # its own one comes with its first bytes (data_received)
        self.transport = None
        self.fd = -1
        self.deferred = 0  # replies waiting for the server's next AOF flush
        self.deferred_bytes = 0  # ... and their size (server.defer_reply/before_sleep)
        self.paused_writing = False
        self.paused_reading = False
        # Commands held back: by CLIENT PAUSE, by a full output buffer, or behind a
        # blocking command (BLPOP...) until it is served; the query buffer then waits.
        self.postponed: list | None = None
        self.obuf_soft_since = 0.0  # when the output buffer first passed the soft limit

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.fd = sock.fileno()
            if not self.unix:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
        if self.unix:
            # Redis shows the listening socket's path for both ends of a unix connection.
            self.addr = self.laddr = self.server.config["unixsocket"] + ":0"
        else:
            self.addr = _format_addr(transport.get_extra_info("peername"))
            # Every client of a listener has the same local address: share one string.
            self.laddr = sys.intern(_format_addr(transport.get_extra_info("sockname")))
        refusal = self.server.admit(self)
        if refusal is not None:
            transport.write(b"-%s\r\n" % refusal.encode())
            transport.close()
            self.closing = True
            return
        self.server.add_client(self)

    def connection_lost(self, exc) -> None:
        self.closing = True
        self.server.remove_client(self)

    def pause_writing(self) -> None:
        # The transport's buffer is past its high-water mark: the peer is not reading.
        self.paused_writing = True
        server = self.server
        if server.throttles_output(self):
            self._pause_reading()  # flow control (see the module docstring)
        server.check_output_limits(self)

    def resume_writing(self) -> None:
        self.paused_writing = False
        if self.postponed is not None and self.blocked is None \
                and self not in self.server.postponed:
            self.resume_postponed()  # the rest of a batch held back for output
        if not self.paused_writing:
            self._resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        stats = self.server.stats
        stats.total_net_input_bytes += len(data)
        stats.total_reads_processed += 1
        parser = self.parser
        if parser is _NO_INPUT:
            parser = self.parser = RequestParser(self.server.parser_limits)
        if self.authenticated and self.postponed is None:
            argv = parser.take_one(data)
            if argv is not None:  # what a client that waits for each reply sends
                self.last_interaction = time.time()
                self._run_one(argv)
                return
        if not parser.feed(data) or self.postponed is not None:
            # Incomplete, or paused by CLIENT PAUSE: the bytes wait in the query buffer.
            self._check_query_limit()
            return
        self.last_interaction = time.time()
        if self.authenticated:
            self._run(parser.parse())
        else:
            self._run_unauthenticated()

    def _run_unauthenticated(self) -> None:
        """Redis parses one command, runs it, then parses the next: after an AUTH that
        succeeds, the rest of the batch is no longer held to the unauthenticated limits."""
        parser = self.parser
        while not self.authenticated:
            commands = parser.parse(False, max_commands=1)
            if commands or parser.error is not None:
                self._run(commands)
            if (self.closing or self.close_after_reply or self.postponed is not None
                    or parser.error is not None or not parser.has_more()):
                return
        self._run(parser.parse())

    def _run(self, commands: list[list[bytes]]) -> None:
        """Execute a batch of parsed commands; their replies go out in one write."""
        server = self.server
        parser = self.parser
        ready = server.blocking.ready  # keys that a write made ready for blocked clients
        spelled = server.commands.spellings.get
        sinks = server.propagation.sinks
        checks = server.hooks.command_checks
        tracking = server.tracking
        out: list[bytes] = []  # one piece per reply
        append = out.append
        unsent = 0  # bytes in out
        lean = self._lean_allowed(server)
        slow_from = server._slowlog_threshold
        processed = 0  # lean commands not yet in total_commands_processed
        quiet = False  # (set by a command whose reply is silenced, reset once it is)
        clock = _perf()  # the first command's start (see Session.clock)
        for i, argv in enumerate(commands):
            spec = spelled(argv[0])
            if lean and spec is not None and spec.lean_min <= len(argv) <= spec.lean_max:
                # The lean path: process_command()'s fast path (its twin, as _run_one's
                # call is: keep the three alike) for a data command
                # (CommandSpec.set_lean()), with what no such command can change (ACL,
                # gates, MONITOR, pause, reply mode, the slowlog threshold) judged once,
                # in _lean_allowed(). Inline: a call per command would cost a seventh
                # of a pipelined SET. First _central_checks()' part that applies here:
                # the server's hooks (OOM...).
                if checks and (reply := self._refusal(checks, spec, argv)) is not None:
                    # A check may silence its refusal: a busy script's caller has its
                    # pipelined commands kept for later (_refuse_while_busy).
                    quiet = self.reply_skip
                else:
                    self.cmd = spec
                    dirty = server.dirty
                    try:
                        reply = spec.handler(self, argv)
                    except CommandError as exc:
                        spec.failed_calls += 1
                        server.count_error(exc)
                        reply = exc
                    except Exception as exc:  # a bug costs one reply, not the connection
                        reply = internal_error(server, spec, argv, exc)
                    else:
                        if sinks and server.dirty != dirty:
                            if spec.is_write:
                                propagate(server, self.db, spec, argv, reply)
                            self.woff = server.repl.offset
                    end = _perf()
                    elapsed = (end - clock) // 1000
                    clock = end
                    spec.calls += 1
                    spec.usec += elapsed
                    processed += 1
                    if elapsed >= slow_from >= 0:
                        server.slowlog.record(self, argv, elapsed)
                    if tracking.due:
                        tracking.broadcast()  # BCAST invalidations leave before this reply
            else:
                if processed:
                    server.stats.total_commands_processed += processed
                    processed = 0
                if server.pause_until and server.must_postpone(self, argv):
                    # CLIENT PAUSE: this command and the rest of the batch wait for unpause.
                    self.postponed = commands[i:]
                    server.postpone(self)
                    break
                self.clock = clock
                reply = process_command(self, argv)
                clock = self.clock
                if reply is BLOCKED:
                    self._hold_while_blocked(commands[i + 1:])
                    break
                if self.replica is not None and reply is not NO_REPLY and self.is_replica():
                    self._replica_replied(argv, reply)
                    break
                quiet = self.reply_off or self.reply_skip or self.reply_skip_next
                lean = self._lean_allowed(server)
                slow_from = server._slowlog_threshold
            if ready:
                # handleClientsBlockedOnKeys() after call(): a pipelined LLEN after the
                # LPUSH that served a BLPOP already sees the list without that element.
                server.blocking.handle_ready()
                clock = _perf()  # (the clients it served are not the next command's time)
            # The usual replies are framed here (precomputed constants, bulks, small
            # integers, nil), the rest by _encode.
            if quiet:
                unsent += self._silenced_reply(out, reply)
                quiet = False
            elif (kind := type(reply)) is Raw:
                append(reply)
                unsent += len(reply)
            elif kind is bytes:
                # A bulk goes out as its header, itself and CRLF: no formatting, and a
                # big value is copied once, by the transport's join.
                size = len(reply)
                header = _BULK_HEADERS[size] if size < 1024 else b"$%d\r\n" % size
                append(header)
                append(reply)
                append(CRLF)
                unsent += len(header) + size + 2
            elif kind is int:
                piece = _SMALL_INTS[reply + 1] if -1 <= reply < 1023 else b":%d\r\n" % reply
                append(piece)
                unsent += len(piece)
            elif reply is None:
                piece = b"_\r\n" if self.resp == 3 else b"$-1\r\n"
                append(piece)
                unsent += len(piece)
            elif reply is not NO_REPLY:
                piece = self._encoded(reply)
                append(piece)
                unsent += len(piece)
            if self.closing or self.close_after_reply:
                break
            if unsent >= FLUSH_BYTES:
                if server.hard_output_limit(self):
                    # Redis builds the replies of a read in the client's output buffer
                    # and writes them afterwards, checking the limits as they grow
                    # (_addReplyProtoToList): a client with a hard limit is judged on all
                    # of them before any is sent, and past it gets none (its memory stays
                    # bounded by that limit meanwhile).
                    server.check_output_limits(self, unsent)
                    if self.closing:
                        break
                    continue
                # Big replies or a long pipeline: hand them to the transport now, where
                # the output buffer limits see them, rather than build the whole batch's
                # replies first (200 pipelined 10 MB LRANGEs would be 2 GB).
                self._send(out)
                clock = _perf()
                out = []
                append = out.append
                unsent = 0
                if self.closing:
                    break  # over its output buffer limit: the rest is not run
                if (self.paused_writing and i + 1 < len(commands)
                        and server.throttles_output(self)):
                    # Flow control: the peer isn't reading, hold the rest of the batch
                    # until it drains (resume_writing).
                    self.postponed = commands[i + 1:]
                    self._pause_reading()
                    break
        if processed:
            server.stats.total_commands_processed += processed
        if parser.error is not None and not self.close_after_reply and self.postponed is None:
            out.append(b"-ERR %s\r\n" % parser.error.encode())
            server.count_error_code("ERR")
            logger.verbose(f"Protocol error ({parser.error}) from client: id={self.id} addr={self.addr}")
            self.close_after_reply = True
        self._finish(out, unsent)

    def _finish(self, out: list[bytes], unsent: int) -> None:
        """The end of a read: its replies (unsent bytes in out) leave, or wait for the
        AOF; then a close asked for by a command, or the query buffer's limit."""
        server = self.server
        if server.aof.buffer:
            server.schedule_append_flush()  # even when no reply leaves (CLIENT REPLY OFF)
        if out and not self.closing:
            if unsent >= server.obuf_check_from:
                # A big reply or batch: judged whole before it goes, as in Redis's buffer.
                server.check_output_limits(self, unsent)
                if not self.closing:
                    self._send(out)
                    if self.obuf_soft_since and not self.closing:
                        # What the socket took is no longer buffered: the soft limit's
                        # clock stops if the rest is under it (as Redis's next check).
                        server.check_output_limits(self)
            elif self.deferred or server.aof.buffer or self.transport is None:
                self._send(out)
            else:  # (_send()'s usual case, inline: what a client waiting for each reply pays)
                self.write_now(b"".join(out))
        if self.close_after_reply and not self.deferred:
            self.close()  # (with deferred replies, the server closes after writing them)
        else:
            self._check_query_limit()

    def _run_one(self, argv: list[bytes]) -> None:
        """_run() for a read that held exactly one command, the lean way when it may
        (a client that waits for each reply: redis-benchmark without -P, most
        applications): the same steps, without a batch's loop and bookkeeping. The
        call is process_command()'s fast path (its twin, as _run's lean branch is:
        keep the three alike) without what _lean_allowed() has ruled out, inline: on
        this path every Python call is a tenth of the command."""
        server = self.server
        spec = server.commands.spellings.get(argv[0])
        if (spec is None or not spec.lean_min <= len(argv) <= spec.lean_max
                or not self._lean_allowed(server)):
            self._run([argv])
            return
        clock = _perf()
        checks = server.hooks.command_checks  # (_central_checks()' part that applies)
        if not checks or (reply := self._refusal(checks, spec, argv)) is None:
            self.cmd = spec
            dirty = server.dirty
            try:
                reply = spec.handler(self, argv)
            except CommandError as exc:
                spec.failed_calls += 1
                server.count_error(exc)
                reply = exc
            except Exception as exc:  # a bug costs one reply, not the connection
                reply = internal_error(server, spec, argv, exc)
            else:
                if server.propagation.sinks and server.dirty != dirty:
                    if spec.is_write:
                        propagate(server, self.db, spec, argv, reply)
                    self.woff = server.repl.offset
            end = _perf()
            elapsed = (end - clock) // 1000
            self.clock = end
            spec.calls += 1
            spec.usec += elapsed
            server.stats.total_commands_processed += 1
            if elapsed >= server._slowlog_threshold >= 0:
                server.slowlog.record(self, argv, elapsed)
            if server.tracking.due:
                server.tracking.broadcast()  # BCAST invalidations leave before this reply
            if server.blocking.ready:
                server.blocking.handle_ready()  # (see _run)
        kind = type(reply)
        if kind is Raw:
            data = reply
        elif kind is bytes:
            size = len(reply)
            data = b"".join((_BULK_HEADERS[size] if size < 1024 else b"$%d\r\n" % size,
                             reply, CRLF))
        elif kind is int:
            data = _SMALL_INTS[reply + 1] if -1 <= reply < 1023 else b":%d\r\n" % reply
        elif reply is None:
            data = b"_\r\n" if self.resp == 3 else b"$-1\r\n"
        elif reply is NO_REPLY:
            self._finish([], 0)
            return
        elif self.reply_skip:  # a check silenced its refusal (see _run)
            out: list[bytes] = []
            self._finish(out, self._silenced_reply(out, reply))
            return
        else:
            data = self._encoded(reply)
        if (server.aof.buffer or self.deferred or self.closing or self.close_after_reply
                or self.transport is None or len(data) >= server.obuf_check_from
                or self.paused_writing or server.obuf_check_from < HIGH_WATER):
            self._finish([data], len(data))
            return
        # (write_now()'s usual case, inline: the query buffer is empty, the peer reads)
        stats = server.stats
        stats.total_net_output_bytes += len(data)
        stats.total_writes_processed += 1
        self.transport.write(data)

    def _refusal(self, checks, spec, argv: list[bytes]) -> CommandError | None:
        """The lean path's checks: the server's hooks (OOM...) that refuse a command
        before it runs; the refusal, counted, or None."""
        try:
            for check in checks:
                check(self, spec, argv)
        except CommandError as exc:
            spec.rejected_calls += 1
            self.server.count_error(exc)
            return exc
        return None

    def _replica_replied(self, argv: list[bytes], reply) -> None:
        """_addReplyToBufferOrList(): a replica's link carries the replication stream,
        never replies. A command of the replica's that made one (an error included,
        logged first as afterErrorReply() does) gets the replica disconnected instead."""
        server = self.server
        try:
            name = server.commands.lookup(argv).fullname  # c->lastcmd
        except CommandError:
            name = "<unknown>"
        if isinstance(reply, CommandError):
            server.stats.unexpected_error_replies += 1
            logger.warning(f"== CRITICAL == This master is sending an error to its replica: "
                           f"'{reply.message[:4096]}' after processing the command '{name}'")
        logger.warning(f"Replica generated a reply to command '{name}', disconnecting it: "
                       f"{client_info_line(self)}")
        self.close()

    def _lean_allowed(self, server) -> bool:
        """Whether the data commands of this batch may take _run's lean path: nothing
        process_command() checks or feeds applies to this session right now. Only a
        command that takes the full path can change that, so _run asks again after each."""
        return (self.unchecked and not server.monitors
                and not server.pause_until and not server.notifier.tracking
                and self not in server.gated and self.blocked is None
                and not (self.reply_off or self.reply_skip or self.reply_skip_next))

    def _encoded(self, reply) -> bytes:
        """A reply of any type as one piece (HELLO's own is in the version it sets)."""
        pieces: list[bytes] = []
        encode = _one_piece_encoder(type(reply))
        if encode is not None:
            encode(pieces, reply, self.resp)
            return pieces[0]
        _encode(pieces, reply, self.resp)
        return b"".join(pieces)

    def _silenced_reply(self, out: list[bytes], reply) -> int:
        """Under CLIENT REPLY OFF/SKIP (or right after SKIP): the bytes of the reply, if
        it is sent at all, appended to out; returns their size."""
        size = 0
        if reply is not NO_REPLY and not (self.reply_off or self.reply_skip):
            out.append(self._encoded(reply))
            size = len(out[-1])
        if self.reply_skip or self.reply_skip_next:
            # CLIENT REPLY SKIP silences exactly the command after it (networking.c).
            self.reply_skip = self.reply_skip_next
            self.reply_skip_next = False
        return size

    def _send(self, out: list[bytes]) -> None:
        if self.transport is None:
            return
        server = self.server
        data = b"".join(out)
        if server.aof.buffer or self.deferred:
            # The reply acknowledges a write not yet in the AOF: it leaves after the
            # server's next AOF flush (one write + fsync for every client of this turn
            # of the loop — a group commit), and in order with this client's others.
            # Until then it is part of the client's output buffer.
            server.defer_reply(self, data)
            if self.deferred_bytes >= server.obuf_check_from or self.paused_writing:
                server.check_output_limits(self)
            return
        self.write_now(data)

    def write_now(self, data: bytes) -> None:
        if self.transport is None or self.closing:
            return
        server = self.server
        stats = server.stats
        stats.total_net_output_bytes += len(data)
        stats.total_writes_processed += 1
        self.transport.write(data)
        if self.paused_writing or server.obuf_check_from < HIGH_WATER:
            # The peer is not keeping up (or a limit is below the high-water mark).
            server.check_output_limits(self)
            if self.paused_writing and not self.paused_reading and server.throttles_output(self):
                self._pause_reading()  # flow control, past its bound (see pause_writing)

    def _hold_while_blocked(self, rest: list) -> None:
        """The command blocked: nothing is sent for it now, and the rest of the batch
        (and whatever arrives meanwhile, kept in the query buffer) runs once it is
        served. CLIENT REPLY OFF/SKIP in force apply to the reply it gets then."""
        self.blocked.silent = self.reply_off or self.reply_skip
        if self.reply_skip or self.reply_skip_next:
            self.reply_skip = self.reply_skip_next
            self.reply_skip_next = False
        self.postponed = rest

    def resume_unblocked(self) -> None:
        """After the blocking command got its reply (processUnblockedClients())."""
        if (self.blocked is None and self.postponed is not None and not self.closing
                and not self.paused_writing and self not in self.server.postponed):
            self.resume_postponed()

    def resume_postponed(self) -> None:
        """Called by the server when a CLIENT PAUSE ends: run what waited."""
        commands, self.postponed = self.postponed, None
        if commands is None or self.closing:
            return
        self.last_interaction = time.time()
        self._run(commands)
        if self.postponed is None and not self.closing and not self.close_after_reply:
            more = self.parser.parse(self.authenticated)
            if more or self.parser.error is not None:
                self._run(more)

    # -- helpers ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Out-of-band data (MONITOR feed, pub/sub messages)."""
        if self.closing or self.transport is None:
            return
        server = self.server
        if self.deferred:  # keep order behind replies waiting for the AOF
            server.defer_reply(self, data)
            if self.deferred_bytes >= server.obuf_check_from or self.paused_writing:
                server.check_output_limits(self)
            return
        if self.replica is None:
            server.stats.total_net_output_bytes += len(data)
        else:  # the replication stream (stat_net_repl_output_bytes)
            server.stats.total_net_repl_output_bytes += len(data)
        self.transport.write(data)
        if self.paused_writing or server.obuf_check_from < HIGH_WATER:
            # A subscriber that doesn't read: client-output-buffer-limit decides.
            server.check_output_limits(self)

    def send(self, value) -> None:
        out: list[bytes] = []
        _encode(out, value, self.resp)
        self.write(b"".join(out))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closing = True

    def abort(self) -> None:
        """Close at once, dropping unsent replies (output buffer limit reached)."""
        if self.transport is not None:
            self.transport.abort()
        self.closing = True

    def output_buffer_size(self) -> int:
        """Replies not sent yet: the transport's buffer and those waiting for the AOF
        (Redis keeps both in the client's reply list)."""
        if self.transport is None:
            return self.deferred_bytes
        try:
            return self.transport.get_write_buffer_size() + self.deferred_bytes
        except Exception:
            return self.deferred_bytes

    def _check_query_limit(self) -> None:
        buffered = self.parser.buffered()  # (usually 0: the batch was parsed whole)
        if buffered and buffered > self.server.config["client-query-buffer-limit"]:
            logger.warning(f"Closing client that reached max query buffer length: id={self.id} addr={self.addr}")
            self.close()

    def _pause_reading(self) -> None:
        if not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            try:
                self.transport.pause_reading()
            except Exception:
                pass

    def _resume_reading(self) -> None:
        if self.paused_reading and self.transport is not None and not self.closing:
            self.paused_reading = False
            try:
                self.transport.resume_reading()
            except Exception:
                pass


def _format_addr(name) -> str:
    if not name:
        return "?"
    host, port = name[0], name[1]
    # anetFormatAddr(): IPv6 addresses in brackets.
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
