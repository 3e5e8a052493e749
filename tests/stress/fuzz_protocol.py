"""Protocol fuzzing at scale: generated request frames through the sans-IO parser, then
over TCP into a real server. `make fuzz` runs it.

Frames come from a seeded generator (the seed is printed; the same seed gives the same
frames): canonical multibulk commands (payloads with CRLFs inside, up to 70 KB),
inline commands (quotes, escapes), empty lines and *0/*-1, malformed headers ("$04",
"*x", "$-1", count or length past the limits), nested multibulk, RESP reply types sent
as requests, unbalanced quotes, huge declared lengths with a short payload, inline
lines past 64 KB, truncated frames and random garbage. A stream (1-16 well-formed
frames, most often with one hostile frame, usually last) is cut at random points and
fed piece by piece.

Parser phase (no server): no exception escapes the parser — a protocol error is its
`error` attribute, always "Protocol error: ...", and ends the stream; every command is a
non-empty list of bytes; the result does not depend on how the stream is cut; a stream
of only well-formed frames parses to exactly the commands they encode; the parser never
buffers more than it was fed; the process RSS stays bounded.

TCP phase (a vermilion-server subprocess): each stream goes over its own connection in
its random pieces, then the client half-closes and reads until the server closes. The
server must stay up and answer PING, end every protocol error with "-ERR Protocol
error: ..." and a close (with --redis: give byte for byte the replies redis-server gives
to the same streams), leave no client behind, and keep its RSS bounded.

    .venv/bin/python tests/stress/fuzz_protocol.py           # 1M parser frames, 100k over TCP
    .venv/bin/python tests/stress/fuzz_protocol.py --redis   # and compare with redis-server
    .venv/bin/python tests/stress/fuzz_protocol.py --parser-frames 20000 --tcp-frames 0 --seed 7
"""

import argparse
import gc
import os
import random
import re
import shutil
import socket
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Conn, Server, ServerDied, rss_kb, server_binary  # noqa: E402

from vermilion.protocol.parser import ParserLimits, RequestParser  # noqa: E402

# Commands that cannot stop, pause, block, reconfigure or grow the server without
# bound, whatever their (random) arguments.
COMMANDS = [b"PING", b"ECHO", b"SET", b"GET", b"DEL", b"INCR", b"APPEND", b"MGET", b"EXISTS",
            b"STRLEN", b"GETRANGE", b"SETRANGE", b"TYPE", b"DBSIZE", b"SELECT", b"LPUSH",
            b"LLEN", b"LRANGE", b"HSET", b"HGET", b"SADD", b"SCARD", b"ZADD", b"ZCARD",
            b"MULTI", b"EXEC", b"DISCARD", b"QUIT", b"HELLO", b"nosuchcmd"]
# Not when replies are compared with redis-server's: CLIENT answers with connection ids
# and addresses; expiries would end at slightly different moments in the two servers.
SERVER_ONLY = [b"CLIENT", b"EXPIRE", b"TTL"]
MAX_BULK = 512 * 1024 * 1024

_WORD_BYTES = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-.@"
_QUOTED_BYTES = bytes(b for b in range(32, 127) if b not in b"\"'\\")


def encode(args) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


