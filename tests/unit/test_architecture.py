"""The layering the registry relies on, and docs that describe the tree as it is."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ai_signals_exporter.areas import AREAS, Area
from ai_signals_exporter.config import Config
from ai_signals_exporter.state import AppState

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "src" / "ai_signals_exporter"
# Packages below the signals: they may not import signals/ or app (the registry's direction).
LOWER = ("sources", "expo", "engines", "gpu", "checkpoints", "streaming", "serving")


def imported_modules(path: Path) -> set[str]:
    """Absolute dotted names of what a module imports (relative imports resolved)."""
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_lower_layers_never_import_signals_or_app() -> None:
    bad = []
    for sub in LOWER:
        for path in (PKG / sub).rglob("*.py"):
            for mod in imported_modules(path):
                if mod.startswith(("ai_signals_exporter.signals", "ai_signals_exporter.app")):
                    bad.append(f"{path.relative_to(PKG)} imports {mod}")
    assert not bad, bad


def test_app_names_no_area() -> None:
    text = (PKG / "app.py").read_text()
    names = {a.name for a in AREAS}
    quoted = {n for n in names if re.search(rf"""["']{n}["']""", text)}
    assert not quoted, f"app.py names areas {quoted}: iterate areas.AREAS instead"
    area_imports = {m for m in imported_modules(PKG / "app.py")
                    if m.startswith(("ai_signals_exporter.sources.", "ai_signals_exporter.signals"))}
    assert area_imports <= {"ai_signals_exporter.sources.base", "ai_signals_exporter.sources.base.Source",
                            "ai_signals_exporter.sources.base.TargetStatus"}, area_imports


def test_cli_and_demo_do_not_import_each_other_in_a_cycle() -> None:
    assert not any(m.startswith("ai_signals_exporter.cli") for m in imported_modules(PKG / "sim" / "demo.py"))


def test_area_names_are_unique_and_match_their_sources() -> None:
    names = [a.name for a in AREAS]
    assert len(names) == len(set(names))
    for area in AREAS:
        for make in area.sources:
            assert make(Config(), AppState()).name == area.name, (make, area.name)


def test_kube_source_watches_what_the_areas_ask_for(monkeypatch) -> None:
    from ai_signals_exporter import areas

    kube = next(a for a in AREAS if a.name == "kube")
    # The scheduling area asks for resourcequotas and events.
    base = ["pods", "nodes", "resourcequotas", "events"]
    assert [w.resource for w in kube.sources[0](Config(), AppState()).watches] == base
    asking = Area("workload-demo", kube_resources=("deployments", "pods", "events"))
    monkeypatch.setattr(areas, "AREAS", (*AREAS, asking))
    watched = [w.resource for w in kube.sources[0](Config(), AppState()).watches]
    assert watched == [*base, "deployments"]


def test_docs_do_not_cite_files_outside_the_repository() -> None:
    cited = [p.name for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")] if "DESIGN" in p.read_text()]
    assert not cited, f"cite docs/architecture.md instead of DESIGN.md in {cited}"


def test_readme_layout_block_matches_the_tree() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```")[1]
    top = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")} - {"src"}
    top = {d for d in top if (ROOT / d).exists() and d not in {"build", "dist"} and not d.endswith(".egg-info")}
    listed = set(re.findall(r"^([a-z]+)/ ", block, re.M))
    assert {"bench", "dashboards", "deploy", "docs", "rules", "scripts", "tests"} <= listed
    assert listed <= top | {"src"}, listed - top
    packages = {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    missing = sorted(p for p in packages if f"{p}/" not in block)
    assert not missing, f"README layout misses packages {missing}"
    tests = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name not in {"fixtures", "__pycache__"}}
    missing = sorted(t for t in tests if f"{t}/" not in block)
    assert not missing, f"README layout misses test folders {missing}"
