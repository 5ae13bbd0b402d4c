"""A hard speech corpus, generated at test time: gamers talking over loud game sound.

Each item is one WAV (16 kHz mono) with its reference text and a condition name.
Speech comes from espeak-ng in several voices and rates; beds are synthesised with
a seeded RNG (deterministic): a firefight (rumble, gunfire bursts, explosions), a
vehicle (engine harmonics, wind), a music bed (chords, kick, hi-hat). Speech sits
0 to -10 dB relative to the bed (RMS of the speech against RMS of the bed over the
same span), the way a streamer's game audio drowns their voice. Other conditions:
a second speaker talking over the first, and a clipped (overdriven) microphone.

`CONDITIONS` names every condition; `corpus(dir, per_condition)` builds the set:
the bench takes six items of each, the test suite two.
"""
from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.ml.clips import SR, write_wav
from chalicelib.media.ffmpeg import ffmpeg_exe

# Callouts and chatter: jargon, map names, numbers, the phrase that broke in issue 18.
SENTENCES = [
    "They are pushing the bomb site right now.",
    "Two enemies on the left side, one is low on health.",
    "I need a medkit before we go back into the tunnel.",
    "Nice headshot, that was a clean one tap.",
    "Rotate to the north gate and hold the stairs.",
    "Watch the sniper on the roof behind the red container.",
    "Drop me some ammo, I only have one magazine left.",
    "We should save our money for the next round.",
    "The tank is coming through the bridge, get the rockets ready.",
    "Flank them from the river while I throw a smoke grenade.",
    "Our healer is down, fall back to the spawn.",
    "Capture point B is almost ours, stay on the objective.",
]

# espeak-ng voice (with a variant: +f3 female, +m3/+m7 other male timbres) and words/minute.
VOICES = [("en-us", 150), ("en-gb+f3", 175), ("en-us+m7", 135), ("en-gb-scotland", 165),
          ("en-us+f4", 190), ("en-029+m3", 145)]

# condition -> (bed kind, speech level in dB relative to the bed, extra)
CONDITIONS: dict[str, tuple[str | None, float, str | None]] = {
    "clean": (None, 0.0, None),
    "game_0db": ("firefight", 0.0, None),
    "game_-5db": ("firefight", -5.0, None),
    "game_-10db": ("firefight", -10.0, None),
    "vehicle_-5db": ("vehicle", -5.0, None),
    "music_-5db": ("music", -5.0, None),
    "overlap": ("firefight", -3.0, "overlap"),
    "clipped_mic": ("firefight", -3.0, "clipped"),
}
GAME_CONDITIONS = [c for c in CONDITIONS if c != "clean"]
LEAD_IN_S = 1.0
TAIL_S = 1.0


@dataclass(frozen=True)
class Item:
    condition: str
    path: Path
    reference: str
    voice: str
    rate: int
    duration: float


@functools.lru_cache(maxsize=256)
def speak(text: str, voice: str = "en-us", rate: int = 150) -> np.ndarray:
    """espeak-ng speech as float32 samples at 16 kHz, normalised to peak 0.5."""
    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is not installed (apt-get install -y espeak-ng)"
    wav = subprocess.run([espeak, "-v", voice, "-s", str(rate), "--stdout", text],
                         capture_output=True, check=True, timeout=60).stdout
    pcm = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", "-", "-ac", "1", "-ar", str(SR),
                          "-f", "s16le", "-"], input=wav, capture_output=True, check=True,
                         timeout=60).stdout
    x = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0
    return 0.5 * x / max(float(np.abs(x).max()), 1e-6)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def _lowpass(x: np.ndarray, taps: int) -> np.ndarray:
    return np.convolve(x, np.ones(taps, np.float32) / taps, mode="same").astype(np.float32)


def firefight(seconds: float, seed: int) -> np.ndarray:
    """Battle rumble, automatic-fire bursts, single shots and explosions (unit RMS)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    bed = 3.0 * _lowpass(rng.standard_normal(n).astype(np.float32), 60)   # rumble
    bed += 0.25 * rng.standard_normal(n).astype(np.float32)               # hiss, debris
    shot_len = int(0.12 * SR)
    env = np.exp(-np.arange(shot_len) / (0.025 * SR)).astype(np.float32)
    starts = []
    pos = rng.uniform(0.0, 0.6)
    while pos < seconds - 0.3:   # bursts of 3-8 rounds, 90 ms apart, then a pause
        rounds = int(rng.integers(3, 9))
        starts += [pos + k * 0.09 for k in range(rounds)]
        pos += rounds * 0.09 + rng.uniform(0.4, 1.6)
    for s in starts:
        i = int(s * SR)
        if i >= n:
            break
        seg = slice(i, min(n, i + shot_len))
        m = seg.stop - seg.start
        crack = rng.standard_normal(m).astype(np.float32)
        bed[seg] += 2.5 * (crack + 2 * _lowpass(crack, 8)) * env[:m]
    for s in np.arange(rng.uniform(0.5, 2.0), seconds - 0.5, rng.uniform(2.5, 4.0)):
        on = (t >= s) & (t < s + 1.2)
        boom = _lowpass(rng.standard_normal(int(on.sum())).astype(np.float32), 40)
        bed[on] += 12.0 * boom * np.exp(-(t[on] - s) * 3.5)
    return bed / _rms(bed)


def vehicle(seconds: float, seed: int) -> np.ndarray:
    """Engine harmonics with a wandering RPM, wind and gear clunks (unit RMS)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    rpm = 38 + 10 * np.sin(2 * np.pi * 0.15 * t + rng.uniform(0, 6)) + np.cumsum(
        rng.standard_normal(n)) * 0.002
    phase = 2 * np.pi * np.cumsum(rpm) / SR
    bed = sum(np.sin(k * phase) / k for k in range(1, 12)).astype(np.float32)
    bed += 0.6 * _lowpass(rng.standard_normal(n).astype(np.float32), 6)
    return bed / _rms(bed)