class FrameGenerator:
    """Seeded frames. Each frame method returns (bytes, commands): the commands the bytes
    encode when they are well formed on their own, None when they are not (or not
    surely); stream() strings frames together."""

    def __init__(self, seed, commands=COMMANDS, tcp=False, expiries=True):
        self.rng = random.Random(seed)
        self.commands = commands
        self.tcp = tcp  # over TCP: fewer big arguments
        self.words = [b"", b"\r\n", b"*1", b"$1", b'"', b"'", b"\r\n*1\r\n$4\r\nPING\r\n",
                      b"\x00", b"NX", b"GET"] + ([b"EX"] if expiries else [])
        self.well_formed = [self.multibulk] * 10 + [self.inline] * 4 + [self.empty]
        self.hostile = (
            [self.bad_count, self.bad_bulk_header, self.garbage] * 6
            + [self.wrong_type_byte, self.nested, self.truncated] * 4
            + [self.huge_length, self.reply_types, self.unbalanced_quotes,
               self.nul_in_header] * 3 + [self.long_inline])

    def stream(self, max_frames=16):
        """(bytes, expected commands or None, frame count): well-formed frames and, in
        most streams, one hostile frame — usually last, as a parser stops at the first
        protocol error and the frames after it would never be parsed."""
        r = self.rng
        frames = [r.choice(self.well_formed)() for _ in range(r.randint(1, max_frames))]
        if r.random() < 0.6:
            frames.insert(len(frames) if r.random() < 0.8 else r.randrange(len(frames)),
                          r.choice(self.hostile)())
        expected = []
        for _, commands in frames:
            if commands is None:
                expected = None
                break
            expected += commands
        return b"".join(data for data, _ in frames), expected, len(frames)

    # -- arguments --

    def arg(self) -> bytes:
        r = self.rng
        roll = r.random()
        if roll < 0.35:
            return r.choice([b"k", b"k1", b"k2", b"list", b"h", b"z", b"s", b"x"])
        if roll < 0.55:
            return b"%d" % r.choice([-3, -1, 0, 1, 2, 3, 5, 10, 2**31, 2**63, -2**63])
        if roll < 0.8:
            return r.randbytes(r.randint(0, 12))
        if roll < 0.95:
            return r.choice(self.words)
        if roll < 0.995 or self.tcp and roll < 0.999:
            return r.randbytes(r.randint(13, 3000))
        return b"y" * r.choice([16384, 16385, 70000])

    def argv(self):
        r = self.rng
        count = r.choice((0, 1, 1, 2, 2, 3, 4, 12))
        return [r.choice(self.commands)] + [self.arg() for _ in range(count)]

    # -- frames --

    def multibulk(self):
        argv = self.argv()
        return encode(argv), [argv]

    def inline(self):
        r = self.rng
        words = [r.choice(self.commands)]
        line = [words[0]]
        for _ in range(r.randint(0, 4)):
            kind = r.random()
            if kind < 0.6:
                word = bytes(r.choice(_WORD_BYTES) for _ in range(r.randint(1, 8)))
                line.append(word)
            elif kind < 0.85:  # "double quoted" with C and \xHH escapes
                word, text = bytearray(), bytearray(b'"')
                for _ in range(r.randint(0, 8)):
                    e = r.random()
                    if e < 0.6:
                        c = r.choice(_QUOTED_BYTES)
                        word.append(c)
                        text.append(c)
                    elif e < 0.8:
                        c = r.randrange(256)
                        word.append(c)
                        text += b"\\x%02x" % c
                    else:
                        esc, value = r.choice([(b"\\n", b"\n"), (b"\\r", b"\r"), (b"\\t", b"\t"),
                                               (b'\\"', b'"'), (b"\\\\", b"\\"), (b"\\a", b"\a")])
                        word += value
                        text += esc
                text.append(34)
                word = bytes(word)
                line.append(bytes(text))
            else:  # 'single quoted'
                word = bytes(r.choice(_QUOTED_BYTES) for _ in range(r.randint(0, 8)))
                line.append(b"'" + word + b"'")
            words.append(word)
        sep = r.choice([b" ", b"  ", b"\t", b" \t "])
        end = r.choice([b"\r\n", b"\n", b"\r\n", b" \r\n"])
        return r.choice([b"", b" "]) + sep.join(line) + end, [words]

    def empty(self):
        return self.rng.choice([b"\r\n", b"\n", b"*0\r\n", b"*-1\r\n", b"   \r\n"]), []

    def bad_count(self):
        bad = self.rng.choice([b"x", b"01", b"+1", b" 1", b"1.5", b"", b"-0", b"2147483648",
                               b"99999999999999999999", b"1x"])
        return b"*" + bad + b"\r\n", None

    def bad_bulk_header(self):
        r = self.rng
        bad = r.choice([b"x", b"04", b"-1", b"-2", b"+3", b"", b"3 ", b"%d" % (MAX_BULK + 1),
                        b"99999999999999999999"])
        return b"*2\r\n$3\r\nGET\r\n$" + bad + b"\r\nabc\r\n", None

    def wrong_type_byte(self):
        c = self.rng.choice(b"%:+-~>!=,#(|_*\xc8\r\n x")
        return b"*1\r\n" + bytes([c]) + b"4\r\nPING\r\n", None

    def nested(self):
        inner = encode([b"PING"])
        return b"*2\r\n" + inner + encode([b"x"])[4:], None

    def huge_length(self):
        r = self.rng
        kind = r.random()
        if kind < 0.4:  # a big declared bulk, and only the start of it
            size = r.choice([MAX_BULK, 100_000_000, 1_000_000, 65536])
            sent = r.randint(0, 2000) if r.random() < 0.98 else r.choice([256 * 1024, 1 << 20])
            return b"*2\r\n$3\r\nSET\r\n$%d\r\n" % size + r.randbytes(min(sent, size)), None
        if kind < 0.7:  # a huge count, a few arguments
            count = r.choice([2**31 - 1, 1_048_576, 100_000, 1025])
            return b"*%d\r\n" % count + encode([b"ECHO"])[4:] * r.randint(0, 5), None
        return b"*%d\r\n" % r.choice([2**31, 2**32, 2**63 - 1]), None

    def truncated(self):
        data, _ = self.multibulk() if self.rng.random() < 0.7 else self.inline()
        return data[: self.rng.randrange(len(data))], None

    def garbage(self):
        return self.rng.randbytes(self.rng.randint(1, 64)), None

    def reply_types(self):
        return self.rng.choice([b":1\r\n", b"+OK\r\n", b"-ERR x\r\n", b"%1\r\n", b"~2\r\n",
                                b"_\r\n", b",1.5\r\n", b"#t\r\n", b"$-1\r\n", b">1\r\n"]), None

    def unbalanced_quotes(self):
        return self.rng.choice([b'SET "a\r\n', b"SET 'a\r\n", b'SET "a"b\r\n', b"ECHO 'x'y\r\n",
                                b'GET "\\x4"\r\n']), None

    def nul_in_header(self):
        return self.rng.choice([b"*1\x00\r\n", b"*1\r\n$4\x00\r\nPING\r\n", b"PI\x00NG\r\n"]), None

    def long_inline(self):
        line = b"ECHO " + b"a" * self.rng.choice([65536, 70000])
        return line + self.rng.choice([b"", b"\r\n"]), None


