"""Pub/sub commands (Redis 7.0's pubsub.c): SUBSCRIBE & co., PUBLISH, PUBSUB, and the
shard variants (SSUBSCRIBE, SPUBLISH...) with single-node semantics. The channels and
the delivery are the core's (vermilion/pubsub.py); this module is the commands' side:
their replies and the checks around them.
"""

from ..keyspace.glob import matcher
from ..protocol.encode import NO_REPLY, Push, Raw, encode
from ..protocol.errors import CommandError
from ..propagate import TO_REPLICAS
from ..pubsub import CHANNELS, PATTERNS, SHARD
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


def _subscriptions(client) -> int:
    return client.subscriptions.count()


def _shard_count(client) -> int:
    return len(client.subscriptions.shard_channels)


def _frame(client, kind: bytes, name, count: int) -> bytes:
    return encode(Push([kind, name, count]), client.resp)


def _confirm(client, frames: list):
    """The (un)subscribe confirmations: a reply in RESP2, push messages in RESP3. Redis
    writes them as pushes in both protocols (CLIENT_PUSHING), so CLIENT REPLY OFF/SKIP
    never silence them."""
    data = b"".join(frames)
    if client.reply_off or client.reply_skip:
        client.push(data)
        return NO_REPLY
    return Raw(data)


def _to_replicas(client, argv) -> None:
    # forceCommandPropagation(c, PROPAGATE_REPL): replicas deliver the message to their
    # own subscribers; the AOF never sees it.
    propagation = client.server.propagation
    if propagation.sinks:
        propagation.emit(client.db.id, argv, TO_REPLICAS)


@command("publish")
def publish_cmd(client, argv):
    _to_replicas(client, argv)
    return client.server.pubsub.publish(argv[1], argv[2])


@command("spublish")
def spublish_cmd(client, argv):
    _to_replicas(client, argv)
    return client.server.pubsub.spublish(argv[1], argv[2])


# -- subscribing -------------------------------------------------------------------------


def _subscribe(client, names, kind: str, reply: bytes, counter) -> Raw:
    pubsub = client.server.pubsub
    out = []
    for name in names:
        pubsub.subscribe(client, kind, name)
        out.append(_frame(client, reply, name, counter(client)))
    return _confirm(client, out)


def _unsubscribe(client, names, kind: str, reply: bytes, counter):
    pubsub = client.server.pubsub
    if not names:
        names = list(getattr(client.subscriptions, kind))
        if not names:
            # Nothing to leave: one reply with a null name, as Redis answers.
            return _confirm(client, [_frame(client, reply, None, counter(client))])
    out = []
    for name in names:
        pubsub.unsubscribe(client, kind, name)
        out.append(_frame(client, reply, name, counter(client)))
    return _confirm(client, out)


@command("subscribe")
def subscribe(client, argv):
    _deny_blocking_check(client, "SUBSCRIBE", allowed_in_multi=True)
    return _subscribe(client, argv[1:], CHANNELS, b"subscribe", _subscriptions)


@command("psubscribe")
def psubscribe(client, argv):
    _deny_blocking_check(client, "PSUBSCRIBE", allowed_in_multi=True)
    return _subscribe(client, argv[1:], PATTERNS, b"psubscribe", _subscriptions)


@command("ssubscribe")
def ssubscribe(client, argv):
    _deny_blocking_check(client, "SSUBSCRIBE", allowed_in_multi=False)
    return _subscribe(client, argv[1:], SHARD, b"ssubscribe", _shard_count)


@command("unsubscribe")
def unsubscribe(client, argv):
    return _unsubscribe(client, argv[1:], CHANNELS, b"unsubscribe", _subscriptions)


@command("punsubscribe")
def punsubscribe(client, argv):
    return _unsubscribe(client, argv[1:], PATTERNS, b"punsubscribe", _subscriptions)


@command("sunsubscribe")
def sunsubscribe(client, argv):
    return _unsubscribe(client, argv[1:], SHARD, b"sunsubscribe", _shard_count)


def _deny_blocking_check(client, name: str, allowed_in_multi: bool) -> None:
    # A client that must get one reply per command (inside EXEC, a script) can't
    # subscribe; SUBSCRIBE/PSUBSCRIBE stay allowed in MULTI for backward compatibility.
    if client.deny_blocking and not (allowed_in_multi and client.in_exec):
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


@command("pubsub channels")
def pubsub_channels(client, argv):
    return _active(client.server.pubsub.channels, argv)


@command("pubsub shardchannels")
def pubsub_shardchannels(client, argv):
    return _active(client.server.pubsub.shard, argv)


@command("pubsub numsub")
def pubsub_numsub(client, argv):
    table = client.server.pubsub.channels
    out = []
    for name in argv[2:]:
        out += [name, len(table.get(name, ()))]
    return out


@command("pubsub shardnumsub")
def pubsub_shardnumsub(client, argv):
    table = client.server.pubsub.shard
    out = []
    for name in argv[2:]:
        out += [name, len(table.get(name, ()))]
    return out


@command("pubsub numpat")
def pubsub_numpat(client, argv):
    return len(client.server.pubsub.patterns)


@command("pubsub help")
def pubsub_help(client, argv):
    return [line for line in PUBSUB_HELP]


