"""COMMAND and its subcommands: the command table as Redis 7.0 reports it.

Everything here is derived from the one command table (Redis's own JSON metadata plus
our handlers), following server.c's addReplyCommandInfo / addReplyCommandDocs and
db.c's getKeysUsingKeySpecs. Only commands with a handler are reported: a container
(CONFIG, CLIENT...) appears when at least one of its subcommands is handled, with just
those subcommands. The replies are static, so they are built once per spec and cached.
"""

import fnmatch

from ..protocol import errors
from ..protocol.encode import ReplySet
from ..protocol.errors import CommandError
from ..protocol.parser import c_atoi
from ..protocol.numbers import to_int
from .registry import command

# addReplyCommandFlags(): the reply lists flags in this order (sentinel, only_sentinel
# and protected are hidden on purpose).
FLAG_ORDER = (
    "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking",
    "loading", "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth",
    "no_mandatory_keys", "no_async_loading", "no_multi", "movablekeys",
    "allow_busy",
)

# ACLCommandCategories[] order in acl.c.
ACL_ORDER = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
    "dangerous", "connection", "transaction", "scripting",
)

# addReplyFlagsForKeyArgs(): (JSON name, reply text) in reply order.
KEY_FLAG_ORDER = (
    ("RO", "RO"), ("RW", "RW"), ("OW", "OW"), ("RM", "RM"), ("ACCESS", "access"),
    ("UPDATE", "update"), ("INSERT", "insert"), ("DELETE", "delete"),
    ("NOT_KEY", "not_key"), ("INCOMPLETE", "incomplete"),
    ("VARIABLE_FLAGS", "variable_flags"),
)

_ARG_FLAGS = ("optional", "multiple", "multiple_token")

HELP = [
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
]


# -- derived metadata ------------------------------------------------------------------

def is_movable(spec) -> bool:
    """CMD_MOVABLE_KEYS as populateCommandMovableKeys() and the legacy range derivation
    set it: a key spec that is not a plain index + range, an incomplete one, or several
    specs that don't form one contiguous step-1 range. A getkeys function alone (SET,
    BITFIELD) does not make the keys movable."""
    specs = spec.meta.get("key_specs") or ()
    prev_last = 0
    for ks in specs:
        bs, fk = ks["begin_search"], ks["find_keys"]
        if "index" not in bs or "range" not in fk or "INCOMPLETE" in ks.get("flags", ()):
            return True
        pos, rng = bs["index"]["pos"], fk["range"]
        if len(specs) > 1 and (rng["step"] != 1 or (prev_last and prev_last != pos - 1)):
            return True
        prev_last = rng["lastkey"] + pos if rng["lastkey"] >= 0 else rng["lastkey"]
    return False


def command_flags(spec) -> list[str]:
    flags = set(spec.flags)
    if is_movable(spec):
        flags.add("movablekeys")
    return [f for f in FLAG_ORDER if f in flags]


def acl_categories(spec) -> list[str]:
    """The JSON categories plus setImplicitACLCategories()'s additions."""
    cats = {c.lower() for c in spec.meta.get("acl_categories", ())}
    flags = spec.flags
    if "write" in flags:
        cats.add("write")
    if "readonly" in flags and "scripting" not in cats:
        cats.add("read")
    if "admin" in flags:
        cats.update(("admin", "dangerous"))
    if "pubsub" in flags:
        cats.add("pubsub")
    if "fast" in flags:
        cats.add("fast")
    if "blocking" in flags:
        cats.add("blocking")
    if "fast" not in cats:
        cats.add("slow")
    return [c for c in ACL_ORDER if c in cats]


def handled_subcommands(spec) -> list:
    return [s for s in spec.subcommands.values() if s.handler is not None]


def key_flag_names(flags) -> list[str]:
    return [text for name, text in KEY_FLAG_ORDER if name in flags]


# -- COMMAND INFO -------------------------------------------------------------------------

_INFO_CACHE: dict = {}
_DOCS_CACHE: dict = {}


def info_reply(spec) -> list:
    cached = _INFO_CACHE.get(spec)
    if cached is None:
        cached = _INFO_CACHE[spec] = _build_info(spec)
    return cached


