"""CommandSpec: one entry of the command table.

The metadata (arity, flags, key specs, docs) is Redis 7.0.15's own, read from the
bundled redis_commands.json; Vermilion adds only the handler. COMMAND INFO/DOCS,
the arity check and the flag checks (write, denyoom, noauth...) all read this one table.
"""

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Callable


@dataclass(eq=False)
class CommandSpec:
    name: str  # lower case: "get", "get" for CONFIG GET's sub-part
    fullname: str  # "get", "config|get"
    arity: int
    flags: frozenset[str]
    group: str
    since: str
    meta: dict  # the raw JSON entry (summary, arguments, key_specs, history...)
    handler: Callable | None = None
    container: "CommandSpec | None" = None
    subcommands: dict[bytes, "CommandSpec"] = field(default_factory=dict)
    # Subcommands Redis's table does not list (DEBUG's): the container's handler runs
    # them, so COMMAND, the statistics and CLIENT LIST's cmd= see only the container.
    handler_subcommands: dict[bytes, "HandlerSubcommand"] = field(default_factory=dict)
    # Legacy (first, last, step) key positions derived from key specs as Redis does.
    first_key: int = 0
    last_key: int = 0
    key_step: int = 0
    movable_keys: bool = False
    # propagate.py: fn(db, argv, reply) -> the deterministic records of an executed
    # write (SET EX → SET PXAT...); None logs the command as it was sent.
    rewrite: Callable | None = None
    # Shown to MONITOR after the commands it ran, not before (EXEC, as Redis's call()).
    monitor_after: bool = False
    # Statistics for INFO commandstats.
    calls: int = 0
    usec: int = 0
    rejected_calls: int = 0
    failed_calls: int = 0

    def __post_init__(self):
        self.is_write = "write" in self.flags
        self.denyoom = "denyoom" in self.flags
        self.no_auth = "no_auth" in self.flags
        self.allow_loading = "loading" in self.flags
        # The argument counts Connection._run's lean path takes this command with (see
        # set_lean()): none until the server's table says so.
        self.lean_min, self.lean_max = _NEVER, 0
        _derive_legacy_keys(self)

    def set_lean(self) -> None:
        """Mark a command the lean path may run (Connection._run): a handler of its
        own, no subcommands, and nothing it can do changes what that path hoists out of
        its loop (gates, checks, MONITOR, pause, reply mode, propagation sinks): the
        data types' commands but not the blocking or administrative ones,
        LEAN_COMMANDS and LEAN_SCRIPTS."""
        if self.fullname in LEAN_SCRIPTS or (
                (self.group in LEAN_GROUPS or self.fullname in LEAN_COMMANDS)
                and self.handler is not None and not self.subcommands
                and not self.flags & _NOT_LEAN):
            a = self.arity
            self.lean_min, self.lean_max = (a, a) if a > 0 else (-a, _NEVER)

    def check_arity(self, argc: int) -> bool:
        a = self.arity
        return argc == a if a > 0 else argc >= -a

    def key_positions(self, argc: int) -> list[int]:
        """Indexes of the key arguments for the legacy range (movable keys aside)."""
        if not self.first_key:
            return []
        last = self.last_key if self.last_key >= 0 else argc + self.last_key
        return list(range(self.first_key, min(last, argc - 1) + 1, self.key_step or 1))


_NEVER = 1 << 62
LEAN_GROUPS = frozenset({"string", "list", "hash", "set", "sorted_set", "stream", "bitmap",
                         "hyperloglog", "geo"})
# Outside those groups, commands as plain: their reply is all they do (PING is what
# health checks and connection pools send).
LEAN_COMMANDS = frozenset({"ping", "echo"})
# Scripts too, though flagged noscript and skip_monitor: noscript only refuses them
# inside a script, whose calls never take the lean path; they feed MONITOR themselves
# (and the lean path runs only while nobody monitors); and what their commands can
# change is the script session's own state (a script may call no command that
# changes a connection's or what the lean path hoists: those are all noscript). A
# script that goes busy returns NO_REPLY, and the busy check it installs is in the
# server's check list, which the lean path reads live.
LEAN_SCRIPTS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})
_NOT_LEAN = frozenset({"blocking", "admin", "noscript", "no_multi", "skip_monitor",
                       "skip_slowlog", "pubsub"})


@dataclass(eq=False)
class HandlerSubcommand:
    """A subcommand its container's handler dispatches on argv[1] (debugCommand()'s
    strcasecmp chain): no metadata of its own, only a handler and the argument counts
    it accepts, min_argc..max_argc (None: no upper bound), argv[0] included."""

    name: str
    handler: Callable
    min_argc: int
    max_argc: int | None

    def check_argc(self, argc: int) -> bool:
        return argc >= self.min_argc and (self.max_argc is None or argc <= self.max_argc)


def _derive_legacy_keys(spec: CommandSpec) -> None:
    # server.c populateCommandLegacyRangeSpec().
    specs = spec.meta.get("key_specs") or []
    if spec.meta.get("get_keys_function"):
        spec.movable_keys = True
    if not specs:
        return
    first, last, prev_last = None, 0, 0
    for ks in specs:
        bs, fk = ks.get("begin_search", {}), ks.get("find_keys", {})
        if "index" not in bs or "range" not in fk:
            spec.movable_keys = True
            continue
        pos, rng = bs["index"]["pos"], fk["range"]
        if len(specs) > 1 and (rng["step"] != 1 or (prev_last and prev_last != pos - 1)):
            spec.movable_keys = True
            continue
        if "INCOMPLETE" in ks.get("flags", []):
            spec.movable_keys = True
        if len(specs) == 1:
            spec.first_key = pos
            spec.last_key = rng["lastkey"] + pos if rng["lastkey"] >= 0 else rng["lastkey"]
            spec.key_step = rng["step"]
            return
        first = pos if first is None else min(first, pos)
        abs_last = rng["lastkey"] + pos if rng["lastkey"] >= 0 else rng["lastkey"]
        # Redis compares as unsigned, so a negative (relative-to-end) last key wins.
        last = abs_last if (abs_last & 0xFFFFFFFF) > (last & 0xFFFFFFFF) else last
        prev_last = last
    if first is not None:
        spec.first_key, spec.last_key, spec.key_step = first, last, 1


@cache
def redis_metadata() -> dict:
    text = resources.files("vermilion.commands").joinpath("redis_commands.json").read_text()
    return json.loads(text)


@cache
def listed_containers() -> frozenset[str]:
    """Commands whose subcommands Redis's table lists ('CONFIG' for 'CONFIG GET')."""
    return frozenset(key.split(" ")[0] for key in redis_metadata() if " " in key)


def make_spec(full_key: str) -> CommandSpec:
    """A spec from the metadata entry 'GET' or 'CONFIG GET'."""
    meta = redis_metadata()[full_key]
    parts = full_key.lower().split(" ")
    return CommandSpec(
        name=parts[-1],
        fullname="|".join(parts),
        arity=meta["arity"],
        flags=frozenset(f.lower() for f in meta.get("command_flags", [])),
        group=meta.get("group", ""),
        since=meta.get("since", ""),
        meta=meta,
    )
