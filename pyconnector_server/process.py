"""Run the platform as a child process: ``pyconnector serve`` on a free port.

Used by the demo, the end-to-end tests and the benchmarks, and handy in notebooks::

    with ServerProcess.start("/tmp/pc-data") as platform:
        conn = pyconnector.connectors(api_key=platform.api_key, URL=platform.url)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx


class ServerProcess:
    """A running ``pyconnector serve`` child process."""

    def __init__(self, proc: subprocess.Popen[str], url: str, api_key: str, data_dir: Path,
                 db: str, output: list[str]) -> None:
        self.proc = proc
        self.url = url
        self.api_key = api_key  # of tenant `default`, printed at first start ("" later)
        self.data_dir = data_dir
        self.db = db
        self.output = output

    @classmethod
    def start(cls, data_dir: str | os.PathLike[str], db: str = "", *extra: str,
              timeout: float = 60, env: dict[str, str] | None = None) -> ServerProcess:
        """Start the platform and return once ``/health`` answers."""
        data_dir = Path(data_dir)
        args = [sys.executable, "-m", "pyconnector_server.cli", "serve", "--port", "0",
                "--data-dir", str(data_dir), "--log-level", "warning", *extra]
        if db:
            args += ["--db", db]
            if not any(a.startswith("--blobs") for a in extra):
                # One process of its own: its blobs may live in its data directory, but on
                # PostgreSQL the platform wants to be told (cli._shared_blobs).
                args += ["--blobs", (data_dir.resolve() / "blobs").as_uri()]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env={**os.environ, **(env or {}),
                                                "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        lines: list[str] = []
        url = key = None
        deadline = time.monotonic() + timeout
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if m := re.search(r"API key ([0-9a-f]{64})", line):
                key = m[1]
            if m := re.search(r"listening on (http://\S+)", line):
                url = m[1]
        if url is None:
            _abandon(proc)
            raise RuntimeError("the platform did not start:\n" + "".join(lines))
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            _abandon(proc)
            raise RuntimeError(f"the platform at {url} did not answer /health")

        def drain() -> None:  # a full pipe would block a chatty server: keep reading
            with proc.stdout:  # type: ignore[union-attr]  # closed at EOF: the process ended
                for line in proc.stdout:  # type: ignore[union-attr]
                    lines.append(line)

        threading.Thread(target=drain, daemon=True).start()
        return cls(proc, url, key or "", data_dir, db, lines)

    def cli(self, *args: str) -> str:
        """Run a ``pyconnector`` command against this platform's store; its stdout."""
        cmd = [sys.executable, "-m", "pyconnector_server.cli", *args,
               "--data-dir", str(self.data_dir)]
        if self.db:
            cmd += ["--db", self.db]
        return subprocess.run(cmd, capture_output=True, text=True, check=True,
                              timeout=120).stdout

    def new_key(self, tenant: str, role: str | None = None) -> str:
        """An API key for ``tenant`` (created if new), made with the CLI as an admin would:
        ``role`` None gives the tenant's first key role admin and further keys role app."""
        extra = ("--role", role) if role else ()
        return self.cli("apikey", "create", "--tenant", tenant, *extra).strip()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Stop the process (SIGTERM: graceful; SIGKILL: a crash) and return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _abandon(proc: subprocess.Popen[str]) -> None:
    """Kill a process that failed to start, reap it and close its pipe."""
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
