"""What the Task Service keeps in the database: a tenant's projects, tasks and runs.
Blocking calls (run them through :func:`pyconnector_server.deps.call`).

Projects are ``P<id>`` and tasks ``T<id>``; either is addressed by its id or its name
(an id wins: a project named ``P7`` is reached by name only when no project ``P7`` of
the tenant exists). Every lookup is scoped to the tenant: another tenant's objects are
"not found".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from pyconnector.times import format_tcup

from ..auth import Tenant
from ..clock import now_ms
from ..db import Database
from ..errors import APIError, not_found
from .tables import owner, project, run, task

_PROJECT_ID = re.compile(r"^P([0-9]{1,9})$")
_TASK_ID = re.compile(r"^T([0-9]{1,9})$")
_REF = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,128}$")  # what a name may be (bodies.name)
#: ``with_run(conn, number)`` of :meth:`TaskStore.add_run`: written with the new run
RunHook = Callable[[sa.Connection, int], None]
#: run states that are over
ENDED = ("succeeded", "failed", "stopped", "timed_out", "out_of_memory", "cpu_limit",
         "lost")


def _time(ms: int | None) -> str | None:
    return None if ms is None else format_tcup(ms)


def project_view(row: Any) -> dict[str, Any]:
    return {"projectId": f"P{row.id}", "projectName": row.name,
            "createdOn": _time(row.created_ms)}


def task_view(row: Any, project_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobId": f"T{row.id}", "jobName": row.name, "projectId": f"P{row.project_id}",
        "projectName": project_name, "type": row.kind, "status": row.status,
        "runTime": row.runtime, "filename": row.filename, "args": row.args,
        "deployedOn": _time(row.deployed_ms), "links": row.links,
        "createdOn": _time(row.created_ms), "updatedOn": _time(row.updated_ms)}
    if row.kind == "delayed":
        out["schedule"] = {"delayedTime": _time(row.delayed_ms), "timeZone": row.time_zone,
                           "paused": row.schedule_paused}
    elif row.kind == "recurrent":
        out["schedule"] = {"cron": row.cron, "pattern": row.pattern,
                           "timeZone": row.time_zone,
                           "recurrenceLimit": row.recurrence_limit, "fired": row.fired,
                           "paused": row.schedule_paused}
    if row.kind != "task":
        out["schedule"]["nextRun"] = _time(row.next_fire_ms)
    return out


def run_view(row: Any) -> dict[str, Any]:
    return {"run": row.number, "trigger": row.trigger, "state": row.state,
            "exitCode": row.exit_code, "reason": row.reason,
            "slot": _time(row.slot_ms), "queuedOn": _time(row.queued_ms),
            "startedOn": _time(row.started_ms), "endedOn": _time(row.ended_ms)}


class TaskStore:
    """Tenant-scoped rows of the task tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- projects ----------------------------------------------------------------------
    def _project(self, conn: sa.Connection, t: Tenant, ref: str) -> Any:
        if not _REF.match(ref):  # no name has these (and PostgreSQL refuses a NUL)
            raise not_found(f"project {ref[:80]!r}")
        m = _PROJECT_ID.match(ref)
        if m:
            row = conn.execute(sa.select(project).where(
                project.c.tenant_id == t.id, project.c.id == int(m[1]))).first()
            if row is not None:
                return row
        row = conn.execute(sa.select(project).where(
            project.c.tenant_id == t.id, project.c.name == ref)).first()
        if row is None:
            raise not_found(f"project {ref!r}")
        return row

    def add_project(self, t: Tenant, name: str) -> dict[str, Any]:
        with self.db.write() as conn:
            if conn.execute(sa.select(project.c.id).where(
                    project.c.tenant_id == t.id, project.c.name == name)).first():
                raise APIError(409, f"projectName: project {name!r} exists",
                               field="projectName")
            pid = conn.execute(sa.insert(project).values(
                tenant_id=t.id, name=name, created_ms=now_ms())).inserted_primary_key[0]
            return project_view(conn.execute(sa.select(project).where(
                project.c.id == pid)).one())

    def project(self, t: Tenant, ref: str) -> dict[str, Any]:
        with self.db.read() as conn:
            return project_view(self._project(conn, t, ref))

    def projects(self, t: Tenant) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(project).where(project.c.tenant_id == t.id)
                                .order_by(project.c.id)).all()
        return [project_view(r) for r in rows]

    def delete_project(self, t: Tenant, ref: str) -> tuple[int, list[int]]:
        """Delete a project and its tasks (their runs must be stopped first: the ids of
        its tasks are returned so the caller stops them); its id."""
        with self.db.write() as conn:
            row = self._project(conn, t, ref)
            ids = [r.id for r in conn.execute(sa.select(task.c.id).where(
                task.c.project_id == row.id)).all()]
            conn.execute(sa.delete(project).where(project.c.id == row.id))
            return row.id, ids

    def task_ids_of_project(self, t: Tenant, ref: str) -> list[int]:
        with self.db.read() as conn:
            row = self._project(conn, t, ref)
            return [r.id for r in conn.execute(sa.select(task.c.id).where(
                task.c.project_id == row.id)).all()]

    # -- tasks -------------------------------------------------------------------------
    def _task(self, conn: sa.Connection, t: Tenant, project_ref: str, ref: str) -> Any:
        p = self._project(conn, t, project_ref)
        if not _REF.match(ref):
            raise not_found(f"task {ref[:80]!r}")
        m = _TASK_ID.match(ref)
        if m:
            row = conn.execute(sa.select(task).where(
                task.c.project_id == p.id, task.c.id == int(m[1]))).first()
            if row is not None:
                return row, p
        row = conn.execute(sa.select(task).where(
            task.c.project_id == p.id, task.c.name == ref)).first()
        if row is None:
            raise not_found(f"task {ref!r} of project {project_ref!r}")
        return row, p

    def add_task(self, t: Tenant, project_ref: str, name: str, kind: str,
                 schedule: dict[str, Any] | None = None) -> dict[str, Any]:
        now = now_ms()
        with self.db.write() as conn:
            p = self._project(conn, t, project_ref)
            if conn.execute(sa.select(task.c.id).where(
                    task.c.project_id == p.id, task.c.name == name)).first():
                raise APIError(409, f"jobName: task {name!r} exists in project "
                               f"{p.name!r}", field="jobName")
            tid = conn.execute(sa.insert(task).values(
                tenant_id=t.id, project_id=p.id, name=name, kind=kind, status="CREATED",
                args=[], links=[], recurrence_limit=0, fired=0, schedule_paused=False,
                created_ms=now, updated_ms=now, **(schedule or {}))).inserted_primary_key[0]
            return task_view(conn.execute(sa.select(task).where(task.c.id == tid)).one(),
                             p.name)

    def task(self, t: Tenant, project_ref: str, ref: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row, p = self._task(conn, t, project_ref, ref)
            return task_view(row, p.name)

    def task_row(self, t: Tenant, project_ref: str, ref: str) -> Any:
        """The task's row (the runner reads its deploy and schedule)."""
        with self.db.read() as conn:
            return self._task(conn, t, project_ref, ref)[0]

    def row_by_id(self, task_id: int) -> Any:
        with self.db.read() as conn:
            return conn.execute(sa.select(task).where(task.c.id == task_id)).first()

    def tasks(self, t: Tenant, project_ref: str, name: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            p = self._project(conn, t, project_ref)
            q = sa.select(task).where(task.c.project_id == p.id)
            if name is not None:
                q = q.where(task.c.name == name)
            rows = conn.execute(q.order_by(task.c.id)).all()
        return [task_view(r, p.name) for r in rows]

    def update_task(self, task_id: int, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute(sa.update(task).where(task.c.id == task_id).values(
                updated_ms=now_ms(), **values))

    def delete_task(self, t: Tenant, project_ref: str, ref: str) -> int:
        with self.db.write() as conn:
            row, _ = self._task(conn, t, project_ref, ref)
            conn.execute(sa.delete(task).where(task.c.id == row.id))
            return int(row.id)

    def delete_task_by_id(self, task_id: int) -> None:
        with self.db.write() as conn:
            conn.execute(sa.delete(task).where(task.c.id == task_id))

    # -- runs --------------------------------------------------------------------------
    def add_run(self, task_id: int, trigger: str, owner: str, slot_ms: int | None = None,
                with_run: RunHook | None = None) -> int | None:
        """A new queued run of the task: its number; None if the slot already has one
        (another process fired it). ``with_run(conn, number)`` writes what the caller
        records about the run in the same transaction (a workflow step's run number)."""
        with self.db.write() as conn:
            if slot_ms is not None and conn.execute(sa.select(run.c.id).where(
                    run.c.task_id == task_id, run.c.slot_ms == slot_ms)).first():
                return None
            number = (conn.execute(sa.select(sa.func.max(run.c.number)).where(
                run.c.task_id == task_id)).scalar() or 0) + 1
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(run).values(
                        task_id=task_id, number=number, trigger=trigger, slot_ms=slot_ms,
                        state="queued", reason="", owner=owner, queued_ms=now_ms()))
            except sa.exc.IntegrityError:
                return None  # a racing process took the slot (or the number)
            if with_run is not None:
                with_run(conn, number)
            return number

    def update_run(self, task_id: int, number: int, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute(sa.update(run).where(run.c.task_id == task_id,
                                              run.c.number == number).values(**values))

    def end_run(self, task_id: int, number: int, status: str, **values: Any) -> None:
        """Record a run's end and its task's status, in one transaction: ``status``, or
        ``SCHEDULED`` while the task's schedule has a next slot (nothing if the task was
        deleted meanwhile)."""
        with self.db.write() as conn:
            conn.execute(sa.update(run).where(run.c.task_id == task_id,
                                              run.c.number == number).values(**values))
            current = conn.execute(sa.select(task.c.next_fire_ms, task.c.schedule_paused)
                                   .where(task.c.id == task_id)).first()
            if current is None:
                return
            if current.next_fire_ms is not None and not current.schedule_paused:
                status = "SCHEDULED"  # a recurrent task waits for its next slot
            conn.execute(sa.update(task).where(task.c.id == task_id).values(
                status=status, updated_ms=now_ms()))

    def runs(self, task_id: int) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(run).where(run.c.task_id == task_id)
                                .order_by(run.c.number)).all()
        return [run_view(r) for r in rows]

    def run(self, task_id: int, number: int) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(sa.select(run).where(run.c.task_id == task_id,
                                                    run.c.number == number)).first()
        if row is None:
            raise not_found(f"run {number}")
        return run_view(row)

    def request_stop(self, task_id: int, owner_id: str) -> int:
        """Ask for the task's unfinished runs of other processes to be stopped; how
        many there are (their processes see it in :meth:`unstopped_runs`)."""
        with self.db.write() as conn:
            return conn.execute(sa.update(run).where(
                run.c.task_id == task_id, run.c.owner != owner_id,
                run.c.state.in_(("queued", "running", "paused"))).values(
                    stop_requested=True)).rowcount

    def unstopped_runs(self, owner_id: str) -> set[tuple[int, int]]:
        """(task id, number) of the owner's unfinished runs nobody asked to stop."""
        with self.db.read() as conn:
            return {(r.task_id, r.number) for r in conn.execute(
                sa.select(run.c.task_id, run.c.number).where(
                    run.c.owner == owner_id, run.c.stop_requested.is_(False),
                    run.c.state.in_(("queued", "running", "paused"))))}

    def latest_success(self, task_id: int) -> int | None:
        with self.db.read() as conn:
            return conn.execute(sa.select(sa.func.max(run.c.number)).where(
                run.c.task_id == task_id, run.c.state == "succeeded")).scalar()

    # -- owners: the live platform processes running tasks (see .owners) ----------------
    def clock_ms(self, conn: sa.Connection) -> int:
        """Now, for heartbeats: the database's clock on PostgreSQL (processes on several
        hosts compare their heartbeats on one clock), this process's on SQLite."""
        if self.db.dialect == "postgresql":
            return int(conn.execute(sa.text(
                "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"))
                .scalar_one())
        return now_ms()

    def beat(self, owner_id: str, timeout_ms: int, host: str = "", pid: int = 0) -> bool:
        """Renew ``owner_id``'s row: alive for ``timeout_ms`` more. Whether the row was
        there (False: its first beat, or another process took it for gone and removed
        it; the row is made again either way)."""
        with self.db.write() as conn:
            now = self.clock_ms(conn)
            if conn.execute(sa.update(owner).where(owner.c.owner == owner_id).values(
                    beat_ms=now, expires_ms=now + timeout_ms)).rowcount:
                return True
            conn.execute(sa.insert(owner).values(
                owner=owner_id, host=host[:255], pid=pid, started_ms=now, beat_ms=now,
                expires_ms=now + timeout_ms))
            return False

    def owners(self) -> list[Any]:
        """The owner rows (live or lapsed), oldest first."""
        with self.db.read() as conn:
            return list(conn.execute(sa.select(owner).order_by(owner.c.started_ms)).all())

    def sweep(self, me: str | None = None, alone: bool = False) -> int:
        """Mark ``lost`` the unfinished runs of owners that are gone: whose row lapsed
        (removed here) or is missing; how many. ``me``, the sweeping process, is never
        gone to itself (a late heartbeat of its own is no death). ``alone`` (one process
        per database: SQLite): every owner but ``me`` is gone, lapsed or not."""
        with self.db.read() as conn:  # the usual answer, "nothing", without a write lock
            idle = (conn.execute(self._gone_runs(conn, me, alone).limit(1)).first() is None
                    and conn.execute(self._gone_owners(conn, me, alone).limit(1)).first()
                    is None)
        if idle:
            return 0
        with self.db.write() as conn:
            conn.execute(sa.delete(owner).where(owner.c.owner.in_(
                self._gone_owners(conn, me, alone).scalar_subquery())))
            whose = run.c.owner.not_in(sa.select(owner.c.owner))
            if me is not None:
                whose = sa.and_(whose, run.c.owner != me)
            return self._lose(conn, whose, "the platform process running it stopped (no "
                              "heartbeat within its owner timeout)")

    def retire(self, owner_id: str) -> int:
        """A process stopping cleanly: its row goes, and its runs still unfinished (its
        stop cut them short) are ``lost``; how many."""
        with self.db.write() as conn:
            conn.execute(sa.delete(owner).where(owner.c.owner == owner_id))
            return self._lose(conn, run.c.owner == owner_id,
                              "the platform stopped while it ran")

    def _gone_owners(self, conn: sa.Connection, me: str | None,
                     alone: bool) -> sa.Select[Any]:
        q = sa.select(owner.c.owner)
        if me is not None:
            q = q.where(owner.c.owner != me)
        return q if alone else q.where(owner.c.expires_ms < self.clock_ms(conn))

    def _gone_runs(self, conn: sa.Connection, me: str | None, alone: bool) -> sa.Select[Any]:
        live = sa.select(owner.c.owner)
        if alone:
            live = live.where(sa.false())
        else:
            live = live.where(owner.c.expires_ms >= self.clock_ms(conn))
        q = sa.select(run.c.id).where(run.c.state.not_in(ENDED), run.c.owner.not_in(live))
        return q if me is None else q.where(run.c.owner != me)

    def _lose(self, conn: sa.Connection, whose: sa.ColumnElement[bool], reason: str) -> int:
        """Mark the unfinished runs ``whose`` as ``lost``; their tasks say so too, as a
        run ending ``lost`` leaves them: one that showed ``RUNNING`` with no run left
        unfinished is ``FAILED`` (``SCHEDULED`` while its schedule has a next slot)."""
        left = sa.and_(run.c.state.not_in(ENDED), whose)
        ids = [r.task_id for r in conn.execute(
            sa.select(run.c.task_id).where(left).distinct()).all()]
        if not ids:
            return 0
        n = conn.execute(sa.update(run).where(left).values(
            state="lost", ended_ms=now_ms(), reason=reason)).rowcount
        scheduled = sa.and_(task.c.next_fire_ms.is_not(None),
                            task.c.schedule_paused.is_(False))
        other = sa.select(run.c.id).where(run.c.task_id == task.c.id,
                                          run.c.state.not_in(ENDED))
        conn.execute(sa.update(task).where(
            task.c.id.in_(ids), task.c.status == "RUNNING", ~other.exists()).values(
            status=sa.case((scheduled, "SCHEDULED"), else_="FAILED"), updated_ms=now_ms()))
        return int(n)

    def due(self, now: int, limit: int = 100) -> list[Any]:
        """Tasks whose schedule's next slot has come."""
        with self.db.read() as conn:
            return list(conn.execute(sa.select(task).where(
                task.c.next_fire_ms.is_not(None), task.c.next_fire_ms <= now,
                task.c.schedule_paused.is_(False)).order_by(task.c.next_fire_ms)
                .limit(limit)).all())

    def advance(self, task_id: int, slot_ms: int, next_ms: int | None, fired: int) -> bool:
        """Move a task's schedule past ``slot_ms`` (only if it is still at it: another
        process may have moved it); whether this call moved it."""
        with self.db.write() as conn:
            return bool(conn.execute(sa.update(task).where(
                task.c.id == task_id, task.c.next_fire_ms == slot_ms).values(
                next_fire_ms=next_ms, fired=fired, updated_ms=now_ms())).rowcount)
