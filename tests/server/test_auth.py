"""Authentication: API keys on every SOS endpoint (stored hashed), JWT mode on the server
and in the connector against a real server process."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import time
import uuid
from typing import Any

import jwt
import pytest
import sqlalchemy as sa

from pyconnector_server.auth import create_jwt_key, hash_key, tenant_for_key
from pyconnector_server.db import api_key, tenant
from pyconnector_server.sos.routes import PREFIX
from pyconnector_server.sos.tables import feature, observation, observed_property, sensor

SOS = "/api/sos/v2.0"
GOOD_CSV = "time,sensor,temp\n2024-05-01T10:00:00Z,ts1,1\n"
GOOD_OBS = {"observations": [{"sensor": "ts1", "record": [
    {"starttime": "2024-05-01T10:00:00Z", "output": [{"name": "temp", "value": 1}]}]}]}

# Every SOS route: (method, route template, concrete path, body to send). Writes carry a
# valid body, so that the key is the only thing wrong with them.
ROUTES: list[tuple[str, str, str, Any]] = [
    ("GET", "/features", "/features", None),
    ("POST", "/features", "/features", {"name": "f"}),
    ("GET", "/features/{name}", "/features/tf1", None),
    ("PUT", "/features/{name}", "/features/tf1", {"description": "d"}),
    ("DELETE", "/features/{name}", "/features/tf1", None),
    ("GET", "/sensors", "/sensors", None),
    ("POST", "/sensors", "/sensors", {"name": "s", "feature": "tf1"}),
    ("GET", "/sensors/{name}", "/sensors/ts1", None),
    ("PUT", "/sensors/{name}", "/sensors/ts1", {"description": "d"}),
    ("DELETE", "/sensors/{name}", "/sensors/ts1", None),
    ("GET", "/observedProperties", "/observedProperties", None),
    ("POST", "/observedProperties", "/observedProperties", {"name": "p"}),
    ("GET", "/observedProperties/{name}", "/observedProperties/temp", None),
    ("PUT", "/observedProperties/{name}", "/observedProperties/temp", {"unit": "K"}),
    ("DELETE", "/observedProperties/{name}", "/observedProperties/temp", None),
    ("GET", "/observations", "/observations?sensor=ts1", None),
    ("POST", "/observations", "/observations", GOOD_OBS),
    ("DELETE", "/observations", "/observations?sensor=ts1", None),
    ("POST", "/observations/csv", "/observations/csv", GOOD_CSV),
    ("GET", "/capabilities", "/capabilities", None),
    ("GET", "/count", "/count", None),
]


def _send(api: Any, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    kw: dict[str, Any] = {}
    if isinstance(body, str):
        kw = {"content": body, "headers": {"content-type": "text/csv", **headers}}
    elif body is not None:
        kw = {"json": body, "headers": headers}
    else:
        kw = {"headers": headers}
    return api.client.request(method, f"{SOS}{path}", **kw)


def _count_rows(api: Any) -> dict[str, int]:
    with api.app.state.db.read() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (feature, sensor, observed_property, observation)}


def _seed(api: Any) -> None:
    assert api.post(f"{SOS}/features", json={"name": "tf1"}).json()["code"] == 201
    assert api.post(f"{SOS}/sensors", json={"name": "ts1", "feature": "tf1",
                                            "outputs": ["temp"]}).json()["code"] == 201
    assert api.post(f"{SOS}/observations", json=GOOD_OBS).json()["code"] == 201


def test_the_route_list_covers_every_sos_route(api: Any) -> None:
    paths = api.app.openapi()["paths"]
    served = {(method.upper(), path.removeprefix(PREFIX)) for path, ops in paths.items()
              if path.startswith(PREFIX + "/") for method in ops}
    assert served == {(m, template) for m, template, _, _ in ROUTES}


@pytest.mark.parametrize("method, template, path, body", ROUTES,
                         ids=[f"{m} {t}" for m, t, _, _ in ROUTES])
def test_missing_or_unknown_api_key_is_401_everywhere(api: Any, method: str, template: str,
                                                     path: str, body: Any) -> None:
    _seed(api)
    before = _count_rows(api)
    for headers, fragment in (
        ({}, "missing API key"),
        ({"x-api-key": ""}, "missing API key"),
        ({"x-api-key": "0" * 64}, "unknown API key"),
        ({"x-api-key": secrets.token_hex(32)}, "unknown API key"),
        ({"x-api-key": api.api_key.upper()}, "unknown API key"),
        ({"x-api-key": api.api_key[:-1]}, "unknown API key"),
        # Whoever reads the database learns the hash; it is not a key.
        ({"x-api-key": hash_key(api.api_key)}, "unknown API key"),
        ({"authorization": f"Bearer {api.api_key}"}, "missing API key"),
    ):
        r = _send(api, method, path, body, headers)
        assert r.status_code == 401, (headers, r.text)  # real status, even for POST/PUT
        assert r.json() == {"code": 401, "message": r.json()["message"]}
        assert fragment in r.json()["message"]
    # Invalid query parameters do not get past authentication either.
    r = api.client.request(method, f"{SOS}{path.split('?')[0]}?limit=abc&start=never")
    assert r.status_code == 401
    assert _count_rows(api) == before
    # And the real key gets past authentication on the same route.
    ok = _send(api, method, path, body, {"x-api-key": api.api_key})
    answer = ok.json()
    assert ok.status_code != 401, ok.text
    assert not isinstance(answer, dict) or answer.get("code") != 401, answer


def test_api_keys_are_stored_hashed(api: Any) -> None:
    keys = [api.api_key, api.new_key("second-tenant"), api.new_key("second-tenant")]
    assert len(set(keys)) == 3
    db = api.app.state.db
    with db.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(api_key)).all()]
        tenants = [dict(r._mapping) for r in conn.execute(sa.select(tenant)).all()]
    assert len(rows) == 3
    stored = json.dumps([rows, tenants], default=str)
    hashes = {r["key_hash"] for r in rows}
    for key in keys:
        assert key.upper() not in stored.upper()
        assert hashlib.sha256(key.encode()).hexdigest() in hashes
    # Not even in the raw database files (SQLite and its write-ahead log).
    db_file = api.app.state.settings.data_path / "pyconnector.db"
    raw = b"".join(p.read_bytes() for p in db_file.parent.glob("pyconnector.db*"))
    assert raw and hash_key(keys[0]).encode() in raw  # the hash is there: we read the right file
    for key in keys:
        assert key.encode() not in raw
    # Both keys of the second tenant work, and name the same tenant.
    assert tenant_for_key(db, keys[1]) == tenant_for_key(db, keys[2])
    assert tenant_for_key(db, keys[0]) != tenant_for_key(db, keys[1])


# -- JWT mode -------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iat": now, "exp": now + 300, **extra}


def _forged(header: dict[str, Any], claims: dict[str, Any], secret: str | None,
            digest: Any = hashlib.sha256) -> str:
    """A token with any header, HMAC-signed with ``secret`` (None: unsigned). Made by hand
    so that PyJWT's own checks on encoding cannot get in the way."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    sig = hmac.new(secret.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(sig)}"


