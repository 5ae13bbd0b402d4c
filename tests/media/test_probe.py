"""probe, check_limits and verify_decodable on good and bad inputs."""
from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.media.errors import InvalidMediaError, MediaTimeoutError
from chalicelib.media.probe import check_limits, probe, verify_decodable
from tests.media import clips


def test_probe_reads_the_headers(small_clip: Path) -> None:
    info = probe(small_clip)
    assert info.duration_s == pytest.approx(4.0, abs=0.1)
    assert (info.width, info.height) == (320, 180)
    assert info.fps == pytest.approx(30)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.has_video and info.has_audio
    assert info.size_bytes == small_clip.stat().st_size
    assert "mp4" in info.format_name
    assert info.bitrate and info.bitrate > 0
    check_limits(info)
    verify_decodable(small_clip, duration_s=info.duration_s)


def test_probe_without_audio(silent_clip: Path) -> None:
    info = probe(silent_clip)
    assert info.has_video and not info.has_audio and info.audio_codec is None


def test_probe_webm_vp9_opus(media_dir: Path) -> None:
    clip = clips.make_clip(media_dir / "probe.webm", duration=2.0, vcodec="libvpx-vp9")
    info = probe(clip)
    assert (info.video_codec, info.audio_codec) == ("vp9", "opus")
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    check_limits(info)


def _refused(path: Path, **limits) -> str:
    with pytest.raises(InvalidMediaError) as err:
        check_limits(probe(path), **limits)
    return err.value.reason


def test_zero_bytes(tmp_path: Path) -> None:
    assert "empty" in _refused(clips.zero_bytes(tmp_path / "empty.mp4"))


def test_text_renamed_mp4(tmp_path: Path) -> None:
    assert "not a readable media file" in _refused(clips.text_as_mp4(tmp_path / "text.mp4"))


def test_png_image(tmp_path: Path) -> None:
    assert "still image" in _refused(clips.png_image(tmp_path / "image.png"))


def test_png_image_renamed_mp4(tmp_path: Path) -> None:
    assert "still image" in _refused(clips.png_image(tmp_path / "image.mp4"))


def test_audio_only(tmp_path: Path) -> None:
    assert "audio file" in _refused(clips.audio_only(tmp_path / "audio.m4a"))


def test_one_pixel_video(tmp_path: Path) -> None:
    assert "1x1 are too small" in _refused(clips.tiny_video(tmp_path / "tiny.mkv"))


def test_truncated_mp4_without_moov(small_clip: Path, tmp_path: Path) -> None:
    reason = _refused(clips.truncated(small_clip, tmp_path / "cut.mp4"))
    assert "moov atom not found" in reason


def test_truncated_faststart_mp4_fails_the_decode_check(small_clip: Path, tmp_path: Path) -> None:
    faststart = tmp_path / "fast.mp4"
    clips.ffmpeg("-i", str(small_clip), "-c", "copy", "-movflags", "+faststart", str(faststart))
    cut = clips.truncated(faststart, tmp_path / "fastcut.mp4", keep=0.5)
    info = probe(cut)  # the headers are intact...
    check_limits(info)
    with pytest.raises(InvalidMediaError) as err:  # ...the end is not
        verify_decodable(cut, duration_s=info.duration_s)
    assert "at the end" in err.value.reason


def test_header_claiming_huge_dimensions(tmp_path: Path) -> None:
    reason = _refused(clips.huge_dimensions_avi(tmp_path / "big.avi", 16000, 16000))
    assert "16000x16000 are too large" in reason


def test_header_claiming_absurd_dimensions(tmp_path: Path) -> None:
    # FFmpeg's AVI demuxer drops a size past its own limit: the bomb arrives without dimensions.
    reason = _refused(clips.huge_dimensions_avi(tmp_path / "bomb.avi", 100000, 100000))
    assert reason == "the video dimensions are unknown"


def test_a_raw_y4m_stream_is_not_an_accepted_container(tmp_path: Path) -> None:
    # A Y4M header claiming a huge frame never reaches the decoder: the demuxer is refused.
    reason = _refused(clips.huge_dimensions_y4m(tmp_path / "bomb.mp4", 100000, 100000))
    assert reason == "not a video file: a raw YUV4MPEG stream, not MP4/MOV, AVI, Matroska or WebM"


def test_ten_hour_duration_claim(tmp_path: Path) -> None:
    path = clips.ten_hour_claim(tmp_path / "long.mp4")
    assert path.stat().st_size < 100_000
    assert "10:00:00 long" in _refused(path)


def test_too_big_and_too_long_limits(small_clip: Path) -> None:
    info = probe(small_clip)
    with pytest.raises(InvalidMediaError, match="over the 0 MiB limit"):
        check_limits(info, max_bytes=1000)
    with pytest.raises(InvalidMediaError, match="over the 0:02 limit"):
        check_limits(info, max_duration_s=2)


def test_a_hanging_input_hits_the_timeout(tmp_path: Path) -> None:
    with pytest.raises(MediaTimeoutError):
        probe(clips.fifo(tmp_path / "never.mp4"), timeout_s=1)
