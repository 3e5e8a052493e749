"""Differential test: random command sequences against vermilion and a real redis-server.

Hypothesis generates sequences of string, bit and keyspace commands over a few keys,
with edge-case arguments (negative indexes, huge and non-numeric numbers, empty and
binary values, invalid option combinations). Each sequence runs on both servers (both
started here, FLUSHALL between examples) and every raw reply must be byte-equal.
Only TTL/PTTL values are compared loosely (the two servers read their clocks at
slightly different moments) and KEYS replies are compared as sets (hash order).

VERMILION_DIFF_EXAMPLES sets the number of examples (`make test-slow` uses 2000).
"""

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import RawConnection, start_redis, start_vermilion

EXAMPLES = int(os.environ.get("VERMILION_DIFF_EXAMPLES", "150"))

KEYS = [b"a", b"b", b"c", b"{a}x"]
key = st.sampled_from(KEYS)
keys = st.lists(key, min_size=1, max_size=4)

value = st.one_of(
    st.sampled_from([b"", b"0", b"1", b"-1", b"10", b"007", b"abc", b"hello world",
                     b"9223372036854775807", b"-9223372036854775808",
                     b"9223372036854775806", b"9223372036854775808", b"1.5", b"-0.5",
                     b"1e3", b" 1", b"1 ", b"+1", b"0x10", b"inf", b"nan", b"\x00\xff\r\n",
                     b"\xff" * 3, b"3.0e-2"]),
    st.binary(max_size=8),
)
integer = st.one_of(
    st.integers(-5, 40).map(lambda i: b"%d" % i),
    st.sampled_from([b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808",
                     b"-9223372036854775809", b"99999999999999999999", b"", b"abc", b"1.0",
                     b" 1", b"+1", b"-0", b"01", b"2147483648", b"-2147483649"]),
)
floating = st.one_of(
    st.sampled_from([b"0", b"1", b"-1", b"1.5", b"-0.25", b"0.1", b"1e3", b"1E-3", b"5.0e3",
                     b"1e308", b"-1e308", b"inf", b"-inf", b"+inf", b"nan", b"abc", b"",
                     b" 1", b"1 ", b"0x10", b"3.", b".5", b"1e", b"10000000000000000000000"]),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda f: repr(f).encode()),
)
# Offsets for SETRANGE/SETBIT stay small: a valid huge offset would make both servers
# allocate hundreds of megabytes. The invalid ones check the range errors.
byte_offset = st.one_of(st.integers(-2, 24).map(lambda i: b"%d" % i),
                        st.sampled_from([b"536870912", b"536870911x", b"4294967296", b"abc", b""]))
bit_offset = st.one_of(st.integers(-2, 80).map(lambda i: b"%d" % i),
                       st.sampled_from([b"4294967296", b"-1", b"abc", b"1.5", b""]))
index = st.one_of(st.integers(-12, 12).map(lambda i: b"%d" % i),
                  st.sampled_from([b"9223372036854775807", b"-9223372036854775808", b"abc",
                                   b"99999999999999999999"]))


class Relative:
    """A relative expiry, made concrete when the sequence runs: base + 10 s per position
    in the sequence, so that two expiries of one sequence are never within the few
    milliseconds the servers' clocks can differ by, and GT/LT/NX/XX answers are
    deterministic."""

    __slots__ = ("base", "ms")

    def __init__(self, base: int, ms: bool):
        self.base, self.ms = base, ms

    def at(self, position: int) -> bytes:
        seconds = self.base + 10 * position
        return b"%d" % (seconds * 1000 if self.ms else seconds)

    def __repr__(self):
        return f"<{self.base}{'000 ms' if self.ms else ' s'} + 10 s per position>"


# Relative expiries are either long (so they cannot elapse during an example) or
# not positive (delete now / invalid); absolute ones are far past or far future.
seconds = st.one_of(st.integers(1, 100).map(lambda k: Relative(1000 * k, False)),
                    st.sampled_from([b"0", b"-1", b"-100", b"abc", b"", b"1.5",
                                     b"9223372036854775807", b"9223372036854775", b"-9223372036854775808"]))
milliseconds = st.one_of(st.integers(1, 100).map(lambda k: Relative(1000 * k, True)),
                         st.sampled_from([b"0", b"-1", b"abc", b"9223372036854775807"]))
