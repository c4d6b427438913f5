"""Raw Kubernetes JSON -> trimmed state records (pure functions, no I/O).

The kube source reads objects as raw JSON (orjson) instead of typed client models, and keeps
only what the signals need: a `PodInfo` is a few hundred bytes, not a full API object.

Workload resolution works from owner references and well-known labels only, never from extra
API lookups, so the exporter needs RBAC for pods and nodes and nothing else by default.

Low-cardinality strings (condition statuses and reasons, namespaces, kinds) are shared through
a bounded cache: orjson returns a new string object for every value, and 20,000 pods x five
conditions of "True" would otherwise be 100,000 copies.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..kube.model import Condition, NodeInfo, PodInfo, QuotaInfo, Taint, WarningEvent, WorkloadInfo

# Messages kept from the cluster (scheduler verdicts, kubelet rejections, event messages) are
# cut to this many characters: enough for "0/1000 nodes are available: 1000 Insufficient
# nvidia.com/gpu. preemption: ..." and a quota message naming its resources.
MESSAGE_MAX = 512
_SHARED_MAX = 4096
_shared: dict[str, str] = {}

ANNOTATION_PREFIX = "ai-signals.io/"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"

# Labels set by higher-level controllers on the pods they create, most specific first.  The owner
# reference of such a pod points at an intermediate object (a StatefulSet for LeaderWorkerSet, a
# ReplicaSet for KServe/Knative, a Job for JobSet) that is an implementation detail.
_WORKLOAD_LABELS: tuple[tuple[str, str], ...] = (
    ("leaderworkerset.sigs.k8s.io/name", "LeaderWorkerSet"),
    ("serving.kserve.io/inferenceservice", "InferenceService"),
    ("serving.knative.dev/service", "KnativeService"),
    ("jobset.sigs.k8s.io/jobset-name", "JobSet"),
)

_KUBEFLOW_JOB_LABEL = "training.kubeflow.org/job-name"
_KUBEFLOW_OPERATOR_LABEL = "training.kubeflow.org/operator-name"
_KUBEFLOW_KINDS = {
    "pytorchjob": "PyTorchJob",
    "tfjob": "TFJob",
    "mpijob": "MPIJob",
    "xgboostjob": "XGBoostJob",
    "paddlejob": "PaddleJob",
    "jaxjob": "JAXJob",
}

_SI = {
    "": Decimal(1), "m": Decimal("0.001"), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def parse_quantity(value: Any) -> int:
    """A resource quantity ("8", 8, "1k", "2Ki") as a whole number, rounded down.

    Extended resources are whole numbers by API validation; anything unparsable counts as 0 so
    one odd object cannot break ingest.
    """
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if not isinstance(value, str):
        return 0
    m = _QUANTITY_RE.match(value.strip())
    if not m:
        return 0
    try:
        return int(Decimal(m.group(1)) * _SI[m.group(2) or ""])
    except (InvalidOperation, ValueError):
        return 0


def shared(value: Any) -> str:
    """`value` as a string shared with earlier equal ones (bounded: past _SHARED_MAX distinct
    values, new ones are kept as they are)."""
    if not isinstance(value, str):
        return ""
    got = _shared.get(value)
    if got is not None:
        return got
    if len(_shared) < _SHARED_MAX and len(value) <= 128:
        _shared[value] = value
    return value


def bounded(message: Any) -> str:
    if not isinstance(message, str):
        return ""
    return message if len(message) <= MESSAGE_MAX else message[:MESSAGE_MAX]


@functools.lru_cache(maxsize=8192)
def parse_time(value: str | None) -> float | None:
    """An RFC 3339 time (`2026-01-05T10:00:00Z`, or a MicroTime with fractional seconds) as
    unix seconds; None when absent or unparsable (never raises: one odd object must not break
    ingest)."""
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _extended(resources: dict[str, Any] | None) -> dict[str, int]:
    if not resources:
        return {}
    return {k: parse_quantity(v) for k, v in resources.items() if "/" in k}


def _container_requests(container: dict[str, Any]) -> dict[str, int]:
    res = container.get("resources") or {}
    # The API server defaults requests to limits for extended resources; hand-written objects
    # (and old clusters' fixtures) may carry only limits.
    out = _extended(res.get("limits"))
    out.update(_extended(res.get("requests")))
    return out


def _add(into: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def effective_requests(spec: dict[str, Any]) -> dict[str, int]:
    """Extended-resource requests of a pod, counted the way the scheduler counts them.

    Mirrors k8s.io/component-helpers resource.PodRequests: the sum over app containers, where
    sidecar init containers (restartPolicy Always) keep running and add to that sum, against the
    largest single init container (plus the sidecars started before it); the larger wins per
    resource.  Pod overhead is added on top.
    """
    total: dict[str, int] = {}
    for c in spec.get("containers") or ():
        _add(total, _container_requests(c))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for c in spec.get("initContainers") or ():
        req = _container_requests(c)
        if c.get("restartPolicy") == "Always":
            _add(total, req)
            _add(sidecars, req)
            _max(init_peak, sidecars)
        else:
            step = dict(req)
            _add(step, sidecars)
            _max(init_peak, step)
    _max(total, init_peak)
    _add(total, _extended(spec.get("overhead")))
    return {k: v for k, v in total.items() if v}


def _controller_ref(meta: dict[str, Any]) -> dict[str, Any] | None:
    refs = meta.get("ownerReferences") or ()
    for ref in refs:
        if ref.get("controller"):
            return ref
    return refs[0] if refs else None


def _kubeflow_kind(labels: dict[str, str], ref: dict[str, Any] | None) -> str:
    if ref is not None and ref.get("apiVersion", "").startswith("kubeflow.org/"):
        return str(ref.get("kind") or "TrainingJob")
    operator = labels.get(_KUBEFLOW_OPERATOR_LABEL, "").removesuffix("-controller").lower()
    return _KUBEFLOW_KINDS.get(operator, "TrainingJob")


def resolve_workload(obj: dict[str, Any]) -> tuple[str, str]:
    """(workload kind, workload name) of a pod, from labels and owner references only."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    name = meta.get("name", "")
    for label, kind in _WORKLOAD_LABELS[:3]:
        if labels.get(label):
            return kind, labels[label]
    ref = _controller_ref(meta)
    if labels.get(_KUBEFLOW_JOB_LABEL):
        return _kubeflow_kind(labels, ref), labels[_KUBEFLOW_JOB_LABEL]
    label, kind = _WORKLOAD_LABELS[3]
    if labels.get(label):
        return kind, labels[label]
    if ref is None:
        return "Pod", name
    kind = ref.get("kind", "")
    owner = ref.get("name", "")
    if kind == "Node":  # static pod: the kubelet's mirror pod is its own workload
        return "Pod", name
    if kind == "ReplicaSet":
        # A Deployment names its ReplicaSets <deployment>-<pod-template-hash> and labels the pods
        # with that hash.  Without the label the ReplicaSet stands alone.
        h = labels.get("pod-template-hash")
        if h and owner.endswith("-" + h):
            return "Deployment", owner[: -len(h) - 1]
        return "ReplicaSet", owner
    return kind or "Pod", owner or name


