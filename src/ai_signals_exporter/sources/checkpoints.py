"""Checkpoint stores: list each store on the checkpoints interval and keep a verdict per store.

Stores come from `checkpoints.stores` and, with Kubernetes enabled, from pods annotated
`ai-signals.io/checkpoint-uri` (optionally `ai-signals.io/checkpoint-layout`); a discovered
store is named `<namespace>/<workload>` and labelled with the pod's namespace and workload, so
all pods of one training job share one store.

A scan that fails marks the store down and counts a bounded reason, and the last good verdict
stays in `state.checkpoints` with its scan time: a store that cannot be listed must not make the
last complete checkpoint look younger or vanish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, get_args

from ..checkpoints.layouts import detect
from ..checkpoints.observation import StoreObservation
from ..checkpoints.stores import ScanError, Tree, open_tree, scan, scheme_of
from ..config import STORE_URI_PREFIXES, CheckpointStore, Config, ConfigError, Layout
from ..selfmon import display_target
from ..state import AppState
from .base import PeriodicSource, TargetStatus

log = logging.getLogger(__name__)

URI_ANNOTATION = "ai-signals.io/checkpoint-uri"
LAYOUT_ANNOTATION = "ai-signals.io/checkpoint-layout"
_LAYOUTS = set(get_args(Layout))


@dataclass
class _Store:
    spec: CheckpointStore
    namespace: str
    job: str
    discovered: bool
    tree: Tree | None = field(default=None, repr=False)
    tree_key: tuple = ()


def discovered_stores(
    state: AppState, allowed: tuple[str, ...] | list[str] = ()
) -> list[tuple[CheckpointStore, str, str]]:
    """(store, namespace, job) for every annotated pod, one per namespace/workload; with
    `allowed`, only URIs under one of those prefixes (others are counted as config errors)."""
    out: dict[str, tuple[CheckpointStore, str, str]] = {}
    for pod in state.kube.pods.values():
        uri = pod.annotations.get(URI_ANNOTATION, "").strip()
        # A pod that succeeded has finished training: its checkpoint age is no work at risk.  A
        # Failed one still counts: between retries of a crash-looping Job it may be the only pod,
        # and a job that keeps dying before its next save is what CheckpointStale is for.
        if not uri or pod.deleting or pod.phase == "Succeeded" or not uri.lower().startswith(STORE_URI_PREFIXES):
            continue
        # "/.." (plain or percent-encoded) could climb out of an allowed file:// prefix.
        if allowed and (not uri.startswith(tuple(allowed)) or "/.." in uri or "%2e" in uri.lower()):
            state.selfmon.error(CheckpointSource.name, "config")
            continue
        job = pod.workload or pod.name
        name = f"{pod.namespace}/{job}"
        if name in out:
            continue
        layout = pod.annotations.get(LAYOUT_ANNOTATION, "auto").strip() or "auto"
        if layout not in _LAYOUTS:
            state.selfmon.error(CheckpointSource.name, "config")
            layout = "auto"
        spec = CheckpointStore(name=name, uri=uri, layout=layout)  # type: ignore[arg-type]
        out[name] = (spec, pod.namespace, job)
    return list(out.values())


class CheckpointSource(PeriodicSource):
    name = "checkpoints"

    def __init__(self, config: Config, state: AppState, clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, state, clock)
        self.cfg = config.checkpoints
        self.interval = self.cfg.interval
        self._stores: dict[str, _Store] = {}

    def enabled(self) -> bool:
        return bool(self.cfg.stores) or (
            self.config.kubernetes.enabled and self.cfg.discovery.enabled
        )

    def _current(self) -> dict[str, _Store]:
        wanted: dict[str, _Store] = {}
        for spec in self.cfg.stores:
            wanted[spec.name] = _Store(
                spec, spec.labels.get("namespace", ""), spec.labels.get("job", spec.name), False
            )
        if self.config.kubernetes.enabled and self.cfg.discovery.enabled:
            for spec, ns, job in discovered_stores(self.state, self.cfg.discovery.uri_prefixes):
                # A configured store of the same name wins: config is the override.
                wanted.setdefault(spec.name, _Store(spec, ns, job, True))
        # A shard lists the stores it owns, by name.
        topology = self.config.topology
        wanted = {name: st for name, st in wanted.items() if topology.owns(name)}
        # Keep open clients (connection pools) for stores whose URI and options did not change.
        for name, st in wanted.items():
            old = self._stores.get(name)
            if old is not None and old.tree_key == (st.spec.uri, tuple(sorted(st.spec.options.items()))):
                st.tree, st.tree_key = old.tree, old.tree_key
        return wanted

    async def run_once(self) -> None:
        self._stores = self._current()
        names = set(self._stores)
        for gone in [n for n in self.state.checkpoints if n not in names]:
            del self.state.checkpoints[gone]
        self.state.selfmon.forget_targets(self.name, names)
        sem = asyncio.Semaphore(self.cfg.max_concurrency)

        async def guarded(st: _Store) -> None:
            async with sem:
                await self.scan_store(st)

        await asyncio.gather(*(guarded(st) for st in self._stores.values()))

    async def scan_store(self, st: _Store) -> None:
        spec = st.spec
        obs = self.state.checkpoints.get(spec.name)
        if obs is None or obs.uri != spec.uri:
            obs = StoreObservation(
                spec.name, spec.uri, st.namespace, st.job, spec.layout, spec.expected_interval,
                discovered=st.discovered,
            )
        obs.namespace, obs.job, obs.layout = st.namespace, st.job, spec.layout
        obs.expected_interval = spec.expected_interval
        self.state.checkpoints[spec.name] = obs
        try:
            async with asyncio.timeout(self.cfg.timeout):
                if st.tree is None:
                    # Secrets are read when the client is built: at start, when the store's
                    # config changes, and after a failed scan (below).
                    st.tree = open_tree(spec.uri, spec.resolved_options(), self.cfg.timeout)
                    st.tree_key = (spec.uri, tuple(sorted(spec.options.items())))
                listing = await scan(st.tree, self.cfg.max_objects, self.cfg.page_size)
        except (TimeoutError, asyncio.TimeoutError):
            self._failed(obs, "timeout", f"listing did not finish within {self.cfg.timeout:g}s")
            return
        except ScanError as exc:
            self._failed(obs, exc.reason, str(exc))
            if exc.reason != "timeout" and spec.has_secrets():
                # A rotated key (403 with the old one) is read again by the next scan's client,
                # without waiting for a reload.  Not after a timeout: LocalTree's guard against
                # stacking walks on a hung mount lives in the tree.
                st.tree = None
            return
        except ConfigError as exc:  # a secret's variable or file is missing
            self._failed(obs, "config", str(exc))
            return
        except Exception:  # one store's surprise must not stop the others
            log.exception("checkpoints: store %s: scan failed", spec.name)
            self._failed(obs, "exception", "")
            return
        if obs.up is False:
            log.info("checkpoints: store %s: listing again (%d objects)", spec.name, len(listing))
        now = self.clock()
        args = (listing, now, obs.verdict, spec.layout)
        if len(listing) > 2000:
            # ~10 µs per object: a 100k-object store would hold the loop (and /metrics) for a
            # second.  detect is pure and the listing private, so a thread is safe.
            obs.verdict = await asyncio.to_thread(detect, *args, scheme=scheme_of(spec.uri))
        else:
            obs.verdict = detect(*args, scheme=scheme_of(spec.uri))
        obs.scanned_at = now
        obs.objects = len(listing)
        if obs.objects:
            obs.empty_since = None
        elif obs.empty_since is None:
            obs.empty_since = now
        obs.up = True
        obs.last_error = ""
        self.state.selfmon.target_up(self.name, spec.name, True)

    def _failed(self, obs: StoreObservation, reason: str, detail: str) -> None:
        # Once per change of state: a store down for a day at a 60s interval must not write
        # 1,440 identical warnings; the error counter keeps counting every failure.
        if obs.up is not False or obs.last_error != reason:
            log.warning("checkpoints: store %s (%s): %s: %s", obs.name, display_target(obs.uri),
                        reason, detail[:600])
        else:
            log.debug("checkpoints: store %s: still failing: %s: %.600s", obs.name, reason, detail)
        obs.up = False
        obs.last_error = reason
        self.state.selfmon.target_up(self.name, obs.name, False)
        self.state.selfmon.error(self.name, reason)

    def targets(self) -> list[TargetStatus]:
        return [
            TargetStatus(self.name, obs.name, obs.up, obs.scanned_at, obs.last_error)
            for obs in self.state.checkpoints.values()
        ]

    async def close(self) -> None:
        # obstore clients hold no open sockets we must close explicitly; drop them.
        for st in self._stores.values():
            st.tree = None
