"""CLIENT and its subcommands (networking.c clientCommand), and the client
description they share with INFO and the logs: client_info_line() (CLIENT LIST/INFO's
line), client_flags(), client_type(). Replies and errors follow Redis 7.0 byte for byte.
"""

import time

from .. import memory
from ..protocol import errors
from ..protocol.encode import NO_REPLY, OK, Raw, ReplySet, Verbatim
from ..protocol.errors import CommandError
from ..protocol.numbers import to_int
from ..tracking import prefix_collision
from .registry import command


def validate_client_name(name: bytes) -> None:
    # CLIENT SETNAME / HELLO SETNAME: no spaces, newlines or special characters.
    if any(c < 33 or c > 126 for c in name):
        raise CommandError("ERR Client names cannot contain spaces, newlines or special characters.")


def timeout_ms(raw: bytes) -> int:
    # getTimeoutFromObjectOrReply(UNIT_MILLISECONDS) as CLIENT PAUSE and WAIT parse it.
    value = to_int(raw)
    if value is None:
        raise CommandError("ERR timeout is not an integer or out of range")
    if value < 0:
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    return value



# -- CLIENT ----------------------------------------------------------------------------

CLIENT_HELP = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
]

# catClientInfoString(): flag letters in this order; 'N' when there is none.
_FLAG_ORDER = "OSMPxbtRBdcuAUre"

# getClientTypeByName()
_CLIENT_TYPES = {b"normal": "normal", b"slave": "replica", b"replica": "replica",
                 b"pubsub": "pubsub", b"master": "master"}


def client_type(client) -> str:
    # getClientType(): a MONITOR client counts as normal.
    flags = client.flags
    if "M" in flags:
        return "master"
    if "S" in flags:
        return "replica"
    if "P" in flags:
        return "pubsub"
    return "normal"


def _parse_client_type(raw: bytes) -> str:
    kind = _CLIENT_TYPES.get(raw.lower())
    if kind is None:
        raise CommandError("ERR Unknown client type '%s'" % raw.decode("utf-8", "replace"))
    return kind


def client_flags(client) -> str:
    letters = set(client.flags)
    if client.dirty_cas:
        letters.add("d")
    if client.close_after_reply:
        letters.add("c")
    if client.unix:
        letters.add("U")
    if client.no_evict:
        letters.add("e")
    if client.tracking is not None:
        letters.update(client.tracking.letters())
    text = "".join(ch for ch in _FLAG_ORDER if ch in letters)
    return text or "N"


def _request_size(argv: list[bytes]) -> int:
    """Bytes of argv as a RESP multibulk request."""
    return len(b"*%d\r\n" % len(argv)) + sum(len(b"$%d\r\n\r\n" % len(a)) + len(a) for a in argv)


def client_info_line(client, now: float | None = None, argv: list[bytes] | None = None) -> str:
    """One CLIENT LIST line, fields in Redis 7.0's order. argv: the command the client
    is running, which Redis still counts in its query buffer (qbuf) and argv-mem."""
    now = time.time() if now is None else now
    multi = client.multi.queue if client.multi is not None else None
    subscriptions = client.subscriptions
    qbuf = client.parser.buffered()
    qbuf_free = memory.query_buffer_bytes(client.parser) - qbuf  # (a big argument's room)
    argv_mem = 0
    if argv is not None:
        qbuf += _request_size(argv)
        argv_mem = sum(len(a) for a in argv)
    omem = client.output_buffer_size()
    cmd = client.cmd.fullname if client.cmd is not None else "NULL"
    events = "rw" if omem else "r"
    redir = client.tracking.redirect if client.tracking is not None else -1
    user = client.user.name.decode("utf-8", "surrogateescape")
    return (
        f"id={client.id} addr={client.addr} laddr={client.laddr} fd={client.fd} "
        f"name={client.name.decode('utf-8', 'replace')} age={int(now - client.created)} "
        f"idle={int(now - client.last_interaction)} flags={client_flags(client)} "
        f"db={client.db.id} sub={len(subscriptions.channels)} "
        f"psub={len(subscriptions.patterns)} ssub={len(subscriptions.shard_channels)} "
        f"multi={len(multi) if multi is not None else -1} qbuf={qbuf} qbuf-free={qbuf_free} "
        f"argv-mem={argv_mem} multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem={omem} "
        f"tot-mem={memory.client_bytes(client, argv)} events={events} cmd={cmd} user={user} redir={redir} "
        f"resp={client.resp}"
    )


