"""A tiny CTranslate2 translation model with random weights, built on the spot for tests.

No translation model can be downloaded here, so the tests make one: a 2-layer Transformer filled
with small random weights (its output is gibberish, but real beam search with real
``target_prefix`` forcing runs on it) and a SentencePiece model trained on a few dozen generated
lines, laid out as converted OPUS-MT, M2M100 or NLLB directories are.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
import sentencepiece

#: kind -> (SentencePiece file names in the model directory, language tokens in the vocabulary).
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "marian": (("source.spm", "target.spm"), ()),
    "m2m100": (("sentencepiece.bpe.model",), ("__en__", "__es__", "__de__")),
    "nllb": (("sentencepiece.bpe.model",), ("eng_Latn", "spa_Latn", "deu_Latn")),
    "marian-multi": (("source.spm", "target.spm"), (">>spa<<", ">>deu<<")),  # like opus-mt-en-ROMANCE
}

_WORDS = (
    "hola cómo estás el gato negro duerme en la casa grande y el perro come pan "
    "hello how are you the black cat sleeps in the big house and the dog eats bread "
    "buenos días good morning gracias thank you muy bien very well nosotros vamos we go"
).split()

D_MODEL, FFN, HEADS, LAYERS = 16, 32, 2, 2


def train_spm(path: Path, *, seed: int = 0) -> None:
    """Trains a SentencePiece model (ids 0-3: <unk> <s> </s> <pad>, as Marian vocabularies have) at ``path``."""
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 9))) for _ in range(60)]
    corpus = path.with_suffix(".txt")
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(path.with_suffix("")),
        vocab_size=120,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=3,
        num_threads=1,
        minloglevel=2,
    )
    path.with_suffix(".model").replace(path)
    corpus.unlink()
    path.with_suffix(".vocab").unlink()


def _fill(spec: Any, vocabulary_size: int, rng: np.random.Generator) -> None:
    """Sets every weight of a pre-norm TransformerSpec to small random values."""

    def weight(*shape: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        return rng.normal(0.0, 0.2, size=shape).astype(np.float32)

    def linear(layer: Any, out: int, into: int) -> None:
        layer.weight, layer.bias = weight(out, into), weight(out)

    def norm(layer: Any) -> None:
        layer.gamma, layer.beta = np.ones(D_MODEL, np.float32), np.zeros(D_MODEL, np.float32)

    def attention(layer: Any, *, self_attention: bool) -> None:
        norm(layer.layer_norm)
        if self_attention:  # fused query-key-value, then the output projection
            linear(layer.linear[0], 3 * D_MODEL, D_MODEL)
            linear(layer.linear[1], D_MODEL, D_MODEL)
        else:  # query, fused key-value over the encoder's output, output projection
            linear(layer.linear[0], D_MODEL, D_MODEL)
            linear(layer.linear[1], 2 * D_MODEL, D_MODEL)
            linear(layer.linear[2], D_MODEL, D_MODEL)

    def feed_forward(layer: Any) -> None:
        norm(layer.layer_norm)
        linear(layer.linear_0, FFN, D_MODEL)
        linear(layer.linear_1, D_MODEL, FFN)

    spec.encoder.embeddings[0].weight = weight(vocabulary_size, D_MODEL)
    norm(spec.encoder.layer_norm)
    for layer in spec.encoder.layer:
        attention(layer.self_attention, self_attention=True)
        feed_forward(layer.ffn)
    spec.decoder.embeddings.weight = weight(vocabulary_size, D_MODEL)
    norm(spec.decoder.layer_norm)
    linear(spec.decoder.projection, vocabulary_size, D_MODEL)
    for layer in spec.decoder.layer:
        attention(layer.self_attention, self_attention=True)
        attention(layer.attention, self_attention=False)
        feed_forward(layer.ffn)


def build_tiny_model(directory: Path, kind: str = "marian", *, seed: int = 0) -> Path:
    """Writes a converted-model directory of ``kind`` (a key of :data:`KINDS`) into ``directory``."""
    spm_names, language_tokens = KINDS[kind]
    directory.mkdir(parents=True, exist_ok=True)
    spm_path = directory / "train.spm"
    train_spm(spm_path, seed=seed)
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(spm_path))
    vocabulary = [pieces.id_to_piece(i) for i in range(pieces.get_piece_size())] + list(language_tokens)

    spec = ctranslate2.specs.TransformerSpec.from_config(num_layers=LAYERS, num_heads=HEADS)
    _fill(spec, len(vocabulary), np.random.default_rng(seed))
    # Marian, M2M100 and NLLB conversions all start the decoder from </s>.
    spec.config.decoder_start_token = "</s>"
    spec.register_source_vocabulary(vocabulary)
    spec.register_target_vocabulary(vocabulary)
    for name in spm_names:
        spec.register_file(str(spm_path), name)
    spec.validate()
    spec.save(str(directory))
    spm_path.unlink()
    return directory