def is_static_pod(obj: dict[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return True
    return any(r.get("kind") == "Node" for r in meta.get("ownerReferences") or ())


# Pod condition types kept, and whether their reason and message are kept too.
_POD_CONDITIONS = {
    "PodScheduled": True,
    "Initialized": False,
    "ContainersReady": False,
    "Ready": False,
    "DisruptionTarget": True,
}


def _conditions(status: dict[str, Any]) -> dict[str, Condition]:
    out: dict[str, Condition] = {}
    for cond in status.get("conditions") or ():
        ctype = cond.get("type")
        detailed = _POD_CONDITIONS.get(ctype)
        if detailed is None:
            continue
        out[ctype] = Condition(
            status=shared(cond.get("status")),
            last_transition=parse_time(cond.get("lastTransitionTime")),
            reason=shared(cond.get("reason")) if detailed else "",
            message=bounded(cond.get("message")) if detailed else "",
        )
    return out


def _containers(status: dict[str, Any]) -> tuple[int, float | None]:
    """(sum of restart counts, latest running start) over the app containers."""
    restarts = 0
    started: float | None = None
    for cs in status.get("containerStatuses") or ():
        n = cs.get("restartCount")
        if isinstance(n, int):
            restarts += n
        running = (cs.get("state") or {}).get("running")
        if running:
            t = parse_time(running.get("startedAt"))
            if t is not None and (started is None or t > started):
                started = t
    return restarts, started


def pod_from_json(obj: dict[str, Any]) -> PodInfo:
    """Trim a Pod object (as the API serves it) to a PodInfo.  Raises KeyError/TypeError on an
    object without metadata.name/uid (the caller counts that as a decode error)."""
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    annotations = meta.get("annotations") or {}
    kind, workload = resolve_workload(obj)
    ref = _controller_ref(meta)
    conds = _conditions(status)
    ready = conds.get("Ready")
    restarts, started = _containers(status)
    return PodInfo(
        uid=meta["uid"],
        namespace=shared(meta.get("namespace", "")),
        name=meta["name"],
        node=spec.get("nodeName") or "",
        phase=status.get("phase") or "Pending",
        ip=status.get("podIP") or "",
        labels=dict(meta.get("labels") or {}),
        annotations=_ours(annotations),
        workload_kind=kind,
        workload=workload,
        requests=effective_requests(spec),
        is_daemonset=ref is not None and ref.get("kind") == "DaemonSet",
        is_static=is_static_pod(obj),
        ready=ready is not None and ready.status == "True",
        deleting=bool(meta.get("deletionTimestamp")),
        ports=named_ports(spec),
        created=parse_time(meta.get("creationTimestamp")) or 0.0,
        deleted_at=parse_time(meta.get("deletionTimestamp")),
        reason=shared(status.get("reason")),
        message=bounded(status.get("message")),
        scheduled=conds.get("PodScheduled"),
        initialized=conds.get("Initialized"),
        containers_ready=conds.get("ContainersReady"),
        ready_condition=ready,
        disruption=conds.get("DisruptionTarget"),
        restarts=restarts,
        started_at=started,
        gated=bool(spec.get("schedulingGates")),
    )


def named_ports(spec: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """(name, containerPort) of every named port of the app containers, in spec order."""
    out = []
    for container in spec.get("containers") or ():
        for port in container.get("ports") or ():
            name, number = port.get("name"), port.get("containerPort")
            if name and isinstance(number, int) and 0 < number < 65536:
                out.append((name, number))
    return tuple(out)


def node_from_json(obj: dict[str, Any]) -> NodeInfo:
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return NodeInfo(
        name=meta["name"],
        labels=dict(meta.get("labels") or {}),
        taints=[
            Taint(key=t.get("key", ""), value=t.get("value") or "", effect=t.get("effect", ""))
            for t in spec.get("taints") or ()
        ],
        capacity=_extended(status.get("capacity")),
        allocatable=_extended(status.get("allocatable")),
        unschedulable=bool(spec.get("unschedulable")),
        ready=_node_ready(status),
    )


def _node_ready(status: dict[str, Any]) -> str:
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Ready":
            return shared(cond.get("status")) or "Unknown"
    return "Unknown"


def _device_entries(resources: dict[str, Any] | None) -> dict[str, int]:
    """Quota entries for extended resources (`requests.nvidia.com/gpu`, `nvidia.com/gpu`,
    `limits.nvidia.com/gpu`); object counts (`count/...`) and cpu/memory are dropped."""
    if not resources:
        return {}
    return {shared(k): parse_quantity(v) for k, v in resources.items()
            if "/" in k and not k.startswith("count/")}


def quota_from_json(obj: dict[str, Any]) -> QuotaInfo:
    meta = obj["metadata"]
    status = obj.get("status") or {}
    return QuotaInfo(
        namespace=shared(meta["namespace"]),
        name=meta["name"],
        # status.hard is the enforced copy of spec.hard; spec.hard before the controller ran.
        hard=_device_entries(status.get("hard") or (obj.get("spec") or {}).get("hard")),
        used=_device_entries(status.get("used")),
    )


def event_from_json(obj: dict[str, Any]) -> WarningEvent:
    """A core/v1 Event (old-style: count/firstTimestamp/lastTimestamp; new-style from the
    events.k8s.io recorder: eventTime/series) trimmed to what a count needs."""
    meta = obj["metadata"]
    inv = obj.get("involvedObject") or {}
    series = obj.get("series") or {}
    event_time = parse_time(obj.get("eventTime"))
    first = parse_time(obj.get("firstTimestamp")) or event_time
    last = parse_time(series.get("lastObservedTime")) or parse_time(obj.get("lastTimestamp")) or event_time
    if first is None:
        first = last if last is not None else parse_time(meta.get("creationTimestamp")) or 0.0
    count = series.get("count") or obj.get("count") or 1
    return WarningEvent(
        uid=meta["uid"],
        namespace=shared(inv.get("namespace") or meta.get("namespace")),
        reason=shared(obj.get("reason")),
        kind=shared(inv.get("kind")),
        name=inv.get("name") or "",
        object_uid=inv.get("uid") or "",
        message=bounded(obj.get("message")),
        count=count if isinstance(count, int) and count > 0 else 1,
        first_seen=first,
        last_seen=last if last is not None else first,
    )


def _ours(annotations: dict[str, Any] | None) -> dict[str, str]:
    return {k: v for k, v in (annotations or {}).items() if k.startswith(ANNOTATION_PREFIX)}


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def workload_from_json(obj: dict[str, Any], kind: str) -> WorkloadInfo:
    """A Deployment or StatefulSet (apps/v1) or LeaderWorkerSet (leaderworkerset.x-k8s.io/v1)."""
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    group_size = 1
    if kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate") or {}
        template = lwt.get("leaderTemplate") or lwt.get("workerTemplate") or {}
        group_size = max(1, _int(lwt.get("size"), 1))
    else:
        template = spec.get("template") or {}
    return WorkloadInfo(
        kind=kind,
        namespace=shared(meta["namespace"]),
        name=meta["name"],
        uid=meta.get("uid") or "",
        labels=dict(meta.get("labels") or {}),
        template_labels=dict((template.get("metadata") or {}).get("labels") or {}),
        annotations=_ours(meta.get("annotations")),
        replicas=_int(spec.get("replicas"), 1),
        ready_replicas=_int(status.get("readyReplicas")),
        updated_replicas=_int(status.get("updatedReplicas")),
        current_replicas=_int(status.get("replicas")),
        group_size=group_size,
        created=parse_time(meta.get("creationTimestamp")) or 0.0,
    )
