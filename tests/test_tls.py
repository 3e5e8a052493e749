"""TLS (tls-port, tls-* directives, tls-replication), Vermilion beside a real redis-server
started with the same certificates: redis-cli --tls, redis-py (sync and asyncio), client
certificates under tls-auth-clients yes/no/optional, a TLS-only server, CONFIG SET of
certificates and of tls-port, replication over TLS both ways."""

import asyncio
import socket
import ssl
import subprocess
import time

import pytest
import redis
import redis.asyncio

from conftest import VERMILION, ServerProcess, free_port, require_binary
from replication_helpers import caught_up, dataset, info, wait_until
from tls_certs import Certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("certs"))


def binaries():
    return {"vermilion": str(VERMILION), "redis": require_binary("redis-server")}


def client_context(certs, cert=True, key_pair=None, maximum=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    if key_pair:
        ctx.load_cert_chain(*key_pair)
    elif cert:
        ctx.load_cert_chain(certs.client_cert, certs.client_key)
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def tls_command(port, ctx, data=b"PING\r\n", timeout=5.0) -> bytes:
    """One command's reply over a fresh TLS connection; raises on a refused handshake
    (with TLSv1.3 the server's verdict on our certificate comes with the first read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(data)
            reply = sock.recv(4096)
            if not reply:
                raise ConnectionError("closed")
            return reply


class TlsServer(ServerProcess):
    """A server with a tls-port (and a plain port unless plain=False), started with
    certs' server certificate and CA; ready once it answers PING over TLS."""

    def __init__(self, binary, cwd, certs, args=(), plain=True):
        super().__init__(binary, args, cwd=cwd)
        self.certs = certs
        self.tls_port = free_port()
        self.plain = plain

    def start(self, timeout=15.0):
        argv = [self.binary, "--port", str(self.port if self.plain else 0), "--bind",
                "127.0.0.1", "--save", "", "--tls-port", str(self.tls_port),
                *self.certs.server_args(), *self.args]
        self.log_path = self.cwd / f"server-{self.tls_port}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=self.cwd, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        ctx = client_context(self.certs)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.binary} exited: {self.log_path.read_text()}")
            try:
                if tls_command(self.tls_port, ctx, timeout=0.5).startswith(b"+PONG"):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.binary} did not start on TLS port {self.tls_port}")

    def tls_client(self, cert=True, **kw) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.tls_port, ssl=True,
                           ssl_ca_certs=self.certs.ca_file, socket_timeout=5,
                           ssl_certfile=self.certs.client_cert if cert else None,
                           ssl_keyfile=self.certs.client_key if cert else None, **kw)

    def admin(self) -> redis.Redis:
        """Over the plain port when there is one (CONFIG SET without the TLS path)."""
        return self.client(socket_timeout=5) if self.plain else self.tls_client()

    def cli(self, *args, cert=True) -> subprocess.CompletedProcess:
        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.tls_port),
                               *self.certs.cli_args(cert), *args],
                              capture_output=True, timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def both(tmp_path, certs):
    """Start (kind, TlsServer) pairs on demand, stopped at the end."""
    started = []

    def start(*args, plain=True):
        out = []
        for kind, binary in binaries().items():
            cwd = tmp_path / f"{kind}-{len(started)}"
            cwd.mkdir()
            server = TlsServer(binary, cwd, certs, args, plain=plain)
            started.append(server)
            out.append((kind, server.start()))
        return out

    yield start
    for server in started:
        server.stop()


def test_redis_cli_and_redis_py_over_tls_like_redis(both, certs):
    for kind, server in both():
        got = [server.cli("SET", "k", "v"), server.cli("GET", "k"),
               server.cli("--no-raw", "INCR", "n")]
        assert [g.stdout for g in got] == [b"OK\n", b"v\n", b"(integer) 1\n"], kind
        c = server.tls_client()
        assert c.ping() and c.get("k") == b"v", kind
        c.rpush("list", *range(2000))  # more than one TLS record either way
        assert len(c.lrange("list", 0, -1)) == 2000
        # A client's line shows the TLS connection as any other.
        fields = dict(item.split("=", 1) for item in
                      c.execute_command("CLIENT", "INFO").decode().split())
        assert fields["laddr"] == f"127.0.0.1:{server.tls_port}", kind
        c.close()

        async def async_round_trip():
            a = redis.asyncio.Redis(host="127.0.0.1", port=server.tls_port, ssl=True,
                                    ssl_ca_certs=certs.ca_file, ssl_certfile=certs.client_cert,
                                    ssl_keyfile=certs.client_key)
            try:
                await a.set("async", "yes")
                pipe = a.pipeline(transaction=True)
                pipe.incr("n").get("async")
                return await pipe.execute()
            finally:
                await a.aclose()

        assert asyncio.run(asyncio.wait_for(async_round_trip(), 10)) == [2, b"yes"], kind