# The fewest bytes one pick of HRANDFIELD/SRANDMEMBER/ZRANDMEMBER adds to a reply: an
# empty bulk string, "$0\r\n\r\n".
MIN_PICK_BYTES = 6


def picks_overflow_output(client, picks: int) -> bool:
    """Whether a reply of `picks` random picks (a negative count: repetitions allowed,
    no bound but the count) certainly passes the client's hard output buffer limit.
    Redis adds the picks one at a time and stops once the client is scheduled to be
    closed for that limit (hrandfieldWithCountCommand()'s CLIENT_CLOSE_ASAP break, and
    SRANDMEMBER's, ZRANDMEMBER's): here the client is closed at once, before building a
    reply that would be dropped. False (build it) when its class has no hard limit."""
    if not client.connected:
        return False
    server = client.server
    hard = server.hard_output_limit(client)
    if not hard or picks * MIN_PICK_BYTES < hard:
        return False
    server.check_output_limits(client, picks * MIN_PICK_BYTES)
    return client.closing


@command("client id")
def client_id(client, argv):
    return client.id


@command("client setname")
def client_setname(client, argv):
    validate_client_name(argv[2])
    client.name = argv[2]
    return OK


@command("client getname")
def client_getname(client, argv):
    return client.name or None


@command("client info")
def client_info(client, argv):
    return Verbatim(client_info_line(client, argv=argv).encode() + b"\n")


@command("client list")
def client_list(client, argv):
    clients = client.server.clients.values()
    if len(argv) == 4 and argv[2].lower() == b"type":
        kind = _parse_client_type(argv[3])
        clients = [c for c in clients if client_type(c) == kind]
    elif len(argv) >= 4 and argv[2].lower() == b"id":
        ids = []
        for raw in argv[3:]:
            value = to_int(raw)
            if value is None:
                raise CommandError("ERR Invalid client ID")
            ids.append(value)
        by_id = client.server.clients
        clients = [by_id[i] for i in dict.fromkeys(ids) if i in by_id]
    elif len(argv) != 2:
        raise CommandError(errors.SYNTAX)
    now = time.time()
    # A client closed (killed, evicted, over its output limit) is gone for Redis at once
    # (freeClient(), or freeClientAsync() before the next command): here it stays in
    # server.clients until its transport reports the connection lost.
    return Verbatim("".join(client_info_line(c, now, argv if c is client else None) + "\n"
                            for c in clients if c is client or not c.closing).encode())


@command("client kill")
def client_kill(client, argv):
    server = client.server
    if len(argv) == 3:
        # Old form: CLIENT KILL addr:port, an error when nobody matches.
        addr = argv[2].decode("utf-8", "replace")
        for other in list(server.clients.values()):
            if other.addr == addr:
                _kill(client, other)
                return OK
        raise CommandError("ERR No such client")
    if len(argv) % 2:
        raise CommandError(errors.SYNTAX)
    checks = []
    skipme = True
    for i in range(2, len(argv), 2):
        option, value = argv[i].lower(), argv[i + 1]
        if option == b"id":
            cid = to_int(value)
            if cid is None or cid < 1:
                raise CommandError("ERR client-id should be greater than 0")
            checks.append(lambda c, cid=cid: c.id == cid)
        elif option == b"type":
            kind = _parse_client_type(value)
            checks.append(lambda c, kind=kind: client_type(c) == kind)
        elif option == b"addr":
            text = value.decode("utf-8", "replace")
            checks.append(lambda c, text=text: c.addr == text)
        elif option == b"laddr":
            text = value.decode("utf-8", "replace")
            checks.append(lambda c, text=text: c.laddr == text)
        elif option == b"user":
            user = server.acl.get(value)
            if user is None:
                raise CommandError("ERR No such user '%s'" % value.decode("utf-8", "replace"))
            checks.append(lambda c, user=user: c.user is user)
        elif option == b"skipme":
            word = value.lower()
            if word not in (b"yes", b"no"):
                raise CommandError(errors.SYNTAX)
            skipme = word == b"yes"
        else:
            raise CommandError(errors.SYNTAX)
    killed = 0
    for other in list(server.clients.values()):
        if skipme and other is client:
            continue
        if all(check(other) for check in checks):
            _kill(client, other)
            killed += 1
    return killed


