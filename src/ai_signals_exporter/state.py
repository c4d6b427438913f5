"""In-memory state shared by sources (writers) and signals (readers).

Sources do all I/O and write the latest observations here with their timestamps; signal modules
read it and never do I/O.  Everything runs on one asyncio loop, so no locks are needed: a source
replaces an observation object in one assignment.

Objects are trimmed on ingest: a pod here is a few hundred bytes, not a full API object.
Each area's stored type lives in the area's own package; this module only gives it a slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from .checkpoints.observation import CHECKPOINTS, StoreObservation
from .gpu.state import DCGM, GPU_IDLE, DcgmObservation, GpuKey, IdleTrack
from .selfmon import SelfMon
from .serving.history import SERVING, TargetHistory
from .slots import Slot, SlotAttribute
from .streaming.record import PROBES, ProbeObservation


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


T = TypeVar("T")


class AppState:
    """Latest observations: the Kubernetes object store and the exporter's own health, shared by
    every area, plus one slot per area (`state[slot]`), made empty on first use."""

    def __init__(self) -> None:
        self.selfmon = SelfMon()
        self.kube = KubeState()
        self._slots: dict[Slot[Any], Any] = {}

    def __getitem__(self, slot: Slot[T]) -> T:
        try:
            return self._slots[slot]
        except KeyError:
            value = self._slots[slot] = slot.empty()
            return value

    def reset(self, slot: Slot[Any]) -> None:
        """Forget what the area stored (its source was disabled by a reload)."""
        self[slot] = slot.empty()

    def __setitem__(self, slot: Slot[T], value: T) -> None:
        self._slots[slot] = value

    # The built-in areas' slots by name, for readability at the call sites.
    serving: SlotAttribute[dict[str, TargetHistory]] = SlotAttribute(SERVING)
    dcgm: SlotAttribute[dict[str, DcgmObservation]] = SlotAttribute(DCGM)
    gpu_idle: SlotAttribute[dict[GpuKey, IdleTrack]] = SlotAttribute(GPU_IDLE)
    checkpoints: SlotAttribute[dict[str, StoreObservation]] = SlotAttribute(CHECKPOINTS)
    probes: SlotAttribute[dict[str, ProbeObservation]] = SlotAttribute(PROBES)
