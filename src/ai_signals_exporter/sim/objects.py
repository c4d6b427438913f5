"""Builders for Kubernetes object JSON in the shapes the API serves them: Pod, Node,
ResourceQuota, Event, Deployment, StatefulSet, LeaderWorkerSet, and pod states a GPU cluster
produces (admission rejected, disrupted, unschedulable, scheduling-gated).

Used by the test API server, the simulator and tests.  The shapes follow `kubectl get -o json`
output: owner references the way the controllers set them (a Deployment's pod points at its
ReplicaSet and carries the pod-template-hash label, a LeaderWorkerSet's pod at a StatefulSet, ...),
resource quantities as strings, conditions and container statuses.  `FakeKubeAPI` fills in
resourceVersion and creationTimestamp when an object is added (a builder's creationTimestamp,
when given, is kept).  Where a shape was copied from upstream, the function says from where.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from typing import Any, Iterable

DEFAULT_GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"
GPU_RESOURCE = "nvidia.com/gpu"
_TS = "2026-01-05T10:00:00Z"
_DEFAULT = object()


def _hash(*parts: str, n: int = 10) -> str:
    """Deterministic, lower-case alphanumeric suffix like the controllers generate."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:n])


def _ref(api_version: str, kind: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{name}")),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def make_node(
    name: str,
    gpus: int = 8,
    taints: Any = _DEFAULT,
    labels: dict[str, str] | None = None,
    gpu_product: str = DEFAULT_GPU_PRODUCT,
    unhealthy_gpus: int = 0,
    unschedulable: bool = False,
    resource_name: str = GPU_RESOURCE,
) -> dict[str, Any]:
    """A Node.  GPU nodes get the labels GPU feature discovery sets and, unless `taints` is given,
    the usual `nvidia.com/gpu=present:NoSchedule` taint.  Unhealthy GPUs are withdrawn from
    allocatable by the device plugin, as on a real node."""
    if taints is _DEFAULT:
        taints = [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}] if gpus else []
    node_labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "p5.48xlarge" if gpus else "m6i.2xlarge",
    }
    if gpus:
        node_labels.update(
            {
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.count": str(gpus),
                "nvidia.com/gpu.product": gpu_product,
                "nvidia.com/gpu.memory": "81559",
            }
        )
    node_labels.update(labels or {})
    capacity = {
        "cpu": "192" if gpus else "8",
        "ephemeral-storage": "3749682236Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": "2097152000Ki" if gpus else "32386544Ki",
        "pods": "110",
    }
    allocatable = dict(capacity, cpu="191450m" if gpus else "7910m")
    if gpus:
        capacity[resource_name] = str(gpus)
        allocatable[resource_name] = str(max(0, gpus - unhealthy_gpus))
    spec: dict[str, Any] = {"providerID": f"aws:///us-east-1a/i-{_hash(name, n=17)}"}
    if taints:
        spec["taints"] = list(taints)
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
            "labels": node_labels,
            "name": name,
            "uid": str(uuid.uuid4()),
        },
        "spec": spec,
        "status": {
            "addresses": [
                {"address": "10.0.0.1", "type": "InternalIP"},
                {"address": name, "type": "Hostname"},
            ],
            "allocatable": allocatable,
            "capacity": capacity,
            "conditions": [
                {
                    "lastHeartbeatTime": _TS,
                    "lastTransitionTime": _TS,
                    "message": "kubelet is posting ready status",
                    "reason": "KubeletReady",
                    "status": "True",
                    "type": "Ready",
                }
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": str(uuid.uuid5(uuid.NAMESPACE_DNS, "boot." + name)),
                "containerRuntimeVersion": "containerd://1.7.22",
                "kernelVersion": "6.1.112",
                "kubeProxyVersion": "",
                "kubeletVersion": "v1.31.2",
                "machineID": _hash(name, n=32),
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.5 LTS",
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
            },
        },
    }


