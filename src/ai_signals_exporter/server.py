"""The exporter's HTTP routes served in-process (tests, the benchmarks' baseline), and the
landing page that the main process renders for either server.  `ai-signals-exporter` itself
serves from a separate web process (webproc.py) with the same routes (webapp.py)."""

from __future__ import annotations

import asyncio
import html
import time

from aiohttp import web

from . import __version__
from .app import Exporter
from .selfmon import display_target
from .webapp import (  # noqa: F401  (CONTENT_TYPE, SHUTDOWN_GRACE_SECONDS: the public names)
    CONTENT_TYPE,
    SHUTDOWN_GRACE_SECONDS,
    make_web_app,
    start_site,
)
from .webconfig import WebConfig


def _age(ts: float) -> str:
    if not ts:
        return "never"
    return f"{time.time() - ts:.0f}s ago"


def landing_html(exporter: Exporter, telemetry: str) -> str:
    rows = []
    for t in exporter.target_statuses():
        state = {True: "up", False: "down", None: "pending"}[t.up]
        rows.append(
            f"<tr class='{state}'><td>{html.escape(t.source)}</td><td>{html.escape(display_target(t.target))}</td>"
            f"<td>{state}</td><td>{_age(t.last_success)}</td><td>{html.escape(t.last_error)}</td></tr>"
        )
    sources = ", ".join(html.escape(s.name) for s in exporter.sources if exporter.source_enabled(s)) or "none"
    topo = exporter.config.topology
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>ai-signals-exporter</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 10px;text-align:left}}
tr.down td{{color:#b00}} tr.up td:nth-child(3){{color:#070}}</style></head>
<body><h1>ai-signals-exporter {html.escape(__version__)}</h1>
<p><a href="{html.escape(telemetry)}">Metrics</a> &middot; <a href="/-/healthy">Health</a>
&middot; <a href="/-/ready">Readiness</a></p>
<p>Ready: {"yes" if exporter.ready else "no"} &middot; last refresh: {_age(exporter.exposition.rendered_at)}
&middot; sources: {sources}
&middot; role: {html.escape(topo.role)}, shard {topo.shard} of {topo.total_shards}</p>
<h2>Targets</h2>
<table><tr><th>source</th><th>target</th><th>state</th><th>last success</th><th>last error</th></tr>
{''.join(rows) or '<tr><td colspan=5>none</td></tr>'}
</table></body></html>
"""


class InProcess:
    """The Exporter as a web backend: the cached exposition of the same process."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter

    async def body(self) -> bytes:
        return self.exporter.exposition.body

    def gzipped(self) -> bytes:
        return self.exporter.exposition.gzipped()

    def is_ready(self) -> bool:
        return self.exporter.ready

    async def reload(self) -> tuple[bool, str]:
        return await self.exporter.reload()

    async def landing(self, telemetry_path: str) -> str:
        return landing_html(self.exporter, telemetry_path)


def make_app(
    exporter: Exporter, telemetry_path: str = "/metrics", web_config: WebConfig | None = None
) -> web.Application:
    return make_web_app(InProcess(exporter), telemetry_path, web_config)


async def serve(
    exporter: Exporter,
    listen: tuple[str, int],
    telemetry_path: str,
    web_config: WebConfig | None,
    stop: asyncio.Event | None = None,
) -> web.AppRunner:
    return await start_site(make_app(exporter, telemetry_path, web_config), listen, web_config)