def _build_info(spec) -> list:
    legacy = (0, 0, 0) if spec.subcommands else (spec.first_key, spec.last_key, spec.key_step)
    return [
        spec.fullname.encode(),
        spec.arity,
        ReplySet(command_flags(spec)),
        *legacy,
        ReplySet("@" + c for c in acl_categories(spec)),
        ReplySet(t.lower().encode() for t in spec.meta.get("command_tips", ())),
        # Key specs and subcommands are sets too in RESP3 (addReplySetLen).
        ReplySet(_key_spec_reply(ks) for ks in spec.meta.get("key_specs") or ()),
        ReplySet(info_reply(sub) for sub in handled_subcommands(spec)),
    ]


def _key_spec_reply(ks: dict) -> dict:
    out = {}
    if ks.get("notes"):
        out[b"notes"] = ks["notes"].encode()
    out[b"flags"] = ReplySet(key_flag_names(ks.get("flags", ())))
    out[b"begin_search"] = _begin_search_reply(ks["begin_search"])
    out[b"find_keys"] = _find_keys_reply(ks["find_keys"])
    return out


def _begin_search_reply(bs: dict) -> dict:
    if "index" in bs:
        return {b"type": b"index", b"spec": {b"index": bs["index"]["pos"]}}
    if "keyword" in bs:
        kw = bs["keyword"]
        return {b"type": b"keyword",
                b"spec": {b"keyword": kw["keyword"].encode(), b"startfrom": kw["startfrom"]}}
    return {b"type": b"unknown", b"spec": {}}


def _find_keys_reply(fk: dict) -> dict:
    if "range" in fk:
        rng = fk["range"]
        return {b"type": b"range", b"spec": {
            b"lastkey": rng["lastkey"], b"keystep": rng["step"], b"limit": rng["limit"]}}
    if "keynum" in fk:
        kn = fk["keynum"]
        return {b"type": b"keynum", b"spec": {
            b"keynumidx": kn["keynumidx"], b"firstkey": kn["firstkey"], b"keystep": kn["step"]}}
    return {b"type": b"unknown", b"spec": {}}


# -- COMMAND DOCS ------------------------------------------------------------------------

def docs_reply(spec) -> dict:
    cached = _DOCS_CACHE.get(spec)
    if cached is None:
        cached = _DOCS_CACHE[spec] = _build_docs(spec)
    return cached


def _build_docs(spec) -> dict:
    # addReplyCommandDocs(): the keys appear only when set, in this order.
    meta = spec.meta
    out = {}
    if meta.get("summary"):
        out[b"summary"] = meta["summary"].encode()
    if meta.get("since"):
        out[b"since"] = meta["since"].encode()
    # COMMAND_GROUP_STR spells the JSON's sorted_set as "sorted-set".
    out[b"group"] = meta.get("group", "").replace("_", "-").encode()
    if meta.get("complexity"):
        out[b"complexity"] = meta["complexity"].encode()
    if meta.get("doc_flags"):
        out[b"doc_flags"] = ReplySet(f.lower() for f in meta["doc_flags"])
    if meta.get("deprecated_since"):
        out[b"deprecated_since"] = meta["deprecated_since"].encode()
    if meta.get("replaced_by"):
        out[b"replaced_by"] = meta["replaced_by"].encode()
    if meta.get("history"):
        out[b"history"] = ReplySet([v.encode(), t.encode()] for v, t in meta["history"])
    if meta.get("arguments"):
        out[b"arguments"] = [_arg_reply(a) for a in meta["arguments"]]
    subs = handled_subcommands(spec)
    if subs:
        out[b"subcommands"] = {s.fullname.encode(): docs_reply(s) for s in subs}
    return out


def _arg_reply(arg: dict) -> dict:
    # addReplyCommandArgList()
    out = {b"name": arg["name"].lower().encode(), b"type": arg["type"].encode()}
    if "key_spec_index" in arg:
        out[b"key_spec_index"] = arg["key_spec_index"]
    if arg.get("token"):
        # The JSON spells MIGRATE's empty-string token as '""'; the binary has "".
        token = arg["token"].upper()
        out[b"token"] = b"" if token == '""' else token.encode()
    for field in ("summary", "since", "deprecated_since"):
        if arg.get(field):
            out[field.encode()] = arg[field].encode()
    flags = [f for f in _ARG_FLAGS if arg.get(f)]
    if flags:
        out[b"flags"] = ReplySet(flags)
    if arg["type"] in ("oneof", "block"):
        out[b"arguments"] = [_arg_reply(a) for a in arg.get("arguments", ())]
    return out


