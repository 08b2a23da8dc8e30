"""The ``celery`` executor: jobs run on Celery workers (``pyconnector worker``) that take
them from RabbitMQ.

``celery://user:password@host:5672/vhost?queue=pyconnector.tasks&concurrency=32&lost_after=30``

The part after ``celery://`` is the AMQP broker (default ``guest:guest@127.0.0.1:5672``,
vhost ``/``). *queue* is the queue workers read (one per platform sharing a broker);
*concurrency* how many jobs the platform hands out at once (the rest wait on the
platform, in order; workers have their own ``--concurrency``); *lost_after* the seconds
a worker may go silent before its job is reported lost. The queue carries only a small
message (see :mod:`.remote`); the worker fetches the files from the platform, runs the job
with the local executor's limits and reports back (:mod:`.worker`).

Celery is imported when an executor or a worker is opened, not before: a platform
without the ``celery`` extra refuses ``celery://`` saying which extra to install.
"""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .base import executors
from .remote import RemoteExecutor

#: the name workers know the job task by
TASK_NAME = "pyconnector.run_job"
DEFAULT_QUEUE = "pyconnector.tasks"
DEFAULT_BROKER = "guest:guest@127.0.0.1:5672/"
#: jobs the platform hands out at once, unless the URL says
DEFAULT_CONCURRENCY = 32
#: publish attempts while the broker does not answer, about a second apart (about 30 s)
PUBLISH_RETRIES = 30
#: seconds of a worker's silence before its job is reported lost, unless the URL says
DEFAULT_LOST_AFTER = 30.0


def parse(url: str) -> tuple[str, dict[str, str]]:
    """The AMQP broker URL and the options of a ``celery://`` URL."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"queue", "concurrency", "lost_after"})
    if unknown:
        raise ValueError(f"executor URL {url!r}: unknown option {unknown[0]!r} (celery:// "
                         f"takes queue, concurrency and lost_after)")
    rest = parts.netloc + parts.path if parts.netloc else DEFAULT_BROKER
    return f"amqp://{rest}", options


def _number(url: str, options: dict[str, str], name: str, default: float) -> float:
    if name not in options:
        return default
    try:
        value = float(options[name])
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"executor URL {url!r}: {name} must be a number of at least 1, "
                         f"not {options[name]!r}")
    return value


def celery_app(broker: str, queue: str) -> Any:
    """The Celery application of platform and workers: one task, the job."""
    try:
        from celery import Celery
    except ImportError:
        raise ValueError("the celery executor needs Celery: pip install "
                         "'pyconnector-platform[server,celery]'") from None
    app = Celery("pyconnector", broker=broker, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        task_ignore_result=True,  # outcomes come back over HTTP (see .remote)
        worker_prefetch_multiplier=1,  # a busy worker leaves the next job to a free one
        # a broker restarting (seconds) delays the runs handed out meanwhile, not fails them
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": PUBLISH_RETRIES, "interval_start": 0,
                                   "interval_step": 0.5, "interval_max": 1.0},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # orders go over HTTP (see .remote): no pidbox queue, which two workers of one
        # machine would otherwise fight over
        worker_enable_remote_control=False,
    )

    @app.task(name=TASK_NAME, ignore_result=True)
    def run_job(message: dict[str, Any]) -> None:
        from .worker import run

        run(message)

    return app


@executors.register("celery")
class CeleryExecutor(RemoteExecutor):
    """Hands jobs to Celery workers (see the module docstring)."""

    kind = "celery"

    def __init__(self, broker: str, queue: str, concurrency: int, callback_url: str,
                 lost_after: float) -> None:
        super().__init__(concurrency, callback_url, lost_after)
        self.broker, self.queue = broker, queue
        self.app = celery_app(broker, queue)

    @classmethod
    def from_url(cls, url: str, **context: Any) -> CeleryExecutor:
        """``celery://[user:password@host:port/vhost][?queue=&concurrency=&lost_after=]``;
        ``context["callback_url"]``: where workers reach the platform's worker routes."""
        broker, options = parse(url)
        return cls(broker, options.get("queue") or DEFAULT_QUEUE,
                   int(_number(url, options, "concurrency", DEFAULT_CONCURRENCY)),
                   str(context.get("callback_url") or ""),
                   _number(url, options, "lost_after", DEFAULT_LOST_AFTER))

    def send(self, message: dict[str, Any]) -> None:
        self.app.send_task(TASK_NAME, args=[message], queue=self.queue)

    async def close(self) -> None:
        await super().close()
        self.app.close()


def run_worker(url: str, concurrency: int, loglevel: str = "info") -> None:
    """Run a Celery worker for the platform whose executor is ``url`` until stopped
    (SIGTERM or Ctrl-C: once its jobs have ended; SIGQUIT: at once, its jobs with it)."""
    if urlsplit(url).scheme != "celery":
        raise ValueError(f"pyconnector worker runs tasks of a platform whose --executor is "
                         f"celery://…, not {url!r}")
    broker, options = parse(url)
    queue = options.get("queue") or DEFAULT_QUEUE
    app = celery_app(broker, queue)
    # threads: a job is a subprocess the thread waits on; nothing heavy runs in Python.
    app.worker_main(["worker", "--pool", "threads", "--concurrency", str(concurrency),
                     "--queues", queue, "--loglevel", loglevel.upper(),
                     "--hostname", f"pyconnector-{os.getpid()}@{socket.gethostname()}",
                     "--without-gossip", "--without-mingle"])
