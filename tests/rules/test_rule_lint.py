"""Conventions of the rule pack: every alert is actionable, routable, documented and tested."""

from __future__ import annotations

import yaml

from .rulepack import (
    CONTRACT_METRICS, RULE_TESTS_DIR, RUNBOOKS, ai_metrics_in, all_alerts, all_rules, lint_alert,
    lint_record, load_groups, rule_files, runbook_anchors,
)


def _anchors():
    return runbook_anchors(RUNBOOKS.read_text())


def test_rule_files_exist_and_group_names_are_unique():
    files = rule_files()
    assert len(files) >= 6
    names = [g["name"] for p in files for g in load_groups(p)]
    assert len(names) == len(set(names)), names


def test_every_alert_follows_the_conventions():
    anchors = _anchors()
    problems = [p for rule in all_alerts() for p in lint_alert(rule, anchors)]
    assert problems == []


def test_every_recording_rule_is_named_level_metric_operations():
    problems = [p for rule in all_rules() if "record" in rule for p in lint_record(rule)]
    assert problems == []


def test_alert_and_record_names_are_unique():
    alerts = [r["alert"] for r in all_alerts()]
    records = [r["record"] for r in all_rules() if "record" in r]
    assert len(alerts) == len(set(alerts))
    assert len(records) == len(set(records))


def test_rules_use_only_contract_metrics():
    unknown = set()
    for rule in all_rules():
        unknown |= ai_metrics_in(rule["expr"]) - CONTRACT_METRICS
    assert unknown == set()


def test_lint_rejects_query_value_in_labels_and_missing_parts():
    anchors = _anchors()
    bad = {
        "alert": "GpuTooHot",
        "expr": "DCGM_FI_DEV_GPU_TEMP > 90",
        "labels": {"severity": "warning", "temperature": "{{ $value }}"},
        "annotations": {"summary": "Hot {{ $labels.gpu }}", "description": "static",
                        "runbook_url": "https://example.invalid/#nope"},
    }
    problems = "\n".join(lint_alert(bad, anchors))
    assert "label temperature carries a templated/query value" in problems
    assert "no explicit for:" in problems
    assert "summary must be a static sentence" in problems
    assert "description must be templated" in problems
    assert "no section #gputoohot" in problems
    assert lint_alert({**bad, "labels": {"severity": "page"}}, anchors)
    assert lint_record({"record": "gpu_temp_avg", "expr": "x"})


def test_every_runbook_section_has_an_alert():
    # The reverse direction: no orphan runbook sections for alerts that no longer exist.
    alert_anchors = {r["alert"].lower() for r in all_alerts()}
    anchors = _anchors()
    orphan = {a for a, text in anchors.items() if "**Meaning.**" in text} - alert_anchors
    assert orphan == set()


def _tested_alerts():
    firing, silent = set(), set()
    for path in sorted(RULE_TESTS_DIR.glob("*.yaml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    return firing, silent


def test_every_alert_has_a_firing_and_a_silent_unit_test():
    firing, silent = _tested_alerts()
    names = {r["alert"] for r in all_alerts()}
    assert names - firing == set(), "alerts without a firing promtool test"
    assert names - silent == set(), "alerts without a silent promtool test"
    assert (firing | silent) - names == set(), "tests for alerts that do not exist"
