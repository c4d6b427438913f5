"""Cardinality guard for GPU time at the scale target (1,000 GPU nodes x 8 GPUs): pods churn
every cycle (a Deployment rolling, Job pods replaced), yet the series stay nodes x (the node's
unattributed states + its workloads' states): workload, never pod, in the labels."""

from __future__ import annotations

from ai_signals_exporter.gpu.accounting import (
    GpuTimeAccumulator, account, gpu_time_samples, node_capacities, workload_resolver,
)
from ai_signals_exporter.gpu.observation import DcgmObservation
from ai_signals_exporter.gpu.readings import GpuReading
from ai_signals_exporter.state import NodeInfo, PodInfo

NODES = 1000
WORKLOADS_PER_NODE = 2  # GPUs 0-3: a serving Deployment, busy; GPUs 4-5: a notebook, idle
CYCLES = 6


def test_series_stay_bounded_by_workloads_while_pods_churn():
    nodes = [NodeInfo(f"gpu-{i:04d}", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, [],
                      {"nvidia.com/gpu": 8}, {"nvidia.com/gpu": 8}) for i in range(NODES)]
    capacities = node_capacities(nodes, ("nvidia.com/gpu",))
    acc = GpuTimeAccumulator()
    pod_names: set[str] = set()
    for cycle in range(CYCLES):
        now = 1000.0 + 15.0 * cycle
        pods: list[PodInfo] = []
        observations = {}
        for i, node in enumerate(nodes):
            serve = f"serve-{i % 50}-{cycle:x}{i:04d}"  # a new pod name every cycle
            nb = f"nb-{i % 7}-{cycle}-{i}"
            pods += [
                PodInfo(f"u-{serve}", "llm", serve, node.name, "Running", "", {}, {}, "Deployment",
                        f"serve-{i % 50}", {"nvidia.com/gpu": 4}),
                PodInfo(f"u-{nb}", "research", nb, node.name, "Running", "", {}, {}, "StatefulSet",
                        f"nb-{i % 7}", {"nvidia.com/gpu": 2}),
            ]
            pod_names |= {serve, nb}
            readings = tuple(
                GpuReading((f"{node.name}-{g}", ""), str(g), f"{node.name}-{g}", "", "",
                           "NVIDIA H100 80GB HBM3", node.name, 0.9 if g < 4 else 0.0,
                           (("llm", serve),) if g < 4 else (("research", nb),) if g < 6 else ())
                for g in range(8)
            )
            observations[node.name] = DcgmObservation(node.name, node.name, now, readings, up=True)
        account(acc, observations, capacities, now, threshold=0.05, interval=15.0,
                workload_of=workload_resolver(pods))
    samples = gpu_time_samples(acc)
    # 4 unattributed states per node + one state per workload holding GPUs on it.
    assert len(samples) == NODES * (4 + WORKLOADS_PER_NODE)
    assert not pod_names & {v for _, labels, _ in samples for v in labels}
    assert {labels[4] for _, labels, _ in samples} - {""} == (
        {f"serve-{i}" for i in range(50)} | {f"nb-{i}" for i in range(7)})
