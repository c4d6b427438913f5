"""Token throughput and queue signals per inference pod, from successive engine snapshots.

Pure: the scrape source appends `(timestamp, {model: ModelSnapshot})` to a `TargetHistory`
(serving/history.py); this
module turns the history inside the rate window into `ai_serving_*` gauges.

Why a window and not the last two scrapes: TGI and SGLang count tokens only when a request
finishes, so two adjacent scrapes see bursts and zeros.  The window (config `serving.window`)
averages over several scrapes; it must be longer than a typical request.
"""

from __future__ import annotations

from ..config import Config
from ..expo.families import Family, FamilySpec
from ..promql import bucket_deltas, histogram_quantile, rate
from ..serving.history import TargetHistory
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
    "ai_serving_requests_per_second", "gauge",
    "Requests finished with a result (stop, length, repetition) per second over the rate window.", LABELS,
)
FAILED_REQUESTS = FamilySpec(
    "ai_serving_failed_requests_per_second", "gauge",
    "Requests that ended without a result (aborted or failed) per second over the rate window.", LABELS,
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
QUEUE_TIME = FamilySpec(
    "ai_serving_queue_time_seconds", "summary",
    "Time requests spent queued before being scheduled, over the rate window, from histogram bucket deltas.",
    LABELS,
)
CAPACITY_RATIO = FamilySpec(
    "ai_serving_token_capacity_ratio", "gauge",
    "Generation tokens per second divided by the pod's configured capacity.", LABELS,
)
FAMILIES = (
    GENERATION_TOKENS, PROMPT_TOKENS, REQUESTS, FAILED_REQUESTS, RUNNING, WAITING, KV_CACHE, TTFT,
    QUEUE_TIME, CAPACITY_RATIO,
)  # fmt: skip




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


def _add_quantiles(fam: Family, labels, win, model: str, attr: str) -> None:
    """p50/p95 of a histogram's observations inside the window (bucket deltas)."""
    hist = [h for _, snaps in win if (m := snaps.get(model)) is not None and (h := getattr(m, attr))]
    if len(hist) >= 2:
        deltas = bucket_deltas(hist)
        for q in ("0.5", "0.95"):
            fam.add(labels, histogram_quantile(float(q), deltas), extra=(("quantile", q),))


# Which snapshot field feeds which family: counters become rates over the window, gauges are
# the latest scrape's value, histograms become windowed quantiles.
_RATES = (("gen", "generation_tokens"), ("prompt", "prompt_tokens"), ("req", "requests"),
          ("failed", "failed_requests"))  # fmt: skip
_GAUGES = (("running", "running"), ("waiting", "waiting"), ("kv", "kv_cache_usage"))
_QUANTILES = (("ttft", "ttft_buckets"), ("queue", "queue_buckets"))


def _new_families() -> dict[str, Family]:
    return {
        "gen": GENERATION_TOKENS.new(),
        "prompt": PROMPT_TOKENS.new(),
        "req": REQUESTS.new(),
        "failed": FAILED_REQUESTS.new(),
        "running": RUNNING.new(),
        "waiting": WAITING.new(),
        "kv": KV_CACHE.new(),
        "ttft": TTFT.new(),
        "queue": QUEUE_TIME.new(),
        "cap": CAPACITY_RATIO.new(),
    }


def model_labels(history: TargetHistory, model: str) -> tuple[str, ...]:
    """The serving labels (LABELS) of one model of a scraped pod."""
    ident = history.identity
    return (ident.namespace, ident.pod, ident.workload_kind, ident.workload, history.engine,
            model or ident.model)  # fmt: skip


def _add_rates(fams: dict[str, Family], labels, win, model: str, cap: float | None) -> None:
    for key, attr in _RATES:
        v = rate(_field_points(win, model, attr))
        if v is None:
            continue
        fams[key].add(labels, v)
        if key == "gen" and cap:
            fams["cap"].add(labels, v / cap)


def derive(state: AppState, config: Config, now: float) -> list[Family]:
    window = config.serving.window
    fams = _new_families()
    for history in state.serving.values():
        win = _window(history, now, window)
        if not win:
            continue
        covered = win[-1][0] - win[0][0] >= window / 2
        for model, snap in win[-1][1].items():
            labels = model_labels(history, model)
            # Token counters that advance when a request finishes (TGI, old SGLang counters,
            # trtllm-serve, Triton's TRT-LLM histograms) give 0 or a multiple of the true rate
            # over a short span: right after a pod appears (or the exporter starts) their rates
            # wait until half a window is covered.  The source records it from the candidate
            # that served the scrape, so an SGLang with per-iteration counters is not held back.
            if covered or not history.bursty:
                _add_rates(fams, labels, win, model, history.identity.capacity_tokens_per_second)
            for key, attr in _GAUGES:
                v = getattr(snap, attr)
                if v is not None:
                    fams[key].add(labels, v)
            for key, attr in _QUANTILES:
                _add_quantiles(fams[key], labels, win, model, attr)
    return list(fams.values())
