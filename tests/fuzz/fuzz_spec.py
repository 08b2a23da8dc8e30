"""What the fuzzer needs beyond the platform's published OpenAPI document.

The document describes every request body with its limits (lengths, patterns, enums), so
a fuzzer given only it would send mostly well-formed bodies. :func:`enrich` swaps in loose
JSON Schemas for them (types, not limits: the limits are what is being tested) and for
the catalog's search terms (read from the raw query), and steers names and file URIs
partly towards things that exist, so updates and deletes reach the store. :func:`seed`
makes those things on a platform. Shared by ``tests/fuzz/test_fuzz.py`` and
``benchmarks/security_probes.py``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

SOS, DLS, MR, TS = "/api/sos/v2.0", "/api/dls", "/MessageRouting/v2.0", "/TaskService/v1.0"
WF = "/WorkflowService/v1.0"
#: the seeded task's program: it makes the output the runs, outputs and links reach
TASK_CODE = b"open('out.txt', 'w').write('42')\nprint('seeded')\n"
#: the seeded failing task's program: the failed instance recover() re-runs
FAIL_CODE = b"import sys; print('seeded failure'); sys.exit(3)\n"


@dataclass
class Seeded:
    """Names and URIs that exist on the platform under test."""

    features: list[str] = field(default_factory=list)
    sensors: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    uris: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)  # Message Routing
    queues: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # RuleIDs, as the path writes them
    # Task Service: the first project and task are the ones every operation reaches (the
    # first task deployed, ran once and made outputs[0]); the last of each is there for
    # the deletes, so the others outlive them.
    projects: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    # Workflow Service: task ids on a fresh platform (tj1, tj2, tj-gone, then tj-fail);
    # processes[0] (tasks[0] → tasks[1]) with a succeeded, then a prepared instance;
    # processes[1] (tasks[0] → tj-fail) with a failed one, recovery mode on; the last
    # process and instance are there for the deletes.
    task_ids: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)  # succeeded, failed, prepared, gone


def targets(tenant: str, user: str) -> Seeded:
    """What :func:`seed` makes for DLS user ``user`` of ``tenant`` (known in advance, so
    the schema can be built when the tests are collected)."""
    return Seeded(features=["f1", "f2"], sensors=["s1", "s2"], properties=["temp", "note"],
                  users=[user], uris=[f"{tenant}/{user}/a.csv", f"{tenant}/{user}/dir/b.txt"],
                  # A fresh platform's first rule is RuleID 1 (seed records the real one).
                  exchanges=["ex1", "ex2"], queues=["q1"], rules=["1"],
                  projects=["tp1", "tp-gone"], tasks=["tj1", "tj2", "tj-gone"],
                  outputs=["out.txt"], task_ids=["T1", "T2", "T3", "T4"],
                  processes=["wp1", "wp2", "wp-gone"], versions=["v1"],
                  instances=["I1", "I2", "I3", "I4"])


def seed(client: httpx.Client, dls_key: str, s: Seeded) -> None:
    """Make the features, sensors, properties, observations and Data Lake files of ``s``.

    ``client`` sends the tenant's API key; ``dls_key`` is the key of DLS user ``s.users[0]``."""

    def ok(r: httpx.Response) -> None:
        assert r.status_code < 300 and r.json().get("code", 200) < 300, r.text

    ok(client.post(f"{SOS}/features", json=[{"name": "f1"}, {"name": "f2", "parent": "f1"}]))
    ok(client.post(f"{SOS}/observedProperties", json=[
        {"name": "temp", "type": "quantity", "unit": "C"}, {"name": "note", "type": "text"}]))
    for name, feature in (("s1", "f1"), ("s2", "f2")):
        ok(client.post(f"{SOS}/sensors", json={
            "name": name, "feature": feature,
            "outputs": [{"name": "temp", "type": "quantity"}, {"name": "note", "type": "text"}]}))
    ok(client.post(f"{SOS}/observations", json={"observations": [{
        "sensor": "s1", "record": [{"starttime": 1_700_000_000_000 + i,
                                    "output": [{"name": "temp", "value": i}]}
                                   for i in range(5)]}]}))
    for uri in s.uris:
        directory, _, filename = uri.split("/", 2)[2].rpartition("/")
        r = client.post(f"{DLS}/file", content=b"x,y\n1,2\n", headers={"x-dls-key": dls_key},
                        params={"filename": filename, "directory": directory or None,
                                "metadata": "site=pune"})
        assert r.status_code == 201 and r.json()["uri"] == uri, r.text
    _seed_routing(client, s, ok)
    _seed_tasks(client, s, ok)
    _seed_workflows(client, s, ok)


