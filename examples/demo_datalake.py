"""The data lake part of the demo: upload a CSV with metadata, search it, link it to a
summary, read it back as a DataFrame.

``run(conn, workdir)`` takes a ``pyconnector.connectors`` object whose config has a DLS
key (``dls_key``). To try it alone against a running platform::

    pyconnector dlsuser create --data-dir ./pyconnector-data --tenant default --user demo
    python examples/demo_datalake.py URL API_KEY DLS_KEY
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pyconnector

FLIGHTS = [("AI101", "BOM", "DEL", 12), ("6E202", "DEL", "BLR", -3),
           ("UK303", "BLR", "PNQ", 45), ("AI404", "PNQ", "BOM", 7)]


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run(conn: pyconnector.connectors, workdir: Path) -> None:
    """Upload, search, link and read back, printing each step."""
    dls = conn.Datalake()
    workdir.mkdir(parents=True, exist_ok=True)

    step("Data lake: upload a CSV with metadata (directory 'demo', savepoint 'run1')")
    flights = workdir / "flights.csv"
    flights.write_text("flight,origin,dest,delay_min\n" + "".join(
        f"{f},{o},{d},{m}\n" for f, o, d, m in FLIGHTS))
    answer = dls.uploadFile(flights, directory="demo", savepoint="run1",
                            metadata={"site": "pune", "rows": len(FLIGHTS),
                                      "private@note": "first try"},
                            comment="sample flight delays", mode="OVERWRITE")
    uri = answer["uri"]
    print(f"{answer['message']}: {uri} ({answer['size-bytes']} bytes)")

    step("Data lake: search the catalog for site='pune' & rows>=3")
    print(dls.searchFile(metadata="site='pune' & rows>=3", responseType="table"))

    step("Data lake: upload a summary and link it to the CSV ('summarises')")
    delays = [m for *_, m in FLIGHTS]
    summary = workdir / "summary.json"
    summary.write_text(json.dumps([{"flights": len(delays),
                                    "mean_delay_min": sum(delays) / len(delays)}]))
    summary_uri = dls.uploadFile(summary, directory="demo", mode="OVERWRITE")["uri"]
    if not any(r["relation"] == "summarises" for r in dls.getRelation(fileUri=summary_uri)):
        dls.createRelation(summary_uri, uri, "summarises")
    print(dls.getRelation(fileUri=uri, responseType="table"))

    step("Data lake: read the CSV back as a DataFrame")
    frame = dls.getFile(fileUri=[uri], responseType="dataframe")
    print(frame)
    print(f"mean delay {frame['delay_min'].mean():.1f} min; summary says "
          f"{dls.getFile(summary_uri, responseType='dataframe')['mean_delay_min'].iloc[0]:.1f}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    url, api_key, dls_key = sys.argv[1:]
    with pyconnector.connectors(api_key=api_key, URL=url, dls_key=dls_key) as c, \
            tempfile.TemporaryDirectory() as tmp:
        run(c, Path(tmp))
