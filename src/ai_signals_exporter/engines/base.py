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


# --------------------------------------------------------------------------- mappings as data

SNAPSHOT_FIELDS = (
    "generation_tokens",
    "prompt_tokens",
    "requests",
    "running",
    "waiting",
    "kv_cache_usage",
)
# Ratios are averaged over split series (engine index, rank): summing two 40 % KV caches is not
# 80 %.  Everything else is a count and adds up.
AVERAGED_FIELDS = frozenset({"kv_cache_usage"})


@dataclass(frozen=True, slots=True)
class Series:
    """One wire series: a sample name as on the wire, optionally narrowed by label values
    (e.g. Triton's ``nv_trt_llm_request_metrics{request_type="waiting"}``)."""

    name: str
    where: tuple[tuple[str, str], ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        for key, value in self.where:
            if labels.get(key) != value:
                return False
        return True


def S(name: str, **where: str) -> Series:
    """Shorthand used by the engine modules: ``S("x", request_type="waiting")``."""
    return Series(name, tuple(sorted(where.items())))


@dataclass(frozen=True)
class EngineMapping:
    """How one engine's wire names map to ModelSnapshot fields.

    Each field lists candidate series in priority order; per model the first candidate that has
    any series wins (so a server exporting both the new and the deprecated name is read once).
    All series of the winning candidate for a model are aggregated: summed, or averaged for the
    fields in AVERAGED_FIELDS.  Labels other than the model label (engine index, tp_rank,
    finished_reason, version, ...) are aggregated away.
    """

    name: str
    # Sample-name prefixes that identify the engine in a payload (engine: auto).
    markers: tuple[str, ...]
    # Labels naming the model, first present wins; () = one model per server, key "".
    model_labels: tuple[str, ...] = ()
    generation_tokens: tuple[Series, ...] = ()
    prompt_tokens: tuple[Series, ...] = ()
    requests: tuple[Series, ...] = ()
    running: tuple[Series, ...] = ()
    waiting: tuple[Series, ...] = ()
    kv_cache_usage: tuple[Series, ...] = ()
    # TTFT histogram `_bucket` sample names, priority order, and the factor that turns their `le`
    # into seconds (Triton's histogram is in milliseconds).
    ttft_buckets: tuple[str, ...] = ()
    ttft_le_scale: float = 1.0
    # Token counters advance only when a request finishes (TGI, SGLang): rates are bursty and
    # need a window longer than the typical request.
    bursty_tokens: bool = False

    def candidates(self, field: str) -> tuple[Series, ...]:
        return getattr(self, field)

    def wanted_names(self) -> frozenset[str]:
        names = {s.name for f in SNAPSHOT_FIELDS for s in self.candidates(f)}
        names.update(self.ttft_buckets)
        return frozenset(names)

    def model_of(self, labels: dict[str, str]) -> str:
        for key in self.model_labels:
            value = labels.get(key)
            if value is not None:
                return value
        return ""


def build_snapshots(
    mapping: EngineMapping, samples: dict[str, list[tuple[dict[str, str], float]]]
) -> dict[str, ModelSnapshot]:
    """Pure: parsed samples (expo.parse.parse_families output) -> {model: ModelSnapshot}."""
    snapshots: dict[str, ModelSnapshot] = {}
    model_of = mapping.model_of
    for field in SNAPSHOT_FIELDS:
        averaged = field in AVERAGED_FIELDS
        done: set[str] = set()  # models already served by a higher-priority candidate
        for cand in mapping.candidates(field):
            rows = samples.get(cand.name)
            if not rows:
                continue
            sums: dict[str, float] = {}
            counts: dict[str, int] = {}
            for labels, value in rows:
                if cand.where and not cand.matches(labels):
                    continue
                model = model_of(labels)
                if model in done:
                    continue
                sums[model] = sums.get(model, 0.0) + value
                counts[model] = counts.get(model, 0) + 1
            for model, total in sums.items():
                snap = snapshots.get(model)
                if snap is None:
                    snap = snapshots[model] = ModelSnapshot()
                setattr(snap, field, total / counts[model] if averaged else total)
            done.update(sums)
    for name in mapping.ttft_buckets:
        rows = samples.get(name)
        if not rows:
            continue
        per_model: dict[str, dict[float, float]] = {}
        for labels, value in rows:
            model = model_of(labels)
            snap = snapshots.get(model)
            if snap is not None and snap.ttft_buckets is not None:
                continue  # an earlier TTFT candidate already served this model
            try:
                le = float(labels["le"]) * mapping.ttft_le_scale
            except (KeyError, ValueError):
                continue
            buckets = per_model.setdefault(model, {})
            # Sum across engine index / rank: the merged histogram of the whole server.
            buckets[le] = buckets.get(le, 0.0) + value
        for model, buckets in per_model.items():
            snap = snapshots.get(model)
            if snap is None:
                snap = snapshots[model] = ModelSnapshot()
            snap.ttft_buckets = tuple(sorted(buckets.items()))
    return snapshots
