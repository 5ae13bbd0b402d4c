"""Finding highlight moments from what was said and how the clip sounds. No model service needed.

Two kinds of evidence, both measured, both explained in each moment's `reason`:

- **Excited speech.** The transcript's words (Whisper, with times) are grouped
  into phrases at pauses of 0.6 s or more. A phrase scores for hype words and
  phrases ("let's go", "clutch", "ace", "no way", ...), for being louder than
  the clip's usual level (EBU R128 momentary loudness, in LU above the median),
  for being spoken faster than the clip's other speech, and for the
  exclamation marks Whisper writes when a voice shouts.
- **Game events.** Outside speech, a stretch scores for its loudness above the
  clip's usual level and for sudden broadband sound (a spectral-flux onset far
  above the clip's median: shots, explosions, impacts).

Candidates above MIN_SCORE become windows with a little lead-in and tail, near
ones are merged, the best MAX_MOMENTS are kept, in time order. Times are put on
the video's frame grid so a clip cut from a moment has an exact frame count.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chalicelib.moments.analysis import HOP_S, AudioAnalysis
from chalicelib.moments.refine import on_frame_grid

MIN_SCORE = 0.4
MAX_MOMENTS = 10
MIN_LENGTH_S = 3.0
MAX_LENGTH_S = 30.0
PHRASE_GAP_S = 0.6
MERGE_GAP_S = 1.0
SPEECH_LEAD_S, SPEECH_TAIL_S = 0.5, 0.7
SOUND_LEAD_S, SOUND_TAIL_S = 1.0, 1.5
LOUD_LU = 8.0            # a non-speech stretch this far above the usual level is loud
ONSET_Z = 8.0            # a flux peak this many robust deviations up is a sudden sound

KEYWORDS = (
    "let's go", "lets go", "no way", "oh my god", "oh my gosh", "what a shot", "nice shot",
    "clutch", "ace", "headshot", "head shot", "one tap", "no scope", "noscope", "collateral",
    "double kill", "triple kill", "quadra kill", "penta kill", "team wipe", "wiped",
    "insane", "unbelievable", "incredible", "sheesh", "holy", "epic", "gg", "victory",
    "we won", "let's gooo", "yes", "wow",
)
_KEYWORD_RE = [(k, re.compile(r"(?<![\w'])" + re.escape(k) + r"(?![\w'])")) for k in KEYWORDS]


@dataclass
class Candidate:
    start: float
    end: float
    score: float
    kind: str
    title: str
    reasons: list[str] = field(default_factory=list)
    features: dict[str, Any] = field(default_factory=dict)


def find_moments(analysis: AudioAnalysis, words: list[dict], fps: float | None) -> list[dict]:
    """The clip's highlight moments: [{start_time, end_time, title, score, reason, features}]."""
    if not analysis.has_audio or not analysis.loudness:
        return []
    loud = np.array(analysis.loudness, dtype=float)
    measured = loud > -69.9
    usual = float(np.median(loud[measured])) if measured.any() else -70.0
    lift = np.where(measured, loud - usual, 0.0)
    onset = np.array(analysis.onset, dtype=float)
    phrases = group_phrases(words)
    candidates = [c for c in (_speech(p, phrases, lift) for p in phrases) if c.score >= MIN_SCORE]
    candidates += [c for c in _sounds(lift, onset, phrases, usual) if c.score >= MIN_SCORE]
    merged = _merge(sorted(candidates, key=lambda c: c.start))
    best = sorted(merged, key=lambda c: -c.score)[:MAX_MOMENTS]
    return [_moment(c, analysis.duration, fps) for c in sorted(best, key=lambda c: c.start)]


def group_phrases(words: list[dict]) -> list[dict]:
    """Words joined into phrases wherever the speaker pauses PHRASE_GAP_S or more."""
    phrases: list[dict] = []
    for w in sorted(words, key=lambda w: w["start"]):
        if phrases and w["start"] - phrases[-1]["end"] < PHRASE_GAP_S:
            phrases[-1]["words"].append(w)
            phrases[-1]["end"] = max(phrases[-1]["end"], w["end"])
        else:
            phrases.append({"start": w["start"], "end": w["end"], "words": [w]})
    for p in phrases:
        p["text"] = " ".join(w["word"].strip() for w in p["words"]).strip()
        p["rate"] = len(p["words"]) / max(0.3, p["end"] - p["start"])
    return phrases


def keywords_in(text: str) -> list[str]:
    """The hype words and phrases said in text (whole words, case and apostrophes normalised)."""
    norm = re.sub(r"[^\w' ]+", " ", text.lower().replace("\u2019", "'"))
    norm = re.sub(r"\s+", " ", norm)
    found = [k for k, rx in _KEYWORD_RE if rx.search(norm)]
    # "let's go" already counts its shorter spellings.
    return [k for k in found if not any(k != o and k in o for o in found)]


def _bins(start: float, end: float, n: int) -> slice:
    return slice(max(0, int(start / HOP_S)), min(n, int(np.ceil(end / HOP_S))))


