"""Thumbnails: a representative frame, and the "Processing…" / "DUPLICATE" overlays."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from chalicelib.media.errors import (InvalidMediaError, MediaError, MediaTimeoutError,
                                     TransientMediaError)
from chalicelib.media.ffmpeg import run_ffmpeg
from chalicelib.media.probe import MediaInfo

logger = logging.getLogger(__name__)

# The long side of a thumbnail, in pixels.
THUMB_SIDE = 640
TEMPLATE_SIZE = (640, 360)
JPEG_QUALITY = 85
# Where to look for a frame, as shares of the duration: clips often open on black or a
# loading screen, so the early candidates are not favoured.
CANDIDATE_POSITIONS = (0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9)
# Frames darker/brighter than this mean luma, or flatter than this spread, look empty.
MIN_MEAN_LUMA = 24.0
MAX_MEAN_LUMA = 235.0
MIN_LUMA_STD = 12.0


@dataclass(frozen=True)
class FrameScore:
    """How interesting a candidate frame looks."""

    time_s: float
    mean_luma: float
    std_luma: float

    @property
    def score(self) -> float:
        """Luma spread, heavily penalised when the frame is near black, white or flat."""
        ok = (MIN_MEAN_LUMA <= self.mean_luma <= MAX_MEAN_LUMA
              and self.std_luma >= MIN_LUMA_STD)
        return self.std_luma + (1000.0 if ok else 0.0)


def thumb_size(info: MediaInfo) -> tuple[int, int]:
    """(width, height) of a thumbnail of `info`'s picture: long side at most THUMB_SIDE, even."""
    scale = min(1.0, THUMB_SIDE / max(info.width, info.height, 1))
    width = max(2, round(info.width * scale / 2) * 2) if info.width else THUMB_SIDE
    height = max(2, round(info.height * scale / 2) * 2) if info.height else THUMB_SIDE * 9 // 16
    return width, height


def candidate_times(info: MediaInfo) -> list[float]:
    """The times (s) at which a thumbnail candidate is taken (CANDIDATE_POSITIONS of the length)."""
    duration = info.duration_s or 0.0
    return sorted({round(duration * p, 3) for p in CANDIDATE_POSITIONS}) if duration > 1 else [0.0]


@dataclass(frozen=True)
class Candidates:
    """Thumbnail candidates a decode of the source writes as it goes, to be picked from later.

    `raw`: where the RGB24 frames of `size` are written, one per time in `times`
    (thumbnail-sized: the decode's frames are scaled once each, for the chosen few).
    """

    raw: Path
    times: tuple[float, ...]
    size: tuple[int, int]

    @classmethod
    def of(cls, info: MediaInfo, raw: Path) -> Candidates:
        """The candidates of `info`'s clip (candidate_times, thumb_size), written to `raw`."""
        return cls(raw=raw, times=tuple(candidate_times(info)), size=thumb_size(info))

    def picked_times(self, fps) -> list[float]:
        """The times of the frames a decode at `fps` wrote (frame_indices), in order."""
        return frame_times(frame_indices(self.times, fps), fps)

    def best(self, fps, out_jpg: str | Path) -> FrameScore:
        """Write the most interesting of the frames a decode at `fps` wrote (best_raw_frame)."""
        return best_raw_frame(self.raw, self.size, self.picked_times(fps), out_jpg)


def frame_indices(times: tuple[float, ...], fps) -> list[int]:
    """Frame numbers at `fps` (after an fps filter) nearest to `times`, without repeats."""
    return sorted({max(0, round(t * fps)) for t in times})


def frame_times(frame_idx: list[int], fps) -> list[float]:
    """The times (s) of frames numbered `frame_idx` at `fps`."""
    return [round(i / float(fps), 3) for i in frame_idx]


def select_chain(source: str, frame_idx: list[int], size: tuple[int, int], label: str) -> str:
    """A filter chain from pad `source` to pad `label`: the frames numbered `frame_idx`, thumbnail-sized RGB."""
    # select drops the other frames before scaling: the extra branch costs ~nothing.
    picks = "+".join(f"eq(n,{i})" for i in frame_idx)
    width, height = size
    return f"[{source}]select='{picks}',scale={width}:{height}:flags=area,format=rgb24[{label}]"


def raw_output_args(label: str, raw: Path) -> list[str]:
    """Output options writing pad `label`'s frames to `raw` as they are (no frame rate kept)."""
    # passthrough: write exactly the selected frames, no duplicates to keep a frame rate.
    return ["-map", f"[{label}]", "-fps_mode", "passthrough", "-c:v", "rawvideo",
            "-f", "rawvideo", str(Path(raw).resolve())]


