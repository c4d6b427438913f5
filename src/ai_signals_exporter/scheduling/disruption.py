"""GPU pod disruptions (DisruptionTarget condition) and the training work they cost.

The condition reasons are the constants of k8s.io/api core/v1 types.go (PodReason*), set by the
scheduler's preemption, the eviction API, the kubelet (node-pressure eviction, graceful node
shutdown), the taint manager, and the pod GC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import PodView
from .resources import DEFAULT, GpuResources

DISRUPTION_REASONS = ("preemption", "eviction_api", "node_pressure", "taint", "other")
_BY_CONDITION = {
    "PreemptionByScheduler": "preemption",
    "EvictionByEvictionAPI": "eviction_api",
    "TerminationByKubelet": "node_pressure",
    "DeletionByTaintManager": "taint",
}


def disruption(pod: PodView, gpus: GpuResources = DEFAULT) -> tuple[str, float | None] | None:
    """(reason, time) of a GPU pod's DisruptionTarget=True condition, or None."""
    cond = pod.conditions.get("DisruptionTarget")
    if cond is None or cond.status != "True" or gpus.count(pod.requests) <= 0:
        return None
    return _BY_CONDITION.get(cond.reason, "other"), cond.last_transition


@dataclass(slots=True)
class StoreLoss:
    interruptions: dict[str, int] = field(default_factory=dict)  # by reason
    lost_seconds: float = 0.0
    lost_gpu_seconds: float = 0.0
    # Start of the disruption episode last counted: the pods of one job are disrupted together.
    episode_start: float | None = None


class WorkLost:
    """Work lost per checkpoint store, counted once per disruption of the job.

    A job's pods are preempted or evicted together, a few seconds apart: every disruption of a
    store's pods within `episode` seconds of the first one counted belongs to the same episode and
    is counted once.  Each pod UID is considered once.  Disruptions seen before the initial sync are
    baseline.  With no complete checkpoint yet, the interruption is counted and no loss is added
    (the start of the work is unknown).
    """

    def __init__(self, episode: float = 300.0) -> None:
        self.episode = episode
        self.stores: dict[tuple[str, str, str], StoreLoss] = {}  # (store, namespace, job)
        self._seen: set[str] = set()

    def observe(
        self, uid: str, store: tuple[str, str, str], reason: str, disrupted_at: float,
        last_complete: float | None, job_gpus: int, synced: bool,
    ) -> float | None:
        """Returns the seconds of work lost when this disruption was counted, else None."""
        if uid in self._seen:
            return None
        self._seen.add(uid)
        loss = self.stores.setdefault(store, StoreLoss())
        start = loss.episode_start
        if start is not None and abs(disrupted_at - start) < self.episode:
            return None
        loss.episode_start = disrupted_at
        if not synced:
            return None
        loss.interruptions[reason] = loss.interruptions.get(reason, 0) + 1
        if last_complete is None:
            return 0.0
        lost = max(0.0, disrupted_at - last_complete)
        loss.lost_seconds += lost
        loss.lost_gpu_seconds += lost * max(0, job_gpus)
        return lost

    def forget(self, uid: str) -> None:
        self._seen.discard(uid)
