"""The set value (Redis's OBJ_SET, t_set.c).

A Python ``set`` of bytes members plus one sticky flag that mirrors Redis 7.0's
encoding: a set starts as an intset while every member is an integer (string2ll) and
there are at most set-max-intset-entries of them; the first non-integer member or the
entry past the limit converts it to a hashtable for good (Redis never converts back).
The encoding is visible through OBJECT ENCODING and decides reply order: an intset is
kept sorted, so SMEMBERS of an all-integer set replies in numeric order, as Redis does.

A Python set cannot pick a random member in O(1), which SPOP and SRANDMEMBER need
(Redis's dictGetFairRandomKey). So the set keeps a lazily built list of its members,
the "pool": SPOP swap-removes from it and SADD appends to it, so a queue worked with
SADD/SPOP stays O(1) a call; any other change drops it, to be rebuilt on demand.
"""

import random

from ..protocol.numbers import to_int

DEFAULT_MAX_INTSET_ENTRIES = 512


class RedisSet(set):
    __slots__ = ("intset", "_pool")
    type_name = "set"

    def __init__(self, members=()):
        super().__init__()
        self.intset = True
        self._pool = None
        if members:
            self.add_members(members, DEFAULT_MAX_INTSET_ENTRIES)

    @property
    def encoding(self) -> str:
        return "intset" if self.intset else "hashtable"

    # -- changes that keep the pool ------------------------------------------------------

    def add_members(self, members, max_intset_entries: int) -> int:
        """setTypeAdd() for each member; returns how many were new."""
        added = 0
        pool = self._pool
        for member in members:
            if member in self:
                continue
            set.add(self, member)
            added += 1
            if pool is not None:
                pool.append(member)
            if self.intset and to_int(member) is None:
                self.intset = False
        if self.intset and len(self) > max_intset_entries:
            self.intset = False
        return added

    def add_member(self, member: bytes, max_intset_entries: int) -> bool:
        return self.add_members((member,), max_intset_entries) == 1

    def pop_random(self, count: int) -> list:
        """Remove and return count random members (count <= len)."""
        pool = self._members_pool()
        out = []
        randrange = random.randrange
        for _ in range(count):
            i = randrange(len(pool))
            member = pool[i]
            pool[i] = pool[-1]
            pool.pop()
            set.discard(self, member)
            out.append(member)
        return out

    # -- reading -------------------------------------------------------------------------

    def _members_pool(self) -> list:
        pool = self._pool
        if pool is None or len(pool) != len(self):
            pool = self._pool = list(self)
        return pool

    def random_member(self) -> bytes:
        pool = self._members_pool()
        return pool[random.randrange(len(pool))]

    def random_members(self, count: int, unique: bool) -> list:
        """count random members; distinct ones when unique (count < len then)."""
        pool = self._members_pool()
        if unique:
            return random.sample(pool, count)
        return random.choices(pool, k=count)

    def ordered(self) -> list:
        """Members in the order Redis iterates them: ascending integers for an intset."""
        if self.intset:
            return sorted(self, key=int)
        return list(self)

    def copy(self) -> "RedisSet":
        clone = RedisSet()
        set.update(clone, self)
        clone.intset = self.intset
        return clone

    def __reduce__(self):
        return (_rebuild, (list(self), self.intset))


def _invalidating(name):
    base = getattr(set, name)

    def method(self, *args):
        self._pool = None
        return base(self, *args)

    method.__name__ = name
    method.__doc__ = base.__doc__
    return method


# Every other in-place change (SREM, SMOVE, code elsewhere using the set API) makes the
# pool stale; dropping it there keeps random picks right whoever changes the set.
for _name in ("add", "discard", "remove", "pop", "clear", "update", "difference_update",
              "intersection_update", "symmetric_difference_update",
              "__ior__", "__iand__", "__isub__", "__ixor__"):
    setattr(RedisSet, _name, _invalidating(_name))


def _rebuild(members, intset):
    value = RedisSet()
    set.update(value, members)
    value.intset = intset
    return value


def from_members(members, max_intset_entries: int = DEFAULT_MAX_INTSET_ENTRIES) -> RedisSet:
    """A fresh set as SINTERSTORE/SUNIONSTORE build one (createIntsetObject + adds)."""
    value = RedisSet()
    set.update(value, members)
    # add_members() one by one, in bulk: an intset while all are integers and few enough.
    value.intset = len(value) <= max_intset_entries and all(
        to_int(member) is not None for member in value)
    return value
