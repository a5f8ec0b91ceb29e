"""Schema-driven fuzzing (schemathesis): every operation of the gateway's live
`/openapi.json`, against the gateway in front of a real simulator process and the
supervisor's real admin API (local discovery, so the adapter API has a store).

schemathesis runs as its command line, in its four phases: the schema's examples, the
coverage of each field's edge values (valid and not), random fuzzing, and stateful
sequences following the schema's links (create an adapter, read it, replace it, delete
it). Whatever it sends, no answer may be a 5xx, and every answer must match what the
schema says of its status, content type, headers and body. Nothing leaves 127.0.0.1: the
admin backend stores adapters without fetching their sources.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.admin_backend import SimAdminBackend, running_admin_api
from tests.support.gateway import run_gateway
from tests.support.simulator import SimProcess, running_sim_process

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
# Bounded for a loaded 2-core CI machine: examples per operation and per stateful run.
MAX_EXAMPLES = 40
SEED = 14
RUN_TIMEOUT_S = 240
# Most generated model names are unknown (a 404 is right, but goes no deeper): a share of
# `model` and `baseModel` values is the served model's real name.
CONFIG = """
[dictionaries.models]
values = ["base"]

[parameters]
"body.model" = { dictionary = "models", probability = 0.6 }
"body.baseModel" = { dictionary = "models", probability = 0.7 }
"body.spec.baseModel" = { dictionary = "models", probability = 0.7 }
"""


async def _public(_host: str) -> list[str]:
    return ["93.184.216.34"]


class Stack:
    """The admin API and the gateway, in an event loop of their own (a thread)."""

    def __init__(self, engine_url: str) -> None:
        self.backend = SimAdminBackend("base", [engine_url])
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.url = ""
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by __enter__ / __exit__
            self._failure = exc
            self.ready.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with (
            running_admin_api(self.backend) as admin_url,
            run_gateway(
                discovery="local",
                admin_url=admin_url,
                admin_token_file=self.backend.token_file,
                discovery_interval_s=0.2,
                model_repository="/models",  # relative sources resolve under it
                adapter_source_roots=["/"],  # any local path, and (below) any host is public:
            ) as gw,  # the policy has tests of its own; here sources are never fetched
        ):
            gw.gateway.sources.resolver = _public
            self.url = gw.url
            self.ready.set()
            await self._stop.wait()

    def __enter__(self) -> Stack:
        self.thread.start()
        if not self.ready.wait(30) or self._failure is not None:
            raise RuntimeError(f"the gateway did not start: {self._failure!r}")
        return self

    def __exit__(self, *_: object) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)
        self.loop.close()
        if self._failure is not None:
            raise self._failure


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    # A short context and a fast clock: the longest answer the schema allows stays quick.
    args = ["--served-model-name", "base", "--max-model-len", "64", "--time-scale", "1000",
            "--accept-missing-lora-paths", "--max-loras", "4"]  # fmt: skip
    with running_sim_process(args, log_path=log) as process:
        yield process


def run_schemathesis(url: str, folder: Path) -> subprocess.CompletedProcess[str]:
    config = folder / "schemathesis.toml"
    config.write_text(CONFIG)
    argv = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        "run", f"{url}/openapi.json",
        "--checks", ",".join(CHECKS),
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--workers", "1", "--request-timeout", "30",
        "--report", "json", "--report-json-path", str(folder / "report.json"),
        "--suppress-health-check", "all",
    ]  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_TELEMETRY": "false"}
    # cwd: schemathesis keeps its example database there (a test leaves nothing behind).
    return subprocess.run(
        argv, cwd=folder, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env,
        check=False,
    )  # fmt: skip


def test_every_operation_conforms_to_the_schema(sim: SimProcess, tmp_path: Path) -> None:
    with Stack(sim.urls[0]) as stack:
        done = run_schemathesis(stack.url, tmp_path)
        created = set(stack.backend.loaded) | set(stack.backend.removed)
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["operations"]["tested"] == report["operations"]["total"] == 18
    assert report["test_cases"]["with_failures"] == 0
    assert not report["failures"] and not report["errors"]
    phases = report["phases"]
    assert {p: phases[p]["status"] for p in phases} == {
        "examples": "success", "coverage": "success", "fuzzing": "success", "stateful": "success"
    }  # fmt: skip
    # It went past the refusals: valid requests were served, adapters written and deleted.
    rates = report["valid_rates"]
    for operation in ("POST /v1/chat/completions", "POST /v1/completions", "POST /v1/adapters"):
        assert sum(phase["accepted"] for phase in rates[operation].values()) > 0, operation
    assert created, "no adapter was created"
    assert stack.backend.removed, "no adapter was deleted"
