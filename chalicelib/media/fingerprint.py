"""Content signatures for duplicate detection and for aligning related clips in time.

Video: frames scaled to 32x32 grayscale, averaged over WINDOW_S windows every
1/FRAME_RATE s, each window hashed with a DCT perceptual hash (64 bits); the sequence
survives re-encoding, resizing, bitrate and container changes. A fixed-length vector
summarising the clip goes into a pgvector index to find candidates, which `compare`
then checks frame by frame.
Audio: chromaprint's raw fingerprint (one 32-bit item every ~0.124 s), and a game-sound
("bed") fingerprint for other points of view: two players in one match share the game
sound but never their voice-chat mix, so the bed fingerprint keeps band energies over
time with the frames Silero VAD hears speech in weighted down (see bed_fingerprint).
Not yet part of MediaSignature: bench/pov_quality.py measures it (issue 18, item 5).
"""
from __future__ import annotations

import base64
import functools
import hashlib
import logging
import wave
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from chalicelib.media.errors import MediaError, MediaTimeoutError, TransientMediaError
from chalicelib.media.ffmpeg import run_ffmpeg, speech_wav_args
from chalicelib.media.probe import MediaInfo

logger = logging.getLogger(__name__)

SHA256_CHUNK = 8 * 1024 * 1024
# Hashes per second, each of the mean of WINDOW_S of frames sampled at SAMPLE_FPS.
FRAME_RATE = 4.0
WINDOW_S = 0.5
SAMPLE_FPS = 12
HASH_SIDE = 32
VECTOR_DIMS = 128
# Chromaprint works at 11025 Hz with a 4096-sample window and 2/3 overlap.
CHROMAPRINT_ITEM_S = 4096 / 3 / 11025
# compare() at or above this is a near-duplicate. Re-encodes score ~0.9-1.0; unrelated
# clips ~0-0.1; same audio over another picture (POV) at most ~0.45 (audio weighs 0.4);
# a trimmed part scores at most its share of the whole.
NEAR_DUPLICATE_THRESHOLD = 0.75
VIDEO_WEIGHT = 0.6
# Two hashes of the same moment differ in at most this many of 64 bits after a harsh
# re-encode (~90% of frames of high-detail content); unrelated frames differ in 20+.
FRAME_MATCH_BITS = 18
# Same for chromaprint items (32 bits): the same audio after re-encoding differs in
# at most 4-5 bits, unrelated audio in 13 on average (its bits are far from random).
AUDIO_MATCH_BITS = 4
# Start times of two encodes of one clip can differ slightly; search this far.
COMPARE_MAX_SHIFT_S = 1.0
# align() accepts partial overlaps down to this share of the shorter clip and this
# many seconds (a short overlap matches unrelated material by chance).
MIN_ALIGN_OVERLAP = 0.5
MIN_ALIGN_OVERLAP_S = 4.0
# align() scores at or above this mean the clips share material (trimmed / POV);
# unrelated clips with similar-sounding audio reach ~0.45 by chance.
ALIGN_MIN_SCORE = 0.7
SIGNATURE_VERSION = 1
# Bed fingerprint: log energies of BED_BANDS log-spaced bands (50 Hz - 7.8 kHz of the
# 16 kHz speech WAV) every BED_HOP_S, smoothed over 0.25 s (two recordings of one sound
# never share sample phase, so frame-level noise must not count) and detrended over 3 s
# (level, EQ and slow drift differ between players), z-scored per band, int8.
BED_SAMPLE_RATE = 16000
BED_STFT_HOP = 512                      # 32 ms: also Silero VAD's chunk
BED_STFT_WIN = 1024
BED_DECIMATE = 4                        # stored every 128 ms
BED_HOP_S = BED_STFT_HOP * BED_DECIMATE / BED_SAMPLE_RATE
BED_BANDS = 16
BED_SMOOTH_FRAMES = 8                   # 0.256 s
BED_DETREND_FRAMES = 95                 # ~3 s
BED_SCALE = 32.0                        # int8 = z * 32, clipped at +-4 sigma
# A frame's weight is 1 - P(speech), P dilated by this many STFT frames either side
# (VAD onsets lag the voice; a syllable's tail outlasts the chunk that detected it).
BED_SPEECH_DILATE = 6
# align_bed(): minimum overlap, minimum usable (speech-free in both) share of it, and the score at
# or above which two clips share their game sound (measured in bench/pov_quality.py:
# one bed without the other voice 0.72-0.95; but see bench/pov_quality.py: other voices
# on both sides and the same voice over two beds are not yet told apart).
BED_MIN_OVERLAP_S = 4.0
BED_MIN_USABLE = 0.25
BED_MIN_SCORE = 0.6


