"""Catalog search: TCUP's query parameters parsed into SQLAlchemy conditions.

Metadata expressions (``metadata=``)::

    site='pune' & rate>=5          both (AND)
    site='pune', site='mumbai'     either (OR); AND binds tighter than OR
    (site='pune', site='goa') & rate<3
    owner                          the file has the key
    'pune'                         some key has the value
    site='pu*'  sen*='x'           `*` is a wildcard in quoted values and in keys
    private@note='todo'            your own private key

Operators ``= != > < >= <=``. A bare number (``rate>=5``) compares numerically; a quoted
value (``rate>='5'``) or a bare word compares as text. ``!=`` matches files that have the
key with another value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from starlette.datastructures import QueryParams

from pyconnector.times import parse_time

from ..checks import int_param
from ..errors import bad_request
from .tables import file, meta
from .validate import directory, filename, number, savepoint

SORTS = {"createdOn": file.c.created_ms, "fileName": file.c.filename, "size": file.c.size,
         "updatedOn": file.c.updated_ms}
UNITS = {"": 1, "b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40,
         "pb": 1 << 50}
_SIZE = re.compile(r"^\s*(>=|<=|!=|>|<|=)?\s*(\d+(?:\.\d+)?)\s*([kmgtp]?b)?\s*$", re.I)
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}


def size_condition(text: str, field: str = "size") -> Any:
    """``>10mb`` → ``file.size > 10485760`` (units are powers of 1024)."""
    m = _SIZE.match(text)
    if not m:
        raise bad_request(f"{field}: {text!r} is not a size expression such as '>10mb' "
                          "(operators = != > < >= <=, units b kb mb gb tb pb)", field)
    op, num, unit = m[1] or "=", float(m[2]), (m[3] or "").lower()
    return _OPS[op](file.c.size, int(num * UNITS[unit]))


# -- metadata expressions --------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<space>\s+) | (?P<op>!=|>=|<=|=|>|<) | (?P<punct>[(),&])
  | (?P<quoted>'[^']*'|"[^"]*") | (?P<word>[A-Za-z0-9_.:*@+\-]+)
""", re.X)


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(text: str, field: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            what = "an unterminated quote" if text[pos] in "'\"" else repr(text[pos])
            raise bad_request(f"{field}: unexpected {what} at position {pos + 1} of "
                              f"{text!r}", field)
        if m.lastgroup != "space":
            out.append(_Tok(m.lastgroup or "", m.group(), pos))
        pos = m.end()
    return out


class MetadataExpression:
    """Parse once, then :meth:`condition` for a viewer (private keys are per user)."""

    def __init__(self, text: str, field: str = "metadata") -> None:
        self.text = text
        self.field = field
        self.toks = _tokens(text, field)
        self.i = 0
        if not self.toks:
            raise bad_request(f"{field}: empty expression", field)
        self.tree = self._or()
        if self.i < len(self.toks):
            tok = self.toks[self.i]
            raise bad_request(f"{field}: unexpected {tok.text!r} at position {tok.pos + 1}"
                              f" of {text!r} (join terms with ',' or '&')", field)

    # grammar: or := and (',' and)* ; and := atom ('&' atom)* ; atom := '(' or ')' | term
    def _peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _fail(self, expected: str) -> Exception:
        tok = self._peek()
        where = f"{tok.text!r} at position {tok.pos + 1}" if tok else "the end"
        return bad_request(f"{self.field}: expected {expected} but found {where} of "
                           f"{self.text!r}", self.field)

    def _or(self) -> tuple[Any, ...]:
        parts = [self._and()]
        while (tok := self._peek()) and tok.text == ",":
            self.i += 1
            parts.append(self._and())
        return ("or", *parts) if len(parts) > 1 else parts[0]

    def _and(self) -> tuple[Any, ...]:
        parts = [self._atom()]
        while (tok := self._peek()) and tok.text == "&":
            self.i += 1
            parts.append(self._atom())
        return ("and", *parts) if len(parts) > 1 else parts[0]

    def _atom(self) -> tuple[Any, ...]:
        tok = self._peek()
        if tok is None:
            raise self._fail("a term")
        if tok.text == "(":
            self.i += 1
            inner = self._or()
            if not (self._peek() and self._peek().text == ")"):  # type: ignore[union-attr]
                raise self._fail("')'")
            self.i += 1
            return inner
        if tok.kind == "quoted":
            self.i += 1
            return ("value", tok.text[1:-1])
        if tok.kind != "word":
            raise self._fail("a key or a quoted value")
        self.i += 1
        op = self._peek()
        if not op or op.kind != "op":
            return ("has", tok.text)
        self.i += 1
        value = self._peek()
        if not value or value.kind not in ("quoted", "word"):
            raise self._fail(f"a value after {op.text!r}")
        self.i += 1
        if value.kind == "quoted":
            return ("cmp", tok.text, op.text, value.text[1:-1], False)
        return ("cmp", tok.text, op.text, value.text, number(value.text) is not None)

    # -- SQL -----------------------------------------------------------------------------
    def condition(self, viewer_id: int) -> Any:
        """A condition on :data:`file` rows for the user ``viewer_id``."""
        return self._sql(self.tree, viewer_id)

    def _key(self, key: str, viewer_id: int) -> Any:
        if key.startswith("private@"):
            key = f"{viewer_id}@{key[len('private@'):]}"
        if "*" in key:
            cond = meta.c.key.like(_like(key), escape="\\")
            # Someone else's private keys (`<id>@key`) never match a pattern.
            return sa.and_(cond, sa.or_(~meta.c.key.contains("@"),
                                        meta.c.key.startswith(f"{viewer_id}@")))
        return meta.c.key == key

    def _sql(self, node: tuple[Any, ...], viewer_id: int) -> Any:
        kind = node[0]
        if kind in ("and", "or"):
            parts = [self._sql(n, viewer_id) for n in node[1:]]
            return sa.and_(*parts) if kind == "and" else sa.or_(*parts)
        if kind == "has":
            cond = self._key(node[1], viewer_id)
        elif kind == "value":
            cond = sa.and_(_text_eq(node[1]), self._key("*", viewer_id))
        else:
            _, key, op, value, numeric = node
            if numeric:
                test = _OPS[op](meta.c.num, float(value))
            elif op in ("=", "!="):
                test = _text_eq(value)
                test = test if op == "=" else ~test
            else:
                test = _OPS[op](meta.c.value, value)
            cond = sa.and_(self._key(key, viewer_id), test)
        return file.c.id.in_(sa.select(meta.c.file_id).where(cond))


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _text_eq(value: str) -> Any:
    if "*" in value:
        return meta.c.value.like(_like(value), escape="\\")
    return meta.c.value == value


# -- the whole query ----------------------------------------------------------------------------
@dataclass
class CatalogQuery:
    """``GET /catalog`` parameters, checked."""

    conditions: list[Any]
    metadata: MetadataExpression | None
    text: str | None
    uri: str | None
    user: str | None
    own_file: bool | None
    sort: Any
    descending: bool
    page_no: int
    page_size: int

    @classmethod
    def from_params(cls, params: QueryParams, max_page_size: int) -> CatalogQuery:
        conds: list[Any] = []
        times = [t for raw in params.getlist("time") for t in raw.split(",") if t.strip()]
        if len(times) > 2:
            raise bad_request("time: at most two values (from, to)", "time")
        for i, raw in enumerate(times):
            try:
                ms = parse_time(raw.strip())
            except ValueError as exc:
                raise bad_request(f"time: {exc}", "time") from None
            conds.append(file.c.created_ms >= ms if i == 0 else file.c.created_ms <= ms)
        conds += [size_condition(s) for s in params.getlist("size")]
        if (name := params.get("filename")) is not None:
            conds.append(file.c.filename == filename(name))
        if (d := params.get("directory")) is not None:
            conds.append(file.c.directory == directory(d))
        if (sp := params.get("savepoint")) is not None:
            conds.append(file.c.savepoint == savepoint(sp))
        expr = params.get("metadata")
        sort_name = params.get("sort") or "createdOn"
        if sort_name not in SORTS:
            raise bad_request(f"sort: must be one of {', '.join(SORTS)}", "sort")
        order = (params.get("order") or ("asc" if sort_name == "fileName" else "desc")).lower()
        if order not in ("asc", "desc"):
            raise bad_request("order: must be asc or desc", "order")
        own = params.get("ownFile")
        if own is not None and own.lower() not in ("true", "false"):
            raise bad_request("ownFile: must be true or false", "ownFile")
        return cls(
            conditions=conds,
            metadata=MetadataExpression(expr) if expr else None,
            text=params.get("text") or None, uri=params.get("uri"),
            user=params.get("user"),
            own_file=None if own is None else own.lower() == "true",
            sort=SORTS[sort_name], descending=order == "desc",
            page_no=int_param(params.get("pageNo"), "pageNo", 1, 1),
            page_size=int_param(params.get("pageSize"), "pageSize", 100, 1, max_page_size))


def text_condition(text: str) -> Any:
    """Free text: in the file name, directory, savepoint, comment or a metadata value."""
    pattern = f"%{_like(text)}%"

    def has(col: Any) -> Any:
        return sa.func.lower(col).like(pattern.lower(), escape="\\")

    return sa.or_(has(file.c.filename), has(file.c.directory), has(file.c.savepoint),
                  has(file.c.comment),
                  file.c.id.in_(sa.select(meta.c.file_id).where(
                      has(meta.c.value), ~meta.c.key.contains("@"))))
