"""What a clip sounds like, measured once: loudness, sound onsets, quiet stretches, keyframes.

One FFmpeg process reads the source once (it may be a presigned URL, read under
the runner's UPLOADED_URL policy: http(s) only, the upload containers only; FFmpeg
fetches byte ranges, so nothing lands in Lambda's small /tmp) and produces
- 16 kHz mono PCM for numpy (spectral flux onsets, quiet stretches);
- EBU R128 momentary loudness every 100 ms (the `ebur128` filter: K-weighted,
  400 ms window, the broadcast measure of how loud something feels), written
  by `ametadata` to a file;
- the video packets' keyframe flags (`framecrc` of a stream copy: a demux, no
  decode), the equivalent of ffprobe's packet flags.

Silence in game audio is never digital silence (the bed of music and ambience
runs under everything), so quiet stretches are measured against the clip's own
noise floor rather than a fixed dBFS threshold like `silencedetect` needs.

numpy and FFmpeg: pipeline Lambdas only, never the API.
"""
from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from chalicelib import aws
from chalicelib.media.ffmpeg import run_ffmpeg, upload_policy

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
HOP_S = 0.1                      # the analysis grid (ebur128's momentary rate)
_FRAME = 512                     # STFT window (32 ms)
_STEP = 160                      # STFT hop (10 ms)
_CHUNK_FRAMES = 6000             # STFT frames per chunk (60 s): bounded memory on long clips
_QUIET_MARGIN_DB = 6.0           # quieter than the noise floor + this is "quiet"
_MIN_QUIET_S = 0.25
_MOMENTARY_WINDOW_S = 0.4

_FRAME_RE = re.compile(r"^frame:\d+\s+pts:\S+\s+pts_time:(\S+)")
_TB_RE = re.compile(r"^#tb 0: (\d+)/(\d+)")


@dataclass
class AudioAnalysis:
    """Features on a 100 ms grid (index i covers [i*HOP_S, (i+1)*HOP_S)) plus edges."""

    duration: float
    loudness: list[float] = field(default_factory=list)   # LUFS, momentary, centred
    onset: list[float] = field(default_factory=list)      # spectral-flux peaks, robust z-score
    quiet: list[tuple[float, float]] = field(default_factory=list)
    keyframes: list[float] = field(default_factory=list)
    has_audio: bool = True

    def edges(self) -> dict:
        """The small part refining needs later (stored in Postgres)."""
        return {"duration": self.duration, "quiet": [list(q) for q in self.quiet],
                "keyframes": self.keyframes}

    def to_dict(self) -> dict:
        return asdict(self)


def analyse(source: str, *, has_audio: bool, duration: float | None, timeout_s: float) -> AudioAnalysis:
    """Measure a source (path or URL) in one FFmpeg pass; see the module docstring."""
    with tempfile.TemporaryDirectory(prefix="moments-", dir=aws.scratch_dir()) as tmp:
        meta, keys = Path(tmp) / "loudness.txt", Path(tmp) / "packets.txt"
        args = ["-v", "error", "-i", source]
        if has_audio:
            graph = (f"[0:a:0]aresample={SAMPLE_RATE},aformat=sample_fmts=flt:channel_layouts=mono,"
                     f"asplit=2[pcm][m];[m]ebur128=metadata=1,ametadata=mode=print:file={meta}[mo]")
            args += ["-filter_complex", graph, "-map", "[pcm]", "-f", "f32le", "pipe:1",
                     "-map", "[mo]", "-f", "null", "-"]
        args += ["-map", "0:v:0", "-c", "copy", "-f", "framecrc", str(keys)]
        result = run_ffmpeg(args, timeout_s=timeout_s, inputs=upload_policy(source))
        keyframes = parse_keyframes(keys.read_text() if keys.exists() else "")
        if not has_audio:
            return AudioAnalysis(duration=duration or 0.0, keyframes=keyframes, has_audio=False)
        pcm = np.frombuffer(result.stdout, dtype="<f4")
        length = len(pcm) / SAMPLE_RATE
        loud = loudness_grid(meta.read_text() if meta.exists() else "", length)
    bins = len(loud)
    return AudioAnalysis(duration=max(length, duration or 0.0), loudness=loud,
                         onset=onset_strength(pcm, bins), quiet=quiet_stretches(pcm),
                         keyframes=keyframes)


