"""What the Workflow Service keeps in the database: definitions, instances and their
steps. Blocking calls (run them through :func:`pyconnector_server.deps.call`).

Every lookup is scoped to the tenant (another tenant's objects are "not found"); the
engine's calls (by instance or step id) are not, and are only made with ids read from
these tables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from pyconnector.times import format_tcup

from ..auth import Tenant
from ..clock import now_ms
from ..db import Database
from ..errors import APIError, not_found
from ..tasks.tables import run, task
from .tables import definition, instance, step

_INSTANCE_ID = re.compile(r"^I([0-9]{1,9})$")
#: what a process name or version may be (bodies): anything else is nobody's, and is not
#: sent to the database (PostgreSQL refuses a NUL in a parameter with an error)
_REF = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,128}$")
#: instance states in which nothing runs or will run by itself
SETTLED = ("PREPARED", "SUCCEEDED", "FAILED", "ABORTED")
#: step states that are over
STEP_ENDED = ("SUCCEEDED", "FAILED", "ABORTED")


def _time(ms: int | None) -> str | None:
    return None if ms is None else format_tcup(ms)


def definition_view(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "processName": row.name, "processVersion": row.version,
        "tasks": [f"T{i}" for i in row.tasks],
        "links": [{"source": f"T{a}", "destination": f"T{b}"} for a, b in row.edges],
        "recoveryMode": row.recovery_mode, "schedule": None,
        "createdOn": _time(row.created_ms), "updatedOn": _time(row.updated_ms)}
    if row.cron is not None:
        out["schedule"] = {"cron": row.cron, "timeZone": row.time_zone,
                           "recurrenceLimit": row.recurrence_limit, "fired": row.fired,
                           "nextRun": _time(row.next_fire_ms)}
    return out


def step_view(row: Any) -> dict[str, Any]:
    return {"baseTaskId": f"T{row.base_task_id}", "copiedTaskId": f"T{row.task_id}",
            "state": row.state, "run": row.run_number, "reason": row.reason}

def instance_view(row: Any, d: Any, steps: Sequence[Any]) -> dict[str, Any]:
    """The JSON of instance ``row`` of definition ``d`` with its ``steps`` in order."""
    return {"instanceId": f"I{row.id}", "processName": d.name,
            "processVersion": d.version, "state": row.state, "trigger": row.trigger,
            "recoveries": row.recoveries, "createdOn": _time(row.created_ms),
            "startedOn": _time(row.started_ms), "endedOn": _time(row.ended_ms),
            "tasks": [step_view(s) for s in steps]}


class WorkflowStore:
    """Tenant-scoped rows of the workflow tables, and the engine's calls."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- definitions -------------------------------------------------------------------
    def _definition(self, conn: sa.Connection, t: Tenant, name: str, version: str) -> Any:
        row = None if not (_REF.match(name) and _REF.match(version)) else conn.execute(
            sa.select(definition).where(
                definition.c.tenant_id == t.id, definition.c.name == name,
                definition.c.version == version)).first()
        if row is None:
            raise not_found(f"process {name[:128]!r} version {version[:64]!r}")
        return row

    def own_tasks(self, t: Tenant, ids: list[int]) -> dict[int, Any]:
        """The tenant's task rows among ``ids``, by id."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(task).where(task.c.tenant_id == t.id,
                                                      task.c.id.in_(ids))).all()
        return {r.id: r for r in rows}

    def add_definition(self, t: Tenant, name: str, version: str, tasks: list[int],
                       edges: list[tuple[int, int]]) -> tuple[bool, dict[str, Any]]:
        """Save a definition; (made, view). The same name and version again with the
        same graph is the definition itself (a script run twice); with another graph, a
        409: a version, once saved, is what its instances ran."""
        now = now_ms()
        pairs = [list(e) for e in edges]
        with self.db.write() as conn:
            old = conn.execute(sa.select(definition).where(
                definition.c.tenant_id == t.id, definition.c.name == name,
                definition.c.version == version)).first()
            if old is not None:
                if old.tasks == tasks and old.edges == pairs:
                    return False, definition_view(old)
                raise APIError(409, f"processVersion: {name!r} version {version!r} exists "
                               "with other tasks or links; save the change as a new "
                               "processVersion", field="processVersion")
            did = conn.execute(sa.insert(definition).values(
                tenant_id=t.id, name=name, version=version, tasks=tasks, edges=pairs,
                recovery_mode=False, recurrence_limit=0, fired=0, created_ms=now,
                updated_ms=now)).inserted_primary_key[0]
            return True, definition_view(conn.execute(sa.select(definition).where(
                definition.c.id == did)).one())

    def definition(self, t: Tenant, name: str, version: str) -> dict[str, Any]:
        with self.db.read() as conn:
            return definition_view(self._definition(conn, t, name, version))

    def definition_row(self, t: Tenant, name: str, version: str) -> Any:
        with self.db.read() as conn:
            return self._definition(conn, t, name, version)

    def definitions(self, t: Tenant, name: str | None = None, limit: int | None = None,
                    offset: int = 0) -> list[dict[str, Any]]:
        """The tenant's definitions, oldest first: ``limit`` of them after ``offset``."""
        with self.db.read() as conn:
            q = sa.select(definition).where(definition.c.tenant_id == t.id)
            if name is not None:
                q = q.where(definition.c.name == name)
            rows = conn.execute(q.order_by(definition.c.id).limit(limit)
                                .offset(offset)).all()
        return [definition_view(r) for r in rows]

    def update_definition(self, t: Tenant, name: str, version: str,
                          **values: Any) -> dict[str, Any]:
        with self.db.write() as conn:
            row = self._definition(conn, t, name, version)
            conn.execute(sa.update(definition).where(definition.c.id == row.id).values(
                updated_ms=now_ms(), **values))
            return definition_view(conn.execute(sa.select(definition).where(
                definition.c.id == row.id)).one())

    def delete_definition(self, t: Tenant, name: str, version: str) -> list[int]:
        """Delete a definition and its instances; the ids of their copied tasks (the
        caller stops and deletes them)."""
        with self.db.write() as conn:
            row = self._definition(conn, t, name, version)
            copies = [r.task_id for r in conn.execute(
                sa.select(step.c.task_id).join(instance).where(
                    instance.c.definition_id == row.id)).all()]
            conn.execute(sa.delete(definition).where(definition.c.id == row.id))
            return copies

    # -- instances ---------------------------------------------------------------------
    def prepare(self, t: Tenant, d: Any, trigger: str = "manual") -> tuple[int, list[
            tuple[int, int]]]:
        """A new PREPARED instance of definition row ``d`` with a copy of each of its
        tasks (deploy, arguments and links; a link to a task of the definition goes to
        that task's copy); the instance id and the (base, copy) task ids."""
        now = now_ms()
        with self.db.write() as conn:
            bases = {r.id: r for r in conn.execute(sa.select(task).where(
                task.c.tenant_id == t.id, task.c.id.in_(d.tasks))).all()}
            for tid in d.tasks:
                if tid not in bases:
                    raise APIError(409, f"task T{tid} of {d.name!r} version {d.version!r} "
                                   "no longer exists")
                if bases[tid].runtime is None:
                    raise APIError(409, f"task T{tid} of {d.name!r} version {d.version!r} "
                                   "is not deployed: deploy it first")
            iid = conn.execute(sa.insert(instance).values(
                tenant_id=t.id, definition_id=d.id, state="PREPARED", trigger=trigger,
                recoveries=0, created_ms=now)).inserted_primary_key[0]
            copies: dict[int, int] = {}
            for tid in d.tasks:
                b = bases[tid]
                copies[tid] = conn.execute(sa.insert(task).values(
                    tenant_id=t.id, project_id=b.project_id,
                    name=self._copy_name(conn, b, iid), kind="task", status="DEPLOYED",
                    runtime=b.runtime, filename=b.filename, args=b.args,
                    deployed_ms=b.deployed_ms, links=[], recurrence_limit=0, fired=0,
                    schedule_paused=False, created_ms=now, updated_ms=now,
                )).inserted_primary_key[0]
            for tid, cid in copies.items():
                links = [{**link, "taskId": copies[link["taskId"]],
                          "projectId": f"P{bases[link['taskId']].project_id}"}
                         if link["taskId"] in copies else link
                         for link in bases[tid].links or []]
                conn.execute(sa.update(task).where(task.c.id == cid).values(links=links))
                conn.execute(sa.insert(step).values(
                    instance_id=iid, base_task_id=tid, task_id=cid, state="PENDING",
                    reason=""))
            return iid, list(copies.items())

    @staticmethod
    def _copy_name(conn: sa.Connection, b: Any, iid: int) -> str:
        """A name for instance ``iid``'s copy of task row ``b`` that no task of its project
        has (a user may have named a task like a copy: the insert failed, a 500)."""
        base = f"{b.name[:100]}-I{iid}-T{b.id}"
        taken = set(conn.execute(sa.select(task.c.name).where(
            task.c.project_id == b.project_id, task.c.name.startswith(
                base, autoescape=True))).scalars())
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        return name

    def _instance(self, conn: sa.Connection, t: Tenant, ref: str) -> Any:
        m = _INSTANCE_ID.match(ref)
        row = None if m is None else conn.execute(sa.select(instance).where(
            instance.c.tenant_id == t.id, instance.c.id == int(m[1]))).first()
        if row is None:
            raise not_found(f"instance {ref[:40]!r}")
        return row

    def instance_row(self, t: Tenant, ref: str) -> Any:
        with self.db.read() as conn:
            return self._instance(conn, t, ref)

    def instance(self, t: Tenant, ref: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = self._instance(conn, t, ref)
            return self._instance_view(conn, row)

    def _instance_view(self, conn: sa.Connection, row: Any) -> dict[str, Any]:
        d = conn.execute(sa.select(definition).where(
            definition.c.id == row.definition_id)).one()
        steps = conn.execute(sa.select(step).where(step.c.instance_id == row.id)
                             .order_by(step.c.id)).all()
        return instance_view(row, d, steps)

    def instances(self, t: Tenant, name: str | None = None, version: str | None = None,
                  limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """The tenant's instances, oldest first: ``limit`` of them after ``offset``
        (three queries a page, whatever its size)."""
        with self.db.read() as conn:
            q = sa.select(instance).where(instance.c.tenant_id == t.id)
            if name is not None or version is not None:
                q = q.join(definition)
            if name is not None:
                q = q.where(definition.c.name == name)
            if version is not None:
                q = q.where(definition.c.version == version)
            rows = conn.execute(q.order_by(instance.c.id).limit(limit).offset(offset)).all()
            ids = [r.id for r in rows]
            defs = {d.id: d for d in conn.execute(sa.select(definition).where(
                definition.c.id.in_({r.definition_id for r in rows}))).all()}
            steps: dict[int, list[Any]] = {i: [] for i in ids}
            for s in conn.execute(sa.select(step).where(step.c.instance_id.in_(ids))
                                  .order_by(step.c.id)).all():
                steps[s.instance_id].append(s)
        return [instance_view(r, defs[r.definition_id], steps[r.id]) for r in rows]

    def set_state(self, iid: int, states: tuple[str, ...], to: str, **values: Any) -> bool:
        """Move instance ``iid`` to ``to`` if it is in one of ``states`` (a
        compare-and-set: two processes racing, one moves it)."""
        with self.db.write() as conn:
            return conn.execute(sa.update(instance).where(
                instance.c.id == iid, instance.c.state.in_(states)).values(
                    state=to, **values)).rowcount == 1

    def recover(self, iid: int) -> bool:
        """Make every step of a FAILED or ABORTED instance that did not succeed pending
        again, and the instance RUNNING; False if it was not failed or aborted."""
        with self.db.write() as conn:
            moved = conn.execute(sa.update(instance).where(
                instance.c.id == iid, instance.c.state.in_(("FAILED", "ABORTED"))).values(
                    state="RUNNING", ended_ms=None,
                    recoveries=instance.c.recoveries + 1)).rowcount == 1
            if moved:
                conn.execute(sa.update(step).where(
                    step.c.instance_id == iid, step.c.state != "SUCCEEDED").values(
                        state="PENDING", run_number=None, claimed_ms=None, reason=""))
            return moved

    def delete_instance(self, t: Tenant, ref: str) -> list[int]:
        """Delete a settled instance; its copied tasks' ids."""
        with self.db.write() as conn:
            row = self._instance(conn, t, ref)
            if row.state not in SETTLED:
                raise APIError(409, f"instance I{row.id} is {row.state}: abort it first")
            copies = [r.task_id for r in conn.execute(sa.select(step.c.task_id).where(
                step.c.instance_id == row.id)).all()]
            conn.execute(sa.delete(instance).where(instance.c.id == row.id))
            return copies

    def history(self, iid: int) -> list[dict[str, Any]]:
        """Every run of the instance's copied tasks, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(step.c.base_task_id, step.c.task_id, run).join(
                    run, run.c.task_id == step.c.task_id).where(step.c.instance_id == iid)
                .order_by(run.c.queued_ms, run.c.id)).all()
        return [{"baseTaskId": f"T{r.base_task_id}", "copiedTaskId": f"T{r.task_id}",
                 "run": r.number, "state": r.state, "exitCode": r.exit_code,
                 "reason": r.reason, "startedOn": _time(r.started_ms),
                 "endedOn": _time(r.ended_ms)} for r in rows]

    # -- the engine's calls ------------------------------------------------------------
    def moving(self) -> list[int]:
        """Instances the engine has work on: running or paused, or with a step still
        running (an aborted one whose runs are being stopped)."""
        with self.db.read() as conn:
            busy = sa.select(step.c.instance_id).where(step.c.state == "RUNNING")
            return list(conn.execute(sa.select(instance.c.id).where(sa.or_(
                instance.c.state.in_(("RUNNING", "PAUSED")), instance.c.id.in_(busy)))
                .order_by(instance.c.id)).scalars())

    def steps(self, iid: int) -> tuple[Any, Any, list[Any]]:
        """The instance, its definition and its steps, with each step's run state."""
        with self.db.read() as conn:
            inst = conn.execute(sa.select(instance).where(instance.c.id == iid)).first()
            if inst is None:
                return None, None, []
            d = conn.execute(sa.select(definition).where(
                definition.c.id == inst.definition_id)).one()
            rows = conn.execute(
                sa.select(step, run.c.state.label("run_state"),
                          run.c.reason.label("run_reason")).outerjoin(
                    run, sa.and_(run.c.task_id == step.c.task_id,
                                 run.c.number == step.c.run_number))
                .where(step.c.instance_id == iid).order_by(step.c.id)).all()
            return inst, d, rows

    def claim(self, step_id: int) -> bool:
        """Take a pending step of a running instance to run it (a compare-and-set: one
        process wins; an instance aborted or paused since the engine read it has none
        taken)."""
        running = sa.select(instance.c.id).where(instance.c.state == "RUNNING")
        with self.db.write() as conn:
            return conn.execute(sa.update(step).where(
                step.c.id == step_id, step.c.state == "PENDING",
                step.c.instance_id.in_(running)).values(
                    state="RUNNING", claimed_ms=now_ms())).rowcount == 1

    @staticmethod
    def link_run(step_id: int, conn: sa.Connection, number: int) -> None:
        """Record run ``number`` as the step's, on the connection that adds the run."""
        conn.execute(sa.update(step).where(step.c.id == step_id).values(run_number=number))

    def set_step(self, step_id: int, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute(sa.update(step).where(step.c.id == step_id).values(**values))

