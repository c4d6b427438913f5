"""One store per Kubernetes resource: how its objects are keyed, trimmed, replaced on a list,
applied on ADDED/MODIFIED and removed on DELETED, into `state.kube.<resource>`.

A store knows nothing about HTTP; the reflector in `sources/kube.py` feeds it.  Adding a
resource is one `ResourceSpec` in `RESOURCES` (how to call the API) and, when its records are
new, one small `Store` subclass (how to trim).

Stores always go through `state.kube` (never keep a reference to the KubeState): the exporter
swaps in a fresh one when the kube source is disabled by a reload.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Protocol

from ..config import KubernetesConfig
from ..kube.model import KubeState
from ..slots import Slot
from ..state import AppState
from .kube_objects import event_from_json, node_from_json, pod_from_json, quota_from_json, workload_from_json

_DECODE_ERRORS = (KeyError, TypeError, AttributeError, ValueError)
log = logging.getLogger(__name__)


class KubeListener(Protocol):
    """Sees every change a store makes, as it makes it: for areas that count transitions
    (scheduling) without rescanning every record per refresh.  Called on the event loop, inside
    the store's update; must be quick and must not raise."""

    def applied(self, resource: str, record: Any) -> None:
        """A watch ADDED/MODIFIED (always after the resource's first list)."""

    def removed(self, resource: str, key: str) -> None:
        """A watch DELETED, by the store's key (pods and events: uid)."""

    def replaced(self, resource: str, records: dict[str, Any], first: bool) -> None:
        """A completed list; `first` when it is the resource's first one (baseline)."""


# Listeners per AppState; an area registers while its source runs (scheduling/source.py).
KUBE_LISTENERS: Slot[list[KubeListener]] = Slot("kube_listeners", list)


class Store:
    """Base store: records keyed by `key(record)`; raw objects keyed by `raw_key(obj)` for
    DELETED events (which carry the last state of the object)."""

    resource: ClassVar[str]  # API plural; also the KubeState attribute holding the records
    # Whether a change bumps `KubeState.generation`, which makes discovery (serving, dcgm,
    # checkpoint stores) rescan the pods: not for records no discovery reads (Warning events
    # arrive ~20/s on a busy cluster; their consumers are listeners).
    bumps_generation: ClassVar[bool] = True

    def __init__(self, state: AppState, namespaces: frozenset[str] = frozenset(),
                 source: str = "kube") -> None:
        self.state = state
        self._namespaces = namespaces
        self._source = source

    # -- per resource --------------------------------------------------------------------------

    def decode(self, obj: dict[str, Any]) -> Any:
        """Raw object -> record; raises KeyError/TypeError/... on a malformed object."""
        raise NotImplementedError

    def key(self, record: Any) -> str:
        return f"{record.namespace}/{record.name}"

    def raw_key(self, obj: dict[str, Any]) -> str | None:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        return None if name is None else f"{meta.get('namespace', '')}/{name}"

    # -- shared --------------------------------------------------------------------------------

    @property
    def records(self) -> dict[str, Any]:
        return getattr(self.state.kube, self.resource)

    def _wanted(self, obj: dict[str, Any]) -> bool:
        if not self._namespaces:
            return True
        return (obj.get("metadata") or {}).get("namespace") in self._namespaces

    def _decode(self, obj: Any) -> Any:
        if not isinstance(obj, dict) or not self._wanted(obj):
            return None
        try:
            return self.decode(obj)
        except _DECODE_ERRORS:
            self.state.selfmon.error(self._source, "decode")
            return None

    def trim_into(self, items: Any, kept: dict[str, Any]) -> None:
        """Trim one list page into `kept` (the list's records so far)."""
        for obj in items:
            record = self._decode(obj)
            if record is not None:
                kept[self.key(record)] = record

    def replace(self, kept: dict[str, Any]) -> None:
        """A completed list: the whole set, in one assignment (readers never see half of it)."""
        kube = self.state.kube
        first = self.resource not in kube.synced
        setattr(kube, self.resource, kept)
        kube.synced.add(self.resource)
        kube.not_installed.discard(self.resource)
        self._touch()
        self._notify("replaced", kept, first)

    def _touch(self) -> None:
        if self.bumps_generation:
            self.state.kube.touch()

    def _applied(self, record: Any) -> None:
        self._touch()
        self._notify("applied", record)

    def _notify(self, method: str, *args: Any) -> None:
        # A listener's bug must not stop the store (the reflector would re-list forever).
        for listener in self.state[KUBE_LISTENERS]:
            try:
                getattr(listener, method)(self.resource, *args)
            except Exception:
                log.exception("kube: a listener of %s failed in %s", self.resource, method)
                self.state.selfmon.error(self._source, "exception")

    def apply(self, obj: dict[str, Any]) -> None:
        record = self._decode(obj)
        if record is None:
            return
        self.records[self.key(record)] = record
        self._applied(record)

    def remove(self, obj: dict[str, Any]) -> None:
        key = self.raw_key(obj)
        if key is None:
            return
        if self.records.pop(key, None) is not None:
            self._touch()
        # Also for a record the store no longer held (events pruned by age): a listener's
        # memory of it ends with the object.
        self._notify("removed", key)

    def not_installed(self) -> None:
        """The API answered 404 for the resource (a CRD the cluster does not have)."""
        kube = self.state.kube
        changed = bool(self.records) or self.resource not in kube.not_installed
        setattr(kube, self.resource, {})
        kube.synced.add(self.resource)
        kube.not_installed.add(self.resource)
        if changed:
            kube.touch()


