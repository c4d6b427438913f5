"""Strict config: one invalid fixture per rule, each must fail with a message naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ai_signals_exporter.config import ConfigError, load_config, load_config_text, parse_duration

FIXTURES = Path(__file__).parent.parent / "fixtures" / "config"
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))


def _expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: ...'"
    return first[len("# expect: "):]


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_config_names_file_and_key(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert _expected(path) in message


def test_there_is_an_invalid_fixture_per_rule() -> None:
    assert len(INVALID) >= 20


def test_valid_contract_example_loads() -> None:
    cfg = load_config(FIXTURES / "valid" / "full.yaml")
    assert cfg.global_.interval == 15
    assert cfg.serving.window == 30
    assert cfg.serving.targets[0].labels["workload"] == "llama"
    assert cfg.gpu.idle_after == 600
    assert cfg.checkpoints.stores[0].expected_interval == 1800
    assert cfg.probes[0].direct_url == "http://10.0.0.5:8000/v1/completions"


def test_empty_file_gives_defaults() -> None:
    cfg = load_config_text("")
    assert cfg.kubernetes.enabled is False
    assert cfg.serving.targets == []


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "text,seconds", [("500ms", 0.5), ("15s", 15), ("10m", 600), ("1h", 3600), ("1m30s", 90), ("1d", 86400)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "15", "s", "1 h", "-1s", "0s", "1y"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_node_scope_expands_environment(monkeypatch) -> None:
    monkeypatch.setenv("NODE_NAME", "gpu-node-7")
    cfg = load_config_text("kubernetes: {enabled: true, node_scope: $NODE_NAME}")
    assert cfg.kubernetes.node_scope == "gpu-node-7"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ai_signals_exporter.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_config_check_cli_valid_and_invalid() -> None:
    ok = _cli("--config.check", f"--config.file={FIXTURES / 'valid' / 'full.yaml'}")
    assert ok.returncode == 0, ok.stderr
    assert "valid" in ok.stdout
    bad_path = FIXTURES / "invalid" / "unknown_nested_key.yaml"
    bad = _cli("--config.check", f"--config.file={bad_path}")
    assert bad.returncode == 1
    assert "serving.targets.0.engin: unknown key" in bad.stderr
    assert str(bad_path) in bad.stderr


def test_version_cli() -> None:
    out = _cli("--version")
    assert out.returncode == 0
    assert "ai-signals-exporter, version" in out.stdout


def test_global_interval_is_the_default_gpu_interval() -> None:
    assert load_config_text("global: {interval: 30s}").gpu.interval == 30
    assert load_config_text("global: {interval: 30s}\ngpu: {interval: 5s}").gpu.interval == 5
    assert load_config_text("").gpu.interval == 15


def test_engine_choices_match_the_engine_mappings() -> None:
    import typing

    from ai_signals_exporter import engines
    from ai_signals_exporter.config import Engine

    assert set(typing.get_args(Engine)) == {"auto", *engines.ENGINES}
