"""DEBUG (debug.c debugCommand): the subcommands Vermilion implements, each an
``@command("debug <name>", argc=(min, max))`` registration run by the DEBUG handler
once enable-debug-command allows it; DIGEST and DIGEST-VALUE compute in keyspace/digest.py.
Redis's command table lists DEBUG as one command, so COMMAND, the statistics and
CLIENT LIST see only "debug".
"""

import os
import sys
import time

from .. import info
from ..datatypes.hashtype import HashValue
from ..datatypes.settype import RedisSet
from ..datatypes.zset import ZSet
from ..keyspace.digest import dataset_digest, value_digest
from ..log import logger
from ..persistence import rdb
from ..persistence.aof import AOFError
from ..persistence.snapshot import load_functions
from ..protocol import errors
from ..protocol.encode import OK, Raw, ReplySet, Verbatim
from ..protocol.errors import CommandError
from ..protocol.parser import c_atoi
from ..protocol.numbers import to_float, to_int
from .keys import key_encoding
from .registry import command, subcommand_runner


DEBUG_DENIED = (
    "ERR DEBUG command not allowed. If the enable-debug-command option is set to "
    "\"local\", you can run it from a local connection, otherwise you need to set this "
    "option in the configuration file, and then restart the server."
)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _is_local(client) -> bool:
    host = client.addr.rsplit(":", 1)[0].strip("[]")
    return client.unix or host.startswith("127.") or host == "::1"


def allow_protected_action(client, directive: str) -> bool:
    """allowProtectedAction(): enable-debug-command / enable-module-command."""
    setting = client.server.config[directive]
    return setting == "yes" or (setting == "local" and _is_local(client))


def _debug_allowed(client) -> bool:
    # processCommand(): protected commands obey enable-debug-command.
    return allow_protected_action(client, "enable-debug-command")


@command("debug sleep", argc=(3, 3))
def _debug_sleep(client, argv):
    seconds = to_float(argv[2]) or 0.0
    if seconds > 0:
        time.sleep(seconds)  # DEBUG SLEEP blocks the whole server, as in Redis
    return OK


class _StoredKey:
    """A probe that finds the key object a dict stores for a key equal to `key`: dict
    lookup compares the stored key with the probe, and bytes defers to the probe's
    __eq__, which keeps what it was compared with."""

    __slots__ = ("key", "found")

    def __init__(self, key: bytes):
        self.key = key
        self.found = None

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        if other == self.key:
            self.found = other
            return True
        return False


def _value_address(db, key: bytes) -> int:
    # "Value at:%p" is the robj's address in Redis: it stays while the value is changed
    # in place (INCR of an unshared integer, list pushes...). Values here are often
    # immutable bytes replaced on every write, but the dict keeps the key object of the
    # first insertion for as long as the key exists: its identity stands for the robj.
    probe = _StoredKey(key)
    if probe in db.data and probe.found is not None:
        return id(probe.found)
    return id(key)


@command("debug object", argc=(3, 3))
def _debug_object(client, argv):
    # dictFind(): a logically expired key is still found (not deleted on the way): a
    # replica keeps one until its master's DEL.
    db = client.db
    value = db.data.get(argv[2]) if db.is_expired(argv[2]) else db.lookup(argv[2])
    if value is None:
        raise CommandError(errors.NO_SUCH_KEY)
    encoding = key_encoding(client.db, argv[2], value)
    return "Value at:0x%x refcount:1 encoding:%s serializedlength:%d lru:%d lru_seconds_idle:0" % (
        _value_address(client.db, argv[2]), encoding, len(value) if type(value) is bytes else 1,
        int(time.time()) & info.LRU_CLOCK_MAX)


_DICT_STATS_VECTLEN = 50


def _table_size(used: int) -> int:
    # _dictExpandIfNeeded(): 4 slots at first, doubled when an insert finds it full.
    size = 4
    while size < used:
        size <<= 1
    return size


