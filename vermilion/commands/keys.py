"""The generic key commands (db.c): DEL, EXISTS, TYPE, RENAME, MOVE, COPY, KEYS, SCAN,
RANDOMKEY, TOUCH, OBJECT, FLUSHDB/FLUSHALL, DBSIZE."""

import math
from copy import deepcopy as _deepcopy
from itertools import islice

from ..datatypes.stream import lp_str_size
from ..keyspace.database import now_ms, type_name
from ..keyspace.glob import matcher
from ..keyspace.scan import parse_cursor, parse_options, scan
from ..keyspace.watch import touch_all_watched_in_db
from ..propagate import propagate_raw
from ..protocol import errors
from ..protocol.encode import OK
from ..protocol.errors import CommandError
from ..protocol.numbers import parse_int, to_int
from .registry import command
from ..notify import notify, notify_event, notify_new_key

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
INT_RANGE = "ERR value is out of range, value must between %d and %d" % (INT_MIN, INT_MAX)
EMBSTR_SIZE_LIMIT = 44  # OBJ_ENCODING_EMBSTR_SIZE_LIMIT
SHARED_INTEGERS = 10000  # OBJ_SHARED_INTEGERS
OBJ_SHARED_REFCOUNT = 2**31 - 1

# OBJECT ENCODING for a type whose value class has no ``encoding`` attribute.
DEFAULT_ENCODINGS = {
    "list": "quicklist",
    "set": "hashtable",
    "hash": "hashtable",
    "zset": "skiplist",
    "stream": "stream",
}

_POLICY_NOTE = (
    "Please note that when switching between policies at runtime LRU and LFU data "
    "will take some time to adjust."
)
LFU_SELECTED = "ERR An LFU maxmemory policy is selected, idle time not tracked. " + _POLICY_NOTE
LFU_NOT_SELECTED = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. " + _POLICY_NOTE
)

OBJECT_HELP = [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
]


# -- flushing -------------------------------------------------------------------------------


def _flush_flags(argv: list[bytes]) -> None:
    # db.c getFlushCommandFlags(): at most one argument, ASYNC or SYNC.
    if len(argv) > 2:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2 and argv[1].lower() not in (b"async", b"sync"):
        raise CommandError(errors.SYNTAX)


def flush_db(server, db) -> int:
    touch_all_watched_in_db(server, db.id, db, None)  # signalFlushedDb()
    removed = db.flush()
    if server.blocking.waiters:
        server.blocking.flushed(db)
    return removed


def _signal_flushed(server) -> None:
    # signalFlushedDb()'s once-per-command part (CLIENT TRACKING's null invalidation).
    for hook in server.hooks.flushed:
        hook()


def _force_propagation(client, argv, dirty_before: int) -> None:
    # forceCommandPropagation(): a FLUSH reaches the AOF even when it changed nothing
    # (or when the save below reset the dirty counter the dispatcher compares).
    server = client.server
    if server.dirty == dirty_before and server.propagation.sinks:
        propagate_raw(server, client.db.id, argv)


def _flush_async(server, argv) -> bool:
    # getFlushCommandFlags(): ASYNC, or lazyfree-lazy-user-flush unless SYNC is given.
    if len(argv) == 2:
        return argv[1].lower() == b"async"
    return server.config["lazyfree-lazy-user-flush"]


@command("flushdb")
def flushdb(client, argv):
    _flush_flags(argv)
    server = client.server
    before = server.dirty
    _signal_flushed(server)
    if _flush_async(server, argv):  # emptyDbAsync(): every key is one lazy-freed object
        server.stats.lazyfreed_objects += len(client.db.data)
    server.dirty += flush_db(server, client.db)
    _force_propagation(client, argv, before)
    return OK


@command("flushall")
def flushall(client, argv):
    _flush_flags(argv)
    server = client.server
    before = server.dirty
    _signal_flushed(server)
    removed = 0
    lazy = _flush_async(server, argv)
    for db in server.dbs:
        if lazy:
            server.stats.lazyfreed_objects += len(db.data)
        removed += flush_db(server, db)
    server.dirty += removed
    # flushAllDataAndResetRDB(): an RDB child (BGSAVE, or one writing for replicas)
    # saves a dataset that is gone: it is killed; with save points configured the
    # empty dataset is saved at once, which also resets the dirty counter.
    server.kill_rdb_child()
    if server.config["save"]:
        try:
            server.snapshots.save()
        except CommandError:
            pass  # Redis ignores the outcome of this save too
    _force_propagation(client, argv, before)
    return OK


@command("dbsize")
def dbsize(client, argv):
    # Like Redis, expired keys not reclaimed yet are still counted.
    return len(client.db.data)


# -- existence and deletion --------------------------------------------------------------------


def _delete_keys(client, argv, lazy: bool):
    db = client.db
    peek = db.peek
    deleted = 0
    for key in argv[1:]:
        # peek() first so an expired key counts as missing (and expires lazily).
        value = peek(key)
        if value is not None and db.delete(key):
            if lazy and free_effort(client.server, db, key, value) > LAZYFREE_THRESHOLD:
                client.server.stats.lazyfreed_objects += 1  # freeObjAsync()
            notify(client, "del", key)
            deleted += 1
    return deleted


