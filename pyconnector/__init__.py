"""pyconnector: one Python door to IoT platform services.

>>> import pyconnector
>>> conn = pyconnector.connectors(api_key="…", URL="http://127.0.0.1:8080")
>>> sos = conn.SensorObservation()
>>> sos.getCount()
"""

__version__ = "0.1.0"

from .connectors import connectors  # noqa: E402
from .errors import (  # noqa: E402
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    ConnectError,
    DataError,
    InputError,
    NotFoundError,
    NotJSONError,
    PayloadTooLargeError,
    PyConnectorError,
    RateLimitError,
    ServerError,
    TimeoutError,
    TransportError,
)
from .mqtt import MQTTPublisher, MQTTRefusedError, MQTTSubscriber, MQTTUtils  # noqa: E402
from .routing import SSEStream, WebSocketSubscription, srwsUtils  # noqa: E402

__all__ = [
    "__version__", "connectors", "PyConnectorError", "ConfigError", "TransportError",
    "ConnectError", "TimeoutError", "APIError", "BadRequestError", "AuthenticationError",
    "NotFoundError", "ConflictError", "PayloadTooLargeError", "RateLimitError", "ServerError",
    "DataError", "NotJSONError", "InputError", "MQTTRefusedError", "MQTTUtils", "MQTTSubscriber", "MQTTPublisher",
    "srwsUtils", "WebSocketSubscription", "SSEStream",
]
