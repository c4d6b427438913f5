"""docs/signals.md documents every metric family the signal modules define."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_family_is_documented() -> None:
    names = set()
    for module in (ROOT / "src" / "ai_signals_exporter" / "signals").glob("*.py"):
        names |= set(re.findall(r'"(ai_[a-z_]+)"', module.read_text()))
    assert len(names) >= 40  # the contract's families, so the scan itself cannot silently break
    doc = (ROOT / "docs" / "signals.md").read_text()
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert not missing, f"undocumented metric families: {missing}"