def cuts(rng: random.Random, data: bytes) -> list[bytes]:
    """data cut at random points: none, a few, or one byte at a time (short streams)."""
    n = len(data)
    roll = rng.random()
    if roll < 0.2 or n < 2:
        return [data]
    if roll < 0.25 and n <= 200:
        return [data[i:i + 1] for i in range(n)]
    points = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(1, 8))))
    return [data[a:b] for a, b in zip([0] + points, points + [n])]


# -- parser phase -------------------------------------------------------------------


class ParserDefect(Exception):
    pass


def parse_pieces(pieces, authenticated=True, limits=None):
    """Feed the pieces as the server does (parse after a feed that may complete
    something; an unauthenticated client one command at a time). Returns (commands,
    error, bytes left unparsed, largest buffered size)."""
    parser = RequestParser(limits)
    out = []
    fed = biggest = 0
    for piece in pieces:
        fed += len(piece)
        if parser.feed(piece):
            if authenticated:
                out += parser.parse()
            else:
                while True:
                    commands = parser.parse(False, max_commands=1)
                    out += commands
                    if not commands or parser.error is not None or not parser.has_more():
                        break
        biggest = max(biggest, parser.buffered())
        if parser.buffered() > fed:
            raise ParserDefect(f"buffered {parser.buffered()} bytes of {fed} fed")
        if parser.error is not None:
            break
    left = None if parser.error is not None else parser.incomplete_bytes()
    return out, parser.error, left, biggest


def _buffer_dependent(a, b) -> bool:
    """Whether two parses of one stream differ only as Redis's would with different
    read sizes: the "too big ... request/count string" errors come from how many bytes
    wait in the buffer without a newline when a header is looked for (Redis reads 16 KB
    at a time, uvloop up to 256 KB), so the same garbage can end in that error or in
    another one a little later (or earlier), after a prefix of the same commands."""
    (ca, ea, _, _), (cb, eb, _, _) = a, b
    if ea is None or eb is None or not any(e.startswith("Protocol error: too big")
                                           for e in (ea, eb)):
        return False
    shorter, longer = sorted((ca, cb), key=len)
    return longer[:len(shorter)] == shorter


