"""Clients blocked on keys (Redis's blocked.c): BLPOP & co., BZPOPMIN & co., and the
hook XREAD/XREADGROUP BLOCK use.

A handler cannot wait, so, as in Redis, a blocking command that finds nothing to
serve calls block_client() and returns BLOCKED: client.py then sends nothing and holds
the client's further pipelined commands. The client is listed, in blocking order,
under each of its keys. A write reaches signal() through db.touched() →
server.signal_modified(); the key is queued as ready, and handle_ready() — called
after the current command (handleClientsBlockedOnKeys() after call()), and at the
latest from the event loop's next turn — offers it to its waiters oldest first. Each
waiter's on_ready(client, key) gives the reply (the client is unblocked) or None (it
keeps waiting). Timeouts are one loop timer per blocked client; CLIENT UNBLOCK and a
disconnect end the wait too. Unblocked clients resume their held commands from the
next loop turn, like Redis's processUnblockedClients() in beforeSleep().
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

from ..log import logger
from ..protocol.encode import NULL_ARRAY
from ..protocol.errors import UNBLOCKED_BY_CLIENT, CommandError


class _Blocked:
    __slots__ = ()

    def __repr__(self) -> str:
        return "BLOCKED"


# What a handler returns after block_client(): "no reply now, stop this client".
BLOCKED = _Blocked()

# While anyone is blocked, this entry keeps server.key_watchers non-empty: db.touched()
# only calls server.signal_modified() when it is (the WATCH fast path).
# Shaped like a WATCH entry ((db id, key) → {client: ...}) that no database matches.
WATCH_MARK = (-1, b"")

# A timeout further away than this is taken as "forever" (no timer): Redis accepts
# up to LLONG_MAX milliseconds, which no event loop can schedule.
_MAX_DELAY = 10 ** 9


class Waiter:
    """One blocked client: what it waits for and how to serve it (Redis's bpop)."""

    __slots__ = ("client", "db", "keys", "on_ready", "on_timeout", "timer", "silent",
                 "when_missing", "spec", "argv", "duration")

    def __init__(self, client, keys, on_ready, on_timeout, when_missing):
        self.client = client
        self.db = client.db
        self.keys = keys
        self.on_ready = on_ready
        self.on_timeout = on_timeout
        self.timer = None
        self.silent = False  # CLIENT REPLY OFF/SKIP when it blocked: the reply is dropped
        self.when_missing = when_missing
        # The command that blocked and the µs it ran, noted by the dispatcher: its
        # statistics and slowlog entry wait for the unblocking (updateStatsOnUnblock()).
        self.spec = None
        self.argv = None
        self.duration = 0

    def note_call(self, spec, argv, duration: int) -> None:
        self.spec, self.argv, self.duration = spec, argv, duration


def can_block(client) -> bool:
    """False where Redis sets CLIENT_DENY_BLOCKING: inside MULTI/EXEC, for the Lua
    client, for internal clients (AOF loading) — the command then acts as its
    non-blocking form and an empty wait answers as a timeout at once."""
    return (client.connected and "x" not in client.flags
            and client.multi is None and not client.in_exec and not client.script
            and not client.deny_blocking)


def timeout_reply(client):
    """replyToBlockedClientTimedOut(): the null array (*-1, or _ in RESP3)."""
    return NULL_ARRAY


def block_client(client, keys, timeout_ms: int, on_ready, on_timeout=timeout_reply,
                 when_missing: bool = False):
    """The entry point for blocking commands (XREAD/XREADGROUP BLOCK included): block
    client on keys (see BlockingState.block_client) and return BLOCKED — or, where
    blocking is denied (MULTI, scripts), on_timeout(client) at once."""
    if not can_block(client):
        return on_timeout(client)
    return client.server.blocking.block_client(client, keys, timeout_ms, on_ready, on_timeout,
                                               when_missing)


class BlockingState:
    def __init__(self, server):
        self.server = server
        # (db id, key) → {client: Waiter}, in blocking order (dicts keep insertion order).
        self.waiters: dict[tuple[int, bytes], dict] = {}
        # Keys signalled since the last handle_ready(): (db, key). Never rebound —
        # client._run() keeps a reference to test it after each command.
        self.ready: list = []
        self._ready_set: set = set()
        self._scheduled = False
        self._handling = False
        self._missing_watchers = 0
        self.blocked_clients = 0  # INFO clients
        self.clients_in_timeout_table = 0

    # -- blocking -------------------------------------------------------------------

    def block_client(self, client, keys, timeout_ms: int, on_ready, on_timeout=timeout_reply,
                     when_missing: bool = False):
        """blockForKeys(): park client on keys until on_ready(client, key) returns a
        reply for one of them, or timeout_ms (relative, 0 = forever) passes, when
        on_timeout(client) gives the reply. when_missing: on_ready is also offered a
        signalled key that no longer exists (XREADGROUP must learn of a deleted
        stream). Returns BLOCKED, for the handler to return."""
        server = self.server
        waiter = Waiter(client, [], on_ready, on_timeout, when_missing)
        db_id = client.db.id
        for key in keys:
            entry = (db_id, key)
            clients = self.waiters.get(entry)
            if clients is None:
                clients = self.waiters[entry] = {}
            elif client in clients:
                continue  # BLPOP k k 0: each key once
            clients[client] = waiter
            waiter.keys.append(key)
        server.key_watchers[WATCH_MARK] = {}
        if when_missing:
            self._missing_watchers += 1
        delay = timeout_ms / 1000
        if 0 < delay < _MAX_DELAY:
            waiter.timer = server.loop.call_later(delay, self._timed_out, waiter)
            self.clients_in_timeout_table += 1
        client.blocked = waiter
        client.flags.add("b")
        self.blocked_clients += 1
        return BLOCKED

    def _release(self, waiter: Waiter) -> None:
        """unblockClient(): forget the waiter everywhere; the client may run again."""
        client = waiter.client
        if client.blocked is not waiter:
            return
        server = self.server
        db_id = waiter.db.id
        for key in waiter.keys:
            entry = (db_id, key)
            clients = self.waiters.get(entry)
            if clients is not None:
                clients.pop(client, None)
                if not clients:
                    del self.waiters[entry]
        if not self.waiters:
            server.key_watchers.pop(WATCH_MARK, None)
        if waiter.when_missing:
            self._missing_watchers -= 1
        if waiter.timer is not None:
            waiter.timer.cancel()
            waiter.timer = None
            self.clients_in_timeout_table -= 1
        client.blocked = None
        client.flags.discard("b")
        self.blocked_clients -= 1

    def unblock(self, waiter: Waiter, reply) -> None:
        """End the wait with reply, then let the client's held commands run."""
        self._release(waiter)
        self._reply(waiter, reply)
        client = waiter.client
        if not client.closing:
            self.server.loop.call_soon(client.resume_unblocked)

    def _account(self, waiter: Waiter, reply, reply_us: int) -> None:
        """updateStatsOnUnblock() for a served waiter: the time it ran plus the time
        serving it took is added (its call was counted when it blocked, its first run
        too: Redis adds that twice) and the command reaches the slowlog as it was sent.
        A timeout or CLIENT UNBLOCK adds nothing, as in Redis."""
        spec = waiter.spec
        if spec is None:
            return
        total = waiter.duration + reply_us
        spec.usec += total
        if isinstance(reply, CommandError):
            spec.failed_calls += 1
        server = self.server
        if total >= server.slowlog_threshold >= 0 and "skip_slowlog" not in spec.flags:
            server.slowlog.record(waiter.client, waiter.argv, total)

    def _reply(self, waiter: Waiter, reply) -> None:
        client = waiter.client
        if isinstance(reply, CommandError):
            self.server.count_error(reply)
        if not waiter.silent and not client.closing:
            client.send(reply)

    def _timed_out(self, waiter: Waiter) -> None:
        waiter.timer = None
        self.clients_in_timeout_table -= 1
        if waiter.client.blocked is waiter:
            self.unblock(waiter, waiter.on_timeout(waiter.client))

    def unblock_by_id(self, client_id: int, error: bool) -> bool:
        """CLIENT UNBLOCK: answer as a timeout, or with -UNBLOCKED. False when that
        client is not blocked."""
        target = self.server.clients.get(client_id)
        waiter = getattr(target, "blocked", None)
        if waiter is None:
            return False
        reply = CommandError(UNBLOCKED_BY_CLIENT) if error else waiter.on_timeout(target)
        self.unblock(waiter, reply)
        return True

    def client_closed(self, client) -> None:
        waiter = client.blocked
        if waiter is not None:
            self._release(waiter)

    # -- readiness ------------------------------------------------------------------

    def signal(self, db, key: bytes) -> None:
        """signalKeyAsReady(): key changed; if someone waits on it, serve them soon."""
        entry = (db.id, key)
        if entry not in self.waiters or entry in self._ready_set:
            return
        self._ready_set.add(entry)
        self.ready.append((db, key))
        if not self._scheduled:
            # The fallback when no client._run() follows the write (a script's
            # commands handed to the loop, a timer): the loop's next turn. Thread-safe
            # because a script's commands may run on the Lua worker thread.
            self._scheduled = True
            self.server.loop.call_soon_threadsafe(self._handle_from_loop)

    def flushed(self, db) -> None:
        """FLUSHDB/FLUSHALL emptied db (scanDatabaseForDeletedStreams()): its waiters'
        keys are signalled, so a blocked XREADGROUP learns its stream is gone; the
        others find their key missing and stay blocked."""
        for db_id, key in list(self.waiters):
            if db_id == db.id:
                self.signal(db, key)

    def swapped(self, first: int, second: int) -> None:
        """SWAPDB: blocked clients stay on their db index, whose keys just changed
        (scanDatabaseForReadyKeys)."""
        dbs = self.server.dbs
        for db_id, key in list(self.waiters):
            if db_id in (first, second):
                self.signal(dbs[db_id], key)

    def _handle_from_loop(self) -> None:
        self._scheduled = False
        self.handle_ready()

    def _script_running(self) -> bool:
        engine = self.server.scripting
        return engine is not None and engine.current is not None

    def handle_ready(self) -> None:
        """handleClientsBlockedOnKeys(): serve the waiters of every ready key, again
        while serving makes more keys ready (BLMOVE pushing onto a watched key)."""
        ready = self.ready
        if not ready or self._handling:
            return
        if self._script_running():
            # Never between a script's commands: a script is atomic. Look again soon.
            if not self._scheduled:
                self._scheduled = True
                self.server.loop.call_later(0.01, self._handle_from_loop)
            return
        self._handling = True
        served: list = []
        try:
            while ready:
                batch = ready[:]
                ready.clear()
                self._ready_set.clear()
                for db, key in batch:
                    self._serve_key(db, key, served)
        finally:
            self._handling = False
        if served:
            server = self.server
            server.flush_appends()  # the AOF holds the pops before the replies leave
            loop = server.loop
            tracking = server.tracking
            for waiter, reply in served:
                self._reply(waiter, reply)
                if tracking.pending:
                    # The invalidations its own command caused follow its reply.
                    tracking.flush_pending(waiter.client)
                if not waiter.client.closing:
                    loop.call_soon(waiter.client.resume_unblocked)

    def _serve_key(self, db, key: bytes, served: list) -> None:
        """Offer key to its waiters in the order they blocked, while it exists
        (serving a pop may delete it; the rest then keep waiting, in order)."""
        clients = self.waiters.get((db.id, key))
        if not clients:
            return
        data = db.data
        missing_ok = self._missing_watchers > 0
        tracking = self.server.tracking
        done = []
        for client, waiter in clients.items():
            if key not in data:
                if not missing_ok:
                    break
                if not waiter.when_missing:
                    continue
            if client.closing:
                continue  # its connection_lost() releases it
            # The served client is the current one meanwhile, as for Redis's tracking.
            previous = tracking.serving(client)
            start = time.perf_counter_ns()
            try:
                reply = waiter.on_ready(client, key)
            except CommandError as exc:
                reply = exc
            except Exception as exc:  # a bug costs this client one reply, never the loop
                logger.warning(f"serving a blocked client failed: {exc!r}")
                reply = CommandError("ERR internal error serving a blocked client")
            finally:
                tracking.current = previous
            if reply is not None:
                done.append((waiter, reply, (time.perf_counter_ns() - start) // 1000))
        for waiter, reply, reply_us in done:
            self._release(waiter)
            self._account(waiter, reply, reply_us)
            served.append((waiter, reply))


def parse_timeout_ms(raw: bytes) -> int:
    """getTimeoutFromObjectOrReply(UNIT_SECONDS) of Redis 7.0: seconds as strtold reads
    them (decimal, exponent, hex), times 1000, rounded up (0.0001 → 1 ms; -0.0001 → 0,
    i.e. forever); a value beyond a long long converts to LLONG_MIN, "negative"."""
    from ..protocol.numbers import to_float
    from ..protocol.errors import TIMEOUT_NEGATIVE, TIMEOUT_NOT_FLOAT

    value = to_float(raw)
    if value is None:
        value = _hex_float(raw)
        if value is None:
            raise CommandError(TIMEOUT_NOT_FLOAT)
    ms = value * 1000.0
    if math.isinf(ms):
        raise CommandError(TIMEOUT_NEGATIVE)
    ms = math.ceil(ms)
    if abs(ms) >= 2 ** 62:
        # Near the limit a double is too coarse for what a long double holds: decide
        # the range on the exact value (9223372036854775 s fits, ...776 does not).
        ms = math.ceil(_exact(raw, value) * 1000)
        if not -(2 ** 63) <= ms < 2 ** 63:
            raise CommandError(TIMEOUT_NEGATIVE)
    if ms < 0:
        raise CommandError(TIMEOUT_NEGATIVE)
    return ms


def _exact(raw: bytes, value: float):
    try:
        return Fraction(raw.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return Fraction(value)  # hex: float.fromhex was exact


def _hex_float(raw: bytes) -> float | None:
    # strtold() also reads C99 hex floats ("0x10" is 16 seconds).
    text = raw.lower()
    body = text[1:] if text[:1] in (b"+", b"-") else text
    if not body.startswith(b"0x") or raw[:1].isspace():
        return None
    try:
        return float.fromhex(raw.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
