"""The connector's types reach its users: a type checker knows what each call returns.

One mypy run (strict, the project's configuration) over a snippet that uses the connector
as a user would; ``assert_type`` fails the run when a return type is not the promised one.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import pyconnector
from pyconnector.datalake import Datalake
from pyconnector.sos import SensorObservation
from pyconnector.workflow import Workflow, WorkflowProcess

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = '''\
from pathlib import Path
from typing import Any

import pandas as pd
from typing_extensions import assert_type

import pyconnector
from pyconnector.datalake import Datalake
from pyconnector.sos import SensorObservation
from pyconnector.workflow import Workflow, WorkflowProcess

with pyconnector.connectors(api_key="k", URL="http://127.0.0.1:8000") as conn:
    sos = conn.SensorObservation()
    assert_type(sos, SensorObservation)
    assert_type(sos.getObservation(sensor="s", responseType="dataframe"), pd.DataFrame)
    assert_type(sos.getObservation(sensor="s"), dict[str, Any])
    assert_type(sos.getObservation(sensor="s", responseType="table"), str)
    assert_type(sos.getObservation(sensor="s", responseType="csv"), str)
    assert_type(sos.getSensors(), list[dict[str, Any]])
    assert_type(sos.getFeatures(None, "dataframe"), pd.DataFrame)
    assert_type(sos.getCount("json"), dict[str, Any])
    assert_type(sos.createFeature("hall"), dict[str, Any])
    assert_type(sos.downloadObservation("out.csv", sensor="s"), Path)

    dls = conn.Datalake()
    assert_type(dls, Datalake)
    assert_type(dls.getFile("t/u/a.csv", "dataframe"), pd.DataFrame)
    assert_type(dls.getFile("t/u/a.csv"), list[dict[str, Any]])
    assert_type(dls.getFile("t/u/a.csv", "bytes"), bytes)
    assert_type(dls.getFile("t/u/a.csv", "file"), Path)
    assert_type(dls.getFile(["t/u/a.csv", "t/u/b.csv"], "file"), list[Path])
    # The same shape for the same input: a list (even of one URI) gives a list.
    assert_type(dls.getFile(["t/u/a.csv"], "bytes"), list[bytes])
    assert_type(dls.getFile(["t/u/a.csv"], "file"), list[Path])
    assert_type(dls.downloadFile("t/u/a.csv", "downloads/"), Path)
    assert_type(dls.searchFile(text="x", responseType="table"), str)
    assert_type(dls.searchFile(responseType="table", columns="all"), str)
    assert_type(dls.exploreDirectory(responseType="dataframe", columns=["name"]), pd.DataFrame)

    wf = conn.Workflow(taskList=[("T1", "T2")], processName="p", processVersion="v1")
    assert_type(wf, Workflow)
    proc = wf.preInitiate()
    assert_type(proc, WorkflowProcess)
    assert_type(proc.status(), dict[str, Any])
    assert_type(proc.status("table"), str)
    assert_type(proc.getHistory("dataframe"), pd.DataFrame)
    assert_type(wf.getInstances(), list[dict[str, Any]])

    try:
        sos.getCount()
    except pyconnector.NotFoundError as exc:
        assert_type(exc.status, int)
        assert_type(exc.field, str | None)
    except pyconnector.RateLimitError as exc:
        assert_type(exc.url, str | None)

    sos.getObservation(sensor="s", responseType="datafame")  # a typo: refused
'''


def test_a_type_checker_knows_what_each_response_type_returns(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET, encoding="utf-8")
    # The project's configuration (strict) and cache: a warm run takes a few seconds.
    out, err, status = api.run([
        "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(ROOT / ".mypy_cache"), str(snippet)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    typo_line = SNIPPET.splitlines().index(
        '    sos.getObservation(sensor="s", responseType="datafame")  # a typo: refused') + 1
    assert len(errors) == 1, out + err
    assert re.match(rf".*snippet\.py:{typo_line}: error: No overload variant", errors[0]), out
    assert status == 1


@pytest.mark.parametrize("cls", [pyconnector.connectors, SensorObservation, Datalake,
                                 Workflow, WorkflowProcess])
def test_every_public_method_says_what_it_does_and_returns(cls: type) -> None:
    for name, member in vars(cls).items():
        func = getattr(member, "__func__", member)
        if name.startswith("_") or not inspect.isfunction(func):
            continue
        assert (func.__doc__ or "").strip(), f"{cls.__name__}.{name} has no docstring"
        assert func.__annotations__.get("return") not in (None, "Any"), \
            f"{cls.__name__}.{name} does not say what it returns"
