"""The HLS ladder: planning rules, layout, master attributes, keyframe alignment."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib.media.ffmpeg import GENERATED, run_ffmpeg
from chalicelib.media.hls import (HlsResult, parse_media_playlist, plan_ladder,
                                  transcode_hls, transcode_hls_per_rendition)
from chalicelib.media.probe import probe
from tests.media import clips


def _sizes(width: int, height: int, fps: float | None = None) -> list[tuple[str, int, int]]:
    return [(r.name, r.width, r.height) for r in plan_ladder(width, height, fps)]


def test_ladder_1080p_source_gets_four_rungs() -> None:
    assert _sizes(1920, 1080) == [("360p", 640, 360), ("480p", 854, 480), ("720p", 1280, 720),
                                  ("1080p", 1920, 1080)]


def test_ladder_never_upscales() -> None:
    assert _sizes(1280, 720) == [("360p", 640, 360), ("480p", 854, 480), ("720p", 1280, 720)]
    assert _sizes(854, 480) == [("360p", 640, 360), ("480p", 854, 480)]
    assert _sizes(640, 360) == [("360p", 640, 360)]
    assert _sizes(3840, 2160)[-1] == ("1080p", 1920, 1080)


def test_ladder_near_rung_source_keeps_its_own_size() -> None:
    assert _sizes(1920, 1072)[-1] == ("1080p", 1920, 1072)
    assert [n for n, _, _ in _sizes(1920, 900)] == ["360p", "480p", "720p"]
    assert _sizes(600, 338) == [("360p", 600, 338)]


def test_ladder_small_source_gets_one_360p_rendition_at_its_size() -> None:
    assert _sizes(320, 180) == [("360p", 320, 180)]
    assert _sizes(321, 181) == [("360p", 320, 180)]
    assert _sizes(480, 270) == [("360p", 480, 270)]


def test_ladder_portrait_uses_the_short_side() -> None:
    assert _sizes(1080, 1920) == [("360p", 360, 640), ("480p", 480, 854), ("720p", 720, 1280),
                                  ("1080p", 1080, 1920)]


def test_ladder_bitrates_grow_with_rung_and_frame_rate() -> None:
    at30 = plan_ladder(1920, 1080, 30)
    at60 = plan_ladder(1920, 1080, 60)
    assert [r.video_bitrate for r in at30] == sorted(r.video_bitrate for r in at30)
    assert all(b.video_bitrate > a.video_bitrate for a, b in zip(at30, at60, strict=True))
    assert all(r.maxrate > r.video_bitrate and r.bufsize > r.maxrate for r in at30)
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in plan_ladder(1111, 777))


@pytest.fixture(scope="module")
def hd_hls(media_dir: Path) -> tuple[Path, HlsResult]:
    src = clips.make_clip(media_dir / "hd.mp4", scene="testsrc2", duration=6.0,
                          size=(1920, 1080), fps=30)
    out = media_dir / "hls-hd"
    return out, transcode_hls(src, out, probe(src), timeout_s=120)


@pytest.mark.slow
def test_layout_matches_the_storage_reference(hd_hls: tuple[Path, HlsResult]) -> None:
    out, result = hd_hls
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert on_disk == result.files
    top = {p.name for p in out.iterdir()}
    assert top == {"360p.m3u8", "480p.m3u8", "720p.m3u8", "1080p.m3u8", "master.m3u8", "segments"}
    for name in ("360p", "480p", "720p", "1080p"):
        assert f"segments/{name}_init.mp4" in result.files
        assert f"segments/{name}_00000.m4s" in result.files
    assert result.duration_s == pytest.approx(6.0, abs=0.1)


@pytest.mark.slow
def test_master_playlist_has_every_attribute(hd_hls: tuple[Path, HlsResult]) -> None:
    out, result = hd_hls
    text = (out / "master.m3u8").read_text()
    infs = re.findall(r"#EXT-X-STREAM-INF:(.*)\n(.*)", text)
    assert [uri for _, uri in infs] == ["360p.m3u8", "480p.m3u8", "720p.m3u8", "1080p.m3u8"]
    for (attrs, _), rendition in zip(infs, result.renditions, strict=True):
        assert re.search(r"(^|,)BANDWIDTH=\d+", attrs)
        assert re.search(r"AVERAGE-BANDWIDTH=\d+", attrs)
        assert f"RESOLUTION={rendition.width}x{rendition.height}" in attrs
        assert "FRAME-RATE=30.000" in attrs
        assert re.search(r'CODECS="avc1\.64[0-9a-f]{4},mp4a\.40\.2"', attrs)
        assert rendition.bandwidth >= rendition.avg_bandwidth > 0
    assert [r.avg_bandwidth for r in result.renditions] == sorted(
        r.avg_bandwidth for r in result.renditions)


@pytest.mark.slow
def test_every_rendition_decodes(hd_hls: tuple[Path, HlsResult]) -> None:
    out, result = hd_hls
    for r in result.renditions:
        decoded = run_ffmpeg(["-v", "error", "-i", r.playlist, "-vf", "scale=16:16,format=gray",
                              "-f", "rawvideo", "pipe:1"], timeout_s=60, cwd=out, inputs=GENERATED)
        assert len(decoded.stdout) // 256 == pytest.approx(180, abs=2)
        assert decoded.stderr.strip() == ""
        info = probe(out / r.playlist, inputs=GENERATED)
        assert (info.width, info.height) == (r.width, r.height)
        assert info.has_audio and info.audio_codec == "aac"


@pytest.mark.slow
def test_keyframes_are_aligned_with_segments(hd_hls: tuple[Path, HlsResult]) -> None:
    out, result = hd_hls
    durations = {tuple(r.segment_durations) for r in result.renditions}
    assert durations == {(4.0, 2.0)}
    for r in result.renditions:
        log = run_ffmpeg(["-skip_frame", "nokey", "-i", r.playlist, "-map", "0:v",
                          "-vf", "showinfo", "-f", "null", "-"], timeout_s=60, cwd=out,
                         inputs=GENERATED).stderr
        keys = [round(float(t), 2) for t in re.findall(r"pts_time:([\d.]+)", log)]
        assert keys == [0.0, 4.0]
        init, segments = parse_media_playlist((out / r.playlist).read_text())
        for _, uri in segments:
            joined = out / f"{Path(uri).stem}.check.mp4"
            joined.write_bytes((out / init).read_bytes() + (out / uri).read_bytes())
            first = run_ffmpeg(["-i", str(joined), "-map", "0:v", "-frames:v", "1",
                                "-vf", "showinfo", "-f", "null", "-"], timeout_s=30).stderr
            joined.unlink()
            assert "iskey:1" in first and "type:I" in first


@pytest.mark.slow
def test_portrait_clip_without_audio_both_ways(media_dir: Path) -> None:
    src = clips.make_clip(media_dir / "portrait.mp4", scene="life", duration=5.0,
                          size=(180, 320), audio=False)
    info = probe(src)
    single = transcode_hls(src, media_dir / "hls-portrait", info, timeout_s=60)
    split = transcode_hls_per_rendition(src, media_dir / "hls-portrait-2", info, timeout_s=60)
    assert single.files == split.files == [
        "360p.m3u8", "master.m3u8", "segments/360p_00000.m4s", "segments/360p_00001.m4s",
        "segments/360p_init.mp4"]
    for result in (single, split):
        (r,) = result.renditions
        assert (r.width, r.height) == (180, 320)
        assert r.codecs.startswith("avc1.") and "mp4a" not in r.codecs
    assert not probe(media_dir / "hls-portrait" / "360p.m3u8", inputs=GENERATED).has_audio


@pytest.mark.slow
def test_side_outputs_come_from_the_same_decode(media_dir: Path) -> None:
    """Thumbnail candidates and the 16 kHz speech WAV are extra outputs of the ladder's process."""
    import wave

    import numpy as np

    from chalicelib.media import thumbnails
    from chalicelib.media.hls import SideOutputs

    # Black for the first 3 s (no audio in black_then_scene): add a 5 s audio bed.
    pic = clips.black_then_scene(media_dir / "side-pic.mp4", black_s=3.0, scene_s=2.0,
                                 size=(640, 360))
    bed = clips.audio_bed(media_dir / "side-bed.wav", 5.0)
    src = media_dir / "side.mp4"
    clips.ffmpeg("-i", str(pic), "-i", str(bed), "-map", "0:v", "-map", "1:a", "-c:v", "copy",
                 "-c:a", "aac", "-shortest", str(src))
    info = probe(src)
    side = SideOutputs(frames=media_dir / "side.rgb",
                       frame_times=tuple(thumbnails.candidate_times(info)),
                       frame_size=thumbnails.thumb_size(info), speech_wav=media_dir / "side.wav")
    result = transcode_hls(src, media_dir / "hls-side", info, timeout_s=60, side=side)
    w, h = side.frame_size
    assert (w, h) == (640, 360)
    assert len(result.frame_times) == len(thumbnails.CANDIDATE_POSITIONS)
    assert side.frames.stat().st_size == len(result.frame_times) * w * h * 3
    # Each raw frame is the picture at its time: black before 3 s, the scene after.
    raw = np.fromfile(side.frames, np.uint8).reshape(-1, h, w, 3)
    for t, frame in zip(result.frame_times, raw, strict=True):
        assert (frame.mean() < 5) == (t < 3.0), (t, frame.mean())
    chosen = thumbnails.best_raw_frame(side.frames, side.frame_size, result.frame_times,
                                       media_dir / "side.jpg")
    assert chosen.time_s >= 3.0 and chosen.mean_luma > thumbnails.MIN_MEAN_LUMA
    with wave.open(str(side.speech_wav)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (1, 16000, 2)
        assert wav.getnframes() / 16000 == pytest.approx(info.duration_s, abs=0.1)
    # The extra outputs stay out of the HLS tree.
    out = media_dir / "hls-side"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == result.files


@pytest.mark.slow
def test_segments_are_reported_finished_while_ffmpeg_still_runs(media_dir: Path) -> None:
    """on_segment names each segment once it is complete, before the process exits."""
    src = clips.make_clip(media_dir / "watch.mp4", scene="testsrc2", duration=14.0,
                          size=(640, 360), fps=30)
    seen: dict[str, int] = {}

    def on_segment(rel: str) -> None:
        seen[rel] = (out / rel).stat().st_size

    out = media_dir / "hls-watch"
    result = transcode_hls(src, out, probe(src), timeout_s=120, segment_s=2, on_segment=on_segment)
    segments = [f for f in result.files if f.endswith(".m4s")]
    # Segments are reported during the run, never a rendition's last (complete only when
    # ffmpeg exits: the caller takes it from the result), and whole when reported.
    lasts = {max(f for f in segments if f.startswith(f"segments/{r.name}_")) for r in result.renditions}
    assert seen and set(seen) <= set(segments) - lasts
    assert all(size == (out / rel).stat().st_size for rel, size in seen.items())
