"""What an engine mapping produces: one snapshot of cumulative counters and gauges per model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ModelSnapshot:
    """Raw readings of one model on one server at one scrape.  None = the engine has no such series.

    Counters are cumulative (as exposed); rates are computed by signals/serving.py from successive
    snapshots.  Series split by rank/engine-index labels are already summed (gauges: summed,
    except kv_cache_usage which is averaged).
    """

    generation_tokens: float | None = None
    prompt_tokens: float | None = None
    requests: float | None = None  # finished requests, cumulative
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None  # 0..1
    # TTFT histogram: ((le, cumulative count), ...) sorted by le, +Inf last; None when absent.
    ttft_buckets: tuple[tuple[float, float], ...] | None = None


class UnknownEngine(Exception):
    """The payload matches no known engine (engine: auto)."""
