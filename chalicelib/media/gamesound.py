"""Game-sound landmarks: match two players' clips of one moment across their voice chats.

Two players in one match hear the same game sound, but each clip carries its own
player's voice chat, so a whole-spectrum fingerprint (chromaprint) of the mix does not
match. Landmarks (Shazam-style) survive that: the strongest spectral peaks of the game
sound (gunfire cracks, explosions, engine harmonics, music) stay the strongest peaks
under an added voice, and only pairs of peaks are compared, as (f1, f2, dt) hashes
whose time differences vote for one offset. Peaks in frames where Silero VAD hears
speech are dropped on both sides, so a voice can neither hide a match nor make one:
the same player talking over two different matches shares no landmarks.
"""
from __future__ import annotations

import base64
import functools
import wave
from dataclasses import dataclass
from pathlib import Path

from chalicelib.media.errors import MediaError

SAMPLE_RATE = 16000            # the speech WAV the dedup step already writes
STFT_WIN = 1024
STFT_HOP = 256                 # 16 ms frames
HOP_S = STFT_HOP / SAMPLE_RATE
VAD_CHUNK = 512                # Silero VAD's 32 ms chunk at 16 kHz
MIN_BIN = 3                    # ~50 Hz: below it AAC and small speakers keep little
MAX_BIN = 500                  # ~7.8 kHz, under the WAV's Nyquist
# A peak is the maximum of its (2*PEAK_DT+1) frames x (2*PEAK_DF+1) bins neighbourhood
# and at least PEAK_OVER_DB above its frame's median; the PEAKS_PER_S strongest are kept.
PEAK_DT = 6
PEAK_DF = 10
PEAK_OVER_DB = 10.0
PEAKS_PER_S = 24
# Each peak pairs with the FAN_OUT next peaks at most PAIR_MAX_DT frames later.
FAN_OUT = 6
PAIR_MAX_DT = 63
# A chunk whose speech probability reaches SPEECH_PROB is speech, and so are the
# SPEECH_DILATE chunks either side (VAD onsets lag; a syllable's tail outlasts its chunk).
SPEECH_PROB = 0.4
SPEECH_DILATE = 4
# match(): overlaps down to MIN_OVERLAP_S are searched, offsets at most MAX_OFFSET_S.
MIN_OVERLAP_S = 4.0
MAX_OFFSET_S = 3600.0
# Two clips share their game sound when the best offset gathers at least MIN_VOTES
# hash matches and at least MIN_SCORE of the hashes the sparser clip has in the overlap
# (calibrated on tests/ml/pov_pairs.py; see bench/pov_quality.py).
MIN_VOTES = 10
MIN_SCORE = 0.03
VERSION = 1


@dataclass(frozen=True)
class Landmarks:
    """Game-sound spectral peaks of one clip: frame index (uint32) and FFT bin (uint16)."""

    frames: bytes
    bins: bytes
    duration_s: float

    def to_dict(self) -> dict:
        """JSON-able form (base64 bytes, ~6 bytes per peak)."""
        return {"version": VERSION, "hop_s": HOP_S, "duration_s": round(self.duration_s, 3),
                "frames": base64.b64encode(self.frames).decode(),
                "bins": base64.b64encode(self.bins).decode()}

    @classmethod
    def from_dict(cls, data: dict) -> Landmarks | None:
        """Inverse of to_dict; None for another version (re-fingerprinting will replace it)."""
        if data.get("version") != VERSION or abs(float(data.get("hop_s", 0)) - HOP_S) > 1e-9:
            return None
        return cls(frames=base64.b64decode(data["frames"]), bins=base64.b64decode(data["bins"]),
                   duration_s=float(data["duration_s"]))

    def arrays(self):
        """(frames int64, bins int64) numpy arrays, sorted by frame."""
        import numpy as np

        return (np.frombuffer(self.frames, "<u4").astype(np.int64),
                np.frombuffer(self.bins, "<u2").astype(np.int64))


