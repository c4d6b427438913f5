"""The end-to-end alert path shared by tests/e2e: a simulated cluster, the exporter and a
webhook receiver on their own event loop in a background thread (so real Prometheus and
Alertmanager can be driven synchronously), and the Prometheus that scrapes the exporter with
the shipped rules and sends to the Alertmanager.

A test subclasses `AlertStack` and fills the cluster in `populate()` (before the exporter
starts) and, where it needs to, `exporter_started()`."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Callable

from aiohttp import web

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.server import serve
from ai_signals_exporter.sim.cluster import SimCluster

from .promstack import alertmanager, free_port, prometheus, query, wait_until


class AlertStack:
    def __init__(self, tmpdir: Path, healthy: bool) -> None:
        self.tmpdir, self.healthy = tmpdir, healthy
        self.received: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self.lock:
            self.received.extend((request.match_info["receiver"], a) for a in body["alerts"])
        return web.Response(text="ok")

    def alerts(self) -> list[tuple[str, dict]]:
        with self.lock:
            return list(self.received)

    async def populate(self) -> None:
        """Add the test's simulated workloads to `self.cluster` (its config included)."""

    async def exporter_started(self) -> None:
        """Runs once the exporter has started, before Prometheus scrapes it."""

    async def _start(self) -> None:
        (self.tmpdir / "sim").mkdir(parents=True, exist_ok=True)
        self.cluster = SimCluster(self.tmpdir / "sim")
        await self.cluster.start()
        app = web.Application()
        app.router.add_post("/{receiver}", self._webhook)
        self.webhook = await self.cluster.serve(app)
        await self.populate()
        self.exporter = Exporter(self.cluster.exporter_config())
        await self.exporter.start()
        await self.exporter_started()
        self._stop_event = asyncio.Event()
        port = free_port()
        self.runner = await serve(self.exporter, ("127.0.0.1", port), "/metrics", None, self._stop_event)
        self.exporter_target = f"127.0.0.1:{port}"

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.exporter.stop()
        await self.cluster.stop()


def run_alert_path(stack: AlertStack, tmp_path: Path, rule_files: list[str], alertmanager_config: str,
                   ready: Callable[[str], object], ready_what: str,
                   until: Callable[[AlertStack, str, float], None], timeout: float):
    """Prometheus (1 s scrape and evaluation) on the stack's exporter and an Alertmanager; once
    `ready(prom_url)` holds, `until(stack, prom_url, timeout)`.  Returns the alerts the webhook
    received and Prometheus' ALERTS."""
    with alertmanager(tmp_path / "am", alertmanager_config) as am_url:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": rule_files,
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_url.split("//")[1]]}]}]},
            "scrape_configs": [{"job_name": "ai-signals-exporter", "honor_labels": True,
                                "static_configs": [{"targets": [stack.exporter_target]}]}],
        }
        with prometheus(tmp_path / "prom", config) as prom_url:
            # The exporter's signals must be in Prometheus before anything is judged.
            wait_until(lambda: ready(prom_url), 30, ready_what)
            until(stack, prom_url, timeout)
            return stack.alerts(), query(prom_url, "ALERTS")
