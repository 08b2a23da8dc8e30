"""Request size limits: 413 for bodies over the limit, before or while they stream in."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import APIError, error_response


def _too_large(limit: int) -> APIError:
    return APIError(413, f"request body too large: the limit is {limit} bytes")


class BodyLimitMiddleware:
    """Refuse any body over ``limit`` bytes: at once by Content-Length, else as it streams."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await error_response(_too_large(self.limit), scope)(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _too_large(self.limit)
            return message

        await self.app(scope, counted, send)


async def read_json(request: Request, limit: int | None = None) -> Any:
    """The request body parsed as JSON, within the JSON body limit; 400 if malformed."""
    limit = limit or request.app.state.settings.max_body_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise APIError(400, "request body is empty: a JSON document is expected")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise APIError(400, f"malformed JSON: {exc}") from None


async def read_json_object(request: Request) -> dict[str, Any]:
    """:func:`read_json` for routes whose body must be one JSON object."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise APIError(400, "body: expected a JSON object", field="body")
    return body
