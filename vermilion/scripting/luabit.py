"""The bit library (LuaBitOp 1.0, as bundled by Redis): 32-bit operations on numbers,
results as signed 32-bit integers. Implemented in Python: lupa's Lua has no C modules."""

from __future__ import annotations


def _arg(x) -> int:
    # barg(): x + 2^52+2^51 keeps the low 32 bits, rounding to nearest even.
    if type(x) is bytes:
        x = float(x)
    if type(x) is float:
        if x != x or x in (float("inf"), float("-inf")):
            return 0
        x = round(x)
    return int(x) & 0xFFFFFFFF


def _signed(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - 0x100000000 if x & 0x80000000 else x


def tobit(x):
    return _signed(_arg(x))


def bnot(x):
    return _signed(~_arg(x))


def band(x, *more):
    r = _arg(x)
    for y in more:
        r &= _arg(y)
    return _signed(r)


def bor(x, *more):
    r = _arg(x)
    for y in more:
        r |= _arg(y)
    return _signed(r)


def bxor(x, *more):
    r = _arg(x)
    for y in more:
        r ^= _arg(y)
    return _signed(r)


def lshift(x, n):
    return _signed(_arg(x) << (_arg(n) & 31))


def rshift(x, n):
    return _signed(_arg(x) >> (_arg(n) & 31))


def arshift(x, n):
    return _signed(_signed(_arg(x)) >> (_arg(n) & 31))


def rol(x, n):
    v, n = _arg(x), _arg(n) & 31
    return _signed((v << n) | (v >> (32 - n)))


def ror(x, n):
    v, n = _arg(x), _arg(n) & 31
    return _signed((v >> n) | (v << (32 - n)))


def bswap(x):
    return _signed(int.from_bytes(_arg(x).to_bytes(4, "little"), "big"))


def tohex(x, n=8):
    v, n = _arg(x), _signed(_arg(n))
    digits = "0123456789ABCDEF" if n < 0 else "0123456789abcdef"
    n = min(abs(n), 8) or 0
    out = ""
    for _ in range(n):
        out = digits[v & 15] + out
        v >>= 4
    return out.encode()


def library(lua):
    return lua.table_from({name.encode(): fn for name, fn in (
        ("tobit", tobit), ("bnot", bnot), ("band", band), ("bor", bor), ("bxor", bxor),
        ("lshift", lshift), ("rshift", rshift), ("arshift", arshift), ("rol", rol),
        ("ror", ror), ("bswap", bswap), ("tohex", tohex))})