def check_stream(rng, data, expected, authenticated=True, limits=None):
    whole = parse_pieces([data], authenticated, limits)
    commands, error, _, _ = whole
    if not all(type(argv) is list and argv and all(type(a) is bytes for a in argv)
               for argv in commands):
        raise ParserDefect(f"malformed command list {commands[:3]!r}")
    if error is not None and not (type(error).__name__ == "ErrorText"
                                  and error.startswith("Protocol error: ")):
        raise ParserDefect(f"error {error!r}")
    exact = expected is not None and authenticated and limits is None
    if exact:
        if error is not None or commands != expected or whole[2] != 0:
            raise ParserDefect(f"well-formed frames parsed to {commands[:3]!r}..., error "
                               f"{error!r}; expected {expected[:3]!r}")
    pieces = cuts(rng, data)
    if len(pieces) > 1:
        cut = parse_pieces(pieces, authenticated, limits)
        if cut[:3] != whole[:3] and not _buffer_dependent(cut, whole):
            raise ParserDefect(f"cut at {[len(p) for p in pieces]} the stream parses to "
                               f"{cut[:3]!r}, whole to {whole[:3]!r}")
    return error, exact


@dataclass
class ParserResult:
    frames: int = 0
    streams: int = 0
    bytes: int = 0
    exact: int = 0  # streams of well-formed frames checked against the generator's commands
    errors: int = 0
    seconds: float = 0.0
    rss_start_kb: int = 0
    rss_max_kb: int = 0
    traced_peak_kb: int = 0
    defects: list[str] = field(default_factory=list)


def fuzz_parser(frames: int, seed: int, trace_frames: int = 20000, log=print,
                rss_growth_kb: int = 64 * 1024) -> ParserResult:
    """Push `frames` generated frames through RequestParser. The first trace_frames run
    under tracemalloc (its peak must stay small: nothing is kept between streams)."""
    result = ParserResult()
    gen = FrameGenerator(f"{seed}:parser")
    rng = random.Random(f"{seed}:cuts")
    small = ParserLimits(proto_max_bulk_len=1024 * 1024)
    started = time.monotonic()
    gc.collect()
    result.rss_start_kb = result.rss_max_kb = rss_kb_self()
    tracing = trace_frames > 0
    if tracing:
        tracemalloc.start()
    next_report = 100_000
    while result.frames < frames:
        data, expected, count = gen.stream()
        mode = rng.random()
        authenticated, limits = mode >= 0.1, (small if 0.1 <= mode < 0.15 else None)
        try:
            error, exact = check_stream(rng, data, expected, authenticated, limits)
        except ParserDefect as exc:
            result.defects.append(f"stream {result.streams} (seed {seed}): {exc}; "
                                  f"input {data[:300]!r}")
            error, exact = None, False
        except Exception as exc:  # anything escaping the parser is a defect
            result.defects.append(f"stream {result.streams} (seed {seed}): "
                                  f"{type(exc).__name__}: {exc}; input {data[:300]!r}")
            error, exact = None, False
        result.exact += exact
        result.frames += count
        result.streams += 1
        result.bytes += len(data)
        result.errors += error is not None
        if len(result.defects) > 20:
            break
        if tracing and result.frames >= trace_frames:
            result.traced_peak_kb = tracemalloc.get_traced_memory()[1] // 1024
            tracemalloc.stop()
            tracing = False
        if result.frames >= next_report or result.frames >= frames:
            next_report += 100_000
            result.rss_max_kb = max(result.rss_max_kb, rss_kb_self())
            log(f"  parser: {result.frames} frames, {result.streams} streams, "
                f"{result.bytes / 1e6:.0f} MB, {result.errors} protocol errors, "
                f"RSS {result.rss_max_kb / 1024:.0f} MB, {time.monotonic() - started:.0f} s")
    if tracing:
        result.traced_peak_kb = tracemalloc.get_traced_memory()[1] // 1024
        tracemalloc.stop()
    result.rss_max_kb = max(result.rss_max_kb, rss_kb_self())
    if result.rss_max_kb - result.rss_start_kb > rss_growth_kb:
        result.defects.append(f"parser RSS grew from {result.rss_start_kb} KB to "
                              f"{result.rss_max_kb} KB")
    if result.traced_peak_kb > 16 * 1024:
        result.defects.append(f"tracemalloc peak {result.traced_peak_kb} KB")
    result.seconds = time.monotonic() - started
    return result


def rss_kb_self() -> int:
    return rss_kb(os.getpid())


# -- TCP phase ----------------------------------------------------------------------