def representative_frame(src: str | Path, info: MediaInfo, out_jpg: str | Path,
                         timeout_s: float = 60) -> FrameScore:
    """Write the most interesting of a few candidate frames of `src` as a JPEG.

    Seeks to each candidate (one short decode each, from the keyframe before it). The
    dedup and transcode steps get the same candidates from their own decode instead
    (Candidates, best_raw_frame).
    `timeout_s` bounds the whole search, not each candidate.
    """
    import time

    width, height = thumb_size(info)
    candidates = []
    deadline = time.monotonic() + timeout_s
    for t in candidate_times(info):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if candidates:
                break
            raise MediaTimeoutError(f"no thumbnail frame within {timeout_s:g} s")
        frame = _frame_rgb(src, t, width, height, remaining)
        if frame is not None:
            candidates.append((t, frame))
    return _save_best(candidates, (width, height), out_jpg)


def best_raw_frame(raw: str | Path, size: tuple[int, int], times: list[float],
                   out_jpg: str | Path) -> FrameScore:
    """Write the most interesting of the RGB24 frames in `raw` (taken at `times`) as a JPEG.

    Raises InvalidMediaError when the file holds no whole frame.
    """
    width, height = size
    frame_bytes = width * height * 3
    candidates = []
    with open(raw, "rb") as f:
        for t in times:
            frame = f.read(frame_bytes)
            if len(frame) < frame_bytes:
                break
            candidates.append((t, frame))
    return _save_best(candidates, size, out_jpg)


def _save_best(candidates: list[tuple[float, bytes]], size: tuple[int, int],
               out_jpg: str | Path) -> FrameScore:
    import numpy as np
    from PIL import Image

    width, height = size
    best: tuple[FrameScore, bytes] | None = None
    for t, frame in candidates:
        rgb = np.frombuffer(frame, np.uint8).reshape(height, width, 3).astype(np.float32)
        luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        score = FrameScore(t, float(luma.mean()), float(luma.std()))
        if best is None or score.score > best[0].score:
            best = (score, frame)
    if best is None:
        raise InvalidMediaError("no frame could be decoded for the thumbnail")
    Image.frombuffer("RGB", (width, height), best[1]).save(out_jpg, "JPEG", quality=JPEG_QUALITY)
    logger.info("thumbnail at %.2f s (mean %.0f, std %.0f)", best[0].time_s,
                best[0].mean_luma, best[0].std_luma)
    return best[0]


def processing_overlay(src_jpg: str | Path | None, out_jpg: str | Path) -> None:
    """Write `src_jpg` (or a plain template when None) dimmed, with a "Processing…" banner."""
    from PIL import Image

    base = _open_or_template(src_jpg)
    dimmed = Image.blend(base, Image.new("RGB", base.size, (0, 0, 0)), 0.45)
    _banner(dimmed, "Processing…", fill=(255, 255, 255), band=(20, 20, 20))
    dimmed.save(out_jpg, "JPEG", quality=JPEG_QUALITY)


def duplicate_overlay(src_jpg: str | Path | None, out_jpg: str | Path) -> None:
    """Write `src_jpg` grayed out with a red "DUPLICATE" banner."""
    from PIL import Image, ImageOps

    base = _open_or_template(src_jpg)
    gray = ImageOps.grayscale(base).convert("RGB")
    gray = Image.blend(gray, Image.new("RGB", gray.size, (128, 128, 128)), 0.35)
    _banner(gray, "DUPLICATE", fill=(255, 255, 255), band=(190, 20, 20))
    gray.save(out_jpg, "JPEG", quality=JPEG_QUALITY)


def _frame_rgb(src: str | Path, t: float, width: int, height: int,
               timeout_s: float) -> bytes | None:
    # Seeking before -i jumps to the nearest keyframe and decodes from there: cheap.
    args = ["-v", "error", "-ss", f"{t:.3f}", "-i", str(src), "-map", "0:v:0",
            "-frames:v", "1", "-vf", f"scale={width}:{height}:flags=area,format=rgb24",
            "-f", "rawvideo", "pipe:1"]
    try:
        out = run_ffmpeg(args, timeout_s=timeout_s).stdout
    except (MediaTimeoutError, TransientMediaError):
        raise
    except MediaError as exc:
        logger.warning("no frame at %.2f s: %s", t, exc.reason)
        return None
    return out if len(out) == width * height * 3 else None


def _open_or_template(src_jpg: str | Path | None):
    from PIL import Image

    if src_jpg is not None and Path(src_jpg).exists():
        with Image.open(src_jpg) as img:
            return img.convert("RGB")
    # No frame yet: a dark diagonal gradient is the neutral background.
    w, h = TEMPLATE_SIZE
    grad = Image.linear_gradient("L").resize((w, h))
    return Image.merge("RGB", [grad.point(lambda v: 20 + v // 6),
                               grad.point(lambda v: 24 + v // 5),
                               grad.point(lambda v: 40 + v // 4)])


def _banner(img, text: str, *, fill: tuple[int, int, int], band: tuple[int, int, int]) -> None:
    from PIL import ImageDraw, ImageFont

    w, h = img.size
    size = max(12, h // 8)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left, bottom - top
    pad = size // 2
    y0 = (h - th) // 2 - pad
    draw.rectangle([0, y0, w, y0 + th + 2 * pad], fill=band)
    draw.text(((w - tw) // 2 - left, y0 + pad - top), text, font=font, fill=fill)
