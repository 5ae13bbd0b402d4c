"""ML fixtures: the built ONNX model and generated speech/noise clips (once per session)."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.ml import clips

# Nothing may come from a model hub: make any attempt fail loudly.
os.environ["HF_HUB_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[2]
LAYER_DIR = ROOT / "layers" / "ml"

SENTENCES = [
    "We need to capture the flag before the timer runs out.",
    "Please stay behind the wall and wait for my signal.",
    "The blue team is moving to the north side of the map.",
]


def load_layer_module(name: str) -> ModuleType:
    """Import a script from layers/ml (not a package) by file path."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, LAYER_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def build_onnx() -> ModuleType:
    return load_layer_module("build_onnx")


@pytest.fixture(scope="session")
def onnx_model(build_onnx: ModuleType) -> Path:
    """The ONNX encoder where chalicelib.ml.embed reads it, built if missing or stale."""
    from chalicelib.ml import embed

    path = embed.model_path()
    build_onnx.build(path)
    return path


@pytest.fixture(scope="session")
def ml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ml")


@pytest.fixture(scope="session")
def speech_clip(ml_dir: Path) -> clips.SpeechClip:
    """~20 s MP4: 3 s of game noise, then three sentences over noise, beeps and explosions."""
    return clips.speech_clip(ml_dir / "speech.mp4", SENTENCES)


@pytest.fixture(scope="session")
def noise_clip(ml_dir: Path) -> Path:
    """10 s of game noise with beeps and explosions, no speech."""
    return clips.write_wav(ml_dir / "noise.wav", clips.game_noise(10.0, seed=3, level=0.08))
