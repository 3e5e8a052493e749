"""CLIENT TRACKING: client-side caching invalidation (Redis 7.0's tracking.c).

Server state (server.tracking, a TrackingTable): the tracking table, key → the ids of
the clients that read it (default mode), and the prefix table, prefix → a Prefix
(BCAST mode: its subscribers and the keys changed since the last broadcast). Like
Redis's, the tables are global, not per database, and forget client ids lazily: a
key's entry goes when the key is invalidated, whoever still tracks it.

Client state (session.tracking, a ClientTracking while tracking is on, else None).
A tracking client sits in the dispatcher's gate, so its commands go through call(),
which tells the table what it read (remember_keys) and sends the invalidations of its
own changes after its reply (Redis's tracking_pending_keys). Writes reach invalidate()
through server.signal_modified(), which the databases call while TRACKING_MARK sits in
server.key_watchers — that is, only while either table holds something: a server where
nobody tracks pays nothing per command or per write.
"""

from __future__ import annotations

import random

from .keyspace.blocking import BLOCKED
from .protocol.encode import NO_REPLY, Raw, _encode

# Keeps server.key_watchers non-empty while the tables hold something, so that every
# write reaches server.signal_modified(); shaped like a WATCH entry no database matches.
TRACKING_MARK = (-2, b"")

# sendTrackingMessage(): the RESP3 push and, for a RESP2 client in pub/sub mode that
# invalidations are redirected to, a message on the __redis__:invalidate channel; each
# followed by the keys (an array) or a null meaning "every key".
_PUSH = b">2\r\n$10\r\ninvalidate\r\n"
_MESSAGE = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
_NULL = {2: b"$-1\r\n", 3: b"_\r\n"}
_REDIR_BROKEN = b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n"

# call(): read-only scripts track the keys of the commands they run, not their own.
_SCRIPT_READS = frozenset({"eval_ro", "evalsha_ro", "fcall_ro"})

OVERLAP_EXISTING = ("ERR Prefix '%s' overlaps with an existing prefix '%s'. "
                    "Prefixes for a single client must not overlap.")
OVERLAP_PROVIDED = ("ERR Prefix '%s' overlaps with another provided prefix '%s'. "
                    "Prefixes for a single client must not overlap.")


class ClientTracking:
    """The CLIENT_TRACKING_* flags of one client, its redirection and its prefixes."""

    __slots__ = ("redirect", "bcast", "optin", "optout", "noloop", "caching",
                 "broken_redirect", "prefixes")

    def __init__(self):
        self.redirect = 0  # the client id invalidations go to (0: this client)
        self.bcast = self.optin = self.optout = self.noloop = False
        self.caching = False  # CLIENT CACHING yes/no given for the next command
        self.broken_redirect = False  # the redirect client went away
        self.prefixes: dict = {}  # BCAST prefixes (ordered by name when listed)

    def letters(self) -> str:
        """CLIENT LIST's flags: t, then R (broken redirect), then B (BCAST)."""
        return "t" + ("R" if self.broken_redirect else "") + ("B" if self.bcast else "")

    def info_flags(self) -> list:
        """CLIENT TRACKINGINFO's flags, in networking.c's order."""
        flags = [b"on"]
        if self.bcast:
            flags.append(b"bcast")
        if self.optin:
            flags += [b"optin", b"caching-yes"] if self.caching else [b"optin"]
        if self.optout:
            flags += [b"optout", b"caching-no"] if self.caching else [b"optout"]
        if self.noloop:
            flags.append(b"noloop")
        if self.broken_redirect:
            flags.append(b"broken_redirect")
        return flags

    def skips_keys(self) -> bool:
        # trackingRememberKeys(): OPTIN without CACHING yes, OPTOUT with CACHING no.
        return (self.optin and not self.caching) or (self.optout and self.caching)


class Prefix:
    """bcastState: the clients subscribed to a prefix and the keys under it changed
    since the last broadcast, each with the client that last changed it (NOLOOP)."""

    __slots__ = ("keys", "clients")

    def __init__(self):
        self.keys: dict = {}
        self.clients: dict = {}


def key_array(keys) -> bytes:
    return b"*%d\r\n" % len(keys) + b"".join(b"$%d\r\n%s\r\n" % (len(k), k) for k in keys)


