"""Kube source records (kube/model.py) -> the area's pure inputs (model.py): field copies.

Only GPU-relevant records are adapted (the tracker filters first), so a pod update of a CPU pod
costs one dictionary look-up here, not an allocation.
"""

from __future__ import annotations

from ..kube.model import NodeInfo, PodInfo, QuotaInfo, WarningEvent
from ..kube.model import Condition as KubeCondition
from .model import Condition, EventView, NodeView, PodView, QuotaView

_CONDITIONS = (("PodScheduled", "scheduled"), ("DisruptionTarget", "disruption"))
# The kube source only keeps a gate flag, not the gate names: what the pending reason needs.
_GATED = ("gated",)


def _condition(c: KubeCondition) -> Condition:
    return Condition(c.status, c.reason, c.message, c.last_transition)


def pod_view(pod: PodInfo) -> PodView:
    conditions = {}
    for kind, attr in _CONDITIONS:
        c = getattr(pod, attr)
        if c is not None:
            conditions[kind] = _condition(c)
    return PodView(
        uid=pod.uid, namespace=pod.namespace, name=pod.name, workload_kind=pod.workload_kind,
        workload=pod.workload, node=pod.node, phase=pod.phase, reason=pod.reason, message=pod.message,
        requests=pod.requests, conditions=conditions, created=pod.created or None,
        scheduling_gates=_GATED if pod.gated else (),
    )


def node_view(node: NodeInfo) -> NodeView:
    return NodeView(name=node.name, labels=node.labels, capacity=node.capacity, allocatable=node.allocatable,
                    unschedulable=node.unschedulable, ready=node.ready == "True")


def quota_view(quota: QuotaInfo) -> QuotaView:
    return QuotaView(namespace=quota.namespace, name=quota.name, hard=dict(quota.hard), used=dict(quota.used))


def event_view(event: WarningEvent) -> EventView:
    return EventView(uid=event.uid, namespace=event.namespace, type="Warning", reason=event.reason,
                     message=event.message, count=event.count)
