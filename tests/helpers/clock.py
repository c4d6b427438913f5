"""A clock tests move by hand: sources and simulated engines take it instead of `time.time`,
so a test drives `run_once()` through minutes of simulated time without waiting for them."""

from __future__ import annotations

import time


class FakeClock:
    def __init__(self, t: float | None = None) -> None:
        self.t = time.time() if t is None else t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t
