"""Trimming raw Pod/Node JSON into state objects, workload resolution and effective requests.

The literal objects below are written the way `kubectl get pod -o json` prints them (fields as
the apiserver serves them, quantities as strings), so the parsers are tested against real shapes
rather than against our own builders only.
"""

from __future__ import annotations

import json

import pytest

from ai_signals_exporter.sim.objects import (
    admission_rejected,
    disrupted,
    make_deployment,
    make_event,
    make_leaderworkerset,
    make_node,
    make_pod,
    make_resource_quota,
    make_statefulset,
    out_of_resource,
    quota_exceeded_message,
)
from ai_signals_exporter.sources.kube_objects import (
    MESSAGE_MAX,
    effective_requests,
    event_from_json,
    node_from_json,
    parse_quantity,
    parse_time,
    pod_from_json,
    quota_from_json,
    resolve_workload,
    workload_from_json,
)
from ai_signals_exporter.sources.kube_stores import NodeStore, PodStore, QuotaStore, WarningEventStore
from ai_signals_exporter.state import AppState, KubeState

VLLM_DEPLOYMENT_POD = json.loads(
    """
{
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "annotations": {
            "ai-signals.io/capacity-tokens-per-second": "2400",
            "ai-signals.io/scrape-port": "8000",
            "kubectl.kubernetes.io/restartedAt": "2025-11-02T09:14:11Z",
            "prometheus.io/scrape": "true"
        },
        "creationTimestamp": "2025-11-02T09:14:12Z",
        "generateName": "llama-3-8b-6d9f8b7c5d-",
        "labels": {
            "app": "llama-3-8b",
            "app.kubernetes.io/name": "vllm",
            "pod-template-hash": "6d9f8b7c5d"
        },
        "name": "llama-3-8b-6d9f8b7c5d-x7k2p",
        "namespace": "inference",
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "blockOwnerDeletion": true,
                "controller": true,
                "kind": "ReplicaSet",
                "name": "llama-3-8b-6d9f8b7c5d",
                "uid": "0b5d9a52-1a73-4f0e-9a51-6d1c1f1b2e3a"
            }
        ],
        "resourceVersion": "48213377",
        "uid": "8f6a3c2e-55e1-4c4b-a1f0-2f3a9b8c7d61"
    },
    "spec": {
        "containers": [
            {
                "args": ["--model", "meta-llama/Meta-Llama-3-8B-Instruct", "--port", "8000"],
                "image": "vllm/vllm-openai:v0.6.3",
                "imagePullPolicy": "IfNotPresent",
                "name": "vllm",
                "ports": [{"containerPort": 8000, "name": "http", "protocol": "TCP"}],
                "resources": {
                    "limits": {"memory": "64Gi", "nvidia.com/gpu": "2"},
                    "requests": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "2"}
                }
            },
            {
                "image": "envoyproxy/envoy:v1.31.0",
                "name": "proxy",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}
            }
        ],
        "nodeName": "gpu-node-17",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "tolerations": [
            {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"},
            {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300}
        ]
    },
    "status": {
        "conditions": [
            {"lastProbeTime": null, "lastTransitionTime": "2025-11-02T09:14:40Z", "status": "True", "type": "PodReadyToStartContainers"},
            {"lastProbeTime": null, "lastTransitionTime": "2025-11-02T09:14:12Z", "status": "True", "type": "Initialized"},
            {"lastProbeTime": null, "lastTransitionTime": "2025-11-02T09:16:02Z", "status": "True", "type": "Ready"},
            {"lastProbeTime": null, "lastTransitionTime": "2025-11-02T09:16:02Z", "status": "True", "type": "ContainersReady"},
            {"lastProbeTime": null, "lastTransitionTime": "2025-11-02T09:14:12Z", "status": "True", "type": "PodScheduled"}
        ],
        "hostIP": "10.0.12.7",
        "phase": "Running",
        "podIP": "10.244.17.23",
        "podIPs": [{"ip": "10.244.17.23"}],
        "qosClass": "Burstable",
        "startTime": "2025-11-02T09:14:12Z"
    }
}
"""
)

