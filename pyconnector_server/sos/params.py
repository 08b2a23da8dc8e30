"""What an observation query asks for, read from URL parameters (no I/O, no Arrow)."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from ..checks import no_nul
from ..errors import bad_request
from . import validate as v

_FILTER = re.compile(r"^\s*([^<>=!]+?)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$")


@dataclass
class Filter:
    name: str
    op: str
    value: str


@dataclass
class ObservationQuery:
    """What to read: whose observations, which span, which properties, which page."""

    sensors: list[str] | None = None
    feature: str | None = None
    start: int | None = None
    end: int | None = None
    latest: int | None = None
    properties: list[str] | None = None
    filters: list[Filter] = field(default_factory=list)
    order: str = "asc"
    limit: int | None = None
    offset: int = 0
    cursor: tuple[int, int] | None = None

    @classmethod
    def from_params(cls, params: Any, default_limit: int | None, max_limit: int | None
                    ) -> ObservationQuery:
        """Build a query from URL parameters; 400 naming the parameter when one is bad."""

        def names(key: str) -> list[str] | None:
            raw = params.getlist(key) if hasattr(params, "getlist") else params.get(key)
            if not raw:
                return None
            # Names are exact (commas and spaces included): several values are given by
            # repeating the parameter, never by splitting one.
            raw = raw if isinstance(raw, list) else [raw]
            return [v.name(n, key) for n in raw]

        def opt_time(key: str) -> int | None:
            raw = params.get(key)
            return None if raw in (None, "") else v.time_ms(raw, key)

        filters = []
        raw_filters = params.getlist("filter") if hasattr(params, "getlist") else (
            [params["filter"]] if params.get("filter") else [])
        for raw in raw_filters:
            m = _FILTER.match(no_nul(raw, "filter"))
            if not m:
                raise bad_request(f"filter: cannot read {raw!r}; write e.g. "
                                  "temperature>20 or status='ok'", "filter")
            filters.append(Filter(v.name(m[1], "filter"), m[2], _unquote(m[3])))
        q = cls(
            sensors=names("sensor"),
            feature=v.name(params["feature"], "feature") if params.get("feature") else None,
            start=opt_time("start"),
            end=opt_time("end"),
            latest=v.positive_int(params.get("latest"), "latest"),
            properties=names("property"),
            filters=filters,
            order=v.choice(params.get("order"), "order", ("asc", "desc"), "asc"),
            limit=v.positive_int(params.get("limit"), "limit", default_limit, max_limit),
            offset=v.positive_int(params.get("offset"), "offset", 0) or 0,
            cursor=decode_cursor(params.get("cursor")),
        )
        if q.start is not None and q.end is not None and q.end < q.start:
            raise bad_request("end: before start", "end")
        return q


def _unquote(value: str) -> str:
    """``'ok'`` or ``"ok"`` → ``ok``; a bare value stays as it is."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def encode_cursor(t: int, s: int) -> str:
    return base64.urlsafe_b64encode(f"{t}:{s}".encode()).decode().rstrip("=")


def decode_cursor(raw: str | None) -> tuple[int, int] | None:
    if not raw:
        return None
    try:
        t, s = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().split(":")
        if not (abs(int(t)) < 2**63 and 0 <= int(s) < 2**63):  # forged: would overflow
            raise ValueError
        return int(t), int(s)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("cursor: not a cursor this server issued", "cursor") from None
