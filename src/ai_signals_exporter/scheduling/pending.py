"""Pending GPU pods, classified by the scheduler's verdict.

The scheduler writes its verdict into the pod's PodScheduled=False condition.  With reason
`Unschedulable` the message is FitError.Error() (pkg/scheduler/framework/types.go):

    0/<N> nodes are available: <count> <reason>, <count> <reason>, .... [preemption: <msg>.]

one "<count> <reason>" per distinct plugin reason, sorted as strings; the PostFilter
(preemption) message is appended after the filter verdict and is not a cause, so it is cut off.
A PreFilter rejection has no per-node counts ("0/5 nodes are available: pod has unbound
immediate PersistentVolumeClaims.") and then blocks all N nodes.  A message naming several causes
counts under the class whose reasons block the most nodes; ties go to the first class of
REASONS.  docs/scheduling.md has the table of reason strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import PodView
from .resources import DEFAULT, GpuResources

REASONS = ("insufficient_gpu", "node_affinity", "untolerated_taint", "scheduling_gated", "other")

_HEADER = re.compile(r"0/(\d+) nodes are available:\s*")
# " preemption: ..." (DefaultPreemption's PostFilter message) follows the filter verdict.
_POSTFILTER = re.compile(r"\s+preemption:\s")
# "<count> <reason>" items; a taint's "{key: value}" may hold a comma, so braces are kept whole.
_ITEM = re.compile(r"(?:^|,\s)(\d+)\s((?:[^,{]|\{[^}]*\})+)")
_INSUFFICIENT = re.compile(r"^Insufficient (\S+)$")
_AFFINITY = (
    "didn't match Pod's node affinity",  # 1.22+: ".../selector"; before: "node affinity"
    "didn't match node selector",  # before 1.22
    "didn't match scheduler-enforced node affinity",
)
_TAINT = ("had untolerated taint", "had taint", "had taints that the pod didn't tolerate")
_GATED = ("waiting for scheduling gates",)


def classify_reason_string(reason: str, gpus: GpuResources = DEFAULT) -> str:
    """One plugin reason ("Insufficient nvidia.com/gpu", "node(s) had untolerated taint {...}")."""
    reason = reason.strip().rstrip(".")
    m = _INSUFFICIENT.match(reason)
    if m:
        return "insufficient_gpu" if m.group(1) in gpus else "other"
    if any(s in reason for s in _AFFINITY):
        return "node_affinity"
    if any(s in reason for s in _TAINT):
        return "untolerated_taint"
    if any(s in reason for s in _GATED):
        return "scheduling_gated"
    return "other"


def blocked_nodes(message: str, gpus: GpuResources = DEFAULT) -> dict[str, int]:
    """Nodes blocked per class in a FitError message ({} when it is not one)."""
    header = _HEADER.search(message)
    if header is None:
        return {}
    body = _POSTFILTER.split(message[header.end():], maxsplit=1)[0].strip()
    body = body[:-1] if body.endswith(".") else body
    out: dict[str, int] = {}
    items = _ITEM.findall(body)
    if not items and body:  # a PreFilter verdict: no counts, every node is blocked by it
        items = [(header.group(1), body)]
    for count, reason in items:
        cls = classify_reason_string(reason, gpus)
        out[cls] = out.get(cls, 0) + int(count)
    return out


def classify_message(message: str, gpus: GpuResources = DEFAULT) -> str:
    """The class that blocks the most nodes; ties go to the earlier class of REASONS."""
    counts = blocked_nodes(message, gpus)
    if not counts:
        return classify_reason_string(message, gpus)
    return max(REASONS, key=lambda r: (counts.get(r, 0), -REASONS.index(r)))


def pending_reason(pod: PodView, gpus: GpuResources = DEFAULT) -> str | None:
    """The reason a GPU pod waits, or None when it is not a pending GPU pod.

    Only pods with a PodScheduled=False verdict count (or scheduling gates, whose condition the
    apiserver sets at create): a pod the scheduler has not looked at yet is not "waiting".
    """
    if pod.phase != "Pending" or pod.node or gpus.count(pod.requests) <= 0:
        return None
    if pod.scheduling_gates:
        return "scheduling_gated"
    cond = pod.conditions.get("PodScheduled")
    if cond is None or cond.status != "False":
        return None
    if cond.reason == "SchedulingGated":
        return "scheduling_gated"
    if cond.reason == "Unschedulable":
        return classify_message(cond.message, gpus)
    return "other"  # SchedulerError and reasons of other schedulers


@dataclass(slots=True)
class PendingGroup:
    pods: int = 0
    gpus: int = 0


WorkloadKey = tuple[str, str, str]  # namespace, workload_kind, workload


def aggregate_pending(
    pods, now: float, gpus: GpuResources = DEFAULT,
) -> tuple[dict[tuple[str, str, str, str], PendingGroup], dict[WorkloadKey, float]]:
    """Pending pods and GPUs per (namespace, kind, workload, reason), and the oldest pending age
    per workload (from creation; from the condition's transition when creation is unknown)."""
    groups: dict[tuple[str, str, str, str], PendingGroup] = {}
    oldest: dict[WorkloadKey, float] = {}
    for pod in pods:
        reason = pending_reason(pod, gpus)
        if reason is None:
            continue
        g = groups.setdefault((pod.namespace, pod.workload_kind, pod.workload, reason), PendingGroup())
        g.pods += 1
        g.gpus += gpus.count(pod.requests)
        since = pod.created
        if since is None:
            cond = pod.conditions.get("PodScheduled")
            since = cond.last_transition if cond else None
        age = max(0.0, now - since) if since is not None else 0.0
        key = (pod.namespace, pod.workload_kind, pod.workload)
        if age >= oldest.get(key, -1.0):
            oldest[key] = age
    return groups, oldest