def prefix_collision(state: ClientTracking | None, prefixes: list):
    """checkPrefixCollisionsOrReply(): None, or (error, go_on). Two prefixes collide
    when one starts the other. Redis 7.0 returns the index of the offending prefix for
    a collision among the new ones, which its caller takes for success unless it is
    0: the error is sent and tracking is enabled anyway (go_on)."""
    existing = sorted(state.prefixes) if state is not None else []
    for i, prefix in enumerate(prefixes):
        for old in existing:
            if old.startswith(prefix) or prefix.startswith(old):
                return OVERLAP_EXISTING % (_text(prefix), _text(old)), False
        for other in prefixes[i + 1:]:
            if other.startswith(prefix) or prefix.startswith(other):
                return OVERLAP_PROVIDED % (_text(prefix), _text(other)), i > 0
    return None


def _text(raw: bytes) -> str:
    # addReplyErrorFormat("%s"): the C string, up to its first NUL byte.
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


class TrackingTable:
    __slots__ = ("server", "keys", "items", "prefixes", "clients", "active", "current",
                 "command", "pending", "due", "max_keys", "_limit_rounds", "_limit_armed",
                 "_broadcast_scheduled", "_keys_of", "_collect")

    def __init__(self, server, keys_of):
        self.server = server
        self.keys: dict = {}  # key → {client id: None} (TrackingTable)
        self.items = 0  # client ids across the table (TrackingTableTotalItems)
        self.prefixes: dict = {}  # prefix → Prefix (PrefixTable)
        self.clients = 0  # clients with tracking on (server.tracking_clients)
        self.active = False  # either table holds something: writes must be signalled
        # server.current_client, as far as tracking needs it: the tracking client whose
        # command (or blocked command being served) runs now, else None.
        self.current = None
        self.command = None  # (spec, argv) current runs: the keys a script's read tracks
        self.pending: dict = {}  # client → keys (None: all) invalidated by its own command
        # BCAST keys wait to be broadcast: the dispatcher calls broadcast() after the
        # command, before its reply leaves (Redis does it in beforeSleep(), before it
        # writes the replies of that turn of the loop).
        self.due = False
        self.max_keys = 0  # tracking-table-max-keys
        self._limit_rounds = 0  # trackingLimitUsedSlots()'s timeout_counter
        self._limit_armed = False
        self._broadcast_scheduled = False
        self._keys_of = keys_of  # (spec, argv) → the key arguments (getKeysFromCommand)
        self._collect = None  # (client, out): messages to client join its reply

    # -- CLIENT TRACKING on/off ---------------------------------------------------------

    def enable(self, client, redirect: int, options: set, prefixes: list) -> None:
        """enableTracking(): options holds "bcast", "optin", "optout", "noloop"."""
        state = client.tracking
        if state is None:
            state = client.tracking = ClientTracking()
            self.clients += 1
            client.refresh_gate()
        state.redirect = redirect
        state.broken_redirect = False
        state.bcast = "bcast" in options
        state.optin = "optin" in options
        state.optout = "optout" in options
        state.noloop = "noloop" in options
        if state.bcast:
            for prefix in prefixes or [b""]:
                self._subscribe(client, state, prefix)
            self._sync_active()

    def _subscribe(self, client, state: ClientTracking, prefix: bytes) -> None:
        entry = self.prefixes.get(prefix)
        if entry is None:
            entry = self.prefixes[prefix] = Prefix()
        entry.clients[client] = None
        state.prefixes[prefix] = None

    def disable(self, client) -> None:
        """disableTracking(): the client's ids stay in the table until their keys go."""
        state = client.tracking
        if state is None:
            return
        for prefix in state.prefixes:
            entry = self.prefixes.get(prefix)
            if entry is not None:
                entry.clients.pop(client, None)
                if not entry.clients:
                    del self.prefixes[prefix]
        client.tracking = None
        self.clients -= 1
        self.pending.pop(client, None)
        client.refresh_gate()
        self._sync_active()

    def _sync_active(self) -> None:
        active = bool(self.keys or self.prefixes)
        if active != self.active:
            self.active = active
            watchers = self.server.key_watchers
            if active:
                watchers[TRACKING_MARK] = {}
            else:
                watchers.pop(TRACKING_MARK, None)

    # -- reads: call() -----------------------------------------------------------------

    def begin(self, client, spec, argv):
        """call() is about to run a tracking client's command: (current, command) as
        they were, for after_command() to restore (EXEC nests calls)."""
        previous = (self.current, self.command)
        self.current = client
        self.command = (spec, argv)
        return previous

    def after_command(self, client, spec, argv, reply, previous):
        """call()'s end for a tracking client: remember the keys it read, forget CLIENT
        CACHING (resetClient()), and at the top-level call send the invalidations its
        command caused to itself after its reply (afterCommand())."""
        state = client.tracking
        if state is not None:
            if "readonly" in spec.flags and spec.name not in _SCRIPT_READS:
                self.remember_keys(client, spec, argv)
            if client.multi is None and not client.in_exec \
                    and (spec.container or spec).name != "client":
                state.caching = False
        self.current, self.command = previous
        if client.in_exec or not (self.due or client in self.pending):
            return reply
        return self._reply_then_pending(client, reply)

    def script_read(self, caller) -> None:
        """A script ran a read-only command: its caller tracks the keys the script
        declared (call()'s script_caller case)."""
        if caller is self.current and self.command is not None:
            self.remember_keys(caller, *self.command)

    def remember_keys(self, client, spec, argv) -> None:
        """trackingRememberKeys()."""
        state = client.tracking
        if state is None or state.bcast or state.skips_keys() or "pubsub" in spec.flags:
            return
        table = self.keys
        cid = client.id
        for key in self._keys_of(spec, argv):
            ids = table.get(key)
            if ids is None:
                ids = table[key] = {}
            if cid not in ids:
                ids[cid] = None
                self.items += 1
        if not self.active and table:
            self._sync_active()
        if self.max_keys and len(table) > self.max_keys:
            self._arm_limit()

    # -- writes ----------------------------------------------------------------------

    def modified(self, key: bytes) -> None:
        """signalModifiedKey()'s trackingInvalidateKey(c, key, 1)."""
        self.invalidate(key, self._modifier())

    def expired(self, db, key: bytes) -> None:
        # A key deleted by expiry is changed by no client (signalModifiedKey(NULL, ...)).
        if self.active:
            self.invalidate(key, None)

    def _modifier(self):
        # The client changing keys, for NOLOOP in BCAST mode: a script's commands run as
        # the Lua client, never a tracking one.
        engine = self.server.scripting
        if engine is not None and engine.current is not None:
            return None
        return self.current

    def invalidate(self, key: bytes, modifier, bcast: bool = True) -> None:
        """trackingInvalidateKey()."""
        if bcast and self.prefixes:
            self._note_for_broadcast(key, modifier)
        ids = self.keys.pop(key, None)
        if ids is None:
            return
        self.items -= len(ids)
        clients = self.server.clients
        current = self.current
        # Redis walks the ids in its radix tree's order: the bytes of each id in memory.
        order = ids if len(ids) == 1 else sorted(ids, key=_id_bytes)
        for cid in order:
            target = clients.get(cid)
            if target is None:
                continue
            state = target.tracking
            if state is None or state.bcast:
                continue  # keys read before switching to BCAST are not reported
            if target is current:
                if not state.noloop:
                    # After the reply of the command running, not inside it.
                    self.pending.setdefault(target, []).append(key)
                continue
            self.send(target, key_array((key,)))
        if not self.keys:
            self._sync_active()

    def flushed(self) -> None:
        """trackingInvalidateKeysOnFlush(): a null, meaning every key, to every tracking
        client; the table is emptied."""
        if self.clients:
            for client in list(self.server.clients.values()):
                if client.tracking is None:
                    continue
                if client is self.current:
                    self.pending.setdefault(client, []).append(None)
                else:
                    self.send(client, _NULL[client.resp])
        self.keys = {}
        self.items = 0
        self._sync_active()

    # -- delivery ---------------------------------------------------------------------

    def send(self, client, payload: bytes) -> None:
        """sendTrackingMessage(): payload is the keys part (an array, or a null)."""
        state = client.tracking
        target = client
        redirected = False
        if state is not None and state.redirect:
            target = self.server.clients.get(state.redirect)
            if target is None:
                state.broken_redirect = True
                if client.resp > 2:
                    self._deliver(client, _REDIR_BROKEN % state.redirect)
                return
            redirected = True
        if target.resp > 2:
            self._deliver(target, _PUSH + payload)
        elif redirected and target._flags and "P" in target._flags:
            self._deliver(target, _MESSAGE + payload)
        # else RESP2 without a redirection: there is no way to tell the client

    def _deliver(self, target, data: bytes) -> None:
        collect = self._collect
        if collect is not None and collect[0] is target:
            collect[1].append(data)
        else:
            target.push(data)

    def _reply_then_pending(self, client, reply):
        """trackingHandlePendingKeyInvalidations(): the reply value, followed by the
        invalidations client caused to itself (which CLIENT REPLY OFF never silences)."""
        data = self._pending_messages(client)
        if self.due:
            # This client's share of the broadcast follows its reply too.
            data += self._collected(client, self.broadcast)
        if not data:
            return reply
        if reply is NO_REPLY or reply is BLOCKED or client.reply_off or client.reply_skip:
            client.write(data)
            return reply
        head: list = []
        _encode(head, reply, client.resp)
        head.append(data)
        return Raw(b"".join(head))

    def _pending_messages(self, client) -> bytes:
        keys = self.pending.pop(client, None)
        if not keys:
            return b""

        def send_pending():
            for key in keys:
                self.send(client, _NULL[client.resp] if key is None else key_array((key,)))

        return self._collected(client, send_pending)

    def _collected(self, client, produce) -> bytes:
        """The messages produce() sends to client, gathered instead of pushed."""
        out: list = []
        self._collect = (client, out)
        try:
            produce()
        finally:
            self._collect = None
        return b"".join(out)

    def flush_pending(self, client) -> None:
        """After a blocked client's reply was sent (afterCommand(receiver))."""
        if client in self.pending:
            data = self._pending_messages(client)
            if data:
                client.write(data)

    def serving(self, client):
        """A blocked client's command is served now (handleClientsBlockedOnKeys() makes
        it the current client); returns what to restore."""
        previous = self.current
        self.current = client
        return previous

    # -- BCAST --------------------------------------------------------------------------

    def _note_for_broadcast(self, key: bytes, modifier) -> None:
        """trackingRememberKeyToBroadcast(): sent by broadcast() once the loop turn ends."""
        noted = False
        for prefix, entry in self.prefixes.items():
            if key.startswith(prefix):
                entry.keys[key] = modifier
                noted = True
        if noted:
            self.due = True
            if not self._broadcast_scheduled:
                # For changes outside commands (expiry, blocked clients served); the
                # dispatcher is quicker for a command's. Thread-safe: a script's
                # commands may run on the Lua worker thread.
                self._broadcast_scheduled = True
                self.server.loop.call_soon_threadsafe(self._broadcast_from_loop)

    def _broadcast_from_loop(self) -> None:
        self._broadcast_scheduled = False
        if self.due:
            self.broadcast()

    def broadcast(self) -> None:
        """trackingBroadcastInvalidationMessages() (beforeSleep()): per prefix, in the
        radix tree's order, the keys changed under it to each subscriber — without
        the ones a NOLOOP subscriber changed itself."""
        self.due = False
        if not self.clients:
            return
        for prefix in sorted(self.prefixes):
            entry = self.prefixes.get(prefix)
            if entry is None or not entry.keys:
                continue
            changed = entry.keys
            entry.keys = {}
            keys = sorted(changed)
            common = key_array(keys)
            for client in list(entry.clients):
                if client.tracking is not None and client.tracking.noloop:
                    own = [k for k in keys if changed[k] is not client]
                    if own:
                        self.send(client, key_array(own))
                else:
                    self.send(client, common)

    # -- tracking-table-max-keys --------------------------------------------------------

    def configure(self, server=None, value=None) -> None:
        self.max_keys = self.server.config["tracking-table-max-keys"]
        if self.max_keys and len(self.keys) > self.max_keys:
            self._arm_limit()

    def _arm_limit(self) -> None:
        # processCommand() calls trackingLimitUsedSlots() before every command while
        # anyone tracks; here the check joins the dispatcher's only while over the limit.
        if not self._limit_armed:
            self._limit_armed = True
            self.server.hooks.command_checks.append(self._limit_check)

    def _limit_check(self, client, spec, argv) -> None:
        self.limit_used_slots()

    def cron(self) -> None:
        if self.clients:
            self.limit_used_slots()

    def limit_used_slots(self) -> None:
        """trackingLimitUsedSlots(): over tracking-table-max-keys, invalidate random
        keys (as if changed) — up to 100 more per consecutive call still over."""
        max_keys = self.max_keys
        if not max_keys or len(self.keys) <= max_keys:
            self._limit_rounds = 0
            self._disarm_limit()
            return
        effort = 100 * (self._limit_rounds + 1)
        victims = random.sample(list(self.keys), min(effort, len(self.keys)))
        for key in victims:
            self.invalidate(key, None, bcast=False)
            if len(self.keys) <= max_keys:
                self._limit_rounds = 0
                self._disarm_limit()
                return
        self._limit_rounds += 1

    def _disarm_limit(self) -> None:
        if self._limit_armed:
            self._limit_armed = False
            self.server.hooks.command_checks.remove(self._limit_check)

    # -- INFO ---------------------------------------------------------------------------

    def stats(self) -> dict:
        return {"tracking_total_keys": len(self.keys), "tracking_total_items": self.items,
                "tracking_total_prefixes": len(self.prefixes)}


def _id_bytes(cid: int) -> bytes:
    return cid.to_bytes(8, "little")
