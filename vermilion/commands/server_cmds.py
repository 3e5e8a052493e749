"""Server commands: INFO, TIME, MONITOR (server.c), LASTSAVE (db.c), ROLE and WAIT
(replication.c, for a server with no replicas). Replies and errors follow Redis 7.0
byte for byte.
"""

import time

from .. import info
from ..protocol import errors
from ..protocol.encode import NO_REPLY, OK, Verbatim
from ..protocol.errors import CommandError
from ..protocol.numbers import to_int
from .client_cmds import timeout_ms
from .registry import command


# -- INFO, TIME, LASTSAVE, ROLE, WAIT -----------------------------------------------------

@command("info")
def info_(client, argv):
    return Verbatim(info.render(client.server, info.select_sections(argv[1:])))


@command("time")
def time_(client, argv):
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]


@command("lastsave")
def lastsave(client, argv):
    return client.server.lastsave


# -- MONITOR -------------------------------------------------------------------------------

@command("monitor")
def monitor(client, argv):
    # A replica can't become a monitor; a second MONITOR is ignored (no reply change).
    if "S" in client.flags or "M" in client.flags:
        return NO_REPLY
    client.flags.add("O")
    client.server.monitors.add(client)
    return OK

