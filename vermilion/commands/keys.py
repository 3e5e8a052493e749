"""The generic key commands (db.c): DEL, EXISTS, TYPE, RENAME, MOVE, COPY, KEYS, SCAN,
RANDOMKEY, TOUCH, OBJECT, FLUSHDB/FLUSHALL, DBSIZE."""

from ..protocol import errors
from ..protocol.encode import OK
from ..protocol.errors import CommandError
from .registry import command


# -- flushing -------------------------------------------------------------------------------


def _flush_flags(argv: list[bytes]) -> None:
    # db.c getFlushCommandFlags(): at most one argument, ASYNC or SYNC.
    if len(argv) > 2:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2 and argv[1].lower() not in (b"async", b"sync"):
        raise CommandError(errors.SYNTAX)


def _signal_flushed(server, db) -> None:
    # touchAllWatchedKeysInDb(): WATCHed keys that existed are now modified.
    watchers = server.key_watchers
    if not watchers:
        return
    for (db_id, key), clients in list(watchers.items()):
        if db_id == db.id and key in db.data:
            for client in clients:
                client.dirty_cas = True


def flush_db(server, db) -> int:
    _signal_flushed(server, db)
    return db.flush()


@command("flushdb")
def flushdb(client, argv):
    _flush_flags(argv)
    server = client.server
    server.dirty += flush_db(server, client.db)
    return OK


@command("flushall")
def flushall(client, argv):
    _flush_flags(argv)
    server = client.server
    removed = 0
    for db in server.dbs:
        removed += flush_db(server, db)
    # flushallCommand(): dirty counts the removed keys plus one so a save point fires.
    server.dirty += removed + 1
    return OK


@command("dbsize")
def dbsize(client, argv):
    # Like Redis, expired keys not reclaimed yet are still counted.
    return len(client.db.data)


# -- existence and deletion --------------------------------------------------------------------


def _delete_keys(client, argv):
    db = client.db
    lookup = db.lookup
    deleted = 0
    for key in argv[1:]:
        # lookup() first so an expired key counts as missing (and expires lazily).
        if lookup(key) is not None and db.delete(key):
            deleted += 1
    return deleted


@command("del")
def del_(client, argv):
    return _delete_keys(client, argv)


@command("unlink")
def unlink(client, argv):
    return _delete_keys(client, argv)


@command("exists")
def exists(client, argv):
    # Repeated keys count once per mention, as existsCommand() does.
    lookup = client.db.lookup
    return sum(1 for key in argv[1:] if lookup(key) is not None)
