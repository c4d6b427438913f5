"""From pod/node/quota/event inputs through the counters to rendered, promtool-valid families."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ai_signals_exporter.expo.families import render
from ai_signals_exporter.scheduling.derive import (
    CheckpointLink, SchedulingState, derive, forget_pod, observe_event, observe_pod, samples,
)
from ai_signals_exporter.scheduling.families import FAMILIES
from ai_signals_exporter.scheduling.model import Condition, EventView, NodeView, PodView, QuotaView

DOCS = Path(__file__).resolve().parents[2] / "docs" / "scheduling.md"
NOW = 20_000.0
QUOTA_MSG = ('Error creating: pods "llama-x" is forbidden: exceeded quota: gpu-quota, requested: '
             'requests.nvidia.com/gpu=2, used: requests.nvidia.com/gpu=7, limited: requests.nvidia.com/gpu=8')


def _pod(uid, **kw):
    base = dict(uid=uid, namespace="ml", name=uid, workload_kind="Job", workload="train",
                requests={"nvidia.com/gpu": 8}, created=NOW - 600)
    base.update(kw)
    return PodView(**base)


def _by_name(state, pods=(), nodes=(), quotas=()):
    out: dict[str, dict] = {}
    for spec, labels, value in samples(state, pods, nodes, quotas, NOW):
        out.setdefault(spec.name, {})[labels] = value
    return out


def _scenario():
    s = SchedulingState()
    rejected = _pod("r1", node="gpu-7", phase="Failed", reason="UnexpectedAdmissionError",
                    message="Pod was rejected: Allocate failed due to no healthy devices present; "
                            "cannot allocate unhealthy devices nvidia.com/gpu, which is unexpected")
    old = _pod("old", node="gpu-7", phase="Failed", reason="UnexpectedAdmissionError")
    running = _pod("t0", node="gpu-1", phase="Running")
    link = CheckpointLink("run42", "ml", "run42", last_complete=NOW - 1800, job_gpus=16)
    # Initial list: the old rejection and the running pod are baseline.
    for p in (old, running, _pod("r1", node="gpu-7")):
        observe_pod(s, p, synced=False, checkpoint=link)
    # Watch: r1 is rejected, t0 and t1 (same job) preempted seconds apart.
    observe_pod(s, rejected, synced=True)
    cond = {"DisruptionTarget": Condition("True", "PreemptionByScheduler",
                                          "default-scheduler: preempting to accommodate a higher priority pod", NOW - 60)}
    preempted = _pod("t0", node="gpu-1", phase="Running", conditions=cond)
    observe_pod(s, preempted, synced=True, checkpoint=link)
    observe_pod(s, _pod("t1", node="gpu-2", phase="Running", conditions=cond), synced=True, checkpoint=link)
    # A re-list replays everything.
    for p in (old, rejected, preempted):
        observe_pod(s, p, synced=True, checkpoint=link)
    observe_event(s, EventView("ev1", "team-a", "Warning", "FailedCreate", QUOTA_MSG, 3), synced=False)
    observe_event(s, EventView("ev1", "team-a", "Warning", "FailedCreate", QUOTA_MSG, 5), synced=True)
    observe_event(s, EventView("ev2", "team-a", "Warning", "BackOff", "Back-off restarting", 9), synced=True)
    pending = _pod("w0", workload_kind="LeaderWorkerSet", workload="llama", conditions={"PodScheduled": Condition(
        "False", "Unschedulable",
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod..", NOW - 100)})
    nodes = [NodeView("gpu-1", capacity={"nvidia.com/gpu": 8}, allocatable={"nvidia.com/gpu": 8}, unschedulable=True)]
    quotas = [QuotaView("team-a", "gpu-quota", hard={"requests.nvidia.com/gpu": "8"},
                        used={"requests.nvidia.com/gpu": "7"})]
    return s, [pending, rejected, preempted], nodes, quotas


def test_samples_of_the_scenario():
    s, pods, nodes, quotas = _scenario()
    out = _by_name(s, pods, nodes, quotas)
    assert out["ai_gpu_pods_pending"] == {("ml", "LeaderWorkerSet", "llama", "insufficient_gpu"): 1}
    assert out["ai_gpu_pods_pending_requested_gpus"] == {("ml", "LeaderWorkerSet", "llama", "insufficient_gpu"): 8}
    assert out["ai_gpu_pods_pending_oldest_seconds"] == {("ml", "LeaderWorkerSet", "llama"): 600.0}
    assert out["ai_gpu_node_admission_failures_total"] == {("gpu-7", "unexpected_admission_error"): 1}
    assert out["ai_gpu_pod_disruptions_total"] == {("ml", "Job", "train", "preemption"): 2}
    assert out["ai_checkpoint_interruptions_total"] == {("run42", "ml", "run42", "preemption"): 1}
    assert out["ai_checkpoint_lost_seconds_total"] == {("run42", "ml", "run42"): 1740.0}
    assert out["ai_checkpoint_lost_gpu_seconds_total"] == {("run42", "ml", "run42"): 1740.0 * 16}
    assert out["ai_gpu_quota_gpus"] == {("team-a", "gpu-quota", "hard"): 8.0, ("team-a", "gpu-quota", "used"): 7.0}
    assert out["ai_gpu_quota_rejections_total"] == {("team-a",): 2}
    assert out["ai_gpu_offline_gpus"] == {("gpu-1", "cordoned"): 8}
    # Only quota-rejection events are remembered at all.
    assert len(s.quota_rejections) == 1


def test_disruption_without_transition_time_uses_now():
    s = SchedulingState()
    link = CheckpointLink("run1", "ml", "run1", last_complete=NOW - 100, job_gpus=2)
    cond = {"DisruptionTarget": Condition("True", "EvictionByEvictionAPI")}
    observe_pod(s, _pod("a", conditions=cond), synced=True, checkpoint=link)  # no clock: skipped
    assert s.work_lost.stores == {} and s.disruptions.totals
    observe_pod(s, _pod("b", conditions=cond), synced=True, checkpoint=link, now=NOW)
    assert s.work_lost.stores[("run1", "ml", "run1")].lost_gpu_seconds == 200.0


def test_known_stores_start_at_zero():
    s = SchedulingState()
    out = {}
    for spec, labels, value in samples(s, (), (), (), NOW, known_stores=[("run7", "ml", "run7")]):
        out.setdefault(spec.name, {})[labels] = value
    assert out == {"ai_checkpoint_lost_seconds_total": {("run7", "ml", "run7"): 0.0},
                   "ai_checkpoint_lost_gpu_seconds_total": {("run7", "ml", "run7"): 0.0}}


def test_counters_survive_forgetting_deleted_pods():
    s, pods, nodes, quotas = _scenario()
    for p in pods:
        forget_pod(s, p.uid)
    out = _by_name(s)
    assert out["ai_gpu_node_admission_failures_total"] == {("gpu-7", "unexpected_admission_error"): 1}
    assert len(s.admissions) < 5 and len(s.disruptions) < 5


def test_rendered_output_passes_promtool_and_scopes_split_families():
    s, pods, nodes, quotas = _scenario()
    body = render(derive(s, pods, nodes, quotas, NOW))
    res = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert res.returncode == 0, res.stderr.decode() + res.stdout.decode()
    assert 'ai_gpu_quota_gpus{namespace="team-a",quota="gpu-quota",kind="hard"} 8' in body.decode()
    node_only = {f.name for f in derive(s, pods, nodes, quotas, NOW, scopes=frozenset({"node"}))}
    # Offline GPUs are the cluster instance's: a NotReady node's own agent is usually down.
    assert node_only == {"ai_gpu_node_admission_failures_total", "ai_gpu_pod_disruptions_total"}
    cluster = {f.name for f in derive(s, pods, nodes, quotas, NOW, scopes=frozenset({"cluster"}))}
    assert cluster.isdisjoint(node_only) and len(cluster | node_only) == len(FAMILIES)


def test_family_specs_match_the_documented_table():
    # docs/scheduling.md lists every family as `name{labels}` | type: the docs and the specs agree.
    found = re.findall(r"^\| `(ai_[a-z_]+)\{([a-z_,]*)\}` \| (\w+) \|", DOCS.read_text(), re.M)
    rows = {name: (tuple(labels.split(",")), kind) for name, labels, kind in found}
    assert rows == {f.name: (f.labelnames, f.type) for f in FAMILIES}
