"""Where a pipelined command's time goes, in process and without sockets.

Feeds batches of 16 identical commands (what `redis-benchmark -P 16` sends) to a
Client with a fake transport, and times separately: parsing, process_command (central
checks + handler + stats), reply encoding, and the rest of Client.data_received.
CPU time (process_time), best of 5, so it is usable on a busy machine.

The collection commands are those of redis-benchmark's default tests, on the state
those tests leave (no -r: `element:__rand_int__` is the same member every time, so
SADD/HSET/ZADD rewrite one member of a one-member collection, and SPOP/ZPOPMIN mostly
find the key gone); each has a setup run before every timed repetition. Beside each,
the same batch through the Python floor (../shared/bench/thin_server.py's protocol,
in process): what a thin Python server costs for that command.

    .venv/bin/python bench/profile.py                 # every command
    .venv/bin/python bench/profile.py LPUSH HSET      # some of them
    .venv/bin/python bench/profile.py --cprofile ZADD # cProfile of the handler path

THIN_SERVER=path/to/thin_server.py when the repository is not beside ../shared.
"""

import os
import sys

# This file is named profile.py: its folder must not shadow the stdlib's profile module,
# which cProfile imports.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import asyncio  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402

from vermilion.cli import build_config  # noqa: E402
from vermilion.connection import Connection as Client  # noqa: E402
from vermilion.commands.dispatch import process_command  # noqa: E402
from vermilion.protocol.encode import _encode  # noqa: E402
from vermilion.protocol.parser import RequestParser  # noqa: E402

BATCH = 16
ROUNDS = 4000
THIN_SERVER = os.environ.get("THIN_SERVER") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench", "thin_server.py")


class NullTransport:
    """Accepts writes and drops them."""

    def write(self, data):
        pass

    def get_extra_info(self, name, default=None):
        return default

    def is_closing(self):
        return False

    def get_write_buffer_size(self):
        return 0

    def close(self):
        pass


