"""In-memory state shared by sources (writers) and signals (readers).

Sources do all I/O and write the latest observations here with their timestamps; signal modules
read it and never do I/O.  Everything runs on one asyncio loop, so no locks are needed: a source
replaces an observation object in one assignment.

Objects are trimmed on ingest: a pod here is a few hundred bytes, not a full API object.
Each area's stored type lives in the area's own package; this module only gives it a slot.
"""

from __future__ import annotations

from typing import Any, TypeVar

from .checkpoints.observation import CHECKPOINTS, StoreObservation
from .gpu.state import DCGM, GPU_IDLE, DcgmObservation, GpuKey, IdleTrack
from .kube.model import (  # noqa: F401  (re-exported: the kube records' home is kube/model.py)
    Condition,
    KubeState,
    NodeInfo,
    PodInfo,
    QuotaInfo,
    Taint,
    WarningEvent,
    WorkloadInfo,
)
from .selfmon import SelfMon
from .serving.history import SERVING, TargetHistory
from .slots import Slot, SlotAttribute
from .streaming.record import PROBES, ProbeObservation


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
