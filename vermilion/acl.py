"""ACL users, their selectors and the rule language (Redis 7.0's acl.c).

A User holds its flags, its password hashes and its selectors: the root selector
(the rules given outside parentheses) and any others ``( … )``; a command is allowed
when one selector allows the command, every key it names and every channel. Rules are
applied to a staged copy first, so a bad rule changes nothing (ACLStringSetUser()), then
copied into the live user in place: the sessions authenticated as it see the change.

Commands are known by their full names ("get", "config|get") from the catalogue the
server hands over (Redis's own table, renames do not matter: ACLLookupCommand reads
orig_commands). The permission checks themselves take the keys and channels the
commands layer found in argv, so this module knows nothing of key specs.

The dispatcher's fast path asks for nothing while a session is ``unchecked``: it is
authenticated as a user one of whose selectors allows every command, key and channel
(``User.unrestricted``); AccessControl.refresh() recomputes that after any change.
"""

from __future__ import annotations

import hashlib
import os
import time

from .keyspace.glob import matcher, stringmatch
from .log import logger
from .protocol.parser import split_args

# ACLCommandCategories[] (the order of ACL CAT and of the rule search).
CATEGORIES = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
    "dangerous", "connection", "transaction", "scripting",
)

READ, WRITE = 1, 2  # ACL_READ_PERMISSION, ACL_WRITE_PERMISSION
ALL = READ | WRITE
UNKNOWN_KEYS = 4  # a need no pattern grants: keys that could not be located

# ACL_DENIED_* in Redis's order: a later reason wins when selectors disagree.
OK, DENIED_CMD, DENIED_KEY, DENIED_AUTH, DENIED_CHANNEL = 0, 1, 2, 3, 4
REASON_NAMES = {DENIED_CMD: "command", DENIED_KEY: "key", DENIED_CHANNEL: "channel",
                DENIED_AUTH: "auth"}
DENIAL_MESSAGES = {  # getAclErrorMessage()
    DENIED_CMD: "can't run this command or subcommand",
    DENIED_KEY: "can't access at least one of the keys mentioned in the command arguments",
    DENIED_CHANNEL: "can't publish to the channel mentioned in the command",
}

LOG_GROUPING_MS = 60000  # ACL_LOG_GROUPING_MAX_TIME_DELTA
GENPASS_MAX_BITS = 4096


# commands_with_channels[] (db.c): (is a pattern, first channel, count or -1 for the
# rest). Unsubscribing is never refused, so only these are checked.
CHANNEL_ARGS = {
    "subscribe": (False, 1, -1),
    "ssubscribe": (False, 1, -1),
    "psubscribe": (True, 1, -1),
    "publish": (False, 1, 1),
    "spublish": (False, 1, 1),
}


def key_needs(flags) -> int:
    """The permission a key spec's flags ask for (ACLSelectorCheckKey())."""
    need = 0
    if "ACCESS" in flags:
        need |= READ
    if "INSERT" in flags or "DELETE" in flags or "UPDATE" in flags:
        need |= WRITE
    return need


_PLANS: dict = {}  # full name → key plan; read on every command of a restricted user
_UNPLANNED = object()


def key_plan(spec):
    """A command's key specs when its keys sit at fixed index ranges, precomputed as
    (first, lastkey, step, limit, READ|WRITE, exact); None for any other (keyword or
    keynum searches, a getkeys function of its own), which the commands layer resolves.
    exact is False for VARIABLE_FLAGS specs (SET's GET option): their declared flags
    are the most a call can need, enough for the fast check, not for the full one."""
    plan = _PLANS.get(spec.fullname, _UNPLANNED)
    if plan is _UNPLANNED:
        plan = _PLANS[spec.fullname] = _make_plan(spec.meta)
    return plan


def _make_plan(meta: dict):
    plan = []
    for ks in meta.get("key_specs") or ():
        flags = ks.get("flags", ())
        if "NOT_KEY" in flags:
            continue
        begin, find = ks["begin_search"], ks["find_keys"]
        if "index" not in begin or "range" not in find or "INCOMPLETE" in flags:
            return None
        variable = "VARIABLE_FLAGS" in flags
        if meta.get("get_keys_function") and not variable:
            return None
        rng = find["range"]
        plan.append((begin["index"]["pos"], rng["lastkey"], rng["step"], rng["limit"],
                     key_needs(flags), not variable))
    return tuple(plan)


