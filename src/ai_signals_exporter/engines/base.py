"""What an engine mapping produces: one snapshot of cumulative counters and gauges per model."""

from __future__ import annotations

from dataclasses import dataclass

Buckets = tuple[tuple[float, float], ...]


@dataclass(slots=True)
class ModelSnapshot:
    """Raw readings of one model on one server at one scrape.  None = the engine has no such series.

    Counters are cumulative (as exposed); rates are computed by signals/serving.py from successive
    snapshots.  Series split by rank/engine-index labels are already combined (see
    EngineMapping.replica_labels and AVERAGED_FIELDS).
    """

    generation_tokens: float | None = None
    prompt_tokens: float | None = None
    requests: float | None = None  # finished with a result, cumulative
    failed_requests: float | None = None  # aborted or failed, cumulative
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None  # 0..1
    # Histograms: ((le seconds, cumulative count), ...) sorted by le, +Inf last; None when absent.
    ttft_buckets: Buckets | None = None
    queue_buckets: Buckets | None = None
    # The token candidate that served this model counts a request's tokens when it finishes:
    # its rates are bursty and need a window longer than the typical request.
    bursty_tokens: bool = False


class UnknownEngine(Exception):
    """The payload matches no known engine (engine: auto)."""


# --------------------------------------------------------------------------- mappings as data

SNAPSHOT_FIELDS = (
    "generation_tokens",
    "prompt_tokens",
    "requests",
    "failed_requests",
    "running",
    "waiting",
    "kv_cache_usage",
)
TOKEN_FIELDS = frozenset({"generation_tokens", "prompt_tokens"})
# Ratios are averaged over split series (engine index, rank): summing two 40 % KV caches is not
# 80 %.  Everything else is a count and adds up.
AVERAGED_FIELDS = frozenset({"kv_cache_usage"})


@dataclass(frozen=True, slots=True)
class Series:
    """One candidate: wire sample names (summed when several, and then all must be present for
    the model), optionally narrowed by label values.

    ``where``: (label, allowed values) — the label must hold one of them (``""`` also matches a
    missing label).  ``where_not``: (label, excluded values).  ``bursty``: the counter advances
    only when a request finishes.
    """

    names: tuple[str, ...]
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    where_not: tuple[tuple[str, tuple[str, ...]], ...] = ()
    bursty: bool = False

    @property
    def name(self) -> str:
        return self.names[0]

    def matches(self, labels: dict[str, str]) -> bool:
        for key, allowed in self.where:
            if labels.get(key, "") not in allowed:
                return False
        for key, excluded in self.where_not:
            if labels.get(key, "") in excluded:
                return False
        return True


def _values(v: str | tuple[str, ...]) -> tuple[str, ...]:
    return (v,) if isinstance(v, str) else tuple(v)


def S(*names: str, bursty: bool = False, exclude: dict | None = None, **where) -> Series:
    """Shorthand used by the engine modules: ``S("x", request_type="waiting")``,
    ``S("a", "b")`` (a + b), ``S("x", exclude={"finished_reason": ("abort", "error")})``."""
    return Series(
        tuple(names),
        tuple(sorted((k, _values(v)) for k, v in where.items())),
        tuple(sorted((k, _values(v)) for k, v in (exclude or {}).items())),
        bursty,
    )


@dataclass(frozen=True)
class Histogram:
    """A histogram candidate: its `_bucket` sample name, the factor that turns `le` into
    seconds, and label filters (as Series.where)."""

    bucket: str
    le_scale: float = 1.0
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Serve the histogram only to models that have one of these snapshot fields (Triton: its
    # first-response histogram is a first *token* only for the decoupled LLM models).
    only_if: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k, "") in allowed for k, allowed in self.where)


def H(bucket: str, le_scale: float = 1.0, only_if: tuple[str, ...] = (), **where) -> Histogram:
    return Histogram(
        bucket, le_scale, tuple(sorted((k, _values(v)) for k, v in where.items())), only_if
    )


# A quantile read from fewer finite bucket bounds than this is mostly interpolation: Triton's
# default first-response buckets {100, 500, 2000, 5000} ms would put every p95 between 2 s and
# 5 s on a straight line.  Such a histogram is not read (no quantile rather than a made-up one).
MIN_FINITE_BUCKETS = 6


def fine_enough(buckets: Buckets) -> bool:
    return sum(1 for le, _ in buckets if le != float("inf")) >= MIN_FINITE_BUCKETS


