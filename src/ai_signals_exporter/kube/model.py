"""Trimmed Kubernetes records held in `AppState.kube` (re-exported from `state`).

A record keeps only what some signal reads: a pod is a few hundred bytes, not a full API
object.  Times are unix seconds (float), parsed once on ingest; absent times are None.  Every
field added after the first ones has a default, so hand-built state in tests stays short.

`KubeState.<resource>` holds one dict per watched resource, named after the API's plural:
    pods             uid -> PodInfo
    nodes            name -> NodeInfo
    resourcequotas   "namespace/name" -> QuotaInfo
    events           uid -> WarningEvent      (type=Warning only, pruned by age)
    deployments      "namespace/name" -> WorkloadInfo
    statefulsets     "namespace/name" -> WorkloadInfo
    leaderworkersets "namespace/name" -> WorkloadInfo
A resource not watched stays an empty dict and absent from `synced`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Taint:
    key: str
    value: str
    effect: str  # NoSchedule | PreferNoSchedule | NoExecute


@dataclass(slots=True)
class NodeInfo:
    name: str
    labels: dict[str, str]
    taints: list[Taint]
    # Extended resources only (names with a '/': nvidia.com/gpu, nvidia.com/mig-1g.10gb, ...).
    capacity: dict[str, int]
    allocatable: dict[str, int]
    unschedulable: bool = False
    # Status of the Ready condition: "True" | "False" | "Unknown" ("Unknown" when the node has
    # no Ready condition yet).  Defaults to "True" for hand-built state.
    ready: str = "True"


@dataclass(slots=True)
class Condition:
    """One pod condition.  `reason`/`message` are kept only where a signal classifies them
    (PodScheduled, DisruptionTarget); `message` is bounded (kube_objects.MESSAGE_MAX)."""

    status: str  # "True" | "False" | "Unknown"
    reason: str = ""
    message: str = ""
    last_transition: float | None = None  # lastTransitionTime


@dataclass(slots=True)
class PodInfo:
    uid: str
    namespace: str
    name: str
    node: str  # "" while unscheduled
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    ip: str
    labels: dict[str, str]
    # Only annotations this exporter reads (prefix ai-signals.io/ and a few well-known ones).
    annotations: dict[str, str]
    # Resolved workload: kind is Deployment, StatefulSet, LeaderWorkerSet, InferenceService,
    # KnativeService, DaemonSet, Job, ... or "Pod" for a bare pod.
    workload_kind: str
    workload: str
    # Effective extended-resource requests the way the scheduler counts them:
    # max(sum over containers, max over init containers), per resource.
    requests: dict[str, int]
    is_daemonset: bool = False
    is_static: bool = False  # mirror pod of a static pod (kubernetes.io/config.mirror)
    ready: bool = False
    deleting: bool = False
    created: float = 0.0  # metadata.creationTimestamp
    deleted_at: float | None = None  # metadata.deletionTimestamp
    # status.reason / status.message (bounded): e.g. UnexpectedAdmissionError, OutOfnvidia.com/gpu,
    # Evicted, with the kubelet's "Pod was rejected: ..." message.
    reason: str = ""
    message: str = ""
    scheduled: Condition | None = None  # PodScheduled (status, reason, message, last_transition)
    initialized: Condition | None = None  # Initialized (status, last_transition)
    containers_ready: Condition | None = None  # ContainersReady (status, last_transition)
    ready_condition: Condition | None = None  # Ready (status, last_transition); `ready` is its bool
    disruption: Condition | None = None  # DisruptionTarget (status, reason, last_transition)
    restarts: int = 0  # sum of containerStatuses[].restartCount
    started_at: float | None = None  # latest containerStatuses[].state.running.startedAt
    gated: bool = False  # spec.schedulingGates is not empty
    # Named container ports (name, containerPort), in spec order: discovery scrapes the one named
    # `metrics` (dcgm-exporter) or `metrics`/`http` (serving) instead of a configured default.
    ports: tuple[tuple[str, int], ...] = ()

    def named_port(self, names: tuple[str, ...], default: int) -> int:
        """The container port with the first of `names` the pod declares, else `default`."""
        for name in names:
            for port_name, number in self.ports:  # the first container declaring it wins
                if port_name == name:
                    return number
        return default


@dataclass(slots=True)
class QuotaInfo:
    """A ResourceQuota, extended-resource (GPU and other device) entries only, as whole
    numbers: keys as the quota spells them (`requests.nvidia.com/gpu`, `nvidia.com/gpu`,
    `limits.nvidia.com/gpu`)."""

    namespace: str
    name: str
    hard: dict[str, int]
    used: dict[str, int]


@dataclass(slots=True)
class WarningEvent:
    """A core/v1 Event of type Warning, kept only as far as counting needs.

    `count` is the number of occurrences so far (series.count for events.k8s.io-style events,
    else count, at least 1); the recorder updates the same object (same uid) as it repeats, so a
    counter adds `count` minus the count last seen for that uid.  `first_seen`/`last_seen` come
    from firstTimestamp/eventTime and series.lastObservedTime/lastTimestamp/eventTime."""

    uid: str
    namespace: str  # involvedObject.namespace (the event's own namespace when empty)
    reason: str  # FailedCreate, FailedScheduling, UnexpectedAdmissionError, ...
    kind: str  # involvedObject.kind
    name: str  # involvedObject.name
    object_uid: str  # involvedObject.uid
    message: str  # bounded (kube_objects.MESSAGE_MAX)
    count: int
    first_seen: float
    last_seen: float


@dataclass(slots=True)
class WorkloadInfo:
    """A Deployment, StatefulSet or LeaderWorkerSet: what keeps a workload visible at zero
    replicas.  For a LeaderWorkerSet, replicas count groups of `group_size` pods."""

    kind: str  # Deployment | StatefulSet | LeaderWorkerSet (as PodInfo.workload_kind spells it)
    namespace: str
    name: str
    uid: str
    labels: dict[str, str]
    template_labels: dict[str, str]  # the pods' labels (what serving discovery selects on)
    annotations: dict[str, str]  # ai-signals.io/ only
    replicas: int  # spec.replicas (desired; the API defaults it to 1)
    ready_replicas: int = 0  # status.readyReplicas
    updated_replicas: int = 0  # status.updatedReplicas
    current_replicas: int = 0  # status.replicas
    group_size: int = 1  # LeaderWorkerSet spec.leaderWorkerTemplate.size
    created: float = 0.0


class _SyncedFlag:
    """`kube.<resource>_synced` as a bool that reads and sets membership in `kube.synced` (the
    flags came before the set; callers and tests still use them)."""

    def __init__(self, resource: str) -> None:
        self.resource = resource

    def __get__(self, kube: "KubeState | None", owner: type | None = None) -> Any:
        return self if kube is None else self.resource in kube.synced

    def __set__(self, kube: "KubeState", value: bool) -> None:
        kube._set_synced(self.resource, value)


@dataclass
class KubeState:
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    pods: dict[str, PodInfo] = field(default_factory=dict)  # by uid
    resourcequotas: dict[str, QuotaInfo] = field(default_factory=dict)
    events: dict[str, WarningEvent] = field(default_factory=dict)
    deployments: dict[str, WorkloadInfo] = field(default_factory=dict)
    statefulsets: dict[str, WorkloadInfo] = field(default_factory=dict)
    leaderworkersets: dict[str, WorkloadInfo] = field(default_factory=dict)
    # Resources whose first list has completed (plural names: "pods", "events", ...).
    synced: set[str] = field(default_factory=set)
    # Resources served by a CRD the cluster does not have (404): empty, synced, re-checked.
    not_installed: set[str] = field(default_factory=set)
    # Bumped on every change, so consumers (discovery) can skip work when nothing changed.
    generation: int = 0

    def touch(self) -> None:
        self.generation += 1

    pods_synced = _SyncedFlag("pods")
    nodes_synced = _SyncedFlag("nodes")

    def _set_synced(self, resource: str, value: bool) -> None:
        if value:
            self.synced.add(resource)
        else:
            self.synced.discard(resource)
