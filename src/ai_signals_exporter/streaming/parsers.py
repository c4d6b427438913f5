"""Incremental parsers that count the events of a streamed response as bytes arrive.

Bytes come off the socket in arbitrary pieces: an event, a line, even a CR LF pair can be split
across two reads.  Each parser keeps only the unfinished tail of the input (bounded by
`max_pending`), so an endless or hostile stream costs bounded memory.

- `SSEParser`: text/event-stream as in the WHATWG spec (lines end in CR LF, LF or CR; a blank line
  dispatches the event; comment lines start with ':'; an event without `data` is not dispatched;
  an unfinished event at end of stream is discarded).  `data: [DONE]` (OpenAI) marks the end and is
  not counted as a token event.
- `NDJSONParser`: one JSON document per line; blank lines are ignored; a last line without a
  newline still counts at end of stream (many servers omit the final newline).
- `ChunkParser`: no framing known, so each non-empty piece of decoded body counts as one chunk.
  TCP and the proxy may merge or split writes, so this count is approximate by nature.
"""

from __future__ import annotations

import re

DEFAULT_MAX_PENDING = 1 << 20  # one unfinished line/event may not exceed 1 MiB


class ParseError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # one of selfmon.REASONS


_EOL = re.compile(rb"\r\n|\n|\r")


class _Lines:
    """Splits bytes into lines ending in CR LF, LF or CR, across arbitrary feed boundaries."""

    __slots__ = ("_buf", "_max")

    def __init__(self, max_pending: int) -> None:
        self._buf = b""
        self._max = max_pending

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        lines = []
        pos = 0
        n = len(buf)
        while True:
            m = _EOL.search(buf, pos)
            if m is None:
                break
            # A CR as the very last byte may be the first half of CR LF: wait for the next byte.
            if m.group() == b"\r" and m.end() == n:
                break
            lines.append(buf[pos : m.start()])
            pos = m.end()
        self._buf = buf[pos:]
        if len(self._buf) > self._max:
            raise ParseError("too_large")
        return lines

    def finish(self) -> tuple[list[bytes], bytes]:
        """Lines still held (a trailing CR) and the unterminated rest."""
        buf, self._buf = self._buf, b""
        if buf.endswith(b"\r"):
            return [buf[:-1]], b""
        return [], buf


class SSEParser:
    format = "sse"

    def __init__(self, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self._lines = _Lines(max_pending)
        self._has_data = False
        self._data_len = 0
        self._data: list[bytes] = []
        self._first_line = True
        self._max = max_pending
        self.done = False  # saw data: [DONE]

    def _line(self, line: bytes) -> int:
        if self._first_line:
            self._first_line = False
            if line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return 0
        name, sep, value = line.partition(b":")
        if name != b"data":
            return 0  # event:, id:, retry: do not make an event on their own
        if sep and value.startswith(b" "):
            value = value[1:]
        self._has_data = True
        # Only short payloads can be [DONE]; keep at most a little of each data line.
        if self._data_len <= 16:
            self._data.append(value[:16])
            self._data_len += len(value) + 1
        return 0

    def _dispatch(self) -> int:
        if not self._has_data:
            return 0
        short = self._data_len <= 16
        data = b"\n".join(self._data)
        self._has_data = False
        self._data = []
        self._data_len = 0
        if short and data.strip() == b"[DONE]":
            self.done = True
            return 0
        return 0 if self.done else 1

    def feed(self, data: bytes) -> int:
        return sum(self._line(line) for line in self._lines.feed(data))

    def finish(self) -> int:
        held, _rest = self._lines.finish()  # an unterminated line cannot end an event
        return sum(self._line(line) for line in held)


class NDJSONParser:
    format = "ndjson"

    def __init__(self, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self._buf = b""
        self._max = max_pending
        self.done = False

    def feed(self, data: bytes) -> int:
        buf = self._buf + data if self._buf else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._buf = buf
            if len(buf) > self._max:
                raise ParseError("too_large")
            return 0
        self._buf = buf[cut + 1 :]
        if len(self._buf) > self._max:
            raise ParseError("too_large")
        return sum(1 for line in buf[:cut].split(b"\n") if line.strip())

    def finish(self) -> int:
        rest, self._buf = self._buf, b""
        return 1 if rest.strip() else 0


class ChunkParser:
    format = "chunked"

    def __init__(self, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.done = False

    def feed(self, data: bytes) -> int:
        return 1 if data else 0

    def finish(self) -> int:
        return 0


Parser = SSEParser | NDJSONParser | ChunkParser

_NDJSON_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
    "application/json-seq",
}


def format_from_content_type(content_type: str | None) -> str:
    """`format: auto` resolution: SSE and NDJSON by media type, everything else plain chunks."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "text/event-stream":
        return "sse"
    if media in _NDJSON_TYPES:
        return "ndjson"
    return "chunked"


def make_parser(fmt: str, max_pending: int = DEFAULT_MAX_PENDING) -> Parser:
    if fmt == "sse":
        return SSEParser(max_pending)
    if fmt == "ndjson":
        return NDJSONParser(max_pending)
    if fmt == "chunked":
        return ChunkParser(max_pending)
    raise ValueError(f"unknown stream format {fmt!r}")
