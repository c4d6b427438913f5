"""A small Kubernetes API server for tests and the simulator.

Serves core/v1 pods, nodes, resourcequotas and events, apps/v1 deployments and statefulsets, and
leaderworkerset.x-k8s.io/v1 leaderworkersets (a CRD: `uninstall_crd()` makes it 404 as in a
cluster without it).  Objects go in with `add()`, `update()`, `delete()` (builders in
`sim/objects.py`), whatever their kind.

No kube-apiserver can run here, so this speaks the real list/watch protocol closely enough that
the official client cannot tell the difference:

- every change bumps a global resourceVersion; objects carry metadata.resourceVersion, uid and
  creationTimestamp;
- list returns `{"kind":"PodList","metadata":{"resourceVersion":..}}` with limit/continue
  pagination (items without kind/apiVersion, as the apiserver serves them);
- watch (`watch=true|1`) streams newline-delimited events ADDED/MODIFIED/DELETED from the given
  resourceVersion (no or "0" resourceVersion: synthetic ADDED for the current state first),
  BOOKMARK events only when `allowWatchBookmarks=true`, and ends after `timeoutSeconds`;
- a resourceVersion older than the compacted window gets an `ERROR` event carrying a `Status`
  with code 410 reason `Expired`, as the watch cache answers; an expired continue token or an
  `Exact` list at a compacted version gets HTTP 410;
- fieldSelector (per resource, as the apiserver supports them: pods spec.nodeName,
  status.phase, ...; nodes spec.unschedulable; events type, reason, involvedObject.*, source;
  metadata.name/metadata.namespace everywhere; anything else is 400) and label
  selectors (`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`) filter lists and
  watches; an object that stops matching a watch's selector is sent as DELETED, one that starts
  matching as ADDED;
- bearer-token authentication (401 Status otherwise), /version, /api, /api/v1, /apis and
  /apis/<group>/<version> discovery.

Test controls: `record_event()` (the recorder's count aggregation), `install_crd()`/`uninstall_crd()`,
`compact()`, `drop_watches()`, `end_watches()`, `set_down()`, and `requests`, a log of
(verb, path, resource) from which the RBAC the client needs can be derived.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson
import yaml
from aiohttp import web

from ..labelselector import SelectorError, parse_selector

@dataclass(frozen=True)
class _Res:
    kind: str
    namespaced: bool
    group: str = ""  # "" = core (/api/v1)
    version: str = "v1"
    crd: bool = False  # served by a CustomResourceDefinition: can be uninstalled (404)
    short: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


_RESOURCES: dict[str, _Res] = {
    "pods": _Res("Pod", True, short=("po",)),
    "nodes": _Res("Node", False, short=("no",)),
    "resourcequotas": _Res("ResourceQuota", True, short=("quota",)),
    "events": _Res("Event", True, short=("ev",)),
    "deployments": _Res("Deployment", True, "apps", short=("deploy",)),
    "statefulsets": _Res("StatefulSet", True, "apps", short=("sts",)),
    "leaderworkersets": _Res("LeaderWorkerSet", True, "leaderworkerset.x-k8s.io", crd=True, short=("lws",)),
}
_KIND_TO_RESOURCE = {
    **{r.kind.lower(): name for name, r in _RESOURCES.items()},
    **{name: name for name in _RESOURCES},
}
_META_FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata.name": lambda o: o["metadata"].get("name", ""),
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
}


def _get(*path: str) -> Callable[[dict[str, Any]], str]:
    def getter(o: dict[str, Any]) -> str:
        v: Any = o
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        return "" if v is None else str(v)
    return getter


# Field selectors each resource supports, as the apiserver's field label conversion functions
# list them (pkg/apis/core/v1/conversion.go, v1.31: pods, nodes, events; everything else
# metadata.name and metadata.namespace only, custom resources included).
_FIELDS: dict[str, dict[str, Callable[[dict[str, Any]], str]]] = {
    "pods": {
        **_META_FIELDS,
        "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName", ""),
        "spec.restartPolicy": _get("spec", "restartPolicy"),
        "spec.schedulerName": _get("spec", "schedulerName"),
        "spec.serviceAccountName": _get("spec", "serviceAccountName"),
        "status.phase": lambda o: (o.get("status") or {}).get("phase", ""),
        "status.podIP": _get("status", "podIP"),
        "status.nominatedNodeName": _get("status", "nominatedNodeName"),
    },
    "nodes": {
        **_META_FIELDS,
        "spec.unschedulable": lambda o: str(bool((o.get("spec") or {}).get("unschedulable"))).lower(),
    },
    "events": {
        **_META_FIELDS,
        "involvedObject.kind": _get("involvedObject", "kind"),
        "involvedObject.namespace": _get("involvedObject", "namespace"),
        "involvedObject.name": _get("involvedObject", "name"),
        "involvedObject.uid": _get("involvedObject", "uid"),
        "involvedObject.apiVersion": _get("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _get("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _get("involvedObject", "fieldPath"),
        "reason": _get("reason"),
        "reportingComponent": _get("reportingComponent"),
        "source": _get("source", "component"),
        "type": _get("type"),
    },
}
_PATH_RE = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>[a-z0-9]+)(?:/(?P<name>[^/]+))?/?$"
)
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go's strconv.ParseBool
_DROP = object()
_END = object()


def parse_field_selector(selector: str, resource: str = "pods") -> Callable[[dict[str, Any]], bool]:
    fields = _FIELDS.get(resource, _META_FIELDS)
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for term in (t.strip() for t in (selector or "").split(",")):
        if not term:
            continue
        negate = "!=" in term
        sep = "!=" if negate else ("==" if "==" in term else "=")
        if sep not in term:
            raise SelectorError(f"invalid field selector: {term!r}")
        key, value = (s.strip() for s in term.split(sep, 1))
        getter = fields.get(key)
        if getter is None:
            raise SelectorError(f'field label not supported: "{key}"')
        if negate:
            checks.append(lambda o, g=getter, v=value: g(o) != v)
        else:
            checks.append(lambda o, g=getter, v=value: g(o) == v)
    return lambda obj: all(c(obj) for c in checks)


def status_object(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _status_response(code: int, reason: str, message: str) -> web.Response:
    return web.Response(
        status=code,
        body=orjson.dumps(status_object(code, reason, message)),
        content_type="application/json",
    )


@dataclass
class _Event:
    rv: int
    resource: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]
    old: dict[str, Any] | None  # previous state for MODIFIED (selector transitions)


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Watcher:
    resource: str
    namespace: str | None
    matches: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    def translate(self, ev: _Event) -> tuple[str, dict[str, Any]] | None:
        """The event this watcher sees, given its selectors (None: not visible)."""
        if ev.resource != self.resource:
            return None
        if self.namespace is not None and ev.obj["metadata"].get("namespace") != self.namespace:
            return None
        now = self.matches(ev.obj)
        if ev.type == "MODIFIED" and ev.old is not None:
            before = self.matches(ev.old)
            if before and not now:
                return "DELETED", ev.obj
            if now and not before:
                return "ADDED", ev.obj
        return (ev.type, ev.obj) if now else None


class FakeKubeAPI:
    """In-memory kube API.  `await start()` returns the base URL; `stop()` shuts it down."""

    def __init__(
        self,
        *,
        token: str | None = "fake-token",
        bookmark_interval: float = 1.0,
        history: int = 100_000,
        default_watch_timeout: float = 1800.0,
        crds: Any = None,
    ) -> None:
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout
        self._max_history = history
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {r: {} for r in _RESOURCES}
        self._rv = 100
        self._compacted_rv = self._rv  # watches from an RV below this get 410 Expired
        self._history: deque[_Event] = deque()
        self._watchers: set[_Watcher] = set()
        self._down = False
        # CRD-served resources whose CRD is installed (None: all of them).
        self._crds: set[str] = {r for r, d in _RESOURCES.items() if d.crd} if crds is None else set(crds)
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        # (verb, path, resource) per request: verb is get|list|watch.
        self.requests: list[tuple[str, str, str]] = []
        # (path, query parameters) per request, beside `requests`: which selectors were sent.
        self.queries: list[tuple[str, dict[str, str]]] = []

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        self.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeKubeAPI":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def write_kubeconfig(self, path: str | Path) -> Path:
        p = Path(path)
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.base_url}}],
            "users": [{"name": "fake", "user": user}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
            "preferences": {},
        }
        p.write_text(yaml.safe_dump(doc), encoding="utf-8")
        return p

    # ---- object store ----------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def _key(self, resource: str, obj: dict[str, Any]) -> tuple[str, str]:
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if _RESOURCES[resource].namespaced else ""
        return ns, meta["name"]

    @staticmethod
    def _resource_of(kind_or_obj: str | dict[str, Any]) -> str:
        kind = kind_or_obj if isinstance(kind_or_obj, str) else kind_or_obj.get("kind", "")
        try:
            return _KIND_TO_RESOURCE[kind.lower()]
        except KeyError:
            raise ValueError(f"unsupported kind {kind!r}") from None

    def _served(self, resource: str) -> bool:
        return not _RESOURCES[resource].crd or resource in self._crds

    def _record(self, resource: str, etype: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        ev = _Event(self._rv, resource, etype, obj, old)
        self._history.append(ev)
        while len(self._history) > self._max_history:
            self._compacted_rv = self._history.popleft().rv
        for w in self._watchers:
            seen = w.translate(ev)
            if seen is not None:
                w.queue.put_nowait(seen)

    def _stored_copy(self, obj: dict[str, Any]) -> tuple[str, dict[str, Any], tuple[str, str]]:
        """A private copy of `obj` as stored (namespaced objects default to "default"), its
        resource and its key."""
        resource = self._resource_of(obj)
        stored = orjson.loads(orjson.dumps(obj))
        meta = stored["metadata"]
        if _RESOURCES[resource].namespaced and not meta.get("namespace"):
            meta["namespace"] = "default"
        return resource, stored, self._key(resource, stored)

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object (a copy is stored).  Returns the stored object."""
        resource, stored, key = self._stored_copy(obj)
        if not self._served(resource):
            raise ValueError(f'no matches for kind "{_RESOURCES[resource].kind}": its CRD is not installed')
        meta = stored["metadata"]
        if key in self._objects[resource]:
            raise ValueError(f"{resource} {key} already exists")
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self._objects[resource][key] = stored
        self._record(resource, "ADDED", stored, None)
        return stored

    def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace an existing object (matched by namespace/name); uid and creation time stay."""
        resource, stored, key = self._stored_copy(obj)
        meta = stored["metadata"]
        old = self._objects[resource].get(key)
        if old is None:
            raise KeyError(f"{resource} {key} not found")
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        meta["uid"] = old["metadata"]["uid"]
        meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
        self._objects[resource][key] = stored
        self._record(resource, "MODIFIED", stored, old)
        return stored

    def delete(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        resource = self._resource_of(kind)
        key = ((namespace or "") if _RESOURCES[resource].namespaced else "", name)
        old = self._objects[resource].pop(key, None)
        if old is None:
            raise KeyError(f"{resource} {key} not found")
        self._rv += 1
        gone = dict(old, metadata=dict(old["metadata"], resourceVersion=str(self._rv)))
        self._record(resource, "DELETED", gone, None)
        return gone

    def record_event(self, event: dict[str, Any], at: str | None = None) -> dict[str, Any]:
        """Record an Event the way client-go's recorder does: a repeat of one already stored
        (same involved object, reason, message and type; EventCorrelator's aggregation key in
        tools/record/events_cache.go) updates it with count + 1 and a new lastTimestamp instead
        of creating another object.  `at` (RFC 3339) is the occurrence time."""
        inv = event.get("involvedObject") or {}
        ident = (inv.get("uid"), inv.get("kind"), inv.get("name"), event.get("reason"),
                 event.get("message"), event.get("type"))
        ns = event["metadata"].get("namespace") or "default"
        for (ens, _name), old in self._objects["events"].items():
            o_inv = old.get("involvedObject") or {}
            if ens == ns and (o_inv.get("uid"), o_inv.get("kind"), o_inv.get("name"), old.get("reason"),
                              old.get("message"), old.get("type")) == ident:
                repeat = dict(old, count=int(old.get("count") or 1) + 1,
                              lastTimestamp=at or old.get("lastTimestamp"))
                return self.update(repeat)
        return self.add(dict(event, lastTimestamp=at or event.get("lastTimestamp")) if at else event)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        resource = self._resource_of(kind)
        return self._objects[resource].get(((namespace or "") if _RESOURCES[resource].namespaced else "", name))

    def objects(self, kind: str) -> list[dict[str, Any]]:
        return list(self._objects[self._resource_of(kind)].values())

    # ---- failure injection -----------------------------------------------------------------

    def compact(self) -> None:
        """Forget the event history: every resourceVersion before now is expired."""
        self._history.clear()
        self._compacted_rv = self._rv

    def drop_watches(self) -> None:
        """Close every open watch stream abruptly (no clean end of the chunked body)."""
        for w in list(self._watchers):
            w.queue.put_nowait(_DROP)

    def end_watches(self) -> None:
        """End every open watch stream cleanly, as the apiserver does at timeoutSeconds."""
        for w in list(self._watchers):
            w.queue.put_nowait(_END)

    def set_down(self, down: bool) -> None:
        """While down, every request gets 503 and open watches are cut."""
        self._down = down
        if down:
            self.drop_watches()

    def uninstall_crd(self, resource: str) -> None:
        """Delete a CRD: its objects go (DELETED to open watches, as the apiserver's cleanup
        does), then every request for the resource gets 404 and open watches end."""
        for (ns, name) in sorted(self._objects[resource]):
            self.delete(resource, ns or None, name)
        self._crds.discard(resource)
        for w in list(self._watchers):
            if w.resource == resource:
                w.queue.put_nowait(_END)

    def install_crd(self, resource: str) -> None:
        if not _RESOURCES[resource].crd:
            raise ValueError(f"{resource} is not served by a CRD")
        self._crds.add(resource)

    def watch_count(self) -> int:
        return len(self._watchers)

    # ---- HTTP ------------------------------------------------------------------------------

    def _log(self, verb: str, path: str, resource: str) -> None:
        self.requests.append((verb, path, resource))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.queries.append((path, dict(request.query)))
        if self._down:
            self._log("unavailable", path, "")
            return _status_response(503, "ServiceUnavailable", "the server is currently unable to handle the request")
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            self._log("unauthorized", path, "")
            return _status_response(401, "Unauthorized", "Unauthorized")
        if request.method != "GET":
            self._log(request.method.lower(), path, "")
            return _status_response(405, "MethodNotAllowed", f"{request.method} is not supported here")
        discovery = self._discovery(path.rstrip("/") or "/")
        if discovery is not None:
            self._log("get", path, "")
            return web.Response(body=orjson.dumps(discovery), content_type="application/json")
        m = _PATH_RE.match(path)
        if m is None:
            self._log("get", path, "")
            return _status_response(404, "NotFound", "the server could not find the requested resource")
        resource, ns, name = m.group("resource"), m.group("ns"), m.group("name")
        res = _RESOURCES.get(resource)
        group, version = (m.group("group") or "", m.group("version") or "v1")
        if res is None or (res.group, res.version) != (group, version) or (ns is not None and not res.namespaced):
            self._log("get", path, "")
            return _status_response(404, "NotFound", "the server could not find the requested resource")
        if not self._served(resource):
            # Authorization runs before routing on a real apiserver, so the call still needs
            # (and shows) its verb on the resource.
            verb = "get" if name is not None else ("watch" if request.query.get("watch") in _TRUE else "list")
            self._log(verb, path, resource)
            return _status_response(404, "NotFound", "the server could not find the requested resource")
        q = request.query
        if name is not None:
            self._log("get", path, resource)
            obj = self._objects[resource].get((ns or "", name))
            if obj is None:
                return _status_response(404, "NotFound", f'{resource} "{name}" not found')
            return web.Response(body=orjson.dumps(obj), content_type="application/json")
        try:
            fsel = parse_field_selector(q.get("fieldSelector", ""), resource)
            lsel = parse_selector(q.get("labelSelector", "")).matches
        except SelectorError as exc:
            return _status_response(400, "BadRequest", str(exc))

        def matches(o: dict[str, Any]) -> bool:
            return fsel(o) and lsel(o["metadata"].get("labels") or {})

        if q.get("watch") in _TRUE:
            self._log("watch", path, resource)
            return await self._watch(request, resource, ns, matches)
        self._log("list", path, resource)
        return self._list(resource, ns, matches, q)

    def _discovery(self, path: str) -> dict[str, Any] | None:
        if path == "/version":
            return {
                "major": "1", "minor": "31", "gitVersion": "v1.31.2", "gitCommit": "fake",
                "gitTreeState": "clean", "buildDate": "2024-10-22T20:28:14Z",
                "goVersion": "go1.22.8", "compiler": "gc", "platform": "linux/amd64",
            }
        if path == "/api":
            return {
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.base_url.removeprefix("http://")}
                ],
            }
        if path == "/apis":
            groups: dict[str, str] = {}
            for name, r in _RESOURCES.items():
                if r.group and self._served(name):
                    groups[r.group] = r.version
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
                for g, v in sorted(groups.items())]}
        gv = path.removeprefix("/apis/") if path.startswith("/apis/") else ("v1" if path == "/api/v1" else None)
        if gv is None:
            return None
        served = [(n, r) for n, r in _RESOURCES.items() if r.api_version == gv and self._served(n)]
        if not served:
            return None
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": [
                {"name": n, "singularName": r.kind.lower(), "namespaced": r.namespaced, "kind": r.kind,
                 "verbs": ["get", "list", "watch"], "shortNames": list(r.short)}
                for n, r in served
            ],
        }
        return None

    def _list(self, resource: str, ns: str | None, matches: Callable[[dict[str, Any]], bool], q: Any) -> web.Response:
        res = _RESOURCES[resource]
        kind = res.kind
        rv = self._rv
        start = ""
        token = q.get("continue")
        if token:
            try:
                state = orjson.loads(base64.urlsafe_b64decode(token.encode()))
                rv, start = int(state["rv"]), str(state["start"])
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
                return _status_response(400, "BadRequest", "continue key is not valid")
            if rv < self._compacted_rv:
                return _status_response(
                    410, "Expired",
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter.",
                )
        elif q.get("resourceVersionMatch") == "Exact" and q.get("resourceVersion"):
            try:
                want = int(q["resourceVersion"])
            except ValueError:
                return _status_response(400, "BadRequest", "invalid resourceVersion")
            if want < self._compacted_rv:
                return _status_response(410, "Expired", f"too old resource version: {want} ({self._compacted_rv})")
        try:
            limit = int(q.get("limit", "0") or 0)
        except ValueError:
            return _status_response(400, "BadRequest", "invalid limit")
        keys = sorted(
            k for k, o in self._objects[resource].items()
            if (ns is None or k[0] == ns) and f"{k[0]}/{k[1]}" > start and matches(o)
        ) if start else sorted(
            k for k, o in self._objects[resource].items() if (ns is None or k[0] == ns) and matches(o)
        )
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit > 0 and len(keys) > limit:
            last = keys[limit - 1]
            meta["continue"] = base64.urlsafe_b64encode(
                orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{last[0]}/{last[1]}"})
            ).decode()
            meta["remainingItemCount"] = len(keys) - limit
            keys = keys[:limit]
        store = self._objects[resource]
        items = []
        for k in keys:
            obj = store[k]
            # List items are served without kind/apiVersion; the list carries them.
            # Built-in list items are served without kind/apiVersion (the list carries them);
            # custom resources are served as stored, with both.
            items.append(obj if res.crd else {f: v for f, v in obj.items() if f not in ("kind", "apiVersion")})
        body = {"kind": f"{kind}List", "apiVersion": res.api_version, "metadata": meta, "items": items}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _watch(
        self, request: web.Request, resource: str, ns: str | None, matches: Callable[[dict[str, Any]], bool]
    ) -> web.StreamResponse:
        q = request.query
        kind = _RESOURCES[resource].kind
        api_version = _RESOURCES[resource].api_version
        bookmarks = q.get("allowWatchBookmarks") in _TRUE
        try:
            timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else self.default_watch_timeout
        except ValueError:
            return _status_response(400, "BadRequest", "invalid timeoutSeconds")
        rv_param = q.get("resourceVersion", "")
        watcher = _Watcher(resource, ns, matches)
        initial: list[tuple[str, dict[str, Any]]] = []
        expired: dict[str, Any] | None = None
        if rv_param in ("", "0"):
            # "Start at most recent" / "any": synthetic ADDED events for the current state.
            initial = [
                ("ADDED", o) for k, o in sorted(self._objects[resource].items())
                if (ns is None or k[0] == ns) and matches(o)
            ]
        else:
            try:
                since = int(rv_param)
            except ValueError:
                return _status_response(400, "BadRequest", f"invalid resourceVersion {rv_param!r}")
            if since < self._compacted_rv:
                expired = status_object(
                    410, "Expired", f"too old resource version: {since} ({self._compacted_rv})"
                )
            else:
                for ev in self._history:
                    if ev.rv > since:
                        seen = watcher.translate(ev)
                        if seen is not None:
                            initial.append(seen)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if expired is not None:
            # The real apiserver answers 200 and sends the Status as an ERROR event.
            await resp.write(orjson.dumps({"type": "ERROR", "object": expired}) + b"\n")
            await resp.write_eof()
            return resp
        # Registered with no await since the history snapshot above, so no event is lost.
        self._watchers.add(watcher)
        loop = asyncio.get_running_loop()
        try:
            for etype, obj in initial:
                await resp.write(orjson.dumps({"type": etype, "object": obj}) + b"\n")
            deadline = loop.time() + timeout
            next_bookmark = loop.time() + self.bookmark_interval
            while True:
                now = loop.time()
                if now >= deadline:
                    break
                wake = min(deadline, next_bookmark) if bookmarks else deadline
                try:
                    if watcher.queue.empty():
                        item = await asyncio.wait_for(watcher.queue.get(), max(0.0, wake - now))
                    else:  # wait_for with a lapsed timeout would time out with events queued
                        item = watcher.queue.get_nowait()
                except TimeoutError:
                    # Never a bookmark ahead of events still queued for this stream (an event can
                    # land in the same loop turn as the timeout): a real API server's bookmark only
                    # says "everything up to here was sent", and a client resuming from a
                    # bookmark that overtook a queued event would never see that event.
                    if bookmarks and loop.time() >= next_bookmark and watcher.queue.empty():
                        next_bookmark = loop.time() + self.bookmark_interval
                        bm = {"kind": kind, "apiVersion": api_version,
                              "metadata": {"resourceVersion": str(self._rv)}}
                        await resp.write(orjson.dumps({"type": "BOOKMARK", "object": bm}) + b"\n")
                    continue
                if item is _DROP:
                    if request.transport is not None:
                        request.transport.abort()
                    return resp
                if item is _END:
                    break
                etype, obj = item
                await resp.write(orjson.dumps({"type": etype, "object": obj}) + b"\n")
        except (ConnectionResetError, ConnectionError):
            return resp
        finally:
            self._watchers.discard(watcher)
        await resp.write_eof()
        return resp


def _api_group(path: str) -> str:
    m = _PATH_RE.match(path)
    return (m.group("group") or "") if m else ""


def rbac_rules(requests: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """The ClusterRole rules the logged requests need (resource verbs only), one rule per
    (apiGroup, resource), the group taken from the request path."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for verb, path, resource in requests:
        if resource and verb in ("get", "list", "watch"):
            verbs.setdefault((_api_group(path), resource), set()).add(verb)
    return [
        {"apiGroups": [g], "resources": [r], "verbs": sorted(v)}
        for (g, r), v in sorted(verbs.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
