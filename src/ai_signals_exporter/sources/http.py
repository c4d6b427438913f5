"""Bounded HTTP fetch of a /metrics page: one timeout, a size cap, a closed set of error reasons."""

from __future__ import annotations

import asyncio
import functools

import aiohttp
from yarl import URL

from ..expo.parse import shown


class FetchError(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # one of selfmon.REASONS
        self.detail = detail


# fetch_bounded's own asyncio.timeout bounds the whole request: aiohttp's default timers (total
# 5 min, sock_connect 30 s) would only add two timer handles per request.
NO_CLIENT_TIMERS = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)


def new_session(limit: int) -> aiohttp.ClientSession:
    # auto_decompress stays on: exporters may gzip.  No cookies, no env proxies for pod IPs.
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300, enable_cleanup_closed=True)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"Accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1", "Accept-Encoding": "gzip"},
        timeout=NO_CLIENT_TIMERS,
    )


@functools.lru_cache(maxsize=1 << 15)
def parsed_url(url: str) -> URL:
    """Targets are scraped every cycle at the same URL: parse (and quote) each one once, not on
    every request (yarl's parse + encode was ~25 us of the client's ~150 us per request)."""
    return URL(url)


def _not_metrics_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("text/html", "application/xhtml+xml", "application/json") or media.endswith("+json")


async def fetch_bounded(
    session: aiohttp.ClientSession, url: str, timeout: float, max_bytes: int
) -> bytes:
    """GET `url` and return the body.  Raises FetchError with a bounded reason.

    The whole request (connect, headers, body) shares one timeout budget; the body is read in
    chunks and abandoned as soon as it exceeds `max_bytes`, so a huge or endless body costs at
    most `max_bytes` of memory.
    """
    try:
        async with asyncio.timeout(timeout):
            async with session.get(parsed_url(url), allow_redirects=False) as resp:
                if resp.status != 200:
                    raise FetchError("http_status", str(resp.status))
                if _not_metrics_type(resp.headers.get("Content-Type", "")):
                    # A web UI or an API on the wrong port: not a metrics page, whatever it says.
                    raise FetchError("not_metrics", shown(resp.headers.get("Content-Type", "")))
                declared = resp.content_length
                if declared is not None and declared > max_bytes:
                    raise FetchError("too_large", str(declared))
                if declared is not None and resp.headers.get("Content-Encoding") is None:
                    # The parser stops at the declared length, so one read is bounded; it
                    # costs a third less CPU than chunked iteration (2,000 targets per cycle).
                    return await resp.read()
                chunks = []
                size = 0
                async for chunk in resp.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError("too_large", f">{max_bytes}")
                    chunks.append(chunk)
                return b"".join(chunks)
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError("timeout") from None
    except aiohttp.ClientConnectorError as exc:
        raise FetchError("connect", str(exc)) from None
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, ConnectionResetError) as exc:
        raise FetchError("reset", str(exc)) from None
    except aiohttp.ClientError as exc:
        raise FetchError("connect", str(exc)) from None
