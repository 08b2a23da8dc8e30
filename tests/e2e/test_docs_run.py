"""The README's and every docs page's Python and shell blocks, run in order as a reader
would, against a fresh `pyconnector serve`, so the docs cannot drift from the code.

Each page runs in a fresh temporary directory. Its Python blocks run in one interpreter,
one after the other (state carries from block to block, as pasted into one session); its
shell blocks run through bash with the same environment, and a variable a shell block
sets is seen by the later blocks (shell and Python). Markers, on the line before a fence:

* ``<!-- file: NAME -->``: the block is a file the reader saves as NAME (written, not run).
* ``<!-- docs-run: background -->``: a long-running command (``pyconnector serve``): the
  block starts in the background, the page goes on once the platform's ``/health``
  answers (on its ``--port``, else 8080), and it is stopped when the page ends.
* ``<!-- docs-run: skip (why) -->``, or a fence info string ``no-run``: not run here, for
  the reason given (counted and printed; a skip without a reason fails).

A page that starts no platform of its own continues from the README's quick start: a
fresh platform serves, and ``PYCONNECTOR_URL`` and ``PYCONNECTOR_API_KEY`` hold its URL and
the key it printed at first start (tenant ``default``'s administrator). The docs' port
8080, and any other a background block names, is replaced by a free one (other runs share
the machine); ``pip install`` lines are left out (tests/e2e/test_packaging.py builds the
distribution and installs it in a fresh virtualenv).
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import need_service, wait_for

from pyconnector_server.process import ServerProcess

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the project's venv: `pyconnector` as a reader has it

# Pages whose blocks are not a reader's session, and why.
EXCLUDED = {
    "docs/api.md": "generated from the OpenAPI document (tests/server/test_openapi.py)",
    "docs/performance.md": "benchmark runs and their figures: minutes each (make bench)",
    "docs/security.md": "security probe runs (benchmarks/security_probes.py): minutes each",
    "docs/contributing.md": "fragments of the platform's own code for contributors (a new "
                            "service's module layout), not lines a user runs",
}
# The machine's components a page's blocks use (skipped by hand, failed under CI, without).
NEEDS = {"docs/mqtt.md": [("Mosquitto", "127.0.0.1", 1883)]}
PAGES = ["README.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))]
BLOCK_TIMEOUT = 300  # seconds a block may take (a hung one fails, naming itself)
RUNNABLE = ("python", "sh", "bash", "console")
FENCE = re.compile(r"^\s*```(\S*)[ \t]*(.*)$")
MARKER = re.compile(r"^<!--\s*(file|docs-run):\s*(.*?)\s*-->$")


@dataclass
class Block:
    """One fenced block of a page: its language, where it starts, what to do with it."""

    lang: str
    line: int  # of the opening fence, 1-based
    code: str
    action: str = "run"  # run | file | background | skip
    arg: str = ""  # the file name, or why it is skipped


def blocks(page: str) -> list[Block]:
    """The page's runnable and file blocks, in order."""
    lines = (ROOT / page).read_text().split("\n")
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, info = m[1], m[2]
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        code = "\n".join(lines[i + 1:end]) + "\n"
        prev = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(prev)
        block = Block(lang, i + 1, code)
        if marker and marker[1] == "file":
            block.action, block.arg = "file", marker[2]
        elif marker and marker[2] == "background":
            block.action = "background"
        elif marker and marker[2].startswith("skip"):
            block.action, block.arg = "skip", marker[2][4:].strip(" ()")
        elif "no-run" in info.split():
            block.action, block.arg = "skip", "fence marked no-run"
        elif marker:
            raise AssertionError(f"{page}:{i + 1}: unknown marker {prev!r}")
        if block.action == "file" or lang in RUNNABLE:
            out.append(block)
        i = end + 1
    return out


def _shell_code(block: Block) -> str:
    """The commands of a shell block: a console block's ``$ `` lines; no ``pip install``."""
    lines = block.code.splitlines()
    if block.lang == "console":
        lines = [ln[2:] for ln in lines if ln.startswith("$ ")]
    return "\n".join(ln for ln in lines if not ln.lstrip().startswith("pip install")) + "\n"