def _kill(caller, victim) -> None:
    # Killing yourself takes effect after the reply (CLIENT_CLOSE_AFTER_REPLY).
    if victim is caller:
        caller.close_after_reply = True
    else:
        victim.close()


@command("client pause")
def client_pause(client, argv):
    timeout = timeout_ms(argv[2])
    writes_only = False
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode not in (b"write", b"all"):
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
        writes_only = mode == b"write"
    elif len(argv) > 4:
        raise CommandError(errors.SYNTAX)
    client.server.pause_clients(time.time() + timeout / 1000, writes_only)
    return OK


@command("client unpause")
def client_unpause(client, argv):
    client.server.unpause_clients()
    return OK


@command("client reply")
def client_reply(client, argv):
    mode = argv[2].lower()
    if mode == b"on":
        client.reply_off = client.reply_skip = client.reply_skip_next = False
        return OK
    if mode == b"off":
        client.reply_off = True
        return NO_REPLY
    if mode == b"skip":
        if not client.reply_off:
            client.reply_skip_next = True
        return NO_REPLY
    raise CommandError(errors.SYNTAX)


@command("client no-evict")
def client_no_evict(client, argv):
    mode = argv[2].lower()
    if mode not in (b"on", b"off"):
        raise CommandError(errors.SYNTAX)
    client.no_evict = mode == b"on"
    return OK


@command("client unblock")
def client_unblock(client, argv):
    """CLIENT UNBLOCK id [TIMEOUT|ERROR] (networking.c): the reason is checked before
    the id; 1 when that client was blocked and now got its timeout (or -UNBLOCKED)."""
    if len(argv) > 4:
        raise CommandError(errors.SUBCOMMAND_SYNTAX.format(
            argv[1].decode("utf-8", "replace"), "CLIENT"))
    error = False
    if len(argv) == 4:
        reason = argv[3].lower()
        if reason not in (b"timeout", b"error"):
            raise CommandError(errors.UNBLOCK_REASON)
        error = reason == b"error"
    target = to_int(argv[2])
    if target is None:
        raise CommandError(errors.NOT_INTEGER)
    server = client.server
    victim = server.clients.get(target)
    blocked_by = victim.cmd if victim is not None and victim.blocked is not None else None
    if not server.blocking.unblock_by_id(target, error):
        return 0
    if error and blocked_by is not None:
        # updateStatsOnUnblock(target, 0, 0, had_errors=1): the blocked command failed.
        blocked_by.failed_calls += 1
    return 1


# -- CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO (client-side caching) ----------

_TRACKING_OPTIONS = frozenset({b"bcast", b"optin", b"optout", b"noloop"})
PREFIX_NEEDS_BCAST = "ERR PREFIX option requires BCAST mode to be enabled"
BCAST_SWITCH = ("ERR You can't switch BCAST mode on/off before disabling tracking for this "
                "client, and then re-enabling it with a different mode.")
BCAST_OPTIN = "ERR OPTIN and OPTOUT are not compatible with BCAST"
OPTIN_AND_OPTOUT = "ERR You can't specify both OPTIN mode and OPTOUT mode"
OPTIN_SWITCH = ("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this "
                "client, and then re-enabling it with a different mode.")