def _seed_tasks(client: httpx.Client, s: Seeded, ok: Any) -> None:
    """Project tp1 holding tj1 (deployed, ran once: run 1 made out.txt), tj2 (recurrent,
    deployed, scheduled for a slot far off, linked to tj1's out.txt) and tj-gone; and an
    empty project tp-gone. The deletes aim at the last two."""
    p1, p_gone = s.projects
    j1, j2, j_gone = s.tasks
    ok(client.post(f"{TS}/projects", json={"projectName": p1}))
    ok(client.post(f"{TS}/projects", json={"projectName": p_gone}))
    for name, kind in ((j1, "task"), (j2, "recurrent"), (j_gone, "task")):
        ok(client.post(f"{TS}/projects/{p1}/tasks", json={"jobName": name, "type": kind}))
    for name in (j1, j2):
        ok(client.post(f"{TS}/projects/{p1}/tasks/{name}/deploy",
                       files={"file": ("main.py", TASK_CODE)},
                       data={"runTime": "py", "args": '["a"]'}))
    task = f"{TS}/projects/{p1}/tasks/{j1}"
    ok(client.post(f"{task}/start"))
    deadline = time.monotonic() + 60
    while (run := client.get(f"{task}/runs/1").json())["state"] != "succeeded":
        assert run["state"] in ("queued", "running") and time.monotonic() < deadline, run
        time.sleep(0.1)
    assert [o["name"] for o in client.get(f"{task}/runs/1/outputs").json()] == s.outputs
    ok(client.put(f"{TS}/projects/{p1}/tasks/{j2}/schedule",
                  json={"cronPatternType": "fixed", "hour": "4", "day": "6"}))
    ok(client.put(f"{TS}/projects/{p1}/tasks/{j2}/links", json={
        "externalProjectIds": [p1], "externalTaskIds": [j1], "fileNames": s.outputs}))


def _seed_workflows(client: httpx.Client, s: Seeded, ok: Any) -> None:
    """Task tj-fail (deployed, fails); definitions wp1 (tj1 → tj2, scheduled for a slot
    far off), wp2 (tj1 → tj-fail, recovery mode on) and wp-gone; instances I1 of wp1
    (succeeded: a history), I2 of wp2 (failed), I3 and I4 of wp1 (prepared; I4 for the
    deletes, so deleting wp-gone does not take it). Their ids are a fresh platform's: the seed checks them."""
    p1 = s.projects[0]
    fail = client.post(f"{TS}/projects/{p1}/tasks", json={"jobName": "tj-fail"})
    ok(fail)
    ok(client.post(f"{TS}/projects/{p1}/tasks/tj-fail/deploy",
                   files={"file": ("main.py", FAIL_CODE)}, data={"runTime": "py"}))
    ids = [client.get(f"{TS}/projects/{p1}/tasks/{j}").json()["jobId"]
           for j in [*s.tasks, "tj-fail"]]
    assert ids == s.task_ids, ids
    (wp1, wp2, gone), version = s.processes, s.versions[0]
    t1, t2, _t_gone, t_fail = s.task_ids
    for name, up, down in ((wp1, t1, t2), (wp2, t1, t_fail), (gone, t1, t2)):
        ok(client.post(f"{WF}/definitions", json={
            "processName": name, "processVersion": version,
            "links": [{"source": "start", "destination": up},
                      {"source": up, "destination": down}]}))
    ok(client.put(f"{WF}/definitions/{wp2}/{version}/recovery", json={"recoveryMode": True}))
    made = []
    for name in (wp1, wp2, wp1, wp1):
        r = client.post(f"{WF}/definitions/{name}/{version}/instances")
        ok(r)
        made.append(r.json()["instanceId"])
    assert made == s.instances, made
    for iid, state in zip(s.instances[:2], ("SUCCEEDED", "FAILED"), strict=True):
        ok(client.post(f"{WF}/instances/{iid}/initiate"))
        deadline = time.monotonic() + 60
        while (inst := client.get(f"{WF}/instances/{iid}").json())["state"] != state:
            assert inst["state"] == "RUNNING" and time.monotonic() < deadline, inst
            time.sleep(0.1)
    ok(client.put(f"{WF}/definitions/{wp1}/{version}/schedule",
                  json={"cronPatternType": "fixed", "hour": "4", "day": "6"}))


