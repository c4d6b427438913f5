"""GPU time accounting: where every physical GPU-second of a node goes.

Every physical GPU of a node's capacity is, at every moment, in exactly one state:

    busy            some engine/utilisation reading at or above gpu.idle_threshold
    allocated_idle  below the threshold, attributed to at least one pod
    unallocated     below the threshold, attributed to no pod
    unhealthy       withdrawn by the device plugin (capacity - allocatable)
    no_telemetry    nobody measured it (missing from dcgm, or the node's data is stale)

Precedence, per observation of a node (docs/gpu-time.md has the reasoning):
  1. The GPUs dcgm reports are busy, allocated_idle or idle-unallocated from their readings.
  2. The withdrawn count (capacity - allocatable, in physical GPUs) is taken first from the GPUs
     missing from telemetry (a GPU off the bus is both), then from the idle unallocated ones.
  3. Missing GPUs left over are no_telemetry; idle unallocated GPUs left over are unallocated.
  4. Withdrawn GPUs beyond missing + idle-unallocated are not counted unhealthy: the readings say
     what the silicon did, and a busy or allocated GPU is not idle capacity.

Integration is per observation and right-aligned: dcgm's utilisation is an average over the
sampling period that ends at the scrape, so the time since the previous observation takes the
state of the new one.  A gap longer than `max_gap` (3 source intervals) is `no_telemetry` for
the whole gap (withdrawn GPUs stay `unhealthy`: that comes from Kubernetes, not dcgm), never
idle or busy; `advance` credits such a gap while the node stays silent, so the sum over states
keeps up with the wall clock.

Attribution: a GPU shared by several pods (time-slicing) counts once, split equally across the
pods, each pod's share going to its workload; a MIG GPU is busy if any instance is, allocated
if any instance is, and its physical time is split equally across the pods of all its
instances.  Instance time is counted separately in `ai_gpu_mig_instance_seconds_total`, so
`sum(ai_gpu_seconds_total)` is always physical GPU time.  Labels carry the workload, never the
pod.

This module is pure apart from the accumulator, which only mutates itself; it does no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from ..expo.families import FamilySpec
from .idle import is_idle
from .observation import DcgmObservation, stale_after
from ..kube.model import NodeInfo
from .nodes import GPU_COUNT_LABEL, GPU_PRODUCT_LABEL, MIG_PREFIX, ResourceNames, is_gpu_node
from .pricing import mig_fraction, price_for
from .readings import GpuReading

BUSY = "busy"
ALLOCATED_IDLE = "allocated_idle"
UNALLOCATED = "unallocated"
UNHEALTHY = "unhealthy"
NO_TELEMETRY = "no_telemetry"
STATES = (BUSY, ALLOCATED_IDLE, UNALLOCATED, UNHEALTHY, NO_TELEMETRY)
_UNATTRIBUTED = (BUSY, UNALLOCATED, UNHEALTHY, NO_TELEMETRY)  # states a GPU nobody holds can be in

# GPU feature discovery's node labels (see physical_capacity).
GPU_REPLICAS_LABEL = "nvidia.com/gpu.replicas"
GPU_SLICES_LABEL = "nvidia.com/gpu.slices.gi"
MIG_STRATEGY_LABEL = "nvidia.com/mig.strategy"
_MAX_MIG_PER_GPU = 7
# The single strategy appends the MIG profile to the product (A100-SXM4-40GB-MIG-1g.5gb), and
# time-slicing without a rename appends -SHARED (k8s-device-plugin internal/lm/resource.go,
# productLabel): the physical model is what precedes them.
_PRODUCT_SUFFIX_RE = re.compile(r"(-MIG-\d+g\.\d+gb)?(-SHARED)?$", re.IGNORECASE)


GPU_SECONDS = FamilySpec(
    "ai_gpu_seconds_total", "counter",
    "Wall time of physical GPUs by state (busy|allocated_idle|unallocated|unhealthy|"
    "no_telemetry), integrated per dcgm observation; per node the states sum to its GPU count "
    "times elapsed time. A GPU shared by several pods is split equally across them; MIG time "
    "counts the physical GPU once. Starts at 0 when the exporter starts.",
    ("node", "gpu_model", "namespace", "workload_kind", "workload", "state"),
)
MIG_INSTANCE_SECONDS = FamilySpec(
    "ai_gpu_mig_instance_seconds_total", "counter",
    "Wall time of MIG instances by profile and state (busy|allocated_idle|unallocated); one "
    "second per instance, so it is not physical GPU time: sum ai_gpu_seconds_total for that.",
    ("node", "gpu_model", "profile", "namespace", "workload_kind", "workload", "state"),
)
# Every instance that sees a GPU model reports its price (topologies: replicated, rules max it).
PRICE_PER_HOUR = FamilySpec(
    "ai_gpu_price_per_hour", "gauge",
    "Configured price of one GPU-hour (gpu.price_per_gpu_hour) for each gpu_model of "
    "ai_gpu_seconds_total, so cost is a recording rule.",
    ("gpu_model",), replicated=True,
)
FAMILIES = (GPU_SECONDS, MIG_INSTANCE_SECONDS, PRICE_PER_HOUR)

Workload = tuple[str, str, str]  # (namespace, workload_kind, workload); ("", "", "") = nobody
NOBODY: Workload = ("", "", "")
# (namespace, pod) -> (workload_kind, workload).  Unknown pods should map to ("", ""): the
# namespace is still known and a pod name must never become a label.
WorkloadOf = Callable[[str, str], tuple[str, str]]
GpuSecondsKey = tuple[str, str, str, str, str, str]  # GPU_SECONDS.labelnames order
MigSecondsKey = tuple[str, str, str, str, str, str, str]  # MIG_INSTANCE_SECONDS order
Sample = tuple[FamilySpec, tuple[str, ...], float]
# A counter not credited for this long goes (a finished Job): Prometheus keeps its past samples,
# so increase() over any window still counts it, and a comeback reads as a reset.
FORGET_AFTER = 3600.0


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """A node's GPUs in physical devices (not time-slicing replicas, not MIG instances)."""

    gpus: int
    withdrawn: int = 0  # capacity - allocatable, physical GPUs
    model: str = ""  # the node's GPU product (GFD label); readings' modelName otherwise


