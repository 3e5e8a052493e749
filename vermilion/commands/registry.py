"""The command table: the @command decorator and lookup.

    @command("lpush")
    def lpush(client, argv): ...

registers a handler under Redis's metadata for LPUSH; ``@command("config get")``
registers a subcommand; ``@command("set", rewrite=fn)`` (or ``@rewrite_for("set")``)
declares how it propagates. ``@command("debug reload", argc=(2, 5))`` registers a
subcommand Redis's table does not list (DEBUG's, which debugCommand() parses itself):
it has no metadata, so it says which argument counts it takes, and the container's
handler runs it through run_subcommand(). Adding a command never touches the dispatcher.
"""

import dataclasses

from ..protocol import errors
from .spec import CommandSpec, HandlerSubcommand, listed_containers, make_spec, redis_metadata

# The declared commands, filled by @command as the families are imported: the templates
# each server's CommandTable copies. Nothing changes them once the families are loaded.
REGISTRY: dict[bytes, CommandSpec] = {}


def command(name: str, argc: tuple[int, int | None] | None = None, **overrides):
    def register(handler):
        words = name.lower().split()
        if len(words) == 2 and words[0].upper() not in listed_containers():
            if argc is None or overrides:
                raise TypeError(f"{name!r} is not in Redis's table: give argc=(min, max) only")
            top = _spec_for(words[0])
            top.handler_subcommands[words[1].encode()] = HandlerSubcommand(words[1], handler, *argc)
            return handler
        if argc is not None:
            raise TypeError(f"{name!r}: its arity comes from Redis's table, not argc")
        spec = _spec_for(name)
        spec.handler = handler
        for attr, value in overrides.items():
            if attr not in _OVERRIDABLE:  # each server copies the declared fields only
                raise TypeError(f"{name!r}: {attr} is not a CommandSpec field")
            setattr(spec, attr, value)
        return handler

    return register


_OVERRIDABLE = frozenset(f.name for f in dataclasses.fields(CommandSpec))


def rewrite_for(*names: str):
    """Declare fn(db, argv, reply) -> records as what the named commands propagate,
    when that is not the command as sent (DESIGN rule 6). For rewrites that live beside
    the handlers below them; a rewrite defined first can go in @command(rewrite=...)."""
    def register(fn):
        for name in names:
            _spec_for(name).rewrite = fn
        return fn

    return register


def _spec_for(name: str) -> CommandSpec:
    words = name.lower().split()
    top = words[0].encode()
    spec = REGISTRY.get(top)
    if spec is None:
        spec = REGISTRY[top] = make_spec(words[0].upper())
    if len(words) == 1:
        return spec
    sub = words[1].encode()
    child = spec.subcommands.get(sub)
    if child is None:
        child = spec.subcommands[sub] = make_spec(name.upper())
        child.container = spec
    return child


def subcommand_runner(name: str):
    """run_subcommand() bound to container `name` (resolved now, so that a later
    rename-command, which moves the spec to another name, does not lose it)."""
    container = _spec_for(name)
    return lambda client, argv: run_subcommand(container, client, argv)


def run_subcommand(container: CommandSpec, client, argv: list[bytes]):
    """Run the handler subcommand argv[1] of container. An unknown name and a wrong
    argument count get the same reply, addReplySubcommandSyntaxError()'s."""
    sub = container.handler_subcommands.get(argv[1].lower())
    if sub is None or not sub.check_argc(len(argv)):
        raise errors.CommandError(errors.SUBCOMMAND_SYNTAX.format(
            argv[1].decode("utf-8", "replace"), container.name.upper()))
    return sub.handler(client, argv)


class CommandTable:
    """One server's commands (server.commands): copies of the declared specs, so their
    statistics (INFO commandstats) are this server's, under the names rename-command
    gave them (Redis renames in its live table, server.commands)."""

    # Spellings clients used ("GET", "get"), cached for one dict hit per command instead
    # of lower() + hit; bounded, so odd capitalisations cannot grow it without limit.
    MAX_SPELLINGS = 4096

    def __init__(self, renames=()):
        self.commands: dict[bytes, CommandSpec] = {
            name: _copy_spec(spec) for name, spec in REGISTRY.items()}
        self.spellings: dict[bytes, CommandSpec] = {}
        for spec in self.commands.values():
            spec.set_lean()
        for old, new in renames:
            self.rename(old, new)

    def get(self, name: bytes) -> CommandSpec | None:
        """The top-level spec for a lower-case name."""
        return self.commands.get(name)

    def spelled(self, name: bytes) -> CommandSpec | None:
        """The top-level spec for a name as a client spelled it (the dispatcher's)."""
        spec = self.commands.get(name.lower())
        if spec is not None and len(self.spellings) < self.MAX_SPELLINGS:
            self.spellings[name] = spec
        return spec

    def lookup(self, argv: list[bytes]) -> CommandSpec:
        """The spec for argv, or a CommandError with Redis's wording (unknown command,
        unknown subcommand, wrong arity)."""
        spec = self.commands.get(argv[0].lower())
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

    @staticmethod
    def noscript_in_redis(argv: list[bytes]) -> bool:
        """Redis refuses the command in scripts (its table flags it NOSCRIPT), whether or
        not it is served here: an unserved one then gets that refusal, not "unknown"."""
        meta = redis_metadata()
        name = argv[0].decode("utf-8", "replace").upper()
        entry = meta.get(name)
        if len(argv) > 1:  # a subcommand has its own entry ("CLUSTER RESET")
            entry = meta.get(name + " " + argv[1].decode("utf-8", "replace").upper(), entry)
        return entry is not None and "NOSCRIPT" in entry.get("command_flags", [])

    def rename(self, old: bytes, new: bytes) -> None:
        """rename-command (checked as the config was read): an empty new name removes it."""
        spec = self.commands.pop(old)
        if new:
            self.commands[new] = spec
        self.spellings.clear()

    def all_commands(self) -> list[CommandSpec]:
        """Every served top-level command (with a handler or handled subcommands)."""
        return [s for s in self.commands.values() if s.handler or s.subcommands]

    def every_spec(self):
        """Every spec with statistics of its own: commands and their subcommands."""
        for spec in self.commands.values():
            yield spec
            yield from spec.subcommands.values()


def _copy_spec(spec: CommandSpec) -> CommandSpec:
    # Handlers, metadata and flags are shared; counters and the subcommand tree are the
    # copy's. Made through the constructor, not copy.copy(): an object copy.copy() builds
    # has its attributes in a materialised dict, which CPython reads slower than those
    # __init__ sets — 0.5 µs more per command on this hot object.
    copied = dataclasses.replace(spec, subcommands={})
    for name, child in spec.subcommands.items():
        copied.subcommands[name] = dataclasses.replace(child, container=copied)
    return copied


def declared_names() -> set[bytes]:
    """The names rename-command may use, as declared (before any server renames)."""
    return set(REGISTRY)


def metadata_entry(name: str) -> dict | None:
    return redis_metadata().get(name.upper())