def _owner_meta(
    kind: str, owner: str, namespace: str, name: str, labels: dict[str, str], node: str
) -> list[dict[str, Any]]:
    """Owner references and controller labels for a pod of workload (kind, owner).  Mutates
    `labels` the way the controller would."""
    if kind == "Deployment":
        h = _hash(namespace, owner, n=10)
        labels.setdefault("pod-template-hash", h)
        return [_ref("apps/v1", "ReplicaSet", f"{owner}-{labels['pod-template-hash']}")]
    if kind == "ReplicaSet":
        return [_ref("apps/v1", "ReplicaSet", owner)]
    if kind == "StatefulSet":
        labels.setdefault("apps.kubernetes.io/pod-index", name.rsplit("-", 1)[-1])
        labels.setdefault("statefulset.kubernetes.io/pod-name", name)
        return [_ref("apps/v1", "StatefulSet", owner)]
    if kind == "DaemonSet":
        labels.setdefault("controller-revision-hash", _hash(owner, n=10))
        labels.setdefault("pod-template-generation", "1")
        return [_ref("apps/v1", "DaemonSet", owner)]
    if kind == "Job":
        labels.setdefault("batch.kubernetes.io/job-name", owner)
        labels.setdefault("job-name", owner)
        return [_ref("batch/v1", "Job", owner)]
    if kind == "LeaderWorkerSet":
        labels.setdefault("leaderworkerset.sigs.k8s.io/name", owner)
        labels.setdefault("leaderworkerset.sigs.k8s.io/group-index", "0")
        labels.setdefault("leaderworkerset.sigs.k8s.io/worker-index", "0")
        return [_ref("apps/v1", "StatefulSet", owner)]
    if kind == "InferenceService":
        labels.setdefault("serving.kserve.io/inferenceservice", owner)
        labels.setdefault("component", "predictor")
        h = _hash(namespace, owner, n=10)
        labels.setdefault("pod-template-hash", h)
        return [_ref("apps/v1", "ReplicaSet", f"{owner}-predictor-{labels['pod-template-hash']}")]
    if kind == "KnativeService":
        labels.setdefault("serving.knative.dev/service", owner)
        labels.setdefault("serving.knative.dev/configuration", owner)
        labels.setdefault("serving.knative.dev/revision", f"{owner}-00001")
        h = _hash(namespace, owner, n=10)
        labels.setdefault("pod-template-hash", h)
        return [_ref("apps/v1", "ReplicaSet", f"{owner}-00001-deployment-{labels['pod-template-hash']}")]
    if kind == "JobSet":
        labels.setdefault("jobset.sigs.k8s.io/jobset-name", owner)
        labels.setdefault("jobset.sigs.k8s.io/replicatedjob-name", "workers")
        job = f"{owner}-workers-0"
        labels.setdefault("batch.kubernetes.io/job-name", job)
        return [_ref("batch/v1", "Job", job)]
    if kind in ("PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "PaddleJob", "JAXJob"):
        labels.setdefault("training.kubeflow.org/job-name", owner)
        labels.setdefault("training.kubeflow.org/operator-name", kind.lower() + "-controller")
        labels.setdefault("training.kubeflow.org/replica-type", "worker")
        return [_ref("kubeflow.org/v1", kind, owner)]
    if kind == "Node":
        return [_ref("v1", "Node", owner or node) | {"blockOwnerDeletion": False}]
    return [_ref("apps/v1" if kind else "v1", kind, owner)]


def make_pod(
    namespace: str,
    name: str,
    node: str = "",
    owner: tuple[str, str] | None = None,
    gpu: int = 0,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    ip: str | None = None,
    phase: str | None = None,
    ready: bool | None = None,
    resource_name: str = GPU_RESOURCE,
    init_gpu: int = 0,
    sidecar_gpu: int = 0,
    container_port: int = 8000,
    created: str | None = None,
    scheduled_at: str = _TS,
    initialized_at: str | None = None,
    ready_at: str | None = None,
    started_at: str | None = None,
    restarts: int = 0,
    scheduling_gates: Iterable[str] = (),
    unschedulable_message: str = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
) -> dict[str, Any]:
    """A Pod.  `owner` is the *workload* ("Deployment", "llama"): the builder sets the owner
    reference its controller would set (a ReplicaSet for a Deployment, a StatefulSet for a
    LeaderWorkerSet, a Node for a static pod) and the controller's labels.

    A pod with a node is Running and Ready unless told otherwise; without a node it is Pending,
    PodScheduled=False reason Unschedulable with `unschedulable_message` (the scheduler's
    FitError text), or reason SchedulingGated when `scheduling_gates` are given (the message the
    apiserver sets on create: pkg/registry/core/pod/strategy.go applySchedulingGatedCondition,
    v1.31).  Times (RFC 3339) stage a cold start: created -> scheduled_at (PodScheduled) ->
    initialized_at (Initialized) -> ready_at (ContainersReady, Ready); started_at is the app
    container's state.running.startedAt.  Unset ones default to the one before.
    """
    initialized_at = initialized_at or scheduled_at
    ready_at = ready_at or initialized_at
    started_at = started_at or initialized_at
    pod_labels = dict(labels or {})
    pod_annotations = dict(annotations or {})
    owner_refs: list[dict[str, Any]] = []
    if owner is not None:
        kind, owner_name = owner
        owner_refs = _owner_meta(kind, owner_name, namespace, name, pod_labels, node)
        if kind == "Node":
            pod_annotations.setdefault(
                "kubernetes.io/config.mirror", hashlib.md5(name.encode()).hexdigest()
            )
            pod_annotations.setdefault("kubernetes.io/config.source", "file")
    if phase is None:
        phase = "Running" if node else "Pending"
    if ready is None:
        ready = phase == "Running"
    if ip is None and node and phase == "Running":
        digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
        ip = f"10.{digest[0]}.{digest[1]}.{max(1, digest[2] % 255)}"

    requests: dict[str, str] = {"cpu": "500m", "memory": "1Gi"}
    limits: dict[str, str] = {"memory": "1Gi"}
    if gpu:
        requests[resource_name] = str(gpu)
        limits[resource_name] = str(gpu)
    container: dict[str, Any] = {
        "name": "main",
        "image": "vllm/vllm-openai:v0.6.3" if gpu else "registry.k8s.io/pause:3.10",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": container_port, "name": "http", "protocol": "TCP"}],
        "resources": {"limits": limits, "requests": requests},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "volumeMounts": [
            {
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "name": "kube-api-access",
                "readOnly": True,
            }
        ],
    }
    spec: dict[str, Any] = {
        "containers": [container],
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": "default",
        "serviceAccountName": "default",
        "terminationGracePeriodSeconds": 30,
        "tolerations": [
            {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists",
             "tolerationSeconds": 300},
            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists",
             "tolerationSeconds": 300},
        ],
        "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}],
    }
    if gpu or init_gpu or sidecar_gpu:
        spec["tolerations"].append(
            {"effect": "NoSchedule", "key": resource_name, "operator": "Exists"}
        )
    init: list[dict[str, Any]] = []
    if init_gpu:
        init.append({"name": "warmup", "image": "busybox:1.36",
                     "resources": {"limits": {resource_name: str(init_gpu)},
                                   "requests": {resource_name: str(init_gpu)}}})
    if sidecar_gpu:
        init.append({"name": "sidecar", "image": "busybox:1.36", "restartPolicy": "Always",
                     "resources": {"limits": {resource_name: str(sidecar_gpu)},
                                   "requests": {resource_name: str(sidecar_gpu)}}})
    if init:
        spec["initContainers"] = init
    if node:
        spec["nodeName"] = node

    conditions: list[dict[str, Any]] = []
    status: dict[str, Any] = {"phase": phase, "qosClass": "Burstable"}
    if node:
        status["hostIP"] = "10.0.0.1"
        status["hostIPs"] = [{"ip": "10.0.0.1"}]
        status["startTime"] = _TS
        rs = "True" if ready else "False"
        for ctype, cstatus, at in (("PodReadyToStartContainers", "True", initialized_at),
                                   ("Initialized", "True", initialized_at), ("Ready", rs, ready_at),
                                   ("ContainersReady", rs, ready_at), ("PodScheduled", "True", scheduled_at)):
            conditions.append({"lastProbeTime": None, "lastTransitionTime": at,
                               "status": cstatus, "type": ctype})
        running = phase == "Running"
        status["containerStatuses"] = [{
            "containerID": "containerd://" + _hash(namespace, name, n=32),
            "image": container["image"],
            "imageID": container["image"],
            "lastState": {},
            "name": "main",
            "ready": bool(ready),
            "restartCount": restarts,
            "started": running,
            "state": {"running": {"startedAt": started_at}} if running else {"waiting": {"reason": "ContainerCreating"}},
        }]
        if restarts:
            status["containerStatuses"][0]["lastState"] = {"terminated": {
                "containerID": "containerd://" + _hash(namespace, name, "prev", n=32), "exitCode": 1,
                "finishedAt": started_at, "reason": "Error", "startedAt": initialized_at}}
    elif scheduling_gates:
        spec["schedulingGates"] = [{"name": g} for g in scheduling_gates]
        conditions.append({"lastProbeTime": None, "lastTransitionTime": scheduled_at,
                           "message": "Scheduling is blocked due to non-empty scheduling gates",
                           "reason": "SchedulingGated", "status": "False", "type": "PodScheduled"})
    else:
        conditions.append({"lastProbeTime": None, "lastTransitionTime": scheduled_at,
                           "message": unschedulable_message,
                           "reason": "Unschedulable", "status": "False", "type": "PodScheduled"})
    status["conditions"] = conditions
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]

    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())}
    if created:
        metadata["creationTimestamp"] = created
    if pod_labels:
        metadata["labels"] = pod_labels
    if pod_annotations:
        metadata["annotations"] = pod_annotations
    if owner_refs:
        metadata["ownerReferences"] = owner_refs
        if owner_refs[0]["kind"] in ("ReplicaSet", "DaemonSet", "Job"):
            metadata["generateName"] = owner_refs[0]["name"] + "-"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}


