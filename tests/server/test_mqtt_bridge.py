"""The ``--mqtt`` setting's URL: what the bridge connects to, and every bad value refused
naming the setting (the bridge itself runs in tests/e2e/test_mqtt_routing.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyconnector_server.routing.mqtt_bridge import (
    MAX_CLIENT_ID,
    MAX_SESSION_EXPIRY,
    SESSION_EXPIRY_SECONDS,
    Source,
    parse,
)


@pytest.fixture
def ca_file(tmp_path: Path) -> str:
    trustme = pytest.importorskip("trustme")
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def test_plain_mqtt_with_defaults() -> None:
    assert parse("mqtt://127.0.0.1", "pyconnector-bridge-x") == Source(
        "127.0.0.1", 1883, client_id="pyconnector-bridge-x",
        session_expiry=SESSION_EXPIRY_SECONDS)


def test_credentials_port_client_id_and_session() -> None:
    source = parse("mqtt://bridge%40plant:p%3Ass@broker.example:1884/"
                   "?client_id=plant-a&session_expiry=0")
    assert (source.host, source.port, source.username, source.password) == (
        "broker.example", 1884, "bridge@plant", "p:ss")
    assert (source.client_id, source.session_expiry, source.tls) == ("plant-a", 0, False)
    assert source.tls_context() is None


def test_tls_with_a_ca_file(ca_file: str) -> None:
    source = parse(f"mqtts://localhost?ca={ca_file}")
    assert (source.port, source.tls, source.ca_file) == (8883, True, ca_file)
    context = source.tls_context()
    assert context is not None and context.check_hostname
    assert source.where == "mqtts://localhost:8883"


@pytest.mark.parametrize(("url", "words"), [
    ("", "expected mqtt://host:port"),
    ("amqp://guest:guest@127.0.0.1:5672/", "expected mqtt://host:port"),
    ("embedded://0.0.0.0:1884", "run Mosquitto"),
    ("mqtt://", "names no host"),
    ("mqtt://host:99999", "is not a URL"),
    ("mqtt://host/plant", "has no path"),
    ("mqtt://host?colour=red", "unknown parameter 'colour'"),
    ("mqtt://host?client_id=a&client_id=b", "give client_id= once"),
    ("mqtt://host?client_id=", "give client_id= once"),
    (f"mqtt://host?client_id={'c' * (MAX_CLIENT_ID + 1)}", f"1 to {MAX_CLIENT_ID} printable"),
    ("mqtt://host?session_expiry=-1", f"from 0 to {MAX_SESSION_EXPIRY}"),
    (f"mqtt://host?session_expiry={MAX_SESSION_EXPIRY + 1}", f"from 0 to {MAX_SESSION_EXPIRY}"),
    ("mqtt://host?ca=/etc/hostname", "for mqtts:// (TLS) only"),
    ("mqtts://host?ca=/no/such/ca.pem", "CA file '/no/such/ca.pem' not found"),
    ("mqtt://" + "h" * 2100, "at most 2048 characters"),
])
def test_a_bad_url_is_refused_naming_the_setting(url: str, words: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse(url)
    assert str(refused.value).startswith("mqtt (--mqtt, PYCONNECTOR_MQTT): ")
    assert words in str(refused.value)


def test_a_file_that_is_no_ca_is_refused_at_once(tmp_path: Path) -> None:
    not_a_ca = tmp_path / "ca.pem"
    not_a_ca.write_text("not a certificate")
    with pytest.raises(ValueError, match="holds no PEM CA certificate"):
        parse(f"mqtts://host?ca={not_a_ca}")
