"""Where each probe route's clock started, so tests compare the probe's phase times (seconds
from that start) with the simulated backend's own send times (`time.monotonic()` values).

`measure_stream` takes its clock as a parameter; the probe source passes none, so the tests wrap
it to pass `time.monotonic` through a recorder: the timer's first reading is its start.  Exact,
unlike a time taken before `run_probe`, which is early by however long the event loop needed to
reach the request (tens of milliseconds on a loaded machine).
"""

from __future__ import annotations

import time

import pytest

from ai_signals_exporter.sources import probes


def record_route_starts(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """Patch the probe source so that every route's start lands in the returned dict, keyed by
    route name and by URL (monotonic start of the latest run; URLs tell several probes apart)."""
    starts: dict[str, float] = {}
    real = probes.measure_stream

    async def measure_stream(session, route, url, **kw):
        first = True

        def clock() -> float:
            nonlocal first
            t = time.monotonic()
            if first:
                starts[route] = starts[url] = t
                first = False
            return t

        return await real(session, route, url, clock=clock, **kw)

    monkeypatch.setattr(probes, "measure_stream", measure_stream)
    return starts


def arrival(starts: dict[str, float], m, phase: str = "first_chunk", key: str | None = None) -> float:
    """The monotonic time of one phase of a measurement (`key`: the URL, when several probes ran)."""
    return starts[key or m.route] + getattr(m, phase)
