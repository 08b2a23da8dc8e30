"""Task executors: where a task's process runs. ``local`` (the embedded default) runs it
as a subprocess of the platform; ``celery`` on a worker of a cluster.

The Task Service prepares a run (a working directory holding the deployed bundle, the
command line, the environment variables it adds, the limits) as a :class:`Job`, submits
it, and gets an :class:`Execution` to wait on, stop, pause and resume. The promises every
executor keeps (tests/backends/test_executor_contract.py runs them on each):

* **Queued, then run.** :meth:`Executor.submit` returns at once; at most
  ``max_concurrency`` jobs run at a time, the rest wait in submission order
  (:attr:`Execution.state` ``queued``).
* **Own directory, scrubbed environment.** The process runs with ``cwd`` the job's
  ``workdir``, in a new session (its own process group), with only ``PATH``, ``LANG``,
  ``HOME`` (= workdir), ``TMPDIR`` (= ``workdir/.tmp``) and the job's ``env``; nothing of
  the platform's environment (keys, database URLs) leaks in.
* **Logs to files.** stdout and stderr go to the job's ``stdout``/``stderr`` paths as the
  process writes them (the service follows them live).
* **Limits.** CPU seconds, memory (resident, of the process and its children), open
  files, the size of a file it writes, and wall-clock time. A job over its CPU, memory or
  wall-clock limit is killed and its :class:`Outcome` says which (``cpu_limit``,
  ``out_of_memory``, ``timed_out``), never a bare "failed". Open files and file size
  are not kills: the call that goes over fails (EMFILE, EFBIG; or SIGXFSZ ends a program
  that does not ignore it) and the job ends as the program decides, usually ``failed``.
* **A command that cannot start** (not found, not executable) ends ``failed`` with
  ``exit_code`` None and a reason saying so; :meth:`Executor.submit` still returns.
* **Stop, pause, resume.** :meth:`Execution.stop` ends the process group (SIGTERM, then
  SIGKILL after ``grace`` seconds) and the outcome is ``stopped``; a queued job stops
  without starting. :meth:`Execution.pause`/:meth:`Execution.resume` suspend and continue
  the whole group (SIGSTOP/SIGCONT); a paused job's wall clock does not run.
* **Python, wherever it is.** A command whose first word is :data:`PYTHON` runs with a
  Python interpreter the job's account can run on the machine that runs it (a worker's
  own; the platform's when the account can reach it, else the system's ``python3``).
* **One outcome.** :meth:`Execution.wait` returns the same :class:`Outcome` however often
  it is called; ``exit_code`` is the process's (negative: the signal that ended it).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Literal, TypeVar

from ..registry import Registry

#: a command's first word meaning "the Python interpreter this executor's jobs can run"
PYTHON = "{python}"

#: what happened to a job, in the end
Ending = Literal["succeeded", "failed", "stopped", "timed_out", "out_of_memory", "cpu_limit"]
#: where a job is now
State = Literal["queued", "running", "paused", "ended"]


@dataclass(frozen=True)
class Limits:
    """What a job may use; the service fills them from settings and the deploy."""

    cpu_seconds: int = 3600
    memory_bytes: int = 1 << 30  # resident set of the process and its children
    open_files: int = 256
    file_bytes: int = 1 << 30  # the largest file it may write
    wall_seconds: float = 3600.0


@dataclass(frozen=True)
class Job:
    """One run of a task, ready to start."""

    run_id: str  # unique among the platform's runs (logs and errors name it)
    workdir: Path  # exists; the process's working directory, and all it may write
    command: tuple[str, ...]  # argv; command[0] is found on PATH or is a path
    stdout: Path  # where the process's stdout goes (created or truncated)
    stderr: Path
    env: dict[str, str] = field(default_factory=dict)  # added to the scrubbed environment
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Outcome:
    """How a job ended."""

    ending: Ending
    exit_code: int | None  # None when it never started (stopped while queued)
    reason: str  # for people: "exit code 3", "killed: over its 64 MiB memory limit"…
    started_at: float | None  # time.time() when the process started
    ended_at: float


class Execution(ABC):
    """A submitted job: its state, and the ways to act on it.

    The bookkeeping of state, start time and outcome is here, for every executor: a
    subclass moves ``_state``/``_started_at`` as its job goes and calls :meth:`_settle`
    once with the outcome (later calls change nothing)."""

    job: Job

    def __init__(self, job: Job) -> None:
        self.job = job
        self._state: State = "queued"
        self._started_at: float | None = None
        self._outcome: Outcome | None = None
        self._done = asyncio.Event()

    @property
    def state(self) -> State:
        """``queued``, ``running``, ``paused`` or ``ended``."""
        return self._state

    @property
    def started_at(self) -> float | None:
        """``time.time()`` when the process started (None until then)."""
        return self._started_at

    async def wait(self) -> Outcome:
        """Wait for the end; the outcome (the same one on every call)."""
        await self._done.wait()
        assert self._outcome is not None
        return self._outcome

    def _settle(self, outcome: Outcome) -> bool:
        """Record the end; False (and nothing changed) if it had ended already."""
        if self._outcome is not None:
            return False
        self._outcome = outcome
        self._state = "ended"
        self._done.set()
        return True

    @abstractmethod
    async def stop(self, grace: float = 5.0) -> None:
        """End it (see the module docstring); nothing if it has ended."""

    @abstractmethod
    async def pause(self) -> None:
        """Suspend a running job (:class:`ValueError` if it is not running)."""

    @abstractmethod
    async def resume(self) -> None:
        """Continue a paused job (:class:`ValueError` if it is not paused)."""


class Executor(ABC):
    """Runs jobs (see the module docstring for the promises)."""

    #: a short name for logs: "local", "celery"
    kind = "abstract"
    max_concurrency: int

    @abstractmethod
    async def submit(self, job: Job) -> Execution:
        """Queue ``job``; returns at once."""

    @abstractmethod
    async def close(self) -> None:
        """Stop every job (queued ones never start) and release what it holds."""


E = TypeVar("E")


class Slots(Generic[E]):
    """The order jobs run in: at most ``size`` at once, the others waiting in submission
    order; ``start`` is called for each job given a slot."""

    def __init__(self, size: int, start: Callable[[E], None]) -> None:
        self.size = size
        self.waiting: deque[E] = deque()
        self.running: set[E] = set()
        self.closed = False
        self._start = start

    def add(self, job: E) -> None:
        self.waiting.append(job)
        self._fill()

    def unqueue(self, job: E) -> bool:
        """Take ``job`` off the queue; False if it was not waiting there."""
        try:
            self.waiting.remove(job)
        except ValueError:
            return False
        return True

    def release(self, job: E) -> None:
        """``job`` has ended: its slot goes to the next waiting job."""
        self.running.discard(job)
        if not self.closed:
            self._fill()

    def _fill(self) -> None:
        while self.waiting and len(self.running) < self.size:
            job = self.waiting.popleft()
            self.running.add(job)
            self._start(job)


executors: Registry[Executor] = Registry("task executor")
