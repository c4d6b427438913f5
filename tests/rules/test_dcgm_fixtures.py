"""The DCGM recording rules and alerts against the project's own dcgm-exporter fixtures
(tests/fixtures/dcgm, each written from dcgm-exporter source): the rules read every GPU's
utilisation exactly as the exporter does (gpu/readings.py), in every naming from 3.3 to 4.8.3
(Hostname/hostname, UUID/uuid, pod/pod_name/exported_pod, virtual GPUs, DRA, MIG, hpc_job), and
healthy payloads page nobody.  The same checks on real payloads live in test_real_payloads.py
where ../shared exists; these run in any clone."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.gpu.readings import WANTED, extract_readings

from .rulepack import all_alerts, input_series, promtool_dcgm_rules

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dcgm"
PAYLOADS = sorted(p.name for p in FIXTURES.glob("*.prom"))
# Alerts a fixture is meant to raise after an hour; every other DCGM alert stays silent.
EXPECTED_ALERTS = {"v4.8.2-dra-mig.prom": {"GpuHeldIdle"}, "v4.8.3-dra-mig.prom": {"GpuHeldIdle"}}
DCGM_ALERTS = sorted(r["alert"] for r in all_alerts() if "DCGM" in r["expr"] or "gpu:dcgm" in r["expr"])






def test_every_fixture_is_listed():
    assert {"v4.8.2-virtual-gpus.prom", "v4.8.3-virtual-gpus.prom", "v4.8.3-virtual-gpus-old-namespace.prom",
            "v4.8.2-dra-mig.prom", "v4.8.3-dra-mig.prom", "v4.8.3-hpc-job.prom", "l4-timesliced.prom",
            "h100-federated-exported-labels.prom", "a100-mig-mixed.prom"} <= set(PAYLOADS)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_rules_read_utilisation_like_the_exporter(tmp_path, payload):
    data = (FIXTURES / payload).read_bytes()
    readings = extract_readings(parse_families(data, WANTED))
    assert readings, payload
    # Percent, rounded: the same number whichever side computes it.
    expected = [
        {"labels": "{" + ",".join(f'{k}="{v}"' for k, v in
                                  (("node", r.hostname), ("gpu", r.gpu), ("GPU_I_ID", r.instance)) if v) + "}",
         "value": round(r.util * 100)}
        for r in readings
    ]
    alerts = [{"eval_time": t, "alertname": a, "exp_alerts": []}
              for a in DCGM_ALERTS if a not in EXPECTED_ALERTS.get(payload, ())
              for t in ("5m", "80m")]
    tests = [{"interval": "1m", "input_series": input_series(data.decode()),
              "promql_expr_test": [{"expr": "round(100 * sum by (node, gpu, GPU_I_ID) (gpu:dcgm_utilization:ratio))",
                                    "eval_time": "5m", "exp_samples": expected}],
              "alert_rule_test": alerts}]
    out = promtool_dcgm_rules(tmp_path, tests, "fixtures.test.yaml")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr


@pytest.mark.parametrize("payload", ["v4.8.2-virtual-gpus.prom", "v4.8.3-virtual-gpus.prom",
                                     "v4.8.3-virtual-gpus-old-namespace.prom"])
def test_busy_time_sliced_gpu_is_busy_and_its_memory_is_the_devices(tmp_path, payload):
    tests = [{"interval": "1m", "input_series": input_series((FIXTURES / payload).read_text()),
              "promql_expr_test": [
                  {"expr": 'gpu:dcgm_utilization:ratio{gpu="0"} > 0.5', "eval_time": "5m",
                   "exp_samples": [{"labels": _labels(payload, "gpu:dcgm_utilization:ratio"), "value": 0.87}]},
                  {"expr": 'round(1000 * gpu:dcgm_framebuffer_used:ratio{gpu="0"})', "eval_time": "5m",
                   "exp_samples": [{"labels": _labels(payload), "value": 891}]},
              ]}]
    out = promtool_dcgm_rules(tmp_path, tests, "fixtures.test.yaml")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr


def _labels(payload: str, name: str = "") -> str:
    host = "l4-ts-node"
    uuid = "" if "old-namespace" in payload else ',UUID="GPU-4c0ffee0-1111-4111-8111-1111111100a0"'
    return f'{name}{{gpu="0"{uuid},modelName="NVIDIA L4",node="{host}"}}'
