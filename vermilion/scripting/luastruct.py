"""struct (Roberto Ierusalimschy's lstruct, as bundled by Redis), in Python.

struct.pack(fmt, ...), struct.unpack(fmt, s [, pos]) (values, then the next position)
and struct.size(fmt). Format: < > = endianness, !n alignment, x padding, b B h H l L T
i[n] I[n] integers, f d floats, s zero-terminated string, c[n] fixed-size string.
"""

from __future__ import annotations

import struct as _struct


class StructError(Exception):
    pass


_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "l": 8, "L": 8, "T": 8, "f": 4, "d": 8,
          "x": 1, "s": 0}
_MAXINTSIZE = 32


def _parse(fmt: str):
    """Yield (option, size, little_endian, align) items."""
    little, maxalign = True, 1
    i = 0
    while i < len(fmt):
        opt = fmt[i]
        i += 1
        digits = ""
        while i < len(fmt) and fmt[i].isdigit():
            digits += fmt[i]
            i += 1
        if opt == " ":
            continue
        if opt == "<" or opt == "=":
            little = True
        elif opt == ">":
            little = False
        elif opt == "!":
            maxalign = int(digits) if digits else 8
        elif opt in ("i", "I"):
            size = int(digits) if digits else 4
            if not 1 <= size <= _MAXINTSIZE:
                raise StructError("integral size %d is larger than limit of %d"
                                  % (size, _MAXINTSIZE))
            yield opt, size, little, min(size, maxalign)
        elif opt == "c":
            yield opt, int(digits) if digits else 1, little, 1
        elif opt in _SIZES:
            size = _SIZES[opt]
            yield opt, size, little, min(size, maxalign) if size else 1
        else:
            raise StructError("invalid format option '%s'" % opt)


def _pad(pos: int, align: int) -> int:
    if align > 1 and pos % align:
        return align - pos % align
    return 0


def _to_int(value) -> int:
    if type(value) is bytes:
        value = float(value)
    if type(value) not in (int, float):
        raise StructError("bad argument (number expected)")
    return int(value)


def size(fmt: bytes) -> int:
    pos = 0
    for opt, n, _, align in _parse(fmt.decode("latin-1")):
        if opt == "s":
            raise StructError("options 'c0' - 's' have undefined sizes")
        pos += _pad(pos, align) + n
    return pos


def pack(fmt: bytes, *args) -> bytes:
    out = bytearray()
    args = list(args)
    for opt, n, little, align in _parse(fmt.decode("latin-1")):
        out += b"\0" * _pad(len(out), align)
        order = "little" if little else "big"
        if opt == "x":
            out += b"\0"
            continue
        if not args:
            raise StructError("bad argument to 'pack' (no value)")
        value = args.pop(0)
        if opt in "bBhHlLTiI":
            out += (_to_int(value) & ((1 << (8 * n)) - 1)).to_bytes(n, order)
        elif opt in "fd":
            if type(value) not in (int, float):
                raise StructError("bad argument to 'pack' (number expected)")
            code = ("<" if little else ">") + opt
            out += _struct.pack(code, float(value))
        elif opt == "c":
            data = value if type(value) is bytes else str(value).encode()
            if n == 0:
                n = len(data)
            if len(data) < n:
                raise StructError("string too short")
            out += data[:n]
        elif opt == "s":
            data = value if type(value) is bytes else str(value).encode()
            if b"\0" in data:
                raise StructError("string contains zeros")
            out += data + b"\0"
    return bytes(out)


def unpack(fmt: bytes, data: bytes, init=1):
    pos = int(init) - 1
    values = []
    last_number = None
    for opt, n, little, align in _parse(fmt.decode("latin-1")):
        pos += _pad(pos, align)
        order = "little" if little else "big"
        if opt == "x":
            pos += 1
            continue
        if opt == "s":
            end = data.find(b"\0", pos)
            if end < 0:
                raise StructError("unfinished string in data")
            values.append(data[pos:end])
            pos = end + 1
            continue
        if opt == "c" and n == 0:
            if last_number is None:
                raise StructError("format 'c0' needs a previous size")
            n = last_number
            values.pop()
        if pos + n > len(data):
            raise StructError("data string too short")
        chunk = data[pos:pos + n]
        pos += n
        if opt in "bBhHlLTiI":
            value = int.from_bytes(chunk, order, signed=opt.islower())
            values.append(value)
            last_number = value
        elif opt in "fd":
            values.append(_struct.unpack(("<" if little else ">") + opt, chunk)[0])
        elif opt == "c":
            values.append(chunk)
    values.append(pos + 1)
    return tuple(values)


def _format_errors(name, fn):
    # A bad format is luaL_argerror() on argument 1, as lstruct.c reports it.
    def wrapper(*args):
        try:
            return fn(*args)
        except StructError as exc:
            if str(exc).startswith(("invalid format", "integral size")):
                raise StructError("bad argument #1 to '%s' (%s)" % (name, exc)) from None
            raise
        except (TypeError, AttributeError):
            raise StructError("bad argument #1 to '%s' (string expected, got no value)"
                              % name) from None
    return wrapper


def library(lua):
    return lua.table_from({b"pack": _format_errors("pack", pack),
                           b"unpack": _format_errors("unpack", unpack),
                           b"size": _format_errors("size", size)})
