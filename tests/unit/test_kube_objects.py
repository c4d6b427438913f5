"""Trimming raw Pod/Node JSON into state objects, workload resolution and effective requests.

The literal objects below are written the way `kubectl get pod -o json` prints them (fields as
the apiserver serves them, quantities as strings), so the parsers are tested against real shapes
rather than against our own builders only.
"""

from __future__ import annotations

import json

import pytest

from ai_signals_exporter.sim.objects import make_node, make_pod
from ai_signals_exporter.sources.kube_objects import (
    effective_requests,
    node_from_json,
    parse_quantity,
    pod_from_json,
    resolve_workload,
)

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
