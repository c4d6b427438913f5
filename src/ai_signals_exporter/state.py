"""In-memory state shared by sources (writers) and signals (readers).

Sources do all I/O and write the latest observations here with their timestamps; signal modules
read it and never do I/O.  Everything runs on one asyncio loop, so no locks are needed: a source
replaces an observation object in one assignment.

Objects are trimmed on ingest: a pod here is a few hundred bytes, not a full API object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
