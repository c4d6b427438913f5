"""Streaming probes: send a streaming request through the ingress (and straight to the backend)
and time what a client sees.

Each configured probe runs in its own task on its own interval.  One run sends the request through
`url` and, when set, through `direct_url` **at the same time**: both requests then meet the backend
in the same state (load, cache, batch), so the difference of their first-chunk times is the
ingress's doing rather than the backend's variance, and a run takes one stream's time, not two.

Timing is per phase, from one monotonic clock started before connecting (fresh connection every
run, so connect time is part of it and a stale keep-alive cannot fail a probe): response headers
(TTFB), first body bytes, first decoded event, end of stream.  Response bodies are decoded here,
not by aiohttp (see streaming/decode.py for why).  Redirects are never followed.

Header values (API keys) are resolved per run and never logged, never put in errors, never shown
by `targets()`; URLs shown on the landing page lose their user-info and query string.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable
from urllib.parse import urlsplit

import aiohttp

from .. import __version__
from ..config import Config, ConfigError, Probe, resolve_header
from ..state import AppState
from ..streaming import (
    DecodeError,
    ParseError,
    ProbeObservation,
    StreamMeasurement,
    StreamTimer,
    format_from_content_type,
    make_decoder,
    make_parser,
)
from ..streaming.decode import ACCEPT_ENCODING
from .base import Source, TargetStatus

log = logging.getLogger(__name__)

SOURCE = "probes"
ROUTES = ("ingress", "direct")

DEFAULT_HEADERS = {
    "Accept": "text/event-stream, application/x-ndjson;q=0.9, */*;q=0.8",
    # Ask for compression like a browser would: an ingress that compresses event streams (and so
    # holds them back) must show up in the probe.
    "Accept-Encoding": ACCEPT_ENCODING,
    "Cache-Control": "no-cache",
    "User-Agent": f"ai-signals-exporter-probe/{__version__}",
}


def redact_url(url: str) -> str:
    """scheme://host:port/path: no user-info (passwords), no query (api_key=...), no fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def build_headers(probe: Probe) -> dict[str, str]:
    """Defaults, overridden case-insensitively by the probe's headers (resolved now: files may be
    rotated).  Raises ConfigError/OSError; callers must not put the exception text anywhere."""
    user = {k: resolve_header(v) for k, v in probe.headers.items()}
    lowered = {k.lower() for k in user}
    headers = {k: v for k, v in DEFAULT_HEADERS.items() if k.lower() not in lowered}
    if probe.body is not None and "content-type" not in lowered:
        headers["Content-Type"] = "application/json"
    headers.update(user)
    return headers