@command("del")
def del_(client, argv):
    return _delete_keys(client, argv, client.server.config["lazyfree-lazy-user-del"])


@command("unlink")
def unlink(client, argv):
    return _delete_keys(client, argv, True)


LAZYFREE_THRESHOLD = 64  # lazyfree.c: values costlier to free go to the bio thread
_LISTPACK_BYTES = {-1: 4096, -2: 8192, -3: 16384, -4: 32768, -5: 65536}


def free_effort(server, db, key: bytes, value) -> int:
    """lazyfreeGetFreeEffort(): the allocations freeing value takes — a list's quicklist
    nodes, a hash table's or skiplist's entries, a stream's nodes and groups; 1 for a
    compact encoding or a string."""
    encoding = key_encoding(db, key, value)
    kind = type_name(value)
    if kind == "list":
        per_node = server.config["list-max-listpack-size"]
        if per_node > 0:
            return -(-len(value) // per_node)
        # Node bytes from a sample's listpack entry sizes: O(1), as Redis's ql->len is.
        sample = list(islice(value, 64))
        average = sum(map(lp_str_size, sample)) / len(sample) if sample else 1
        return max(1, math.ceil(average * len(value) / _LISTPACK_BYTES.get(per_node, 8192)))
    if encoding in ("hashtable", "skiplist"):
        return len(value)
    if kind == "stream":
        # The rax's node count: about two per listpack macro node (its inner nodes).
        per_node = max(1, server.config["stream-node-max-entries"] or 1)
        effort = 2 * -(-len(value) // per_node)
        groups = value.groups
        if groups:
            first = next(iter(groups.values()))
            effort += len(groups) * (1 + len(first.pel))
        return effort
    return 1


@command("exists")
def exists(client, argv):
    # Repeated keys count once per mention, as existsCommand() does.
    peek = client.db.peek
    return sum(1 for key in argv[1:] if peek(key) is not None)


# -- type and encoding -----------------------------------------------------------------------


@command("type")
def type_(client, argv):
    value = client.db.peek(argv[1])
    return "none" if value is None else type_name(value)


@command("touch")
def touch(client, argv):
    db = client.db
    count = 0
    for key in argv[1:]:
        if db.peek(key) is not None:
            db.note_access(key)
            count += 1
    return count


def string_encoding(value: bytes) -> str:
    # object.c tryObjectEncoding(): canonical int64 text → int; up to 44 bytes → embstr.
    if len(value) <= 20 and to_int(value) is not None:
        return "int"
    return "embstr" if len(value) <= EMBSTR_SIZE_LIMIT else "raw"


def encoding_of(value) -> str:
    if type(value) is bytes:
        return string_encoding(value)
    encoding = getattr(value, "encoding", None)
    return encoding if encoding is not None else DEFAULT_ENCODINGS.get(value.type_name, "raw")


def key_encoding(db, key: bytes, value) -> str:
    """OBJECT ENCODING of key: how its string was built, else what its value implies."""
    return db.encodings.get(key) or encoding_of(value)


def _refcount(server, value) -> int:
    # Integers 0..9999 are shared objects (OBJ_SHARED_REFCOUNT) unless maxmemory with an
    # LRU/LFU policy needs per-object access data (MAXMEMORY_FLAG_NO_SHARED_INTEGERS).
    if type(value) is bytes and len(value) <= 4:
        n = to_int(value)
        if n is not None and 0 <= n < SHARED_INTEGERS and _shared_integers(server):
            return OBJ_SHARED_REFCOUNT
    return 1


def _shared_integers(server) -> bool:
    config = server.config
    return not config["maxmemory"] or not config["maxmemory-policy"].split("-")[-1] in ("lru", "lfu")


def _lfu_policy(server) -> bool:
    return server.config["maxmemory-policy"].endswith("lfu")


def _object_value(client, key):
    # objectCommandLookupOrReply(): a missing key is a null reply, not an error.
    return client.db.lookup(key)


@command("object encoding")
def object_encoding(client, argv):
    value = _object_value(client, argv[2])
    if value is None:
        return None
    return key_encoding(client.db, argv[2], value).encode()


@command("object refcount")
def object_refcount(client, argv):
    value = _object_value(client, argv[2])
    if value is None:
        return None
    if argv[2] in client.db.encodings:
        return 1  # a string of its own, never a shared integer
    return _refcount(client.server, value)


@command("object idletime")
def object_idletime(client, argv):
    value = _object_value(client, argv[2])
    if value is None:
        return None
    if _lfu_policy(client.server):
        raise CommandError(LFU_SELECTED)
    return client.db.idle_ms(argv[2]) // 1000


@command("object freq")
def object_freq(client, argv):
    value = _object_value(client, argv[2])
    if value is None:
        return None
    if not _lfu_policy(client.server):
        raise CommandError(LFU_NOT_SELECTED)
    return client.db.lfu_freq(argv[2])


@command("object help")
def object_help(client, argv):
    return OBJECT_HELP


# -- renaming, moving, copying -----------------------------------------------------------------


def _rename(client, argv, nx: bool):
    db = client.db
    src, dst = argv[1], argv[2]
    value = db.lookup(src)
    if value is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if src == dst:
        # renameGenericCommand(): same key is a no-op once the key is known to exist.
        return 0 if nx else OK
    replaced = db.lookup(dst) is not None
    if replaced:
        if nx:
            return 0
        db.delete(dst)
    _transfer(db, src, db, dst, value, db.get_expire(src))
    db.delete(src)
    if replaced:  # dbDelete() + dbAdd(): "new" even so (a new dst is seen as pending)
        notify_new_key(client.server, db, dst)
    notify(client, "rename_from", src)
    notify(client, "rename_to", dst)
    return 1 if nx else OK


def _transfer(src_db, src, dst_db, dst, value, when) -> None:
    """Add dst = value in dst_db with the source's TTL (absolute, so it carries over)
    and its string encoding (the object moves, or dupStringObject keeps it)."""
    dst_db.set(dst, value)
    encoding = src_db.encodings.get(src)
    if encoding is not None:
        dst_db.mark_encoding(dst, encoding)
    if when is not None:
        dst_db.set_expire(dst, when)


@command("rename")
def rename(client, argv):
    return _rename(client, argv, nx=False)


@command("renamenx")
def renamenx(client, argv):
    return _rename(client, argv, nx=True)


def _target_db(client, raw: bytes):
    # getIntFromObjectOrReply() then selectDb(): an int64, then int32, then the range.
    index = parse_int(raw)
    if not INT_MIN <= index <= INT_MAX:
        raise CommandError(INT_RANGE)
    dbs = client.server.dbs
    if not 0 <= index < len(dbs):
        raise CommandError(errors.DB_INDEX)
    return dbs[index]


@command("move")
def move(client, argv):
    src_db = client.db
    dst_db = _target_db(client, argv[2])
    if dst_db is src_db:
        raise CommandError(errors.SAME_OBJECT)
    key = argv[1]
    value = src_db.lookup(key)
    if value is None or dst_db.lookup(key) is not None:
        return 0
    _transfer(src_db, key, dst_db, key, value, src_db.get_expire(key))
    src_db.delete(key)
    notify_new_key(client.server, dst_db, key)  # dbAdd() in the target db comes first
    notify(client, "move_from", key)
    notify_event(client.server, dst_db, "move_to", key)
    return 1


@command("copy")
def copy(client, argv):
    src_db = dst_db = client.db
    replace = False
    i, argc = 3, len(argv)
    while i < argc:
        word = argv[i].lower()
        if word == b"replace":
            replace = True
        elif word == b"db" and i + 1 < argc:
            dst_db = _target_db(client, argv[i + 1])
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    src, dst = argv[1], argv[2]
    if src_db is dst_db and src == dst:
        raise CommandError(errors.SAME_OBJECT)
    value = src_db.lookup(src)
    if value is None:
        return 0
    replaced = dst_db.lookup(dst) is not None
    if replaced:
        if not replace:
            return 0
        dst_db.delete(dst)
    _transfer(src_db, src, dst_db, dst, duplicate(value), src_db.get_expire(src))
    if dst_db is not src_db or replaced:  # dbDelete() + dbAdd(): "new" even so
        notify_new_key(client.server, dst_db, dst)
    notify_event(client.server, dst_db, "copy_to", dst)
    return 1


def duplicate(value):
    """An independent copy for COPY: strings are immutable bytes, other types copy()."""
    if type(value) is bytes:
        return value
    dup = getattr(value, "copy", None)
    return dup() if dup is not None else _deepcopy(value)


# -- listing -----------------------------------------------------------------------------------


@command("keys")
def keys(client, argv):
    db = client.db
    pattern = argv[1]
    # keysCommand(): exactly "*" lists everything (even the empty key) without matching;
    # expired keys are skipped but not deleted.
    if pattern == b"*":
        found = list(db.data)
    else:
        found = list(filter(matcher(pattern), db.data))
    expires = db.expires
    if expires and found:
        now = now_ms()
        get = expires.get
        found = [k for k in found if (get(k) or _NEVER) > now]
    return found


_NEVER = 1 << 64


@command("scan")
def scan_(client, argv):
    cursor = parse_cursor(argv[1])
    opts = parse_options(argv, 2, allow_type=True)
    db = client.db
    cursor, batch = scan(db.data, cursor, opts.count)
    if opts.match is not None:
        batch = list(filter(opts.match, batch))
    wanted = opts.type
    lookup = db.peek  # the type is all SCAN needs: a packed value stays packed
    out = []
    for key in batch:
        if wanted is not None:
            value = lookup(key)
            if (type_name(value) if value is not None else "none") != wanted:
                continue
            if value is None:
                # Redis quirk: TYPE none keeps a key expired by this very lookup, since
                # the expiry filter afterwards no longer finds a TTL.
                out.append(key)
                continue
        if lookup(key) is None:  # expireIfNeeded(): expired keys are reclaimed, not listed
            continue
        out.append(key)
    return [b"%d" % cursor, out]


@command("randomkey")
def randomkey(client, argv):
    return client.db.random_key()
