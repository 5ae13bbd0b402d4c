"""Lambda layers and the media image's contents, built for the Lambda platform.

Each layer is a directory shaped like Lambda's /opt: python/ (on sys.path)
and models/. Wheels are the Lambda platform's (manylinux x86_64, CPython of
RUNTIME) whatever machine builds them, and builds are cached under
build/layers/<name>/, keyed by the requirement files, the spec and the models.

    python -m infra.aws.layers embed image      build (or reuse) these layers
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "layers"
MODELS = ROOT / "build" / "models"
MEDIA_REQ = "layers/media/requirements.txt"
ML_REQ = "layers/ml/requirements.txt"

# Python 3.12 is the oldest Lambda runtime on Amazon Linux 2023 (glibc 2.34).
# The pinned numpy, Pillow, onnxruntime, CTranslate2, PyAV and imageio-ffmpeg
# wheels need glibc 2.27-2.28; python3.11's Amazon Linux 2 has glibc 2.26.
PYTHON_VERSION = "3.12"
RUNTIME = f"python{PYTHON_VERSION}"
PLATFORMS = tuple(f"manylinux_2_{minor}_x86_64" for minor in range(17, 35))

# Never imported at run time: test suites, build tooling, byte code.
PRUNE = ("**/__pycache__", "*/tests", "*/*/tests", "*/*/*/tests", "numpy/f2py", "numpy/distutils",
         "onnxruntime/tools", "onnxruntime/transformers", "onnxruntime/quantization")
MODEL_FILES = ("all-MiniLM-L6-v2.onnx", "tokenizer.json")


@dataclass(frozen=True)
class Layer:
    name: str
    requirements: tuple[str, ...]     # requirement files (repo-relative)
    only: tuple[str, ...] = ()        # just these packages of the files, without dependencies
    models: bool = False              # build/models/ -> models/
    prune: tuple[str, ...] = PRUNE
    why: str = ""


LAYERS: dict[str, Layer] = {
    "embed": Layer("embed", (ML_REQ,), only=("onnxruntime", "tokenizers", "numpy"), models=True,
                   why="sentence embeddings for embed/embed_query: ONNX Runtime, tokenizers, numpy and "
                       "all-MiniLM-L6-v2 (onnxruntime's protobuf/flatbuffers/sympy are only for its tools)"),
    "image": Layer("image", (MEDIA_REQ, ML_REQ), models=True,
                   why="everything the media image adds to the app: FFmpeg (imageio-ffmpeg), numpy, Pillow, "
                       "faster-whisper + CTranslate2 + PyAV + Whisper tiny.en, ONNX Runtime + the model"),
}


def _requirement_lines(layer: Layer) -> list[str]:
    lines = []
    for rel in layer.requirements:
        for line in (ROOT / rel).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                lines.append(line)
    if layer.only:
        def name(req: str) -> str:
            return req.split("==")[0].split("[")[0].strip().lower().replace("_", "-")
        lines = [line for line in lines if name(line) in layer.only]
        missing = set(layer.only) - {name(line) for line in lines}
        if missing:
            raise ValueError(f"layer {layer.name}: {sorted(missing)} not pinned in {layer.requirements}")
    return sorted(set(lines))


def _models_digest() -> str:
    h = hashlib.sha256()
    for name in MODEL_FILES:
        stamp = MODELS / f"{name}.stamp.json"
        path = MODELS / name
        h.update(name.encode())
        h.update(stamp.read_bytes() if stamp.exists() else str(path.stat().st_size).encode())
    return h.hexdigest()


def cache_key(layer: Layer) -> str:
    """Changes when anything that decides the layer's content changes."""
    spec = {"layer": asdict(layer), "lines": _requirement_lines(layer), "python": PYTHON_VERSION,
            "platforms": PLATFORMS, "models": _models_digest() if layer.models else None}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def path(name: str) -> Path:
    return BUILD / name


def build(name: str, *, python: str = sys.executable) -> Path:
    """Build layer `name` under build/layers/ unless the cached build is current; its directory."""
    layer = LAYERS[name]
    out = path(name)
    stamp = out / ".stamp"
    key = cache_key(layer)
    if stamp.exists() and stamp.read_text() == key:
        return out
    if layer.models:
        _require_models()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    req = tmp / "requirements.txt"
    tmp.mkdir(parents=True)
    req.write_text("\n".join(_requirement_lines(layer)) + "\n")
    cmd = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile", "--no-warn-conflicts",
           "--target", str(tmp / "python"), "--only-binary=:all:", "--implementation", "cp",
           "--python-version", PYTHON_VERSION, *[a for p in PLATFORMS for a in ("--platform", p)],
           "-r", str(req)]
    if layer.only:
        cmd.append("--no-deps")
    logger.info("building layer %s", name)
    subprocess.run(cmd, check=True)
    req.unlink()
    _prune(tmp / "python", layer.prune)
    if layer.models:
        (tmp / "models").mkdir()
        for file in MODEL_FILES:
            shutil.copy2(MODELS / file, tmp / "models" / file)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    stamp.write_text(key)
    return out


def _require_models() -> None:
    missing = [f for f in MODEL_FILES if not (MODELS / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{missing} not in {MODELS}: run `make models` first")


def _prune(site: Path, patterns: tuple[str, ...]) -> None:
    for pattern in patterns:
        for hit in sorted(site.glob(pattern), reverse=True):
            if hit.is_dir():
                shutil.rmtree(hit)
            elif hit.exists():
                hit.unlink()


# ------------------------------------------------------------------ sizes

def tree_bytes(root: Path) -> int:
    """Bytes of every file under `root`, as Lambda counts them once unzipped (the stamp excluded)."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if f != ".stamp" and not p.is_symlink():
                total += p.stat().st_size
    return total


def zip_bytes(zip_path: Path) -> int:
    """Unzipped size of a deployment package."""
    with zipfile.ZipFile(zip_path) as zf:
        return sum(i.file_size for i in zf.infolist())


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for arg in sys.argv[1:] or list(LAYERS):
        built = build(arg)
        print(f"{arg}: {tree_bytes(built) / 2**20:.1f} MiB in {built.relative_to(ROOT)}")
