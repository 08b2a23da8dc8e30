"""``/docs`` and ``/redoc`` render in a real browser that has no network but loopback.

Headless Chromium (Debian's ``chromium``) loads each page from a real ``pyconnector
serve``; every host name but 127.0.0.1 resolves to nothing, so a page that needs a CDN
stays an empty shell. The rendered DOM must show operations (a summary and a path that
only ``/openapi.json`` holds), and Chromium's network log must show that every request the
page made went to the platform. Chromium's own background requests (update checks,
sign-in) are not the page's: they carry no page origin, and fail at the resolver.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Server, unavailable

pytestmark = pytest.mark.e2e

SUMMARY = "Create a feature (or a list of them)"
PATH = "/api/sos/v2.0/features"
# The flags the machine notes give for headless Chromium as root on a closed network,
# and a resolver that knows only loopback.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        unavailable("Chromium is not installed (apt-get install chromium)")
    return path


def page_requests(netlog: Path, origin: str) -> list[str]:
    """The URLs of the requests that a page of ``origin`` made, from a Chromium net log."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"]
            if e["type"] == start and e.get("params", {}).get("initiator") == origin]


def render(url: str, origin: str, tmp_path: Path) -> tuple[str, list[str]]:
    """The DOM of ``url`` once its scripts ran, and the URLs the page requested."""
    netlog = tmp_path / "netlog.json"
    run = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         f"--log-net-log={netlog}", "--dump-dom", "--virtual-time-budget=30000", url],
        capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout, page_requests(netlog, origin)


@pytest.mark.parametrize(("page", "script"), [("/docs", "swagger-ui-bundle.js"),
                                              ("/redoc", "redoc.standalone.js")])
def test_explorer_renders_operations_offline(server: Server, tmp_path: Path, page: str,
                                             script: str) -> None:
    dom, requested = render(server.url + page, server.url, tmp_path)
    assert SUMMARY in dom, dom[-3000:]
    assert PATH in dom.replace("<wbr>", ""), dom[-3000:]  # Swagger UI breaks paths at /
    # The log saw the page's own requests (so the check below is not vacuous)...
    assert f"{server.url}/openapi.json" in requested, requested
    assert any(u.endswith("/" + script) for u in requested), requested
    # ...and none of them left the platform.
    assert [u for u in requested if not u.startswith(server.url + "/")] == []
