"""The project builds and installs under its distribution name, ``pyconnector-platform``.

``pyconnector`` on the package index is an unrelated project, so the distribution has its
own name while the import names (``pyconnector``, ``pyconnector_server``) and the
``pyconnector`` command stay. The test builds an sdist and a wheel with ``python -m build``
(``--no-isolation``: offline, with the backend the ``dev`` extra installs), looks inside
both, then installs the wheel into a fresh virtualenv and runs what a user runs first.

The fresh venv gets the wheel alone (``--no-deps``); the project's dependencies come from
the test venv's site-packages through a ``.pth`` line, which adds that directory to
``sys.path`` after the venv's own (without running its ``.pth`` files, so the editable
install of this checkout stays out). The packages and the command therefore come from the
wheel only. About 5 s on two cores.
"""

from __future__ import annotations

import email
import email.message
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # `build`, in the dev extra, brings tomli on 3.10
    import tomli as tomllib

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pyconnector", "pyconnector_server")
# What the build reads: the packages, the project table and the readme it embeds.
SOURCES = ("pyproject.toml", "README.md", *PACKAGES)
MAKO = "pyconnector_server/migrations/script.py.mako"  # package data Alembic needs


def _project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _dist_file(name: str) -> str:
    """A distribution name as it appears in artifact file names (PEP 427/625)."""
    return name.replace("-", "_").replace(".", "_").lower()


def _module_files() -> set[str]:
    """Every module and the package data of the checkout, as paths inside an archive."""
    found = {MAKO}
    for package in PACKAGES:
        found |= {p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py")
                  if "__pycache__" not in p.parts}
    return found


def _metadata(text: str) -> email.message.Message:
    return email.message_from_string(text)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel and the sdist, built from a copy of the checkout.

    A copy, because setuptools writes ``build/`` and ``*.egg-info`` beside the sources,
    and other runs may share this working tree.
    """
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                    str(src)], check=True, capture_output=True, timeout=180)
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return wheels[0], sdists[0]


def test_the_distribution_name_is_not_the_index_s_pyconnector() -> None:
    project = _project()
    assert project["name"] == "pyconnector-platform"
    dev = project["optional-dependencies"]["dev"]  # type: ignore[index]
    assert "pyconnector-platform[server,demo,s3,amqp,celery,spark]" in dev
    assert not [d for d in dev if d.split("[")[0].strip() == "pyconnector"]
    assert project["scripts"] == {"pyconnector": "pyconnector_server.cli:main"}


def test_install_lines_name_the_distribution() -> None:
    """Every install line in README.md and docs/ names pyconnector-platform, never the
    unrelated ``pyconnector`` of the package index."""
    lines = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            if "pip install" in line or "pyconnector[" in line:
                lines.append((f"{doc.name}:{n}", line))
    assert any("'pyconnector-platform[server]'" in line for _, line in lines)
    wrong = [(where, line) for where, line in lines
             if "pyconnector[" in line.replace("pyconnector-platform[", "")]
    assert wrong == []


def test_the_wheel_carries_the_name_both_packages_and_the_command(
        built: tuple[Path, Path]) -> None:
    wheel, _ = built
    version = str(_project()["version"])
    assert wheel.name == f"pyconnector_platform-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = f"{_dist_file('pyconnector-platform')}-{version}.dist-info"
        meta = _metadata(zf.read(f"{info}/METADATA").decode())
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    assert _module_files() - names == set()
    assert (meta["Name"], meta["Version"]) == ("pyconnector-platform", version)
    # The dev extra's self-reference must not pull the index's unrelated pyconnector.
    requires = meta.get_all("Requires-Dist") or []
    assert not [r for r in requires if r.split("[")[0].split(";")[0].strip() == "pyconnector"]
    assert any(r.startswith("pyconnector-platform[") for r in requires)
    assert "pyconnector = pyconnector_server.cli:main" in entry_points


def test_the_sdist_carries_the_name_and_both_packages(built: tuple[Path, Path]) -> None:
    _, sdist = built
    version = str(_project()["version"])
    top = f"pyconnector_platform-{version}"
    assert sdist.name == f"{top}.tar.gz"
    with tarfile.open(sdist) as tf:
        names = {n.removeprefix(f"{top}/") for n in tf.getnames()}
        pkg_info = tf.extractfile(f"{top}/PKG-INFO")
        assert pkg_info is not None
        meta = _metadata(pkg_info.read().decode())
    assert _module_files() - names == set()
    assert {"pyproject.toml", "README.md"} <= names
    assert (meta["Name"], meta["Version"]) == ("pyconnector-platform", version)


def test_the_wheel_installs_into_a_fresh_venv_and_runs(built: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    wheel, _ = built
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=120)
    # The dependencies, from the test venv: a plain path line, appended after the fresh
    # venv's own site-packages (so the wheel's packages win).
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYCONNECTOR_")}
    env.pop("PYTHONPATH", None)

    cli = venv / "bin" / "pyconnector"
    assert cli.is_file(), "the wheel installs no `pyconnector` command"
    help_ = subprocess.run([str(cli), "serve", "--help"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0, help_.stderr
    assert "--data-dir" in help_.stdout

    # cwd is not the checkout, so the imports can only come from the installed wheel.
    code = ("import importlib.metadata as m, pyconnector, pyconnector_server\n"
            "import pyconnector_server.app, pyconnector_server.migrations\n"
            "print(pyconnector.__file__); print(pyconnector_server.__file__)\n"
            "print(pyconnector.__version__, m.version('pyconnector-platform'))\n")
    run = subprocess.run([str(python), "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    client_file, server_file, versions = run.stdout.splitlines()
    assert Path(client_file).is_relative_to(site) and Path(server_file).is_relative_to(site)
    version = str(_project()["version"])
    assert versions.split() == [version, version]  # __version__ follows the distribution
    assert (Path(server_file).parent / "migrations" / "script.py.mako").is_file()
