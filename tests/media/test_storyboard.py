"""Scrub-bar previews: the plan, the sheets made in the ladder's decode, the WebVTT thumbnails track."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chalicelib.media import storyboard
from chalicelib.media.ffmpeg import run_ffmpeg
from chalicelib.media.hls import SideOutputs, transcode_hls
from chalicelib.media.probe import probe
from tests.media import clips


def test_interval_grows_with_duration() -> None:
    assert storyboard.interval_for(9) == 1
    assert storyboard.interval_for(200) == 1
    assert storyboard.interval_for(201) == 2
    assert storyboard.interval_for(600) == 5
    assert storyboard.interval_for(3600) == 30
    assert storyboard.interval_for(10 * 3600) == 60
    for duration in (1, 59, 401, 1999, 5000):
        assert storyboard.plan(1920, 1080, duration).frame_count(duration) <= storyboard.MAX_FRAMES


def test_plan_keeps_the_aspect_with_even_sizes() -> None:
    assert (storyboard.plan(1920, 1080, 10).width, storyboard.plan(1920, 1080, 10).height) == (160, 90)
    portrait = storyboard.plan(1080, 1920, 10)
    assert (portrait.width, portrait.height) == (90, 160)
    odd = storyboard.plan(1111, 777, 10)
    assert odd.width % 2 == 0 and odd.height % 2 == 0


def test_cues_walk_the_sheets() -> None:
    sb = storyboard.StoryboardPlan(interval_s=2, width=160, height=90, cols=5, rows=5)
    cues = storyboard.cues(sb, 53.5)
    assert len(cues) == 27
    assert cues[0].text == "storyboard/sprite_000.jpg#xywh=0,0,160,90"
    assert cues[6].text == "storyboard/sprite_000.jpg#xywh=160,90,160,90"
    assert cues[25].text == "storyboard/sprite_001.jpg#xywh=0,0,160,90"
    assert (cues[0].start, cues[0].end) == (0.0, 2.0) and (cues[-1].start, cues[-1].end) == (52.0, 53.5)
    text = storyboard.webvtt(cues)
    assert text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nstoryboard/sprite_000.jpg#xywh=0,0,160,90\n")


@pytest.fixture(scope="module")
def made(media_dir: Path) -> tuple[Path, storyboard.StoryboardPlan, list[str], Path]:
    src = clips.make_clip(media_dir / "story.mp4", scene="testsrc2", duration=27.0, size=(640, 360))
    info = probe(src)
    sb = storyboard.plan(info.width, info.height, info.duration_s)
    out = media_dir / "hls-story"
    result = transcode_hls(src, out, info, timeout_s=120, side=SideOutputs(storyboard=sb))
    return out, sb, storyboard.finish(sb, out, result.duration_s), src


@pytest.mark.slow
def test_sheets_come_from_the_ladders_decode(made) -> None:
    out, sb, files, _ = made
    assert sb.interval_s == 1 and (sb.width, sb.height) == (160, 90)
    assert files == ["storyboard.vtt", "storyboard/sprite_000.jpg", "storyboard/sprite_001.jpg"]
    for name in files[1:]:
        with Image.open(out / name) as img:
            assert img.format == "JPEG" and img.size == (5 * 160, 5 * 90)
    cues = re.findall(r"(\S+) --> (\S+)\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)", (out / "storyboard.vtt").read_text())
    assert len(cues) == 27
    for _, _, sheet, x, y, w, h in cues:
        assert (out / sheet).exists() and int(x) + int(w) <= 800 and int(y) + int(h) <= 450


@pytest.mark.slow
def test_each_tile_shows_its_moment(made, tmp_path: Path) -> None:
    """Tile k is the frame at k * interval: compare with the source frame seeked there."""
    out, sb, _, src = made
    sheet = np.asarray(Image.open(out / "storyboard/sprite_000.jpg").convert("L"), np.float32)
    for k in (0, 7, 13, 24):
        ref = tmp_path / f"ref{k}.png"
        run_ffmpeg(["-y", "-ss", str(k * sb.interval_s), "-i", str(src), "-frames:v", "1",
                    "-vf", f"scale={sb.width}:{sb.height}:flags=area", str(ref)], timeout_s=30)
        want = np.asarray(Image.open(ref).convert("L"), np.float32)
        row, col = divmod(k, sb.cols)
        tile = sheet[row * sb.height:(row + 1) * sb.height, col * sb.width:(col + 1) * sb.width]
        others = [abs(want - sheet[r * sb.height:(r + 1) * sb.height, c * sb.width:(c + 1) * sb.width]).mean()
                  for r in range(sb.rows) for c in range(sb.cols) if (r, c) != (row, col)]
        diff = abs(want - tile).mean()
        assert diff < 8 and diff < min(others), (k, diff, min(others))
