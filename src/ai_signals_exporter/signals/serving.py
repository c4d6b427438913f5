"""Token throughput and queue signals per inference pod, from successive engine snapshots.

Pure: the scrape source appends `(timestamp, {model: ModelSnapshot})` to a `TargetHistory`
(serving/history.py); this
module turns the history inside the rate window into `ai_serving_*` gauges.

Why a window and not the last two scrapes: TGI and SGLang count tokens only when a request
finishes, so two adjacent scrapes see bursts and zeros.  The window (config `serving.window`)
averages over several scrapes; it must be longer than a typical request.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..config import Config
from ..expo.families import Family, FamilySpec
from ..serving.history import CAPACITY_ANNOTATION, TargetHistory, TargetIdentity  # noqa: F401 (re-exported)
from ..state import AppState

LABELS = ("namespace", "pod", "workload_kind", "workload", "engine", "model")

GENERATION_TOKENS = FamilySpec(
    "ai_serving_generation_tokens_per_second", "gauge",
    "Generated (output) tokens per second over the rate window, per pod and model.", LABELS,
)
PROMPT_TOKENS = FamilySpec(
    "ai_serving_prompt_tokens_per_second", "gauge",
    "Prompt (input) tokens per second over the rate window, per pod and model.", LABELS,
)
REQUESTS = FamilySpec(
    "ai_serving_requests_per_second", "gauge", "Finished requests per second over the rate window.", LABELS
)
RUNNING = FamilySpec("ai_serving_requests_running", "gauge", "Requests currently being processed.", LABELS)
WAITING = FamilySpec(
    "ai_serving_requests_waiting", "gauge", "Requests queued and waiting to be scheduled (queue depth).", LABELS
)
KV_CACHE = FamilySpec(
    "ai_serving_kv_cache_usage_ratio", "gauge",
    "Fraction of the KV cache in use (0..1); saturation of LLM serving.", LABELS,
)
TTFT = FamilySpec(
    "ai_serving_time_to_first_token_seconds", "summary",
    "Time to first token over the rate window, from histogram bucket deltas.", LABELS,
)
CAPACITY_RATIO = FamilySpec(
    "ai_serving_token_capacity_ratio", "gauge",
    "Generation tokens per second divided by the pod's configured capacity.", LABELS,
)
FAMILIES = (GENERATION_TOKENS, PROMPT_TOKENS, REQUESTS, RUNNING, WAITING, KV_CACHE, TTFT, CAPACITY_RATIO)


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
    totals: dict[float, float] = {}
    for prev, cur in zip(series, series[1:]):
        prev_map = dict(prev)
        reset = (cur[-1][1] if cur else 0) < (prev[-1][1] if prev else 0)
        for le, count in cur:
            base = 0.0 if reset else prev_map.get(le, 0.0)
            totals[le] = totals.get(le, 0.0) + max(count - base, 0.0)
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


def _window(history: TargetHistory, now: float, window: float):
    """Samples inside [now - window, now], plus the last one before it (so a window holding one
    scrape still has a start point).  Empty when the newest sample is older than the window:
    a target down for a whole window has no current rate, rather than a stale one.

    The sample before the window counts only within one more window (the config keeps the
    interval at most half the window, so a regular scrape always qualifies): after an outage
    it would stretch the rate over the whole gap, and after a restart divide the new pod's few
    seconds of tokens by minutes of downtime."""
    samples = history.samples
    if not samples or samples[-1][0] < now - window:
        return []
    start = 0
    for i, (ts, _) in enumerate(samples):
        if ts >= now - window:
            start = i - 1 if i > 0 and samples[i - 1][0] >= now - 2 * window else i
            break
    return list(samples)[start:]


def _field_points(win, model: str, attr: str) -> list[tuple[float, float]]:
    pts = []
    for ts, snap in win:
        m = snap.get(model)
        if m is not None:
            v = getattr(m, attr)
            if v is not None:
                pts.append((ts, v))
    return pts


def derive(state: AppState, config: Config, now: float) -> list[Family]:
    window = config.serving.window
    fams = {
        "gen": GENERATION_TOKENS.new(),
        "prompt": PROMPT_TOKENS.new(),
        "req": REQUESTS.new(),
        "running": RUNNING.new(),
        "waiting": WAITING.new(),
        "kv": KV_CACHE.new(),
        "ttft": TTFT.new(),
        "cap": CAPACITY_RATIO.new(),
    }
    for history in state.serving.values():
        win = _window(history, now, window)
        if not win:
            continue
        ident = history.identity
        latest = win[-1][1]
        # Engines that count a request's tokens when it finishes (TGI, SGLang, Triton's TRT-LLM
        # histograms) give 0 or a multiple of the true rate over a short span: right after a pod
        # appears (or the exporter starts) their rates wait until half a window is covered.
        counters_ready = not history.bursty or (
            win[-1][0] - win[0][0] >= window / 2
        )
        for model, snap in latest.items():
            labels = (
                ident.namespace,
                ident.pod,
                ident.workload_kind,
                ident.workload,
                history.engine,
                model or ident.model,
            )
            gen = rate(_field_points(win, model, "generation_tokens")) if counters_ready else None
            if gen is not None:
                fams["gen"].add(labels, gen)
                cap = ident.capacity_tokens_per_second
                if cap:
                    fams["cap"].add(labels, gen / cap)
            prompt = rate(_field_points(win, model, "prompt_tokens")) if counters_ready else None
            if prompt is not None:
                fams["prompt"].add(labels, prompt)
            req = rate(_field_points(win, model, "requests")) if counters_ready else None
            if req is not None:
                fams["req"].add(labels, req)
            for key, attr in (("running", "running"), ("waiting", "waiting"), ("kv", "kv_cache_usage")):
                v = getattr(snap, attr)
                if v is not None:
                    fams[key].add(labels, v)
            hist = [s[1][model].ttft_buckets for s in win if model in s[1] and s[1][model].ttft_buckets]
            if len(hist) >= 2:
                deltas = bucket_deltas(hist)
                for q in ("0.5", "0.95"):
                    fams["ttft"].add(labels, histogram_quantile(float(q), deltas), extra=(("quantile", q),))
    return list(fams.values())

