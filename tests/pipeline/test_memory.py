"""Memory: the one Lambda limit the local stack cannot enforce (every function shares its process).

A 1080p upload goes through the whole pipeline while the FFmpeg processes the steps start are
sampled; the peak must leave the smallest FFmpeg-running function (the clips steps, 2048 MB in
.chalice/config.json; dedup runs at 10,240 MB for its vCPUs) room for its Python side.
"""
from __future__ import annotations

import json

import psutil
import pytest

from tests.helpers import ffmpeg_peak_rss, new_video, put_bytes, wait_for_final

pytestmark = pytest.mark.slow

PYTHON_SIDE_MB = 400   # the step's interpreter, numpy and the fingerprint arrays (measured ~250 MB)


def _smallest_ffmpeg_function_mb() -> int:
    from pathlib import Path
    config = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())
    ffmpeg_steps = ("pipeline_dedup", "pipeline_transcode", "pipeline_transcribe", "clips_generate_moments",
                    "clips_extract_clip")
    return min(config["lambda_functions"][name]["lambda_memory_size"] for name in ffmpeg_steps)


def test_a_1080p_upload_stays_inside_the_functions_memory(client, sign_in, make_stream, tmp_path):
    from tests.media.clips import make_clip
    clip = make_clip(tmp_path / "hd.mp4", scene="testsrc2", duration=8.0, size=(1920, 1080), seed=5)
    data = clip.read_bytes()
    me = sign_in()
    stream = make_stream({"id": me["user"]["id"]})
    rss_before = psutil.Process().memory_info().rss / 2**20
    with ffmpeg_peak_rss() as peak:
        created = new_video(client, me, stream, "hd.mp4", len(data))
        put_bytes(created, data)
        row = wait_for_final(created["id"], 300)
    assert row["status"] == "complete", row["failure_reason"]
    budget = _smallest_ffmpeg_function_mb() - PYTHON_SIDE_MB
    print(f"FFmpeg peak RSS {peak['mb']:.0f} MB over {peak['seen']} processes; budget {budget} MB; "
          f"test process grew {psutil.Process().memory_info().rss / 2**20 - rss_before:.0f} MB")
    assert peak["seen"] >= 3
    assert 0 < peak["mb"] < budget
