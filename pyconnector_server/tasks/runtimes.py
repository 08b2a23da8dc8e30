"""The runtimes a task is written for: which files each accepts, the programs it needs,
how its file is compiled, and the command line that runs it.

``py`` runs on the platform's own Python (so a task can import pyconnector and pandas),
``js`` on Node.js, ``java`` on a JDK (a ``.java`` file compiled with javac, or a ``.jar``),
``c`` and ``cpp`` compiled with gcc and g++, ``spark`` through spark-submit on a local
master. A runtime whose programs are not installed is refused when the task is created or
deployed (a 400 naming the program), not when it first runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

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
    Runtime("spark", (".py", ".jar"), ("spark-submit",),
            compile=lambda t, f: None,
            run=lambda t, f, a: (t["spark-submit"], "--master", "local[2]", f, *a)),
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
            raise bad_request(f"{field}: runtime '{rt.name}' needs {program}, which is not "
                              "installed on this platform", field)
    return rt


def command(runtime: str, filename: str, args: Sequence[str]) -> tuple[str, ...]:
    """The argv that runs ``filename`` (compiled by :func:`build` where it needs to be)
    with ``args``, in the task's directory. Programs are given by their full path where
    installed, since a run's ``PATH`` is the executor's, not the platform's."""
    rt = lookup(runtime)
    return rt.run(rt.tools(), filename, list(args))


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
