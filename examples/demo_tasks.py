"""The Task Service part of `make demo`: a Python job deployed with an input zip of
readings, run now, its log and output read back; then a delayed task that runs on its
own a few seconds later; then the project deleted (examples/demo.py calls :func:`run`)."""

from __future__ import annotations

import csv
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyconnector

IST = timezone(timedelta(hours=5, minutes=30))

# The job runs on the platform, in a directory of its own: its inputs are in input/, and
# what it writes there becomes the run's outputs. Only the standard library: a platform
# run by root runs Python tasks with the system's python3.
JOB = '''\
"""Per-sensor summary of input/readings.csv, written to summary.csv."""
import csv
import sys

threshold = float(sys.argv[1])
sensors = {}
with open("input/readings.csv", newline="") as fh:
    for row in csv.DictReader(fh):
        sensors.setdefault(row["sensor"], []).append(float(row["temperature"]))
with open("summary.csv", "w", newline="") as fh:
    out = csv.writer(fh)
    out.writerow(["sensor", "readings", "mean", "max", f"over_{threshold:g}"])
    for sensor, values in sorted(sensors.items()):
        over = sum(v > threshold for v in values)
        out.writerow([sensor, len(values), f"{sum(values) / len(values):.2f}",
                      f"{max(values):.2f}", over])
        print(f"{sensor}: {len(values)} readings, mean {sum(values) / len(values):.2f}, "
              f"{over} over {threshold:g}")
'''


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def make_inputs(workdir: Path) -> Path:
    """A zip holding readings.csv: 48 half-hourly temperatures of two sensors."""
    workdir.mkdir(parents=True, exist_ok=True)
    readings = workdir / "readings.csv"
    with open(readings, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "sensor", "temperature"])
        for i in range(48):
            t = f"2024-05-01T{i // 2:02d}:{30 * (i % 2):02d}:00Z"
            w.writerow([t, "room1-climate", f"{20 + (i % 12) * 0.5:.1f}"])
            w.writerow([t, "room2-climate", f"{18 + (i % 8) * 0.25:.2f}"])
    archive = workdir / "inputs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(readings, "readings.csv")
    return archive


def wait_for_first_run(task: pyconnector.tasks.Task, timeout: float = 60) -> dict:
    """The task's first run once it has ended (a delayed task has none until its time)."""
    deadline = time.monotonic() + timeout
    while not task.getRuns():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{task.jobId} did not run within {timeout:g} s")
        time.sleep(0.2)
    return task.waitForRun(timeout=timeout)


def run(conn: pyconnector.connectors, workdir: Path, out: Path) -> None:
    """``workdir``: where the job and its input zip are made; ``out``: where the output
    is downloaded."""
    step("Tasks: deploy a Python job with an input zip of readings, and run it")
    inputs = make_inputs(workdir)
    job = workdir / "summarise.py"
    job.write_text(JOB)
    task = conn.Task(projectName="demo-tasks", jobName="summarise")
    deployed = task.deployTask(job, runTime="py", args=["24"], input_dir_path=inputs)
    print(f"{task.jobId} {task.jobName!r} in {task.projectId}: {deployed['status']}, "
          f"runtime {deployed['runTime']}, args {deployed['args']}")
    print(task.startTask()["message"])
    finished = task.waitForRun(timeout=60)
    print(f"run {finished['run']}: {finished['state']}, exit code {finished['exitCode']}")

    step("The run's log and its output file")
    print(task.getLog(), end="")
    print("outputs:", ", ".join(f"{o['name']} ({o['size']} bytes)" for o in task.getOutputs()))
    out.mkdir(exist_ok=True)
    summary = task.downloadOutput("summary.csv", out / "summary.csv")
    print(f"{summary}:")
    print(summary.read_text(), end="")

    step("A delayed task, 3 seconds ahead (IST), that runs on its own")
    at = (datetime.now(IST) + timedelta(seconds=3)).strftime("%d-%m-%Y %H:%M:%S")
    delayed = conn.DelayedTask(delayedTime=at, timeZone="IST", projectId=task.projectId,
                               jobName="summarise-later")
    scheduled = delayed.deployTask(job, runTime="py", args=["21"], input_dir_path=inputs)
    print(f"{delayed.jobId}: {scheduled['status']}, delayedTime {at} IST")
    ran = wait_for_first_run(delayed)
    print(f"delayed run {ran['run']}: trigger {ran['trigger']}, {ran['state']}")
    print(delayed.getLog(), end="")

    step("Delete the project: its tasks, runs and outputs go with it")
    print(task.deleteProject()["message"])
