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

Every query a user shapes is bounded (:data:`MAX_EXPRESSION`, :data:`MAX_TERMS`,
:data:`MAX_NESTING`, :data:`MAX_SIZE_TERMS`, text lengths, numbers), and a metadata
expression becomes one aggregate over ``dls_meta`` whatever its shape: one flag per
distinct term, grouped by file, then the expression over the flags. Its cost grows with
the metadata rows times the distinct terms, never with the nesting.

Private keys are stored as ``<user id>@key``. A search sees keys by the names its caller
sees (``key`` and, for the caller's own, ``private@key``): no spelling of a key or a
pattern reaches another user's private rows, and ``@`` is refused in keys except in the
``private@`` prefix.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from starlette.datastructures import QueryParams

from pyconnector.times import parse_time

from ..checks import int_param, text_param
from ..errors import bad_request
from .tables import file, meta
from .validate import (
    PRIVATE_PREFIX,
    directory,
    filename,
    meta_key,
    number,
    savepoint,
)

SORTS = {"createdOn": file.c.created_ms, "fileName": file.c.filename, "size": file.c.size,
         "updatedOn": file.c.updated_ms}
UNITS = {"": 1, "b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40,
         "pb": 1 << 50}
# Bounds of what one search may ask (400 past them, naming the limit and the field).
MAX_EXPRESSION = 4000   # characters of a metadata expression
MAX_TERMS = 64          # terms of a metadata expression, as written
MAX_NESTING = 10        # depth of brackets in a metadata expression
MAX_SIZE_TERMS = 4      # repeated size= parameters
MAX_VALUE = 1024        # a value in a metadata expression: dls_meta.value holds 1024
MAX_TEXT = MAX_VALUE    # text=: no longer text could match a name, comment or value
MAX_SHORT = 128         # size=, time= (both times of one)
MAX_BYTES = 2**63 - 1   # a size the BIGINT column can hold
_SIZE = re.compile(r"^\s*(>=|<=|!=|>|<|=)?\s*(\d+(?:\.\d+)?)\s*([kmgtp]?b)?\s*$", re.I)
# TCUP's boolean search flags for states no file here is ever in: files are stored, not
# kept elsewhere (external), moved in from another system (transferred), packed into an
# archive (bundled), locked against changes, or kept after deletion (a delete removes the
# file). So `false` holds for every file and `true` for none: `locked=true` finds nothing.
NO_FILE_IS = ("external", "transferred", "deleted", "bundled", "locked")
# What Spring (TCUP's DLS) reads as a boolean query parameter, in any case; "" is unset.
_TRUE, _FALSE = ("true", "on", "yes", "1"), ("false", "off", "no", "0")
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}


def flag(params: QueryParams, name: str) -> bool | None:
    """The boolean query parameter ``name``: None if absent or empty, else true or false
    (a 400 naming it for anything else, or for two values)."""
    values = params.getlist(name)
    if len(values) > 1:
        raise bad_request(f"{name}: give it once (true or false)", name)
    if not values or not values[0].strip():
        return None
    text = values[0].strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise bad_request(f"{name}: {values[0][:40]!r} is not a boolean: true or false", name)


def size_condition(text: str, field: str = "size") -> Any:
    """``>10mb`` → ``file.size > 10485760`` (units are powers of 1024)."""
    m = _SIZE.match(text_param(text, field, MAX_SHORT) or "")
    if not m:
        raise bad_request(f"{field}: {text!r} is not a size expression such as '>10mb' "
                          "(operators = != > < >= <=, units b kb mb gb tb pb)", field)
    op, num, unit = m[1] or "=", Decimal(m[2]), (m[3] or "").lower()
    # Decimal: exact for any number of digits, where a float would turn into inf.
    size = int(num * UNITS[unit])
    if size > MAX_BYTES:
        raise bad_request(f"{field}: {text.strip()!r} is over the largest size, "
                          f"{MAX_BYTES} bytes", field)
    return _OPS[op](file.c.size, size)


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
            what = ("an unterminated quote" if text[pos] in "'\""
                    else f"unexpected {text[pos]!r}")
            raise bad_request(f"{field}: {what} at position {pos + 1} of {text!r}", field)
        if m.lastgroup != "space":
            out.append(_Tok(m.lastgroup or "", m.group(), pos))
        pos = m.end()
    return out


