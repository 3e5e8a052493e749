"""MODULE and LOLWUT (module.c's moduleCommand(), lolwut.c): clients call them to
learn what a server is. Vermilion loads no Redis modules (they are C shared objects
for Redis's own process), so the list is empty and loading fails as a load does."""

import os

from .. import REDIS_VERSION
from ..log import logger
from ..protocol.encode import Verbatim
from ..protocol.errors import CommandError
from ..protocol.numbers import to_int
from ..protocol import errors
from .debug import allow_protected_action
from .registry import command

LOAD_FAILED = "ERR Error loading the extension. Please check the server logs."
MODULE_DENIED = (
    "ERR MODULE command not allowed. If the enable-module-command option is set to "
    "\"local\", you can run it from a local connection, otherwise you need to set this "
    "option in the configuration file, and then restart the server.")


def _check_allowed(client) -> None:
    # processCommand(): the PROTECTED subcommands obey enable-module-command.
    if not allow_protected_action(client, "enable-module-command"):
        raise CommandError(MODULE_DENIED)

MODULE_HELP = [
    "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
    "HELP",
    "    Prints this help.",
]


@command("module list")
def module_list(client, argv):
    return []


def _load_failed(path: bytes):
    text = path.decode("utf-8", "surrogateescape")
    # moduleLoad()'s log line for a file dlopen() cannot use.
    reason = ("Vermilion cannot load Redis modules" if os.path.exists(text)
              else f"{text}: cannot open shared object file: No such file or directory")
    logger.warning(f"Module {text} failed to load: {reason}")
    return CommandError(LOAD_FAILED)


@command("module load")
def module_load(client, argv):
    _check_allowed(client)
    raise _load_failed(argv[2])


@command("module loadex")
def module_loadex(client, argv):
    _check_allowed(client)
    raise _load_failed(argv[2])


@command("module unload")
def module_unload(client, argv):
    _check_allowed(client)
    raise CommandError("ERR Error unloading module: no such module with that name")


@command("module help")
def module_help(client, argv):
    return MODULE_HELP


@command("lolwut")
def lolwut(client, argv):
    """lolwutCommand(): VERSION 5 and 6 draw generative art in Redis; Vermilion answers
    every version as Redis 7.0 answers its own (lolwutUnstableCommand())."""
    if len(argv) >= 3 and argv[1].lower() == b"version":
        if to_int(argv[2]) is None:
            raise CommandError(errors.NOT_INTEGER)
    return Verbatim(b"Redis ver. " + REDIS_VERSION.encode() + b"\n")
