"""The config table and the redis.conf parser.

One ConfigSpec per directive gives parsing (file and command line), validation,
CONFIG GET/SET and CONFIG REWRITE, as config.c's standardConfig table does in Redis.
Values are stored typed (int, bool, str, or a parsed structure for multi-argument
directives) in Config.values; ``config["maxmemory"]`` reads them.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from .protocol.parser import split_args

MEMORY_UNITS = {
    "": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
    "g": 1000**3, "gb": 1024**3,
}


class ConfigError(Exception):
    """A value a directive cannot take; the message is Redis's wording."""


def parse_memory(text: str) -> int:
    """memtoull(): '2mb' → 2097152, '100k' → 100000; case-insensitive units."""
    lowered = text.lower()
    digits = lowered.rstrip("kmgb")
    unit = lowered[len(digits):]
    if unit not in MEMORY_UNITS or not digits or not digits.lstrip("-").isdigit():
        raise ConfigError("argument must be a memory value")
    return int(digits) * MEMORY_UNITS[unit]


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered == "yes":
        return True
    if lowered == "no":
        return False
    raise ConfigError("argument must be 'yes' or 'no'")


def format_bool(value: bool) -> str:
    return "yes" if value else "no"


@dataclass
class ConfigSpec:
    name: str
    parse: Callable[[list[str]], Any]  # arguments (already split) → typed value
    format: Callable[[Any], str]  # typed value → CONFIG GET / REWRITE text
    default: Any
    aliases: tuple[str, ...] = ()
    mutable: bool = True  # CONFIG SET allowed
    apply: Callable[[Any, Any], None] | None = None  # (server, value) after a change
    nargs: int = 1  # arguments in the file; -1 = one or more, 0 = any
    sensitive: bool = False  # never logged (requirepass, masterauth)


def _single(converter):
    def parse(args: list[str]):
        return converter(args[0])

    return parse


def bool_config(name, default, **kw) -> ConfigSpec:
    return ConfigSpec(name, _single(parse_bool), format_bool, default, **kw)


def int_config(name, default, lo=-(2**63), hi=2**63 - 1, memory=False, **kw) -> ConfigSpec:
    def convert(text: str) -> int:
        if memory:
            value = parse_memory(text)
        else:
            try:
                value = int(text)
            except ValueError:
                raise ConfigError("argument couldn't be parsed into an integer") from None
        if not lo <= value <= hi:
            raise ConfigError(f"argument must be between {lo} and {hi} inclusive")
        return value

    return ConfigSpec(name, _single(convert), str, default, **kw)


def memory_config(name, default, lo=0, hi=2**63 - 1, **kw) -> ConfigSpec:
    return int_config(name, default, lo, hi, memory=True, **kw)


def enum_config(name, default, choices, **kw) -> ConfigSpec:
    def convert(text: str) -> str:
        lowered = text.lower()
        if lowered not in choices:
            raise ConfigError("argument(s) must be one of the following: " + ", ".join(choices))
        return lowered

    return ConfigSpec(name, _single(convert), str, default, **kw)


def string_config(name, default="", **kw) -> ConfigSpec:
    return ConfigSpec(name, _single(lambda text: text), str, default, **kw)


def _parse_save(args: list[str]) -> list[tuple[int, int]]:
    if args == [""] or not args:
        return []
    if len(args) % 2:
        raise ConfigError("Invalid save parameters")
    pairs = []
    for i in range(0, len(args), 2):
        try:
            seconds, changes = int(args[i]), int(args[i + 1])
        except ValueError:
            raise ConfigError("Invalid save parameters") from None
        if seconds < 1 or changes < 0:
            raise ConfigError("Invalid save parameters")
        pairs.append((seconds, changes))
    return pairs


def _format_save(pairs) -> str:
    return " ".join(f"{s} {c}" for s, c in pairs)


def _parse_bind(args: list[str]) -> list[str]:
    if len(args) > 16:
        raise ConfigError("Too many bind addresses specified.")
    return list(args)


