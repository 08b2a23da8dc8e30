"""What a connector says of itself: where, as which key (its fingerprint, never the key),
and its state; made without a network call (the URL answers nothing here)."""

from __future__ import annotations

import hashlib

import pyconnector

KEY, JWT, DLS = "k" * 64, "jwt-secret-value", "d" * 64
URL = "http://127.0.0.1:9"  # the discard port: any request would fail


def _fp(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def test_service_connectors_name_url_and_key_fingerprint() -> None:
    conn = pyconnector.connectors(api_key=KEY, URL=URL + "/")
    sos, dls, srws = conn.SensorObservation(), conn.Datalake(), conn.srwsUtils()
    assert repr(sos) == f"<SensorObservation {URL}/api/sos/v2.0 api_key={_fp(KEY)}>"
    assert repr(dls) == f"<Datalake {URL}/api/dls api_key={_fp(KEY)} dls_key=none>"
    assert repr(srws) == (f"<srwsUtils {URL}/MessageRouting/v2.0 api_key={_fp(KEY)} "
                          "websocket=closed subscriptions=0>")
    assert repr(conn) == f"connectors(Config(url={URL!r}, api_key={_fp(KEY)}, jwt=off))"
    conn.close()
    assert repr(sos).endswith(" closed>")


def test_secrets_never_show() -> None:
    conn = pyconnector.connectors(api_key=KEY, URL=URL, jwt_key=JWT, dls_key=DLS)
    texts = [repr(conn), repr(conn.config), repr(conn.SensorObservation()),
             repr(conn.Datalake()), repr(conn.Datalake(dlsKey="e" * 64)), repr(conn.srwsUtils())]
    for text in texts:
        assert KEY not in text and JWT not in text and DLS not in text and "e" * 16 not in text
    assert " jwt=on" in texts[2] and f"dls_key={_fp(DLS)}" in texts[3]
    assert f"dls_key={_fp('e' * 64)}" in texts[4]
    assert f"dls_key={_fp(DLS)}" in texts[1]
    conn.close()
