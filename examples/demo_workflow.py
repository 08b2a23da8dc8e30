"""The Workflow Service part of `make demo`: a pipeline with a parallel branch, run
through the connector (examples/demo.py calls :func:`run`).

    split ─┬─> stats room1 ─┬─> report
           └─> stats room2 ─┘

``split`` cuts the readings of the task demo's input zip into one file per room; the two
``stats`` steps (one program, its room an argument) run side by side, each on the file
``split`` made for it (a file link); ``report`` runs once both have succeeded, on their
two summaries. The instance's history is shown as a table.
"""

from __future__ import annotations

from pathlib import Path

import demo_tasks  # examples/demo_tasks.py: its input zip of readings

import pyconnector
from pyconnector.times import parse_time

# Only the standard library: a platform run by root runs Python tasks with the system's
# python3. Inputs are in input/ (the zip's files, and the files linked from upstream).
SPLIT = '''\
"""input/readings.csv → room1.csv, room2.csv (one file per room)."""
import csv
rooms = {}
with open("input/readings.csv", newline="") as fh:
    for row in csv.DictReader(fh):
        rooms.setdefault(row["sensor"].split("-")[0], []).append(row)
for room, rows in sorted(rooms.items()):
    with open(f"{room}.csv", "w", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    print(f"split: {len(rows)} readings of {room}")
'''
STATS = '''\
"""input/<room>.csv → <room>.txt: the room's mean and highest temperature."""
import csv, sys
room = sys.argv[1]
with open(f"input/{room}.csv", newline="") as fh:
    values = [float(r["temperature"]) for r in csv.DictReader(fh)]
line = f"{room} mean {sum(values) / len(values):.2f} max {max(values):.2f}"
open(f"{room}.txt", "w").write(line + "\\n")
print(f"stats: {line}")
'''
REPORT = '''\
"""input/room1.txt and input/room2.txt → report.txt: the warmer room."""
rooms = [open(f"input/{room}.txt").read().split() for room in ("room1", "room2")]
warmest = max(rooms, key=lambda r: float(r[2]))
text = "".join(f"{r[0]}: mean {r[2]}, max {r[4]}\\n" for r in rooms)
text += f"warmer on average: {warmest[0]}\\n"
open("report.txt", "w").write(text)
print(text, end="")
'''


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run(conn: pyconnector.connectors, workdir: Path) -> None:
    """``workdir``: where the programs and the input zip are made."""
    step("Workflow: four tasks, a parallel branch (split → stats room1 + stats room2 → "
         "report)")
    inputs = demo_tasks.make_inputs(workdir)
    programs = {}
    for name, code in (("split", SPLIT), ("stats", STATS), ("report", REPORT)):
        programs[name] = workdir / f"{name}.py"
        programs[name].write_text(code)
    split = conn.Task(projectName="demo-workflow", jobName="split")
    split.deployTask(programs["split"], runTime="py", input_dir_path=inputs)
    stats = {}
    for room in ("room1", "room2"):
        stats[room] = conn.Task(projectId=split.projectId, jobName=f"stats-{room}")
        stats[room].deployTask(programs["stats"], runTime="py", args=[room])
        stats[room].externalFileLinking(externalProjectIds=[split.projectId],
                                        externalTaskIds=[split.jobId],
                                        fileNames=[f"{room}.csv"])
    report = conn.Task(projectId=split.projectId, jobName="report")
    report.deployTask(programs["report"], runTime="py")
    report.externalFileLinking(externalProjectIds=[split.projectId],
                               externalTaskIds=[stats["room1"].jobId, stats["room2"].jobId],
                               fileNames=["room1.txt", "room2.txt"])
    names = {t.jobId: t.jobName for t in (split, *stats.values(), report)}
    print("tasks:", ", ".join(f"{job} {name}" for job, name in names.items()))
    wf = conn.Workflow(taskList=[(split, stats["room1"]), (split, stats["room2"]),
                                 (stats["room1"], report), (stats["room2"], report)],
                       processName="room-report", processVersion="v1")
    print(f"definition {wf.processName!r} version {wf.processVersion!r}: "
          + " ".join(f"({names[link['source']]} → {names[link['destination']]})"
                     for link in wf.definition["links"]))

    step("Prepare an instance (a copy of each task, linked like the originals) and run it")
    proc = wf.preInitiate()
    copies = {m["copiedTaskId"]: names[m["baseTaskId"]]
              for m in proc.getMapping()["taskIds"]}
    print(f"instance {proc.instanceId}: copies "
          + ", ".join(f"{copy} of {name}" for copy, name in copies.items()))
    print(proc.initiate()["message"])
    done = proc.waitForEnd(timeout=120)
    print(f"instance {proc.instanceId}: {done['state']}, "
          + ", ".join(f"{copies[s['copiedTaskId']]} {s['state']}" for s in done["tasks"]))

    step("The instance's history, as a table")
    print(proc.getHistory(responseType="table"))
    history = proc.getHistory()
    when = {copies[h["copiedTaskId"]]: (parse_time(h["startedOn"]), parse_time(h["endedOn"]))
            for h in history}
    branch = [when["stats-room1"], when["stats-room2"]]
    print(f"{len(history)} runs, one per task; the stats steps started after split ended: "
          f"{all(s >= when['split'][1] for s, _ in branch)}; report started after both "
          f"ended: {when['report'][0] >= max(e for _, e in branch)}")

    step("The report (the last step's output)")
    last = conn.Task(projectId=split.projectId, jobId=next(
        copy for copy, name in copies.items() if name == "report"))
    print(last.getLog(), end="")

    step("Delete the definition (with its instance and copies) and the project")
    print(wf.delete()["message"])
    print(split.deleteProject()["message"])
