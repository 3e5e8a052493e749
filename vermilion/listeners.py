"""The listening sockets (Redis's listenToPort(), changeListenPort(), changeBindAddr()).

One policy for binding, used at start-up and by CONFIG SET port / bind: every address
of `bind` is tried; an address that does not exist here is skipped only when marked
optional ("-addr"), an unsupported protocol or address family always is, and any other
failure undoes what was bound. Accepted connections become server.new_connection()s.

TLS listeners (tls-port, server.tls_listeners) accept with server.tls's context; the
event loop does the handshake, so a Connection never knows. When CONFIG SET builds new
contexts they are served on duplicates of the same listening sockets (the kernel's
accept queue never closes) and the old listeners stop accepting; connections already
up keep the session they negotiated.
"""

from __future__ import annotations

import errno
import os
import socket

from .config import ConfigError
from .log import logger
from .tls import UPDATE_FAILED

# listenToPort(): these errors skip the address whether or not it is optional.
_UNSUPPORTED = (errno.ENOPROTOOPT, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT,
                errno.EPFNOSUPPORT, errno.EAFNOSUPPORT)


def bind_tcp(bind: list[str], port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for every usable address of bind (none
    for an empty bind); raises OSError (with nothing left bound) when an address that
    must work does not."""
    sockets = []
    try:
        for entry in bind:
            optional = entry.startswith("-")
            addr = entry[1:] if optional else entry
            try:
                sockets.append(_listen(addr, port, backlog))
            except OSError as exc:
                logger.warning(f"Warning: Could not create server TCP listening socket "
                               f"{addr}:{port}: bind: {exc.strerror}")
                if (optional and exc.errno == errno.EADDRNOTAVAIL) or exc.errno in _UNSUPPORTED:
                    continue
                raise
        # No address at all (bind "") listens nowhere on TCP, as listenToPort() does;
        # start-up then checks that something listens somewhere.
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _listen(addr: str, port: int, backlog: int) -> socket.socket:
    host = {"*": "0.0.0.0", "::*": "::"}.get(addr, addr)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_tcp(server, sockets, tls: bool = False) -> None:
    if tls:
        ctx = server.tls.server_ctx
        for sock in sockets:
            srv = await server.loop.create_server(lambda: server.new_connection(False),
                                                  sock=sock, ssl=ctx)
            server.tls_listeners.append(srv)
            server.tls_port = sock.getsockname()[1]
        return
    for sock in sockets:
        srv = await server.loop.create_server(lambda: server.new_connection(False), sock=sock)
        server.listeners.append(srv)
        server.tcp_port = sock.getsockname()[1]


async def listen_at_startup(server) -> None:
    """initListeners(): the TCP port (if any) and the unix socket (if any); a port that
    cannot be bound ends the process, as Redis exits."""
    config = server.config
    for directive, label, tls in (("port", "tcp", False), ("tls-port", "TLS", True)):
        port = config[directive]
        if not port:
            continue
        try:
            sockets = bind_tcp(config["bind"], port, config["tcp-backlog"])
        except OSError:
            logger.warning(f"Failed listening on port {port} ({label}), aborting.")
            raise SystemExit(1) from None
        await serve_tcp(server, sockets, tls=tls)
    if config["unixsocket"]:
        await _serve_unix(server, config["unixsocket"], config["unixsocketperm"])


async def _serve_unix(server, path: str, perm: int) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = await server.loop.create_unix_server(lambda: server.new_connection(True), path)
    if perm:
        os.chmod(path, perm)
    server.listeners.append(srv)


def close(server, listeners, where=None) -> None:
    where = server.listeners if where is None else where
    for srv in listeners:
        srv.close()
        where.remove(srv)


def relistener(message: str, close_first: bool):
    """The CONFIG SET apply step of port (changeListenPort(): bind the new port before
    closing the old one) and bind (changeBindAddr(): close the old listeners first,
    same port). On failure CONFIG SET fails with Redis's message and its rollback
    applies the old values again."""

    def apply(server, value) -> None:
        if server.loop is None:
            return
        old = [srv for srv in server.listeners
               if srv.sockets and srv.sockets[0].family != socket.AF_UNIX]
        if not close_first and old and server.config["port"] == server.tcp_port:
            return  # a rollback to the port still being served
        if close_first:
            close(server, old)
            old = []
        port, sockets = server.config["port"], []
        if port:
            try:
                sockets = bind_tcp(server.config["bind"], port, server.config["tcp-backlog"])
            except OSError:
                raise ConfigError(message) from None
        close(server, old)
        if sockets:
            server.tcp_port = sockets[0].getsockname()[1]
            server.loop.create_task(serve_tcp(server, sockets))
        if close_first:  # changeBindAddr() moves the TLS listeners too
            close(server, list(server.tls_listeners), server.tls_listeners)
            _listen_tls(server, server.config["tls-port"], message)

    return apply


def _listen_tls(server, port: int, message: str) -> None:
    sockets = []
    if port:
        try:
            sockets = bind_tcp(server.config["bind"], port, server.config["tcp-backlog"])
        except OSError:
            raise ConfigError(message) from None
    close(server, list(server.tls_listeners), server.tls_listeners)
    server.tls_port = sockets[0].getsockname()[1] if sockets else 0
    if sockets:
        server.loop.create_task(serve_tcp(server, sockets, tls=True))


def apply_tls_port(server, value: int) -> None:
    """applyTLSPort(): TLS configured first if it was not, then changeListenPort() on
    the TLS listeners (the new port bound before the old one closes)."""
    if server.loop is None:
        return
    if not server.tls.configured and not server.tls.configure():
        raise ConfigError(UPDATE_FAILED)
    if server.tls_listeners and value == server.tls_port:
        return  # a rollback to the port still being served
    _listen_tls(server, value, "Unable to listen on this port. Check server logs.")


def apply_tls(server, value) -> None:
    """applyTlsCfg(): new contexts (tls.py); the TLS listeners then accept with them."""
    before = server.tls.server_ctx
    server.tls.apply(server, value)
    if server.tls.server_ctx is before or server.loop is None:
        return
    sockets = []
    for srv in server.tls_listeners:
        for sock in srv.sockets:
            # The listening socket itself goes on (a duplicate of it), so no connection
            # attempt is refused while the listener changes contexts.
            dup = socket.socket(fileno=os.dup(sock.fileno()))
            dup.setblocking(False)
            sockets.append(dup)
    # The old listeners stop accepting now: a connection from here on is accepted with
    # the new context once serve_tcp has run (it waits in the accept queue until then).
    close(server, list(server.tls_listeners), server.tls_listeners)
    if sockets:
        server.loop.create_task(serve_tcp(server, sockets, tls=True))


APPLY_PORT = relistener("Unable to listen on this port. Check server logs.", False)
APPLY_BIND = relistener("Failed to bind to specified addresses.", True)
