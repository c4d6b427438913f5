"""Raw Kubernetes JSON -> trimmed state objects (pure functions, no I/O).

The kube source reads pods and nodes as raw JSON (orjson) instead of typed client models, and
keeps only what the signals need: a `PodInfo` is a few hundred bytes, not a full API object.

Workload resolution works from owner references and well-known labels only, never from extra
API lookups, so the exporter needs RBAC for pods and nodes and nothing else.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from ..state import NodeInfo, PodInfo, Taint

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


def _is_ready(status: dict[str, Any]) -> bool:
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def pod_from_json(obj: dict[str, Any]) -> PodInfo:
    """Trim a Pod object (as the API serves it) to a PodInfo.  Raises KeyError/TypeError on an
    object without metadata.name/uid (the caller counts that as a decode error)."""
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    annotations = meta.get("annotations") or {}
    kind, workload = resolve_workload(obj)
    ref = _controller_ref(meta)
    return PodInfo(
        uid=meta["uid"],
        namespace=meta.get("namespace", ""),
        name=meta["name"],
        node=spec.get("nodeName") or "",
        phase=status.get("phase") or "Pending",
        ip=status.get("podIP") or "",
        labels=dict(meta.get("labels") or {}),
        annotations={k: v for k, v in annotations.items() if k.startswith(ANNOTATION_PREFIX)},
        workload_kind=kind,
        workload=workload,
        requests=effective_requests(spec),
        is_daemonset=ref is not None and ref.get("kind") == "DaemonSet",
        is_static=is_static_pod(obj),
        ready=_is_ready(status),
        deleting=bool(meta.get("deletionTimestamp")),
        ports=named_ports(spec),
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
    )
