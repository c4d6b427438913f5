"""GPU area cost at scale: ingest (parse + extract + idle tracking) of N dcgm payloads and one
derive over N GPU nodes x 8 GPUs with 20 pods per node.  CPU seconds, not wall time.

    python bench/bench_gpu.py [100 1000 5000]
"""

from __future__ import annotations

import sys
import time
import tracemalloc

from ai_signals_exporter.config import Config
from ai_signals_exporter.expo.families import render
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.gpu.idle import track
from ai_signals_exporter.gpu.observation import DcgmObservation
from ai_signals_exporter.gpu.readings import WANTED, extract_readings
from ai_signals_exporter.signals.gpu import derive
from ai_signals_exporter.sim.gpu import DcgmSim, wave
from ai_signals_exporter.state import AppState, NodeInfo, PodInfo, Taint

PODS_PER_NODE = 20


def build(n_nodes: int) -> tuple[AppState, list[tuple[str, bytes]]]:
    sim = DcgmSim()
    state = AppState()
    now = time.time()
    payloads = []
    for i in range(n_nodes):
        name = f"gpu-node-{i:05d}"
        node = sim.add_node(name, 8, tainted=i % 10 != 0, load=wave(phase=i / n_nodes))
        for d in node.devices[: 4 + i % 4]:
            d.pods.append(("ml", f"job-{i}-{d.index}"))
        payloads.append((name, node.payload(now)))
        state.kube.nodes[name] = NodeInfo(
            name, {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
            [Taint("nvidia.com/gpu", "present", "NoSchedule")] if i % 10 else [],
            {"nvidia.com/gpu": 8}, {"nvidia.com/gpu": 8},
        )
        for j in range(PODS_PER_NODE):
            uid = f"{i}-{j}"
            state.kube.pods[uid] = PodInfo(
                uid, "ml", f"pod-{uid}", name, "Running", "10.0.0.1", {}, {}, "Job", "j",
                {"nvidia.com/gpu": 1} if j < 4 else {}, is_daemonset=j == 19,
            )
    sim.pods.clear()
    sim.node_objects.clear()
    state.kube.nodes_synced = state.kube.pods_synced = True
    return state, payloads


def bench(n_nodes: int) -> None:
    config = Config.model_validate({"gpu": {"price_per_gpu_hour": {"default": 3.0}}})
    state, payloads = build(n_nodes)
    tracks = state.gpu_idle
    tracemalloc.start()
    t0 = time.process_time()
    ts = time.time()
    for name, body in payloads:
        readings = extract_readings(parse_families(body, WANTED), None, name)
        for r in readings:
            tracks[r.key] = track(tracks.get(r.key), r.util, 0.05, ts, 45.0)
        state.dcgm[name] = DcgmObservation(name, name, ts, tuple(readings), up=True)
    t_ingest = time.process_time() - t0
    ingest_mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    t0 = time.process_time()
    fams = derive(state, config, ts + 1)
    t_derive = time.process_time() - t0
    t0 = time.process_time()
    body = render(fams)
    t_render = time.process_time() - t0
    size = sum(len(b) for _, b in payloads)
    print(
        f"{n_nodes:5d} nodes x 8 GPUs ({n_nodes * PODS_PER_NODE} pods): ingest {t_ingest:6.3f} s CPU"
        f" ({size / 1e6:.1f} MB of payloads, state {ingest_mem / 1e6:.1f} MB),"
        f" derive {t_derive:6.3f} s, render {t_render:6.3f} s ({len(body) / 1e6:.1f} MB out)"
    )


if __name__ == "__main__":
    for n in [int(a) for a in sys.argv[1:]] or [100, 1000, 5000]:
        bench(n)
