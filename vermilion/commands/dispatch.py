"""processCommand(): the one place for the central checks, then call().

lookup (unknown command / subcommand, arity) → auth → the server's registered checks
(OOM, loading, readonly...) → MULTI queueing / the RESP2 pub/sub restriction → handler →
statistics, slowlog and the MONITOR feed. Handlers never repeat these checks.

Sessions in MULTI or with pub/sub subscriptions are "gated" (server.gated, kept by
Session.refresh_gate()): while none is, the fast path costs one truth test for them; a
gated session's commands take the slow path, where they are queued (MULTI) or refused
(RESP2 subscribed mode). The keyspace notifier joins the gate while the 'n'/'m' classes
need to see every command before it runs.
"""

import time
import traceback

from ..protocol import errors
from ..protocol.encode import QUEUED, NO_REPLY, Raw, _encode
from ..protocol.errors import CommandError
from ..log import logger
from ..propagate import propagate
from .acl_cmds import check_command

_perf = time.perf_counter_ns

# processCommand(): inside MULTI these run at once, everything else is queued.
_RUN_IN_MULTI = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})
# The only commands a RESP2 client with subscriptions may send.
_PUBSUB_CONTEXT = frozenset({"ping", "subscribe", "ssubscribe", "unsubscribe", "sunsubscribe",
                             "psubscribe", "punsubscribe", "quit", "reset"})