class MetadataExpression:
    """Parse once, then :meth:`condition` for a viewer (private keys are per user)."""

    def __init__(self, text: str, field: str = "metadata") -> None:
        self.text = text_param(text, field, MAX_EXPRESSION) or ""
        self.field = field
        self.toks = _tokens(text, field)
        self.i = 0
        self.terms = 0
        self.depth = 0
        if not self.toks:
            raise bad_request(f"{field}: empty expression", field)
        self.tree = _normal(self._or())
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
            # Checked before descending: the parser recurses once per bracket.
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise bad_request(f"{self.field}: at most {MAX_NESTING} levels of brackets",
                                  self.field)
            self.i += 1
            inner = self._or()
            if not (self._peek() and self._peek().text == ")"):  # type: ignore[union-attr]
                raise self._fail("')'")
            self.i += 1
            self.depth -= 1
            return inner
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise bad_request(f"{self.field}: at most {MAX_TERMS} terms", self.field)
        if tok.kind == "quoted":
            self.i += 1
            return ("value", self._value(tok.text[1:-1]))
        if tok.kind != "word":
            raise self._fail("a key or a quoted value")
        self.i += 1
        key = self._key_name(tok.text)
        op = self._peek()
        if not op or op.kind != "op":
            return ("has", key)
        self.i += 1
        value = self._peek()
        if not value or value.kind not in ("quoted", "word"):
            raise self._fail(f"a value after {op.text!r}")
        self.i += 1
        if value.kind == "quoted":
            return ("cmp", key, op.text, self._value(value.text[1:-1]), False)
        return ("cmp", key, op.text, self._value(value.text),
                number(value.text) is not None)

    def _key_name(self, key: str) -> str:
        return meta_key(key, self.field, pattern=True)[0]

    def _value(self, value: str) -> str:
        if len(value) > MAX_VALUE:
            raise bad_request(f"{self.field}: a value is at most {MAX_VALUE} characters",
                              self.field)
        return value

    # -- SQL -----------------------------------------------------------------------------
    def condition(self, viewer_id: int, scope: Any = None, within: Any = None) -> Any:
        """A condition on :data:`file` rows for the user ``viewer_id``, reading only the
        metadata of the files ``within`` (a condition on ``scope``, an alias of
        :data:`file`: the files the viewer may see).

        Terms joined by OR alone need one semi-join: a file matches if one of its rows
        does. Otherwise one aggregate groups the rows by file with a flag per distinct
        term, and the expression is evaluated over the flags."""
        leaves: dict[tuple[Any, ...], str] = {}
        _collect(self.tree, leaves)
        tests = {name: _row_test(leaf, viewer_id) for leaf, name in leaves.items()}
        alone = all(n[0] not in ("and", "or") for n in _terms_of_or(self.tree))
        q = sa.select(meta.c.file_id) if alone else sa.select(meta.c.file_id, *[
            sa.func.max(sa.case((test, 1), else_=0)).label(name)
            for name, test in tests.items()])
        if scope is not None:
            q = q.join(scope, scope.c.id == meta.c.file_id).where(within)
        # Only rows some term can match are read (an index finds those of exact keys).
        q = q.where(sa.or_(*tests.values()))
        if alone:
            return file.c.id.in_(q)
        flags = q.group_by(meta.c.file_id).subquery("terms")
        return file.c.id.in_(sa.select(flags.c.file_id).where(_flags(self.tree, leaves,
                                                                      flags)))


def _normal(node: tuple[Any, ...]) -> tuple[Any, ...]:
    """``a & (b & a)`` → ``a & b``: nested and/or of one kind flattened, repeats dropped."""
    kind = node[0]
    if kind not in ("and", "or"):
        return node
    parts: list[tuple[Any, ...]] = []
    for child in map(_normal, node[1:]):
        for part in (child[1:] if child[0] == kind else (child,)):
            if part not in parts:
                parts.append(part)
    return (kind, *parts) if len(parts) > 1 else parts[0]


def _terms_of_or(node: tuple[Any, ...]) -> tuple[tuple[Any, ...], ...]:
    return node[1:] if node[0] == "or" else (node,)


