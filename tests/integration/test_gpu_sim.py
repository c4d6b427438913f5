"""The GPU area against the simulated cluster: Kubernetes test API server (real list/watch via
KubeSource) + simulated dcgm-exporter endpoints over loopback HTTP."""

from __future__ import annotations

import subprocess
import time

import pytest
from aiohttp import web

from ai_signals_exporter.expo.families import render
from ai_signals_exporter.signals.gpu import derive
from ai_signals_exporter.sim import gpu as simgpu
from ai_signals_exporter.sim.cluster import SimCluster
from ai_signals_exporter.sim.objects import make_node, make_pod
from ai_signals_exporter.sources.gpu import DcgmSource
from ai_signals_exporter.state import AppState
from tests.helpers.kube import kube_config, running_kube_api, running_kube_source, wait_for


def series(families, name):
    for f in families:
        if f.name == name:
            return {values: value for _, values, value, _ in f.samples}
    return {}


def by_node(s):
    return {k[0]: v for k, v in s.items()}


def deterministic_fleet():
    """The default fleet with loads pinned, so which GPU is idle does not depend on the clock."""
    sim = simgpu.default_fleet(load=lambda t: 0.8)
    sim.set_load("gpu-h100-a", 5, lambda t: 0.9)
    sim.set_load("gpu-h100-b", 0, lambda t: 0.7)
    sim.set_load("gpu-h100-b", 1, lambda t: 0.7)
    sim.set_load("gpu-a100-mig", 1, lambda t: 0.3)
    sim.set_load("gpu-l4-shared", 0, simgpu.idle)
    return sim


async def run_sources(cluster: SimCluster, state: AppState):
    config = cluster.exporter_config()
    scope = config.kubernetes.node_scope
    expected = [p for p in cluster.kube.objects("Pod") if not scope or p["spec"].get("nodeName") == scope]
    async with running_kube_source(config, state):
        await wait_for(lambda: state.kube.nodes_synced and state.kube.pods_synced
                       and len(state.kube.pods) == len(expected))
        src = DcgmSource(config, state)
        try:
            await src.run_once()
        finally:
            await src.close()
    return config


async def test_every_gpu_signal_from_the_simulated_cluster(tmp_path):
    async with SimCluster(tmp_path) as cluster:
        cluster.config["gpu"].update(interval="60s", idle_after="30s")
        sim = await simgpu.attach(cluster, sim=deterministic_fleet())
        assert len(cluster.config["gpu"]["dcgm_targets"]) == 5
        state = AppState()
        config = await run_sources(cluster, state)
        assert all(o.up for o in state.dcgm.values())
        fams = derive(state, config, time.time() + 31)  # every idle GPU is now idle > idle_after

    assert by_node(series(fams, "ai_gpu_node_tainted")) == {
        "gpu-h100-a": 1, "gpu-h100-b": 0, "gpu-a100-mig": 1, "gpu-l4-shared": 1,
        "gpu-l4-ts-v483": 1}
    assert by_node(series(fams, "ai_gpu_node_allocatable_gpus")) == {
        "gpu-h100-a": 8, "gpu-h100-b": 7, "gpu-a100-mig": 4, "gpu-l4-shared": 4,
        "gpu-l4-ts-v483": 2}
    assert by_node(series(fams, "ai_gpu_node_unhealthy_gpus")) == {
        "gpu-h100-a": 0, "gpu-h100-b": 1, "gpu-a100-mig": 0, "gpu-l4-shared": 0,
        "gpu-l4-ts-v483": 0}
    assert by_node(series(fams, "ai_gpu_node_requested_gpus")) == {
        "gpu-h100-a": 6, "gpu-h100-b": 2, "gpu-a100-mig": 1, "gpu-l4-shared": 3,
        "gpu-l4-ts-v483": 2}
    # the web frontend on the untainted node; dcgm-exporter DaemonSet pods never count
    assert by_node(series(fams, "ai_gpu_node_non_gpu_pods")) == {
        "gpu-h100-a": 0, "gpu-h100-b": 1, "gpu-a100-mig": 0, "gpu-l4-shared": 0,
        "gpu-l4-ts-v483": 0}
    assert by_node(series(fams, "ai_gpu_node_idle_gpus")) == {
        "gpu-h100-a": 3, "gpu-h100-b": 6, "gpu-a100-mig": 2, "gpu-l4-shared": 1,
        "gpu-l4-ts-v483": 0}

    util = series(fams, "ai_gpu_utilization_ratio")
    assert len(util) == 8 + 8 + 4 + 1 + 1  # each time-sliced L4 once, MIG instances each
    l4 = [k for k in util if k[0] == "gpu-l4-shared"]
    assert l4 == [("gpu-l4-shared", "0", sim.nodes["gpu-l4-shared"].devices[0].uuid,
                   "NVIDIA-L4-SHARED", "dev", "jupyter-alice")]  # GFD product of a time-sliced node
    # dcgm-exporter 4.8.3 shape: the per-pod GPU_UTIL series read 0, the device is busy
    v483 = ("gpu-l4-ts-v483", "0", sim.nodes["gpu-l4-ts-v483"].devices[0].uuid, "NVIDIA-L4-SHARED", "llm", "chat-a-0")
    assert util[v483] >= 0.35
    mig = sorted(k[1] for k in util if k[0] == "gpu-a100-mig")
    assert mig == ["0/1", "0/13", "0/5", "1"]
    idle = series(fams, "ai_gpu_idle_seconds")
    notebook = [v for k, v in idle.items() if k[5] == "notebook-0"]
    assert len(notebook) == 1 and notebook[0] > 30
    llama = [v for k, v in idle.items() if k[5] == "llama-70b-0"]
    assert llama == [0, 0, 0, 0]
    assert idle[v483] == 0

    cost = series(fams, "ai_gpu_idle_cost_per_hour")
    assert cost[("gpu-h100-a", "NVIDIA-H100-80GB-HBM3")] == pytest.approx(12.0)
    assert cost[("gpu-a100-mig", "NVIDIA-A100-SXM4-40GB")] == pytest.approx(2.0 * 3 / 7, abs=1e-5)
    assert cost[("gpu-l4-shared", "NVIDIA-L4-SHARED")] == pytest.approx(0.8)

    body = render(fams)
    res = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert res.returncode == 0, res.stderr.decode() + res.stdout.decode()


