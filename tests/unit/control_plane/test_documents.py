"""Declarations: every problem names the file, the document and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.documents import (
    DocumentsError,
    load_paths,
    parse_sources,
    resolve_relative_sources,
)

MODEL = """\
apiVersion: serving.hoist.dev/v1alpha1
kind: Model
metadata: {name: base}
spec: {source: /weights/base}
"""
ADAPTER = """\
apiVersion: serving.hoist.dev/v1alpha1
kind: LoraAdapter
metadata: {name: sql}
spec: {baseModel: base, source: adapters/sql}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(DocumentsError) as caught:
        parse_sources([("f.yaml", text)])
    return [str(p) for p in caught.value.problems]


def test_models_adapters_and_foreign_documents() -> None:
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: keys}\n"
    found = parse_sources([("a.yaml", f"{MODEL}---\n{ADAPTER}---\n{secret}---\n")])
    assert [m.metadata.name for m in found.models] == ["base"]
    assert [a.metadata.name for a in found.adapters] == ["sql"]
    assert found.skipped == ['a.yaml: document 3 (Secret "keys")']


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            MODEL.replace("spec: {source: /weights/base}", "spec: {source: /w, replicas: many}"),
            'f.yaml: document 1 (Model "base"): spec.replicas: Input should be a valid integer',
            id="wrong-type",
        ),
        pytest.param(
            MODEL.replace("spec: {", "spec: {color: red, "),
            'f.yaml: document 1 (Model "base"): spec.color: unknown field',
            id="unknown-field",
        ),
        pytest.param(
            MODEL + "---\n" + ADAPTER.replace("baseModel: base", "baseModel: other"),
            'f.yaml: document 2 (LoraAdapter "sql"): spec.baseModel: no Model named "other" in namespace "default"',
            id="unknown-base-model",
        ),
        pytest.param(
            MODEL + "---\n" + ADAPTER.replace("name: sql", "name: base"),
            'f.yaml: document 2 (LoraAdapter "base"): metadata.name: a Model is named "base" too; an adapter needs a name of its own',
            id="adapter-named-like-a-model",
        ),
        pytest.param(
            MODEL + "---\n" + MODEL,
            'f.yaml: document 2 (Model "base"): metadata.name: declared twice (first in f.yaml: document 1)',
            id="duplicate",
        ),
        pytest.param(
            MODEL.replace("v1alpha1", "v2"),
            'f.yaml: document 1 (Model "base"): apiVersion: unsupported version',
            id="unknown-version",
        ),
        pytest.param(
            MODEL.replace("kind: Model", "kind: Modle"),
            "f.yaml: document 1 (Modle \"base\"): kind: unknown kind 'Modle'",
            id="unknown-kind",
        ),
        pytest.param(
            MODEL.replace("name: base", "name: Base_Model"),
            'f.yaml: document 1 (Model "Base_Model"): metadata.name: String should match pattern',
            id="bad-name",
        ),
        pytest.param(
            "- just\n- a list\n",
            "f.yaml: document 1: expected a mapping, got list",
            id="not-a-mapping",
        ),
        pytest.param(
            MODEL + "---\nkind: [\n",
            "f.yaml: document 2: malformed YAML at line 7",
            id="malformed-second-doc",
        ),
        pytest.param(
            "kind: Model\n",
            "f.yaml: document 1 (Model): apiVersion and kind are required",
            id="no-api-version",
        ),
    ],
)
def test_problems_are_precise(text: str, expected: str) -> None:
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = MODEL.replace("spec: {", "spec: {a: 1, ") + "---\n" + ADAPTER.replace("base,", "nope,")
    assert len(problems(text)) == 2


def test_folder_relative_sources_and_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MODEL)
    (tmp_path / "a.yml").write_text(ADAPTER)
    (tmp_path / "notes.txt").write_text("ignored")
    found = load_paths([tmp_path])
    resolve_relative_sources(found)
    assert found.adapters[0].spec.source == str(tmp_path / "adapters" / "sql")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DocumentsError, match=r"no \.yaml or \.yml files here"):
        load_paths([empty])
    with pytest.raises(DocumentsError, match="no such file or directory"):
        load_paths([tmp_path / "missing.yaml"])


@pytest.mark.parametrize("folder", ["embedded", "embeddings", "sim"])
def test_shipped_examples_load_and_their_local_adapters_exist(folder: str) -> None:
    examples = Path(__file__).parents[3] / "examples" / folder
    found = load_paths([examples])
    resolve_relative_sources(found)
    assert found.models
    for adapter in found.adapters:
        assert Path(adapter.spec.source).is_dir(), f"{adapter.metadata.name}: {adapter.spec.source}"
