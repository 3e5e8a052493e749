"""Server: the event loop, the listeners, the clients, the cron and the shutdown order.

One thread executes commands, as in Redis: handlers are synchronous, so every command
is atomic. The cron runs `hz` times a second (active expiry, client timeouts, and the
jobs later issues register: saves, AOF fsync, eviction).
"""

import asyncio
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from . import REDIS_VERSION, __version__
from .client import Client
from .commands import load_all
from .config import Config
from .keyspace.database import Database
from .keyspace.expiry import active_expire_cycle
from .log import logger
from .protocol.errors import CommandError
from .protocol.parser import ParserLimits
from .slowlog import SlowLog

DENIED_MESSAGE = (
    "DENIED Redis is running in protected mode because protected mode is enabled and no "
    "password is set for the default user. In this mode connections are only accepted "
    "from the loopback interface. If you want to connect from external computers to "
    "Redis you may adopt one of the following solutions: 1) Just disable protected mode "
    "sending the command 'CONFIG SET protected-mode no' from the loopback interface by "
    "connecting to Redis from the same host the server is running, however MAKE SURE "
    "Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to "
    "make this change permanent. 2) Alternatively you can just disable the protected mode "
    "by editing the Redis configuration file, and setting the protected mode option to "
    "'no', and then restarting the server. 3) If you started the server manually just for "
    "testing, restart it with the '--protected-mode no' option. 4) Set up an "
    "authentication password for the default user. NOTE: You only need to do one of the "
    "above things in order for the server to start accepting connections from the "
    "outside."
)


@dataclass
class Stats:
    total_connections_received: int = 0
    total_commands_processed: int = 0
    rejected_connections: int = 0
    expired_keys: int = 0
    expired_stale_perc: float = 0.0
    expired_time_cap_reached_count: int = 0
    expire_cycle_cpu_milliseconds: int = 0
    evicted_keys: int = 0
    evicted_clients: int = 0
    keyspace_hits: int = 0
    keyspace_misses: int = 0
    total_net_input_bytes: int = 0
    total_net_output_bytes: int = 0
    total_error_replies: int = 0
    unexpected_error_replies: int = 0
    errorstats: dict = field(default_factory=dict)