TABLE: list[ConfigSpec] = [
    int_config("port", 6379, 0, 65535, mutable=True),
    ConfigSpec("bind", _parse_bind, " ".join, ["*", "-::*"], nargs=-1),
    bool_config("protected-mode", True),
    int_config("databases", 16, 1, 2**31 - 1, mutable=False),
    int_config("maxclients", 10000, 1, 2**31 - 1),
    int_config("timeout", 0, 0, 2**31 - 1),
    int_config("tcp-keepalive", 300, 0, 2**31 - 1),
    int_config("tcp-backlog", 511, 0, 2**31 - 1, mutable=False),
    string_config("unixsocket", "", mutable=False),
    ConfigSpec("unixsocketperm", _single(lambda t: int(t, 8)), lambda v: "%o" % v if v else "0",
               0, mutable=False),
    string_config("requirepass", "", sensitive=True),
    enum_config("loglevel", "notice", ("debug", "verbose", "notice", "warning", "nothing")),
    string_config("logfile", "", mutable=False),
    string_config("pidfile", ""),
    bool_config("daemonize", False, mutable=False),
    int_config("hz", 10, 1, 500),
    bool_config("dynamic-hz", True),
    memory_config("maxmemory", 0),
    enum_config("maxmemory-policy", "noeviction", (
        "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
        "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction")),
    int_config("maxmemory-samples", 5, 1, 2**31 - 1),
    int_config("maxmemory-eviction-tenacity", 10, 0, 100),
    ConfigSpec("save", _parse_save, _format_save, [(3600, 1), (300, 100), (60, 10000)], nargs=0),
    string_config("dir", "", ),
    string_config("dbfilename", "dump.rdb"),
    bool_config("appendonly", False),
    memory_config("proto-max-bulk-len", 512 * 1024 * 1024, 1024 * 1024),
    memory_config("client-query-buffer-limit", 1024 * 1024 * 1024, 1024 * 1024),
    int_config("slowlog-log-slower-than", 10000, -1),
    int_config("slowlog-max-len", 128, 0, 2**63 - 1),
    int_config("latency-monitor-threshold", 0, 0),
    enum_config("enable-debug-command", "no", ("no", "yes", "local")),
    enum_config("enable-protected-configs", "no", ("no", "yes", "local")),
    string_config("appendfilename", "appendonly.aof", mutable=False),
    string_config("appenddirname", "appendonlydir", mutable=False),
    enum_config("appendfsync", "everysec", ("always", "everysec", "no")),
    bool_config("lazyfree-lazy-user-flush", False),
    bool_config("lazyfree-lazy-user-del", False),
    bool_config("active-expire-enabled", True),
]

BY_NAME: dict[str, ConfigSpec] = {}


def _index_table() -> None:
    BY_NAME.clear()
    for spec in TABLE:
        BY_NAME[spec.name] = spec
        for alias in spec.aliases:
            BY_NAME[alias] = spec


_index_table()


def register(*specs: ConfigSpec) -> None:
    """Add directives (used by the modules that own them)."""
    TABLE.extend(specs)
    _index_table()


@dataclass
class ConfigFileError(Exception):
    line_number: int
    line: str
    reason: str

    def report(self) -> str:
        return (
            "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n"
            f"Reading the configuration file, at line {self.line_number}\n"
            f">>> '{self.line}'\n{self.reason}\n"
        )


@dataclass
class Config:
    values: dict[str, Any] = field(default_factory=dict)
    config_file: str = ""  # absolute path, for CONFIG REWRITE
    server: Any = None

    def __post_init__(self):
        for spec in TABLE:
            self.values.setdefault(spec.name, spec.default)

    def __getitem__(self, name: str):
        return self.values[name]

    # -- loading -------------------------------------------------------------------

    def load_text(self, text: str, base_dir: str = ".", depth: int = 0) -> None:
        """Parse redis.conf text (loadServerConfigFromString)."""
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            words = split_args(line.encode())
            if words is None:
                raise ConfigFileError(number, line, "Unbalanced quotes in configuration line")
            if not words:
                continue
            args = [w.decode("utf-8", "surrogateescape") for w in words]
            name = args[0].lower()
            if name == "include" and len(args) == 2:
                self.load_file(os.path.join(base_dir, args[1]), depth + 1)
                continue
            try:
                self.set_from_args(name, args[1:])
            except ConfigError as exc:
                raise ConfigFileError(number, line, str(exc)) from None

    def load_file(self, path: str, depth: int = 0) -> None:
        if depth > 16:
            raise ConfigFileError(0, path, "Too many nested includes")
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        self.load_text(text, os.path.dirname(os.path.abspath(path)) if path != "-" else ".", depth)

    def set_from_args(self, name: str, args: list[str]) -> None:
        spec = BY_NAME.get(name)
        if spec is None or not _arg_count_ok(spec, args):
            raise ConfigError("Bad directive or wrong number of arguments")
        self.values[spec.name] = spec.parse(args)

    # -- CONFIG GET / SET ------------------------------------------------------------

    def get_matching(self, pattern: str) -> dict[str, str]:
        lowered = pattern.lower()
        if lowered in BY_NAME:
            spec = BY_NAME[lowered]
            return {lowered if lowered in (spec.name, *spec.aliases) else spec.name:
                    spec.format(self.values[spec.name])}
        out = {}
        for name, spec in BY_NAME.items():
            if fnmatch.fnmatchcase(name, lowered):
                out[name] = spec.format(self.values[spec.name])
        return out

    def format(self, name: str) -> str:
        spec = BY_NAME[name]
        return spec.format(self.values[spec.name])


def _arg_count_ok(spec: ConfigSpec, args: list[str]) -> bool:
    if spec.nargs == 0:
        return True
    if spec.nargs == -1:
        return len(args) >= 1
    return len(args) == spec.nargs
