"""Content signatures for duplicate detection and for aligning related clips in time.

Video: frames scaled to 32x32 grayscale, averaged over WINDOW_S windows every
1/FRAME_RATE s, each window hashed with a DCT perceptual hash (64 bits); the sequence
survives re-encoding, resizing, bitrate and container changes. A fixed-length vector
summarising the clip goes into a pgvector index to find candidates, which `compare`
then checks frame by frame.
Audio: chromaprint's raw fingerprint (one 32-bit item every ~0.124 s), and the game-sound
landmarks of chalicelib.media.gamesound (spectral peaks outside speech), which match
two players' clips of one moment across their different voice chats (POV).
"""
from __future__ import annotations

import functools
import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from chalicelib import aws
from chalicelib.media import gamesound, thumbnails
from chalicelib.media.errors import MediaError, MediaTimeoutError, TransientMediaError
from chalicelib.media.ffmpeg import aac_track_args, run_ffmpeg, speech_wav_args
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
    """Everything compare() and align() need about one clip.

    `game`: game-sound landmarks (None without audio, and in signatures stored before
    they existed: the optional "game" key keeps SIGNATURE_VERSION 1 readable both ways).
    """

    duration_s: float
    video: VideoSignature | None
    audio: list[int] | None
    game: gamesound.Landmarks | None = None

    def to_dict(self) -> dict:
        """JSON-able form."""
        out = {"version": SIGNATURE_VERSION, "duration_s": self.duration_s,
               "video": self.video.to_dict() if self.video else None,
               "audio": self.audio}
        if self.game is not None:
            out["game"] = self.game.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> MediaSignature:
        """Inverse of to_dict."""
        if data.get("version") != SIGNATURE_VERSION:
            raise ValueError(f"unsupported signature version {data.get('version')}")
        return cls(duration_s=float(data["duration_s"]),
                   video=VideoSignature.from_dict(data["video"]) if data.get("video") else None,
                   audio=[int(x) for x in data["audio"]] if data.get("audio") is not None
                   else None,
                   game=gamesound.Landmarks.from_dict(data["game"]) if data.get("game") else None)


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
                    speech_wav: Path | None = None, aac: dict[int, Path] | None = None,
                    thumbs: thumbnails.Candidates | None = None) -> MediaSignature:
    """Video and (when there is audio) audio signatures of `src`.

    `speech_wav`: also write the 16 kHz speech WAV from the same audio decode
    (the transcribe step reads it, so nothing decodes the audio twice); the game-sound
    landmarks are computed from that WAV (a scratch one when `speech_wav` is None).
    `aac`: also encode the whole audio track as the ladder's AAC, one file per bit rate
    (the chunked ladder's chunks take their frames from it, media/chunks.py).
    `thumbs`: also write the thumbnail candidates from the video decode.
    """
    if not info.has_audio:
        video = video_signature(src, info, timeout_s, thumbs=thumbs) if info.has_video else None
        return MediaSignature(duration_s=float(info.duration_s or 0.0), video=video, audio=None)
    from concurrent.futures import ThreadPoolExecutor

    with tempfile.TemporaryDirectory(dir=aws.scratch_dir()) as tmp, ThreadPoolExecutor(1) as pool:
        wav = Path(speech_wav) if speech_wav is not None else Path(tmp) / "speech.wav"
        # Two FFmpeg processes at once: the audio side (chromaprint, the speech WAV, the
        # AAC encodes) runs on one core, beside the video decode's frame threads.
        audio_job = pool.submit(audio_fingerprint, src, timeout_s, wav, aac=aac)
        video = video_signature(src, info, timeout_s, thumbs=thumbs) if info.has_video else None
        audio = audio_job.result()
        game = gamesound.landmarks(gamesound.read_speech_wav(wav)) if audio is not None else None
    return MediaSignature(duration_s=float(info.duration_s or 0.0), video=video, audio=audio,
                          game=game)


def video_signature(src: str | Path, info: MediaInfo, timeout_s: float, *,
                    thumbs: thumbnails.Candidates | None = None) -> VideoSignature:
    """Hash (DCT pHash, 64 bits) the average of each WINDOW_S of frames, every 1/FRAME_RATE s.

    `thumbs`: the same decode also writes the thumbnail candidates (at the nearest
    of its SAMPLE_FPS frames), so nothing seeks into the source for them.
    """
    import numpy as np

    if not info.has_video:
        raise MediaError("no video stream to fingerprint")
    side = HASH_SIDE
    signature = f"scale={side}:{side}:flags=area,format=gray"
    picks = thumbnails.frame_indices(thumbs.times, SAMPLE_FPS) if thumbs else []
    if picks:
        graph = (f"[0:v:0]fps={SAMPLE_FPS},split=2[a][b];[a]{signature}[sig];"
                 + thumbnails.select_chain("b", picks, thumbs.size, "thumbs"))
        args = ["-y", "-v", "error", "-i", str(src), "-filter_complex", graph,
                "-map", "[sig]", "-f", "rawvideo", "pipe:1", *thumbnails.raw_output_args("thumbs", thumbs.raw)]
    else:
        args = ["-v", "error", "-i", str(src), "-map", "0:v:0", "-an",
                "-vf", f"fps={SAMPLE_FPS},{signature}", "-f", "rawvideo", "pipe:1"]
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


def audio_fingerprint(src: str | Path, timeout_s: float, speech_wav: Path | None = None, *,
                      aac: dict[int, Path] | None = None) -> list[int] | None:
    """Chromaprint raw fingerprint (unsigned 32-bit items), None without an audio stream.

    With `speech_wav` (only for a source known to have audio), the same decode
    also writes the speech WAV there.
    """
    args = ["-v", "error", "-i", str(src), "-map", "0:a:0?", "-vn", "-f", "chromaprint",
            "-fp_format", "raw", "pipe:1"]
    if speech_wav is not None:
        args = ["-y", *args, "-map", "0:a:0", *speech_wav_args(), str(Path(speech_wav).resolve())]
        for bps, path in (aac or {}).items():
            args += ["-map", "0:a:0", *aac_track_args(bps), str(Path(path).resolve())]
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
