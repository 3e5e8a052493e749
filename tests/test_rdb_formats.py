"""Old RDB encodings (Redis 2.x–6.x files): built byte by byte from the format spec,
loaded by the real redis-server 7.0 and by Vermilion, and compared."""

import struct

import anycrc
import lzf
import pytest

from conftest import ServerProcess, VERMILION, require_binary

CRC64 = anycrc.Model("CRC64-REDIS")


def length(n):
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    return b"\x80" + n.to_bytes(4, "big")


def string(s: bytes):
    return length(len(s)) + s


def zl_entry(prevlen: int, item):
    prev = bytes([prevlen]) if prevlen < 254 else b"\xfe" + prevlen.to_bytes(4, "little")
    if isinstance(item, int):
        if 0 <= item <= 12:
            body = bytes([0xF1 + item])
        elif -128 <= item <= 127:
            body = b"\xfe" + item.to_bytes(1, "little", signed=True)
        elif -32768 <= item <= 32767:
            body = b"\xc0" + item.to_bytes(2, "little", signed=True)
        elif -(2**23) <= item < 2**23:
            body = b"\xf0" + item.to_bytes(3, "little", signed=True)
        elif -(2**31) <= item < 2**31:
            body = b"\xd0" + item.to_bytes(4, "little", signed=True)
        else:
            body = b"\xe0" + item.to_bytes(8, "little", signed=True)
    else:
        n = len(item)
        if n < 64:
            body = bytes([n]) + item
        elif n < 16384:
            body = bytes([0x40 | (n >> 8), n & 0xFF]) + item
        else:
            body = b"\x80" + n.to_bytes(4, "big") + item
    return prev + body


def ziplist(items):
    entries, prevlen, offsets = [], 0, []
    pos = 10
    for item in items:
        entry = zl_entry(prevlen, item)
        offsets.append(pos)
        entries.append(entry)
        pos += len(entry)
        prevlen = len(entry)
    body = b"".join(entries)
    total = 10 + len(body) + 1
    tail = offsets[-1] if offsets else 10
    return total.to_bytes(4, "little") + tail.to_bytes(4, "little") + \
        len(items).to_bytes(2, "little") + body + b"\xff"


def zipmap(pairs):
    out = bytes([len(pairs)])
    for k, v in pairs:
        out += bytes([len(k)]) + k + bytes([len(v)]) + b"\x00" + v
    return out + b"\xff"


def intset(values, width):
    fmt = {2: "h", 4: "i", 8: "q"}[width]
    values = sorted(values)
    return struct.pack("<II", width, len(values)) + struct.pack("<%d%s" % (len(values), fmt), *values)


def rdb_file(version, entries):
    body = b"REDIS%04d" % version + b"\xfe\x00"
    for rdb_type, key, payload, expire_s in entries:
        if expire_s is not None:
            body += b"\xfd" + struct.pack("<i", expire_s)
        body += bytes([rdb_type]) + string(key) + payload
    body += b"\xff"
    return body + struct.pack("<Q", CRC64.calc(body))


_LZF = lzf.compress(b"ab" * 20)
FAR_FUTURE = 2_000_000_000  # seconds: 2033

OLD_FORMAT_KEYS = [
    (10, b"list-ziplist", string(ziplist([b"a", 1, -200, 70000, 2**40, b"x" * 100, 12])), None),
    (14, b"list-quicklist", length(2) + string(ziplist([b"q1", b"q2"])) + string(ziplist([3, b"q4"])), None),
    (1, b"list-plain", length(3) + string(b"p1") + string(b"p2") + string(b"p3"), FAR_FUTURE),
    (9, b"hash-zipmap", string(zipmap([(b"f1", b"v1"), (b"f2", b"22")])), None),
    (13, b"hash-ziplist", string(ziplist([b"name", b"redis", b"age", 15])), None),
    (4, b"hash-table", length(2) + string(b"h1") + string(b"v1") + string(b"h2") + string(b"v2"), None),
    (11, b"set-intset16", string(intset([5, -3, 1000], 2)), None),
    (11, b"set-intset64", string(intset([2**40, -(2**35), 7], 8)), None),
    (2, b"set-table", length(2) + string(b"m1") + string(b"m2"), None),
    (12, b"zset-ziplist", string(ziplist([b"neg", -7, b"half", b"0.5", b"one", 1])), None),
    (3, b"zset-old", length(2) + string(b"a") + bytes([3]) + b"1.5" + string(b"b") + b"\xfe", None),
    (0, b"string-int", b"\xc0\x7b", None),
    (0, b"string-lzf", b"\xc3" + length(len(_LZF)) + length(40) + _LZF, None),
]


def _contents(c):
    out = {}
    for key in sorted(c.keys("*")):
        kind = c.type(key)
        if kind == b"list":
            out[key] = c.lrange(key, 0, -1)
        elif kind == b"hash":
            out[key] = c.hgetall(key)
        elif kind == b"set":
            out[key] = c.smembers(key)
        elif kind == b"zset":
            out[key] = c.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = c.get(key)
        out[key + b":ttl"] = c.ttl(key) > 0
    return out


def _load_with(binary, workdir):
    server = ServerProcess(binary, cwd=workdir)
    server.args = ["--dir", str(workdir)]
    server.start()
    try:
        return _contents(server.client())
    finally:
        server.stop()


@pytest.mark.parametrize("version", [6, 9])
def test_old_encodings_load_like_redis(tmp_path, version):
    (tmp_path / "dump.rdb").write_bytes(rdb_file(version, OLD_FORMAT_KEYS))
    expected = _load_with(require_binary("redis-server"), tmp_path)
    assert len([k for k in expected if not k.endswith(b":ttl")]) == len(OLD_FORMAT_KEYS)
    assert _load_with(VERMILION, tmp_path) == expected


def test_corrupt_file_refuses_to_start(tmp_path):
    data = bytearray(rdb_file(9, OLD_FORMAT_KEYS))
    # Flip a byte of the CRC64 itself: a flipped byte inside a value would fail that
    # value's integrity check first (as in Redis, which checks the CRC after the keys).
    data[-1] ^= 0xFF
    (tmp_path / "dump.rdb").write_bytes(bytes(data))
    server = ServerProcess(VERMILION, cwd=tmp_path)
    server.args = ["--dir", str(tmp_path)]
    with pytest.raises(RuntimeError, match="Wrong RDB checksum"):
        server.start()


def test_module_value_stops_loading_with_its_name(tmp_path):
    # A module value (RDB type 7) cannot be loaded: start-up stops, naming the key.
    body = rdb_file(9, [(0, b"ok", string(b"v"), None), (7, b"bloom", b"\x81" + b"\x00" * 8, None)])
    (tmp_path / "dump.rdb").write_bytes(body)
    server = ServerProcess(VERMILION, cwd=tmp_path)
    server.args = ["--dir", str(tmp_path)]
    with pytest.raises(RuntimeError, match="key 'bloom'.*module"):
        server.start()


def test_corrupt_stream_value_stops_loading_with_its_name(tmp_path):
    body = rdb_file(9, [(0, b"ok", string(b"v"), None), (15, b"events", b"\x00", None)])
    (tmp_path / "dump.rdb").write_bytes(body)
    server = ServerProcess(VERMILION, cwd=tmp_path)
    server.args = ["--dir", str(tmp_path)]
    with pytest.raises(RuntimeError, match="key 'events'"):
        server.start()