def _seed_routing(client: httpx.Client, s: Seeded, ok: Any) -> None:
    """Exchanges ex1 (topic) and ex2 (fanout), queue q1 bound to ex1's "a.#" holding a
    message, and a started rule from the tenant's direct exchange to ex1 with a filter
    (its RuleID goes into ``s.rules``)."""
    ex1, ex2 = s.exchanges
    ok(client.post(f"{MR}/topicExchanges", json={"exchangeName": ex1, "type": "topic"}))
    ok(client.post(f"{MR}/topicExchanges", json={"exchangeName": ex2, "type": "fanout"}))
    ok(client.post(f"{MR}/queues", json={"name": s.queues[0], "maxLength": 1000}))
    ok(client.post(f"{MR}/queues/{s.queues[0]}/bindings", json={"exchange": ex1,
                                                                  "topic": "a.#"}))
    ok(client.post(f"{MR}/publish", json={"exchange": ex1, "topic": "a.b",
                                          "message": {"seeded": True}}))
    key = client.get(f"{MR}/routingKey").json()["routingKey"]
    r = client.post(f"{MR}/routingRules", json={
        "RuleName": "seeded", "RuleDescription": "fuzz seed",
        "input": {"type": "Direct", "DirectExchange": "Direct.Exchange", "RoutingKey": key},
        "params": [{"name": "sensorID", "value": "s*"}],
        "output": {"TopicExchange": ex1, "Topic": "a.rule"}})
    ok(r)
    s.rules[:] = [str(r.json()["RuleID"])]  # other tenants' rules came first on a used one
    ok(client.post(f"{MR}/routingChannel/{s.rules[0]}/start"))