@pytest.fixture
def jwt_api(api: Any) -> tuple[Any, str, str]:
    """An app whose tenant is in JWT mode: (client, the tenant's JWT key, tenant name)."""
    _seed(api)
    name = tenant_for_key(api.app.state.db, api.api_key).name
    return api, create_jwt_key(api.app.state.db, name), name


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_jwt_valid_token_is_accepted(jwt_api: Any) -> None:
    api, secret, name = jwt_api
    token = jwt.encode(_claims(), secret, algorithm="HS256")
    r = api.get(f"{SOS}/count", headers=_bearer(token))
    assert r.status_code == 200 and r.json()["sensors"] == 1
    r = api.post(f"{SOS}/features", json={"name": "jwt-f"}, headers=_bearer(token))
    assert r.json()["code"] == 201
    r = api.post(f"{SOS}/observations/csv", content=GOOD_CSV,
                 headers={"content-type": "text/csv", **_bearer(token)})
    assert r.json()["code"] == 201
    # A `tenant` claim naming this very tenant is fine; so is the scheme in lower case.
    own = jwt.encode(_claims(tenant=name), secret, algorithm="HS256")
    assert api.get(f"{SOS}/count", headers={"authorization": f"bearer {own}"}).status_code == 200
    # Expired, but within the configured leeway (30 s): accepted.
    now = int(time.time())
    late = jwt.encode({"iat": now - 100, "exp": now - 10}, secret, algorithm="HS256")
    assert api.get(f"{SOS}/count", headers=_bearer(late)).status_code == 200