DEVICE_PLUGIN_DAEMONSET_POD = json.loads(
    """
{
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "generateName": "nvidia-device-plugin-daemonset-",
        "labels": {
            "app": "nvidia-device-plugin-daemonset",
            "controller-revision-hash": "7c9c5b8f6d",
            "pod-template-generation": "3"
        },
        "name": "nvidia-device-plugin-daemonset-4kq9z",
        "namespace": "gpu-operator",
        "ownerReferences": [
            {"apiVersion": "apps/v1", "blockOwnerDeletion": true, "controller": true,
             "kind": "DaemonSet", "name": "nvidia-device-plugin-daemonset",
             "uid": "5e0f8d9b-4a4b-4f55-8a1e-0c2d3e4f5a6b"}
        ],
        "uid": "c1d2e3f4-0000-4000-8000-000000000001"
    },
    "spec": {
        "containers": [{"image": "nvcr.io/nvidia/k8s-device-plugin:v0.16.2", "name": "nvidia-device-plugin"}],
        "nodeName": "gpu-node-17"
    },
    "status": {"phase": "Running", "podIP": "10.244.17.4",
               "conditions": [{"status": "False", "type": "Ready"}]}
}
"""
)

STATIC_POD = json.loads(
    """
{
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "annotations": {
            "kubernetes.io/config.hash": "5b0a3f0c2f4f8e1b9d7c6a5e4d3c2b1a",
            "kubernetes.io/config.mirror": "5b0a3f0c2f4f8e1b9d7c6a5e4d3c2b1a",
            "kubernetes.io/config.seen": "2025-10-30T08:00:01.123456789Z",
            "kubernetes.io/config.source": "file"
        },
        "labels": {"component": "kube-proxy", "tier": "node"},
        "name": "kube-proxy-gpu-node-17",
        "namespace": "kube-system",
        "ownerReferences": [
            {"apiVersion": "v1", "controller": true, "kind": "Node", "name": "gpu-node-17",
             "uid": "e7a1b2c3-d4e5-4f60-8a9b-0c1d2e3f4a5b"}
        ],
        "uid": "a9b8c7d6-1111-4222-8333-444455556666"
    },
    "spec": {"containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.31.2"}],
             "nodeName": "gpu-node-17", "hostNetwork": true},
    "status": {"phase": "Running", "podIP": "10.0.12.7"}
}
"""
)

UNSCHEDULED_BARE_POD = json.loads(
    """
{
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "deletionGracePeriodSeconds": 30,
        "deletionTimestamp": "2025-11-02T10:00:00Z",
        "name": "debug-shell",
        "namespace": "default",
        "uid": "0a0a0a0a-2222-4333-8444-555566667777"
    },
    "spec": {"containers": [{"name": "sh", "image": "busybox:1.36",
                              "resources": {"limits": {"nvidia.com/mig-1g.10gb": "1"}}}]},
    "status": {
        "conditions": [{"lastProbeTime": null, "lastTransitionTime": "2025-11-02T09:59:00Z",
                        "message": "0/12 nodes are available: 12 Insufficient nvidia.com/mig-1g.10gb.",
                        "reason": "Unschedulable", "status": "False", "type": "PodScheduled"}],
        "phase": "Pending",
        "qosClass": "BestEffort"
    }
}
"""
)

GPU_NODE = json.loads(
    """
{
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        "labels": {
            "kubernetes.io/hostname": "gpu-node-17",
            "node.kubernetes.io/instance-type": "p5.48xlarge",
            "nvidia.com/gpu.count": "8",
            "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
            "nvidia.com/mig.strategy": "mixed"
        },
        "name": "gpu-node-17",
        "resourceVersion": "48213001",
        "uid": "e7a1b2c3-d4e5-4f60-8a9b-0c1d2e3f4a5b"
    },
    "spec": {
        "podCIDR": "10.244.17.0/24",
        "taints": [
            {"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "present"},
            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "timeAdded": "2025-11-02T09:00:00Z"}
        ],
        "unschedulable": true
    },
    "status": {
        "allocatable": {
            "cpu": "191450m", "ephemeral-storage": "3455371018314", "hugepages-1Gi": "0",
            "hugepages-2Mi": "0", "memory": "2097049600Ki", "nvidia.com/gpu": "7",
            "nvidia.com/mig-1g.10gb": "0", "pods": "110", "vpc.amazonaws.com/efa": "32"
        },
        "capacity": {
            "cpu": "192", "ephemeral-storage": "3749682236Ki", "hugepages-1Gi": "0",
            "hugepages-2Mi": "0", "memory": "2097152000Ki", "nvidia.com/gpu": "8",
            "nvidia.com/mig-1g.10gb": "0", "pods": "110", "vpc.amazonaws.com/efa": "32"
        }
    }
}
"""
)