@pytest.mark.parametrize("mode", ["yes", "no", "optional"])
def test_tls_auth_clients(both, certs, mode):
    expected = {"yes": (True, False, False), "optional": (True, True, False),
                "no": (True, True, True)}[mode]
    results = {}
    for kind, server in both("--tls-auth-clients", mode):
        outcome = []
        for ctx in (client_context(certs),  # a certificate from the CA
                    client_context(certs, cert=False),  # none
                    client_context(certs, key_pair=(certs.rogue_cert, certs.rogue_key))):
            try:
                outcome.append(tls_command(server.tls_port, ctx) == b"+PONG\r\n")
            except (OSError, ConnectionError):
                outcome.append(False)
        results[kind] = tuple(outcome)
        # redis-cli and redis-py without a certificate, as the raw socket did.
        assert (server.cli("PING", cert=False).stdout == b"PONG\n") == expected[1], kind
        c = server.tls_client(cert=False)
        try:
            assert c.ping() and expected[1], kind
        except redis.exceptions.ConnectionError:
            assert not expected[1], kind
        c.close()
    assert results == {"vermilion": expected, "redis": expected}


def test_refused_handshake_is_logged_as_redis_logs_it(both, certs):
    for kind, server in both():
        with pytest.raises((OSError, ConnectionError)):
            tls_command(server.tls_port, client_context(certs, cert=False))
        wait_until(lambda: "Error accepting a client connection:" in server.log_text()
                   and "peer did not return a certificate" in server.log_text(),
                   timeout=5, what=f"{kind}'s log line")


def test_tls_only_server(both, certs):
    for kind, server in both(plain=False):
        assert server.cli("PING").stdout == b"PONG\n", kind
        # Nothing listens on the plain port; a plain client on the TLS port gets nowhere.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        with socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as s:
            s.sendall(b"PING\r\n")
            try:
                assert not s.recv(64).startswith(b"+PONG")
            except ConnectionResetError:
                pass
        assert server.tls_client().config_get("port") == {"port": "0"}
        text = server.log_text()
        assert f"port={server.tls_port}" in text or f"Port: {server.tls_port}" in text, kind
        assert "Ready to accept connections" in text, kind


def _peer_cn(port, certs) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_context(certs).wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            subject = dict(x[0] for x in sock.getpeercert()["subject"])
            return subject["commonName"]


def test_config_set_certificate_keeps_existing_connections(both, certs, tmp_path):
    for kind, server in both():
        old = server.tls_client()
        old.set("before", "1")
        assert _peer_cn(server.tls_port, certs) == "server"
        cert, key = certs.server_cert("renewed", stem=f"renewed-{kind}")
        admin = server.admin()
        # Both at once: one CONFIG SET applies once, after every value is in place.
        assert admin.execute_command("CONFIG", "SET", "tls-cert-file", cert,
                                     "tls-key-file", key) == b"OK"
        wait_until(lambda: _peer_cn(server.tls_port, certs) == "renewed", timeout=5,
                   what=f"{kind} serving the new certificate")
        assert old.get("before") == b"1", kind  # the old TLS connection is still up
        # Rotation in place: the same path, new contents; setting the same value
        # reloads it (VOLATILE_CONFIG).
        rotated_cert, rotated_key = certs.server_cert("rotated", stem=f"renewed-{kind}")
        assert (rotated_cert, rotated_key) == (cert, key)
        assert admin.execute_command("CONFIG", "SET", "tls-cert-file", cert,
                                     "tls-key-file", key) == b"OK"
        wait_until(lambda: _peer_cn(server.tls_port, certs) == "rotated", timeout=5,
                   what=f"{kind} serving the rotated certificate")
        assert old.get("before") == b"1", kind
        old.close()
        admin.close()


