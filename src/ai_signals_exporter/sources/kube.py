"""Kubernetes source: list-then-watch pods and nodes into `state.kube`.

One guarded loop per resource, the way client-go's reflector does it: list (paginated) and
replace the whole set, remember the list's resourceVersion, then watch from it with bookmarks,
tracking the resourceVersion of every event.  A watch that ends (server timeout) resumes from the
last resourceVersion; a broken connection resumes after an exponential backoff with jitter; a
410 Gone (the version fell out of the apiserver's window) is routine and triggers a quiet re-list.
Objects deleted while we were away vanish on that re-list because the set is replaced, not merged.

Pods are read as raw JSON (`_preload_content=False` + orjson) and trimmed on ingest
(`kube_objects`), never built into typed client models: at 20,000 pods that is the difference
between seconds and milliseconds of CPU per re-list.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import aiohttp
import orjson

from ..config import Config
from ..state import AppState
from .base import Source, TargetStatus
from .kube_objects import node_from_json, pod_from_json

log = logging.getLogger(__name__)

RESOURCES = ("pods", "nodes")
PAGE_SIZE = 500
BACKOFF_BASE = 0.25  # seconds; doubles per consecutive failure up to kubernetes.backoff_max
SHORT_WATCH = 1.0  # seconds; a watch that ends sooner with no events counts as failed
EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


class _Gone(Exception):
    """HTTP 410 / ERROR event with code 410: our resourceVersion is expired, re-list."""


class _Failure(Exception):
    """A list or watch that failed; `reason` is one of selfmon.REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class _Sync:
    """Per-resource list/watch bookkeeping."""

    resource: str
    call: Callable[..., Awaitable[Any]]  # CoreV1Api.list_*; returns an aiohttp response
    field_selector: str | None
    rv: str | None = None
    failures: int = 0
    gone_streak: int = 0  # consecutive 410s without a watch event in between