def _failure_reason(exc: BaseException) -> str:
    """Map an exception to selfmon.REASONS.  Order matters: subclasses first."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, DecodeError):
        return "decode"
    if isinstance(exc, ParseError):
        return exc.reason
    if isinstance(exc, (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch)):
        return "tls"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(
        exc, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, ConnectionResetError)
    ):
        return "reset"  # the stream was cut: a proxy timeout or a dying backend
    if isinstance(exc, aiohttp.ClientResponseError):
        return "parse"  # not valid HTTP
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return "connect"
    if isinstance(exc, ValueError):
        return "config"  # aiohttp refused to build the request (e.g. URL credentials + Authorization)
    return "exception"


async def measure_stream(
    session: aiohttp.ClientSession,
    route: str,
    url: str,
    *,
    method: str,
    headers: dict[str, str],
    body: str | None,
    fmt: str,
    timeout: float,
    clock=time.monotonic,
) -> StreamMeasurement:
    """One streamed request, timed phase by phase, within `timeout` for all phases together.
    Never raises (cancellation aside): failures come back as `ok=False` with a bounded reason and
    whatever phases were reached."""
    timer = StreamTimer(StreamMeasurement(route=route), clock=clock)
    m = timer.m
    ended: float | None = None  # end of stream, before the connection is torn down
    try:
        async with asyncio.timeout(timeout):
            async with session.request(
                method, url, headers=headers, data=body, allow_redirects=False
            ) as resp:
                timer.headers(resp.status)
                if 300 <= resp.status < 400:
                    return timer.end(False, "redirect")
                if not 200 <= resp.status < 300:
                    return timer.end(False, "http_status")
                m.encoding = resp.headers.get("Content-Encoding", "")
                decoder = make_decoder(m.encoding)
                m.format = (
                    format_from_content_type(resp.headers.get("Content-Type"))
                    if fmt == "auto"
                    else fmt
                )
                parser = make_parser(m.format)
                async for raw in resp.content.iter_any():
                    t = timer.now()
                    timer.body(t)
                    data = decoder.decode(raw)
                    if data:
                        timer.events(parser.feed(data), t)
                    if parser.done:  # [DONE]: the stream is over for the user
                        ended = t
                        break
                else:
                    ended = timer.now()
                    tail = decoder.flush()
                    timer.events((parser.feed(tail) if tail else 0) + parser.finish(), ended)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every failure becomes a bounded reason
        reason = _failure_reason(exc)
        if reason == "exception":
            log.warning("probe route %s: unexpected %s", route, type(exc).__name__)
        return timer.end(False, reason)
    if m.chunks == 0:
        return timer.end(False, "no_chunks", at=ended)
    return timer.end(True, at=ended)


class ProbeSource(Source):
    name = SOURCE

    def __init__(self, config: Config, state: AppState, clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, state, clock)
        self._session: aiohttp.ClientSession | None = None
        self._last_success: dict[str, float] = {}  # "<probe>/<route>" -> unix time

    def probes(self) -> list[Probe]:
        """The probes this instance runs: the ones its shard owns, by name."""
        topology = self.config.topology
        return [p for p in self.config.probes if topology.owns(p.name)]

    def enabled(self) -> bool:
        return bool(self.probes())

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # force_close: a fresh connection per request (see module doc); auto_decompress off:
            # we decode ourselves to time decoded events; no cookies, no proxies from the env.
            connector = aiohttp.TCPConnector(force_close=True, limit=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=False,
            )
        return self._session

    async def run(self) -> None:
        probes = self.probes()
        names = {p.name for p in probes}
        for stale in [n for n in self.state.probes if n not in names]:
            del self.state.probes[stale]
        self.state.selfmon.forget_targets(
            SOURCE, {f"{p.name}/{r}" for p in probes for r in self._routes(p)}
        )
        async with asyncio.TaskGroup() as tg:
            for probe in probes:
                tg.create_task(self._loop(probe), name=f"probe:{probe.name}")

    @staticmethod
    def _routes(probe: Probe) -> tuple[str, ...]:
        return ROUTES if probe.direct_url else ROUTES[:1]

    async def _loop(self, probe: Probe) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                await self.run_probe(probe)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: count it, keep probing
                log.exception("probe %s: run failed", probe.name)
                self.state.selfmon.error(SOURCE, "exception")
            next_at += probe.interval
            now = loop.time()
            if next_at < now:
                next_at = now
            await asyncio.sleep(next_at - now)

    async def run_probe(self, probe: Probe) -> ProbeObservation:
        """One run of one probe: all routes concurrently; records the observation and self-metrics."""
        started = time.monotonic()
        routes = {"ingress": probe.url}
        if probe.direct_url:
            routes["direct"] = probe.direct_url
        try:
            headers = build_headers(probe)
        except (ConfigError, OSError, UnicodeError):
            # Never the exception text: it could quote a secret file's path or content.
            log.warning("probe %s: a header value could not be resolved", probe.name)
            results = [StreamMeasurement(route=r, reason="header") for r in routes]
        else:
            session = self._get_session()
            results = await asyncio.gather(
                *(
                    measure_stream(
                        session,
                        route,
                        url,
                        method=probe.method,
                        headers=headers,
                        body=probe.body,
                        fmt=probe.format,
                        timeout=probe.timeout,
                    )
                    for route, url in routes.items()
                )
            )
        now = self.clock()
        by_route = {m.route: m for m in results}
        obs = ProbeObservation(
            probe=probe.name, at=now, ingress=by_route["ingress"], direct=by_route.get("direct")
        )
        self.state.probes[probe.name] = obs
        mon = self.state.selfmon
        for m in results:
            key = f"{probe.name}/{m.route}"
            mon.target_up(SOURCE, key, m.ok)
            if m.ok:
                self._last_success[key] = now
            else:
                mon.error(SOURCE, m.reason)
                log.info("probe %s route %s failed: %s", probe.name, m.route, m.reason)
        # A dead route is its target's failure (target_up, StreamProbeFailing); the source is
        # only stale when no route delivers fresh signals at all.
        # The staleness bound of the source is the longest probe interval.
        longest = max((p.interval for p in self.probes()), default=probe.interval)
        mon.source_run(SOURCE, time.monotonic() - started, any(m.ok for m in results), now, longest)
        return obs

    def targets(self) -> list[TargetStatus]:
        out = []
        for probe in self.probes():
            obs = self.state.probes.get(probe.name)
            urls = {"ingress": probe.url, "direct": probe.direct_url}
            for route in self._routes(probe):
                key = f"{probe.name}/{route}"
                m = None
                if obs is not None:
                    m = obs.ingress if route == "ingress" else obs.direct
                out.append(
                    TargetStatus(
                        source=SOURCE,
                        target=f"{key} {redact_url(urls[route] or '')}",
                        up=None if m is None else m.ok,
                        # After a reload this instance is new; the state's last run is not.
                        last_success=self._last_success.get(key)
                        or (obs.at if obs is not None and m is not None and m.ok else 0.0),
                        last_error="" if m is None or m.ok else m.reason,
                    )
                )
        return out

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