def _dict_stats(elements, used: int) -> str:
    """dictGetStats() of a Redis dict holding `elements`, as Redis's would read after
    inserting them one by one: the table size it would have and the chains the
    elements' hashes make in it. Python's containers rehash all at once, so a table is
    never caught rehashing and there is no "rehashing target" section."""
    if used == 0:
        return ("Hash table 0 stats (main hash table):\n"
                "No stats available for empty dictionaries\n")
    size = _table_size(used)
    chains: dict[int, int] = {}
    for element in elements:
        slot = hash(element) & (size - 1)
        chains[slot] = chains.get(slot, 0) + 1
    slots = len(chains)
    vector = [0] * _DICT_STATS_VECTLEN
    vector[0] = size - slots
    for length in chains.values():
        vector[min(length, _DICT_STATS_VECTLEN - 1)] += 1
    total = sum(chains.values())
    out = [
        "Hash table 0 stats (main hash table):\n"
        " table size: %d\n"
        " number of elements: %d\n"
        " different slots: %d\n"
        " max chain length: %d\n"
        " avg chain length (counted): %.02f\n"
        " avg chain length (computed): %.02f\n"
        " Chain length distribution:\n"
        % (size, used, slots, max(chains.values()), total / slots, used / slots)]
    for length in range(_DICT_STATS_VECTLEN - 1):
        if vector[length]:
            out.append("   %d: %d (%.02f%%)\n" % (length, vector[length],
                                                    vector[length] / size * 100))
    return "".join(out)


@command("debug htstats", argc=(3, 3))
def _debug_htstats(client, argv):
    dbid = to_int(argv[2])
    if dbid is None:
        raise CommandError(errors.NOT_INTEGER)
    dbs = client.server.dbs
    if not 0 <= dbid < len(dbs):
        raise CommandError("ERR Out of range database")
    db = dbs[dbid]
    return Verbatim(("[Dictionary HT]\n" + _dict_stats(db.data, len(db.data))
                     + "[Expires HT]\n" + _dict_stats(db.expires, len(db.expires))).encode())


@command("debug htstats-key", argc=(3, 3))
def _debug_htstats_key(client, argv):
    db = client.db
    value = db.lookup(argv[2])
    if value is None:
        raise CommandError(errors.NO_SUCH_KEY)
    # Only the hashtable encoding of sets and hashes and the skiplist encoding of sorted
    # sets (its member → score dict) have a dict to describe.
    encoding = key_encoding(db, argv[2], value)
    if encoding == "hashtable":
        members = value
    elif encoding == "skiplist":
        members = value.scores
    else:
        raise CommandError("ERR The value stored at the specified key is not "
                           "represented using an hash table")
    return Verbatim(_dict_stats(members, len(members)).encode())


_PROTOCOL_TYPES_ERROR = (
    "ERR Wrong protocol type name. Please use one of the following: "
    "string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false")


@command("debug protocol", argc=(3, 3))
def _debug_protocol(client, argv):
    # A sample reply of each RESP type, for client tests (debug.c).
    name = argv[2].lower()
    resp3 = client.resp >= 3
    if name == b"string":
        return b"Hello World"
    if name == b"integer":
        return 12345
    if name == b"double":
        return 3.141
    if name == b"bignum":
        number = b"1234567999999999999999999999999999999"
        return Raw(b"(%s\r\n" % number) if resp3 else number
    if name == b"null":
        return None
    if name == b"array":
        return [0, 1, 2]
    if name == b"set":
        return ReplySet([0, 1, 2])
    if name == b"map":
        return {0: False, 1: True, 2: False}
    following = b"$39\r\nSome real reply following the attribute\r\n"
    if name == b"attrib":
        # Attributes are not replies: a real reply follows (the only one in RESP2).
        if resp3:
            return Raw(b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n"
                       + following)
        return Raw(following)
    if name == b"push":
        if not resp3:
            raise CommandError("ERR RESP2 is not supported by this command")
        return Raw(b">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n"
                   b"$40\r\nSome real reply following the push reply\r\n")
    if name == b"true":
        return True
    if name == b"false":
        return False
    if name == b"verbatim":
        return Verbatim(b"This is a verbatim\nstring")
    raise CommandError(_PROTOCOL_TYPES_ERROR)


@command("debug set-active-expire", argc=(3, 3))
def _debug_set_active_expire(client, argv):
    value = to_int(argv[2])
    if value is None:
        raise CommandError(errors.NOT_INTEGER)
    client.server.config.values["active-expire-enabled"] = bool(value)
    return OK


@command("debug set-skip-checksum-validation", argc=(3, 3))
def _debug_set_skip_checksum_validation(client, argv):
    # verifyDumpPayload() then checks the RDB version of a RESTORE payload only.
    client.server.skip_checksum_validation = bool(c_atoi(argv[2]))
    return OK


@command("debug aof-flush-sleep", argc=(3, 3))
def _debug_aof_flush_sleep(client, argv):
    # server.aof_flush_sleep: microseconds flushAppendOnlyFile() sleeps before writing.
    client.server.aof.flush_sleep_us = max(c_atoi(argv[2]), 0)
    return OK


@command("debug pause-cron", argc=(3, 3))
def _debug_pause_cron(client, argv):
    client.server.pause_cron = bool(c_atoi(argv[2]))
    return OK


