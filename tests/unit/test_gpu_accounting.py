"""GPU time accounting (gpu/accounting.py) over a simulated fleet with known truth, driven by an
injected clock (plain timestamps): every counter after an hour within 1 % of truth, plus
properties over generated observation sequences."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_signals_exporter.expo.families import Family, render
from ai_signals_exporter.gpu.accounting import (
    ALLOCATED_IDLE,
    BUSY,
    FAMILIES,
    GPU_SECONDS,
    MIG_INSTANCE_SECONDS,
    NO_TELEMETRY,
    PRICE_PER_HOUR,
    STATES,
    UNALLOCATED,
    UNHEALTHY,
    GpuTimeAccumulator,
    NodeCapacity,
    account,
    assign,
    gpu_time_samples,
    physical_capacity,
    price_samples,
    workload_resolver,
)
from ai_signals_exporter.gpu.observation import DcgmObservation
from ai_signals_exporter.gpu.readings import GpuReading
from ai_signals_exporter.kube.model import PodInfo

THRESHOLD = 0.05
INTERVAL = 15.0
MAX_GAP = 3 * INTERVAL
HOUR = 3600.0
T0 = 1_764_000_000.0  # the injected clock's start (a Unix time)

# (namespace, pod) -> (workload_kind, workload), as the kube store would resolve owners.
WORKLOADS = {
    ("ml", "train-0"): ("Job", "train"),
    ("ml", "nb-alice-0"): ("StatefulSet", "nb-alice"),
    ("ml", "trainer-b-0"): ("Job", "trainer-b"),
    ("serve", "llm-7d9-abc"): ("Deployment", "llm"),
    ("ml", "nb-bob-0"): ("StatefulSet", "nb-bob"),
    ("team-a", "chat-1"): ("Deployment", "chat"),
    ("team-a", "chat-2"): ("Deployment", "chat"),
    ("team-b", "embed-1"): ("Deployment", "embed"),
}


def workload_of(ns: str, pod: str) -> tuple[str, str]:
    return WORKLOADS.get((ns, pod), ("", ""))


def gpu(node: str, index: int, util: float, pods=(), model="NVIDIA H100 80GB HBM3",
        instance: str = "", profile: str = "") -> GpuReading:
    uuid = f"GPU-{node}-{index}"
    return GpuReading(
        key=(uuid, instance), gpu=str(index), uuid=uuid, instance=instance, profile=profile,
        model=model, hostname=node, util=util, pods=tuple(sorted(pods)),
    )


# --- the fleet: each node is (capacity, readings at time t or None when dcgm is down) --------

def node_a(t: float):
    """8 x H100: 2 busy (Job train), 1 notebook holding a GPU idle, 4 free idle, GPU 6 off the
    bus (missing from dcgm) and withdrawn by the device plugin."""
    r = [gpu("a", 0, 0.93, [("ml", "train-0")]), gpu("a", 1, 0.88, [("ml", "train-0")]),
         gpu("a", 2, 0.0, [("ml", "nb-alice-0")])]
    r += [gpu("a", i, 0.01) for i in (3, 4, 5, 7)]
    return NodeCapacity(8, 1, "NVIDIA-H100-80GB-HBM3"), r


def node_b(t: float):
    """4 x A100, one withdrawn while dcgm still reports it idle; GPU 0 busy for the first 10
    minutes then held idle; dcgm down from minute 20 to minute 35."""
    if 1200 < t < 2100:
        return NodeCapacity(4, 1, "NVIDIA-A100-SXM4-80GB"), None
    m = "NVIDIA A100-SXM4-80GB"
    r = [gpu("b", 0, 0.7 if t <= 600 else 0.02, [("ml", "trainer-b-0")], model=m)]
    r += [gpu("b", i, 0.0, model=m) for i in (1, 2, 3)]
    return NodeCapacity(4, 1, "NVIDIA-A100-SXM4-80GB"), r


def node_c(t: float):
    """2 x H100: GPU 0 in MIG mode (3g busy serving, 3g idle notebook, 1g free), GPU 1 whole and
    free."""
    r = [
        gpu("c", 0, 0.6, [("serve", "llm-7d9-abc")], instance="1", profile="3g.40gb"),
        gpu("c", 0, 0.0, [("ml", "nb-bob-0")], instance="2", profile="3g.40gb"),
        gpu("c", 0, 0.0, instance="9", profile="1g.10gb"),
        gpu("c", 1, 0.0),
    ]
    return NodeCapacity(2, 0, "NVIDIA-H100-80GB-HBM3"), r


def node_d(t: float):
    """1 x L4 time-sliced 4 ways: 3 pods of 2 workloads in 2 namespaces share it, busy."""
    pods = [("team-a", "chat-1"), ("team-a", "chat-2"), ("team-b", "embed-1")]
    cap = physical_capacity({"nvidia.com/gpu": 4}, {"nvidia.com/gpu": 4},
                            {"nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.product": "NVIDIA-L4"})
    return cap, [gpu("d", 0, 0.87, pods, model="NVIDIA L4")]


def node_e(t: float):
    """2 GPUs, no dcgm-exporter on the node at all."""
    return NodeCapacity(2, 0, "NVIDIA-L40S"), None


FLEET = {"a": node_a, "b": node_b, "c": node_c, "d": node_d, "e": node_e}

H = HOUR
TRUTH = {
    ("a", "ml", "Job", "train", BUSY): 2 * H,
    ("a", "ml", "StatefulSet", "nb-alice", ALLOCATED_IDLE): 1 * H,
    ("a", "", "", "", UNALLOCATED): 4 * H,
    ("a", "", "", "", UNHEALTHY): 1 * H,
    ("b", "ml", "Job", "trainer-b", BUSY): 600,
    ("b", "ml", "Job", "trainer-b", ALLOCATED_IDLE): H - 600 - 900,
    ("b", "", "", "", UNALLOCATED): 2 * (H - 900),
    ("b", "", "", "", UNHEALTHY): 1 * H,
    ("b", "", "", "", NO_TELEMETRY): 3 * 900,
    ("c", "serve", "Deployment", "llm", BUSY): 0.5 * H,
    ("c", "ml", "StatefulSet", "nb-bob", BUSY): 0.5 * H,
    ("c", "", "", "", UNALLOCATED): 1 * H,
    ("d", "team-a", "Deployment", "chat", BUSY): 2 / 3 * H,
    ("d", "team-b", "Deployment", "embed", BUSY): 1 / 3 * H,
    ("e", "", "", "", NO_TELEMETRY): 2 * H,
}
GPUS = {"a": 8, "b": 4, "c": 2, "d": 1, "e": 2}


def simulate(seconds: float = HOUR, seed: int = 7) -> GpuTimeAccumulator:
    """The source's loop: every interval each node's dcgm target is scraped (a few seconds of
    jitter in the scrape time), then every GPU node is advanced with the clock."""
    rng = random.Random(seed)
    acc = GpuTimeAccumulator()
    t = 0.0
    while t <= seconds:
        for name, fn in FLEET.items():
            cap, readings = fn(t)
            if readings is not None:
                ts = t if t in (0.0, seconds) else t + rng.uniform(-2, 2)
                acc.observe(name, ts, readings, cap, threshold=THRESHOLD, max_gap=MAX_GAP,
                            workload_of=workload_of)
            acc.advance(name, t, cap, max_gap=MAX_GAP)
        t += INTERVAL
    return acc


def by_truth_key(acc: GpuTimeAccumulator) -> dict[tuple, float]:
    out: dict[tuple, float] = defaultdict(float)
    for (node, _model, ns, kind, wl, state), v in nonzero(acc.seconds).items():
        out[(node, ns, kind, wl, state)] += v
    return dict(out)


def nonzero(counters: dict) -> dict:
    """Counters credited with time (a node's unattributed states exist at 0 from its start)."""
    return {k: v for k, v in counters.items() if v}


def test_simulated_hour_every_counter_within_one_percent_of_truth():
    got = by_truth_key(simulate())
    assert set(got) == set(TRUTH), set(got) ^ set(TRUTH)
    for key, truth in TRUTH.items():
        assert got[key] == pytest.approx(truth, rel=0.01), key


def pod(ns: str, name: str, kind: str, workload: str) -> PodInfo:
    return PodInfo(uid=f"uid-{name}", namespace=ns, name=name, node="", phase="Running", ip="",
                   labels={}, annotations={}, workload_kind=kind, workload=workload, requests={})


def test_source_cycle_through_account_matches_truth():
    """The wiring path: one dcgm target per node (kept in state as DcgmObservation, last good
    readings kept while the target is down), `account` called once per source cycle."""
    resolve = workload_resolver([pod(ns, name, *wl) for (ns, name), wl in WORKLOADS.items()])
    acc = GpuTimeAccumulator()
    observations: dict[str, DcgmObservation] = {}
    t = 0.0
    while t <= HOUR:
        capacities = {}
        for name, fn in FLEET.items():
            cap, readings = fn(t)
            capacities[name] = cap
            url = f"http://{name}:9400/metrics"
            if readings is not None:
                observations[url] = DcgmObservation(url, name, T0 + t, tuple(readings), up=True)
            elif url in observations:  # down: the last good observation stays, with its time
                old = observations[url]
                observations[url] = DcgmObservation(url, name, old.ts, old.readings, up=False)
        account(acc, observations, capacities, T0 + t, threshold=THRESHOLD, interval=INTERVAL,
                workload_of=resolve)
        t += INTERVAL
    got = by_truth_key(acc)
    assert set(got) == set(TRUTH)
    for key, truth in TRUTH.items():
        assert got[key] == pytest.approx(truth, rel=0.01), key


def test_a_node_only_dcgm_knows_keeps_its_gpu_count_through_a_gap():
    acc = GpuTimeAccumulator()
    readings = (gpu("x", 0, 0.9), gpu("x", 1, 0.0))
    for ts in (1000.0, 1015.0, 1030.0):
        obs = {"u": DcgmObservation("u", None, ts, readings, up=True)}  # node from Hostname
        account(acc, obs, {}, ts, threshold=THRESHOLD, interval=INTERVAL, workload_of=workload_of)
    account(acc, obs, {}, 1300.0, threshold=THRESHOLD, interval=INTERVAL, workload_of=workload_of)
    states = {k[5]: v for k, v in nonzero(acc.seconds).items()}
    assert states == {BUSY: 30.0, UNALLOCATED: 30.0, NO_TELEMETRY: 2 * 270.0}


def test_simulated_hour_states_sum_to_gpus_times_elapsed_per_node():
    acc = simulate()
    per_node: dict[str, float] = defaultdict(float)
    for key, v in acc.seconds.items():
        per_node[key[0]] += v
    for node, n in GPUS.items():
        assert per_node[node] == pytest.approx(n * HOUR, rel=0.01), node
    # Namespace sums are exact under time-slicing: the shares of one GPU add up to one GPU.
    d = sum(v for k, v in acc.seconds.items() if k[0] == "d")
    assert d == pytest.approx(HOUR, rel=1e-9)


def test_mig_instance_time_is_its_own_family_and_physical_time_counts_once():
    acc = simulate()
    mig = {(k[2], k[3], k[5], k[6]): v for k, v in acc.mig_seconds.items()}
    assert mig == pytest.approx({
        ("3g.40gb", "serve", "llm", BUSY): HOUR,
        ("3g.40gb", "ml", "nb-bob", ALLOCATED_IDLE): HOUR,
        ("1g.10gb", "", "", UNALLOCATED): HOUR,
    }, rel=0.01)
    physical_c = sum(v for k, v in acc.seconds.items() if k[0] == "c")
    assert physical_c == pytest.approx(2 * HOUR, rel=0.01)


def test_gpu_model_label_is_the_nodes_product_and_falls_back_to_dcgm():
    acc = simulate(300)
    models = {(k[0], k[1]) for k in acc.seconds}
    assert ("a", "NVIDIA-H100-80GB-HBM3") in models
    acc2 = GpuTimeAccumulator()
    for ts in (0.0, 15.0):
        acc2.observe("x", ts, [gpu("x", 0, 0.9, model="NVIDIA L4")], NodeCapacity(1),
                     threshold=THRESHOLD, max_gap=MAX_GAP, workload_of=workload_of)
    assert list(nonzero(acc2.seconds)) == [("x", "NVIDIA L4", "", "", "", BUSY)]


def test_counters_start_at_zero_and_repeated_observations_add_nothing():
    acc = GpuTimeAccumulator()
    cap, r = node_a(0)
    kw = dict(threshold=THRESHOLD, max_gap=MAX_GAP, workload_of=workload_of)
    acc.observe("a", 1000.0, r, cap, **kw)
    # Time before the exporter's first observation is not counted; the node's unattributed
    # states exist at 0 from now, so increase() sees their first credit.
    assert acc.seconds == {("a", "NVIDIA-H100-80GB-HBM3", "", "", "", s): 0.0
                           for s in (BUSY, UNALLOCATED, UNHEALTHY, NO_TELEMETRY)}
    acc.observe("a", 1015.0, r, cap, **kw)
    before = dict(acc.seconds)
    acc.observe("a", 1015.0, r, cap, **kw)
    acc.observe("a", 1010.0, r, cap, **kw)
    assert acc.seconds == before
    assert sum(before.values()) == pytest.approx(8 * 15)


def test_gap_is_no_telemetry_never_idle_or_busy_and_stays_monotonic_with_a_late_scrape():
    acc = GpuTimeAccumulator()
    kw = dict(threshold=THRESHOLD, max_gap=MAX_GAP, workload_of=workload_of)
    cap = NodeCapacity(2, 1, "M")
    busy = [gpu("n", 0, 0.9), gpu("n", 1, 0.9)]
    acc.observe("n", 0.0, busy, cap, **kw)
    acc.advance("n", 45.0, cap, max_gap=MAX_GAP)  # not yet a gap
    assert nonzero(acc.seconds) == {}
    acc.advance("n", 100.0, cap, max_gap=MAX_GAP)
    assert nonzero(acc.seconds) == {("n", "M", "", "", "", NO_TELEMETRY): 100.0,
                                    ("n", "M", "", "", "", UNHEALTHY): 100.0}
    snapshot = dict(acc.seconds)
    # A scrape that started before the last advance lands afterwards: nothing goes backwards.
    acc.observe("n", 99.0, busy, cap, **kw)
    assert all(acc.seconds[k] >= v for k, v in snapshot.items())
    acc.observe("n", 110.0, busy, cap, **kw)
    assert acc.seconds[("n", "M", "", "", "", NO_TELEMETRY)] == 100.0
    assert sum(acc.seconds.values()) == pytest.approx(2 * 110.0)
    # Withdrawn but busy in dcgm: the readings win, so all 10 s are busy.
    assert acc.seconds[("n", "M", "", "", "", BUSY)] == pytest.approx(2 * 10.0)


@pytest.mark.parametrize(
    ("present", "idle_free", "withdrawn", "expect"),
    [
        # 4 GPUs, GPU 3 missing: withdrawn first from the missing one
        ((0, 1, 2), (0, 1, 2), 1, {UNHEALTHY: 1, UNALLOCATED: 3}),
        # two missing, one withdrawn: one unhealthy, one no_telemetry
        ((0, 1), (0, 1), 1, {UNHEALTHY: 1, NO_TELEMETRY: 1, UNALLOCATED: 2}),
        # none missing, two withdrawn: taken from idle unallocated
        ((0, 1, 2, 3), (2, 3), 2, {UNHEALTHY: 2, BUSY: 2}),
        # more withdrawn than missing + idle free: busy GPUs stay busy
        ((0, 1, 2, 3), (3,), 3, {UNHEALTHY: 1, BUSY: 3}),
    ],
)
def test_unhealthy_precedence(present, idle_free, withdrawn, expect):
    readings = [gpu("n", i, 0.0 if i in idle_free else 0.5) for i in present]
    a = assign("n", readings, NodeCapacity(4, withdrawn, "M"), THRESHOLD, workload_of)
    states: dict[str, float] = defaultdict(float)
    for key, n in a.gpus.items():
        states[key[5]] += n
    assert dict(states) == expect


def test_busy_uses_the_idle_threshold_and_busy_without_pods_is_use_outside_pods():
    a = assign("n", [gpu("n", 0, THRESHOLD), gpu("n", 1, THRESHOLD - 1e-9)], NodeCapacity(2),
               THRESHOLD, workload_of)
    assert a.gpus == {("n", "NVIDIA H100 80GB HBM3", "", "", "", BUSY): 1.0,
                      ("n", "NVIDIA H100 80GB HBM3", "", "", "", UNALLOCATED): 1.0}


def test_unresolved_pod_keeps_its_namespace_and_never_names_the_pod():
    a = assign("n", [gpu("n", 0, 0.0, [("ghost", "pod-xyz-123")])], NodeCapacity(1), THRESHOLD,
               workload_of)
    (key,) = a.gpus
    assert key[2:] == ("ghost", "", "", ALLOCATED_IDLE)
    assert "pod-xyz-123" not in key


G = "nvidia.com/gpu"


@pytest.mark.parametrize(
    ("capacity", "allocatable", "labels", "expect"),
    [
        ({G: 8}, {G: 7}, {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
         NodeCapacity(8, 1, "NVIDIA-H100-80GB-HBM3")),
        # time-slicing: 2 GPUs x 4 replicas; a withdrawn GPU takes its 4 replicas with it
        ({G: 8}, {G: 4}, {"nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.count": "2"},
         NodeCapacity(2, 1)),
        ({G: 8}, {G: 7}, {"nvidia.com/gpu.replicas": "4"}, NodeCapacity(2, 1)),
        # time-slicing without a rename: GFD appends -SHARED to the product (resource.go)
        ({G: 4}, {G: 4}, {"nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.count": "1",
                          "nvidia.com/gpu.product": "NVIDIA-L4-SHARED"}, NodeCapacity(1, 0, "NVIDIA-L4")),
        # sharing disabled: GFD labels replicas "0"
        ({G: 8}, {G: 8}, {"nvidia.com/gpu.replicas": "0", "nvidia.com/gpu.count": "8"}, NodeCapacity(8, 0)),
        # MIG mixed: gpu.count stays physical; 1 whole GPU + 1 GPU as 2x3g + 1x1g, 1g withdrawn
        ({G: 1, "nvidia.com/mig-3g.40gb": 2, "nvidia.com/mig-1g.10gb": 1},
         {G: 1, "nvidia.com/mig-3g.40gb": 2, "nvidia.com/mig-1g.10gb": 0},
         {"nvidia.com/mig.strategy": "mixed", "nvidia.com/gpu.count": "2"}, NodeCapacity(2, 1)),
        # MIG mixed without GFD: a lower bound, never more GPUs than exist
        ({"nvidia.com/mig-1g.10gb": 14}, {"nvidia.com/mig-1g.10gb": 14}, {}, NodeCapacity(2, 0)),
        # MIG single: gpu.count counts MIG devices (8 GPUs x 7 x 1g = 56), product has a suffix
        ({G: 56}, {G: 55},
         {"nvidia.com/mig.strategy": "single", "nvidia.com/gpu.count": "56",
          "nvidia.com/gpu.slices.gi": "1", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"},
         NodeCapacity(8, 1, "NVIDIA-A100-SXM4-40GB")),
        # MIG single on an A30: 4 slices, 2g devices -> 2 per GPU
        ({G: 4}, {G: 4},
         {"nvidia.com/mig.strategy": "single", "nvidia.com/gpu.slices.gi": "2",
          "nvidia.com/gpu.product": "NVIDIA-A30-MIG-2g.12gb"}, NodeCapacity(2, 0, "NVIDIA-A30")),
        ({}, {}, {"nvidia.com/gpu.replicas": "junk"}, NodeCapacity(0, 0)),
    ],
)
def test_physical_capacity_from_units_and_gfd_labels(capacity, allocatable, labels, expect):
    assert physical_capacity(capacity, allocatable, labels) == expect


def test_physical_capacity_takes_a_list_of_resource_names():
    # time-slicing with renameByDefault: the replicas are advertised as nvidia.com/gpu.shared
    shared = "nvidia.com/gpu.shared"
    cap = physical_capacity({shared: 8}, {shared: 4}, {"nvidia.com/gpu.replicas": "4"}, [G, shared])
    assert cap == NodeCapacity(2, 1)
    assert physical_capacity({shared: 8}, {shared: 4}, {"nvidia.com/gpu.replicas": "4"}) == NodeCapacity(0, 0)


def test_samples_and_prices_join_on_the_counters_gpu_model():
    acc = simulate(120)
    samples = gpu_time_samples(acc)
    assert {s[0] for s in samples} == {GPU_SECONDS, MIG_INSTANCE_SECONDS}
    assert all(len(labels) == len(spec.labelnames) for spec, labels, _ in samples)
    prices = price_samples(acc, {"NVIDIA H100 80GB HBM3": 4.0, "default": 1.5})
    got = {labels[0]: v for spec, labels, v in prices}
    assert all(spec is PRICE_PER_HOUR for spec, _, _ in prices)
    # the loose model match prices the GFD spelling the counters carry
    assert got["NVIDIA-H100-80GB-HBM3"] == 4.0
    assert got["NVIDIA-L4"] == 1.5
    assert price_samples(acc, {}) == []


def test_family_specs_are_plain_data():
    names = [f.name for f in FAMILIES]
    assert names == ["ai_gpu_seconds_total", "ai_gpu_mig_instance_seconds_total",
                     "ai_gpu_price_per_hour"]
    assert GPU_SECONDS.labelnames == ("node", "gpu_model", "namespace", "workload_kind",
                                      "workload", "state")
    assert {f.type for f in FAMILIES} == {"counter", "gauge"}


def test_forget_drops_counters_of_gone_workloads_only():
    acc = simulate(120)
    acc.seconds[("gone", "M", "ml", "Job", "old", BUSY)] = 5.0
    acc.touched[("gone", "M", "ml", "Job", "old", BUSY)] = -10_000.0
    acc.forget(120.0, keep=3600.0)
    assert not any(k[0] == "gone" for k in acc.seconds)
    assert any(k[0] == "a" for k in acc.seconds)


def test_cardinality_guard_1000_nodes_labels_by_workload_not_pod():
    """1,000 nodes x 8 GPUs, each GPU time-sliced by 4 pods of one workload per node: the series
    count does not grow with pods, only with nodes x (workloads on the node + states)."""
    acc = GpuTimeAccumulator()
    cap = NodeCapacity(8, 1, "M")
    kw = dict(threshold=THRESHOLD, max_gap=MAX_GAP, workload_of=lambda ns, pod: ("Deployment", "w"))
    for ts in (0.0, 15.0):
        for n in range(1000):
            readings = [gpu(f"n{n}", i, 0.9 if i < 4 else 0.0,
                            [("ns", f"w-{n}-{i}-{j}") for j in range(4)] if i < 6 else ())
                        for i in range(7)]
            acc.observe(f"n{n}", ts, readings, cap, **kw)
    # per node: busy and allocated_idle of its workload, and the four unattributed states
    assert len(acc.seconds) == 1000 * 6
    assert not any("w-" in v for k in acc.seconds for v in k)


# --- properties -----------------------------------------------------------------------------

reading_st = st.builds(
    lambda i, util, pods, mig: gpu("p", i, util, pods, instance="1" if mig else "",
                                   profile="1g.10gb" if mig else ""),
    st.integers(0, 5), st.floats(0, 1),
    st.lists(st.sampled_from(sorted(WORKLOADS) + [("x", "unknown")]), max_size=3, unique=True),
    st.booleans(),
)
step_st = st.tuples(
    st.sampled_from(["observe", "advance"]),
    st.floats(0.5, 200),  # time since the previous step
    st.lists(reading_st, max_size=8),
    st.integers(0, 6),  # capacity
    st.integers(0, 6),  # withdrawn
)


@settings(max_examples=150, deadline=None)
@given(st.lists(step_st, min_size=1, max_size=25))
def test_property_states_sum_to_gpus_times_elapsed_and_counters_are_monotonic(steps):
    acc = GpuTimeAccumulator()
    kw = dict(threshold=THRESHOLD, max_gap=MAX_GAP, workload_of=workload_of)
    t = 0.0
    expected = 0.0
    last_seen = 0
    prev: dict = {}
    for kind, dt, readings, gpus, withdrawn in steps:
        t += dt
        cap = NodeCapacity(gpus, withdrawn, "M")
        clock = acc.clocks.get("p")
        start, last_obs = (clock.covered, clock.last_obs) if clock else (None, None)
        # the node's GPU count: capacity, or more when dcgm shows more than it says
        shown = max(gpus, len({r.uuid for r in readings}))
        if kind == "observe":
            acc.observe("p", t, readings, cap, **kw)
        else:
            acc.advance("p", t, cap, max_gap=MAX_GAP)
        clock = acc.clocks["p"]
        if start is not None and clock.covered > start:
            if kind == "observe" and t - last_obs <= MAX_GAP:
                count = shown
            else:  # a gap: capacity, or what dcgm last showed when capacity says nothing
                count = gpus or last_seen
            expected += count * (clock.covered - start)
        if kind == "observe":
            last_seen = shown
        assert sum(acc.seconds.values()) == pytest.approx(expected, rel=1e-9, abs=1e-6)
        assert all(v >= prev.get(k, 0.0) for k, v in acc.seconds.items())
        assert all(k in acc.seconds and acc.seconds[k] >= v for k, v in prev.items())
        assert {k[5] for k in acc.seconds} <= set(STATES)
        prev = dict(acc.seconds)


@settings(max_examples=150, deadline=None)
@given(st.lists(reading_st, max_size=10), st.integers(0, 8), st.integers(0, 8))
def test_property_one_observation_assigns_each_gpu_exactly_once(readings, gpus, withdrawn):
    a = assign("p", readings, NodeCapacity(gpus, withdrawn, "M"), THRESHOLD, workload_of)
    physical = len({r.uuid for r in readings})
    assert sum(a.gpus.values()) == pytest.approx(max(gpus, physical))
    unhealthy = sum(v for k, v in a.gpus.items() if k[5] == UNHEALTHY)
    assert unhealthy <= withdrawn
    assert all(v > 0 for v in a.gpus.values())


def test_rendered_families_pass_promtool_check_metrics():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (scripts/setup installs it from Debian packages)"
    acc = simulate(600)
    fams = {spec.name: spec.new() for spec in FAMILIES}
    for spec, labels, value in gpu_time_samples(acc) + price_samples(acc, {"default": 2.5}):
        fams[spec.name].add(labels, value)
    body = render(fams.values())
    assert b'ai_gpu_seconds_total{node="d",gpu_model="NVIDIA-L4",namespace="team-a"' in body
    res = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    assert res.returncode == 0 and not res.stdout and not res.stderr, res.stdout + res.stderr
