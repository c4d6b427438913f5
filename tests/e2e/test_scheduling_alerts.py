"""End to end for the scheduling area: simulated cluster -> ai-signals-exporter -> real Prometheus
evaluating the shipped rules -> real Alertmanager with the shipped routing -> webhook receivers.

Unhealthy cluster (sim/scheduling.py): a Ready node with full allocatable whose kubelet rejects
every GPU pod, and a 16-GPU training job preempted three hours after its last complete checkpoint
(48 GPU-hours lost): `GpuNodeRejectingPods` pages the GPU on-call, `TrainingWorkLost` reaches the
ML training team.  Healthy cluster (the same job and a quota with headroom): nothing fires.

Rules as in tests/e2e/test_alert_path.py: every `for:` shortened to seconds, expressions unchanged
(the thresholds are met by the data: 3 rejections, 48 GPU-hours).  The checkpoint is backdated
through the file times, the disruption time is the pod's DisruptionTarget transition: no sleeps.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ai_signals_exporter.scheduling.area import SCHEDULING
from ai_signals_exporter.sim import scheduling as simsched
from ai_signals_exporter.sim.training import TrainingJob

from ..helpers.alertstack import AlertStack, run_alert_path
from ..helpers.promstack import query, wait_until
from ..helpers.wait import wait_for
from .test_alert_path import alertmanager_config_for, by_name, scaled_rules

LOST_FOR = 3 * 3600  # seconds since the last complete checkpoint when the job is preempted


class SchedStack(AlertStack):
    """The scheduling simulation and its training job's checkpoint store."""

    async def populate(self) -> None:
        # The training job's store, read by the real checkpoint source.
        job = TrainingJob(self.tmpdir / "ckpt", layout="dcp", shard_bytes=1024)
        ns, self.job_name = simsched.TRAINING
        self.cluster.config["checkpoints"].update(interval="1s", stores=[{
            "name": self.job_name, "uri": job.root.resolve().as_uri(), "layout": "dcp",
            "labels": {"namespace": ns, "job": self.job_name}}])
        await job.save(at=time.time() - (LOST_FOR if not self.healthy else 60))
        self.sim = await simsched.attach(self.cluster, start=False, healthy=self.healthy)

    async def exporter_started(self) -> None:
        state, name = self.exporter.state, self.job_name
        await wait_for(lambda: state[SCHEDULING] is not None
                       and {"pods", "nodes", "events", "resourcequotas"} <= state.kube.synced
                       and name in state.checkpoints and state.checkpoints[name].verdict is not None,
                       timeout=20, what="kube synced and the store scanned")
        if not self.healthy:
            # After the initial list, so they are transitions the counters see.
            for _ in range(3):
                self.sim.reject_one()
            self.sim.preempt()
            tracker = state[SCHEDULING]
            await wait_for(lambda: tracker.state.admissions.totals and tracker.state.work_lost.stores,
                           timeout=10, what="rejections and the preemption counted")


def run(tmp_path: Path, healthy: bool, until, timeout: float):
    with SchedStack(tmp_path, healthy) as stack:
        return run_alert_path(stack, tmp_path, scaled_rules(tmp_path), alertmanager_config_for(stack.webhook),
                              lambda prom: query(prom, "ai_gpu_quota_gpus"), "scheduling series in Prometheus",
                              until, timeout)


def test_rejecting_node_and_lost_training_work_reach_their_receivers(tmp_path):
    def until(stack, prom, timeout):
        wait_until(lambda: {"GpuNodeRejectingPods", "TrainingWorkLost"} <= set(by_name(stack.alerts())),
                   timeout, "scheduling alerts at the webhook")

    received, _ = run(tmp_path, healthy=False, until=until, timeout=60)
    got = by_name(received)

    receiver, alert = got["GpuNodeRejectingPods"]
    assert receiver == "gpu-oncall"  # scope=node, critical
    labels = alert["labels"]
    assert labels["node"] == simsched.REJECTING_NODE and labels["severity"] == "critical"
    assert alert["annotations"]["runbook_url"].endswith("#gpunoderejectingpods")
    assert "rejected 3 GPU pods" in alert["annotations"]["description"]
    # The cordoned node is not the one named (offline capacity, not a silent rejection).
    assert all(a["labels"].get("node") != simsched.CORDONED_NODE
               for _, a in received if a["labels"]["alertname"] == "GpuNodeRejectingPods")

    receiver, alert = got["TrainingWorkLost"]
    assert receiver == "ml-training"
    ns, name = simsched.TRAINING
    assert (alert["labels"]["store"], alert["labels"]["namespace"], alert["labels"]["job"]) == (name, ns, name)
    lost = float(alert["annotations"]["description"].split(" lost ")[1].split(" GPU-hours")[0])
    assert 16 * LOST_FOR / 3600 - 1 <= lost <= 16 * LOST_FOR / 3600 + 1


def test_healthy_cluster_raises_no_scheduling_alert(tmp_path):
    def until(stack, prom, timeout):
        # Eight scrapes of the scheduling series (rules evaluated every second): every shortened
        # `for:` has elapsed several times over with data flowing.
        def scrapes() -> float:
            (row,) = query(prom, 'count_over_time(ai_checkpoint_lost_gpu_seconds_total[5m])')
            return float(row["value"][1])

        wait_until(lambda: scrapes() >= 8, timeout, "eight scrapes of the scheduling series")
        assert query(prom, 'ai_gpu_quota_gpus{kind="used"}')
        # The scheduling recording rule is evaluated on these series.
        assert query(prom, "namespace_quota:ai_gpu_quota_gpus:used_ratio")

    received, alerts = run(tmp_path, healthy=True, until=until, timeout=30)
    assert alerts == [], json.dumps(alerts, indent=1)
    assert received == []