# ---- pod states ------------------------------------------------------------------------------


def admission_rejected(
    pod: dict[str, Any], resource: str = GPU_RESOURCE, requested: int = 1, available: int = 0,
    at: str = _TS,
) -> dict[str, Any]:
    """`pod` (scheduled to a node) as the kubelet leaves it when the device manager cannot
    allocate its GPUs: phase Failed, reason UnexpectedAdmissionError, no containers started.

    Shape: pkg/kubelet/kubelet.go rejectPod (v1.31: `Phase: PodFailed, Reason: reason, Message:
    "Pod was rejected: " + message`), the message from pkg/kubelet/lifecycle/predicate.go
    ("Allocate failed due to %v, which is unexpected") around pkg/kubelet/cm/devicemanager/
    manager.go ("requested number of devices unavailable for %s. Requested: %d, Available: %d");
    the status as reported in kubernetes/kubernetes#130145 and ray-project/kuberay#1414 (no
    conditions: the status manager drops the kubelet-owned ones it never set)."""
    out = copy.deepcopy(pod)
    out["status"] = {
        "message": (f"Pod was rejected: Allocate failed due to requested number of devices unavailable "
                    f"for {resource}. Requested: {requested}, Available: {available}, which is unexpected"),
        "phase": "Failed",
        "qosClass": out.get("status", {}).get("qosClass", "Burstable"),
        "reason": "UnexpectedAdmissionError",
        "startTime": at,
    }
    return out


