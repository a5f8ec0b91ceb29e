"""Build a tiny, real, random Llama model (and LoRA adapters for it) that vLLM CPU can serve.

The model is a `LlamaForCausalLM` with hidden size 128, 2 attention heads (head_dim 64, the
smallest the CPU attention kernels accept), 1 KV head and 2 layers, with a byte-level BPE
tokenizer trained on a few sentences and a chat template, so both `/v1/completions` and
`/v1/chat/completions` work. Everything is seeded: the same arguments build the same bytes.
It takes a few seconds and about 1 MB of disk.

    model = build_tiny_model(tmp_path / "tiny")                 # weights + tokenizer
    alpha = build_lora_adapter(model, tmp_path / "alpha")        # a rank-8 adapter
    both = build_tiny_model_with_adapters(tmp_path, ["a", "b"])  # model + adapters

The adapters are made with `peft` and `init_lora_weights=False`, so their B matrices are not
zero and they really change the model's output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HIDDEN_SIZE = 128
NUM_HEADS = 2
NUM_KV_HEADS = 1
NUM_LAYERS = 2
INTERMEDIATE_SIZE = 256
VOCAB_SIZE = 384  # 256 byte symbols + merges + special tokens
MAX_POSITIONS = 2048
DEFAULT_LORA_RANK = 8
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")

BOS, EOS, PAD = "<s>", "</s>", "<pad>"

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

_CORPUS = (
    "The quick brown fox jumps over the lazy dog.",
    "Hoist serves base models and LoRA adapters behind one gateway.",
    "The capital of France is Paris, and the capital of Italy is Rome.",
    "Tokens stream one by one from the engine to the client.",
    "A prefix cache keeps the keys and values of prompts it has seen.",
    "Hello, how are you today? I am fine, thank you very much.",
    "Once upon a time there was a small model that answered every question.",
    "user assistant system: what is the answer? The answer is forty two.",
)


@dataclass(frozen=True)
class TinyModel:
    """A tiny model on disk: the folder vLLM's `--model` takes, and its adapters by name."""

    path: Path
    adapters: dict[str, Path] = field(default_factory=dict)


def _train_tokenizer(dest: Path) -> tuple[int, dict[str, int]]:
    """Train a byte-level BPE tokenizer on the corpus, save it (HF format) into `dest`.

    Returns the tokenizer's vocabulary size and the ids of its special tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(_CORPUS) * 4, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=MAX_POSITIONS,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    wrapped.save_pretrained(str(dest))
    special: dict[str, int] = {}
    for token in (BOS, EOS, PAD):
        token_id = tokenizer.token_to_id(token)
        assert token_id is not None, f"{token} missing from the trained vocabulary"
        special[token] = int(token_id)
    return int(tokenizer.get_vocab_size()), special


def build_tiny_model(dest: Path, *, seed: int = 0) -> TinyModel:
    """Write a random tiny `LlamaForCausalLM` with its tokenizer into `dest` (created)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    dest.mkdir(parents=True, exist_ok=True)
    vocab_size, added = _train_tokenizer(dest)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_KV_HEADS,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=added[BOS],
        eos_token_id=added[EOS],
        pad_token_id=added[PAD],
        tie_word_embeddings=False,
        dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(dest), safe_serialization=True)
    return TinyModel(path=dest)


def build_lora_adapter(
    model: TinyModel,
    dest: Path,
    *,
    rank: int = DEFAULT_LORA_RANK,
    seed: int = 1,
    target_modules: Sequence[str] = LORA_TARGET_MODULES,
) -> Path:
    """Write a LoRA adapter for `model` into `dest` (adapter_config.json + safetensors).

    `init_lora_weights=False` keeps peft's random B matrices, so the adapter changes outputs.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    base = LlamaForCausalLM.from_pretrained(str(model.path))
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=list(target_modules),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        init_lora_weights=False,
    )
    peft_model = get_peft_model(base, config)
    dest.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(dest), safe_serialization=True)
    # peft records the base model's path; make it the real folder so vLLM can check it.
    config_path = dest / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text())
    adapter_config["base_model_name_or_path"] = str(model.path)
    config_path.write_text(json.dumps(adapter_config, indent=2))
    return dest


def build_tiny_model_with_adapters(
    root: Path,
    adapter_names: Sequence[str] = ("alpha", "beta"),
    *,
    rank: int = DEFAULT_LORA_RANK,
    seed: int = 0,
) -> TinyModel:
    """Build the model under `root/model` and one adapter per name under `root/adapters/`."""
    model = build_tiny_model(root / "model", seed=seed)
    adapters = {
        name: build_lora_adapter(model, root / "adapters" / name, rank=rank, seed=seed + 1 + index)
        for index, name in enumerate(adapter_names)
    }
    return TinyModel(path=model.path, adapters=adapters)
