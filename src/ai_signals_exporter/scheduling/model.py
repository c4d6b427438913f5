"""Plain inputs of the scheduling area, trimmed to the fields its functions read.

They mirror the kube source's records (PodInfo, NodeInfo, ResourceQuota, Warning Event) so an
adapter is a field-by-field copy; timestamps are epoch seconds, None when absent.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Condition:
    status: str  # "True" | "False" | "Unknown"
    reason: str = ""
    message: str = ""
    last_transition: float | None = None


@dataclass(slots=True)
class PodView:
    uid: str
    namespace: str
    name: str
    workload_kind: str
    workload: str
    node: str = ""
    phase: str = "Pending"
    # status.reason / status.message (UnexpectedAdmissionError, OutOfnvidia.com/gpu, ...).
    reason: str = ""
    message: str = ""
    requests: dict[str, int] = field(default_factory=dict)
    # By condition type: PodScheduled, Initialized, Ready, DisruptionTarget.
    conditions: dict[str, Condition] = field(default_factory=dict)
    created: float | None = None
    scheduling_gates: tuple[str, ...] = ()


@dataclass(slots=True)
class NodeView:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    capacity: dict[str, int] = field(default_factory=dict)
    allocatable: dict[str, int] = field(default_factory=dict)
    unschedulable: bool = False
    ready: bool = True


@dataclass(slots=True)
class QuotaView:
    namespace: str
    name: str
    # status.hard / status.used, quantities as the API serialises them ("8", "500m", 2).
    hard: dict[str, object] = field(default_factory=dict)
    used: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class EventView:
    uid: str
    namespace: str
    type: str  # Normal | Warning
    reason: str
    message: str
    # core/v1 `count`, or events.k8s.io `series.count`; 1 for a single occurrence.
    count: int = 1
