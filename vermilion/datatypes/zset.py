"""The sorted set value (Redis's OBJ_ZSET, t_zset.c).

Redis keeps a dict member→score beside a skiplist ordered by (score, member); we keep
the same dict beside a sortedcontainers.SortedList of (score, member) tuples, which
gives the skiplist's O(log n) insert, delete, rank and index-by-rank. Tuples order
exactly as Redis does: by score, then by member bytes (memcmp, shorter first on a tie).

The encoding Redis would report is a sticky flag: a sorted set is a listpack while it
has at most zset-max-listpack-entries members none longer than zset-max-listpack-value,
and becomes a skiplist for good the first time it outgrows either (zsetAdd converts,
nothing converts back except building a fresh result in ZUNIONSTORE/ZRANGESTORE).
"""

import math
import random
from sortedcontainers import SortedList

DEFAULT_MAX_LISTPACK_ENTRIES = 128
DEFAULT_MAX_LISTPACK_VALUE = 64


class _Above:
    """Sorts after every member: (score, ABOVE) is past all entries with that score."""

    __slots__ = ()

    def __lt__(self, other):
        return False

    def __le__(self, other):
        return other is self

    def __gt__(self, other):
        return other is not self

    def __ge__(self, other):
        return True

    def __eq__(self, other):
        return other is self

    def __hash__(self):
        return 0


ABOVE = _Above()

# Lex range bounds '-' and '+' (Redis's shared.minstring / shared.maxstring).
LEX_MIN = object()
LEX_MAX = object()


def _lex_cmp(a, b) -> int:
    """sdscmplex(): the '-' / '+' sentinels sort before / after every string."""
    if a is b:
        return 0
    if a is LEX_MIN or b is LEX_MAX:
        return -1
    if a is LEX_MAX or b is LEX_MIN:
        return 1
    return (a > b) - (a < b)


class ScoreRange:
    """zrangespec: min/max with exclusive flags ('(' prefix)."""

    __slots__ = ("min", "minex", "max", "maxex")

    def __init__(self, lo: float, loex: bool, hi: float, hiex: bool):
        self.min, self.minex, self.max, self.maxex = lo, loex, hi, hiex

    def empty(self) -> bool:
        return self.min > self.max or (self.min == self.max and (self.minex or self.maxex))

    def contains(self, score: float) -> bool:
        above = score > self.min if self.minex else score >= self.min
        below = score < self.max if self.maxex else score <= self.max
        return above and below


class LexRange:
    """zlexrangespec: bytes bounds or LEX_MIN/LEX_MAX, with exclusive flags."""

    __slots__ = ("min", "minex", "max", "maxex")

    def __init__(self, lo, loex: bool, hi, hiex: bool):
        self.min, self.minex, self.max, self.maxex = lo, loex, hi, hiex

    def empty(self) -> bool:
        cmp = _lex_cmp(self.min, self.max)
        return cmp > 0 or (cmp == 0 and (self.minex or self.maxex))

    def gte_min(self, member: bytes) -> bool:
        cmp = _lex_cmp(member, self.min)
        return cmp > 0 if self.minex else cmp >= 0

    def lte_max(self, member: bytes) -> bool:
        cmp = _lex_cmp(member, self.max)
        return cmp < 0 if self.maxex else cmp <= 0


