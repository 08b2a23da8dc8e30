"""Typed JSON request bodies: Pydantic models at the route edge, one error shape.

A service declares its bodies as :class:`Model` subclasses whose fields use its own
checks (``Annotated[str, rule(validate.name)]``), so a rule is written once and gives the
same words in a body, a query parameter or a path. A route takes a body with::

    @router.post("/things")
    async def create(thing: ThingIn = json_body(ThingIn, "thing"), ...) -> Any:

:func:`json_body` reads the request with :func:`pyconnector_server.limits.read_json` (its
size and depth limits, not FastAPI's unbounded parser), validates it and answers a 400
naming the field (``thing.location.lat: must be at least -90``) in the one error shape.
:func:`batch_body` takes one item or a list of them and keeps each item's failure for a
per-item answer. The body's JSON Schema reaches the OpenAPI document through
:mod:`pyconnector_server.openapi`, which finds the marker these dependencies carry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from .errors import APIError, bad_request
from .limits import read_json

T = TypeVar("T")
M = TypeVar("M", bound="Model")

# A field name no request can hold: a check of ours is called with it, and its message
# then reads "<HERE>: must be …", which becomes "<the real path>: must be …".
_HERE = "\x00"


class Model(BaseModel):
    """A request body: unknown fields refused, values strict (no "1" for 1, no 1 for
    "1"), immutable once checked."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True,
                              populate_by_name=True)

    def given(self) -> set[str]:
        """The fields the request set (an update changes only those)."""
        return set(self.model_fields_set)


def rule(check: Callable[[Any, str], T]) -> BeforeValidator:
    """A check of ours, ``check(value, field)`` raising a 400 :class:`APIError` that names
    ``field``, as a Pydantic validator (run before the field's type): the same rule and
    words in a body as in a query parameter."""

    def validate(value: Any) -> T:
        try:
            return check(value, _HERE)
        except APIError as exc:
            reason = exc.message.removeprefix(f"{_HERE}: ").replace(_HERE, "the value")
            raise PydanticCustomError("pyconnector", "{reason}", {"reason": reason}) from None

    return BeforeValidator(validate)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _number(value: Any) -> Any:
    """A bound as a person writes it: 90, not 90.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _words(err: ErrorDetails) -> str:
    """Pydantic's error in the platform's words (the ones the hand-written checks use)."""
    kind, ctx = err["type"], err.get("ctx", {})
    if kind == "pyconnector":
        return str(ctx["reason"])
    got = _json_type(err.get("input"))
    by_kind = {
        "missing": "required",
        "extra_forbidden": "unknown field",
        "model_type": f"expected a JSON object, got {got}",
        "model_attributes_type": f"expected a JSON object, got {got}",
        "dict_type": f"expected a JSON object, got {got}",
        "list_type": f"expected a JSON array, got {got}",
        "string_type": f"expected a string, got {got}",
        "bool_type": f"expected true or false, got {got}",
        "int_type": f"expected an integer, got {got}",
        "float_type": f"expected a number, got {got}",
        "finite_number": "expected a finite number",
        "literal_error": f"must be one of {ctx.get('expected')}",
        "greater_than_equal": f"must be at least {_number(ctx.get('ge'))}",
        "less_than_equal": f"must be at most {_number(ctx.get('le'))}",
        "too_short": f"must hold at least {ctx.get('min_length')} item(s)",
        "too_long": f"must hold at most {ctx.get('max_length')} item(s)",
    }
    if kind in by_kind:
        return by_kind[kind]
    msg = err["msg"]
    return msg[:1].lower() + msg[1:]


def path(prefix: str, loc: tuple[int | str, ...]) -> str:
    """``prefix`` and a Pydantic location as one field path: ``feature.outputs[0].name``."""
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def invalid(exc: ValidationError, prefix: str) -> APIError:
    """The 400 for the first problem of ``exc`` (the field path and what is wrong)."""
    first = exc.errors(include_url=False)[0]
    field = path(prefix, tuple(first["loc"]))
    return bad_request(f"{field}: {_words(first)}", field)


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def check(kind: type[T] | Any, raw: Any, prefix: str) -> T:
    """``raw`` (parsed JSON) as a ``kind``, or the 400 naming the first bad field."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    try:
        return adapter.validate_python(raw)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise invalid(exc, prefix) from None


@dataclass(frozen=True)
class Documented:
    """What :mod:`pyconnector_server.openapi` publishes as an operation's request body."""

    schema: Any  # a type Pydantic can describe
    media_type: str = "application/json"


def _documented(dependency: Callable[..., Any], schema: Any) -> Callable[..., Any]:
    dependency.__body__ = Documented(schema)  # type: ignore[attr-defined]
    return dependency


def json_body(kind: type[M], prefix: str) -> Any:
    """A route parameter default: the request's JSON body as a checked ``kind``; errors
    name fields under ``prefix`` (``feature.name``)."""

    async def body(request: Request) -> M:
        return check(kind, await read_json(request), prefix)

    return Depends(_documented(body, kind))


def batch_body(kind: type[M], one: str, many: str, max_items: int | None = None) -> Any:
    """A route parameter default: one ``kind`` (a JSON object, errors under ``one``) or a
    non-empty list of them (each checked on its own, errors under ``many[i]``: a bad
    item is reported in its place while the others go ahead). The dependency answers a
    ``kind`` for one, and a list of ``kind`` or :class:`APIError` for a list."""
    schema = kind | list[kind]  # type: ignore[valid-type]

    async def body(request: Request) -> M | list[M | APIError]:
        raw = await read_json(request)
        if not isinstance(raw, list):
            return check(kind, raw, one)
        if not raw:
            raise bad_request(f"{many}: must not be empty", many)
        if max_items is not None and len(raw) > max_items:
            raise bad_request(f"{many}: at most {max_items} items, got {len(raw)}", many)
        out: list[M | APIError] = []
        for i, item in enumerate(raw):
            try:
                out.append(check(kind, item, f"{many}[{i}]"))
            except APIError as exc:
                out.append(exc)
        return out

    return Depends(_documented(body, schema))


def documented(schema: Any, media_type: str = "application/json") -> Any:
    """For a route that reads its own body (a stream, a form, a fast path): a dependency
    for the route's ``dependencies=[…]`` that publishes ``schema`` (a Pydantic type, or a
    JSON Schema dict) as the request body and checks nothing."""

    async def body() -> None:
        return None

    body.__body__ = Documented(schema, media_type)  # type: ignore[attr-defined]
    return Depends(body)
