"""The GPU area's slots in `AppState`: the latest dcgm observation per target, the idle
stretch per GPU (tracked at ingest by sources/gpu.py, so the derivation stays pure), and the GPU
time counters (advanced by the source once per cycle; a config reload keeps them, so they stay
monotonic, and only an exporter restart starts them at 0)."""

from __future__ import annotations

from ..slots import Slot
from .accounting import GpuTimeAccumulator
from .idle import IdleTrack
from .observation import DcgmObservation
from .readings import GpuKey

DCGM: Slot[dict[str, DcgmObservation]] = Slot("dcgm", dict)  # target URL -> observation
GPU_IDLE: Slot[dict[GpuKey, IdleTrack]] = Slot("gpu_idle", dict)  # GPU -> idle stretch
GPU_TIME: Slot[GpuTimeAccumulator] = Slot("gpu_time", GpuTimeAccumulator)

__all__ = ["DCGM", "GPU_IDLE", "GPU_TIME", "GpuTimeAccumulator", "DcgmObservation", "GpuKey", "IdleTrack"]