@dataclass(frozen=True)
class VideoSignature:
    """Per-frame 64-bit pHashes at `frame_rate` fps plus a clip-level unit vector."""

    frame_rate: float
    hashes: list[int]
    vector: list[float]

    @property
    def timestamps(self) -> list[float]:
        """Start of each hashed window, seconds from the start of the clip."""
        return [i / self.frame_rate for i in range(len(self.hashes))]

    def to_dict(self) -> dict:
        """JSON-able form (hashes as 16-digit hex: JSON numbers lose 64-bit precision)."""
        return {"frame_rate": self.frame_rate, "hashes": [f"{h:016x}" for h in self.hashes],
                "vector": [round(v, 6) for v in self.vector]}

    @classmethod
    def from_dict(cls, data: dict) -> VideoSignature:
        """Inverse of to_dict."""
        return cls(frame_rate=float(data["frame_rate"]),
                   hashes=[int(h, 16) for h in data["hashes"]],
                   vector=[float(v) for v in data["vector"]])


@dataclass(frozen=True)
class MediaSignature:
    """Everything compare() and align() need about one clip."""

    duration_s: float
    video: VideoSignature | None
    audio: list[int] | None

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {"version": SIGNATURE_VERSION, "duration_s": self.duration_s,
                "video": self.video.to_dict() if self.video else None,
                "audio": self.audio}

    @classmethod
    def from_dict(cls, data: dict) -> MediaSignature:
        """Inverse of to_dict."""
        if data.get("version") != SIGNATURE_VERSION:
            raise ValueError(f"unsupported signature version {data.get('version')}")
        return cls(duration_s=float(data["duration_s"]),
                   video=VideoSignature.from_dict(data["video"]) if data.get("video") else None,
                   audio=[int(x) for x in data["audio"]] if data.get("audio") is not None
                   else None)


@dataclass(frozen=True)
class BedFingerprint:
    """Game-sound features every BED_HOP_S: int8 band values and uint8 non-speech weights."""

    hop_s: float
    bands: int
    values: bytes    # frames x bands, int8, row-major
    weights: bytes   # frames, uint8: 255 = no speech heard, 0 = speech

    @property
    def frames(self) -> int:
        return len(self.weights)

    def arrays(self):
        """(frames x bands float32 values, frames float32 weights in [0, 1])."""
        import numpy as np

        values = np.frombuffer(self.values, np.int8).reshape(-1, self.bands)
        return (values.astype(np.float32) / BED_SCALE,
                np.frombuffer(self.weights, np.uint8).astype(np.float32) / 255.0)

    def to_dict(self) -> dict:
        """JSON-able form (base64 bytes: ~170 characters per second of audio)."""
        return {"hop_s": self.hop_s, "bands": self.bands,
                "values": base64.b64encode(self.values).decode(),
                "weights": base64.b64encode(self.weights).decode()}

    @classmethod
    def from_dict(cls, data: dict) -> BedFingerprint:
        """Inverse of to_dict."""
        return cls(hop_s=float(data["hop_s"]), bands=int(data["bands"]),
                   values=base64.b64decode(data["values"]),
                   weights=base64.b64decode(data["weights"]))


@dataclass(frozen=True)
class Alignment:
    """Where the shorter clip starts inside the longer one, and how well it matches."""

    offset_s: float
    score: float
    source: str  # "video" or "audio"

    def __iter__(self) -> Iterator[float]:
        """Unpacks as (offset_s, score)."""
        return iter((self.offset_s, self.score))


def sha256_stream(fileobj: BinaryIO, chunk: int = SHA256_CHUNK) -> str:
    """Hex SHA-256 of a stream, read `chunk` bytes at a time."""
    digest = hashlib.sha256()
    for block in iter(lambda: fileobj.read(chunk), b""):
        digest.update(block)
    return digest.hexdigest()


def media_signature(src: str | Path, info: MediaInfo, timeout_s: float,
                    speech_wav: Path | None = None) -> MediaSignature:
    """Video and (when there is audio) audio signatures of `src`.

    `speech_wav`: also write the 16 kHz speech WAV from the same audio decode
    (the transcribe step reads it, so nothing decodes the audio twice).
    """
    video = video_signature(src, info, timeout_s) if info.has_video else None
    audio = audio_fingerprint(src, timeout_s, speech_wav) if info.has_audio else None
    return MediaSignature(duration_s=float(info.duration_s or 0.0), video=video, audio=audio)


