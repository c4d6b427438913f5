"""Serving scrape source: fetches inference servers' /metrics and records engine snapshots.

Targets come from static config and, when the Kubernetes source is running, from pods in
`state.kube` that match `serving.discovery.label_selector` or carry the annotation
`ai-signals.io/scrape: "true"`.  Discovery reads memory only: no API calls per scrape.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from .. import engines
from ..engines.base import UnknownEngine
from ..expo.parse import NotExposition
from ..serving.coldstart import COLDSTART, loading, note_tokens, track
from ..serving.selection import ServingSelection, annotation_number
from ..serving.history import CAPACITY_ANNOTATION, TargetHistory, TargetIdentity, keep_seconds
from ..state import PodInfo
from .base import PeriodicSource, TargetStatus
from .http import FetchError, fetch_bounded, new_session

log = logging.getLogger(__name__)

ANN_PORT = "ai-signals.io/port"
ANN_PATH = "ai-signals.io/path"
ANN_ENGINE = "ai-signals.io/engine"
ANN_MODEL = "ai-signals.io/model"
_ENGINES = frozenset({"auto", *engines.ENGINES})


@dataclass
class Target:
    url: str
    engine: str
    identity: TargetIdentity


def _address(url: str) -> str:
    """host:port of a URL, never its user-info (a label must not carry a password)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


def _query_model(url: str) -> str:
    """The model a llama.cpp router serves at ``/metrics?model=<id>`` (one target per model)."""
    values = parse_qs(urlsplit(url).query).get("model")
    return values[0] if values else ""


SERVING_PORT_NAMES = ("metrics", "http")


def target_for_pod(pod: PodInfo, default_port: int, default_path: str) -> Target | None:
    """The scrape target of a discovered pod, or None when it cannot be scraped (no IP yet)."""
    # A loading engine answers nothing yet: scraping it would only report a target down for as
    # long as its weights take to load (minutes), while ai_serving_replicas counts it starting.
    if pod.phase != "Running" or not pod.ip or pod.deleting or loading(pod):
        return None
    ann = pod.annotations
    # The annotation, else the container port named `metrics` or `http`, else the default.
    fallback = pod.named_port(SERVING_PORT_NAMES, default_port)
    try:
        port = int(ann.get(ANN_PORT, fallback))
    except ValueError:
        port = fallback
    if not 0 < port < 65536:
        port = fallback
    path = ann.get(ANN_PATH, default_path)
    if not path.startswith("/"):
        path = "/" + path
    engine = ann.get(ANN_ENGINE, "auto")
    if engine not in _ENGINES:
        engine = "auto"
    host = f"[{pod.ip}]" if ":" in pod.ip else pod.ip
    url = f"http://{host}:{port}{path}"
    return Target(
        url=url,
        engine=engine,
        identity=TargetIdentity(
            namespace=pod.namespace,
            pod=pod.name,
            workload_kind=pod.workload_kind,
            workload=pod.workload,
            model=ann.get(ANN_MODEL) or _query_model(url),
            capacity_tokens_per_second=annotation_number(ann.get(CAPACITY_ANNOTATION)),
        ),
    )