@command("debug config-rewrite-force-all", argc=(2, 2))
def _debug_config_rewrite_force_all(client, argv):
    # CONFIG REWRITE writing every option, defaults included (rewriteConfig(file, 1)).
    config = client.server.config
    try:
        config.rewrite(force_all=True)
    except OSError as exc:
        raise CommandError("ERR CONFIG-REWRITE-FORCE-ALL failed: %s" % exc.strerror) from None
    return OK


@command("debug replybuffer", argc=(4, 4))
def _debug_replybuffer(client, argv):
    # DEBUG REPLYBUFFER PEAK-RESET-TIME <never|reset|ms> / RESIZING <0|1>: tune how the
    # cron resizes each client's 16 KB reply buffer. Replies here go straight to the
    # transport, with no such buffer to resize: the arguments are checked, then OK.
    option = argv[2].lower()
    if option == b"peak-reset-time":
        if argv[3].lower() not in (b"never", b"reset") and to_int(argv[3]) is None:
            raise CommandError(errors.NOT_INTEGER)
    elif option != b"resizing":  # (addReplySubcommandSyntaxError names argv[1])
        raise CommandError(errors.SUBCOMMAND_SYNTAX.format(
            argv[1].decode("utf-8", "replace"), "DEBUG"))
    return OK


@command("debug populate", argc=(3, 5))
def _debug_populate(client, argv):
    # DEBUG POPULATE count [prefix] [size]: keys prefix:N with value value:N (padded).
    count = to_int(argv[2])
    if count is None or count < 0:
        raise CommandError(errors.NOT_INTEGER)
    prefix = argv[3] if len(argv) > 3 else b"key"
    size = None
    if len(argv) > 4:
        size = to_int(argv[4])
        if size is None or size < 0:
            raise CommandError(errors.NOT_INTEGER)
    db = client.db
    for i in range(count):
        key = b"%s:%d" % (prefix, i)
        if db.lookup(key) is not None:
            continue
        value = b"value:%d" % i
        if size is not None:
            value = value[:size].ljust(size, b"\0")
        db.set(key, value)
    return OK


@command("debug error", argc=(3, 3))
def _debug_error(client, argv):
    raise CommandError(_text(argv[2]))


@command("debug log", argc=(3, 3))
def _debug_log(client, argv):
    logger.warning("DEBUG LOG: %s" % _text(argv[2]))
    return OK


# Crashes on purpose, each the way Redis's comes about (debugCommand()): a write to a
# read-only page (the SIGSEGV handler's report), serverAssertWithInfo(c, argv[0], 1 == 2),
# serverPanic(), and an allocation zmalloc cannot satisfy (redisOutOfMemoryHandler()).
@command("debug segfault", argc=(2, None))
def _debug_segfault(client, argv):
    client.server.crashlog.segfault(client, argv, sys._getframe())


@command("debug assert", argc=(2, None))
def _debug_assert(client, argv):
    client.server.crashlog.assertion_failed("1 == 2", _here(), client, argv, sys._getframe())


@command("debug panic", argc=(2, None))
def _debug_panic(client, argv):
    client.server.crashlog.panic("DEBUG PANIC called at Unix time %d" % int(time.time()),
                                 _here(), client, argv, sys._getframe())


@command("debug oom", argc=(2, None))
def _debug_oom(client, argv):
    size = (1 << 63) - 1  # SIZE_MAX/2
    logger.warning("Out Of Memory allocating %d bytes!" % size)
    client.server.crashlog.panic(
        "Redis aborting for OUT OF MEMORY. Allocating %d bytes!" % size, _here(), client,
        argv, sys._getframe())


def _here() -> str:
    caller = sys._getframe(1)
    return "%s:%d" % (os.path.basename(caller.f_code.co_filename), caller.f_lineno)


# OK and nothing else: these tune or exercise Redis's C internals (the quicklist's
# plain-node threshold, which Redis's own list tests set), which have no counterpart here.
@command("debug jmap", argc=(2, 2))
@command("debug quicklist-packed-threshold", argc=(3, 3))
@command("debug stringmatch-len", argc=(3, None))
def _debug_ok(client, argv):
    return OK


