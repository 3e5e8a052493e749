"""SAVE, BGSAVE, DUMP and RESTORE (rdb.c, cluster.c dumpCommand/restoreCommand)."""

from ..keyspace import cost
from ..keyspace.database import now_ms
from ..log import logger
from ..persistence import rdb
from ..propagate import rewrite_restore
from ..protocol import errors
from ..protocol.encode import OK
from ..protocol.errors import CommandError
from ..protocol.numbers import parse_int
from .registry import command
from ..notify import notify, notify_new_key

BUSYKEY = "BUSYKEY Target key name already exists."


@command("save")
def save(client, argv):
    client.server.snapshots.save()
    return OK


@command("bgsave")
def bgsave(client, argv):
    snapshots = client.server.snapshots
    schedule = False
    if len(argv) > 1:
        if len(argv) == 2 and argv[1].lower() == b"schedule":
            schedule = True
        else:
            raise CommandError(errors.SYNTAX)
    if snapshots.child_pid:
        if schedule:
            snapshots.scheduled = True
            return "Background saving scheduled"
        raise CommandError("ERR Background save already in progress")
    snapshots.bgsave()
    return "Background saving started"


@command("dump")
def dump(client, argv):
    # A value still packed (as loaded, or restored unchecked) is dumped as it is held,
    # without decoding it: DUMP never walks the value in Redis either.
    value = client.db.peek(argv[1])
    if value is None:
        return None
    return rdb.dump_payload(value, client.server.snapshots._limits())


def _restore_options(client) -> rdb.LoadOptions:
    """rdbLoadObject()'s deep_integrity_validation for a RESTORE: sanitize-dump-payload
    yes, or clients for a client that is neither the master (nor another internal
    client: the superuser) nor an ACL user with skip-sanitize-payload."""
    config = client.server.config
    mode = config["sanitize-dump-payload"]
    deep = mode == "yes"
    if mode == "clients":
        user = client.user
        deep = not (user is client.server.acl.superuser
                    or user.sanitize == "skip-sanitize-payload")
    return rdb.LoadOptions.from_config(config, deep)


def _set_lru_or_lfu(db, key: bytes, freq: int | None, idle: int | None) -> None:
    """objectSetLRUOrLFU(): under an LFU policy FREQ sets the counter, under any other
    IDLETIME (seconds) moves the last access back. Only kept while the policy tracks
    access data (db.track), as every access stamp is here."""
    old = db.meta.get(key)
    if old is None or not db.track:
        return
    if db.track == 2:
        if freq is None:
            return
        stamp = (cost.lfu_minutes() << 8) | freq
    else:
        if idle is None:
            return
        clock = cost.lru_clock()
        stamp = clock - idle  # LRU_CLOCK_RESOLUTION is 1000 ms: seconds are clock ticks
        if stamp < 0:  # the wrapping clock underflows: half-way in the future
            stamp = (clock + cost.LRU_CLOCK_MAX // 2) % cost.LRU_CLOCK_MAX
    db.meta[key] = (stamp << cost.STAMP_SHIFT) | (old & cost.COST_MASK)


@command("restore", rewrite=rewrite_restore)
def restore(client, argv):
    db = client.db
    key = argv[1]
    replace = absttl = False
    idle = freq = None
    i = 4
    while i < len(argv):
        option = argv[i].lower()
        more = len(argv) - i - 1
        if option == b"replace":
            replace = True
        elif option == b"absttl":
            absttl = True
        elif option == b"idletime" and more >= 1 and freq is None:
            idle = parse_int(argv[i + 1])
            if idle < 0:
                raise CommandError("ERR Invalid IDLETIME value, must be >= 0")
            i += 1
        elif option == b"freq" and more >= 1 and idle is None:
            freq = parse_int(argv[i + 1])
            if not 0 <= freq <= 255:
                raise CommandError("ERR Invalid FREQ value, must be >= 0 and <= 255")
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if not replace and db.lookup(key) is not None:
        raise CommandError(BUSYKEY)
    ttl = parse_int(argv[2])
    if ttl < 0:
        raise CommandError("ERR Invalid TTL value, must be >= 0")
    try:
        value = rdb.restore_payload(argv[3], _restore_options(client),
                                    client.server.skip_checksum_validation)
    except rdb.RDBError as exc:
        if exc.reason == rdb.CHECKSUM_WRONG:
            raise CommandError("ERR " + rdb.CHECKSUM_WRONG) from None
        if not isinstance(exc, rdb.EmptyKey) and exc.reason != rdb.EOF_REASON:
            # rdbReportError() in a RESTORE: logged at verbose level, not fatal.
            logger.verbose(rdb.corruption_log_line(exc.reason))
        raise CommandError("ERR Bad data format") from None
    deleted = db.delete(key) if replace else False
    if ttl and not absttl:
        ttl += now_ms()
    if ttl and ttl <= now_ms():
        # Already expired: the key is simply not created (a replaced key stays deleted).
        if deleted: notify(client, "del", key)  # noqa: E701
        return OK
    db.set(key, value)
    if ttl:
        db.set_expire(key, ttl)
    _set_lru_or_lfu(db, key, freq, idle)
    if deleted:  # dbDelete() + dbAdd(): "new" even for a replaced key
        notify_new_key(client.server, db, key)
    notify(client, "restore", key)
    return OK


@command("bgrewriteaof")
def bgrewriteaof(client, argv):
    server = client.server
    aof = server.aof
    if aof.rewrite_child:
        raise CommandError("ERR Background append only file rewriting already in progress")
    if aof.has_active_child() or client.in_exec:
        # bgrewriteaofCommand(): no fork inside a transaction or beside another child;
        # the cron starts it later, at once since a manual trigger resets the failures.
        aof.rewrite_scheduled = True
        aof.consecutive_failures = 0
        return "Background append only file rewriting scheduled"
    # Redis rewrites even with appendonly no (the files are simply not used).
    if not aof.rewrite():
        raise CommandError("ERR Can't execute an AOF background rewriting. Please check the "
                           "server logs for more information.")
    return "Background append only file rewriting started"