def test_config_set_unusable_certificate_fails_and_keeps_the_old(both, certs, tmp_path):
    errors = {}
    for kind, server in both():
        admin = server.admin()
        with pytest.raises(redis.ResponseError) as exc:
            admin.config_set("tls-cert-file", str(tmp_path / "missing.crt"))
        errors[kind] = str(exc.value)
        assert admin.config_get("tls-cert-file")["tls-cert-file"] == certs.cert_file
        with pytest.raises(redis.ResponseError) as exc:
            admin.config_set("tls-protocols", "TLSv9")
        errors[kind + " protocols"] = str(exc.value)
        assert _peer_cn(server.tls_port, certs) == "server", kind
        assert "Failed to load certificate:" in server.log_text(), kind
        assert "Invalid tls-protocols specified." in server.log_text(), kind
        admin.close()
    assert errors["vermilion"] == errors["redis"]
    assert errors["vermilion protocols"] == errors["redis protocols"]
    assert "Unable to update TLS configuration. Check server logs." in errors["vermilion"]


def test_config_set_tls_port_opens_and_closes_the_listener(tmp_path, certs):
    for kind, binary in binaries().items():
        cwd = tmp_path / kind
        cwd.mkdir()
        # Certificates configured, TLS off (tls-port 0): a plain server.
        server = ServerProcess(binary, [*certs.server_args()], cwd=cwd).start()
        try:
            c = server.client(socket_timeout=5)
            port = free_port()
            assert c.config_set("tls-port", port)
            assert tls_command(port, client_context(certs)) == b"+PONG\r\n", kind
            moved = free_port()
            assert c.config_set("tls-port", moved)
            assert tls_command(moved, client_context(certs)) == b"+PONG\r\n", kind
            assert c.config_set("tls-port", 0)
            for gone in (port, moved):  # closed when CONFIG SET replied
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", gone), timeout=2).close()
            c.close()
        finally:
            server.stop()


def test_config_set_tls_port_without_certificates_fails_like_redis(tmp_path):
    errors = {}
    for kind, binary in binaries().items():
        cwd = tmp_path / kind
        cwd.mkdir()
        server = ServerProcess(binary, cwd=cwd).start()
        try:
            c = server.client(socket_timeout=5)
            with pytest.raises(redis.ResponseError) as exc:
                c.config_set("tls-port", free_port())
            errors[kind] = str(exc.value)
            assert c.config_get("tls-port") == {"tls-port": "0"}
            assert "No tls-cert-file configured!" in server.log_path.read_text()
            c.close()
        finally:
            server.stop()
    assert errors["vermilion"] == errors["redis"]


@pytest.mark.parametrize("args,line", [
    (["--tls-port", "0", "--tls-replication", "yes"], "No tls-cert-file configured!"),
    (["--tls-auth-clients", "no", "--tls-cert-file", "/nonexistent.crt", "--tls-key-file",
      "/nonexistent.key"],
     "Failed to load certificate: /nonexistent.crt:"),
    (["--tls-auth-clients", "yes", "--tls-cert-file", "{cert}", "--tls-key-file", "{key}"],
     "Either tls-ca-cert-file or tls-ca-cert-dir must be specified"),
])
def test_startup_failures_like_redis(tmp_path, certs, args, line):
    args = [a.format(cert=certs.cert_file, key=certs.key_file) for a in args]
    for kind, binary in binaries().items():
        argv = [binary, "--port", str(free_port()), "--bind", "127.0.0.1", "--save", ""]
        if "--tls-port" not in args:
            argv += ["--tls-port", str(free_port())]
        done = subprocess.run(argv + args, cwd=tmp_path, capture_output=True, timeout=15)
        out = done.stdout.decode(errors="replace")
        assert done.returncode == 1, (kind, out)
        assert line in out, (kind, out)
        assert "Failed to configure TLS. Check logs for more info." in out, (kind, out)


