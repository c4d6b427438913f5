"""An aiohttp app serving simulated engines' payloads, like pods' /metrics endpoints."""

from __future__ import annotations

from aiohttp import web

from .model import SimEngine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def make_app(engines: dict[str, SimEngine]) -> web.Application:
    """An aiohttp app serving each engine's payload at its path (e.g. {"/metrics": e} for one
    pod, {"/pod-0/metrics": a, "/pod-1/metrics": b} for several pods on one server).
    An engine's `status` (!= 200 answers an error) and `delay` (seconds before answering)
    simulate failing and slow targets."""
    import asyncio

    app = web.Application()

    def handler_for(engine: SimEngine):
        async def handler(request: web.Request) -> web.StreamResponse:
            if engine.delay:
                await asyncio.sleep(engine.delay)
            if engine.status != 200:
                return web.Response(status=engine.status, text="simulated failure\n")
            return web.Response(body=engine.render(), headers={"Content-Type": CONTENT_TYPE})

        return handler

    for path, engine in engines.items():
        app.router.add_get(path if path.startswith("/") else "/" + path, handler_for(engine))
    return app
