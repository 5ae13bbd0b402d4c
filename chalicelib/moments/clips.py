"""Cutting a moment out of its video, frame-accurately, and measuring the result.

Copying packets can only cut on keyframes (seconds off), so the clip is
re-encoded: FFmpeg seeks the input to the start (an accurate seek: it decodes
from the keyframe before and drops frames until the start), then encodes
exactly round(duration x fps) frames. The source may be a presigned URL:
FFmpeg reads only the byte ranges it needs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from chalicelib import failures
from chalicelib.media.errors import InvalidMediaError, MediaError, TransientMediaError
from chalicelib.media.ffmpeg import run_ffmpeg, upload_policy

_TB_RE = re.compile(r"^#tb (\d+): (\d+)/(\d+)")


@dataclass(frozen=True)
class ClipInfo:
    frames: int
    duration: float        # the video track: first frame's start to last frame's end
    size_bytes: int


def cut(source: str, out: str | Path, start: float, end: float, fps: float | None, *,
        timeout_s: float) -> ClipInfo:
    """Encode [start, end) of source to an MP4 (H.264 + AAC, faststart); what was written."""
    length, seek, frames = end - start, start, None
    if fps:
        # Times are stored rounded; on the frame grid they name whole frames. Seeking a
        # hundredth of a frame early keeps the first frame whichever way the rounding went.
        first = round(start * fps)
        frames = max(1, round(end * fps) - first)
        seek, length = max(0.0, (first - 0.01) / fps), frames / fps
    args = ["-v", "error", "-y", "-ss", f"{seek:.6f}", "-i", source,
            "-map", "0:v:0", "-map", "0:a:0?"]
    if frames:
        args += ["-frames:v", str(frames), "-fps_mode", "passthrough"]
    args += ["-t", f"{length:.6f}", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
             "-movflags", "+faststart", str(out)]
    run_ffmpeg(args, timeout_s=timeout_s, inputs=upload_policy(source))
    try:
        info = measure(out)
    except TransientMediaError:
        raise
    except MediaError:        # nothing was written: no video stream to read back
        info = None
    if info is None or info.frames == 0:
        raise InvalidMediaError(f"no video between {start:g} s and {end:g} s",
                                failures.PROCESSING_FAILED)
    return info


def measure(path: str | Path) -> ClipInfo:
    """Frame count and video duration from the packets (a demux: nothing is decoded)."""
    result = run_ffmpeg(["-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                         "-f", "framecrc", "pipe:1"], timeout_s=60)
    num, den = 1, 1
    first, last_end, frames = None, 0, 0
    for line in result.stdout.decode("ascii", "replace").splitlines():
        match = _TB_RE.match(line)
        if match:
            num, den = int(match.group(2)), int(match.group(3))
            continue
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        pts, dur = int(parts[2]), int(parts[3])
        first = pts if first is None else min(first, pts)
        last_end = max(last_end, pts + dur)
        frames += 1
    duration = (last_end - (first or 0)) * num / den if frames else 0.0
    return ClipInfo(frames=frames, duration=round(duration, 6), size_bytes=Path(path).stat().st_size)
