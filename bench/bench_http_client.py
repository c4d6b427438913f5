"""CPU of the scrape client per request: `sources.http.fetch_bounded` with the session that
`new_session` builds, against variants, all in the same run (issue 12: the aiohttp client was
~37 % of a refresh cycle at 1,000 nodes).

The server runs in a child process (its CPU is not counted); each variant downloads the same
`--targets` bodies of `--size` bytes through one session, `--concurrency` at a time, and the
figure is the client process's CPU per request.  Variants run interleaved `--rounds` times, so a
noisy machine moves them together; the ratio to `current` is the figure to read.

    python bench/bench_http_client.py [--targets 2000] [--size 45000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys

import aiohttp
from aiohttp import web

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from ai_signals_exporter.sources import http as scrape_http  # noqa: E402


def _serve(port_q: multiprocessing.Queue, size: int) -> None:
    body = (b"# TYPE x counter\n" + b"x_total{a=\"b\"} 1\n" * (size // 17))[:size]

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/metrics", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_q.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


_CACHED_URL = scrape_http.parsed_url
BASELINE = "before (issue 12 client changes)"


def _old_session(limit: int) -> aiohttp.ClientSession:
    """`new_session` before issue 12's change: aiohttp's default per-request timers (and every
    URL parsed per request: see `_round`)."""
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300, enable_cleanup_closed=True)
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
        headers={"Accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1", "Accept-Encoding": "gzip"})


async def _round(make, url: str, targets: int, concurrency: int) -> tuple[float, float]:
    session = make(concurrency)
    # The baseline parses every URL per request, as fetch_bounded did before.
    scrape_http.parsed_url = _CACHED_URL if make is not _old_session else str  # type: ignore[assignment]
    sem = asyncio.Semaphore(concurrency)
    urls = [f"{url}?t={i}" for i in range(targets)]  # distinct URLs, as distinct targets are

    async def one(u: str) -> int:
        async with sem:
            return len(await scrape_http.fetch_bounded(session, u, 20.0, 64 << 20))

    try:
        await asyncio.gather(*(one(u) for u in urls[:concurrency]))  # connections open
        t0 = os.times()
        await asyncio.gather(*(one(u) for u in urls))
        t1 = os.times()
        return (t1.user - t0.user) / targets * 1e6, (t1.system - t0.system) / targets * 1e6
    finally:
        await session.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=2000)
    ap.add_argument("--size", type=int, default=45000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    q: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(q, args.size), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{q.get(timeout=30)}/metrics"
    variants = {BASELINE: _old_session, "current new_session": scrape_http.new_session}
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    try:
        for _ in range(args.rounds):
            for name, make in variants.items():
                results[name].append(asyncio.run(_round(make, url, args.targets, args.concurrency)))
    finally:
        server.terminate()
    base = statistics.median(u + s for u, s in results[BASELINE])
    print(f"{args.targets} GETs of {args.size} bytes, {args.concurrency} at a time, {args.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.1f}; client CPU us per request, median (range)")
    for name, vals in results.items():
        total = [u + s for u, s in vals]
        med = statistics.median(total)
        print(f"{name:34s} user+sys {med:4.0f} ({min(total):.0f} - {max(total):.0f}), "
              f"user {statistics.median(u for u, _ in vals):4.0f}, sys {statistics.median(s for _, s in vals):4.0f}"
              f"  ratio {med / base:.2f}x")


if __name__ == "__main__":
    main()
