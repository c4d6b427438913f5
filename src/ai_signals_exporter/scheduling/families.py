"""The scheduling area's metric families as data (DESIGN.md "Metric contract, turn 2")."""

from __future__ import annotations

from dataclasses import dataclass

from ..expo.families import FamilySpec as _Spec


@dataclass(frozen=True, slots=True)
class FamilySpec(_Spec):
    """The registry's FamilySpec plus `scope`: which instance owns the family in the node-agents
    + cluster-instance topology ("cluster" | "node"; DESIGN.md "Topologies")."""

    scope: str = "cluster"


_WORKLOAD = ("namespace", "workload_kind", "workload")
_STORE = ("store", "namespace", "job")

PODS_PENDING = FamilySpec(
    "ai_gpu_pods_pending", "gauge",
    "Pods requesting GPUs not yet scheduled, by the scheduler's reason "
    "(insufficient_gpu|node_affinity|untolerated_taint|scheduling_gated|other).",
    _WORKLOAD + ("reason",))
PODS_PENDING_GPUS = FamilySpec(
    "ai_gpu_pods_pending_requested_gpus", "gauge",
    "GPUs requested by pods not yet scheduled, by the scheduler's reason.", _WORKLOAD + ("reason",))
PODS_PENDING_OLDEST = FamilySpec(
    "ai_gpu_pods_pending_oldest_seconds", "gauge",
    "Age of the oldest pending GPU pod of the workload, from its creation.", _WORKLOAD)
ADMISSION_FAILURES = FamilySpec(
    "ai_gpu_node_admission_failures_total", "counter",
    "GPU pods the kubelet rejected at admission, once per pod "
    "(unexpected_admission_error|out_of_gpu|out_of_resource).", ("node", "reason"), scope="node")
DISRUPTIONS = FamilySpec(
    "ai_gpu_pod_disruptions_total", "counter",
    "GPU pods disrupted, from the DisruptionTarget condition, once per pod "
    "(preemption|eviction_api|node_pressure|taint|other).", _WORKLOAD + ("reason",), scope="node")
CKPT_INTERRUPTIONS = FamilySpec(
    "ai_checkpoint_interruptions_total", "counter",
    "Disruptions of a job with a checkpoint store, once per disruption of the job.",
    _STORE + ("reason",))
CKPT_LOST_SECONDS = FamilySpec(
    "ai_checkpoint_lost_seconds_total", "counter",
    "Work lost to disruptions: disruption time minus the last complete checkpoint.", _STORE)
CKPT_LOST_GPU_SECONDS = FamilySpec(
    "ai_checkpoint_lost_gpu_seconds_total", "counter",
    "Work lost to disruptions times the job's GPUs.", _STORE)
QUOTA_GPUS = FamilySpec(
    "ai_gpu_quota_gpus", "gauge",
    "GPUs of a ResourceQuota (kind=hard|used), summed over the GPU resources it limits.",
    ("namespace", "quota", "kind"))
QUOTA_REJECTIONS = FamilySpec(
    "ai_gpu_quota_rejections_total", "counter",
    "Pod creations rejected for exceeding a GPU quota (FailedCreate warning events).",
    ("namespace",))
OFFLINE_GPUS = FamilySpec(
    "ai_gpu_offline_gpus", "gauge",
    "GPU capacity that cannot take work (cordoned|not_ready|unhealthy|plugin_missing).",
    # Cluster scope: a NotReady node's own agent is usually down with it, so only the cluster
    # instance (which watches every node) can report not_ready (docs/deploy.md).
    ("node", "reason"), scope="cluster")

FAMILIES = (
    PODS_PENDING, PODS_PENDING_GPUS, PODS_PENDING_OLDEST, ADMISSION_FAILURES, DISRUPTIONS,
    CKPT_INTERRUPTIONS, CKPT_LOST_SECONDS, CKPT_LOST_GPU_SECONDS, QUOTA_GPUS, QUOTA_REJECTIONS,
    OFFLINE_GPUS,
)
