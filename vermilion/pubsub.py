"""The pub/sub core (Redis 7.0's pubsub.c, below the commands that use it).

Server state: channel → subscribers, pattern → subscribers, shard channel →
subscribers, each an insertion-ordered dict {session: None} so messages go out in
subscription order. Session state: session.subscriptions (channels, patterns,
shard_channels: ordered dicts, read by CLIENT LIST) and the "P" flag (CLIENT_PUBSUB), which puts the
session behind the dispatcher's gate (a RESP2 subscriber may only send the subscribe
family). Keyspace notifications publish through here too, so notify.py never needs a
command module.

Messages are encoded once per protocol and written to each subscriber; a subscriber
that does not read is bounded by client-output-buffer-limit's pubsub class.
"""

from __future__ import annotations

from .keyspace.glob import matcher
from .protocol.encode import Push, encode

# Which session attribute holds a kind of subscription, and the server table for it.
CHANNELS, PATTERNS, SHARD = "channels", "patterns", "shard_channels"


class PubSub:
    __slots__ = ("channels", "patterns", "shard", "_tables")

    def __init__(self):
        self.channels: dict = {}
        self.patterns: dict = {}
        self.shard: dict = {}
        self._tables = {CHANNELS: self.channels, PATTERNS: self.patterns, SHARD: self.shard}

    # -- delivery ------------------------------------------------------------------------

    def publish(self, channel: bytes, message: bytes) -> int:
        """pubsubPublishMessage(): channel subscribers, then pattern subscribers (once per
        matching pattern). Returns the number of deliveries."""
        receivers = 0
        subscribers = self.channels.get(channel)
        if subscribers:
            _deliver(subscribers, Push([b"message", channel, message]))
            receivers += len(subscribers)
        if self.patterns:
            for pattern, subscribers in list(self.patterns.items()):
                if matcher(pattern)(channel):
                    _deliver(subscribers, Push([b"pmessage", pattern, channel, message]))
                    receivers += len(subscribers)
        return receivers

    def spublish(self, channel: bytes, message: bytes) -> int:
        subscribers = self.shard.get(channel)
        if not subscribers:
            return 0
        _deliver(subscribers, Push([b"smessage", channel, message]))
        return len(subscribers)

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, session, kind: str, name: bytes) -> bool:
        """Add one subscription; False when the session already had it."""
        mine = getattr(session.subscribed(), kind)
        if name in mine:
            return False
        mine[name] = None
        self._tables[kind].setdefault(name, {})[session] = None
        _update_flag(session)
        return True

    def unsubscribe(self, session, kind: str, name: bytes) -> bool:
        """Drop one subscription; False when the session did not have it."""
        mine = getattr(session.subscriptions, kind)
        if name not in mine:
            return False
        del mine[name]
        table = self._tables[kind]
        subscribers = table.get(name)
        if subscribers is not None:
            subscribers.pop(session, None)
            if not subscribers:
                del table[name]
        _update_flag(session)
        return True

    def unsubscribe_everything(self, session) -> None:
        """A closing or RESET session leaves every channel and pattern, without replies."""
        for kind in (CHANNELS, PATTERNS, SHARD):
            for name in list(getattr(session.subscriptions, kind)):
                self.unsubscribe(session, kind, name)


def _update_flag(session) -> None:
    if session.subscriptions.total():
        session.flags.add("P")
    else:
        session.clear_flag("P")
    session.refresh_gate()


def _deliver(subscribers, message: Push) -> None:
    encoded: dict = {}  # one encoding per protocol version
    for session in tuple(subscribers):
        data = encoded.get(session.resp)
        if data is None:
            data = encoded[session.resp] = encode(message, session.resp)
        session.push(data)
