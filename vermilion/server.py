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

import setproctitle

from . import REDIS_VERSION, __version__
from .connection import Connection
from .crashlog import CrashLog
from .commands import load_all
from .commands.dispatch import process_command
from .config import Config, ConfigError, expand_proc_title
from .keyspace.blocking import BlockingState
from .keyspace.database import Database
from .keyspace.expiry import active_expire_cycle
from .log import logger
from .protocol.encode import sds_repr
from .protocol.errors import LOADING, CommandError
from .commands.registry import CommandTable
from .memory import rss_bytes
from .commands.transactions import discard_transaction
from .keyspace.watch import touch_swapped_dbs, touch_watched_key
from .notify import Notifier
from .pubsub import PubSub
from .tracking import TrackingTable
from .commands.introspection import keys_from_argv
from .commands.migrate import MigrateSockets
from .commands.scripting import declared_script_flags
from .acl import AccessControl
from .oomscore import BGCHILD, MASTER, REPLICA, OomScore
from .commands.acl_cmds import build_catalogue, refresh_sessions
from .scripting.library import FunctionsEngine
from . import eviction, listeners
from .persistence.aof import AppendOnlyFile, apply_appendonly
from .persistence.diskerror import DiskErrors
from .persistence.snapshot import Snapshots
from .propagate import TO_AOF, Propagation, propagate_raw
from .replication.master import PAUSE_FOREVER, ReplicaSet
from .replication.replica import MasterLink
from .replication.state import ReplicationState
from .protocol.parser import ParserLimits
from .slowlog import LatencyMonitor, SlowLog
from . import tls

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
    "testing, restart it with the '--protected-mode no' option. 4) Setup a an "
    "authentication password for the default user. NOTE: You only need to do one of the "
    "above things in order for the server to start accepting connections from the "
    "outside."
)


# A transport's high-water mark (uvloop's default): past it a client is paused_writing
# and every write checks its limits; under it a check is only needed for a smaller limit.
OBUF_CHECK_FROM = 64 * 1024


def _obuf_check_from(limits: dict) -> int:
    """The output size under which no client can reach any limit, capped at the
    high-water mark: the write paths check a client's limits only from there."""
    return min([x for hard, soft, _ in limits.values() for x in (hard, soft) if x]
               + [OBUF_CHECK_FROM])


# Unsent replies past which a client that does not read them stops being read from
# (Server.throttles_output): a bound on what one such client can make the server hold
# (Redis has none by default), above what a pipeline of a million small commands that
# reads its replies at the end needs.
FLOW_CONTROL_BYTES = 32 * 1024 * 1024


@dataclass
class Stats:
    total_connections_received: int = 0
    total_commands_processed: int = 0
    rejected_connections: int = 0
    expired_keys: int = 0
    expired_stale_perc: float = 0.0
    expired_time_cap_reached_count: int = 0
    expire_cycle_cpu_milliseconds: int = 0
    expire_cycle_time_used_us: int = 0  # the same, in µs (the milliseconds are derived)
    evicted_keys: int = 0
    evicted_clients: int = 0
    # Values a lazy delete would hand to Redis's background thread: Vermilion frees them
    # at once, so none is ever pending (lazyfree_pending_objects stays 0).
    lazyfreed_objects: int = 0
    keyspace_hits: int = 0
    keyspace_misses: int = 0
    total_net_input_bytes: int = 0
    total_net_output_bytes: int = 0
    total_net_repl_input_bytes: int = 0  # from our master (stat_net_repl_input_bytes)
    total_net_repl_output_bytes: int = 0  # to our replicas: stream and RDB transfers
    total_error_replies: int = 0
    unexpected_error_replies: int = 0
    total_reads_processed: int = 0
    total_writes_processed: int = 0
    total_forks: int = 0  # stat_total_forks: every redisFork() (BGSAVE, AOF rewrite)
    errorstats: dict = field(default_factory=dict)


class Hooks:
    """A server's extension points, declared in one place and filled only by
    Server.__init__ (as initServer() sets Redis's): who is called when."""

    __slots__ = ("command_checks", "cron", "shutdown", "client_close", "client_reset",
                 "expire", "flushed", "swapdb", "resetstat", "config_apply")

    def __init__(self):
        # Before a command runs, (session, spec, argv) → raise CommandError; present only
        # while they can refuse something, since the dispatcher's fast path tests the list.
        self.command_checks: list = []
        self.cron: list = []  # () hz times a second
        self.shutdown: list = []  # (flags) before exit, in order
        self.client_close: list = []  # (session) when its connection ends
        self.client_reset: list = []  # (session) on RESET
        self.expire: list = []  # (db, key) when a key expires
        self.flushed: list = []  # () when FLUSHDB/FLUSHALL empty data (signalFlushedDb())
        self.swapdb: list = []  # (first, second) after SWAPDB
        self.resetstat: list = []  # () on CONFIG RESETSTAT, beside the Stats reset
        # directive → (server, value): the step of a subsystem once CONFIG SET changed it
        self.config_apply: dict = {}


