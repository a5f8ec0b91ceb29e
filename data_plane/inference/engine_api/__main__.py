"""`python -m data_plane.inference.engine_api --model-json JSON --host H --port P`.

Resolves the model's weights, builds vLLM's command line from the `Model` spec, then runs
and supervises vLLM, which itself listens on H:P (so `/health`, `/v1/*` and vLLM's
`/metrics` are served there). engine_api's own metrics are served on `--metrics-port`
when one is given. SIGTERM or SIGINT stops vLLM's whole process group.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import sys
from pathlib import Path, PurePosixPath

from aiohttp import web
from prometheus_client import generate_latest
from pydantic import ValidationError

from control_plane.api.liveness import LivenessPolicy
from control_plane.api.model import EngineKind, Model
from data_plane.inference.engine_api.args import EngineArgsError, build_launch
from data_plane.inference.engine_api.download import fetch_model
from data_plane.inference.engine_api.metrics import EngineMetrics
from data_plane.inference.engine_api.prepare import KNOWN_MODELS
from data_plane.inference.engine_api.restart_policy import RestartPolicy
from data_plane.inference.engine_api.settings import EngineSettings
from data_plane.inference.engine_api.source import (
    HubModel,
    LocalModel,
    ModelSourceError,
    RemoteModel,
    ResolvedSource,
    resolve_source,
)
from data_plane.inference.engine_api.supervisor import EngineSupervisor

log = logging.getLogger("data_plane.inference.engine_api")


class UsageError(Exception):
    """The command line or the Model document is wrong; exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_plane.inference.engine_api",
        description="Run and supervise the vLLM engine for one Model replica.",
    )
    parser.add_argument("--model-json", required=True, help="the whole Model document, as JSON")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--metrics-port", type=int, help="serve engine_api's /metrics here")
    return parser


def load_model(text: str) -> Model:
    try:
        model = Model.model_validate_json(text)
    except ValidationError as exc:
        raise UsageError(f"--model-json is not a valid Model document:\n{exc}") from exc
    if model.spec.engine is not EngineKind.VLLM:
        raise UsageError(f"spec.engine is {model.spec.engine.value!r}; engine_api runs vllm")
    return model


def _resolve_locally(source: str, settings: EngineSettings) -> ResolvedSource:
    """Resolve `source`, checking the local filesystem for the pure resolver."""
    repository = settings.model_repository
    if "://" not in repository:
        repository = str(Path(repository).expanduser())
    candidate = PurePosixPath(repository) / source
    exists = frozenset({candidate}) if Path(candidate).exists() else frozenset()
    resolved = resolve_source(
        source,
        repository=repository,
        cache_root=PurePosixPath(settings.cache_root),
        exists=exists,
    )
    if isinstance(resolved, LocalModel) and not Path(resolved.path).exists():
        raise ModelSourceError(f"model weights not found at {resolved.path}")
    return resolved


async def _prepare(name: str, settings: EngineSettings) -> None:
    """Run `engine_api.prepare NAME` (its progress goes to our output); stop it if cancelled."""
    log.info("%s is not in MODEL_REPOSITORY; preparing it (once)", name)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "data_plane.inference.engine_api.prepare", name,
        "--repository", str(settings.local_repository),
        stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        code = await process.wait()
    except asyncio.CancelledError:
        process.terminate()
        await process.wait()
        raise
    if code != 0:
        raise ModelSourceError(f"preparing {name} failed (exit status {code}); see above")


async def resolve_weights(model: Model, settings: EngineSettings, metrics: EngineMetrics) -> str:
    source = model.spec.source
    try:
        resolved = await asyncio.to_thread(_resolve_locally, source, settings)
    except ModelSourceError:
        local_repository = "://" not in settings.model_repository
        if not (settings.auto_prepare and local_repository and source in KNOWN_MODELS):
            raise
        await _prepare(source, settings)
        resolved = await asyncio.to_thread(_resolve_locally, source, settings)
    if isinstance(resolved, LocalModel):
        return str(resolved.path)
    if isinstance(resolved, RemoteModel):
        path = await fetch_model(
            resolved.url,
            Path(resolved.cache_dir),
            timeout_seconds=settings.download_timeout_seconds,
            metrics=metrics,
        )
        return str(path)
    assert isinstance(resolved, HubModel)
    log.info("%s is not in the repository; vLLM will fetch it from the Hugging Face Hub", source)
    return resolved.repo_id


async def _serve_metrics(metrics: EngineMetrics, host: str, port: int) -> web.AppRunner:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run(model: Model, host: str, port: int, settings: EngineSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = EngineMetrics()
    runner = None
    if settings.metrics_port is not None:
        runner = await _serve_metrics(metrics, host, settings.metrics_port)
    try:
        weights_task = asyncio.ensure_future(resolve_weights(model, settings, metrics))
        stop_task = asyncio.ensure_future(stop.wait())
        await asyncio.wait({weights_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            weights_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ModelSourceError):
                await weights_task
            return 0
        stop_task.cancel()
        weights = weights_task.result()
        launch = build_launch(
            model.spec,
            model_path=weights,
            served_name=model.metadata.name,
            host=host,
            port=port,
            cpu_kvcache_gib=settings.cpu_kvcache_gib,
            otel=os.environ,  # OTEL_*: vLLM's own trace export
        )
        if launch.needs_lmcache and importlib.util.find_spec("lmcache") is None:
            raise UsageError(
                "spec.kvCache has a disk or remote tier, which needs LMCache; install the"
                " `lmcache` package in the engine's environment"
            )
        supervisor = EngineSupervisor(
            python=settings.python,
            argv=launch.argv,
            env=launch.env,
            health_url=f"http://{_connect_host(host)}:{port}/health",
            policy=RestartPolicy(
                base_seconds=settings.restart_base_seconds,
                cap_seconds=settings.restart_cap_seconds,
                max_failed_starts=settings.max_failed_starts,
            ),
            metrics=metrics,
            start_timeout=settings.start_timeout_seconds,
            health_interval=settings.health_interval_seconds,
            liveness=LivenessPolicy(
                unresponsive_after_s=settings.unresponsive_after_seconds,
                min_failures=settings.unhealthy_after_failures,
                start_timeout_s=settings.start_timeout_seconds,
            ),
            health_timeout=settings.health_timeout_seconds,
            stop_grace=settings.stop_grace_seconds,
        )
        return await supervisor.run(stop)
    finally:
        if runner is not None:
            await runner.cleanup()


def _connect_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = EngineSettings(
            **({"metrics_port": args.metrics_port} if args.metrics_port is not None else {})
        )
    except ValidationError as exc:
        print(f"engine_api: invalid settings:\n{exc}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s engine_api %(name)s: %(message)s",
    )
    try:
        model = load_model(args.model_json)
        code = asyncio.run(run(model, args.host, args.port, settings))
    except (UsageError, EngineArgsError, ModelSourceError) as exc:
        print(f"engine_api: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # a port in use, an interpreter that is not there
        print(f"engine_api: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code)


if __name__ == "__main__":
    main()
