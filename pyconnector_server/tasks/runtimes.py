"""The runtimes a task is written for: which files each accepts, the programs it needs,
how its file is compiled, and the command line that runs it.

``py`` runs on the platform's own Python (so a task can import pyconnector and pandas),
``js`` on Node.js, ``java`` on a JDK (a ``.java`` file compiled with javac, or a ``.jar``),
``c`` and ``cpp`` compiled with gcc and g++, ``spark`` through spark-submit on a local
master. A runtime whose programs are not installed is refused when the task is created or
deployed (a 400 naming the program), not when it first runs.

A runtime may also need variables in its run's (scrubbed) environment and more of a limit
than the platform's default (:func:`environment`, :func:`limits`): Spark is told where it
is installed, and its JVM opens every jar it has.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import os
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ..backends.executor import Limits
from ..errors import APIError, bad_request

#: how many lines of the compiler's output a failed compile's 400 quotes, at most
#: ``_QUOTE_CHARS`` characters of them (the full output is in the build log)
_QUOTE_LINES = 20
_QUOTE_CHARS = 4000

Tools = dict[str, str]  # program → the path it was found at (or its bare name)


def find_program(name: str) -> str | None:
    """Where ``name`` is installed: on ``PATH``, or in the virtual environment's ``bin``
    (next to ``sys.executable``), where ``pip install pyspark`` puts spark-submit while
    the platform's ``PATH`` may not include it. ``python`` is the platform's own."""
    if name == "python":
        return sys.executable
    if found := shutil.which(name):
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


@dataclass(frozen=True)
class Runtime:
    """One runtime: what it accepts, what it needs, how it compiles and runs a file."""

    name: str
    extensions: tuple[str, ...]  # of the executable file, lower case, with the dot
    programs: tuple[str, ...]  # what must be installed for it
    #: the compiler's argv for the file, or None when it needs no compiling
    compile: Callable[[Tools, str], tuple[str, ...] | None]
    #: the argv that runs the (compiled) file with the task's arguments
    run: Callable[[Tools, str, Sequence[str]], tuple[str, ...]]
    #: variables a run needs in its environment, given its limits (see :func:`environment`)
    env: Callable[[Tools, Limits], dict[str, str]] = lambda t, limits: {}
    #: the fewest open files a run needs (more than the platform's default, where it does)
    open_files: int = 0
    #: program → how to install it, added to the 400 that says it is missing
    hints: dict[str, str] = field(default_factory=dict)

    def toolchain(self) -> dict[str, str | None]:
        """Each program the runtime needs → where it is installed (None: it is not)."""
        return {program: find_program(program) for program in self.programs}

    def tools(self) -> Tools:
        """Each program → its path, or its bare name where it is not installed (the
        command line is still well formed; :func:`check` is what refuses it)."""
        return {program: where or program for program, where in self.toolchain().items()}


def _java_compile(t: Tools, f: str) -> tuple[str, ...] | None:
    if f.lower().endswith(".jar"):
        return None
    # No annotation processors: a bundle's META-INF/services would otherwise run code
    # in the platform's process, outside the limits a run gets.
    return (t["javac"], "-proc:none", "-encoding", "UTF-8", "-d", "classes", f)


def _java_run(t: Tools, f: str, args: Sequence[str]) -> tuple[str, ...]:
    if f.lower().endswith(".jar"):
        return (t["java"], "-jar", f, *args)
    # The main class is the file's stem (javac insists that a public class's file is
    # named after it); the bundle's class files beside it are on the class path too.
    return (t["java"], "-cp", "classes:.", PurePath(f).stem, *args)


def spark_home(submit: str) -> str | None:
    """The Spark installation ``submit`` (the spark-submit found) belongs to: the platform's
    ``SPARK_HOME`` when set; else the distribution around spark-submit (``…/bin/``
    beside ``…/jars/``); else the ``pyspark`` package, whose jars a pip install holds (its
    spark-submit, in the environment's ``bin``, would look for it with whatever
    ``python3`` is on the run's ``PATH``, which may not have pyspark). None: not found."""
    if home := os.environ.get("SPARK_HOME"):
        return home
    real = Path(os.path.realpath(submit)) if os.path.isabs(submit) else None
    if real is not None and (real.parent.parent / "jars").is_dir():
        return str(real.parent.parent)
    spec = importlib.util.find_spec("pyspark")
    if spec is not None and spec.origin is not None:
        package = Path(spec.origin).parent
        if (package / "jars").is_dir():
            return str(package)
    return None


#: what a Spark run's memory limit keeps beside the driver's heap: the JVM's own memory
#: (classes, threads, buffers) and the Python processes (the job's script, a worker per core)
SPARK_OVERHEAD_MB = 512
#: the smallest heap given (Spark refuses a driver with less than 450 MiB)
SPARK_MIN_HEAP_MB = 512


def _spark_env(t: Tools, limits: Limits) -> dict[str, str]:
    # The driver's heap fits in the run's memory limit, so that the JVM collects garbage
    # (or says OutOfMemoryError) before the watchdog kills it.
    heap_mb = max((limits.memory_bytes >> 20) - SPARK_OVERHEAD_MB, SPARK_MIN_HEAP_MB)
    # Relative to the working directory (the run's cwd): its .tmp/ is not taken as an
    # output and goes with the directory, where /tmp would keep Spark's block files.
    # No perf-data files either (/tmp/hsperfdata_<account>), and no web UI: it would
    # listen on every interface, on port 4040 and up.
    jvm = "-XX:-UsePerfData"
    env = {
        "SPARK_DRIVER_MEMORY": f"{heap_mb}m",
        "SPARK_SUBMIT_OPTS": f"-Djava.io.tmpdir=.tmp -Dspark.ui.enabled=false {jvm}",
        "SPARK_LAUNCHER_OPTS": jvm,
        # the driver's ports on loopback only (local mode needs nothing else)
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    if home := spark_home(t["spark-submit"]):
        env["SPARK_HOME"] = home
    if conf := os.environ.get("SPARK_CONF_DIR"):  # the operator's spark-defaults.conf
        env["SPARK_CONF_DIR"] = conf
    return env


RUNTIMES: dict[str, Runtime] = {r.name: r for r in (
    Runtime("py", (".py",), ("python",),
            compile=lambda t, f: None,
            run=lambda t, f, a: (t["python"], f, *a)),
    Runtime("js", (".js", ".mjs"), ("node",),
            compile=lambda t, f: None,
            run=lambda t, f, a: (t["node"], f, *a)),
    Runtime("java", (".java", ".jar"), ("javac", "java"),
            compile=_java_compile, run=_java_run),
    Runtime("c", (".c",), ("gcc",),
            compile=lambda t, f: (t["gcc"], "-O2", "-o", "main", f, "-lm"),
            run=lambda t, f, a: ("./main", *a)),
    Runtime("cpp", (".cpp", ".cc", ".cxx"), ("g++",),
            compile=lambda t, f: (t["g++"], "-O2", "-std=c++17", "-o", "main", f),
            run=lambda t, f, a: ("./main", *a)),
    # Java from PATH, as the spark-submit script finds it (a run's PATH is the platform's).
    # The JVM opens each of the ~300 jars of a Spark install: 256 open files are too few.
    Runtime("spark", (".py", ".jar"), ("spark-submit", "java"),
            compile=lambda t, f: None,
            run=lambda t, f, a: (t["spark-submit"], "--master", "local[2]", f, *a),
            env=_spark_env, open_files=4096,
            hints={"spark-submit": "pip install 'pyconnector-platform[spark]'",
                   "java": "Spark needs Java 17 or later"}),
)}


def lookup(name: str, field: str = "runTime") -> Runtime:
    """The runtime called ``name``; a 400 naming ``field`` and the known ones if none is."""
    try:
        return RUNTIMES[name]
    except (KeyError, TypeError):
        known = ", ".join(RUNTIMES)
        raise bad_request(f"{field}: unknown runtime {name!r}; the runtimes are {known}",
                          field) from None


def check(runtime: str, filename: str, field: str = "runTime") -> Runtime:
    """The runtime ``runtime``, after checking that ``filename`` suits it and that
    its programs are installed. Every refusal is a 400: an unknown runtime names
    ``field``; a file name that is not a plain name, or whose extension the runtime does
    not take, names ``filename``; a program that is not installed names ``field`` and the
    program. (400, not 501: the server does implement the request; this platform cannot
    run that runtime, and the client can choose another.)"""
    rt = lookup(runtime, field)
    if (not filename or "/" in filename or "\\" in filename or "\0" in filename
            or filename.startswith(("-", ".")) or filename != filename.strip()):
        # It goes on compilers' and interpreters' command lines: a leading '-' would be
        # an option ("-cimport os…" to python), a '/' a file outside the task's directory.
        raise bad_request(f"filename: {filename!r} is not a plain file name (no '/', no "
                          "leading '-' or '.')", "filename")
    if PurePath(filename).suffix.lower() not in rt.extensions:
        fits = " or ".join(rt.extensions)
        raise bad_request(f"filename: '{filename}' does not suit runtime '{rt.name}', which "
                          f"takes {fits} files", "filename")
    for program, where in rt.toolchain().items():
        if where is None:
            hint = f" ({rt.hints[program]})" if program in rt.hints else ""
            raise bad_request(f"{field}: runtime '{rt.name}' needs {program}, which is not "
                              f"installed on this platform{hint}", field)
    return rt


def command(runtime: str, filename: str, args: Sequence[str]) -> tuple[str, ...]:
    """The argv that runs ``filename`` (compiled by :func:`build` where it needs to be)
    with ``args``, in the task's directory. Programs are given by their full path where
    installed, since a run's ``PATH`` is the executor's, not the platform's."""
    rt = lookup(runtime)
    return rt.run(rt.tools(), filename, list(args))


def environment(runtime: str, limits: Limits) -> dict[str, str]:
    """The variables a run of ``runtime`` with ``limits`` adds to the executor's scrubbed
    environment (``SPARK_HOME`` and Spark's options for ``spark``; nothing for the
    others)."""
    rt = lookup(runtime)
    return rt.env(rt.tools(), limits)


def limits(runtime: str, platform: Limits) -> Limits:
    """The limits of a run of ``runtime``: the platform's, with more open files where the
    runtime cannot start with fewer."""
    rt = lookup(runtime)
    if rt.open_files > platform.open_files:
        return dataclasses.replace(platform, open_files=rt.open_files)
    return platform


async def build(runtime: str, filename: str, workdir: Path, log: Path,
                timeout: float = 120) -> None:
    """Compile ``filename`` in ``workdir`` where the runtime needs it (javac, gcc, g++),
    appending the compiler's output to ``log``; nothing for the others.

    A compile that fails, or runs past ``timeout`` seconds, is an APIError 400 naming
    ``filename`` with the last lines of the compiler's output."""
    rt = check(runtime, filename)
    argv = rt.compile(rt.tools(), filename)
    if argv is None:
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        start = out.tell()
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=workdir, stdin=asyncio.subprocess.DEVNULL, stdout=out,
            stderr=asyncio.subprocess.STDOUT, env=_compile_env(workdir),
            # its own process group, so a timeout ends gcc's cc1, as and ld too
            start_new_session=True)
        try:
            code = await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            raise APIError(400, f"compile failed: the compiler ran longer than {timeout:g} s",
                           field="filename") from None
        except BaseException:  # the request's cancellation: no compiler left behind
            _kill_group(proc.pid)
            await asyncio.shield(proc.wait())
            raise
    if code != 0:
        raise APIError(400, f"compile failed: {_tail(log, start)}", field="filename")


def _compile_env(workdir: Path) -> dict[str, str]:
    # Like a run's: nothing of the platform's environment (keys, database URLs) goes to
    # a compiler that may quote it back in an error message.
    return {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8",
            "HOME": str(workdir)}


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tail(log: Path, start: int) -> str:
    """The last lines the compiler wrote (after the ``$ argv`` line at ``start``)."""
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    lines = text.splitlines()[1:]
    tail = "\n".join(line for line in lines[-_QUOTE_LINES:]).strip()
    if len(tail) > _QUOTE_CHARS:
        tail = "…" + tail[-_QUOTE_CHARS:]
    return tail or "the compiler failed without saying why"
