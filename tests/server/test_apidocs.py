"""The API explorer pages reference only the platform's own assets, and those answer.

The browser check (the pages render operations with no network) is
tests/e2e/test_apidocs_browser.py; this one is fast and needs no browser.
"""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from pyconnector_server.apidocs import ASSETS_URL
from tests.conftest import AppClient

# Every URL a page names: attributes, and the quoted ones its inline script uses.
URL = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url:\s*'([^']+)'""")
KIND = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def referenced(html: str) -> list[str]:
    return [a or b for a, b in URL.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_page_names_only_local_urls_and_they_answer(api: AppClient, page: str) -> None:
    response = api.client.get(page)  # no API key, as for /openapi.json
    assert response.status_code == 200, response.text
    html = response.text
    assert not re.search(r"(?:https?:)?//(?!127\.0\.0\.1|localhost)[\w.-]+\.\w+/", html), html
    urls = referenced(html)
    assets = [u for u in urls if u.startswith(ASSETS_URL + "/")]
    assert "/openapi.json" in urls
    assert any(u.endswith(".js") for u in assets), urls
    for url in urls:
        assert url.startswith("/"), f"{page} names {url}: not a path on the platform"
        answer = api.client.get(url)
        assert answer.status_code == 200, (url, answer.text[:200])
    for url in assets:
        kind = KIND[url[url.rindex("."):]]
        assert kind in api.client.get(url).headers["content-type"], url


def test_swagger_ui_gets_its_stylesheet_and_redoc_no_web_fonts(api: AppClient) -> None:
    assert any(u.endswith(".css") for u in referenced(api.client.get("/docs").text))
    assert "fonts.googleapis" not in api.client.get("/redoc").text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_pages_keep_the_browser_on_the_platform(api: AppClient, page: str) -> None:
    # ReDoc's bundle fetches its vendor's logo from a CDN: the policy stops that request.
    policy = api.client.get(page).headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy


def test_pages_follow_a_proxy_prefix(api: AppClient) -> None:
    # Behind a proxy that serves the platform under /pc, the browser must ask for /pc/...
    behind = TestClient(api.app, root_path="/pc")
    for page in ("/docs", "/redoc"):
        urls = referenced(behind.get(page).text)
        assert urls and all(u.startswith("/pc/") for u in urls), urls
