"""ACL users and their permissions (Redis 7.0's acl.c).

Filled in by the ACL work; the skeleton here gives every Session a user."""

from __future__ import annotations


class User:
    __slots__ = ("name", "enabled", "nopass", "passwords", "unrestricted")

    def __init__(self, name: bytes):
        self.name = name
        self.enabled = False
        self.nopass = False
        self.passwords: set = set()
        self.unrestricted = False


class AccessControl:
    """The server's users (Redis's Users radix tree) and the ACL LOG."""

    def __init__(self):
        self.users: dict[bytes, User] = {}
        default = self.default_user = User(b"default")
        default.enabled = default.nopass = default.unrestricted = True
        self.users[b"default"] = default
