"""HTTP routes: /metrics (cached bytes), /-/healthy, /-/ready, /-/reload, and a landing page."""

from __future__ import annotations

import asyncio
import html
import logging
import time

from aiohttp import web

from . import __version__
from .app import Exporter
from .selfmon import display_target
from .webconfig import BasicAuth, WebConfig

log = logging.getLogger(__name__)

# Seconds SIGTERM waits for in-flight requests and source shutdown before the process exits;
# below Kubernetes' default 30 s grace period.
SHUTDOWN_GRACE_SECONDS = 10.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EXPORTER_KEY = web.AppKey("exporter", Exporter)
TELEMETRY_PATH_KEY = web.AppKey("telemetry_path", str)


def _accepts_gzip(request: web.Request) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


async def metrics(request: web.Request) -> web.Response:
    expo = request.app[EXPORTER_KEY].exposition
    if _accepts_gzip(request):
        resp = web.Response(body=expo.gzipped())
        resp.headers["Content-Encoding"] = "gzip"
    else:
        resp = web.Response(body=expo.body)
    resp.headers["Content-Type"] = CONTENT_TYPE
    resp.headers["Vary"] = "Accept-Encoding"
    return resp


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="Healthy.\n")


async def ready(request: web.Request) -> web.Response:
    if request.app[EXPORTER_KEY].ready:
        return web.Response(text="Ready.\n")
    return web.Response(status=503, text="Not ready: waiting for the first refresh.\n")


async def reload(request: web.Request) -> web.Response:
    ok, message = await request.app[EXPORTER_KEY].reload()
    return web.Response(status=200 if ok else 500, text=message + "\n")


def _age(ts: float) -> str:
    if not ts:
        return "never"
    return f"{time.time() - ts:.0f}s ago"


async def landing(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER_KEY]
    telemetry = request.app[TELEMETRY_PATH_KEY]
    rows = []
    for t in exporter.target_statuses():
        state = {True: "up", False: "down", None: "pending"}[t.up]
        rows.append(
            f"<tr class='{state}'><td>{html.escape(t.source)}</td><td>{html.escape(display_target(t.target))}</td>"
            f"<td>{state}</td><td>{_age(t.last_success)}</td><td>{html.escape(t.last_error)}</td></tr>"
        )
    sources = ", ".join(html.escape(s.name) for s in exporter.sources if exporter.source_enabled(s)) or "none"
    topo = exporter.config.topology
    body = f"""<!doctype html>
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
    return web.Response(text=body, content_type="text/html")


def _security_middleware(web_config: WebConfig | None):
    auth = BasicAuth(web_config.basic_auth_users) if web_config and web_config.basic_auth_users else None
    headers = dict(web_config.http_server_config.headers) if web_config else {}

    @web.middleware
    async def middleware(request: web.Request, handler):
        if auth is not None and not await auth.check_async(request.headers.get("Authorization")):
            resp = web.Response(status=401, text="Unauthorized\n")
            resp.headers["WWW-Authenticate"] = 'Basic realm="ai-signals-exporter"'
            return resp
        resp = await handler(request)
        resp.headers.update(headers)
        return resp

    return middleware


def make_app(
    exporter: Exporter, telemetry_path: str = "/metrics", web_config: WebConfig | None = None
) -> web.Application:
    app = web.Application(middlewares=[_security_middleware(web_config)])
    app[EXPORTER_KEY] = exporter
    app[TELEMETRY_PATH_KEY] = telemetry_path
    app.router.add_get(telemetry_path, metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    app.router.add_put("/-/reload", reload)
    if telemetry_path != "/":
        app.router.add_get("/", landing)
    return app


async def serve(
    exporter: Exporter,
    listen: tuple[str, int],
    telemetry_path: str,
    web_config: WebConfig | None,
    stop: asyncio.Event,
) -> web.AppRunner:
    app = make_app(exporter, telemetry_path, web_config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
    await runner.setup()
    # The wildcard means every interface, IPv6 included, as Go exporters' dual-stack listener
    # does: host None makes asyncio bind one socket per address family.
    host = None if listen[0] == "0.0.0.0" else listen[0]
    ssl_context = web_config.ssl_context() if web_config else None
    site = web.TCPSite(runner, host, listen[1], ssl_context=ssl_context)
    try:
        await site.start()
    except OSError:
        if host is not None:
            raise
        # A node with IPv6 disabled can refuse the IPv6 wildcard: serve IPv4 then.
        log.warning("cannot listen on the IPv6 wildcard; listening on 0.0.0.0 only")
        site = web.TCPSite(runner, "0.0.0.0", listen[1], ssl_context=ssl_context)
        await site.start()
    return runner
