"""Security probes of a real platform: fuzzing, cross-tenant and cross-user reads and
writes, and hostile connections. Prints what was tried and what broke.

    .venv/bin/python benchmarks/security_probes.py                 # SQLite, all probes
    .venv/bin/python benchmarks/security_probes.py --store postgresql --examples 300
    .venv/bin/python benchmarks/security_probes.py --only fuzz,tenants

- **fuzz**: schemathesis over ``/openapi.json`` (with the request bodies and catalog terms
  of ``tests/fuzz/fuzz_spec.py``), positive and negative cases, ``--examples`` per
  operation and mode; counts cases, 5xx (each distinct one with the server's traceback
  line) and what schemathesis's other checks say.
- **tenants**: tenant B's admin and tenant A's DLS user without a share probe every
  resource of tenant A's user ana by name, URI and search; a leak is a 2xx that shows
  A's marker, or any change to A's data afterwards.
- **connections**: 400 idle, 50 slow-head and 50 slow-body connections on a platform with
  2 s timeouts, then 20 past its ``max_connections`` (500); 16 and 64 MiB heads.

``docs/security.md`` holds the figures of the last run. Exit status 1 if anything broke.
"""

from __future__ import annotations

import argparse
import collections
import re
import select
import socket
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests" / "fuzz")]

from common import pg_schema  # noqa: E402
from fuzz_spec import DLS, SOS, enrich, seed, targets  # noqa: E402

from pyconnector_server.process import ServerProcess  # noqa: E402


def start(tmp: Path, store: str, stack: ExitStack, *extra: str) -> ServerProcess:
    db = stack.enter_context(pg_schema("pycprobe")) if store == "postgresql" else ""
    p = ServerProcess.start(tmp / f"data-{uuid.uuid4().hex[:6]}", db, *extra)
    stack.callback(p.stop)
    return p


# -- fuzzing ------------------------------------------------------------------------------
def fuzz(p: ServerProcess, examples: int) -> dict[str, Any]:
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import FailureGroup

    tenant, user = f"fz{uuid.uuid4().hex[:6]}", "fuzzer"
    api_key = p.new_key(tenant)
    headers = {"x-api-key": api_key, "x-dls-key": p.cli("dlsuser", "create", "--tenant",
                                                        tenant, "--user", user).strip()}
    with httpx.Client(base_url=p.url, headers={"x-api-key": api_key}, timeout=60) as c:
        seed(c, headers["x-dls-key"], targets(tenant, user))
        spec = c.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(enrich(spec, targets(tenant, user)))
    session = requests.Session()
    cases = 0
    errors: dict[tuple[str, int, str], str] = {}
    other: collections.Counter[str] = collections.Counter()
    ops = [r.ok() for r in schema.get_all_operations()]
    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=examples, deadline=None, database=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                nonlocal cases
                cases += 1
                seen = len(p.output)
                r = case.call(base_url=p.url, headers=headers, session=session, timeout=120)
                try:
                    case.validate_response(r, checks=[not_a_server_error])
                except (AssertionError, FailureGroup):
                    time.sleep(0.05)  # the traceback reaches the output a moment later
                    where = _trace_line(p.output[seen:])
                    errors.setdefault((case.operation.label, r.status_code, where),
                                      _input(case))
                try:
                    case.validate_response(r, excluded_checks=[not_a_server_error])
                except (AssertionError, FailureGroup) as exc:
                    for failure in getattr(exc, "exceptions", [exc]):
                        title = getattr(failure, "title", type(failure).__name__)
                        other[f"{case.operation.label}: {title}"] += 1

            try:
                run()
            except Unsatisfiable:  # nothing negative to send (an operation without input)
                pass
    return {"operations": len(ops), "cases": cases, "errors": errors, "other": other}


def _trace_line(lines: list[str]) -> str:
    frames = [ln.strip() for ln in lines if ln.strip().startswith("File ")
              and "/pyconnector_server/" in ln]
    last = [ln.strip() for ln in lines if re.match(r"^\w[\w.]*(Error|Exception)\b", ln.strip())]
    return " | ".join(x for x in (frames[-1] if frames else "", last[-1] if last else "") if x)