def test_deployment_pod_is_trimmed_to_what_signals_need() -> None:
    info = pod_from_json(VLLM_DEPLOYMENT_POD)
    assert info.uid == "8f6a3c2e-55e1-4c4b-a1f0-2f3a9b8c7d61"
    assert (info.namespace, info.name, info.node) == ("inference", "llama-3-8b-6d9f8b7c5d-x7k2p", "gpu-node-17")
    assert (info.phase, info.ip, info.ready, info.deleting) == ("Running", "10.244.17.23", True, False)
    assert (info.workload_kind, info.workload) == ("Deployment", "llama-3-8b")
    # Only extended resources, summed over containers; cpu/memory are not kept.
    assert info.requests == {"nvidia.com/gpu": 2}
    # Only our own annotations survive ingest; labels are kept whole.
    assert info.annotations == {
        "ai-signals.io/capacity-tokens-per-second": "2400",
        "ai-signals.io/scrape-port": "8000",
    }
    assert info.labels["app"] == "llama-3-8b"
    assert not info.is_daemonset and not info.is_static


def test_daemonset_pod() -> None:
    info = pod_from_json(DEVICE_PLUGIN_DAEMONSET_POD)
    assert (info.workload_kind, info.workload) == ("DaemonSet", "nvidia-device-plugin-daemonset")
    assert info.is_daemonset and not info.is_static
    assert info.requests == {} and info.ready is False and info.annotations == {}


def test_static_mirror_pod() -> None:
    info = pod_from_json(STATIC_POD)
    assert info.is_static and not info.is_daemonset
    assert (info.workload_kind, info.workload) == ("Pod", "kube-proxy-gpu-node-17")
    # The mirror annotation is used on ingest but not kept (not an ai-signals.io/ annotation).
    assert info.annotations == {}


def test_static_pod_by_annotation_only() -> None:
    obj = json.loads(json.dumps(STATIC_POD))
    del obj["metadata"]["ownerReferences"]
    assert pod_from_json(obj).is_static
    del obj["metadata"]["annotations"]["kubernetes.io/config.mirror"]
    assert not pod_from_json(obj).is_static


def test_unscheduled_bare_pod_being_deleted() -> None:
    info = pod_from_json(UNSCHEDULED_BARE_POD)
    assert (info.node, info.phase, info.ip, info.ready) == ("", "Pending", "", False)
    assert info.deleting
    assert (info.workload_kind, info.workload) == ("Pod", "debug-shell")
    # Limits-only extended resource: the apiserver would default the request to the limit.
    assert info.requests == {"nvidia.com/mig-1g.10gb": 1}


def test_pod_without_uid_raises() -> None:
    with pytest.raises(KeyError):
        pod_from_json({"metadata": {"name": "x"}})


def test_gpu_node() -> None:
    node = node_from_json(GPU_NODE)
    assert node.name == "gpu-node-17"
    assert node.unschedulable
    assert [(t.key, t.value, t.effect) for t in node.taints] == [
        ("nvidia.com/gpu", "present", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "", "NoExecute"),
    ]
    # Extended resources only (names with '/'); hugepages, cpu, memory are dropped.
    assert node.capacity == {"nvidia.com/gpu": 8, "nvidia.com/mig-1g.10gb": 0, "vpc.amazonaws.com/efa": 32}
    assert node.allocatable["nvidia.com/gpu"] == 7  # one GPU withdrawn by the device plugin
    assert node.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"


def test_cpu_node_has_no_taints_or_extended_resources() -> None:
    node = node_from_json({"metadata": {"name": "cpu-1"}, "spec": {},
                           "status": {"capacity": {"cpu": "8", "pods": "110"}}})
    assert (node.taints, node.capacity, node.allocatable, node.unschedulable) == ([], {}, {}, False)


