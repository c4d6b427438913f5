"""Wires sources, the refresh loop and the cached exposition together.

Sources run as guarded background tasks (an exception is logged and the source restarts after a
backoff).  A refresh derives every signal from state and renders the bytes once; scrapes serve
those bytes and never trigger I/O or recomputation.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import logging
import time
from typing import Callable, Iterator
from dataclasses import dataclass, field

from .areas import AREAS, Area
from .config import Config, ConfigError, load_config
from .expo.families import Family, render
from .sources.base import Source, TargetStatus
from .state import AppState
from .topology import keep_owned

log = logging.getLogger(__name__)

# How long the first refresh waits for the initial Kubernetes list before marking the exporter
# ready anyway (a slow API server must not keep every other signal from being served).
KUBE_SYNC_GRACE_SECONDS = 30.0
# Backoff of a source task that crashed, doubling up to the maximum.
SOURCE_RESTART_MIN = 1.0
SOURCE_RESTART_MAX = 60.0


@dataclass
class Exposition:
    """The rendered /metrics body of one refresh, and its gzip form made on first request."""

    body: bytes = b""
    rendered_at: float = 0.0
    _gzipped: bytes | None = field(default=None, repr=False)

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=5)
        return self._gzipped


# Young collections every 20,000 allocations instead of 700: a refresh or an initial 20,000-pod
# list allocates millions of short-lived objects that reference counting frees anyway.
GC_THRESHOLDS = (20_000, 20, 100)


def settle_memory() -> None:
    """Move everything alive now (config, the initial kube list: 20,000 pods are ~100,000
    containers) out of the garbage collector's reach.  Full collections otherwise traverse that
    state again and again: a fifth of a refresh cycle's CPU at 1,000 nodes.  Frozen objects are
    still freed by reference counting when a re-list replaces them; cyclic garbage is collected
    first so that none of it is frozen for good.

    The thresholds then make young collections rarer and full ones much rarer: a refresh cycle
    allocates millions of short-lived objects at 1,000 nodes (labels, samples, snapshots), freed
    by reference counting anyway; measured GC time per cycle 0.17 -> 0.04 s at 1,000 nodes and
    1.5 -> 0.4 s at 5,000 (docs/performance.md), RSS unchanged."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def apply_cardinality_limit(families: list[Family], limit: int) -> tuple[list[Family], int]:
    """Keep at most `limit` samples across `families` (one area's output); return the number
    dropped.  Series beyond the limit are dropped whole-sample, in output order, so the output
    stays valid and bounded even when a cluster explodes in pods."""
    kept, dropped, remaining = [], 0, limit
    for fam in families:
        n = len(fam.samples)
        if n <= remaining:
            kept.append(fam)
            remaining -= n
            continue
        dropped += n - remaining
        if remaining > 0:
            kept.append(Family(fam.name, fam.type, fam.help, fam.labelnames, fam.samples[:remaining]))
        remaining = 0
    return kept, dropped


