"""TLS: SSL contexts built from the tls-* directives (Redis 7.0's tls.c).

`TlsContexts` (server.tls) holds what tlsConfigure() builds: the server-side context the
TLS listeners accept with, and the client-side one outgoing connections (a replica's
link to its master) use. configure() is atomic, as tlsConfigure() is: contexts are
built from the files as they are now and replace the old ones only when every step
worked; otherwise the reason is logged as Redis logs it and the old ones stay, so
connections already up (and the listeners) keep what they had.
"""

from __future__ import annotations

import ssl

from .config import ConfigError
from .log import logger

# The directives whose CONFIG SET rebuilds the contexts (applyTlsCfg()); tls-port has
# its own step (it also opens the listener), tls-auth-clients is read per connection.
DIRECTIVES = ("tls-session-cache-size", "tls-session-cache-timeout", "tls-cluster",
              "tls-replication", "tls-prefer-server-ciphers", "tls-session-caching",
              "tls-cert-file", "tls-key-file", "tls-key-file-pass", "tls-client-cert-file",
              "tls-client-key-file", "tls-client-key-file-pass", "tls-dh-params-file",
              "tls-ca-cert-file", "tls-ca-cert-dir", "tls-protocols", "tls-ciphers",
              "tls-ciphersuites")

UPDATE_FAILED = "Unable to update TLS configuration. Check server logs."

# connCreateAcceptedTLS(): tls-auth-clients → SSL_set_verify() of each accepted
# connection. OpenSSL's VERIFY_PEER alone is Python's CERT_OPTIONAL (a certificate, if
# sent, must verify), VERIFY_PEER|FAIL_IF_NO_PEER_CERT is CERT_REQUIRED.
VERIFY_MODES = {"no": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "yes": ssl.CERT_REQUIRED}

_VERSIONS = {"tlsv1": ssl.TLSVersion.TLSv1, "tlsv1.1": ssl.TLSVersion.TLSv1_1,
             "tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3}
_DEFAULT_VERSIONS = ("tlsv1.2", "tlsv1.3")  # REDIS_TLS_PROTO_DEFAULT


class TlsFailure(Exception):
    """A step of tlsConfigure() failed; the message is the line Redis logs."""


def enabled(config) -> bool:
    """Whether the server needs contexts at all (the condition of applyTlsCfg())."""
    return bool(config["tls-port"] or config["tls-replication"] or config["tls-cluster"])


class TlsContexts:
    __slots__ = ("server_ctx", "client_ctx", "config")

    def __init__(self, config):
        self.config = config
        self.server_ctx: ssl.SSLContext | None = None  # redis_tls_ctx
        self.client_ctx: ssl.SSLContext | None = None  # redis_tls_client_ctx (never None once built)

    @property
    def configured(self) -> bool:
        """isTlsConfigured()"""
        return self.server_ctx is not None

    def configure(self) -> bool:
        """tlsConfigure(): new contexts from the files as they are now, or (logged) False
        with the old ones kept."""
        try:
            server_ctx, client_ctx = _build(self.config)
        except TlsFailure as exc:
            logger.warning(str(exc))
            return False
        self.server_ctx, self.client_ctx = server_ctx, client_ctx
        return True

    def apply(self, server, value) -> None:
        """applyTlsCfg(): CONFIG SET of a tls-* directive while TLS is on reconfigures."""
        if enabled(self.config) and not self.configure():
            raise ConfigError(UPDATE_FAILED)

    def set_auth_clients(self, server, value) -> None:
        # Redis reads tls-auth-clients as each connection is accepted: a live context's
        # verify mode applies to the connections it makes from now on (and to the
        # contexts built later, which read the config).
        if self.server_ctx is not None:
            self.server_ctx.verify_mode = VERIFY_MODES[value]


def _parse_protocols(text: str | None) -> list[ssl.TLSVersion]:
    # parseProtocolsConfig(): space-separated, case-insensitive.
    words = (text or "").split(" ") if text else list(_DEFAULT_VERSIONS)
    versions = []
    for word in words:
        version = _VERSIONS.get(word.lower())
        if version is None:
            raise TlsFailure("Invalid tls-protocols specified. Use a combination of 'TLSv1', "
                             "'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'.")
        versions.append(version)
    return versions


def _openssl_error(exc: Exception) -> str:
    # Redis prints ERR_error_string_n()'s "error:0A0000C7:SSL routines::peer did not
    # return a certificate"; Python keeps the reason's text (not the packed code) inside
    # "[SSL: PEER_DID_NOT_RETURN_A_CERTIFICATE] peer did not return a certificate (_ssl.c:…)".
    if isinstance(exc, ssl.SSLError):
        text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        if text.startswith("[") and "] " in text:
            text = text.split("] ", 1)[1]
        text = text.rsplit(" (_ssl.c:", 1)[0]
        return f"error:{exc.library} routines::{text}" if exc.library else text
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


class _AcceptedSSLObject(ssl.SSLObject):
    """The server side of one TLS connection. The event loop ends a failed handshake
    quietly (the Connection never sees it); Redis logs it (clientAcceptHandler())."""

    def do_handshake(self):
        try:
            return super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            logger.warning(f"Error accepting a client connection: {_openssl_error(exc)}")
            raise


def _base_context(config, versions, client: bool) -> ssl.SSLContext:
    """createSSLContext(): what server and client contexts share."""
    prefix = "tls-client-" if client else "tls-"
    cert_file, key_file = config[prefix + "cert-file"], config[prefix + "key-file"]
    password = config[prefix + "key-file-pass"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT if client else ssl.PROTOCOL_TLS_SERVER)
    # The versions asked for, as a range: OpenSSL's per-version SSL_OP_NO_* flags are
    # deprecated, and a gap in the middle ("TLSv1 TLSv1.3") is not a real configuration.
    ctx.minimum_version, ctx.maximum_version = min(versions), max(versions)
    ctx.options |= ssl.OP_NO_COMPRESSION
    if client:
        # Redis verifies the master's certificate against the CA but never its name
        # (no SSL_set1_host()): replicas connect to addresses, not names.
        ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(cert_file, key_file, password=password or _no_password)
    except (ssl.SSLError, OSError) as exc:
        # SSL_CTX_use_certificate_chain_file() and _use_PrivateKey_file() are two steps in
        # Redis; Python does both at once, so tell them apart by trying the certificate.
        if _loads_certificate(cert_file):
            raise TlsFailure(f"Failed to load private key: {key_file}: "
                             f"{_openssl_error(exc)}") from None
        raise TlsFailure(f"Failed to load certificate: {cert_file}: "
                         f"{_openssl_error(exc)}") from None
    ca_file, ca_dir = config["tls-ca-cert-file"], config["tls-ca-cert-dir"]
    if ca_file or ca_dir:
        try:
            ctx.load_verify_locations(cafile=ca_file or None, capath=ca_dir or None)
        except (ssl.SSLError, OSError) as exc:
            raise TlsFailure(f"Failed to configure CA certificate(s) file/directory: "
                             f"{_openssl_error(exc)}") from None
    ciphers = config["tls-ciphers"]
    if ciphers:
        try:
            ctx.set_ciphers(ciphers)
        except ssl.SSLError:
            raise TlsFailure(f"Failed to configure ciphers: {ciphers}") from None
    suites = config["tls-ciphersuites"]
    if suites and not _set_ciphersuites(ctx, suites):
        raise TlsFailure(f"Failed to configure ciphersuites: {suites}")
    return ctx


def _no_password():
    # tlsPasswordCallback() without a password: an encrypted key fails to load (rather
    # than OpenSSL prompting on the terminal).
    raise ssl.SSLError("bad decrypt: no password (tls-key-file-pass) given")


def _loads_certificate(path) -> bool:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=path)
        return True
    except (ssl.SSLError, OSError, TypeError):
        return False


