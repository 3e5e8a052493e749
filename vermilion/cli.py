"""Entry points.

``vermilion-server [configfile] [--directive value ...]`` follows redis-server's command
line: the file (or ``-`` for stdin) first, then ``--name value`` pairs that override it.
``vermilion`` holds the subcommands (``ping`` for probes; more in later issues).
"""

import argparse
import socket
import sys

from . import REDIS_VERSION, __version__
from .config import Config, ConfigFileError

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
    """Config from redis-server style argv; raises ConfigFileError."""
    config = Config()
    args = list(argv)
    config_file = None
    read_stdin = False
    if args and not args[0].startswith("--"):
        config_file = args.pop(0)
        if config_file == "-":
            read_stdin, config_file = True, None
    if args and args[-1] == "-":
        read_stdin = True
        args.pop()
    options = _options_text(args)
    text = ""
    if config_file:
        import os

        config.config_file = os.path.abspath(config_file)
        with open(config_file, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    if read_stdin:
        text += "\n" + sys.stdin.read()
    base = __import__("os").path.dirname(config.config_file) if config_file else "."
    config.load_text(text + "\n" + options, base)
    return config


def _options_text(args: list[str]) -> str:
    # config.c: "--port 7000 --save 60 1" becomes the lines "port 7000" / "save 60 1".
    lines: list[str] = []
    for arg in args:
        if arg.startswith("--") and len(arg) > 2:
            lines.append(arg[2:])
        elif lines:
            lines[-1] += " " + _quote(arg)
        else:
            lines.append(_quote(arg))
    return "\n".join(lines)


def _quote(arg: str) -> str:
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def server_main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-v", "--version"):
        print(version_line())
        return 0
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 0
    try:
        config = build_config(argv)
    except ConfigFileError as exc:
        sys.stderr.write(exc.report())
        return 1
    except OSError as exc:
        sys.stderr.write(f"Fatal error, can't open config file '{argv[0]}': {exc.strerror}\n")
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
    from .k8s import cli as k8s_cli

    k8s_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.cmd == "k8s":
        return k8s_cli.run(args)
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