def music(seconds: float, seed: int) -> np.ndarray:
    """A loop of sawtooth chords, a kick on every beat and a hi-hat between (unit RMS)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    beat = 60 / 124
    chords = [(220.0, 277.2, 329.6), (196.0, 246.9, 293.7), (174.6, 220.0, 261.6),
              (196.0, 246.9, 329.6)]
    bed = np.zeros(n, np.float32)
    for k, start in enumerate(np.arange(0, seconds, 4 * beat)):
        on = (t >= start) & (t < start + 4 * beat)
        for f in chords[k % 4]:
            bed[on] += 0.3 * (2 * ((t[on] * f) % 1.0) - 1)
    for start in np.arange(0, seconds, beat):
        on = (t >= start) & (t < start + 0.2)
        bed[on] += 2.0 * np.sin(2 * np.pi * 55 * (t[on] - start)) * np.exp(-(t[on] - start) * 20)
        hat = (t >= start + beat / 2) & (t < start + beat / 2 + 0.04)
        bed[hat] += 0.4 * rng.standard_normal(int(hat.sum()))
    return bed / _rms(bed)


BEDS = {"firefight": firefight, "vehicle": vehicle, "music": music}


def mix_parts(speech: np.ndarray, bed: np.ndarray | None, snr_db: float,
              start: int) -> tuple[np.ndarray, np.ndarray]:
    """Voice and bed tracks of one mix, the voice at `start` and `snr_db` against the bed.

    The level is the speech RMS over the bed's RMS on the same span; the whole mix is
    then scaled to peak at most 0.99, as a limiter would (no clipping, ratio kept).
    """
    n = start + len(speech) + (0 if bed is not None else int(TAIL_S * SR))
    voice = np.zeros(max(n, len(bed) if bed is not None else 0), np.float32)
    voice[start:start + len(speech)] = speech
    if bed is None:
        return voice, np.zeros_like(voice)
    span = bed[start:start + len(speech)]
    scaled = (bed * (_rms(speech) / (_rms(span) * 10 ** (snr_db / 20)))).astype(np.float32)
    limit = max(1.0, float(np.abs(voice + scaled).max()) / 0.99)
    return voice / limit, scaled / limit


def speech_to_bed_db(voice: np.ndarray, bed: np.ndarray, start: int, length: int) -> float:
    """The level of the voice relative to the bed over voice[start:start+length], in dB."""
    span = slice(start, start + length)
    return 20 * np.log10(_rms(voice[span]) / _rms(bed[span]))


def make_item(out_dir: Path, condition: str, index: int) -> Item:
    """Item `index` of a condition: sentence, voice and bed seed rotate with the index."""
    bed_kind, snr_db, extra = CONDITIONS[condition]
    sentence = SENTENCES[(index * 5 + len(condition)) % len(SENTENCES)]
    voice, rate = VOICES[(index + len(condition)) % len(VOICES)]
    speech = speak(sentence, voice, rate)
    if extra == "clipped":
        speech = np.clip(speech * 6.0, -0.5, 0.5)  # overdriven mic: peaks 6x over, flattened
    if extra == "overlap":
        other_voice, other_rate = VOICES[(index + len(condition) + 3) % len(VOICES)]
        other = speak(SENTENCES[(index * 5 + 7) % len(SENTENCES)], other_voice, other_rate)
        lag = int(0.8 * SR)
        both = np.zeros(max(len(speech), lag + len(other)), np.float32)
        both[:len(speech)] += speech
        both[lag:lag + len(other)] += other * 10 ** (-9 / 20)  # a teammate a little further off
        speech = both
    start = int(LEAD_IN_S * SR)
    total = (start + len(speech)) / SR + TAIL_S
    seed = 1000 + 17 * index + len(condition)
    bed = BEDS[bed_kind](total, seed) if bed_kind else None
    voice_track, bed_track = mix_parts(speech, bed, snr_db, start)
    samples = voice_track + bed_track
    path = write_wav(out_dir / f"{condition}-{index}.wav", samples)
    return Item(condition, path, sentence, voice, rate, round(len(samples) / SR, 3))


def corpus(out_dir: Path, per_condition: int = 6, conditions: list[str] | None = None) -> list[Item]:
    """`per_condition` items of each condition, written under out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [make_item(out_dir, c, i) for c in (conditions or list(CONDITIONS))
            for i in range(per_condition)]


def wer_by_condition(items: list[Item], hypotheses: list[str]) -> dict[str, float]:
    """Word error rate per condition (errors over reference words), plus "game" (all but clean)."""
    from tests.ml.wer import edit_distance, normalize

    totals: dict[str, list[int]] = {}
    for item, hyp in zip(items, hypotheses, strict=True):
        ref = normalize(item.reference)
        errors = edit_distance(ref, normalize(hyp))
        for key in (item.condition, "game" if item.condition != "clean" else None):
            if key:
                t = totals.setdefault(key, [0, 0])
                t[0] += errors
                t[1] += len(ref)
    return {key: round(e / n, 4) for key, (e, n) in totals.items()}
