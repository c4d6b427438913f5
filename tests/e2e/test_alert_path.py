"""End to end: simulated cluster -> ai-signals-exporter -> real Prometheus evaluating the shipped
rules -> real Alertmanager with the shipped routing -> a webhook receiver on loopback.

The rules are the files in rules/, with every `for:` shortened and the idle threshold scaled from
30 minutes to seconds, so the test runs in seconds; the expressions are otherwise unchanged.
The Alertmanager config is deploy/alertmanager/alertmanager.yaml with the receivers' URLs pointed
at the test webhook and short group timers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from ai_signals_exporter.sim import gpu as simgpu
from ai_signals_exporter.sim import serving as simserving
from ai_signals_exporter.sim.engines import SimEngine, constant
from ai_signals_exporter.sim.training import TrainingJob

from ..helpers.alertstack import AlertStack, run_alert_path
from ..helpers.promstack import query, wait_until
from ..rules.test_dashboards import adapter_query
from ..rules.rulepack import DEPLOY, rule_files

FOR = "2s"
SCALED = {"GpuIdleOnTaintedNode": [("ai_gpu_idle_seconds > 1800", "ai_gpu_idle_seconds > 3")]}


def scaled_rules(workdir: Path) -> list[str]:
    paths = []
    for path in rule_files():
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                rule["for"] = FOR
                for old, new in SCALED.get(rule["alert"], []):
                    assert old in rule["expr"], (rule["alert"], old)
                    rule["expr"] = rule["expr"].replace(old, new)
        out = workdir / path.name
        out.write_text(yaml.safe_dump(doc))
        paths.append(str(out))
    return paths


def alertmanager_config_for(webhook: str) -> str:
    cfg = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yaml").read_text())
    cfg["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    for receiver in cfg["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook}/{receiver['name']}"
            hook["send_resolved"] = False
    return yaml.safe_dump(cfg)



class SimStack(AlertStack):
    """A tainted GPU node, a training job and (healthy) a serving workload."""

    async def populate(self) -> None:
        self.cluster.config["checkpoints"]["interval"] = "1s"
        fleet = simgpu.DcgmSim()
        node = fleet.add_node("gpu-e2e-a", 2, tainted=True)
        fleet.allocate("gpu-e2e-a", node.devices[0:1], "llm", "llama-0", ("StatefulSet", "llama"))
        fleet.allocate("gpu-e2e-a", node.devices[1:2], "llm", "llama-1", ("StatefulSet", "llama"))
        node.devices[0].load = lambda t: 0.9
        # Unhealthy: llama-1 holds its GPU and does nothing.  Healthy: it works too.
        node.devices[1].load = (lambda t: 0.8) if self.healthy else simgpu.idle
        await simgpu.attach(self.cluster, sim=fleet)

        # A training job checkpointing every 3 s (healthy), or one that stopped (stale).
        job = TrainingJob(self.tmpdir / "ckpt", layout="dcp", interval=3.0, save_seconds=0.3, shard_bytes=1024)
        await job.backfill()
        if self.healthy:
            job.start()
            self.cluster.on_stop(job.stop)
        self.cluster.config["checkpoints"]["stores"].append({
            "name": "pretrain", "uri": job.root.resolve().as_uri(), "layout": "dcp",
            # Healthy: saves every 3 s against an expected 5 s, so scheduling jitter on a busy
            # machine cannot make it stale (> 10 s); stopped: stale once older than 6 s.
            "expected_interval": "5s" if self.healthy else "3s", "labels": {"namespace": "ml", "job": "pretrain"},
        })

        if self.healthy:
            # Two vLLM replicas of llm/chat well below their capacity: tokens flow, no queue.
            await simserving.attach(self.cluster, pods=[
                simserving.SimPod("llm", f"chat-{i}", "Deployment", "chat",
                                  SimEngine("vllm", "meta-llama/Llama-3.1-8B-Instruct", constant(2.0), seed=i,
                                            capacity_tokens_per_second=2400.0), capacity=2400.0)
                for i in range(2)])


def run_pipeline(tmp_path: Path, healthy: bool, until, timeout: float):
    with SimStack(tmp_path, healthy) as stack:
        return run_alert_path(
            stack, tmp_path, scaled_rules(tmp_path), alertmanager_config_for(stack.webhook),
            lambda prom: query(prom, "ai_gpu_node_tainted") and query(prom, "ai_checkpoint_age_seconds"),
            "exporter series in Prometheus", until, timeout)


def by_name(received):
    return {alert["labels"]["alertname"]: (receiver, alert) for receiver, alert in received}


def test_idle_gpu_on_tainted_node_and_stale_checkpoint_reach_their_receivers(tmp_path):
    def until(stack, prom, timeout):
        wait_until(lambda: {"GpuIdleOnTaintedNode", "CheckpointStale"} <= set(by_name(stack.alerts())),
                   timeout, "alerts at the webhook")

    received, _ = run_pipeline(tmp_path, healthy=False, until=until, timeout=60)
    got = by_name(received)
    # Nothing else fires on this cluster: the two faults it has, at the receivers they route to.
    assert sorted((r, a["labels"]["alertname"]) for r, a in received) == [
        ("gpu-platform", "GpuIdleOnTaintedNode"), ("ml-training", "CheckpointStale")]

    receiver, alert = got["GpuIdleOnTaintedNode"]
    assert receiver == "gpu-platform"
    labels = alert["labels"]
    assert labels["severity"] == "warning" and labels["scope"] == "gpu"
    assert labels["node"] == "gpu-e2e-a" and labels["gpu"] == "1"
    assert labels["namespace"] == "llm" and labels["pod"] == "llama-1"
    assert alert["annotations"]["runbook_url"].endswith("#gpuidleontaintednode")
    assert "held by pod llm/llama-1" in alert["annotations"]["description"]
    # The busy GPU on the same node is not reported.
    assert all(a["labels"].get("gpu") != "0" for r, a in received if a["labels"]["alertname"] == "GpuIdleOnTaintedNode")

    receiver, alert = got["CheckpointStale"]
    assert receiver == "ml-training"
    labels = alert["labels"]
    assert labels["severity"] == "warning"
    assert (labels["store"], labels["namespace"], labels["job"], labels["layout"]) == ("pretrain", "ml", "pretrain", "dcp")


def test_healthy_cluster_raises_no_alert_and_feeds_the_autoscalers(tmp_path):
    def until(stack, prom, timeout):
        # Long enough for every shortened `for:` to elapse several times over, with data flowing.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert query(prom, "ai_gpu_idle_seconds")
            time.sleep(1)
        # The shipped rules are loaded and evaluated (a recording rule has output).
        assert query(prom, "node:ai_gpu_node_idle_gpus:sum")
        # The prometheus-adapter and KEDA queries return the workload's token rate and inputs.
        adapter = yaml.safe_load((DEPLOY / "autoscaling" / "prometheus-adapter-rules.yaml").read_text())["rules"]
        got = {}
        for rule in adapter:
            result = query(prom, adapter_query(rule, "llm", "chat"))
            assert len(result) == 1, rule["seriesQuery"]
            got[rule["seriesQuery"].split("{")[0]] = float(result[0]["value"][1])
        assert got["workload:ai_serving_generation_tokens_per_second:sum"] > 0
        assert 0 < got["workload:ai_serving_token_capacity_ratio:avg"] < 1
        assert got["workload:ai_serving_requests_waiting:sum"] >= 0
        keda = yaml.safe_load((DEPLOY / "autoscaling" / "keda-scaledobject.yaml").read_text())
        for trigger in keda["spec"]["triggers"]:
            q = trigger["metadata"]["query"].replace('namespace="prod"', 'namespace="llm"')
            (result,) = query(prom, q.replace('workload="llama"', 'workload="chat"'))
            if trigger["name"] == "tokens-per-pod":
                assert float(result["value"][1]) == pytest.approx(got["workload:ai_serving_generation_tokens_per_second:sum"], rel=0.5)

    received, alerts = run_pipeline(tmp_path, healthy=True, until=until, timeout=10)
    assert alerts == [], json.dumps(alerts, indent=1)
    assert received == []
