"""The scheduling area end to end on the registry: the simulated cluster's pods, nodes, quotas and
warning events, listed and watched by the real kube source (over the test API server's list/watch
protocol), hooked into the area's tracker, rendered by `Exporter.refresh`.

Counters count transitions seen after the initial list only: the cases present at start are
baseline, and each action of the simulator (a rejected pod, a preemption, a quota rejection)
counts once, also across a dropped watch and a 410 re-list.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import AsyncIterator

import pytest

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.areas import kube_watches
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.scheduling.area import SCHEDULING
from ai_signals_exporter.sim import scheduling as simsched
from ai_signals_exporter.sim import training
from ai_signals_exporter.sim.cluster import SimCluster
from ai_signals_exporter.sources.checkpoints import CheckpointSource

from ..helpers.clock import FakeClock
from ..helpers.wait import wait_for

T0 = 1_800_000_000.0
NAMES = {
    "ai_gpu_pods_pending", "ai_gpu_pods_pending_requested_gpus", "ai_gpu_pods_pending_oldest_seconds",
    "ai_gpu_node_admission_failures_total", "ai_gpu_pod_disruptions_total",
    "ai_checkpoint_interruptions_total", "ai_checkpoint_lost_seconds_total",
    "ai_checkpoint_lost_gpu_seconds_total", "ai_gpu_quota_gpus", "ai_gpu_quota_rejections_total",
    "ai_gpu_offline_gpus",
}


@contextlib.asynccontextmanager
async def running(tmp_path: Path, **kube: object) -> AsyncIterator[tuple[SimCluster, simsched.SchedulingSim, Exporter]]:
    clock = FakeClock(T0)
    async with SimCluster(tmp_path) as cluster:
        cluster.config["kubernetes"].update(watch_timeout="5s", backoff_max="300ms", **kube)
        jobs = await training.attach(cluster, start=False)
        sim = await simsched.attach(cluster, start=False, clock=clock)
        exporter = Exporter(cluster.exporter_config())
        await exporter.start()
        try:
            # A node agent does not watch the cluster-wide quotas and events (areas.kube_watches).
            watched = {w.resource for w in kube_watches(exporter.config)}
            await wait_for(lambda: watched <= exporter.state.kube.synced
                           and exporter.state[SCHEDULING] is not None, timeout=20, what="kube synced")
            # The pretraining store's last complete checkpoint, read by the real checkpoint source.
            await CheckpointSource(exporter.config, exporter.state, clock).run_once()
            cluster.jobs = jobs  # type: ignore[attr-defined]
            cluster.clock = clock  # type: ignore[attr-defined]
            yield cluster, sim, exporter
        finally:
            await exporter.stop()


def metrics(exporter: Exporter, now: float) -> dict[str, dict[tuple, float]]:
    body = exporter.refresh(now=now).body
    out: dict[str, dict[tuple, float]] = {}
    for name, rows in parse_families(body, NAMES).items():
        out[name] = {tuple(sorted(labels.items())): v for labels, v in rows}
    return out


def value(m: dict, name: str, **labels: str) -> float | None:
    return m.get(name, {}).get(tuple(sorted(labels.items())))


async def test_cases_at_start_are_gauges_and_baseline_then_each_action_counts_once(tmp_path: Path) -> None:
    async with running(tmp_path) as (cluster, sim, exporter):
        clock = cluster.clock
        m = metrics(exporter, clock())
        reasons = {dict(k)["reason"]: v for k, v in m["ai_gpu_pods_pending"].items()}
        assert reasons == {"insufficient_gpu": 2, "node_affinity": 2, "untolerated_taint": 2,
                           "scheduling_gated": 2, "other": 2}
        assert value(m, "ai_gpu_pods_pending_requested_gpus", namespace="llm", workload_kind="Job",
                     workload="llama-405b", reason="insufficient_gpu") == 16
        assert value(m, "ai_gpu_pods_pending_oldest_seconds", namespace="llm", workload_kind="Job",
                     workload="llama-405b") == pytest.approx(1800, abs=1)
        assert value(m, "ai_gpu_offline_gpus", node=simsched.CORDONED_NODE, reason="cordoned") == 8
        assert value(m, "ai_gpu_offline_gpus", node=simsched.UPGRADING_NODE, reason="plugin_missing") == 8
        assert not [k for k in m.get("ai_gpu_offline_gpus", {}) if dict(k)["node"] == simsched.REJECTING_NODE]
        assert value(m, "ai_gpu_quota_gpus", namespace="team-research", quota="gpu-quota", kind="hard") == 16
        assert value(m, "ai_gpu_quota_gpus", namespace="team-research", quota="gpu-quota", kind="used") == 16
        # The store exists before any loss: its counters start at 0, no counter yet elsewhere.
        assert value(m, "ai_checkpoint_lost_gpu_seconds_total", store="llm-pretrain", namespace="ml",
                     job="llm-pretrain") == 0
        assert not m.get("ai_gpu_node_admission_failures_total")
        assert not m.get("ai_gpu_quota_rejections_total")

        tracker = exporter.state[SCHEDULING]
        for _ in range(3):
            sim.reject_one()
        await wait_for(lambda: tracker.state.admissions.totals.get((simsched.REJECTING_NODE,
                                                                     "unexpected_admission_error")) == 3)
        sim.quota_rejection()
        sim.quota_rejection()  # the recorder's repeat: the same Event, count 2
        await wait_for(lambda: tracker.state.quota_rejections.totals.get(("team-research",)) == 2)

        last = exporter.state.checkpoints["llm-pretrain"].verdict.last_complete_ts
        sim.preempt(at=last + 600)  # ten minutes of work since the last checkpoint
        await wait_for(lambda: tracker.state.work_lost.stores, what="work lost")
        # The Job's replacement pods are the job's GPUs again.
        await wait_for(lambda: tracker.job_gpus.get(("ml", "llm-pretrain")) == 16)

        m = metrics(exporter, clock())
        assert value(m, "ai_gpu_node_admission_failures_total", node=simsched.REJECTING_NODE,
                     reason="unexpected_admission_error") == 3
        assert value(m, "ai_gpu_quota_rejections_total", namespace="team-research") == 2
        store = dict(store="llm-pretrain", namespace="ml", job="llm-pretrain")
        assert value(m, "ai_checkpoint_interruptions_total", reason="preemption", **store) == 1
        assert value(m, "ai_checkpoint_lost_seconds_total", **store) == pytest.approx(600, abs=1)
        # Both pods of the job (2 x 8 GPUs) lost the same ten minutes.
        assert value(m, "ai_checkpoint_lost_gpu_seconds_total", **store) == pytest.approx(600 * 16, abs=16)
        assert value(m, "ai_gpu_pod_disruptions_total", namespace="ml", workload_kind="Job",
                     workload="llm-pretrain", reason="preemption") == 2

        # A dropped watch and a 410 re-list replay every object: nothing counts twice, and a
        # rejection that happened while the watch was away counts once.
        cluster.kube.drop_watches()
        cluster.kube.set_down(True)
        sim.reject_one()
        cluster.kube.compact()
        cluster.kube.set_down(False)
        await wait_for(lambda: tracker.state.admissions.totals.get((simsched.REJECTING_NODE,
                                                                     "unexpected_admission_error")) == 4,
                       timeout=15)
        m = metrics(exporter, clock())
        assert value(m, "ai_gpu_quota_rejections_total", namespace="team-research") == 2
        assert value(m, "ai_checkpoint_interruptions_total", reason="preemption", **store) == 1
        assert value(m, "ai_gpu_pod_disruptions_total", namespace="ml", workload_kind="Job",
                     workload="llm-pretrain", reason="preemption") == 2


async def test_deleted_pods_are_forgotten_and_cpu_pods_cost_no_view(tmp_path: Path) -> None:
    async with running(tmp_path) as (cluster, sim, exporter):
        tracker = exporter.state[SCHEDULING]
        for _ in range(simsched.KEEP_REJECTED + 3):
            sim.reject_one()
        await wait_for(lambda: tracker.state.admissions.totals.get(
            (simsched.REJECTING_NODE, "unexpected_admission_error")) == simsched.KEEP_REJECTED + 3, timeout=10)
        # The simulator deletes the oldest failed pods: their UIDs leave the counter's memory.
        live_gpu_pods = sum(1 for p in exporter.state.kube.pods.values() if p.requests.get("nvidia.com/gpu"))
        await wait_for(lambda: len(tracker.state.admissions) == live_gpu_pods, timeout=10)
        assert len(tracker._pods) == live_gpu_pods
        # Only GPU pods are tracked (the training sim's finetune pod requests none).
        assert all(p.requests.get("nvidia.com/gpu") for uid, p in exporter.state.kube.pods.items()
                   if uid in tracker._pods)


async def test_node_agent_reports_node_families_only(tmp_path: Path) -> None:
    async with running(tmp_path, node_scope=simsched.REJECTING_NODE) as (cluster, sim, exporter):
        sim.reject_one()
        tracker = exporter.state[SCHEDULING]
        await wait_for(lambda: tracker.state.admissions.totals)
        m = metrics(exporter, cluster.clock())
        assert set(m) == {"ai_gpu_node_admission_failures_total"}
        assert set(m["ai_gpu_node_admission_failures_total"]) == {
            (("node", simsched.REJECTING_NODE), ("reason", "unexpected_admission_error"))}
