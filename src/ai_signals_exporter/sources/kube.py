"""Kubernetes source: list-then-watch the configured resources into `state.kube`.

One reflector per resource, the way client-go's does it: list (paginated) and replace the whole
set, remember the list's resourceVersion, then watch from it with bookmarks, tracking the
resourceVersion of every event.  A watch that ends (server timeout) resumes from the last
resourceVersion; a broken connection resumes after an exponential backoff with jitter; a 410 Gone
(the version fell out of the apiserver's window) is routine and triggers a quiet re-list.
Objects deleted while we were away vanish on that re-list because the set is replaced, not merged.
A resource served by a CRD that is not installed (404) is "not installed": empty, synced, and
re-checked every CRD_RECHECK seconds, with one log line.

What each resource is (API call, selectors, store) lives in `kube_stores.RESOURCES`; which ones
are watched is `KubeSource(config, state, resources=...)`, by default pods and nodes only (the
RBAC the shipped ClusterRole grants).

Objects are read as raw JSON (`_preload_content=False` + orjson) and trimmed on ingest
(`kube_objects`), never built into typed client models: at 20,000 pods that is the difference
between seconds and milliseconds of CPU per re-list.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from typing import Any, Awaitable, Callable, Iterable

import aiohttp
import orjson

from ..config import Config, KubernetesConfig
from ..selfmon import SelfMon
from ..state import AppState
from .base import Source, TargetStatus
from .kube_stores import ResourceSpec, Store, Watch, make_store, normalize

log = logging.getLogger(__name__)

PAGE_SIZE = 500
BACKOFF_BASE = 0.25  # seconds; doubles per consecutive failure up to kubernetes.backoff_max
SHORT_WATCH = 1.0  # seconds; a watch that ends sooner with no events counts as failed
CRD_RECHECK = 300.0  # seconds between looks for a CRD that was not installed
EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


class _Gone(Exception):
    """HTTP 410 / ERROR event with code 410: our resourceVersion is expired, re-list."""


class _NotInstalled(Exception):
    """HTTP 404 for a CRD-served resource: the CRD is not installed."""


class _Failure(Exception):
    """A list or watch that failed; `reason` is one of selfmon.REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def backoff_delay(failures: int, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, never above `cap`."""
    base = min(cap, BACKOFF_BASE * (2 ** min(failures, 30)))
    r = (rng or random).random()
    return base / 2 + base / 2 * r


def list_call(api_client: Any, spec: ResourceSpec, namespace: str | None) -> Callable[..., Awaitable[Any]]:
    """The kubernetes_asyncio list function for `spec`, across all namespaces or in one."""
    from kubernetes_asyncio import client

    if spec.crd:
        custom = client.CustomObjectsApi(api_client)
        if namespace is not None:
            return functools.partial(custom.list_namespaced_custom_object, spec.group, spec.version,
                                     namespace, spec.resource)
        return functools.partial(custom.list_cluster_custom_object, spec.group, spec.version, spec.resource)
    api = getattr(client, spec.api)(api_client)
    if not spec.namespaced:
        return getattr(api, f"list_{spec.method}")
    if namespace is not None:
        return functools.partial(getattr(api, f"list_namespaced_{spec.method}"), namespace)
    return getattr(api, f"list_{spec.method}_for_all_namespaces")


class Reflector:
    """List-then-watch of one resource into its store, forever (see the module docstring).

    Reports through the owning source: `selfmon` counters per resource, `mark(resource, up,
    reason)` for its target, `healthy(resource)` after a good list/watch."""

    def __init__(self, source: "KubeSource", spec: ResourceSpec, store: Store,
                 call: Callable[..., Awaitable[Any]], field_selector: str | None,
                 label_selector: str | None) -> None:
        self.source = source
        self.spec = spec
        self.store = store
        self.resource = spec.resource
        self.call = call
        self.field_selector = field_selector
        self.label_selector = label_selector
        self.rv: str | None = None
        self.failures = 0
        self.gone_streak = 0  # consecutive 410s without a watch event in between
        self._announced_absent = False

    @property
    def _kc(self) -> KubernetesConfig:
        return self.source.kc

    @property
    def _selfmon(self) -> SelfMon:
        return self.source.state.selfmon

    async def run(self) -> None:
        """List, then watch; never returns, never raises (except cancellation)."""
        while True:
            phase = "list" if self.rv is None else "watch"
            try:
                if self.rv is None:
                    await self._list()
                    phase = "watch"
                await self._watch()
            except asyncio.CancelledError:
                raise
            except _NotInstalled:
                await self._absent()
            except _Gone:
                # Routine: the apiserver compacted past our version.  Re-list right away, unless
                # the list itself just came back 410, which means something is off: back off.
                log.info("kube: %s resourceVersion %s expired (410); re-listing", self.resource, self.rv)
                self._selfmon.error(self.source.name, "gone")
                self.rv = None
                self.gone_streak += 1
                if phase == "list":
                    await self._fail(phase, "list", "410 during list")
                elif self.gone_streak > 1:
                    # 410 again straight after a fresh list: do not spin list/410/list.
                    await asyncio.sleep(backoff_delay(self.gone_streak - 2, self._kc.backoff_max))
            except _Failure as exc:
                await self._fail(phase, exc.reason, str(exc))
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                await self._fail(phase, phase, f"{type(exc).__name__}: {exc}")
            except Exception:  # a bug: log it, count it, keep going
                log.exception("kube: %s %s failed unexpectedly", self.resource, phase)
                await self._fail(phase, "exception", "exception")

    async def _fail(self, phase: str, reason: str, detail: str) -> None:
        """Count a failed list/watch (`reason` from selfmon.REASONS), mark the target down and
        sleep the backoff.  A failed list starts over; a failed watch resumes from self.rv."""
        self._selfmon.error(self.source.name, reason)
        self.source.run_failed()
        if phase == "list":
            self._selfmon.kube_list(self.resource, "error")
            self.rv = None
        self.source.mark(self.resource, False, reason)
        delay = backoff_delay(self.failures, self._kc.backoff_max)
        self.failures += 1
        log.log(
            logging.WARNING if self.failures > 1 else logging.INFO,
            "kube: %s %s failed (%s); retrying in %.2fs", self.resource, reason, detail, delay,
        )
        await asyncio.sleep(delay)

    async def _absent(self) -> None:
        """A CRD that is not installed: not a failure.  Hold an empty set and look again later."""
        if not self._announced_absent:
            log.info("kube: %s (%s) is not installed in this cluster; checking again every %.0fs",
                     self.resource, self.spec.group, CRD_RECHECK)
            self._announced_absent = True
        self.rv = None
        self.failures = 0
        self.store.not_installed()
        self._selfmon.kube_list(self.resource, "not_installed")
        self.source.healthy(self.resource)
        await asyncio.sleep(CRD_RECHECK)

    def _check(self, status: int, phase: str) -> None:
        if status == 410:
            raise _Gone()
        if status == 404 and self.spec.crd:
            raise _NotInstalled()
        if status != 200:
            raise _Failure(phase, f"HTTP {status}")

    # ---- list ------------------------------------------------------------------------------

    async def _list(self) -> None:
        started = time.monotonic()
        # Trimmed page by page: the raw JSON of one page (PAGE_SIZE objects) is alive at a time,
        # never that of the whole 20,000-pod list.
        kept: dict[str, Any] = {}
        count = 0
        token: str | None = None
        rv: str | None = None
        while True:
            resp = await self.call(
                limit=PAGE_SIZE,
                _continue=token,
                field_selector=self.field_selector,
                label_selector=self.label_selector,
                _preload_content=False,
                _request_timeout=self._kc.request_timeout,
            )
            try:
                self._check(resp.status, "list")
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
            self.store.trim_into(items, kept)
            del items
            token = meta.get("continue") or None
            if token is None:
                rv = meta.get("resourceVersion")
                break
        if self._announced_absent:
            log.info("kube: %s is installed now", self.resource)
            self._announced_absent = False
        self.store.replace(kept)
        self.rv = rv
        self.failures = 0
        self.source.last_list_duration = time.monotonic() - started
        self._selfmon.kube_list(self.resource, "success")
        self.source.healthy(self.resource)
        log.debug("kube: listed %d %s at resourceVersion %s", count, self.resource, rv)

    # ---- watch -----------------------------------------------------------------------------

    async def _watch(self) -> None:
        """One watch call from `self.rv` until the server ends it; `self.rv` follows every event."""
        kc = self._kc
        started = time.monotonic()
        resp = await self.call(
            watch=True,
            resource_version=self.rv,
            allow_watch_bookmarks=True,
            timeout_seconds=max(1, round(kc.watch_timeout)),
            field_selector=self.field_selector,
            label_selector=self.label_selector,
            _preload_content=False,
            # The server ends the watch after timeoutSeconds; the client-side total only catches
            # a server that stops talking without closing the connection.
            _request_timeout=aiohttp.ClientTimeout(
                total=kc.watch_timeout + kc.request_timeout, sock_connect=kc.request_timeout
            ),
        )
        try:
            self._check(resp.status, "watch")
            self.failures = 0
            self.source.healthy(self.resource)
            store = self.store
            selfmon = self._selfmon
            events = 0
            while True:
                line = await resp.content.readline()
                if not line:
                    if not events and time.monotonic() - started < SHORT_WATCH:
                        # A server that ends watches at once would make us spin (client-go's
                        # "very short watch" check): treat it as a failure, with backoff.
                        raise _Failure("watch", "watch ended immediately without events")
                    self.source.healthy(self.resource)
                    return  # timeoutSeconds reached: the caller re-watches from self.rv
                if line.isspace():
                    continue
                try:
                    ev = orjson.loads(line)
                    etype = ev["type"]
                    obj = ev["object"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    selfmon.error(self.source.name, "decode")
                    continue
                events += 1
                selfmon.kube_event(self.resource, etype if etype in EVENT_TYPES else "other")
                if etype == "ERROR":
                    code = obj.get("code") if isinstance(obj, dict) else None
                    if code == 410:
                        raise _Gone()
                    raise _Failure("watch", f"ERROR event code {code}")
                self.gone_streak = 0
                meta = obj.get("metadata") if isinstance(obj, dict) else None
                new_rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
                if etype == "ADDED" or etype == "MODIFIED":
                    store.apply(obj)
                elif etype == "DELETED":
                    store.remove(obj)
                elif etype == "BOOKMARK":
                    self.source.healthy(self.resource)
                else:
                    log.warning("kube: ignoring unknown watch event type %r", etype)
                    continue
                if new_rv:
                    self.rv = new_rv
        finally:
            resp.close()


class KubeSource(Source):
    """Lists and watches `resources` (default: pods and nodes) into `state.kube`.

    `resources` is an iterable of resource names ("pods", "events", ...) or `Watch` objects
    (`Watch("deployments", label_selector="app=llm")`); see `kube_stores.RESOURCES`."""

    name = "kube"

    def __init__(self, config: Config, state: AppState, resources: Iterable[str | Watch] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, state, clock)
        self.kc = config.kubernetes
        self.watches = normalize(resources)
        self._namespaces = frozenset(self.kc.namespaces)
        self._api: Any = None  # kubernetes_asyncio ApiClient, created in run()
        self.reflectors: dict[str, Reflector] = {}
        self.last_list_duration = 0.0
        self._statuses = {w.resource: TargetStatus("kube", w.resource, None) for w in self.watches}

    def enabled(self) -> bool:
        return self.kc.enabled

    def resource_version(self, resource: str) -> str | None:
        """The resourceVersion the next watch of `resource` starts from (None: will re-list)."""
        r = self.reflectors.get(resource)
        return r.rv if r is not None else None

    def targets(self) -> list[TargetStatus]:
        return list(self._statuses.values())

    async def close(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            await api.close()

    # ---- setup -----------------------------------------------------------------------------

    async def _new_client(self) -> Any:
        from kubernetes_asyncio import client, config as kconfig
        from kubernetes_asyncio.config.config_exception import ConfigException

        if self.kc.kubeconfig:
            return await kconfig.new_client_from_config(config_file=self.kc.kubeconfig)
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
                self.run_failed()
                for r in self._statuses:
                    self.mark(r, False, "config")
                await asyncio.sleep(backoff_delay(failures, self.kc.backoff_max))
                failures += 1

    def _make_reflectors(self, api_client: Any) -> dict[str, Reflector]:
        # One namespace: list it directly, so a namespaced Role is enough.  Several are
        # filtered on ingest from the cluster-wide list.
        ns = next(iter(self._namespaces)) if len(self._namespaces) == 1 else None
        out = {}
        for w in self.watches:
            spec = w.spec
            out[w.resource] = Reflector(
                self, spec, make_store(w, self.state, self._namespaces, self.clock),
                list_call(api_client, spec, ns if spec.namespaced else None),
                spec.field_selector(self.kc), w.label_selector,
            )
        return out

    # ---- main loop -------------------------------------------------------------------------

    async def run(self) -> None:
        self._api = await self._connect()
        self.reflectors = self._make_reflectors(self._api)
        tasks = [
            asyncio.create_task(r.run(), name=f"kube-{r.resource}") for r in self.reflectors.values()
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # ---- reporting (called by the reflectors) ----------------------------------------------

    def run_failed(self) -> None:
        # A failed run: keeps last-success as it was, or exports 0 ("never") from the first one.
        self.state.selfmon.source_run(self.name, self.last_list_duration, False, self.clock())

    def mark(self, resource: str, up: bool, reason: str = "") -> None:
        st = self._statuses[resource]
        st.up = up
        if up:
            st.last_success = self.clock()
            st.last_error = ""
        else:
            st.last_error = reason
        self.state.selfmon.target_up(self.name, resource, up)

    def healthy(self, resource: str) -> None:
        self.mark(resource, True)
        self.state.selfmon.source_run(self.name, self.last_list_duration, True, self.clock())
