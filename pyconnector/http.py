"""HTTP core shared by every service connector: auth, timeouts, retries, errors, streaming."""

from __future__ import annotations

import os
import random
import re
import ssl
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from . import __version__
from .config import Config, fingerprint
from .errors import (
    ConfigError,
    ConnectError,
    NotJSONError,
    TimeoutError,
    TransportError,
    api_error,
)

if TYPE_CHECKING:  # formats loads pandas; plain HTTP must not (the platform imports this)
    from .formats import JSON

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})
# 429 is retried whatever the method: the platform refused the request without running it.
RATE_LIMITED = 429
MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After is cut to this
CHUNK = 1 << 20
# A streamed CSV answer's record count, when asked with "Prefer: count=exact".
RECORD_COUNT = "x-record-count"
COUNT_EXACT = {"prefer": "count=exact"}
JWT_LIFETIME = 300  # seconds; short-lived tokens, minted per request


class HTTPCore:
    """One pooled HTTP client per :class:`~pyconnector.connectors` object."""

    def __init__(self, config: Config, transport: httpx.BaseTransport | None = None,
                 backoff: float = 0.25) -> None:
        self.config = config
        self.backoff = backoff
        self.client = httpx.Client(
            base_url=config.url, timeout=config.timeout, verify=tls_verify(config.verify),
            transport=transport, follow_redirects=True,
            headers={"x-api-key": config.api_key, "user-agent": f"pyconnector/{__version__}"},
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self.client.close()

    def describe(self, base: str = "") -> str:
        """Where and as whom, for a connector's repr (no network call, no secret): the
        URL (and a service's ``base`` path), the API key's fingerprint, JWT mode, and
        ``closed`` once :meth:`close` was called."""
        c = self.config
        return (f"{c.url.rstrip('/')}{base} api_key={fingerprint(c.api_key)}"
                + (" jwt=on" if c.jwt_key else "") + (" closed" if self.client.is_closed else ""))

    def _auth(self) -> dict[str, str]:
        if not self.config.jwt_key:
            return {}
        import jwt

        now = int(time.time())
        token = jwt.encode({"iat": now, "exp": now + JWT_LIFETIME}, self.config.jwt_key,
                           algorithm="HS256")
        return {"authorization": f"Bearer {token}"}

    def _send(self, method: str, path: str, *, stream: bool = False, **kwargs: Any
              ) -> httpx.Response:
        """Send with retries: idempotent calls on connection errors and 502/503/504; any
        call when the connection could not even be made (nothing was sent) or when the
        platform answered 429 (it ran nothing). A 429 or 503 with ``Retry-After`` waits
        that long (at most MAX_RETRY_AFTER) instead of the exponential backoff."""
        headers = {**kwargs.pop("headers", {}), **self._auth()}
        # A streamed body (an upload) is read once: it cannot be sent again.
        replayable = "content" not in kwargs
        attempt = 0
        while True:
            try:
                request = self.client.build_request(method, path, headers=headers, **kwargs)
                response = self.client.send(request, stream=stream)
            except httpx.ConnectError as exc:
                if attempt < self.config.retries and replayable:
                    attempt += 1
                    self._sleep(self._delay(attempt))
                    continue
                raise ConnectError(f"cannot connect to {self.config.url}: {exc}") from exc
            except httpx.TimeoutException as exc:
                if method in IDEMPOTENT and attempt < self.config.retries:
                    attempt += 1
                    self._sleep(self._delay(attempt))
                    continue
                raise TimeoutError(f"{method} {path}: no answer within "
                                   f"{self.config.timeout}s") from exc
            except httpx.TransportError as exc:
                raise TransportError(f"{method} {path}: {exc}") from exc
            status = response.status_code
            if attempt < self.config.retries and (
                    (status in RETRY_STATUSES and method in IDEMPOTENT)
                    or (status == RATE_LIMITED and replayable)):
                response.close()
                attempt += 1
                self._sleep(self._delay(attempt, response))
                continue
            return response

    def _delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds before retry number ``attempt``: exponential backoff with jitter, or
        what a 429/503's ``Retry-After`` asks (capped; never less than the backoff)."""
        backoff = self.backoff * 2.0 ** (attempt - 1) * (1 + random.random() / 2)
        if response is None or response.status_code not in (RATE_LIMITED, 503):
            return backoff
        asked = retry_after(response.headers.get("retry-after"))
        return backoff if asked is None else max(backoff, min(asked, MAX_RETRY_AFTER))

    def _sleep(self, seconds: float) -> None:
        # One place that waits, so that tests can watch the waits instead of sitting them out.
        time.sleep(seconds)

    @staticmethod
    def check(response: httpx.Response) -> JSON:
        """The JSON body of a successful answer; raise for an HTTP error or a body code
        >= 400 (TCUP's SOS answers writes with HTTP 200 and the real code in the body).
        The error names the request's method and URL. An error answer that is not the
        platform's JSON (a web server or proxy at a wrong base URL) is told by its content
        type and a short excerpt, never dumped whole."""
        body: JSON = None
        if _is_json(response):
            try:
                body = response.json()
            except ValueError:
                body = None
        where = {"method": response.request.method, "url": str(response.request.url)}
        if response.status_code >= 400:
            said = body.get("message") if isinstance(body, dict) else None
            if not isinstance(said, str):
                message = _foreign(response)
            elif response.status_code == 404 and said == "Not Found":
                # The platform's answer for a path it has no route for.
                message = ("Not Found: the platform has no such path; is the base URL "
                           "right? (it is the address that answers /health)")
            else:
                message = said
            raise api_error(response.status_code, message, body, **where)
        if isinstance(body, dict) and isinstance(body.get("code"), int) and body["code"] >= 400:
            raise api_error(body["code"], str(body.get("message", "")), body, **where)
        return body

    def request(self, method: str, path: str, **kwargs: Any) -> JSON:
        """Send and return the checked JSON body (``None`` for an empty answer); an answer
        that is not JSON raises :class:`~pyconnector.NotJSONError`. ``kwargs`` go to
        :meth:`httpx.Client.build_request` (``params``, ``json``…)."""
        response = self._send(method, path, **kwargs)
        body = self.check(response)
        if body is None and response.content.strip():
            raise NotJSONError(
                f"{method} {response.request.url} answered {_foreign(response, status=True)}"
                "; the platform answers JSON: is the base URL right?",
                status=response.status_code, content_type=_content_type(response),
                url=str(response.request.url))
        return body

    def get_bytes(self, path: str, **kwargs: Any) -> bytes:
        """The body of a successful GET, whole."""
        response = self._send("GET", path, **kwargs)
        self.check(response)
        return response.content

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A successful answer whose body is read as it arrives (closed on exit); an
        error answer raises as :meth:`check` does, a broken transfer as TransportError."""
        response = self._send(method, path, stream=True, **kwargs)
        try:
            if response.status_code >= 400:
                response.read()
                self.check(response)
            yield response
        except httpx.TransportError as exc:
            raise TransportError(f"{method} {path} interrupted: {exc}") from exc
        finally:
            response.close()

    def download(self, path: str, dest: str | os.PathLike[str], *,
                 progress: bool | None = False,
                 **kwargs: Any) -> Path:
        """Stream a GET answer to ``dest`` without holding it in memory.

        The progress bar's total is the ``Content-Length``; for a streamed CSV answer
        without one, the rows it holds (its ``x-record-count`` records and the header
        line), counted as lines."""
        dest = Path(dest)
        response = self._send("GET", path, stream=True, **kwargs)
        try:
            if response.status_code >= 400:
                response.read()
                self.check(response)
            total = int(response.headers.get("content-length", 0)) or None
            records = response.headers.get(RECORD_COUNT, "")
            rows = total is None and records.isascii() and records.isdigit()
            if rows:
                total = int(records) + 1
            tmp = dest.with_name(dest.name + ".part")
            with _progress(total, dest.name, progress, "row" if rows else "B") as bar, \
                    open(tmp, "wb") as fh:
                # No chunk size: httpx re-chunking costs more than the copy it saves.
                for chunk in response.iter_bytes():
                    fh.write(chunk)
                    # A quoted value holding a line break counts as two rows: the bar
                    # may end a little past its total, never short of it.
                    bar.update(chunk.count(b"\n") if rows else len(chunk))
            tmp.replace(dest)
        except httpx.TransportError as exc:
            raise TransportError(f"download of {path} interrupted: {exc}") from exc
        finally:
            response.close()
        return dest

    def upload(self, method: str, path: str, source: str | os.PathLike[str], *,
               progress: bool | None = False, **kwargs: Any) -> JSON:
        """Stream the file at ``source`` as the request body (never read whole); return
        the checked JSON answer."""
        source = Path(source)
        size = source.stat().st_size

        def chunks() -> Iterator[bytes]:
            with _progress(size, source.name, progress) as bar, open(source, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk
                    # Counted once httpx asks for the next block: this one is sent.
                    bar.update(len(chunk))

        headers = {"content-length": str(size), **kwargs.pop("headers", {})}
        return self.request(method, path, content=chunks(), headers=headers, **kwargs)


EXCERPT = 120  # characters of a foreign answer quoted in an error


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip() or "no content type"


def _is_json(response: httpx.Response) -> bool:
    kind = _content_type(response)
    return kind == "application/json" or kind.endswith("+json")


def _excerpt(text: str) -> str:
    """The start of an answer as one short line: markup and runs of blanks dropped."""
    if "<" in text:
        text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
        text = re.sub(r"(?s)<[^>]*>", " ", text)
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[:EXCERPT - 1] + "…"


def _foreign(response: httpx.Response, status: bool = False) -> str:
    """An answer that is not the platform's, described: who may have sent it (a 404
    from elsewhere: the base URL points past the platform), its content type and a short
    excerpt; with ``status``, the status first."""
    text = _excerpt(response.text) if response.content else ""
    what = f"{_content_type(response)}, starting {text!r}" if text else \
        f"{_content_type(response)}, empty"
    head = f"{response.status_code} " if status else ""
    if response.status_code == 404:
        return (f"{head}Not Found from a server that is not a pyconnector platform ({what}): "
                "is the base URL right? (it is the address that answers /health)")
    reason = response.reason_phrase or "answer"
    return f"{head}{reason}, not the platform's JSON ({what})"


class ProgressBar(Protocol):
    """What the transfers need of a progress bar (tqdm's, or none)."""

    def __enter__(self) -> ProgressBar: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool | None: ...

    def update(self, n: int) -> bool | None:
        """Count ``n`` more bytes done."""


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


AUTO_PROGRESS_BYTES = 8 << 20


def _progress(total: int | None, label: str, enabled: bool | None,
              unit: str = "B") -> ProgressBar:
    """A tqdm bar in bytes (or in ``unit``s: rows) when asked for (``progress=True``),
    else nothing; ``None`` means a bar on a terminal for transfers over 8 MiB (or of
    unknown size, or counted in rows)."""
    if enabled is None:
        enabled = sys.stderr.isatty() and (
            total is None or unit != "B" or total > AUTO_PROGRESS_BYTES)
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    bytes_ = unit == "B"
    bar: ProgressBar = tqdm(total=total, desc=label, unit=unit, unit_scale=bytes_,
                            unit_divisor=1024 if bytes_ else 1000)
    return bar


def tls_verify(verify: bool | str) -> bool | ssl.SSLContext:
    """What httpx takes for ``config.verify``: a bool as is; a CA bundle file or a
    directory of hashed CA certificates as an SSL context (httpx deprecates paths)."""
    if isinstance(verify, bool):
        return verify
    path = Path(verify).expanduser()
    if path.is_dir():
        return ssl.create_default_context(capath=str(path))
    if path.is_file():
        return ssl.create_default_context(cafile=str(path))
    raise ConfigError(f"verify: {verify!r} is neither true/false nor a CA file or directory")


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: a number of seconds or an HTTP
    date; ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, said without commitment
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())
