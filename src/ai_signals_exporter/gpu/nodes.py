"""Joins over Kubernetes state: which nodes carry GPUs, their taints, requests, and the pods
that should not be there.

GPU units are schedulable devices: whole GPUs of the configured resources (``nvidia.com/gpu`` by
default; a list may add a time-slicing rename such as ``nvidia.com/gpu.shared``) plus MIG
instances exposed as ``nvidia.com/mig-<profile>`` (mixed strategy).  With time-slicing the device
plugin advertises replicas, so allocatable and requests count replicas.  The kube side counts a
renamed resource as allocated even where dcgm-exporter does not attribute it: the exporter only
maps ``nvidia.com/gpu``, ``nvidia.com/mig-*`` and the names in its ``NVIDIA_RESOURCE_NAMES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..kube.model import KubeState, NodeInfo, PodInfo

MIG_PREFIX = "nvidia.com/mig-"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # set by GPU feature discovery
GPU_COUNT_LABEL = "nvidia.com/gpu.count"  # GFD too; MIG devices under the single strategy
_TAINT_EFFECTS = frozenset({"NoSchedule", "NoExecute"})  # PreferNoSchedule keeps nobody off
_HOLDING_PHASES = frozenset({"Running", "Pending"})  # bound Pending pods already hold devices


ResourceNames = str | tuple[str, ...]


def _names(resource_name: ResourceNames) -> tuple[str, ...]:
    return (resource_name,) if isinstance(resource_name, str) else resource_name


def gpu_units(resources: dict[str, int], resource_name: ResourceNames) -> int:
    if not resources:  # most of 20,000 pods request no extended resource at all
        return 0
    return sum(resources.get(n, 0) for n in _names(resource_name)) + sum(
        v for k, v in resources.items() if k.startswith(MIG_PREFIX)
    )


def is_gpu_node(node: NodeInfo, resource_name: ResourceNames) -> bool:
    # Capacity too: when the device plugin withdraws every device as unhealthy, allocatable drops
    # to 0 while capacity keeps them, and that node must stay visible (unhealthy_gpus = all).
    # Plain loops, not nested any() generators: run for every node on every refresh.
    names = _names(resource_name)
    for res in (node.allocatable, node.capacity):
        for n in names:
            if res.get(n, 0) > 0:
                return True
        for k in res:
            if k.startswith(MIG_PREFIX):
                return True
    return False


def is_tainted(node: NodeInfo, taint_key: str) -> bool:
    return any(t.key == taint_key and t.effect in _TAINT_EFFECTS for t in node.taints)


def holds_gpus(pod: PodInfo, resource_name: ResourceNames) -> bool:
    return gpu_units(pod.requests, resource_name) > 0


def is_non_gpu_pod(pod: PodInfo, resource_name: ResourceNames, units: int | None = None) -> bool:
    """A running workload pod without GPUs.  DaemonSet pods (device plugin, dcgm-exporter, log
    agents) and static pods belong on every node and are not mis-scheduling.  `units`: the pod's
    GPU units when the caller has them already (one join over 20,000 pods per refresh)."""
    return (
        pod.phase == "Running"
        and not pod.is_daemonset
        and not pod.is_static
        and not (holds_gpus(pod, resource_name) if units is None else units > 0)
    )


@dataclass(slots=True)
class NodeGpus:
    name: str
    tainted: bool
    allocatable: int
    capacity: int
    requested: int = 0
    non_gpu_pods: int = 0
    model: str = ""

    @property
    def unhealthy(self) -> int:
        # The device plugin reports an unhealthy device and the kubelet drops it from
        # allocatable while capacity keeps it.
        return max(0, self.capacity - self.allocatable)


def gpu_nodes(
    kube: KubeState, resource_name: ResourceNames, taint_key: str, node_scope: str | None = None
) -> dict[str, NodeGpus]:
    """Per GPU node: taint, allocatable, requested units and non-GPU pods.  One pass over pods."""
    out: dict[str, NodeGpus] = {}
    for node in kube.nodes.values():
        if node_scope and node.name != node_scope:
            continue
        if not is_gpu_node(node, resource_name):
            continue
        out[node.name] = NodeGpus(
            name=node.name,
            tainted=is_tainted(node, taint_key),
            allocatable=gpu_units(node.allocatable, resource_name),
            capacity=gpu_units(node.capacity, resource_name),
            model=node.labels.get(GPU_PRODUCT_LABEL, ""),
        )
    if not out:
        return out
    for pod in kube.pods.values():
        n = out.get(pod.node)
        if n is None:
            continue
        units = gpu_units(pod.requests, resource_name)
        if pod.phase in _HOLDING_PHASES:
            n.requested += units
        if is_non_gpu_pod(pod, resource_name, units):
            n.non_gpu_pods += 1
    return out
