"""Glob matching (keyspace/glob.py) against Redis's stringmatchlen: a literal Python port
of util.c for property tests, and KEYS on real redis-server for the final word."""

import random
import threading

from hypothesis import given, settings, strategies as st

from vermilion.keyspace.glob import stringmatch, tokenize


def _lower(c):
    return c + 32 if 65 <= c <= 90 else c


def _signed(b):
    return b - 256 if b >= 128 else b


def c_stringmatch(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    """util.c stringmatchlen_impl() of Redis 7.0 line by line, NUL terminators included."""
    P, S = pattern + b"\0", string + b"\0"
    skip = [False]

    def impl(pi, plen, si, slen, nesting):
        if nesting > 1000:
            return False
        while plen and slen:
            c = P[pi]
            if c == 42:  # '*'
                while plen and P[pi + 1] == 42:
                    pi += 1
                    plen -= 1
                if plen == 1:
                    return True
                while slen:
                    if impl(pi + 1, plen - 1, si, slen, nesting + 1):
                        return True
                    if skip[0]:
                        return False
                    si += 1
                    slen -= 1
                skip[0] = True
                return False
            elif c == 63:  # '?'
                si += 1
                slen -= 1
            elif c == 91:  # '['
                pi += 1
                plen -= 1
                neg = P[pi] == 94
                if neg:
                    pi += 1
                    plen -= 1
                match = False
                while True:
                    if P[pi] == 92 and plen >= 2:
                        pi += 1
                        plen -= 1
                        if P[pi] == S[si]:
                            match = True
                    elif P[pi] == 93:
                        break
                    elif plen == 0:
                        pi -= 1
                        plen += 1
                        break
                    elif plen >= 3 and P[pi + 1] == 45:
                        lo, hi, x = _signed(P[pi]), _signed(P[pi + 2]), _signed(S[si])
                        if lo > hi:
                            lo, hi = hi, lo
                        if nocase:
                            lo, hi, x = _lower(lo), _lower(hi), _lower(x)
                        pi += 2
                        plen -= 2
                        if lo <= x <= hi:
                            match = True
                    elif (_lower(P[pi]) == _lower(S[si])) if nocase else (P[pi] == S[si]):
                        match = True
                    pi += 1
                    plen -= 1
                if neg:
                    match = not match
                if not match:
                    return False
                si += 1
                slen -= 1
            else:
                if c == 92 and plen >= 2:
                    pi += 1
                    plen -= 1
                if (_lower(P[pi]) != _lower(S[si])) if nocase else (P[pi] != S[si]):
                    return False
                si += 1
                slen -= 1
            pi += 1
            plen -= 1
            if slen == 0:
                while P[pi] == 42:
                    pi += 1
                    plen -= 1
                break
        return plen == 0 and slen == 0

    return impl(0, len(pattern), 0, len(string), 0)


PATTERN_BYTES = [b"a", b"b", b"A", b"z", b"*", b"?", b"[", b"]", b"^", b"-", b"\\",
                 b"\x00", b"\x80", b"\xff"]
SUBJECT_BYTES = [b"a", b"b", b"A", b"z", b"*", b"[", b"]", b"^", b"-", b"\\",
                 b"\x00", b"\x80", b"\xff"]
patterns = st.lists(st.sampled_from(PATTERN_BYTES), max_size=10).map(b"".join)
subjects = st.lists(st.sampled_from(SUBJECT_BYTES), max_size=8).map(b"".join)


@settings(max_examples=1000, deadline=None)
@given(patterns, subjects, st.booleans())
def test_matches_the_c_algorithm(pattern, subject, nocase):
    assert stringmatch(pattern, subject, nocase) == c_stringmatch(pattern, subject, nocase)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=12), st.binary(max_size=10), st.booleans())
def test_matches_the_c_algorithm_on_any_bytes(pattern, subject, nocase):
    assert stringmatch(pattern, subject, nocase) == c_stringmatch(pattern, subject, nocase)


