"""Serving replicas that start the way GPU inference pods do, on a clock the caller drives.

A `ScalingWorkload` is a Deployment of vLLM-like pods behind one load: scaling it up adds pods
that go through the phases of a real cold start (`StartProfile`): Pending and unscheduled, then
scheduled with init containers running (image pull, weight download), then running but not
Ready while the engine loads the weights into GPU memory, then Ready and serving its share of the
load.  `pod_object(pod, now)` is the Pod as the API server would serve it at `now` (conditions
with their transition times), `snapshot(pod)` the engine's counters.  Used by the autoscaling
e2e (tests/e2e/test_autoscaling.py) and the demo (`attach`).

The load is offered tokens/s for the whole workload, spread over the Ready pods; a pod serves
up to `max_tokens_per_second` (the engine's batch limit, above the nominal `capacity` the
autoscaler targets), and what it cannot serve waits in its queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from aiohttp import web

from ..engines.base import ModelSnapshot
from .objects import make_deployment, make_pod

SERVING_LABELS = {"ai-signals.io/serving": "true"}
CAPACITY_ANNOTATION = "ai-signals.io/capacity-tokens-per-second"
TOKENS_PER_REQUEST = 200.0


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(math.floor(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class StartProfile:
    """Seconds per phase of a pod start."""

    scheduling: float = 3.0  # created -> bound to a node
    init: float = 90.0  # image pull + weight download (init container)
    startup: float = 30.0  # engine loads the weights into GPU memory, readiness probe passes


@dataclass
class SimReplica:
    name: str
    uid: str
    created: float
    profile: StartProfile
    node: str
    generation_tokens: float = 0.0
    requests: float = 0.0
    waiting: float = 0.0

    @property
    def scheduled_at(self) -> float:
        return self.created + self.profile.scheduling

    @property
    def initialized_at(self) -> float:
        return self.scheduled_at + self.profile.init

    @property
    def ready_at(self) -> float:
        return self.initialized_at + self.profile.startup

    def ready(self, now: float) -> bool:
        return now >= self.ready_at


@dataclass
class ScalingWorkload:
    namespace: str
    name: str
    load: Callable[[float], float]  # offered generation tokens/s at t
    capacity: float = 1000.0  # nominal tokens/s per pod (the capacity annotation)
    max_tokens_per_second: float = 2500.0  # what an engine can push at most
    profile: StartProfile = field(default_factory=StartProfile)
    nodes: tuple[str, ...] = ("gpu-1",)
    gpu: int = 1
    annotations: dict[str, str] = field(default_factory=dict)  # extra pod and workload annotations
    model: str = "m"
    pods: list[SimReplica] = field(default_factory=list)
    _last: float | None = None
    _serial: int = 0

    def scale(self, replicas: int, now: float, *, ready: bool = False) -> None:
        """Add pods up to `replicas` (created at `now`; already Ready with `ready`).  Scaling
        down is not modelled: the e2e and the demo only scale up."""
        while len(self.pods) < replicas:
            self._serial += 1
            name = f"{self.name}-{self._serial:04d}"
            created = now - (self.profile.scheduling + self.profile.init + self.profile.startup) if ready else now
            node = self.nodes[self._serial % len(self.nodes)]
            uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.namespace}/{name}"))
            self.pods.append(SimReplica(name, uid, created, self.profile, node))

    def shrink(self, replicas: int) -> list[SimReplica]:
        """Remove the newest pods beyond `replicas`; returns them."""
        gone, self.pods = self.pods[replicas:], self.pods[:replicas]
        return gone

    def ready_pods(self, now: float) -> list[SimReplica]:
        return [p for p in self.pods if p.ready(now)]

    def advance(self, now: float) -> None:
        """Serve the load from the last call to `now` (call at every scrape tick)."""
        last, self._last = self._last, now
        if last is None or now <= last:
            return
        ready = self.ready_pods(now)
        if not ready:
            return
        share = self.load(now) / len(ready)
        served = min(share, self.max_tokens_per_second)
        for p in ready:
            p.generation_tokens += served * (now - last)
            p.requests += served * (now - last) / TOKENS_PER_REQUEST
            # Requests beyond what the engine can batch wait (a bounded client population).
            p.waiting = max(0.0, share - served) / TOKENS_PER_REQUEST

    def snapshot(self, pod: SimReplica) -> dict[str, ModelSnapshot]:
        return {self.model: ModelSnapshot(generation_tokens=pod.generation_tokens, requests=pod.requests,
                                   running=min(pod.generation_tokens, 1.0), waiting=pod.waiting)}

    def pod_object(self, pod: SimReplica, now: float) -> dict[str, Any]:
        """The Pod at `now`, as the API server serves it."""
        annotations = {CAPACITY_ANNOTATION: f"{self.capacity:g}", **self.annotations}
        if now < pod.scheduled_at:
            obj = make_pod(self.namespace, pod.name, owner=("Deployment", self.name), gpu=self.gpu,
                           labels=SERVING_LABELS, annotations=annotations, created=rfc3339(pod.created),
                           scheduled_at=rfc3339(pod.created), unschedulable_message="0/8 nodes are available: 8 Insufficient nvidia.com/gpu.")
        else:
            initialized = now >= pod.initialized_at
            ready = pod.ready(now)
            obj = make_pod(self.namespace, pod.name, node=pod.node, owner=("Deployment", self.name), gpu=self.gpu,
                           labels=SERVING_LABELS, annotations=annotations, ip="127.0.0.1",
                           phase="Running" if initialized else "Pending", ready=ready,
                           created=rfc3339(pod.created), scheduled_at=rfc3339(pod.scheduled_at),
                           initialized_at=rfc3339(pod.initialized_at if initialized else pod.scheduled_at),
                           ready_at=rfc3339(pod.ready_at if ready else pod.initialized_at),
                           started_at=rfc3339(pod.initialized_at))
            if not initialized:  # init containers still running: Initialized=False
                for cond in obj["status"]["conditions"]:
                    if cond["type"] in ("Initialized", "PodReadyToStartContainers"):
                        cond["status"] = "False"
        obj["metadata"]["uid"] = pod.uid
        return obj

    def deployment_object(self) -> dict[str, Any]:
        return make_deployment(self.namespace, self.name, replicas=len(self.pods), gpu=self.gpu,
                               template_labels={**SERVING_LABELS, "app": self.name},
                               annotations=self.annotations or None)

    def vllm_payload(self, pod: SimReplica) -> str:
        """What the pod's vLLM server answers on /metrics (the names engines/vllm.py reads)."""
        m = f'model_name="{self.model}"'
        lines = []
        for name, kind, value in (
            ("vllm:generation_tokens_total", "counter", pod.generation_tokens),
            ("vllm:prompt_tokens_total", "counter", pod.generation_tokens * 3),
            ("vllm:num_requests_waiting", "gauge", pod.waiting),
            ("vllm:num_requests_running", "gauge", min(pod.generation_tokens, 8.0)),
        ):
            lines += [f"# TYPE {name} {kind}", f"{name}{{{m}}} {value:.1f}"]
        lines += ["# TYPE vllm:request_success_total counter",
                  f'vllm:request_success_total{{{m},finished_reason="stop"}} {pod.requests:.1f}']
        return "\n".join(lines) + "\n"


