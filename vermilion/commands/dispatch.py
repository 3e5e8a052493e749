"""processCommand(): the one place for the central checks, then call().

lookup (unknown command / subcommand, arity) → auth → loading → OOM/readonly hooks
→ handler → statistics, slowlog and MONITOR feed. Later issues add MULTI queueing
and blocking here, never in the handlers.
"""

import time

from ..protocol import errors
from ..protocol.errors import CommandError
from .registry import COMMANDS, lookup

_perf = time.perf_counter_ns


def process_command(client, argv: list[bytes]):
    """Run one command for client and return its reply value."""
    server = client.server
    spec = COMMANDS.get(argv[0].lower())
    try:
        if spec is None or spec.subcommands or not spec.check_arity(len(argv)):
            spec = lookup(argv)  # raises the right error, or resolves a subcommand
        if not client.authenticated and not spec.no_auth:
            raise CommandError(errors.NOAUTH)
        for check in server.command_checks:
            check(client, spec, argv)
    except CommandError as exc:
        if spec is not None and spec.handler is not None:
            spec.rejected_calls += 1
        server.count_error(exc)
        return exc
    if server.monitors and "skip_monitor" not in spec.flags:
        server.feed_monitors(client, argv)
    client.cmd = spec
    start = _perf()
    try:
        reply = spec.handler(client, argv)
    except CommandError as exc:
        spec.failed_calls += 1
        server.count_error(exc)
        reply = exc
    elapsed = (_perf() - start) // 1000
    spec.calls += 1
    spec.usec += elapsed
    server.stats.total_commands_processed += 1
    if elapsed >= server.slowlog_threshold >= 0 and "skip_slowlog" not in spec.flags:
        server.slowlog.record(client, argv, elapsed)
    return reply
