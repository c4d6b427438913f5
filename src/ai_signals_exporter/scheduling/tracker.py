"""The scheduling area's view of the kube stores, kept current by their change hooks.

The counters must see transitions (a pod turning Failed, a DisruptionTarget appearing), and a
refresh must not rescan 20,000 pods: so the tracker listens to the stores (`KubeListener`) and
keeps, per change, only what derive reads — the pending GPU pods, the GPU nodes, the GPU quotas
and the counters.  A CPU pod's update costs one look-up of its requests (requests are immutable,
so a pod never turns into a GPU pod).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ..checkpoints.observation import CHECKPOINTS
from ..state import AppState
from .adapt import event_view, node_view, pod_view, quota_view
from .derive import CheckpointLink, SchedulingState, forget_event, forget_pod, observe_event, observe_pod
from .disruption import WorkLost
from .model import NodeView, PodView, QuotaView
from .offline import is_labelled_gpu_node
from .pending import pending_reason
from .quota import quota_gpus
from .resources import DEFAULT, GpuResources

RESOURCES = ("pods", "nodes", "resourcequotas", "events")
_TERMINAL = ("Succeeded", "Failed")
JobKey = tuple[str, str]  # namespace, job (the workload, or the pod name of a bare pod)


def job_key(pod: PodView) -> JobKey:
    # The checkpoint store discovery names a pod's job the same way (sources/checkpoints.py).
    return pod.namespace, pod.workload or pod.name


class SchedulingTracker:
    def __init__(self, app: AppState, gpus: GpuResources = DEFAULT, episode: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.clock = clock
        self.state = SchedulingState(gpus=gpus, work_lost=WorkLost(episode))
        self.pending: dict[str, PodView] = {}  # uid -> pending GPU pod
        self.nodes: dict[str, NodeView] = {}  # GPU nodes: with GPU capacity or labelled as one
        self.quotas: dict[str, QuotaView] = {}  # "namespace/name" -> quota limiting GPUs
        self._pods: dict[str, tuple[JobKey, int]] = {}  # live GPU pods: uid -> (job, GPUs if running)
        self.job_gpus: dict[JobKey, int] = {}
        self.listed: set[str] = set()  # resources whose first list this tracker has seen

    # -- KubeListener ------------------------------------------------------------------------

    def applied(self, resource: str, record: Any) -> None:
        if resource == "pods":
            self._pod(record, True, self.pending)
        elif resource == "events":
            observe_event(self.state, event_view(record), True)
        elif resource == "nodes":
            self._node(record, self.nodes)
        elif resource == "resourcequotas":
            self._quota(record, self.quotas)

    def removed(self, resource: str, key: str) -> None:
        if resource == "pods":
            self._forget_pod(key)
        elif resource == "events":
            forget_event(self.state, key)
        elif resource == "nodes":
            self.nodes.pop(key, None)
        elif resource == "resourcequotas":
            self.quotas.pop(key, None)

    def replaced(self, resource: str, records: dict[str, Any], first: bool) -> None:
        # A tracker that never saw this resource listed (made after the kube source synced, or
        # reset by a reload) takes the list as baseline too.
        synced = not first and resource in self.listed
        self.listed.add(resource)
        if resource == "pods":
            pending: dict[str, PodView] = {}
            for record in records.values():
                self._pod(record, synced, pending)
            self.pending = pending
            # A complete list is authoritative: a GPU pod missing from it was deleted while the
            # watch was away, and a deleted UID never comes back.
            for uid in [u for u in self._pods if u not in records]:
                self._forget_pod(uid)
        elif resource == "events":
            # Never forgets here: the store drops old events from its list (max_age) while the
            # apiserver may still update them; their counts are forgotten on DELETED only.
            for record in records.values():
                observe_event(self.state, event_view(record), synced)
        elif resource == "nodes":
            nodes: dict[str, NodeView] = {}
            for record in records.values():
                self._node(record, nodes)
            self.nodes = nodes
        elif resource == "resourcequotas":
            quotas: dict[str, QuotaView] = {}
            for record in records.values():
                self._quota(record, quotas)
            self.quotas = quotas

    # -- per record --------------------------------------------------------------------------

    def _pod(self, record: Any, synced: bool, pending: dict[str, PodView]) -> None:
        gpus = self.state.gpus.count(record.requests)
        if gpus <= 0:
            return
        pod = pod_view(record)
        self._set_job(pod.uid, job_key(pod), 0 if pod.phase in _TERMINAL else gpus)
        link = self._link(pod) if "DisruptionTarget" in pod.conditions else None
        observe_pod(self.state, pod, synced, link, now=self.clock())
        if pending_reason(pod, self.state.gpus) is not None:
            pending[pod.uid] = pod
        else:
            pending.pop(pod.uid, None)

    def _set_job(self, uid: str, job: JobKey, gpus: int) -> None:
        old = self._pods.get(uid)
        if old is not None:
            self._add_job_gpus(old[0], -old[1])
        self._pods[uid] = (job, gpus)
        self._add_job_gpus(job, gpus)

    def _add_job_gpus(self, job: JobKey, delta: int) -> None:
        n = self.job_gpus.get(job, 0) + delta
        if n > 0:
            self.job_gpus[job] = n
        else:
            self.job_gpus.pop(job, None)

    def _forget_pod(self, uid: str) -> None:
        old = self._pods.pop(uid, None)
        if old is not None:
            self._add_job_gpus(old[0], -old[1])
        self.pending.pop(uid, None)
        forget_pod(self.state, uid)

    def _link(self, pod: PodView) -> CheckpointLink | None:
        """The checkpoint store of the pod's job (configured with namespace/job labels, or
        discovered from the pod annotations), with its last complete checkpoint."""
        ns, job = job_key(pod)
        for obs in self.app[CHECKPOINTS].values():
            if obs.namespace == ns and obs.job == job:
                last = obs.verdict.last_complete_ts if obs.verdict is not None else None
                gpus = self.job_gpus.get((ns, job)) or self.state.gpus.count(pod.requests)
                return CheckpointLink(obs.name, ns, job, last, gpus)
        return None

    def _node(self, record: Any, nodes: dict[str, NodeView]) -> None:
        node = node_view(record)
        if self.state.gpus.count(node.capacity) > 0 or is_labelled_gpu_node(node):
            nodes[node.name] = node
        else:
            nodes.pop(node.name, None)

    def _quota(self, record: Any, quotas: dict[str, QuotaView]) -> None:
        quota = quota_view(record)
        key = f"{quota.namespace}/{quota.name}"
        if quota_gpus(quota, self.state.gpus):
            quotas[key] = quota
        else:
            quotas.pop(key, None)
