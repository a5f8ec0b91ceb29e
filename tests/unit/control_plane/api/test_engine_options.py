"""The engine options a Model may ask for agree with the installed vLLM and with the CRD."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from control_plane.api.crd import model_crd
from control_plane.api.engine_options import (
    BREAKS_THE_POD,
    OWNED_BY_SPEC,
    REASONING_PARSERS,
    TOOL_CALL_PARSERS,
    engine_args_cel_rule,
)

_LIST_VLLM_PARSERS = """
import json
from vllm.reasoning import ReasoningParserManager
from vllm.tool_parsers import ToolParserManager
print(json.dumps({
    "tool": sorted(ToolParserManager.list_registered()),
    "reasoning": sorted(ReasoningParserManager.list_registered()),
}))
"""


def test_parser_names_are_the_installed_vllms() -> None:
    """An upgrade of vLLM that adds or renames a parser fails here, not at a user's apply."""
    pytest.importorskip("vllm")
    out = subprocess.run(
        [sys.executable, "-c", _LIST_VLLM_PARSERS],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    installed = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(TOOL_CALL_PARSERS) == installed["tool"]
    assert sorted(REASONING_PARSERS) == installed["reasoning"]


def _cel_pattern() -> re.Pattern[str]:
    found = re.search(r"a\.matches\('(.+)'\)\)$", engine_args_cel_rule())
    assert found is not None
    return re.compile(found.group(1))


@pytest.mark.parametrize("name", sorted({*BREAKS_THE_POD, *OWNED_BY_SPEC}))
@pytest.mark.parametrize("form", ["{}", "{}=x"])
def test_the_crd_rule_refuses_every_denied_flag(name: str, form: str) -> None:
    assert _cel_pattern().match(form.format(name))


@pytest.mark.parametrize(
    "arg", ["--enable-prefix-caching", "--seed=3", "--tool-strict-level", "--hosts", "3"]
)
def test_the_crd_rule_lets_other_arguments_through(arg: str) -> None:
    assert not _cel_pattern().match(arg)


def test_the_crd_carries_the_engine_args_rule_and_the_parser_enums() -> None:
    spec = model_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = spec["properties"]["engineArgs"]["x-kubernetes-validations"]
    assert [r["rule"] for r in rules] == [engine_args_cel_rule()]
    assert "hermes" in spec["properties"]["toolCallParser"]["enum"]
    assert spec["properties"]["task"]["enum"] == ["generate", "embed"]