# -- lookups -------------------------------------------------------------------------------

def lookup_by_name(table, name: bytes):
    """lookupCommandBySds(): 'get' or 'config|get'; only handled commands count."""
    parts = name.lower().split(b"|")
    if len(parts) > 2:
        return None
    spec = table.get(parts[0])
    if spec is None:
        return None
    if len(parts) == 2:
        sub = spec.subcommands.get(parts[1])
        return sub if sub is not None and sub.handler is not None else None
    return spec if spec.handler is not None or handled_subcommands(spec) else None


def lookup_by_argv(table, argv: list[bytes]):
    """lookupCommand(): the container's subcommand is resolved from the next word."""
    spec = table.get(argv[0].lower())
    if spec is None:
        return None
    if len(argv) == 1 or not spec.subcommands:
        return spec if spec.handler is not None or handled_subcommands(spec) else None
    sub = spec.subcommands.get(argv[1].lower())
    return sub if sub is not None and sub.handler is not None else None


def every_spec(table):
    """All handled commands and subcommands (COMMAND LIST)."""
    for spec in table.all_commands():
        yield spec
        yield from handled_subcommands(spec)


# -- handlers ------------------------------------------------------------------------------

@command("command")
def command_all(client, argv):
    return [info_reply(s) for s in client.server.commands.all_commands()]


@command("command count")
def command_count(client, argv):
    return len(client.server.commands.all_commands())


@command("command info")
def command_info(client, argv):
    if len(argv) == 2:
        return [info_reply(s) for s in client.server.commands.all_commands()]
    out = []
    for name in argv[2:]:
        spec = lookup_by_name(client.server.commands, name)
        out.append(None if spec is None else info_reply(spec))
    return out


@command("command docs")
def command_docs(client, argv):
    if len(argv) == 2:
        return {s.fullname.encode(): docs_reply(s) for s in client.server.commands.all_commands()}
    out = {}
    for name in argv[2:]:
        spec = lookup_by_name(client.server.commands, name)
        if spec is not None:
            out[spec.fullname.encode()] = docs_reply(spec)
    return out


def _filter_for(kind: bytes, value: bytes):
    kind = kind.lower()
    if kind == b"module":
        return lambda spec: False  # no modules are ever loaded
    if kind == b"aclcat":
        category = value.decode("utf-8", "replace").lower()
        return lambda spec: category in acl_categories(spec)
    if kind == b"pattern":
        pattern = value.decode("utf-8", "replace").lower()
        return lambda spec: fnmatch.fnmatchcase(spec.fullname, pattern)
    raise CommandError(errors.SYNTAX)


@command("command list")
def command_list(client, argv):
    if len(argv) == 2:
        keep = None
    elif len(argv) == 5 and argv[2].lower() == b"filterby":
        keep = _filter_for(argv[3], argv[4])
    else:
        raise CommandError(errors.SYNTAX)
    return [s.fullname.encode() for s in every_spec(client.server.commands)
            if keep is None or keep(s)]


@command("command help")
def command_help(client, argv):
    return HELP


@command("command getkeys")
def command_getkeys(client, argv):
    return [argv[2 + pos] for pos, _ in _getkeys(client.server.commands, argv[2:])]


@command("command getkeysandflags")
def command_getkeysandflags(client, argv):
    return [[argv[2 + pos], ReplySet(key_flag_names(flags))]
            for pos, flags in _getkeys(client.server.commands, argv[2:])]


def _getkeys(table, args: list[bytes]) -> list[tuple[int, tuple]]:
    """getKeysSubcommandImpl(): [(position, key spec flags)] or Redis's error."""
    spec = lookup_by_argv(table, args)
    if spec is None:
        raise CommandError("ERR Invalid command specified")
    return _getkeys_for(spec, args)