class Server:
    def __init__(self, config: Config):
        self.config = config
        config.server = self
        load_all()
        self.dbs = [Database(i, self) for i in range(config["databases"])]
        self.clients: dict[int, Client] = {}
        self._client_ids = 0
        self.stats = Stats()
        self.dirty = 0  # changes since the last save (rdb_changes_since_last_save)
        self.start_time = time.time()
        self.lastsave = int(self.start_time)
        self.slowlog = SlowLog(config["slowlog-max-len"])
        self.monitors: set[Client] = set()
        self.key_watchers: dict = {}  # WATCH (transactions issue)
        self.command_checks: list = []  # (client, spec, argv) → raise CommandError
        self.cron_jobs: list = []  # callables run hz times a second
        self.shutdown_hooks: list = []  # callables run before exit (save, AOF flush)
        self.client_close_hooks: list = []  # (client) when a connection ends
        self.output_limit_hooks: list = []  # (client) when its output buffer backs up
        self.expire_hooks: list = []  # (db, key) when a key expires
        self.shutdown_flags: frozenset = frozenset()
        self.pause_until = 0.0
        self.pause_writes_only = False
        self.parser_limits = ParserLimits(config["proto-max-bulk-len"])
        self.loop: asyncio.AbstractEventLoop | None = None
        self.listeners: list = []
        self.tcp_port = 0
        self._stopping: asyncio.Future | None = None
        self.shutdown_asap = False
        self.apply_config()
        from .persistence.snapshot import install as install_snapshots

        install_snapshots(self)

    # -- configuration hooks ------------------------------------------------------------

    @property
    def slowlog_threshold(self) -> int:
        return self._slowlog_threshold

    def apply_config(self) -> None:
        """Refresh the values the hot path caches (called after CONFIG SET)."""
        self._slowlog_threshold = self.config["slowlog-log-slower-than"]
        self.parser_limits.proto_max_bulk_len = self.config["proto-max-bulk-len"]
        if self.slowlog.entries.maxlen != self.config["slowlog-max-len"]:
            self.slowlog.resize(self.config["slowlog-max-len"])
        logger.configure(self.config["loglevel"], self.config["logfile"])

    def auth_required(self) -> bool:
        return bool(self.config["requirepass"])

    # -- clients -------------------------------------------------------------------------

    def next_client_id(self) -> int:
        self._client_ids += 1
        return self._client_ids

    def admit(self, client: Client) -> str | None:
        """None, or the error a new connection gets before being closed."""
        if len(self.clients) >= self.config["maxclients"]:
            self.stats.rejected_connections += 1
            return "ERR max number of clients reached"
        if self.config["protected-mode"] and not self.auth_required() and not client.unix:
            host = client.addr.rsplit(":", 1)[0].strip("[]")
            if not (host.startswith("127.") or host == "::1" or host.startswith("::ffff:127.")):
                self.stats.rejected_connections += 1
                return DENIED_MESSAGE
        return None

    def add_client(self, client: Client) -> None:
        self.clients[client.id] = client
        self.stats.total_connections_received += 1
        sock = client.transport.get_extra_info("socket")
        keepalive = self.config["tcp-keepalive"]
        if sock is not None and keepalive and not client.unix:
            _set_keepalive(sock, keepalive)

    def remove_client(self, client: Client) -> None:
        self.clients.pop(client.id, None)
        self.monitors.discard(client)
        for hook in self.client_close_hooks:
            hook(client)

    def check_output_limits(self, client: Client) -> None:
        """client-output-buffer-limit: enforced by the module that owns the classes."""
        for hook in self.output_limit_hooks:
            hook(client)

    def feed_monitors(self, client: Client, argv: list[bytes]) -> None:
        # replicationFeedMonitors(): +<time> [<db> <addr>] "arg" "arg"
        now = time.time()
        addr = "unix:" + self.config["unixsocket"] if client.unix else client.addr
        text = "+%.6f [%d %s] %s\r\n" % (
            now, client.db.id, addr, " ".join(_repr_arg(a) for a in argv)
        )
        data = text.encode()
        for monitor in list(self.monitors):
            monitor.write(data)

    # -- statistics ------------------------------------------------------------------------

    def count_error(self, exc: CommandError) -> None:
        self.count_error_code(exc.code)

    def count_error_code(self, code: str) -> None:
        stats = self.stats
        stats.total_error_replies += 1
        # Redis caps errorstats at 128 distinct codes (ERRORSTATS_LIMIT).
        if code in stats.errorstats or len(stats.errorstats) < 128:
            stats.errorstats[code] = stats.errorstats.get(code, 0) + 1

    def key_expired(self, db, key: bytes) -> None:
        """Hook for keyspace notifications / propagation of expiries (later issues)."""
        for hook in self.expire_hooks:
            hook(db, key)

    def signal_modified(self, db, key: bytes) -> None:
        watchers = self.key_watchers.get((db.id, key))
        if watchers:
            for client in watchers:
                client.dirty_cas = True

    # -- run ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stopping = self.loop.create_future()
        port = self.config["port"]
        if port:
            await self._listen_tcp(port)
        if self.config["unixsocket"]:
            await self._listen_unix(self.config["unixsocket"], self.config["unixsocketperm"])
        self._write_pidfile()
        self.snapshots.load_at_startup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._on_signal, sig)
        self._schedule_cron()

    async def _listen_tcp(self, port: int) -> None:
        for entry in self.config["bind"]:
            optional = entry.startswith("-")
            addr = entry[1:] if optional else entry
            host = {"*": "0.0.0.0", "::*": "::"}.get(addr, addr)
            try:
                srv = await self.loop.create_server(
                    lambda: Client(self), host, port, reuse_address=True,
                    backlog=self.config["tcp-backlog"],
                    family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                )
            except OSError as exc:
                if optional or exc.errno in (97, 99):  # EAFNOSUPPORT / EADDRNOTAVAIL
                    logger.warning(f"Warning: Could not create server TCP listening socket {addr}:{port}: {exc.strerror}")
                    continue
                logger.warning(f"Warning: Could not create server TCP listening socket {addr}:{port}: {exc.strerror}")
                raise SystemExit(1)
            self.listeners.append(srv)
            self.tcp_port = srv.sockets[0].getsockname()[1]
        if not self.listeners:
            logger.warning("Failed listening on port %d (tcp), aborting." % port)
            raise SystemExit(1)

    async def _listen_unix(self, path: str, perm: int) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        srv = await self.loop.create_unix_server(lambda: Client(self, unix=True), path)
        if perm:
            os.chmod(path, perm)
        self.listeners.append(srv)

    async def serve_until_stopped(self) -> int:
        await self._stopping
        return await self._shutdown()

    # -- cron --------------------------------------------------------------------------------

    def _schedule_cron(self) -> None:
        self.loop.call_later(1.0 / self.config["hz"], self._cron)

    def _cron(self) -> None:
        if self._stopping.done():
            return
        try:
            if self.config["active-expire-enabled"]:
                active_expire_cycle(self)
            self._close_idle_clients()
            for job in self.cron_jobs:
                job()
        except Exception as exc:  # the cron must survive a bug in one job
            logger.warning(f"cron job failed: {exc!r}")
        self._schedule_cron()

    def _close_idle_clients(self) -> None:
        timeout = self.config["timeout"]
        if not timeout:
            return
        now = time.time()
        for client in list(self.clients.values()):
            if now - client.last_interaction > timeout and not client.flags & {"P", "O", "b"}:
                logger.verbose("Closing idle client")
                client.close()

    # -- shutdown ------------------------------------------------------------------------------

    def _on_signal(self, sig: int) -> None:
        name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
        if self.shutdown_asap:
            logger.warning(f"You insist... exiting now.")
            os._exit(1)
        logger.warning(f"Received {name} scheduling shutdown...")
        self.shutdown_asap = True
        self.request_shutdown(0)

    def request_shutdown(self, code: int = 0, flags: frozenset = frozenset()) -> None:
        """Ask the loop to run the shutdown sequence after the current command."""
        self.shutdown_flags = flags
        if not self._stopping.done():
            self._stopping.set_result(code)

    def prepare_shutdown(self, flags: frozenset = frozenset()) -> bool:
        """Run the shutdown hooks (save, AOF flush). False if one failed and FORCE is not set."""
        logger.warning("User requested shutdown...")
        for hook in self.shutdown_hooks:
            try:
                hook(flags)
            except Exception as exc:
                logger.warning(f"Error during shutdown: {exc}")
                if "force" not in flags:
                    return False
        return True

    async def _shutdown(self) -> int:
        for srv in self.listeners:
            srv.close()
        if not getattr(self, "_prepared", False):
            self.prepare_shutdown(self.shutdown_flags)
        for client in list(self.clients.values()):
            client.close()
        self._remove_pidfile()
        if self.config["unixsocket"]:
            try:
                os.unlink(self.config["unixsocket"])
            except OSError:
                pass
        logger.warning("Redis is now ready to exit, bye bye...")
        await asyncio.sleep(0)
        return self._stopping.result()

    def _write_pidfile(self) -> None:
        path = self.config["pidfile"]
        if path:
            try:
                with open(path, "w") as f:
                    f.write(f"{os.getpid()}\n")
            except OSError as exc:
                logger.warning(f"Failed to write PID file: {exc.strerror}")

    def _remove_pidfile(self) -> None:
        path = self.config["pidfile"]
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass

    def banner(self) -> None:
        logger.notice("oO0OoO0OoO0Oo Vermilion is starting oO0OoO0OoO0Oo")
        logger.notice(
            f"Vermilion version={__version__}, redis_version={REDIS_VERSION}, bits=64, "
            f"pid={os.getpid()}, just started"
        )
        logger.notice(f"Running mode=standalone, port={self.tcp_port or self.config['port']}.")
        logger.notice("Server initialized")


def _set_keepalive(sock, interval: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, interval // 3))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError:
        pass


def _repr_arg(arg: bytes) -> str:
    # sdscatrepr(): "quoted", with \n \r \t \a \b and \xHH for non-printables.
    out = ['"']
    for byte in arg:
        ch = chr(byte)
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append("\\x%02x" % byte)
    out.append('"')
    return "".join(out)


def run(config: Config) -> int:
    """Start the server and block until it shuts down; returns the exit code."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a hard dependency
        pass

    async def main() -> int:
        server = Server(config)
        await server.start()
        server.banner()
        logger.notice("Ready to accept connections")
        return await server.serve_until_stopped()

    return asyncio.run(main())
