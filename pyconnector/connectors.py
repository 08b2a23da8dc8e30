"""``pyconnector.connectors``: the one object that hands out every service connector."""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from . import config as _config
from .http import HTTPCore

if TYPE_CHECKING:  # the service modules load pandas: imported when first asked for
    from .datalake import Datalake
    from .mqtt import MQTTPublisher, MQTTSubscriber, MQTTUtils
    from .routing import srwsUtils
    from .sos import SensorObservation
    from .tasks import DelayedTask, RecurrentTask, Task
    from .workflow import Edge, Workflow


class connectors:  # noqa: N801 - the name users write, from the TCUP guide
    """Connection to a platform; its methods return one connector per service.

    >>> conn = pyconnector.connectors('ConfigFile.conf')
    >>> conn = pyconnector.connectors(api_key='…', URL='http://127.0.0.1:8080')
    >>> sos = conn.SensorObservation()
    """

    def __init__(self, config_file: str | os.PathLike[str] | None = None, *,
                 api_key: str | None = None, URL: str | None = None,  # noqa: N803
                 url: str | None = None, jwt_key: str | None = None,
                 dls_key: str | None = None,
                 timeout: float | None = None, retries: int | None = None,
                 verify: bool | str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        """Read the configuration (keywords, then ``config_file``, then the environment)
        and open a pooled HTTP client. ``verify`` is ``True``/``False`` or the path of a CA
        bundle file or directory; ``transport`` replaces httpx's (tests, proxies)."""
        self.config = _config.load(config_file, api_key=api_key, url=URL or url,
                                   jwt_key=jwt_key, dls_key=dls_key, timeout=timeout, retries=retries,
                                   verify=verify)
        self.http = HTTPCore(self.config, transport=transport)

    def __repr__(self) -> str:
        return f"connectors({self.config!r})"

    def __enter__(self) -> connectors:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self.http.close()

    def SensorObservation(self) -> SensorObservation:  # noqa: N802 - TCUP guide naming
        """The Sensor Observation Service connector."""
        from .sos import SensorObservation

        return SensorObservation(self.http)

    def Datalake(self, dlsKey: str | None = None) -> Datalake:  # noqa: N802,N803 - TCUP guide naming
        """The Data Lake Service connector; ``dlsKey`` defaults to the config's ``dls_key``."""
        from .datalake import Datalake

        return Datalake(self.http, dlsKey)

    def srwsUtils(self) -> srwsUtils:  # noqa: N802 - TCUP guide naming
        """The Message Routing and WebSocket connector: publish (REST or WebSocket),
        subscribe (WebSocket or SSE), administer exchanges, rules and queues; ``close()``
        it to end its WebSocket and subscriptions (docs/routing.md)."""
        from .routing import srwsUtils

        return srwsUtils(self.http)

    def Task(self, projectName: str | None = None, jobName: str | None = None,  # noqa: N802,N803
             projectId: str | None = None, jobId: str | None = None) -> Task:  # noqa: N803
        """A task of a project of the Task Service (docs/tasks.md): by names (made when
        missing) or ids."""
        from .tasks import Task

        return Task(self.http, projectName, jobName, projectId, jobId)

    def DelayedTask(self, delayedTime: str | int, timeZone: str | None = None,  # noqa: N802,N803
                    projectName: str | None = None, jobName: str | None = None,  # noqa: N803
                    projectId: str | None = None, jobId: str | None = None) -> DelayedTask:  # noqa: N803
        """A task that runs once at ``delayedTime``, scheduled when it is deployed."""
        from .tasks import DelayedTask

        return DelayedTask(self.http, delayedTime, timeZone, projectName, jobName, projectId,
                           jobId)

    def RecurrentTask(self, cronPatternType: str = "fixed", **kw: Any) -> RecurrentTask:  # noqa: N802,N803
        """A task that runs on a cron pattern (``hour='4', day='6'``…), scheduled when it is
        deployed; see :class:`pyconnector.tasks.RecurrentTask` for the keywords."""
        from .tasks import RecurrentTask

        return RecurrentTask(self.http, cronPatternType, **kw)

    def Workflow(self, taskList: Sequence[Edge] | None = None,  # noqa: N802,N803
                 processName: str | None = None,  # noqa: N803
                 processVersion: str | None = None) -> Workflow:  # noqa: N803
        """A process definition of the Workflow Service (docs/workflow.md): ``taskList``
        edges ``(upstream, downstream)`` between tasks (Task objects or ids), saved under
        ``processName`` and ``processVersion`` (without ``taskList``: the saved one)."""
        from .workflow import Workflow

        return Workflow(self.http, taskList, processName, processVersion)

    def mqttUtils(self) -> MQTTUtils:  # noqa: N802 - TCUP guide naming
        """Builds observation JSON for MQTT: ``mqtt.payload(sensor, outputs, feature)``; the
        payload built last is what this connector's ``mqttPublish(...).main()`` sends."""
        from .mqtt import MQTTUtils, last_payload

        return MQTTUtils(last_payload(self))

    def mqttSubscribe(self, host: str, port: int, username: str | None = None,  # noqa: N802
                      password: str | None = None, exchange: str = "amq.topic",
                      certfile: str | os.PathLike[str] | None = None,
                      **options: Any) -> MQTTSubscriber:
        """A subscriber to an MQTT gateway: ``exchange`` is the exchange the gateway puts
        MQTT messages on (RabbitMQ: ``amq.topic``), ``certfile`` a CA file (TLS; ``None``:
        plain TCP). Options: ``topic`` (filters with ``+``/``#``; default
        ``sos/observations``), ``qos``, ``client_id``, ``timeout``, ``keepalive``.
        ``sub.main(callback)`` subscribes and returns (docs/mqtt.md)."""
        from .mqtt import MQTTSubscriber

        options.setdefault("timeout", self.config.timeout)
        return MQTTSubscriber(host, port, username, password, exchange, certfile, **options)

    def mqttPublish(self, host: str, port: int, username: str | None = None,  # noqa: N802
                    password: str | None = None, exchange: str = "amq.topic",
                    certfile: str | os.PathLike[str] | None = None,
                    **options: Any) -> MQTTPublisher:
        """A publisher to an MQTT gateway, the arguments as :meth:`mqttSubscribe`'s
        (options: ``topic``, default ``sos/observations``; ``qos``, default 1; ``retain``,
        ``client_id``, ``timeout``, ``keepalive``). ``pub.main()`` publishes the payload
        this connector's ``mqttUtils().payload(...)`` built last (docs/mqtt.md)."""
        from .mqtt import MQTTPublisher, last_payload

        options.setdefault("timeout", self.config.timeout)
        return MQTTPublisher(host, port, username, password, exchange, certfile,
                             last_payload=last_payload(self), **options)