def out_of_resource(pod: dict[str, Any], resource: str = GPU_RESOURCE, at: str = _TS) -> dict[str, Any]:
    """The kubelet's other admission rejection for devices: reason `OutOf<resource>` from the
    resource-fit admit handler (pkg/kubelet/lifecycle/predicate.go, v1.31: "OutOf%s" with
    "Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d")."""
    out = admission_rejected(pod, resource, at=at)
    out["status"]["reason"] = f"OutOf{resource}"
    out["status"]["message"] = (f"Pod was rejected: Node didn't have enough resource: {resource}, "
                                f"requested: 1, used: 8, capacity: 8")
    return out


# DisruptionTarget reasons and the messages their writers set (v1.31): the scheduler's
# preemption (pkg/scheduler/framework/preemption/preemption.go), the eviction API
# (pkg/registry/core/pod/storage/eviction.go), the kubelet's node-pressure eviction and
# graceful shutdown (pkg/kubelet/eviction/eviction_manager.go, nodeshutdown), the taint
# eviction controller (pkg/controller/tainteviction/taint_eviction.go) and pod GC
# (pkg/controller/podgc/gc_controller.go).
DISRUPTION_MESSAGES = {
    "PreemptionByScheduler": "default-scheduler: preempting to accommodate a higher priority pod",
    "EvictionByEvictionAPI": "Eviction API: evicting",
    "TerminationByKubelet": "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. ",
    "DeletionByTaintManager": "Taint manager: deleting due to NoExecute taint",
    "DeletionByPodGC": "PodGC: node no longer exists",
}


