"""The API explorer, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a closed network (a plant
floor, a lab) they stay blank. Here the pages are FastAPI's (``get_swagger_ui_html`` and
``get_redoc_html``) and their scripts, stylesheet and icon come from the platform itself.

Where the assets come from: the ``fastapi-offline`` distribution (MIT). Of the packages
that ship them it is the one that carries both Swagger UI 5 and ReDoc 2 (JS, CSS and a
favicon) and is kept current; ``swagger-ui-bundle`` stops at Swagger UI 4 and
``swagger-ui-py`` has no ReDoc. Its ``FastAPIOffline`` factory would replace our
``FastAPI(...)``, so only its asset directory is used, mounted with ``StaticFiles``.

The pages also carry a Content-Security-Policy that keeps the browser on the platform:
ReDoc 2 shows its vendor's logo from that vendor's CDN in the side menu (and hides it when
it fails to load), so without the policy a reader's browser would still reach out.

Like ``/openapi.json``, these pages and assets need no API key: they show the document,
not data, and the routes they call still ask for a key.

TCUP serves each service's Swagger descriptor at ``<service base>/v2/api-docs``, and a
status dashboard polls it with ``x-api-key`` and reads ``info.version``: a service adds
that path to its router with :func:`add_api_docs`. It answers the same document as
``/openapi.json`` (OpenAPI 3, not Swagger 2; ``info.version`` is where TCUP's is) and,
as TCUP's does, wants a valid API key. It is left out of the document itself, as
``/openapi.json`` is.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from .deps import Auth, Tenant

API_DOCS_PATH = "/v2/api-docs"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
SWAGGER_JS, SWAGGER_CSS = "swagger-ui-bundle.js", "swagger-ui.css"
REDOC_JS, FAVICON = "redoc.standalone.js", "favicon.png"
# Everything from the platform; inline script (Swagger UI's start-up) and styles (both
# inject them); images also as data: URIs (the stylesheets' icons); ReDoc's search worker.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
       "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:")


def install(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve ``docs_url`` and ``redoc_url`` on ``app`` (made with ``docs_url=None,
    redoc_url=None``) with every asset under :data:`ASSETS_URL`: no request leaves the
    platform."""
    missing = [n for n in (SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON)
               if not (ASSETS_DIR / n).is_file()]
    if missing:  # a fastapi-offline release that moved its files: say so at start
        raise RuntimeError(f"fastapi-offline ships no {', '.join(missing)} in {ASSETS_DIR}")
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    def root(request: Request) -> str:  # behind a proxy's prefix, URLs keep the prefix
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        prefix = root(request)
        redirect = app.swagger_ui_oauth2_redirect_url
        page = get_swagger_ui_html(
            openapi_url=prefix + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{prefix}{ASSETS_URL}/{SWAGGER_JS}",
            swagger_css_url=f"{prefix}{ASSETS_URL}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{prefix}{ASSETS_URL}/{FAVICON}",
            oauth2_redirect_url=prefix + redirect if redirect else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        page.headers["content-security-policy"] = CSP
        return page

    if app.swagger_ui_oauth2_redirect_url:  # as FastAPI's own /docs has it

        @app.get(app.swagger_ui_oauth2_redirect_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        prefix = root(request)
        page = get_redoc_html(
            openapi_url=prefix + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{prefix}{ASSETS_URL}/{REDOC_JS}",
            redoc_favicon_url=f"{prefix}{ASSETS_URL}/{FAVICON}",
            with_google_fonts=False,  # fonts from a CDN too: ReDoc falls back to local ones
        )
        page.headers["content-security-policy"] = CSP
        return page


def add_api_docs(router: APIRouter) -> None:
    """Serve the platform's OpenAPI document at the router's prefix +
    :data:`API_DOCS_PATH` (TCUP's place for it), to any valid API key."""

    @router.get(API_DOCS_PATH, include_in_schema=False)
    async def api_docs(request: Request, _t: Tenant = Auth) -> JSONResponse:
        return JSONResponse(request.app.openapi())