def encode(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


# Enough elements for every pop of a timed repetition (full path, then dispatch alone).
_FILL = 2 * ROUNDS * BATCH + 1000
_FILL_LIST = [[b"DEL", b"mylist"], [b"RPUSH", b"mylist"] + [b"xxx"] * _FILL]
_LIST_600 = [[b"DEL", b"mylist"], [b"RPUSH", b"mylist"] + [b"xxx"] * 600]

# name → (the command redis-benchmark sends, commands run before each repetition).
COMMANDS = {
    "PING": (encode(b"PING"), []),
    "GET": (encode(b"GET", b"key:000000001234"), []),
    "SET": (encode(b"SET", b"key:000000001234", b"xxx"), []),
    "INCR": (encode(b"INCR", b"counter:__rand_int__"), []),
    "MSET": (encode(b"MSET", *[b"key:000000001234", b"xxx"] * 10), []),
    "LPUSH": (encode(b"LPUSH", b"mylist", b"xxx"), [[b"DEL", b"mylist"]]),
    "RPUSH": (encode(b"RPUSH", b"mylist", b"xxx"), [[b"DEL", b"mylist"]]),
    "LPOP": (encode(b"LPOP", b"mylist"), _FILL_LIST),
    "RPOP": (encode(b"RPOP", b"mylist"), _FILL_LIST),
    "SADD": (encode(b"SADD", b"myset", b"element:__rand_int__"), [[b"DEL", b"myset"]]),
    "HSET": (encode(b"HSET", b"myhash", b"element:__rand_int__", b"xxx"), [[b"DEL", b"myhash"]]),
    "SPOP": (encode(b"SPOP", b"myset"),
             [[b"DEL", b"myset"], [b"SADD", b"myset", b"element:__rand_int__"]]),
    "ZADD": (encode(b"ZADD", b"myzset", b"0", b"element:__rand_int__"), [[b"DEL", b"myzset"]]),
    "ZPOPMIN": (encode(b"ZPOPMIN", b"myzset"),
                [[b"DEL", b"myzset"], [b"ZADD", b"myzset", b"0", b"element:__rand_int__"]]),
    "LRANGE_100": (encode(b"LRANGE", b"mylist", b"0", b"99"), _LIST_600),
    "LRANGE_300": (encode(b"LRANGE", b"mylist", b"0", b"299"), _LIST_600),
    "LRANGE_500": (encode(b"LRANGE", b"mylist", b"0", b"499"), _LIST_600),
    "LRANGE_600": (encode(b"LRANGE", b"mylist", b"0", b"599"), _LIST_600),
    "XADD": (encode(b"XADD", b"mystream", b"*", b"field", b"value"), [[b"DEL", b"mystream"]]),
}


def best_of(fn, setup=None, repeat=5) -> float:
    best = float("inf")
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best / ROUNDS / BATCH * 1e6


def thin_protocol():
    """thin_server.py's Proto class and keyspace, without its event loop."""
    try:
        with open(THIN_SERVER) as f:
            source = f.read()
    except OSError:
        return None
    namespace: dict = {"__name__": "thin_server"}
    exec(compile(source.replace("uvloop.run(main(int(sys.argv[1])))", ""), THIN_SERVER, "exec"),
         namespace)
    return namespace


def thin_cost(thin, command: bytes, setup_commands) -> float | None:
    if thin is None:
        return None
    argv0 = command.split(b"\r\n")[2].upper()
    if argv0 not in thin["CMDS"]:
        return None
    proto = thin["Proto"]()
    proto.connection_made(NullTransport())
    data = command * BATCH

    def setup():
        thin["DB"].clear()
        for argv in setup_commands:
            if argv[0] != b"DEL":
                proto.data_received(encode(*argv))

    def full():
        for _ in range(ROUNDS):
            proto.data_received(data)

    return best_of(full, setup)


async def main() -> None:
    from vermilion.server import Server

    args = sys.argv[1:]
    profile = None
    if args[:1] == ["--cprofile"]:
        profile = args[1]
        args = args[2:] or [profile]
    names = [a.upper() for a in args] or list(COMMANDS)
    server = Server(build_config(["--port", "0", "--save", ""]))
    client = Client(server)
    client.transport = NullTransport()
    server.add_client(client)
    thin = thin_protocol()
    print(f"µs of CPU per command, batches of {BATCH} (Python {sys.version.split()[0]})")
    for name in names:
        command, setup_commands = COMMANDS[name]
        data = command * BATCH
        parser = RequestParser()
        parser.feed(data)
        commands = parser.parse()

        def setup():
            for argv in setup_commands:
                process_command(client, list(argv))

        setup()
        replies = [process_command(client, argv) for argv in commands]

        def full():
            for _ in range(ROUNDS):
                client.data_received(data)

        def parse():
            for _ in range(ROUNDS):
                parser.feed(data)
                parser.parse()

        def dispatch():
            for _ in range(ROUNDS):
                for argv in commands:
                    process_command(client, argv)

        def encode_replies():
            for _ in range(ROUNDS):
                out = []
                for reply in replies:
                    _encode(out, reply, 2)
                b"".join(out)

        if profile is not None:
            setup()
            cProfile.runctx("dispatch()", globals(), {"dispatch": dispatch}, "/tmp/vermilion.prof")
            pstats.Stats("/tmp/vermilion.prof").sort_stats("tottime").print_stats(15)
            continue
        total = best_of(full, setup)
        p = best_of(parse)
        d = best_of(dispatch, setup)
        e = best_of(encode_replies)
        floor = thin_cost(thin, command, setup_commands)
        floor_text = f"  | floor {floor:5.2f}" if floor is not None else ""
        print(f"{name:10} total {total:5.2f} = parse {p:.2f} + process_command {d:.2f}"
              f" + encode {e:.2f} + client/other {total - p - d - e:.2f}{floor_text}")


if __name__ == "__main__":
    asyncio.run(main())