def disrupted(pod: dict[str, Any], reason: str = "PreemptionByScheduler", at: str = _TS,
              message: str | None = None) -> dict[str, Any]:
    """`pod` with a DisruptionTarget=True condition as its disruptor writes it before deleting
    it (a deletionTimestamp follows, except for the kubelet's own eviction, which fails the pod
    with reason Evicted: pkg/kubelet/eviction/helpers.go Reason = "Evicted")."""
    out = copy.deepcopy(pod)
    status = out.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or () if c.get("type") != "DisruptionTarget"]
    msg = message if message is not None else DISRUPTION_MESSAGES.get(reason, "")
    conditions.append({"lastProbeTime": None, "lastTransitionTime": at, "message": msg,
                       "reason": reason, "status": "True", "type": "DisruptionTarget"})
    status["conditions"] = conditions
    if reason == "TerminationByKubelet":
        status.update(phase="Failed", reason="Evicted", message=msg)
    else:
        out["metadata"]["deletionTimestamp"] = at
        out["metadata"]["deletionGracePeriodSeconds"] = 30
    return out


# ---- quota and events ------------------------------------------------------------------------


def make_resource_quota(namespace: str, name: str, hard: dict[str, Any],
                        used: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ResourceQuota as the quota controller leaves it: spec.hard copied to status.hard, and
    status.used for every hard entry (`kubectl get quota -o json`, v1.31; extended resources
    are quota'd as `requests.<name>`, docs "Resource Quotas" > "Resource quota for extended
    resources")."""
    hard_s = {k: str(v) for k, v in hard.items()}
    used_s = {k: "0" for k in hard}
    used_s.update({k: str(v) for k, v in (used or {}).items()})
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
        "spec": {"hard": hard_s},
        "status": {"hard": dict(hard_s), "used": used_s},
    }


def quota_exceeded_message(pod_name: str, quota: str, resource: str = "requests." + GPU_RESOURCE,
                           requested: int = 1, used: int = 8, limited: int = 8) -> str:
    """The ReplicaSet/StatefulSet/Job controllers' FailedCreate message for a pod the quota
    admission plugin refused: controller_utils.go `"Error creating: %v"` around the apiserver's
    Forbidden error and staging/src/k8s.io/apiserver/pkg/admission/plugin/resourcequota/
    controller.go `"exceeded quota: %s, requested: %s, used: %s, limited: %s"` (v1.31)."""
    return (f'Error creating: pods "{pod_name}" is forbidden: exceeded quota: {quota}, '
            f"requested: {resource}={requested}, used: {resource}={used}, limited: {resource}={limited}")


def make_event(
    namespace: str,
    involved: tuple[str, str],
    reason: str,
    message: str,
    *,
    type: str = "Warning",
    count: int = 1,
    first: str = _TS,
    last: str | None = None,
    component: str = "replicaset-controller",
    involved_uid: str | None = None,
    involved_api_version: str = "apps/v1",
    series: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Event about `involved` = (kind, name).  Old-style (client-go record package:
    count, firstTimestamp, lastTimestamp, source) unless `series`: then as the events.k8s.io
    recorder writes it through core/v1 (eventTime MicroTime, series.count/lastObservedTime,
    reportingController; empty firstTimestamp/lastTimestamp, count absent).  Name: the
    recorder's `<involved name>.<hex unix nanos>`."""
    kind, obj_name = involved
    obj_uid = involved_uid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{namespace}/{obj_name}"))
    ev: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": name or f"{obj_name}.{_hash(namespace, obj_name, reason, message, first, n=16)}",
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
        },
        "involvedObject": {"apiVersion": involved_api_version, "kind": kind, "name": obj_name,
                           "namespace": namespace, "uid": obj_uid},
        "reason": reason,
        "message": message,
        "type": type,
        "reportingComponent": component,
        "reportingInstance": "",
    }
    if series:
        micro = first.replace("Z", ".000000Z") if "." not in first else first
        ev.update(eventTime=micro, firstTimestamp=None, lastTimestamp=None, action="Create",
                  reportingComponent=component, source={})
        if count > 1:
            last_micro = (last or first).replace("Z", ".000000Z") if "." not in (last or first) else (last or first)
            ev["series"] = {"count": count, "lastObservedTime": last_micro}
    else:
        ev.update(count=count, firstTimestamp=first, lastTimestamp=last or first, eventTime=None,
                  source={"component": component})
    return ev