async def test_taint_removed_and_gpu_goes_idle_live(tmp_path):
    async with SimCluster(tmp_path) as cluster:
        cluster.config["gpu"].update(interval="60s", idle_after="1s")
        sim = await simgpu.attach(cluster, sim=deterministic_fleet())
        state = AppState()
        config = cluster.exporter_config()
        async with running_kube_source(config, state):
            await wait_for(lambda: state.kube.nodes_synced and state.kube.pods_synced)
            src = DcgmSource(config, state)
            try:
                await src.run_once()
                assert by_node(series(derive(state, config, time.time()), "ai_gpu_node_tainted"))["gpu-h100-a"] == 1
                node = cluster.kube.get("Node", None, "gpu-h100-a")
                node["spec"].pop("taints")
                cluster.kube.update(node)
                await wait_for(lambda: not state.kube.nodes["gpu-h100-a"].taints)
                # the serving GPUs on node a stop working
                for i in range(4):
                    sim.set_load("gpu-h100-a", i, simgpu.idle)
                await src.run_once()
                fams = derive(state, config, time.time() + 2)
            finally:
                await src.close()
    assert by_node(series(fams, "ai_gpu_node_tainted"))["gpu-h100-a"] == 0
    assert by_node(series(fams, "ai_gpu_node_idle_gpus"))["gpu-h100-a"] == 7


async def test_daemonset_mode_sees_its_node_only(tmp_path):
    async with SimCluster(tmp_path) as cluster:
        await simgpu.attach(cluster, sim=deterministic_fleet())
        cluster.config["kubernetes"]["node_scope"] = "gpu-h100-b"
        state = AppState()
        config = await run_sources(cluster, state)
        fams = derive(state, config, time.time())
    assert set(by_node(series(fams, "ai_gpu_node_tainted"))) == {"gpu-h100-b"}
    assert {k[0] for k in series(fams, "ai_gpu_utilization_ratio")} == {"gpu-h100-b"}


async def test_kubernetes_disabled_gpu_series_from_dcgm_alone(tmp_path):
    async with SimCluster(tmp_path, kubernetes=False) as cluster:
        await simgpu.attach(cluster, sim=deterministic_fleet())
        config = cluster.exporter_config()
        state = AppState()
        src = DcgmSource(config, state)
        try:
            await src.run_once()
        finally:
            await src.close()
        fams = derive(state, config, time.time())
    assert series(fams, "ai_gpu_node_tainted") == {}
    util = series(fams, "ai_gpu_utilization_ratio")
    # no node labels from Kubernetes: gpu_model is dcgm's modelName
    assert {k[3] for k in util} == {"NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB", "NVIDIA L4"}
    assert set(by_node(series(fams, "ai_gpu_node_idle_gpus"))) == {
        "gpu-h100-a", "gpu-h100-b", "gpu-a100-mig", "gpu-l4-shared", "gpu-l4-ts-v483"}


async def test_discovery_through_the_kubernetes_api(tmp_path):
    """dcgm-exporter found as a pod (label selector, namespace) via real list/watch; its node is
    the pod's placement and its Hostname label is ignored."""
    sim = simgpu.DcgmSim()
    sim.add_node("payload-host-name", 2, load=simgpu.idle)
    runner = web.AppRunner(sim.app("payload-host-name"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.2", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with running_kube_api() as api:
            api.add(make_node("k8s-gpu-1", gpus=2))
            api.add(make_pod("gpu-operator", "nvidia-dcgm-exporter-abcde", node="k8s-gpu-1",
                             owner=("DaemonSet", "nvidia-dcgm-exporter"),
                             labels={"app": "nvidia-dcgm-exporter"}, ip="127.0.0.2",
                             container_port=9400))
            api.add(make_pod("ml", "trainer-0", node="k8s-gpu-1", gpu=1, owner=("Job", "trainer")))
            config = kube_config(api, tmp_path, extra={"gpu": {
                "interval": "60s", "idle_after": "1s",
                "discovery": {"port": port, "namespaces": ["gpu-operator"]}}})
            state = AppState()
            async with running_kube_source(config, state):
                await wait_for(lambda: state.kube.pods_synced and len(state.kube.pods) == 2)
                src = DcgmSource(config, state)
                try:
                    await src.run_once()
                finally:
                    await src.close()
                fams = derive(state, config, time.time() + 2)
    finally:
        await runner.cleanup()
    assert list(state.dcgm) == [f"http://127.0.0.2:{port}/metrics"]
    assert {k[0] for k in series(fams, "ai_gpu_utilization_ratio")} == {"k8s-gpu-1"}
    assert series(fams, "ai_gpu_node_idle_gpus") == {("k8s-gpu-1",): 2}
    assert series(fams, "ai_gpu_node_requested_gpus") == {("k8s-gpu-1",): 1}
