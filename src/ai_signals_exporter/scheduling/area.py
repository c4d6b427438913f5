"""The scheduling area on the registry: its slot, its source (the kube store hook) and derive.

There is no I/O of its own: the kube source lists and watches pods, nodes and (asked for by this
area's `kube_resources`) resourcequotas and Warning events; `SchedulingSource` registers the
area's tracker as a listener of those stores while it runs, so counters see every transition.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from ..checkpoints.observation import CHECKPOINTS
from ..config import Config
from ..expo.families import Family
from ..slots import Slot
from ..sources.base import Source, TargetStatus
from ..sources.kube_stores import KUBE_LISTENERS
from ..state import AppState
from .derive import derive as derive_families
from .families import FAMILIES, FamilySpec
from .resources import GpuResources
from .tracker import SchedulingTracker

# Made by the source when it starts (it needs the config); None while the area has not run.
SCHEDULING: Slot[SchedulingTracker | None] = Slot("scheduling", lambda: None)
KUBE_RESOURCES = ("resourcequotas", "events")
SCOPES = ("cluster", "node")


def owned_scopes(config: Config) -> frozenset[str]:
    """Which families this instance reports (FamilySpec.scope): a node agent
    (`kubernetes.node_scope`, whose pod and node watches are limited to its node) only the
    node-local ones; otherwise all of them."""
    return frozenset({"node"}) if config.kubernetes.node_scope else frozenset(SCOPES)


class SchedulingSource(Source):
    """Hooks the area's tracker into the kube stores while it runs; no I/O of its own."""

    name = "scheduling"

    def __init__(self, config: Config, state: AppState, clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, state, clock)
        self.gpus = GpuResources(config.gpu.resource_names)
        self.tracker: SchedulingTracker | None = None

    def enabled(self) -> bool:
        return self.config.kubernetes.enabled

    def attach(self) -> SchedulingTracker:
        """Register the tracker (kept across reloads in its slot, so counters do not restart);
        resources the kube source has already listed are replayed, as baseline for a new one."""
        tracker = self.state[SCHEDULING]
        if tracker is None or tracker.state.gpus.names != self.gpus.names:
            tracker = self.state[SCHEDULING] = SchedulingTracker(self.state, self.gpus, clock=self.clock)
        tracker.clock = self.clock
        listeners = self.state[KUBE_LISTENERS]
        if tracker not in listeners:
            listeners.append(tracker)
        kube = self.state.kube
        for resource in ("nodes", "resourcequotas", "pods", "events"):
            if resource in kube.synced:
                tracker.replaced(resource, getattr(kube, resource), resource not in tracker.listed)
        self.tracker = tracker
        return tracker

    async def run(self) -> None:
        self.attach()
        await asyncio.Event().wait()  # nothing to poll: the stores call the tracker

    def targets(self) -> list[TargetStatus]:
        return []

    async def close(self) -> None:
        listeners = self.state[KUBE_LISTENERS]
        if self.tracker is not None and self.tracker in listeners:
            listeners.remove(self.tracker)


def derive(state: AppState, config: Config, now: float) -> list[Family]:
    tracker = state[SCHEDULING]
    scopes = owned_scopes(config)
    if tracker is None:
        return [spec.new() for spec in FAMILIES if spec.scope in scopes]
    stores = [(o.name, o.namespace, o.job) for o in state[CHECKPOINTS].values()]
    return derive_families(tracker.state, tracker.pending.values(), tracker.nodes.values(),
                           tracker.quotas.values(), now, stores, scopes)