class Server:
    def __init__(self, config: Config):
        """initServer(): every piece of server state is declared here, and this is the
        one place that wires the subsystems to each other (self.hooks)."""
        self.config = config
        config.server = self
        load_all()
        self.commands = CommandTable(config.renamed)  # under the names rename-command gave
        self.hooks = Hooks()
        self.dbs = [Database(i, self) for i in range(config["databases"])]
        # -- clients
        self.clients: dict[int, Connection] = {}
        self.clients_peak = 0  # most clients at once since memory was last given back
        self._memory_release = None  # the timer of _release_memory
        self._client_ids = 0
        self.acl = AccessControl(build_catalogue())  # users (Session.user), the ACL LOG
        self._apply_acl_settings()
        self.acl.set_default_password(config["requirepass"])
        self._load_users()
        self.monitors: set[Connection] = set()
        self.postponed: list[Connection] = []  # clients waiting for CLIENT PAUSE to end
        self.pause_until = 0.0
        self.pause_writes_only = False
        self._pause_timer = None
        self.parser_limits = ParserLimits(config["proto-max-bulk-len"])
        self.obuf_limits: dict = {}  # client-output-buffer-limit, per class (apply_config)
        self.obuf_check_from = 0  # the lowest limit: output past it is checked as it grows
        # Sessions (and the notifier) that need the dispatcher's slow path (dispatch.py).
        self.gated: set = set()
        # -- statistics
        self.stats = Stats()
        self.dirty = 0  # changes since the last save (rdb_changes_since_last_save)
        self.start_time = time.time()
        self.lastsave = int(self.start_time)
        self.slowlog = SlowLog(config["slowlog-max-len"])
        self.latency = LatencyMonitor()
        self.instantaneous: dict[str, float] = {}  # ops / in / out per second (INFO stats)
        self._inst_sample = (time.monotonic(), 0, 0, 0, 0, 0)
        self.run_id = os.urandom(20).hex()
        # -- memory (eviction.install fills the evictor and the usage function)
        self.memory_usage = None  # callable → used_memory bytes
        self.clients_memory = 0  # the clients' bytes as last summed (memory.refresh_clients)
        self.evictor = None
        self.used_memory_startup = 0
        self.memory_peak = 0
        # -- keyspace events: WATCH, blocked clients, pub/sub, notifications
        self.key_watchers: dict = {}  # (db_id, key) → {session: None} (keyspace/watch.py)
        self.blocking = BlockingState(self)
        self.pubsub = PubSub()
        self.notifier = Notifier(self)
        self.tracking = TrackingTable(self, _command_keys)  # CLIENT TRACKING (tracking.py)
        # -- scripting, made on first use (a Lua runtime and its thread cost memory)
        self.scripting = None  # scripting.engine.ScriptEngine (engine_of)
        self.functions_engine = FunctionsEngine(self)  # FUNCTION's libraries (Lua on first use)
        # -- persistence
        self.propagation = Propagation()  # where executed writes go: the AOF, replicas
        self.loading = False  # True while the dataset loads (clients get -LOADING)
        self.pending_replies: list = []  # (client, bytes) waiting for the AOF flush
        self._append_flush_scheduled = False
        self.snapshots = Snapshots(self)
        self.aof = AppendOnlyFile(self)
        self.disk_errors = DiskErrors(self)  # -MISCONF while a save or an AOF write fails
        # -- replication: the stream's history, the replicas attached, the master link
        self.repl = ReplicationState(self)
        self.replicas = ReplicaSet(self)
        self.master_link = MasterLink(self)
        # While this server follows a master it never expires keys itself: reads see an
        # expired key as missing, and only the master's commands (run with
        # master_executing set) still see it, until the master's DEL arrives (expire.c's
        # expireIfNeeded() on a replica).
        self.replica_mode = False
        self.master_executing = False
        # -- running
        self.loop: asyncio.AbstractEventLoop | None = None
        self.listeners: list = []
        self.tcp_port = 0
        self.tls = tls.TlsContexts(config)  # the SSL contexts (tlsConfigure())
        self.tls_listeners: list = []  # the tls-port's (listeners.py)
        self.tls_port = 0
        self._stopping: asyncio.Future | None = None
        self._prepared = False
        self.shutdown_asap = False  # a SIGTERM/SIGINT asked for a shutdown
        self.signal_shutdown_flags: frozenset = frozenset()  # shutdown-on-sigterm/sigint's
        self.shutdown_flags: frozenset = frozenset()
        # shutdown_mstime: while non-zero a shutdown waits (writes paused) until then
        # for lagging replicas; the cron finishes it (isShutdownInitiated()).
        self.shutdown_deadline = 0.0
        self.shutdown_waiters: list = []  # SHUTDOWN clients blocked meanwhile
        self.oom_score = OomScore()  # oom-score-adj (setOOMScoreAdj())
        self.pause_cron = False  # DEBUG PAUSE-CRON: the cron does nothing meanwhile
        self._cron_timer: asyncio.Handle | None = None  # the cron's next tick
        self._cron_skipped = False  # a tick came while the cron was paused
        self.skip_checksum_validation = False  # DEBUG SET-SKIP-CHECKSUM-VALIDATION (RESTORE)
        self.crashlog = CrashLog(self)  # the crash report on a fatal signal (debug.c)
        self.migrate_sockets = MigrateSockets()  # MIGRATE's connections to its targets
        self.apply_config()
        eviction.install(self)  # memory accounting and maxmemory (evict.c)
        self._wire()

    def _wire(self) -> None:
        """Who is called when: the whole list (the dispatcher's checks are added and
        removed at run time by their owners, only while they can refuse something)."""
        hooks = self.hooks
        hooks.cron += [self.snapshots.cron, self.aof.child_cron,
                       lambda: eviction.cron(self), self.replicas.cron, self.master_link.cron,
                       self.tracking.cron, self.migrate_sockets.cron]
        hooks.shutdown.append(self.snapshots.shutdown_hook)  # the AOF's goes first, when on
        hooks.shutdown.append(self.master_link.shutdown_hook)
        hooks.expire += [self._propagate_expired,
                         lambda db, key: touch_watched_key(self, db, key),
                         self.notifier.expired, self.tracking.expired]
        hooks.flushed.append(self.tracking.flushed)
        hooks.swapdb += [lambda first, second: touch_swapped_dbs(self, first, second),
                         self.blocking.swapped,
                         lambda first, second: eviction.swap_accounting(self, first, second)]
        # A closing or RESET client leaves its transaction, its subscriptions, tracking.
        for when in (hooks.client_close, hooks.client_reset):
            when += [discard_transaction, self.pubsub.unsubscribe_everything,
                     self.tracking.disable]
        hooks.client_close += [self.blocking.client_closed, self.replicas.client_closed,
                               lambda client: eviction.client_closed(self, client)]
        hooks.resetstat += [self._reset_own_stats, self.replicas.reset_stats]
        apply = hooks.config_apply
        for name in eviction.DIRECTIVES:
            apply[name] = eviction.configure
        apply["port"] = listeners.APPLY_PORT
        apply["bind"] = listeners.APPLY_BIND
        for name in tls.DIRECTIVES:
            apply[name] = listeners.apply_tls
        apply["tls-port"] = listeners.apply_tls_port
        apply["tls-auth-clients"] = self.tls.set_auth_clients
        apply["appendonly"] = apply_appendonly
        apply["aof-disable-auto-gc"] = self.aof.apply_auto_gc
        apply["requirepass"] = self._apply_requirepass
        apply["oom-score-adj"] = apply["oom-score-adj-values"] = self._apply_oom_score
        self.config.rewrite_sources.append(self._rewrite_users)
        apply["acl-pubsub-default"] = apply["acllog-max-len"] = self._apply_acl_settings
        apply["min-replicas-to-write"] = apply["min-replicas-max-lag"] = self.replicas.configure
        apply["replica-read-only"] = self.master_link.configure
        apply["tracking-table-max-keys"] = self.tracking.configure
        apply["crash-log-enabled"] = self.crashlog.configure
        apply["proc-title-template"] = lambda server, value: self.set_proc_title()
        self.replicas.configure()
        self.tracking.configure()
        self.repl.outputs.append(self.replicas.stream)

    # -- configuration hooks ------------------------------------------------------------

    def set_proc_title(self, title: str | None = None) -> None:
        """redisSetProcTitle(): the title ps and top show, from proc-title-template
        ({title} is the command as started, or a child's role)."""
        config = self.config
        if not config["set-proc-title"]:
            return
        port, tls_port = config["port"], config["tls-port"]
        bind = config["bind"]
        if port or tls_port:
            listen = f"{bind[0] if bind else '*'}:{port or tls_port}"
        else:
            listen = f"unixsocket:{config['unixsocket']}"
        text = expand_proc_title(config["proc-title-template"], {
            "title": sys.argv[0] if title is None else title, "listen-addr": listen,
            "server-mode": "", "config-file": config.config_file or "-",
            "port": str(port), "tls-port": str(tls_port), "unixsocket": config["unixsocket"]})
        if text:
            setproctitle.setproctitle(text)

    @property
    def slowlog_threshold(self) -> int:
        return self._slowlog_threshold

    def apply_config(self) -> None:
        """Refresh the values the hot path caches (called after CONFIG SET)."""
        # The dispatcher reports commands at or above _slowlog_threshold µs to the slow
        # log, which also feeds the latency monitor: the lower of the two thresholds.
        slow = self.config["slowlog-log-slower-than"]
        latency_ms = self.config["latency-monitor-threshold"]
        self.slowlog.log_threshold = slow
        self.slowlog.latency_threshold_ms = latency_ms
        self.slowlog.latency = self.latency if latency_ms else None
        self._slowlog_threshold = min(slow if slow >= 0 else latency_ms * 1000,
                                      latency_ms * 1000) if latency_ms else slow
        self.parser_limits.proto_max_bulk_len = self.config["proto-max-bulk-len"]
        self.notifier.configure(self.config["notify-keyspace-events"])
        self.obuf_limits = self.config["client-output-buffer-limit"]
        self.obuf_check_from = _obuf_check_from(self.obuf_limits)
        if self.slowlog.entries.maxlen != self.config["slowlog-max-len"]:
            self.slowlog.resize(self.config["slowlog-max-len"])
        logger.configure(self.config["loglevel"], self.config["logfile"])

    def auth_required(self) -> bool:
        return self.acl.auth_required()

    def _load_users(self) -> None:
        """ACLLoadUsersAtStartup(): the 'user' lines, or the aclfile, never both."""
        control, config = self.acl, self.config
        for args in config.users:
            control.queue_config_user([a.encode("utf-8", "surrogateescape") for a in args])
        failure = None
        if config["aclfile"] and control.to_load:
            failure = ("Configuring Redis with users defined in redis.conf and at the same "
                       "setting an ACL file path is invalid. This setup is very likely to "
                       "lead to configuration errors and security holes, please define "
                       "either an ACL file or declare users directly in your redis.conf, "
                       "but not both.")
        elif (problem := control.load_config_users()) is not None:
            logger.warning(problem)
            failure = "Critical error while loading ACLs. Exiting."
        elif config["aclfile"]:
            users, errors = control.parse_file(config["aclfile"])
            if users is None:
                failure = "Aborting Redis startup because of ACL errors: " + errors
            else:
                control.replace_users(users)
        if failure:
            logger.warning(failure)
            raise SystemExit(1)

    def _rewrite_users(self, config) -> list:
        # rewriteConfigUserOption(): with an aclfile the users live there.
        if config["aclfile"]:
            return [("user", [])]
        return [("user", [("user %s %s" % (u.name.decode("utf-8", "surrogateescape"),
                                            u.describe()), True)
                          for u in self.acl.sorted_users()])]

    def set_oom_score(self, process_class: int | None = None) -> bool:
        """setOOMScoreAdj(): the score of this process's class (master or replica when
        None, as the role changes; BGCHILD in a fork child)."""
        if process_class is None:
            process_class = REPLICA if self.master_link.host is not None else MASTER
        config = self.config
        return self.oom_score.apply(config["oom-score-adj"], config["oom-score-adj-values"],
                                    process_class)

    def kill_rdb_child(self) -> None:
        """killRDBChild(): SIGUSR1 to the child writing an RDB, a BGSAVE's or one
        writing for replicas (reaping it tells whoever waited for it)."""
        if self.snapshots.child_pid:
            try:
                os.kill(self.snapshots.child_pid, signal.SIGUSR1)
            except OSError:
                pass
        self.replicas.kill_child()

    def enter_child(self, title: str | None = None) -> None:
        """What every fork child does first (redisFork()): log as "C", offer itself to
        the OOM killer before its parent, and take its role as the {title} of its
        process title ("redis-rdb-bgsave"...)."""
        logger.role = "C"
        self.set_oom_score(BGCHILD)
        if title is not None:
            self.set_proc_title(title)

    def _apply_oom_score(self, server, value) -> None:
        if not self.set_oom_score():
            raise ConfigError("Failed to set current oom_score_adj. Check server logs.")

    def _apply_requirepass(self, server, value) -> None:
        # ACLUpdateDefaultUserPassword(): the default user's only password, or nopass.
        self.acl.set_default_password(value)
        refresh_sessions(self)

    def _apply_acl_settings(self, server=None, value=None) -> None:
        self.acl.pubsub_default_all = self.config["acl-pubsub-default"] == "allchannels"
        self.acl.log_max_len = self.config["acllog-max-len"]
        del self.acl.log[self.acl.log_max_len:]

    # -- clients -------------------------------------------------------------------------

    def next_client_id(self) -> int:
        self._client_ids += 1
        return self._client_ids

    def admit(self, client: Connection) -> str | None:
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

    def add_client(self, client: Connection) -> None:
        self.clients[client.id] = client
        if len(self.clients) > self.clients_peak:
            self.clients_peak = len(self.clients)
        self.stats.total_connections_received += 1
        sock = client.transport.get_extra_info("socket")
        keepalive = self.config["tcp-keepalive"]
        if sock is not None and keepalive and not client.unix:
            _set_keepalive(sock, keepalive)

    def remove_client(self, client: Connection) -> None:
        self.clients.pop(client.id, None)
        self.monitors.discard(client)
        if client.postponed is not None:
            client.postponed = None
            if client in self.postponed:
                self.postponed.remove(client)
        for hook in self.hooks.client_close:
            hook(client)
        if self.clients_peak - len(self.clients) >= RELEASE_AFTER_CLIENTS:
            # Many connections left: their memory sits in malloc's free lists, which
            # glibc does not give back by itself (jemalloc's decay does it for Redis).
            self.clients_peak = len(self.clients)
            self.schedule_memory_release()

    def schedule_memory_release(self) -> None:
        """Give free heap memory back to the system a second from now (after the last
        of a wave of disconnections, once their buffers are freed)."""
        if self.loop is None:
            return
        if self._memory_release is not None:
            self._memory_release.cancel()
        self._memory_release = self.loop.call_later(1.0, self._release_memory)

    def _release_memory(self) -> None:
        self._memory_release = None
        _malloc_trim()

    # -- client-output-buffer-limit ----------------------------------------------------

    def check_output_limits(self, client: Connection, pending: int = 0) -> None:
        """closeClientOnOutputBufferLimitReached(c, async=1): the client's unsent
        replies (transport buffer + those waiting for the AOF) against its class limits;
        past the hard limit, or past the soft limit for longer than its seconds, the
        client is closed at once and its replies are dropped. The client calls this as
        its output grows (client.py), the cron for soft limits. pending: replies built
        but not handed to the transport yet, which Redis already holds in its buffer."""
        if client.closing:
            return
        hard, soft, seconds = self.obuf_limits[self._obuf_class(client)]
        if hard and "S" in client.flags:
            hard = max(hard, self.config["repl-backlog-size"])  # see hard_output_limit
        used = client.output_buffer_size() + pending
        over = False
        if hard and used >= hard:
            over = True
        elif soft and used >= soft:
            now = time.time()
            if not client.obuf_soft_since:
                client.obuf_soft_since = now
            elif now - client.obuf_soft_since > seconds:  # Redis: "elapsed <= seconds" is not yet
                over = True
        else:
            client.obuf_soft_since = 0.0
        if over:
            logger.warning(
                f"Connection {self.describe_client(client)} scheduled to be closed ASAP for "
                f"overcoming of output buffer limits.")
            # freeClientAsync(): nothing more is sent to it or run for it (closing), and
            # the transport drops its buffer now; connection_lost follows.
            client.abort()
            self.schedule_memory_release()  # that buffer was up to the hard limit

    def hard_output_limit(self, client: Connection) -> int:
        """The hard client-output-buffer-limit of the client's class (0: none). A
        replica's is at least repl-backlog-size (checkClientOutputBufferLimits(): a
        replica's output shares the backlog's memory, and a lower limit would drop a
        replica right after the partial resync that sent it the backlog)."""
        hard = self.obuf_limits[self._obuf_class(client)][0]
        if hard and "S" in client.flags:
            hard = max(hard, self.config["repl-backlog-size"])
        return hard

    def throttles_output(self, client: Connection) -> bool:
        """Whether a client that stops reading its replies is stopped being read from
        (flow control, Vermilion's own bound): only when nothing else bounds its output,
        and only past FLOW_CONTROL_BYTES of unsent replies. Redis never stops reading a
        client: one that pipelines a million commands before it reads a reply (Tcl's
        deferring clients, a big redis-py pipeline) must not deadlock on its own send,
        so its replies may grow that far first. Under a hard limit the limit closes it;
        under maxmemory Redis lets its output grow and counts it in used_memory, where
        it evicts keys (or, with maxmemory-clients, the biggest clients)."""
        return not self.hard_output_limit(client) and not self.config["maxmemory"] \
            and not self.config["maxmemory-clients"] \
            and client.output_buffer_size() >= FLOW_CONTROL_BYTES

    @staticmethod
    def _obuf_class(client: Connection) -> str:
        # getClientType(): MONITOR clients and masters count as normal here.
        if "S" in client.flags:
            return "replica"
        if "P" in client.flags:
            return "pubsub"
        return "normal"

    def describe_client(self, client) -> str:
        """catClientInfoString(): the CLIENT LIST line of a client, for the log."""
        from .commands.client_cmds import client_info_line

        return client_info_line(client)

    def _check_soft_limits(self) -> None:
        # A client stuck over its soft limit with no new writes is still closed in time.
        for client in list(self.clients.values()):
            if client.paused_writing and not client.closing:
                self.check_output_limits(client)

    # -- CLIENT PAUSE ---------------------------------------------------------------------

    def pause_clients(self, until: float, writes_only: bool) -> None:
        """pauseClients(): the later end time and the stricter mode (ALL) win."""
        if self.pause_until:
            self.pause_writes_only = self.pause_writes_only and writes_only
        else:
            self.pause_writes_only = writes_only
        self.pause_until = max(self.pause_until, until)
        if self._pause_timer is not None:
            self._pause_timer.cancel()
        delay = max(self.pause_until - time.time(), 0)
        self._pause_timer = self.loop.call_later(delay, self.unpause_clients)

    def unpause_clients(self) -> None:
        self.pause_until = 0.0
        self.pause_writes_only = False
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._pause_timer = None
        waiting, self.postponed = self.postponed, []
        for client in waiting:
            client.clear_flag("b")
            client.resume_postponed()

    def must_postpone(self, client: Connection, argv: list[bytes]) -> bool:
        """processCommand(): during a pause, every command waits (ALL) or only those that
        may write (WRITE: getCommandFlags() has write or may_replicate — a script's own
        declared flags for EVAL*/FCALL*, the queued commands' for EXEC); replicas never
        wait — the master's link does: a paused replica reads its stream but applies it
        after the pause. A command refused at lookup (unknown, wrong arity) gets its
        error at once."""
        if time.time() >= self.pause_until:
            self.unpause_clients()
            return False
        if "S" in client.flags:
            return False
        try:
            spec = self.commands.lookup(argv)
        except CommandError:
            return False
        if not self.pause_writes_only:
            return True
        if self._may_replicate(spec, argv):
            return True
        # EXEC: c->mstate.cmd_flags, the union of its queued commands' flags.
        multi = client.multi
        return (spec.fullname == "exec" and multi is not None
                and any(self._may_replicate(s, a) for s, a in multi.queue))

    def script_flags(self, spec, argv: list[bytes]):
        """getCommandFlags()'s script part for the layers below commands (the flags an
        EVAL*/FCALL* script declares, or None: commands/scripting.py)."""
        return declared_script_flags(self, spec, argv)

    def _may_replicate(self, spec, argv: list[bytes]) -> bool:
        flags = declared_script_flags(self, spec, argv)
        if flags is not None:  # scriptFlagsToCmdFlags(): write unless no-writes
            return b"no-writes" not in flags
        return spec.is_write or "may_replicate" in spec.flags

    def postpone(self, client: Connection) -> None:
        # blockClient(c, BLOCKED_POSTPONE): flag "b", counted in INFO's blocked_clients.
        if client not in self.postponed:
            self.postponed.append(client)
            client.flags.add("b")

    # -- memory and rates for INFO --------------------------------------------------------

    def used_memory(self) -> int:
        if self.memory_usage is not None:
            return self.memory_usage()
        return rss_bytes()

    def note_memory_peak(self, used: int) -> int:
        if used > self.memory_peak:
            self.memory_peak = used
        return self.memory_peak

    def recent_max_input_buffer(self) -> int:
        return max((c.parser.buffered() for c in self.clients.values()), default=0)

    def recent_max_output_buffer(self) -> int:
        return max((c.output_buffer_size() for c in self.clients.values()), default=0)

    def _reset_own_stats(self) -> None:
        # resetServerStats(): the memory peak and the instantaneous rates start over.
        self.memory_peak = 0
        self.instantaneous = {}
        self._inst_sample = (time.monotonic(), 0, 0, 0, 0, 0)

    def _sample_rates(self) -> None:
        # trackInstantaneousMetric(): rates over the last sampling period.
        now = time.monotonic()
        stats = self.stats
        then, ops, net_in, net_out, repl_in, repl_out = self._inst_sample
        elapsed = now - then
        if elapsed < 0.1:
            return
        self.instantaneous = {
            "ops": (stats.total_commands_processed - ops) / elapsed,
            "in": (stats.total_net_input_bytes - net_in) / elapsed,
            "out": (stats.total_net_output_bytes - net_out) / elapsed,
            "repl_in": (stats.total_net_repl_input_bytes - repl_in) / elapsed,
            "repl_out": (stats.total_net_repl_output_bytes - repl_out) / elapsed,
        }
        self._inst_sample = (now, stats.total_commands_processed,
                             stats.total_net_input_bytes, stats.total_net_output_bytes,
                             stats.total_net_repl_input_bytes,
                             stats.total_net_repl_output_bytes)

    def feed_monitors(self, client: Connection, argv: list[bytes], always: bool = False) -> None:
        # replicationFeedMonitors(): +<time> [<db> <addr>] "arg" "arg". Admin commands
        # are never shown (call()), and passwords are redacted. always: EVAL & co. are
        # skip_monitor for the dispatcher, yet their handlers feed them (before the
        # script's own commands, even when they fail).
        try:
            spec = self.commands.lookup(argv)
        except CommandError:
            return
        if not always and ("admin" in spec.flags or "skip_monitor" in spec.flags):
            return
        redact = _REDACT.get(spec.fullname)
        if redact is not None:
            argv = redact(argv)
        now = time.time()
        addr = "unix:" + self.config["unixsocket"] if client.unix else client.addr
        text = "+%.6f [%d %s] %s\r\n" % (
            now, client.db.id, addr, " ".join(sds_repr(a) for a in argv)
        )
        data = text.encode()
        for monitor in list(self.monitors):
            # Redis feeds after the call: a RESET has already ended its sender's MONITOR.
            if monitor is client and spec.fullname in _ENDS_MONITOR:
                continue
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
        for hook in self.hooks.expire:
            hook(db, key)

    def signal_modified(self, db, key: bytes) -> None:
        """signalModifiedKey(): WATCHers of the key, clients blocked on it, clients
        caching it. Called by Database.touched() while key_watchers is non-empty, which
        the blocking machinery ensures while clients are blocked (blocking.WATCH_MARK)
        and the tracking table while it holds keys or prefixes (TRACKING_MARK)."""
        touch_watched_key(self, db, key)
        if self.blocking.waiters:
            self.blocking.signal(db, key)
        if self.tracking.active:
            self.tracking.modified(key)

    # -- run ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stopping = self.loop.create_future()
        self.crashlog.install()  # initServer(): setupSignalHandlers(), before the load
        if tls.enabled(self.config) and not self.tls.configure():
            logger.warning("Failed to configure TLS. Check logs for more info.")
            raise SystemExit(1)
        await listeners.listen_at_startup(self)
        if not self.listeners and not self.tls_listeners:
            logger.warning("Configured to not listen anywhere, exiting.")
            raise SystemExit(1)
        self._write_pidfile()
        self.set_oom_score()  # main(): setOOMScoreAdj(-1)
        self.banner()  # Redis logs "Server initialized" before loading the data
        await self.load_data_in_background()
        if self.config["replicaof"] is not None and not self.stopping():
            self.master_link.set_master(*self.config["replicaof"], startup=True)
        else:
            self.repl.continue_history_from_rdb()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._on_signal, sig)
        self._schedule_cron()

    def _stop_accepting(self) -> None:
        for srv in self.listeners + self.tls_listeners:
            srv.close()
        self.listeners = []
        self.tls_listeners = []

    def execute(self, session, argv: list[bytes]):
        """Run one command for a session without a socket (the Lua client, the AOF
        loader) on the path a client's command takes; its reply value."""
        session.clock = time.perf_counter_ns()
        return process_command(session, argv)

    def new_connection(self, unix: bool) -> Connection:
        """The protocol of a connection a listener accepted (listeners.py)."""
        return Connection(self, unix=unix)

    def stopping(self) -> bool:
        """A shutdown was requested (and the loop will run it next)."""
        return self._stopping.done()

    async def serve_until_stopped(self) -> int:
        while True:
            await self._stopping
            if self._prepared:
                return await self._shutdown()
            outcome = self.prepare_shutdown(self.shutdown_flags)
            if outcome:
                return await self._shutdown()
            self._stopping = self.loop.create_future()
            if outcome is None:
                continue  # waiting for replicas: the cron finishes it
            # prepareForShutdown() failed on a signal: Redis logs it and keeps serving.
            logger.warning("SIGTERM received but errors trying to shut down the server, "
                           "check the logs for more information")
            self.shutdown_asap = False

    # -- cron --------------------------------------------------------------------------------

    def _schedule_cron(self) -> None:
        self._cron_timer = self.loop.call_later(1.0 / self.config["hz"], self._cron)

    def resume_cron(self) -> None:
        """The end of a pause of the cron (a busy script's): a tick that came meanwhile
        runs now, as Redis's overdue serverCron runs right after the command."""
        self.pause_cron = False
        if self._cron_skipped and self._cron_timer is not None:
            self._cron_timer.cancel()
            self._cron()  # (which schedules the next tick)

    def _cron(self) -> None:
        if self._stopping.done():
            return
        if self.pause_cron:
            self._cron_skipped = True
            self._schedule_cron()
            return
        self._cron_skipped = False
        if self.shutdown_asap and not self.shutdown_deadline:
            self.request_shutdown(0, self.signal_shutdown_flags)  # a signal's, deferred
            return
        try:
            # A CLIENT PAUSE also pauses active expiry: paused means no writes at all.
            if self.config["active-expire-enabled"] and not self.pause_until:
                active_expire_cycle(self)
            self._close_idle_clients()
            self._check_soft_limits()
            self._sample_rates()
            self.note_memory_peak(self.used_memory())
            for job in self.hooks.cron:
                job()
            if self.shutdown_deadline and (time.time() >= self.shutdown_deadline
                                           or self.replicas.ready_to_shutdown()):
                self.finish_shutdown()
        except Exception as exc:  # the cron must survive a bug in one job
            logger.warning(f"cron job failed: {exc!r}")
        self._schedule_cron()

    def _close_idle_clients(self) -> None:
        timeout = self.config["timeout"]
        if not timeout:
            return
        now = time.time()
        for client in list(self.clients.values()):
            if now - client.last_interaction > timeout \
                    and not client.flags & {"P", "O", "b", "S", "M"}:
                logger.verbose("Closing idle client")
                client.close()

    # -- shutdown ------------------------------------------------------------------------------

    def _on_signal(self, sig: int) -> None:
        name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
        if self.shutdown_asap and sig == signal.SIGINT:
            # A second Ctrl+C: no final save, no waiting for lagging replicas.
            logger.warning("You insist... exiting now.")
            os._exit(1)
        if self.loading:
            logger.warning("Received shutdown signal during loading, scheduling shutdown.")
        else:
            logger.warning(f"Received {name} scheduling shutdown...")
        if self.shutdown_asap:
            return  # already scheduled (or waiting for replicas)
        self.shutdown_asap = True
        words = self.config[f"shutdown-on-{name.lower()}"].split()
        self.signal_shutdown_flags = frozenset(w for w in words if w != "default")
        if not self.pause_cron:
            self.request_shutdown(0, self.signal_shutdown_flags)
        # else serverCron() acts on it once DEBUG PAUSE-CRON 0 lets it run again (and
        # SHUTDOWN ABORT may cancel it meanwhile)

    def request_shutdown(self, code: int = 0, flags: frozenset = frozenset(),
                         prepared: bool = False) -> None:
        """Ask the loop to run the shutdown sequence after the current command.
        prepared: SHUTDOWN already ran prepare_shutdown() (and replied on failure)."""
        self.shutdown_flags = flags
        self._prepared = prepared
        if prepared:
            # The exit is decided: Redis exits inside SHUTDOWN, so nothing connects after
            # it (even while a busy script holds the loop's other work back).
            for srv in self.listeners + self.tls_listeners:
                srv.close()
        if not self._stopping.done():
            self._stopping.set_result(code)

    def prepare_shutdown(self, flags: frozenset = frozenset(), client=None) -> bool | None:
        """prepareForShutdown(): True when the server may exit now (the final save and
        AOF flush done), False when that failed without FORCE (it keeps running), None
        when it first waits — writes paused, up to shutdown-timeout seconds — for its
        replicas to acknowledge everything; client (SHUTDOWN) then stays blocked."""
        if self.shutdown_deadline:
            self._block_on_shutdown(client)
            return None
        if self.loading:
            # Half the dataset is in memory: a final save would overwrite the file being
            # loaded with it (prepareForShutdown() forces NOSAVE while loading).
            flags = (flags - {"save"}) | {"nosave"}
        self.shutdown_flags = flags
        logger.warning("User requested shutdown...")
        timeout = self.config["shutdown-timeout"]
        if "now" not in flags and timeout and not self.replicas.ready_to_shutdown():
            self.shutdown_deadline = time.time() + timeout
            if not self.pause_until:
                self.replicas.request_acks()
            self.pause_clients(time.time() + PAUSE_FOREVER, writes_only=True)
            logger.notice("Waiting for replicas before shutting down.")
            self._block_on_shutdown(client)
            return None
        return self._run_shutdown_hooks(flags)

    def _block_on_shutdown(self, client) -> None:
        if client is None:
            return
        self.blocking.block_client(client, [], 0, on_ready=lambda c, key: None)
        self.shutdown_waiters.append(client.blocked)

    def finish_shutdown(self) -> None:
        """finishShutdown() after the wait for replicas: exit, or carry on serving
        when the final save failed (the blocked SHUTDOWN clients get the error)."""
        self.replicas.log_lagging()
        if self._run_shutdown_hooks(self.shutdown_flags):
            self.request_shutdown(0, self.shutdown_flags, prepared=True)
        else:
            self.cancel_shutdown()

    def cancel_shutdown(self) -> None:
        """cancelShutdown(): SHUTDOWN ABORT, or a failed final save."""
        self.shutdown_asap = False
        self.shutdown_flags = frozenset()
        self.shutdown_deadline = 0.0
        waiters, self.shutdown_waiters = self.shutdown_waiters, []
        for waiter in waiters:
            if waiter.client.blocked is waiter:
                self.blocking.unblock(waiter, CommandError("ERR Errors trying to SHUTDOWN. "
                                                           "Check logs."))
        self.unpause_clients()

    def abort_shutdown(self) -> bool:
        """abortShutdown(): False when no shutdown was in progress."""
        if self.shutdown_deadline:
            self.cancel_shutdown()
        elif self.shutdown_asap:
            self.shutdown_asap = False  # a signal's shutdown not started yet
            if self._stopping.done():
                self._stopping = self.loop.create_future()
        else:
            return False
        logger.notice("Shutdown manually aborted.")
        return True

    def _run_shutdown_hooks(self, flags: frozenset) -> bool:
        if self.aof.refuses_shutdown(flags):
            logger.warning("Errors trying to shut down the server. Check the logs for more "
                           "information.")
            return False
        # The final save blocks the loop, whose signal handlers wait for it: a second
        # Ctrl+C must still cut it short (sigShutdownHandler()), so a plain handler
        # stands in meanwhile.
        previous = signal.signal(signal.SIGINT, self._insist_on_exit)
        try:
            done = self._shutdown_steps(flags)
        finally:
            signal.signal(signal.SIGINT, previous)
        if done:
            # finishShutdown() closes the listeners only once the exit is certain: a
            # refused shutdown keeps serving on its sockets (listening again could find
            # the port taken). The blocked loop accepted nothing during the steps.
            self._stop_accepting()
        return done

    def _insist_on_exit(self, signum, frame) -> None:
        logger.warning("You insist... exiting now.")
        try:
            os.unlink(self.snapshots.temp_path(os.getpid()))  # rdbRemoveTempFile()
        except OSError:
            pass
        os._exit(1)

    def _shutdown_steps(self, flags: frozenset) -> bool:
        for hook in self.hooks.shutdown:
            try:
                hook(flags)
            except Exception as exc:
                logger.warning(f"Error trying to shut down: {exc}")
                if "force" not in flags:
                    logger.warning("Errors trying to shut down the server. Check the logs "
                                   "for more information.")
                    return False
        return True

    async def _shutdown(self) -> int:
        """finishShutdown(): stop accepting, close the clients, remove the pid file and
        the unix socket, exit 0."""
        for srv in self.listeners + self.tls_listeners:
            srv.close()
        for client in list(self.clients.values()):
            client.close()
        if self.config["pidfile"]:
            logger.notice("Removing the pid file.")
            self._remove_pidfile()
        if self.config["unixsocket"]:
            logger.notice("Removing the unix socket file.")
            try:
                os.unlink(self.config["unixsocket"])
            except OSError:
                pass
        logger.warning("Redis is now ready to exit, bye bye...")
        await asyncio.sleep(0)
        return self._stopping.result()

    def load_aof(self) -> None:
        try:
            self.aof.start()
        except Exception as exc:
            logger.warning(f"Fatal error loading the DB: {exc}. Exiting.")
            raise SystemExit(1) from None
        self.enable_aof_logging()

    def enable_aof_logging(self) -> None:
        aof = self.aof
        if aof.feed not in self.propagation.sinks:
            self.propagation.add_sink(aof.feed, TO_AOF)
            self.hooks.cron.append(aof.cron)
            self.hooks.shutdown.insert(0, aof.shutdown_hook)

    def disable_aof_logging(self) -> None:
        aof = self.aof
        if aof.feed in self.propagation.sinks:
            self.propagation.remove_sink(aof.feed)
            self.hooks.cron.remove(aof.cron)
            self.hooks.shutdown.remove(aof.shutdown_hook)

    def _propagate_expired(self, db, key: bytes) -> None:
        # An expired key leaves the AOF (and replicas) as an explicit DEL (expire.c).
        if self.propagation.sinks:
            propagate_raw(self, db.id, [b"DEL", key])

    async def load_data_in_background(self) -> None:
        """loadDataFromDisk() while already listening: the AOF when appendonly is on (it
        is the more complete record), else the RDB snapshot. Clients get -LOADING
        meanwhile; only commands flagged 'loading' (INFO, CONFIG ...) run.

        An RDB file loads on the loop's own thread, pausing every
        loading-process-events-interval-bytes to serve clients, as Redis does: a loader
        thread would fight the loop for the GIL each time a client connects (a start-up
        probed every 20 ms took 15 % longer). The AOF replay runs in a thread."""
        self.loading = True
        self.hooks.command_checks.append(self._refuse_while_loading)
        # A failed load exits the process: until then clients keep getting -LOADING,
        # never a PONG from a server that is about to die.
        if self.config["appendonly"]:
            await self.loop.run_in_executor(None, self.load_aof)
        else:
            self.aof.load_manifest_at_startup()  # main() reads it whatever appendonly says
            await self.snapshots.load_at_startup()
        self.hooks.command_checks.remove(self._refuse_while_loading)
        self.loading = False

    def _refuse_while_loading(self, client, spec, argv) -> None:
        # A script's commands during a load are the AOF loader's (processCommand() is
        # not on scriptCall()'s path): no client can start one while loading.
        if self.loading and not spec.allow_loading and not client.loading \
                and not client.script:
            raise CommandError(LOADING)

    def flush_appends(self) -> None:
        """Before replies leave: the AOF must hold every write they acknowledge."""
        if self.aof.buffer:
            self.aof.flush()

    def defer_reply(self, client, data: bytes) -> None:
        self.pending_replies.append((client, data))
        client.deferred += 1
        client.deferred_bytes += len(data)  # part of its output buffer until written
        self.schedule_append_flush()

    def schedule_append_flush(self) -> None:
        if not self._append_flush_scheduled:
            self._append_flush_scheduled = True
            self.loop.call_soon(self.before_sleep)

    def before_sleep(self) -> None:
        """Redis's beforeSleep(): after every client of this turn of the loop ran, write
        (and with appendfsync always, fsync) the AOF once, then send the replies that
        waited for it."""
        self._append_flush_scheduled = False
        self.flush_appends()
        pending, self.pending_replies = self.pending_replies, []
        for client, data in pending:
            client.deferred -= 1
            client.deferred_bytes -= len(data)
            client.write_now(data)
            if not client.deferred and client.close_after_reply:
                client.close()

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

    def log_starting(self) -> None:
        # main(): the first lines, as the not-yet-initialised process ("C" role).
        logger.role = "C"
        logger.warning("oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo")
        logger.warning(f"Redis version={REDIS_VERSION}, bits=64, commit=00000000, modified=0, "
                       f"pid={os.getpid()}, just started")
        logger.warning(f"Vermilion version={__version__}")
        if self.config.config_file:
            logger.warning("Configuration loaded")
        else:
            logger.warning("Warning: no config file specified, using the default config. In "
                           "order to specify a config file use vermilion-server "
                           "/path/to/redis.conf")
        logger.role = "M"
        logger.notice("monotonic clock: POSIX clock_gettime")

    def banner(self) -> None:
        """redisAsciiArt(): the logo when forced (always-show-logo) or when logging to
        a terminal, else one line. Redis's test suite waits for the logo's PID line."""
        port = self.tcp_port or self.config["port"] or self.tls_port
        config = self.config
        if config["always-show-logo"] or (not config["logfile"] and not config["syslog-enabled"]
                                          and sys.stdout.isatty()):
            logger.raw(2, ASCII_LOGO % (REDIS_VERSION, "00000000", 0, "64", "standalone",
                                         port, os.getpid()))
        else:
            logger.notice(f"Running mode=standalone, port={port}.")
        logger.warning("Server initialized")


