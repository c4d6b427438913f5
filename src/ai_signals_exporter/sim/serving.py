"""Simulated inference workloads: vLLM pods of a Deployment and TGI pods of a StatefulSet.

All pods are served by one HTTP server on 127.0.0.1, each at its own path.  With Kubernetes the
pods are added to the test API server with IP 127.0.0.1 and the discovery annotations
(`ai-signals.io/scrape`, `/port`, `/path`, capacity), so the exporter finds them the way it
finds real pods; without it they become static `serving.targets`.

    sim = await attach(cluster)
    sim.engines["llama-7d9f-abcde"].expected_generation_rate(t0, t1)   # ground truth
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

from .engines import Load, SimEngine, make_app, sine
from .objects import make_pod

CAPACITY_ANNOTATION = "ai-signals.io/capacity-tokens-per-second"


@dataclass
class SimPod:
    namespace: str
    name: str
    workload_kind: str
    workload: str
    engine: SimEngine
    capacity: float | None = None


@dataclass
class ServingSim:
    pods: list[SimPod] = field(default_factory=list)
    base_url: str = ""

    @property
    def engines(self) -> dict[str, SimEngine]:
        return {p.name: p.engine for p in self.pods}

    def path(self, pod: SimPod) -> str:
        return f"/pods/{pod.namespace}/{pod.name}/metrics"

    def url(self, pod: SimPod) -> str:
        return self.base_url + self.path(pod)


def default_pods(
    load: Load | None = None, seed: int = 1, clock: Callable[[], float] = time.time
) -> list[SimPod]:
    """Three vLLM pods of `llm/llama-8b` (one of them near saturation) and two TGI pods of
    `llm/qwen-7b`, with loads that rise and fall over a two-minute cycle.  `clock` drives the
    engines (a fixed one makes the payloads reproducible: tests/golden)."""
    pods = []
    for i in range(3):
        cap = 2400.0
        rps = load or sine(mean=4.0 + 3 * i, amplitude=2.0, period=120.0)
        pods.append(SimPod("llm", f"llama-8b-6d5f8c7b9-{'abc'[i]}x{i}q", "Deployment", "llama-8b",
                           SimEngine("vllm", "meta-llama/Llama-3.1-8B-Instruct", rps, seed=seed + i,
                                     clock=clock, capacity_tokens_per_second=cap),
                           capacity=cap))
    for i in range(2):
        rps = load or sine(mean=1.5, amplitude=1.0, period=90.0)
        pods.append(SimPod("llm", f"qwen-7b-{i}", "StatefulSet", "qwen-7b",
                           SimEngine("tgi", "Qwen/Qwen2.5-7B-Instruct", rps, seed=seed + 10 + i,
                                     clock=clock, output_tokens=128)))
    return pods


async def attach(
    cluster: Any, *, pods: list[SimPod] | None = None, nodes: Sequence[str] = ("cpu-node-1",)
) -> ServingSim:
    """Serve the pods' engines; with Kubernetes, add them as pods spread over `nodes` (round
    robin) for discovery, else as static targets."""
    sim = ServingSim(pods=pods if pods is not None else default_pods())
    sim.base_url = (await cluster.serve(make_app({sim.path(p): p.engine for p in sim.pods}))).rstrip("/")
    port = urlsplit(sim.base_url).port
    serving = cluster.config.setdefault("serving", {})
    if getattr(cluster, "kubernetes", False):
        for i, p in enumerate(sim.pods):
            annotations = {
                "ai-signals.io/scrape": "true",
                "ai-signals.io/port": str(port),
                "ai-signals.io/path": sim.path(p),
                "ai-signals.io/engine": p.engine.kind,
            }
            if p.engine.kind == "tgi":  # TGI exposes no model label
                annotations["ai-signals.io/model"] = p.engine.model
            if p.capacity:
                annotations[CAPACITY_ANNOTATION] = f"{p.capacity:g}"
            cluster.kube.add(make_pod(p.namespace, p.name, node=nodes[i % len(nodes)],
                                      owner=(p.workload_kind, p.workload), ip="127.0.0.1",
                                      annotations=annotations, labels={"app": p.workload}))
    else:
        targets = serving.setdefault("targets", [])
        for p in sim.pods:
            t: dict[str, Any] = {
                "url": sim.url(p),
                "engine": p.engine.kind,
                "labels": {"namespace": p.namespace, "pod": p.name, "workload_kind": p.workload_kind,
                           "workload": p.workload, "model": p.engine.model},
            }
            if p.capacity:
                t["capacity_tokens_per_second"] = p.capacity
            targets.append(t)
    return sim