def last_key(first: int, lastkey: int, limit: int, argc: int) -> int:
    """A range key spec's last key index for argc arguments (getKeysUsingKeySpecs())."""
    if lastkey >= 0:
        return first + lastkey
    if not limit:
        return argc + lastkey
    return first + ((argc - first) // limit + lastkey)


def planned_keys(spec, argv: list[bytes], exact: bool = True):
    """[(position, need)] from the plan, or None where the plan cannot say (exact:
    the needs of this very call, not the most any call may need)."""
    plan = key_plan(spec)
    if plan is None:
        return None
    argc = len(argv)
    out = []
    for first, lastkey, step, limit, need, is_exact in plan:
        if exact and not is_exact:
            return None
        last = last_key(first, lastkey, limit, argc)
        if last >= argc or last < first:
            return None  # an invalid spec for this argv: the generic path decides
        out += [(pos, need) for pos in range(first, last + 1, step)]
    return out


class RuleError(Exception):
    """An ACLSetUser() failure; the message is ACLSetUserStringError()'s."""


UNKNOWN_NAME = "Unknown command or category name in ACL"
SYNTAX = "Syntax error"
ALLKEYS_EXISTS = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not "
                  "valid and does not have any effect. Try 'resetkeys' to start with an "
                  "empty list of patterns")
ALLCHANNELS_EXISTS = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is "
                      "not valid and does not have any effect. Try 'resetchannels' to start "
                      "with an empty list of channels")
NO_SUCH_PASSWORD = "The password you are trying to remove from the user does not exist"
BAD_HASH = ("The password hash must be exactly 64 characters and contain only lowercase "
            "hexadecimal characters")
DUPLICATE_USER = "Duplicate user found. A user can only be defined once in config files"
SUBCOMMAND_FIRSTARG = "Allowing first-arg of a subcommand is not supported"


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


