"""Small networking helpers for tests: free ports, serving an aiohttp app, waiting for HTTP."""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.request
from typing import AsyncIterator

from aiohttp import web


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def run_app(app: web.Application, ssl_context=None) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def wait_http(url: str, timeout: float = 10.0) -> bytes:
    """GET url until it answers 200 (blocking; for subprocess tests)."""
    deadline = time.time() + timeout
    last: Exception | None = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read()
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"{url} not answering after {timeout}s: {last}")