PUBSUB_CONTEXT_ERROR = ("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                        "PING / QUIT / RESET are allowed in this context")
NO_MULTI_ERROR = "ERR Command not allowed inside a transaction"
REPLICA_KEYSPACE_ERROR = "ERR Replica can't interact with the keyspace"
_KEYSPACE_FLAGS = frozenset({"readonly", "may_replicate"})
EXEC_REJECTED = "EXECABORT Transaction discarded because of: "


def process_command(client, argv: list[bytes]):
    """Run one command for client and return its reply value. The caller sets
    client.clock = perf_counter_ns() before the first command of a batch."""
    server = client.server
    table = server.commands
    spec = table.spellings.get(argv[0])
    if spec is None:
        spec = table.spelled(argv[0])
    # Fast path: a plain command with the right arity by a client no check can refuse:
    # authenticated as a user with every permission (Session.unchecked), or whose
    # restricted user surely allows this command (Session.acl_fast).
    if spec is None or spec.subcommands or server.hooks.command_checks or server.gated \
            or (len(argv) != spec.arity if spec.arity > 0 else len(argv) < -spec.arity) \
            or (not client.unchecked
                and (client.acl_fast is None or not client.acl_fast(spec, argv))):
        gated = client in server.gated
        try:
            spec = _central_checks(client, server, spec, argv, gated)
        except CommandError as exc:
            if gated and client.multi is not None:
                if spec is not None and spec.fullname == "exec":
                    # rejectCommand() → execCommandAbort(): the transaction ends here.
                    client.discard_transaction()
                    exc = CommandError(EXEC_REJECTED + exc.message)
                else:
                    client.multi.aborted = True  # flagTransaction(): EXEC answers EXECABORT
            server.count_error(exc)
            return exc
        if gated:
            return _gated_call(client, spec, argv)
        if server.notifier.tracking:
            server.notifier.begin_command(client, argv, spec)
    if server.monitors and "skip_monitor" not in spec.flags:
        server.feed_monitors(client, argv)
    client.cmd = spec
    dirty = server.dirty
    try:
        reply = spec.handler(client, argv)
    except CommandError as exc:
        spec.failed_calls += 1
        server.count_error(exc)
        reply = exc
    except Exception as exc:  # a bug must cost one reply, never the connection
        reply = internal_error(server, spec, argv, exc)
    else:
        if server.propagation.sinks and server.dirty != dirty:
            if spec.is_write:
                propagate(server, client.db, spec, argv, reply)
            client.woff = server.repl.offset  # EXEC and scripts included
    # Timed from client.clock (see Session.clock): from the end of the previous command
    # of the same batch, so the time also holds this command's lookup and checks.
    end = _perf()
    elapsed = (end - client.clock) // 1000
    client.clock = end
    spec.calls += 1
    spec.usec += elapsed
    server.stats.total_commands_processed += 1
    if client.blocked is None:
        if elapsed >= server._slowlog_threshold >= 0 and "skip_slowlog" not in spec.flags:
            server.slowlog.record(client, argv, elapsed)
    else:  # the slowlog hears of it once it is served (updateStatsOnUnblock())
        client.blocked.note_call(spec, argv, elapsed)
    if server.tracking.due and not client.script:
        server.tracking.broadcast()  # BCAST invalidations leave before this reply
    return reply


def call(client, spec, argv: list[bytes]):
    """call(): run an already checked command (EXEC runs its queue through this).
    The body of process_command's fast path, kept apart so that path stays inline."""
    server = client.server
    if server.notifier.tracking:
        server.notifier.begin_command(client, argv, spec)
    if server.monitors and "skip_monitor" not in spec.flags \
            and not spec.monitor_after:
        server.feed_monitors(client, argv)
    # CLIENT TRACKING: tracking clients are gated, so their commands all come here.
    tracking = server.tracking if client.tracking is not None else None
    if tracking is not None:
        before = tracking.begin(client, spec, argv)
    client.cmd = spec
    dirty = server.dirty
    start = _perf()
    try:
        reply = spec.handler(client, argv)
    except CommandError as exc:
        spec.failed_calls += 1
        server.count_error(exc)
        reply = exc
    except Exception as exc:
        reply = internal_error(server, spec, argv, exc)
    else:
        if server.propagation.sinks and server.dirty != dirty:
            if spec.is_write:
                propagate(server, client.db, spec, argv, reply)
            client.woff = server.repl.offset  # EXEC and scripts included
    elapsed = (_perf() - start) // 1000
    spec.calls += 1
    spec.usec += elapsed
    server.stats.total_commands_processed += 1
    if client.blocked is None:
        if elapsed >= server._slowlog_threshold >= 0 and "skip_slowlog" not in spec.flags:
            server.slowlog.record(client, argv, elapsed)
    else:  # the slowlog hears of it once it is served (updateStatsOnUnblock())
        client.blocked.note_call(spec, argv, elapsed)
    if tracking is not None:
        reply = tracking.after_command(client, spec, argv, reply, before)
    elif server.tracking.due and not client.in_exec:
        server.tracking.broadcast()  # BCAST invalidations leave before this reply
    return reply


def _gated_call(client, spec, argv):
    multi = client.multi
    if multi is not None and spec.name not in _RUN_IN_MULTI:
        # queueMultiCommand(): nothing runs (nor reaches MONITOR) before EXEC.
        if not multi.aborted:
            multi.queue.append((spec, argv))
            if "no_mandatory_keys" in spec.flags:  # EVAL*, FCALL*: their declared flags
                multi.queue_script(client.server.script_flags(spec, argv))
        return QUEUED
    # Messages this client publishes to itself go out before this command's reply, not
    # ahead of the earlier replies of its pipeline still waiting in the read batch.
    client.push_buffer = pushes = []
    try:
        reply = call(client, spec, argv)
    finally:
        client.push_buffer = None
    if pushes:
        if client.reply_off or client.reply_skip:
            # Pushes are not replies: CLIENT REPLY OFF/SKIP never silences them.
            client.write(b"".join(pushes))
            return reply
        if reply is not NO_REPLY:
            _encode(pushes, reply, client.resp)
        reply = Raw(b"".join(pushes))
    return reply


def internal_error(server, spec, argv, exc) -> CommandError:
    logger.warning("Internal error in '%s': %s" % (spec.fullname, traceback.format_exc()))
    spec.failed_calls += 1
    error = CommandError(f"ERR internal error executing '{spec.fullname}': {type(exc).__name__}")
    server.count_error(error)
    return error


def _central_checks(client, server, spec, argv, gated=False):
    if spec is None or spec.subcommands or not spec.check_arity(len(argv)):
        try:
            spec = server.commands.lookup(argv)  # the right error, or the subcommand
        except CommandError:
            named = _named_command(server, argv)
            if named is not None:  # rejectCommand(): c->cmd's rejected_calls (wrong arity)
                named.rejected_calls += 1
            raise
    try:
        # processCommand()'s order: NOAUTH, no_multi, -NOPERM, then the subscribed mode.
        if not client.authenticated and not spec.no_auth and server.auth_required():
            raise CommandError(errors.NOAUTH)
        if gated:
            _multi_check(client, spec)
        if not client.user.unrestricted:
            check_command(client, spec, argv)
        if gated:
            _pubsub_check(client, spec)
        for check in server.hooks.command_checks:
            check(client, spec, argv)
        if client.is_replica() and (spec.is_write or spec.flags & _KEYSPACE_FLAGS):
            # processCommand(): a replica may not touch the keyspace (it is exempt from
            # CLIENT PAUSE, which this would let it get around).
            raise CommandError(REPLICA_KEYSPACE_ERROR)
    except CommandError:
        spec.rejected_calls += 1
        raise
    return spec


def _named_command(server, argv):
    """lookupCommand(): what c->cmd is for argv, found or not — the command, a container
    named alone, or its subcommand (an unknown subcommand names none)."""
    spec = server.commands.get(argv[0].lower())
    if spec is None or not spec.subcommands or len(argv) == 1:
        return spec
    return spec.subcommands.get(argv[1].lower())


def _multi_check(client, spec) -> None:
    if client.multi is not None and "no_multi" in spec.flags:
        raise CommandError(NO_MULTI_ERROR)


def _pubsub_check(client, spec) -> None:
    if client.resp == 2 and "P" in client.flags:
        top = spec.container or spec
        if top.name not in _PUBSUB_CONTEXT:
            raise CommandError(PUBSUB_CONTEXT_ERROR % spec.fullname)

