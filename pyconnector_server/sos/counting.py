"""How many records a query answers, for a download's progress bar.

Asked with ``Prefer: count=exact`` on a CSV download, answered in the ``x-record-count``
header. It costs one more read of the answer's keys (an index range per sensor and
property, no values), so it is made only when asked, and only where it is exact without
evaluating the query: not with ``filter`` (which records pass is known only once read) nor
with ``cursor``.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..auth import Tenant
from .params import ObservationQuery
from .store import SosStore
from .tables import observation

PREFER = "count=exact"
HEADER = "x-record-count"


def wants_count(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header asks for the count (RFC 7240 preferences, as PostgREST
    reads ``count=exact``)."""
    return bool(prefer) and PREFER in [p.strip().lower() for p in (prefer or "").split(",")]


def count_records(store: SosStore, t: Tenant, q: ObservationQuery) -> int | None:
    """The number of records (distinct sensor and time with a value of a returned
    property) ``q`` answers; ``None`` when that is not known without running it."""
    if q.filters or q.cursor is not None:
        return None
    refs = store.sensor_refs(t, q.sensors, q.feature)
    outputs = store.sensor_outputs(t, [r.id for r in refs]) if refs else []
    props = {p.id for _, p in outputs if q.properties is None or p.name in q.properties}
    if not props:
        return 0
    o = observation
    keys = (sa.select(o.c.sensor_id, o.c.time_ms)
            .where(o.c.sensor_id.in_([r.id for r in refs]), o.c.property_id.in_(props),
                   sa.or_(o.c.num.is_not(None), o.c.text.is_not(None))))
    if q.start is not None:
        keys = keys.where(o.c.time_ms >= q.start)
    if q.end is not None:
        keys = keys.where(o.c.time_ms < q.end)
    # One property: each key is one record, counted on the primary key's range.
    query = (sa.select(sa.func.count()).select_from(
        keys.subquery() if len(props) == 1 else keys.distinct().subquery()))
    with store.db.read() as conn:
        n = int(conn.execute(query).scalar() or 0)
    if q.latest is not None:
        n = min(n, q.latest)
    n = max(0, n - q.offset)
    return n if q.limit is None else min(n, q.limit)
