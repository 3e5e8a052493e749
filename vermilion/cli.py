"""Entry points.

``vermilion-server [configfile] [--directive value ...]`` follows redis-server's command
line: the file (or ``-`` for stdin) first, then ``--name value`` pairs that override it.
``vermilion`` holds the subcommands (``ping`` for probes; more in later issues).
"""

import argparse
import sys

from . import REDIS_VERSION, __version__
from .commands import load_all
from .k8s.probe import ping
from .commands.registry import declared_names
from .commands.acl_cmds import config_user_checker
from .config import Config, ConfigFileError, ascii_lower, read_config, sds_repr, unsupported
from .log import logger
from .protocol.parser import split_args

USAGE = """Usage: ./vermilion-server [/path/to/redis.conf] [options] [-]
       ./vermilion-server - (read config from stdin)
       ./vermilion-server -v or --version
       ./vermilion-server -h or --help

Examples:
       ./vermilion-server (run the server with default conf)
       echo 'maxmemory 128mb' | ./vermilion-server -
       ./vermilion-server /etc/redis/6379.conf
       ./vermilion-server --port 7777
       ./vermilion-server /etc/myredis.conf --loglevel verbose -
       ./vermilion-server /etc/myredis.conf --loglevel verbose
"""


def version_line() -> str:
    # redis-server --version's shape, so scripts that parse v= keep working.
    return (f"Redis server v={REDIS_VERSION} sha=00000000:0 malloc=libc bits=64 "
            f"build=vermilion-{__version__}")


def build_config(argv: list[str], for_server: bool = False) -> Config:
    """Config from redis-server style argv (server.c main()); raises ConfigFileError.
    for_server: the calling process is the server-to-be ('dir' lines chdir())."""
    config_file = None
    first = 0
    # A first argument not starting with '-' is the config file (even "").
    if argv and not argv[0].startswith("-"):
        config_file = argv[0]
        first = 1
    from_stdin, options = _parse_options(argv, first)
    load_all()  # rename-command lines are checked against the declared commands
    return read_config(config_file, from_stdin, options, for_server, declared_names(),
                       config_user_checker())


def _parse_options(argv: list[str], first: int) -> tuple[bool, str]:
    """server.c main()'s loop: "--port 7000 --save 60 1" becomes 'port "7000"' /
    'save "60" "1"' (values quoted with sdscatrepr), parsed after the file and stdin.
    A '-' as the first or the last argument reads stdin; the argument after a bare
    option name is always its value (even "--foo" or "-"); "--name value" in one
    argument is a name with its value; a valueless --save means save "" (7.0.1's
    compatibility case) and a valueless --sentinel takes none."""
    options = ""
    from_stdin = False
    value_pending = False  # handled_last_config_arg == 0
    last = len(argv) - 1
    for j in range(first, len(argv)):
        arg = argv[j]
        if arg == "-" and (j == 0 or j == last):
            from_stdin = True
        elif not value_pending and arg.startswith("--"):
            if options:
                options += "\n"
            options += arg[2:] + " "
            words = split_args(arg.encode("utf-8", "surrogateescape"))
            if words is not None and len(words) == 1:
                value_pending = True
                name = ascii_lower(arg)
                next_is_option = j != last and argv[j + 1].startswith("--")
                if name == "--save" and next_is_option:
                    options += '""'
                    value_pending = False
                elif name == "--save" and j == last:
                    options += '""'
                elif name == "--sentinel" and next_is_option:
                    value_pending = False
            else:
                value_pending = False
        else:
            options += sds_repr(arg) + " "
            value_pending = False
    return from_stdin, options


def _write(stream, text: str) -> None:
    # Config text keeps undecodable bytes as surrogates: print them as the raw bytes
    # Redis prints, not as Python's backslash escapes.
    data = text.encode("utf-8", "surrogateescape")
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        stream.flush()
        buffer.write(data)
        buffer.flush()
    else:
        stream.write(data.decode("utf-8", "replace"))
        stream.flush()


def server_main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-v", "--version"):
        print(version_line())
        return 0
    if argv and argv[0] in ("-h", "--help"):
        # redis-server's usage() goes to stderr and exits 1.
        print(USAGE, file=sys.stderr, end="")
        return 1
    if "--sentinel" in argv:
        # checkForSentinelMode(): an exact "--sentinel" anywhere. Vermilion has no
        # Sentinel; starting a data server in its place would be worse than refusing.
        logger.role = "X"
        if argv[0].startswith("-"):
            logger.warning("Sentinel needs config file on disk to save state. Exiting...")
        else:
            logger.warning("Sentinel mode is not supported by Vermilion. Exiting...")
        return 1
    try:
        config = build_config(argv, for_server=True)
        config.enter_dir()
    except ConfigFileError as exc:
        _write(sys.stdout if exc.as_log else sys.stderr, exc.report())
        return 1
    refusal = unsupported(config)
    if refusal:
        logger.configure(config["loglevel"], config["logfile"])
        for line in refusal:
            logger.warning(line)
        return 1
    from .server import run

    try:
        return run(config)
    except KeyboardInterrupt:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vermilion", description="Vermilion tools")
    sub = parser.add_subparsers(dest="cmd", required=True)
    ping = sub.add_parser("ping", help="PING a server; exit 0 on PONG (for probes)")
    ping.add_argument("-H", "--host", default="127.0.0.1")
    ping.add_argument("-p", "--port", type=int, default=6379)
    ping.add_argument("-a", "--password", default=None)
    ping.add_argument("-t", "--timeout", type=float, default=2.0)
    sub.add_parser("version", help="print the version")
    check_rdb = sub.add_parser("check-rdb", help="check an RDB file (ours or Redis's)")
    check_rdb.add_argument("file")
    check_aof = sub.add_parser("check-aof", help="check an AOF file or appendonlydir")
    check_aof.add_argument("path")
    check_aof.add_argument("--fix", action="store_true", help="truncate an incomplete tail")
    check_aof.add_argument("-y", "--yes", action="store_true", help="do not ask before --fix")
    rdb_cmd = sub.add_parser("rdb", help="inspect RDB files")
    rdb_sub = rdb_cmd.add_subparsers(dest="rdb_cmd", required=True)
    rdb_dump = rdb_sub.add_parser("dump", help="print every key, type, TTL and value")
    rdb_dump.add_argument("file")
    rdb_dump.add_argument("--format", choices=("text", "json"), default="text")
    from .k8s import cli as k8s_cli

    k8s_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.cmd == "k8s":
        return k8s_cli.run(args)
    if args.cmd in ("check-rdb", "check-aof", "rdb"):
        from .persistence import tools

        if args.cmd == "check-rdb":
            return tools.check_rdb(args.file)
        if args.cmd == "check-aof":
            return tools.check_aof(args.path, fix=args.fix, assume_yes=args.yes)
        return tools.dump_rdb(args.file, args.format)
    if args.cmd == "version":
        print(f"vermilion {__version__} (redis {REDIS_VERSION})")
        return 0
    return ping(args.host, args.port, args.password, args.timeout)


if __name__ == "__main__":
    sys.exit(server_main())