def _pod(labels: dict[str, str] | None = None, owner: dict[str, str] | None = None, name: str = "p-0") -> dict:
    meta: dict = {"name": name, "namespace": "ns", "uid": "u", "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [dict(owner, controller=True, uid="o")]
    return {"metadata": meta, "spec": {"containers": []}, "status": {}}


@pytest.mark.parametrize(
    "labels,owner,expected",
    [
        # Deployment via its ReplicaSet: the pod-template-hash suffix is stripped.
        ({"pod-template-hash": "5d4f7b9c8"}, {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-api-5d4f7b9c8"},
         ("Deployment", "web-api")),
        # A hash that does not match the name: a standalone ReplicaSet.
        ({"pod-template-hash": "abc"}, {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "legacy-rs"},
         ("ReplicaSet", "legacy-rs")),
        ({}, {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "legacy-rs-x1"}, ("ReplicaSet", "legacy-rs-x1")),
        ({}, {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "redis"}, ("StatefulSet", "redis")),
        ({}, {"apiVersion": "batch/v1", "kind": "Job", "name": "nightly-29345000"}, ("Job", "nightly-29345000")),
        # LeaderWorkerSet pods are owned by a StatefulSet named after a group; the label wins.
        ({"leaderworkerset.sigs.k8s.io/name": "llama-405b", "leaderworkerset.sigs.k8s.io/group-index": "1"},
         {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "llama-405b-1"}, ("LeaderWorkerSet", "llama-405b")),
        # KServe predictor (raw deployment mode): label wins over the Deployment it runs in.
        ({"serving.kserve.io/inferenceservice": "sklearn-iris", "pod-template-hash": "7b5d4c9f8",
          "component": "predictor"},
         {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "sklearn-iris-predictor-7b5d4c9f8"},
         ("InferenceService", "sklearn-iris")),
        # KServe serverless: also carries Knative labels; InferenceService is more specific.
        ({"serving.kserve.io/inferenceservice": "llm", "serving.knative.dev/service": "llm-predictor"},
         {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "llm-predictor-00001-deployment-6c7d8"},
         ("InferenceService", "llm")),
        ({"serving.knative.dev/service": "hello", "serving.knative.dev/revision": "hello-00003"},
         {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "hello-00003-deployment-5f6b7c8d9"},
         ("KnativeService", "hello")),
        ({"jobset.sigs.k8s.io/jobset-name": "pretrain", "batch.kubernetes.io/job-name": "pretrain-workers-0"},
         {"apiVersion": "batch/v1", "kind": "Job", "name": "pretrain-workers-0"}, ("JobSet", "pretrain")),
        ({"training.kubeflow.org/job-name": "bert-ft", "training.kubeflow.org/operator-name": "pytorchjob-controller"},
         {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "name": "bert-ft"}, ("PyTorchJob", "bert-ft")),
        # Kubeflow label without an owner reference: kind from the operator label.
        ({"training.kubeflow.org/job-name": "mnist", "training.kubeflow.org/operator-name": "tfjob-controller"},
         None, ("TFJob", "mnist")),
        ({"training.kubeflow.org/job-name": "x"}, None, ("TrainingJob", "x")),
        ({}, {"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": "rc"}, ("RayCluster", "rc")),
        ({}, None, ("Pod", "p-0")),
    ],
)
def test_resolve_workload(labels, owner, expected) -> None:
    assert resolve_workload(_pod(labels, owner)) == expected


def test_resolve_uses_the_controller_reference() -> None:
    obj = _pod({"pod-template-hash": "h1"})
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "1"},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "app-h1", "uid": "2", "controller": True},
    ]
    assert resolve_workload(obj) == ("Deployment", "app")


def _c(gpu: int, restart_policy: str | None = None) -> dict:
    c: dict = {"name": "c", "resources": {"requests": {"nvidia.com/gpu": str(gpu), "cpu": "1"}}}
    if restart_policy:
        c["restartPolicy"] = restart_policy
    return c


@pytest.mark.parametrize(
    "containers,init,expected",
    [
        ([_c(1), _c(2)], [], 3),  # sum of app containers
        ([_c(1)], [_c(4)], 4),  # a bigger init container wins
        ([_c(4)], [_c(2), _c(3)], 4),  # init containers run one at a time: max, not sum
        ([_c(2)], [_c(1, "Always")], 3),  # a sidecar keeps running: adds to the sum
        # Sidecar (1) then a regular init (2): that init runs beside the sidecar -> 3;
        # app phase = 1 (app) + 1 (sidecar) = 2; the scheduler takes max(2, 3) = 3.
        ([_c(1)], [_c(1, "Always"), _c(2)], 3),
        # A regular init before the sidecar does not overlap it.
        ([_c(1)], [_c(2), _c(1, "Always")], 2),
        ([], [], 0),
    ],
)
def test_effective_requests(containers, init, expected) -> None:
    spec = {"containers": containers, "initContainers": init}
    assert effective_requests(spec).get("nvidia.com/gpu", 0) == expected


def test_effective_requests_adds_overhead_and_ignores_zero() -> None:
    spec = {"containers": [_c(1)], "overhead": {"example.com/vfio": "1", "cpu": "250m"}}
    assert effective_requests(spec) == {"nvidia.com/gpu": 1, "example.com/vfio": 1}
    assert effective_requests({"containers": [_c(0)]}) == {}