# The interpreter a page's Python blocks run in: blocks come as JSON lines on stdin, each
# answered on the original stdout; what the blocks print goes to the page's log.
DRIVER = textwrap.dedent("""
    import json, os, sys, traceback
    proto = os.fdopen(os.dup(1), "w")
    log = open(sys.argv[1], "a", buffering=1)
    os.dup2(log.fileno(), 1); os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    ns = {"__name__": "__main__"}
    for req in sys.stdin:
        req = json.loads(req)
        os.environ.clear(); os.environ.update(req["env"])
        print(f"--- {req['name']}", flush=True)
        try:
            exec(compile(req["code"], req["name"], "exec"), ns)
            answer = {"ok": True}
        except BaseException:
            answer = {"ok": False, "error": traceback.format_exc()}
        sys.stdout.flush()
        proto.write(json.dumps(answer) + "\\n"); proto.flush()
""")


class PageRun:
    """One page's session: its directory, environment, interpreter and platforms."""

    def __init__(self, page: str, work: Path) -> None:
        self.page, self.work = page, work
        self.ports: dict[int, int] = {}  # the docs' ports: those the platforms here took
        self.log = work.parent / "page.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PYCONNECTOR_")}
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["PYCONNECTOR_PORT"] = "0"  # a `serve` the docs start takes a free port
        self.background: list[subprocess.Popen[bytes]] = []
        self.background_logs: list[Path] = []
        self.platform: ServerProcess | None = None
        self.python: subprocess.Popen[str] | None = None

    def localise(self, code: str) -> str:
        """The docs' ports (8080, and any a background block names) are free ones here."""
        return re.sub(r"(?<=127\.0\.0\.1:)\d+\b|(?<=localhost:)\d+\b|(?<=--port )\d+\b",
                      lambda m: str(self.ports.get(int(m[0]), m[0])), code)

    def start_platform(self) -> None:
        """The README quick start's platform, for a page that starts none itself."""
        self.platform = ServerProcess.start(self.work / "pyconnector-data")  # --port 0
        self.ports[8080] = int(self.platform.url.rsplit(":", 1)[1])
        self.env["PYCONNECTOR_URL"] = self.platform.url
        self.env["PYCONNECTOR_API_KEY"] = self.platform.api_key

    def where(self, block: Block) -> str:
        return f"{self.page}:{block.line}"

    def output(self) -> str:
        """The end of what the page's blocks printed, and of its background blocks."""
        text = self.log.read_text() if self.log.exists() else ""
        for out in self.background_logs:
            text += f"--- background {out.name}:\n{out.read_text()[-3000:]}"
        return text[-8000:]

    def run(self, block: Block) -> None:
        if block.action == "file":
            (self.work / block.arg).write_text(block.code)
        elif block.action == "background":
            self.run_background(block)
        elif block.lang == "python":
            self.run_python(block)
        else:
            self.run_shell(block)

    def run_shell(self, block: Block) -> None:
        # What the block sets, variables and functions, is there for the next blocks.
        env_file, functions = self.work.parent / "env.json", self.work.parent / "functions.sh"
        script = (f"set -a -e -o pipefail\n[ -f {functions} ] && . {functions}\n"
                  f"{self.localise(_shell_code(block))}"
                  f"declare -f > {functions}\n"
                  f"{sys.executable} -c 'import json, os, sys; "
                  f"json.dump(dict(os.environ), open(sys.argv[1], \"w\"))' {env_file}\n")
        with self.log.open("a") as log:
            log.write(f"--- {self.where(block)}\n")
            log.flush()
            try:
                done = subprocess.run(["bash", "-c", script], cwd=self.work, env=self.env,
                                      stdout=log, stderr=subprocess.STDOUT,
                                      timeout=BLOCK_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{self.where(block)}: still running after {BLOCK_TIMEOUT} s")
        if done.returncode:
            pytest.fail(f"{self.where(block)}: the shell block exited {done.returncode}:\n"
                        f"{self.output()}")
        self.env = json.loads(env_file.read_text())

    def run_python(self, block: Block) -> None:
        if self.python is None:
            self.python = subprocess.Popen([sys.executable, "-c", DRIVER, str(self.log)],
                                           cwd=self.work, env=self.env, text=True,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.python.stdin and self.python.stdout
        req = {"name": self.where(block), "code": self.localise(block.code), "env": self.env}
        self.python.stdin.write(json.dumps(req) + "\n")
        self.python.stdin.flush()
        ready, _, _ = select.select([self.python.stdout], [], [], BLOCK_TIMEOUT)
        if not ready:
            pytest.fail(f"{self.where(block)}: still running after {BLOCK_TIMEOUT} s:\n"
                        f"{self.output()}")
        line = self.python.stdout.readline()
        if not line:
            pytest.fail(f"{self.where(block)}: the interpreter ended:\n{self.output()}")
        answer = json.loads(line)
        if not answer["ok"]:
            pytest.fail(f"{self.where(block)}: the Python block failed:\n{answer['error']}\n"
                        f"output:\n{self.output()}")

    def run_background(self, block: Block) -> None:
        """Start the block, its platform on a free port (``--port 0``: a port picked
        beforehand could be taken meanwhile on a shared machine); the port it names, else
        8080, is that one from now on. Returns once ``/health`` answers there."""
        named = re.search(r"--port (\d+)", block.code)
        docs_port = int(named[1]) if named else 8080
        code = re.sub(r"--port \d+", "--port 0", self.localise(_shell_code(block)))
        out = self.work.parent / f"background-{block.line}.log"
        with out.open("w") as log:
            proc = subprocess.Popen(["bash", "-c", code], cwd=self.work, env=self.env,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.background.append(proc)
        self.background_logs.append(out)

        def alive() -> None:
            if proc.poll() is not None:
                pytest.fail(f"{self.where(block)}: ended with {proc.returncode}:\n"
                            f"{self.output()}")

        def listening() -> bool:
            alive()
            if m := re.search(r"listening on http://\S+:(\d+)", out.read_text()):
                self.ports[docs_port] = int(m[1])
            return docs_port in self.ports

        def healthy() -> bool:
            alive()
            try:
                url = f"http://127.0.0.1:{self.ports[docs_port]}/health"
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        self.ports.pop(docs_port, None)
        wait_for(f"{self.where(block)} to say where it listens", listening, timeout=60)
        wait_for(f"{self.where(block)} to answer /health", healthy, timeout=60)

    def close(self) -> None:
        if self.python is not None:
            assert self.python.stdin
            self.python.stdin.close()
            try:
                self.python.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.python.kill()
                self.python.wait()
            assert self.python.stdout
            self.python.stdout.close()
        for proc in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        if self.platform is not None:
            self.platform.stop()


@pytest.mark.parametrize("page", [p for p in PAGES if p not in EXCLUDED])
def test_page_runs(page: str, tmp_path: Path) -> None:
    """Every block of the page runs, in order, as written."""
    for name, host, port in NEEDS.get(page, []):
        need_service(name, host, port)
    page_blocks = blocks(page)
    work = tmp_path / "reader"
    work.mkdir()
    session = PageRun(page, work)
    try:
        first = next((b for b in page_blocks if b.action in ("run", "background")), None)
        if first is not None and first.action == "run":  # the page starts none first
            session.start_platform()
        for block in page_blocks:
            if block.action == "skip":
                print(f"{session.where(block)}: skipped: {block.arg}")
            else:
                session.run(block)
    finally:
        session.close()
    count = {a: sum(b.action == a for b in page_blocks) for a in ("run", "background",
                                                                   "file", "skip")}
    print(f"{page}: {count['run'] + count['background']} block(s) run, {count['file']} "
          f"file(s) saved, {count['skip']} skipped")


def test_excluded_pages_exist_and_skips_say_why() -> None:
    """An exclusion names a real page; every skipped block says why."""
    assert set(EXCLUDED) <= set(PAGES)
    for page in PAGES:
        for block in blocks(page):
            if block.action == "skip":
                assert block.arg, f"{page}:{block.line}: a skip without a reason"
