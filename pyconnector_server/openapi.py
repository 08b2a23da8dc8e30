"""The platform's OpenAPI document: FastAPI's, completed from what the routes declare.

FastAPI describes parameters and the responses a route names. The rest comes from here,
in one pass over the routes, so no service repeats it:

- **request bodies**: routes read their bodies themselves (within the platform's size
  and depth limits, see :mod:`pyconnector_server.bodies`); the dependency that does it
  carries the body's type, published here as the operation's ``requestBody``;
- **security**: the ``x-api-key`` and ``x-dls-key`` headers, as security schemes, on
  each operation whose dependencies ask for them (a dependency names the schemes it
  checks in a ``__security__`` attribute, see :func:`secured`);
- **errors**: every failure answers the one error shape (:class:`Error`). FastAPI's
  default 422 is never sent (the platform answers 400), so it is replaced by the statuses
  that can happen: 400 when a request carries anything to check, 401/403 for the
  security schemes, 413 for a body, 503 when the database is busy, and what the route
  names itself (404, 409, …).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import fastapi.routing
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from .bodies import Documented

F = TypeVar("F", bound=Callable[..., Any])

REF = "#/components/schemas/{model}"
SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
               "description": "The tenant's API key (`pyconnector apikey create`)."},
    "DlsKey": {"type": "apiKey", "in": "header", "name": "x-dls-key",
               "description": "A Data Lake user's key (`pyconnector dlsuser create`)."},
}
ERROR = {"$ref": "#/components/schemas/Error"}
ERROR_TEXT = {
    "400": "A value is missing or invalid; `field` names it (and `line`, in a CSV).",
    "401": "No API key (or DLS key), or an unknown or expired one.",
    "403": "The key may not do this (e.g. an `/admin` route without an admin key).",
    "404": "No such object for this tenant (another tenant's objects are not found).",
    "409": "The object exists already, is in use, the quota is spent, or (Data Lake) the "
           "key may read but not write or delete it.",
    "413": "The body is over the platform's limit.",
    "416": "The byte range is outside the file.",
    "503": "The database is busy or the query ran out of time; retry after Retry-After.",
}


class Error(BaseModel):
    """Every failure: the status, a message naming the problem and, when known, the
    field (``observations[0].record[1].starttime``) and the CSV line; the Data Lake's
    errors carry TCUP's message key (``not.found``, ``no.write.privilege``, …)."""

    code: int
    message: str
    field: str | None = None
    line: int | None = None
    key: str | None = None


def secured(*schemes: str, forbids: bool = False) -> Callable[[F], F]:
    """Mark an authentication dependency with the security schemes it checks (names of
    :data:`SCHEMES`), and whether it answers 403 to a valid key that may not go on."""

    def mark(fn: F) -> F:
        fn.__security__ = schemes  # type: ignore[attr-defined]
        fn.__forbids__ = forbids  # type: ignore[attr-defined]
        return fn

    return mark


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=`` for failures it answers beyond the ones this module adds
    (those come from its security, parameters and body)."""
    return {s: {"model": Error, "description": ERROR_TEXT.get(str(s), "")} for s in statuses}


def answers(model: Any, status: int = 200, description: str = "Done",
            *also: int, media: dict[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: ``model`` (a Pydantic type) documents the JSON it answers
    with ``status``; ``media`` adds other media types (``{"text/csv": {…}}``); ``also``
    names the failures it answers beyond the ones this module adds."""
    out: dict[int | str, dict[str, Any]] = {status: {"model": model, "description": description}}
    if media:
        out[status]["content"] = media
    return {**out, **errors(*also)}


def _api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """The app's API routes, those of included routers too. FastAPI 0.120 and later keep
    an included router's routes behind a context (``iter_route_contexts``); earlier ones
    copy them into ``app.routes``. Routers are included without an extra prefix, so a
    route's own path is its path in the document."""
    iter_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if iter_contexts is None:
        yield from (r for r in app.routes if isinstance(r, APIRoute))
        return
    for context in iter_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context.original_route


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _add(components: dict[str, Any], defs: dict[str, Any]) -> None:
    for name, schema in defs.items():
        if components.setdefault(name, schema) != schema:  # two models, one name
            raise RuntimeError(f"two request or answer models are named {name}: rename one")


def _schema(kind: Any, components: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of ``kind`` (a request body), its models moved into
    ``components``."""
    if isinstance(kind, dict):
        return kind
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        _, defs = models_json_schema([(kind, "validation")], ref_template=REF)
        _add(components, defs.get("$defs", {}))
        return {"$ref": REF.format(model=kind.__name__)}
    schema = TypeAdapter(kind).json_schema(ref_template=REF)
    _add(components, schema.pop("$defs", {}))
    return schema


def _complete(op: dict[str, Any], route: APIRoute, components: dict[str, Any]) -> None:
    deps = list(_dependencies(route.dependant))
    schemes: list[str] = []
    forbids = False
    for dep in deps:
        forbids |= getattr(dep.call, "__forbids__", False)
        for scheme in getattr(dep.call, "__security__", ()):
            if scheme not in schemes:
                schemes.append(scheme)
    body = next((b for d in deps if isinstance(b := getattr(d.call, "__body__", None),
                                                  Documented)), None)
    if body is not None:
        op["requestBody"] = {"required": True, "content": {
            body.media_type: {"schema": _schema(body.schema, components)}}}
    if schemes:
        op["security"] = [{s: [] for s in schemes}]
    responses = op.setdefault("responses", {})
    responses.pop("422", None)
    for response in responses.values():  # FastAPI's empty default beside a route's own
        content = response.get("content", {})
        for media in [m for m, c in content.items() if set(c.get("schema", {})) <= {"title"}]:
            if len(content) > 1:
                del content[media]
    statuses = ["503"]
    if op.get("parameters") or body is not None:
        statuses.append("400")
    if schemes:
        statuses.append("401")
    if forbids:
        statuses.append("403")
    if body is not None:
        statuses.append("413")
    for status in statuses:
        responses.setdefault(status, {"description": ERROR_TEXT[status],
                                      "content": {"application/json": {"schema": ERROR}}})


def document(app: FastAPI) -> dict[str, Any]:
    """The completed OpenAPI document of ``app``."""
    spec = get_openapi(title=app.title, version=app.version, description=app.description,
                       routes=app.routes, tags=app.openapi_tags)
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    if "Error" not in schemas:  # the one error shape, referenced by every operation
        _, defs = models_json_schema([(Error, "serialization")], ref_template=REF)
        _add(schemas, defs["$defs"])
    components["securitySchemes"] = SCHEMES
    for route in _api_routes(app):
        if not route.include_in_schema:
            continue
        for method in route.methods:
            op = spec["paths"][route.path_format].get(method.lower())
            if op is not None:
                _complete(op, route, schemas)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec


def install(app: FastAPI) -> None:
    """Serve :func:`document` as ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
