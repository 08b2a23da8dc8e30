"""TCUP's upload form, ``multipart/form-data``, read as the body streams.

The parts are TCUP's: ``file`` (the content; its ``filename`` names the file unless the
query does), ``comment`` and ``metadata`` (repeatable, each ``key=value[,key=value]``).
python-multipart's callback parser finds the part boundaries chunk by chunk, so the file
goes to the blob store block by block and never sits in memory whole; the text parts
are small and bounded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

try:
    from python_multipart.multipart import MultipartParser, parse_options_header
except ImportError:  # pragma: no cover - python-multipart before 0.0.13
    from multipart.multipart import MultipartParser, parse_options_header  # type: ignore

from ..errors import bad_request

FORM_TYPE = "multipart/form-data"
# All text parts together: 100 metadata items of a 255-character key and a 1 KiB value
# fit many times over.
MAX_TEXT_BYTES = 1 << 20


@dataclass(frozen=True)
class Part:
    """The headers of one part of the form."""

    name: str
    filename: str | None
    content_type: str


def boundary(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` body; None for any other content type."""
    essence, options = parse_options_header(content_type)
    if essence.decode("latin-1") != FORM_TYPE:
        return None
    b = options.get(b"boundary")
    if not b or len(b) > 70:  # RFC 2046: 1 to 70 characters
        raise bad_request("content-type: multipart/form-data needs a boundary of 1 to 70 "
                          "characters", "content-type")
    return b


def _utf8(raw: bytes, field: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"{field}: not UTF-8 text", field) from None


class FormReader:
    """The parts of a form body: :meth:`next_part`, then :meth:`data` or :meth:`text` for
    its content, which must be read (or skipped) before the next part."""

    def __init__(self, body: AsyncIterator[bytes], boundary: bytes) -> None:
        self._body = body
        self._events: list[Any] = []  # Part, bytes (content), None (end of a part)
        self._header: list[bytes] = [b"", b""]
        self._headers: dict[str, bytes] = {}
        self._ended = False
        self._text_bytes = 0
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, a, b: self._add_header(0, d[a:b]),
            "on_header_value": lambda d, a, b: self._add_header(1, d[a:b]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": lambda d, a, b: self._events.append(d[a:b]),
            "on_part_end": lambda: self._events.append(None),
            "on_end": self._end,
        })
        self._it = self._run()

    # -- parser callbacks (synchronous; they queue events for the async side) -------------
    def _part_begin(self) -> None:
        self._headers = {}

    def _add_header(self, i: int, data: bytes) -> None:
        self._header[i] += data
        if len(self._header[i]) > 8192:
            raise bad_request("body: a form part's header is over 8 KiB", "body")

    def _header_end(self) -> None:
        self._headers[self._header[0].decode("latin-1").strip().lower()] = self._header[1]
        self._header = [b"", b""]

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(
            self._headers.get("content-disposition", b"").decode("latin-1"))
        name = options.get(b"name")
        if disposition != b"form-data" or name is None:
            raise bad_request("body: every form part needs Content-Disposition: form-data; "
                              'name="…"', "body")
        filename = options.get(b"filename")
        ctype = self._headers.get("content-type", b"").decode("latin-1").strip()
        # parse_options_header hands back latin-1 bytes; browsers send names as UTF-8.
        self._events.append(Part(_utf8(name, "body"), None if filename is None else
                                 _utf8(filename, "file"), ctype))

    def _end(self) -> None:
        self._ended = True

    # -- the async side ----------------------------------------------------------------------
    async def _run(self) -> AsyncIterator[Any]:
        async for chunk in self._body:
            try:
                self._parser.write(chunk)
            except ValueError as exc:  # python-multipart's parse errors are ValueErrors
                raise bad_request(f"body: malformed multipart/form-data ({exc})",
                                  "body") from None
            events, self._events = self._events, []
            for event in events:
                yield event
            if self._ended:
                return
        raise bad_request("body: the form ended before its closing boundary", "body")

    async def next_part(self) -> Part | None:
        """The next part's headers; None after the last part."""
        async for event in self._it:
            if isinstance(event, Part):
                return event
        return None

    async def data(self) -> AsyncIterator[bytes]:
        """The current part's content, as it arrives."""
        async for event in self._it:
            if event is None:
                return
            if event:
                yield event

    async def text(self, field: str) -> str:
        """The current part's content as text (all text parts share a bound)."""
        parts = []
        async for block in self.data():
            self._text_bytes += len(block)
            if self._text_bytes > MAX_TEXT_BYTES:
                raise bad_request(f"{field}: the form's text parts are over "
                                  f"{MAX_TEXT_BYTES} bytes", field)
            parts.append(block)
        return _utf8(b"".join(parts), field)
