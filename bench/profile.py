"""Where a pipelined command's time goes, in process and without sockets.

Feeds batches of 16 identical commands (what `redis-benchmark -P 16` sends) to a
Client with a fake transport, and times separately: parsing, process_command (central
checks + handler + stats), reply encoding, and the rest of Client.data_received.
CPU time (process_time), best of 5, so it is usable on a busy machine.

    .venv/bin/python bench/profile.py
"""

import asyncio
import sys
import time

from vermilion.cli import build_config
from vermilion.connection import Connection as Client
from vermilion.commands.dispatch import process_command
from vermilion.protocol.encode import _encode
from vermilion.protocol.parser import RequestParser

BATCH = 16
ROUNDS = 4000


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


COMMANDS = {
    "PING": encode(b"PING"),
    "GET": encode(b"GET", b"key:000000001234"),
    "SET": encode(b"SET", b"key:000000001234", b"xxx"),
    "INCR": encode(b"INCR", b"counter:__rand_int__"),
    "MSET": encode(b"MSET", *[b"key:000000001234", b"xxx"] * 10),
}


def best_of(fn, repeat=5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best / ROUNDS / BATCH * 1e6


async def main() -> None:
    from vermilion.server import Server

    server = Server(build_config(["--port", "0", "--save", ""]))
    client = Client(server)
    client.transport = NullTransport()
    server.add_client(client)
    print(f"µs of CPU per command, batches of {BATCH} (Python {sys.version.split()[0]})")
    for name, command in COMMANDS.items():
        data = command * BATCH
        parser = RequestParser()
        parser.feed(data)
        commands = parser.parse()
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

        total, p, d, e = best_of(full), best_of(parse), best_of(dispatch), best_of(encode_replies)
        print(f"{name:5} total {total:5.2f} = parse {p:.2f} + process_command {d:.2f}"
              f" + encode {e:.2f} + client/other {total - p - d - e:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
