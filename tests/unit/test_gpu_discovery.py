"""dcgm-exporter discovery over hand-built state: any of the selectors, the declared port."""

from __future__ import annotations

import pytest

from ai_signals_exporter.gpu.discovery import discover
from ai_signals_exporter.labelselector import SelectorError
from ai_signals_exporter.sources.kube_objects import named_ports
from ai_signals_exporter.state import KubeState, PodInfo

SELECTORS = ["app=nvidia-dcgm-exporter", "app.kubernetes.io/name=dcgm-exporter", "app=nvidia-dcgm-exporter-dra"]


def pod(name, labels, ip, ports=(), node="n1", phase="Running", ns="gpu-operator"):
    return PodInfo(uid=name, namespace=ns, name=name, node=node, phase=phase, ip=ip, labels=labels,
                   annotations={}, workload_kind="DaemonSet", workload=name, requests={},
                   is_daemonset=True, ports=tuple(ports))


def test_named_ports_keeps_named_valid_ports_in_order():
    spec = {"containers": [
        {"name": "a", "ports": [{"containerPort": 80}, {"name": "metrics", "containerPort": 9401},
                                {"name": "bad", "containerPort": "x"}, {"name": "big", "containerPort": 70000}]},
        {"name": "b", "ports": [{"name": "metrics", "containerPort": 9999}, {"name": "http", "containerPort": 8080}]},
        {"name": "c"},
    ]}
    assert named_ports(spec) == (("metrics", 9401), ("metrics", 9999), ("http", 8080))
    assert named_ports({}) == ()


def test_any_selector_matches_and_the_metrics_port_wins():
    kube = KubeState()
    kube.pods = {p.uid: p for p in [
        pod("op", {"app": "nvidia-dcgm-exporter"}, "10.0.0.1", [("metrics", 9400)]),
        pod("helm", {"app.kubernetes.io/name": "dcgm-exporter"}, "10.0.0.2", [("metrics", 9401)], node="n2"),
        pod("dra", {"app": "nvidia-dcgm-exporter-dra"}, "fd00::3", [], node="n3"),
        pod("plugin", {"app": "nvidia-device-plugin-daemonset"}, "10.0.0.4"),
        pod("pending", {"app": "nvidia-dcgm-exporter"}, "", phase="Pending"),
    ]}
    urls = [(e.url, e.node) for e in discover(kube, SELECTORS, [], 9400, "/metrics")]
    assert urls == [("http://10.0.0.1:9400/metrics", "n1"), ("http://10.0.0.2:9401/metrics", "n2"),
                    ("http://[fd00::3]:9400/metrics", "n3")]
    # a differently named port: the configured one
    assert [e.url for e in discover(kube, SELECTORS, [], 9500, "/metrics", port_name="prom")][1] == \
        "http://10.0.0.2:9500/metrics"
    assert [e.url for e in discover(kube, "app=nvidia-dcgm-exporter", [], 9400, "/metrics")] == \
        ["http://10.0.0.1:9400/metrics"]


def test_a_bad_selector_in_the_list_is_an_error():
    with pytest.raises(SelectorError):
        discover(KubeState(), ["app=x", "app in (("], [], 9400, "/metrics")
