"""The scheduler-message parser and pending GPU demand (fixtures quote the upstream sources)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, strategies as st

from ai_signals_exporter.scheduling.model import Condition, PodView
from ai_signals_exporter.scheduling.pending import (
    REASONS, aggregate_pending, blocked_nodes, classify_message, pending_reason,
)
from ai_signals_exporter.scheduling.resources import GpuResources

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scheduling"
MESSAGES = yaml.safe_load((FIXTURES / "scheduler_messages.yaml").read_text())


@pytest.mark.parametrize("case", MESSAGES, ids=[c["name"] for c in MESSAGES])
def test_real_scheduler_messages(case):
    assert classify_message(case["message"]) == case["expect"]
    assert case["expect"] in REASONS


def test_histogram_counts_per_class_and_preemption_part_is_ignored():
    msg = next(c["message"] for c in MESSAGES if c["name"].startswith("two taints"))
    # The preemption part also names 4 and 5 nodes: counted, it would double everything.
    assert blocked_nodes(msg) == {"untolerated_taint": 5, "insufficient_gpu": 4}


def test_prefilter_message_blocks_all_nodes():
    msg = "0/5 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling.."
    assert blocked_nodes(msg) == {"other": 5}


def test_tie_goes_to_the_earlier_reason():
    msg = "0/4 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, 2 node(s) had untolerated taint {a: b}."
    assert classify_message(msg) == "node_affinity"


def test_configured_resource_name_is_a_gpu():
    msg = "0/2 nodes are available: 2 Insufficient amd.com/gpu."
    assert classify_message(msg) == "other"
    assert classify_message(msg, GpuResources(["amd.com/gpu"])) == "insufficient_gpu"


def test_messages_that_are_not_fit_errors():
    assert classify_message("waiting for scheduling gates: [kueue.x-k8s.io/admission]") == "scheduling_gated"
    assert classify_message("running PreBind plugin \"VolumeBinding\": binding volumes: timed out") == "other"
    assert classify_message("") == "other"


def _pod(uid="u1", **kw):
    base = dict(uid=uid, namespace="ml", name=f"p-{uid}", workload_kind="Job", workload="train",
                requests={"nvidia.com/gpu": 8}, created=1000.0)
    base.update(kw)
    return PodView(**base)


def _unsched(message, reason="Unschedulable", t=1010.0):
    return {"PodScheduled": Condition("False", reason, message, t)}


GPU_SHORT = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu. preemption: 0/4 nodes are available: 4 No preemption victims found for incoming pod.."


def test_pending_reason_from_conditions_and_gates():
    assert pending_reason(_pod(conditions=_unsched(GPU_SHORT))) == "insufficient_gpu"
    gated = _unsched("Scheduling is blocked due to non-empty scheduling gates", "SchedulingGated")
    assert pending_reason(_pod(conditions=gated)) == "scheduling_gated"
    # Kueue's gate, before the condition reaches us.
    assert pending_reason(_pod(scheduling_gates=("kueue.x-k8s.io/admission",))) == "scheduling_gated"
    assert pending_reason(_pod(conditions=_unsched("binding rejected", "SchedulerError"))) == "other"


def test_not_pending_gpu_pods():
    assert pending_reason(_pod()) is None  # not yet looked at by the scheduler
    assert pending_reason(_pod(conditions=_unsched(GPU_SHORT), requests={"cpu": 1})) is None
    assert pending_reason(_pod(conditions=_unsched(GPU_SHORT), node="n1")) is None
    assert pending_reason(_pod(conditions=_unsched(GPU_SHORT), phase="Running")) is None
    assert pending_reason(_pod(conditions={"PodScheduled": Condition("True")})) is None


def test_aggregate_per_workload_and_reason_with_oldest_age():
    pods = [
        _pod("a", conditions=_unsched(GPU_SHORT), created=1000.0),
        _pod("b", conditions=_unsched(GPU_SHORT), created=1500.0, requests={"nvidia.com/mig-1g.10gb": 2}),
        _pod("c", scheduling_gates=("kueue.x-k8s.io/admission",), created=None,
             conditions=_unsched("Scheduling is blocked due to non-empty scheduling gates", "SchedulingGated", 1200.0)),
        _pod("d", workload="other", requests={"cpu": 4}, conditions=_unsched(GPU_SHORT)),
    ]
    groups, oldest = aggregate_pending(pods, now=2000.0)
    assert {k: (g.pods, g.gpus) for k, g in groups.items()} == {
        ("ml", "Job", "train", "insufficient_gpu"): (2, 10),
        ("ml", "Job", "train", "scheduling_gated"): (1, 8),
    }
    assert oldest == {("ml", "Job", "train"): 1000.0}


# Reason strings per class, as the plugins write them (see the fixture header for the sources).
_STRINGS = {
    "insufficient_gpu": ["Insufficient nvidia.com/gpu", "Insufficient nvidia.com/mig-3g.40gb"],
    "node_affinity": ["node(s) didn't match Pod's node affinity/selector"],
    "untolerated_taint": ["node(s) had untolerated taint {nvidia.com/gpu: present}",
                          "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"],
    "other": ["Insufficient cpu", "node(s) were unschedulable", "node(s) had volume node affinity conflict"],
}


@given(st.dictionaries(st.sampled_from([s for v in _STRINGS.values() for s in v]),
                       st.integers(min_value=1, max_value=500), min_size=1),
       st.booleans())
def test_property_most_blocking_class_wins(histogram, preemption):
    # FitError.Error(): "%v %v" items, sort.Strings'ed, joined by ", ", then "."; then the
    # PostFilter message, which names other counts that must not be counted.
    items = sorted(f"{n} {reason}" for reason, n in histogram.items())
    total = sum(histogram.values())
    msg = f"0/{total} nodes are available: {', '.join(items)}."
    if preemption:
        msg += f" preemption: 0/{total} nodes are available: {total * 7} Preemption is not helpful for scheduling.."
    per_class = {c: sum(histogram.get(s, 0) for s in strings) for c, strings in _STRINGS.items()}
    best = max(per_class.values())
    expect = next(r for r in REASONS if per_class.get(r, 0) == best)
    assert blocked_nodes(msg) == {c: n for c, n in per_class.items() if n}
    assert classify_message(msg) == expect
