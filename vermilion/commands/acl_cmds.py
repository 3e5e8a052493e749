"""ACL: the ACL command, the per-command permission check and the ACL LOG entries
(acl.c's aclCommand(), ACLCheckAllPerm(), addACLLogEntry()).

The users and their rule language are acl.py's; this module finds what a command
touches (its keys through the key specs, its channels through Redis's
commands_with_channels table) and answers with Redis's wording.
"""

from __future__ import annotations

import os
import time
from functools import cache

from .. import acl
from ..acl import (CATEGORIES, DENIAL_MESSAGES, DENIED_AUTH, DENIED_CHANNEL, DENIED_CMD,
                   DENIED_KEY, GENPASS_MAX_BITS, REASON_NAMES, Catalogue, CommandEntry,
                   RuleError)
from ..log import logger
from ..protocol import errors
from ..protocol.encode import OK, ReplySet
from ..protocol.errors import CommandError
from ..protocol.numbers import to_int
from ..scripting.convert import ScriptCheckError
from .client_cmds import client_info_line
from .introspection import acl_categories, has_keys, keys_or_unknown
from .registry import command
from .spec import make_spec, redis_metadata

NOPERM_TOPLEVEL = {
    DENIED_CMD: "NOPERM this user has no permissions to run the '%s' command",
    DENIED_KEY: "NOPERM this user has no permissions to access one of the keys used as arguments",
    DENIED_CHANNEL: ("NOPERM this user has no permissions to access one of the channels "
                     "used as arguments"),
}
NOPERM_EXEC_REASONS = {
    DENIED_CMD: "no permission to execute the command or subcommand",
    DENIED_KEY: "no permission to touch the specified keys",
    DENIED_CHANNEL: "no permission to access one of the channels used as arguments",
}
NOPERM_EXEC = ("NOPERM ACLs rules changed between the moment the transaction was "
               "accumulated and the EXEC call. This command is no longer allowed for the "
               "following reason: %s")
NO_ACLFILE = ("ERR This Redis instance is not configured to use an ACL file. You may want "
              "to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE "
              "(assuming you have a Redis configuration file set) in order to store users in "
              "the Redis configuration.")

ACL_HELP = [
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
]


@cache
def _entries() -> tuple:
    """Redis's whole command table (orig_commands) as ACL rules see it, served or not;
    Sentinel's own commands are not in a server's table."""
    meta = redis_metadata()
    top: dict[str, CommandEntry] = {}
    for key in sorted(meta):
        entry = meta[key]
        if "ONLY_SENTINEL" in entry.get("command_flags", ()):
            continue
        parts = key.lower().split(" ")
        spec = make_spec(key)
        node = CommandEntry("|".join(parts), acl_categories(spec))
        if len(parts) == 1:
            top[parts[0]] = node
        elif parts[0] in top:
            top[parts[0]].children.append(node)
    return tuple(top.values())


@cache
def build_catalogue() -> Catalogue:
    """Built once per process: it is Redis's table, the same for every server (and
    read-only once made)."""
    return Catalogue(list(_entries()))


def config_user_checker():
    """The 'user' line check for the config reader: ACLAppendUserForLoading() against
    a scratch user list; None, or (index of the argument Redis names, the error)."""
    scratch = acl.AccessControl(build_catalogue())

    def check(args: list[bytes]):
        try:
            scratch.queue_config_user(args[1:])
        except RuleError as exc:
            return exc.args[1] if len(exc.args) > 1 else 1, str(exc.args[0])
        return None

    return check


# -- the check ------------------------------------------------------------------------------

def command_keys(spec, argv: list[bytes]) -> list[tuple[int, int]]:
    """getKeysFromCommandWithSpecs() as [(position, READ|WRITE needed)]."""
    keys = acl.planned_keys(spec, argv)
    if keys is not None:
        return keys
    if not has_keys(spec):
        return []
    found = keys_or_unknown(spec, argv)
    if found is None:
        # Keys this server cannot locate in argv: refused unless every key is allowed.
        return [(1 if len(argv) > 1 else 0, acl.UNKNOWN_KEYS)]
    return [(pos, acl.key_needs(flags)) for pos, flags in found]