ODD_CASES = [
    # (pattern, subject, expected): the corners of util.c's parser.
    (b"*", b"", False),  # the C loop never runs on an empty subject
    (b"", b"", True),
    (b"[", b"[", False),  # '[' at the end matches nothing
    (b"[^", b"x", True),  # '[^' at the end matches any byte
    (b"[a-]", b"]", True),  # a range from 'a' to ']'
    (b"[a-]", b"-", False),
    (b"[a", b"a", True),  # unterminated class
    (b"[\\", b"\\", True),
    (b"\\", b"\\", True),  # a trailing backslash is literal
    (b"a\\", b"a\\", True),
    (b"\\*", b"*", True),
    (b"\\*", b"a", False),
    (b"[\xff-a]", b"\x00", True),  # signed chars: 0xff is -1
    (b"[\xff-a]", b"\x80", False),
    (b"[A-a]", b"\\", True),
    (b"[]]", b"]", False),  # ']' right after '[' closes an empty class
    (b"[^]", b"x", True),
    (b"a*", b"a", True),
    (b"*a*", b"a", True),
    (b"h?llo", b"hello", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True),
]


def test_odd_patterns():
    for pattern, subject, expected in ODD_CASES:
        assert stringmatch(pattern, subject) is expected, (pattern, subject)
        assert c_stringmatch(pattern, subject) is expected, (pattern, subject)


def test_nocase_folds_ascii_only():
    assert stringmatch(b"HELLO*", b"hello world", True)
    assert not stringmatch(b"HELLO*", b"hello world", False)
    assert stringmatch(b"[A-C]x", b"bX", True)
    assert not stringmatch(b"\xc9", b"\xe9", True)
    # An escaped byte inside a class is compared case-sensitively even with nocase.
    assert not stringmatch(b"[\\A]", b"a", True)


def _finishes(work, bound: float = 60.0) -> list:
    """work()'s results, failing if it does not finish within bound seconds: not a speed
    target (those live in bench/), a guard against exponential matching, which would
    never finish at these sizes."""
    results = []
    worker = threading.Thread(target=lambda: results.append(work()), daemon=True)
    worker.start()
    worker.join(bound)
    assert results, "matching did not finish: exponential backtracking?"
    return results[0]


def test_pathological_patterns_do_not_backtrack_exponentially():
    subject = b"a" * 20000
    assert _finishes(lambda: [
        stringmatch(b"*a*a*a*a*a*a*a*a*a*a*b", subject),
        stringmatch(b"a*" * 50 + b"b", subject),
        stringmatch(b"*a*a*a*a*a*a*a*a*a*a", subject),
    ]) == [False, False, True]


def test_tokens():
    assert tokenize(b"a**b") == [frozenset(b"a"), None, frozenset(b"b")]
    assert tokenize(b"[") == [frozenset()]


def _keys_compare(real, vclient, keys, pattern_list):
    for client in (real, vclient):
        client.flushall()
        pipe = client.pipeline(transaction=False)
        for k in keys:
            pipe.set(k, b"1")
        pipe.execute()
    for pattern in pattern_list:
        assert sorted(vclient.keys(pattern)) == sorted(real.keys(pattern)), pattern


def test_keys_patterns_against_real_redis(real, vermilion_server):
    rnd = random.Random(7)
    alphabet = PATTERN_BYTES + [b"\n", b" "]
    keys = {b""}
    while len(keys) < 300:
        keys.add(b"".join(rnd.choice(SUBJECT_BYTES) for _ in range(rnd.randint(0, 6))))
    pattern_list = [p for _ in range(600)
                    if (p := b"".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 8))))]
    pattern_list += [p for p, _, _ in ODD_CASES if p] + [b"*", b"**", b"?*"]
    vclient = vermilion_server.client()
    try:
        _keys_compare(real, vclient, keys, pattern_list)
    finally:
        vclient.flushall()
        vclient.close()


def test_nesting_limit_against_real_redis(real, vermilion_server):
    keys = [b"a" * 999, b"a" * 1001, b"a" * 1200]
    pattern_list = [b"*a" * 1001, b"*a" * 1000 + b"*", b"*a" * 1000, b"*a" * 999 + b"*"]
    vclient = vermilion_server.client()
    try:
        _keys_compare(real, vclient, keys, pattern_list)
    finally:
        vclient.flushall()
        vclient.close()


def test_huge_patterns_compile_without_blowing_up():
    assert _finishes(lambda: [
        stringmatch(b"*?" * 50000, b"a" * 100),  # beyond the nesting limit
        stringmatch(b"[a-z" * 20000, b"a" * 100),  # one enormous class
        stringmatch(b"[a-z]" * 20000, b"a" * 20000),
        stringmatch(b"?" * 100000, b"b" * 100000),
    ]) == [False, False, True, True]