@pytest.mark.parametrize(
    "value,expected",
    [("8", 8), (8, 8), ("1k", 1000), ("2Ki", 2048), ("1500m", 1), ("0", 0), ("1e3", 1000),
     ("junk", 0), (None, 0), (True, 0), (2.7, 2)],
)
def test_parse_quantity(value, expected) -> None:
    assert parse_quantity(value) == expected


@pytest.mark.parametrize(
    "owner,expected",
    [
        (("Deployment", "llama"), ("Deployment", "llama")),
        (("StatefulSet", "db"), ("StatefulSet", "db")),
        (("DaemonSet", "dcgm-exporter"), ("DaemonSet", "dcgm-exporter")),
        (("Job", "eval"), ("Job", "eval")),
        (("LeaderWorkerSet", "big"), ("LeaderWorkerSet", "big")),
        (("InferenceService", "isvc"), ("InferenceService", "isvc")),
        (("KnativeService", "ksvc"), ("KnativeService", "ksvc")),
        (("JobSet", "js"), ("JobSet", "js")),
        (("PyTorchJob", "ptj"), ("PyTorchJob", "ptj")),
        (("Node", "gpu-1"), ("Pod", "etcd-gpu-1")),
        (None, ("Pod", "etcd-gpu-1")),
    ],
)
def test_builders_produce_shapes_the_parser_resolves(owner, expected) -> None:
    obj = make_pod("ns", "etcd-gpu-1", "gpu-1", owner=owner, gpu=1)
    info = pod_from_json(obj)
    assert (info.workload_kind, info.workload) == expected
    assert info.is_static == (owner is not None and owner[0] == "Node")
    assert info.is_daemonset == (owner is not None and owner[0] == "DaemonSet")
    assert info.requests == {"nvidia.com/gpu": 1}
    assert info.ready and info.phase == "Running" and info.ip


def test_builder_pending_pod_and_init_sidecar() -> None:
    info = pod_from_json(make_pod("ns", "p", gpu=1, init_gpu=2, sidecar_gpu=1))
    assert (info.node, info.phase, info.ready, info.ip) == ("", "Pending", False, "")
    # The builder puts the regular init container (2) before the sidecar (1), so they never
    # overlap: max(2, 1 app + 1 sidecar) = 2.
    assert info.requests == {"nvidia.com/gpu": 2}


def test_builder_node() -> None:
    node = node_from_json(make_node("gpu-1", gpus=8, unhealthy_gpus=2, gpu_product="NVIDIA-A100-SXM4-80GB"))
    assert node.capacity == {"nvidia.com/gpu": 8} and node.allocatable == {"nvidia.com/gpu": 6}
    assert [(t.key, t.effect) for t in node.taints] == [("nvidia.com/gpu", "NoSchedule")]
    assert node.labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    cpu = node_from_json(make_node("cpu-1", gpus=0))
    assert cpu.taints == [] and cpu.capacity == {}
    assert node_from_json(make_node("g", taints=[])).taints == []


# ---- pod states, node Ready, quota, events, workloads ----------------------------------------

T0 = parse_time("2026-01-05T10:00:00Z")

# As `kubectl get pod -o json` prints a pod the kubelet rejected at admission (the status shape
# reported in ray-project/kuberay#1414, the message of kubernetes/kubernetes#130145 with the
# "Pod was rejected: " prefix of pkg/kubelet/kubelet.go rejectPod since v1.27).
ADMISSION_REJECTED_POD = json.loads("""
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"creationTimestamp": "2026-01-05T10:00:00Z", "name": "llama-7d9f8b7c5d-abcde", "namespace": "llm",
   "uid": "c1", "labels": {"pod-template-hash": "7d9f8b7c5d"},
   "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "llama-7d9f8b7c5d", "uid": "r",
                        "controller": true, "blockOwnerDeletion": true}]},
 "spec": {"nodeName": "gpu-node-3", "containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.6.3",
   "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}}]},
 "status": {"message": "Pod was rejected: Allocate failed due to requested number of devices unavailable for nvidia.com/gpu. Requested: 1, Available: 0, which is unexpected",
   "phase": "Failed", "qosClass": "BestEffort", "reason": "UnexpectedAdmissionError", "startTime": "2026-01-05T10:00:02Z"}}
""")

