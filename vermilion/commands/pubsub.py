"""Pub/sub (Redis 7.0's pubsub.c): SUBSCRIBE & co., PUBLISH, PUBSUB, and the shard
variants (SSUBSCRIBE, SPUBLISH...) with single-node semantics.

Server state (server.pubsub, created on first use): channel → subscribers, pattern →
subscribers, shard channel → subscribers, each an insertion-ordered dict {client: None}
so messages go out in subscription order. Client state: client.channels, .patterns,
.shard_channels (ordered dicts, read by CLIENT LIST) and the "P" flag (CLIENT_PUBSUB):
a RESP2 client with any subscription may only send the subscribe family, PING, QUIT and
RESET (dispatch.py enforces it).

Messages are encoded once per protocol and written to each subscriber; a subscriber
that does not read is bounded by client-output-buffer-limit's pubsub class (the server
checks it when the transport backs up).
"""

from ..keyspace.glob import matcher
from ..protocol.encode import NO_REPLY, Push, Raw, encode
from ..protocol.errors import CommandError
from . import dispatch
from .registry import command

PUBSUB_HELP = [
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
]


class PubSubState:
    __slots__ = ("channels", "patterns", "shard")

    def __init__(self):
        self.channels: dict = {}
        self.patterns: dict = {}
        self.shard: dict = {}


def state(server) -> PubSubState:
    ps = getattr(server, "pubsub", None)
    if ps is None:
        ps = server.pubsub = PubSubState()
        # INFO stats: pubsub_channels, pubsub_patterns, pubsubshard_channels.
        server.pubsub_channels = lambda: len(ps.channels)
        server.pubsub_patterns = lambda: len(ps.patterns)
        server.pubsubshard_channels = lambda: len(ps.shard)
        server.client_close_hooks.append(lambda c: unsubscribe_everything(c))
        if not hasattr(server, "reset_hooks"):
            server.reset_hooks = []
        server.reset_hooks.append(unsubscribe_everything)
        from .. import notify

        notify.install(server)
    return ps


def _client_dict(client, attr: str) -> dict:
    d = getattr(client, attr, None)
    if d is None:
        d = {}
        setattr(client, attr, d)
    return d


def _subscriptions(client) -> int:
    # clientSubscriptionsCount(): channels + patterns (shard channels count apart).
    return len(getattr(client, "channels", None) or ()) + len(getattr(client, "patterns", None) or ())


def _total_subscriptions(client) -> int:
    return _subscriptions(client) + len(getattr(client, "shard_channels", None) or ())


def _update_flag(client) -> None:
    if _total_subscriptions(client):
        client.flags.add("P")
    else:
        client.flags.discard("P")
    dispatch.refresh_gate(client)


def _frame(client, kind: bytes, name, count: int) -> bytes:
    return encode(Push([kind, name, count]), client.resp)


def _confirm(client, frames: list):
    """The (un)subscribe confirmations: a reply in RESP2, push messages in RESP3, which
    CLIENT REPLY OFF/SKIP do not silence."""
    data = b"".join(frames)
    if client.resp == 3 and (client.reply_off or client.reply_skip):
        pending = getattr(client, "push_buffer", None)
        if pending is not None:
            pending.append(data)
        else:
            client.write(data)
        return NO_REPLY
    return Raw(data)


# -- delivery ----------------------------------------------------------------------------


def _deliver(subscribers, message: Push, cache: dict) -> None:
    for client in tuple(subscribers):
        data = cache.get(client.resp)
        if data is None:
            data = cache[client.resp] = encode(message, client.resp)
        pending = getattr(client, "push_buffer", None)
        if pending is not None:
            pending.append(data)  # it is running this very command: see dispatch
        else:
            client.write(data)


def publish(server, channel: bytes, message: bytes) -> int:
    """pubsubPublishMessage(): channel subscribers, then pattern subscribers (once per
    matching pattern). Returns the number of deliveries."""
    ps = getattr(server, "pubsub", None)
    if ps is None:
        return 0
    receivers = 0
    subscribers = ps.channels.get(channel)
    if subscribers:
        _deliver(subscribers, Push([b"message", channel, message]), {})
        receivers += len(subscribers)
    if ps.patterns:
        for pattern, subscribers in list(ps.patterns.items()):
            if matcher(pattern)(channel):
                _deliver(subscribers, Push([b"pmessage", pattern, channel, message]), {})
                receivers += len(subscribers)
    return receivers


def _spublish(server, channel: bytes, message: bytes) -> int:
    ps = getattr(server, "pubsub", None)
    subscribers = ps.shard.get(channel) if ps is not None else None
    if not subscribers:
        return 0
    _deliver(subscribers, Push([b"smessage", channel, message]), {})
    return len(subscribers)


@command("publish")
def publish_cmd(client, argv):
    return publish(client.server, argv[1], argv[2])


@command("spublish")
def spublish_cmd(client, argv):
    return _spublish(client.server, argv[1], argv[2])


# -- subscribing -------------------------------------------------------------------------