def _bad_tokens(secret: str, name: str) -> list[tuple[str, str, str]]:
    """(id, Authorization header value, fragment of the 401 message)."""
    now = int(time.time())
    other = secrets.token_urlsafe(32)
    return [
        ("missing", "", "JWT mode"),
        ("empty bearer", "Bearer ", "JWT mode"),
        ("wrong scheme", "Basic " + jwt.encode(_claims(), secret, algorithm="HS256"), "JWT mode"),
        ("garbage", "Bearer not-a-token", "invalid JWT"),
        ("expired", "Bearer " + jwt.encode({"iat": now - 7200, "exp": now - 3600}, secret,
                                           algorithm="HS256"), "expired"),
        ("wrong key", "Bearer " + jwt.encode(_claims(), other, algorithm="HS256"),
         "invalid JWT"),
        ("alg none", "Bearer " + _forged({"alg": "none", "typ": "JWT"}, _claims(), None),
         "invalid JWT"),
        ("alg None", "Bearer " + _forged({"alg": "None", "typ": "JWT"}, _claims(), None),
         "invalid JWT"),
        ("HS512", "Bearer " + _forged({"alg": "HS512", "typ": "JWT"}, _claims(), secret,
                                      hashlib.sha512), "invalid JWT"),
        ("HS384", "Bearer " + _forged({"alg": "HS384", "typ": "JWT"}, _claims(), secret,
                                      hashlib.sha384), "invalid JWT"),
        # The right signature under a header claiming another algorithm.
        ("HS256 signed, HS512 header",
         "Bearer " + _forged({"alg": "HS512", "typ": "JWT"}, _claims(), secret), "invalid JWT"),
        # Key confusion: an RS256 header over an HMAC signature made with the shared key.
        ("RS256 header", "Bearer " + _forged({"alg": "RS256", "typ": "JWT"}, _claims(), secret),
         "invalid JWT"),
        ("ES256 header", "Bearer " + _forged({"alg": "ES256", "typ": "JWT"}, _claims(), secret),
         "invalid JWT"),
        ("other tenant", "Bearer " + jwt.encode(_claims(tenant=name + "-x"), secret,
                                                algorithm="HS256"), "another tenant"),
        ("no exp", "Bearer " + jwt.encode({"iat": now}, secret, algorithm="HS256"),
         "invalid JWT"),
        ("no iat", "Bearer " + jwt.encode({"exp": now + 300}, secret, algorithm="HS256"),
         "invalid JWT"),
        ("not yet valid", "Bearer " + jwt.encode(_claims(nbf=now + 3600), secret,
                                                 algorithm="HS256"), "invalid JWT"),
        ("tampered", "Bearer " + _tamper(jwt.encode(_claims(), secret, algorithm="HS256")),
         "invalid JWT"),
        # Lifetime (jwt_max_lifetime_seconds, 3600 by default; leeway 30 s).
        ("expires in 9999", "Bearer " + jwt.encode({"iat": now, "exp": 253402300799}, secret,
                                                   algorithm="HS256"), "too far ahead"),
        ("lives 3601 s", "Bearer " + jwt.encode({"iat": now, "exp": now + 3601}, secret,
                                                algorithm="HS256"), "jwt_max_lifetime_seconds"),
        ("issued long ago, lives on", "Bearer " + jwt.encode(
            {"iat": now - 86400, "exp": now + 60}, secret, algorithm="HS256"),
         "lifetime exp - iat is 86460 s"),
        ("issued in the future", "Bearer " + jwt.encode(
            {"iat": now + 120, "exp": now + 300}, secret, algorithm="HS256"),
         "issued in the future"),
        ("issued in 9999", "Bearer " + jwt.encode(
            {"iat": 253402300000, "exp": 253402300799}, secret, algorithm="HS256"),
         "issued in the future"),
        ("iat not a number", "Bearer " + jwt.encode({"iat": str(now), "exp": now + 300},
                                                    secret, algorithm="HS256"),
         "'iat' must be a number"),
    ]