FUTURE_S = int(time.time()) + 10**6
unix_seconds = st.sampled_from([b"1", b"1000", b"0", b"-1", b"%d" % FUTURE_S, b"abc",
                                b"%d" % (FUTURE_S * 10)])
unix_ms = st.sampled_from([b"1", b"1000", b"0", b"-5", b"%d" % (FUTURE_S * 1000), b"abc"])
pattern = st.sampled_from([b"*", b"a", b"?", b"[ab]", b"[^a]*", b"{*", b"*x", b"\\a", b"[a-c]",
                           b"", b"[", b"a*b*"])

expiry_option = st.one_of(
    st.tuples(st.just(b"EX"), seconds), st.tuples(st.just(b"PX"), milliseconds),
    st.tuples(st.just(b"EXAT"), unix_seconds), st.tuples(st.just(b"PXAT"), unix_ms),
    st.tuples(st.just(b"KEEPTTL")), st.tuples(st.just(b"ex"), seconds),
    st.tuples(st.just(b"px"), milliseconds),
    st.tuples(st.just(b"EX")),  # missing value
)
set_option = st.one_of(expiry_option, st.tuples(st.sampled_from([b"NX", b"XX", b"GET", b"nx",
                                                                 b"get", b"BOGUS"])))
getex_option = st.one_of(
    st.tuples(st.just(b"EX"), seconds), st.tuples(st.just(b"PX"), milliseconds),
    st.tuples(st.just(b"EXAT"), unix_seconds), st.tuples(st.just(b"PXAT"), unix_ms),
    st.tuples(st.sampled_from([b"PERSIST", b"persist", b"KEEPTTL", b"EX"])),
)
expire_flag = st.sampled_from([b"NX", b"XX", b"GT", b"LT", b"nx", b"BAD"])
bit_unit = st.sampled_from([b"BYTE", b"BIT", b"bit", b"WORD"])


def flat(name, *parts):
    """A command: name, then the parts (bytes, or tuples/lists of bytes) flattened."""
    def build(*values):
        out = [name]
        for v in values:
            if isinstance(v, (tuple, list)):
                for item in v:
                    out.extend(item if isinstance(item, (tuple, list)) else [item])
            else:
                out.append(v)
        return out
    return st.builds(build, *parts)


def optional(strategy, max_size=1):
    return st.lists(strategy, max_size=max_size)


string_commands = st.one_of(
    flat(b"SET", key, value, optional(set_option, 3)),
    flat(b"GET", key),
    flat(b"INCR", key), flat(b"DECR", key),
    flat(b"INCRBY", key, integer), flat(b"DECRBY", key, integer),
    flat(b"INCRBYFLOAT", key, floating),
    flat(b"APPEND", key, value),
    flat(b"GETRANGE", key, index, index),
    flat(b"SETRANGE", key, byte_offset, value),
    flat(b"STRLEN", key),
    flat(b"MSET", st.lists(st.tuples(key, value), min_size=1, max_size=3)),
    flat(b"MSET", key),  # odd number of arguments
    flat(b"MGET", keys),
    flat(b"GETDEL", key),
    flat(b"GETEX", key, optional(getex_option, 2)),
    flat(b"SETBIT", key, bit_offset, st.sampled_from([b"0", b"1", b"2", b"-1", b"x"])),
    flat(b"GETBIT", key, bit_offset),
    flat(b"BITCOUNT", key),
    flat(b"BITCOUNT", key, index, index, optional(bit_unit)),
    flat(b"BITCOUNT", key, index),  # start without end
    flat(b"BITPOS", key, st.sampled_from([b"0", b"1", b"2"])),
    flat(b"BITPOS", key, st.sampled_from([b"0", b"1"]), index, optional(index), optional(bit_unit)),
    flat(b"SETNX", key, value), flat(b"GETSET", key, value),
    flat(b"SETEX", key, seconds, value), flat(b"PSETEX", key, milliseconds, value),
    flat(b"MSETNX", st.lists(st.tuples(key, value), min_size=1, max_size=3)),
    flat(b"SUBSTR", key, index, index),
    flat(b"LCS", key, key, optional(st.sampled_from([b"LEN", b"IDX", b"WITHMATCHLEN"]), 2)),
    flat(b"BITOP", st.sampled_from([b"AND", b"OR", b"XOR", b"NOT", b"nand"]), key, keys),
)