class Exporter:
    def __init__(self, config: Config, config_path: str | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.state = AppState()
        self.state.selfmon.config_reload_ts = time.time()
        self.sources: list[Source] = []
        self._area_of: dict[int, Area] = {}  # id(source) -> its area
        self._ownership = {area.name: area.ownership() for area in AREAS}
        self._tasks: list[asyncio.Task] = []
        self._refresh_task: asyncio.Task | None = None
        self.exposition = Exposition()
        self.ready = False
        self.started_at = time.time()
        self._reload_lock = asyncio.Lock()
        self._stopping = False
        self.refresh_count = 0
        self.last_derive_seconds = 0.0
        self.last_render_seconds = 0.0
        # Called with each new exposition once gzipped, and when readiness changes: the web
        # process (webproc.py) gets its bytes from here.
        self.exposition_listeners: list[Callable[[Exposition], None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        # Before the initial kube list: the collector was ~40 % of its CPU with the defaults.
        gc.set_threshold(*GC_THRESHOLDS)
        self._start_sources()
        self.refresh()  # serve self-metrics from the first second
        self._refresh_task = asyncio.create_task(self._refresh_loop(), name="refresh")

    async def stop(self) -> None:
        self._stopping = True
        if self._refresh_task:
            self._refresh_task.cancel()
            await asyncio.gather(self._refresh_task, return_exceptions=True)
        # After a reload in flight: it would otherwise start new sources once we are done.
        async with self._reload_lock:
            await self._stop_sources()

    def _start_sources(self) -> None:
        self.sources, self._area_of = [], {}
        for area in AREAS:
            for cls in area.sources:
                src = cls(self.config, self.state)
                self.sources.append(src)
                self._area_of[id(src)] = area
        for src in self.sources:
            if self.source_enabled(src):
                self._tasks.append(asyncio.create_task(self._guard(src), name=f"source:{src.name}"))

    def source_enabled(self, src: Source) -> bool:
        """Configured, and work of this instance's role (docs/deploy.md, topology.py)."""
        area = self._area_of.get(id(src))  # None: a source handed in from outside (tests)
        return (area is None or area.sources_run_on(self.config.topology)) and src.enabled()

    async def _stop_sources(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for src in self.sources:
            try:
                await src.close()
            except Exception:  # closing must not stop the others from closing
                log.exception("closing source %s failed", src.name)
        self.sources = []

    async def _guard(self, src: Source) -> None:
        delay = SOURCE_RESTART_MIN
        while True:
            started = time.monotonic()
            try:
                await src.run()
                log.warning("source %s returned; restarting", src.name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("source %s crashed; restarting in %.0fs", src.name, delay)
                self.state.selfmon.error(src.name, "exception")
            if time.monotonic() - started > SOURCE_RESTART_MAX:
                delay = SOURCE_RESTART_MIN  # it ran fine for a while: not a crash loop
            await asyncio.sleep(delay)
            delay = min(delay * 2, SOURCE_RESTART_MAX)

    # -- refresh ---------------------------------------------------------------------------

    def refresh(self, now: float | None = None) -> Exposition:
        """Derive every area and render, in one synchronous step (tests, first render)."""
        for _ in self._refresh_steps(now):
            pass
        return self.exposition

    async def refresh_cooperatively(self, now: float | None = None) -> Exposition:
        """The same refresh, handing the event loop back between areas: a scrape arriving
        mid-refresh waits for one area's derive, not for the whole refresh (~0.2 s of CPU at
        1,000 nodes)."""
        for _ in self._refresh_steps(now):
            await asyncio.sleep(0)
        return self.exposition

    def _refresh_steps(self, now: float | None) -> Iterator[None]:
        now = time.time() if now is None else now
        started = time.perf_counter()
        limit = self.config.global_.max_series_per_source
        topology = self.config.topology
        families: list[Family] = []
        for area in AREAS:
            if area.derive is None or not area.runs_on(topology):
                continue
            try:
                # One owner per series: only this instance's role and shard (topology.py).
                out = keep_owned(area.derive(self.state, self.config, now), self._ownership[area.name], topology)
            except Exception:  # one area's bug must not blank the whole page
                log.exception("deriving %s signals failed", area.name)
                self.state.selfmon.error(area.name, "exception")
                continue
            # The exporter's own health (target_up, these drop counters) is never capped
            # (capped=False): a guard that hid its own drops would blind the operator exactly
            # when it acts.
            if area.capped:
                out, dropped = apply_cardinality_limit(out, limit)
                if dropped:
                    self.state.selfmon.dropped(area.name, dropped)
            families.extend(out)
            yield
        derived = time.perf_counter()
        self.exposition = Exposition(body=render(families), rendered_at=now)
        # Kept for the scale benchmark and debugging: where a refresh spends its time.
        self.last_derive_seconds = derived - started
        self.last_render_seconds = time.perf_counter() - derived
        self.refresh_count += 1

    def _kube_synced(self) -> bool:
        k = self.state.kube
        return (not self.config.kubernetes.enabled) or (k.pods_synced and k.nodes_synced)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.global_.refresh_interval)
            try:
                expo = await self.refresh_cooperatively()
            except Exception:
                log.exception("refresh failed")
                self.state.selfmon.error("refresh", "exception")
                continue
            # Compress now, off the event loop (zlib releases the GIL): done in the first gzip
            # scrape it would stall every other request for ~40 ms at 1,000 nodes.
            await asyncio.to_thread(expo.gzipped)
            if not self.ready and (
                self._kube_synced() or time.time() - self.started_at > KUBE_SYNC_GRACE_SECONDS
            ):
                self.ready = True
                settle_memory()
            for listener in self.exposition_listeners:
                listener(expo)

    # -- reload ----------------------------------------------------------------------------

    async def reload(self) -> tuple[bool, str]:
        """Reload the config file.  A bad file keeps the running config and sources."""
        if not self.config_path:
            return False, "no config file to reload (started without --config.file)"
        async with self._reload_lock:
            try:
                new = load_config(self.config_path)
            except ConfigError as exc:
                self.state.selfmon.config_reload_ok = False
                self.state.selfmon.error("config", "config")
                log.error("config reload failed, keeping the running config: %s", exc)
                return False, str(exc)
            if self._stopping:
                return False, "shutting down"
            self.state.selfmon.config_reload_ok = True
            self.state.selfmon.config_reload_ts = time.time()
            if new == self.config:
                return True, "config unchanged"
            await self._stop_sources()
            if self._stopping:  # shutdown began while the old sources stopped
                return False, "shutting down"
            self.config = new
            self._start_sources()
            self._forget_disabled_sources()
            log.info("config reloaded from %s", self.config_path)
            return True, "config reloaded"

    def _forget_disabled_sources(self) -> None:
        """A source the new config disables never runs again, so it cannot forget its own
        targets: left in place, a last target_up 0 or a frozen last-success timestamp would keep
        AiSignalsTargetDown / AiSignalsSourceStale firing for a source that no longer exists.
        The same holds for its last observations: signals are derived from state, so a removed
        checkpoint store's age would keep growing (and paging) with nobody listing it."""
        mon = self.state.selfmon
        for src in self.sources:
            if not self.source_enabled(src):
                mon.forget_targets(src.name, set())
                mon.sources.pop(src.name, None)
                area = self._area_of[id(src)]
                for slot in area.slots:
                    self.state.reset(slot)
                if area.forget is not None:
                    area.forget(self.state)

    # -- landing page ----------------------------------------------------------------------

    def target_statuses(self) -> list[TargetStatus]:
        out: list[TargetStatus] = []
        for src in self.sources:
            if self.source_enabled(src):
                try:
                    out.extend(src.targets())
                except Exception:
                    log.exception("listing targets of %s failed", src.name)
        return out