def exchange(port: int, pieces: list[bytes], rng: random.Random, timeout: float = 10.0) -> bytes:
    """Send the pieces over one connection (a short pause now and then, so that the
    server reads them apart), half-close, and read until the server closes."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece in pieces:
                sock.sendall(piece)
                if rng.random() < 0.02:
                    time.sleep(0.001)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # closed by the server before we were done (after a protocol error)
        try:
            while chunk := sock.recv(65536):
                out.append(chunk)
        except ConnectionResetError:
            pass  # closed with our bytes unread: what it sent before is read above
    return b"".join(out)


def first_difference(ours: bytes, theirs: bytes) -> tuple[bytes, bytes]:
    """The first reply line where two reply streams differ, from each."""
    i = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b),
             min(len(ours), len(theirs)))
    start = ours.rfind(b"\r\n", 0, i) + 2 if i else 0
    return tuple(side[start:side.find(b"\r\n", i) if b"\r\n" in side[i:] else None][:160]
                 for side in (ours, theirs))


def _without_ids(reply: bytes) -> bytes:
    return re.sub(rb"\$2\r\nid\r\n:\d+\r\n", b"$2\r\nid\r\n:ID\r\n", reply)


@dataclass
class TcpResult:
    frames: int = 0
    streams: int = 0
    bytes: int = 0
    protocol_errors: int = 0
    compared: int = 0
    rss_start_kb: int = 0
    rss_max_kb: int = 0
    rss_end_kb: int = 0
    seconds: float = 0.0
    defects: list[str] = field(default_factory=list)
    # (our line, redis-server's line) -> (streams, (first stream number, its input))
    differences: dict = field(default_factory=dict)


def fuzz_tcp(frames: int, seed: int, port: int, pid: int, redis_port: int | None = None,
             log=print, rss_limit_kb: int = 256 * 1024) -> TcpResult:
    """Send `frames` generated frames to the server on `port` (process `pid`), stream by
    stream; with redis_port, every stream goes to redis-server too and the replies are
    compared byte for byte."""
    result = TcpResult()
    commands = COMMANDS if redis_port else COMMANDS + SERVER_ONLY
    gen = FrameGenerator(f"{seed}:tcp", commands, tcp=True, expiries=not redis_port)
    rng = random.Random(f"{seed}:tcp-cuts")
    started = time.monotonic()
    result.rss_start_kb = result.rss_max_kb = rss_kb(pid)
    # A few clients that stay for the whole run with half a command sent.
    idle = []
    for partial in (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n" + b"x" * 50000,
                    b"*2\r\n$4\r\nECHO", b'ECHO "unterminated', b"*1\r\n"):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(partial)
        idle.append(sock)
    next_report = 10_000
    try:
        while result.frames < frames and len(result.defects) < 10:
            data, _, count = gen.stream(max_frames=40)
            pieces = cuts(rng, data)
            reply = exchange(port, pieces, rng)
            result.frames += count
            result.streams += 1
            result.bytes += len(data)
            parsed, error, _, _ = parse_pieces([data])
            result.protocol_errors += error is not None
            if error is not None and not any(argv[0].lower() == b"quit" for argv in parsed):
                if not reply.endswith(b"-ERR %s\r\n" % error.encode()):
                    result.defects.append(f"stream {result.streams}: a protocol error ({error}) "
                                          f"answered with {reply[-200:]!r}; input {data[:300]!r}")
            if redis_port:
                theirs = exchange(redis_port, pieces, rng)
                result.compared += 1
                ours, theirs = _without_ids(reply), _without_ids(theirs)
                if ours != theirs:
                    # Grouped by the first differing reply line: one example each.
                    key = first_difference(ours, theirs)
                    count, example = result.differences.get(key, (0, None))
                    result.differences[key] = (count + 1, example or (result.streams, data))
                    # The keyspaces may have diverged: start both again from empty, so
                    # one difference does not show up again in every later stream.
                    for p in (port, redis_port):
                        conn = Conn(p, timeout=5)
                        conn.call(b"FLUSHALL")
                        conn.close()
            if result.streams % 20 == 0 or result.frames >= frames:
                rss = rss_kb(pid)
                if rss == 0:
                    result.defects.append(f"server process gone after stream {result.streams}; "
                                          f"input {data[:300]!r}")
                    break
                result.rss_max_kb = max(result.rss_max_kb, rss)
                conn = Conn(port, timeout=5)
                pong = conn.call(b"PING")
                conn.close()
                if pong != b"PONG":
                    result.defects.append(f"PING answered {pong!r} after stream {result.streams}")
            if result.frames >= next_report or result.frames >= frames:
                next_report += 10_000
                log(f"  tcp: {result.frames} frames, {result.streams} connections, "
                    f"{result.protocol_errors} protocol errors, server RSS "
                    f"{result.rss_max_kb / 1024:.0f} MB, {time.monotonic() - started:.0f} s")
    except OSError as exc:
        result.defects.append(f"{type(exc).__name__} {exc} at stream {result.streams}")
    finally:
        for sock in idle:
            sock.close()
    result.seconds = time.monotonic() - started
    if not result.defects:
        clients = connected_clients_settled(port)
        if clients != 1:
            result.defects.append(f"{clients} clients connected after the run, expected 1")
    result.rss_end_kb = rss_kb(pid)
    if result.rss_max_kb > rss_limit_kb:
        result.defects.append(f"server RSS reached {result.rss_max_kb} KB")
    return result


def connected_clients_settled(port: int, timeout: float = 5.0) -> int:
    conn = Conn(port, timeout=5)
    try:
        deadline = time.monotonic() + timeout
        while True:
            info = conn.call(b"INFO", b"clients")
            count = int(re.search(rb"connected_clients:(\d+)", info).group(1))
            if count == 1 or time.monotonic() > deadline:
                return count
            time.sleep(0.05)
    finally:
        conn.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parser-frames", type=int, default=1_000_000)
    parser.add_argument("--tcp-frames", type=int, default=100_000)
    parser.add_argument("--trace-frames", type=int, default=20_000,
                        help="parser frames run under tracemalloc (slower), at the start")
    parser.add_argument("--redis", action="store_true",
                        help="send every TCP stream to redis-server too and compare replies")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"fuzz: seed {seed} (rerun with --seed {seed})", flush=True)
    log = lambda line: print(line, flush=True)  # noqa: E731
    ok = True
    if args.parser_frames:
        p = fuzz_parser(args.parser_frames, seed, trace_frames=args.trace_frames, log=log)
        print(f"parser: {p.frames} frames in {p.streams} streams ({p.bytes / 1e6:.0f} MB), "
              f"{p.exact} streams checked command for command, {p.errors} ending in a "
              f"protocol error, {p.seconds:.0f} s; RSS {p.rss_start_kb // 1024} -> "
              f"max {p.rss_max_kb // 1024} MB, tracemalloc peak {p.traced_peak_kb} KB over the "
              f"first {min(args.trace_frames, p.frames)} frames; {len(p.defects)} defects")
        for defect in p.defects:
            print("- " + defect)
        ok &= not p.defects
    if args.tcp_frames:
        workdir = Path(tempfile.mkdtemp(prefix="fuzz-"))
        server = Server(server_binary("vermilion"), workdir)
        real = Server(server_binary("redis"), workdir / "redis") if args.redis else None
        try:
            server.start()
            if real:
                real.workdir.mkdir()
                real.log_path = real.workdir / "server.log"
                real.start()
            t = fuzz_tcp(args.tcp_frames, seed, server.port, server.proc.pid,
                         real.port if real else None, log=log)
            alive = server.alive()
        except ServerDied as exc:
            t, alive = TcpResult(defects=[str(exc)]), False
        finally:
            server.stop()
            if real:
                real.stop()
        print(f"tcp: {t.frames} frames in {t.streams} connections ({t.bytes / 1e6:.1f} MB), "
              f"{t.protocol_errors} protocol errors, {t.compared} compared with redis-server, "
              f"{t.seconds:.0f} s; server RSS {t.rss_start_kb // 1024} -> max "
              f"{t.rss_max_kb // 1024} MB (end {t.rss_end_kb // 1024} MB); "
              f"{len(t.defects)} defects")
        for defect in t.defects:
            print("- " + defect)
        if t.differences:
            print(f"{sum(n for n, _ in t.differences.values())} streams answered differently "
                  f"from redis-server, {len(t.differences)} distinct first differences:")
            for (ours, theirs), (n, (number, data)) in t.differences.items():
                print(f"- {n} streams: ours {ours!r}, redis-server {theirs!r}; e.g. stream "
                      f"{number}, input {data[:200]!r}")
        if t.defects or t.differences or not alive:
            print(f"server log: {server.log_path}\n{server.log_tail(20)}")
            ok = False
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("fuzz: " + ("ok" if ok else f"FAIL (seed {seed})"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