def test_key_file_pass_and_protocols(both, certs):
    cert, key = certs.server_cert("locked", password=b"s3cret")
    for kind, server in both("--tls-cert-file", cert, "--tls-key-file", key,
                             "--tls-key-file-pass", "s3cret", "--tls-protocols", "TLSv1.3"):
        assert _peer_cn(server.tls_port, certs) == "locked", kind
        with pytest.raises(ssl.SSLError):
            tls_command(server.tls_port,
                        client_context(certs, maximum=ssl.TLSVersion.TLSv1_2))
        admin = server.admin()
        with pytest.raises(redis.ResponseError):
            admin.config_set("tls-key-file-pass", "wrong")
        assert _peer_cn(server.tls_port, certs) == "locked", kind
        assert admin.config_set("tls-protocols", "TLSv1.2 TLSv1.3")
        wait_until(lambda: tls_command(server.tls_port, client_context(
            certs, maximum=ssl.TLSVersion.TLSv1_2)) == b"+PONG\r\n", timeout=5,
            tolerate=(OSError,), what=f"{kind} accepting TLSv1.2")
        admin.close()


# -- replication over TLS -----------------------------------------------------------------

def _fill(master: redis.Redis, prefix: str, count: int = 200) -> None:
    pipe = master.pipeline(transaction=False)
    for i in range(count):
        pipe.set(f"{prefix}:{i}", "x" * (i % 50))
        pipe.rpush(f"{prefix}:list", i)
    pipe.hset(f"{prefix}:h", mapping={"a": 1, "b": 2})
    pipe.execute()


@pytest.mark.parametrize("master_kind,replica_kind", [
    ("vermilion", "vermilion"), ("redis", "vermilion"), ("vermilion", "redis")])
def test_replication_over_tls(tmp_path, certs, master_kind, replica_kind):
    kinds = binaries()
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    # The replica is pointed at the master's TLS port (the plain one is for dataset()).
    master = TlsServer(kinds[master_kind], tmp_path / "m", certs,  # the sync at once
                       ["--repl-diskless-sync-delay", "0"]).start()
    replica = None
    try:
        m = master.tls_client()
        _fill(m, "before")  # goes in the full sync's RDB
        replica = TlsServer(kinds[replica_kind], tmp_path / "r", certs,
                            ["--tls-replication", "yes", "--replicaof", "127.0.0.1",
                             str(master.tls_port)]).start()
        r = replica.client(socket_timeout=5)
        wait_until(lambda: caught_up(m, r), timeout=20, what="the initial sync")
        _fill(m, "after")  # the stream
        m.expire("before:1", 1000)
        wait_until(lambda: caught_up(m, r), timeout=20, what="the stream")
        plain = master.client(socket_timeout=5)
        assert dataset(r) == dataset(plain) and len(dataset(plain)) > 400
        plain.close()
        # The master lists the replica at its TLS port (REPLCONF listening-port).
        slave0 = info(m)["slave0"]
        assert slave0["port"] == replica.tls_port, slave0
        assert info(r)["master_link_status"] == "up"
        r.close()
        m.close()
    finally:
        if replica is not None:
            replica.stop()
        master.stop()
        for server in (master, replica):
            if server is not None and server.binary == str(VERMILION):
                assert "Traceback" not in server.log_text()


def test_replica_without_a_trusted_certificate_never_syncs(tmp_path, certs):
    # A Vermilion replica whose CA does not know the master's certificate: the
    # handshake fails, the link stays down and is retried, nothing is loaded.
    other = Certs(tmp_path / "other")
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    master = TlsServer(str(VERMILION), tmp_path / "m", certs,
                       ["--tls-auth-clients", "no"]).start()
    replica = TlsServer(str(VERMILION), tmp_path / "r", other,
                        ["--tls-replication", "yes", "--replicaof", "127.0.0.1",
                         str(master.tls_port)]).start()
    try:
        master.tls_client().set("k", "v")
        wait_until(lambda: "Error condition on socket for SYNC" in replica.log_text(),
                   timeout=10, what="the failed handshake")
        r = replica.client(socket_timeout=5)
        assert info(r)["master_link_status"] == "down"
        assert r.dbsize() == 0
        r.close()
    finally:
        replica.stop()
        master.stop()