# A pod the scheduler preempted (condition as pkg/scheduler/framework/preemption/preemption.go
# writes it before deleting the victim), with two container restarts behind it.
PREEMPTED_POD = json.loads("""
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"creationTimestamp": "2026-01-05T09:00:00Z", "deletionTimestamp": "2026-01-05T10:30:00Z",
   "deletionGracePeriodSeconds": 30, "name": "train-worker-1", "namespace": "ml", "uid": "p1"},
 "spec": {"nodeName": "gpu-node-4", "containers": [{"name": "torch", "image": "pytorch/pytorch:2.4.0"}]},
 "status": {"phase": "Running", "conditions": [
   {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
    "message": "default-scheduler: preempting to accommodate a higher priority pod",
    "lastProbeTime": null, "lastTransitionTime": "2026-01-05T10:30:00Z"},
   {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-05T09:00:40Z"},
   {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-05T09:02:00Z"},
   {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-05T09:05:00Z"},
   {"type": "ContainersReady", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-05T09:05:00Z"},
   {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-05T09:00:05Z"}],
  "containerStatuses": [
   {"name": "torch", "ready": true, "restartCount": 2, "started": true,
    "state": {"running": {"startedAt": "2026-01-05T09:04:30Z"}},
    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": "2026-01-05T09:02:10Z",
                                 "finishedAt": "2026-01-05T09:04:20Z"}}},
   {"name": "sidecar", "ready": true, "restartCount": 1, "started": true,
    "state": {"running": {"startedAt": "2026-01-05T09:02:05Z"}}}]}}
""")

# Pending on GPUs: the scheduler's FitError message (pkg/scheduler/framework/types.go, v1.31).
UNSCHEDULABLE_POD = json.loads("""
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"creationTimestamp": "2026-01-05T10:00:00Z", "name": "big-0", "namespace": "ml", "uid": "u1"},
 "spec": {"containers": [{"name": "c", "resources": {"requests": {"nvidia.com/gpu": "8"}}}]},
 "status": {"phase": "Pending", "qosClass": "BestEffort", "conditions": [
   {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastProbeTime": null,
    "lastTransitionTime": "2026-01-05T10:00:01Z",
    "message": "0/12 nodes are available: 4 node(s) didn't match Pod's node affinity/selector, 8 Insufficient nvidia.com/gpu. preemption: 0/12 nodes are available: 4 Preemption is not helpful for scheduling, 8 No preemption victims found for incoming pod."}]}}
""")


def test_admission_rejected_pod() -> None:
    info = pod_from_json(ADMISSION_REJECTED_POD)
    assert (info.phase, info.reason, info.node) == ("Failed", "UnexpectedAdmissionError", "gpu-node-3")
    assert "requested number of devices unavailable for nvidia.com/gpu" in info.message
    assert info.scheduled is None and info.started_at is None and info.restarts == 0
    assert info.created == T0 and not info.ready
    # The builder makes the same shape.
    built = pod_from_json(admission_rejected(make_pod("llm", "x", "gpu-node-3", gpu=1)))
    assert (built.phase, built.reason, built.message) == (info.phase, info.reason, info.message)
    oor = pod_from_json(out_of_resource(make_pod("llm", "y", "gpu-node-3", gpu=1)))
    assert (oor.phase, oor.reason) == ("Failed", "OutOfnvidia.com/gpu")


def test_preempted_pod_conditions_restarts_and_start() -> None:
    info = pod_from_json(PREEMPTED_POD)
    assert info.disruption is not None
    assert (info.disruption.status, info.disruption.reason) == ("True", "PreemptionByScheduler")
    assert info.disruption.last_transition == T0 + 1800 and info.deleted_at == T0 + 1800 and info.deleting
    assert info.created == T0 - 3600
    assert info.scheduled.last_transition == T0 - 3600 + 5 and info.scheduled.reason == ""
    assert info.initialized.last_transition == T0 - 3600 + 120
    assert info.containers_ready.last_transition == info.ready_condition.last_transition == T0 - 3600 + 300
    assert info.ready and info.restarts == 3
    assert info.started_at == T0 - 3600 + 270  # the latest running start of the two
    # Only the kept conditions' details: Initialized has no message to keep.
    assert info.initialized.message == "" and info.initialized.reason == ""


@pytest.mark.parametrize("reason", ["PreemptionByScheduler", "EvictionByEvictionAPI", "TerminationByKubelet",
                                    "DeletionByTaintManager", "DeletionByPodGC"])
def test_disrupted_builder(reason: str) -> None:
    info = pod_from_json(disrupted(make_pod("ml", "w", "gpu-1", gpu=8), reason))
    assert info.disruption.reason == reason and info.disruption.status == "True"
    if reason == "TerminationByKubelet":
        assert (info.phase, info.reason, info.deleting) == ("Failed", "Evicted", False)
    else:
        assert info.deleting and info.deleted_at == T0