class FieldKeyedStore(Store):
    """Records keyed by one metadata field that the record carries under the same name."""

    key_field: ClassVar[str]

    def key(self, record: Any) -> str:
        return getattr(record, self.key_field)

    def raw_key(self, obj: dict[str, Any]) -> str | None:
        return (obj.get("metadata") or {}).get(self.key_field)


class UidKeyedStore(FieldKeyedStore):
    """Records keyed by UID: a deleted object's name can come back as a new object (pods of a
    StatefulSet, recurring events), and what listeners count belongs to one object."""

    key_field = "uid"


class PodStore(UidKeyedStore):
    resource = "pods"

    def decode(self, obj: dict[str, Any]) -> Any:
        return pod_from_json(obj)


class NodeStore(FieldKeyedStore):
    resource = "nodes"
    key_field = "name"  # cluster-scoped: the name is unique

    def _wanted(self, obj: dict[str, Any]) -> bool:
        return True  # cluster-scoped

    def decode(self, obj: dict[str, Any]) -> Any:
        return node_from_json(obj)


class QuotaStore(Store):
    resource = "resourcequotas"
    bumps_generation = False

    def decode(self, obj: dict[str, Any]) -> Any:
        return quota_from_json(obj)


class WarningEventStore(UidKeyedStore):
    """Warning events (the watch's field selector is `type=Warning`), kept while they are
    younger than `max_age` by last occurrence: a count needs each event only until its
    increments have been seen, and the apiserver keeps events for an hour (--event-ttl) —
    60,000 of them at 1,000/min if we kept them all.  Records are held in arrival order, so
    pruning pops from the front."""

    resource = "events"
    bumps_generation = False
    DEFAULT_MAX_AGE = 600.0

    def __init__(self, state: AppState, namespaces: frozenset[str] = frozenset(), source: str = "kube",
                 max_age: float | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(state, namespaces, source)
        self.max_age = self.DEFAULT_MAX_AGE if max_age is None else max_age
        self._clock = clock

    def decode(self, obj: dict[str, Any]) -> Any:
        if obj.get("type", "Warning") != "Warning":
            return None  # a server that ignored the field selector
        return event_from_json(obj)

    def replace(self, kept: dict[str, Any]) -> None:
        cutoff = self._clock() - self.max_age
        young = sorted((e for e in kept.values() if e.last_seen >= cutoff), key=lambda e: e.last_seen)
        super().replace({e.uid: e for e in young})

    def apply(self, obj: dict[str, Any]) -> None:
        record = self._decode(obj)
        if record is None:
            return
        events = self.records
        events.pop(record.uid, None)  # re-inserted at the end: arrival order
        events[record.uid] = record
        self.prune()
        self._applied(record)

    def prune(self) -> int:
        """Drop events not seen for max_age (oldest arrivals first); returns how many."""
        events = self.records
        cutoff = self._clock() - self.max_age
        dropped = 0
        while events:
            uid = next(iter(events))
            if events[uid].last_seen >= cutoff:
                break
            del events[uid]
            dropped += 1
        return dropped


class WorkloadStore(Store):
    kind: ClassVar[str]

    def decode(self, obj: dict[str, Any]) -> Any:
        return workload_from_json(obj, self.kind)


class DeploymentStore(WorkloadStore):
    resource = "deployments"
    kind = "Deployment"


class StatefulSetStore(WorkloadStore):
    resource = "statefulsets"
    kind = "StatefulSet"


class LeaderWorkerSetStore(WorkloadStore):
    resource = "leaderworkersets"
    kind = "LeaderWorkerSet"


@dataclass(frozen=True)
class ResourceSpec:
    """How to list/watch one resource with kubernetes_asyncio, and which store keeps it.

    `api`/`method` name the typed client call (`CoreV1Api.list_pod_for_all_namespaces`,
    `list_namespaced_pod`, or `list_node` for a cluster-scoped one); a `crd` resource goes
    through CustomObjectsApi with `group`/`version`, and a 404 there means "not installed"."""

    resource: str
    group: str  # "" for the core group (RBAC apiGroups)
    version: str
    namespaced: bool
    store: type[Store]
    api: str = ""  # CoreV1Api | AppsV1Api; "" for a CRD
    method: str = ""  # snake_case singular in the client's method names
    crd: bool = False
    field_selector: Callable[[KubernetesConfig], str | None] = lambda kc: None
    label_selectors: bool = False  # Watch(label_selector=...) allowed


def _node_field(field: str) -> Callable[[KubernetesConfig], str | None]:
    return lambda kc: f"{field}={kc.node_scope}" if kc.node_scope else None


RESOURCES: dict[str, ResourceSpec] = {
    s.resource: s
    for s in (
        ResourceSpec("pods", "", "v1", True, PodStore, "CoreV1Api", "pod",
                     field_selector=_node_field("spec.nodeName")),
        ResourceSpec("nodes", "", "v1", False, NodeStore, "CoreV1Api", "node",
                     field_selector=_node_field("metadata.name")),
        ResourceSpec("resourcequotas", "", "v1", True, QuotaStore, "CoreV1Api", "resource_quota"),
        ResourceSpec("events", "", "v1", True, WarningEventStore, "CoreV1Api", "event",
                     field_selector=lambda kc: "type=Warning"),
        ResourceSpec("deployments", "apps", "v1", True, DeploymentStore, "AppsV1Api", "deployment",
                     label_selectors=True),
        ResourceSpec("statefulsets", "apps", "v1", True, StatefulSetStore, "AppsV1Api", "stateful_set",
                     label_selectors=True),
        ResourceSpec("leaderworkersets", "leaderworkerset.x-k8s.io", "v1", True, LeaderWorkerSetStore,
                     crd=True, label_selectors=True),
    )
}


@dataclass(frozen=True)
class Watch:
    """One resource to list and watch: `Watch("deployments", label_selector="app=llm")`.

    `label_selector` (workload kinds only) is sent to the API server, so only matching objects
    are listed and held.  `max_age` (events only) bounds how long a warning event is kept
    after its last occurrence (default WarningEventStore.DEFAULT_MAX_AGE)."""

    resource: str
    label_selector: str | None = None
    max_age: float | None = None

    def __post_init__(self) -> None:
        spec = RESOURCES.get(self.resource)
        if spec is None:
            raise ValueError(f"unknown kube resource {self.resource!r}; known: {sorted(RESOURCES)}")
        if self.label_selector and not spec.label_selectors:
            raise ValueError(f"kube resource {self.resource!r} takes no label selector")
        if self.max_age is not None and spec.store is not WarningEventStore:
            raise ValueError(f"max_age applies to events only, not {self.resource!r}")

    @property
    def spec(self) -> ResourceSpec:
        return RESOURCES[self.resource]


# What the exporter watches unless told otherwise: exactly the RBAC the shipped ClusterRole grants.
DEFAULT_WATCHES: tuple[Watch, ...] = (Watch("pods"), Watch("nodes"))


def normalize(resources: Any) -> tuple[Watch, ...]:
    """`resources` as given to KubeSource (None, names, Watch objects) -> Watch tuple, one per
    resource, in the given order."""
    if resources is None:
        return DEFAULT_WATCHES
    if isinstance(resources, (str, Watch)):
        resources = [resources]
    out: list[Watch] = []
    seen: set[str] = set()
    for r in resources:
        w = r if isinstance(r, Watch) else Watch(str(r))
        if w.resource in seen:
            raise ValueError(f"kube resource {w.resource!r} given twice")
        seen.add(w.resource)
        out.append(w)
    return tuple(out)


def make_store(watch: Watch, state: AppState, namespaces: frozenset[str],
               clock: Callable[[], float] = time.time) -> Store:
    cls = watch.spec.store
    if cls is WarningEventStore:
        return WarningEventStore(state, namespaces, max_age=watch.max_age, clock=clock)
    return cls(state, namespaces)


__all__ = [
    "DEFAULT_WATCHES", "KUBE_LISTENERS", "KubeListener", "RESOURCES", "KubeState", "ResourceSpec", "Store", "Watch", "make_store", "normalize",
]
