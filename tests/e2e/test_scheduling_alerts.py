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

import asyncio
import json
import threading
import time
from pathlib import Path

from aiohttp import web

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.scheduling.area import SCHEDULING
from ai_signals_exporter.server import serve
from ai_signals_exporter.sim import scheduling as simsched
from ai_signals_exporter.sim.cluster import SimCluster
from ai_signals_exporter.sim.training import TrainingJob

from ..helpers.promstack import alertmanager, free_port, prometheus, query, wait_until
from ..helpers.wait import wait_for
from .test_alert_path import alertmanager_config_for, by_name, scaled_rules

LOST_FOR = 3 * 3600  # seconds since the last complete checkpoint when the job is preempted


class SchedStack:
    """Cluster, exporter and webhook on their own loop in a background thread."""

    def __init__(self, tmpdir: Path, healthy: bool) -> None:
        self.tmpdir, self.healthy = tmpdir, healthy
        self.received: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "SchedStack":
        self.thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self.lock:
            self.received.extend((request.match_info["receiver"], a) for a in body["alerts"])
        return web.Response(text="ok")

    def alerts(self) -> list[tuple[str, dict]]:
        with self.lock:
            return list(self.received)

    async def _start(self) -> None:
        (self.tmpdir / "sim").mkdir(parents=True, exist_ok=True)
        self.cluster = SimCluster(self.tmpdir / "sim")
        await self.cluster.start()
        app = web.Application()
        app.router.add_post("/{receiver}", self._webhook)
        self.webhook = await self.cluster.serve(app)
        # The training job's store, read by the real checkpoint source.
        job = TrainingJob(self.tmpdir / "ckpt", layout="dcp", shard_bytes=1024)
        ns, name = simsched.TRAINING
        self.cluster.config["checkpoints"].update(interval="1s", stores=[{
            "name": name, "uri": job.root.resolve().as_uri(), "layout": "dcp",
            "labels": {"namespace": ns, "job": name}}])
        await job.save(at=time.time() - (LOST_FOR if not self.healthy else 60))
        self.sim = await simsched.attach(self.cluster, start=False, healthy=self.healthy)

        self.exporter = Exporter(self.cluster.exporter_config())
        await self.exporter.start()
        state = self.exporter.state
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
        self._stop_event = asyncio.Event()
        port = free_port()
        self.runner = await serve(self.exporter, ("127.0.0.1", port), "/metrics", None, self._stop_event)
        self.target = f"127.0.0.1:{port}"

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.exporter.stop()
        await self.cluster.stop()


def run(tmp_path: Path, healthy: bool, until, timeout: float):
    with SchedStack(tmp_path, healthy) as stack:
        with alertmanager(tmp_path / "am", alertmanager_config_for(stack.webhook)) as am_url:
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": scaled_rules(tmp_path),
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_url.split("//")[1]]}]}]},
                "scrape_configs": [{"job_name": "ai-signals-exporter", "honor_labels": True,
                                    "static_configs": [{"targets": [stack.target]}]}],
            }
            with prometheus(tmp_path / "prom", config) as prom:
                wait_until(lambda: query(prom, "ai_gpu_quota_gpus"), 30, "scheduling series in Prometheus")
                until(stack, prom, timeout)
                return stack.alerts(), query(prom, "ALERTS")


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