def _collect(node: tuple[Any, ...], leaves: dict[tuple[Any, ...], str]) -> None:
    if node[0] in ("and", "or"):
        for child in node[1:]:
            _collect(child, leaves)
    else:
        leaves.setdefault(node, f"t{len(leaves)}")


def _flags(node: tuple[Any, ...], leaves: dict[tuple[Any, ...], str], flags: Any) -> Any:
    if node[0] in ("and", "or"):
        parts = [_flags(child, leaves, flags) for child in node[1:]]
        return sa.and_(*parts) if node[0] == "and" else sa.or_(*parts)
    return flags.c[leaves[node]] == 1


def _row_test(node: tuple[Any, ...], viewer_id: int) -> Any:
    """A condition on one :data:`meta` row for a term."""
    kind = node[0]
    if kind == "has":
        return _key(node[1], viewer_id)
    if kind == "value":
        return sa.and_(_key("*", viewer_id), _text_eq(node[1]))
    _, key, op, value, numeric = node
    if numeric:
        test = _OPS[op](meta.c.num, float(value))
    elif op in ("=", "!="):
        test = _text_eq(value)
        test = test if op == "=" else ~test
    else:
        test = _OPS[op](meta.c.value, value)
    return sa.and_(_key(key, viewer_id), test)


def _key(key: str, viewer_id: int) -> Any:
    """Rows of ``key`` (a name or a pattern, as the viewer sees names) the viewer may see.
    ``key`` has no ``@`` but in the ``private@`` prefix (:func:`meta_key` checked)."""
    mine = f"{viewer_id}@"
    private = key.startswith(PRIVATE_PREFIX)
    if "*" not in key:
        return meta.c.key == (mine + key[len(PRIVATE_PREFIX):] if private else key)
    if private:  # only the viewer's own private keys
        return meta.c.key.like(_like(mine) + _like(key[len(PRIVATE_PREFIX):]), escape="\\")
    # Any other pattern (`*`, `pri*`, `*e`) may match public names and the names the
    # viewer sees for its own private keys (`private@note`), never another user's.
    seen = sa.case((meta.c.key.startswith(mine), sa.literal(PRIVATE_PREFIX).concat(
        sa.func.substr(meta.c.key, len(mine) + 1, type_=sa.String))), else_=meta.c.key)
    return sa.and_(sa.or_(~meta.c.key.contains("@"), meta.c.key.startswith(mine)),
                   seen.like(_like(key), escape="\\"))


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
        times = [t for raw in params.getlist("time")
                 for t in (text_param(raw, "time", MAX_SHORT) or "").split(",") if t.strip()]
        if len(times) > 2:
            raise bad_request("time: at most two values (from, to)", "time")
        for i, raw in enumerate(times):
            try:
                ms = parse_time(raw.strip())
            except ValueError as exc:
                raise bad_request(f"time: {exc}", "time") from None
            conds.append(file.c.created_ms >= ms if i == 0 else file.c.created_ms <= ms)
        sizes = params.getlist("size")
        if len(sizes) > MAX_SIZE_TERMS:
            raise bad_request(f"size: at most {MAX_SIZE_TERMS} size= parameters", "size")
        conds += [size_condition(s) for s in sizes]
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
        own = flag(params, "ownFile")
        for name in NO_FILE_IS:
            if flag(params, name):
                conds.append(sa.false())
        return cls(
            conditions=conds,
            metadata=MetadataExpression(expr) if expr else None,
            text=text_param(params.get("text"), "text", MAX_TEXT) or None,
            uri=params.get("uri"), user=params.get("user"),
            own_file=own,
            sort=SORTS[sort_name], descending=order == "desc",
            page_no=int_param(params.get("pageNo"), "pageNo", 1, 1),
            page_size=int_param(params.get("pageSize"), "pageSize", 100, 1, max_page_size))


def text_condition(text: str) -> Any:
    """Free text: in the file name, directory, savepoint, comment or a public metadata
    value (private values are not free text: they are found by their key alone)."""
    pattern = f"%{_like(text)}%"

    def has(col: Any) -> Any:
        return sa.func.lower(col).like(pattern.lower(), escape="\\")

    return sa.or_(has(file.c.filename), has(file.c.directory), has(file.c.savepoint),
                  has(file.c.comment),
                  file.c.id.in_(sa.select(meta.c.file_id).where(
                      has(meta.c.value), ~meta.c.key.contains("@"))))
