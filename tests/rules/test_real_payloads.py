"""The DCGM rules against real dcgm-exporter payloads (../shared/real-payloads, read in place):
healthy real fleets page nobody, and the recording rules understand their label sets."""

from __future__ import annotations


import pytest

from .rulepack import SHARED, all_alerts, input_series, promtool_dcgm_rules

PAYLOADS = SHARED / "real-payloads"
pytestmark = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="../shared/real-payloads is not checked out beside the repo")







DCGM_ALERTS = sorted(r["alert"] for r in all_alerts() if "DCGM" in r["expr"] or "gpu:dcgm" in r["expr"])


@pytest.mark.parametrize("payload", ["dcgm-l4-default-counters-gpu-operator.prom",
                                     "dcgm-h100x8-k8s-pod-labels-sampled.prom", "dcgm-a30-mig-excerpt.prom"])
def test_real_healthy_payloads_raise_no_alert(tmp_path, payload):
    series = input_series((PAYLOADS / payload).read_text())
    assert series
    tests = [{"interval": "1m", "input_series": series,
              "alert_rule_test": [{"eval_time": t, "alertname": a, "exp_alerts": []}
                                  for a in DCGM_ALERTS for t in ("5m", "80m")]}]
    out = promtool_dcgm_rules(tmp_path, tests, "real.test.yaml")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr


def test_recording_rules_on_real_label_sets(tmp_path):
    h100 = input_series((PAYLOADS / "dcgm-h100x8-k8s-pod-labels-sampled.prom").read_text())
    xid = input_series((PAYLOADS / "dcgm-xid-errors-count-pr239.prom").read_text())
    tests = [{
        "interval": "1m",
        "input_series": h100 + xid,
        "promql_expr_test": [
            # 8 GPUs, one of them with pod labels: 8 utilisation series, none duplicated.
            {"expr": 'count(gpu:dcgm_utilization:ratio{node="gpu-node-1"})', "eval_time": "5m",
             "exp_samples": [{"labels": "{}", "value": 8}]},
            # PR #239's description prints DCGM_FI_DEV_XID_ERRORS_ACTIVE, a name no dcgm-exporter
            # release emits (the merged collector prints DCGM_EXP_XID_ERRORS_COUNT, issue 19):
            # the rules do not read it, and the sample must not invent an XID.
            {"expr": "gpu:dcgm_xid_errors:recent", "eval_time": "5m", "exp_samples": []},
        ],
    }]
    out = promtool_dcgm_rules(tmp_path, tests, "real.test.yaml")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
