"""The registry of areas.  An area is one signal family end to end: its sources (I/O), the
slots of `AppState` they fill, its pure `derive` and its metric families declared as data.

`app.py` iterates `AREAS` and names no area; docs/signals.md, the rule lint, the dashboards
generator and the demo read `families()`.  Adding an area is one package (its stored type and
`Slot`, its source, its derive and `FAMILIES`) plus one line here: docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .checkpoints.observation import CHECKPOINTS
from .config import Config
from .expo.families import Family, FamilySpec
from .gpu.state import DCGM, GPU_IDLE, GPU_TIME
from .scheduling import area as scheduling
from .serving.coldstart import COLDSTART
from .serving.history import SERVING
from .signals import checkpoints, gpu, selfmon, serving, serving_lifecycle, streaming
from .slots import Slot
from .streaming.record import PROBES
from .sources.base import Source
from .sources.checkpoints import CheckpointSource
from .sources.gpu import DcgmSource
from .sources.kube import KubeSource
from .sources.kube_stores import DEFAULT_WATCHES, Watch
from .sources.probes import ProbeSource
from .sources.serving import ServingSource
from .state import AppState, KubeState
from .topology import Ownership, Scope, Topology

Derive = Callable[[AppState, Config, float], list[Family]]
# A Source class, or a function building one from the config and state (same signature).
SourceFactory = Callable[[Config, AppState], Source]
# Extra kube resources of an area: names or `Watch`es, or a function of the config giving them
# (what an area watches can depend on its settings, e.g. on node scope).
KubeResources = tuple["str | Watch", ...] | Callable[[Config], Iterable["str | Watch"]]


@dataclass(frozen=True)
class Area:
    """One registry entry.

    name: the `source` label of the area's self-metrics (errors, cardinality drops); equal to
        the `name` of its sources.
    sources: Source classes (or factories with the same signature), each built as
        `cls(config, state)` and run while `enabled()`.
    slots: the `AppState` slots the sources write (`state[slot]`); reset when a reload
        disables a source of the area, so no stale observation keeps a signal (or alert) alive.
    derive: `(state, config, now) -> list[Family]`, pure; None for an area without signals.
    families: the specs `derive` fills (and nothing else).
    capped: whether `global.max_series_per_source` limits the area's output.
    kube_resources: extra Kubernetes resources (plural names, e.g. "resourcequotas", or `Watch`
        objects) the area needs watched by the kube source, or a function of the config that
        returns them; see `kube_watches()`.
    forget: what else to drop when its source is disabled (beyond resetting `slots`).
    scope: where its work belongs in the topologies (topology.py): "node" (node agents),
        "cluster" (the cluster instance) or "instance" (every instance, e.g. its own health).
        A family may declare its own (`FamilySpec.scope`); the area's sources run on every
        instance that serves the scope of the area or of one of its families.
    shard_key: what a shard owns of the area, in words (docs/deploy.md); its sources skip the
        targets they do not own (`config.topology.owns(key)`), so a shard does 1/N of the I/O.
    shard_label: the label carrying that key in the area's families, when there is one: the
        refresh drops every sample a shard does not own (`topology.keep_owned`), so an area
        that derives from the shared kube store is sharded without code of its own.
    kube_resources_scope: the scope of the work its `kube_resources` feed: a role that does not
        serve it does not watch them (node agents would each watch every quota and event).
    sources_scope: where its sources run when that is narrower than where it derives (serving
        scrapes on node agents; its replica counts come from the cluster instance's kube store).
    """

    name: str
    sources: tuple[SourceFactory, ...] = ()
    slots: tuple[Slot[Any], ...] = ()
    derive: Derive | None = None
    families: tuple[FamilySpec, ...] = ()
    capped: bool = True
    kube_resources: KubeResources = ()
    forget: Callable[[AppState], None] | None = None
    scope: Scope = "instance"
    shard_key: str = ""
    shard_label: str | None = None
    kube_resources_scope: Scope = "instance"
    sources_scope: Scope | None = None

    def scopes(self) -> frozenset[str]:
        """The scopes of its work: its own and its families'."""
        return frozenset({self.scope, *(f.scope for f in self.families if f.scope)})

    def runs_on(self, topology: Topology) -> bool:
        """Whether the area derives on an instance of `topology`'s role."""
        return any(topology.serves(scope) for scope in self.scopes())

    def sources_run_on(self, topology: Topology) -> bool:
        """Whether the area's sources run there: `sources_scope` where set, else `runs_on`."""
        if self.sources_scope is not None:
            return topology.serves(self.sources_scope)
        return self.runs_on(topology)

    def ownership(self) -> Ownership:
        """Each family's scope and shard label, the area's where the family declares none."""
        return {
            f.name: (f.scope or self.scope, f.shard_label or (
                None if f.replicated or self.shard_label not in f.labelnames else self.shard_label))
            for f in self.families
        }


def _kube_source(config: Config, state: AppState) -> Source:
    """The kube source, watching pods and nodes plus what the areas ask for."""
    return KubeSource(config, state, resources=kube_watches(config))


def _serving_derive(state: AppState, config: Config, now: float) -> list[Family]:
    return serving.derive(state, config, now) + serving_lifecycle.derive(state, config, now)


def _serving_workloads(config: Config) -> tuple[str, ...]:
    """The workload kinds serving discovery selects pods of, so a workload scaled to zero stays
    visible (ai_serving_replicas).  All of them, filtered in memory by pod template: an API
    label selector would match the workload's own labels, not its template's.  Cluster scope
    only: node agents count no replicas (signals/serving_lifecycle.py)."""
    kc, discovery = config.kubernetes, config.serving.discovery
    if not kc.enabled or not discovery.enabled or kc.node_scope:
        return ()
    return ("deployments", "statefulsets", "leaderworkersets")


def _forget_kube(state: AppState) -> None:
    # No stale pods for joins or discovery; the generation only moves forward.
    state.kube = KubeState(generation=state.kube.generation + 1)


def _serving_lifecycle_specs() -> tuple[FamilySpec, ...]:
    """Cold starts per workload come in parts from every instance that saw a pod start (node
    agents, shards by pod UID); replicas and bounds, from the workloads, by namespace."""
    out = []
    for s in serving_lifecycle.FAMILIES:
        if s is serving_lifecycle.COLD_START:
            s = dataclasses.replace(s, partial=True)
        elif s in (serving_lifecycle.REPLICAS, serving_lifecycle.COLD_START_BOUND):
            s = dataclasses.replace(s, scope="cluster", shard_label="namespace")
        out.append(s)
    return tuple(out)


def _scheduling_spec(s: FamilySpec) -> FamilySpec:
    labels = s.labelnames
    # Pending pods and quota by namespace, node failures by node, a job's losses by its store.
    key = "store" if "store" in labels else "node" if "node" in labels else "namespace"
    # A node-local count per workload: node agents each report their nodes' part of it.
    partial = s.scope == "node" and "node" not in labels
    return dataclasses.replace(s, shard_label=key, partial=partial)


AREAS: tuple[Area, ...] = (
    # Every instance keeps the kube store its areas join against (a node agent's lists only its
    # node's pods, via the field selector of kubernetes.node_scope).
    Area("kube", (_kube_source,), forget=_forget_kube, scope="instance"),
    # Scraping is node work; replicas and cold-start bounds (from the workloads, which only the
    # cluster instance watches) are cluster scope, cold starts partial (docs/deploy.md).
    Area("serving", (ServingSource,), (SERVING, COLDSTART), _serving_derive,
         serving.FAMILIES + _serving_lifecycle_specs(), kube_resources=_serving_workloads,
         kube_resources_scope="cluster", scope="node", sources_scope="node",
         shard_key="pod UID (static targets: URL; replicas: namespace)"),
    # GPU time (ai_gpu_seconds_total) included: by node; its price per GPU model is replicated.
    Area("gpu", (DcgmSource,), (DCGM, GPU_IDLE, GPU_TIME), gpu.derive, gpu.FAMILIES,
         scope="node", shard_key="node name", shard_label="node"),
    Area("checkpoints", (CheckpointSource,), (CHECKPOINTS,), checkpoints.derive, checkpoints.FAMILIES,
         scope="cluster", shard_key="store name", shard_label="store"),
    Area("probes", (ProbeSource,), (PROBES,), streaming.derive, streaming.FAMILIES,
         scope="cluster", shard_key="probe name", shard_label="probe"),
    Area("self", derive=selfmon.derive, families=selfmon.FAMILIES, capped=False, scope="instance"),
    Area("scheduling", (scheduling.SchedulingSource,), (scheduling.SCHEDULING,), scheduling.derive,
         tuple(_scheduling_spec(s) for s in scheduling.FAMILIES), kube_resources=scheduling.KUBE_RESOURCES,
         # Quotas and FailedCreate events feed the quota families only: cluster scope.
         kube_resources_scope="cluster", scope="cluster", shard_key="namespace (node failures: node name; job losses: store name)"),
)


def families() -> tuple[FamilySpec, ...]:
    """Every metric family the exporter can serve, in rendering order."""
    return tuple(spec for area in AREAS for spec in area.families)


def kube_watches(config: Config) -> tuple[Watch, ...]:
    """What the kube source lists and watches: pods and nodes, and the extra resources the
    areas ask for, each once (the first request of a resource wins); only those of work the
    instance's role does (a node agent watches no cluster-wide quotas, events or workloads)."""
    topology = config.topology
    out: dict[str, Watch] = {w.resource: w for w in DEFAULT_WATCHES}
    for area in AREAS:
        if not topology.serves(area.kube_resources_scope):
            continue
        extra = area.kube_resources(config) if callable(area.kube_resources) else area.kube_resources
        for r in extra:
            w = r if isinstance(r, Watch) else Watch(r)
            out.setdefault(w.resource, w)
    return tuple(out.values())