class ServingSource(PeriodicSource):
    name = "serving"
    per_target = True

    def __init__(self, config, state, clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, state, clock)
        self.cfg = config.serving
        self.interval = self.cfg.interval
        self._session = None
        self._sem = asyncio.Semaphore(self.cfg.max_concurrency)
        self._last_error: dict[str, str] = {}
        self._selection = ServingSelection(self.cfg.discovery)
        self._discovered: list[Target] = []
        self._selected: list[PodInfo] = []  # the pods discovery selects, scrapeable or not
        self._discovered_gen = -1
        # What the cold-start tracker last ran over (track_cold_starts).
        self._tracked: tuple[int, int] | None = None
        self._tracked_at = float("-inf")
        self._first_token_moved = False

    def enabled(self) -> bool:
        return bool(self.cfg.targets) or (
            self.config.kubernetes.enabled and self.cfg.discovery.enabled
        )

    def static_targets(self) -> list[Target]:
        out = []
        topology = self.config.topology
        for t in self.cfg.targets:
            if not topology.owns(t.url):
                continue
            lab = t.labels
            out.append(
                Target(
                    url=t.url,
                    engine=t.engine,
                    identity=TargetIdentity(
                        namespace=lab.get("namespace", ""),
                        # Unlabelled targets would all render the same series (Prometheus
                        # keeps one of duplicates): the address names the server instead.
                        pod=lab.get("pod") or _address(t.url),
                        workload_kind=lab.get("workload_kind", ""),
                        workload=lab.get("workload", ""),
                        model=lab.get("model") or _query_model(t.url),
                        capacity_tokens_per_second=t.capacity_tokens_per_second,
                    ),
                )
            )
        return out

    def discovered_targets(self) -> list[Target]:
        kube = self.state.kube
        if not (self.config.kubernetes.enabled and self.cfg.discovery.enabled):
            return []
        if kube.generation == self._discovered_gen:
            return self._discovered
        found, selected = [], []
        topology = self.config.topology
        for pod in kube.pods.values():
            # A shard scrapes (and counts the cold starts of) the pods it owns, by UID.
            if not self._selection.pod(pod) or not topology.owns(pod.uid):
                continue
            selected.append(pod)
            t = target_for_pod(pod, self.cfg.discovery.default_port, self.cfg.discovery.default_path)
            if t is not None:
                found.append(t)
        self._discovered, self._selected, self._discovered_gen = found, selected, kube.generation
        return found

    def current_targets(self) -> dict[str, Target]:
        targets = {t.url: t for t in self.discovered_targets()}
        targets.update({t.url: t for t in self.static_targets()})  # static config wins
        return targets

    def target_keys(self) -> list[str]:
        keys = list(self.current_targets())
        # Polled every second by the per-target loop: the tracker also sees pods that start
        # while nothing is due for a scrape (the first pod of a new workload), so their
        # histograms exist at zero before the first observation.
        self.track_cold_starts()
        return keys

    async def run_once(self) -> None:
        await self.scrape(self.target_keys())

    async def scrape(self, keys: list[str]) -> None:
        if self._session is None:
            self._session = new_session(self.cfg.max_concurrency)
        targets = self.current_targets()
        # Forget targets that went away (pod deleted) so their series disappear.
        for url in [u for u in self.state.serving if u not in targets]:
            del self.state.serving[url]
            self._last_error.pop(url, None)
        self.state.selfmon.forget_targets(self.name, set(targets))
        await asyncio.gather(*(self._scrape(targets[k]) for k in keys if k in targets))
        # After the scrapes, so a first token counted by this round is seen by the tracker now.
        self.track_cold_starts()

    def track_cold_starts(self) -> None:
        """Advance the cold-start tracker (memory only) over the selected pods.

        Called on every wake of the per-target loop (about targets/interval times a second, as
        each target comes due at its own offset), but it only has something new to see when the
        pods changed (kube generation) or a scrape counted a pod's first token: otherwise one
        pass a poll keeps `last_seen` current, instead of a scan of every selected pod per wake."""
        kube = self.state.kube
        if not kube.pods_synced:
            return
        now = self.clock()
        seen = (id(kube), kube.generation)
        if seen == self._tracked and not self._first_token_moved and now - self._tracked_at < self.DISCOVERY_POLL:
            return
        self._tracked, self._tracked_at, self._first_token_moved = seen, now, False
        self.discovered_targets()  # refreshes the selected pods if the kube store changed
        track(self.state[COLDSTART], self._selected, self._selection, self.state.serving.values(), now)

    async def _scrape(self, target: Target) -> None:
        async with self._sem:
            # Stamp the sample when the request starts, as Prometheus does: the server renders
            # its counters on arrival, and the start time does not drift with transfer time.
            ts = self.clock()
            try:
                body = await fetch_bounded(
                    self._session, target.url, self.cfg.timeout, self.cfg.max_response_bytes
                )
                engine, snapshot = engines.extract(body, target.engine)
            except FetchError as exc:
                # The detail is shown only where it is the target's own words (a content type),
                # never a connection error's text.
                self._fail(target, exc.reason, exc.detail if exc.reason == "not_metrics" else "")
                return
            except NotExposition as exc:
                # Prometheus fails such a scrape too: down, with the line that gave it away.
                log.debug("serving: %s is not exposition format (%s); first bad line: %s",
                          target.url, exc.reason, exc.line)  # fmt: skip
                self._fail(target, exc.reason, exc.line)
                return
            except UnknownEngine:
                self._fail(target, "no_engine")
                return
            except Exception:  # a parser bug must not take the other targets down
                log.exception("serving: extracting %s failed", target.url)
                self._fail(target, "parse")
                return
        history = self.state.serving.get(target.url)
        # A recycled pod IP: another pod at the same URL is another server, not a restart.
        if (
            history is None
            or history.engine != engine
            or (history.identity.namespace, history.identity.pod)
            != (target.identity.namespace, target.identity.pod)
        ):
            history = TargetHistory(
                url=target.url, identity=target.identity, engine=engine,
            )
            self.state.serving[target.url] = history
        history.identity = target.identity  # pod relabelled / capacity annotation changed
        # Which token counters served this scrape (an SGLang with per-iteration counters is not
        # bursty, an older one is): recorded here, from the engine mapping's winning candidate.
        history.bursty = any(s.bursty_tokens for s in snapshot.values())
        history.append(ts, snapshot, keep_seconds(self.cfg.window, self.cfg.interval))
        first_token = history.first_token_at
        note_tokens(history, ts, snapshot)
        self._first_token_moved |= history.first_token_at != first_token
        self._last_error.pop(target.url, None)
        self.state.selfmon.target_up(self.name, target.url, True)

    def _fail(self, target: Target, reason: str, detail: str = "") -> None:
        self._last_error[target.url] = f"{reason}: {detail}" if detail else reason
        self.state.selfmon.target_up(self.name, target.url, False)
        self.state.selfmon.error(self.name, reason)

    def targets(self) -> list[TargetStatus]:
        out = []
        for url in self.current_targets():
            hist = self.state.serving.get(url)
            up = self.state.selfmon.targets.get((self.name, url))
            out.append(
                TargetStatus(
                    source=self.name,
                    target=url,
                    up=up,
                    last_success=hist.last_success if hist else 0.0,
                    last_error=self._last_error.get(url, ""),
                )
            )
        return out

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
