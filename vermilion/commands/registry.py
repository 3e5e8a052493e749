"""The command table: the @command decorator and lookup.

    @command("lpush")
    def lpush(client, argv): ...

registers a handler under Redis's metadata for LPUSH; ``@command("config get")``
registers a subcommand. Adding a command never touches the dispatcher.
"""

from ..protocol import errors
from .spec import CommandSpec, make_spec, redis_metadata

COMMANDS: dict[bytes, CommandSpec] = {}


def command(name: str, **overrides):
    def register(handler):
        spec = _spec_for(name)
        spec.handler = handler
        for attr, value in overrides.items():
            setattr(spec, attr, value)
        return handler

    return register


def _spec_for(name: str) -> CommandSpec:
    words = name.lower().split()
    top = words[0].encode()
    spec = COMMANDS.get(top)
    if spec is None:
        spec = COMMANDS[top] = make_spec(words[0].upper())
    if len(words) == 1:
        return spec
    sub = words[1].encode()
    child = spec.subcommands.get(sub)
    if child is None:
        child = spec.subcommands[sub] = make_spec(name.upper())
        child.container = spec
    return child


def lookup(argv: list[bytes]) -> CommandSpec:
    """The spec for argv, or a CommandError with Redis's wording (unknown command,
    unknown subcommand, wrong arity)."""
    spec = COMMANDS.get(argv[0].lower())
    if spec is None:
        raise errors.CommandError(errors.unknown_command(argv))
    if spec.subcommands:
        if len(argv) == 1:
            if spec.handler is not None:  # bare COMMAND is a command of its own
                return spec
            raise errors.CommandError(errors.wrong_arity(spec.fullname))
        child = spec.subcommands.get(argv[1].lower())
        if child is None:
            raise errors.CommandError(errors.unknown_subcommand(argv[1], spec.name))
        spec = child
    if not spec.check_arity(len(argv)):
        raise errors.CommandError(errors.wrong_arity(spec.fullname))
    return spec


def all_commands():
    """Every registered top-level command (with a handler or handled subcommands)."""
    return [s for s in COMMANDS.values() if s.handler or s.subcommands]


def metadata_entry(name: str) -> dict | None:
    return redis_metadata().get(name.upper())
