"""What importing the API costs a cold start: heavy libraries stay out of `import app`.

Every Lambda of the app (API routes, upload trigger, pipeline steps) loads
app.py at init, and bench/run.py holds its import time to 1.3 x boto3's.
This is the structural side of that budget: a fresh interpreter imports app
and the modules that cost tens of milliseconds (or whole models) must not be
loaded yet. Timing is left to the benchmark.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Loaded only where they are used: pipeline handlers (media, models), the sign-in
# route (google-auth and its crypto), the first log line or metric (powertools).
HEAVY = (
    "numpy", "onnxruntime", "faster_whisper", "ctranslate2", "imageio_ffmpeg", "PIL",
    "cryptography", "jwt", "google.auth", "google.oauth2", "requests",
    "aws_lambda_powertools",
)


def _modules_after_import_app() -> set[str]:
    code = "import json, sys; import app; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_LAMBDA_FUNCTION_NAME": "clipstream-api"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def loaded() -> set[str]:
    return _modules_after_import_app()


@pytest.mark.parametrize("module", HEAVY)
def test_importing_the_api_leaves_heavy_modules_unloaded(loaded, module):
    assert module not in loaded, f"import app loads {module}: import it where it is used"


def test_the_check_sees_what_app_does_import(loaded):
    # Guards the test itself: the subprocess really imported the API.
    assert {"app", "chalice", "chalicelib.api.videos", "chalicelib.db"} <= loaded