class ZSet:
    __slots__ = ("scores", "_order", "listpack")
    type_name = "zset"

    def __init__(self):
        self.scores: dict[bytes, float] = {}
        self._order = SortedList()
        self.listpack = True

    @property
    def order(self) -> SortedList:
        """The (score, member) index. A sorted set loaded from an RDB file or a DUMP
        payload gets it on first use: building a SortedList is most of the cost of
        loading a small sorted set, and many are only ever read by ZSCORE."""
        order = self._order
        if order is None:
            order = self._order = SortedList([(s, m) for m, s in self.scores.items()])
        return order

    @order.setter
    def order(self, value: SortedList) -> None:
        self._order = value

    def __len__(self) -> int:
        return len(self.scores)

    def __contains__(self, member) -> bool:
        return member in self.scores

    @property
    def encoding(self) -> str:
        return "listpack" if self.listpack else "skiplist"

    def copy(self) -> "ZSet":
        clone = ZSet()
        clone.scores = dict(self.scores)
        clone.order = SortedList(self.order)
        clone.listpack = self.listpack
        return clone

    # -- encoding --------------------------------------------------------------------

    def fit(self, max_entries: int, max_value: int) -> None:
        """A freshly built result (zsetConvertToListpackIfNeeded)."""
        # all() only runs on a small set: `and` stops at a set past the entry limit.
        scores = self.scores
        self.listpack = len(scores) <= max_entries and max(map(len, scores), default=0) <= max_value
        if self.listpack and 0.0 in scores.values():  # (-0.0 == 0.0: finds either)
            self._unsign_zeros()

    def _unsign_zeros(self) -> None:
        # A listpack stores scores as text and d2string() prints an integral -0.0 as
        # "0": a listpack never holds a negative zero, a skiplist does.
        for member, score in self.scores.items():
            if score == 0 and math.copysign(1.0, score) < 0:
                self.order.remove((score, member))
                self.order.add((0.0, member))
                self.scores[member] = 0.0

    # -- members ---------------------------------------------------------------------

    def score(self, member: bytes):
        return self.scores.get(member)

    def insert(self, member: bytes, score: float, max_entries: int, max_value: int) -> None:
        """A new member (zsetAdd): a listpack that would outgrow its limits is converted
        to a skiplist first, then the member goes in."""
        if self.listpack and (len(self.scores) + 1 > max_entries or len(member) > max_value):
            self.listpack = False
        self.set(member, score)

    def set(self, member: bytes, score: float) -> bool:
        """Insert or move member to score; True when it is new."""
        if score == 0 and self.listpack:
            score = 0.0
        order = self.order  # (an index built on first use must see the scores unchanged)
        old = self.scores.get(member)
        if old is not None:
            if old == score:  # -0.0 == 0.0 too: Redis keeps the old one (score != curscore)
                return False
            order.remove((old, member))
        self.scores[member] = score
        order.add((score, member))
        return old is None

    def remove(self, member: bytes) -> bool:
        order = self.order  # (built, if it is built now, from the scores unchanged)
        score = self.scores.pop(member, None)
        if score is None:
            return False
        order.remove((score, member))
        return True

    def rank(self, member: bytes, reverse: bool = False):
        score = self.scores.get(member)
        if score is None:
            return None
        rank = self.order.bisect_left((score, member))
        return len(self.scores) - 1 - rank if reverse else rank

    # -- ranges: half-open [start, end) positions in ascending order ---------------------

    def score_span(self, rng: ScoreRange) -> tuple[int, int]:
        if rng.empty():
            return 0, 0
        order = self.order
        start = order.bisect_left((rng.min, ABOVE) if rng.minex else (rng.min,))
        end = order.bisect_left((rng.max,) if rng.maxex else (rng.max, ABOVE))
        return start, max(start, end)

    # Lex ranges are meant for members sharing one score, but Redis answers whatever
    # the order holds, with one shape of algorithm for both encodings: find the first
    # (or last) member in range, then walk while the far bound holds. Only the finder
    # differs: a listpack scans linearly from the head (tail), a skiplist descends as a
    # binary search would. Following that shape keeps replies identical to Redis even
    # for mixed scores on a listpack.

    def _lex_possible(self, rng: LexRange) -> bool:
        """zslIsInLexRange(): a non-empty range, last member >= min, first <= max."""
        order = self.order
        return (not rng.empty() and len(order) > 0 and rng.gte_min(order[-1][1])
                and rng.lte_max(order[0][1]))

    def lex_first(self, rng: LexRange):
        """Position of the first member in range (zslFirstInLexRange), or None."""
        if not self._lex_possible(rng):
            return None
        if self.listpack:
            pos = next(i for i, (_, m) in enumerate(self.order) if rng.gte_min(m))
        else:
            pos = self._first(rng.gte_min, 0)
        return pos if rng.lte_max(self.order[pos][1]) else None

    def lex_last(self, rng: LexRange):
        """Position of the last member in range (zslLastInLexRange), or None."""
        if not self._lex_possible(rng):
            return None
        order = self.order
        if self.listpack:
            pos = next(i for i in range(len(order) - 1, -1, -1) if rng.lte_max(order[i][1]))
        else:
            pos = self._first(lambda m: not rng.lte_max(m), 0) - 1
        return pos if rng.gte_min(order[pos][1]) else None

    def lex_walk(self, rng: LexRange, reverse: bool, offset: int = 0, limit: int = -1) -> list:
        """ZRANGEBYLEX: from the first (last) member in range skip offset entries, then
        take up to limit (all when negative) while the far bound holds."""
        pos = self.lex_last(rng) if reverse else self.lex_first(rng)
        if pos is None or offset < 0 or limit == 0:
            return []  # Redis skips "offset--" entries: a negative offset skips them all
        if reverse:
            entries = self.order.islice(0, max(0, pos - offset + 1), reverse=True)
            holds = rng.gte_min
        else:
            entries = self.order.islice(pos + offset, len(self.order))
            holds = rng.lte_max
        out = []
        for entry in entries:
            if not holds(entry[1]):
                break
            out.append(entry)
            if len(out) == limit:
                break
        return out

    def lex_count(self, rng: LexRange) -> int:
        first = self.lex_first(rng)
        if first is None:
            return 0
        if self.listpack:
            return len(self.lex_walk(rng, False))
        # zlexcountCommand on a skiplist: from the ranks of the first and last in range.
        last = self.lex_last(rng)
        count = len(self.order) - first
        if last is not None:
            count -= len(self.order) - 1 - last
        return count

    def lex_delete_span(self, rng: LexRange) -> tuple[int, int]:
        """Positions ZREMRANGEBYLEX removes: from the first member >= min (a listpack
        also checks the range as zzlFirstInLexRange does) while members are <= max."""
        if self.listpack:
            start = self.lex_first(rng)
            if start is None:
                return 0, 0
        else:
            start = self._first(rng.gte_min, 0)
        end = start
        for _, member in self.order.islice(start, len(self.order)):
            if not rng.lte_max(member):
                break
            end += 1
        return start, end

    def _first(self, pred, lo: int) -> int:
        """The first position >= lo where pred(member) holds, pred being monotone."""
        order, hi = self.order, len(self.order)
        while lo < hi:
            mid = (lo + hi) // 2
            if pred(order[mid][1]):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def entries(self, start: int, end: int, reverse: bool = False) -> list:
        """(score, member) tuples at positions [start, end), reversed on request."""
        if start >= end:
            return []
        if reverse:
            return list(self.order.islice(start, end, reverse=True))
        return list(self.order.islice(start, end))

    def delete_span(self, start: int, end: int) -> int:
        if start >= end:
            return 0
        scores = self.scores
        for _, member in self.order.islice(start, end):
            del scores[member]
        del self.order[start:end]
        return end - start

    def pop(self, count: int, maximum: bool) -> list:
        """Remove and return up to count (score, member), lowest (or highest) first."""
        n = len(self.scores)
        if count == 1 and n:  # ZPOPMIN/ZPOPMAX key, BZPOPMIN...: SortedList's own end pop
            entry = self.order.pop(-1 if maximum else 0)
            del self.scores[entry[1]]
            return [entry]
        count = min(count, n)
        if maximum:
            taken = list(self.order.islice(n - count, n, reverse=True))
            del self.order[n - count:n]
        else:
            taken = list(self.order.islice(0, count))
            del self.order[0:count]
        for _, member in taken:
            del self.scores[member]
        return taken

    def random_entries(self, count: int, unique: bool) -> list:
        n = len(self.scores)
        order = self.order
        if not unique:
            return [order[random.randrange(n)] for _ in range(count)]
        if count >= n:
            entries = list(order)
            random.shuffle(entries)
            return entries
        return [order[i] for i in random.sample(range(n), count)]

    def items_by_score(self):
        """(member, score) in ascending order (the RDB writer's view). A sorted set
        without its index yet is sorted for the occasion rather than indexed."""
        order = self._order
        if order is None:
            order = sorted([(score, member) for member, score in self.scores.items()])
        return [(member, score) for score, member in order]

    def __iter__(self):
        """(score, member) in ascending order."""
        return iter(self.order)

    def __reduce__(self):
        return (_rebuild, (list(self.order), self.listpack))


def _rebuild(entries, listpack):
    value = ZSet()
    for score, member in entries:
        value.scores[member] = score
    value.order = SortedList(entries)
    value.listpack = listpack
    return value


def from_scores(scores: dict, max_entries: int = DEFAULT_MAX_LISTPACK_ENTRIES,
                max_value: int = DEFAULT_MAX_LISTPACK_VALUE) -> ZSet:
    """A fresh sorted set from a member→score dict, encoded as a new result would be."""
    value = ZSet.__new__(ZSet)  # not ZSet(): its empty SortedList would be thrown away
    value.scores = scores
    value._order = None  # built on first use
    value.listpack = True
    value.fit(max_entries, max_value)
    return value


def from_pairs(pairs, max_entries: int = DEFAULT_MAX_LISTPACK_ENTRIES,
               max_value: int = DEFAULT_MAX_LISTPACK_VALUE) -> ZSet:
    """From (member, score) pairs (the RDB loader); a later duplicate wins."""
    return from_scores(dict(pairs), max_entries, max_value)

