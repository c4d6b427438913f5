"""The Alertmanager routing example: amtool accepts it, routes each kind of alert of the pack to
the intended receiver, and a real Alertmanager applies the inhibitions."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from ..helpers.promstack import alertmanager, http_json, wait_until
from .rulepack import DEPLOY, all_alerts, need

CONFIG = DEPLOY / "alertmanager" / "alertmanager.yaml"


def route(labels: dict[str, str], expect: str | None = None) -> subprocess.CompletedProcess:
    args = [need("amtool"), "config", "routes", "test", f"--config.file={CONFIG}"]
    if expect is not None:
        args.append(f"--verify.receivers={expect}")
    args += [f"{k}={v}" for k, v in labels.items()]
    return subprocess.run(args, capture_output=True, text=True)


def test_amtool_check_config():
    out = subprocess.run([need("amtool"), "check-config", str(CONFIG)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


CASES = [
    ({"alertname": "GpuHeldIdle", "severity": "info", "scope": "gpu", "node": "n1"}, "null"),
    ({"alertname": "GpuXidApplicationError", "severity": "info", "scope": "gpu", "node": "n1"}, "null"),
    ({"alertname": "GpuXidHardwareError", "severity": "critical", "scope": "gpu", "node": "n1"}, "gpu-oncall"),
    ({"alertname": "GpuNodeNotReady", "severity": "critical", "scope": "node", "node": "n1"}, "gpu-oncall"),
    ({"alertname": "GpuThermalThrottling", "severity": "warning", "scope": "gpu", "node": "n1"}, "gpu-platform"),
    # GPU alerts held by a pod still go to the GPU team, whatever the namespace.
    ({"alertname": "GpuIdleOnTaintedNode", "severity": "warning", "scope": "gpu", "node": "n1",
      "namespace": "prod", "pod": "llama-0"}, "gpu-platform"),
    ({"alertname": "CheckpointStale", "severity": "warning", "namespace": "ml"}, "ml-training"),
    ({"alertname": "CheckpointSaveAbandoned", "severity": "critical", "namespace": "training-llm"}, "ml-training-oncall"),
    ({"alertname": "ServingStalled", "severity": "critical", "namespace": "prod"}, "serving-oncall"),
    ({"alertname": "ServingQueueBacklog", "severity": "warning", "namespace": "serving-chat"}, "serving"),
    ({"alertname": "ServingQueueBacklog", "severity": "warning", "namespace": "sandbox"}, "platform-tickets"),
    ({"alertname": "StreamBuffered", "severity": "warning", "probe": "chat"}, "platform-tickets"),
    ({"alertname": "AiSignalsExporterDown", "severity": "critical"}, "platform-oncall"),
    # Scheduling: node faults to the GPU team, workload/quota/job alerts to the namespace's team.
    ({"alertname": "GpuNodeRejectingPods", "severity": "critical", "scope": "node", "node": "n1"}, "gpu-oncall"),
    ({"alertname": "GpuCapacityOffline", "severity": "warning", "scope": "node", "node": "n1",
      "reason": "plugin_missing"}, "gpu-platform"),
    ({"alertname": "GpuPodsPendingTooLong", "severity": "warning", "namespace": "serving-chat",
      "reason": "insufficient_gpu"}, "serving"),
    ({"alertname": "GpuQuotaExhausted", "severity": "warning", "namespace": "training-llm"}, "ml-training"),
    # GPU time: info, dashboards only, whatever the namespace.
    ({"alertname": "GpuWorkloadMostlyIdle", "severity": "info", "scope": "gpu", "namespace": "ml",
      "workload_kind": "StatefulSet", "workload": "nb-alice"}, "null"),
    ({"alertname": "TrainingWorkLost", "severity": "warning", "namespace": "ml", "store": "run42"}, "ml-training"),
]


@pytest.mark.parametrize("labels,receiver", CASES, ids=[f"{c[0]['alertname']}-{c[1]}" for c in CASES])
def test_routes(labels, receiver):
    out = route(labels, receiver)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == receiver


def test_route_verification_detects_a_wrong_receiver():
    out = route({"severity": "critical", "scope": "gpu", "node": "n1"}, "serving")
    assert out.returncode != 0


def test_every_alert_of_the_pack_reaches_a_receiver_matching_its_severity():
    for rule in all_alerts():
        labels = {"alertname": rule["alert"], **rule["labels"], "node": "n1", "namespace": "prod"}
        got = route(labels).stdout.strip()
        severity = rule["labels"]["severity"]
        if severity == "info":
            assert got == "null", rule["alert"]
        elif severity == "critical":
            assert got.endswith("oncall"), (rule["alert"], got)
        else:
            assert got and not got.endswith("oncall") and got != "null", (rule["alert"], got)


def _post(url: str, alerts: list[dict]) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for a in alerts:
        a.setdefault("startsAt", now)
    http_json(url + "/api/v2/alerts", json.dumps(alerts).encode())


def test_node_level_fault_inhibits_per_gpu_alerts_of_that_node(tmp_path):
    with alertmanager(tmp_path, CONFIG.read_text()) as url:
        _post(url, [
            {"labels": {"alertname": "GpuNodeNotReady", "severity": "critical", "scope": "node", "node": "n1"}},
            {"labels": {"alertname": "GpuXidHardwareError", "severity": "critical", "scope": "gpu", "node": "n1",
                        "gpu": "0", "xid": "79"}},
            {"labels": {"alertname": "GpuXidHardwareError", "severity": "critical", "scope": "gpu", "node": "n2",
                        "gpu": "0", "xid": "79"}},
            {"labels": {"alertname": "AiSignalsExporterDown", "severity": "critical", "instance": "10.0.0.1:9842"}},
            {"labels": {"alertname": "AiSignalsTargetDown", "severity": "warning", "instance": "10.0.0.1:9842",
                        "source": "gpu"}},
        ])

        def states():
            return {(a["labels"]["alertname"], a["labels"].get("node", "")): a["status"]
                    for a in http_json(url + "/api/v2/alerts")}

        wait_until(lambda: len(states()) == 5 and states()[("GpuXidHardwareError", "n1")]["state"] == "suppressed",
                   15, "inhibition")
        s = states()
        assert s[("GpuXidHardwareError", "n1")]["inhibitedBy"]
        assert s[("GpuXidHardwareError", "n2")]["state"] == "active"
        assert s[("GpuNodeNotReady", "n1")]["state"] == "active"
        assert s[("AiSignalsTargetDown", "")]["state"] == "suppressed"
