"""What a user installs: the README's two commands, CI's entry point, the console script and the
container image's shape (no Docker engine runs here, so the Dockerfile is checked statically)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_commands_exist_and_ci_runs_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "scripts/demo" in readme and "scripts/test" in readme
    for script in ("scripts/demo", "scripts/test", "scripts/setup", ".ci/run"):
        path = ROOT / script
        assert path.exists() and path.stat().st_mode & 0o111, f"{script} missing or not executable"
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^scripts/test\s*$", ci, re.M), ".ci/run must run the README's test command"
    assert "ai-signals-exporter demo" in (ROOT / "scripts" / "demo").read_text()


def test_console_script_and_python_floor() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["scripts"]["ai-signals-exporter"] == "ai_signals_exporter.cli:main"
    assert meta["requires-python"] == ">=3.11"
    # Every runtime dependency has a lower bound.
    assert all(re.search(r">=\d", dep) for dep in meta["dependencies"]), meta["dependencies"]


def test_dockerfile_is_slim_non_root_and_exposes_the_port() -> None:
    text = (ROOT / "Dockerfile").read_text()
    # The base is an ARG (tests/image builds on a local Debian base); its default is the slim image, pinned.
    assert re.search(r"^ARG BASE_IMAGE=\S*python:3\.11-slim@sha256:[0-9a-f]{64}$", text, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}", text, re.M)
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0")), "the image must run as a non-root user"
    assert re.search(r"^EXPOSE 9842$", text, re.M)
    assert "PYTHONDONTWRITEBYTECODE=1" in text  # read-only root filesystem: nothing written at run time