def _speech(phrase: dict, phrases: list[dict], lift: np.ndarray) -> Candidate:
    span = lift[_bins(phrase["start"], phrase["end"], len(lift))]
    top = float(np.mean(np.sort(span)[len(span) // 2:])) if len(span) else 0.0
    keys = keywords_in(phrase["text"])
    rates = [p["rate"] for p in phrases]
    usual_rate = statistics.median(rates) if len(rates) > 2 else None
    fast = usual_rate is not None and phrase["rate"] > 1.25 * usual_rate
    shouted = "!" in phrase["text"]
    score = (0.45 * min(len(keys), 2) + 0.06 * min(max(top - 3.0, 0.0), 12.0)
             + (0.15 if fast else 0.0) + (0.1 if shouted else 0.0))
    reasons = []
    if keys:
        reasons.append("says " + ", ".join(f"\u201c{k}\u201d" for k in keys))
    if top >= 3.0:
        reasons.append(f"speech {top:.0f} LU above the clip's usual level")
    if fast:
        reasons.append(f"fast speech ({phrase['rate']:.1f} words/s, usually {usual_rate:.1f})")
    if shouted:
        reasons.append("shouted (exclamation in the transcript)")
    text = phrase["text"] if len(phrase["text"]) <= 80 else phrase["text"][:77].rstrip() + "..."
    return Candidate(phrase["start"] - SPEECH_LEAD_S, phrase["end"] + SPEECH_TAIL_S,
                     min(1.0, score), "speech", f"\u201c{text}\u201d", reasons,
                     {"keywords": keys, "speech_lift_lu": round(top, 1),
                      "words_per_s": round(phrase["rate"], 2)})


def _sounds(lift: np.ndarray, onset: np.ndarray, phrases: list[dict], usual: float) -> list[Candidate]:
    """Loud or sudden stretches outside speech."""
    n = len(lift)
    speaking = np.zeros(n, dtype=bool)
    for p in phrases:
        speaking[_bins(p["start"] - 0.2, p["end"] + 0.2, n)] = True
    onset = np.pad(onset, (0, max(0, n - len(onset))))[:n]
    hot = ((lift >= LOUD_LU) | (onset >= ONSET_Z) & (lift >= LOUD_LU / 2)) & ~speaking
    out = []
    i = 0
    while i < n:
        if not hot[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and (hot[j + 1] or (j + 3 < n and hot[j + 2:j + 4].any())):
            j += 1
        peak, z = float(lift[i:j + 1].max()), float(onset[max(0, i - 3):j + 2].max())
        events = int(np.sum(onset[max(0, i - 3):j + 2] >= ONSET_Z))
        score = 0.06 * min(max(peak - 4.0, 0.0), 14.0) + (0.25 if z >= ONSET_Z else 0.0) \
            + 0.05 * min(max(events - 1, 0), 3)
        t = (i + int(np.argmax(lift[i:j + 1]))) * HOP_S     # the loudest instant names it
        reasons = [f"loudness peaks {peak:.0f} LU above the clip's usual level "
                   f"({usual + peak:.0f} LUFS)"]
        if z >= ONSET_Z:
            reasons.append(f"sudden broadband sound: {events} onset{'s' if events > 1 else ''} "
                           f"(spectral flux {z:.0f} deviations above usual), like a shot or explosion")
        title = f"{'Burst of sound' if z >= ONSET_Z else 'Loud stretch'} at {int(t // 60)}:{int(t % 60):02d}"
        out.append(Candidate(i * HOP_S - SOUND_LEAD_S, (j + 1) * HOP_S + SOUND_TAIL_S, min(1.0, score),
                             "sound", title, reasons,
                             {"peak_lift_lu": round(peak, 1), "onset_z": round(z, 1), "onsets": events}))
        i = j + 1
    return out


def _merge(candidates: list[Candidate]) -> list[Candidate]:
    """Join overlapping or nearly touching candidates; the best one names the moment."""
    out: list[Candidate] = []
    for c in candidates:
        last = out[-1] if out else None
        if last and c.start - last.end <= MERGE_GAP_S and max(c.end, last.end) - last.start <= MAX_LENGTH_S:
            lead, other = (last, c) if last.score >= c.score else (c, last)
            out[-1] = Candidate(min(last.start, c.start), max(last.end, c.end),
                                min(1.0, lead.score + 0.1 * other.score), lead.kind, lead.title,
                                lead.reasons + [r for r in other.reasons if r not in lead.reasons],
                                {**other.features, **lead.features,
                                 "kinds": sorted({lead.kind, other.kind,
                                                  *lead.features.get("kinds", []),
                                                  *other.features.get("kinds", [])})})
        else:
            out.append(c)
    return out


def _moment(c: Candidate, duration: float, fps: float | None) -> dict:
    start, end = max(0.0, c.start), min(duration, c.end)
    if end - start < MIN_LENGTH_S:
        grow = (MIN_LENGTH_S - (end - start)) / 2
        start, end = max(0.0, start - grow), min(duration, end + grow)
        start = max(0.0, min(start, end - MIN_LENGTH_S))
    if end - start > MAX_LENGTH_S:
        end = start + MAX_LENGTH_S
    start, end = on_frame_grid(start, end, fps, duration)
    return {"start_time": start, "end_time": end, "title": c.title, "score": round(c.score, 3),
            "reason": "; ".join(c.reasons) + ".", "features": {"kind": c.kind, **c.features}}
