"""Simulated token streaming: an OpenAI-compatible streaming backend that records its own send
times (ground truth for tests), and a Python proxy that either streams through or buffers the
whole response like a misconfigured ingress.

Per request, query parameters override the backend's plan, so one backend serves every test case:
`ttft` (seconds to the first token), `tokens`, `tps` (tokens per second), `format`
(sse|ndjson|chunked), `pad` (extra bytes per event), `xab` (value of an `X-Accel-Buffering`
response header), `key` (a name to find the request's record by; defaults to `route`, then
"default").  Send times are `time.monotonic()` values, so a client in the same process compares
them with its own arrival times directly.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

CONTENT_TYPES = {
    "sse": "text/event-stream",
    "ndjson": "application/x-ndjson",
    "chunked": "text/plain; charset=utf-8",
}


@dataclass
class StreamPlan:
    ttft: float = 0.3
    tokens: int = 10
    tokens_per_second: float = 10.0
    format: str = "sse"
    pad: int = 0
    x_accel_buffering: str | None = None


@dataclass
class SentStream:
    """What the backend did for one request (monotonic times)."""

    key: str
    received: float
    headers_at: float = 0.0
    sends: list[float] = field(default_factory=list)  # one per token event, [DONE] excluded
    finished: float | None = None
    aborted: bool = False

    @property
    def first_send(self) -> float | None:
        return self.sends[0] if self.sends else None


def _event(fmt: str, i: int, pad: int) -> bytes:
    text = f" tok{i}"
    if fmt == "sse":
        doc = {
            "id": "cmpl-sim",
            "object": "text_completion",
            "model": "sim",
            "choices": [{"index": 0, "text": text, "finish_reason": None}],
        }
        if pad:
            doc["pad"] = "x" * pad
        return b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"
    if fmt == "ndjson":
        doc = {"model": "sim", "response": text, "done": False}
        if pad:
            doc["pad"] = "x" * pad
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    return (text + "x" * pad).encode()


class StreamingBackend:
    def __init__(self, plan: StreamPlan | None = None) -> None:
        self.plan = plan or StreamPlan()
        self.streams: list[SentStream] = []

    def app(self) -> web.Application:
        app = web.Application()
        for path in ("/v1/completions", "/v1/chat/completions", "/stream"):
            app.router.add_route("*", path, self._handle)
        return app

    def last(self, key: str = "default") -> SentStream:
        for s in reversed(self.streams):
            if s.key == key:
                return s
        raise KeyError(key)

    def _plan_for(self, q) -> StreamPlan:
        p = self.plan
        return StreamPlan(
            ttft=float(q.get("ttft", p.ttft)),
            tokens=int(q.get("tokens", p.tokens)),
            tokens_per_second=float(q.get("tps", p.tokens_per_second)),
            format=q.get("format", p.format),
            pad=int(q.get("pad", p.pad)),
            x_accel_buffering=q.get("xab", p.x_accel_buffering),
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rec = SentStream(
            key=request.query.get("key", request.query.get("route", "default")),
            received=time.monotonic(),
        )
        self.streams.append(rec)
        del self.streams[:-1000]  # bounded, even in a long demo
        await request.read()
        plan = self._plan_for(request.query)
        headers = {"Content-Type": CONTENT_TYPES.get(plan.format, "text/plain"), "Cache-Control": "no-cache"}
        if plan.x_accel_buffering is not None:
            headers["X-Accel-Buffering"] = plan.x_accel_buffering
        resp = web.StreamResponse(headers=headers)
        # Like vLLM/Starlette: the headers go out at once, the first token after the prefill.
        await resp.prepare(request)
        rec.headers_at = time.monotonic()
        start = rec.received + plan.ttft
        try:
            for i in range(plan.tokens):
                due = start + i / plan.tokens_per_second
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                rec.sends.append(time.monotonic())
                await resp.write(_event(plan.format, i, plan.pad))
            if plan.format == "sse":
                await resp.write(b"data: [DONE]\n\n")
            elif plan.format == "ndjson":
                await resp.write(b'{"model":"sim","response":"","done":true}\n')
            await resp.write_eof()
        except ConnectionError:  # the client (or a proxy's timeout) hung up: that is data, not an error
            rec.aborted = True
            return resp
        except asyncio.CancelledError:
            rec.aborted = True
            raise
        rec.finished = time.monotonic()
        return resp


class PythonProxy:
    """A reverse proxy in front of `upstream` (base URL).  `buffering=True` reads the whole upstream
    response before sending any of it (what a buffering ingress does to a stream); False copies
    each piece on as soon as it arrives."""

    def __init__(self, upstream: str, buffering: bool) -> None:
        self.upstream = upstream.rstrip("/")
        self.buffering = buffering
        self._session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _cleanup(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        body = await request.read()
        fwd = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept", "authorization")}
        async with self._session.request(
            request.method, self.upstream + request.rel_url.path_qs, data=body, headers=fwd
        ) as up:
            ctype = up.headers.get("Content-Type", "application/octet-stream")
            if self.buffering:
                data = await up.read()
                return web.Response(status=up.status, body=data, headers={"Content-Type": ctype})
            resp = web.StreamResponse(status=up.status, headers={"Content-Type": ctype})
            await resp.prepare(request)
            async for piece in up.content.iter_any():
                await resp.write(piece)
            await resp.write_eof()
            return resp


async def attach(
    cluster,
    *,
    ttft: float = 0.5,
    tokens: int = 20,
    tokens_per_second: float = 10.0,
    interval: str = "15s",
    timeout: str = "10s",
    buffering_threshold: str = "1s",
) -> StreamingBackend:
    """Add a streaming backend, a buffering and a clean proxy path in front of it, and two probes
    (`chat-buffered`, `chat-clean`), each with a `direct_url` to the backend, to the SimCluster."""
    backend = StreamingBackend(
        StreamPlan(ttft=ttft, tokens=tokens, tokens_per_second=tokens_per_second)
    )
    backend_url = (await cluster.serve(backend.app())).rstrip("/")
    buffered_url = (await cluster.serve(PythonProxy(backend_url, buffering=True).app())).rstrip("/")
    clean_url = (await cluster.serve(PythonProxy(backend_url, buffering=False).app())).rstrip("/")
    body = json.dumps({"model": "sim", "prompt": "hi", "max_tokens": tokens, "stream": True})
    probes = cluster.config.setdefault("probes", [])
    for name, front in (("chat-buffered", buffered_url), ("chat-clean", clean_url)):
        probes.append(
            {
                "name": name,
                "url": f"{front}/v1/completions?key={name}-ingress",
                "direct_url": f"{backend_url}/v1/completions?key={name}-direct",
                "method": "POST",
                "headers": {"Content-Type": "application/json"},
                "body": body,
                "interval": interval,
                "timeout": timeout,
                "buffering_threshold": buffering_threshold,
            }
        )
    return backend
