"""A plain numpy forward pass of BERT + mean pooling + L2 norm (float64).

Written from the BERT paper / Hugging Face BertModel semantics, independently of
the ONNX graph builder, so the two can check each other. Slow; for verification.
"""
from __future__ import annotations

import math

import numpy as np


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _gelu(x: np.ndarray) -> np.ndarray:
    # The exact (erf) GELU that BERT's "gelu" activation means.
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _linear(x: np.ndarray, weights: dict, name: str) -> np.ndarray:
    # torch.nn.Linear stores weight as [out, in].
    return x @ weights[f"{name}.weight"].T + weights[f"{name}.bias"]


def bert_sentence_embeddings(input_ids: np.ndarray, attention_mask: np.ndarray,
                             weights: dict[str, np.ndarray], config: dict) -> np.ndarray:
    """Mean-pooled, L2-normalised last hidden states: [batch, hidden] float64."""
    w = {k: v.astype(np.float64) for k, v in weights.items() if v.dtype.kind == "f"}
    eps = float(config["layer_norm_eps"])
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    head_dim = hidden // heads
    batch, seq = input_ids.shape

    x = (w["embeddings.word_embeddings.weight"][input_ids]
         + w["embeddings.position_embeddings.weight"][np.arange(seq)][None]
         + w["embeddings.token_type_embeddings.weight"][np.zeros_like(input_ids)])
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)

    mask = attention_mask.astype(np.float64)
    additive = (1.0 - mask)[:, None, None, :] * -1e9

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, seq, heads, head_dim).transpose(0, 2, 1, 3)

        q = split(_linear(x, w, f"{p}.attention.self.query"))
        k = split(_linear(x, w, f"{p}.attention.self.key"))
        v = split(_linear(x, w, f"{p}.attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + additive
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        attn = _linear(context, w, f"{p}.attention.output.dense")
        x = _layer_norm(attn + x, w[f"{p}.attention.output.LayerNorm.weight"],
                        w[f"{p}.attention.output.LayerNorm.bias"], eps)
        inter = _gelu(_linear(x, w, f"{p}.intermediate.dense"))
        out = _linear(inter, w, f"{p}.output.dense")
        x = _layer_norm(out + x, w[f"{p}.output.LayerNorm.weight"],
                        w[f"{p}.output.LayerNorm.bias"], eps)

    summed = (x * mask[:, :, None]).sum(axis=1)
    counts = np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
    pooled = summed / counts
    norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return pooled / norms
