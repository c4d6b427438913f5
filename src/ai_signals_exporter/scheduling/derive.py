"""Aggregated scheduling state, the ingest steps that update its counters, and `derive`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from ..expo.families import Family
from . import families as F
from .admission import admission_reason
from .counting import IncrementCounter, OnceCounter
from .disruption import WorkLost, disruption
from .model import EventView, NodeView, PodView, QuotaView
from .offline import offline_gpus
from .pending import aggregate_pending
from .quota import is_gpu_quota_rejection, quota_gpus
from .resources import DEFAULT, GpuResources

Sample = tuple[F.FamilySpec, tuple[str, ...], float]


@dataclass(frozen=True, slots=True)
class CheckpointLink:
    """A disrupted pod's job and its checkpoint store, resolved by the caller."""

    store: str
    namespace: str
    job: str
    last_complete: float | None  # ai_checkpoint_last_complete_timestamp_seconds of the store
    job_gpus: int  # GPUs of the whole job, all its pods


@dataclass
class SchedulingState:
    gpus: GpuResources = DEFAULT
    admissions: OnceCounter = field(default_factory=OnceCounter)
    disruptions: OnceCounter = field(default_factory=OnceCounter)
    work_lost: WorkLost = field(default_factory=WorkLost)
    quota_rejections: IncrementCounter = field(default_factory=IncrementCounter)


def observe_pod(
    state: SchedulingState, pod: PodView, synced: bool, checkpoint: CheckpointLink | None = None,
    now: float | None = None,
) -> None:
    """Feed one pod add/update (initial list, watch event or re-list) to the counters.

    `checkpoint` links the pod to its job's store (work lost); `now` stands in for a
    DisruptionTarget condition without lastTransitionTime (the watch saw it just now)."""
    reason = admission_reason(pod, state.gpus)
    state.admissions.observe(pod.uid, (pod.node, reason) if reason else None, synced)
    hit = disruption(pod, state.gpus)
    labels = (pod.namespace, pod.workload_kind, pod.workload, hit[0]) if hit else None
    state.disruptions.observe(pod.uid, labels, synced)
    if hit is None or checkpoint is None:
        return
    at = hit[1] if hit[1] is not None else now
    if at is not None:
        state.work_lost.observe(
            pod.uid, (checkpoint.store, checkpoint.namespace, checkpoint.job), hit[0], at,
            checkpoint.last_complete, checkpoint.job_gpus, synced)


def forget_pod(state: SchedulingState, uid: str) -> None:
    """A pod was deleted: its UID can never come back, so the counters may drop it."""
    state.admissions.forget(uid)
    state.disruptions.forget(uid)
    state.work_lost.forget(uid)


def observe_event(state: SchedulingState, event: EventView, synced: bool) -> None:
    labels = (event.namespace,) if is_gpu_quota_rejection(event, state.gpus) else None
    if labels is not None:  # other events are not kept at all
        state.quota_rejections.observe(event.uid, labels, event.count, synced)


def forget_event(state: SchedulingState, uid: str) -> None:
    state.quota_rejections.forget(uid)


def samples(
    state: SchedulingState, pods: Iterable[PodView], nodes: Iterable[NodeView],
    quotas: Iterable[QuotaView], now: float, known_stores: Iterable[tuple[str, str, str]] = (),
) -> Iterator[Sample]:
    """`known_stores` (store, namespace, job) get 0-valued loss counters before any disruption, so
    a job's first loss is an increase Prometheus can see rather than a series born at its value."""
    groups, oldest = aggregate_pending(pods, now, state.gpus)
    for (ns, kind, wl, reason), g in sorted(groups.items()):
        yield F.PODS_PENDING, (ns, kind, wl, reason), g.pods
        yield F.PODS_PENDING_GPUS, (ns, kind, wl, reason), g.gpus
    for key, age in sorted(oldest.items()):
        yield F.PODS_PENDING_OLDEST, key, age
    for labels, n in sorted(state.admissions.totals.items()):
        yield F.ADMISSION_FAILURES, labels, n
    for labels, n in sorted(state.disruptions.totals.items()):
        yield F.DISRUPTIONS, labels, n
    stores = dict.fromkeys(known_stores, None) | state.work_lost.stores
    for store, loss in sorted(stores.items()):
        if loss is None:
            yield F.CKPT_LOST_SECONDS, store, 0.0
            yield F.CKPT_LOST_GPU_SECONDS, store, 0.0
            continue
        for reason, n in sorted(loss.interruptions.items()):
            yield F.CKPT_INTERRUPTIONS, store + (reason,), n
        yield F.CKPT_LOST_SECONDS, store, loss.lost_seconds
        yield F.CKPT_LOST_GPU_SECONDS, store, loss.lost_gpu_seconds
    for quota in quotas:
        for kind, value in sorted(quota_gpus(quota, state.gpus).items()):
            yield F.QUOTA_GPUS, (quota.namespace, quota.name, kind), value
    for labels, n in sorted(state.quota_rejections.totals.items()):
        yield F.QUOTA_REJECTIONS, labels, n
    for node in nodes:
        for reason, n in sorted(offline_gpus(node, state.gpus).items()):
            yield F.OFFLINE_GPUS, (node.name, reason), n


def derive(
    state: SchedulingState, pods: Iterable[PodView], nodes: Iterable[NodeView],
    quotas: Iterable[QuotaView], now: float, known_stores: Iterable[tuple[str, str, str]] = (),
    scopes: frozenset[str] = frozenset({"cluster", "node"}),
) -> list[Family]:
    """Families of the area; `scopes` keeps only the families this instance owns (topologies)."""
    out = {spec.name: spec.new() for spec in F.FAMILIES if spec.scope in scopes}
    for spec, labels, value in samples(state, pods, nodes, quotas, now, known_stores):
        fam = out.get(spec.name)
        if fam is not None:
            fam.add(labels, value)
    return list(out.values())
