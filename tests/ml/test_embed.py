"""The ONNX sentence encoder against an independent numpy BERT, and on meaning."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chalicelib.ml import embed
from tests.ml.conftest import ROOT, load_layer_module

SENTENCES = [
    "gg",
    "That was an insane headshot from across the map!",
    "Reload, reload, they're pushing B site right now.",
    "Can anyone hear me? My microphone keeps cutting out during the boss fight, "
    "so I'll type in chat instead until the next checkpoint.",
    "¿Dónde está el francotirador? 敵はどこ?",
]


@pytest.fixture(scope="module")
def encoder(onnx_model: Path) -> embed.TextEncoder:
    return embed.get_encoder()


def test_onnx_agrees_with_numpy_reference(encoder: embed.TextEncoder) -> None:
    reference = load_layer_module("bert_reference")
    weights = load_layer_module("minilm_weights")
    tensors, config = weights.load_weights(), weights.load_config()
    # Batched with padding and length sorting (the runtime path) ...
    got = encoder.encode(SENTENCES, batch_size=3)
    want = np.concatenate([
        # ... against one unpadded sentence at a time in float64.
        reference.bert_sentence_embeddings(np.array([e.ids], np.int64),
                                           np.array([e.attention_mask], np.int64),
                                           tensors, config)
        for e in encoder.tokenizer.encode_batch(SENTENCES)])
    max_abs = float(np.abs(got - want).max())
    cosine = float(np.min(np.sum(got * want, axis=1)))
    print(f"ONNX vs numpy reference: max abs diff {max_abs:.2e}, min cosine {cosine:.8f}")
    assert max_abs < 1e-4
    assert cosine > 0.9999


def test_encode_shape_dtype_norm_and_order(encoder: embed.TextEncoder) -> None:
    batch = encoder.encode(SENTENCES, batch_size=2)
    assert batch.shape == (len(SENTENCES), embed.DIM) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([encoder.encode([s])[0] for s in SENTENCES])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)
    assert embed.encode([]).shape == (0, embed.DIM)


def test_long_text_is_truncated_not_rejected(encoder: embed.TextEncoder) -> None:
    long_text = "push mid " * 2000
    assert len(encoder.tokenizer.encode(long_text).ids) == embed.MAX_TOKENS
    np.testing.assert_allclose(
        encoder.encode([long_text])[0], encoder.encode([long_text + " and then some"])[0],
        atol=1e-6)


def test_paraphrases_are_closer_than_unrelated_text(encoder: embed.TextEncoder) -> None:
    pairs = [
        ("The sniper is hiding on the roof.", "There's a sniper camping up on the rooftop.",
         "I had pasta for dinner yesterday."),
        ("We won the match!", "Victory, we beat the other team!",
         "The stock market fell sharply this morning."),
        ("My internet connection keeps lagging.", "The game is lagging because of my wifi.",
         "Plant the bomb at site A."),
    ]
    vectors = encoder.encode([t for triple in pairs for t in triple]).reshape(3, 3, embed.DIM)
    for (text, _, _), (a, para, other) in zip(pairs, vectors, strict=True):
        close, far = float(a @ para), float(a @ other)
        print(f"{text!r}: paraphrase {close:.3f}, unrelated {far:.3f}")
        assert close > 0.5
        assert close > far + 0.3


def test_importing_ml_modules_loads_no_runtime() -> None:
    code = ("import sys, chalicelib.ml.embed, chalicelib.ml.transcribe; "
            "heavy = {'onnxruntime', 'faster_whisper', 'ctranslate2', 'tokenizers', 'av'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=60).stdout.strip()
    assert out == "[]"