def test_unschedulable_and_gated_pods() -> None:
    info = pod_from_json(UNSCHEDULABLE_POD)
    assert (info.scheduled.status, info.scheduled.reason) == ("False", "Unschedulable")
    assert "8 Insufficient nvidia.com/gpu" in info.scheduled.message and not info.gated
    gated = pod_from_json(make_pod("ml", "g", gpu=1, scheduling_gates=["kueue.x-k8s.io/admission"]))
    assert gated.gated and gated.scheduled.reason == "SchedulingGated"
    long = json.loads(json.dumps(UNSCHEDULABLE_POD))
    long["status"]["conditions"][0]["message"] = "x" * 5000
    long["status"]["message"] = "y" * 5000
    trimmed = pod_from_json(long)
    assert len(trimmed.scheduled.message) == MESSAGE_MAX and len(trimmed.message) == MESSAGE_MAX


def test_staged_pod_times_from_the_builder() -> None:
    info = pod_from_json(make_pod("llm", "a", "gpu-1", gpu=1, created="2026-01-05T09:59:00Z",
                                  scheduled_at="2026-01-05T09:59:10Z", initialized_at="2026-01-05T10:01:00Z",
                                  ready_at="2026-01-05T10:03:00Z", restarts=1))
    assert (info.created, info.scheduled.last_transition, info.initialized.last_transition, info.ready_condition.last_transition) == (
        T0 - 60, T0 - 50, T0 + 60, T0 + 180)
    assert info.started_at == T0 + 60 and info.restarts == 1


def test_node_ready_status() -> None:
    assert node_from_json(make_node("g")).ready == "True"
    obj = make_node("g")
    obj["status"]["conditions"][0].update(status="Unknown", reason="NodeStatusUnknown")
    assert node_from_json(obj).ready == "Unknown"
    del obj["status"]["conditions"]
    assert node_from_json(obj).ready == "Unknown"


def test_quota_keeps_device_entries_only() -> None:
    q = quota_from_json(make_resource_quota("ml", "gpu", {"requests.nvidia.com/gpu": 16, "requests.cpu": "64",
                                                          "count/pods": 100, "limits.nvidia.com/gpu": "16"},
                                            {"requests.nvidia.com/gpu": 12}))
    assert (q.namespace, q.name) == ("ml", "gpu")
    assert q.hard == {"requests.nvidia.com/gpu": 16, "limits.nvidia.com/gpu": 16}
    assert q.used == {"requests.nvidia.com/gpu": 12, "limits.nvidia.com/gpu": 0}


def test_events_old_and_series_style() -> None:
    msg = quota_exceeded_message("llama-7d9f8b7c5d-x2k4p", "gpu-quota", requested=2)
    old = event_from_json(make_event("llm", ("ReplicaSet", "llama-7d9f8b7c5d"), "FailedCreate", msg, count=7,
                                     last="2026-01-05T10:05:00Z"))
    assert (old.reason, old.kind, old.name, old.namespace, old.count) == (
        "FailedCreate", "ReplicaSet", "llama-7d9f8b7c5d", "llm", 7)
    assert (old.first_seen, old.last_seen) == (T0, T0 + 300)
    assert "exceeded quota: gpu-quota, requested: requests.nvidia.com/gpu=2" in old.message
    new = event_from_json(make_event("llm", ("Pod", "p"), "FailedScheduling", "0/3 nodes", series=True,
                                     count=4, last="2026-01-05T10:02:00Z"))
    assert (new.count, new.first_seen, new.last_seen) == (4, T0, T0 + 120)
    single = event_from_json(make_event("llm", ("Pod", "p"), "BackOff", "b", series=True))
    assert (single.count, single.last_seen) == (1, T0)


def test_workloads() -> None:
    d = workload_from_json(make_deployment("llm", "llama", replicas=3, ready=1, labels={"team": "a"},
                                           annotations={"ai-signals.io/x": "1", "other": "2"}), "Deployment")
    assert (d.replicas, d.ready_replicas, d.current_replicas, d.labels, d.annotations) == (
        3, 1, 3, {"team": "a"}, {"ai-signals.io/x": "1"})
    s = workload_from_json(make_statefulset("llm", "db", replicas=0), "StatefulSet")
    assert (s.kind, s.replicas, s.ready_replicas) == ("StatefulSet", 0, 0)
    lws = workload_from_json(make_leaderworkerset("llm", "big", replicas=2, size=4, ready=1), "LeaderWorkerSet")
    assert (lws.replicas, lws.group_size, lws.ready_replicas, lws.template_labels) == (2, 4, 1, {"app": "big"})
    no_replicas = make_deployment("llm", "x")
    del no_replicas["spec"]["replicas"]
    assert workload_from_json(no_replicas, "Deployment").replicas == 1  # the API's default


