"""Source plumbing: a periodic loop that never raises into the event loop.

A source does I/O on its own cadence and writes observations into `AppState`.  Failures become
self-metrics; the last good observation stays in place with its timestamp.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from ..config import Config
from ..state import AppState

log = logging.getLogger(__name__)


@dataclass
class TargetStatus:
    """One row of the landing page.  `target` must never contain secrets."""

    source: str
    target: str
    up: bool | None  # None = not tried yet
    last_success: float = 0.0
    last_error: str = ""  # a bounded reason, not a message


class Source:
    """Base class.  Subclasses set `name` and implement `run()` (long-running) or use Periodic."""

    name = "source"

    def __init__(self, config: Config, state: AppState) -> None:
        self.config = config
        self.state = state

    def enabled(self) -> bool:
        return True

    async def run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def targets(self) -> list[TargetStatus]:
        return []

    async def close(self) -> None:
        """Release sessions/connections; called when the source is stopped (reload, shutdown)."""


class PeriodicSource(Source):
    """Calls `run_once()` every `interval` seconds, aligned to a fixed schedule.

    `run_once` should handle per-target errors itself; an exception escaping it is logged,
    counted as reason "exception" and the loop carries on.
    """

    interval: float = 15.0

    async def run_once(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            started = time.monotonic()
            ok = True
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or an unexpected failure: log it, never die
                ok = False
                log.exception("source %s: run failed", self.name)
                self.state.selfmon.error(self.name, "exception")
            self.state.selfmon.source_run(
                self.name, time.monotonic() - started, ok, time.time(), self.interval
            )
            next_at += self.interval
            now = loop.time()
            if next_at < now:  # overran: skip missed ticks instead of bursting
                next_at = now
            await asyncio.sleep(next_at - now)