@dataclass(frozen=True)
class Match:
    """Where clip B starts on clip A's timeline (`offset_s`), and the vote evidence."""

    offset_s: float
    votes: int
    score: float

    @property
    def matched(self) -> bool:
        return self.votes >= MIN_VOTES and self.score >= MIN_SCORE


NO_MATCH = Match(0.0, 0, 0.0)


def read_speech_wav(path: str | Path):
    """The 16 kHz mono 16-bit WAV written by ffmpeg.speech_wav_args() as float32 samples."""
    import numpy as np

    with wave.open(str(path), "rb") as wav:
        if wav.getframerate() != SAMPLE_RATE or wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise MediaError("speech WAV is not 16 kHz mono 16-bit")
        pcm = wav.readframes(wav.getnframes())
    return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0


def landmarks(samples) -> Landmarks:
    """Game-sound peaks of 16 kHz mono float32 `samples` (speech frames left out)."""
    import numpy as np

    samples = np.asarray(samples, np.float32)
    n = max(0, (len(samples) - STFT_WIN) // STFT_HOP + 1)
    duration = len(samples) / SAMPLE_RATE
    if n < 2 * PEAK_DT + 1:
        return Landmarks(b"", b"", duration)
    spec = _log_spectrogram(samples, n)                      # n x bins, dB
    local_max = _max_filter(spec, PEAK_DT, PEAK_DF)
    floor = np.median(spec, axis=1, keepdims=True) + PEAK_OVER_DB
    peak = (spec == local_max) & (spec >= floor)
    peak[:, :MIN_BIN] = False
    peak &= ~_speech_frames(samples, n)[:, None]
    t, f = np.nonzero(peak)
    strength = spec[t, f]
    # Keep the strongest PEAKS_PER_S per second, second by second (even density over time).
    keep = np.zeros(len(t), bool)
    per_block = round(1.0 / HOP_S)
    block = t // per_block
    order = np.lexsort((-strength, block))
    rank = np.arange(len(order)) - np.searchsorted(block[order], block[order])
    keep[order[rank < PEAKS_PER_S]] = True
    t, f = t[keep], f[keep]
    return Landmarks(frames=t.astype("<u4").tobytes(), bins=f.astype("<u2").tobytes(),
                     duration_s=duration)


def match(a: Landmarks, b: Landmarks) -> Match:
    """Best offset of clip `b` on clip `a`'s timeline by shared game-sound landmarks."""
    import numpy as np

    ha, ta = _hashes(*a.arrays())
    hb, tb = _hashes(*b.arrays())
    if len(ha) == 0 or len(hb) == 0:
        return NO_MATCH
    order = np.argsort(hb, kind="stable")
    hb, tb = hb[order], tb[order]
    lo = np.searchsorted(hb, ha, "left")
    hi = np.searchsorted(hb, ha, "right")
    count = hi - lo
    if count.sum() == 0:
        return NO_MATCH
    # Every (a, b) pair of equal hashes votes for offset tb - ta (b's frame 0 on a's axis: ta - tb).
    idx_a = np.repeat(np.arange(len(ha)), count)
    starts = np.repeat(lo, count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    offsets = ta[idx_a] - tb[starts + within]
    min_overlap = MIN_OVERLAP_S / HOP_S
    len_a, len_b = a.duration_s / HOP_S, b.duration_s / HOP_S
    lo_off = max(-(len_b - min_overlap), -MAX_OFFSET_S / HOP_S)
    hi_off = min(len_a - min_overlap, MAX_OFFSET_S / HOP_S)
    offsets = offsets[(offsets >= lo_off) & (offsets <= hi_off)]
    if len(offsets) == 0:
        return NO_MATCH
    base = int(offsets.min())
    hist = np.bincount(offsets - base)
    # One frame either side: a peak can land on a neighbouring frame after re-encoding.
    smooth = np.convolve(hist, np.ones(3, np.int64), mode="same")
    k = int(np.argmax(smooth))
    votes = int(smooth[k])
    near = offsets[np.abs(offsets - (base + k)) <= 1]
    offset = float(near.mean())
    # Evidence relative to what could match: the hashes each clip has inside the overlap.
    start, end = max(0.0, offset), min(len_a, offset + len_b)
    in_a = int(((ta >= start) & (ta < end)).sum())
    in_b = int(((tb + offset >= start) & (tb + offset < end)).sum())
    score = votes / max(1, min(in_a, in_b))
    return Match(round(offset * HOP_S, 3), votes, round(score, 4))


def _hashes(frames, bins):
    """(f1, f2, dt) hashes of each peak with its FAN_OUT successors, and the anchor frames."""
    import numpy as np

    if len(frames) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    hs, ts = [], []
    for k in range(1, FAN_OUT + 1):
        t1, f1, t2, f2 = frames[:-k], bins[:-k], frames[k:], bins[k:]
        dt = t2 - t1
        ok = (dt > 0) & (dt <= PAIR_MAX_DT)
        hs.append((f1[ok] << 15) | (f2[ok] << 6) | dt[ok])
        ts.append(t1[ok])
    return np.concatenate(hs), np.concatenate(ts)


def _log_spectrogram(samples, n: int):
    """n x (MAX_BIN + 1) magnitudes in dB of a Hann STFT, computed in bounded batches."""
    import numpy as np

    window = np.hanning(STFT_WIN).astype(np.float32)
    out = np.empty((n, MAX_BIN + 1), np.float32)
    batch = 4096
    for start in range(0, n, batch):
        count = min(batch, n - start)
        frames = np.lib.stride_tricks.sliding_window_view(
            samples[start * STFT_HOP:(start + count - 1) * STFT_HOP + STFT_WIN], STFT_WIN)[::STFT_HOP]
        mag = np.abs(np.fft.rfft(frames * window, axis=1))[:, :MAX_BIN + 1]
        out[start:start + count] = 20 * np.log10(mag + 1e-6)
    return out


def _max_filter(x, rt: int, rf: int):
    """Maximum over a (2rt+1) x (2rf+1) neighbourhood (separable, edges padded low)."""
    import numpy as np

    low = float(x.min())
    p = np.pad(x, ((rt, rt), (0, 0)), constant_values=low)
    m = np.lib.stride_tricks.sliding_window_view(p, 2 * rt + 1, axis=0).max(axis=-1)
    p = np.pad(m, ((0, 0), (rf, rf)), constant_values=low)
    return np.lib.stride_tricks.sliding_window_view(p, 2 * rf + 1, axis=1).max(axis=-1)


def _speech_frames(samples, n: int):
    """Boolean per STFT frame: Silero VAD (shipped with faster-whisper) hears speech in it."""
    import numpy as np

    chunks = len(samples) // VAD_CHUNK
    if chunks == 0:
        return np.zeros(n, bool)
    probs = np.asarray(_vad()(np.ascontiguousarray(samples[:chunks * VAD_CHUNK]),
                              num_samples=VAD_CHUNK)).reshape(-1)[:chunks]
    speech = probs >= SPEECH_PROB
    pad = np.pad(speech, SPEECH_DILATE)
    speech = np.lib.stride_tricks.sliding_window_view(pad, 2 * SPEECH_DILATE + 1).any(axis=1)
    # STFT frame i covers samples [i*hop, i*hop + win): speech if any chunk it touches is.
    first = np.arange(n) * STFT_HOP // VAD_CHUNK
    last = np.minimum((np.arange(n) * STFT_HOP + STFT_WIN - 1) // VAD_CHUNK, chunks - 1)
    cum = np.concatenate([[0], np.cumsum(speech)])
    return (cum[last + 1] - cum[np.minimum(first, chunks - 1)]) > 0


@functools.cache
def _vad():
    from faster_whisper.vad import get_vad_model

    return get_vad_model()
