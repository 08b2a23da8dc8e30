"""The Data Lake's errors in TCUP's words: every DLS error carries TCUP's message key.

The body stays the platform's one error shape (``code``, ``message``, ``field``,
``line``) plus ``key``, the message key TCUP's DLS answers (``not.found``,
``already.exists``, ``no.write.privilege``, …). An error made with a key
(:func:`~.store.dls_error`) keeps it; any other - a bad parameter, an unknown key, the
framework's 404 or 405, a body over the limit, a database that is busy - gets the key of
its status (:data:`KEYS`). Two statuses follow TCUP rather than the rest of the platform:
an upload over the size limit is 400 ``upload.filesize.exceeds`` (TCUP's answer for a
multipart upload too large; elsewhere 413), and the privilege errors are 409 (see
:mod:`.store`).

A client that asks for it with ``x-error-format: tcup`` gets a 400 in TCUP's
list-of-messages form instead: ``[{"key": "<kebab-case field>", "value": "<bad value>",
"messages": ["…"]}]`` when a field is known, ``[{"messages": ["…"]}]`` otherwise.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..errors import APIError, plain_response

ERROR_FORMAT_HEADER = "x-error-format"
TCUP_FORMAT = "tcup"

# The key of an error made without one, by its status.
KEYS = {
    400: "invalid.argument",  # a parameter; "invalid.input" for the body (see _key)
    401: "not.authenticated",
    403: "not.authorized",
    404: "not.found",
    405: "method.not.allowed",
    409: "already.exists",
    413: "invalid.input",  # a JSON body over its limit (an upload is upload.filesize.exceeds)
    416: "invalid.argument",
    499: "invalid.input",
    503: "service.unavailable",
}
UPLOAD_TOO_LARGE = "upload.filesize.exceeds"
# The routes that take a file (or a resumable upload's chunk) in their body: over the
# limit is TCUP's 400.
UPLOAD_PATHS = ("/file", "/file/resumable")


def _upload(request: Request, prefix: str) -> bool:
    path = request.scope.get("path", "")
    return request.method in ("POST", "PUT") and any(path.endswith(prefix + p)
                                                     for p in UPLOAD_PATHS)


def _header(request: Request, name: str) -> str | None:
    """The request's header ``name``; None if absent or if ``name`` (a field named by a
    body, any text) cannot be a header name."""
    if not name.isascii():
        return None
    return request.headers.get(name)


# A message that starts with a key, as :func:`~.store.dls_error` writes them.
_LEADING_KEY = re.compile(r"^([a-z]+(?:\.[a-zA-Z]+)+): ")


def _key(request: Request, exc: APIError) -> str:
    """The key of an error made without one: the key its message starts with, else its
    status's."""
    m = _LEADING_KEY.match(exc.message)
    if m is not None and m[1] != exc.field:  # "a.b: unknown field" names a field
        return m[1]
    if exc.status >= 500 and exc.status != 503:
        return "internal.error"
    if exc.status == 400 and request.method in ("POST", "PUT", "PATCH") and not (
            exc.field and (exc.field in request.query_params
                           or _header(request, exc.field) is not None
                           or exc.field in request.path_params)):
        return "invalid.input"  # TCUP's word for a body it cannot take
    return KEYS.get(exc.status, "invalid.argument" if exc.status < 500 else "internal.error")


def _kebab(field: str) -> str:
    """``pageNo`` → ``page-no``: TCUP names fields in kebab case."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", field).lower()


def tcup_messages(request: Request, exc: APIError) -> list[dict[str, Any]]:
    """A 400 in TCUP's list-of-messages form."""
    message = exc.message
    if not exc.field:
        return [{"messages": [message]}]
    if message.startswith(exc.field + ": "):  # the key says which field
        message = message[len(exc.field) + 2:]
    item: dict[str, Any] = {"key": _kebab(exc.field)}
    header = _header(request, exc.field)
    values = request.query_params.getlist(exc.field) or ([header] if header is not None
                                                         else [])
    if values:
        item["value"] = ",".join(values)
    item["messages"] = [message]
    return [item]


def dialect(prefix: str) -> Any:
    """The DLS's error dialect for routes under ``prefix`` (see
    :func:`pyconnector_server.errors.register_dialect`)."""

    def answer(request: Request, exc: APIError) -> JSONResponse:
        if exc.status == 413 and _upload(request, prefix):
            limit = request.app.state.settings.max_upload_bytes
            exc = APIError(400, f"{UPLOAD_TOO_LARGE}: the upload is over the largest file "
                           f"size, {limit} bytes", headers=exc.headers, key=UPLOAD_TOO_LARGE)
        elif exc.key is None:
            exc = APIError(exc.status, exc.message, field=exc.field, line=exc.line,
                           headers=exc.headers, key=_key(request, exc))
        wanted = request.headers.get(ERROR_FORMAT_HEADER, "").strip().lower()
        if exc.status == 400 and wanted == TCUP_FORMAT:
            return JSONResponse(tcup_messages(request, exc), status_code=400,
                                headers=exc.headers)
        return plain_response(exc)

    return answer
