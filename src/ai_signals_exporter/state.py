"""In-memory state shared by sources (writers) and signals (readers).

Sources do all I/O and write the latest observations here with their timestamps; signal modules
read it and never do I/O.  Everything runs on one asyncio loop, so no locks are needed: a source
replaces an observation object in one assignment.

Objects are trimmed on ingest: a pod here is a few hundred bytes, not a full API object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .selfmon import SelfMon


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


@dataclass
class KubeState:
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    pods: dict[str, PodInfo] = field(default_factory=dict)  # by uid
    nodes_synced: bool = False
    pods_synced: bool = False
    # Bumped on every change, so consumers (discovery) can skip work when nothing changed.
    generation: int = 0

    def touch(self) -> None:
        self.generation += 1


@dataclass
class AppState:
    """Latest observations per area.  Values of the per-area dicts are defined by the module that
    owns the area (sources/serving.py + signals/serving.py, sources/gpu.py + signals/gpu.py, ...)."""

    selfmon: SelfMon = field(default_factory=SelfMon)
    kube: KubeState = field(default_factory=KubeState)
    # target key -> serving history (signals/serving.py: TargetHistory)
    serving: dict[str, Any] = field(default_factory=dict)
    # dcgm target url -> observation (sources/gpu.py)
    dcgm: dict[str, Any] = field(default_factory=dict)
    # extra per-area state a signal needs across refreshes (e.g. idle-since timestamps per GPU)
    gpu: dict[str, Any] = field(default_factory=dict)
    # store name -> observation (sources/checkpoints.py)
    checkpoints: dict[str, Any] = field(default_factory=dict)
    # probe name -> observation (sources/probes.py)
    probes: dict[str, Any] = field(default_factory=dict)
