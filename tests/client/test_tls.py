"""``verify`` against a real TLS server whose certificate a private CA signed.

The CA and the server certificate are made here (with ``cryptography``, when installed);
the server is ``http.server`` behind ``ssl`` on 127.0.0.1. Warnings are errors (pytest
configuration): a CA path must reach httpx as an SSL context, not as its deprecated string.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import pyconnector
from pyconnector.http import tls_verify

pytest.importorskip("cryptography")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca_and_server_cert(folder: Path) -> tuple[Path, Path, Path]:
    """``(ca.pem, server.pem, server.key)``: a CA, and a certificate it signed for
    127.0.0.1 and localhost."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("pyconnector test CA"))
        .issuer_name(_name("pyconnector test CA")).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256()))
    ca_pem, cert_pem, key_pem = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return ca_pem, cert_pem, key_pem


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``(https URL, CA file)`` of a server that answers every GET with ``{"count": 1}``."""
    ca_pem, cert_pem, key_pem = make_ca_and_server_cert(tmp_path)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            data = b'{"count": 1}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_pem, key_pem)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    # A refused handshake is the client's doing: the server need not print it.
    httpd.handle_error = lambda request, address: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", ca_pem
    httpd.shutdown()
    httpd.server_close()


def test_a_ca_file_in_verify_trusts_the_server_it_signed(tls_server) -> None:
    url, ca_pem = tls_server
    with pyconnector.connectors(api_key="k", URL=url, verify=str(ca_pem)) as conn:
        assert conn.SensorObservation().getCount() == {"count": 1}


def test_the_ca_file_may_come_from_the_config_file(tls_server, tmp_path: Path) -> None:
    url, ca_pem = tls_server
    conf = tmp_path / "ConfigFile.conf"
    conf.write_text(f"URL = {url}\napi_key = k\nverify = {ca_pem}\n")
    with pyconnector.connectors(conf) as conn:
        assert conn.SensorObservation().getCount() == {"count": 1}


def test_the_default_cas_refuse_a_private_ca(tls_server) -> None:
    url, _ = tls_server
    with pyconnector.connectors(api_key="k", URL=url, retries=0) as conn:
        with pytest.raises(pyconnector.ConnectError, match="CERTIFICATE_VERIFY_FAILED") as err:
            conn.SensorObservation().getCount()
    assert isinstance(err.value, pyconnector.TransportError)


def test_verify_false_skips_the_check(tls_server) -> None:
    url, _ = tls_server
    with pyconnector.connectors(api_key="k", URL=url, verify=False) as conn:
        assert conn.SensorObservation().getCount() == {"count": 1}


def test_verify_paths_become_ssl_contexts(tmp_path: Path) -> None:
    ca_pem, _, _ = make_ca_and_server_cert(tmp_path)
    assert isinstance(tls_verify(str(ca_pem)), ssl.SSLContext)
    assert isinstance(tls_verify(str(tmp_path)), ssl.SSLContext)  # a c_rehash'd directory
    assert tls_verify(True) is True and tls_verify(False) is False
    with pytest.raises(pyconnector.ConfigError, match="neither true/false nor a CA file"):
        tls_verify(str(tmp_path / "missing.pem"))
