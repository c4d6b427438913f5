"""Source plumbing: a periodic loop that never raises into the event loop.

A source does I/O on its own cadence and writes observations into `AppState`.  Failures become
self-metrics; the last good observation stays in place with its timestamp.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

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

    def __init__(self, config: Config, state: AppState, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.state = state
        # Unix time of observations; tests inject a fake clock and call run_once() instead of
        # waiting for wall time to pass.
        self.clock = clock

    def enabled(self) -> bool:
        return True

    async def run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def targets(self) -> list[TargetStatus]:
        return []

    async def close(self) -> None:
        """Release sessions/connections; called when the source is stopped (reload, shutdown)."""


def target_offset(key: str, interval: float) -> float:
    """A stable phase in [0, interval) per target, from a hash of its key (as Prometheus spreads
    scrape loops): targets are spread over the interval instead of all hit at once, and keep
    their phase across restarts and reloads."""
    digest = hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval


class TargetSchedule:
    """When each target is next due: at once when first seen, then at its stable offset every
    `interval` (unix time, from the source's clock)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self.forgot = False  # the last `due` dropped targets that went away

    def due(self, keys: Iterable[str], now: float) -> list[str]:
        """The keys due at `now`, new ones first seen now included; forgets keys gone."""
        keys = list(keys)
        live = set(keys)
        gone = [k for k in self._next if k not in live]
        for k in gone:
            del self._next[k]
        self.forgot = bool(gone)
        return [k for k in keys if self._next.get(k, -math.inf) <= now]

    def scraped(self, key: str, now: float) -> None:
        offset = target_offset(key, self.interval)
        self._next[key] = offset + (math.floor((now - offset) / self.interval) + 1) * self.interval

    def next_due(self) -> float | None:
        return min(self._next.values(), default=None)


class PeriodicSource(Source):
    """Calls `run_once()` every `interval` seconds, aligned to a fixed schedule.

    `run_once` should handle per-target errors itself; an exception escaping it is logged,
    counted as reason "exception" and the loop carries on.

    A source of many targets (scrapes) sets `per_target` and implements `target_keys()` and
    `scrape(keys)` instead (`run_once` then scrapes every target): each target is scraped as soon
    as it appears (a newly discovered pod does not wait a whole interval), then every `interval`
    at its own stable offset (`TargetSchedule`).  New targets are looked for every
    `DISCOVERY_POLL` seconds at most.
    """

    interval: float = 15.0
    per_target = False
    DISCOVERY_POLL = 1.0

    async def run_once(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def target_keys(self) -> list[str]:  # pragma: no cover - per-target sources only
        raise NotImplementedError

    async def scrape(self, keys: list[str]) -> None:  # pragma: no cover - per-target sources only
        raise NotImplementedError

    async def _step(self, work: Callable[[], Awaitable[None]]) -> None:
        """One run: errors become self-metrics, never exceptions."""
        started = time.monotonic()
        ok = True
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug or an unexpected failure: log it, never die
            ok = False
            log.exception("source %s: run failed", self.name)
            self.state.selfmon.error(self.name, "exception")
        self.state.selfmon.source_run(
            self.name, time.monotonic() - started, ok, self.clock(), self.interval
        )

    async def run(self) -> None:
        if self.per_target:
            await self._run_per_target()
            return
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            await self._step(self.run_once)
            next_at += self.interval
            now = loop.time()
            if next_at < now:  # overran: skip missed ticks instead of bursting
                next_at = now
            await asyncio.sleep(next_at - now)

    async def _run_per_target(self) -> None:
        schedule = TargetSchedule(self.interval)
        while True:
            now = self.clock()
            try:
                due = schedule.due(self.target_keys(), now)
            except Exception:  # discovery bug: count it, retry at the next poll
                log.exception("source %s: listing targets failed", self.name)
                self.state.selfmon.error(self.name, "exception")
                due = []
            if due or schedule.forgot:  # scrape(): also forgets the targets that went away
                await self._step(lambda: self.scrape(due))
                for key in due:
                    schedule.scraped(key, now)
            wake = schedule.next_due()
            poll = min(self.DISCOVERY_POLL, self.interval)
            delay = poll if wake is None else min(poll, wake - self.clock())
            await asyncio.sleep(max(0.0, delay))