def command_channels(spec, argv: list[bytes]) -> list[tuple[int, bool]]:
    found = acl.CHANNEL_ARGS.get(spec.fullname)
    if found is None:
        return []
    is_pattern, start, count = found
    stop = len(argv) if count == -1 else min(start + count, len(argv))
    return [(pos, is_pattern) for pos in range(start, stop)]


def denial(user, spec, argv: list[bytes]) -> tuple[int, int]:
    """ACLCheckAllUserCommandPerm(): (OK or DENIED_*, position of the argument)."""
    if user.unrestricted:
        return acl.OK, 0
    return user.check(spec.fullname, spec.container is not None, spec.no_auth, argv,
                      command_keys(spec, argv), command_channels(spec, argv))


def log_denial(client, reason: int, context: str, argv: list[bytes], position: int = 0,
               username: bytes | None = None, obj: bytes | None = None) -> None:
    """addACLLogEntry() for client (a script's caller stands in for the Lua client)."""
    real = client
    if client.script:
        run = client.server.scripting.current if client.server.scripting else None
        real = run.caller if run is not None else client
    if obj is None:
        if reason == DENIED_CMD:
            obj = client.cmd.fullname.encode() if client.cmd is not None else argv[0]
        elif reason in (DENIED_KEY, DENIED_CHANNEL):
            obj = argv[position]
        else:
            obj = argv[0]
    info = client_info_line(real) if real.connected else ""
    client.server.acl.add_log(reason, context, obj,
                              username if username is not None else client.user.name, info)


def check_command(client, spec, argv: list[bytes]) -> None:
    """processCommand()'s ACL step: -NOPERM and an ACL LOG entry when refused (a
    script's command: scriptVerifyACL()'s error, logged in the "lua" context)."""
    reason, position = denial(client.user, spec, argv)
    if reason == acl.OK:
        return
    client.cmd = spec
    if client.script:
        log_denial(client, reason, "lua", argv, position)
        raise ScriptCheckError("ERR The user executing the script " + DENIAL_MESSAGES.get(
            reason, "lacking the permissions for the command"))
    context = "multi" if client.multi is not None else "toplevel"
    log_denial(client, reason, context, argv, position)
    message = NOPERM_TOPLEVEL.get(reason, "ERR no permission")
    raise CommandError(message % spec.fullname if reason == DENIED_CMD else message)


def check_queued(client, spec, argv: list[bytes]):
    """execCommand(): a queued command checked again; the error reply, or None."""
    reason, position = denial(client.user, spec, argv)
    if reason == acl.OK:
        return None
    client.cmd = spec
    log_denial(client, reason, "multi", argv, position)
    return CommandError(NOPERM_EXEC % NOPERM_EXEC_REASONS.get(reason, "no permission"))


def has_full_key_access(client, spec, argv: list[bytes]) -> bool:
    """ACLUserCheckCmdWithUnrestrictedKeyAccess(..., CMD_KEY_ACCESS) for SORT BY/GET."""
    user = client.user
    if user.unrestricted:
        return True
    keys, channels = command_keys(spec, argv), command_channels(spec, argv)
    for selector in user.selectors:
        result, _ = selector.check(spec.fullname, spec.container is not None, spec.no_auth,
                                   argv, keys, channels)
        if result == acl.OK and selector.has_all_keys(acl.READ):
            return True
    return False


# -- users changing under their clients ---------------------------------------------------

def refresh_sessions(server) -> None:
    """Every connection's fast-path flag after users changed."""
    for session in server.clients.values():
        session.refresh_access()


def disconnect_users(caller, users) -> None:
    """ACLFreeUserAndKillClients(): the clients of deleted users go (the caller after
    its reply), back to the default user unauthenticated meanwhile."""
    gone = {id(u) for u in users}
    server = caller.server
    for session in list(server.clients.values()):
        if id(session.user) in gone:
            session.user = server.acl.default_user
            session.authenticated = False
            session.refresh_access()
            if session is caller:
                session.close_after_reply = True
            else:
                session.close()