REDIRECT_TWICE = "ERR A client can only redirect to a single other client"
NO_REDIRECT_CLIENT = "ERR The client ID you want redirect to does not exist"
CACHING_NOT_TRACKING = ("ERR CLIENT CACHING can be called only when the client is in "
                        "tracking mode with OPTIN or OPTOUT mode enabled")
CACHING_YES = "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
CACHING_NO = "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."


def _tracking_options(client, argv):
    """CLIENT TRACKING's options after on|off: (redirect id, option names, prefixes)."""
    redirect = 0
    options: set = set()
    prefixes: list = []
    i = 3
    while i < len(argv):
        word = argv[i].lower()
        more = i + 1 < len(argv)
        if word == b"redirect" and more:
            i += 1
            if redirect:
                raise CommandError(REDIRECT_TWICE)
            redirect = to_int(argv[i])
            if redirect is None:
                raise CommandError(errors.NOT_INTEGER)
            # The redirect client must exist now, even if it may go away later.
            if redirect not in client.server.clients:
                raise CommandError(NO_REDIRECT_CLIENT)
        elif word in _TRACKING_OPTIONS:
            options.add(word.decode())
        elif word == b"prefix" and more:
            i += 1
            prefixes.append(argv[i])
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    return redirect, options, prefixes


def _check_tracking_on(state, options: set, prefixes: list) -> None:
    # The compatibility checks of CLIENT TRACKING on, in networking.c's order.
    bcast = "bcast" in options
    if prefixes and not bcast:
        raise CommandError(PREFIX_NEEDS_BCAST)
    if state is not None and state.bcast != bcast:
        raise CommandError(BCAST_SWITCH)
    if bcast and ("optin" in options or "optout" in options):
        raise CommandError(BCAST_OPTIN)
    if "optin" in options and "optout" in options:
        raise CommandError(OPTIN_AND_OPTOUT)
    if state is not None and (("optin" in options and state.optout)
                              or ("optout" in options and state.optin)):
        raise CommandError(OPTIN_SWITCH)


@command("client tracking")
def client_tracking(client, argv):
    redirect, options, prefixes = _tracking_options(client, argv)
    mode = argv[2].lower()
    tracking = client.server.tracking
    if mode == b"off":
        tracking.disable(client)
        return OK
    if mode != b"on":
        raise CommandError(errors.SYNTAX)
    _check_tracking_on(client.tracking, options, prefixes)
    if "bcast" in options:
        collision = prefix_collision(client.tracking, prefixes)
        if collision is not None:
            message, go_on = collision
            if not go_on:
                raise CommandError(message)
            # Redis 7.0 sends the error and then enables tracking and sends +OK too.
            error = CommandError(message)
            client.server.count_error(error)
            tracking.enable(client, redirect, options, prefixes)
            return Raw(b"-%s\r\n+OK\r\n" % message.encode())
    tracking.enable(client, redirect, options, prefixes)
    return OK


@command("client caching")
def client_caching(client, argv):
    state = client.tracking
    if state is None:
        raise CommandError(CACHING_NOT_TRACKING)
    word = argv[2].lower()
    if word == b"yes":
        if not state.optin:
            raise CommandError(CACHING_YES)
    elif word == b"no":
        if not state.optout:
            raise CommandError(CACHING_NO)
    else:
        raise CommandError(errors.SYNTAX)
    state.caching = True  # for the next command (or transaction) only
    return OK


@command("client getredir")
def client_getredir(client, argv):
    state = client.tracking
    return state.redirect if state is not None else -1


@command("client trackinginfo")
def client_trackinginfo(client, argv):
    state = client.tracking
    if state is None:
        return {b"flags": ReplySet([b"off"]), b"redirect": -1, b"prefixes": []}
    return {b"flags": ReplySet(state.info_flags()), b"redirect": state.redirect,
            b"prefixes": sorted(state.prefixes)}


@command("client help")
def client_help(client, argv):
    return CLIENT_HELP