def _tamper(token: str) -> str:
    """The same signature over claims with a later expiry."""
    header, _claims_part, sig = token.split(".")
    longer = _b64(json.dumps(_claims(exp=int(time.time()) + 10**6)).encode())
    return f"{header}.{longer}.{sig}"


BAD_TOKEN_IDS = [t[0] for t in _bad_tokens(secrets.token_urlsafe(32), "t")]


@pytest.mark.parametrize("case", BAD_TOKEN_IDS)
def test_jwt_bad_tokens_are_401(jwt_api: Any, case: str) -> None:
    api, secret, name = jwt_api
    _, header, fragment = next(t for t in _bad_tokens(secret, name) if t[0] == case)
    before = _count_rows(api)
    headers = {"authorization": header} if header else {}
    for method, path, body in (("GET", "/count", None), ("POST", "/features", {"name": "f2"}),
                               ("POST", "/observations", GOOD_OBS),
                               ("DELETE", "/sensors/ts1", None)):
        r = _send(api, method, path, body, {"x-api-key": api.api_key, **headers})
        assert r.status_code == 401, (case, method, r.text)
        body_out = r.json()
        assert set(body_out) == {"code", "message"} and body_out["code"] == 401
        assert fragment in body_out["message"], body_out
    assert _count_rows(api) == before


def test_jwt_lifetime_limits_accept_what_they_should(jwt_api: Any) -> None:
    api, secret, _ = jwt_api
    now = int(time.time())
    for claims in (
        {"iat": now, "exp": now + 3600},  # exactly the longest lifetime
        {"iat": now + 20, "exp": now + 300},  # issued "later" within the 30 s leeway
        {"iat": now - 3000, "exp": now + 600},  # old, but within its lifetime
        {"iat": now + 0.5, "exp": now + 300.5},  # NumericDate may be fractional
    ):
        r = api.get(f"{SOS}/count", headers=_bearer(jwt.encode(claims, secret,
                                                               algorithm="HS256")))
        assert r.status_code == 200, (claims, r.text)


def test_jwt_max_lifetime_is_a_setting(make_app: Any) -> None:
    api = make_app(jwt_max_lifetime_seconds=60, jwt_leeway_seconds=5)
    name = tenant_for_key(api.app.state.db, api.api_key).name
    secret = create_jwt_key(api.app.state.db, name)
    now = int(time.time())
    ok = jwt.encode({"iat": now, "exp": now + 60}, secret, algorithm="HS256")
    assert api.get(f"{SOS}/count", headers=_bearer(ok)).status_code == 200
    # The connector's own tokens live 300 s: too long for this server.
    long = jwt.encode({"iat": now, "exp": now + 300}, secret, algorithm="HS256")
    r = api.get(f"{SOS}/count", headers=_bearer(long))
    assert r.status_code == 401
    assert "too far ahead" in r.json()["message"] and "at most 60 s" in r.json()["message"]
    r = api.get(f"{SOS}/count", headers=_bearer(jwt.encode(
        {"iat": now - 100, "exp": now + 1}, secret, algorithm="HS256")))
    assert r.status_code == 401 and "at most 60 s" in r.json()["message"]
    r = api.get(f"{SOS}/count", headers=_bearer(jwt.encode(
        {"iat": now + 10, "exp": now + 60}, secret, algorithm="HS256")))
    assert r.status_code == 401 and "5 s of skew" in r.json()["message"]


def test_jwt_token_needs_the_api_key_too(jwt_api: Any) -> None:
    api, secret, _ = jwt_api
    token = jwt.encode(_claims(), secret, algorithm="HS256")
    r = api.client.get(f"{SOS}/count", headers=_bearer(token))
    assert r.status_code == 401 and "missing API key" in r.json()["message"]


