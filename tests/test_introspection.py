"""COMMAND and its subcommands, compared byte for byte with a real redis-server 7.0.

Two levels: over the wire for commands Vermilion handles, and in-process for every
entry of Redis's command metadata (the reply builders don't need a handler), so the
COMMAND INFO / DOCS layout is checked against the real server for all 388 entries.
"""

import re

import pytest

from vermilion.commands import introspection as intro
from vermilion.commands.spec import make_spec, redis_metadata
from vermilion.protocol.encode import encode

WIRE_COMMANDS = ["get", "set", "ping", "echo", "select", "hello", "auth", "info", "time",
                 "client|list", "client|kill", "command|info", "slowlog|get", "latency|reset",
                 "shutdown", "debug", "wait", "role", "monitor"]


def bulk_strings(reply: bytes) -> list[bytes]:
    return re.findall(rb"\$\d+\r\n([^\r]*)\r\n", reply)


@pytest.mark.parametrize("proto", [2, 3])
def test_command_info_and_docs_match_redis_on_the_wire(raw, raw_real, proto):
    raw.command("HELLO", proto)
    raw_real.command("HELLO", proto)
    for name in WIRE_COMMANDS:
        for sub in ("INFO", "DOCS"):
            assert raw.command("COMMAND", sub, name) == raw_real.command("COMMAND", sub, name), (sub, name)


def test_command_info_several_names_and_unknown(raw, raw_real):
    args = ("COMMAND", "INFO", "get", "nosuchcommand", "SET", "Client|List")
    assert raw.command(*args) == raw_real.command(*args)
    assert raw.command("COMMAND", "DOCS", "nosuch") == raw_real.command("COMMAND", "DOCS", "nosuch")


@pytest.mark.parametrize("proto", [2, 3])
def test_every_metadata_entry_matches_redis(raw_real, proto):
    """The reply builders for all of Redis's commands (containers aside: Redis lists
    their subcommands in hash order)."""
    raw_real.command("HELLO", proto)
    mismatches = []
    for full_name in redis_metadata():
        spec = make_spec(full_name)
        name = spec.fullname
        if name.startswith("sentinel") or "container" not in spec.meta and any(
                k.startswith(full_name + " ") for k in redis_metadata()):
            continue
        ours = encode([intro._build_info(spec)], proto)
        if ours != raw_real.command("COMMAND", "INFO", name):
            mismatches.append(("INFO", name))
        ours = encode({name.encode(): intro._build_docs(spec)}, proto)
        if ours != raw_real.command("COMMAND", "DOCS", name):
            mismatches.append(("DOCS", name))
    assert mismatches == []


def _names(values) -> set[str]:
    return {v.decode() if isinstance(v, bytes) else v for v in values}


def test_command_count_and_list(r):
    names = _names(r.command_list())
    top = [n for n in names if "|" not in n]
    assert r.command_count() == len(top)
    assert {"get", "command", "command|info", "client|list", "client|tracking"} <= names


def test_command_list_filters(r, real):
    ours = _names(r.command_list(pattern="client*"))
    theirs = _names(real.command_list(pattern="client*"))
    assert "client|list" in ours and ours <= theirs
    cat = _names(r.command_list(category="connection"))
    assert {"ping", "echo", "hello"} <= cat and "get" not in cat
    assert r.command_list(module="x") == []


def test_command_errors_match_redis(raw, raw_real):
    cases = [
        ("COMMAND", "LIST", "FILTERBY"), ("COMMAND", "LIST", "FILTERBY", "x", "y"),
        ("COMMAND", "LIST", "foo"), ("COMMAND", "bogus"), ("COMMAND", "COUNT", "x"),
        ("COMMAND", "GETKEYS"), ("COMMAND", "GETKEYS", "get"),
        ("COMMAND", "GETKEYS", "nosuch", "a"), ("COMMAND", "GETKEYS", "ping", "x"),
        ("COMMAND", "GETKEYS", "set", "a"), ("COMMAND", "GETKEYS", "client", "list"),
        ("COMMAND", "HELP"), ("COMMAND", "LIST", "FILTERBY", "aclcat", "nosuch"),
    ]
    for args in cases:
        assert raw.command(*args) == raw_real.command(*args), args


def test_getkeys_on_the_wire(raw, raw_real):
    cases = [
        ("COMMAND", "GETKEYS", "set", "a", "b"), ("COMMAND", "GETKEYS", "get", "k"),
        ("COMMAND", "GETKEYSANDFLAGS", "set", "a", "b"),
        ("COMMAND", "GETKEYSANDFLAGS", "set", "a", "b", "GET"),
        ("COMMAND", "GETKEYSANDFLAGS", "get", "a"),
    ]
    for args in cases:
        assert raw.command(*args) == raw_real.command(*args), args


@pytest.mark.parametrize("argv", [
    ["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"],
    ["zunionstore", "d", "5", "a"],
    ["sort", "a", "BY", "w*", "LIMIT", "0", "1", "STORE", "dst"],
    ["sort_ro", "a", "GET", "#"],
    ["xread", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"],
    ["eval", "return 1", "2", "k1", "k2", "a"],
    ["lmpop", "2", "a", "b", "LEFT"],
    ["migrate", "h", "1", "", "0", "5", "KEYS", "a", "b"],
    ["georadius", "g", "0", "0", "1", "km", "STORE", "dst"],
    ["mset", "a", "1", "b", "2"],
    ["bitfield", "k", "GET", "u8", "0"],
    ["bitfield", "k", "SET", "u8", "0", "1"],
    ["blmpop", "0", "2", "a", "b", "LEFT"],
])
def test_key_extraction_matches_redis(raw_real, argv):
    """keys_from_argv() against the real COMMAND GETKEYSANDFLAGS for commands that use
    keyword and keynum key specs or a getkeys function."""
    spec = make_spec(argv[0].upper())
    expected = raw_real.command("COMMAND", "GETKEYSANDFLAGS", *argv)
    args = [a.encode() for a in argv]
    try:
        keys = intro._getkeys_for(spec, args)
        ours = encode([[args[p], intro.ReplySet(intro.key_flag_names(f))] for p, f in keys], 2)
    except intro.CommandError as exc:
        ours = b"-%s\r\n" % exc.message.encode()
    assert ours == expected


def test_redis_py_command_helpers(r):
    assert r.command_count() > 10
    assert r.command_getkeys("SET", "a", "b") in ([b"a"], ["a"])


def test_command_docs_resp3_is_a_map(raw):
    raw.command("HELLO", 3)
    docs = raw.command("COMMAND", "DOCS", "get")
    assert docs.startswith(b"%1\r\n$3\r\nget\r\n%")
    assert b"$5\r\ngroup\r\n$6\r\nstring\r\n" in docs


def test_cluster_commands_of_a_standalone_server_match_redis(raw, raw_real):
    cases = [
        ("READONLY",), ("READWRITE",), ("ASKING",), ("CLUSTER", "INFO"), ("CLUSTER", "HELP"),
        ("CLUSTER", "bogus"), ("CLUSTER",), ("CLUSTER", "SLOTS", "x"),
        ("CLUSTER", "KEYSLOT", "foo"), ("COMMAND", "INFO", "cluster|info"),
        ("COMMAND", "INFO", "readonly"),
    ]
    for args in cases:
        assert raw.command(*args) == raw_real.command(*args), args
