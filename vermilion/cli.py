"""Entry points.

``vermilion-server [configfile] [--directive value ...]`` follows redis-server's command
line: the file (or ``-`` for stdin) first, then ``--name value`` pairs that override it.
``vermilion`` holds the subcommands (``ping`` for probes; more in later issues).
"""

import argparse
import socket
import sys

from . import REDIS_VERSION, __version__
from .config import Config, ConfigFileError, read_config, sds_repr
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


def build_config(argv: list[str]) -> Config:
    """Config from redis-server style argv (server.c main()); raises ConfigFileError."""
    args = list(argv)
    config_file = None
    if args and not args[0].startswith("-"):
        config_file = args.pop(0)
    from_stdin = False
    # '-' reads stdin only as the first or the last argument.
    if args and args[0] == "-" and config_file is None:
        from_stdin = True
        args.pop(0)
    elif args and args[-1] == "-":
        from_stdin = True
        args.pop()
    if from_stdin:
        logger.warning("Reading config from stdin")
    return read_config(config_file, from_stdin, _options_text(args))


def _options_text(args: list[str]) -> str:
    """server.c main(): "--port 7000 --save 60 1" becomes 'port "7000"' / 'save "60" "1"';
    the argument after a bare option name is always its value (even "--foo"), and a
    valueless --save means save "" (redis 7.0.1's compatibility special case)."""
    options = ""
    value_pending = False  # the last option name still waits for its argument
    for i, arg in enumerate(args):
        if not value_pending and arg.startswith("--"):
            if options:
                options += "\n"
            options += arg[2:] + " "
            words = split_args(arg.encode("utf-8", "surrogateescape")) or []
            if len(words) == 1:
                value_pending = True
                last = i == len(args) - 1
                if arg.lower() == "--save" and (last or args[i + 1].startswith("--")):
                    options += '""'
                    value_pending = False
                elif arg.lower() == "--sentinel" and (last or args[i + 1].startswith("--")):
                    value_pending = False
            else:
                value_pending = False
        else:
            options += _quote(arg) + " "
            value_pending = False
    return options


def _quote(arg: str) -> str:
    return sds_repr(arg)


def server_main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-v", "--version"):
        print(version_line())
        return 0
    if argv and argv[0] in ("-h", "--help"):
        # redis-server's usage() goes to stderr and exits 1.
        print(USAGE, file=sys.stderr, end="")
        return 1
    try:
        config = build_config(argv)
        config.enter_dir()
    except ConfigFileError as exc:
        stream = sys.stdout if exc.as_log else sys.stderr
        stream.write(exc.report())
        stream.flush()
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
    return _ping(args.host, args.port, args.password, args.timeout)


def _ping(host: str, port: int, password: str | None, timeout: float) -> int:
    """Speak RESP directly: a readiness probe must not depend on redis-cli."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            request = b""
            if password:
                pw = password.encode()
                request += b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(pw), pw)
            request += b"*1\r\n$4\r\nPING\r\n"
            sock.sendall(request)
            data = b""
            while data.count(b"\r\n") < (2 if password else 1):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        print(f"vermilion ping: {exc}", file=sys.stderr)
        return 1
    reply = data.split(b"\r\n")[-2] if data else b""
    print(reply.decode(errors="replace"))
    return 0 if reply == b"+PONG" else 1


if __name__ == "__main__":
    sys.exit(server_main())