def _input(case: Any) -> str:
    parts = [f"{case.method} {case.formatted_path}"]
    for name in ("query", "body"):
        value = getattr(case, name, None)
        if value not in (None, {}, b""):
            parts.append(f"{name}={value!r}"[:300])
    return " ".join(parts)


# -- cross-tenant and cross-user --------------------------------------------------------
def tenants(p: ServerProcess) -> dict[str, Any]:
    mark = f"mk{uuid.uuid4().hex[:10]}"  # in every name and value of tenant A
    ta, tb = f"a{mark}", f"b{mark}"
    a_key, b_key = p.new_key(ta), p.new_key(tb)
    ana = p.cli("dlsuser", "create", "--tenant", ta, "--user", "ana").strip()
    bob = p.cli("dlsuser", "create", "--tenant", ta, "--user", "bob").strip()
    eve = p.cli("dlsuser", "create", "--tenant", tb, "--user", "eve").strip()
    f, s, prop = f"f{mark}", f"s{mark}", f"p{mark}"
    a = httpx.Client(base_url=p.url, headers={"x-api-key": a_key}, timeout=60)
    a.post(f"{SOS}/features", json={"name": f, "description": mark})
    a.post(f"{SOS}/observedProperties", json={"name": prop, "type": "text"})
    a.post(f"{SOS}/sensors", json={"name": s, "feature": f,
                                  "outputs": [{"name": prop, "type": "text"}]})
    a.post(f"{SOS}/observations", json={"observations": [{"sensor": s, "record": [
        {"starttime": 1_700_000_000_000, "output": [{"name": prop, "value": mark}]}]}]})
    r = a.post(f"{DLS}/file", params={"filename": f"{mark}.csv", "directory": "d",
                                      "metadata": f"private@p={mark},note={mark}"},
               content=mark.encode(), headers={"x-dls-key": ana})
    uri = r.json()["uri"]
    r2 = a.post(f"{DLS}/file", params={"filename": f"{mark}2.csv"}, content=mark.encode(),
                headers={"x-dls-key": ana})
    uri2 = r2.json()["uri"]
    a.post(f"{DLS}/relation", json={"source": uri, "target": uri2, "relation": "derived"},
           headers={"x-dls-key": ana})

    def snapshot() -> list[Any]:
        h = {"x-dls-key": ana}
        return [a.get(f"{SOS}/features/{f}").json(), a.get(f"{SOS}/sensors/{s}").json(),
                a.get(f"{SOS}/observedProperties/{prop}").json(),
                a.get(f"{SOS}/observations", params={"sensor": s}).text,
                a.get(f"{DLS}/file", params={"file-uri": uri}, headers=h).content,
                a.get(f"{DLS}/catalog", params={"uri": uri}, headers=h).text,
                a.get(f"{DLS}/relation", params={"file-uri": uri}, headers=h).text,
                a.get(f"{DLS}/share", headers=h).text]

    before = snapshot()
    sos_probes: list[tuple[str, str, dict[str, Any]]] = []
    for kind, name in (("features", f), ("sensors", s), ("observedProperties", prop)):
        sos_probes += [("GET", f"{SOS}/{kind}/{name}", {}),
                       ("PUT", f"{SOS}/{kind}/{name}", {"json": {"description": "x"}}),
                       ("DELETE", f"{SOS}/{kind}/{name}", {})]
    for q in ({"sensor": s}, {"feature": f}, {"property": prop}, {"sensor": s, "format": "csv"},
              {"sensor": s, "latest": "1"}, {"feature": f, "sensor": s}):
        sos_probes.append(("GET", f"{SOS}/observations", {"params": q}))
    sos_probes += [("GET", f"{SOS}/features", {"params": {"parent": f}}),
                   ("GET", f"{SOS}/sensors", {"params": {"feature": f}}),
                   ("GET", f"{SOS}/features", {}), ("GET", f"{SOS}/sensors", {}),
                   ("GET", f"{SOS}/observedProperties", {}), ("GET", f"{SOS}/capabilities", {}),
                   ("GET", f"{SOS}/count", {}),
                   ("DELETE", f"{SOS}/observations", {"params": {"sensor": s}}),
                   ("POST", f"{SOS}/observations", {"json": {"observations": [{
                       "sensor": s, "record": [{"starttime": 1, "output": [
                           {"name": prop, "value": "x"}]}]}]}}),
                   ("POST", f"{SOS}/sensors", {"json": {"name": "x", "feature": f}})]
    dls_probes: list[tuple[str, str, dict[str, Any]]] = []
    for u in (uri, uri2):
        dls_probes += [("GET", f"{DLS}/file", {"params": {"file-uri": u}}),
                       ("GET", f"{DLS}/file", {"params": {"file-uri": u},
                                               "headers": {"range": "bytes=0-3"}}),
                       ("DELETE", f"{DLS}/file", {"params": {"file-uri": u}}),
                       ("PUT", f"{DLS}/file/metadata", {"params": {"file-uri": u},
                                                        "json": {"metadata": {"k": "v"}}}),
                       ("PUT", f"{DLS}/share", {"json": {"file-uri": u, "users": ["bob", "eve"],
                                                          "permissions": "RWD"}}),
                       ("GET", f"{DLS}/relation", {"params": {"file-uri": u}}),
                       ("POST", f"{DLS}/relation", {"json": {"source": u, "target": u,
                                                              "relation": "x"}}),
                       ("POST", f"{DLS}/file", {"params": {"file-uri": u, "mode": "APPEND"},
                                                "content": b"x"}),
                       ("POST", f"{DLS}/file", {"params": {"file-uri": u, "mode": "OVERWRITE"},
                                                "content": b"x"})]
    for q in ({"uri": uri}, {"filename": f"{mark}.csv"}, {"text": mark},
              {"metadata": f"note='{mark}'"}, {"metadata": "p='mk*'"},
              {"metadata": f"private@p='{mark}'"}, {"metadata": "1@p='mk*'"},
              {"metadata": "note='mk*'"}, {"user": "ana"}, {"directory": "d"}):
        dls_probes.append(("GET", f"{DLS}/catalog", {"params": q}))
    for q in ({"user": "ana"}, {"path": "d", "user": "ana"}, {"path": f"{ta}/ana"}):
        dls_probes.append(("GET", f"{DLS}/catalog/explore", {"params": q}))
    dls_probes += [("DELETE", f"{DLS}/share", {"params": {"file-uri": uri, "user": "bob"}}),
                   ("GET", f"{DLS}/share", {})]
    admin_probes = [("POST", f"{DLS}/admin/users/ana/key", {}),
                    ("DELETE", f"{DLS}/admin/users/ana", {}), ("GET", f"{DLS}/admin/users", {}),
                    ("GET", f"{DLS}/admin/storage", {})]
    callers = [("tenant B admin", {"x-api-key": b_key, "x-dls-key": eve}, True),
               ("tenant B key + A's DLS key", {"x-api-key": b_key, "x-dls-key": ana}, True),
               ("user bob of A (no share)", {"x-api-key": a_key, "x-dls-key": bob}, False)]
    probes = leaks = 0
    found: list[str] = []
    for who, h, other_tenant in callers:
        plan = dls_probes + (sos_probes + admin_probes if other_tenant else [])
        for method, path, kw in plan:
            kw = dict(kw)
            r = httpx.request(method, p.url + path, headers={**h, **kw.pop("headers", {})},
                              timeout=60, **kw)
            probes += 1
            if _succeeded(r) and mark in r.text:
                leaks += 1
                found.append(f"{who}: {method} {path} {kw} -> {r.status_code} {r.text[:120]}")
            if r.status_code >= 500:
                found.append(f"{who}: {method} {path} {kw} -> {r.status_code}")
    changed = [i for i, (x, y) in enumerate(zip(before, snapshot())) if x != y]
    return {"probes": probes, "leaks": leaks + len(changed), "found": found,
            "changed": changed}