DEBUG_HELP = [
    'DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
    'AOF-FLUSH-SLEEP <microsec>',
    '    Server will sleep before flushing the AOF, this is used for testing.',
    'ASSERT',
    '    Crash by assertion failed.',
    'CHANGE-REPL-ID',
    '    Change the replication IDs of the instance.',
    '    Dangerous: should be used only for testing the replication subsystem.',
    'CONFIG-REWRITE-FORCE-ALL',
    '    Like CONFIG REWRITE but writes all configuration options, including',
    '    keywords not listed in original configuration file or default values.',
    'CRASH-AND-RECOVER [<milliseconds>]',
    '    Hard crash and restart after a <milliseconds> delay (default 0).',
    'DIGEST',
    '    Output a hex signature representing the current DB content.',
    'DIGEST-VALUE <key> [<key> ...]',
    '    Output a hex signature of the values of all the specified keys.',
    'ERROR <string>',
    '    Return a Redis protocol error with <string> as message. Useful for clients',
    '    unit tests to simulate Redis errors.',
    'LEAK <string>',
    '    Create a memory leak of the input string.',
    'LOG <message>',
    '    Write <message> to the server log.',
    'HTSTATS <dbid>',
    '    Return hash table statistics of the specified Redis database.',
    'HTSTATS-KEY <key>',
    "    Like HTSTATS but for the hash table stored at <key>'s value.",
    'LOADAOF',
    '    Flush the AOF buffers on disk and reload the AOF in memory.',
    'REPLICATE <string>',
    '    Replicates the provided string to replicas, allowing data divergence.',
    'MALLCTL <key> [<val>]',
    '    Get or set a malloc tuning integer.',
    'MALLCTL-STR <key> [<val>]',
    '    Get or set a malloc tuning string.',
    'OBJECT <key>',
    '    Show low level info about `key` and associated value.',
    'DROP-CLUSTER-PACKET-FILTER <packet-type>',
    '    Drop all packets that match the filtered type. Set to -1 allow all packets.',
    'OOM',
    '    Crash the server simulating an out-of-memory error.',
    'PANIC',
    '    Crash the server simulating a panic.',
    'POPULATE <count> [<prefix>] [<size>]',
    '    Create <count> string keys named key:<num>. If <prefix> is specified then',
    "    it is used instead of the 'key' prefix. These are not propagated to",
    '    replicas. Cluster slots are not respected so keys not belonging to the',
    '    current node can be created in cluster mode.',
    'PROTOCOL <type>',
    '    Reply with a test value of the specified type. <type> can be: string,',
    '    integer, double, bignum, null, array, set, map, attrib, push, verbatim,',
    '    true, false.',
    'RELOAD [option ...]',
    '    Save the RDB on disk and reload it back to memory. Valid <option> values:',
    '    * MERGE: conflicting keys will be loaded from RDB.',
    '    * NOFLUSH: the existing database will not be removed before load, but',
    '      conflicting keys will generate an exception and kill the server.',
    '    * NOSAVE: the database will be loaded from an existing RDB file.',
    '    Examples:',
    '    * DEBUG RELOAD: verify that the server is able to persist, flush and reload',
    '      the database.',
    '    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an',
    '      existing RDB file.',
    '    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB',
    '      file to the database.',
    'RESTART [<milliseconds>]',
    '    Graceful restart: save config, db, restart after a <milliseconds> delay (default 0).',
    'SDSLEN <key>',
    '    Show low level SDS string info representing `key` and value.',
    'SEGFAULT',
    '    Crash the server with sigsegv.',
    'SET-ACTIVE-EXPIRE <0|1>',
    '    Setting it to 0 disables expiring keys in background when they are not',
    '    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the',
    '    default.',
    'QUICKLIST-PACKED-THRESHOLD <size>',
    '    Sets the threshold for elements to be inserted as plain vs packed nodes',
    '    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.',
    'SET-SKIP-CHECKSUM-VALIDATION <0|1>',
    "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
    'SLEEP <seconds>',
    '    Stop the server for <seconds>. Decimals allowed.',
    'STRINGMATCH-TEST',
    '    Run a fuzz tester against the stringmatchlen() function.',
    'STRUCTSIZE',
    '    Return the size of different Redis core C structures.',
    'LISTPACK <key>',
    '    Show low level info about the listpack encoding of <key>.',
    'QUICKLIST <key> [<0|1>]',
    '    Show low level info about the quicklist encoding of <key>.',
    '    The optional argument (0 by default) sets the level of detail',
    'CLIENT-EVICTION',
    '    Show low level client eviction pools info (maxmemory-clients).',
    'PAUSE-CRON <0|1>',
    '    Stop periodic cron job processing.',
    'REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>',
    '    Sets the time (in milliseconds) to wait between client reply buffer peak resets.',
    '    In case NEVER is provided the last observed peak will never be reset',
    '    In case RESET is provided the peak reset time will be restored to the default value',
    'REPLYBUFFER RESIZING <0|1>',
    '    Enable or disable the reply buffer resize cron job',
    'CLUSTERLINK KILL <to|from|all> <node-id>',
    '    Kills the link based on the direction to/from (both) with the provided node.',
    'HELP',
    '    Prints this help.',
]


