"""Kubelet admission failures, DisruptionTarget reasons, and training work lost."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ai_signals_exporter.scheduling.admission import ADMISSION_REASONS, admission_reason
from ai_signals_exporter.scheduling.disruption import DISRUPTION_REASONS, WorkLost, disruption
from ai_signals_exporter.scheduling.model import Condition, PodView

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scheduling"
ADMISSIONS = yaml.safe_load((FIXTURES / "kubelet_admission.yaml").read_text())


def _pod(**kw):
    base = dict(uid="u", namespace="ml", name="p", workload_kind="Job", workload="train",
                node="gpu-1", phase="Failed", requests={"nvidia.com/gpu": 1})
    base.update(kw)
    return PodView(**base)


@pytest.mark.parametrize("case", ADMISSIONS, ids=[c["name"] for c in ADMISSIONS])
def test_kubelet_rejections(case):
    requests = {"nvidia.com/mig-1g.10gb": 1} if "mig" in case["reason"] else {"nvidia.com/gpu": 1}
    got = admission_reason(_pod(reason=case["reason"], message=case["message"], requests=requests))
    assert got == case["expect"]
    assert got is None or got in ADMISSION_REASONS


def test_only_failed_gpu_pods_on_a_node():
    r = "UnexpectedAdmissionError"
    assert admission_reason(_pod(reason=r, phase="Pending")) is None
    assert admission_reason(_pod(reason=r, requests={"cpu": 2})) is None
    assert admission_reason(_pod(reason=r, node="")) is None


@pytest.mark.parametrize("reason,expect", [
    # k8s.io/api core/v1 types.go (v0.28 .. v0.33): PodReasonPreemptionByScheduler,
    # PodReasonEvictionByEvictionAPI, PodReasonTerminationByKubelet, PodReasonDeletionByTaintManager,
    # PodReasonDeletionByPodGC.
    ("PreemptionByScheduler", "preemption"),
    ("EvictionByEvictionAPI", "eviction_api"),
    ("TerminationByKubelet", "node_pressure"),
    ("DeletionByTaintManager", "taint"),
    ("DeletionByPodGC", "other"),
    ("SomethingNew", "other"),
])
def test_disruption_reasons(reason, expect):
    pod = _pod(phase="Running", conditions={"DisruptionTarget": Condition("True", reason, "", 500.0)})
    assert disruption(pod) == (expect, 500.0)
    assert expect in DISRUPTION_REASONS


def test_no_disruption_without_a_true_condition_or_gpus():
    cond = {"DisruptionTarget": Condition("False", "PreemptionByScheduler")}
    assert disruption(_pod(conditions=cond)) is None
    cond = {"DisruptionTarget": Condition("True", "PreemptionByScheduler")}
    assert disruption(_pod(conditions=cond, requests={})) is None


STORE = ("run42", "ml", "run42")


def test_work_lost_once_per_disruption_of_the_job():
    w = WorkLost(episode=300)
    # 4 pods of one job preempted within seconds: one interruption, one loss.
    for i, at in enumerate([10_000.0, 10_002.0, 10_003.0, 10_010.0]):
        w.observe(f"pod{i}", STORE, "preemption", at, last_complete=9_400.0, job_gpus=32, synced=True)
    loss = w.stores[STORE]
    assert loss.interruptions == {"preemption": 1}
    assert loss.lost_seconds == 600.0
    assert loss.lost_gpu_seconds == 600.0 * 32
    # Re-list replays the same pods: nothing more.
    for i in range(4):
        assert w.observe(f"pod{i}", STORE, "preemption", 10_000.0, 9_400.0, 32, True) is None
    # The restarted job is preempted again an hour later, before its next checkpoint.
    assert w.observe("pod9", STORE, "eviction_api", 13_600.0, 9_400.0, 32, True) == 4_200.0
    assert loss.interruptions == {"preemption": 1, "eviction_api": 1}
    assert loss.lost_seconds == 4_800.0


def test_work_lost_baseline_and_missing_checkpoint():
    w = WorkLost()
    assert w.observe("old", STORE, "preemption", 100.0, 50.0, 8, synced=False) is None
    assert STORE not in w.stores or not w.stores[STORE].interruptions
    other = ("s2", "ml", "j2")
    assert w.observe("p", other, "taint", 100.0, None, 8, synced=True) == 0.0
    assert w.stores[other].interruptions == {"taint": 1} and w.stores[other].lost_seconds == 0.0
    # A checkpoint newer than the disruption time (clock skew) loses nothing, never negative.
    third = ("s3", "ml", "j3")
    assert w.observe("q", third, "preemption", 100.0, 130.0, 8, synced=True) == 0.0
