"""GPU waste: idle GPUs and mis-scheduled pods on GPU nodes.

Joins fresh dcgm-exporter readings (`state.dcgm`, idle stretches in `state.gpu_idle`, both
written by sources/gpu.py) with node and pod state (`state.kube`).  Pure: no I/O, no mutation.

Per-GPU series come from dcgm alone, so they work with Kubernetes disabled (node = the target's
`node` or the payload's Hostname).  Per-node series need the node list; the idle count needs
fresh dcgm data for the node (no data is unknown, not idle).  GPU time (gpu/accounting.py) is
integrated by the source; here its counters are only formatted.
"""

from __future__ import annotations

from ..config import Config
from ..expo.families import Family, FamilySpec, new_families
from ..gpu import accounting
from ..gpu.idle import idle_seconds, is_idle
from ..gpu.nodes import gpu_nodes
from ..gpu.observation import fresh_readings, stale_after
from ..gpu.pricing import mig_fraction, price_for
from ..gpu.state import GPU_TIME
from ..state import AppState

GPU_LABELS = ("node", "gpu", "uuid", "gpu_model", "namespace", "pod")
NODE_LABELS = ("node",)


IDLE_SECONDS = FamilySpec(
    "ai_gpu_idle_seconds", "gauge",
    "Continuous time this GPU (or MIG instance) has stayed below gpu.idle_threshold "
    "utilisation, 0 when busy. Counted from the first idle reading this exporter saw, "
    "restarting when the pod the GPU is attributed to changes; "
    "an allocated GPU that idles for long wastes the most expensive hardware.",
    GPU_LABELS,
)
UTILIZATION = FamilySpec(
    "ai_gpu_utilization_ratio", "gauge",
    "GPU utilisation 0..1: DCGM_FI_DEV_GPU_UTIL/100, or DCGM_FI_PROF_GR_ENGINE_ACTIVE on "
    "MIG instances (gpu=\"index/GPU_I_ID\"). A time-sliced device appears once.",
    GPU_LABELS,
)
NODE_TAINTED = FamilySpec(
    "ai_gpu_node_tainted", "gauge",
    "1 if the GPU node has the gpu.taint_key taint with effect NoSchedule or NoExecute. "
    "Untainted GPU nodes attract CPU-only pods that then block GPU workloads.",
    NODE_LABELS,
)
NODE_ALLOCATABLE_GPUS = FamilySpec(
    "ai_gpu_node_allocatable_gpus", "gauge",
    "Schedulable GPU units on the node: allocatable gpu.resource_name plus nvidia.com/mig-* "
    "instances (time-slicing replicas count as advertised).",
    NODE_LABELS,
)
NODE_REQUESTED_GPUS = FamilySpec(
    "ai_gpu_node_requested_gpus", "gauge",
    "GPU units requested by running or bound pending pods on the node, counted the way "
    "the scheduler does (max of init containers and the sum of containers).",
    NODE_LABELS,
)
NODE_IDLE_GPUS = FamilySpec(
    "ai_gpu_node_idle_gpus", "gauge",
    "GPUs (and MIG instances) on the node below gpu.idle_threshold for at least "
    "gpu.idle_after, per fresh dcgm-exporter data; absent when the node has none.",
    NODE_LABELS,
)
NODE_NON_GPU_PODS = FamilySpec(
    "ai_gpu_node_non_gpu_pods", "gauge",
    "Running pods on the GPU node that request no GPU, DaemonSet and static pods "
    "excluded: workloads taking CPU and memory from GPU jobs on expensive nodes.",
    NODE_LABELS,
)
NODE_UNHEALTHY_GPUS = FamilySpec(
    "ai_gpu_node_unhealthy_gpus", "gauge",
    "GPU capacity minus allocatable: devices the NVIDIA device plugin withdrew as "
    "unhealthy (e.g. after non-application XID errors).",
    NODE_LABELS,
)
IDLE_COST_PER_HOUR = FamilySpec(
    "ai_gpu_idle_cost_per_hour", "gauge",
    "Price per hour of the GPUs idle for at least gpu.idle_after on the node, by GPU "
    "model, from gpu.price_per_gpu_hour (a MIG instance costs its share of the GPU).",
    ("node", "gpu_model"),
)
# GPU time (docs/gpu-time.md), declared in gpu/accounting.py next to the counters.
GPU_SECONDS, MIG_INSTANCE_SECONDS, PRICE_PER_HOUR = accounting.FAMILIES
FAMILIES = (
    IDLE_SECONDS, UTILIZATION, NODE_TAINTED, NODE_ALLOCATABLE_GPUS, NODE_REQUESTED_GPUS,
    NODE_IDLE_GPUS, NODE_NON_GPU_PODS, NODE_UNHEALTHY_GPUS, IDLE_COST_PER_HOUR,
    GPU_SECONDS, MIG_INSTANCE_SECONDS, PRICE_PER_HOUR,
)