def _or_existing(existing: list[str], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A value that is one of ``existing`` or anything ``schema`` allows (a string)."""
    other = schema or {"type": "string"}
    return {"anyOf": [{"enum": existing}, other]} if existing else other


def _bodies(s: Seeded) -> dict[tuple[str, str], dict[str, Any]]:
    name = _or_existing(s.features + s.sensors + s.properties)
    feature = {"type": "object", "properties": {
        "name": name, "description": {"type": "string"}, "parent": name,
        "metadata": {"type": "object"},
        "location": {"type": "object", "properties": {"lat": {"type": "number"},
                                                      "lon": {"type": "number"}}}}}
    prop = {"type": "object", "properties": {
        "name": name, "type": {"enum": ["quantity", "count", "text"]},
        "unit": {"type": "string"}, "description": {"type": "string"}}}
    sensor = {"type": "object", "properties": {
        "name": name, "feature": name, "type": {"enum": ["atomic", "composite"]},
        "members": {"type": "array", "items": name}, "outputs": {"type": "array", "items": prop},
        "description": {"type": "string"}, "metadata": {"type": "object"}}}
    value: dict[str, Any] = {}  # any JSON value
    observations = {"type": "object", "properties": {"observations": {
        "type": "array", "items": {"type": "object", "properties": {
            "sensor": name, "feature": name, "record": {"type": "array", "items": {
                "type": "object", "properties": {
                    "starttime": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    "endtime": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    "output": {"type": "array", "items": {"type": "object", "properties": {
                        "name": name, "value": value}}}}}}}}}}}
    uri = _or_existing(s.uris)
    strings = {"type": "array", "items": {"type": "string"}}
    relation = {"type": "object", "properties": {"source": uri, "target": uri,
                                                 "relation": {"type": "string"}}}

    def one_or_many(item: dict[str, Any]) -> dict[str, Any]:
        return {"anyOf": [item, {"type": "array", "items": item}]}

    exchange = _or_existing(s.exchanges + ["Direct.Exchange", "amq.topic"])
    queue_name = _or_existing(s.queues)
    topic = {"anyOf": [{"enum": ["a.b", "a.#", "*.b", "#", ""]}, {"type": "string"}]}
    target = {"exchange": exchange, "topic": topic, "routingKey": topic, "queue": queue_name}
    rule_input = {"type": "object", "properties": {
        "type": {"anyOf": [{"enum": ["Direct", "Topic", "Queue", "direct"]},
                           {"type": "string"}]},
        "DirectExchange": exchange, "RoutingKey": topic, "TopicExchange": exchange,
        "Topic": topic, "MQName": queue_name}}
    condition = {"type": "object", "properties": {
        "name": name, "type": {"type": "string"}, "operator": {"type": "string"},
        "value": {"anyOf": [{"type": "string"}, {"type": "number"}]}}}
    param = {"type": "object", "properties": {
        "name": {"anyOf": [{"enum": ["feature", "sensorID", "time", "ObservedProperties",
                                     "meta-data", "parameter", "quality", "expression",
                                     "position"]}, {"type": "string"}]},
        "value": {"anyOf": [name, {"type": "array", "items": {"anyOf": [name, condition]}},
                            {"type": "object", "properties": {
                                "starttime": {"type": "string"},
                                "endtime": {"type": "string"}}}, value]}}}
    rule = {"type": "object", "properties": {
        "RuleName": {"type": "string"}, "RuleDescription": {"type": "string"},
        "parallelismFactor": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "input": rule_input, "params": {"type": "array", "items": param},
        "output": {"type": "object", "properties": {"TopicExchange": exchange,
                                                    "Topic": topic}}}}

    return {**_task_bodies(s), **_workflow_bodies(s), **{
        ("post", f"{SOS}/features"): one_or_many({**feature, "required": ["name"]}),
        ("put", f"{SOS}/features/{{name}}"): feature,
        ("post", f"{SOS}/sensors"): one_or_many({**sensor, "required": ["name", "feature"]}),
        ("put", f"{SOS}/sensors/{{name}}"): sensor,
        ("post", f"{SOS}/observedProperties"): one_or_many({**prop, "required": ["name"]}),
        ("put", f"{SOS}/observedProperties/{{name}}"): prop,
        ("post", f"{SOS}/observations"): observations,
        ("put", f"{DLS}/file/metadata"): {"type": "object", "properties": {
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "remove": strings, "comment": {"type": "string"}}},
        ("put", f"{DLS}/share"): {"type": "object", "properties": {
            "permissions": {"type": "string"}, "users": strings, "file-uri": uri,
            "directory": {"type": "string"}}},
        ("post", f"{DLS}/relation"): one_or_many(relation),
        ("post", f"{DLS}/admin/users"): {"type": "object", "properties": {
            "user": {"type": "string"}}},
        ("post", f"{MR}/topicExchanges"): {"type": "object", "properties": {
            "exchangeName": exchange, "type": {"anyOf": [
                {"enum": ["topic", "direct", "fanout"]}, {"type": "string"}]}}},
        ("post", f"{MR}/queues"): {"type": "object", "properties": {
            "name": queue_name, "maxLength": {"type": ["integer", "null"]}}},
        ("post", f"{MR}/queues/{{queue}}/bindings"): {"type": "object", "properties": {
            "exchange": exchange, "topic": topic}},
        ("post", f"{MR}/publish"): {"type": "object", "properties": {
            **target, "message": value}},
        ("post", f"{MR}/routingRules"): {**rule, "required": ["RuleName", "input", "output"]},
        ("put", f"{MR}/routingRules/{{rule_id}}"): rule,
    }}


def _task_bodies(s: Seeded) -> dict[tuple[str, str], dict[str, Any]]:
    """Loose bodies for the Task Service, with an example each that works on the seeded
    objects (the explicit phase sends it), and the deploy's form without its enums."""
    project, task = _or_existing(s.projects), _or_existing(s.tasks)
    words = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    run = f"{TS}/projects/{{project}}/tasks/{{job}}"
    schedule = {"type": "object", "properties": {
        "delayedTime": {"anyOf": [{"enum": ["15-07-2030 12:35:56.789 IST", "2030-01-01"]},
                                  words]},
        "timeZone": _or_existing(["IST", "UTC", "Asia/Kolkata", "+05:30"]),
        "cronPatternType": _or_existing(["fixed", "interval", "cron", "Fixed"]),
        "minute": words, "hour": words, "day": words, "month": words, "weekday": words,
        "cron": _or_existing(["*/5 * * * *", "0 4 6 * *"]), "recurrenceLimit": words}}
    binary = {"type": "string", "format": "binary"}
    deploy = {"type": "object", "properties": {
        "file": binary, "runTime": _or_existing(["py", "js", "c", "java"]),
        "args": _or_existing(['["a", "b"]', "[]"]),
        "overwrite": _or_existing(["true", "false"]), "dependencies": binary,
        "inputs": binary}}
    return {
        ("post", f"{TS}/projects"): _example({"type": "object", "properties": {
            "projectName": project}}, {"projectName": "tp-new"}),
        ("post", f"{TS}/projects/{{project}}/tasks"): _example({
            "type": "object", "properties": {
                "jobName": task, "type": _or_existing(["task", "delayed", "recurrent"])}},
            {"jobName": "tj-new", "type": "recurrent"}),
        ("put", f"{run}/schedule"): _example(schedule, {"cronPatternType": "interval",
                                                        "minute": "30"}),
        ("post", f"{run}/copy"): _example({"type": "object", "properties": {
            "projectId": project, "jobName": task}}, {"jobName": "tj-copy"}),
        ("put", f"{run}/links"): _example({"type": "object", "properties": {
            "externalProjectIds": {"type": "array", "items": project},
            "externalTaskIds": {"type": "array", "items": task},
            "fileNames": {"type": "array", "items": _or_existing(s.outputs)}}}, {
                "externalProjectIds": [], "externalTaskIds": s.tasks[:1],
                "fileNames": s.outputs}),
        ("post", f"{run}/deploy"): {**deploy, "media": "multipart/form-data"},
    }


def _workflow_bodies(s: Seeded) -> dict[tuple[str, str], dict[str, Any]]:
    """Loose Workflow Service bodies, each with an example that works on the seeds."""
    node = _or_existing([*s.task_ids, "start", "end"])
    definition = f"{WF}/definitions/{{name}}/{{version}}"
    schedule = _task_bodies(s)[("put", f"{TS}/projects/{{project}}/tasks/{{job}}/schedule")]
    return {
        ("post", f"{WF}/definitions"): _example({"type": "object", "properties": {
            "processName": _or_existing(s.processes),
            "processVersion": _or_existing(s.versions),
            "links": {"type": "array", "items": {"type": "object", "properties": {
                "source": node, "destination": node}}}}}, {
                "processName": "wp-new", "processVersion": "v1", "links": [
                    {"source": s.task_ids[0], "destination": s.task_ids[1]},
                    {"source": s.task_ids[1], "destination": "end"}]}),
        ("put", f"{definition}/recovery"): _example({"type": "object", "properties": {
            "recoveryMode": {}}}, {"recoveryMode": True}),
        ("put", f"{definition}/schedule"): {**schedule, "example": {
            "cronPatternType": "fixed", "hour": "5", "day": "7"}},
    }


def _example(schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "example": example}


CATALOG_PARAMS = ("text", "time", "size", "metadata", "uri", "filename", "directory",
                  "savepoint", "user", "ownFile", "sort", "order", "pageNo", "pageSize")


def enrich(spec: dict[str, Any], s: Seeded) -> dict[str, Any]:
    """``spec`` with request bodies, the catalog's search parameters, and names and URIs
    steered partly towards ``s``."""
    spec = copy.deepcopy(spec)
    paths = spec["paths"]
    for (method, path), schema in _bodies(s).items():
        media = schema.pop("media", "application/json")
        example = schema.pop("example", None)
        content: dict[str, Any] = {"schema": schema}
        if example is not None:
            content["example"] = example
        paths[path][method]["requestBody"] = {"required": True, "content": {media: content}}
    paths[f"{DLS}/catalog"]["get"]["parameters"] = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
        for n in CATALOG_PARAMS]
    names = s.features + s.sensors + s.properties + s.users
    # Message Routing's names, in the path and in the stream's query.
    routing = {"exchangeName": s.exchanges, "exchange": s.exchanges, "queue": s.queues}
    for ops in paths.values():
        for op in ops.values():
            for p in op.get("parameters", []):
                if p["in"] == "path" and p["name"] == "name":
                    p["schema"] = _or_existing(names, p.get("schema"))
                elif p["name"] in ("file-uri", "source", "target"):
                    p["schema"] = _or_existing(s.uris, p.get("schema"))
                elif p["name"] in routing:
                    p["schema"] = _or_existing(routing[p["name"]], p.get("schema"))
                elif p["in"] == "path" and p["name"] == "rule_id":
                    p["schema"] = {"anyOf": [{"enum": [int(r) for r in s.rules]},
                                             p.get("schema", {"type": "integer"})]}
    _steer_tasks(paths, s)
    _steer_workflows(paths, s)
    return spec