def _succeeded(r: httpx.Response) -> bool:
    """2xx, and for SOS writes (HTTP 200, the status in the body) a 2xx ``code`` too: a
    404 that names what the caller asked for is no leak."""
    if r.status_code >= 300:
        return False
    try:
        code = r.json().get("code", 200)
    except (ValueError, AttributeError):
        return True
    return not isinstance(code, int) or code < 300


# -- connections ---------------------------------------------------------------------------
def connections(p: ServerProcess, timeout: float, limit: int) -> dict[str, Any]:
    url = urlparse(p.url)

    def conn() -> socket.socket:
        return socket.create_connection((url.hostname, url.port), timeout=10)

    head = f"POST /api/sos/v2.0/features HTTP/1.1\r\nHost: x\r\nx-api-key: {p.api_key}\r\n"
    idle = [conn() for _ in range(400)]
    slow_head = [conn() for _ in range(50)]
    for s in slow_head:
        s.sendall(head.encode())
    slow_body = [conn() for _ in range(50)]
    for s in slow_body:
        s.sendall((head + "Content-Length: 100\r\n\r\n[").encode())
    time.sleep(0.5)
    extra = [conn() for _ in range(20)]
    refused = 0
    for s in extra:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        refused += s.recv(100).startswith(b"HTTP/1.1 503")
    time.sleep(timeout + 3)
    still_open = {name: sum(_is_open(s) for s in group) for name, group in
                  (("idle", idle), ("slow head", slow_head), ("slow body", slow_body))}
    huge = {}
    for mib in (16, 64):
        s = conn()
        data = memoryview(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * (mib << 20) + b"\r\n\r\n")
        s.setblocking(False)
        while data and not select.select([s], [], [], 0)[0]:
            if select.select([], [s], [], 5)[1]:
                data = data[s.send(data[:1 << 20]):]
        s.settimeout(10)
        huge[f"{mib} MiB head"] = s.recv(100).split(b"\r\n")[0].decode()
    for s in idle + slow_head + slow_body + extra:
        s.close()
    ok = httpx.get(p.url + "/health").status_code == 200
    return {"still open": still_open, "past the limit": f"{refused} of 20 got 503",
            "huge": huge, "serves afterwards": ok}


