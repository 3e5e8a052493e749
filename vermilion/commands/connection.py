"""Connection commands: PING, ECHO, QUIT, RESET, SELECT, SWAPDB, HELLO, AUTH."""

from .. import REDIS_VERSION
from ..protocol import errors
from ..protocol.encode import OK, PONG
from ..protocol.errors import CommandError
from ..protocol.numbers import parse_int, to_int
from .registry import command
from .client_cmds import validate_client_name
from .acl_cmds import DENIED_AUTH, log_denial


@command("ping")
def ping(client, argv):
    if len(argv) > 2:
        raise CommandError(errors.wrong_arity("ping"))
    flags = client._flags  # (not the flags property: PING is benchmarked pipelined)
    if flags and "P" in flags and client.resp == 2:
        # A subscribed RESP2 client gets PING as a pub/sub-shaped array.
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return argv[1] if len(argv) == 2 else PONG


@command("echo")
def echo(client, argv):
    return argv[1]


@command("quit")
def quit_(client, argv):
    client.close_after_reply = True
    return OK


@command("select")
def select(client, argv):
    index = parse_int(argv[1])
    if not 0 <= index < len(client.server.dbs):
        raise CommandError(errors.DB_INDEX)
    client.select(index)
    return OK


@command("swapdb")
def swapdb(client, argv):
    server = client.server
    first = to_int(argv[1])
    if first is None:
        raise CommandError("ERR invalid first DB index")
    second = to_int(argv[2])
    if second is None:
        raise CommandError("ERR invalid second DB index")
    count = len(server.dbs)
    if not (0 <= first < count and 0 <= second < count):
        raise CommandError(errors.DB_INDEX)
    a, b = server.dbs[first], server.dbs[second]
    # Swap contents, not Database objects: clients keep pointing at their index.
    a.data, b.data = b.data, a.data
    a.expires, b.expires = b.expires, a.expires
    a.encodings, b.encodings = b.encodings, a.encodings
    a.avg_ttl, b.avg_ttl = b.avg_ttl, a.avg_ttl
    server.dirty += 1
    for hook in server.hooks.swapdb:
        hook(first, second)
    return OK


def authenticate(client, username: bytes, password: bytes, sent_name: bytes) -> None:
    """ACLAuthenticateUser(): the session becomes username's, or -WRONGPASS and an
    ACL LOG entry (the object is the command's name as sent)."""
    server = client.server
    user = server.acl.get(username)
    if user is None or not user.check_password(password):
        context = "multi" if client.multi is not None else "toplevel"
        log_denial(client, DENIED_AUTH, context, [sent_name], username=username)
        raise CommandError(errors.WRONGPASS)
    client.authenticated = True
    client.user = user
    client.refresh_access()


@command("auth")
def auth(client, argv):
    server = client.server
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2:
        if server.acl.default_user.nopass:
            raise CommandError(errors.AUTH_NOT_CONFIGURED)
        username, password = b"default", argv[1]
    else:
        username, password = argv[1], argv[2]
    authenticate(client, username, password, argv[0])
    return OK


@command("hello")
def hello(client, argv):
    server = client.server
    version = client.resp
    i = 1
    if len(argv) >= 2:
        version = to_int(argv[1])
        if version is None:
            raise CommandError("ERR Protocol version is not an integer or out of range")
        if version < 2 or version > 3:
            raise CommandError(errors.NO_PROTO)
        i = 2
    username = password = name = None
    while i < len(argv):
        more = len(argv) - i - 1
        option = argv[i].lower()
        if option == b"auth" and more >= 2:
            username, password = argv[i + 1], argv[i + 2]
            i += 3
        elif option == b"setname" and more >= 1:
            name = argv[i + 1]
            validate_client_name(name)  # checked while parsing, before authentication
            i += 2
        else:
            raise CommandError("ERR Syntax error in HELLO option '%s'" % argv[i].decode("utf-8", "replace"))
    if username is not None:
        authenticate(client, username, password, argv[0])
    if not client.authenticated:
        raise CommandError("NOAUTH HELLO must be called with the client already authenticated, "
                           "otherwise the HELLO AUTH <user> <pass> option can be used to "
                           "authenticate the client and select the RESP protocol version at the "
                           "same time")
    if name is not None:
        client.name = name
    client.resp = version
    return {
        b"server": b"redis",
        b"version": REDIS_VERSION.encode(),
        b"proto": version,
        b"id": client.id,
        b"mode": b"standalone",
        b"role": b"master" if client.server.master_link.host is None else b"replica",
        b"modules": [],
    }


@command("reset")
def reset(client, argv):
    server = client.server
    if "S" in client.flags or "M" in client.flags:
        # resetCommand(): a MONITOR is reset, a replication link is not.
        raise CommandError("ERR can only reset normal client connections")
    for hook in server.hooks.client_reset:
        hook(client)
    server.monitors.discard(client)
    client.flags.discard("O")
    client.select(0)
    client.resp = 2
    client.name = b""
    client.reply_off = client.reply_skip = client.reply_skip_next = False
    client.no_evict = False
    client.user = server.acl.default_user  # clientSetDefaultAuth()
    client.authenticated = not server.auth_required()
    client.refresh_access()
    return "RESET"
