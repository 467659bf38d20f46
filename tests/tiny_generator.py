"""A tiny CTranslate2 chat model with random weights, built on the spot for tests.

No language model can be downloaded here, so the tests make one the way
``ct2-transformers-converter --copy_files tokenizer.json tokenizer_config.json`` lays out a
converted Qwen2.5-Instruct: a decoder-only Transformer with Qwen2's architecture (pre-norm RMSNorm,
rotary positions, grouped-query attention with biased query/key/value, SiLU-gated feed-forward)
filled with small random weights, no torch involved; a byte-level BPE ``tokenizer.json`` trained
with the ``tokenizers`` library on a few lines, with ChatML's special tokens; and a
``tokenizer_config.json`` with a ChatML chat template. The model's answers are gibberish, but real
greedy generation with a cached static prompt and ChatML end tokens runs on it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ctranslate2.specs import common_spec, transformer_spec
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
D_MODEL, HEADS, KV_HEADS, FFN, LAYERS = 32, 4, 2, 64, 2

#: Qwen2.5-Instruct's template, shortened (no tools): ChatML with a default system turn.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
#: A Llama 3 style template: not ChatML.
LLAMA3_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}"
)

_CORPUS = [
    "You write meeting notes from a transcript. Each line starts with a tag in square brackets.",
    "SUMMARY | 00:12 | - | The team discussed the budget for the next quarter.",
    "DECISION | 02:00 | - | Approve the plan and keep the old supplier.",
    "ACTION | 01:03 | S2 | Send the report on Friday.",
    "[00:12 S1] We need to finish the budget before the meeting with the client.",
    "[01:03 S2] I'll send the report on Friday, and Maria will call the supplier.",
    "[1:02:05 S3] Enviaré el informe el viernes y llamaremos al proveedor mañana.",
    "Transcript: Example notes: write the notes in English, Spanish or German. If there is nothing, write NONE.",
]


def train_tokenizer(corpus: Sequence[str] = _CORPUS, *, vocab_size: int = 600) -> Tokenizer:
    """A byte-level BPE tokenizer (Qwen's kind: any text encodes) with ChatML's special tokens first,
    trained on ``corpus``."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(corpus) * 3, trainer)
    return tokenizer


def _fill(spec: Any, vocabulary_size: int, rng: np.random.Generator) -> None:
    """Sets every weight of a Qwen2-like decoder to small random values (RMSNorm has no beta)."""

    def weight(*shape: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        return rng.normal(0.0, 0.2, size=shape).astype(np.float32)

    def norm(layer: Any) -> None:
        layer.gamma = np.ones(D_MODEL, np.float32)

    head = D_MODEL // HEADS
    decoder = spec.decoder
    decoder.scale_embeddings = False
    decoder.embeddings.weight = weight(vocabulary_size, D_MODEL)
    norm(decoder.layer_norm)
    decoder.projection.weight = weight(vocabulary_size, D_MODEL)
    for layer in decoder.layer:
        norm(layer.self_attention.layer_norm)
        # Fused query + key + value (fewer key/value heads than query heads), then the output.
        layer.self_attention.linear[0].weight = weight(D_MODEL + 2 * KV_HEADS * head, D_MODEL)
        layer.self_attention.linear[0].bias = weight(D_MODEL + 2 * KV_HEADS * head)
        layer.self_attention.linear[1].weight = weight(D_MODEL, D_MODEL)
        norm(layer.ffn.layer_norm)
        layer.ffn.linear_0.weight = weight(FFN, D_MODEL)  # gate (SiLU)
        layer.ffn.linear_0_noact.weight = weight(FFN, D_MODEL)  # up
        layer.ffn.linear_1.weight = weight(D_MODEL, FFN)  # down


def build_tiny_generator(
    directory: Path,
    *,
    template: str | None = CHATML_TEMPLATE,
    tokenizer_config: bool = True,
    model_max_length: int = 4096,
    seed: int = 0,
) -> Path:
    """Writes a converted chat-model directory into ``directory``: ``model.bin``, ``config.json``,
    ``vocabulary.json``, ``tokenizer.json`` and (unless ``tokenizer_config`` is False)
    ``tokenizer_config.json`` with ``template`` as its chat template."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    by_id = sorted(tokenizer.get_vocab(with_added_tokens=True).items(), key=lambda item: item[1])
    vocabulary = [token for token, _ in by_id]

    spec = transformer_spec.TransformerDecoderModelSpec.from_config(
        LAYERS,
        HEADS,
        activation=common_spec.Activation.SWISH,
        pre_norm=True,
        ffn_glu=True,
        rms_norm=True,
        rotary_dim=0,
        rotary_interleave=False,
        num_heads_kv=KV_HEADS,
    )
    _fill(spec, len(vocabulary), np.random.default_rng(seed))
    # What the converter's Qwen2 loader writes: no BOS token, so the pad token stands in.
    spec.config.bos_token = "<|endoftext|>"
    spec.config.eos_token = "<|im_end|>"
    spec.config.unk_token = ""
    spec.config.layer_norm_epsilon = 1e-6
    spec.register_vocabulary(vocabulary)
    spec.validate()
    spec.save(str(directory))

    tokenizer.save(str(directory / "tokenizer.json"))
    if tokenizer_config:
        config: dict[str, Any] = {
            "added_tokens_decoder": {
                str(tokenizer.token_to_id(token)): {"content": token, "special": True} for token in SPECIAL_TOKENS
            },
            "bos_token": None,
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "model_max_length": model_max_length,
            "tokenizer_class": "Qwen2Tokenizer",
        }
        if template is not None:
            config["chat_template"] = template
        (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return directory
