"""The registry of areas.  An area is one signal family end to end: its sources (I/O), the
slots of `AppState` they fill, its pure `derive` and its metric families declared as data.

`app.py` iterates `AREAS` and names no area; docs/signals.md, the rule lint, the dashboards
generator and the demo read `families()`.  Adding an area is one package (its stored type and
`Slot`, its source, its derive and `FAMILIES`) plus one line here: docs/architecture.md.
"""

from __future__ import annotations

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
    """

    name: str
    sources: tuple[SourceFactory, ...] = ()
    slots: tuple[Slot[Any], ...] = ()
    derive: Derive | None = None
    families: tuple[FamilySpec, ...] = ()
    capped: bool = True
    kube_resources: KubeResources = ()
    forget: Callable[[AppState], None] | None = None


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


AREAS: tuple[Area, ...] = (
    Area("kube", (_kube_source,), forget=_forget_kube),
    Area("serving", (ServingSource,), (SERVING, COLDSTART), _serving_derive,
         serving.FAMILIES + serving_lifecycle.FAMILIES, kube_resources=_serving_workloads),
    Area("gpu", (DcgmSource,), (DCGM, GPU_IDLE, GPU_TIME), gpu.derive, gpu.FAMILIES),
    Area("checkpoints", (CheckpointSource,), (CHECKPOINTS,), checkpoints.derive, checkpoints.FAMILIES),
    Area("probes", (ProbeSource,), (PROBES,), streaming.derive, streaming.FAMILIES),
    Area("self", derive=selfmon.derive, families=selfmon.FAMILIES, capped=False),
    Area("scheduling", (scheduling.SchedulingSource,), (scheduling.SCHEDULING,), scheduling.derive,
         scheduling.FAMILIES, kube_resources=scheduling.KUBE_RESOURCES),
)


def families() -> tuple[FamilySpec, ...]:
    """Every metric family the exporter can serve, in rendering order."""
    return tuple(spec for area in AREAS for spec in area.families)


def kube_watches(config: Config) -> tuple[Watch, ...]:
    """What the kube source lists and watches: pods and nodes, and the extra resources the
    areas ask for, each once (the first request of a resource wins)."""
    out: dict[str, Watch] = {w.resource: w for w in DEFAULT_WATCHES}
    for area in AREAS:
        extra = area.kube_resources(config) if callable(area.kube_resources) else area.kube_resources
        for r in extra:
            w = r if isinstance(r, Watch) else Watch(r)
            out.setdefault(w.resource, w)
    return tuple(out.values())
