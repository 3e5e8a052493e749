"""MIGRATE (cluster.c migrateCommand): keys moved to another server as DUMP payloads
that the target RESTOREs, then deleted here (unless COPY).

Like Redis's, the transfer is synchronous: the command holds the event loop (and so
every other client) while it connects, writes and waits for the replies, each step
bounded by the command's timeout. As in Redis, the connection to a target stays open
in server.migrate_sockets (INFO migrate_cached_sockets) for the next MIGRATE to it,
which skips the connect, and the SELECT when the database is the same; the cron closes
it after MIGRATE_SOCKET_CACHE_TTL seconds unused.

What is logged (AOF, replicas) is DEL of the keys the target acknowledged, the way
migrateCommand() rewrites its argv; the handler's reply carries that list to the
rewrite.
"""

from __future__ import annotations

import random
import socket
import time

from ..keyspace.database import now_ms
from ..notify import notify
from ..persistence import rdb
from ..protocol import errors
from ..protocol.encode import Raw
from ..protocol.errors import CommandError
from ..protocol.numbers import to_int
from .registry import command

REDACTED = b"(redacted)"

_CHUNK = 64 * 1024  # the query goes out in 64K writes, each under the timeout


class _Migrated(Raw):
    """+OK, with the keys deleted here (for the DEL the command propagates as)."""


class _MigrateError(CommandError):
    """An error reply after some keys were moved already: still propagated as DEL."""


class _SocketError(Exception):
    def __init__(self, timed_out: bool, writing: bool = False):
        super().__init__()
        self.timed_out = timed_out
        self.writing = writing


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(_bulk(a) for a in args)


MIGRATE_SOCKET_CACHE_ITEMS = 64  # cluster.c: at most this many targets kept
MIGRATE_SOCKET_CACHE_TTL = 10  # seconds unused before the cron closes one


class _Link:
    """migrateCachedSocket: connBlockingConnect() + connSyncWrite() /
    connSyncReadLine(), each step under the timeout (milliseconds) of the MIGRATE
    using it; the database last SELECTed there (-1: SELECT again)."""

    def __init__(self, name: bytes, host: str, port: int, timeout_ms: int):
        self.name = name  # host:port, its key in MigrateSockets
        self.buf = b""
        self.sock = socket.create_connection((host, port), timeout=timeout_ms / 1000)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.last_dbid = -1
        self.last_use = time.time()

    def set_timeout(self, timeout_ms: int) -> None:
        self.sock.settimeout(timeout_ms / 1000)

    def write(self, data: bytes) -> None:
        try:
            for pos in range(0, len(data), _CHUNK):
                self.sock.sendall(data[pos:pos + _CHUNK])
        except socket.timeout:
            raise _SocketError(True, writing=True) from None
        except OSError:
            raise _SocketError(False, writing=True) from None

    def read_line(self) -> bytes:
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(16384)
            except socket.timeout:
                raise _SocketError(True) from None
            except OSError:
                raise _SocketError(False) from None
            if not chunk:
                raise _SocketError(False)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def close(self) -> None:
        self.sock.close()


class MigrateSockets:
    """server.migrate_cached_sockets: the open connection to each MIGRATE target
    (host:port as the command spells them), as cluster.c keeps them."""

    def __init__(self):
        self.links: dict[bytes, _Link] = {}

    def __len__(self) -> int:
        return len(self.links)

    def get(self, host: bytes, port: bytes, timeout_ms: int) -> _Link:
        """migrateGetSocket(): the cached connection, or a new one (OSError when it
        cannot be made); the cache full, a random one is dropped first."""
        name = host + b":" + port
        link = self.links.get(name)
        if link is None:
            if len(self.links) >= MIGRATE_SOCKET_CACHE_ITEMS:
                self.links.pop(random.choice(list(self.links))).close()
            link = _Link(name, host.decode("utf-8", "replace"), to_int(port) or 0,
                         timeout_ms)
            self.links[name] = link
        else:
            link.set_timeout(timeout_ms)
        link.last_use = time.time()
        return link

    def close(self, name: bytes) -> None:
        """migrateCloseSocket(): after an I/O error (the next MIGRATE reconnects)."""
        link = self.links.pop(name, None)
        if link is not None:
            link.close()

    def cron(self) -> None:
        """migrateCloseTimedoutSockets()"""
        if not self.links:
            return
        now = time.time()
        for name, link in list(self.links.items()):
            if now - link.last_use > MIGRATE_SOCKET_CACHE_TTL:
                del self.links[name]
                link.close()


