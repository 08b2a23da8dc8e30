"""Database work is bounded in time and stops when its request is cancelled, on both stores."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pyconnector_server import cancel
from pyconnector_server.db import Database
from pyconnector_server.errors import database_error
from pyconnector_server.settings import Settings

# Minutes of work on either store, unless something stops it.
SLOW = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
              "WHERE x < 5000000000) SELECT count(*) FROM c",
    "postgresql": "SELECT pg_sleep(120)",
}


@pytest.fixture
def make_db(db_url: str, tmp_path: Path) -> Any:
    made: list[Database] = []

    def factory(timeout: float) -> Database:
        url = Settings.load({"data_dir": str(tmp_path), "db": db_url}, environ={}).database_url
        db = Database(url, timeout)
        db.migrate()
        made.append(db)
        return db

    yield factory
    for db in made:
        db.close()


def test_a_read_longer_than_the_statement_timeout_is_cut(make_db: Any) -> None:
    db = make_db(0.5)
    began = time.monotonic()
    with pytest.raises(sa.exc.OperationalError) as info, db.read() as conn:
        conn.exec_driver_sql(SLOW[db.dialect]).all()
    assert time.monotonic() - began < 10
    answer = database_error(info.value)
    assert answer is not None and answer.status == 503
    assert "statement timeout" in answer.message
    with db.read() as conn:  # the pooled connection is usable again
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1


def test_bulk_writes_are_not_bounded_by_the_statement_timeout(make_db: Any) -> None:
    db = make_db(0.2)
    short = {"sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                       "WHERE x < 3000000) SELECT count(*) FROM c",
             "postgresql": "SELECT pg_sleep(0.6)"}
    with db.write(bulk=True) as conn:
        conn.exec_driver_sql(short[db.dialect]).all()


def test_cancelling_the_request_stops_its_statement(make_db: Any) -> None:
    db = make_db(0)  # no timeout: only the cancellation can stop it
    c = cancel.Cancellation()
    outcome: list[BaseException] = []

    def work() -> None:
        token = cancel.current.set(c)
        try:
            with db.read() as conn:
                conn.exec_driver_sql(SLOW[db.dialect]).all()
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcome.append(exc)
        finally:
            cancel.current.reset(token)

    thread = threading.Thread(target=work)
    began = time.monotonic()
    thread.start()
    time.sleep(0.5)
    c.cancel()
    thread.join(30)
    assert not thread.is_alive()
    assert time.monotonic() - began < 10
    assert outcome and isinstance(outcome[0], sa.exc.OperationalError)
    with pytest.raises(cancel.Cancelled):  # nothing new starts once cancelled
        with c.watch(lambda: None):
            pass


def test_the_middleware_cancels_when_the_client_disconnects(make_db: Any) -> None:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    db = make_db(0)
    finished: list[str] = []

    def slow() -> None:
        try:
            with db.read() as conn:
                conn.exec_driver_sql(SLOW[db.dialect]).all()
            finished.append("completed")
        except sa.exc.OperationalError:
            finished.append("cancelled")

    async def endpoint(_request: Any) -> PlainTextResponse:
        await run_in_threadpool(slow)
        return PlainTextResponse("done")

    app = cancel.CancelOnDisconnect(Starlette(routes=[Route("/slow", endpoint)]))

    async def drive() -> float:
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.sleep(0.5)  # the client hangs up while the query runs
            return {"type": "http.disconnect"}

        async def send(_message: dict[str, Any]) -> None:
            pass

        scope = {"type": "http", "method": "GET", "path": "/slow", "headers": [],
                 "query_string": b"", "http_version": "1.1", "scheme": "http",
                 "server": ("t", 80), "client": ("t", 1), "root_path": ""}
        began = time.monotonic()
        await app(scope, receive, send)
        return time.monotonic() - began

    took = asyncio.run(drive())
    assert finished == ["cancelled"]
    assert took < 10
