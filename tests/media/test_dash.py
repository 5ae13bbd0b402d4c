"""The DASH MPD over the HLS ladder's segments: structure, timing, and that FFmpeg plays it."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chalicelib.media import dash
from chalicelib.media.ffmpeg import GENERATED, run_ffmpeg
from chalicelib.media.hls import HlsResult, parse_media_playlist, transcode_hls
from chalicelib.media.probe import probe
from tests.media import clips

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


def test_timeline_folds_equal_durations_without_drift() -> None:
    assert dash._timeline([4.0, 4.0, 4.0, 1.5]) == ['<S t="0" d="4000" r="2"/>', '<S d="1500"/>']
    assert dash._timeline([2.0]) == ['<S t="0" d="2000"/>']
    # Durations that do not fall on a millisecond: the ticks add up to the rounded total.
    ticks = dash._timeline([1.0005] * 3)
    total = sum(int(s.split('d="')[1].split('"')[0]) * (1 + int(s.split('r="')[1].split('"')[0]) if 'r="' in s else 1)
                for s in ticks)
    assert total == round(3.0015 * 1000)


def test_frame_rates_are_exact() -> None:
    assert dash._frame_rate(30.0) == "30"
    assert dash._frame_rate(29.97) == "30000/1001"
    assert dash._frame_rate(59.94) == "60000/1001"


@pytest.fixture(scope="module")
def ladder(media_dir: Path) -> tuple[Path, HlsResult]:
    src = clips.make_clip(media_dir / "dash-src.mp4", scene="testsrc2", duration=9.0, size=(854, 480))
    out = media_dir / "hls-dash"
    return out, transcode_hls(src, out, probe(src), timeout_s=120)


@pytest.mark.slow
def test_mpd_names_exactly_the_hls_segments(ladder: tuple[Path, HlsResult]) -> None:
    out, result = ladder
    name = dash.write_mpd(out, result)
    assert name == "manifest.mpd"
    root = ET.fromstring((out / name).read_text())
    assert root.get("type") == "static" and root.get("mediaPresentationDuration") == f"PT{result.duration_s:.3f}S"
    (video,) = root.findall("d:Period/d:AdaptationSet", NS)
    reps = video.findall("d:Representation", NS)
    assert [r.get("id") for r in reps] == ["360p", "480p"]
    by_name = {r.name: r for r in result.renditions}
    for rep in reps:
        rendition = by_name[rep.get("id")]
        assert (int(rep.get("width")), int(rep.get("height"))) == (rendition.width, rendition.height)
        assert int(rep.get("bandwidth")) == rendition.bandwidth and rep.get("codecs") == rendition.codecs
        init, segments = parse_media_playlist((out / rendition.playlist).read_text())
        seg_list = rep.find("d:SegmentList", NS)
        assert seg_list.find("d:Initialization", NS).get("sourceURL") == init
        uris = [s.get("media") for s in seg_list.findall("d:SegmentURL", NS)]
        assert uris == [u for _, u in segments]          # the same files: nothing encoded or stored twice
        assert all((out / u).exists() for u in uris)
        timeline = seg_list.findall("d:SegmentTimeline/d:S", NS)
        ticks = [int(s.get("d")) for s in timeline for _ in range(1 + int(s.get("r", 0)))]
        assert len(ticks) == len(uris)
        assert sum(ticks) / 1000 == pytest.approx(sum(d for d, _ in segments), abs=0.002)
    # No second copy of the media: the MPD is the only new file.
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(
        [name, "master.m3u8", *(r.playlist for r in result.renditions)])


@pytest.mark.slow
def test_ffmpeg_plays_the_mpd(ladder: tuple[Path, HlsResult]) -> None:
    out, result = ladder
    dash.write_mpd(out, result)
    info = probe(out / "manifest.mpd", inputs=GENERATED)
    assert info.has_audio and (info.width, info.height) in ((640, 360), (854, 480))
    decoded = run_ffmpeg(["-v", "error", "-i", "manifest.mpd", "-map", "0:v:0", "-f", "null", "-"],
                         timeout_s=60, cwd=out, inputs=GENERATED)
    assert not decoded.stderr.strip()


def test_captions_adaptation_set_only_when_asked(ladder: tuple[Path, HlsResult]) -> None:
    out, result = ladder
    without = ET.fromstring(dash.build_mpd(out, result))
    assert len(without.findall("d:Period/d:AdaptationSet", NS)) == 1
    with_captions = ET.fromstring(dash.build_mpd(out, result, captions="captions.vtt"))
    text = with_captions.findall("d:Period/d:AdaptationSet", NS)[1]
    assert text.get("contentType") == "text" and text.get("mimeType") == "text/vtt"
    assert text.find("d:Representation/d:BaseURL", NS).text == "captions.vtt"