def _subscribe(client, names, table: dict, attr: str, kind: bytes, counter) -> Raw:
    mine = _client_dict(client, attr)
    out = []
    for name in names:
        if name not in mine:
            mine[name] = None
            table.setdefault(name, {})[client] = None
        _update_flag(client)
        out.append(_frame(client, kind, name, counter(client)))
    return _confirm(client, out)


def _unsubscribe_one(client, name, table: dict, mine: dict) -> bool:
    if mine.pop(name, _MISSING) is _MISSING:
        return False
    subscribers = table.get(name)
    if subscribers is not None:
        subscribers.pop(client, None)
        if not subscribers:
            del table[name]
    return True


def _unsubscribe(client, names, table: dict, attr: str, kind: bytes, counter):
    mine = _client_dict(client, attr)
    out = []
    if not names:
        names = list(mine)
        if not names:
            # Nothing to leave: one reply with a null name, as Redis answers.
            _update_flag(client)
            return _confirm(client, [_frame(client, kind, None, counter(client))])
    for name in names:
        _unsubscribe_one(client, name, table, mine)
        _update_flag(client)
        out.append(_frame(client, kind, name, counter(client)))
    return _confirm(client, out)


def unsubscribe_everything(client) -> None:
    """A closing or RESET client leaves every channel and pattern, without replies."""
    ps = getattr(client.server, "pubsub", None)
    if ps is None:
        return
    for attr, table in (("channels", ps.channels), ("patterns", ps.patterns),
                        ("shard_channels", ps.shard)):
        mine = getattr(client, attr, None)
        if mine:
            for name in list(mine):
                _unsubscribe_one(client, name, table, mine)
    client.flags.discard("P")
    dispatch.refresh_gate(client)


def _shard_count(client) -> int:
    return len(getattr(client, "shard_channels", None) or ())


@command("subscribe")
def subscribe(client, argv):
    _deny_blocking_check(client, "SUBSCRIBE", allowed_in_multi=True)
    ps = state(client.server)
    return _subscribe(client, argv[1:], ps.channels, "channels", b"subscribe", _subscriptions)


@command("psubscribe")
def psubscribe(client, argv):
    _deny_blocking_check(client, "PSUBSCRIBE", allowed_in_multi=True)
    ps = state(client.server)
    return _subscribe(client, argv[1:], ps.patterns, "patterns", b"psubscribe", _subscriptions)


@command("ssubscribe")
def ssubscribe(client, argv):
    _deny_blocking_check(client, "SSUBSCRIBE", allowed_in_multi=False)
    ps = state(client.server)
    return _subscribe(client, argv[1:], ps.shard, "shard_channels", b"ssubscribe", _shard_count)


@command("unsubscribe")
def unsubscribe(client, argv):
    ps = state(client.server)
    return _unsubscribe(client, argv[1:], ps.channels, "channels", b"unsubscribe", _subscriptions)


@command("punsubscribe")
def punsubscribe(client, argv):
    ps = state(client.server)
    return _unsubscribe(client, argv[1:], ps.patterns, "patterns", b"punsubscribe",
                        _subscriptions)


@command("sunsubscribe")
def sunsubscribe(client, argv):
    ps = state(client.server)
    return _unsubscribe(client, argv[1:], ps.shard, "shard_channels", b"sunsubscribe",
                        _shard_count)


def _deny_blocking_check(client, name: str, allowed_in_multi: bool) -> None:
    # A client that must get one reply per command (inside EXEC, a script) can't
    # subscribe; SUBSCRIBE/PSUBSCRIBE stay allowed in MULTI for backward compatibility.
    if getattr(client, "deny_blocking", False) and not (allowed_in_multi and getattr(client, "in_exec", False)):
        raise CommandError(f"ERR {name} isn't allowed for a DENY BLOCKING client")


# -- PUBSUB ------------------------------------------------------------------------------


def _active(table: dict, argv) -> list:
    if len(argv) > 3:
        raise CommandError(_syntax(argv))
    if len(argv) == 2:
        return list(table)
    match = matcher(argv[2])
    return [name for name in table if match(name)]


def _syntax(argv) -> str:
    return ("ERR unknown subcommand or wrong number of arguments for '%s'. Try PUBSUB HELP."
            % argv[1].decode("utf-8", "replace"))


def _state_of(client):
    return getattr(client.server, "pubsub", None) or PubSubState()


@command("pubsub channels")
def pubsub_channels(client, argv):
    return _active(_state_of(client).channels, argv)


@command("pubsub shardchannels")
def pubsub_shardchannels(client, argv):
    return _active(_state_of(client).shard, argv)


@command("pubsub numsub")
def pubsub_numsub(client, argv):
    table = _state_of(client).channels
    out = []
    for name in argv[2:]:
        out += [name, len(table.get(name, ()))]
    return out


@command("pubsub shardnumsub")
def pubsub_shardnumsub(client, argv):
    table = _state_of(client).shard
    out = []
    for name in argv[2:]:
        out += [name, len(table.get(name, ()))]
    return out


@command("pubsub numpat")
def pubsub_numpat(client, argv):
    return len(_state_of(client).patterns)


@command("pubsub help")
def pubsub_help(client, argv):
    return [line for line in PUBSUB_HELP]


_MISSING = object()
__all__ = ["publish", "state", "unsubscribe_everything"]
