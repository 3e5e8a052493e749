"""`vermilion ping`: the readiness/liveness probe the manifests run in each pod.

It speaks RESP itself, so a probe never depends on redis-cli being in the image.
"""

from __future__ import annotations

import socket
import sys


def ping(host: str, port: int, password: str | None, timeout: float) -> int:
    """PING (after AUTH when a password is given); prints the reply, exit code 0 on
    +PONG — a server that answers -LOADING or -MISCONF is not ready."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            request = b""
            if password:
                pw = password.encode()
                request += b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(pw), pw)
            request += b"*1\r\n$4\r\nPING\r\n"
            sock.sendall(request)
            data = b""
            while data.count(b"\r\n") < (2 if password else 1):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        print(f"vermilion ping: {exc}", file=sys.stderr)
        return 1
    reply = data.split(b"\r\n")[-2] if data else b""
    print(reply.decode(errors="replace"))
    return 0 if reply == b"+PONG" else 1