# asciilogo.h, as Redis prints it (its version line names Redis: clients and the test
# suite read it; "Vermilion version=" is logged at start-up).
ASCII_LOGO = (
    "                _._                                                  \n"
    "           _.-``__ ''-._                                             \n"
    "      _.-``    `.  `_.  ''-._           Redis %s (%s/%d) %s bit\n"
    "  .-`` .-```.  ```\\/    _.,_ ''-._                                  \n"
    " (    '      ,       .-`  | `,    )     Running in %s mode\n"
    " |`-._`-...-` __...-.``-._|'` _.-'|     Port: %d\n"
    " |    `-._   `._    /     _.-'    |     PID: %d\n"
    "  `-._    `-._  `-./  _.-'    _.-'                                   \n"
    " |`-._`-._    `-.__.-'    _.-'_.-'|                                  \n"
    " |    `-._`-._        _.-'_.-'    |           https://redis.io       \n"
    "  `-._    `-._`-.__.-'_.-'    _.-'                                   \n"
    " |`-._`-._    `-.__.-'    _.-'_.-'|                                  \n"
    " |    `-._`-._        _.-'_.-'    |                                  \n"
    "  `-._    `-._`-.__.-'_.-'    _.-'                                   \n"
    "      `-._    `-.__.-'    _.-'                                       \n"
    "          `-._        _.-'                                           \n"
    "              `-.__.-'                                               \n\n"
)


