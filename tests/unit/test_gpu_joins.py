"""Node/pod joins and the full GPU derivation over hand-built state."""

from __future__ import annotations

import subprocess

import pytest

from ai_signals_exporter.config import Config
from ai_signals_exporter.expo.families import render
from ai_signals_exporter.gpu.idle import IdleTrack
from ai_signals_exporter.gpu.nodes import gpu_nodes, gpu_units, is_tainted
from ai_signals_exporter.gpu.observation import DcgmObservation
from ai_signals_exporter.gpu.pricing import mig_fraction, price_for
from ai_signals_exporter.gpu.readings import GpuReading
from ai_signals_exporter.signals.gpu import derive
from ai_signals_exporter.state import AppState, NodeInfo, PodInfo, Taint

GPU_TAINT = Taint("nvidia.com/gpu", "present", "NoSchedule")


def node(name, gpus=8, taints=(GPU_TAINT,), capacity=None, labels=None, mig=None):
    alloc = {"nvidia.com/gpu": gpus} if gpus else {}
    alloc.update(mig or {})
    return NodeInfo(
        name=name,
        labels=labels if labels is not None else {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        taints=list(taints),
        capacity=dict(capacity if capacity is not None else alloc),
        allocatable=alloc,
    )


_n = 0


def pod(node_name, gpus=0, phase="Running", ds=False, static=False, mig=None, name=None):
    global _n
    _n += 1
    req = {"nvidia.com/gpu": gpus} if gpus else {}
    req.update(mig or {})
    return PodInfo(
        uid=f"uid-{_n}", namespace="ns", name=name or f"p{_n}", node=node_name, phase=phase,
        ip="10.0.0.1", labels={}, annotations={}, workload_kind="Pod", workload="w",
        requests=req, is_daemonset=ds, is_static=static,
    )


def reading(uuid, gpu="0", util=0.0, host="n1", pods=(), instance="", profile="", model="NVIDIA H100 80GB HBM3"):
    return GpuReading((uuid, instance), gpu, uuid, instance, profile, model, host, util, tuple(pods))


def make_state(nodes=(), pods=(), observations=(), tracks=None, synced=True):
    s = AppState()
    s.kube.nodes = {n.name: n for n in nodes}
    s.kube.pods = {p.uid: p for p in pods}
    s.kube.nodes_synced = s.kube.pods_synced = synced
    s.dcgm = {o.url: o for o in observations}
    s.gpu_idle.update(tracks or {})
    return s


def config(**gpu):
    return Config.model_validate({"gpu": {"interval": "15s", "idle_after": "10m", **gpu}})


def samples(families):
    """{name: {labels tuple: value}}"""
    out = {}
    for f in families:
        for _, values, value, _ in f.samples:
            out.setdefault(f.name, {})[values] = value
    return out


# --- joins -------------------------------------------------------------------------------


def test_gpu_units_counts_mig_resources():
    assert gpu_units({"nvidia.com/gpu": 2, "nvidia.com/mig-1g.10gb": 3, "cpu": 4}, "nvidia.com/gpu") == 5


def test_taint_effects():
    n = node("a", taints=[Taint("nvidia.com/gpu", "", "PreferNoSchedule")])
    assert not is_tainted(n, "nvidia.com/gpu")
    n = node("a", taints=[Taint("nvidia.com/gpu", "", "NoExecute")])
    assert is_tainted(n, "nvidia.com/gpu")
    n = node("a", taints=[Taint("dedicated", "gpu", "NoSchedule")])
    assert not is_tainted(n, "nvidia.com/gpu")
    assert is_tainted(n, "dedicated")


def test_requested_non_gpu_pods_and_unhealthy():
    kube = make_state(
        nodes=[node("g1", gpus=7, capacity={"nvidia.com/gpu": 8}), node("cpu", gpus=0, taints=())],
        pods=[
            pod("g1", gpus=2),
            pod("g1", gpus=1, phase="Pending"),  # bound, holds its device
            pod("g1", gpus=4, phase="Succeeded"),  # finished: holds nothing
            pod("g1"),  # CPU-only workload: counts
            pod("g1", phase="Pending"),  # not running yet: not counted
            pod("g1", ds=True),  # dcgm-exporter, device plugin
            pod("g1", static=True),
            pod("cpu"),
        ],
    ).kube
    nodes = gpu_nodes(kube, "nvidia.com/gpu", "nvidia.com/gpu")
    assert list(nodes) == ["g1"]  # the CPU node is no GPU node
    n = nodes["g1"]
    assert (n.allocatable, n.requested, n.non_gpu_pods, n.unhealthy) == (7, 3, 1, 1)
    assert n.tainted and n.model == "NVIDIA-H100-80GB-HBM3"


def test_node_with_every_gpu_withdrawn_stays_a_gpu_node():
    # The device plugin marks all 8 devices unhealthy (a node-wide XID): the kubelet keeps them in
    # capacity and drops allocatable to 0.  That is the loudest unhealthy case, not "no GPU node".
    s = make_state(
        nodes=[node("g", gpus=0, capacity={"nvidia.com/gpu": 8})],
        pods=[pod("g")],
    )
    s.kube.nodes["g"].allocatable = {"nvidia.com/gpu": 0}
    n = gpu_nodes(s.kube, "nvidia.com/gpu", "nvidia.com/gpu")["g"]
    assert (n.allocatable, n.capacity, n.unhealthy, n.non_gpu_pods) == (0, 8, 8, 1)
    got = samples(derive(s, config(), NOW))
    assert got["ai_gpu_node_unhealthy_gpus"] == {("g",): 8}
    assert got["ai_gpu_node_allocatable_gpus"] == {("g",): 0}


def test_mig_only_node_is_a_gpu_node():
    kube = make_state(
        nodes=[node("mig", gpus=0, mig={"nvidia.com/mig-1g.10gb": 7})],
        pods=[pod("mig", mig={"nvidia.com/mig-1g.10gb": 2})],
    ).kube
    n = gpu_nodes(kube, "nvidia.com/gpu", "nvidia.com/gpu")["mig"]
    assert (n.allocatable, n.requested, n.non_gpu_pods) == (7, 2, 0)


def test_custom_resource_name():
    n = node("a", gpus=0, mig=None)
    n.allocatable = {"amd.com/gpu": 4}
    n.capacity = {"amd.com/gpu": 4}
    kube = make_state(nodes=[n]).kube
    assert gpu_nodes(kube, "nvidia.com/gpu", "nvidia.com/gpu") == {}
    assert gpu_nodes(kube, "amd.com/gpu", "nvidia.com/gpu")["a"].allocatable == 4


def test_node_scope_keeps_own_node_only():
    kube = make_state(nodes=[node("a"), node("b")]).kube
    assert list(gpu_nodes(kube, "nvidia.com/gpu", "nvidia.com/gpu", node_scope="b")) == ["b"]


def test_pricing():
    prices = {"NVIDIA-H100-80GB-HBM3": 4.0, "default": 1.5}
    assert price_for("NVIDIA H100 80GB HBM3", prices) == 4.0
    assert price_for("NVIDIA-H100-80GB-HBM3", prices) == 4.0
    assert price_for("NVIDIA L4", prices) == 1.5
    # GPU feature discovery, single MIG strategy
    assert price_for("NVIDIA-H100-80GB-HBM3-MIG-1g.10gb", prices) == 4.0
    # time-slicing without a rename (k8s-device-plugin internal/lm/resource.go productLabel)
    assert price_for("NVIDIA-H100-80GB-HBM3-SHARED", prices) == 4.0
    assert price_for("NVIDIA L4", {"NVIDIA-H100-80GB-HBM3": 4.0}) is None
    assert price_for("x", {}) is None
    assert mig_fraction("3g.40gb", "NVIDIA A100-SXM4-80GB") == pytest.approx(3 / 7)
    assert mig_fraction("1g.6gb", "NVIDIA A30") == pytest.approx(1 / 4)
    assert mig_fraction("weird", "NVIDIA A30") == 1.0


# --- derive --------------------------------------------------------------------------------

NOW = 10_000.0


def obs(url, readings, ts=NOW - 5, node=None, up=True):
    return DcgmObservation(url, node, ts, tuple(readings), up=up)


def test_derive_per_gpu_and_node_series():
    s = make_state(
        nodes=[node("n1", gpus=4), node("n2", gpus=2, taints=())],
        pods=[pod("n1", gpus=1, name="llama"), pod("n2"), pod("n2")],
        observations=[
            obs("http://a", [
                reading("U0", "0", 0.9, pods=[("prod", "llama")]),
                reading("U1", "1", 0.0, pods=[("dev", "nb")]),
                reading("U2", "2", 0.01),
            ]),
            obs("http://b", [reading("U3", "0", 0.0, host="n2")]),
        ],
        tracks={
            ("U0", ""): IdleTrack(None, NOW - 5),
            ("U1", ""): IdleTrack(NOW - 3600, NOW - 5),
            ("U2", ""): IdleTrack(NOW - 60, NOW - 5),
            ("U3", ""): IdleTrack(NOW - 900, NOW - 5),
        },
    )
    out = samples(derive(s, config(), NOW))
    idle = out["ai_gpu_idle_seconds"]
    model = "NVIDIA-H100-80GB-HBM3"  # GPU feature discovery label wins over modelName
    assert idle[("n1", "0", "U0", model, "prod", "llama")] == 0
    assert idle[("n1", "1", "U1", model, "dev", "nb")] == 3600
    assert idle[("n1", "2", "U2", model, "", "")] == 60
    assert out["ai_gpu_utilization_ratio"][("n1", "0", "U0", model, "prod", "llama")] == 0.9
    # idle for >= idle_after (10m): U1 on n1, U3 on n2; U2 only 60 s
    assert out["ai_gpu_node_idle_gpus"] == {("n1",): 1, ("n2",): 1}
    assert out["ai_gpu_node_tainted"] == {("n1",): 1, ("n2",): 0}
    assert out["ai_gpu_node_allocatable_gpus"] == {("n1",): 4, ("n2",): 2}
    assert out["ai_gpu_node_requested_gpus"] == {("n1",): 1, ("n2",): 0}
    assert out["ai_gpu_node_non_gpu_pods"] == {("n1",): 0, ("n2",): 2}
    assert out["ai_gpu_node_unhealthy_gpus"] == {("n1",): 0, ("n2",): 0}
    assert "ai_gpu_idle_cost_per_hour" not in out  # no prices configured


def test_busy_idle_busy_through_derive():
    r_idle = reading("U", util=0.0)
    cfg = config(idle_after="1m")
    s = make_state(nodes=[node("n1")], observations=[obs("u", [r_idle])],
                   tracks={("U", ""): IdleTrack(NOW - 120, NOW - 5)})
    out = samples(derive(s, cfg, NOW))
    assert list(out["ai_gpu_idle_seconds"].values()) == [120]
    assert out["ai_gpu_node_idle_gpus"] == {("n1",): 1}
    s.dcgm["u"] = obs("u", [reading("U", util=0.7)])
    s.gpu_idle[("U", "")] = IdleTrack(None, NOW - 5)
    out = samples(derive(s, cfg, NOW))
    assert list(out["ai_gpu_idle_seconds"].values()) == [0]
    assert out["ai_gpu_node_idle_gpus"] == {("n1",): 0}


def test_node_loses_its_taint():
    n = node("n1")
    s = make_state(nodes=[n])
    assert samples(derive(s, config(), NOW))["ai_gpu_node_tainted"] == {("n1",): 1}
    n.taints = []
    assert samples(derive(s, config(), NOW))["ai_gpu_node_tainted"] == {("n1",): 0}


def test_stale_observation_stops_counting():
    s = make_state(
        nodes=[node("n1")],
        observations=[obs("u", [reading("U", util=0.0)], ts=NOW - 46, up=False)],
        tracks={("U", ""): IdleTrack(NOW - 3600, NOW - 46)},
    )
    out = samples(derive(s, config(), NOW))  # 3 x 15 s = 45 s
    assert "ai_gpu_idle_seconds" not in out
    assert "ai_gpu_node_idle_gpus" not in out  # unknown, not 0
    assert out["ai_gpu_node_tainted"] == {("n1",): 1}
    s.dcgm["u"] = obs("u", [reading("U", util=0.0)], ts=NOW - 44, up=False)
    assert "ai_gpu_idle_seconds" in samples(derive(s, config(), NOW))  # last good still fresh


def test_kubernetes_disabled_uses_hostname_and_modelname():
    s = make_state(observations=[obs("u", [reading("U", util=0.0, host="gpu-host-7")])],
                   tracks={("U", ""): IdleTrack(NOW - 700, NOW - 5)}, synced=False)
    out = samples(derive(s, config(), NOW))
    assert out["ai_gpu_idle_seconds"] == {("gpu-host-7", "0", "U", "NVIDIA H100 80GB HBM3", "", ""): 700}
    assert out["ai_gpu_node_idle_gpus"] == {("gpu-host-7",): 1}
    assert "ai_gpu_node_tainted" not in out


def test_static_target_node_overrides_hostname():
    s = make_state(observations=[obs("u", [reading("U", host="i-0abc")], node="n1")], synced=False)
    out = samples(derive(s, config(), NOW))
    assert [k[0] for k in out["ai_gpu_utilization_ratio"]] == ["n1"]


def test_mig_instances_are_distinct_series():
    s = make_state(
        nodes=[node("m", gpus=0, mig={"nvidia.com/mig-3g.20gb": 1, "nvidia.com/mig-1g.5gb": 2},
                    labels={"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"})],
        observations=[obs("u", [
            reading("A", "0", 0.8, host="m", instance="1", profile="3g.20gb", model="NVIDIA A100-SXM4-40GB"),
            reading("A", "0", 0.0, host="m", instance="5", profile="1g.5gb", model="NVIDIA A100-SXM4-40GB"),
            reading("A", "0", 0.0, host="m", instance="6", profile="1g.5gb", model="NVIDIA A100-SXM4-40GB"),
        ])],
        tracks={("A", "5"): IdleTrack(NOW - 3600, NOW - 5), ("A", "6"): IdleTrack(NOW - 3600, NOW - 5)},
    )
    out = samples(derive(s, config(price_per_gpu_hour={"NVIDIA-A100-SXM4-40GB": 7.0}), NOW))
    assert sorted(k[1] for k in out["ai_gpu_utilization_ratio"]) == ["0/1", "0/5", "0/6"]
    assert out["ai_gpu_node_idle_gpus"] == {("m",): 2}
    assert out["ai_gpu_node_allocatable_gpus"] == {("m",): 3}
    # two idle 1g instances of a 7-slice GPU at 7.0/h
    assert out["ai_gpu_idle_cost_per_hour"] == {("m", "NVIDIA-A100-SXM4-40GB"): pytest.approx(2.0)}


def test_time_sliced_device_is_one_series_labelled_by_first_pod():
    s = make_state(observations=[obs("u", [reading("T", pods=[("ci", "b"), ("dev", "a")])])],
                   tracks={("T", ""): IdleTrack(NOW - 700, NOW - 5)}, synced=False)
    out = samples(derive(s, config(), NOW))
    assert list(out["ai_gpu_idle_seconds"]) == [("n1", "0", "T", "NVIDIA H100 80GB HBM3", "ci", "b")]
    assert out["ai_gpu_node_idle_gpus"] == {("n1",): 1}


def test_same_gpu_from_two_targets_counts_once_freshest_wins():
    s = make_state(observations=[
        obs("static", [reading("U", util=0.9)], ts=NOW - 10),
        obs("discovered", [reading("U", util=0.0)], ts=NOW - 2),
    ], synced=False)
    out = samples(derive(s, config(), NOW))
    assert list(out["ai_gpu_utilization_ratio"].values()) == [0.0]


def test_cost_per_node_and_model_with_default_price():
    s = make_state(
        nodes=[node("n1", gpus=2)],
        observations=[obs("u", [reading("U0", "0", 0.0), reading("U1", "1", 0.0)])],
        tracks={("U0", ""): IdleTrack(NOW - 601, NOW - 5), ("U1", ""): IdleTrack(NOW - 30, NOW - 5)},
    )
    out = samples(derive(s, config(price_per_gpu_hour={"default": 2.5}), NOW))
    assert out["ai_gpu_idle_cost_per_hour"] == {("n1", "NVIDIA-H100-80GB-HBM3"): 2.5}


def test_node_scope_filters_gpus_and_nodes():
    cfg = Config.model_validate({"kubernetes": {"node_scope": "n2"}})
    s = make_state(nodes=[node("n1"), node("n2")],
                   observations=[obs("a", [reading("U1", host="n1")]), obs("b", [reading("U2", host="n2")])])
    out = samples(derive(s, cfg, NOW))
    assert {k[0] for k in out["ai_gpu_utilization_ratio"]} == {"n2"}
    assert list(out["ai_gpu_node_tainted"]) == [("n2",)]


def test_pods_not_synced_omits_pod_counts():
    s = make_state(nodes=[node("n1")])
    s.kube.pods_synced = False
    out = samples(derive(s, config(), NOW))
    assert "ai_gpu_node_requested_gpus" not in out and "ai_gpu_node_non_gpu_pods" not in out
    assert out["ai_gpu_node_allocatable_gpus"] == {("n1",): 8}


def test_rendered_output_passes_promtool(tmp_path):
    s = make_state(
        nodes=[node("n1", gpus=4, capacity={"nvidia.com/gpu": 5})],
        pods=[pod("n1", gpus=1), pod("n1")],
        observations=[obs("u", [reading("U0", "0", 0.9, pods=[("p", 'we"ird\\name')]),
                                reading("U1", "1", 0.0)])],
        tracks={("U1", ""): IdleTrack(NOW - 3600, NOW - 5)},
    )
    body = render(derive(s, config(price_per_gpu_hour={"default": 3.0}), NOW))
    res = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert res.returncode == 0, res.stderr.decode() + res.stdout.decode()
    text = body.decode()
    assert 'ai_gpu_node_unhealthy_gpus{node="n1"} 1' in text
    assert 'ai_gpu_idle_cost_per_hour{node="n1",gpu_model="NVIDIA-H100-80GB-HBM3"} 3' in text


def test_renamed_shared_resource_counts_when_listed():
    # GPU device plugin time-slicing with renameByDefault: nodes advertise nvidia.com/gpu.shared
    # replicas and pods request them; dcgm-exporter only attributes them when its
    # NVIDIA_RESOURCE_NAMES lists the name, the kube side counts them when resource_name does.
    shared = {"nvidia.com/gpu.shared": 8}
    n = NodeInfo(name="l4-ts", labels={}, taints=[GPU_TAINT], capacity=dict(shared), allocatable=dict(shared))
    p = PodInfo(uid="u1", namespace="dev", name="nb", node="l4-ts", phase="Running", ip="10.0.0.9",
                labels={}, annotations={}, workload_kind="Pod", workload="nb",
                requests={"nvidia.com/gpu.shared": 1})
    state = AppState()
    state.kube.nodes, state.kube.pods = {"l4-ts": n}, {"u1": p}
    assert gpu_nodes(state.kube, "nvidia.com/gpu", "nvidia.com/gpu") == {}
    cfg = Config.model_validate({"gpu": {"resource_name": ["nvidia.com/gpu", "nvidia.com/gpu.shared"]}})
    assert cfg.gpu.resource_names == ("nvidia.com/gpu", "nvidia.com/gpu.shared")
    (ng,) = gpu_nodes(state.kube, cfg.gpu.resource_names, cfg.gpu.taint_key).values()
    assert (ng.allocatable, ng.requested, ng.non_gpu_pods) == (8, 1, 0)
    assert gpu_units({"nvidia.com/gpu": 2, "nvidia.com/gpu.shared": 3, "nvidia.com/mig-1g.10gb": 1},
                     cfg.gpu.resource_names) == 6


def test_resource_name_list_must_not_be_empty():
    from ai_signals_exporter.config import ConfigError, load_config_text

    with pytest.raises(ConfigError, match="resource_name"):
        load_config_text("gpu: {resource_name: []}")
