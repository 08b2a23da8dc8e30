"""A definition's graph: edges ``(upstream, downstream)`` between task ids.

``start`` and ``end`` are implied (TCUP writes them as nodes: ``(start,T26) (T26,T27)
(T27,end)``; they are accepted and dropped): a task with no upstream runs first, and the
instance has ended when every task has. Any DAG is allowed - sequences, parallel
branches, fan-out, fan-in; what is not one is refused naming the problem.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import TypeVar

from ..errors import bad_request

N = TypeVar("N", bound=Hashable)

#: the most tasks and edges a definition may have
MAX_TASKS = 500
MAX_EDGES = 2000
ENDPOINTS = ("start", "end")


def check(edges: Sequence[tuple[N, N]], field: str = "taskList") -> tuple[list[N], list[
        tuple[N, N]]]:
    """The tasks (in first-seen order) and the edges of a valid DAG (``start``/``end``
    edges dropped); a 400 naming ``field`` for an empty list, a self-edge, a duplicate
    edge, a cycle, or too many tasks or edges."""
    if not edges:
        raise bad_request(f"{field}: a workflow needs at least one edge (upstream, "
                          "downstream)", field)
    if len(edges) > MAX_EDGES:
        raise bad_request(f"{field}: at most {MAX_EDGES} edges, not {len(edges)}", field)
    tasks: dict[N, None] = {}
    kept: list[tuple[N, N]] = []
    seen: set[tuple[N, N]] = set()
    for i, (up, down) in enumerate(edges):
        where = f"{field}[{i}]"
        if up == down:
            raise bad_request(f"{where}: {up} depends on itself", field)
        if (up, down) in seen:
            raise bad_request(f"{where}: the edge ({up}, {down}) is given twice", field)
        seen.add((up, down))
        if down == "start" or up == "end":
            raise bad_request(f"{where}: nothing comes before start or after end", field)
        for node in (up, down):
            if node not in ENDPOINTS:
                tasks.setdefault(node)
        if up not in ENDPOINTS and down not in ENDPOINTS:
            kept.append((up, down))
    if not tasks:
        raise bad_request(f"{field}: no task between start and end", field)
    if len(tasks) > MAX_TASKS:
        raise bad_request(f"{field}: at most {MAX_TASKS} tasks, not {len(tasks)}", field)
    try:
        list(TopologicalSorter(upstreams(list(tasks), kept)).static_order())
    except CycleError as exc:
        cycle = " → ".join(str(n) for n in reversed(exc.args[1]))
        raise bad_request(f"{field}: the edges make a cycle: {cycle}", field) from None
    return list(tasks), kept


def upstreams(tasks: Sequence[N], edges: Sequence[tuple[N, N]]) -> dict[N, set[N]]:
    """Each task's upstream tasks."""
    out: dict[N, set[N]] = {t: set() for t in tasks}
    for up, down in edges:
        out[down].add(up)
    return out
