"""Which pods and workloads serving discovery selects: one predicate for the scrape targets, the
replica counts and the cold-start tracker, so the three never disagree about a workload."""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

from ..config import ServingDiscovery
from ..kube.model import PodInfo, WorkloadInfo
from ..labelselector import Selector, SelectorError, parse_selector

ANN_SCRAPE = "ai-signals.io/scrape"


@lru_cache(maxsize=16)
def _selector(text: str | None) -> Selector | None:
    if not text:
        return None
    try:
        return parse_selector(text)
    except SelectorError:
        return None  # config validation reports it; never crash a source or a derive


def annotation_number(value: str | None) -> float | None:
    """An annotation's value as a positive, finite number; None when absent or not one."""
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number and 0 < number < float("inf") else None


class ServingSelection:
    """`serving.discovery` as a predicate over kube records."""

    def __init__(self, discovery: ServingDiscovery) -> None:
        self.selector = _selector(discovery.label_selector)
        self.namespaces = frozenset(discovery.namespaces)

    def _wanted(self, namespace: str, labels: dict[str, str], annotations: dict[str, str]) -> bool:
        if self.namespaces and namespace not in self.namespaces:
            return False
        scrape = annotations.get(ANN_SCRAPE)
        if scrape == "false":
            return False
        return scrape == "true" or (self.selector is not None and self.selector.matches(labels))

    def pod(self, pod: PodInfo) -> bool:
        return self._wanted(pod.namespace, pod.labels, pod.annotations)

    def workload(self, w: WorkloadInfo) -> bool:
        """A workload whose pod template discovery would select (so it stays visible at zero
        replicas).  The workload's own ai-signals.io/ annotations stand in for its template's."""
        return self._wanted(w.namespace, w.template_labels, w.annotations)


def pods_without_node_agent(pods: Iterable[PodInfo], selection: ServingSelection, agents: str) -> int:
    """Selected serving pods running on a node with no ready pod matching `agents` (the node
    agents' label selector): in the node-agent topology nobody scrapes them (the DaemonSet's
    nodeSelector leaves their node out, or its agent is down)."""
    agent = _selector(agents)
    if agent is None:
        return 0
    pods = list(pods)
    covered = {p.node for p in pods if p.ready and not p.deleting and agent.matches(p.labels)}
    return sum(1 for p in pods if p.phase == "Running" and p.node and not p.deleting
               and p.node not in covered and selection.pod(p))
