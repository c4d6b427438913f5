"""The GPU area's slots in `AppState`: the latest dcgm observation per target, and the idle
stretch per GPU (tracked at ingest by sources/gpu.py, so the derivation stays pure)."""

from __future__ import annotations

from ..slots import Slot
from .idle import IdleTrack
from .observation import DcgmObservation
from .readings import GpuKey

DCGM: Slot[dict[str, DcgmObservation]] = Slot("dcgm", dict)  # target URL -> observation
GPU_IDLE: Slot[dict[GpuKey, IdleTrack]] = Slot("gpu_idle", dict)  # GPU -> idle stretch

__all__ = ["DCGM", "GPU_IDLE", "DcgmObservation", "GpuKey", "IdleTrack"]
