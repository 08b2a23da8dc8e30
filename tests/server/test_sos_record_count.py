"""``Prefer: count=exact`` on a CSV download: the ``x-record-count`` header says how many
records the answer holds (for the connector's progress bar), on both stores."""

from __future__ import annotations

import csv
import io

import pytest

from tests.conftest import AppClient

SOS = "/api/sos/v2.0"
T0 = 1_700_000_000_000


@pytest.fixture
def sparse(api_any: AppClient) -> AppClient:
    """Two sensors; a record holds a, b or both: the count is of (sensor, time) keys,
    not of values."""
    api = api_any
    assert api.post(f"{SOS}/features", json={"name": "f"}).json()["code"] == 201
    for s in ("s1", "s2"):
        r = api.post(f"{SOS}/sensors", json={"name": s, "feature": "f",
                                             "outputs": [{"name": "a"}, {"name": "b"}]})
        assert r.json()["code"] == 201, r.text
    def out(k: int) -> list[dict[str, float]]:
        return [{"name": n, "value": k} for n in ("a", "b") if (n == "a") != (k % 3 == 0)
                or k % 2 == 0]
    obs = [{"sensor": s, "record": [{"starttime": T0 + k * 1000, "output": out(k)}
                                    for k in range(10 + i)]}
           for i, s in enumerate(("s1", "s2"))]
    assert api.post(f"{SOS}/observations", json={"observations": obs}).json()["code"] == 201
    return api


def _download(api: AppClient, prefer: str | None = "count=exact", **params: object
              ) -> tuple[str | None, int]:
    headers = {"prefer": prefer} if prefer else {}
    r = api.get(f"{SOS}/observations", params={"format": "csv", **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.headers.get("x-record-count"), len(list(csv.DictReader(io.StringIO(r.text))))


@pytest.mark.parametrize("params", [
    {"feature": "f"}, {"sensor": "s1"}, {"sensor": ["s1", "s2"], "property": "b"},
    {"feature": "f", "property": "a"}, {"feature": "f", "start": T0 + 3000, "end": T0 + 8000},
    {"feature": "f", "latest": 4}, {"feature": "f", "limit": 5, "offset": 17},
    {"feature": "f", "start": T0 + 60_000}])
def test_the_count_is_the_records_sent(sparse: AppClient, params: dict[str, object]) -> None:
    count, rows = _download(sparse, **params)
    assert count == str(rows), (params, count, rows)


def test_no_count_unless_asked_or_when_a_filter_decides(sparse: AppClient) -> None:
    assert _download(sparse, None, feature="f")[0] is None
    assert _download(sparse, "return=minimal", feature="f")[0] is None
    assert _download(sparse, "respond-async, count=exact", feature="f")[0] == "21"
    count, rows = _download(sparse, feature="f", filter="a>4")
    assert count is None and rows > 0