def _set_ciphersuites(ctx: ssl.SSLContext, suites: str) -> bool:
    """SSL_CTX_set_ciphersuites(): Python's ssl has no call for the TLSv1.3 suites, so
    validate the names as OpenSSL's cipher list does and restrict what the context may
    negotiate (set_ciphers() leaves the TLSv1.3 suites alone)."""
    names = suites.split(":")
    known = {c["name"] for c in ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).get_ciphers()
             if c["protocol"] == "TLSv1.3"}
    wanted = [name for name in names if name in known]
    if not wanted:
        return False
    try:
        import ctypes
        import ctypes.util

        lib = ctypes.CDLL(ctypes.util.find_library("ssl") or "libssl.so.3")
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        if lib.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
            return True  # not the library _ssl uses: validated, the defaults stay
        # The SSL_CTX* sits right after the object header in CPython's PySSLContext.
        raw = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        lib.SSL_CTX_set_ciphersuites.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
        return lib.SSL_CTX_set_ciphersuites(raw, ":".join(wanted).encode()) == 1
    except (OSError, AttributeError):
        return True  # validated; the defaults stay negotiable


def _build(config) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    if not config["tls-cert-file"]:
        raise TlsFailure("No tls-cert-file configured!")
    if not config["tls-key-file"]:
        raise TlsFailure("No tls-key-file configured!")
    if ((config["tls-auth-clients"] != "no" or config["tls-cluster"]
         or config["tls-replication"])
            and not config["tls-ca-cert-file"] and not config["tls-ca-cert-dir"]):
        raise TlsFailure("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when "
                         "tls-cluster, tls-replication or tls-auth-clients are enabled!")
    versions = _parse_protocols(config["tls-protocols"])
    ctx = _base_context(config, versions, client=False)
    ctx.verify_mode = VERIFY_MODES[config["tls-auth-clients"]]
    ctx.sslobject_class = _AcceptedSSLObject
    # Session caching (SSL_SESS_CACHE_SERVER with its size and timeout) is OpenSSL's
    # default for a server context; Python exposes no call to size it or turn it off,
    # so off means no session tickets, the resumption TLSv1.3 clients use.
    if not config["tls-session-caching"]:
        ctx.options |= ssl.OP_NO_TICKET
    if config["tls-prefer-server-ciphers"]:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if hasattr(ssl, "OP_NO_RENEGOTIATION"):
        ctx.options |= ssl.OP_NO_RENEGOTIATION  # SSL_OP_NO_CLIENT_RENEGOTIATION
    dh_file = config["tls-dh-params-file"]
    if dh_file:
        try:
            ctx.load_dh_params(dh_file)
        except FileNotFoundError as exc:
            raise TlsFailure(f"Failed to load {dh_file}: {exc.strerror}") from None
        except (ssl.SSLError, OSError):
            raise TlsFailure(f"{dh_file}: failed to read DH params.") from None
    if config["tls-client-cert-file"] and config["tls-client-key-file"]:
        client_ctx = _base_context(config, versions, client=True)
    else:
        # Without a client certificate Redis's outgoing connections use the server
        # context, presenting the server's certificate; Python's contexts are one-sided,
        # so build a client context from the same files.
        client_ctx = _server_files_as_client(config, versions)
    return ctx, client_ctx


def _server_files_as_client(config, versions) -> ssl.SSLContext:
    class _View:
        def __getitem__(self, name):
            if name.startswith("tls-client-"):
                name = "tls-" + name[len("tls-client-"):]
            return config[name]

    return _base_context(_View(), versions, client=True)
