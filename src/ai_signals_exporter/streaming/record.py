"""What one streamed request measured, and the clock that fills it in.

All phase times are seconds from the start of the request (before connecting), taken from one
monotonic clock, so a wall-clock step during a probe cannot distort them.  The record holds a few
numbers only, never the body or per-event lists: memory per probe is constant however long the
stream is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..slots import Slot


@dataclass(slots=True)
class StreamMeasurement:
    route: str  # "ingress" | "direct"
    ok: bool = False
    reason: str = ""  # a selfmon.REASONS value when not ok
    status: int = 0
    format: str = ""  # sse | ndjson | chunked, as parsed
    encoding: str = ""  # Content-Encoding of the response ("" = none)
    ttfb: float | None = None  # response headers received
    first_body: float | None = None  # first (possibly still compressed) body bytes
    first_chunk: float | None = None  # first decoded event / chunk
    last_chunk: float | None = None  # last decoded event / chunk
    duration: float | None = None  # end of stream ([DONE] or EOF), or when it failed
    chunks: int = 0  # events (SSE data events without [DONE], NDJSON lines) or body pieces
    max_gap: float = 0.0  # largest time between two consecutive events
    started_at: float = 0.0  # unix time of the start, for humans and staleness

    @property
    def spread(self) -> float | None:
        """Time from the first to the last event: near zero when they came as one burst."""
        if self.first_chunk is None or self.last_chunk is None:
            return None
        return self.last_chunk - self.first_chunk


@dataclass(slots=True)
class ProbeObservation:
    """The latest run of one probe: one measurement per route."""

    probe: str
    at: float  # unix time the run finished
    ingress: StreamMeasurement
    direct: StreamMeasurement | None = None

    def routes(self) -> list[StreamMeasurement]:
        return [m for m in (self.ingress, self.direct) if m is not None]


PROBES: Slot[dict[str, ProbeObservation]] = Slot("probes", dict)  # probe name -> latest run


@dataclass(slots=True)
class StreamTimer:
    """Fills a StreamMeasurement as the response progresses.  `clock` is injectable for tests."""

    m: StreamMeasurement
    clock: Callable[[], float] = time.monotonic
    t0: float = field(default=0.0)
    _last: float | None = None

    def __post_init__(self) -> None:
        self.t0 = self.clock()
        self.m.started_at = time.time()

    def now(self) -> float:
        return self.clock() - self.t0

    def headers(self, status: int) -> float:
        t = self.now()
        self.m.status = status
        self.m.ttfb = t
        return t

    def body(self, t: float) -> None:
        if self.m.first_body is None:
            self.m.first_body = t

    def events(self, n: int, t: float) -> None:
        """`n` events became complete at time `t` (all from the same read: no gap between them)."""
        if n <= 0:
            return
        m = self.m
        if m.first_chunk is None:
            m.first_chunk = t
        elif self._last is not None and t - self._last > m.max_gap:
            m.max_gap = t - self._last
        self._last = t
        m.last_chunk = t
        m.chunks += n

    def end(self, ok: bool, reason: str = "", at: float | None = None) -> StreamMeasurement:
        """Close the record; `at` is when the stream ended, if known (else: now)."""
        self.m.duration = self.now() if at is None else at
        self.m.ok = ok
        self.m.reason = "" if ok else reason
        return self.m
