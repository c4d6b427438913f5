"""Helpers shared by the rule-pack tests: where things are, loading rules, and the lint checks.

The checks are plain functions returning a list of problems, so the tests can also show that a
bad rule is rejected.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from ai_signals_exporter.areas import families

from ..helpers.promstack import need  # noqa: F401  (re-exported for the rule tests)

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "rules"
RULE_TESTS_DIR = RULES_DIR / "tests"
RUNBOOKS = REPO / "docs" / "runbooks.md"
DEPLOY = REPO / "deploy"
DASHBOARDS = REPO / "dashboards"
SHARED = REPO.parent / "shared"

RUNBOOK_BASE = "https://github.com/ai-signals-exporter/ai-signals-exporter/blob/main/docs/runbooks.md"
SEVERITIES = {"critical", "warning", "info"}
SCOPES = {"gpu", "node"}
ALERT_NAME_RE = re.compile(r"^[A-Z][a-zA-Z0-9]+$")
# level:metric:operations (Prometheus recording-rule naming convention).
RECORD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*:[a-zA-Z0-9_]+:[a-z0-9_]+$")
# Anything that makes a label value depend on the query result or on templating.
TEMPLATED_RE = re.compile(r"\{\{|\$value|\$labels|humanize")

# The ai_* families the areas declare (their specs); rules and dashboards may use nothing else of ours.
# A histogram's samples are its _bucket/_sum/_count series.
CONTRACT_METRICS = {spec.name for spec in families()} | {
    spec.name + suffix for spec in families() if spec.type == "histogram" for suffix in ("_bucket", "_sum", "_count")
}
AI_METRIC_RE = re.compile(r"(?<![:\w])(ai_[a-z0-9_]+)")


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yaml"))


def load_groups(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text())["groups"]


def group_names(*paths: Path) -> list[str]:
    """The groups of rule files in file order (records groups come first in each file): what a
    promtool test passes as `group_eval_order`, since promtool otherwise evaluates the groups
    in Go's random map order at each step, and an alert reading a record on a boundary flakes
    (prometheus/prometheus#10863; cmd/promtool/unittest.go orderedGroups)."""
    return [g["name"] for p in paths for g in load_groups(p)]


def all_rules() -> list[dict]:
    return [r for p in rule_files() for g in load_groups(p) for r in g["rules"]]


def all_alerts() -> list[dict]:
    return [r for r in all_rules() if "alert" in r]


def runbook_anchors(markdown: str) -> dict[str, str]:
    """GitHub-style anchors of `## ` headings -> the section text under each."""
    sections: dict[str, str] = {}
    current = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            current = re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def lint_alert(rule: dict, anchors: dict[str, str]) -> list[str]:
    name = rule.get("alert", "?")
    problems = []
    if not ALERT_NAME_RE.match(name):
        problems.append(f"{name}: alert names are CamelCase")
    if "for" not in rule:
        problems.append(f"{name}: no explicit for:")
    labels = rule.get("labels") or {}
    if labels.get("severity") not in SEVERITIES:
        problems.append(f"{name}: severity must be one of {sorted(SEVERITIES)}")
    if "scope" in labels and labels["scope"] not in SCOPES:
        problems.append(f"{name}: scope must be one of {sorted(SCOPES)}")
    for key, value in labels.items():
        if TEMPLATED_RE.search(str(value)):
            problems.append(f"{name}: label {key} carries a templated/query value; it would change the alert's identity")
    ann = rule.get("annotations") or {}
    summary, description, runbook = ann.get("summary", ""), ann.get("description", ""), ann.get("runbook_url", "")
    if not summary or "{{" in summary or not summary.endswith("."):
        problems.append(f"{name}: summary must be a static sentence ending with a period")
    if "{{" not in description:
        problems.append(f"{name}: description must be templated")
    anchor = name.lower()
    if runbook != f"{RUNBOOK_BASE}#{anchor}":
        problems.append(f"{name}: runbook_url must be {RUNBOOK_BASE}#{anchor}")
    section = anchors.get(anchor)
    if section is None:
        problems.append(f"{name}: docs/runbooks.md has no section #{anchor}")
    else:
        for part in ("**Meaning.**", "**How to confirm.**", "**What to do.**"):
            if part not in section:
                problems.append(f"{name}: runbook section lacks {part}")
    return problems


def lint_record(rule: dict) -> list[str]:
    name = rule.get("record", "?")
    problems = []
    if not RECORD_NAME_RE.match(name):
        problems.append(f"{name}: recording rules are named level:metric:operations")
    for key, value in (rule.get("labels") or {}).items():
        if TEMPLATED_RE.search(str(value)):
            problems.append(f"{name}: label {key} is templated")
    return problems


def ai_metrics_in(expr: str) -> set[str]:
    return set(AI_METRIC_RE.findall(expr))


# One exposition sample line (optional timestamp): fixtures and real payloads fed to promtool.
SAMPLE_RE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)(\s+\d+)?$")


def input_series(text: str, samples: int = 90) -> list[dict]:
    """An exposition payload as promtool `input_series`, each sample held for `samples` steps."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line.strip())
        assert m, line
        name, labels, value, _ = m.groups()
        out.append({"series": f"{name}{labels or ''}", "values": f"{float(value):g}x{samples}"})
    return out


def promtool_dcgm_rules(tmp_path: Path, tests: list[dict], name: str) -> subprocess.CompletedProcess:
    """`promtool test rules` of rules/gpu-dcgm.yaml on `tests` (groups in a fixed order)."""
    doc = {"rule_files": [str(RULES_DIR / "gpu-dcgm.yaml")], "evaluation_interval": "1m",
           "group_eval_order": group_names(RULES_DIR / "gpu-dcgm.yaml"), "tests": tests}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return subprocess.run([need("promtool"), "test", "rules", str(path)], capture_output=True, text=True)