@command("debug help", argc=(2, 2))
def _debug_help(client, argv):
    # Redis's full list, though only some subcommands are implemented here.
    return DEBUG_HELP


# -- DEBUG DIGEST / DIGEST-VALUE: computed in keyspace/digest.py ----------------------


@command("debug digest", argc=(2, 2))
def _debug_digest(client, argv):
    return dataset_digest(client.server.dbs)  # a status reply, as addReplyStatus()


@command("debug digest-value", argc=(2, None))
def _debug_digest_value(client, argv):
    return [value_digest(client.db, key) for key in argv[2:]]


@command("debug change-repl-id", argc=(2, 2))
def _debug_change_repl_id(client, argv):
    # changeReplicationId(); clearReplicationId2()
    client.server.repl.change_replid()
    client.server.repl.clear_replid2()
    return OK


@command("debug replicate", argc=(3, None))
def _debug_replicate(client, argv):
    # replicationFeedSlaves(server.slaves, server.slaveseldb, argv + 2, ...): the
    # arguments go to the replicas as a command (no AOF), with no SELECT before them.
    repl = client.server.repl
    repl.sink(repl.seldb, argv[2:])
    return OK


def _fit_loaded_encodings(server) -> None:
    """rdbLoadObject() encodes each loaded collection by the server's limits
    (zset-max-listpack-*, hash-max-listpack-*, set-max-intset-entries), whatever the
    file held; the loader builds them by Redis's default limits, so a reload under other
    settings fits them here. Packed values (decoded on first read) are left alone."""
    config = server.config
    zset_entries, zset_value = config["zset-max-listpack-entries"], config["zset-max-listpack-value"]
    hash_entries, hash_value = config["hash-max-listpack-entries"], config["hash-max-listpack-value"]
    intset_entries = config["set-max-intset-entries"]
    for db in server.dbs:
        for value in db.data.values():
            kind = getattr(value, "type_name", None)
            if kind == "zset" and isinstance(value, ZSet):
                value.fit(zset_entries, zset_value)
            elif kind == "hash" and isinstance(value, HashValue):
                value.ht = False
                value.check_encoding(hash_entries, hash_value)
            elif kind == "set" and isinstance(value, RedisSet):
                value.intset = len(value) <= intset_entries and all(
                    to_int(member) is not None for member in value)


@command("debug reload", argc=(2, 5))
def _debug_reload(client, argv):
    """DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save, empty the dataset, load it back —
    the round trip a snapshot must survive (debug.c)."""
    server = client.server
    options = {a.lower() for a in argv[2:]}
    if not options <= {b"merge", b"noflush", b"nosave"}:
        raise CommandError("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
    snapshots = server.snapshots
    if b"nosave" not in options:
        snapshots.write_file(snapshots.path)
    if b"noflush" not in options:
        # emptyData(): the keys and the function libraries (signalFlushedDb() first).
        for hook in server.hooks.flushed:
            hook()
        for db in server.dbs:
            db.flush()
        server.functions_engine.flush()
    try:
        with open(snapshots.path, "rb") as f:
            data = f.read()
        load_functions(server, rdb.load_snapshot(data, server.dbs, log=logger.warning),
                       replace=b"merge" in options)
        _fit_loaded_encodings(server)
    except (OSError, rdb.RDBError) as exc:
        logger.warning(f"Error trying to load the RDB dump: {exc}")
        raise CommandError("ERR Error trying to load the RDB dump") from None
    logger.notice("DB reloaded by DEBUG RELOAD")
    return "OK"


@command("debug loadaof", argc=(2, None))
def _debug_loadaof(client, argv):
    server = client.server
    try:
        server.aof.reload()
    except (OSError, AOFError, rdb.RDBError) as exc:
        # loadAppendOnlyFiles() failing here exits the process in Redis too: the dataset
        # was emptied already and cannot be served half loaded.
        logger.warning(f"Fatal error loading the AOF by DEBUG LOADAOF: {exc}. Exiting.")
        os._exit(1)
    server.dirty = 0  # nothing to save, nothing to propagate
    logger.warning("Append Only File loaded by DEBUG LOADAOF")
    return OK


_run_subcommand = subcommand_runner("debug")


@command("debug")
def debug(client, argv):
    # processCommand() refuses DEBUG under enable-debug-command before debugCommand()
    # parses argv[1]: a refused client gets this error whatever the subcommand.
    if not _debug_allowed(client):
        raise CommandError(DEBUG_DENIED)
    return _run_subcommand(client, argv)
