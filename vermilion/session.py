"""Session: every piece of per-client state, declared (Redis's struct client).

Command handlers receive a Session (their parameter is still called ``client``, as in
Redis's ``client *c``). A Session needs no socket: a Connection (``connection.py``) is a
Session with one, and the Lua client, the AOF loader and, next, the replication master
link are Sessions without — they run commands on the same path as a client. (A
Connection *is* its Session rather than holding one: handlers, the dispatcher and every
subsystem see one object per client, with no extra hop on the per-command path.)

State that only some clients ever need lives in typed sub-states created on first use
(``multi`` for MULTI/EXEC, ``subscriptions`` for pub/sub), so an idle client stays
small; what they hold is declared in their own classes below.
"""

from __future__ import annotations

import time

from .keyspace.watch import unwatch_all
from .protocol.encode import _encode


class MultiState:
    """multiState: the commands queued between MULTI and EXEC."""

    __slots__ = ("queue", "aborted", "script_flags")

    def __init__(self):
        self.queue: list = []  # (spec, argv) in arrival order
        self.aborted = False  # a command was refused while queueing: EXEC → EXECABORT
        # What the queued scripts that declare flags add ("is_write", "denyoom"): their
        # declared flags replace EVAL's and FCALL's own (scriptFlagsToCmdFlags()).
        self.script_flags: set | None = None

    def queue_script(self, declared) -> None:
        """queueMultiCommand()'s cmd_flags |= getCommandFlags(c) for a script whose
        shebang (or function) declares flags: write unless no-writes, denyoom unless
        no-writes or allow-oom."""
        if declared is None:
            return
        added = self.script_flags
        if added is None:
            added = self.script_flags = set()
        if b"no-writes" not in declared:
            added.add("is_write")
            if b"allow-oom" not in declared:
                added.add("denyoom")

    def holds(self, flag: str) -> bool:
        """processCommand()'s mstate.cmd_flags: EXEC counts as a write (or denyoom)
        command when a queued command is one; flag is a CommandSpec attribute."""
        if self.script_flags is not None and flag in self.script_flags:
            return True
        return any(getattr(spec, flag) for spec, _argv in self.queue)


class Subscriptions:
    """The channels, patterns and shard channels a client listens to (ordered, as
    CLIENT LIST and the UNSUBSCRIBE-all replies list them)."""

    __slots__ = ("channels", "patterns", "shard_channels")

    def __init__(self):
        self.channels: dict = {}
        self.patterns: dict = {}
        self.shard_channels: dict = {}

    def count(self) -> int:
        # clientSubscriptionsCount(): channels + patterns (shard channels count apart).
        return len(self.channels) + len(self.patterns)

    def total(self) -> int:
        return len(self.channels) + len(self.patterns) + len(self.shard_channels)


NO_SUBSCRIPTIONS = Subscriptions()  # what a client without any reads; never written