keyspace_commands = st.one_of(
    flat(b"DEL", keys), flat(b"EXISTS", keys), flat(b"TYPE", key),
    flat(b"RENAME", key, key), flat(b"RENAMENX", key, key),
    flat(b"COPY", key, key, optional(st.tuples(st.just(b"DB"),
                                               st.sampled_from([b"0", b"1", b"16", b"x"]))),
         optional(st.sampled_from([b"REPLACE", b"replace", b"BAD"]))),
    flat(b"EXPIRE", key, seconds, optional(expire_flag, 2)),
    flat(b"PEXPIRE", key, milliseconds, optional(expire_flag)),
    flat(b"EXPIREAT", key, unix_seconds, optional(expire_flag)),
    flat(b"PEXPIREAT", key, unix_ms, optional(expire_flag)),
    flat(b"TTL", key), flat(b"PTTL", key), flat(b"PERSIST", key),
    flat(b"EXPIRETIME", key), flat(b"PEXPIRETIME", key),
    flat(b"UNLINK", keys), flat(b"TOUCH", keys),
    # A string's encoding depends on how it was built (raw after APPEND/SETRANGE...).
    flat(b"OBJECT", st.sampled_from([b"ENCODING", b"REFCOUNT"]), key),
    flat(b"MOVE", key, st.sampled_from([b"0", b"1", b"16", b"-1", b"x"])),
    flat(b"SELECT", st.sampled_from([b"0", b"1"])),
    flat(b"KEYS", pattern), flat(b"DBSIZE"),
    # Another type under a key, for the WRONGTYPE paths.
    flat(b"LPUSH", key, value),
)

commands = st.lists(st.one_of(string_commands, string_commands, keyspace_commands),
                    min_size=1, max_size=12)


# -- reply normalization ----------------------------------------------------------------


def split_reply(raw: bytes) -> list[bytes]:
    """The elements of a RESP2 array of bulk strings/nulls, as raw bytes each."""
    header, rest = raw.split(b"\r\n", 1)
    items = []
    for _ in range(int(header[1:])):
        line, rest = rest.split(b"\r\n", 1)
        size = int(line[1:])
        if size < 0:
            items.append(line)
        else:
            items.append(line + b"\r\n" + rest[:size])
            rest = rest[size + 2:]
    return items


# Replies that read the clock: compared within a tolerance (seconds or milliseconds).
TIMES = {b"TTL": 2, b"PTTL": 2000, b"EXPIRETIME": 2, b"PEXPIRETIME": 2000}


def normalize(argv: list[bytes], got: bytes, expected: bytes) -> tuple[bytes, bytes]:
    name = argv[0].upper()
    if name in TIMES and got.startswith(b":") and expected.startswith(b":"):
        a, b = int(got[1:-2]), int(expected[1:-2])
        tolerance = TIMES[name]
        if a >= 0 and b >= 0 and abs(a - b) <= tolerance:
            return b":<ttl>", b":<ttl>"
    if name == b"KEYS" and got.startswith(b"*") and expected.startswith(b"*"):
        return b"".join(sorted(split_reply(got))), b"".join(sorted(split_reply(expected)))
    return got, expected


def show(argv: list[bytes]) -> str:
    return " ".join(repr(a)[1:] for a in argv)


# -- the test ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    vermilion = start_vermilion(tmp_path_factory.mktemp("diff-vermilion"))
    real = start_redis(tmp_path_factory.mktemp("diff-redis"))
    yield vermilion, real
    vermilion.stop()
    real.stop()


def run_both(conns, sequence):
    """Run the sequence on both servers; return the transcript and the first mismatch."""
    ours, theirs = conns
    transcript = []
    for position, argv in enumerate(sequence):
        argv = [a.at(position) if isinstance(a, Relative) else a for a in argv]
        got, expected = normalize(argv, ours.command(*argv), theirs.command(*argv))
        transcript.append(f"  {show(argv)}\n      redis:     {expected!r}\n      vermilion: {got!r}")
        if got != expected:
            return transcript
    return None


def test_random_sequences_match_redis(servers):
    vermilion, real = servers
    conns = (RawConnection(vermilion.port), RawConnection(real.port))

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(commands)
    def sequence_matches(sequence):
        for conn in conns:
            assert conn.command("SELECT", "0") == b"+OK\r\n"
            assert conn.command("FLUSHALL") == b"+OK\r\n"
        mismatch = run_both(conns, sequence)
        if mismatch is not None:
            raise AssertionError("reply differs from redis-server:\n" + "\n".join(mismatch))

    try:
        sequence_matches()
    finally:
        for conn in conns:
            conn.close()
