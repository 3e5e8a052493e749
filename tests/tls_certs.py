"""Test certificates made with the `cryptography` package (no openssl binary needed):
a CA, server certificates for 127.0.0.1/localhost, client certificates, written as PEM
files. Used by tests/test_tls.py and bench/tls.py."""

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_SERVER = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
_CLIENT = [ExtendedKeyUsageOID.CLIENT_AUTH]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _builder(subject: str, issuer: x509.Name, public_key):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)))


class CA:
    def __init__(self, name: str = "Vermilion Test CA"):
        self.key = _key()
        self.name = _name(name)
        self.cert = (_builder(name, self.name, self.key.public_key())
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .add_extension(x509.KeyUsage(True, False, False, False, False, True, True,
                                                  False, False), True)
                     .sign(self.key, hashes.SHA256()))

    def issue(self, cn: str, server: bool):
        key = _key()
        cert = (_builder(cn, self.name, key.public_key())
                .add_extension(x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                    False)
                .add_extension(x509.ExtendedKeyUsage(_SERVER if server else _CLIENT), False)
                .sign(self.key, hashes.SHA256()))
        return key, cert


def write_cert(path: Path, cert) -> str:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def write_key(path: Path, key, password: bytes | None = None) -> str:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8, encryption))
    return str(path)


class Certs:
    """A directory of PEM files: ca.crt, server.crt/.key (CN "server"), client.crt/.key,
    and a client certificate from another CA (rogue.crt/.key)."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.ca = CA()
        self.ca_file = write_cert(directory / "ca.crt", self.ca.cert)
        self.cert_file, self.key_file = self.server_cert("server")
        key, cert = self.ca.issue("client", server=False)
        self.client_cert = write_cert(directory / "client.crt", cert)
        self.client_key = write_key(directory / "client.key", key)
        rogue_key, rogue_cert = CA("Another CA").issue("rogue", server=False)
        self.rogue_cert = write_cert(directory / "rogue.crt", rogue_cert)
        self.rogue_key = write_key(directory / "rogue.key", rogue_key)

    def server_cert(self, cn: str, stem: str | None = None, password: bytes | None = None):
        """(cert path, key path) of a new server certificate named cn."""
        stem = stem or cn
        key, cert = self.ca.issue(cn, server=True)
        return (write_cert(self.dir / f"{stem}.crt", cert),
                write_key(self.dir / f"{stem}.key", key, password))

    def server_args(self) -> list[str]:
        return ["--tls-cert-file", self.cert_file, "--tls-key-file", self.key_file,
                "--tls-ca-cert-file", self.ca_file]

    def cli_args(self, client_cert: bool = True) -> list[str]:
        args = ["--tls", "--cacert", self.ca_file]
        if client_cert:
            args += ["--cert", self.client_cert, "--key", self.client_key]
        return args
