"""The HTTP face of the exporter: /metrics, /-/healthy, /-/ready, /-/reload and the landing page,
over a `Backend` that knows where the bytes and answers come from.

Two backends use it: the in-process one (`server.py`: the Exporter itself, for tests and the
benchmarks' baseline) and the web process (`webproc.py`: the latest exposition handed over by the
main process, reload and landing page forwarded to it).  This module never imports `app`, so the
web process does not load the sources, the parsers or the signals.
"""

from __future__ import annotations

import logging
from typing import Protocol

from aiohttp import web

from .webconfig import BasicAuth, WebConfig

log = logging.getLogger(__name__)

# Seconds SIGTERM waits for in-flight requests and source shutdown before the process exits;
# below Kubernetes' default 30 s grace period.
SHUTDOWN_GRACE_SECONDS = 10.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Backend(Protocol):
    async def body(self) -> bytes: ...
    def gzipped(self) -> bytes: ...
    def is_ready(self) -> bool: ...
    async def reload(self) -> tuple[bool, str]: ...
    async def landing(self, telemetry_path: str) -> str: ...


BACKEND_KEY = web.AppKey("backend", Backend)
TELEMETRY_PATH_KEY = web.AppKey("telemetry_path", str)


def _accepts_gzip(request: web.Request) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


async def metrics(request: web.Request) -> web.Response:
    backend = request.app[BACKEND_KEY]
    if _accepts_gzip(request):
        resp = web.Response(body=backend.gzipped())
        resp.headers["Content-Encoding"] = "gzip"
    else:
        resp = web.Response(body=await backend.body())
    resp.headers["Content-Type"] = CONTENT_TYPE
    resp.headers["Vary"] = "Accept-Encoding"
    return resp


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="Healthy.\n")


async def ready(request: web.Request) -> web.Response:
    if request.app[BACKEND_KEY].is_ready():
        return web.Response(text="Ready.\n")
    return web.Response(status=503, text="Not ready: waiting for the first refresh.\n")


async def reload(request: web.Request) -> web.Response:
    ok, message = await request.app[BACKEND_KEY].reload()
    return web.Response(status=200 if ok else 500, text=message + "\n")


async def landing(request: web.Request) -> web.Response:
    body = await request.app[BACKEND_KEY].landing(request.app[TELEMETRY_PATH_KEY])
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


def make_web_app(
    backend: Backend, telemetry_path: str = "/metrics", web_config: WebConfig | None = None
) -> web.Application:
    app = web.Application(middlewares=[_security_middleware(web_config)])
    app[BACKEND_KEY] = backend
    app[TELEMETRY_PATH_KEY] = telemetry_path
    app.router.add_get(telemetry_path, metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    app.router.add_put("/-/reload", reload)
    if telemetry_path != "/":
        app.router.add_get("/", landing)
    return app


async def start_site(
    app: web.Application, listen: tuple[str, int], web_config: WebConfig | None
) -> web.AppRunner:
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
            await runner.cleanup()
            raise
        # A node with IPv6 disabled can refuse the IPv6 wildcard: serve IPv4 then.
        log.warning("cannot listen on the IPv6 wildcard; listening on 0.0.0.0 only")
        site = web.TCPSite(runner, "0.0.0.0", listen[1], ssl_context=ssl_context)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
    return runner
