"""Checkpoint signals: age of the last *complete* checkpoint and saves that never finished.

Pure: reads `state.checkpoints` (sources/checkpoints.py `StoreObservation`) and the clock.  A store
that could not be listed keeps its last good verdict, so the age keeps growing from the last
complete checkpoint the exporter actually saw instead of vanishing.
"""

from __future__ import annotations

from ..checkpoints.model import learned_interval
from ..config import Config
from ..expo.families import Family, FamilySpec
from ..state import AppState

LABELS = ("store", "namespace", "job", "layout")
STORE_LABELS = ("store", "namespace", "job")  # no layout: an empty store has none to detect

LAST_COMPLETE_TIMESTAMP = FamilySpec(
    "ai_checkpoint_last_complete_timestamp_seconds", "gauge",
    "Commit time of the newest complete checkpoint (from its commit marker, not a directory mtime).",
    LABELS,
)
AGE = FamilySpec(
    "ai_checkpoint_age_seconds", "gauge",
    "Seconds since the newest complete checkpoint was committed: work lost if the job dies now.",
    LABELS,
)
LAST_STEP = FamilySpec("ai_checkpoint_last_step", "gauge", "Training step of the newest complete checkpoint.", LABELS)
SIZE = FamilySpec("ai_checkpoint_size_bytes", "gauge", "Total bytes of the newest complete checkpoint.", LABELS)
IN_PROGRESS = FamilySpec(
    "ai_checkpoint_in_progress", "gauge",
    "1 while a save newer than the last complete checkpoint has not committed (saving, or torn by an interruption).",
    LABELS,
)
IN_PROGRESS_AGE = FamilySpec(
    "ai_checkpoint_in_progress_age_seconds", "gauge",
    "Seconds since the uncommitted save started; far above the usual save time means it was abandoned. 0 when none.",
    LABELS,
)
EXPECTED_INTERVAL = FamilySpec(
    "ai_checkpoint_expected_interval_seconds", "gauge",
    "Expected spacing of checkpoints: configured, or the median spacing of recent complete ones.",
    LABELS,
)
POINTER_DANGLING = FamilySpec(
    "ai_checkpoint_pointer_dangling", "gauge",
    "1 when a latest-pointer (latest, tracker file, last.ckpt, latest-rank0.pt) names a missing or incomplete checkpoint.",
    LABELS,
)
STORE_OBJECTS = FamilySpec(
    "ai_checkpoint_store_objects", "gauge",
    "Objects (files) listed under the store's prefix at the last successful scan; 0 = an empty or wrong prefix, not a healthy store.",
    STORE_LABELS,
)
STORE_EMPTY = FamilySpec(
    "ai_checkpoint_store_empty_seconds", "gauge",
    "Seconds the store has listed no objects at all (since this exporter first saw it empty); 0 when it has objects.",
    STORE_LABELS,
)
FAMILIES = (
    LAST_COMPLETE_TIMESTAMP, AGE, LAST_STEP, SIZE, IN_PROGRESS, IN_PROGRESS_AGE, EXPECTED_INTERVAL,
    POINTER_DANGLING, STORE_OBJECTS, STORE_EMPTY,
)


def expected_interval(obs, history: tuple[float, ...]) -> float | None:
    """Configured, else the median spacing of recent complete checkpoints."""
    if obs.expected_interval is not None:
        return float(obs.expected_interval)
    return learned_interval(history)


def derive(state: AppState, config: Config, now: float) -> list[Family]:
    (last_ts, age, step, size, in_prog, in_prog_age, interval, dangling, objects,
     empty) = fams = [spec.new() for spec in FAMILIES]
    for name in sorted(state.checkpoints):
        obs = state.checkpoints[name]
        v = obs.verdict
        if v is None:  # never listed successfully: target_up says why
            continue
        objects.add((obs.name, obs.namespace, obs.job), obs.objects)
        e = obs.empty_since
        empty.add((obs.name, obs.namespace, obs.job), max(0.0, now - e) if e is not None else 0)
        if v.layout == "unknown":
            # Nothing recognisable yet: a `layout="unknown"` series would only be replaced by
            # the real label later (the object count above already says the store is empty).
            continue
        labels = (obs.name, obs.namespace, obs.job, v.layout)
        if v.last_complete_ts is not None:
            last_ts.add(labels, v.last_complete_ts)
            age.add(labels, max(0.0, now - v.last_complete_ts))
            if v.size_bytes is not None:
                size.add(labels, v.size_bytes)
        if v.last_step is not None:
            step.add(labels, v.last_step)
        in_prog.add(labels, 1 if v.in_progress else 0)
        since = v.in_progress_since
        in_prog_age.add(labels, max(0.0, now - since) if v.in_progress and since is not None else 0)
        iv = expected_interval(obs, v.complete_history_ts)
        if iv is not None:
            interval.add(labels, iv)
        dangling.add(labels, 1 if v.pointer_dangling else 0)
    return fams