def _parse(argv: list[bytes]):
    copy = replace = False
    username = password = None
    first_key, num_keys = 3, 1
    j = 6
    while j < len(argv):
        option = argv[j].lower()
        moreargs = len(argv) - 1 - j
        if option == b"copy":
            copy = True
        elif option == b"replace":
            replace = True
        elif option == b"auth":
            if not moreargs:
                raise CommandError(errors.SYNTAX)
            j += 1
            password = argv[j]
            argv[j] = REDACTED  # redactClientCommandArgument(): SLOWLOG never shows it
        elif option == b"auth2":
            if moreargs < 2:
                raise CommandError(errors.SYNTAX)
            username, password = argv[j + 1], argv[j + 2]
            argv[j + 1] = argv[j + 2] = REDACTED
            j += 2
        elif option == b"keys":
            if argv[3]:
                raise CommandError("ERR When using MIGRATE KEYS option, the key argument "
                                   "must be set to the empty string")
            first_key, num_keys = j + 1, len(argv) - j - 1
            break
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    timeout = to_int(argv[5])
    dbid = to_int(argv[4])
    if timeout is None or dbid is None or not -2**63 <= timeout < 2**63 \
            or not -2**63 <= dbid < 2**63:
        raise CommandError(errors.NOT_INTEGER)
    if timeout <= 0:
        timeout = 1000
    keys = argv[first_key:first_key + num_keys]
    return copy, replace, username, password, keys, dbid, timeout


@command("migrate", rewrite=lambda db, argv, reply: (
    [[b"DEL", *reply.deleted]] if getattr(reply, "deleted", None) else []))
def migrate(client, argv):
    copy, replace, username, password, names, dbid, timeout = _parse(argv)
    db = client.db
    # Keys missing now are skipped; none at all is +NOKEY, not an error (they may just
    # have expired meanwhile).
    # (peek: a value still packed is sent as it is held, as DUMP does.)
    found = [(key, value) for key in names if (value := db.peek(key)) is not None]
    if not found:
        return Raw(b"+NOKEY\r\n")
    server = client.server
    limits = server.snapshots._limits()
    sockets = server.migrate_sockets
    may_retry = True
    while True:
        try:
            try:
                link = sockets.get(argv[1], argv[2], timeout)
            except ConnectionRefusedError:
                # connBlockingConnect() only waits for the socket to be writable: a
                # refused connection shows as the first write failing.
                raise _SocketError(False, writing=True) from None
            except (OSError, OverflowError, ValueError):
                raise CommandError("IOERR error or timeout connecting to the client") from None
            return _transfer(client, link, found, copy, replace, username, password, dbid,
                             limits)
        except _SocketError as exc:
            # The connection is closed (a retry reconnects); Redis retries once, as a
            # cached one may have died meanwhile; a timeout is final.
            sockets.close(argv[1] + b":" + argv[2])
            if exc.timed_out or not may_retry:
                raise CommandError("IOERR error or timeout %s to target instance"
                                   % ("writing" if exc.writing else "reading")) from None
            may_retry = False


def _transfer(client, link: _Link, found, copy, replace, username, password, dbid, limits):
    db = client.db
    parts = []
    if password is not None:
        parts.append(_command(b"AUTH", username, password) if username is not None
                     else _command(b"AUTH", password))
    select = link.last_dbid != dbid  # the target's database is kept with the link
    if select:
        parts.append(_command(b"SELECT", b"%d" % dbid))
    moving = []
    now = now_ms()
    for key, value in found:
        ttl = 0
        when = db.get_expire(key)
        if when is not None:
            ttl = when - now
            if ttl < 0:
                continue  # expired since the lookup
            ttl = max(ttl, 1)
        moving.append(key)
        args = [b"RESTORE", key, b"%d" % ttl, rdb.dump_payload(value, limits)]
        if replace:
            args.append(b"REPLACE")
        parts.append(_command(*args))
    link.write(b"".join(parts))
    auth_reply = link.read_line() if password is not None else b"+"
    select_reply = link.read_line() if select else b"+"
    error = None
    deleted = []
    for index, key in enumerate(moving):
        try:
            reply = link.read_line()
        except _SocketError as exc:
            if index == 0 and error is None:
                raise  # nothing processed yet: a retry may still succeed
            if error is None:
                error = exc
            break
        if auth_reply[:1] == b"-" or select_reply[:1] == b"-" or reply[:1] == b"-":
            if error is None:
                failed = (auth_reply if auth_reply[:1] == b"-" else
                          select_reply if select_reply[:1] == b"-" else reply)
                error = _MigrateError("ERR Target instance replied with error: "
                                      + failed[1:].decode("utf-8", "replace"))
        elif not copy:
            # The target has it: remove the local key, signal the change.
            db.delete(key)
            notify(client, "del", key)
            deleted.append(key)
    if isinstance(error, _SocketError):
        client.server.migrate_sockets.close(link.name)
        message = "IOERR error or timeout reading to target instance"
        error = _MigrateError(message)
    # Success: the next MIGRATE here skips the SELECT; an error: it SELECTs again.
    link.last_dbid = dbid if error is None else -1
    if error is None:
        reply = _Migrated(b"+OK\r\n")
        reply.deleted = deleted
        return reply
    if not deleted:
        raise error
    # Some keys moved: the error is the reply, and the DEL of those keys still goes to
    # the AOF and replicas (call() propagates whatever changed the dataset).
    client.server.count_error(error)
    error.deleted = deleted
    return error