def loudness_grid(text: str, length_s: float) -> list[float]:
    """Momentary loudness per 100 ms bin, from ametadata's print of ebur128's values.

    Each value measures the 400 ms ending at its frame; it is moved back by
    half the window so a sound's loudness sits where the sound is.
    """
    bins = max(1, int(np.ceil(length_s / HOP_S)))
    out = np.full(bins, -70.0)
    time = None
    for line in text.splitlines():
        match = _FRAME_RE.match(line)
        if match:
            time = float(match.group(1))
        elif line.startswith("lavfi.r128.M=") and time is not None:
            centre = time - _MOMENTARY_WINDOW_S / 2
            i = int(round(centre / HOP_S))
            if 0 <= i < bins:
                out[i] = max(-70.0, float(line.split("=", 1)[1]))
    return [round(float(v), 2) for v in out]


def onset_strength(pcm: np.ndarray, bins: int) -> list[float]:
    """Spectral flux (rises of log-magnitude across frequencies) per bin, as a robust z-score.

    Shots, explosions and impacts are broadband and sudden: the flux peaks far
    above its median; steady noise and music hardly move it.
    """
    if len(pcm) < _FRAME or bins == 0:
        return [0.0] * bins
    window = np.hanning(_FRAME).astype(np.float32)
    n_frames = 1 + (len(pcm) - _FRAME) // _STEP
    flux = np.zeros(n_frames, dtype=np.float32)
    previous = None
    for start in range(0, n_frames, _CHUNK_FRAMES):
        stop = min(n_frames, start + _CHUNK_FRAMES)
        idx = np.arange(start, stop)[:, None] * _STEP + np.arange(_FRAME)[None, :]
        spectrum = np.log1p(100.0 * np.abs(np.fft.rfft(pcm[idx] * window, axis=1)))
        if previous is None:   # the very first frame has nothing to rise from
            previous = spectrum[:1]
        flux[start:stop] = np.maximum(0.0, np.diff(np.vstack([previous, spectrum]), axis=0)).sum(axis=1)
        previous = spectrum[-1:]
    per_bin = int(round(HOP_S * SAMPLE_RATE / _STEP))
    padded = np.zeros(bins * per_bin, dtype=np.float32)
    padded[:min(len(flux), len(padded))] = flux[:len(padded)]
    peaks = padded.reshape(bins, per_bin).max(axis=1)
    return [round(float(v), 2) for v in robust_z(peaks)]


def quiet_stretches(pcm: np.ndarray) -> list[tuple[float, float]]:
    """Stretches at least 250 ms long within 6 dB of the clip's noise floor: the edges of sound."""
    step = int(0.01 * SAMPLE_RATE)
    n = len(pcm) // step
    if n == 0:
        return []
    rms = np.sqrt(np.mean(pcm[:n * step].reshape(n, step).astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(rms + 1e-7)
    smooth = np.convolve(db, np.ones(5) / 5, mode="same")
    floor = float(np.percentile(smooth, 10))
    quiet = smooth <= floor + _QUIET_MARGIN_DB
    out = []
    start = None
    for i, q in enumerate(np.append(quiet, False)):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if (i - start) * 0.01 >= _MIN_QUIET_S:
                out.append((round(start * 0.01, 2), round(i * 0.01, 2)))
            start = None
    return out


def parse_keyframes(text: str) -> list[float]:
    """Keyframe times (s) from framecrc lines: packets without flags, or with the key flag."""
    num, den = 1, 1
    times = []
    for line in text.splitlines():
        match = _TB_RE.match(line)
        if match:
            num, den = int(match.group(1)), int(match.group(2))
            continue
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 6 or parts[0] != "0":
            continue
        flags = next((p for p in parts[6:] if p.startswith("F=")), None)
        if flags is None or int(flags[2:], 16) & 1:
            times.append(round(int(parts[2]) * num / den, 4))
    return sorted(set(times))


def robust_z(values: np.ndarray) -> np.ndarray:
    """(x - median) / (1.4826 * MAD): outliers stand out, the bed of noise sits near 0."""
    if len(values) == 0:
        return values
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median))) * 1.4826
    return (values - median) / max(mad, 1e-6 + 0.05 * abs(median))
