"""GPU capacity that cannot take work, per node and one reason per GPU.

Precedence (a GPU is counted under the first that applies): not_ready (all of the node's GPUs),
cordoned (all), unhealthy (capacity - allocatable: GPUs the device plugin withdrew), and
plugin_missing for a node labelled as a GPU node whose capacity advertises no GPU at all (the
device plugin is not registered, e.g. during a GPU Operator upgrade).
"""

from __future__ import annotations

from ..gpu.nodes import GPU_COUNT_LABEL
from .model import NodeView
from .resources import DEFAULT, GpuResources

OFFLINE_REASONS = ("cordoned", "not_ready", "unhealthy", "plugin_missing")
# GPU Feature Discovery / GPU Operator, and NFD's PCI vendor label for NVIDIA (0x10de).
GPU_NODE_LABELS = ("nvidia.com/gpu.present", "feature.node.kubernetes.io/pci-10de.present")


def is_labelled_gpu_node(node: NodeView) -> bool:
    return any(node.labels.get(k) == "true" for k in GPU_NODE_LABELS)


def offline_gpus(node: NodeView, gpus: GpuResources = DEFAULT) -> dict[str, int]:
    """{reason: GPUs} for one node; {} when all its GPUs can take work."""
    capacity = gpus.count(node.capacity)
    if capacity <= 0:
        if not is_labelled_gpu_node(node):
            return {}
        # How many are missing: GFD's count label when present, else at least one.
        try:
            expected = int(node.labels.get(GPU_COUNT_LABEL, "1"))
        except ValueError:
            expected = 1
        return {"plugin_missing": max(1, expected)}
    if not node.ready:
        return {"not_ready": capacity}
    if node.unschedulable:
        return {"cordoned": capacity}
    unhealthy = capacity - gpus.count(node.allocatable)
    return {"unhealthy": unhealthy} if unhealthy > 0 else {}
