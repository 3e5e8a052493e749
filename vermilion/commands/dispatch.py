"""processCommand(): the one place for the central checks, then call().

lookup (unknown command / subcommand, arity) → auth → the server's registered checks
(OOM, loading, readonly, MULTI queueing as later issues add them) → handler →
statistics, slowlog and the MONITOR feed. Handlers never repeat these checks.
"""

import time
import traceback

from ..protocol import errors
from ..protocol.errors import CommandError
from ..log import logger
from ..propagate import propagate
from .registry import COMMANDS, lookup

_perf = time.perf_counter_ns
_get_spec = COMMANDS.get
# Commands as clients spell them ("GET", "get"): one dict hit instead of lower() + hit.
# Bounded, so odd capitalisations cannot grow it without limit.
_SPELLINGS: dict = {}
_by_spelling = _SPELLINGS.get


def process_command(client, argv: list[bytes]):
    """Run one command for client and return its reply value."""
    server = client.server
    name = argv[0]
    spec = _by_spelling(name)
    if spec is None:
        spec = _get_spec(name.lower())
        if spec is not None and len(_SPELLINGS) < 4096:
            _SPELLINGS[name] = spec
    # Fast path: a plain command with the right arity by an authenticated client.
    if spec is None or spec.subcommands or not client.authenticated or server.command_checks \
            or (len(argv) != spec.arity if spec.arity > 0 else len(argv) < -spec.arity):
        try:
            spec = _central_checks(client, server, spec, argv)
        except CommandError as exc:
            server.count_error(exc)
            return exc
    if server.monitors and "skip_monitor" not in spec.flags:
        server.feed_monitors(client, argv)
    client.cmd = spec
    dirty = server.dirty
    start = _perf()
    try:
        reply = spec.handler(client, argv)
    except CommandError as exc:
        spec.failed_calls += 1
        server.count_error(exc)
        reply = exc
    except Exception as exc:  # a bug must cost one reply, never the connection
        reply = _internal_error(server, spec, argv, exc)
    else:
        if server.propagation_sinks and server.dirty != dirty and spec.is_write:
            propagate(server, client.db, argv, reply)
    elapsed = (_perf() - start) // 1000
    spec.calls += 1
    spec.usec += elapsed
    server.stats.total_commands_processed += 1
    if elapsed >= server._slowlog_threshold >= 0 and "skip_slowlog" not in spec.flags:
        server.slowlog.record(client, argv, elapsed)
    return reply


def _internal_error(server, spec, argv, exc) -> CommandError:
    logger.warning("Internal error in '%s': %s" % (spec.fullname, traceback.format_exc()))
    spec.failed_calls += 1
    error = CommandError(f"ERR internal error executing '{spec.fullname}': {type(exc).__name__}")
    server.count_error(error)
    return error


def _central_checks(client, server, spec, argv):
    if spec is None or spec.subcommands or not spec.check_arity(len(argv)):
        spec = lookup(argv)  # raises the right error, or resolves a subcommand
    try:
        if not client.authenticated and not spec.no_auth:
            raise CommandError(errors.NOAUTH)
        for check in server.command_checks:
            check(client, spec, argv)
    except CommandError:
        spec.rejected_calls += 1
        raise
    return spec
