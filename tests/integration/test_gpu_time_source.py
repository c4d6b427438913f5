"""GPU time through the real gpu source: the demo's simulated fleet (busy serving, an idle
notebook, a busy/idle batch job, free GPUs, a withdrawn GPU, a GPU missing from dcgm for 5
minutes of every half hour, MIG, time-slicing with and without virtual GPUs) served over HTTP,
scraped by `DcgmSource` on an injected clock for a simulated hour; the counters the gpu area
renders are within 1 % of the fleet's known truth, and each node sums to its GPUs x 1 h."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

import pytest
from aiohttp import web

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.config import Config
from ai_signals_exporter.gpu.accounting import (
    ALLOCATED_IDLE, BUSY, NO_TELEMETRY, UNALLOCATED, UNHEALTHY,
)
from ai_signals_exporter.gpu.state import GPU_TIME
from ai_signals_exporter.sim import gpu as simgpu
from ai_signals_exporter.signals import gpu as sig_gpu
from ai_signals_exporter.sources.gpu import DcgmSource
from ai_signals_exporter.sources.kube_objects import node_from_json, pod_from_json
from ai_signals_exporter.state import AppState

from ..helpers.clock import FakeClock

# A multiple of the batch job's 150 s duty cycle, the notebook L4's 60 s and the 30-minute gap
# cycle, so an hour holds whole cycles and the truth below is exact.
T0 = 1_800_000_000.0
H = 3600.0
INTERVAL = 5.0  # fine enough to resolve the 20 s busy bursts of the shared L4

TRUTH = {
    # 8 x H100: llama (4 GPUs, always busy), an idle notebook, a batch job busy 60 s of every
    # 150 s, GPU 6 free, GPU 7 free but missing from dcgm 10 minutes of the hour.
    ("gpu-h100-a", "llm", "StatefulSet", "llama-70b", BUSY): 4 * H,
    ("gpu-h100-a", "research", "StatefulSet", "notebook", ALLOCATED_IDLE): H,
    ("gpu-h100-a", "batch", "Job", "embed-job", BUSY): 0.4 * H,
    ("gpu-h100-a", "batch", "Job", "embed-job", ALLOCATED_IDLE): 0.6 * H,
    ("gpu-h100-a", "", "", "", UNALLOCATED): 2 * H - 600,
    ("gpu-h100-a", "", "", "", NO_TELEMETRY): 600,
    # 8 x H100, one withdrawn by the device plugin while dcgm still sees it idle.
    ("gpu-h100-b", "llm", "StatefulSet", "mistral-7b", BUSY): 2 * H,
    ("gpu-h100-b", "", "", "", UNALLOCATED): 5 * H,
    ("gpu-h100-b", "", "", "", UNHEALTHY): H,
    # 2 x A100: GPU 0 in MIG mode (3g busy for phi-3), GPU 1 whole and busy outside any pod.
    ("gpu-a100-mig", "llm", "StatefulSet", "phi-3", BUSY): H,
    ("gpu-a100-mig", "", "", "", BUSY): H,
    # 1 x L4 time-sliced 4 ways, 3 notebooks: busy 20 s of every 60 s, split in thirds.
    **{("gpu-l4-shared", "dev", "StatefulSet", p, s): H / 3 * (1 / 3 if s == BUSY else 2 / 3)
       for p in ("jupyter-alice", "jupyter-bob", "jupyter-carol") for s in (BUSY, ALLOCATED_IDLE)},
    # 1 x L4 time-sliced 2 ways (dcgm-exporter 4.8.3 virtual GPUs), busy, halves.
    ("gpu-l4-ts-v483", "llm", "StatefulSet", "chat-a", BUSY): H / 2,
    ("gpu-l4-ts-v483", "llm", "StatefulSet", "chat-b", BUSY): H / 2,
}
GPUS = {"gpu-h100-a": 8, "gpu-h100-b": 8, "gpu-a100-mig": 2, "gpu-l4-shared": 1, "gpu-l4-ts-v483": 1}


async def _serve(sim: simgpu.DcgmSim, clock: FakeClock) -> tuple[list[web.AppRunner], list[dict]]:
    runners, targets = [], []
    for name in sim.nodes:
        runner = web.AppRunner(sim.app(name, clock), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        runners.append(runner)
        targets.append({"url": f"http://{host}:{port}/metrics", "node": name})
    return runners, targets


def _kube(state: AppState, sim: simgpu.DcgmSim) -> None:
    for obj in sim.node_objects:
        n = node_from_json(obj)
        state.kube.nodes[n.name] = n
    for obj in sim.pods:
        p = pod_from_json(obj)
        state.kube.pods[p.uid] = p
    state.kube.synced |= {"nodes", "pods"}
    state.kube.touch()


async def run_hour(
    config_extra: dict | None = None, t0: float = T0,
    on_cycle: Callable[[AppState, Config, float], None] | None = None,
) -> tuple[AppState, Config, float]:
    """The demo fleet scraped by the gpu source every INTERVAL from t0 to t0 + 1 h (t0 a multiple
    of 1800 s, so the truth holds); `on_cycle` sees the state after every round."""
    clock = FakeClock(t0)
    sim = simgpu.default_fleet(telemetry_gaps=True)
    runners, targets = await _serve(sim, clock)
    try:
        config = Config.model_validate({
            "gpu": {"interval": f"{INTERVAL:g}s", "dcgm_targets": targets,
                    "price_per_gpu_hour": simgpu.DEFAULT_PRICES},
            **(config_extra or {}),
        })
        state = AppState()
        _kube(state, sim)
        src = DcgmSource(config, state, clock)
        try:
            while clock.t <= t0 + H:
                await src.run_once()
                if on_cycle is not None:
                    on_cycle(state, config, clock.t)
                clock.advance(INTERVAL)
        finally:
            await src.close()
    finally:
        for r in runners:
            await r.cleanup()
    return state, config, t0 + H


def _rendered(state: AppState, config: Config, now: float, name: str) -> dict[tuple, float]:
    fams = {f.name: f for f in sig_gpu.derive(state, config, now)}
    return {labels: v for _, labels, v, _ in fams[name].samples}


async def test_demo_fleet_hour_through_the_gpu_source_matches_truth():
    state, config, now = await run_hour()
    got: dict[tuple, float] = defaultdict(float)
    per_node: dict[str, float] = defaultdict(float)
    for (node, _model, ns, kind, wl, st), v in _rendered(state, config, now, sig_gpu.GPU_SECONDS.name).items():
        if v:  # a node's unattributed states exist at 0 from its start
            got[(node, ns, kind, wl, st)] += v
        per_node[node] += v
    assert set(got) == set(TRUTH), set(got) ^ set(TRUTH)
    for key, truth in TRUTH.items():
        assert got[key] == pytest.approx(truth, rel=0.01), key
    assert dict(per_node) == pytest.approx({n: g * H for n, g in GPUS.items()}, rel=0.01)

    mig = {(k[2], k[4], k[5], k[6]): v
           for k, v in _rendered(state, config, now, sig_gpu.MIG_INSTANCE_SECONDS.name).items()}
    assert mig == pytest.approx({
        ("3g.20gb", "StatefulSet", "phi-3", BUSY): H,
        ("2g.10gb", "", "", UNALLOCATED): H,
        ("1g.5gb", "", "", UNALLOCATED): H,
    }, rel=0.01)
    # One price per gpu_model the counters carry (the L4 by the default price).
    assert _rendered(state, config, now, sig_gpu.PRICE_PER_HOUR.name) == {
        ("NVIDIA-H100-80GB-HBM3",): 4.0, ("NVIDIA-A100-SXM4-40GB",): 2.0, ("NVIDIA-L4",): 0.8,
    }


async def test_node_scope_counts_only_its_node():
    state, config, now = await run_hour({"kubernetes": {"enabled": False, "node_scope": "gpu-h100-b"}})
    samples = _rendered(state, config, now, sig_gpu.GPU_SECONDS.name)
    assert {k[0] for k in samples} == {"gpu-h100-b"}
    assert sum(samples.values()) == pytest.approx(8 * H, rel=0.01)


async def test_counters_survive_a_reload_and_start_at_zero_on_restart(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("gpu:\n  dcgm_targets: [{url: 'http://127.0.0.1:9/metrics', node: n1}]\n")
    exporter = Exporter(Config.model_validate({"gpu": {"dcgm_targets": [
        {"url": "http://127.0.0.1:9/metrics", "node": "n1"}]}}), str(path))
    acc = exporter.state[GPU_TIME]
    acc.seconds[("n1", "m", "", "", "", BUSY)] = 42.0
    path.write_text("gpu:\n  idle_threshold: 0.1\n  dcgm_targets: [{url: 'http://127.0.0.1:9/metrics', node: n1}]\n")
    ok, _ = await exporter.reload()
    assert ok
    assert exporter.state[GPU_TIME].seconds[("n1", "m", "", "", "", BUSY)] == 42.0
    await exporter.stop()
    assert Exporter(exporter.config).state[GPU_TIME].seconds == {}
