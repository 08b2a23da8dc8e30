"""One JSON error shape for every failure: ``{"code": int, "message": str, ...}``.

``field`` names the offending input (``observations[0].record[1].starttime``) and
``line`` the CSV line, when known; ``key`` is a message key (the Data Lake's, TCUP's
``not.found``, ``already.exists``, …) where a service gives its errors one. Every route
family answers errors in this shape; a test asserts it across them.

A service whose clients expect more of its errors (keys, other statuses, another form on
request) registers a *dialect* for its path prefix (:func:`register_dialect`): every
error under that prefix, the framework's own included, passes through it before it is
sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import Scope

from .backends.errors import BackendError

log = logging.getLogger("pyconnector.server")


class APIError(Exception):
    """A failure to report to the client with an HTTP status and a clear message."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 line: int | None = None, headers: dict[str, str] | None = None,
                 key: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.line = line
        self.headers = headers
        self.key = key

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.status, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.line is not None:
            out["line"] = self.line
        if self.key is not None:
            out["key"] = self.key
        return out


def bad_request(message: str, field: str | None = None, line: int | None = None) -> APIError:
    return APIError(400, message, field=field, line=line)


def not_found(what: str) -> APIError:
    return APIError(404, f"{what} not found")


# A dialect answers an error of its service: it may give the error a key, change its
# status, or answer another form the client asked for.
Dialect = Callable[[Request, APIError], JSONResponse]
_DIALECTS: dict[str, Dialect] = {}


def register_dialect(prefix: str, dialect: Dialect) -> None:
    """Answer every error of a request whose path starts with ``prefix`` (``/api/dls``)
    with ``dialect``. A service registers its dialect when its routes are imported."""
    _DIALECTS[prefix.rstrip("/")] = dialect


def _dialect(scope: Scope) -> Dialect | None:
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):  # behind a proxy's prefix
        path = path[len(root):]
    for prefix, dialect in _DIALECTS.items():
        if path == prefix or path.startswith(prefix + "/"):
            return dialect
    return None


def plain_response(exc: APIError) -> JSONResponse:
    """The one error shape, as it is."""
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def error_response(exc: APIError, request: Request | Scope | None = None) -> JSONResponse:
    """The answer for ``exc``: the one error shape, in the dialect of the service whose
    path ``request`` (a request or its ASGI scope) asks for, if it has one."""
    if request is not None:
        if not isinstance(request, Request):
            request = Request(request)
        if (dialect := _dialect(request.scope)) is not None:
            return dialect(request, exc)
    return plain_response(exc)


def database_error(exc: BaseException) -> APIError | None:
    """The answer for a database failure that is not a bug: a statement cut by the
    statement timeout (or by the request's cancellation: the client is gone then, so the
    answer is moot), or SQLite still busy after its busy timeout."""
    orig = getattr(exc, "orig", exc)
    text = str(orig)
    kind = type(orig).__name__
    if kind == "QueryCanceled" or getattr(orig, "sqlstate", None) == "57014" or (
            kind == "OperationalError" and text == "interrupted"):
        return APIError(503, "the query ran longer than the server's statement timeout; "
                        "narrow it (fewer terms, a shorter time span, a smaller page)",
                        headers={"retry-after": "1"})
    if kind == "OperationalError" and "database is locked" in text:
        return APIError(503, "the database is busy; try again", headers={"retry-after": "1"})
    return None


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or ".".join(map(str, loc))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the one error shape."""

    @app.exception_handler(APIError)
    async def _api_error(req: Request, exc: APIError) -> JSONResponse:
        return error_response(exc, req)

    @app.exception_handler(RequestValidationError)
    async def _validation(req: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = _loc_to_field(tuple(first.get("loc", ())))
        return error_response(bad_request(f"{field}: {first.get('msg')}", field=field), req)

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(APIError(exc.status_code, str(exc.detail), headers=exc.headers),
                              req)

    @app.exception_handler(ClientDisconnect)
    async def _gone(req: Request, _exc: ClientDisconnect) -> JSONResponse:
        # The client left mid-body: nobody reads this answer, and it is not a fault.
        return error_response(APIError(499, "the client closed the connection"), req)

    @app.exception_handler(BackendError)
    async def _backend(req: Request, exc: BackendError) -> JSONResponse:
        # Not a bug of ours (no traceback), but an operator should hear of it and its cause.
        log.warning("%s %s: %s (%r)", req.method, req.url.path, exc, exc.__cause__)
        headers = {"retry-after": str(exc.retry_after)} if exc.retry_after else None
        return error_response(APIError(exc.status, exc.message, headers=headers), req)

    @app.exception_handler(sa_exc.DBAPIError)
    async def _database(req: Request, exc: sa_exc.DBAPIError) -> JSONResponse:
        if (answer := database_error(exc)) is not None:
            return error_response(answer, req)
        log.error("internal error on %s %s", req.method, req.url.path, exc_info=exc)
        return error_response(APIError(500, "internal error"), req)

    @app.exception_handler(Exception)
    async def _internal(req: Request, exc: Exception) -> JSONResponse:
        if (answer := database_error(exc)) is not None:  # ADBC's errors (Arrow reads)
            return error_response(answer, req)
        log.exception("internal error on %s %s", req.method, req.url.path)
        return error_response(APIError(500, "internal error"), req)
