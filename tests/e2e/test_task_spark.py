"""The ``spark`` runtime end to end: a PySpark word count deployed with the connector to a
real ``pyconnector serve`` process, its input from the deploy's input zip, run by
spark-submit on a local master (as the unprivileged task account when the platform is
root), its counts taken as the run's output.

Needs Java and pyspark (the ``spark`` extra): skipped by hand without them, a failure
under CI."""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Server, start_server, unavailable

import pyconnector
from pyconnector_server.process import ServerProcess
from pyconnector_server.tasks import runtimes

pytestmark = pytest.mark.e2e

WORDCOUNT = '''\
"""Counts the words of the file named by its argument: counts.csv, and a line on stdout."""
import sys
from operator import add

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("wordcount").getOrCreate()
lines = spark.sparkContext.textFile(sys.argv[1])
# lambdas: the words are counted by Python workers, not only in the JVM
counts = (lines.flatMap(lambda line: line.lower().split())
          .map(lambda word: (word, 1))
          .reduceByKey(add)
          .collect())
counts.sort(key=lambda wc: (-wc[1], wc[0]))
with open("counts.csv", "w") as fh:
    fh.write("word,count\\n")
    for word, n in counts:
        fh.write(f"{word},{n}\\n")
total = spark.range(1, 101).selectExpr("sum(id) AS s").first().s
print(f"{spark.sparkContext.master}: {sum(n for _, n in counts)} words, {len(counts)} distinct; sum 1..100 = {total}")
spark.stop()
'''

TEXT = "the quick brown fox\njumps over the lazy dog\nThe dog sleeps\n"
COUNTS = ("word,count\nthe,3\ndog,2\nbrown,1\nfox,1\njumps,1\nlazy,1\nover,1\nquick,1\n"
          "sleeps,1\n")


@pytest.fixture(scope="module")
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A platform of its own, with the default task memory limit (1024 MiB: a small
    Spark job needs about 600 MiB, see docs/tasks.md)."""
    for program, where in runtimes.RUNTIMES["spark"].toolchain().items():
        if where is None:
            unavailable(f"{program} is not installed (the spark runtime needs it: "
                        "pip install 'pyconnector-platform[spark]' and Java 17)")
    if runtimes.spark_home(runtimes.RUNTIMES["spark"].tools()["spark-submit"]) is None:
        unavailable("no Spark installation (SPARK_HOME, or the pyspark package's jars)")
    server = start_server(tmp_path_factory.mktemp("spark") / "data")
    yield server
    server.stop()


def test_a_pyspark_word_count_runs_and_its_counts_are_its_output(spark_server: Server,
                                                                tmp_path: Path) -> None:
    (tmp_path / "wordcount.py").write_text(WORDCOUNT)
    with zipfile.ZipFile(tmp_path / "inputs.zip", "w") as z:
        z.writestr("words.txt", TEXT)
    with spark_server.connector() as conn:
        task = conn.Task(projectName="spark", jobName="wordcount")
        deployed = task.deployTask(filename=tmp_path / "wordcount.py", runTime="spark",
                                   args=["input/words.txt"],
                                   input_dir_path=tmp_path / "inputs.zip")
        assert (deployed["runTime"], deployed["status"]) == ("spark", "DEPLOYED")
        began = time.monotonic()
        task.startTask()
        run = task.waitForRun(timeout=300)
        took = time.monotonic() - began
        stderr = task.getLog(stream="stderr")
        assert (run["state"], run["exitCode"]) == ("succeeded", 0), (run, stderr[-3000:])
        assert task.getStatus()["status"] == "COMPLETED"
        assert task.getLog() == "local[2]: 12 words, 9 distinct; sum 1..100 = 5050\n"
        # Spark's own log: the driver on loopback, block files in the run's .tmp/, no UI
        assert "Starting executor ID driver on host localhost" in stderr, stderr[-3000:]
        assert "/.tmp/blockmgr-" in stderr, stderr[-3000:]
        assert "SparkUI" not in stderr
        assert "Successfully stopped SparkContext" in stderr
        # nothing of Spark's (block files, warehouse, .crc) is taken for an output
        assert task.getOutputs() == [{"name": "counts.csv", "size": len(COUNTS)}]
        got = task.downloadOutput("counts.csv", tmp_path / "counts.csv").read_text()
    assert got == COUNTS
    print(f"\nspark word count: start to COMPLETED in {took:.1f} s")


def test_a_failing_spark_job_fails_with_its_error_in_the_log(spark_server: Server,
                                                            tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "spark.read.text('input/missing.txt').count()\n")
    with spark_server.connector() as conn:
        task = conn.Task(projectName="spark", jobName="broken")
        task.deployTask(filename=tmp_path / "broken.py", runTime="spark")
        task.startTask()
        run = task.waitForRun(timeout=300)
        assert run["state"] == "failed" and run["exitCode"] not in (0, None), run
        assert "missing.txt" in task.getLog(stream="stderr")
        assert task.getStatus()["status"] == "FAILED"


def test_a_platform_without_java_refuses_a_spark_deploy_naming_java(tmp_path: Path) -> None:
    """Started with nothing on its PATH, the platform still finds the spark-submit beside
    its interpreter, but no Java: the deploy is a 400 naming java, nothing deployed."""
    if runtimes.find_program("spark-submit") is None:
        unavailable("spark-submit is not installed: pip install 'pyconnector-platform[spark]'")
    (tmp_path / "bin").mkdir()
    (tmp_path / "job.py").write_text("print('never runs')\n")
    p = ServerProcess.start(tmp_path / "data", env={"PATH": str(tmp_path / "bin")})
    server = Server(p.proc, p.url, p.api_key, p.data_dir, p.db, p.output)
    try:
        with server.connector() as conn:
            task = conn.Task(projectName="spark", jobName="nojava")
            with pytest.raises(pyconnector.BadRequestError) as caught:
                task.deployTask(filename=tmp_path / "job.py", runTime="spark")
            assert caught.value.field == "runTime"
            assert "runtime 'spark' needs java, which is not installed" in str(caught.value)
            assert "Java 17" in str(caught.value)
            assert task.getStatus()["status"] == "CREATED"  # nothing deployed
    finally:
        server.stop()
