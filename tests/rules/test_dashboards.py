"""Dashboards (and the autoscaling queries) against a real Prometheus holding realistic series:
every panel target and every template variable must return data."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from ..helpers.promstack import query, series
from .rulepack import DASHBOARDS, DEPLOY, REPO

ALL = {"namespace": ".*", "node": ".*", "workload": ".*", "job": ".*", "probe": ".*"}
RATE_INTERVAL = "30s"
RANGE = "1m"  # the dashboard's time range, for increase(...[$__range]) on instant queries


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def substitute(expr: str, values: dict[str, str]) -> str:
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__range", RANGE)
    for name, value in values.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    assert "$" not in expr.replace('"$1"', ""), f"unsubstituted variable in {expr}"
    return expr


def panel_targets():
    for name, dash in dashboards().items():
        for panel in dash["panels"]:
            for t in panel.get("targets", []):
                yield pytest.param(t["expr"], id=f"{name}:{panel['id']}:{t['refId']}")


def test_dashboards_are_generated_and_current():
    names = set(dashboards())
    assert names == {"gpu-fleet.json", "gpu-time.json", "llm-serving.json", "training-checkpoints.json",
                     "ingress-streaming.json", "gpu-scheduling.json"}
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_dashboards.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboard_structure(name):
    dash = dashboards()[name]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    scope_vars = {"namespace", "node", "workload", "job", "probe"} & set(variables)
    assert scope_vars, "a dashboard needs a namespace/node/workload-style variable"
    if name != "ingress-streaming.json":  # probes have no namespace
        assert "namespace" in variables
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    uids = [d["uid"] for d in dashboards().values()]
    assert len(uids) == len(set(uids))
    for panel in dash["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"
            used = set(re.findall(r"\$(\w+)", t["expr"])) - {"__rate_interval", "__range", "1"}
            assert used <= set(variables), (panel["title"], used)


@pytest.mark.parametrize("expr", list(panel_targets()))
def test_every_panel_query_returns_data(loaded_prometheus, expr):
    result = query(loaded_prometheus, substitute(expr, ALL))
    assert result, f"no data for {expr}"
    # A stat's "or vector(0)" fallback must not be what makes it pass.
    if expr.endswith(" or vector(0)"):
        assert query(loaded_prometheus, substitute(expr[: -len(" or vector(0)")], ALL)), expr


def test_template_variables_return_values(loaded_prometheus):
    for dash in dashboards().values():
        for var in dash["templating"]["list"]:
            if var["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["query"]["query"])
            assert m, var["query"]
            match, label = substitute(m.group(1), ALL), m.group(2)
            values = {s.get(label) for s in series(loaded_prometheus, match)} - {None, ""}
            assert values, f"variable {var['name']} has no values"


def test_node_variable_selects_either_host_label_spelling(loaded_prometheus):
    fleet = dashboards()["gpu-fleet.json"]
    temp = next(p for p in fleet["panels"] if p["title"] == "GPU temperature vs slowdown limit")["targets"][0]["expr"]
    for node in ("gpu-node-1", "gpu-node-2"):  # Hostname= vs hostname= in the dcgm series
        result = query(loaded_prometheus, substitute(temp, {**ALL, "node": node}))
        assert {r["metric"]["node"] for r in result} == {node}
    # MIG instances repeat device temperatures: one series per GPU, not per instance.
    result = query(loaded_prometheus, substitute(temp, {**ALL, "node": "gpu-node-2"}))
    assert len(result) == 1


def test_recorded_dcgm_signals_handle_mig_and_time_slicing(loaded_prometheus):
    util = {(r["metric"]["node"], r["metric"]["gpu"], r["metric"].get("GPU_I_ID", "")): float(r["value"][1])
            for r in query(loaded_prometheus, "gpu:dcgm_utilization:ratio")}
    assert util == {("gpu-node-1", "0", ""): 1.0, ("gpu-node-1", "1", ""): 0.0,
                    ("gpu-node-2", "0", "1"): 0.31, ("gpu-node-2", "0", "2"): 0.0}
    xids = query(loaded_prometheus, "gpu:dcgm_xid_errors:recent")
    assert [(r["metric"]["node"], r["metric"]["xid"]) for r in xids] == [("gpu-node-1", "13")]


# --- prometheus-adapter and KEDA queries return the per-workload token rate ---

def adapter_query(rule: dict, namespace: str, workload: str) -> str:
    series_name = rule["seriesQuery"].split("{")[0]
    return (rule["metricsQuery"].replace("<<.Series>>", series_name)
            .replace("<<.LabelMatchers>>", f'namespace="{namespace}",workload="{workload}"')
            .replace("<<.GroupBy>>", "workload"))


def test_prometheus_adapter_queries_return_per_workload_values(loaded_prometheus):
    rules = yaml.safe_load((DEPLOY / "autoscaling" / "prometheus-adapter-rules.yaml").read_text())["rules"]
    values = {}
    for rule in rules:
        result = query(loaded_prometheus, adapter_query(rule, "prod", "llama"))
        assert len(result) == 1 and result[0]["metric"] == {"workload": "llama"}
        values[rule["seriesQuery"].split("{")[0]] = round(float(result[0]["value"][1]), 12)
    assert values == {
        "workload:ai_serving_generation_tokens_per_second:sum": 2000.0,  # 1200 + 800 tok/s
        # The mean of the ready pods' 0.6 and 0.4: the HPA multiplies it by the ready pods.
        "workload:ai_serving_token_capacity_ratio:avg": 0.5,
        "workload:ai_serving_requests_waiting:sum": 4.0,
    }


def test_keda_queries_return_per_workload_values(loaded_prometheus):
    so = yaml.safe_load((DEPLOY / "autoscaling" / "keda-scaledobject.yaml").read_text())
    got = {}
    for trigger in so["spec"]["triggers"]:
        result = query(loaded_prometheus, trigger["metadata"]["query"])
        assert len(result) == 1
        got[trigger["name"]] = float(result[0]["value"][1])
    assert got == {"tokens-per-pod": 2000.0, "queue-per-pod": 4.0}


def test_panels_name_only_declared_families():
    """Every ai_* family a panel or variable queries is declared by an area (its spec)."""
    sys.path.insert(0, str(REPO / "scripts"))
    import gen_dashboards

    assert gen_dashboards.undeclared_metrics(gen_dashboards.render()) == set()
    bad = {"x.json": json.dumps({"expr": "sum(ai_gpu_node_idle_gpu) + workload:ai_nothing:sum"})}
    assert gen_dashboards.undeclared_metrics(bad) == {"ai_gpu_node_idle_gpu"}


def test_autoscaling_queries_give_an_explicit_zero_at_zero_replicas(loaded_prometheus):
    """prod/idle is selected by serving discovery but scaled to zero: every adapter and KEDA
    query returns 0 for it, not an empty result (KEDA's ignoreNullValues: "false" then reports a
    broken query as an error instead of silently using its fallback)."""
    rules = yaml.safe_load((DEPLOY / "autoscaling" / "prometheus-adapter-rules.yaml").read_text())["rules"]
    for rule in rules:
        result = query(loaded_prometheus, adapter_query(rule, "prod", "idle"))
        assert [float(r["value"][1]) for r in result] == [0.0], rule["seriesQuery"]
    so = yaml.safe_load((DEPLOY / "autoscaling" / "keda-scaledobject.yaml").read_text())
    for trigger in so["spec"]["triggers"]:
        expr = trigger["metadata"]["query"].replace('workload="llama"', 'workload="idle"')
        assert [float(r["value"][1]) for r in query(loaded_prometheus, expr)] == [0.0], trigger["name"]
