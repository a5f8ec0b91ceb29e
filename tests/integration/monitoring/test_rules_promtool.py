"""The Prometheus rules load in Prometheus' own checker and pass their promtool unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from monitoring.generate import RULES
from tests.support.tools import tool

RULE_TESTS = RULES.with_name("hoist.rules.test.yaml")


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], cwd=cwd, check=False, capture_output=True, text=True, timeout=120
    )


def test_rules_are_valid() -> None:
    result = _promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    result = _promtool("test", "rules", RULE_TESTS.name, cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_wrong_threshold_fails_the_unit_tests(tmp_path: Path) -> None:
    (tmp_path / RULES.name).write_text(
        RULES.read_text().replace("> 0.05 and", "> 0.5 and"), encoding="utf-8"
    )
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text(), encoding="utf-8")
    result = _promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "HoistHighErrorRate" in result.stdout + result.stderr
