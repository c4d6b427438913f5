"""Which extended resources are GPUs, and how many a request or a capacity holds."""

from __future__ import annotations

from typing import Iterable, Mapping

# MIG strategy "mixed" advertises one resource per profile: nvidia.com/mig-1g.10gb, mig-3g.40gb, ...
from ..gpu.nodes import MIG_PREFIX, gpu_units

DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"


class GpuResources:
    """The configured GPU resource names plus every MIG profile name."""

    __slots__ = ("names", "_ordered")

    def __init__(self, names: Iterable[str] = (DEFAULT_GPU_RESOURCE,)) -> None:
        self.names = frozenset(names) | {DEFAULT_GPU_RESOURCE}
        self._ordered = tuple(sorted(self.names))

    def __contains__(self, resource: object) -> bool:
        return isinstance(resource, str) and (resource in self.names or resource.startswith(MIG_PREFIX))

    def count(self, amounts: Mapping[str, int]) -> int:
        """GPU devices in a request/capacity map (a MIG slice counts as one device)."""
        return gpu_units(amounts, self._ordered)


DEFAULT = GpuResources()


def parse_quantity(value: object) -> float:
    """A Kubernetes quantity ("8", "500m", "1k", "2Ki", 3) as a number; ValueError when malformed."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    for suffix, factor in _SUFFIXES:
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


_SUFFIXES = (
    ("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("Ti", 2**40), ("Pi", 2**50), ("Ei", 2**60),
    ("m", 1e-3), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18),
)
