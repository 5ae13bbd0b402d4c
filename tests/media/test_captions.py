"""Captions from word-timed transcripts: cue rules, WebVTT text, segmented WebVTT for HLS."""
from __future__ import annotations

import re

from chalicelib.media import captions


def _words(text: str, start: float = 0.0, step: float = 0.4) -> list[dict]:
    return [{"start": round(start + i * step, 3), "end": round(start + i * step + 0.3, 3), "word": w}
            for i, w in enumerate(text.split())]


def _segment(text: str, start: float = 0.0, step: float = 0.4) -> dict:
    words = _words(text, start, step)
    return {"start_s": start, "end_s": words[-1]["end"], "text": text, "words": words}


def test_a_short_segment_is_one_cue_timed_by_its_words() -> None:
    (cue,) = captions.cues_from_segments([_segment("Enemy spotted on the left", 1.0)])
    assert cue == captions.Cue(1.0, 2.9, "Enemy spotted on the left")


def test_long_speech_is_cut_into_readable_cues() -> None:
    text = " ".join(f"word{i}" for i in range(60))
    cues = captions.cues_from_segments([_segment(text, 0.0, 0.3)])
    assert len(cues) > 3
    assert " ".join(c.text.replace("\n", " ") for c in cues) == text        # nothing lost, nothing repeated
    for cue in cues:
        lines = cue.text.split("\n")
        assert len(lines) <= captions.MAX_LINES and all(len(ln) <= captions.LINE_CHARS for ln in lines)
        assert cue.end - cue.start <= captions.CUE_MAX_S + 0.3
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))          # no overlapping cues


def test_slow_speech_is_cut_by_time() -> None:
    cues = captions.cues_from_segments([_segment("one two three four five six", 0.0, 2.0)])
    assert len(cues) == 2 and cues[0].text == "one two three" and cues[1].start == 6.0


def test_silence_gives_no_cues() -> None:
    assert captions.cues_from_segments([]) == []
    assert captions.cues_from_segments([{"start_s": 0, "end_s": 1, "text": "  ", "words": []}]) == []


def test_segment_without_word_times_is_one_cue() -> None:
    (cue,) = captions.cues_from_segments([{"start_s": 2.0, "end_s": 3.5, "text": "gg", "words": []}])
    assert cue == captions.Cue(2.0, 3.5, "gg")


def test_webvtt_file_escapes_cue_text() -> None:
    text = captions.webvtt([captions.Cue(0.0, 1.25, "a --> b <i>&"), captions.Cue(3661.5, 3662.0, "late")])
    assert text.startswith("WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.250\n")
    assert "a --&gt; b &lt;i&gt;&amp;" in text
    assert "01:01:01.500 --> 01:01:02.000\nlate" in text
    assert len(re.findall("-->", text)) == 2                               # only the timing lines


def test_segmented_webvtt_repeats_cues_across_windows() -> None:
    cues = [captions.Cue(1.0, 2.0, "first"), captions.Cue(3.5, 4.5, "across"), captions.Cue(9.0, 9.5, "last")]
    seg0, seg1, seg2 = (captions.segment(cues, i) for i in range(3))
    assert all(s.startswith("WEBVTT\n" + captions.TIMESTAMP_MAP + "\n") for s in (seg0, seg1, seg2))
    assert "first" in seg0 and "across" in seg0 and "last" not in seg0
    assert "across" in seg1 and "first" not in seg1
    assert "last" in seg2 and "across" not in seg2


def test_subtitles_playlist_covers_the_duration() -> None:
    text = captions.hls_playlist(9.0, lambda i: f"s/{i}.vtt")
    durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", text)]
    assert durations == [4.0, 4.0, 1.0] and text.rstrip().endswith("#EXT-X-ENDLIST")
    assert [ln for ln in text.splitlines() if not ln.startswith("#")] == ["s/0.vtt", "s/1.vtt", "s/2.vtt"]
    assert captions.segment_count(8.0) == 2 and captions.segment_count(0.0) == 1
