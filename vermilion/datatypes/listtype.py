"""The list value: a deque of bytes elements.

Why a deque: Redis's quicklist is a linked list of small arrays, so pushes and pops at
both ends are O(1) and an index walks O(n / node size). CPython's deque is the same
shape (a doubly linked list of 64-slot blocks): appends/pops at either end are O(1)
in C, and ``dq[i]`` walks blocks from the nearer end, O(min(i, n-i) / 64) — the middle
of a 1M-element list is ~8k pointer hops, which is what LINDEX/LSET cost in Redis too.
A Python list would make LPUSH/LPOP O(n); a blist/B-tree would cost a dependency and
slow down the common push/pop path. Ranges (LRANGE, LTRIM, LPOS) iterate from the
nearer end with ``islice`` so that a range at the tail of a big list stays cheap.
"""

from collections import deque
from itertools import islice


class ListValue(deque):
    """A Redis list. Elements are bytes; the key is deleted when it becomes empty."""

    __slots__ = ()

    type_name = "list"
    # Redis 7.0 always reports lists as quicklist (its listpack-encoded small lists
    # arrived in 7.2): OBJECT ENCODING of even a one-element list is "quicklist".
    encoding = "quicklist"

    def copy(self) -> "ListValue":
        return ListValue(self)

    def range(self, start: int, end: int) -> list[bytes]:
        """Elements start..end inclusive, indexes already clamped to 0 <= start <= end < len.

        Walks from whichever end is nearer, as quicklistGetIteratorAtIdx does."""
        n = len(self)
        if start == 0 and end == n - 1:
            return list(self)
        if start <= n - 1 - end:
            return list(islice(self, start, end + 1))
        out = list(islice(reversed(self), n - 1 - end, n - start))
        out.reverse()
        return out

    def keep_range(self, start: int, end: int) -> None:
        """LTRIM to start..end inclusive (clamped, non-empty): pop the cheaper way."""
        n = len(self)
        ltrim, rtrim = start, n - 1 - end
        keep = end - start + 1
        if ltrim + rtrim <= keep:
            popleft, pop = self.popleft, self.pop
            for _ in range(ltrim):
                popleft()
            for _ in range(rtrim):
                pop()
        else:
            items = self.range(start, end)
            self.clear()
            self.extend(items)

    def remove_indexes(self, indexes: list[int]) -> None:
        """Delete the elements at the given (ascending) indexes."""
        if len(indexes) <= 16:
            for i in reversed(indexes):
                del self[i]
            return
        drop = set(indexes)
        items = [x for i, x in enumerate(self) if i not in drop]
        self.clear()
        self.extend(items)


def from_items(items) -> ListValue:
    """A list from elements in head-to-tail order (RDB load, RESTORE)."""
    return ListValue(items)
