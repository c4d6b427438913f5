"""Builders for Pod and Node JSON in the shapes the Kubernetes API serves them.

Used by the test API server, the simulator and tests.  The shapes follow `kubectl get -o json`
output: owner references the way the controllers set them (a Deployment's pod points at its
ReplicaSet and carries the pod-template-hash label, a LeaderWorkerSet's pod at a StatefulSet, ...),
resource quantities as strings, conditions and container statuses.  `FakeKubeAPI` fills in
resourceVersion and creationTimestamp when an object is added.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

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
) -> dict[str, Any]:
    """A Pod.  `owner` is the *workload* ("Deployment", "llama"): the builder sets the owner
    reference its controller would set (a ReplicaSet for a Deployment, a StatefulSet for a
    LeaderWorkerSet, a Node for a static pod) and the controller's labels.

    A pod with a node is Running and Ready unless told otherwise; without a node it is Pending.
    """
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
        for ctype, cstatus in (("PodReadyToStartContainers", "True"), ("Initialized", "True"),
                               ("Ready", rs), ("ContainersReady", rs), ("PodScheduled", "True")):
            conditions.append({"lastProbeTime": None, "lastTransitionTime": _TS,
                               "status": cstatus, "type": ctype})
        running = phase == "Running"
        status["containerStatuses"] = [{
            "containerID": "containerd://" + _hash(namespace, name, n=32),
            "image": container["image"],
            "imageID": container["image"],
            "lastState": {},
            "name": "main",
            "ready": bool(ready),
            "restartCount": 0,
            "started": running,
            "state": {"running": {"startedAt": _TS}} if running else {"waiting": {"reason": "ContainerCreating"}},
        }]
    else:
        conditions.append({"lastProbeTime": None, "lastTransitionTime": _TS,
                           "message": "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
                           "reason": "Unschedulable", "status": "False", "type": "PodScheduled"})
    status["conditions"] = conditions
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]

    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())}
    if pod_labels:
        metadata["labels"] = pod_labels
    if pod_annotations:
        metadata["annotations"] = pod_annotations
    if owner_refs:
        metadata["ownerReferences"] = owner_refs
        if owner_refs[0]["kind"] in ("ReplicaSet", "DaemonSet", "Job"):
            metadata["generateName"] = owner_refs[0]["name"] + "-"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}