def _getkeys_for(spec, args: list[bytes]) -> list[tuple[int, tuple]]:
    if not has_keys(spec):
        raise CommandError("ERR The command has no key arguments")
    if not spec.check_arity(len(args)):
        raise CommandError("ERR Invalid number of arguments specified for command")
    keys = keys_from_argv(spec, args)
    if not keys and "no_mandatory_keys" not in spec.flags:
        raise CommandError("ERR Invalid arguments specified for command")
    return keys


def has_keys(spec) -> bool:
    # doesCommandHaveKeys(): a getkeys function, or a key spec that is a real key.
    specs = spec.meta.get("key_specs") or ()
    return bool(spec.meta.get("get_keys_function")) or any(
        "NOT_KEY" not in ks.get("flags", ()) for ks in specs)


def keys_from_argv(spec, args: list[bytes]) -> list[tuple[int, tuple]]:
    """getKeysFromCommandWithSpecs(): key specs first, unless one has VARIABLE_FLAGS or
    they can't resolve this argv; then the command's own getkeys function."""
    keys = keys_or_unknown(spec, args)
    return [] if keys is None else keys


def keys_or_unknown(spec, args: list[bytes]):
    """keys_from_argv(), or None when the key specs cannot resolve this argv and there
    is no getkeys function here to ask (ACL must then refuse, not pass)."""
    specs = spec.meta.get("key_specs") or ()
    variable = any("VARIABLE_FLAGS" in ks.get("flags", ()) for ks in specs)
    if any("NOT_KEY" not in ks.get("flags", ()) for ks in specs) and not variable:
        keys = _keys_using_specs(specs, args)
        if keys is not None:
            return keys
    name = spec.meta.get("get_keys_function")
    native = _NATIVE_GETKEYS.get(name)
    if native is not None:
        return native(args)
    return None if name else []


