"""The embedded task executor (``local://``, the default): each job is a subprocess of the
platform, in its own session, limited by the kernel where it can be and watched where it
cannot.

``local://?concurrency=4&user=nobody`` — *concurrency* is how many jobs run at once
(default: the number of CPUs); *user* the account jobs run as when the platform runs as
root (default ``nobody``; the working directory is handed to it first). A platform that
is not root runs jobs as itself and ignores *user*: it could not switch accounts.

How each limit is kept:

* CPU seconds, open files, file size: ``setrlimit`` in the child before it runs the
  command. At its CPU limit Linux sends SIGXCPU (which ends a process that does not
  handle it) and SIGKILL :data:`CPU_HARD_MARGIN` seconds later (for one that does).
* Memory: a watchdog samples the resident memory of the process and its descendants every
  :data:`POLL_SECONDS` and kills the group when the sum is over. Not ``RLIMIT_AS``: it
  caps *virtual* memory, which the JVM and node reserve by the gigabyte without using.
  Polling lets a fast allocator overshoot for up to one interval; the kernel's own
  OOM killer stays the backstop.
* Wall clock: the same watchdog kills the group once the job has *run* (paused time not
  counted) longer than its limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import psutil

from .base import (
    PYTHON,
    Ending,
    Execution,
    Executor,
    Job,
    Limits,
    Outcome,
    Slots,
    executors,
)

#: how often the watchdog samples memory and checks the wall clock (seconds)
POLL_SECONDS = 0.1
#: seconds between the CPU limit's SIGXCPU and the kernel's SIGKILL
CPU_HARD_MARGIN = 5
#: the account jobs run as when the platform runs as root
DEFAULT_USER = "nobody"
#: seconds :meth:`LocalExecutor.close` gives each running job to end after SIGTERM
CLOSE_GRACE = 5.0


def _size(n: int) -> str:
    """``64 MiB`` for 64 << 20: the largest binary unit that divides ``n``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Account:
    """Who a job runs as when the platform is root."""

    def __init__(self, name: str) -> None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ValueError(f"local executor: no user {name!r} on this system (user= names "
                             f"the unprivileged account tasks run as)") from None
        if entry.pw_uid == 0:
            raise ValueError(f"local executor: user {name!r} is root; tasks must run as an "
                             f"unprivileged account")
        self.name, self.uid, self.gid = name, entry.pw_uid, entry.pw_gid


def _set_limit(which: int, soft: int, hard: int) -> None:
    """``setrlimit`` that stays under a hard limit it may not raise (when not root)."""
    _, current = resource.getrlimit(which)
    if os.geteuid() != 0 and current != resource.RLIM_INFINITY:
        hard = min(hard, current)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def _child_setup(limits: Limits, account: _Account | None) -> Callable[[], None]:
    """What the child runs between fork and exec: its limits, then its account (limits
    first, while it may still raise a hard limit)."""

    def setup() -> None:
        _set_limit(resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + CPU_HARD_MARGIN)
        _set_limit(resource.RLIMIT_NOFILE, limits.open_files, limits.open_files)
        _set_limit(resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes)
        _set_limit(resource.RLIMIT_CORE, 0, 0)  # a crash must not write a core into workdir
        if account is not None:
            os.setgid(account.gid)
            os.setgroups([])
            os.setuid(account.uid)
        # Last (a change of account clears it): the job gets SIGKILL when the platform
        # dies, even by kill -9, rather than running on unwatched as a "lost" run.
        _die_with_parent()

    return setup


def _die_with_parent() -> None:
    """``prctl(PR_SET_PDEATHSIG, SIGKILL)`` where there is one (Linux)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


PR_SET_PDEATHSIG = 1
try:  # looked up once, in the platform: the child between fork and exec only calls it
    _LIBC: Any = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True) \
        if sys.platform.startswith("linux") else None
except OSError:
    _LIBC = None


@functools.cache
def _find_python(user: str | None) -> str:
    """The first interpreter ``user`` can run (see :meth:`LocalExecutor.python`); once per
    process and account: a worker makes an executor per job."""
    candidates = [sys.executable]
    system = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if system and system != sys.executable:
        candidates.append(system)
    for python in candidates:
        try:
            subprocess.run([python, "-c", "pass"], user=user, cwd="/", check=True,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        return python
    return candidates[-1]  # none ran: the job's own failure will say why


async def _exited(proc: subprocess.Popen[bytes]) -> int:
    """Wait for ``proc`` to end without a thread: its pidfd becomes readable when it
    does (Linux 5.3+); elsewhere a thread waits."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here (or it has been reaped already)
        return await asyncio.to_thread(proc.wait)
    loop = asyncio.get_running_loop()
    ended = loop.create_future()
    loop.add_reader(fd, lambda: ended.done() or ended.set_result(None))
    try:
        await ended
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return proc.wait()