@dataclass(frozen=True)
class EngineMapping:
    """How one engine's wire names map to ModelSnapshot fields.

    Each field lists candidate series in priority order; per model the first candidate that has
    any series wins (so a server exporting both the new and the deprecated name is read once).
    All series of the winning candidate for a model are combined: summed, or averaged for the
    fields in AVERAGED_FIELDS.  Labels other than the model label (engine index, dp_rank,
    finished_reason, version, ...) are aggregated away, except `replica_labels`.
    """

    name: str
    # Sample-name prefixes that identify the engine in a payload (engine: auto).
    markers: tuple[str, ...]
    # Labels naming the model, first present wins; () = one model per server, key "".
    model_labels: tuple[str, ...] = ()
    generation_tokens: tuple[Series, ...] = ()
    prompt_tokens: tuple[Series, ...] = ()
    requests: tuple[Series, ...] = ()
    failed_requests: tuple[Series, ...] = ()
    running: tuple[Series, ...] = ()
    waiting: tuple[Series, ...] = ()
    kv_cache_usage: tuple[Series, ...] = ()
    ttft: tuple[Histogram, ...] = ()
    queue_time: tuple[Histogram, ...] = ()
    # Labels whose values are copies of the same state (SGLang with
    # --enable-metrics-for-all-schedulers: every TP/PP rank publishes its scheduler's state):
    # per model only the lowest value of each is read.
    replica_labels: tuple[str, ...] = ()
    # A label that splits a total into parts (SGLang priority scheduling publishes the total
    # with the label empty and once per priority): only the series where it is empty or absent
    # are read.
    total_label: str = ""
    # The path the engine serves metrics on, when it is not /metrics (documentation and sim).
    metrics_path: str = "/metrics"

    def candidates(self, field: str) -> tuple[Series, ...]:
        return getattr(self, field)

    def wanted_names(self) -> frozenset[str]:
        names = {n for f in SNAPSHOT_FIELDS for s in self.candidates(f) for n in s.names}
        names.update(h.bucket for h in self.ttft + self.queue_time)
        return frozenset(names)

    def model_of(self, labels: dict[str, str]) -> str:
        for key in self.model_labels:
            value = labels.get(key)
            if value is not None:
                return value
        return ""


Samples = dict[str, list[tuple[dict[str, str], float]]]


def _one_copy(mapping: EngineMapping, samples: Samples) -> Samples:
    """Drop per-priority parts and the rank copies of replicated scheduler state."""
    total, replicas = mapping.total_label, mapping.replica_labels
    if not total and not replicas:
        return samples
    out: Samples = {}
    for name, rows in samples.items():
        if total:
            rows = [r for r in rows if not r[0].get(total)]
        if replicas and rows and any(r in rows[0][0] for r in replicas):
            keyed = []
            lowest: dict[tuple, tuple] = {}
            for labels, value in rows:
                # Label order is the payload's, the same for every copy of a series.
                key = tuple(kv for kv in labels.items() if kv[0] not in replicas)
                ranks = tuple(_rank_key(labels.get(r, "")) for r in replicas)
                keyed.append((key, ranks, labels, value))
                if key not in lowest or ranks < lowest[key]:
                    lowest[key] = ranks
            rows = [(labels, value) for key, ranks, labels, value in keyed if ranks == lowest[key]]
        out[name] = rows
    return out


def _rank_key(v: str) -> tuple[int, int | str]:
    return (0, int(v)) if v.isdigit() else (1, v)


def _histograms(
    mapping: EngineMapping, cands: tuple[Histogram, ...], samples: Samples, snapshots: dict[str, ModelSnapshot]
) -> dict[str, Buckets]:
    out: dict[str, Buckets] = {}
    for cand in cands:
        rows = samples.get(cand.bucket)
        if not rows:
            continue
        per_model: dict[str, dict[float, float]] = {}
        for labels, value in rows:
            model = mapping.model_of(labels)
            if model in out or (cand.where and not cand.matches(labels)):
                continue  # an earlier candidate already served this model
            if cand.only_if and not _has_any(snapshots.get(model), cand.only_if):
                continue
            try:
                le = float(labels["le"]) * cand.le_scale
            except (KeyError, ValueError):
                continue
            buckets = per_model.setdefault(model, {})
            # Sum across engine index / rank: the merged histogram of the whole server.
            buckets[le] = buckets.get(le, 0.0) + value
        for model, buckets in per_model.items():
            merged = tuple(sorted(buckets.items()))
            if fine_enough(merged):
                out[model] = merged
    return out


def build_snapshots(mapping: EngineMapping, samples: Samples) -> dict[str, ModelSnapshot]:
    """Pure: parsed samples (expo.parse.parse_families output) -> {model: ModelSnapshot}."""
    samples = _one_copy(mapping, samples)
    snapshots: dict[str, ModelSnapshot] = {}
    model_of = mapping.model_of

    def snap_of(model: str) -> ModelSnapshot:
        snap = snapshots.get(model)
        if snap is None:
            snap = snapshots[model] = ModelSnapshot()
        return snap

    for field in SNAPSHOT_FIELDS:
        averaged = field in AVERAGED_FIELDS
        done: set[str] = set()  # models already served by a higher-priority candidate
        for cand in mapping.candidates(field):
            if not all(samples.get(n) for n in cand.names):
                continue
            sums: dict[str, float] = {}
            counts: dict[str, int] = {}
            seen: dict[str, set[str]] = {}
            for name in cand.names:
                for labels, value in samples[name]:
                    if (cand.where or cand.where_not) and not cand.matches(labels):
                        continue
                    model = model_of(labels)
                    if model in done:
                        continue
                    sums[model] = sums.get(model, 0.0) + value
                    counts[model] = counts.get(model, 0) + 1
                    seen.setdefault(model, set()).add(name)
            for model, total in sums.items():
                if len(seen[model]) < len(cand.names):
                    continue  # a sum of parts needs every part for this model
                snap = snap_of(model)
                setattr(snap, field, total / counts[model] if averaged else total)
                if field in TOKEN_FIELDS and cand.bursty:
                    snap.bursty_tokens = True
                done.add(model)
    for attr, cands in (("ttft_buckets", mapping.ttft), ("queue_buckets", mapping.queue_time)):
        for model, buckets in _histograms(mapping, cands, samples, snapshots).items():
            setattr(snap_of(model), attr, buckets)
    return snapshots


def _has_any(snap: ModelSnapshot | None, fields: tuple[str, ...]) -> bool:
    return snap is not None and any(getattr(snap, f) is not None for f in fields)
