"""Writes refused while the disk refuses ours (server.c writeCommandsDeniedByDiskError).

Two conditions stop writes: the last BGSAVE failed (with stop-writes-on-bgsave-error
and save points configured), or the AOF cannot be written or fsynced. While either
holds, write commands — and PING, so a health check sees it — get -MISCONF; reads go
on. The check sits in the dispatcher's check list only while a condition holds, so
the common path pays nothing for it; the snapshot and AOF code call refresh() when
their status changes.
"""

from __future__ import annotations

import os

from ..protocol.errors import CommandError

RDB_MISCONF = (
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to "
    "persist to disk. Commands that may modify the data set are disabled, because this "
    "instance is configured to report errors during writes if RDB snapshotting fails "
    "(stop-writes-on-bgsave-error option). Please check the Redis logs for details about "
    "the RDB error."
)


class DiskErrors:
    def __init__(self, server):
        self.server = server

    def refresh(self) -> None:
        """Install the check while a save or an AOF write is failing, remove it after."""
        server = self.server
        failing = not server.snapshots.last_bgsave_ok or bool(server.aof.write_error)
        checks = server.hooks.command_checks
        if failing and self.check not in checks:
            checks.append(self.check)
        elif not failing and self.check in checks:
            checks.remove(self.check)

    def denial(self) -> str | None:
        """The -MISCONF message writes get now, or None (the RDB condition first)."""
        server = self.server
        config = server.config
        if (not server.snapshots.last_bgsave_ok and config["save"]
                and config.values.get("stop-writes-on-bgsave-error", True)):
            return RDB_MISCONF
        aof = server.aof
        if aof.enabled and aof.write_error:
            return "MISCONF Errors writing to the AOF file: " + os.strerror(aof.write_error)
        return None

    def check(self, client, spec, argv) -> None:
        if spec.is_write or spec.fullname == "ping" or (
                spec.fullname == "exec" and client.multi is not None
                and client.multi.holds("is_write")):
            message = self.denial()
            if message is not None and not (
                    client.script and self.server.scripting.past_first_write(client)):
                raise CommandError(message)

