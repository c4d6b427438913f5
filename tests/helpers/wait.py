"""The one way tests wait: poll a condition until it holds, never sleep for time to pass.

Timeouts are upper bounds for a condition that normally holds much sooner; on a loaded machine
(CI's CPU-hog step) they stretch by `TEST_TIMEOUT_SCALE` (default 1).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Callable

SCALE = float(os.environ.get("TEST_TIMEOUT_SCALE", "1"))


def _describe(predicate: Callable[[], Any], what: str | None) -> str:
    return what or getattr(predicate, "__name__", repr(predicate))


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02, what: str | None = None
) -> Any:
    """Poll `predicate` (on the event loop) until it returns something truthy and return that;
    fail the test with the last value after `timeout` seconds (times SCALE)."""
    deadline = time.monotonic() + timeout * SCALE
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"condition not met within {timeout * SCALE:g}s: {_describe(predicate, what)}; last value: {value!r}"
            )
        await asyncio.sleep(interval)


def wait_until(
    check: Callable[[], Any], timeout: float, what: str | None = None, interval: float = 0.2
) -> Any:
    """The blocking form, for code outside an event loop (subprocesses, Prometheus): exceptions
    from `check` count as 'not yet' and the last one is reported."""
    deadline = time.monotonic() + timeout * SCALE
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {_describe(check, what)} (last error: {last})")
