"""Pairs of clips for other-POV matching across voice chat, generated at test time.

Two players in one match hear the same game sound (a bed from tests.ml.corpus), shifted
by the time between their recordings' starts, each under their own voice chat: other
voices, other sentences, at another level, or no voice at all. The negatives are the
reverse: one voice saying the same thing at the same times over two different beds.
Each pair says where clip B starts relative to clip A (`offset_s`, the time of A at
which B starts; None when they do not share game sound).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tests.ml import corpus
from tests.ml.clips import SR


@dataclass(frozen=True)
class Pair:
    name: str
    condition: str
    a: np.ndarray
    b: np.ndarray
    offset_s: float | None

    @property
    def overlap_s(self) -> float:
        if self.offset_s is None:
            return 0.0
        la, lb = len(self.a) / SR, len(self.b) / SR
        return min(la, self.offset_s + lb) - max(0.0, self.offset_s)


# Positives share one game-sound bed under two voice chats; B's voice: "other_voice"
# (another voice and text at the same level), "other_voice_loud" (B louder than the
# game), "no_voice" (B silent). Negatives: "same_voice_other_bed" (one voice saying the
# same words at the same times over two different beds) and "unrelated" (other voices,
# other beds). Beds rotate over gunfire, explosions and rumble (firefight), engine hum
# (vehicle), music, and music under gunfire.
POSITIVE = ["other_voice", "other_voice_loud", "no_voice"]
NEGATIVE = ["same_voice_other_bed", "unrelated"]
BED_KINDS = ["firefight", "vehicle", "music", "music+firefight"]
# A negative's other bed shares no part with the first (two music beds share their loop).
OTHER_BED = {"firefight": "vehicle", "vehicle": "music", "music": "firefight",
             "music+firefight": "vehicle"}
# (offset of B in A, length of A, length of B): offsets up to +-30 s, overlaps down to 5 s.
LAYOUTS = [(1.0, 12.0, 10.0), (30.0, 35.0, 8.0), (-30.0, 8.0, 35.0), (12.37, 20.0, 17.4),
           (-6.61, 12.0, 11.6), (25.2, 30.2, 9.0), (-3.3, 6.0, 40.0), (0.0, 5.0, 5.0)]


def bed(kind: str, seconds: float, seed: int) -> np.ndarray:
    """A game-sound bed of `kind` (a tests.ml.corpus bed, or two summed with "+")."""
    parts = [corpus.BEDS[k](seconds, seed + 101 * i) for i, k in enumerate(kind.split("+"))]
    return sum(parts) / np.sqrt(len(parts))


def talk(seconds: float, voice_index: int, sentence_index: int, first_at: float) -> np.ndarray:
    """A player's voice chat: sentences in one voice with 2-5 s pauses (callouts), `seconds` long."""
    rng = np.random.default_rng(voice_index * 31 + sentence_index)
    voice, rate = corpus.VOICES[voice_index % len(corpus.VOICES)]
    out = np.zeros(int(seconds * SR), np.float32)
    pos, k = first_at, sentence_index
    while pos < seconds - 0.5:
        speech = corpus.speak(corpus.SENTENCES[k % len(corpus.SENTENCES)], voice, rate)
        i = int(pos * SR)
        part = speech[: len(out) - i]
        out[i:i + len(part)] += part
        pos += len(speech) / SR + rng.uniform(2.0, 5.0)
        k += 1
    return out


def _mix(bed: np.ndarray, voice: np.ndarray | None, snr_db: float, gain: float) -> np.ndarray:
    """Voice at `snr_db` against the bed (RMS over the voiced samples), peak-limited."""
    if voice is None:
        mix = bed.copy()
    else:
        voiced = np.abs(voice) > 1e-4
        v_rms = np.sqrt(np.mean(voice[voiced] ** 2)) if voiced.any() else 1.0
        b_rms = np.sqrt(np.mean(bed ** 2)) + 1e-9
        mix = bed * (v_rms / (b_rms * 10 ** (snr_db / 20))) + voice
    return (gain * mix / max(1e-9, np.abs(mix).max())).astype(np.float32)


def make_pair(condition: str, index: int) -> Pair:
    """Pair `index` of a condition (layout, beds, voices and levels rotate with the index)."""
    offset, la, lb = LAYOUTS[index % len(LAYOUTS)]
    kind = BED_KINDS[index % len(BED_KINDS)]
    start_a = max(0.0, -offset)               # A's start on the match timeline
    start_b = start_a + offset
    total = max(start_a + la, start_b + lb) + 0.5
    game = bed(kind, total, 4000 + 13 * index)
    snr = (-5.0, 0.0, -10.0)[index % 3]
    a_voice = talk(la, index, index, 0.3 + 0.4 * (index % 3))

    def cut(track: np.ndarray, start: float, length: float) -> np.ndarray:
        i = int(round(start * SR))
        return track[i:i + int(round(length * SR))]

    if condition in NEGATIVE:
        other_kind = OTHER_BED[kind]
        other = bed(other_kind, total, 7000 + 13 * index)
        if condition == "same_voice_other_bed":
            # Same voice, same words, same times, same lengths; only the game sound differs.
            a = _mix(cut(game, start_a, la), a_voice, snr, 0.9)
            b = _mix(cut(other, start_a, la), a_voice, snr, 0.6)
            return Pair(f"{condition}-{index}", condition, a, b, None)
        b_voice = talk(lb, index + 2, index + 5, 0.2 + 0.3 * (index % 2))
        a = _mix(cut(game, start_a, la), a_voice, snr, 0.9)
        b = _mix(cut(other, start_b, lb), b_voice, snr, 0.7)
        return Pair(f"{condition}-{index}", condition, a, b, None)
    a = _mix(cut(game, start_a, la), a_voice, snr, 0.9)
    if condition == "no_voice":
        b = _mix(cut(game, start_b, lb), None, 0.0, 0.5)
    else:
        b_voice = talk(lb, index + 2, index + 5, 0.2 + 0.3 * (index % 2))
        b_snr = 5.0 if condition == "other_voice_loud" else snr
        b = _mix(cut(game, start_b, lb), b_voice, b_snr, 0.7)
    return Pair(f"{condition}-{index}", condition, a, b, offset)


def pairs(per_condition: int, conditions: list[str] | None = None) -> list[Pair]:
    """`per_condition` pairs of every condition."""
    return [make_pair(c, i) for c in (conditions or POSITIVE + NEGATIVE)
            for i in range(per_condition)]