def _keys_using_specs(specs, args: list[bytes]):
    """getKeysUsingKeySpecs(); None where a spec can't be resolved (invalid_spec)."""
    argc = len(args)
    out = []
    for ks in specs:
        if "NOT_KEY" in ks.get("flags", ()):
            continue  # a 'fake' key (e.g. a channel name)
        bs, fk = ks["begin_search"], ks["find_keys"]
        if "index" in bs:
            first = bs["index"]["pos"]
        elif "keyword" in bs:
            first = _keyword_position(bs["keyword"], args)
            if not first:
                continue
        else:
            return None
        if "range" in fk:
            rng = fk["range"]
            step = rng["step"]
            if rng["lastkey"] >= 0:
                last = first + rng["lastkey"]
            elif not rng["limit"]:
                last = argc + rng["lastkey"]
            else:
                last = first + ((argc - first) // rng["limit"] + rng["lastkey"])
        elif "keynum" in fk:
            kn = fk["keynum"]
            step = kn["step"]
            if kn["keynumidx"] >= argc - first:
                return None
            numkeys = to_int(args[first + kn["keynumidx"]])
            if numkeys is None or numkeys < 0:
                return None
            first += kn["firstkey"]
            last = first + numkeys - 1
        else:
            return None
        if last >= argc or last < first or first >= argc:
            return None
        flags = tuple(ks.get("flags", ()))
        out.extend((i, flags) for i in range(first, last + 1, step))
        if "INCOMPLETE" in flags:
            return None  # the command's own getkeys function knows better
    return out


def _keyword_position(kw: dict, args: list[bytes]) -> int:
    argc = len(args)
    start = kw["startfrom"]
    start_index = start if start > 0 else argc + start
    end_index = argc - 1 if start > 0 else 1
    keyword = kw["keyword"].encode().lower()
    i = start_index
    while True:
        if i >= argc or i < 1:
            return 0
        if args[i].lower() == keyword:
            return i + 1
        if i == end_index:
            return 0
        i = i + 1 if start_index <= end_index else i - 1


def _sort_keys(args: list[bytes], read_only: bool = False):
    # sortGetKeys(): the key, plus the STORE destination; LIMIT takes 2 args, GET/BY 1.
    keys = [(1, ("RO", "ACCESS"))]
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    store = None
    while i < len(args):
        word = args[i].lower()
        if word in skip:
            i += skip[word]
        elif word == b"store" and i + 1 < len(args) and not read_only:
            store = i + 1
            i += 1
        i += 1
    if store is not None:
        keys.append((store, ("OW", "UPDATE")))
    return keys


def _set_keys(args: list[bytes]):
    # setGetKeys(): GET makes the key read too.
    if any(a.lower() == b"get" for a in args[3:]):
        return [(1, ("RW", "ACCESS", "UPDATE"))]
    return [(1, ("OW", "UPDATE"))]


def _bitfield_keys(args: list[bytes]):
    # bitfieldGetKeys(): read-only unless a SET or INCRBY subcommand is present.
    writes = any(a.lower() in (b"set", b"incrby") for a in args[2:])
    return [(1, ("RW", "ACCESS", "UPDATE") if writes else ("RO", "ACCESS"))]


def _migrate_keys(args: list[bytes]):
    # migrateGetKeys(): the key at 3, or everything after KEYS (when the key is "").
    first, num = 3, 1
    skip = {b"copy": 0, b"replace": 0, b"auth": 1, b"auth2": 2}
    i = 6
    while i < len(args):
        word = args[i].lower()
        if word == b"keys":
            if args[3]:
                return []
            first, num = i + 1, len(args) - i - 1
            break
        i += skip.get(word, 0) + 1
    return [(p, ("RW", "ACCESS", "DELETE")) for p in range(first, first + num)]


def _generic_keys(store: int, count_at: int, first: int, step: int = 1):
    """genericGetKeys(): numkeys at count_at, keys from first; none when the count
    is out of range (the command answers a syntax error); flags are not known."""
    def keys(args: list[bytes]) -> list[tuple[int, tuple]]:
        num = c_atoi(args[count_at]) if count_at < len(args) else 0
        if num < 1 or num > (len(args) - first) // step:
            return []
        out = [(first + i * step, ()) for i in range(num)]
        return out + [(store, ())] if store else out
    return keys


def _georadius_keys(args: list[bytes]) -> list[tuple[int, tuple]]:
    # georadiusGetKeys(): the key, and the last STORE/STOREDIST destination.
    stored, i = -1, 5
    while i < len(args):
        if args[i].lower() in (b"store", b"storedist") and i + 1 < len(args):
            stored = i + 1
            i += 1
        i += 1
    return [(1, ())] + ([(stored, ())] if stored != -1 else [])


def _xread_keys(args: list[bytes]) -> list[tuple[int, tuple]]:
    # xreadGetKeys(): the keys between STREAMS and the IDs.
    skip = {b"block": 1, b"count": 1, b"group": 2, b"noack": 0}
    streams, i = -1, 1
    while i < len(args):
        word = args[i].lower()
        if word == b"streams":
            streams = i
            break
        if word not in skip:
            break
        i += skip[word] + 1
    num = len(args) - streams - 1 if streams != -1 else 0
    if streams == -1 or num == 0 or num % 2:
        return []
    return [(pos, ()) for pos in range(streams + 1, streams + 1 + num // 2)]


_NATIVE_GETKEYS = {
    "sintercardGetKeys": _generic_keys(0, 1, 2),
    "zunionInterDiffStoreGetKeys": _generic_keys(1, 2, 3),
    "zunionInterDiffGetKeys": _generic_keys(0, 1, 2),
    "evalGetKeys": _generic_keys(0, 2, 3),
    "functionGetKeys": _generic_keys(0, 2, 3),
    "lmpopGetKeys": _generic_keys(0, 1, 2),
    "blmpopGetKeys": _generic_keys(0, 2, 3),
    "zmpopGetKeys": _generic_keys(0, 1, 2),
    "bzmpopGetKeys": _generic_keys(0, 2, 3),
    "georadiusGetKeys": _georadius_keys,
    "xreadGetKeys": _xread_keys,
    "migrateGetKeys": _migrate_keys,
    "sortGetKeys": _sort_keys,
    "sortROGetKeys": lambda args: _sort_keys(args, read_only=True),
    "setGetKeys": _set_keys,
    "bitfieldGetKeys": _bitfield_keys,
}
