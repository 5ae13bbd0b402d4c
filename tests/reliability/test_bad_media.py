"""Bad media: each input ends as a failed video with a reason, within the time limit and the
memory bound, and the next upload still processes. Includes a fuzz loop (fixed seed) of
random bytes after a valid header, and a hanging FFmpeg."""
from __future__ import annotations

import os
import random
import struct
import time
from pathlib import Path

import pytest

from chalicelib.failures import PUBLIC_REASONS
from tests.helpers import ffmpeg_peak_rss, wait_for_final
from tests.media import clips as make

pytestmark = pytest.mark.reliability

FUZZ_SEED = 20261121
FUZZ_CASES = 6
# Every bad input is refused by the dedup step's header probe and short decodes.
LIMIT_S = 90
# No FFmpeg child may need more on bad media: the smallest FFmpeg function's memory (2,048 MB, the
# clips steps; dedup runs at 10,240 MB for its vCPUs) with room to spare.
MEMORY_BOUND_MB = 1024


def _boxes(data: bytes) -> list[tuple[int, str]]:
    """(offset, type) of the top-level MP4 boxes."""
    out, i = [], 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        out.append((i, kind.decode("latin-1")))
        i += size or len(data)
    return out


def fuzzed(base: Path, folder: Path) -> list[Path]:
    """Random bytes after a valid header: cut after ftyp, after moov, and a third into the frames."""
    data = base.read_bytes()
    boxes = dict((kind, off) for off, kind in _boxes(data))
    cuts = [boxes["moov"], boxes["mdat"] + 8, boxes["mdat"] + 8 + (len(data) - boxes["mdat"]) // 3]
    rng = random.Random(FUZZ_SEED)
    out = []
    for n in range(FUZZ_CASES):
        cut = cuts[n % len(cuts)]
        path = folder / f"fuzz-{n}.mp4"
        path.write_bytes(data[:cut] + rng.randbytes(len(data) - cut))
        out.append(path)
    return out


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad-media")
    valid = make.make_clip(d / "valid.mp4", scene="testsrc2", duration=3.0, size=(320, 180), seed=5,
                           extra=("-movflags", "+faststart"))
    inputs = {
        "truncated mp4": make.truncated(valid, d / "truncated.mp4", keep=0.4),
        "text renamed .mp4": make.text_as_mp4(d / "text.mp4"),
        "image (png) as .mp4": make.png_image(d / "image.mp4"),
        "audio only": make.audio_only(d / "audio.mp4"),
        "1x1 video": make.tiny_video(d / "tiny.avi"),
        "header claiming 100000x100000": make.huge_dimensions_y4m(d / "huge.mp4", 100_000, 100_000),
        "10-hour duration claim": make.ten_hour_claim(d / "tenhours.mp4"),
        "HLS playlist as .mp4": make.hls_playlist(d / "playlist.mp4", ["file:///etc/passwd"]),
        "concat list as .mp4": make.concat_list(d / "concat.mp4", ["/etc/passwd"]),
        "SDP file as .mp4": make.sdp_session(d / "session.mp4", 5004),
    }
    for n, path in enumerate(fuzzed(valid, d)):
        inputs[f"fuzz {n}: random bytes after a valid header"] = path
    return inputs


def test_bad_media_fails_with_a_reason_and_the_next_upload_processes(crew, bad_inputs, clips, figures):
    with ffmpeg_peak_rss() as peak:
        uploaded = {name: (crew(path), time.monotonic()) for name, path in bad_inputs.items()}
        slowest = 0.0
        for name, (vid, t0) in uploaded.items():
            row = wait_for_final(vid, LIMIT_S)
            took = time.monotonic() - t0
            slowest = max(slowest, took)
            assert row["status"] == "failed", (name, row["status"])
            assert row["failed_stage"] == "dedup", name
            assert row["failure_reason"] and len(row["failure_reason"]) > 10, (name, row["failure_reason"])
            assert row["failure_public"] in PUBLIC_REASONS, (name, row["failure_public"])
            if name.endswith("as .mp4"):
                assert row["failure_public"] == "not a video file", name
            assert took <= LIMIT_S, name
    assert peak["seen"] > 0                     # the sampler did see the probes' FFmpeg
    assert peak["mb"] < MEMORY_BOUND_MB
    nxt = crew(clips[0])
    assert wait_for_final(nxt, 120)["status"] == "complete"
    figures.counts["bad_inputs_tried"] += len(bad_inputs)
    figures.values["bad_input_slowest_s"] = round(slowest, 1)
    figures.values["ffmpeg_peak_rss_mb"] = round(peak["mb"], 1)


def test_a_hanging_ffmpeg_fails_the_video_and_the_next_upload_processes(crew, long_clip, clips, figures):
    """'Hanging' here: FFmpeg does not finish within its wall-clock limit. The bundled FFmpeg
    (9.x) refuses the classic stalling inputs (self-referencing concat lists, playlists to
    unresponsive hosts) up front, so the limit is lowered (FFMPEG_MAX_SECONDS) below what this
    10 s 720p clip needs; the same kill path runs as for a real stall."""
    os.environ["FFMPEG_MAX_SECONDS"] = "0.3"
    try:
        vid = crew(long_clip)
        t0 = time.monotonic()
        row = wait_for_final(vid, LIMIT_S)
    finally:
        del os.environ["FFMPEG_MAX_SECONDS"]
    assert row["status"] == "failed" and "timed out" in row["failure_reason"], row["failure_reason"]
    assert time.monotonic() - t0 < LIMIT_S
    nxt = crew(clips[1])
    assert wait_for_final(nxt, 120)["status"] == "complete"
    figures.counts["bad_inputs_tried"] += 1


@pytest.mark.attack
def test_an_empty_upload_never_reaches_the_pipeline(client, crew, figures):
    """Zero bytes: the API refuses size_bytes 0, and storage refuses an empty body against a
    declared size (the presigned PUT signs Content-Length), so no step ever sees it."""
    import requests

    from tests.helpers import call, video_row
    from tests.reliability.conftest import new_video
    status, body = call(client, "POST", f"/streams/{crew.stream['id']}/videos", crew.me,
                        {"filename": "zero.mp4", "size_bytes": 0, "content_type": "video/mp4"})
    assert status == 400 and "size_bytes must be greater than 0" in body["details"]
    created = new_video(client, crew.me, crew.stream, "zero.mp4", 1)
    put = requests.put(created["upload_url"], data=b"",
                       headers={**created["upload_headers"], "Content-Type": "video/mp4"}, timeout=30)
    assert put.status_code == 403 and "SignatureDoesNotMatch" in put.text
    time.sleep(1)
    row = video_row(created["id"])
    assert (row["status"], row["processing_index"]) != ("failed", -1) and row["processing_index"] == 1
    figures.counts["bad_inputs_tried"] += 1
