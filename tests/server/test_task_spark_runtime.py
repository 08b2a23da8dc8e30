"""The ``spark`` runtime's needs, without running Spark: where its installation is, what
its runs get in their environment and limits, and how a platform without spark-submit
or Java refuses it. (tests/e2e/test_task_spark.py runs a real PySpark job.)"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pyconnector_server.backends.executor import Limits
from pyconnector_server.errors import APIError
from pyconnector_server.tasks import runtimes
from pyconnector_server.tasks.runtimes import RUNTIMES, check, environment, limits, spark_home


@pytest.fixture(autouse=True)
def _no_platform_spark_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests say which SPARK_HOME and SPARK_CONF_DIR the platform has."""
    monkeypatch.delenv("SPARK_HOME", raising=False)
    monkeypatch.delenv("SPARK_CONF_DIR", raising=False)


def _distribution(root: Path) -> Path:
    """A Spark distribution's layout: bin/spark-submit beside jars/."""
    (root / "bin").mkdir(parents=True)
    (root / "jars").mkdir()
    submit = root / "bin" / "spark-submit"
    submit.write_text("#!/bin/sh\n")
    submit.chmod(0o755)
    return submit


def test_spark_needs_spark_submit_and_java() -> None:
    assert RUNTIMES["spark"].programs == ("spark-submit", "java")


def test_without_spark_submit_the_deploy_is_refused_with_the_install_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing installed…
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # …nor beside it
    with pytest.raises(APIError) as caught:
        check("spark", "job.py")
    assert (caught.value.status, caught.value.field) == (400, "runTime")
    assert caught.value.message == (
        "runTime: runtime 'spark' needs spark-submit, which is not installed on this "
        "platform (pip install 'pyconnector-platform[spark]')")


def test_without_java_the_deploy_is_refused_naming_java(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _distribution(tmp_path / "spark")
    monkeypatch.setenv("PATH", str(tmp_path / "spark" / "bin"))  # spark-submit, no java
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(APIError) as caught:
        check("spark", "job.py")
    assert (caught.value.status, caught.value.field) == (400, "runTime")
    assert caught.value.message == (
        "runTime: runtime 'spark' needs java, which is not installed on this platform "
        "(Spark needs Java 17 or later)")


def test_with_both_a_spark_deploy_is_taken(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _distribution(tmp_path / "spark")
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n")
    java.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "spark" / "bin"),
                                                str(java.parent)]))
    assert check("spark", "job.py").name == "spark"
    assert check("spark", "job.jar").name == "spark"


def test_spark_home_is_the_platforms_when_set(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    submit = _distribution(tmp_path / "dist")
    monkeypatch.setenv("SPARK_HOME", str(tmp_path / "elsewhere"))
    assert spark_home(str(submit)) == str(tmp_path / "elsewhere")


def test_spark_home_is_the_distribution_around_spark_submit_through_links(
        tmp_path: Path) -> None:
    submit = _distribution(tmp_path / "opt" / "spark-4")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "spark-submit").symlink_to(submit)  # as in /usr/local/bin
    assert spark_home(str(tmp_path / "bin" / "spark-submit")) == str(tmp_path / "opt" / "spark-4")


def test_spark_home_of_a_pip_install_is_the_pyspark_package(tmp_path: Path) -> None:
    """The spark-submit pip puts in the environment's bin has no jars/ around it."""
    pyspark = pytest.importorskip("pyspark")
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "spark-submit").write_text("#!/bin/sh\n")
    home = spark_home(str(tmp_path / "venv" / "bin" / "spark-submit"))
    assert home == str(Path(pyspark.__file__).parent)
    assert (Path(home) / "jars").is_dir() and (Path(home) / "bin" / "spark-class").is_file()


def test_a_run_is_told_where_spark_is_and_keeps_its_files_and_ports_to_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    submit = _distribution(tmp_path / "spark")
    monkeypatch.setattr(runtimes, "find_program",
                        lambda name: str(submit) if name == "spark-submit" else f"/x/{name}")
    env = environment("spark", Limits(memory_bytes=1024 << 20))
    assert env["SPARK_HOME"] == str(tmp_path / "spark")
    assert env["SPARK_DRIVER_MEMORY"] == "512m"  # the run's memory limit less 512 MiB
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1"
    opts = env["SPARK_SUBMIT_OPTS"].split()
    assert "-Djava.io.tmpdir=.tmp" in opts and "-Dspark.ui.enabled=false" in opts
    assert "-XX:-UsePerfData" in opts and env["SPARK_LAUNCHER_OPTS"] == "-XX:-UsePerfData"
    assert "SPARK_CONF_DIR" not in env and "PYSPARK_PYTHON" not in env
    heap = {mb: environment("spark", Limits(memory_bytes=mb << 20))["SPARK_DRIVER_MEMORY"]
            for mb in (4096, 1536, 256)}
    assert heap == {4096: "3584m", 1536: "1024m", 256: "512m"}  # Spark needs 450 MiB
    monkeypatch.setenv("SPARK_CONF_DIR", "/etc/spark")
    assert environment("spark", Limits())["SPARK_CONF_DIR"] == "/etc/spark"


@pytest.mark.parametrize("rt", ["py", "js", "java", "c", "cpp"])
def test_the_other_runtimes_add_nothing(rt: str) -> None:
    assert environment(rt, Limits()) == {}
    platform = Limits(open_files=100)
    assert limits(rt, platform) is platform


def test_a_spark_run_gets_the_open_files_its_jvm_needs() -> None:
    """Spark's JVM opens every jar of its installation (~300): 256 are too few."""
    platform = Limits(cpu_seconds=7, memory_bytes=2 << 30, open_files=256)
    got = limits("spark", platform)
    assert got.open_files == 4096
    assert (got.cpu_seconds, got.memory_bytes) == (7, 2 << 30)  # the rest as they were
    assert limits("spark", Limits(open_files=10_000)).open_files == 10_000