class Session:
    __slots__ = (
        "server", "id", "db", "resp", "name", "lib_name", "lib_ver",
        "authenticated", "unchecked", "acl_fast", "_flags", "cmd", "clock", "created",
        "last_interaction", "addr", "laddr", "unix",
        # CLIENT REPLY OFF / SKIP (SKIP silences exactly the next command's reply)
        "reply_off", "reply_skip", "reply_skip_next",
        "closing", "close_after_reply", "no_evict",
        "multi", "in_exec", "watched", "dirty_cas", "deny_blocking",
        "subscriptions", "push_buffer", "blocked",
        "script", "loading", "woff", "replica",
        "user", "tracking", "lua_debug",
    )

    # A Connection (connection.py) is a Session with a socket; these are not.
    connected = False

    def __init__(self, server, client_id: int, addr: str = "?"):
        self.server = server
        self.id = client_id
        self.db = server.dbs[0]
        self.resp = 2
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.authenticated = not server.acl.auth_required()  # clientSetDefaultAuth()
        self._flags: set | None = None  # see flags
        self.cmd = None  # the spec of the command running or last run
        # perf_counter_ns() when the session's next command is taken to start: set before
        # a batch (or a lone command) and moved to each command's end, so that timing a
        # command for INFO commandstats and the slowlog reads the clock once, not twice.
        self.clock = 0
        self.created = self.last_interaction = time.time()
        self.addr = self.laddr = addr  # the peer's and our end, as CLIENT LIST shows them
        self.unix = False  # connected through the unix socket
        self.reply_off = self.reply_skip = self.reply_skip_next = False
        self.closing = False
        self.close_after_reply = False
        self.no_evict = False
        self.multi: MultiState | None = None  # inside MULTI
        self.in_exec = False  # EXEC is running the queue
        self.watched: dict | None = None  # {(db_id, key): expired_when_watched}
        self.dirty_cas = False  # a WATCHed key changed: EXEC fails
        self.deny_blocking = False  # must get one reply per command (EXEC, scripts)
        self.subscriptions = NO_SUBSCRIPTIONS
        # While the session runs a command, messages it publishes to itself wait here to
        # go out right before that command's reply (not ahead of earlier replies).
        self.push_buffer: list | None = None
        self.blocked = None  # the Waiter while blocked on keys (keyspace/blocking.py)
        self.script = False  # Redis's CLIENT_SCRIPT: the Lua client
        self.loading = False  # the AOF loader's client (runs while the server loads)
        self.woff = 0  # the replication offset after its last write (what WAIT waits for)
        self.replica = None  # a replica's ReplicaLink, once it sent SYNC/PSYNC
        self.user = server.acl.default_user  # the ACL user it is authenticated as (acl.py)
        # No check can refuse this session a command: it is authenticated as a user
        # with every permission; the dispatcher's fast path (refresh_access keeps it).
        self.unchecked = False
        self.acl_fast = None  # a restricted user's quick check (acl.py _fast_checker)
        self.refresh_access()
        self.tracking = None  # CLIENT TRACKING's state while on (tracking.py)
        self.lua_debug = None  # SCRIPT DEBUG SYNC: b"sync" (CLIENT_LUA_DEBUG_SYNC)

    @property
    def flags(self) -> set:
        """Redis's client flag letters (CLIENT LIST): "P" pub/sub, "x" MULTI, "b"
        blocked, "O" monitor... Most clients never get one: the set is made on first use
        (an empty set is 200 bytes of an idle connection's budget)."""
        flags = self._flags
        if flags is None:
            flags = self._flags = set()
        return flags

    @flags.setter
    def flags(self, value: set) -> None:
        self._flags = value

    def clear_flag(self, letter: str) -> None:
        # Without making the set for a client that never had a flag.
        if self._flags:
            self._flags.discard(letter)

    # -- database ----------------------------------------------------------------------

    def select(self, index: int) -> None:
        self.db = self.server.dbs[index]

    # -- output ------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Out-of-band bytes (pub/sub messages, the MONITOR feed). Nothing is ever sent
        to a session without a socket (the Lua client, the AOF loader)."""

    def send(self, value) -> None:
        out: list[bytes] = []
        _encode(out, value, self.resp)
        self.write(b"".join(out))

    def push(self, data: bytes) -> None:
        """A pub/sub message: behind the reply of the command running, if any."""
        if self.push_buffer is not None:
            self.push_buffer.append(data)
        else:
            self.write(data)

    def close(self) -> None:
        self.closing = True

    # -- sub-states --------------------------------------------------------------------

    def subscribed(self) -> Subscriptions:
        """The subscriptions, created on first use."""
        if self.subscriptions is NO_SUBSCRIPTIONS:
            self.subscriptions = Subscriptions()
        return self.subscriptions

    def run_as_server(self) -> None:
        """An internal client (the AOF loader, the master link): no user, so no
        authentication and no ACL check applies (Redis's c->user == NULL)."""
        self.user = self.server.acl.superuser
        self.authenticated = True
        self.refresh_access()

    def refresh_access(self) -> None:
        """After AUTH, RESET or a change of users: whether the dispatcher may skip the
        authentication and ACL checks for this session (authRequired() is dynamic:
        a default user without password lets unauthenticated sessions in)."""
        user = self.user
        if self.is_replica():
            # An attached replica's commands always take the checked path: it may not
            # touch the keyspace (processCommand()), nor get a reply (_run).
            self.unchecked, self.acl_fast = False, None
            return
        self.unchecked = user.unrestricted and (
            self.authenticated or not self.server.acl.auth_required())
        self.acl_fast = user.fast_allows if self.authenticated else None

    def is_replica(self) -> bool:
        """CLIENT_SLAVE: a replica attached by SYNC/PSYNC (flag S)."""
        return bool(self._flags) and "S" in self._flags

    def discard_transaction(self) -> None:
        """discardTransaction(): leave MULTI, forget the flags and every WATCH."""
        self.multi = None
        self.dirty_cas = False
        self.clear_flag("x")
        unwatch_all(self)
        self.refresh_gate()

    def refresh_gate(self) -> None:
        """A session in MULTI, with subscriptions or tracking keys takes the
        dispatcher's slow path (queueing, the RESP2 subscribed-mode restriction, call()
        telling the tracking table what it read)."""
        if self.multi is not None or self.subscriptions.total() or self.tracking is not None:
            self.server.gated.add(self)
        else:
            self.server.gated.discard(self)