def kill_pubsub_clients_if_needed(server, new, user) -> None:
    """ACLKillPubsubClientsIfNeeded(): the user's subscribers whose channels the new
    rules no longer allow are disconnected."""
    if any(s.all_channels for s in new.selectors):
        return
    upcoming = [c for s in new.selectors for c in s.channels]
    old_all = any(s.all_channels for s in user.selectors)
    if not old_all and all(c in upcoming for s in user.selectors for c in s.channels):
        return

    def allowed(channel: bytes, is_pattern: bool) -> bool:
        return any((p == channel) if is_pattern else acl.stringmatch(p, channel)
                   for p in upcoming)

    for session in list(server.clients.values()):
        if session.user is not user or not session.subscriptions.total():
            continue
        subs = session.subscriptions
        if any(not allowed(p, True) for p in subs.patterns) \
                or any(not allowed(c, False) for c in subs.channels) \
                or any(not allowed(c, False) for c in subs.shard_channels):
            session.close()


# -- ACL ----------------------------------------------------------------------------------------

def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _syntax(argv: list[bytes]) -> str:
    # addReplySubcommandSyntaxError()
    return errors.SUBCOMMAND_SYNTAX.format(_text(argv[1])[:128], "ACL")


@command("acl setuser")
def acl_setuser(client, argv):
    server = client.server
    control = server.acl
    args = list(argv)
    # redactClientCommandArgument(): SLOWLOG keeps no rule (passwords among them).
    argv[2:] = [b"(redacted)"] * (len(argv) - 2)
    name = args[2]
    if acl.has_spaces(name):
        raise CommandError("ERR Usernames can't contain spaces or null characters")
    try:
        rules = acl.merge_selector_args(args[3:])
    except ValueError as exc:
        raise CommandError("ERR Unmatched parenthesis in acl selector starting at '%s'."
                           % _text(args[3 + exc.args[0]])) from None
    user = control.get(name)
    try:
        staged = control.staged(user, rules)
    except RuleError as exc:
        raise CommandError("ERR " + str(exc)) from None
    if user is not None:
        kill_pubsub_clients_if_needed(server, staged, user)
    control.set_user(name, staged)
    refresh_sessions(server)
    return OK


@command("acl deluser")
def acl_deluser(client, argv):
    server = client.server
    names = argv[2:]
    if b"default" in names:
        raise CommandError("ERR The 'default' user cannot be removed")
    users = server.acl.users
    deleted = [users.pop(name) for name in dict.fromkeys(names) if name in users]
    disconnect_users(client, deleted)
    return len(deleted)


def _selector_fields(selector) -> list:
    return [b"commands", selector.describe_commands().encode(),
            b"keys", selector.keys_string().encode("utf-8", "surrogateescape"),
            b"channels", selector.channels_string().encode("utf-8", "surrogateescape")]


def _pairs(fields: list) -> dict:
    return dict(zip(fields[::2], fields[1::2]))


@command("acl getuser")
def acl_getuser(client, argv):
    user = client.server.acl.get(argv[2])
    if user is None:
        return None
    reply = {b"flags": ReplySet(f.encode() for f in user.flags()),
             b"passwords": [p.encode() for p in user.passwords]}
    reply.update(_pairs(_selector_fields(user.root)))
    reply[b"selectors"] = [_pairs(_selector_fields(s)) for s in user.selectors[1:]]
    return reply


@command("acl list")
def acl_list(client, argv):
    return [b"user %s %s" % (u.name, u.describe().encode("utf-8", "surrogateescape"))
            for u in client.server.acl.sorted_users()]


@command("acl users")
def acl_users(client, argv):
    return [u.name for u in client.server.acl.sorted_users()]


@command("acl whoami")
def acl_whoami(client, argv):
    return client.user.name


def _aclfile(client) -> str:
    path = client.server.config["aclfile"]
    if not path:
        raise CommandError(NO_ACLFILE)
    return path


