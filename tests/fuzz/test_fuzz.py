"""Schemathesis over ``/openapi.json`` on both stores: no request may answer 5xx, and
every answer is one the document describes.

A real platform process per store; every operation of the document (one test item each),
as a tenant admin and a Data Lake user, with the bodies and search terms of
:mod:`fuzz_spec`. Bounded by hypothesis settings: ``EXAMPLES`` generated cases per
operation plus schemathesis's examples and coverage cases, no shrinking, no example
database; two to three minutes per store (task deploys build and run). The checks: ``not_a_server_error``;
``status_code_conformance`` (every status answered is documented for its operation: no
"400 that the document calls 422"); ``response_schema_conformance`` (every JSON answer
matches its documented schema, so the answer models cannot drift from what the routes
return). ``benchmarks/security_probes.py`` runs the same with a larger budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from conftest import Server, _pg_schema, start_server
from fuzz_spec import enrich, seed, targets
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from pyconnector_server.app import create_app
from pyconnector_server.settings import Settings

pytestmark = pytest.mark.e2e

EXAMPLES = 60  # generated cases per operation and store
TENANT, USER = "fuzz", "fuzzer"
TARGETS = targets(TENANT, USER)
# The published document, built (not served) when the tests are collected: schemathesis
# makes one test per operation from it. The fixture checks the server publishes the same.
PUBLISHED = create_app(Settings.load({"data_dir": "unused"}, environ={})).openapi()
# A stream (SSE) answers for as long as the client listens: it has its own tests
# (tests/e2e/test_routing_streams.py), not the fuzzer's request-answer cases.
schema = schemathesis.openapi.from_dict(enrich(PUBLISHED, TARGETS)).exclude(
    path="/MessageRouting/v2.0/sse")


@dataclass
class Platform:
    server: Server
    headers: dict[str, str]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_platform(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform on each store with a seeded tenant (its admin key, a DLS user's key)."""
    db = ""
    if request.param == "postgresql":
        # A schema of its own: the seeds' ids are a fresh platform's (fuzz_spec.targets).
        schema_of_its_own = _pg_schema()
        db = next(schema_of_its_own)
        request.addfinalizer(lambda: next(schema_of_its_own, None))
    server = start_server(tmp_path_factory.mktemp(f"fuzz-{request.param}"), db)
    try:
        api_key = server.new_key(TENANT)
        dls_key = server.dls_key(TENANT, USER)
        with httpx.Client(base_url=server.url, headers={"x-api-key": api_key},
                          timeout=60) as client:
            assert client.get("/openapi.json").json() == PUBLISHED
            seed(client, dls_key, TARGETS)
        yield Platform(server, {"x-api-key": api_key, "x-dls-key": dls_key})
    finally:
        server.stop()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate],  # no shrinking: a bounded run
          suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx(case: Any, fuzz_platform: Platform) -> None:
    response = case.call(base_url=fuzz_platform.server.url, headers=fuzz_platform.headers,
                         timeout=60)
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                            response_schema_conformance])
