"""Refining a moment's boundaries: never cut a word, start on the sound, end as it fades, cut on keyframes.

Pure and light (the API runs it): it needs the transcript's word times and the
edges the generation step stored (quiet stretches, keyframe times, duration),
not the media. Each rule that moves a boundary says so in `adjustments`.

1. A boundary inside a word moves out of it (before the word / after it).
2. The start moves to where sound begins: out of a quiet stretch it sits in,
   or back to the end of the quiet stretch just before it (up to 1 s), so the
   onset is in the clip. The end moves to where sound fades: back out of
   trailing quiet, or on to the next quiet stretch (up to 1.5 s), so the tail
   of a sound or sentence is kept.
3. A keyframe within 0.3 s is preferred as the cut point when it does not cut
   a word: shot changes in game captures (x264 puts keyframes there) make
   clean cuts, and a cut on a keyframe can be served by copying packets.
4. Both ends go to whole frames.
"""
from __future__ import annotations

from typing import Any

ONSET_PAD_S = 0.2        # keep this much before the sound starts
FADE_PAD_S = 0.3         # keep this much after it stops
WORD_PAD_S = 0.1
LOOK_BACK_S = 1.0
LOOK_AHEAD_S = 1.5
KEYFRAME_SNAP_S = 0.3
MIN_LENGTH_S = 1.0


def refine(start: float, end: float, words: list[dict], edges: dict[str, Any],
           fps: float | None) -> tuple[float, float, list[str]]:
    """(start, end, adjustments) of a moment moved to speech/sound edges and keyframes."""
    duration = float(edges.get("duration") or end)
    quiet = [(float(a), float(b)) for a, b in edges.get("quiet") or []]
    keyframes = [float(k) for k in edges.get("keyframes") or []]
    notes: list[str] = []
    start, end = _out_of_words(start, end, words, notes)
    start = _start_on_sound(start, quiet, notes)
    end = _end_after_sound(end, quiet, notes)
    start, end = _out_of_words(start, end, words, notes)
    start = _snap_keyframe(start, keyframes, words, "start", notes)
    end = _snap_keyframe(end, keyframes, words, "end", notes)
    start, end = max(0.0, start), min(duration, end)
    if end - start < MIN_LENGTH_S:
        end = min(duration, start + MIN_LENGTH_S)
        start = max(0.0, end - MIN_LENGTH_S)
    start, end = on_frame_grid(start, end, fps, duration)
    return start, end, notes


def on_frame_grid(start: float, end: float, fps: float | None, duration: float) -> tuple[float, float]:
    """Times moved to whole frames (when the frame rate is known), inside the clip."""
    if not fps:
        return round(start, 3), round(end, 3)
    first, stop = int(round(start * fps)), int(round(end * fps))
    if duration:
        stop = min(stop, int(duration * fps + 1e-6))
    stop = max(stop, first + 1)
    return round(first / fps, 4), round(stop / fps, 4)


def _inside(t: float, w: dict) -> bool:
    return w["start"] < t < w["end"]


def _out_of_words(start: float, end: float, words: list[dict], notes: list[str]) -> tuple[float, float]:
    for w in words:
        if _inside(start, w):
            start = w["start"] - WORD_PAD_S
            notes.append(f"start moved before the word \u201c{w['word'].strip()}\u201d")
        if _inside(end, w):
            end = w["end"] + WORD_PAD_S
            notes.append(f"end moved after the word \u201c{w['word'].strip()}\u201d")
    return start, end


def _start_on_sound(start: float, quiet: list[tuple[float, float]], notes: list[str]) -> float:
    for a, b in quiet:
        if a <= start < b and b - start <= LOOK_AHEAD_S:
            notes.append(f"start moved to where sound begins ({b:.2f} s)")
            return max(start, b - ONSET_PAD_S)
        if 0 < start - b <= LOOK_BACK_S:
            notes.append(f"start moved back to the onset of sound ({b:.2f} s)")
            return b - ONSET_PAD_S
    return start


def _end_after_sound(end: float, quiet: list[tuple[float, float]], notes: list[str]) -> float:
    for a, b in quiet:
        if a < end <= b and end - a <= LOOK_AHEAD_S:
            notes.append(f"end moved to where sound fades ({a:.2f} s)")
            return min(end, a + FADE_PAD_S)
        if 0 < a - end <= LOOK_AHEAD_S:
            notes.append(f"end moved on until sound fades ({a:.2f} s)")
            return a + FADE_PAD_S
    return end


def _snap_keyframe(t: float, keyframes: list[float], words: list[dict], which: str,
                   notes: list[str]) -> float:
    near = [k for k in keyframes if abs(k - t) <= KEYFRAME_SNAP_S
            and not any(_inside(k, w) for w in words)]
    if not near:
        return t
    k = min(near, key=lambda k: abs(k - t))
    if k != t:
        notes.append(f"{which} on the keyframe at {k:.2f} s")
    return k