def _redact_auth(argv: list[bytes]) -> list[bytes]:
    return argv[:1] + [b"(redacted)"] * (len(argv) - 1)


def _redact_hello(argv: list[bytes]) -> list[bytes]:
    out = list(argv)
    for i, arg in enumerate(argv):
        if arg.lower() == b"auth" and i + 2 < len(argv):
            out[i + 1] = out[i + 2] = b"(redacted)"
    return out


def _redact_migrate(argv: list[bytes]) -> list[bytes]:
    # migrateCommand(): AUTH <password>, AUTH2 <username> <password>.
    out = list(argv)
    i = 6
    while i < len(argv):
        word = argv[i].lower()
        if word == b"keys":
            break
        secrets = {b"auth": 1, b"auth2": 2}.get(word, 0)
        for j in range(i + 1, min(i + 1 + secrets, len(argv))):
            out[j] = b"(redacted)"
        i += secrets + 1
    return out


_ENDS_MONITOR = {"reset"}

# redactClientCommandArgument() callers: what MONITOR must not show.
_REDACT = {"auth": _redact_auth, "hello": _redact_hello, "migrate": _redact_migrate}


def _command_keys(spec, argv: list[bytes]) -> list[bytes]:
    """getKeysFromCommand(): the command's own key function where it has one, else the
    legacy (first, last, step) range — the keys CLIENT TRACKING remembers."""
    if spec.meta.get("get_keys_function"):
        return [argv[i] for i, _flags in keys_from_argv(spec, argv)]
    return [argv[i] for i in spec.key_positions(len(argv))]


RELEASE_AFTER_CLIENTS = 1000  # connections gone before free memory is given back


def _malloc_trim() -> None:
    """glibc's malloc_trim(0): give free heap pages back to the system."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _set_keepalive(sock, interval: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, interval // 3))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError:
        pass


def run(config: Config) -> int:
    """Start the server and block until it shuts down; returns the exit code."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a hard dependency
        pass

    async def main() -> int:
        server = Server(config)
        server.log_starting()
        await server.start()
        server.set_proc_title()
        server.used_memory_startup = server.used_memory()
        if (server.tcp_port or server.tls_port) and not server.stopping():
            logger.notice("Ready to accept connections")
        if config["unixsocket"] and not server.stopping():
            logger.notice("The server is now ready to accept connections at %s" % config["unixsocket"])
        return await server.serve_until_stopped()

    return asyncio.run(main())