# ---- workloads -------------------------------------------------------------------------------


def _template(labels: dict[str, str], gpu: int) -> dict[str, Any]:
    resources = {"limits": {GPU_RESOURCE: str(gpu)}, "requests": {GPU_RESOURCE: str(gpu)}} if gpu else {}
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": [{"name": "main", "image": "vllm/vllm-openai:v0.6.3",
                                 "ports": [{"containerPort": 8000, "name": "http", "protocol": "TCP"}],
                                 "resources": resources}],
                 "restartPolicy": "Always", "terminationGracePeriodSeconds": 30},
    }


def _workload_meta(namespace: str, name: str, labels: dict[str, str] | None,
                   annotations: dict[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "generation": 1}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def make_deployment(namespace: str, name: str, replicas: int = 1, ready: int | None = None,
                    labels: dict[str, str] | None = None, template_labels: dict[str, str] | None = None,
                    gpu: int = 1, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """An apps/v1 Deployment with the status the deployment controller writes (`kubectl get
    deploy -o json`, v1.31; status fields absent when zero, as omitempty serialises them)."""
    ready = replicas if ready is None else ready
    tl = template_labels if template_labels is not None else {"app": name}
    status: dict[str, Any] = {"observedGeneration": 1}
    for k, v in (("replicas", replicas), ("updatedReplicas", replicas), ("readyReplicas", ready),
                 ("availableReplicas", ready), ("unavailableReplicas", replicas - ready)):
        if v:
            status[k] = v
    status["conditions"] = [
        {"type": "Available", "status": "True" if ready >= replicas else "False",
         "reason": "MinimumReplicasAvailable" if ready >= replicas else "MinimumReplicasUnavailable",
         "message": "Deployment has minimum availability." if ready >= replicas
         else "Deployment does not have minimum availability.",
         "lastTransitionTime": _TS, "lastUpdateTime": _TS},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
         "message": f'ReplicaSet "{name}-{_hash(namespace, name, n=10)}" has successfully progressed.',
         "lastTransitionTime": _TS, "lastUpdateTime": _TS},
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _workload_meta(namespace, name, labels, annotations),
        "spec": {"replicas": replicas, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                 "selector": {"matchLabels": dict(tl)},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": _template(tl, gpu)},
        "status": status,
    }


def make_statefulset(namespace: str, name: str, replicas: int = 1, ready: int | None = None,
                     labels: dict[str, str] | None = None, template_labels: dict[str, str] | None = None,
                     gpu: int = 1, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """An apps/v1 StatefulSet with the statefulset controller's status (`kubectl get sts -o
    json`, v1.31)."""
    ready = replicas if ready is None else ready
    tl = template_labels if template_labels is not None else {"app": name}
    rev = f"{name}-{_hash(namespace, name, n=10)}"
    status: dict[str, Any] = {"observedGeneration": 1, "replicas": replicas, "currentReplicas": replicas,
                              "updatedReplicas": replicas, "currentRevision": rev, "updateRevision": rev,
                              "collisionCount": 0, "availableReplicas": ready}
    if ready:
        status["readyReplicas"] = ready
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _workload_meta(namespace, name, labels, annotations),
        "spec": {"replicas": replicas, "serviceName": name, "podManagementPolicy": "OrderedReady",
                 "revisionHistoryLimit": 10, "selector": {"matchLabels": dict(tl)},
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                 "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                 "template": _template(tl, gpu)},
        "status": status,
    }


def make_leaderworkerset(namespace: str, name: str, replicas: int = 1, size: int = 2,
                         ready: int | None = None, labels: dict[str, str] | None = None,
                         template_labels: dict[str, str] | None = None, gpu: int = 8,
                         annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A leaderworkerset.x-k8s.io/v1 LeaderWorkerSet: `replicas` groups of `size` pods.  Fields
    from kubernetes-sigs/lws api/leaderworkerset/v1/leaderworkerset_types.go (v0.6): spec.replicas,
    spec.leaderWorkerTemplate.{size, workerTemplate, leaderTemplate, restartPolicy},
    spec.rolloutStrategy, spec.startupPolicy; status.{replicas, readyReplicas, updatedReplicas,
    hpaPodSelector, conditions}.  Served as a custom resource: kind/apiVersion on every item."""
    ready = replicas if ready is None else ready
    tl = template_labels if template_labels is not None else {"app": name}
    status: dict[str, Any] = {
        "conditions": [{"type": "Available", "status": "True" if ready >= replicas else "False",
                        "reason": "AllGroupsReady" if ready >= replicas else "GroupsProgressing",
                        "message": "All replicas are ready" if ready >= replicas else "Replicas are progressing",
                        "lastTransitionTime": _TS, "observedGeneration": 1}],
        "hpaPodSelector": f"leaderworkerset.sigs.k8s.io/name={name},leaderworkerset.sigs.k8s.io/worker-index=0",
    }
    for k, v in (("replicas", replicas), ("readyReplicas", ready), ("updatedReplicas", replicas)):
        if v:
            status[k] = v
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": _workload_meta(namespace, name, labels, annotations),
        "spec": {
            "replicas": replicas,
            "leaderWorkerTemplate": {"size": size, "restartPolicy": "RecreateGroupOnPodRestart",
                                     "workerTemplate": _template(tl, gpu)},
            "rolloutStrategy": {"type": "RollingUpdate",
                                "rollingUpdateConfiguration": {"maxSurge": 0, "maxUnavailable": 1}},
            "startupPolicy": "LeaderCreated",
        },
        "status": status,
    }
