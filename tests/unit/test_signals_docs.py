"""docs/signals.md documents exactly the metric families the areas declare (their specs)."""

from __future__ import annotations

import re
from pathlib import Path

from ai_signals_exporter.areas import families

FAMILIES = families()

ROOT = Path(__file__).resolve().parents[2]
# A table row: | `name` | type or label names | ...
ROW_RE = re.compile(r"^\| `(ai_[a-z0-9_]+)` \| ([^|]+) \|", re.M)
TYPES = {"gauge", "counter", "summary", "histogram", "info", "untyped"}


def doc_rows() -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for m in ROW_RE.finditer((ROOT / "docs" / "signals.md").read_text())}


def test_every_family_has_a_doc_line_with_its_type_or_labels() -> None:
    assert len(FAMILIES) >= 40  # the contract's families: the registry itself cannot silently shrink
    rows = doc_rows()
    missing = sorted(spec.name for spec in FAMILIES if spec.name not in rows)
    assert not missing, f"families with no line in docs/signals.md: {missing}"
    wrong = []
    for spec in FAMILIES:
        column = rows[spec.name]
        if column in TYPES:
            if column != spec.type:
                wrong.append(f"{spec.name}: documented as {column}, declared {spec.type}")
        else:  # the self-metrics table lists label names instead
            documented = tuple(x.strip() for x in column.strip("`—").replace("`", "").split(",") if x.strip())
            if documented != spec.labelnames:
                wrong.append(f"{spec.name}: documented labels {documented}, declared {spec.labelnames}")
    assert not wrong, wrong


def test_docs_name_no_family_that_does_not_exist() -> None:
    declared = {spec.name for spec in FAMILIES}
    unknown = sorted(set(doc_rows()) - declared)
    assert not unknown, f"docs/signals.md documents families no area declares: {unknown}"


def test_family_names_are_unique() -> None:
    names = [spec.name for spec in FAMILIES]
    assert len(names) == len(set(names))
