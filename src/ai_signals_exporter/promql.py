"""PromQL maths on plain points, as Prometheus computes them: counter increase with resets,
rate over the points' span, bucket deltas of successive histogram snapshots and
histogram_quantile.  Pure; used by signals and sources alike."""

from __future__ import annotations

import math
from typing import Sequence


def counter_increase(points: Sequence[tuple[float, float]]) -> float:
    """Increase of a counter across points, counting a drop as a reset to zero (pod restart)."""
    inc = 0.0
    for (_, a), (_, b) in zip(points, points[1:]):
        inc += b - a if b >= a else b
    return inc


def rate(points: Sequence[tuple[float, float]]) -> float | None:
    """Per-second increase over the points' time span; None with fewer than two points."""
    if len(points) < 2:
        return None
    span = points[-1][0] - points[0][0]
    if span <= 0:
        return None
    return counter_increase(points) / span


def bucket_deltas(
    series: Sequence[tuple[tuple[float, float], ...]],
) -> list[tuple[float, float]]:
    """Observations per cumulative bucket across successive histogram snapshots, reset-aware.

    Each pair of snapshots contributes its own delta; a pair where the total count dropped is
    a reset, and then the later snapshot counts from zero.  Bucket boundaries that change
    between snapshots (server reconfigured) are matched by `le`.
    """
    # Runs per model per histogram per refresh over the whole window (1,000 pods: ~0.05 CPU-s):
    # bound methods and `0.0 if d < 0.0 else d` (what max(d, 0.0) returns, NaN and -0.0
    # included) instead of calls per bucket; the sums are the same, in the same order.
    totals: dict[float, float] = {}
    get = totals.get
    for prev, cur in zip(series, series[1:]):
        if (cur[-1][1] if cur else 0) < (prev[-1][1] if prev else 0):
            for le, count in cur:  # a reset: the later snapshot counts from zero
                totals[le] = get(le, 0.0) + (0.0 if count < 0.0 else count)
            continue
        base = dict(prev).get
        for le, count in cur:
            d = count - base(le, 0.0)
            totals[le] = get(le, 0.0) + (0.0 if d < 0.0 else d)
    return sorted(totals.items())


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile on cumulative (le, count) pairs: linear interpolation inside
    the bucket; NaN when there are no observations; the highest finite bound when the quantile
    lands in the +Inf bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            if count == prev_count:
                return le
            lower = prev_le if prev_le > 0 or le <= 0 else 0.0
            return lower + (le - lower) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le
