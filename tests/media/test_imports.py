"""Importing the media package must not pull numpy, Pillow or imageio into a process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_media_modules_import_no_heavy_dependencies() -> None:
    code = ("import sys\n"
            "import chalicelib.media, chalicelib.media.errors, chalicelib.media.ffmpeg\n"
            "import chalicelib.media.probe, chalicelib.media.hls\n"
            "import chalicelib.media.thumbnails, chalicelib.media.fingerprint\n"
            "print(sorted(m for m in ('numpy', 'PIL', 'imageio_ffmpeg') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "[]"