def read_speech_wav(path: str | Path):
    """The 16 kHz mono 16-bit WAV written by speech_wav_args() as float32 samples."""
    import numpy as np

    with wave.open(str(path), "rb") as wav:
        if wav.getframerate() != BED_SAMPLE_RATE or wav.getnchannels() != 1 or \
                wav.getsampwidth() != 2:
            raise MediaError("speech WAV is not 16 kHz mono 16-bit")
        pcm = wav.readframes(wav.getnframes())
    return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0


def bed_fingerprint(samples) -> BedFingerprint | None:
    """The game-sound fingerprint of 16 kHz mono float32 `samples` (None if under a hop)."""
    import numpy as np

    n = len(samples) // BED_STFT_HOP
    if n < BED_DECIMATE:
        return None
    energies = _band_energies(samples, n)                       # n x bands, power
    smoothed = _moving_mean(energies, BED_SMOOTH_FRAMES)
    logs = np.log(smoothed + 1e-10)
    feats = logs - _moving_mean(logs, BED_DETREND_FRAMES)
    feats = feats[::BED_DECIMATE]
    feats = (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-6)
    values = np.clip(np.round(feats * BED_SCALE), -127, 127).astype(np.int8)
    speech = _speech_probability(samples, n)
    # Dilate, then take each stored frame's loudest-speech moment over its span.
    speech = _moving_max(speech, BED_SPEECH_DILATE)
    span = len(feats) * BED_DECIMATE
    speech = np.pad(speech, (0, max(0, span - len(speech))))[:span]
    speech = speech.reshape(len(feats), BED_DECIMATE).max(axis=1)
    weights = np.round((1.0 - speech) * 255).astype(np.uint8)
    return BedFingerprint(hop_s=BED_HOP_S, bands=BED_BANDS, values=values.tobytes(),
                          weights=weights.tobytes())


def align_bed(short: BedFingerprint, long_: BedFingerprint) -> Alignment:
    """Offset (s) of `short` inside `long_` by their game sound, and a [0, 1] score.

    The score is the weighted correlation of the two feature sequences over their
    overlap, each frame weighted by how sure both VADs are that nobody speaks in it, so
    neither player's voice counts. Overlaps under BED_MIN_OVERLAP_S, or whose speech-free
    weight is under BED_MIN_USABLE of it, are not considered. Negative offset: `short`
    starts first.
    """
    import numpy as np

    if short.bands != long_.bands or abs(short.hop_s - long_.hop_s) > 1e-9:
        return Alignment(0.0, 0.0, "bed")
    fa, wa = short.arrays()
    fb, wb = long_.arrays()
    min_overlap = max(1, round(BED_MIN_OVERLAP_S / short.hop_s))
    if min(len(fa), len(fb)) < min_overlap:
        return Alignment(0.0, 0.0, "bed")
    # Whole frames are weighted: keeping the bands outside the voice in speech frames was
    # measured to let the same voice over two beds score 0.6 (sibilants, low harmonics).
    wa2 = np.repeat(wa[:, None], fa.shape[1], axis=1)
    wb2 = np.repeat(wb[:, None], fb.shape[1], axis=1)
    num = _xcorr(wa2 * fa, wb2 * fb)
    energy_a = _xcorr(wa2 * fa * fa, wb2)
    energy_b = _xcorr(wa2, wb2 * fb * fb)
    usable = _xcorr(wa2, wb2) / fa.shape[1]
    lags = np.arange(-(len(fa) - 1), len(fb))
    overlap = np.minimum(np.minimum(len(fa), len(fb)),
                         np.minimum(len(fa) + lags, len(fb) - lags))
    score = num / np.sqrt(np.maximum(energy_a * energy_b, 1e-9))
    ok = (overlap >= min_overlap) & (usable >= BED_MIN_USABLE * np.maximum(overlap, 1))
    score = np.where(ok, score, -1.0)
    k = int(np.argmax(score))
    if score[k] <= 0:
        return Alignment(0.0, 0.0, "bed")
    refined = float(lags[k])
    if 0 < k < len(score) - 1 and ok[k - 1] and ok[k + 1]:
        left, mid, right = score[k - 1], score[k], score[k + 1]
        denom = left - 2 * mid + right
        if denom < 0:
            refined += float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))
    # lag = frames of `long_` before `short` starts: `short`'s frame t is long_'s t + lag.
    return Alignment(round(refined * short.hop_s, 3), round(float(score[k]), 4), "bed")