@command("acl load")
def acl_load(client, argv):
    server = client.server
    users, failure = server.acl.parse_file(_aclfile(client))
    if users is None:
        raise CommandError("ERR " + failure)
    gone = server.acl.replace_users(users)
    disconnect_users(client, gone)
    refresh_sessions(server)
    return OK


@command("acl save")
def acl_save(client, argv):
    path = _aclfile(client)
    if not save_file(client.server, path, logger):
        raise CommandError("ERR There was an error trying to save the ACLs. Please check "
                           "the server logs for more information")
    return OK


def save_file(server, path: str, logger) -> bool:
    """ACLSaveToFile(): a temp file renamed over the old one."""
    temp = "%s.tmp-%d-%d" % (path, os.getpid(), int(time.time() * 1000))
    try:
        with open(temp, "wb") as f:
            f.write(server.acl.save_text())
    except OSError as exc:
        logger.warning("Opening temp ACL file for ACL SAVE: %s" % exc.strerror)
        return False
    try:
        os.rename(temp, path)
    except OSError as exc:
        logger.warning("Renaming ACL file for ACL SAVE: %s" % exc.strerror)
        try:
            os.unlink(temp)
        except OSError:
            pass
        return False
    return True


@command("acl cat")
def acl_cat(client, argv):
    if len(argv) == 2:
        return [c.encode() for c in CATEGORIES]
    if len(argv) != 3:
        raise CommandError(_syntax(argv))
    category = argv[2].decode("utf-8", "replace").lower()
    if category not in CATEGORIES:
        raise CommandError("ERR Unknown category '%.128s'" % _text(argv[2]))
    return [name.encode() for name in client.server.acl.catalogue.in_category(category)]


@command("acl genpass")
def acl_genpass(client, argv):
    bits = 256
    if len(argv) == 3:
        bits = to_int(argv[2])
        if bits is None:
            raise CommandError(errors.NOT_INTEGER)
    if len(argv) > 3:
        raise CommandError(_syntax(argv))
    if bits <= 0 or bits > GENPASS_MAX_BITS:
        raise CommandError("ERR ACL GENPASS argument must be the number of bits for the "
                           "output password, a positive number up to %d" % GENPASS_MAX_BITS)
    return acl.generate_password(bits).encode()


@command("acl log")
def acl_log(client, argv):
    control = client.server.acl
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            control.log.clear()
            return OK
        count = to_int(argv[2])
        if count is None:
            raise CommandError(errors.NOT_INTEGER)
        count = max(count, 0)
    elif len(argv) > 3:
        raise CommandError(_syntax(argv))
    now = int(time.time() * 1000)
    return [{
        b"count": e.count,
        b"reason": REASON_NAMES.get(e.reason, "unknown").encode(),
        b"context": e.context.encode(),
        b"object": e.object,
        b"username": e.username,
        b"age-seconds": (now - e.ctime) / 1000,
        b"client-info": e.client_info.encode(),
    } for e in control.log[:count]]


@command("acl dryrun")
def acl_dryrun(client, argv):
    server = client.server
    user = server.acl.get(argv[2])
    if user is None:
        raise CommandError("ERR User '%s' not found" % _text(argv[2]))
    args = argv[3:]
    spec = server.commands.get(args[0].lower())
    if spec is not None and spec.subcommands and len(args) > 1:
        spec = spec.subcommands.get(args[1].lower())
    if spec is None:
        raise CommandError("ERR Command '%s' not found" % _text(args[0]))
    if not spec.check_arity(len(args)):
        raise CommandError("ERR wrong number of arguments for '%s' command" % spec.fullname)
    reason, position = denial(user, spec, args)
    if reason == DENIED_CMD:
        return ("This user has no permissions to run the '%s' command" % spec.fullname).encode()
    if reason == DENIED_KEY:
        return b"This user has no permissions to access the '%s' key" % args[position]
    if reason == DENIED_CHANNEL:
        return b"This user has no permissions to access the '%s' channel" % args[position]
    return OK


@command("acl help")
def acl_help(client, argv):
    return ACL_HELP


__all__ = ["DENIED_AUTH", "build_catalogue", "check_command", "check_queued",
           "log_denial", "refresh_sessions"]