def _is_open(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        while True:
            if not s.recv(65536):
                return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--examples", type=int, default=200,
                    help="fuzz cases per operation and mode (positive, negative)")
    ap.add_argument("--only", default="fuzz,tenants,connections")
    args = ap.parse_args()
    only = set(args.only.split(","))
    broke = False
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pycprobe-")))
        p = start(tmp, args.store, stack)
        print(f"platform on {args.store} at {p.url}", flush=True)
        if "fuzz" in only:
            t = time.monotonic()
            res = fuzz(p, args.examples)
            print(f"\nfuzz: {res['cases']} cases over {res['operations']} operations in "
                  f"{time.monotonic() - t:.0f} s; {len(res['errors'])} distinct 5xx")
            for (op, status, where), example in sorted(res["errors"].items()):
                print(f"  {status} {op}: {where or '(no traceback)'}\n      e.g. {example}")
            print("  other schemathesis checks (cases failing them, operations):")
            by_check: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
            for name, n in res["other"].items():
                by_check[name.split(": ", 1)[1]][0] += n
                by_check[name.split(": ", 1)[1]][1] += 1
            for title, (n, ops) in sorted(by_check.items(), key=lambda x: -x[1][0]):
                print(f"    {n:6d} cases, {ops:2d} operations: {title}")
            broke |= bool(res["errors"])
        if "tenants" in only:
            res = tenants(p)
            print(f"\ncross-tenant and cross-user: {res['probes']} probes, {res['leaks']} leaks"
                  f"{'; changed: ' + str(res['changed']) if res['changed'] else ''}")
            for line in res["found"]:
                print("  " + line)
            broke |= bool(res["leaks"] or res["found"])
        if "connections" in only:
            c = start(tmp, args.store, stack, "--header-timeout-seconds", "2",
                      "--body-timeout-seconds", "2", "--keep-alive-seconds", "2",
                      "--max-connections", "500")
            res = connections(c, 2, 500)
            print(f"\nconnections: {res}")
            broke |= (any(res["still open"].values()) or not res["serves afterwards"]
                      or not res["past the limit"].startswith("20 "))
    return 1 if broke else 0


if __name__ == "__main__":
    sys.exit(main())
