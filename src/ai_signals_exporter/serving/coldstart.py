"""Cold start of serving pods: how long a new replica takes to serve, phase by phase.

Phases of one pod start, from the pod's condition transition times in the watch and the first
generation token the serving scrape counts:

    scheduling   created -> PodScheduled
    init         PodScheduled -> Initialized   (image pull, init containers, weight download)
    startup      Initialized -> Ready          (engine load; ContainersReady when Ready is absent)
    first_token  Ready -> first generation token counted by a scrape
    total        created -> first token

Exactly once per pod UID: the phases up to `startup` are observed when the pod turns Ready,
`first_token` and `total` when its first token is counted, and a UID is remembered after its
pod is gone (`FORGET_AFTER`), so a watch re-list or a reload never observes a start twice.
Across exporter restarts: a pod already Ready when the tracker first runs (or created before
that and first seen Ready) started under another exporter and is not observed; a pod still
starting then is observed by this one only (the other observed nothing before Ready).
A restarted container is a new start of `startup` (container start -> Ready) and `first_token`
only: scheduling, init and total belong to the pod.  A restart before the pod was ever Ready is
part of its first start (crash loops during engine load count as startup time).

`first_token` has the resolution of the scrape interval (the first scrape whose counter is
above zero), and for engines that count tokens when a request finishes (TGI, SGLang) it is the
first finished request.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Iterable

from ..engines.base import ModelSnapshot
from ..kube.model import PodInfo
from ..slots import Slot
from .history import TargetHistory
from .selection import ServingSelection

PHASES = ("scheduling", "init", "startup", "first_token", "total")
# 1 s to 1 h: scheduling on a warm cluster takes a second, a 70B model's weight download tens
# of minutes.
BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 2700, 3600)
# How long a gone pod's UID is remembered (a re-list or a recycled name must not restart it).
FORGET_AFTER = 3600.0
# Exporter clock vs API-server clock: a first token this much before the Ready time still counts.
CLOCK_SLACK = 5.0

WorkloadKey = tuple[str, str, str]  # namespace, workload_kind, workload


@dataclass(slots=True)
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))  # last: above 1 h
    sum: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, cumulative count) per bucket, "+Inf" last, as the exposition wants them."""
        out, running = [], 0
        for le, n in zip((*map(str, BUCKETS), "+Inf"), self.counts):
            running += n
            out.append((le, running))
        return out


@dataclass(slots=True)
class PodStart:
    """The start of one pod UID the tracker is following."""

    key: WorkloadKey
    restarts: int
    done: bool = False  # nothing left to observe for the current start
    restart: bool = False  # the current start is a container restart (startup + first_token)
    started: float | None = None  # restart: the container's startedAt
    ready_at: float | None = None  # the current start's Ready time, once seen
    last_seen: float = 0.0


@dataclass
class ColdStartState:
    baseline: float | None = None  # when the tracker first ran over a synced pod list
    pods: dict[str, PodStart] = field(default_factory=dict)  # by pod UID
    histograms: dict[tuple[WorkloadKey, str], Histogram] = field(default_factory=dict)

    def expect(self, key: WorkloadKey) -> None:
        """Serve the workload's histograms at zero before its first observation: Prometheus'
        increase() sees no increase in a series that is born at 1."""
        for phase in PHASES:
            self.histograms.setdefault((key, phase), Histogram())

    def observe(self, key: WorkloadKey, phase: str, value: float) -> None:
        hist = self.histograms.get((key, phase))
        if hist is None:
            hist = self.histograms[(key, phase)] = Histogram()
        hist.observe(max(0.0, value))


COLDSTART: Slot[ColdStartState] = Slot("serving_coldstart", ColdStartState)


def note_tokens(history: TargetHistory, ts: float, snapshot: dict[str, ModelSnapshot]) -> None:
    """Called by the serving source for each sample: when the engine's current run counted its
    first generation token (a counter drop is a restarted engine, whose run starts over)."""
    values = [m.generation_tokens for m in snapshot.values() if m.generation_tokens is not None]
    if not values:
        return
    total = sum(values)
    if history.token_total is not None and total < history.token_total:
        history.first_token_at = None
    if history.first_token_at is None and total > 0:
        history.first_token_at = ts
    history.token_total = total


def _time(cond) -> float | None:
    return cond.last_transition if cond is not None and cond.status == "True" else None


def ready_time(pod: PodInfo, now: float) -> float | None:
    """When the pod last turned Ready (ContainersReady when the pod has no Ready condition);
    None while it is not ready."""
    if not pod.ready:
        return None
    return _time(pod.ready_condition) or _time(pod.containers_ready) or now


def loading(pod: PodInfo) -> bool:
    """Not Ready since its containers last started: the engine is still loading and usually not
    listening yet.  A pod that turned unready *after* starting (a readiness probe failing under
    load) is not loading: its metrics matter most then."""
    cond = pod.ready_condition
    if pod.ready or cond is None or cond.last_transition is None or pod.started_at is None:
        return False
    return cond.last_transition <= pod.started_at


def _span(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def track(
    cs: ColdStartState,
    pods: Iterable[PodInfo],
    selection: ServingSelection,
    histories: Iterable[TargetHistory],
    now: float,
) -> None:
    """Advance the tracker over the current pods (`state.kube.pods`, synced) and serving
    histories, observing every phase that completed since the last call."""
    first_run = cs.baseline is None
    if first_run:
        cs.baseline = now
    first_tokens = {(h.identity.namespace, h.identity.pod): h.first_token_at for h in histories}
    for pod in pods:
        if pod.phase in ("Succeeded", "Failed") or not selection.pod(pod):
            continue
        ready_at = ready_time(pod, now)
        st = cs.pods.get(pod.uid)
        if st is None:
            key = (pod.namespace, pod.workload_kind, pod.workload)
            # Serving before this exporter watched it: its start was another exporter's.
            started_before = ready_at is not None and (first_run or pod.created < cs.baseline)
            st = cs.pods[pod.uid] = PodStart(key, pod.restarts, done=started_before)
            if not started_before:
                cs.expect(key)
        st.last_seen = now
        if pod.restarts > st.restarts:
            st.restarts = pod.restarts
            if st.done or st.ready_at is not None:  # it had served: a new start of its engine
                st.done, st.restart, st.started, st.ready_at = False, True, pod.started_at, None
        if st.done:
            continue
        if st.ready_at is None:
            # After a restart the old Ready transition may still be in the object for a moment.
            if ready_at is None or (st.restart and st.started is not None and ready_at < st.started):
                continue
            st.ready_at = ready_at
            _observe_ready(cs, st, pod)
        first_token = first_tokens.get((pod.namespace, pod.name))
        if first_token is not None and first_token >= st.ready_at - CLOCK_SLACK:
            cs.observe(st.key, "first_token", first_token - st.ready_at)
            if not st.restart:
                cs.observe(st.key, "total", first_token - pod.created)
            st.done = True
    for uid in [u for u, s in cs.pods.items() if now - s.last_seen > FORGET_AFTER]:
        del cs.pods[uid]


def _observe_ready(cs: ColdStartState, st: PodStart, pod: PodInfo) -> None:
    if st.restart:
        spans = {"startup": _span(st.started, st.ready_at)}
    else:
        scheduled = _time(pod.scheduled)
        initialized = _time(pod.initialized)
        spans = {
            "scheduling": _span(pod.created or None, scheduled),
            "init": _span(scheduled, initialized),
            "startup": _span(initialized, st.ready_at),
        }
    for phase, value in spans.items():
        if value is not None:
            cs.observe(st.key, phase, value)