def _band_energies(samples, n: int):
    """n x BED_BANDS band powers of a Hann STFT (window BED_STFT_WIN, hop BED_STFT_HOP)."""
    import numpy as np

    padded = np.pad(np.asarray(samples[:n * BED_STFT_HOP], np.float32),
                    (BED_STFT_WIN // 2, BED_STFT_WIN // 2))
    window = np.hanning(BED_STFT_WIN).astype(np.float32)
    bands = _bed_band_matrix()
    out = np.empty((n, BED_BANDS), np.float32)
    chunk = 2048  # frames per FFT batch: bounded memory for a 30-minute clip
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        frames = np.lib.stride_tricks.sliding_window_view(
            padded[start * BED_STFT_HOP:(start + count - 1) * BED_STFT_HOP + BED_STFT_WIN],
            BED_STFT_WIN)[::BED_STFT_HOP]
        power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
        out[start:start + count] = power @ bands
    return out


@functools.cache
def _bed_band_matrix():
    import numpy as np

    freqs = np.fft.rfftfreq(BED_STFT_WIN, 1 / BED_SAMPLE_RATE)
    edges = np.geomspace(50.0, 7800.0, BED_BANDS + 1)
    return np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in zip(edges[:-1], edges[1:])],
                    axis=1).astype(np.float32)


