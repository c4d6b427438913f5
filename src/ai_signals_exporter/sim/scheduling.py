"""Simulated GPU scheduling trouble: what the scheduling area reads from the pod, node, quota
and event streams.

`attach(cluster)` adds, to the test API server of a `SimCluster`:
- `gpu-reject-0`: a node that lost a GPU behind the device plugin's back: Ready, full
  allocatable, and every GPU pod a ReplicaSet places there is rejected by the kubelet
  (UnexpectedAdmissionError) — `reject_one()` adds one such pod;
- pending GPU pods for each reason of the closed set (insufficient GPUs, an NFD
  `nvidia.com/gpu.product` affinity nobody matches, an untolerated taint, a Kueue scheduling
  gate, and a PVC that is not bound);
- a training job (`ml/llm-pretrain`, the static checkpoint store of sim/training.py) whose
  pods `preempt()` disrupts mid-checkpoint-interval (DisruptionTarget PreemptionByScheduler,
  then deleted and recreated by its Job);
- a ResourceQuota at its GPU limit and the FailedCreate warning events of the pod creations it
  refuses (`quota_rejection()`, aggregated by the recorder into one Event with a growing count);
- a cordoned GPU node and a node during a GPU Operator upgrade (GPU-labelled, no GPU advertised).

`start()` repeats the three actions on a schedule for the demo; tests call them directly.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from ..scheduling import families as F
from .objects import (
    admission_rejected,
    disrupted,
    make_event,
    make_node,
    make_pod,
    make_resource_quota,
    quota_exceeded_message,
)

REJECTING_NODE = "gpu-reject-0"
CORDONED_NODE = "gpu-cordoned-0"
UPGRADING_NODE = "gpu-upgrade-0"
TRAINING = ("ml", "llm-pretrain")  # namespace, Job: the static checkpoint store of sim/training.py
TRAINING_NODES = ("gpu-train-0", "gpu-train-1")
TRAINING_GPUS_PER_POD = 8
QUOTA = ("team-research", "gpu-quota")
KEEP_REJECTED = 20  # failed pods kept around per node (pod GC would collect them eventually)

# The scheduler's FitError messages (pkg/scheduler/framework/types.go, v1.31), one per reason;
# the shapes are those of tests/fixtures/scheduling/scheduler_messages.yaml.
_PREEMPTION = "preemption: 0/12 nodes are available: 12 No preemption victims found for incoming pod."
PENDING = (
    # (namespace, workload, GPUs, message, scheduling gates)
    ("llm", "llama-405b", 8,
     f"0/12 nodes are available: 2 node(s) had untolerated taint {{node-role.kubernetes.io/control-plane: }}, "
     f"10 Insufficient nvidia.com/gpu. {_PREEMPTION}", ()),
    ("research", "b200-eval", 4,
     f"0/12 nodes are available: 12 node(s) didn't match Pod's node affinity/selector. {_PREEMPTION}", ()),
    ("research", "spot-batch", 1,
     f"0/12 nodes are available: 3 Insufficient nvidia.com/gpu, 9 node(s) had untolerated taint "
     f"{{cloud.google.com/gke-spot: true}}. {_PREEMPTION}", ()),
    ("research", "queued-sweep", 2, "", ("kueue.x-k8s.io/admission",)),
    ("ml", "data-prep", 1,
     "0/12 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/12 nodes "
     "are available: 12 Preemption is not helpful for scheduling.", ()),
)


# What the demo summary reads (sim/demo.py), from the area's specs.
SUMMARY_NAMES = {spec.name for spec in (F.PODS_PENDING, F.ADMISSION_FAILURES, F.CKPT_LOST_GPU_SECONDS,
                                        F.QUOTA_GPUS, F.QUOTA_REJECTIONS, F.OFFLINE_GPUS)}


def summarize(m: dict[str, list[tuple[dict[str, str], float]]]) -> list[str]:
    """Demo summary lines from the parsed families: why GPU pods wait, which node rejects
    them, what preemption cost, quota and offline capacity."""
    lines = []
    pending: dict[str, float] = {}
    for labels, v in m.get(F.PODS_PENDING.name, []):
        pending[labels["reason"]] = pending.get(labels["reason"], 0) + v
    if pending:
        lines.append("  sched    pending GPU pods: " + ", ".join(f"{r} {v:.0f}" for r, v in sorted(pending.items())))
    for labels, v in m.get(F.ADMISSION_FAILURES.name, []):
        lines.append(f"  sched    node {labels['node']} rejected {v:.0f} GPU pods ({labels['reason']})")
    for labels, v in m.get(F.CKPT_LOST_GPU_SECONDS.name, []):
        if v:
            lines.append(f"  sched    preemptions cost {labels['namespace']}/{labels['job']} {v / 3600:.2f} GPU-hours")
    quota = {(l["namespace"], l["quota"], l["kind"]): v for l, v in m.get(F.QUOTA_GPUS.name, [])}
    rejected = {l["namespace"]: v for l, v in m.get(F.QUOTA_REJECTIONS.name, [])}
    for (ns, name, kind), hard in sorted(quota.items()):
        if kind == "hard":
            lines.append(f"  sched    quota {ns}/{name}: {quota.get((ns, name, 'used'), 0):.0f}/{hard:.0f} GPUs,"
                         f" {rejected.get(ns, 0):.0f} creations rejected")
    offline = [f"{l['node']} {v:.0f} ({l['reason']})" for l, v in m.get(F.OFFLINE_GPUS.name, [])]
    if offline:
        lines.append("  sched    offline GPUs: " + ", ".join(sorted(offline)))
    return lines


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class SchedulingSim:
    def __init__(self, cluster: Any, clock: Callable[[], float] = time.time) -> None:
        self.cluster = cluster
        self.kube = cluster.kube
        self.clock = clock
        self.rejected: list[str] = []
        self.preemptions = 0
        self.quota_rejections = 0
        self._generation = 0
        self._task: asyncio.Task | None = None

    # -- static cases --------------------------------------------------------------------------

    def add_static(self) -> None:
        created = _rfc3339(self.clock() - 1800)  # pending for half an hour
        self.kube.add(make_node(REJECTING_NODE, gpus=8))
        self.kube.add(make_node(CORDONED_NODE, gpus=8, unschedulable=True))
        # The device plugin is down while the GPU Operator upgrades the driver: the node keeps
        # its GPU feature discovery labels and advertises no nvidia.com/gpu.
        self.kube.add(make_node(UPGRADING_NODE, gpus=0, labels={
            "nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": "8",
            "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
            "nvidia.com/gpu.deploy.device-plugin": "paused-for-driver-upgrade"}))
        for node in TRAINING_NODES:
            self.kube.add(make_node(node, gpus=8))
        for ns, workload, gpus, message, gates in PENDING:
            for i in range(2):
                self.kube.add(make_pod(ns, f"{workload}-{i}", owner=("Job", workload), gpu=gpus,
                                       created=created, scheduled_at=created, scheduling_gates=gates,
                                       unschedulable_message=message or "unused"))
        ns, quota = QUOTA
        self.kube.add(make_resource_quota(ns, quota, {"requests.nvidia.com/gpu": 16},
                                          {"requests.nvidia.com/gpu": 16}))
        self._add_training_pods()

    def add_healthy(self) -> None:
        """The same training job and quota with nothing wrong: no pending, rejecting, cordoned
        or upgrading node, and quota headroom (the e2e "healthy cluster raises nothing")."""
        for node in TRAINING_NODES:
            self.kube.add(make_node(node, gpus=8))
        ns, quota = QUOTA
        self.kube.add(make_resource_quota(ns, quota, {"requests.nvidia.com/gpu": 16},
                                          {"requests.nvidia.com/gpu": 4}))
        self._add_training_pods()

    def _add_training_pods(self) -> None:
        ns, job = TRAINING
        self._generation += 1
        for i, node in enumerate(TRAINING_NODES):
            self.kube.add(make_pod(ns, f"{job}-{self._generation}-{i}", node=node, owner=("Job", job),
                                   gpu=TRAINING_GPUS_PER_POD))

    # -- actions -------------------------------------------------------------------------------

    def reject_one(self) -> str:
        """The ReplicaSet of llm/batch-infer places one more pod on the rejecting node, and the
        kubelet rejects it at admission.  Returns the pod name."""
        name = f"batch-infer-{len(self.rejected):05d}"
        pod = make_pod("llm", name, node=REJECTING_NODE, owner=("Deployment", "batch-infer"), gpu=1,
                       phase="Pending", ready=False)
        self.kube.add(pod)
        self.kube.update(admission_rejected(pod, available=0, at=_rfc3339(self.clock())))
        self.rejected.append(name)
        if len(self.rejected) > KEEP_REJECTED:
            self.kube.delete("Pod", "llm", self.rejected[-KEEP_REJECTED - 1])
        return name

    def preempt(self, at: float | None = None) -> None:
        """A higher-priority job preempts the training pods: DisruptionTarget at `at` (default
        now), deletion, and the Job's replacements (new UIDs)."""
        ns, job = TRAINING
        when = _rfc3339(self.clock() if at is None else at)
        victims = [p for p in self.kube.objects("Pod")
                   if p["metadata"]["namespace"] == ns and p["metadata"]["name"].startswith(f"{job}-")]
        for pod in victims:
            self.kube.update(disrupted(pod, "PreemptionByScheduler", at=when))
        for pod in victims:
            self.kube.delete("Pod", ns, pod["metadata"]["name"])
        self._add_training_pods()
        self.preemptions += 1

    def quota_rejection(self) -> None:
        """The Job controller of research/sweep fails to create a pod over the GPU quota."""
        ns, quota = QUOTA
        now = _rfc3339(self.clock())
        event = make_event(ns, ("Job", "sweep"), "FailedCreate",
                           quota_exceeded_message("sweep-x7k2p", quota, requested=4, used=16, limited=16),
                           component="job-controller", involved_api_version="batch/v1", first=now)
        self.kube.record_event(event, at=now)
        self.quota_rejections += 1

    # -- demo schedule -------------------------------------------------------------------------

    async def run(self, reject_every: float, quota_every: float, preempt_every: float,
                  training_interval: float) -> None:
        start = time.monotonic()
        # The training sim saves every `training_interval` from its start: preempting half-way
        # between two saves loses the work since the last one.
        due = {"reject": reject_every, "quota": quota_every, "preempt": training_interval * 1.5}
        every = {"reject": reject_every, "quota": quota_every, "preempt": preempt_every}
        act = {"reject": self.reject_one, "quota": self.quota_rejection, "preempt": self.preempt}
        while True:
            name = min(due, key=due.__getitem__)
            await asyncio.sleep(max(0.0, start + due[name] - time.monotonic()))
            act[name]()
            due[name] += every[name]

    def start(self, reject_every: float = 10.0, quota_every: float = 15.0, preempt_every: float = 100.0,
              training_interval: float = 20.0) -> asyncio.Task:
        self._task = asyncio.create_task(
            self.run(reject_every, quota_every, preempt_every, training_interval), name="scheduling-sim")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None


async def attach(cluster: Any, *, start: bool = True, clock: Callable[[], float] = time.time,
                 healthy: bool = False, **schedule: float) -> SchedulingSim:
    """Add the scheduling cases to `cluster` (with Kubernetes only), or with `healthy` only the
    training job and a quota with headroom; `start` runs the demo schedule (`reject_every`,
    `quota_every`, `preempt_every`, `training_interval` seconds)."""
    sim = SchedulingSim(cluster, clock)
    if not getattr(cluster, "kubernetes", False):
        return sim
    if healthy:
        sim.add_healthy()
    else:
        sim.add_static()
    if start:
        sim.start(**schedule)
        cluster.on_stop(sim.stop)
    return sim