def valid_hash(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def has_spaces(text: bytes) -> bool:
    # ACLStringHasSpaces(): isspace() or NUL.
    return any(c in b" \t\n\v\f\r\x00" for c in text)


# -- the command catalogue ----------------------------------------------------------------

class CommandEntry:
    """One command of Redis's table for ACL purposes: its full name, categories and
    subcommands (in table order)."""

    __slots__ = ("fullname", "categories", "children", "parent")

    def __init__(self, fullname: str, categories, children=(), parent=None):
        self.fullname = fullname
        self.categories = frozenset(categories)
        self.children = list(children)
        self.parent = parent


class Catalogue:
    """server.orig_commands as ACL rules see it."""

    def __init__(self, top: list[CommandEntry]):
        self.top = top
        self.order: list[CommandEntry] = []  # depth first, children after their parent
        for entry in top:
            self.order.append(entry)
            for child in entry.children:
                child.parent = entry
                self.order.append(child)
        self.by_name = {e.fullname: e for e in self.order}
        self.all_names = frozenset(self.by_name)
        # Counted: the commands flagged with the category; changed: those and their
        # subcommands (ACLChangeSelectorPerm() sets a container's children too).
        self.members = {c: [e.fullname for e in self.order if c in e.categories]
                        for c in CATEGORIES}
        self.changed = {c: self._affected(c) for c in CATEGORIES}

    def _affected(self, category: str) -> frozenset:
        names = set()
        for entry in self.order:
            if category in entry.categories:
                names.add(entry.fullname)
                names.update(child.fullname for child in entry.children)
        return frozenset(names)

    def lookup(self, name: str) -> CommandEntry | None:
        return self.by_name.get(name.lower())

    def in_category(self, category: str) -> list[str]:
        return self.members[category]


# -- selectors ------------------------------------------------------------------------------

class Selector:
    """aclSelector: commands allowed (by full name), first-args, key patterns, channels."""

    __slots__ = ("root", "all_keys", "all_channels", "all_commands", "future",
                 "allowed", "firstargs", "patterns", "channels", "catalogue")

    def __init__(self, catalogue: Catalogue, root: bool = False, all_channels: bool = False):
        self.catalogue = catalogue
        self.root = root
        self.all_keys = False
        self.all_channels = all_channels  # acl-pubsub-default
        self.all_commands = False  # SELECTOR_FLAG_ALLCOMMANDS: no bit test needed
        self.future = False  # the reserved bit +@all sets: commands added later too
        self.allowed: set[str] = set()
        self.firstargs: dict[str, list[bytes]] = {}
        self.patterns: list[list] = []  # [pattern bytes, READ|WRITE]
        self.channels: list[bytes] = []

    def copy(self) -> "Selector":
        other = Selector(self.catalogue, self.root, self.all_channels)
        other.all_keys, other.all_commands = self.all_keys, self.all_commands
        other.future = self.future
        other.allowed = set(self.allowed)
        other.firstargs = {k: list(v) for k, v in self.firstargs.items()}
        other.patterns = [list(p) for p in self.patterns]
        other.channels = list(self.channels)
        return other

    def unrestricted(self) -> bool:
        return self.all_commands and self.all_keys and self.all_channels

    # -- applying one rule (ACLSetSelector) --------------------------------------------

    def _set_keys(self, every: bool) -> None:
        self.all_keys = every
        self.patterns = []

    def _set_channels(self, every: bool) -> None:
        self.all_channels = every
        self.channels = []

    def _set_commands(self, every: bool) -> None:
        # +@all also sets the reserved bit: commands that appear later are allowed.
        self.allowed = set(self.catalogue.all_names) if every else set()
        self.all_commands = self.future = every
        self.firstargs = {}

    # The rules that are a keyword (case-insensitive): (method, argument).
    KEYWORDS = {
        b"allkeys": (_set_keys, True), b"~*": (_set_keys, True),
        b"resetkeys": (_set_keys, False),
        b"allchannels": (_set_channels, True), b"&*": (_set_channels, True),
        b"resetchannels": (_set_channels, False),
        b"allcommands": (_set_commands, True), b"+@all": (_set_commands, True),
        b"nocommands": (_set_commands, False), b"-@all": (_set_commands, False),
    }

    def apply(self, op: bytes) -> None:
        keyword = self.KEYWORDS.get(op.lower())
        if keyword is not None:
            method, every = keyword
            method(self, every)
        elif op[:1] in (b"~", b"%"):
            self._add_key_pattern(op)
        elif op[:1] == b"&":
            self._add_channel(op[1:])
        elif op[:1] == b"+" and op[1:2] != b"@":
            self._allow_command(op[1:])
        elif op[:1] == b"-" and op[1:2] != b"@":
            entry = self.catalogue.lookup(op[1:].decode("utf-8", "replace"))
            if entry is None:
                raise RuleError(UNKNOWN_NAME)
            self._change(entry, False)
        elif op[:2] in (b"+@", b"-@"):
            category = op[2:].decode("utf-8", "replace").lower()
            if category not in self.catalogue.changed:
                raise RuleError(UNKNOWN_NAME)
            self.change_category(category, op[:1] == b"+")
        else:
            raise RuleError(SYNTAX)

    def _add_key_pattern(self, op: bytes) -> None:
        if self.all_keys:
            raise RuleError(ALLKEYS_EXISTS)
        flags, offset = 0, 1
        if op[:1] == b"%":
            while offset < len(op):
                c = op[offset:offset + 1].upper()
                if c == b"R" and not flags & READ:
                    flags |= READ
                elif c == b"W" and not flags & WRITE:
                    flags |= WRITE
                elif c == b"~" and flags:
                    offset += 1
                    break
                else:
                    raise RuleError(SYNTAX)
                offset += 1
            if not flags:
                raise RuleError(SYNTAX)  # "%" or "%~p": a permission is required
        else:
            flags = ALL
        pattern = op[offset:]
        if has_spaces(pattern):
            raise RuleError(SYNTAX)
        for existing in self.patterns:
            if existing[0] == pattern:
                existing[1] |= flags
                break
        else:
            self.patterns.append([pattern, flags])
        self.all_keys = False

    def _add_channel(self, pattern: bytes) -> None:
        if self.all_channels:
            raise RuleError(ALLCHANNELS_EXISTS)
        if has_spaces(pattern):
            raise RuleError(SYNTAX)
        if pattern not in self.channels:
            self.channels.append(pattern)
        self.all_channels = False

    def _allow_command(self, name: bytes) -> None:
        text = name.decode("utf-8", "replace")
        if "|" not in text:
            entry = self.catalogue.lookup(text)
            if entry is None:
                raise RuleError(UNKNOWN_NAME)
            self._change(entry, True)
            return
        container, _, sub = text.rpartition("|")
        entry = self.catalogue.lookup(container)
        if entry is None:
            raise RuleError(UNKNOWN_NAME)
        if entry.parent is not None:
            raise RuleError(SUBCOMMAND_FIRSTARG)
        if not sub:
            raise RuleError(SYNTAX)
        if entry.children:
            child = self.catalogue.lookup(text)
            if child is None:
                raise RuleError(UNKNOWN_NAME)
            self._change(child, True)
            return
        # +select|0: a first argument of an otherwise blocked command (deprecated in
        # Redis, which logs a warning, but honoured).
        logger.warning("Deprecation warning: Allowing a first arg of an otherwise blocked "
                       "command is a misuse of ACL and may get disabled in the future "
                       "(offender: +%s)" % text)
        allowed = self.firstargs.setdefault(entry.fullname, [])
        if not any(a.lower() == sub.lower().encode() for a in allowed):
            allowed.append(sub.encode("utf-8", "surrogateescape"))

    def _change(self, entry: CommandEntry, allow: bool) -> None:
        # ACLChangeSelectorPerm(): the command, its first-args reset, its subcommands.
        self._set_bit(entry.fullname, allow)
        self.firstargs.pop(entry.fullname, None)
        for child in entry.children:
            self._set_bit(child.fullname, allow)

    def _set_bit(self, name: str, allow: bool) -> None:
        if allow:
            self.allowed.add(name)
        else:
            self.allowed.discard(name)
            self.all_commands = False

    def change_category(self, category: str, allow: bool) -> None:
        catalogue = self.catalogue
        for name in catalogue.changed[category]:
            self._set_bit(name, allow)
        for entry in catalogue.order:
            if category in entry.categories:
                self.firstargs.pop(entry.fullname, None)

    # -- checks ------------------------------------------------------------------------

    def allows_command(self, fullname: str, argv: list[bytes], is_sub: bool) -> bool:
        if self.all_commands or fullname in self.allowed:
            return True
        allowed = self.firstargs.get(fullname)
        if not allowed or len(argv) < 2:
            return False
        arg = argv[2 if is_sub else 1].lower() if len(argv) > (2 if is_sub else 1) else None
        return arg is not None and any(a.lower() == arg for a in allowed)

    def allows_key(self, key: bytes, need: int) -> bool:
        if self.all_keys:
            return True
        for pattern, flags in self.patterns:
            if flags & need == need and matcher(pattern)(key):
                return True
        return False

    def allows_channel(self, channel: bytes, is_pattern: bool) -> bool:
        if self.all_channels:
            return True
        for pattern in self.channels:
            if (pattern == channel) if is_pattern else stringmatch(pattern, channel):
                return True
        return False

    def has_all_keys(self, need: int) -> bool:
        # ACLSelectorHasUnrestrictedKeyAccess()
        if self.all_keys:
            return True
        return any(flags & need == need and pattern == b"*" for pattern, flags in self.patterns)

    def check(self, fullname, is_sub, no_auth, argv, keys, channels) -> tuple[int, int]:
        """ACLSelectorCheckCmd(): (OK | DENIED_*, position of the refused argument).
        keys: [(position, READ|WRITE needed)]; channels: [(position, is_pattern)]."""
        if not no_auth and not self.allows_command(fullname, argv, is_sub):
            return DENIED_CMD, 0
        if not self.all_keys:
            for pos, need in keys:
                if not self.allows_key(argv[pos], need):
                    return DENIED_KEY, pos
        if not self.all_channels:
            for pos, is_pattern in channels:
                if not self.allows_channel(argv[pos], is_pattern):
                    return DENIED_CHANNEL, pos
        return OK, 0

    # -- description (ACLDescribeSelector) -----------------------------------------------

    def describe(self) -> str:
        parts = []
        if self.all_keys:
            parts.append("~*")
        else:
            parts += [pattern_string(p, f) for p, f in self.patterns]
        if self.all_channels:
            parts.append("&*")
        else:
            parts.append("resetchannels")
            parts += ["&" + _text(c) for c in self.channels]
        parts.append(self.describe_commands())
        return " ".join(parts)

    def keys_string(self) -> str:
        if self.all_keys:
            return "~*"
        return " ".join(pattern_string(p, f) for p, f in self.patterns)

    def channels_string(self) -> str:
        if self.all_channels:
            return "&*"
        return " ".join("&" + _text(c) for c in self.channels)

    def describe_commands(self) -> str:
        """ACLDescribeSelectorCommandRules(): +@all or -@all, the categories that fit
        best, then the single commands that make the bitmap exact."""
        catalogue = self.catalogue
        additive = not self.future
        rules = ["-@all" if additive else "+@all"]
        fake = Selector(catalogue)
        fake.apply(rules[0].encode())
        temp = set(self.allowed)
        applied = set()
        while True:
            best, mindiff, maxsame = None, 1 << 31, 0
            for category in CATEGORIES:
                if category in applied:
                    continue
                members = catalogue.members[category]
                on = sum(1 for name in members if name in temp)
                off = len(members) - on
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (diff < mindiff or (diff == mindiff and same > maxsame)):
                    best, mindiff, maxsame = category, diff, same
            if best is None:
                break
            rules.append(("+@" if additive else "-@") + best)
            fake.change_category(best, additive)
            if additive:
                temp -= catalogue.changed[best]
            else:
                temp |= catalogue.changed[best]
            applied.add(best)
        for entry in catalogue.order:
            mine = entry.fullname in self.allowed
            if mine != (entry.fullname in fake.allowed):
                rules.append(("+" if mine else "-") + entry.fullname)
                fake._change(entry, mine)
            firstargs = self.firstargs.get(entry.fullname)
            if not mine and firstargs:
                rules += ["+%s|%s" % (entry.fullname, _text(a)) for a in firstargs]
        return " ".join(rules)


def pattern_string(pattern: bytes, flags: int) -> str:
    prefix = {ALL: "~", READ: "%R~", WRITE: "%W~"}[flags]
    return prefix + _text(pattern)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# -- users ------------------------------------------------------------------------------

class User:
    __slots__ = ("name", "enabled", "nopass", "sanitize", "passwords", "selectors",
                 "unrestricted", "fast_allows")

    def __init__(self, name: bytes, catalogue: Catalogue, all_channels: bool = False):
        self.name = name
        self.enabled = False
        self.nopass = False
        self.sanitize = None  # "skip-sanitize-payload" | "sanitize-payload" | None
        self.passwords: list[str] = []  # SHA-256 hex
        self.selectors = [Selector(catalogue, root=True, all_channels=all_channels)]
        self.unrestricted = False
        self.fast_allows = None

    @property
    def root(self) -> Selector:
        return self.selectors[0]

    def copy_from(self, other: "User") -> None:
        """ACLCopyUser(): everything but the name."""
        self.enabled, self.nopass, self.sanitize = other.enabled, other.nopass, other.sanitize
        self.passwords = list(other.passwords)
        self.selectors = [s.copy() for s in other.selectors]
        self.refresh()

    def refresh(self) -> None:
        self.unrestricted = any(s.unrestricted() for s in self.selectors)
        self.fast_allows = None
        if not self.unrestricted and len(self.selectors) == 1:
            self.fast_allows = _fast_checker(self.root)

    def apply(self, op: bytes, pubsub_default_all: bool) -> None:
        """ACLSetUser(): one rule; RuleError leaves the user as it was for that rule."""
        try:
            self._apply(op, pubsub_default_all)
        finally:
            self.refresh()

    def _apply(self, op: bytes, pubsub_default_all: bool) -> None:
        lower = op.lower()
        if not op:
            return
        if lower == b"on":
            self.enabled = True
        elif lower == b"off":
            self.enabled = False
        elif lower in (b"skip-sanitize-payload", b"sanitize-payload"):
            self.sanitize = lower.decode()
        elif lower == b"nopass":
            self.nopass = True
            self.passwords = []
        elif lower == b"resetpass":
            self.nopass = False
            self.passwords = []
        elif op[:1] in (b">", b"#"):
            digest = self._hash_of(op)
            if digest not in self.passwords:
                self.passwords.append(digest)
            self.nopass = False
        elif op[:1] in (b"<", b"!"):
            digest = self._hash_of(op)
            if digest not in self.passwords:
                raise RuleError(NO_SUCH_PASSWORD)
            self.passwords.remove(digest)
        elif op[:1] == b"(" and op[-1:] == b")":
            selector = Selector(self.root.catalogue, all_channels=pubsub_default_all)
            # sdssplitargs(): quotes group; unbalanced ones give an empty selector.
            for part in split_args(op[1:-1]) or ():
                selector.apply(part)
            self.selectors.append(selector)
        elif lower == b"clearselectors":
            del self.selectors[1:]
        elif lower == b"reset":
            for rule in (b"resetpass", b"resetkeys", b"resetchannels"):
                self._apply(rule, pubsub_default_all)
            if pubsub_default_all:
                self._apply(b"allchannels", pubsub_default_all)
            for rule in (b"off", b"sanitize-payload", b"clearselectors", b"-@all"):
                self._apply(rule, pubsub_default_all)
        else:
            self.root.apply(op)

    @staticmethod
    def _hash_of(op: bytes) -> str:
        if op[:1] in (b">", b"<"):
            return hash_password(op[1:])
        text = op[1:].decode("latin-1")
        if not valid_hash(text):
            raise RuleError(BAD_HASH)
        return text

    def check_password(self, password: bytes) -> bool:
        if not self.enabled:
            return False
        if self.nopass:
            return True
        digest = hash_password(password)
        return any(_same(digest, p) for p in self.passwords)

    def flags(self) -> list[str]:
        out = ["on" if self.enabled else "off"]
        if self.nopass:
            out.append("nopass")
        if self.sanitize:
            out.append(self.sanitize)
        return out

    def describe(self) -> str:
        """ACLDescribeUser(): the rules that rebuild this user (ACL LIST, ACL SAVE)."""
        parts = self.flags() + ["#" + p for p in self.passwords]
        parts.append(self.root.describe())
        text = " ".join(parts)
        for selector in self.selectors[1:]:
            text += " (%s)" % selector.describe()
        return text

    def check(self, fullname, is_sub, no_auth, argv, keys, channels) -> tuple[int, int]:
        """ACLCheckAllUserCommandPerm(): OK when one selector allows it all, else the
        most relevant refusal (a command beats nothing; a later argument wins)."""
        reason, position = DENIED_CMD, 0
        for selector in self.selectors:
            result, pos = selector.check(fullname, is_sub, no_auth, argv, keys, channels)
            if result == OK:
                return OK, 0
            if result > reason or (result == reason and pos > position):
                reason, position = result, pos
        return reason, position

    def allows_channel(self, channel: bytes, is_pattern: bool) -> bool:
        return any(s.allows_channel(channel, is_pattern) for s in self.selectors)


def _fast_checker(selector: Selector):
    """The dispatcher's fast path for a restricted user with one selector: True when
    the command surely passes (its name is allowed, its keys sit at planned positions
    and match); False sends it to the full check, which also logs and words a refusal.
    Built once per change of the user, so a command pays set and regex lookups only."""
    names = None if selector.all_commands else frozenset(selector.allowed)
    all_keys, all_channels = selector.all_keys, selector.all_channels
    key_ok = [_key_predicate([p for p, f in selector.patterns if f & need == need])
              for need in range(4)]
    plans = _PLANS
    # One-key commands this user may run, once seen: full name → (key position, test).
    single: dict = {}

    def allows(spec, argv) -> bool:
        name = spec.fullname
        known = single.get(name)
        if known is not None:
            pos, ok = known
            return pos < len(argv) and ok(argv[pos])
        if names is not None and name not in names:
            return False
        if not all_channels and name in CHANNEL_ARGS:
            return False
        if all_keys:
            return True
        plan = plans.get(name, _UNPLANNED)
        if plan is _UNPLANNED:
            plan = key_plan(spec)
        if plan is None:
            return False
        argc = len(argv)
        if len(plan) == 1 and plan[0][1] == 0 and len(single) < 512:
            single[name] = (plan[0][0], key_ok[plan[0][4]])  # GET, SET, LPUSH...
        for first, lastkey, step, limit, need, _exact in plan:
            if lastkey == 0:
                if first >= argc or not key_ok[need](argv[first]):
                    return False
                continue
            last = last_key(first, lastkey, limit, argc)
            if last >= argc or last < first:
                return False
            ok = key_ok[need]
            for pos in range(first, last + 1, step):
                if not ok(argv[pos]):
                    return False
        return True

    return allows


_GLOB_SPECIALS = frozenset(b"*?[\\")


def _key_predicate(patterns: list[bytes]):
    """key -> bool, as any(stringmatch(p, key)): literal patterns by set membership,
    'prefix*' ones by one startswith over all prefixes, the rest by their matchers."""
    exact, prefixes, others = set(), [], []
    for pattern in patterns:
        stem = pattern.rstrip(b"*")
        if not _GLOB_SPECIALS.intersection(pattern):
            exact.add(pattern)
        elif stem != pattern and not _GLOB_SPECIALS.intersection(stem):
            prefixes.append(stem)
        else:
            others.append(matcher(pattern))
    prefixes = tuple(prefixes)

    def ok(key: bytes) -> bool:
        # A pattern with a star never matches the empty key (stringmatchlen()).
        if key in exact or (key and prefixes and key.startswith(prefixes)):
            return True
        for match in others:
            if match(key):
                return True
        return False

    return ok


def _same(a: str, b: str) -> bool:
    # time_independent_strcmp(): no early exit an attacker could time.
    diff = 0
    for x, y in zip(a.encode(), b.encode()):
        diff |= x ^ y
    return diff == 0 and len(a) == len(b)


def merge_selector_args(args: list[bytes]) -> list[bytes]:
    """ACLMergeSelectorArguments(): "(~a" "+get)" → "(~a +get)"; ValueError(index of
    the opening argument) when a parenthesis is not closed."""
    merged, current, start = [], None, -1
    for i, op in enumerate(args):
        if current is None and op[:1] == b"(" and op[-1:] != b")":
            current, start = op, i
            continue
        if current is not None:
            current += b" " + op
            if op[-1:] == b")":
                merged.append(current)
                current = None
            continue
        merged.append(op)
    if current is not None:
        raise ValueError(start)
    return merged


# -- the ACL LOG ----------------------------------------------------------------------------

class LogEntry:
    __slots__ = ("count", "reason", "context", "object", "username", "ctime", "client_info")

    def __init__(self, reason, context, obj, username, client_info):
        self.count = 1
        self.reason = reason
        self.context = context
        self.object = obj
        self.username = username
        self.ctime = int(time.time() * 1000)
        self.client_info = client_info

    def matches(self, other: "LogEntry") -> bool:
        return (self.reason == other.reason and self.context == other.context
                and abs(self.ctime - other.ctime) <= LOG_GROUPING_MS
                and self.object == other.object and self.username == other.username)


# -- the server's users -----------------------------------------------------------------

class AccessControl:
    """The server's users (Redis's Users radix tree), the ACL LOG, and users read from
    redis.conf waiting for start-up (UsersToLoad)."""

    def __init__(self, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or Catalogue([])
        self.pubsub_default_all = False  # acl-pubsub-default allchannels
        self.users: dict[bytes, User] = {}
        self.log: list[LogEntry] = []  # newest first
        self.log_max_len = 128
        self.to_load: list[list[bytes]] = []  # [name, rule...] from 'user' lines
        self.default_user = self.users[b"default"] = self._all_powerful(b"default")
        # Redis's internal clients have no user (c->user == NULL): every check passes.
        # The AOF loader and the master link run as this one; it is in no user list.
        self.superuser = self._all_powerful(b"(superuser)")

    def _new_user(self, name: bytes) -> User:
        return User(name, self.catalogue, self.pubsub_default_all)

    def _all_powerful(self, name: bytes) -> User:
        # ACLCreateDefaultUser()
        user = self._new_user(name)
        for rule in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
            user.apply(rule, False)
        return user

    def auth_required(self) -> bool:
        # authRequired()'s server half: the default user asks for a password.
        default = self.default_user
        return not default.nopass or not default.enabled

    def get(self, name: bytes) -> User | None:
        return self.users.get(name)

    def sorted_users(self) -> list[User]:
        return [self.users[name] for name in sorted(self.users)]  # the rax's order

    # -- SETUSER ---------------------------------------------------------------------

    def staged(self, user: User | None, rules: list[bytes]) -> User:
        """ACLStringSetUser()'s staging: the rules applied to a copy of user (or to a
        fresh user); RuleError names the rule that failed."""
        temp = self._new_user(b"")
        if user is not None:
            temp.copy_from(user)
        for op in rules:
            try:
                temp.apply(op, self.pubsub_default_all)
            except RuleError as exc:
                # Redis formats the rule as a C string: it ends at a NUL.
                raise RuleError("Error in ACL SETUSER modifier '%s': %s"
                                % (_text(op.split(b"\0", 1)[0]), exc)) from None
        return temp

    def set_user(self, name: bytes, staged: User) -> User:
        user = self.users.get(name)
        if user is None:
            user = self.users[name] = self._new_user(name)
        user.copy_from(staged)
        return user

    def set_default_password(self, password: str | None) -> None:
        """ACLUpdateDefaultUserPassword(): requirepass, "" meaning nopass."""
        default = self.default_user
        default.apply(b"resetpass", False)
        if password:
            default.apply(b">" + password.encode("utf-8", "surrogateescape"), False)
        else:
            default.apply(b"nopass", False)

    # -- config 'user' lines and the ACL file ----------------------------------------

    def queue_config_user(self, args: list[bytes]) -> None:
        """ACLAppendUserForLoading(): checked now, loaded at start-up. ValueError with
        (message, index of the bad argument) for Redis's config error."""
        name = args[0]
        if any(entry[0] == name for entry in self.to_load):
            raise RuleError(DUPLICATE_USER, 1)
        try:
            rules = merge_selector_args(args[1:])
        except ValueError as exc:
            # Redis names argv[invalid_idx] counted from the rules: off by two, as there.
            raise RuleError("Wrong format", exc.args[0]) from None
        fake = self._new_user(b"")
        for j, op in enumerate(rules):
            try:
                fake.apply(op, self.pubsub_default_all)
            except RuleError as exc:
                if str(exc) != UNKNOWN_NAME:
                    raise RuleError(str(exc), j) from None
        self.to_load.append([name] + rules)

    def load_config_users(self) -> str | None:
        """ACLLoadConfiguredUsers(): None, or the log line Redis exits with."""
        for entry in self.to_load:
            name, rules = entry[0], entry[1:]
            if has_spaces(name):
                return "Spaces not allowed in ACL usernames"
            user = self.users.get(name)
            if user is None:
                user = self.users[name] = self._new_user(name)
            else:
                user.apply(b"reset", self.pubsub_default_all)
            for op in rules:
                try:
                    user.apply(op, self.pubsub_default_all)
                except RuleError as exc:
                    return ("Error loading ACL rule '%s' for the user named '%s': %s"
                            % (_text(op), _text(name), exc))
        return None

    def parse_file(self, path: str) -> tuple[dict | None, str]:
        """ACLLoadFromFile()'s reading: (users, "") or (None, the errors line)."""
        try:
            with open(path, "rb") as f:
                text = f.read()
        except OSError as exc:
            return None, "Error loading ACLs, opening file '%s': %s" % (path, exc.strerror)
        users: dict[bytes, User] = {}
        errors = ""
        for number, line in enumerate(text.split(b"\n"), 1):
            line = line.strip(b" \t\r\n")
            if not line:
                continue
            # sdssplitlen(" "): every space splits, so two in a row make an empty
            # argument (an empty rule is a no-op, an empty name a user called "").
            argv = line.split(b" ")
            if argv[0] != b"user" or len(argv) < 2:
                errors += ("%s:%d should start with user keyword followed by the "
                           "username. " % (path, number))
                continue
            name = argv[1]
            if has_spaces(name):
                errors += ("'%s:%d: username '%s' contains invalid characters. "
                           % (path, number, _text(name)))
                continue
            if name in users:
                errors += "WARNING: Duplicate user '%s' found on line %d. " % (_text(name), number)
                continue
            user = users[name] = self._new_user(name)
            try:
                rules = merge_selector_args(argv[2:])
            except ValueError:
                errors += "%s:%d: Unmatched parenthesis in selector definition." % (path, number)
                rules = []
            syntax_error = False
            for op in rules:
                op = op.strip(b"\t\r\n")
                try:
                    user.apply(op, self.pubsub_default_all)
                except RuleError as exc:
                    if str(exc) == UNKNOWN_NAME:
                        errors += ("%s:%d: Error in applying operation '%s': %s. "
                                   % (path, number, _text(op), exc))
                    elif not syntax_error:
                        errors += "%s:%d: %s. " % (path, number, exc)
                        syntax_error = True
        if errors:
            return None, errors + ("WARNING: ACL errors detected, no change to the "
                                   "previously active ACL rules was performed")
        return users, ""

    def replace_users(self, users: dict[bytes, User]) -> list[User]:
        """The end of a successful ACL LOAD: the default user object stays (sessions and
        the config point at it) with the file's rules; the other users are the file's.
        Returns the users that went away (their clients are disconnected)."""
        default = users.pop(b"default", None) or self._all_powerful(b"default")
        self.default_user.copy_from(default)
        gone = [u for name, u in self.users.items() if name != b"default"]
        self.users = {b"default": self.default_user, **users}
        return gone

    def save_text(self) -> bytes:
        return b"".join(b"user %s %s\n" % (u.name, u.describe().encode("utf-8", "surrogateescape"))
                        for u in self.sorted_users())

    # -- the log -----------------------------------------------------------------------

    def add_log(self, reason: int, context: str, obj: bytes, username: bytes,
                client_info: str) -> None:
        """addACLLogEntry(): a similar entry in the last ten is bumped and moved first."""
        entry = LogEntry(reason, context, obj, username, client_info)
        for i, current in enumerate(self.log[:10]):
            if current.matches(entry):
                current.client_info = entry.client_info
                current.ctime = entry.ctime
                current.count += 1
                self.log.insert(0, self.log.pop(i))
                return
        self.log.insert(0, entry)
        del self.log[self.log_max_len:]


def generate_password(bits: int) -> str:
    chars = (bits + 3) // 4
    return os.urandom((chars + 1) // 2).hex()[:chars]
