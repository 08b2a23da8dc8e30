"""Group commit keeps acknowledged inserts durable: a real ``pyconnector serve`` process
killed (SIGKILL) while several clients insert keeps every record it acknowledged; only
unanswered requests may be lost. On SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import httpx
from conftest import wait_for

from pyconnector_server.process import ServerProcess

SOS = "/api/sos/v2.0"
CLIENTS = 4
BATCH = 20


def _body(client: int, n: int) -> dict[str, Any]:
    base = (client * 1_000_000 + n * BATCH) * 1000
    return {"observations": [{"sensor": f"s{client}", "record": [
        {"starttime": base + i * 1000, "output": [{"name": "v", "value": float(i)}]}]}
        for i in range(BATCH)]}


def test_acknowledged_inserts_survive_a_kill_during_concurrent_inserts(
        tmp_path: Path, own_db_url: str) -> None:
    platform = ServerProcess.start(tmp_path / "data", own_db_url)
    key = platform.api_key
    acked: list[list[int]] = [[] for _ in range(CLIENTS)]  # batches answered 201, per client
    failures: list[str] = []
    try:
        with httpx.Client(base_url=platform.url, headers={"x-api-key": key}) as c:
            assert c.post(f"{SOS}/features", json={"name": "f"}).json()["code"] == 201
            for k in range(CLIENTS):
                r = c.post(f"{SOS}/sensors", json={"name": f"s{k}", "feature": "f",
                                                   "outputs": [{"name": "v"}]})
                assert r.json()["code"] == 201

        def insert(k: int) -> None:
            with httpx.Client(base_url=platform.url, headers={"x-api-key": key},
                              timeout=30) as c:
                n = 0
                while True:
                    try:
                        r = c.post(f"{SOS}/observations", json=_body(k, n))
                    except httpx.TransportError:
                        return  # the server is gone: this batch was never acknowledged
                    if r.status_code != 200 or r.json()["code"] != 201:
                        failures.append(r.text[:200])
                        return
                    acked[k].append(n)
                    n += 1

        threads = [threading.Thread(target=insert, args=(k,)) for k in range(CLIENTS)]
        for th in threads:
            th.start()
        wait_for("every client to have batches acknowledged",
                 lambda: all(len(a) >= 5 for a in acked) or bool(failures), timeout=120)
        platform.stop(signal.SIGKILL)
        for th in threads:
            th.join(60)
        assert not failures, failures
    finally:
        platform.stop(signal.SIGKILL)
    assert platform.proc.returncode == -signal.SIGKILL

    with ServerProcess.start(tmp_path / "data", own_db_url) as again, \
            httpx.Client(base_url=again.url, headers={"x-api-key": key}, timeout=60) as c:
        for k in range(CLIENTS):
            r = c.get(f"{SOS}/observations", params={
                "sensor": f"s{k}", "timeFormat": "epoch", "limit": "10000"})
            assert r.status_code == 200, r.text
            times = {rec["starttime"] for o in r.json()["observations"] for rec in o["record"]}
            want = {(k * 1_000_000 + n * BATCH + i) * 1000 for n in acked[k]
                    for i in range(BATCH)}
            assert len(times) < 10_000  # one page holds them all
            assert want <= times, (k, len(want - times))
            assert len(want) >= 5 * BATCH
