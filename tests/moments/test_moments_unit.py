"""Moment finding and refining on a generated clip with known positions (no stack needed)."""
from __future__ import annotations

import pytest

from chalicelib.moments import analysis, detect
from chalicelib.moments.refine import on_frame_grid, refine

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def measured(highlight_clip):
    return analysis.analyse(str(highlight_clip["path"]), has_audio=True, duration=30.0, timeout_s=120)


def words_at(start: float, text: str, step: float = 0.35) -> list[dict]:
    return [{"word": w, "start": start + i * step, "end": start + i * step + step * 0.9}
            for i, w in enumerate(text.split())]


def overlap(a, b) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def test_loudness_onsets_and_quiet_stretches_are_where_the_sounds_are(measured, highlight_clip):
    loud, onset = measured.loudness, measured.onset
    at = lambda t: int(t / analysis.HOP_S)   # noqa: E731
    usual = sorted(loud)[len(loud) // 2]
    boom = highlight_clip["boom"][0]
    assert max(loud[at(boom):at(boom + 0.6)]) > usual + 10          # the explosion is loud
    assert max(onset[at(boom) - 2:at(boom) + 2]) > 20               # and sudden
    assert max(loud[at(11):at(17)]) < usual + 3                     # the quiet bed is not
    assert max(onset[at(11):at(17)]) < detect.ONSET_Z
    # Quiet stretches cover the silent parts and stop where speech starts.
    assert any(a <= 11 and b >= 17 for a, b in measured.quiet)
    start = highlight_clip["excited"][0]
    assert any(abs(b - start) < 0.3 for a, b in measured.quiet)
    assert measured.keyframes[0] == 0.0 and all(0 < k < 30 for k in measured.keyframes[1:])


def test_moments_land_on_excited_speech_and_the_explosion_not_on_calm_parts(measured, highlight_clip):
    words = words_at(6.0, "No way! That was a clutch ace, let's go!") + \
        words_at(24.0, "okay, rotating to B site now", 0.5)
    found = detect.find_moments(measured, words, 30.0)
    assert len(found) == 2, found
    speech, boom = found
    assert overlap((speech["start_time"], speech["end_time"]), highlight_clip["excited"]) >= 2.5
    assert overlap((boom["start_time"], boom["end_time"]), highlight_clip["boom"]) >= 1.0
    assert set(speech["features"]["keywords"]) >= {"no way", "clutch", "ace", "let's go"}
    assert "sudden broadband sound" in boom["reason"] and boom["title"] == "Burst of sound at 0:18"
    assert speech["title"].startswith("\u201cNo way!") and 0.4 <= boom["score"] <= speech["score"] <= 1
    for m in found:     # whole frames, inside the clip, at least MIN_LENGTH_S
        assert abs(m["start_time"] * 30 - round(m["start_time"] * 30)) < 5e-3
        assert 0 <= m["start_time"] < m["end_time"] <= 30
        assert m["end_time"] - m["start_time"] >= detect.MIN_LENGTH_S - 1e-6


def test_calm_speech_is_not_a_highlight_and_loud_voices_are_found_even_untranscribed(measured, highlight_clip):
    """Without transcript words the shouting still stands out by loudness; the calm talk never does."""
    found = detect.find_moments(measured, words_at(24.0, "okay, rotating to B site now", 0.5), 30.0)
    spans = [(m["start_time"], m["end_time"]) for m in found]
    assert all(overlap(s, highlight_clip["calm"]) == 0 for s in spans), found
    assert [m["features"]["kind"] for m in found] == ["sound", "sound"]
    assert overlap(spans[0], highlight_clip["excited"]) > 2.0


def test_keywords_are_whole_words():
    assert detect.keywords_in("LET\u2019S GO!!! what an ace") == ["let's go", "ace"]
    assert detect.keywords_in("a space race, placed") == []


def test_refine_never_cuts_words_and_moves_to_sound_edges():
    words = words_at(6.0, "no way that was clutch")      # 6.0 .. 7.715
    edges = {"duration": 30.0, "quiet": [[0.0, 5.9], [8.2, 17.9]], "keyframes": [0.0, 8.3333]}
    start, end, notes = refine(6.1, 7.5, words, edges, 30.0)
    assert start <= 6.0 - 0.1 + 1e-6 and end >= 7.715
    assert start == pytest.approx(5.9, abs=1 / 30) and end == pytest.approx(8.3333, abs=1 / 30)
    assert any("before the word" in n for n in notes)
    assert any("keyframe at 8.33" in n for n in notes)
    # A start deep inside a long quiet stretch only moves when sound is close.
    start, end, _ = refine(10.0, 14.0, [], edges, 30.0)
    assert (start, end) == (10.0, 14.0)


def test_refine_puts_both_ends_on_frames_inside_the_clip():
    start, end, _ = refine(29.5, 31.0, [], {"duration": 30.0, "quiet": [], "keyframes": []}, 30.0)
    assert 0 <= start < end <= 30.0 and end - start >= 1.0 - 1e-6
    assert on_frame_grid(1.01, 2.03, 25.0, 30.0) == (1.0, 2.04)
    assert on_frame_grid(1.0, 1.0, 25.0, 30.0) == (1.0, 1.04)
