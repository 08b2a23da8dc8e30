"""The platform's HTTP/1.1 connections: uvicorn's httptools protocol with the limits it lacks.

uvicorn closes a keep-alive connection that stays idle after a response and can answer 503
past a concurrency limit, but it leaves a new connection that never sends a byte open for
ever, has no limit on the size of a request's head (httptools has none either), and no
timeout for a client that sends its head or its body slowly. :class:`LimitedHttpProtocol`
adds them, from the settings:

- ``max_connections``: a connection past the limit is answered 503 at once and closed;
- ``keep_alive_seconds``: a connection with no request in progress (new, or between
  requests) is closed after this long;
- ``header_timeout_seconds``: once a request's first byte arrives, its request line and
  headers must be complete within this time, else 408 and close;
- ``max_header_bytes``: a request line plus headers over the limit gets 431 (RFC 6585) and
  the connection is closed; counted as bytes arrive, so a huge head is never buffered whole;
- ``body_timeout_seconds``: a request body that makes no progress for this long gets 408
  (or is just cut when the answer has started) and the connection is closed. Time the
  server itself holds the body back (flow control, ``Expect: 100-continue``) is not counted.

Refusals answer in the platform's JSON error shape with ``Connection: close``, then close
"lingering": the write side is shut and what the client still sends is read and dropped
for up to :data:`LINGER_SECONDS`, so a client still sending its huge head reads the answer
instead of a connection reset.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .settings import Settings

LINGER_SECONDS = 2.0  # how long a refused connection drains its client's input at most


@dataclass(frozen=True)
class ConnectionLimits:
    """The connection limits of one server, from its settings."""

    max_connections: int
    max_header_bytes: int
    header_timeout: float
    body_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.max_connections, settings.max_header_bytes,
                   settings.header_timeout_seconds, settings.body_timeout_seconds)


def protocol_class(limits: ConnectionLimits) -> type[LimitedHttpProtocol]:
    """The protocol class to give ``uvicorn.Config(http=…)`` for ``limits``."""
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), {"limits": limits})


class _Phase(enum.Enum):
    IDLE = "no request in progress"  # uvicorn's keep-alive timer governs
    HEAD = "reading a request line and headers"
    BODY = "reading a request body"
    DONE = "refused, lingering or upgraded: no longer served"


class _Refused(Exception):
    """Raised in a parser callback to stop parsing once the request has been refused."""


class _FlowControl(FlowControl):
    """uvicorn's flow control, telling the protocol when it resumes reading: time spent
    paused is the server's, not the client's."""

    def __init__(self, transport: asyncio.Transport, on_resume: Callable[[], None]) -> None:
        super().__init__(transport)
        self._on_resume = on_resume

    def resume_reading(self) -> None:
        if self.read_paused:
            self._on_resume()
        super().resume_reading()


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol plus connection limits (see the module doc)."""

    limits: ConnectionLimits

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._phase = _Phase.IDLE
        self._head_bytes = 0  # bytes of the current head seen so far (never more)
        self._timer: asyncio.TimerHandle | None = None  # the head or body timer
        self._body_progress = 0.0  # loop time the body last moved (or reading resumed)

    # -- connection ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _FlowControl(transport, self._body_moved)
        limit = self.limits.max_connections
        if len(self.connections) > limit:
            self.logger.warning("Refused a connection: %d open, the limit", limit)
            self._refuse(503, f"the server has {limit} connections open, its limit; try "
                         "again shortly", retry_after=True)
            return
        # uvicorn arms its keep-alive timer only after a response: a connection that never
        # sends a byte would otherwise stay open for ever.
        self._arm_keep_alive()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self._phase is _Phase.DONE:
            self.transport.close()
        else:
            super().shutdown()

    def timeout_keep_alive_handler(self) -> None:
        # uvicorn arms this after a response even when a pipelined request is already
        # arriving; while one is, the head and body timers govern instead.
        if self._phase is _Phase.IDLE:
            super().timeout_keep_alive_handler()
        else:
            self.timeout_keep_alive_task = None

    def handle_websocket_upgrade(self) -> None:
        self._cancel_timer()
        self._phase = _Phase.DONE  # the WebSocket protocol owns the transport from here
        super().handle_websocket_upgrade()

    def _invalid_request(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self._cancel_timer()
        self._phase = _Phase.DONE
        self.send_400_response(msg)

    # -- data -------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._phase is _Phase.DONE:
            return  # lingering: what the client still sends is dropped
        if self._phase is not _Phase.BODY:
            # Counts only chunks that start outside a body: on_headers_complete zeroes it,
            # so body bytes ahead of a pipelined head are never counted as head.
            self._head_bytes += len(data)
        # uvicorn's data_received, except that our own refusal (_Refused, raised in a
        # parser callback) is not reported as an invalid request.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _Refused):
                self._invalid_request()
            return
        except httptools.HttpParserError:
            self._invalid_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        phase = self._phase
        if phase is _Phase.DONE or self.transport.is_closing():
            return
        if phase is _Phase.BODY:
            self._body_moved()
            if self._timer is None:
                self._timer = self.loop.call_later(self.limits.body_timeout, self._body_check)
        elif self._head_bytes > self.limits.max_header_bytes:
            self._refuse_head_too_large()
        elif phase is _Phase.HEAD:
            if self._timer is None:  # the head began in this chunk
                self._timer = self.loop.call_later(self.limits.header_timeout,
                                                   self._head_timed_out)
        elif self._idle() and self.timeout_keep_alive_task is None:
            self._arm_keep_alive()  # bytes that began no request (blank lines) reset it

    # -- parser callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _Phase.HEAD

    def on_headers_complete(self) -> None:
        # Exact size, for a head that arrived in one chunk with what follows it (the byte
        # count in data_received stops at the chunk that completes the head).
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.max_header_bytes:
            self._refuse_head_too_large()
            raise _Refused  # stops the parser
        self._cancel_timer()
        self._phase = _Phase.BODY
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._phase is _Phase.BODY:
            self._cancel_timer()
            self._phase = _Phase.IDLE

    # -- timers -------------------------------------------------------------------------------
    def _arm_keep_alive(self) -> None:
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _idle(self) -> bool:
        """No request in progress: none being read, handled or queued."""
        return (self._phase is _Phase.IDLE and not self.pipeline
                and (self.cycle is None or self.cycle.response_complete))

    def _body_moved(self) -> None:
        self._body_progress = self.loop.time()

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._phase is _Phase.HEAD:
            self._refuse(408, "request headers not complete within "
                         f"{self.limits.header_timeout:g} s (header_timeout_seconds)")

    def _body_check(self) -> None:
        self._timer = None
        if self._phase is not _Phase.BODY:
            return
        timeout = self.limits.body_timeout
        cycle = self.cycle
        if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
            # The server holds the body back (the app has not read what came, or has not
            # asked for it yet): not the client's stall.
            self._timer = self.loop.call_later(timeout, self._body_check)
            return
        stalled = self.loop.time() - self._body_progress
        if stalled < timeout:
            self._timer = self.loop.call_later(timeout - stalled, self._body_check)
            return
        self._refuse(408, f"request body stalled for {timeout:g} s (body_timeout_seconds)")

    # -- refusals ---------------------------------------------------------------------------
    def _refuse_head_too_large(self) -> None:
        limit = self.limits.max_header_bytes
        self.logger.warning("Refused a request whose head is over %d bytes", limit)
        self._refuse(431, f"request line and headers too large: the limit is {limit} bytes "
                     "(max_header_bytes)")

    def _refuse(self, status: int, message: str, retry_after: bool = False) -> None:
        """Answer ``status`` if no other answer is being written, then close lingering."""
        in_body = self._phase is _Phase.BODY
        self._cancel_timer()
        self._unset_keepalive_if_required()
        self._phase = _Phase.DONE
        self.connections.discard(self)  # no longer served; closes itself within the linger
        cycle = self.cycle
        if in_body:
            can_answer = not cycle.response_started and not self.pipeline
        else:  # the refused request has no cycle yet; an earlier one may still be answering
            can_answer = cycle is None or cycle.response_complete
        if cycle is not None and not cycle.response_complete:
            # The app sees the client gone (http.disconnect) and its answer is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        if not can_answer:
            self.transport.close()
            return
        body = json.dumps({"code": status, "message": message}).encode()
        head = [STATUS_LINE[status], b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body), b"connection: close\r\n"]
        if retry_after:
            head.append(b"retry-after: 1\r\n")
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.flow.resume_reading()  # keep draining the client's input while lingering
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()
