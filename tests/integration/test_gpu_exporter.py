"""The whole exporter (sources, refresh loop, cached exposition) against the simulated GPU fleet
and the Kubernetes test API server: what `demo` shows, checked."""

from __future__ import annotations

import subprocess

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.sim import gpu as simgpu
from ai_signals_exporter.signals import gpu as sig_gpu
from ai_signals_exporter.sim.cluster import SimCluster
from tests.helpers.kube import wait_for

NAMES = {
    "ai_gpu_idle_seconds", "ai_gpu_utilization_ratio", "ai_gpu_node_tainted",
    "ai_gpu_node_allocatable_gpus", "ai_gpu_node_requested_gpus", "ai_gpu_node_idle_gpus",
    "ai_gpu_node_non_gpu_pods", "ai_gpu_node_unhealthy_gpus", "ai_gpu_idle_cost_per_hour",
    "ai_signals_exporter_target_up", "ai_gpu_seconds_total", "ai_gpu_mig_instance_seconds_total",
    "ai_gpu_price_per_hour",
}


async def test_exporter_serves_every_gpu_signal(tmp_path):
    async with SimCluster(tmp_path) as cluster:
        cluster.config["global"]["refresh_interval"] = "200ms"
        cluster.config["gpu"].update(interval="500ms", idle_after="1s")
        await simgpu.attach(cluster)
        exporter = Exporter(cluster.exporter_config())
        await exporter.start()
        try:
            def ready():
                m = parse_families(exporter.exposition.body, NAMES)
                idle = m.get("ai_gpu_node_idle_gpus", [])
                return m if len(idle) == 5 and sum(v for _, v in idle) > 0 else None

            m = await wait_for(ready, timeout=10)
            body = exporter.exposition.body
        finally:
            await exporter.stop()

    assert all(name in m for name in NAMES), NAMES - set(m)
    gpu_targets = [v for labels, v in m["ai_signals_exporter_target_up"] if labels["source"] == "gpu"]
    assert gpu_targets == [1, 1, 1, 1, 1]
    tainted = {labels["node"]: v for labels, v in m["ai_gpu_node_tainted"]}
    assert tainted == {"gpu-h100-a": 1, "gpu-h100-b": 0, "gpu-a100-mig": 1, "gpu-l4-shared": 1,
                       "gpu-l4-ts-v483": 1}
    cpu_pods = {labels["node"]: v for labels, v in m["ai_gpu_node_non_gpu_pods"]}
    assert cpu_pods["gpu-h100-b"] == 1
    # free GPUs 6 and 7 of node a are idle, unallocated
    free = [labels for labels, v in m["ai_gpu_idle_seconds"]
            if labels["node"] == "gpu-h100-a" and labels["gpu"] in ("6", "7")]
    assert [(l["namespace"], l["pod"]) for l in free] == [("", ""), ("", "")]
    # promtool over this area's families (other areas check their own).
    gpu_text = b"".join(
        line + b"\n" for line in body.split(b"\n")
        if line.startswith((b"ai_gpu_", b"# HELP ai_gpu_", b"# TYPE ai_gpu_"))
    )
    # The gpu area's families, plus the scheduling area's ai_gpu_offline_gpus (node b's withdrawn GPU).
    assert gpu_text.count(b"# TYPE ai_gpu_") == len(sig_gpu.FAMILIES) + 1
    res = subprocess.run(["promtool", "check", "metrics"], input=gpu_text, capture_output=True)
    assert res.returncode == 0, res.stderr.decode() + res.stdout.decode()