def _steer_tasks(paths: dict[str, Any], s: Seeded) -> None:
    """Task Service paths: projects, tasks, runs and outputs partly the seeded ones, with
    an example of each (the first project and task, run 1, its output). Deletes aim at
    the objects seeded for them, so every other operation still finds tp1 and tj1."""
    examples = {"project": s.projects[0], "job": s.tasks[0], "number": 1,
                "path": s.outputs[0]}
    for path, ops in paths.items():
        if not path.startswith(TS):
            continue
        for method, op in ops.items():
            gone = method == "delete"
            targets = {"project": [s.projects[-1] if gone and path.endswith("{project}")
                                   else s.projects[0]],
                       "job": [s.tasks[-1]] if gone else s.tasks[:2],
                       "number": [1], "path": s.outputs}
            for p in op.get("parameters", []):
                if p["in"] != "path" or p["name"] not in targets:
                    continue
                p["schema"] = {"anyOf": [{"enum": targets[p["name"]]},
                                         p.get("schema", {"type": "string"})]}
                p["example"] = targets[p["name"]][0] if gone else examples[p["name"]]


def _steer_workflows(paths: dict[str, Any], s: Seeded) -> None:
    """Workflow Service paths: definitions and instances partly the seeded ones, with an
    example each that reaches deep (recover: the failed instance; initiate: the prepared
    one; the rest: the succeeded one). Deletes of a definition or an instance aim at
    the ones seeded for them."""
    done, failed, prepared, gone_instance = s.instances
    for path, ops in paths.items():
        if not path.startswith(WF):
            continue
        for method, op in ops.items():
            gone = method == "delete" and path.endswith(("}/{version}", "{instance}"))
            last = path.rsplit("/", 1)[-1]
            instance = gone_instance if gone else {"recover": failed, "initiate": prepared,
                                                   "abort": prepared}.get(last, done)
            name = s.processes[-1] if gone else (
                s.processes[1] if last == "recovery" else s.processes[0])
            targets = {"name": (name, [name] if gone else s.processes[:2]),
                       "version": (s.versions[0], s.versions),
                       "instance": (instance, [gone_instance] if gone else s.instances[:3])}
            for p in op.get("parameters", []):
                if p["in"] != "path" or p["name"] not in targets:
                    continue
                example, existing = targets[p["name"]]
                schema = p.get("schema", {"type": "string"})
                if "anyOf" in schema:  # steered already (a path's name: SOS names)
                    schema = schema["anyOf"][-1]
                p["schema"] = {"anyOf": [{"enum": existing}, schema]}
                p["example"] = example
