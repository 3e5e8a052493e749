"""Vermilion: a Redis-compatible, persistent data server in Python."""

__version__ = "0.1.0"
# The Redis release whose behaviour (replies, errors, INFO fields) we match.
REDIS_VERSION = "7.0.15"