# ---- stores ----------------------------------------------------------------------------------


def test_pod_store_replace_apply_remove_and_namespaces() -> None:
    state = AppState()
    store = PodStore(state, frozenset({"llm"}))
    a, b = make_pod("llm", "a", "n1"), make_pod("other", "b", "n1")
    kept: dict = {}
    store.trim_into([a, b, {"metadata": {"name": "no-uid", "namespace": "llm"}}], kept)
    assert [p.name for p in kept.values()] == ["a"]  # other namespace skipped, bad one counted
    assert state.selfmon.errors[("kube", "decode")] == 1
    store.replace(kept)
    assert state.kube.pods_synced and set(state.kube.pods) == {a["metadata"]["uid"]}
    gen = state.kube.generation
    store.apply(make_pod("llm", "c", "n2"))
    store.apply(b)  # unwanted namespace: ignored
    assert len(state.kube.pods) == 2 and state.kube.generation == gen + 1
    store.remove(a)
    store.remove({"metadata": {"uid": "unknown"}})
    assert [p.name for p in state.kube.pods.values()] == ["c"] and state.kube.generation == gen + 2


def test_stores_follow_a_replaced_kube_state() -> None:
    """The exporter swaps in a fresh KubeState when kube is disabled; stores must write there."""
    state = AppState()
    store = NodeStore(state)
    store.replace({})
    state.kube = KubeState()
    store.apply(make_node("n1"))
    assert set(state.kube.nodes) == {"n1"}


def test_quota_store_keys_by_namespace_and_name() -> None:
    state = AppState()
    store = QuotaStore(state)
    store.apply(make_resource_quota("ml", "gpu", {"requests.nvidia.com/gpu": 8}))
    assert set(state.kube.resourcequotas) == {"ml/gpu"}
    store.remove({"metadata": {"name": "gpu", "namespace": "ml"}})
    assert state.kube.resourcequotas == {}


def test_event_store_prunes_by_last_occurrence_with_an_injected_clock() -> None:
    now = [T0]
    state = AppState()
    store = WarningEventStore(state, max_age=60, clock=lambda: now[0])
    old = make_event("ml", ("Pod", "a"), "BackOff", "m", last="2026-01-05T09:58:00Z", name="a")
    young = make_event("ml", ("Pod", "b"), "BackOff", "m", last="2026-01-05T09:59:30Z", name="b")
    normal = make_event("ml", ("Pod", "c"), "Pulled", "m", type="Normal", name="c")
    kept: dict = {}
    store.trim_into([old, young, normal], kept)
    store.replace(kept)
    assert [e.name for e in state.kube.events.values()] == ["b"]
    now[0] = T0 + 40  # b last seen 70 s ago: goes with the next arrival
    store.apply(make_event("ml", ("Pod", "d"), "BackOff", "m", last="2026-01-05T10:00:40Z", name="d"))
    assert [e.name for e in state.kube.events.values()] == ["d"]
    # A repeat (same uid, higher count) moves to the back and stays.
    d = next(iter(state.kube.events.values()))
    again = make_event("ml", ("Pod", "d"), "BackOff", "m", count=2, last="2026-01-05T10:00:50Z", name="d")
    again["metadata"]["uid"] = d.uid
    store.apply(again)
    assert [(e.name, e.count) for e in state.kube.events.values()] == [("d", 2)]


def test_warning_event_memory_at_1000_per_minute() -> None:
    """1,000 warning events a minute, each with a distinct quota message, for 15 minutes through
    the store with the default max age (10 min): what stays held must be < 20 MB."""
    import tracemalloc

    now = [T0]
    state = AppState()
    store = WarningEventStore(state, clock=lambda: now[0])
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for minute in range(15):
        for i in range(1000):
            now[0] = T0 + minute * 60 + i * 0.06
            ts = time_text(now[0])
            ev = make_event(f"ns-{i % 40}", ("ReplicaSet", f"llama-{minute}-{i}-7d9f8b7c5d"), "FailedCreate",
                            quota_exceeded_message(f"llama-{minute}-{i}-7d9f8b7c5d-x2k4p", "gpu-quota"),
                            first=ts, last=ts)
            store.apply(ev)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert 9_900 <= len(state.kube.events) <= 10_001
    print(f"warning events held: {len(state.kube.events)}, {held / 1e6:.1f} MB")
    assert held < 20e6, f"{held / 1e6:.1f} MB for {len(state.kube.events)} events"


def time_text(t: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