# --- the demo: a workload that scales up every few minutes, so cold starts keep happening ---

DEMO_PROFILE = StartProfile(scheduling=4.0, init=40.0, startup=25.0)
DEMO_CYCLE = 300.0  # seconds: 1 replica, then a step in load at 60 s and 2 more replicas


def demo_load(t: float) -> float:
    """Offered tokens/s `t` seconds into the demo."""
    return 800.0 if t % DEMO_CYCLE < 60 else 2400.0


def demo_replicas(t: float) -> int:
    return 1 if t % DEMO_CYCLE < 60 else 3


async def attach(cluster: Any, *, clock: Callable[[], float] = time.time, tick: float = 1.0) -> ScalingWorkload:
    """Add the scaling workload `llm/mistral-7b` to the demo cluster (Kubernetes required): its
    pods are created, scheduled, initialised and made Ready in the test API server as `clock`
    moves, and serve vLLM /metrics once Ready (503 while the engine loads, like a server that is
    not listening yet)."""
    start = clock()  # the cycle starts when the demo does: the first cold starts come a minute in
    w = ScalingWorkload("llm", "mistral-7b", lambda t: demo_load(t - start), capacity=1000.0,
                        profile=DEMO_PROFILE, nodes=("cpu-node-1",), gpu=0, model="mistralai/Mistral-7B-Instruct-v0.3")
    by_name: dict[str, SimReplica] = {}

    async def metrics(request: web.Request) -> web.Response:
        now = clock()
        w.advance(now)  # the counters at the moment of the request, whatever the sync cadence
        pod = by_name.get(request.match_info["pod"])
        if pod is None or not pod.ready(now):
            return web.Response(status=503, text="engine loading\n")
        return web.Response(text=w.vllm_payload(pod), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/coldstart/{pod}/metrics", metrics)
    base = await cluster.serve(app)
    port = base.rsplit(":", 1)[1]
    w.annotations = {"ai-signals.io/scrape": "true", "ai-signals.io/port": port, "ai-signals.io/engine": "vllm"}
    api = cluster.kube
    now = start
    w.scale(demo_replicas(0), now, ready=True)
    api.add(w.deployment_object())
    seen: dict[str, tuple[bool, bool, bool]] = {}

    def sync(now: float) -> None:
        w.advance(now)
        want = demo_replicas(now - start)
        for gone in w.shrink(want):
            api.delete("Pod", w.namespace, gone.name)
            seen.pop(gone.name, None)
            by_name.pop(gone.name, None)
        before = len(w.pods)
        w.scale(want, now)
        if len(w.pods) != before or want < before:
            api.update(w.deployment_object())
        for pod in w.pods:
            status = (now >= pod.scheduled_at, now >= pod.initialized_at, pod.ready(now))
            if seen.get(pod.name) == status:
                continue
            obj = w.pod_object(pod, now)
            obj["metadata"]["annotations"]["ai-signals.io/path"] = f"/coldstart/{pod.name}/metrics"
            (api.update if pod.name in seen else api.add)(obj)
            seen[pod.name], by_name[pod.name] = status, pod

    sync(now)

    async def run() -> None:
        while True:
            await asyncio.sleep(tick)
            sync(clock())

    task = asyncio.create_task(run())

    async def close() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    cluster.on_stop(close)
    return w
