"""Scrape dcgm-exporter endpoints: static `gpu.dcgm_targets` plus, with Kubernetes enabled, the
dcgm-exporter pods found in `state.kube`.

Per target the latest good observation goes to `state.dcgm[url]`; a failing target keeps it
(with its timestamp, so the signal drops it once stale).  Idle stretches are tracked here, at
ingest, in `state.gpu_idle`, and GPU time is integrated here after each round of scrapes, in
`state[GPU_TIME]` (gpu/accounting.py), so `signals/gpu.py` stays a pure function of state and a
clock that only formats.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import aiohttp

from ..config import Config
from ..expo.parse import parse_families
from ..gpu.accounting import NodeCapacity, WorkloadOf, account, in_scope, node_capacities, workload_resolver
from ..gpu.discovery import DcgmEndpoint, discover
from ..gpu.idle import prune, track
from ..gpu.observation import DcgmObservation, stale_after
from ..gpu.readings import WANTED, extract_readings
from ..gpu.state import GPU_TIME
from ..labelselector import SelectorError
from ..state import AppState
from .base import PeriodicSource, TargetStatus
from .http import FetchError, fetch_bounded, new_session


class DcgmSource(PeriodicSource):
    name = "gpu"
    per_target = True

    def __init__(self, config: Config, state: AppState, clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, state, clock)
        self.interval = config.gpu.interval
        self._session: aiohttp.ClientSession | None = None
        self._discovered: list[DcgmEndpoint] = []
        self._kube_generation = -1
        self._total_readings = 0
        # Node capacities and the pod -> workload index, rebuilt only when the kube store changes.
        self._kube_inputs: tuple[int, int, dict[str, NodeCapacity], WorkloadOf] | None = None
        self._accounted: dict[str, float] = {}  # target URL -> observation time already accounted
        self._bookkept_at = float("-inf")  # last prune + accounting over every GPU (scrape)

    def enabled(self) -> bool:
        g = self.config.gpu
        return bool(g.dcgm_targets) or (self.config.kubernetes.enabled and g.discovery.enabled)

    def endpoints(self) -> list[DcgmEndpoint]:
        """Static targets first; a discovered pod with the same URL adds nothing."""
        g = self.config.gpu
        out = {t.url: DcgmEndpoint(t.url, t.node) for t in g.dcgm_targets}
        kube = self.state.kube
        if self.config.kubernetes.enabled and g.discovery.enabled and kube.pods:
            if kube.generation != self._kube_generation:  # rescan only when pods changed
                d = g.discovery
                try:
                    self._discovered = discover(
                        kube, d.selectors, d.namespaces, d.port, d.path,
                        self.config.kubernetes.node_scope, d.port_name,
                    )
                except SelectorError:
                    self._discovered = []
                    self.state.selfmon.error(self.name, "config")
                self._kube_generation = kube.generation
            for ep in self._discovered:
                out.setdefault(ep.url, ep)
        # A shard scrapes the dcgm-exporters of the nodes it owns (static ones name their node).
        topology = self.config.topology
        return [
            ep for ep in out.values()
            if (topology.owns_node(ep.node) if ep.node is not None else topology.owns(ep.url))
        ]

    def target_keys(self) -> list[str]:
        return [e.url for e in self.endpoints()]

    async def run_once(self) -> None:
        await self.scrape(self.target_keys())

    async def scrape(self, keys: list[str]) -> None:
        endpoints = self.endpoints()
        keep = {e.url for e in endpoints}
        for url in [u for u in self.state.dcgm if u not in keep]:
            del self.state.dcgm[url]
        self.state.selfmon.forget_targets(self.name, keep)
        if self._session is None or self._session.closed:
            self._session = new_session(self.config.gpu.max_concurrency)
        sem = asyncio.Semaphore(self.config.gpu.max_concurrency)
        # Kept up to date by _scrape, so the guard costs O(1) per target, not O(targets).
        self._total_readings = sum(len(o.readings) for o in self.state.dcgm.values())
        wanted = set(keys)
        await asyncio.gather(*(self._scrape(ep, sem) for ep in endpoints if ep.url in wanted))
        # Pruning and GPU time cover every GPU of every node, while the per-target loop wakes
        # for each target as it comes due (targets/interval times a second): after a partial
        # batch, once a poll is enough.  Accounting integrates by observation time, so a later
        # call counts the same seconds.
        now = self.clock()
        if not keep <= wanted and now - self._bookkept_at < min(self.DISCOVERY_POLL, self.interval):
            return
        self._bookkept_at = now
        prune(self._tracks(), now, stale_after(self.interval))
        self._account()

    def _account(self) -> None:
        """Integrate GPU time after the round's scrape attempts: the observations new since the
        last round (older ones are already counted), and every GPU node advanced to now, so a
        silent node's gap is counted as it grows.  Node-local: inputs are filtered to the node
        scope, as the gpu signals are."""
        g = self.config.gpu
        scope = self.config.kubernetes.node_scope or None
        capacities, workload_of = self._kube_for_accounting(scope)
        new = [o for o in self.state.dcgm.values() if o.ts > self._accounted.get(o.url, 0.0)]
        self._accounted = {url: o.ts for url, o in self.state.dcgm.items()}
        account(self.state[GPU_TIME], in_scope(new, scope), capacities, self.clock(),
                threshold=g.idle_threshold, interval=self.interval, workload_of=workload_of)

    def _kube_for_accounting(self, scope: str | None) -> tuple[dict[str, NodeCapacity], WorkloadOf]:
        kube = self.state.kube
        key = (id(kube), kube.generation)
        if self._kube_inputs is None or self._kube_inputs[:2] != key:
            nodes = node_capacities(kube.nodes.values(), self.config.gpu.resource_names, scope)
            self._kube_inputs = (*key, nodes, workload_resolver(kube.pods.values()))
        return self._kube_inputs[2], self._kube_inputs[3]

    def _tracks(self) -> dict:
        return self.state.gpu_idle

    async def _scrape(self, ep: DcgmEndpoint, sem: asyncio.Semaphore) -> None:
        g = self.config.gpu
        assert self._session is not None
        async with sem:
            try:
                body = await fetch_bounded(self._session, ep.url, g.timeout, g.max_response_bytes)
            except FetchError as exc:
                self._failed(ep, exc.reason)
                return
        ts = self.clock()
        # dcgm-exporter 4.8.3 answers an empty 200 while it reloads its collectors (and a 500 for
        # the whole scrape on duplicate label sets or NaN counters, an http_status failure):
        # down, keeping the last good readings until they are stale.
        if not body.strip():
            self._failed(ep, "empty")
            return
        # Anything without a single DCGM field is not a dcgm-exporter (wrong port or path).
        if b"DCGM_FI_" not in body:
            self._failed(ep, "parse")
            return
        readings = extract_readings(parse_families(body, WANTED), ep.own_pod, ep.node or "")
        readings = self._bounded(ep.url, readings)
        prev = self.state.dcgm.get(ep.url)
        self._total_readings += len(readings) - (len(prev.readings) if prev is not None else 0)
        tracks = self._tracks()
        max_gap = stale_after(self.interval)
        for r in readings:
            # The holder is the pod that labels the series (signals/gpu.py: the first in order).
            holder = (*r.pods[0], r.pod_uids[0] if r.pod_uids else "") if r.pods else None
            tracks[r.key] = track(tracks.get(r.key), r.util, g.idle_threshold, ts, max_gap, holder)
        self.state.dcgm[ep.url] = DcgmObservation(ep.url, ep.node, ts, tuple(readings), up=True)
        self.state.selfmon.target_up(self.name, ep.url, True)

    def _bounded(self, url: str, readings: list) -> list:
        """Cardinality guard across all targets of this source."""
        limit = self.config.global_.max_series_per_source
        prev = self.state.dcgm.get(url)
        others = self._total_readings - (len(prev.readings) if prev is not None else 0)
        room = max(0, limit - others)
        if len(readings) > room:
            self.state.selfmon.dropped(self.name, len(readings) - room)
            self.state.selfmon.error(self.name, "cardinality")
            return readings[:room]
        return readings

    def _failed(self, ep: DcgmEndpoint, reason: str) -> None:
        prev = self.state.dcgm.get(ep.url)
        if prev is None:
            obs = DcgmObservation(ep.url, ep.node, 0.0, (), up=False, last_error=reason)
        else:  # keep the last good readings and their timestamp
            obs = DcgmObservation(prev.url, ep.node, prev.ts, prev.readings, False, reason)
        self.state.dcgm[ep.url] = obs
        self.state.selfmon.target_up(self.name, ep.url, False)
        self.state.selfmon.error(self.name, reason)

    def targets(self) -> list[TargetStatus]:
        out = []
        for ep in self.endpoints():
            obs = self.state.dcgm.get(ep.url)
            if obs is None:
                out.append(TargetStatus(self.name, ep.url, None))
            else:
                out.append(TargetStatus(self.name, ep.url, obs.up, obs.ts, obs.last_error))
        return out

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