def _environment(job: Job) -> dict[str, str]:
    """The scrubbed environment: nothing of the platform's but its PATH."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "HOME": str(job.workdir),
        "TMPDIR": str(job.workdir / ".tmp"),
    }
    env.update(job.env)
    return env


def _hand_over(workdir: Path, account: _Account) -> None:
    """Give ``workdir`` and everything in it to ``account``. Symbolic links are changed,
    never followed: a bundle's link must not hand the job a file outside it."""
    os.chown(workdir, account.uid, account.gid, follow_symlinks=False)
    for top, dirs, files in os.walk(workdir):
        for name in (*dirs, *files):
            os.chown(os.path.join(top, name), account.uid, account.gid, follow_symlinks=False)


class LocalExecution(Execution):
    """A job of a :class:`LocalExecutor`: queued, then a subprocess and its watchdog."""

    def __init__(self, job: Job, executor: LocalExecutor) -> None:
        super().__init__(job)
        self._executor = executor
        self._proc: subprocess.Popen[bytes] | None = None
        self._task: asyncio.Task[None] | None = None
        # why the platform ended it (the first reason wins: a job stopped while over its
        # memory limit was stopped)
        self._ended_by: tuple[Ending, str] | None = None
        # running time, for the wall clock: monotonic start, paused seconds so far
        self._run_from = 0.0
        self._paused_for = 0.0
        self._paused_since: float | None = None
        self._cpu_seconds = 0.0  # the process's own CPU time when last sampled

    async def stop(self, grace: float = 5.0) -> None:
        if self._outcome is not None:
            return
        if self._executor.slots.unqueue(self):
            self._finish(Outcome("stopped", None, "stopped", None, time.time()))
            return
        self._end("stopped", "stopped", signal.SIGTERM)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._done.wait(), grace)
            return
        self._signal(signal.SIGKILL)
        await self._done.wait()

    async def pause(self) -> None:
        if self._state != "running":
            raise ValueError(f"run {self.job.run_id} is {self._state}, not running")
        self._signal(signal.SIGSTOP)
        self._state = "paused"
        self._paused_since = time.monotonic()

    async def resume(self) -> None:
        if self._state != "paused" or self._paused_since is None:
            raise ValueError(f"run {self.job.run_id} is {self._state}, not paused")
        self._signal(signal.SIGCONT)
        self._paused_for += time.monotonic() - self._paused_since
        self._paused_since = None
        self._state = "running"

    # -- inside ---------------------------------------------------------------------------------
    def _signal(self, sig: int) -> None:
        """Send ``sig`` to the job's process group (its session leader's pid)."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, sig)

    def _end(self, ending: Ending, reason: str, sig: int) -> None:
        """End the job for ``reason``; the outcome will say so whatever its exit code."""
        if self._ended_by is None:
            self._ended_by = (ending, reason)
        self._signal(sig)
        if self._state == "paused":
            self._signal(signal.SIGCONT)  # a stopped process acts on SIGTERM only once continued

    def _running_seconds(self) -> float:
        paused = self._paused_for
        if self._paused_since is not None:
            paused += time.monotonic() - self._paused_since
        return time.monotonic() - self._run_from - paused

    def _finish(self, outcome: Outcome) -> None:
        self._settle(outcome)

    def _start(self) -> None:
        """Run it (the executor gave it a slot)."""
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name=f"job {self.job.run_id}")

    async def _run(self) -> None:
        try:
            outcome = await self._run_process()
        except asyncio.CancelledError:  # the event loop is going away: so does the job
            self._signal(signal.SIGKILL)
            self._finish(Outcome("stopped", None, "stopped: the platform shut down",
                                 self._started_at, time.time()))
            raise
        except Exception as exc:  # it never ran: a missing command, a workdir it cannot use
            outcome = Outcome("failed", None, f"could not start: {exc}", None, time.time())
        finally:
            self._executor.slots.release(self)
        self._finish(outcome)

    async def _run_process(self) -> Outcome:
        job, account = self.job, self._executor.account
        command = job.command
        if command[0] == PYTHON:
            command = (await self._executor.python(), *command[1:])
        await asyncio.to_thread(self._prepare, account)
        if self._ended_by is not None:  # stopped while its directory was being prepared
            return Outcome("stopped", None, "stopped", None, time.time())

        def spawn() -> subprocess.Popen[bytes]:
            with open(job.stdout, "wb") as out, open(job.stderr, "wb") as err:
                return subprocess.Popen(
                    command, cwd=job.workdir, env=_environment(job),
                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                    preexec_fn=_child_setup(job.limits, account))

        # In a thread: the fork copies the platform's page tables, tens of milliseconds
        # the event loop (every other run, every request) would otherwise wait.
        self._proc = await asyncio.to_thread(spawn)
        self._started_at = time.time()
        self._run_from = time.monotonic()
        self._state = "running"
        if self._ended_by is not None:  # stopped while it was starting: no grace needed
            self._signal(signal.SIGKILL)
        watchdog = asyncio.create_task(self._watch())
        try:
            code = await _exited(self._proc)
        finally:
            watchdog.cancel()
            # the job is its process: what it left running in its group goes with it
            self._signal(signal.SIGKILL)
        ending, reason = self._judge(code)
        return Outcome(ending, code, reason, self._started_at, time.time())

    def _prepare(self, account: _Account | None) -> None:
        tmp = self.job.workdir / ".tmp"
        tmp.mkdir(exist_ok=True)
        if account is not None:
            _hand_over(self.job.workdir, account)

    def _judge(self, code: int) -> tuple[Ending, str]:
        """The ending and reason of a process that exited with ``code``."""
        limits = self.job.limits
        if self._ended_by is not None:
            return self._ended_by
        if code == 0:
            return "succeeded", "exit code 0"
        over_cpu = code == -signal.SIGXCPU or (
            code == -signal.SIGKILL and self._cpu_seconds >= limits.cpu_seconds)
        if over_cpu:
            return "cpu_limit", f"killed: used its {limits.cpu_seconds} s CPU-time limit"
        if code < 0:
            reason = f"ended by signal {-code} ({_signal_name(-code)})"
            if code == -signal.SIGXFSZ:
                reason += f": wrote a file over its {_size(limits.file_bytes)} limit"
            return "failed", reason
        return "failed", f"exit code {code}"

    async def _watch(self) -> None:
        """Kill the group when it is over its memory or wall-clock limit."""
        limits = self.job.limits
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if self._running_seconds() > limits.wall_seconds:
                self._end("timed_out", f"killed: ran longer than its {limits.wall_seconds:g} s "
                          f"wall-clock limit", signal.SIGKILL)
                return
            resident = await asyncio.to_thread(self._sample)
            if resident > limits.memory_bytes:
                self._end("out_of_memory", f"killed: over its {_size(limits.memory_bytes)} "
                          f"memory limit", signal.SIGKILL)
                return

    def _sample(self) -> int:
        """Resident bytes of the process and its descendants; notes its own CPU time."""
        assert self._proc is not None
        try:
            leader = psutil.Process(self._proc.pid)
            times = leader.cpu_times()
            self._cpu_seconds = times.user + times.system
            family = [leader, *leader.children(recursive=True)]
        except psutil.Error:  # it has just ended
            return 0
        resident = 0
        for process in family:
            with contextlib.suppress(psutil.Error):
                resident += process.memory_info().rss
        return resident


@executors.register("local")
class LocalExecutor(Executor):
    """Runs jobs as subprocesses of the platform, at most ``max_concurrency`` at a time."""

    kind = "local"

    def __init__(self, max_concurrency: int | None = None, user: str | None = None) -> None:
        self.max_concurrency = max_concurrency or os.cpu_count() or 2
        #: the account jobs run as; None: the platform's own (it is not root)
        self.account = _Account(user or DEFAULT_USER) if os.geteuid() == 0 else None
        self.slots: Slots[LocalExecution] = Slots(self.max_concurrency, LocalExecution._start)
        self._python: str | None = None

    @classmethod
    def from_url(cls, url: str, **context: Any) -> LocalExecutor:
        """``local://`` with optional ``?concurrency=N&user=NAME`` (the query wins over the
        ``concurrency`` and ``user`` of ``context``)."""
        parts = urlsplit(url)
        if parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"executor URL {url!r}: local:// takes no host or path, only "
                             f"?concurrency=N&user=NAME")
        options = {**{k: context[k] for k in ("concurrency", "user") if context.get(k)},
                   **dict(parse_qsl(parts.query, keep_blank_values=True))}
        unknown = sorted(set(options) - {"concurrency", "user"})
        if unknown:
            raise ValueError(f"executor URL {url!r}: unknown option {unknown[0]!r} (local:// "
                             f"takes concurrency and user)")
        concurrency = None
        if "concurrency" in options:
            try:
                concurrency = int(options["concurrency"])
            except ValueError:
                concurrency = 0
            if concurrency < 1:
                raise ValueError(f"executor URL {url!r}: concurrency must be a whole number "
                                 f"of at least 1, not {options['concurrency']!r}")
        return cls(concurrency, str(options["user"]) if options.get("user") else None)

    async def python(self) -> str:
        """The interpreter :data:`PYTHON` means: the platform's own when the job account
        can run it, else the system's ``python3`` (a platform run by root runs jobs as an
        unprivileged account, which cannot reach an interpreter under /root). Tried once."""
        if self._python is None:
            user = self.account.name if self.account is not None else None
            self._python = await asyncio.to_thread(_find_python, user)
        return self._python

    async def submit(self, job: Job) -> Execution:
        if self.slots.closed:
            raise RuntimeError(f"the local executor is closed: run {job.run_id} not queued")
        execution = LocalExecution(job, self)
        self.slots.add(execution)
        return execution

    async def close(self) -> None:
        self.slots.closed = True
        for execution in list(self.slots.waiting):
            await execution.stop()
        await asyncio.gather(*(e.stop(CLOSE_GRACE) for e in list(self.slots.running)))