def test_jwt_mode_is_per_tenant(jwt_api: Any) -> None:
    api, secret, _ = jwt_api
    # Another tenant on the same app, still in API-key mode, is not affected…
    other_key = api.new_key(f"plain-{uuid.uuid4().hex[:8]}")
    r = api.client.get(f"{SOS}/count", headers={"x-api-key": other_key})
    assert r.status_code == 200 and r.json()["sensors"] == 0
    # …and once it has its own JWT key, the first tenant's tokens do not open it.
    other_name = tenant_for_key(api.app.state.db, other_key).name
    other_secret = create_jwt_key(api.app.state.db, other_name)
    mine = jwt.encode(_claims(), secret, algorithm="HS256")
    theirs = jwt.encode(_claims(), other_secret, algorithm="HS256")
    r = api.client.get(f"{SOS}/count", headers={"x-api-key": other_key, **_bearer(mine)})
    assert r.status_code == 401
    r = api.client.get(f"{SOS}/count", headers={"x-api-key": other_key, **_bearer(theirs)})
    assert r.status_code == 200
    # Nor do the second tenant's tokens open the first.
    r = api.get(f"{SOS}/count", headers=_bearer(theirs))
    assert r.status_code == 401


def test_a_new_jwt_key_replaces_the_old_one(jwt_api: Any) -> None:
    api, secret, name = jwt_api
    old = jwt.encode(_claims(), secret, algorithm="HS256")
    new_secret = create_jwt_key(api.app.state.db, name)
    assert new_secret != secret
    assert api.get(f"{SOS}/count", headers=_bearer(old)).status_code == 401
    new = jwt.encode(_claims(), new_secret, algorithm="HS256")
    assert api.get(f"{SOS}/count", headers=_bearer(new)).status_code == 200


# -- the connector in JWT mode against a real server ----------------------------------------
@pytest.mark.e2e
def test_connector_in_jwt_mode_against_a_real_server(server: Any, tmp_path: Any) -> None:
    import pyconnector
    from pyconnector.errors import AuthenticationError

    name = f"jwt-{uuid.uuid4().hex[:8]}"
    key = server.new_key(name)
    out = subprocess.run(
        [sys.executable, "-m", "pyconnector_server.cli", "jwtkey", "create",
         "--data-dir", str(server.data_dir), "--tenant", name],
        capture_output=True, text=True, check=True, timeout=60)
    secret = out.stdout.strip()
    assert secret and len(out.stdout.splitlines()) == 1

    with pyconnector.connectors(api_key=key, URL=server.url) as plain:
        with pytest.raises(AuthenticationError) as err:
            plain.SensorObservation().getCount()
        assert err.value.status == 401 and "JWT" in err.value.message
    with pyconnector.connectors(api_key=key, URL=server.url,
                                jwt_key=secrets.token_urlsafe(32)) as wrong:
        with pytest.raises(AuthenticationError) as err:
            wrong.SensorObservation().createFeature("nope")
        assert err.value.status == 401

    with pyconnector.connectors(api_key=key, URL=server.url, jwt_key=secret) as conn:
        sos = conn.SensorObservation()
        sos.createFeature("tf1")
        sos.createSensor("ts1", "tf1", outputs=["temp"])
        sos.insertObservation(sos.data("ts1", {"temp": 21.5}, "tf1",
                                       time="03-JUL-2015 13:10:00 IST"))
        csv_file = tmp_path / "obs.csv"
        csv_file.write_text("time,sensor,temp\n03-JUL-2015 13:11:00 IST,ts1,22\n")
        assert sos.uploadObservationCSV(csv_file)["code"] == 201
        df = sos.getObservation(sensor="ts1", responseType="dataframe")
        assert df["temp"].tolist() == [21.5, 22.0]
        assert sos.getCount() == {"sensors": 1, "features": 1, "observedProperties": 1}
    # The tenant's data was written by nobody else: the plain key alone still cannot read it.
    with pyconnector.connectors(api_key=key, URL=server.url) as plain:
        with pytest.raises(AuthenticationError):
            plain.SensorObservation().getObservation(sensor="ts1")
