"""The connector's errors: one tree, every third-party failure re-raised as one of ours."""

from __future__ import annotations

from typing import Any


class PyConnectorError(Exception):
    """Base of every error the connector raises."""


class ConfigError(PyConnectorError):
    """The configuration is missing something or cannot be read."""


class TransportError(PyConnectorError):
    """The platform could not be reached or did not answer in time."""


class ConnectError(TransportError):
    """No connection to the platform (wrong URL, server down)."""


class TimeoutError(TransportError):  # noqa: A001 - ours, scoped to pyconnector
    """The platform did not answer within the timeout."""


class APIError(PyConnectorError):
    """The platform answered with an error.

    ``status`` is the HTTP-style code (from the body for TCUP's "200 + code" answers),
    ``message`` the server's message, ``field``/``line`` what it blamed, ``body`` all of it,
    ``method``/``url`` the request that got the answer (``None`` when no request did).
    """

    def __init__(self, status: int, message: str, body: Any = None, *,
                 method: str | None = None, url: str | None = None) -> None:
        where = f" ({method} {url})" if method and url else ""
        super().__init__(f"{status}: {message}{where}")
        self.status = status
        self.message = message
        self.body = body
        self.method = method
        self.url = url
        self.field: str | None = body.get("field") if isinstance(body, dict) else None
        self.line: int | None = body.get("line") if isinstance(body, dict) else None


class BadRequestError(APIError):
    """400: the request was malformed or a value was invalid."""


class AuthenticationError(APIError):
    """401/403: missing, unknown or expired credentials."""


class NotFoundError(APIError):
    """404: no such resource (or not visible to this tenant)."""


class ConflictError(APIError):
    """409: the resource already exists or is in use."""


class PayloadTooLargeError(APIError):
    """413: the request body is over the platform's limit."""


class RateLimitError(APIError):
    """429: too many requests; the connector already retried, waiting as ``Retry-After`` said."""


class ServerError(APIError):
    """5xx: the platform failed."""


class DataError(PyConnectorError):
    """A result could not be turned into the requested shape (e.g. unparseable CSV)."""


class NotJSONError(DataError):
    """The answer was not the JSON the platform gives (a wrong base URL, a proxy's page).

    ``status`` is its HTTP status, ``content_type`` its content type, ``url`` the URL asked.
    """

    def __init__(self, message: str, *, status: int, content_type: str, url: str) -> None:
        super().__init__(message)
        self.status = status
        self.content_type = content_type
        self.url = url


class InputError(PyConnectorError, ValueError):
    """A value given to the connector is not valid (checked before anything is sent)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: AuthenticationError,
    404: NotFoundError, 409: ConflictError, 413: PayloadTooLargeError, 429: RateLimitError}


def api_error(status: int, message: str, body: Any = None, *, method: str | None = None,
              url: str | None = None) -> APIError:
    """The most specific :class:`APIError` subclass for ``status``, naming the request."""
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else APIError)
    return cls(status, message, body, method=method, url=url)
