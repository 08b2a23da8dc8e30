"""examples/demo_datalake.py: the data lake part of `make demo`, against a real server."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import pytest

import pyconnector

pytestmark = pytest.mark.e2e
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo_datalake.py"


def test_demo_datalake_runs_twice_on_one_platform(server, tmp_path: Path, capsys,
                                                  request: pytest.FixtureRequest) -> None:
    spec = importlib.util.spec_from_file_location("demo_datalake", DEMO)
    assert spec and spec.loader
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    conn = pyconnector.connectors(api_key=server.new_key(tenant), URL=server.url,
                                  dls_key=server.dls_key(tenant, "demo"))
    request.addfinalizer(conn.close)
    for _ in range(2):  # a second run on the same platform works too
        demo.run(conn, tmp_path)
    out = capsys.readouterr().out
    assert f"overwritten: {tenant}/demo/demo/run1/flights.csv" in out
    assert "| summarises |" in out
    assert "UK303" in out and "mean delay 15.2 min; summary says 15.2" in out
    assert len(conn.Datalake().getRelation()) == 1
