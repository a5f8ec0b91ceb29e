"""Latency profiles: what one forward step of a simulated GPU engine costs.

A step of a continuous-batching engine runs every scheduled sequence once: prefill chunks
(many tokens each) and decodes (one token each). Its time is modelled as

    step = overhead + max(weights_read, tokens * compute_per_token)
                    + context_tokens * kv_read_per_token
                    + (lora_overhead if any adapter is in the batch)
                    + swapped_in_adapters * lora_swap_in

- `weights_read`: every step streams the weights from HBM once (memory-bound decode);
- `tokens * compute_per_token`: the batch's matmul FLOPs (compute-bound prefill, big batches);
- `context_tokens * kv_read_per_token`: attention reads the KV cache of every scheduled
  sequence (its computed tokens so far);
- adapters: the LoRA kernels' extra cost, and copying an adapter into a free GPU slot.

The numbers of the default profile and where they come from are in docs/simulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class LatencyProfile:
    """One engine configuration: costs (seconds) and capacities (blocks, sequences, tokens)."""

    name: str
    """What `--profile` selects."""
    description: str
    overhead_s: float
    """Fixed cost of a step: scheduling, input preparation, sampling, kernel launches."""
    weights_read_s: float
    """Reading the weights once from GPU memory (the floor of a decode step)."""
    compute_s_per_token: float
    """Matmul time per scheduled token (prefill or decode)."""
    kv_read_s_per_token: float
    """Attention time per token of context held by a scheduled sequence."""
    lora_overhead_s: float
    """Extra time of a step whose batch holds at least one adapter."""
    lora_swap_in_s: float
    """Copying one adapter into a GPU LoRA slot (when it is not resident)."""
    lora_load_s: float
    """`/v1/load_lora_adapter`: reading the adapter from disk into CPU memory."""
    num_gpu_blocks: int
    """KV cache capacity in blocks of `block_size` tokens."""
    block_size: int = 16
    max_num_seqs: int = 256
    """Most sequences in one step (vLLM's `--max-num-seqs`)."""
    max_num_batched_tokens: int = 8192
    """Token budget of one step; longer prompts are prefilled in chunks."""
    max_model_len: int = 8192
    """Context length when `--max-model-len` is not given."""

    def step_time(
        self,
        *,
        num_tokens: int,
        context_tokens: int,
        with_lora: bool,
        swapped_in: int,
    ) -> float:
        """Seconds one step takes for this batch (see the module docstring)."""
        if num_tokens <= 0:
            return 0.0
        seconds = (
            self.overhead_s
            + max(self.weights_read_s, num_tokens * self.compute_s_per_token)
            + context_tokens * self.kv_read_s_per_token
        )
        if with_lora:
            seconds += self.lora_overhead_s
        return seconds + swapped_in * self.lora_swap_in_s

    def with_overrides(
        self,
        *,
        num_gpu_blocks: int | None = None,
        block_size: int | None = None,
        max_num_seqs: int | None = None,
        max_num_batched_tokens: int | None = None,
    ) -> LatencyProfile:
        """The same profile with some capacities replaced (the vLLM flags that set them)."""
        return replace(
            self,
            num_gpu_blocks=self.num_gpu_blocks if num_gpu_blocks is None else num_gpu_blocks,
            block_size=self.block_size if block_size is None else block_size,
            max_num_seqs=self.max_num_seqs if max_num_seqs is None else max_num_seqs,
            max_num_batched_tokens=(
                self.max_num_batched_tokens
                if max_num_batched_tokens is None
                else max_num_batched_tokens
            ),
        )


# Llama-3.1-8B-Instruct, BF16, one H100 80GB SXM (3.35 TB/s, 989 dense BF16 TFLOPS), vLLM.
# Calibrated in docs/simulator.md: 6.5 ms per output token alone, ~12k output tokens/s at
# saturation, prefill ~27 us per token.
LLAMA_31_8B_H100 = LatencyProfile(
    name="llama-3.1-8b-h100",
    description="Llama-3.1-8B-Instruct BF16 on one H100 80GB SXM (the default)",
    overhead_s=0.0006,
    weights_read_s=0.0059,
    compute_s_per_token=27e-6,
    kv_read_s_per_token=0.053e-6,
    lora_overhead_s=0.0008,
    lora_swap_in_s=0.004,
    lora_load_s=0.15,
    num_gpu_blocks=25_000,
)

# The same model on one A100 40GB (1.56 TB/s, 312 dense BF16 TFLOPS): ~75 tokens/s alone.
LLAMA_31_8B_A100_40GB = LatencyProfile(
    name="llama-3.1-8b-a100-40gb",
    description="Llama-3.1-8B-Instruct BF16 on one A100 40GB",
    overhead_s=0.0008,
    weights_read_s=0.0125,
    compute_s_per_token=86e-6,
    kv_read_s_per_token=0.11e-6,
    lora_overhead_s=0.0015,
    lora_swap_in_s=0.008,
    lora_load_s=0.2,
    num_gpu_blocks=8_800,
)

# A fixed 50 ms step whatever the batch: every stream gets 20 tokens/s. For measuring the
# simulator's own timing accuracy and for load tests that want a flat engine.
CONSTANT_20_TPS = LatencyProfile(
    name="constant-20tps",
    description="A flat engine: every step takes 50 ms, whatever the batch (20 tokens/s/stream)",
    overhead_s=0.0,
    weights_read_s=0.05,
    compute_s_per_token=0.0,
    kv_read_s_per_token=0.0,
    lora_overhead_s=0.0,
    lora_swap_in_s=0.0,
    lora_load_s=0.0,
    num_gpu_blocks=1_000_000,
    max_num_seqs=4096,
    max_num_batched_tokens=1_000_000,
)

# Small and quick, shaped like the tiny test model on vLLM CPU: a small KV cache (so tests can
# fill it) and short steps.
TINY = LatencyProfile(
    name="tiny",
    description="A small engine for tests: 2 ms steps, 64 blocks of 16 tokens",
    overhead_s=0.0005,
    weights_read_s=0.0015,
    compute_s_per_token=2e-6,
    kv_read_s_per_token=0.0,
    lora_overhead_s=0.0002,
    lora_swap_in_s=0.002,
    lora_load_s=0.0,
    num_gpu_blocks=64,
    max_num_seqs=32,
    max_num_batched_tokens=2048,
    max_model_len=512,
)

DEFAULT_PROFILE = LLAMA_31_8B_H100.name


def builtin_profiles() -> dict[str, LatencyProfile]:
    """The profiles `--profile` can name, by name."""
    return {
        profile.name: profile
        for profile in (LLAMA_31_8B_H100, LLAMA_31_8B_A100_40GB, CONSTANT_20_TPS, TINY)
    }


def get_profile(name: str) -> LatencyProfile:
    """The built-in profile called `name`; ValueError listing the choices otherwise."""
    profiles = builtin_profiles()
    try:
        return profiles[name]
    except KeyError:
        choices = ", ".join(sorted(profiles))
        raise ValueError(f"unknown profile {name!r}; choose one of: {choices}") from None
