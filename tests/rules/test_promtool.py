"""The rule pack passes promtool: syntax (`check rules`) and the unit tests (`test rules`)."""

from __future__ import annotations

import subprocess

from .rulepack import RULE_TESTS_DIR, need, rule_files


def test_promtool_check_rules():
    files = [str(p) for p in rule_files()]
    out = subprocess.run([need("promtool"), "check", "rules", *files], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SUCCESS") == len(files)


def test_promtool_unit_tests():
    tests = sorted(str(p) for p in RULE_TESTS_DIR.glob("*.yaml"))
    assert len(tests) >= 6
    out = subprocess.run([need("promtool"), "test", "rules", *tests], capture_output=True, text=True,
                         cwd=RULE_TESTS_DIR)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SUCCESS") == len(tests)
    assert "FAILED" not in out.stdout