def physical_capacity(
    capacity: Mapping[str, int],
    allocatable: Mapping[str, int],
    labels: Mapping[str, str],
    resource_names: ResourceNames | Iterable[str] = "nvidia.com/gpu",
) -> NodeCapacity:
    """A node's physical GPUs from the device plugin's schedulable units and GPU feature
    discovery's labels (k8s-device-plugin internal/lm/mig-strategy.go, docs/gpu-feature-discovery
    README "Generated Labels").

    Units are whole GPUs, time-slicing replicas (`nvidia.com/gpu.replicas` per GPU), or MIG
    devices: `nvidia.com/mig-*` with the mixed strategy, where `nvidia.com/gpu.count` still counts
    physical GPUs; `nvidia.com/gpu` itself with the single strategy, where `nvidia.com/gpu.count`
    counts MIG devices and `nvidia.com/gpu.slices.gi` gives their size.  Without the labels the
    count is a lower bound (7 MIG devices per GPU at most); the accounting then trusts dcgm for
    GPUs beyond it.  A partly withdrawn GPU counts withdrawn.
    """
    names = (resource_names,) if isinstance(resource_names, str) else tuple(resource_names)
    whole_cap = sum(capacity.get(n, 0) for n in names)
    whole_lost = max(0, whole_cap - sum(allocatable.get(n, 0) for n in names))
    mig_cap = sum(v for k, v in capacity.items() if k.startswith(MIG_PREFIX))
    mig_lost = max(0, mig_cap - sum(v for k, v in allocatable.items() if k.startswith(MIG_PREFIX)))
    product = labels.get(GPU_PRODUCT_LABEL, "")
    model = _PRODUCT_SUFFIX_RE.sub("", product)
    replicas = _positive_int(labels.get(GPU_REPLICAS_LABEL), 1)
    count = _positive_int(labels.get(GPU_COUNT_LABEL), 0)
    if labels.get(MIG_STRATEGY_LABEL) == "single" and whole_cap:
        slices = _positive_int(labels.get(GPU_SLICES_LABEL), 1)
        per_gpu = max(1, int(1 / mig_fraction(f"{slices}g.", model) + 1e-9))
        gpus = math.ceil(max(count, whole_cap) / per_gpu)
        return NodeCapacity(gpus, min(gpus, math.ceil(whole_lost / per_gpu)), model)
    whole_gpus = math.ceil(whole_cap / replicas)
    gpus = count or whole_gpus + math.ceil(mig_cap / _MAX_MIG_PER_GPU)
    mig_gpus = max(1, gpus - whole_gpus)
    withdrawn = math.ceil(whole_lost / replicas) + (
        math.ceil(mig_lost / max(1, mig_cap // mig_gpus)) if mig_lost else 0
    )
    return NodeCapacity(gpus, min(gpus, withdrawn), model)


def node_capacities(
    nodes: Iterable[NodeInfo], resource_names: ResourceNames, node_scope: str | None = None
) -> dict[str, NodeCapacity]:
    """`physical_capacity` of every GPU node (in the node scope, when there is one)."""
    return {
        n.name: physical_capacity(n.capacity, n.allocatable, n.labels, resource_names)
        for n in nodes
        if (not node_scope or n.name == node_scope) and is_gpu_node(n, resource_names)
    }


def in_scope(
    observations: Iterable[DcgmObservation], node_scope: str | None
) -> dict[str, DcgmObservation]:
    """The observations (by URL) as the node scope sees them: readings of other nodes dropped,
    an observation with nothing left of the scope's node dropped."""
    out: dict[str, DcgmObservation] = {}
    for obs in observations:
        if node_scope and obs.node != node_scope:
            if obs.node:  # a target placed on another node
                continue
            readings = tuple(r for r in obs.readings if r.hostname == node_scope)
            if not readings:
                continue
            obs = replace(obs, readings=readings)
        out[obs.url] = obs
    return out


def _positive_int(text: str | None, default: int) -> int:
    try:
        value = int(text) if text else default
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(slots=True)
class Assignment:
    """One observation's state of a node's physical GPUs, as GPU counts (fractions where a GPU
    is shared).  `gpus` sums to the node's GPU count."""

    gpus: dict[GpuSecondsKey, float] = field(default_factory=dict)
    mig: dict[MigSecondsKey, float] = field(default_factory=dict)

    def add(self, key: GpuSecondsKey, n: float) -> None:
        if n:
            self.gpus[key] = self.gpus.get(key, 0.0) + n


def _holders(pods: Iterable[tuple[str, str]], workload_of: WorkloadOf) -> list[Workload]:
    return [(ns, *workload_of(ns, pod)) for ns, pod in pods]


def _split(out: Assignment, node: str, model: str, state: str, holders: list[Workload]) -> None:
    if not holders:
        out.add((node, model, *NOBODY, state), 1.0)
        return
    share = 1.0 / len(holders)
    for w in holders:
        out.add((node, model, *w, state), share)


def assign(
    node: str,
    readings: Iterable[GpuReading],
    capacity: NodeCapacity,
    threshold: float,
    workload_of: WorkloadOf,
) -> Assignment:
    """States of a node's physical GPUs from one observation's readings (see module doc)."""
    physical: dict[str, list[GpuReading]] = {}
    for r in readings:
        physical.setdefault(r.uuid or r.key[0], []).append(r)
    out = Assignment()
    idle_free: list[str] = []  # model of each idle unallocated GPU, withdrawn ones taken from here
    fallback_model = capacity.model
    for uuid in sorted(physical):
        parts = physical[uuid]
        model = capacity.model or parts[0].model
        fallback_model = fallback_model or model
        busy = any(not is_idle(r.util, threshold) for r in parts)
        pods = sorted({p for r in parts for p in r.pods})
        for r in parts:
            if r.is_mig:
                state = BUSY if not is_idle(r.util, threshold) else (ALLOCATED_IDLE if r.pods else UNALLOCATED)
                holders = _holders(r.pods, workload_of) or [NOBODY]
                for w in holders:
                    key = (node, model, r.profile, *w, state)
                    out.mig[key] = out.mig.get(key, 0.0) + 1.0 / len(holders)
        if busy:
            _split(out, node, model, BUSY, _holders(pods, workload_of))
        elif pods:
            _split(out, node, model, ALLOCATED_IDLE, _holders(pods, workload_of))
        else:
            idle_free.append(model)
    missing = max(0, capacity.gpus - len(physical))
    from_missing = min(capacity.withdrawn, missing)
    from_idle = min(capacity.withdrawn - from_missing, len(idle_free))
    out.add((node, fallback_model, *NOBODY, UNHEALTHY), float(from_missing))
    out.add((node, fallback_model, *NOBODY, NO_TELEMETRY), float(missing - from_missing))
    for i, model in enumerate(idle_free):
        out.add((node, model, *NOBODY, UNHEALTHY if i < from_idle else UNALLOCATED), 1.0)
    return out


def unobserved(node: str, capacity: NodeCapacity) -> Assignment:
    """A node nobody measured: withdrawn GPUs are unhealthy (Kubernetes says so), the rest
    no_telemetry."""
    out = Assignment()
    withdrawn = min(capacity.withdrawn, capacity.gpus)
    out.add((node, capacity.model, *NOBODY, UNHEALTHY), float(withdrawn))
    out.add((node, capacity.model, *NOBODY, NO_TELEMETRY), float(capacity.gpus - withdrawn))
    return out


@dataclass(slots=True)
class _NodeClock:
    last_obs: float  # last dcgm observation, or when this node was first seen
    covered: float  # counters hold this node's time up to here
    model: str = ""  # last model seen, for a gap on a node whose kube model label is unset
    gpus: int = 0  # last GPU count seen, for a gap on a node Kubernetes does not describe


@dataclass(slots=True)
class GpuTimeAccumulator:
    """Counters of GPU time, kept in the gpu area's state so they survive config reloads.

    The dcgm source calls `account` once per cycle, which calls `observe` with each node's
    fresh observation and `advance` for every GPU node (so a silent node's gap is credited as
    it grows); the derivation only reads, through `gpu_time_samples` and `price_samples`.
    """

    seconds: dict[GpuSecondsKey, float] = field(default_factory=dict)
    mig_seconds: dict[MigSecondsKey, float] = field(default_factory=dict)
    clocks: dict[str, _NodeClock] = field(default_factory=dict)
    touched: dict[tuple, float] = field(default_factory=dict)  # counter key -> last credited at

    def _credit(self, a: Assignment, dt: float, now: float) -> None:
        if dt <= 0:
            return
        for key, n in a.gpus.items():
            self.seconds[key] = self.seconds.get(key, 0.0) + n * dt
            self.touched[key] = now
        for key, n in a.mig.items():
            self.mig_seconds[key] = self.mig_seconds.get(key, 0.0) + n * dt
            self.touched[key] = now

    def observe(
        self,
        node: str,
        ts: float,
        readings: Iterable[GpuReading],
        capacity: NodeCapacity,
        *,
        threshold: float,
        max_gap: float,
        workload_of: WorkloadOf,
    ) -> None:
        """Integrate one dcgm observation of `node` taken at `ts` (scrape time).  The node's
        first observation only starts its clock: counters begin at 0."""
        clock = self.clocks.get(node)
        if clock is not None and ts <= clock.last_obs:  # the same observation again, or older
            return
        a = assign(node, readings, capacity, threshold, workload_of)
        seen = _Seen(round(sum(a.gpus.values())), next((k[1] for k in a.gpus if k[1]), ""))
        if clock is None:
            self._start(node, _NodeClock(ts, ts, seen.model, seen.gpus), ts)
            return
        if ts - clock.last_obs > max_gap:
            a = unobserved(node, _fill(capacity, clock))
        self._credit(a, ts - clock.covered, ts)
        clock.covered = max(clock.covered, ts)
        clock.last_obs = ts
        clock.gpus, clock.model = seen.gpus, seen.model or clock.model

    def advance(self, node: str, now: float, capacity: NodeCapacity, *, max_gap: float) -> None:
        """Credit the time a silent node has gone unobserved, once the silence is longer than
        `max_gap`.  A node first seen here (no dcgm target yet) starts its clock now."""
        clock = self.clocks.get(node)
        if clock is None:
            self._start(node, _NodeClock(now, now, capacity.model), now)
            return
        if now - clock.last_obs <= max_gap or now <= clock.covered:
            return
        self._credit(unobserved(node, _fill(capacity, clock)), now - clock.covered, now)
        clock.covered = now

    def _start(self, node: str, clock: _NodeClock, now: float) -> None:
        """A node's clock starts: its unattributed states appear at 0 at once.  increase() does
        not count a series' first sample, so a state first credited with a whole gap (60 s x
        the node's GPUs) would be lost from it; these series exist from the start instead."""
        self.clocks[node] = clock
        for state in _UNATTRIBUTED if clock.model else ():
            key = (node, clock.model, *NOBODY, state)
            self.seconds.setdefault(key, 0.0)
            self.touched.setdefault(key, now)

    def forget(self, now: float, keep: float) -> None:
        """Drop counters not credited for `keep` seconds (finished Jobs, deleted nodes), so
        series do not pile up over months; Prometheus reads a reappearing one as a reset.  A
        live node keeps its unattributed states (see `_start`)."""
        for key in [k for k, t in self.touched.items() if now - t > keep]:
            if key[0] in self.clocks and key[2:5] == NOBODY and key in self.seconds:
                continue
            del self.touched[key]
            self.seconds.pop(key, None)  # type: ignore[arg-type]
            self.mig_seconds.pop(key, None)  # type: ignore[arg-type]
        for node in [n for n, c in self.clocks.items() if now - max(c.covered, c.last_obs) > keep]:
            del self.clocks[node]


class _Seen(NamedTuple):
    gpus: int
    model: str


def _fill(capacity: NodeCapacity, clock: _NodeClock) -> NodeCapacity:
    """Capacity for a gap: what Kubernetes says, completed by what dcgm last showed."""
    if capacity.model and capacity.gpus:
        return capacity
    return NodeCapacity(capacity.gpus or clock.gpus, capacity.withdrawn, capacity.model or clock.model)


def workload_resolver(pods: Iterable[object]) -> WorkloadOf:
    """(namespace, pod) -> (workload_kind, workload) over pods with `namespace`, `name`,
    `workload_kind` and `workload` attributes (state.PodInfo); unknown pods -> ("", "")."""
    index = {(p.namespace, p.name): (p.workload_kind, p.workload) for p in pods}  # type: ignore[attr-defined]
    return lambda ns, pod: index.get((ns, pod), ("", ""))


def account(
    acc: GpuTimeAccumulator,
    observations: Mapping[str, DcgmObservation],
    capacities: Mapping[str, NodeCapacity],
    now: float,
    *,
    threshold: float,
    interval: float,
    workload_of: WorkloadOf,
    keep: float = FORGET_AFTER,
) -> None:
    """One source cycle: integrate each node's newest dcgm observation, advance every node
    (GPU nodes from `capacities`, and nodes only dcgm knows) to `now`, and drop counters idle for
    `keep` seconds.  Filter both inputs to the node scope first.  Nodes without a capacity count
    the GPUs dcgm reports."""
    max_gap = stale_after(interval)
    newest: dict[str, tuple[float, list[GpuReading]]] = {}
    for obs in observations.values():
        if obs.ts <= 0:
            continue
        per_node: dict[str, list[GpuReading]] = {}
        for r in obs.readings:
            per_node.setdefault(obs.node_of(r), []).append(r)
        if obs.node and not obs.readings:
            per_node[obs.node] = []  # scraped fine, no GPU reported: all missing
        for node, readings in per_node.items():
            if node and (node not in newest or newest[node][0] < obs.ts):
                newest[node] = (obs.ts, readings)
    empty = NodeCapacity(0)
    for node, (ts, readings) in sorted(newest.items()):
        acc.observe(node, ts, readings, capacities.get(node, empty), threshold=threshold,
                    max_gap=max_gap, workload_of=workload_of)
    for node in sorted(set(capacities) | set(newest)):
        acc.advance(node, now, capacities.get(node, empty), max_gap=max_gap)
    acc.forget(now, keep)


def gpu_time_samples(acc: GpuTimeAccumulator) -> list[Sample]:
    """Samples of ai_gpu_seconds_total and ai_gpu_mig_instance_seconds_total, sorted."""
    out: list[Sample] = [(GPU_SECONDS, k, round(v, 3)) for k, v in sorted(acc.seconds.items())]
    out.extend((MIG_INSTANCE_SECONDS, k, round(v, 3)) for k, v in sorted(acc.mig_seconds.items()))
    return out


def price_samples(acc: GpuTimeAccumulator, prices: Mapping[str, float]) -> list[Sample]:
    """ai_gpu_price_per_hour for each gpu_model the counters carry, so the cost rules join on
    the exact label value; none without prices."""
    if not prices:
        return []
    out: list[Sample] = []
    for model in sorted({k[1] for k in acc.seconds}):
        price = price_for(model, dict(prices))
        if price is not None:
            out.append((PRICE_PER_HOUR, (model,), price))
    return out