def backoff_delay(failures: int, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, never above `cap`."""
    base = min(cap, BACKOFF_BASE * (2 ** min(failures, 30)))
    r = (rng or random).random()
    return base / 2 + base / 2 * r


class KubeSource(Source):
    name = "kube"

    def __init__(self, config: Config, state: AppState) -> None:
        super().__init__(config, state)
        kc = config.kubernetes
        self._kc = kc
        self._namespaces = frozenset(kc.namespaces)
        self._api: Any = None  # kubernetes_asyncio ApiClient, created in run()
        self._syncs: dict[str, _Sync] = {}
        self._last_list_duration = 0.0
        self._statuses = {r: TargetStatus("kube", r, None) for r in RESOURCES}

    def enabled(self) -> bool:
        return self._kc.enabled

    def resource_version(self, resource: str) -> str | None:
        """The resourceVersion the next watch of `resource` starts from (None: will re-list)."""
        s = self._syncs.get(resource)
        return s.rv if s is not None else None

    def targets(self) -> list[TargetStatus]:
        return [self._statuses[r] for r in RESOURCES]

    async def close(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            await api.close()

    # ---- setup -----------------------------------------------------------------------------

    async def _new_client(self) -> Any:
        from kubernetes_asyncio import client, config as kconfig
        from kubernetes_asyncio.config.config_exception import ConfigException

        if self._kc.kubeconfig:
            return await kconfig.new_client_from_config(config_file=self._kc.kubeconfig)
        cfg = client.Configuration()
        try:
            kconfig.load_incluster_config(client_configuration=cfg)
        except ConfigException:
            # Not in a pod: the default kubeconfig ($KUBECONFIG or ~/.kube/config), for dev use.
            await kconfig.load_kube_config(client_configuration=cfg)
        return client.ApiClient(configuration=cfg)

    async def _connect(self) -> Any:
        """Load the client configuration, retrying with backoff (a missing token file or
        kubeconfig may appear later)."""
        failures = 0
        while True:
            try:
                return await self._new_client()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("kube: cannot load client configuration: %s", exc)
                self.state.selfmon.error(self.name, "config")
                self.state.selfmon.source_run(self.name, self._last_list_duration, False, time.time())
                for r in RESOURCES:
                    self._mark(r, False, "config")
                await asyncio.sleep(backoff_delay(failures, self._kc.backoff_max))
                failures += 1

    def _make_syncs(self, api_client: Any) -> dict[str, _Sync]:
        from kubernetes_asyncio import client

        core = client.CoreV1Api(api_client)
        node = self._kc.node_scope
        list_pods: Callable[..., Awaitable[Any]] = core.list_pod_for_all_namespaces
        if len(self._namespaces) == 1:
            # One namespace: list it directly, so a namespaced Role is enough.  Several are
            # filtered on ingest from the cluster-wide list.
            list_pods = functools.partial(core.list_namespaced_pod, next(iter(self._namespaces)))
        return {
            "pods": _Sync("pods", list_pods, f"spec.nodeName={node}" if node else None),
            "nodes": _Sync("nodes", core.list_node, f"metadata.name={node}" if node else None),
        }

    # ---- main loop -------------------------------------------------------------------------

    async def run(self) -> None:
        self._api = await self._connect()
        self._syncs = self._make_syncs(self._api)
        tasks = [
            asyncio.create_task(self._sync_forever(s), name=f"kube-{s.resource}")
            for s in self._syncs.values()
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _sync_forever(self, s: _Sync) -> None:
        """List, then watch; never returns, never raises (except cancellation)."""
        while True:
            phase = "list" if s.rv is None else "watch"
            try:
                if s.rv is None:
                    await self._list(s)
                    phase = "watch"
                await self._watch(s)
            except asyncio.CancelledError:
                raise
            except _Gone:
                # Routine: the apiserver compacted past our version.  Re-list right away, unless
                # the list itself just came back 410, which means something is off: back off.
                log.info("kube: %s resourceVersion %s expired (410); re-listing", s.resource, s.rv)
                self.state.selfmon.error(self.name, "gone")
                s.rv = None
                s.gone_streak += 1
                if phase == "list":
                    await self._fail(s, "list", "list", "410 during list")
                elif s.gone_streak > 1:
                    # 410 again straight after a fresh list: do not spin list/410/list.
                    await asyncio.sleep(backoff_delay(s.gone_streak - 2, self._kc.backoff_max))
                continue
            except _Failure as exc:
                await self._fail(s, phase, exc.reason, str(exc))
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                await self._fail(s, phase, phase, f"{type(exc).__name__}: {exc}")
            except Exception:  # a bug: log it, count it, keep going
                log.exception("kube: %s %s failed unexpectedly", s.resource, phase)
                await self._fail(s, phase, "exception", "exception")

    async def _fail(self, s: _Sync, phase: str, reason: str, detail: str) -> None:
        """Count a failed list/watch (`reason` from selfmon.REASONS), mark the target down and
        sleep the backoff.  A failed list starts over; a failed watch resumes from s.rv."""
        self.state.selfmon.error(self.name, reason)
        # A failed run: keeps last-success as it was, or exports 0 ("never") from the first one.
        self.state.selfmon.source_run(self.name, self._last_list_duration, False, time.time())
        if phase == "list":
            self.state.selfmon.kube_list(s.resource, "error")
            s.rv = None
        self._mark(s.resource, False, reason)
        delay = backoff_delay(s.failures, self._kc.backoff_max)
        s.failures += 1
        log.log(
            logging.WARNING if s.failures > 1 else logging.INFO,
            "kube: %s %s failed (%s); retrying in %.2fs", s.resource, reason, detail, delay,
        )
        await asyncio.sleep(delay)

    def _mark(self, resource: str, up: bool, reason: str = "") -> None:
        st = self._statuses[resource]
        st.up = up
        if up:
            st.last_success = time.time()
            st.last_error = ""
        else:
            st.last_error = reason
        self.state.selfmon.target_up(self.name, resource, up)

    def _healthy(self, resource: str) -> None:
        self._mark(resource, True)
        self.state.selfmon.source_run(self.name, self._last_list_duration, True, time.time())

    # ---- list ------------------------------------------------------------------------------

    async def _list(self, s: _Sync) -> None:
        started = time.monotonic()
        # Trimmed page by page: the raw JSON of one page (PAGE_SIZE objects) is alive at a time,
        # never that of the whole 20,000-pod list.
        trim = self._trim_pods if s.resource == "pods" else self._trim_nodes
        kept: dict[str, Any] = {}
        count = 0
        token: str | None = None
        rv: str | None = None
        while True:
            resp = await s.call(
                limit=PAGE_SIZE,
                _continue=token,
                field_selector=s.field_selector,
                _preload_content=False,
                _request_timeout=self._kc.request_timeout,
            )
            try:
                if resp.status == 410:
                    raise _Gone()
                if resp.status != 200:
                    raise _Failure("list", f"HTTP {resp.status}")
                body = await resp.read()
            finally:
                resp.release()
            try:
                doc = orjson.loads(body)
                items = doc.get("items") or ()
                meta = doc.get("metadata") or {}
            except (orjson.JSONDecodeError, AttributeError, TypeError) as exc:
                raise _Failure("decode", f"list body: {exc}") from None
            del body, doc
            count += len(items)
            trim(items, kept)
            del items
            token = meta.get("continue") or None
            if token is None:
                rv = meta.get("resourceVersion")
                break
        if s.resource == "pods":
            self._replace_pods(kept)
        else:
            self._replace_nodes(kept)
        s.rv = rv
        s.failures = 0
        self._last_list_duration = time.monotonic() - started
        self.state.selfmon.kube_list(s.resource, "success")
        self._healthy(s.resource)
        log.debug("kube: listed %d %s at resourceVersion %s", count, s.resource, rv)

    # ---- watch -----------------------------------------------------------------------------

    async def _watch(self, s: _Sync) -> None:
        """One watch call from `s.rv` until the server ends it; `s.rv` follows every event."""
        kc = self._kc
        started = time.monotonic()
        resp = await s.call(
            watch=True,
            resource_version=s.rv,
            allow_watch_bookmarks=True,
            timeout_seconds=max(1, round(kc.watch_timeout)),
            field_selector=s.field_selector,
            _preload_content=False,
            # The server ends the watch after timeoutSeconds; the client-side total only catches
            # a server that stops talking without closing the connection.
            _request_timeout=aiohttp.ClientTimeout(
                total=kc.watch_timeout + kc.request_timeout, sock_connect=kc.request_timeout
            ),
        )
        try:
            if resp.status == 410:
                raise _Gone()
            if resp.status != 200:
                raise _Failure("watch", f"HTTP {resp.status}")
            s.failures = 0
            self._healthy(s.resource)
            apply, remove = (
                (self._apply_pod, self._remove_pod) if s.resource == "pods"
                else (self._apply_node, self._remove_node)
            )
            selfmon = self.state.selfmon
            events = 0
            while True:
                line = await resp.content.readline()
                if not line:
                    if not events and time.monotonic() - started < SHORT_WATCH:
                        # A server that ends watches at once would make us spin (client-go's
                        # "very short watch" check): treat it as a failure, with backoff.
                        raise _Failure("watch", "watch ended immediately without events")
                    self._healthy(s.resource)
                    return  # timeoutSeconds reached: the caller re-watches from s.rv
                if line.isspace():
                    continue
                try:
                    ev = orjson.loads(line)
                    etype = ev["type"]
                    obj = ev["object"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    selfmon.error(self.name, "decode")
                    continue
                events += 1
                selfmon.kube_event(s.resource, etype if etype in EVENT_TYPES else "other")
                if etype == "ERROR":
                    code = obj.get("code") if isinstance(obj, dict) else None
                    if code == 410:
                        raise _Gone()
                    raise _Failure("watch", f"ERROR event code {code}")
                s.gone_streak = 0
                meta = obj.get("metadata") if isinstance(obj, dict) else None
                new_rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
                if etype == "ADDED" or etype == "MODIFIED":
                    apply(obj)
                elif etype == "DELETED":
                    remove(obj)
                elif etype == "BOOKMARK":
                    self._healthy(s.resource)
                else:
                    log.warning("kube: ignoring unknown watch event type %r", etype)
                    continue
                if new_rv:
                    s.rv = new_rv
        finally:
            resp.close()

    # ---- ingest ----------------------------------------------------------------------------

    def _wanted_ns(self, obj: dict[str, Any]) -> bool:
        if not self._namespaces:
            return True
        return (obj.get("metadata") or {}).get("namespace") in self._namespaces

    def _trim_pods(self, items: Any, pods: dict[str, Any]) -> None:
        for obj in items:
            if not self._wanted_ns(obj):
                continue
            try:
                info = pod_from_json(obj)
            except (KeyError, TypeError, AttributeError, ValueError):
                self.state.selfmon.error(self.name, "decode")
                continue
            pods[info.uid] = info

    def _trim_nodes(self, items: Any, nodes: dict[str, Any]) -> None:
        for obj in items:
            try:
                info = node_from_json(obj)
            except (KeyError, TypeError, AttributeError, ValueError):
                self.state.selfmon.error(self.name, "decode")
                continue
            nodes[info.name] = info

    def _replace_pods(self, pods: dict[str, Any]) -> None:
        kube = self.state.kube
        kube.pods = pods  # one assignment: readers never see a half-built set
        kube.pods_synced = True
        kube.touch()

    def _replace_nodes(self, nodes: dict[str, Any]) -> None:
        kube = self.state.kube
        kube.nodes = nodes
        kube.nodes_synced = True
        kube.touch()

    def _apply_pod(self, obj: dict[str, Any]) -> None:
        if not self._wanted_ns(obj):
            return
        try:
            info = pod_from_json(obj)
        except (KeyError, TypeError, AttributeError, ValueError):
            self.state.selfmon.error(self.name, "decode")
            return
        self.state.kube.pods[info.uid] = info
        self.state.kube.touch()

    def _remove_pod(self, obj: dict[str, Any]) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        if uid is not None and self.state.kube.pods.pop(uid, None) is not None:
            self.state.kube.touch()

    def _apply_node(self, obj: dict[str, Any]) -> None:
        try:
            info = node_from_json(obj)
        except (KeyError, TypeError, AttributeError, ValueError):
            self.state.selfmon.error(self.name, "decode")
            return
        self.state.kube.nodes[info.name] = info
        self.state.kube.touch()

    def _remove_node(self, obj: dict[str, Any]) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if name is not None and self.state.kube.nodes.pop(name, None) is not None:
            self.state.kube.touch()