def _moving_mean(x, width: int):
    """Centred moving mean along axis 0 (edges repeat the end values)."""
    import numpy as np

    pad = np.pad(x, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
    c = np.concatenate([np.zeros((1, x.shape[1]), np.float64), np.cumsum(pad, axis=0)])
    return ((c[width:] - c[:-width]) / width).astype(np.float32)


def _moving_max(x, radius: int):
    import numpy as np

    pad = np.pad(x, radius)
    return np.lib.stride_tricks.sliding_window_view(pad, 2 * radius + 1).max(axis=1)


def _speech_probability(samples, n: int):
    """Silero VAD's speech probability per BED_STFT_HOP chunk (faster-whisper ships it)."""
    import numpy as np
    from faster_whisper.vad import get_vad_model

    audio = np.ascontiguousarray(samples[:n * BED_STFT_HOP], np.float32)
    probs = np.asarray(get_vad_model()(audio, num_samples=BED_STFT_HOP)).reshape(-1)
    return np.pad(probs, (0, max(0, n - len(probs))))[:n].astype(np.float32)


def _xcorr(a, b):
    """sum over columns of the cross-correlation: out[lag + len(a) - 1] = sum_t a[t] b[t + lag]."""
    import numpy as np

    size = len(a) + len(b) - 1
    nfft = 1 << (size - 1).bit_length()
    spec = np.fft.rfft(a[::-1], nfft, axis=0) * np.fft.rfft(b, nfft, axis=0)
    return np.fft.irfft(spec.sum(axis=1), nfft)[:size]


def video_signature(src: str | Path, info: MediaInfo, timeout_s: float) -> VideoSignature:
    """Hash (DCT pHash, 64 bits) the average of each WINDOW_S of frames, every 1/FRAME_RATE s."""
    import numpy as np

    if not info.has_video:
        raise MediaError("no video stream to fingerprint")
    side = HASH_SIDE
    args = ["-v", "error", "-i", str(src), "-map", "0:v:0", "-an",
            "-vf", f"fps={SAMPLE_FPS},scale={side}:{side}:flags=area,format=gray",
            "-f", "rawvideo", "pipe:1"]
    raw = run_ffmpeg(args, timeout_s=timeout_s).stdout
    count = len(raw) // (side * side)
    if count == 0:
        raise MediaError("no video frames to fingerprint")
    frames = np.frombuffer(raw[:count * side * side], np.uint8).reshape(count, side, side)
    hop = round(SAMPLE_FPS / FRAME_RATE)
    window = round(SAMPLE_FPS * WINDOW_S)
    # Averaging a window rather than picking single frames makes the hash indifferent to
    # which exact frame a re-encode lands on, and to per-frame coding noise.
    cumsum = np.concatenate([np.zeros((1, side, side)),
                             np.cumsum(frames, axis=0, dtype=np.float64)])
    starts = np.arange(0, max(1, count - window + 1), hop)
    ends = np.minimum(starts + window, count)
    means = (cumsum[ends] - cumsum[starts]) / (ends - starts)[:, None, None]
    hashes, lows = _phash(means)
    return VideoSignature(frame_rate=FRAME_RATE, hashes=hashes, vector=_clip_vector(lows))


def audio_fingerprint(src: str | Path, timeout_s: float,
                      speech_wav: Path | None = None) -> list[int] | None:
    """Chromaprint raw fingerprint (unsigned 32-bit items), None without an audio stream.

    With `speech_wav` (only for a source known to have audio), the same decode
    also writes the speech WAV there.
    """
    args = ["-v", "error", "-i", str(src), "-map", "0:a:0?", "-vn", "-f", "chromaprint",
            "-fp_format", "raw", "pipe:1"]
    if speech_wav is not None:
        args = ["-y", *args, "-map", "0:a:0", *speech_wav_args(), str(Path(speech_wav).resolve())]
    try:
        raw = run_ffmpeg(args, timeout_s=timeout_s).stdout
    except (MediaTimeoutError, TransientMediaError):
        raise
    except MediaError as exc:
        # An output with no streams: the file has no audio.
        if "does not contain any stream" in exc.reason or "no streams" in exc.reason.lower():
            return None
        raise
    if not raw:
        return None
    import numpy as np

    return np.frombuffer(raw[: len(raw) // 4 * 4], "<u4").tolist()


def compare(sig_a: MediaSignature, sig_b: MediaSignature) -> float:
    """Similarity in [0, 1] of two whole clips (time-aligned, same length expected)."""
    video = _video_similarity(sig_a.video, sig_b.video)
    audio = _audio_similarity(sig_a.audio, sig_b.audio)
    if video is None and audio is None:
        return 0.0
    if audio is None:
        return video
    if video is None:
        return audio
    return VIDEO_WEIGHT * video + (1 - VIDEO_WEIGHT) * audio


def is_near_duplicate(sig_a: MediaSignature, sig_b: MediaSignature,
                      threshold: float = NEAR_DUPLICATE_THRESHOLD) -> bool:
    """True when `compare` reaches NEAR_DUPLICATE_THRESHOLD (see its comment)."""
    return compare(sig_a, sig_b) >= threshold


def vector_similarity(sig_a: MediaSignature, sig_b: MediaSignature) -> float:
    """Cosine similarity of the clip vectors (what the pgvector index ranks by)."""
    if not sig_a.video or not sig_b.video:
        return 0.0
    return float(sum(x * y for x, y in zip(sig_a.video.vector, sig_b.video.vector, strict=True)))


def align(short_sig: MediaSignature, long_sig: MediaSignature) -> Alignment:
    """Offset (s) of `short_sig` inside `long_sig` and a [0, 1] match score.

    Tries the frame-hash sequence and the chromaprint sequence and keeps the better
    match, so a clip of the same moment from another player (different picture, same
    audio) aligns by its audio. A negative offset means the short clip starts first.
    """
    candidates = []
    if short_sig.video and long_sig.video:
        rate = short_sig.video.frame_rate
        # Mean distance rather than a match count: its peak is sharper to place in time.
        offset, score = _best_offset(short_sig.video.hashes, long_sig.video.hashes,
                                     round(MIN_ALIGN_OVERLAP_S * rate), _video_ber_score)
        candidates.append(Alignment(offset / rate, score, "video"))
    if short_sig.audio and long_sig.audio:
        offset, score = _best_offset(short_sig.audio, long_sig.audio,
                                     round(MIN_ALIGN_OVERLAP_S / CHROMAPRINT_ITEM_S),
                                     _audio_match_score)
        candidates.append(Alignment(offset * CHROMAPRINT_ITEM_S, score, "audio"))
    if not candidates:
        return Alignment(0.0, 0.0, "none")
    best = max(candidates, key=lambda a: a.score)
    return Alignment(round(best.offset_s, 3), round(best.score, 4), best.source)


def _dct_matrix(n: int):
    import numpy as np

    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


@functools.cache
def _dct32():
    return _dct_matrix(HASH_SIDE)


def _phash(frames):
    """64-bit hashes (low 8x8 DCT vs its median, DC excluded) and the 8x8 blocks."""
    import numpy as np

    d = _dct32()
    coeffs = d @ frames @ d.T
    low = coeffs[:, :8, :8].reshape(len(frames), 64)
    ac = low[:, 1:]
    bits = ac > np.median(ac, axis=1, keepdims=True)
    # 63 AC bits plus one for "brighter than mid-gray", so all 64 bits carry information.
    bits = np.concatenate([bits, (low[:, :1] / HASH_SIDE > 127.5)], axis=1)
    weights = (1 << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)
    hashes = (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    return [int(h) for h in hashes], low


def _clip_vector(lows) -> list[float]:
    """VECTOR_DIMS floats, L2-normalised: mean and spread over time of each frame's
    normalised low-frequency DCT (its coarse layout), robust to scale and bitrate."""
    import numpy as np

    ac = lows[:, 1:].copy()
    ac /= np.linalg.norm(ac, axis=1, keepdims=True) + 1e-9
    mean_luma = lows[:, :1] / (HASH_SIDE * 255.0)
    feats = np.concatenate([mean_luma, ac], axis=1)  # 64 per frame
    vec = np.concatenate([feats.mean(axis=0), feats.std(axis=0)])
    vec /= np.linalg.norm(vec) + 1e-9
    assert vec.shape == (VECTOR_DIMS,)
    return [float(v) for v in vec]


def _video_match_score(dist) -> float:
    # Share of frames that match, not mean distance: coding noise moves a few bits of
    # every hash, while unrelated frames differ in about half of them.
    return float((dist <= FRAME_MATCH_BITS).mean())


def _video_ber_score(dist) -> float:
    # Random 64-bit hashes disagree in half their bits: that maps to 0.
    return max(0.0, 1 - 2 * float(dist.mean()) / 64)


def _audio_match_score(dist) -> float:
    return float((dist <= AUDIO_MATCH_BITS).mean())


def _video_similarity(a: VideoSignature | None, b: VideoSignature | None) -> float | None:
    if a is None or b is None or not a.hashes or not b.hashes:
        return None
    return _aligned_similarity(a.hashes, b.hashes, int(COMPARE_MAX_SHIFT_S * a.frame_rate),
                               _video_match_score)


def _audio_similarity(a: list[int] | None, b: list[int] | None) -> float | None:
    if not a or not b:
        return None
    return _aligned_similarity(a, b, int(COMPARE_MAX_SHIFT_S / CHROMAPRINT_ITEM_S),
                               _audio_match_score)


def _aligned_similarity(a: list[int], b: list[int], max_shift: int,
                        score: Callable[[Any], float]) -> float:
    """Best over small shifts of score(Hamming distances) x overlap / longer length."""
    import numpy as np

    x = np.asarray(a, np.uint64)
    y = np.asarray(b, np.uint64)
    longer = max(len(x), len(y))
    best = 0.0
    for shift in range(-max_shift, max_shift + 1):
        xs, ys = (x[shift:], y) if shift >= 0 else (x, y[-shift:])
        n = min(len(xs), len(ys))
        if n == 0:
            continue
        best = max(best, score(np.bitwise_count(xs[:n] ^ ys[:n])) * n / longer)
    return best


def _best_offset(short: list[int], long_: list[int], min_items: int,
                 score: Callable[[Any], float]) -> tuple[float, float]:
    """(offset in items, score) of the best match of `short` over `long_`, sub-item refined."""
    import numpy as np

    if len(short) > len(long_):
        offset, best = _best_offset(long_, short, min_items, score)
        return -offset, best
    x = np.asarray(short, np.uint64)
    y = np.asarray(long_, np.uint64)
    min_overlap = min(len(x), max(int(np.ceil(len(x) * MIN_ALIGN_OVERLAP)), min_items))
    offsets = range(-(len(x) - min_overlap), len(y) - min_overlap + 1)
    scores = np.zeros(len(offsets))
    for k, off in enumerate(offsets):
        xs = x[max(0, -off):]
        ys = y[max(0, off):]
        n = min(len(xs), len(ys))
        scores[k] = score(np.bitwise_count(xs[:n] ^ ys[:n]))
    k = int(np.argmax(scores))
    refined = float(offsets[k])
    # A parabola through the peak and its neighbours places it between two samples.
    if 0 < k < len(scores) - 1:
        left, mid, right = scores[k - 1], scores[k], scores[k + 1]
        denom = left - 2 * mid + right
        if denom < 0:
            refined += float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))
    return refined, float(scores[k])
