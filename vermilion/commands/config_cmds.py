"""CONFIG GET / SET / RESETSTAT / REWRITE / HELP (config.c configCommand and friends).

The table in vermilion/config.py does the parsing and formatting; this module adds
Redis's command semantics: globs over names and aliases, all-or-nothing multi-pair SET
with rollback, immutable / protected / loading refusals, redaction of sensitive values.
"""

import dataclasses

from ..config import BY_NAME, ConfigError
from ..log import logger
from ..protocol import errors
from ..protocol.encode import OK
from ..protocol.errors import CommandError
from .registry import command

REDACTED = b"(redacted)"

CONFIG_HELP = [
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


@command("config help")
def config_help(client, argv):
    return CONFIG_HELP


@command("config get")
def config_get(client, argv):
    matches = client.server.config.get_matching(*(_text(a) for a in argv[2:]))
    return {k.encode("utf-8", "surrogateescape"): v.encode("utf-8", "surrogateescape")
            for k, v in matches.items()}


# -- CONFIG SET ---------------------------------------------------------------------------

def _split_value(spec, value: str) -> list[str]:
    # performInterfaceSet(): a MULTI_ARG config splits its value on single spaces
    # (sdssplitlen, so "60  1" has an empty word and "" has none).
    if spec.nargs == 1:
        return [value]
    return value.split(" ") if value else []


def _is_local(client) -> bool:
    # islocalClient(): a unix socket, or a loopback peer.
    if client.unix:
        return True
    host = client.addr.rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "::1")


def _protected_allowed(config, client) -> bool:
    setting = config["enable-protected-configs"]
    return setting == "yes" or (setting == "local" and _is_local(client))


def _select(client, argv):
    """The (display name, spec, value) triples, or raise the first refusal as Redis
    orders them (an unknown name, then immutable/protected, loading, duplicate)."""
    server = client.server
    config = server.config
    chosen, failure, unknown, loading_error = [], None, None, False
    for i in range(2, len(argv), 2):
        name = _text(argv[i])
        spec = BY_NAME.get(name.lower())
        if spec is None:
            if failure is None and unknown is None and not loading_error:
                unknown = name
            continue
        value = _text(argv[i + 1])
        if spec.sensitive:  # redactClientCommandArgument(): SLOWLOG never shows it
            argv[i + 1] = REDACTED
        if failure or unknown or loading_error:
            continue
        if not spec.mutable:
            failure = errors.CONFIG_SET_FAILED.format(name, errors.CONFIG_IMMUTABLE)
        elif spec.protected and not _protected_allowed(config, client):
            failure = errors.CONFIG_SET_FAILED.format(name, errors.CONFIG_PROTECTED)
        elif spec.deny_loading and server.loading:
            loading_error = True
        elif any(other == name.lower() for other, _, _ in chosen):
            # Aliases are distinct entries in Redis's table: only the same name repeats.
            failure = errors.CONFIG_SET_FAILED.format(name, errors.CONFIG_DUPLICATE)
        chosen.append((name.lower(), spec, value))
    if loading_error:
        raise CommandError(errors.LOADING)
    if unknown is not None:
        raise CommandError(errors.CONFIG_UNKNOWN_OPTION.format(unknown))
    if failure:
        raise CommandError(failure)
    return chosen


def _restore(config, chosen, old_values) -> None:
    # restoreBackupConfig(): set the old values back through the same setters.
    for (name, spec, _), old in zip(chosen, old_values):
        try:
            config.set_spec(spec, _split_value(spec, old))
        except ConfigError as exc:
            logger.warning(f"Failed restoring failed CONFIG SET command. Error setting "
                           f"{spec.name} to '{old}': {exc}")


@command("config set")
def config_set(client, argv):
    if len(argv) % 2:
        raise CommandError(errors.SYNTAX)
    server = client.server
    config = server.config
    chosen = _select(client, argv)
    old_values = [spec.format(config[spec.name]) for _, spec, _ in chosen]
    applies = []
    for done, (name, spec, value) in enumerate(chosen, 1):
        try:
            changed = config.set_spec(spec, _split_value(spec, value))
        except ConfigError as exc:
            _restore(config, chosen[:done], old_values)
            raise CommandError(errors.CONFIG_SET_FAILED.format(name, exc)) from None
        apply = spec.apply or server.hooks.config_apply.get(spec.name)
        if changed and apply is not None and apply not in [a for a, _ in applies]:
            applies.append((apply, spec))
    for apply, spec in applies:
        try:
            apply(server, config[spec.name])
        except ConfigError as exc:
            logger.warning(f"Failed applying new configuration. Possibly related to new "
                           f"{spec.name} setting. Restoring previous settings.")
            _restore(config, chosen, old_values)
            _reapply(server, config, applies)
            raise CommandError(errors.CONFIG_SET_FAILED.format(spec.name, exc)) from None
    server.apply_config()
    return OK


def _reapply(server, config, applies) -> None:
    for apply, spec in applies:
        try:
            apply(server, config[spec.name])
        except ConfigError as exc:
            logger.warning(f"Failed applying restored failed CONFIG SET command: {exc}")
    server.apply_config()


# -- CONFIG RESETSTAT ---------------------------------------------------------------------

def _reset_dataclass(stats) -> None:
    for f in dataclasses.fields(stats):
        if f.default is not dataclasses.MISSING:
            setattr(stats, f.name, f.default)
        elif f.default_factory is not dataclasses.MISSING:
            setattr(stats, f.name, f.default_factory())


def _reset_command_stats(specs) -> None:
    # resetCommandTableStats(): every command and its subcommands.
    for spec in specs:
        spec.calls = spec.usec = spec.rejected_calls = spec.failed_calls = 0


@command("config resetstat")
def config_resetstat(client, argv):
    server = client.server
    # resetServerStats() + resetErrorTableStats(): the stats counters (errorstats too).
    if dataclasses.is_dataclass(server.stats):
        _reset_dataclass(server.stats)
    _reset_command_stats(server.commands.every_spec())
    for hook in server.hooks.resetstat:
        hook()
    return OK


# -- CONFIG REWRITE -----------------------------------------------------------------------

@command("config rewrite")
def config_rewrite(client, argv):
    config = client.server.config
    if not config.config_file:
        raise CommandError(errors.CONFIG_NO_FILE)
    try:
        config.rewrite()
    except OSError as exc:
        logger.warning(f"CONFIG REWRITE failed: {exc.strerror}")
        raise CommandError(errors.CONFIG_REWRITE_FAILED.format(exc.strerror)) from None
    logger.warning("CONFIG REWRITE executed with success.")
    return OK
