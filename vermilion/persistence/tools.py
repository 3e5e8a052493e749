"""`vermilion check-rdb`, `vermilion check-aof [--fix]` and `vermilion rdb dump`:
inspect any Redis RDB file or AOF directory (ours or real Redis's)."""

from __future__ import annotations

import base64
import json
import os
import sys

from . import rdb
from .aof import AOFError, parse_manifest
from ..protocol.parser import RequestParser


class _Db:
    """A bare keyspace to load into (no server, no hooks)."""

    def __init__(self, db_id: int):
        self.id = db_id
        self.data: dict = {}
        self.expires: dict = {}


def _load(path: str):
    with open(path, "rb") as f:
        data = f.read()
    dbs = [_Db(i) for i in range(1024)]
    result = rdb.load_snapshot(data, dbs, now_ms=0)
    return data, dbs, result


def check_rdb(path: str, out=print) -> int:
    out(f"[offset 0] Checking RDB file {path}")
    try:
        data, dbs, result = _load(path)
    except OSError as exc:
        out(f"--- RDB ERROR DETECTED ---\nCannot open {path}: {exc.strerror}")
        return 1
    except rdb.RDBError as exc:
        out(f"--- RDB ERROR DETECTED ---\n{exc}")
        return 1
    out(f"[offset {len(data)}] \\o/ RDB looks OK! \\o/")
    out(f"[info] {result.keys} keys read")
    out(f"[info] {sum(len(db.expires) for db in dbs)} expires")
    for name, value in result.aux.items():
        out(f"[info] AUX {name.decode(errors='replace')} = {value.decode(errors='replace')}")
    return 0


def _aof_files(path: str) -> list[str]:
    if os.path.isdir(path):
        manifest = [n for n in os.listdir(path) if n.endswith(".manifest")]
        if not manifest:
            raise AOFError(f"no manifest in {path}")
        with open(os.path.join(path, manifest[0])) as f:
            return [os.path.join(path, e.name) for e in parse_manifest(f.read()) if e.type != "h"]
    return [path]


def check_aof(path: str, fix: bool = False, assume_yes: bool = False, out=print) -> int:
    """Check every file of an AOF; report the first bad offset. With --fix, an incomplete
    tail of the last incr file is truncated (after confirmation)."""
    try:
        files = _aof_files(path)
    except (OSError, AOFError) as exc:
        out(f"Cannot read AOF {path}: {exc}")
        return 1
    for index, name in enumerate(files):
        with open(name, "rb") as f:
            data = f.read()
        if data.startswith(b"REDIS"):
            try:
                rdb.load_snapshot(data, [_Db(i) for i in range(1024)], now_ms=0)
            except rdb.RDBError as exc:
                out(f"RDB preamble of {name} is not valid: {exc}")
                return 1
            out(f"RDB preamble is OK, proceeding with AOF tail... ({name})")
            continue
        parser = RequestParser()
        parser.limits.proto_max_bulk_len = 2**62
        parser.feed(data)
        commands = parser.parse()
        if parser.error is not None:
            out(f"0x{len(data) - parser.incomplete_bytes():x}: {parser.error} ({name})")
            return 1
        leftover = parser.incomplete_bytes()
        good = len(data) - leftover
        if leftover:
            out(f"AOF analyzed: filename={os.path.basename(name)}, size={len(data)}, "
                f"ok_up_to={good}, ok_up_to_line=?, diff={leftover}")
            last = index == len(files) - 1
            if not fix or not last:
                out("AOF is not valid. Use the --fix option to try fixing it.")
                return 1
            if not assume_yes:
                answer = input(f"This will shrink the AOF {name} from {len(data)} bytes, "
                               f"with {leftover} bytes, to {good} bytes\nContinue? [y/N]: ")
                if answer.strip().lower() != "y":
                    out("Aborting...")
                    return 1
            with open(name, "r+b") as f:
                f.truncate(good)
            out("Successfully truncated AOF " + name)
            continue
        out(f"AOF {os.path.basename(name)} is valid ({len(commands)} commands)")
    return 0


def _jsonable(value):
    if type(value) is bytes:
        return _text(value)
    kind = value.type_name
    if kind == "list":
        return [_text(v) for v in value]
    if kind == "set":
        return sorted(_text(v) for v in value)
    if kind == "hash":
        return {_text(k): _text(v) for k, v in value.items()}
    if kind == "zset":
        return [[_text(m), s] for m, s in rdb.zset_pairs(value)]
    if kind == "stream":
        return {"length": len(value)}
    return repr(value)


def _text(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(b).decode()


def dump_rdb(path: str, fmt: str = "text", out=print) -> int:
    try:
        _, dbs, _ = _load(path)
    except (OSError, rdb.RDBError) as exc:
        print(f"Cannot load {path}: {exc}", file=sys.stderr)
        return 1
    for db in dbs:
        for key, value in db.data.items():
            kind = "string" if type(value) is bytes else value.type_name
            expire = db.expires.get(key)
            if fmt == "json":
                out(json.dumps({"db": db.id, "key": _text(key), "type": kind,
                                "expire_ms": expire, "value": _jsonable(value)}))
            else:
                ttl = f" expire_ms={expire}" if expire else ""
                out(f"db={db.id} {kind} {_text(key)!r}{ttl} {json.dumps(_jsonable(value))}")
    return 0
