"""Captions from the word-timed transcript: WebVTT cues, the whole file and HLS segments.

Cues follow the usual subtitle rules: at most two lines of LINE_CHARS
characters and CUE_MAX_S seconds on screen, cut at word boundaries with the
words' own times, so a long Whisper segment becomes several readable cues.
Segmented WebVTT for HLS (RFC 8216 §3.5): one file per SEGMENT_S window, each
repeating the cues that overlap it, with an X-TIMESTAMP-MAP that puts cue
time 0 at media time 0 (the ladder's fMP4 timeline starts at 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

LINE_CHARS = 42
MAX_LINES = 2
CUE_MAX_S = 6.0
MIN_CUE_S = 0.5
SEGMENT_S = 4
TIMESTAMP_MAP = "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def _timestamp(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _escape(text: str) -> str:
    # "-->" would end a cue's timing line; & and < start entities and tags in cue text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _wrap(words: list[str]) -> str:
    lines, line = [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > LINE_CHARS:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    lines.append(line)
    return "\n".join(lines)


def _fits(words: list[str]) -> bool:
    return len(_wrap(words).split("\n")) <= MAX_LINES


def cues_from_segments(segments: Iterable[dict]) -> list[Cue]:
    """Cues from transcript segments ({start_s, end_s, text, words: [{start, end, word}]})."""
    cues: list[Cue] = []
    for seg in segments:
        text = " ".join(str(seg.get("text") or "").split())
        if not text:
            continue
        words = [w for w in (seg.get("words") or []) if str(w.get("word", "")).strip()]
        if not words:
            # No word times: the segment as one cue (wrapped), timed as the segment.
            cues.append(Cue(float(seg["start_s"]), float(seg["end_s"]), _wrap(text.split())))
            continue
        group: list[dict] = []
        for w in words:
            candidate = group + [w]
            too_long = group and (float(w["end"]) - float(group[0]["start"]) > CUE_MAX_S
                                  or not _fits([str(x["word"]).strip() for x in candidate]))
            if too_long:
                cues.append(_cue(group))
                group = [w]
            else:
                group = candidate
        if group:
            cues.append(_cue(group))
    return _no_overlaps(cues)


def _cue(words: list[dict]) -> Cue:
    start, end = float(words[0]["start"]), float(words[-1]["end"])
    return Cue(start, max(end, start + MIN_CUE_S), _wrap([str(w["word"]).strip() for w in words]))


def _no_overlaps(cues: list[Cue]) -> list[Cue]:
    """Each cue ends where the next begins at the latest (players stack overlapping cues)."""
    out = []
    for cue, nxt in zip(cues, cues[1:] + [None]):
        end = min(cue.end, nxt.start) if nxt and nxt.start > cue.start else cue.end
        out.append(Cue(round(cue.start, 3), round(end, 3), cue.text))
    return out


def webvtt(cues: list[Cue], *, timestamp_map: bool = False) -> str:
    """A WebVTT file of `cues`."""
    head = "WEBVTT\n" + (TIMESTAMP_MAP + "\n" if timestamp_map else "")
    body = "".join(f"\n{i}\n{_timestamp(c.start)} --> {_timestamp(c.end)}\n{_escape(c.text)}\n"
                   for i, c in enumerate(cues, 1))
    return head + body


def segment_count(duration_s: float, segment_s: int = SEGMENT_S) -> int:
    return max(1, math.ceil(round(duration_s, 3) / segment_s))


def segment(cues: list[Cue], index: int, segment_s: int = SEGMENT_S) -> str:
    """Segment `index` of the segmented WebVTT: the cues that overlap its window."""
    start, end = index * segment_s, (index + 1) * segment_s
    return webvtt([c for c in cues if c.start < end and c.end > start], timestamp_map=True)


def hls_playlist(duration_s: float, segment_uri, segment_s: int = SEGMENT_S) -> str:
    """The subtitles media playlist; `segment_uri(i)` gives segment i's URI."""
    n = segment_count(duration_s, segment_s)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{segment_s}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for i in range(n):
        length = min(segment_s, duration_s - i * segment_s) if i == n - 1 else segment_s
        lines += [f"#EXTINF:{max(length, 0.001):.3f},", segment_uri(i)]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