def derive(state: AppState, config: Config, now: float) -> list[Family]:
    g = config.gpu
    scope = config.kubernetes.node_scope or None
    fams = new_families(FAMILIES)
    kube = state.kube
    nodes = (
        gpu_nodes(kube, g.resource_names, g.taint_key, scope) if kube.nodes_synced else {}
    )
    readings = fresh_readings(state.dcgm, now, stale_after(g.interval), scope)
    tracks = state.gpu_idle

    idle_per_node: dict[str, int] = {}
    cost: dict[tuple[str, str], float] = {}
    prices: dict[str, float | None] = {}
    for key, (node, r) in sorted(readings.items(), key=lambda kv: (kv[1][0], kv[1][1].series_gpu)):
        kn = nodes.get(node)
        model = (kn.model if kn is not None and kn.model else "") or r.model
        # Several pods on one time-sliced device: the first in sorted order labels the series,
        # so the labels stay stable while the set of sharers does not change.
        ns, pod = r.pods[0] if r.pods else ("", "")
        labels = (node, r.series_gpu, r.uuid, model, ns, pod)
        t = tracks.get(key)
        # The track and the reading come from the same scrape; if they ever disagree the reading
        # wins (a busy reading is never reported idle).
        secs = idle_seconds(t, now) if is_idle(r.util, g.idle_threshold) else 0.0
        fams[IDLE_SECONDS.name].add(labels, round(secs, 3))
        fams[UTILIZATION.name].add(labels, r.util)
        idle_long = secs >= g.idle_after and secs > 0
        idle_per_node[node] = idle_per_node.get(node, 0) + (1 if idle_long else 0)
        if model not in prices:  # one lookup per model, not per GPU
            prices[model] = price_for(model, g.price_per_gpu_hour)
        price = prices[model]
        if price is not None:
            share = mig_fraction(r.profile, model) if r.is_mig else 1.0
            ck = (node, model)
            cost[ck] = cost.get(ck, 0.0) + (price * share if idle_long else 0.0)

    for name, n in sorted(nodes.items()):
        fams[NODE_TAINTED.name].add((name,), 1 if n.tainted else 0)
        fams[NODE_ALLOCATABLE_GPUS.name].add((name,), n.allocatable)
        fams[NODE_UNHEALTHY_GPUS.name].add((name,), n.unhealthy)
        if kube.pods_synced:
            fams[NODE_REQUESTED_GPUS.name].add((name,), n.requested)
            fams[NODE_NON_GPU_PODS.name].add((name,), n.non_gpu_pods)
    for name, count in sorted(idle_per_node.items()):
        fams[NODE_IDLE_GPUS.name].add((name,), count)
    for (name, model), value in sorted(cost.items()):
        fams[IDLE_COST_PER_HOUR.name].add((name, model), round(value, 6))
    acc = state[GPU_TIME]
    for spec, labels, value in accounting.gpu_time_samples(acc):
        fams[spec.name].add(labels, value)
    for spec, labels, value in accounting.price_samples(acc, g.price_per_gpu_hour):
        fams[spec.name].add(labels, value)
    return list(fams.values())
