"""Shared pieces of the reliability tests: a running exporter with its HTTP server, reading its
own /metrics back, and bounded polling."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, AsyncIterator, Callable

import aiohttp

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.config import Config
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.server import make_app

from ..helpers.net import run_app
from ..helpers.wait import wait_for

UP = "ai_signals_exporter_target_up"
ERRORS = "ai_signals_exporter_errors_total"
DROPPED = "ai_signals_exporter_series_dropped_total"
GEN = "ai_serving_generation_tokens_per_second"
RUNNING = "ai_serving_requests_running"


class Running:
    """An exporter and the URL of its HTTP server."""

    def __init__(self, exporter: Exporter, base: str, http: aiohttp.ClientSession) -> None:
        self.exporter = exporter
        self.base = base
        self.http = http

    async def scrape(self) -> tuple[bytes, float]:
        """GET /metrics over HTTP; returns the body and how long the answer took."""
        t0 = time.monotonic()
        async with self.http.get(self.base + "/metrics") as r:
            assert r.status == 200
            body = await r.read()
        return body, time.monotonic() - t0

    def families(self, wanted: set[str]) -> dict[str, list[tuple[dict[str, str], float]]]:
        """A fresh refresh's families (no waiting for the refresh loop)."""
        self.exporter.refresh()
        return parse_families(self.exporter.exposition.body, wanted)

    def ups(self, source: str) -> dict[str, float]:
        got = self.families({UP}).get(UP, [])
        return {l["target"]: v for l, v in got if l["source"] == source}

    def errors(self, source: str) -> dict[str, float]:
        got = self.families({ERRORS}).get(ERRORS, [])
        return {l["reason"]: v for l, v in got if l["source"] == source}

    def tasks_alive(self) -> bool:
        ex = self.exporter
        tasks = [*ex._tasks, ex._refresh_task]
        return bool(tasks) and all(t is not None and not t.done() for t in tasks)


@contextlib.asynccontextmanager
async def running_exporter(config: Config | dict[str, Any], config_path: str | None = None
                           ) -> AsyncIterator[Running]:
    if isinstance(config, dict):
        config = Config.model_validate(config)
    exporter = Exporter(config, config_path)
    await exporter.start()
    try:
        async with run_app(make_app(exporter)) as base, aiohttp.ClientSession() as http:
            yield Running(exporter, base, http)
    finally:
        await exporter.stop()


async def eventually(pred: Callable[[], Any], timeout: float = 15.0, step: float = 0.1) -> Any:
    """Poll `pred` until it returns something truthy (the shared helper, a longer default)."""
    return await wait_for(pred, timeout=timeout, interval=step)
