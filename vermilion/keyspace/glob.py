"""Glob matching exactly as Redis's stringmatchlen() (util.c), used by KEYS, SCAN MATCH,
PSUBSCRIBE, CONFIG GET and friends.

The C matcher walks the pattern byte by byte. Its parsing of the pattern never depends
on the subject string, so a pattern is parsed once into tokens that each match exactly
one byte (a set of the 256 byte values) or are a run of stars, and the tokens become a
compiled ``re`` pattern (cached). The oddities of the C code are kept:

* an unterminated ``[`` class runs to the end of the pattern; ``[`` alone at the end
  matches nothing, ``[^`` at the end matches any byte;
* ``[a-]`` is a range from ``a`` to ``]`` (the C code reads the third byte blindly);
* range bounds are *signed* chars, so ``[\\xff-a]`` covers bytes 0x00..0x61 and 0xff;
* ``\\`` escapes the next byte, a trailing ``\\`` is a literal backslash; inside a class
  the escaped byte is compared case-sensitively even with nocase;
* nocase folds ASCII only (tolower() in the C locale);
* the empty string matches only the empty pattern (the C loop never runs), so ``*``
  does not match an empty key — KEYS and SCAN special-case the plain ``*`` pattern;
* recursion deeper than 1000 stars fails the match (Redis's guard against abusive
  patterns).

Backtracking is kept linear in practice: the text between stars is a run of fixed-width
tokens, so each middle run is searched leftmost inside an atomic group, which is the
same greedy-leftmost argument that makes Redis's skipLongerMatches correct.
"""

import re
from functools import lru_cache

STAR = None  # a token: None for a run of stars, else a frozenset of matching bytes
MAX_NESTING = 1000  # util.c: "Protection against abusive patterns"

_ALL = frozenset(range(256))
_CACHE: dict = {}
_CACHE_MAX = 512


def _signed(b: int) -> int:
    return b - 256 if b >= 128 else b


def _lower(c: int) -> int:
    # tolower() in the C locale: ASCII letters only (negative chars are left alone).
    return c + 32 if 65 <= c <= 90 else c


def _literal(b: int, nocase: bool) -> frozenset:
    if nocase:
        low = _lower(b)
        return frozenset(c for c in range(256) if _lower(c) == low)
    return frozenset((b,))


@lru_cache(maxsize=1024)
def _class_set(items: tuple, negate: bool, nocase: bool) -> frozenset:
    """The bytes a [...] class matches. Ranges are marked on a difference array over the
    signed char values, so a huge class costs O(items + 256), not O(items * 256)."""
    fold = _lower if nocase else (lambda c: c)
    diff = [0] * 258
    literals, escaped = set(), set()
    for kind, a, b in items:
        if kind == "esc":
            escaped.add(a)
        elif kind == "range":
            lo, hi = _signed(a), _signed(b)
            if lo > hi:
                lo, hi = hi, lo
            lo, hi = fold(lo), fold(hi)  # folded after the swap, as the C code does
            if lo <= hi:
                diff[lo + 128] += 1
                diff[hi + 129] -= 1
        else:
            literals.add(fold(a))
    covered, running = [False] * 256, 0
    for i in range(256):
        running += diff[i]
        covered[i] = running > 0
    matched = set()
    for c in range(256):
        hit = covered[fold(_signed(c)) + 128] or c in escaped or fold(c) in literals
        if hit != negate:
            matched.add(c)
    return frozenset(matched)


def tokenize(pattern: bytes, nocase: bool = False) -> list:
    """The pattern as tokens: STAR for a run of '*', else the set of bytes matched."""
    p = pattern
    n = len(p)

    def at(i):  # the C string's NUL terminator sits at p[n]
        return p[i] if i < n else 0

    tokens = []
    i = 0
    while i < n:
        ch = p[i]
        if ch == 42:  # '*'
            while i + 1 < n and p[i + 1] == 42:
                i += 1
            tokens.append(STAR)
        elif ch == 63:  # '?'
            tokens.append(_ALL)
        elif ch == 91:  # '['
            i += 1
            negate = at(i) == 94  # '^'
            if negate:
                i += 1
            items = []
            while True:
                if at(i) == 92 and n - i >= 2:  # '\' escapes inside a class
                    i += 1
                    items.append(("esc", p[i], 0))
                elif at(i) == 93:  # ']'
                    break
                elif i >= n:  # unterminated: back up so the outer step ends the pattern
                    i -= 1
                    break
                elif n - i >= 3 and p[i + 1] == 45:  # 'a-z'
                    items.append(("range", p[i], p[i + 2]))
                    i += 2
                else:
                    items.append(("lit", p[i], 0))
                i += 1
            tokens.append(_class_set(tuple(items), negate, nocase))
        else:
            if ch == 92 and n - i >= 2:  # '\x' is a literal x; a trailing '\' is itself
                i += 1
                ch = p[i]
            tokens.append(_literal(ch, nocase))
        i += 1
    return tokens


@lru_cache(maxsize=1024)
def _set_regex(s: frozenset) -> bytes:
    if len(s) == 256:
        return b"."
    if not s:
        return b"(?!)"
    if len(s) == 1:
        return re.escape(bytes(s))
    if len(s) > 128:
        return b"[^" + _ranges(_ALL - s) + b"]"
    return b"[" + _ranges(s) + b"]"


def _ranges(s) -> bytes:
    """A regex class body for the byte set s, runs written as ranges."""
    out, run = [], []
    for c in sorted(s):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(_run(run))
        run = [c]
    out.append(_run(run))
    return b"".join(out)


def _run(run: list) -> bytes:
    if len(run) <= 2:
        return b"".join(b"\\x%02x" % c for c in run)
    return b"\\x%02x-\\x%02x" % (run[0], run[-1])


def _compile(pattern: bytes, nocase: bool):
    """A function bytes -> bool for pattern."""
    tokens = tokenize(pattern, nocase)
    if not tokens:
        return lambda s: not s
    stars = [i for i, t in enumerate(tokens) if t is STAR]
    if len(stars) > MAX_NESTING and stars[MAX_NESTING] != len(tokens) - 1:
        # The star beyond the nesting limit still has bytes to match after it: Redis's
        # recursion guard makes every such match fail.
        return lambda s: False
    # Runs of fixed-width tokens between the stars.
    runs, run = [], []
    for t in tokens:
        if t is STAR:
            runs.append(run)
            run = []
        else:
            run.append(t)
    runs.append(run)
    parts = [b"".join(_set_regex(t) for t in runs[0])]
    for middle in runs[1:-1]:
        parts.append(b"(?>.*?" + b"".join(_set_regex(t) for t in middle) + b")")
    if len(runs) > 1:
        parts.append(b".*" + b"".join(_set_regex(t) for t in runs[-1]))
    fullmatch = re.compile(b"".join(parts), re.DOTALL).fullmatch
    # The empty string never matches a non-empty pattern (the C loop never runs).
    return lambda s: bool(s) and fullmatch(s) is not None


def matcher(pattern: bytes, nocase: bool = False):
    """A cached predicate bytes -> bool equivalent to stringmatchlen(pattern, ., nocase)."""
    key = (pattern, nocase)
    fn = _CACHE.get(key)
    if fn is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        fn = _CACHE[key] = _compile(pattern, nocase)
    return fn


def stringmatch(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    return matcher(pattern, nocase)(string)
