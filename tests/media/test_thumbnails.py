"""Representative frames and the overlay images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from chalicelib.media.probe import probe
from chalicelib.media.thumbnails import (MIN_LUMA_STD, MIN_MEAN_LUMA, TEMPLATE_SIZE,
                                         duplicate_overlay, processing_overlay,
                                         representative_frame)
from tests.media import clips


def _luma(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "JPEG"
        return np.asarray(img.convert("L"), np.float32)


def test_representative_frame_skips_black(tmp_path: Path) -> None:
    src = clips.black_then_scene(tmp_path / "intro.mp4", black_s=3.0, scene_s=1.0)
    out = tmp_path / "thumb.jpg"
    chosen = representative_frame(src, probe(src), out, timeout_s=30)
    assert chosen.time_s >= 3.0
    luma = _luma(out)
    assert luma.shape == (180, 320)
    assert luma.mean() > MIN_MEAN_LUMA and luma.std() > MIN_LUMA_STD


def test_the_signature_decode_writes_the_candidates_seeking_would_pick(tmp_path: Path) -> None:
    """Dedup's overlays take their frame from the signature's decode: same choice, no seeks."""
    from chalicelib.media.fingerprint import SAMPLE_FPS, video_signature
    from chalicelib.media.thumbnails import Candidates

    src = clips.black_then_scene(tmp_path / "intro.mp4", black_s=3.0, scene_s=1.0)
    info = probe(src)
    thumbs = Candidates.of(info, tmp_path / "thumbs.rgb")
    video_signature(src, info, timeout_s=30, thumbs=thumbs)
    assert (tmp_path / "thumbs.rgb").stat().st_size == len(thumbs.picked_times(SAMPLE_FPS)) * 320 * 180 * 3
    decoded = thumbs.best(SAMPLE_FPS, tmp_path / "decoded.jpg")
    sought = representative_frame(src, info, tmp_path / "sought.jpg", timeout_s=30)
    assert decoded.time_s >= 3.0
    assert abs(decoded.time_s - sought.time_s) <= 1 / SAMPLE_FPS
    assert abs(_luma(tmp_path / "decoded.jpg").mean() - _luma(tmp_path / "sought.jpg").mean()) < 8


def test_representative_frame_is_capped_at_640_wide(media_dir: Path, tmp_path: Path) -> None:
    src = clips.make_clip(media_dir / "thumb-hd.mp4", duration=2.0, size=(1280, 720),
                          audio=False)
    out = tmp_path / "thumb.jpg"
    representative_frame(src, probe(src), out, timeout_s=30)
    assert _luma(out).shape == (360, 640)


def test_processing_overlay_without_a_frame(tmp_path: Path) -> None:
    out = tmp_path / "processing.jpg"
    processing_overlay(None, out)
    luma = _luma(out)
    assert luma.shape == (TEMPLATE_SIZE[1], TEMPLATE_SIZE[0])
    band = luma[luma.shape[0] // 2 - 5: luma.shape[0] // 2 + 5]
    assert band.max() > 200  # white text on the banner


def test_processing_overlay_over_a_frame_keeps_its_size(small_clip: Path, tmp_path: Path) -> None:
    frame = tmp_path / "frame.jpg"
    representative_frame(small_clip, probe(small_clip), frame, timeout_s=30)
    out = tmp_path / "processing.jpg"
    processing_overlay(frame, out)
    assert _luma(out).shape == _luma(frame).shape
    assert _luma(out).mean() < _luma(frame).mean()  # dimmed


def test_duplicate_overlay_is_gray_with_a_red_banner(small_clip: Path, tmp_path: Path) -> None:
    frame = tmp_path / "frame.jpg"
    representative_frame(small_clip, probe(small_clip), frame, timeout_s=30)
    out = tmp_path / "duplicate.jpg"
    duplicate_overlay(frame, out)
    with Image.open(out) as img:
        rgb = np.asarray(img.convert("RGB"), np.int16)
    h = rgb.shape[0]
    top = rgb[: h // 5]
    assert np.abs(top[..., 0] - top[..., 2]).mean() < 6  # grayed
    middle = rgb[h // 2 - 3: h // 2 + 3]
    assert (middle[..., 0] - middle[..., 2]).mean() > 60  # red banner
