"""Scrub-bar previews: sprite sheets of frames every N seconds and a WebVTT thumbnails track.

The frames come from the transcode's own decode (an extra branch of the
ladder's filter graph, see hls.transcode_hls): every N-th second's frame is
scaled to THUMB_LONG px on its long side and tiled COLS x ROWS into JPEG sheets
`storyboard/sprite_000.jpg ...`. `storyboard.vtt` has one cue per frame,
`storyboard/sprite_000.jpg#xywh=x,y,w,h`, the format video.js, Plyr, Vidstack
and JW Player read for thumbnail previews.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from chalicelib.media.captions import Cue, _timestamp

FOLDER = "storyboard"
VTT_NAME = "storyboard.vtt"
SPRITE_PATTERN = "sprite_%03d.jpg"
COLS, ROWS = 5, 5
THUMB_LONG = 160
# The interval grows with the duration so a clip never has more than MAX_FRAMES previews.
INTERVALS_S = (1, 2, 5, 10, 15, 30, 60)
MAX_FRAMES = 200
JPEG_QUALITY = 5  # ffmpeg -q:v for mjpeg: 2 (best) .. 31


@dataclass(frozen=True)
class StoryboardPlan:
    """How the storyboard of a clip is made: one frame every `interval_s`, `width`x`height` each."""

    interval_s: int
    width: int
    height: int
    cols: int = COLS
    rows: int = ROWS

    def frame_count(self, duration_s: float) -> int:
        return max(1, math.ceil(round(duration_s, 3) / self.interval_s))


def interval_for(duration_s: float) -> int:
    """The shortest interval of INTERVALS_S that keeps the clip within MAX_FRAMES previews."""
    for n in INTERVALS_S:
        if duration_s / n <= MAX_FRAMES:
            return n
    return INTERVALS_S[-1]


def plan(width: int, height: int, duration_s: float) -> StoryboardPlan:
    """The plan for a source of `width`x`height` lasting `duration_s`: aspect kept, even sizes."""
    scale = THUMB_LONG / max(width, height, 1)
    w = max(2, int(round(width * scale / 2)) * 2)
    h = max(2, int(round(height * scale / 2)) * 2)
    return StoryboardPlan(interval_s=interval_for(duration_s), width=w, height=h)


def filter_chain(sb: StoryboardPlan, fps: Fraction, label_in: str, label_out: str) -> str:
    """The filter branch: select every interval's frame (the graph runs at constant `fps`), scale, tile."""
    every = max(1, round(fps * sb.interval_s))
    # select drops the other frames before scaling: the branch costs a few scaled frames only.
    return (f"[{label_in}]select='not(mod(n,{every}))',scale={sb.width}:{sb.height}:flags=area,"
            f"tile={sb.cols}x{sb.rows}[{label_out}]")


def output_args(label: str) -> list[str]:
    """ffmpeg output options writing the sheets into FOLDER (relative to the working directory)."""
    return ["-map", f"[{label}]", "-fps_mode", "passthrough", "-c:v", "mjpeg", "-q:v", str(JPEG_QUALITY),
            "-start_number", "0", "-f", "image2", f"{FOLDER}/{SPRITE_PATTERN}"]


def cues(sb: StoryboardPlan, duration_s: float) -> list[Cue]:
    """One cue per preview frame: its time span and its place on a sheet."""
    per_sheet = sb.cols * sb.rows
    out = []
    for k in range(sb.frame_count(duration_s)):
        sheet, at = divmod(k, per_sheet)
        row, col = divmod(at, sb.cols)
        start, end = k * sb.interval_s, min((k + 1) * sb.interval_s, duration_s)
        ref = (f"{FOLDER}/{SPRITE_PATTERN % sheet}#xywh="
               f"{col * sb.width},{row * sb.height},{sb.width},{sb.height}")
        out.append(Cue(float(start), float(max(end, start + 0.001)), ref))
    return out


def webvtt(cue_list: list[Cue]) -> str:
    """The thumbnails track (cue text is a URI, written as is)."""
    return "WEBVTT\n" + "".join(f"\n{_timestamp(c.start)} --> {_timestamp(c.end)}\n{c.text}\n" for c in cue_list)


def finish(sb: StoryboardPlan, out_dir: str | Path, duration_s: float) -> list[str]:
    """Write VTT_NAME beside the sheets ffmpeg wrote; every storyboard file, relative to `out_dir`.

    Only as many frames as the sheets hold are listed: ffmpeg may end a clip
    a frame short of the last interval.
    """
    out_dir = Path(out_dir)
    sheets = sorted(p.name for p in (out_dir / FOLDER).glob("sprite_*.jpg"))
    if not sheets:
        return []
    capacity = len(sheets) * sb.cols * sb.rows
    cue_list = cues(sb, duration_s)
    cue_list = [c for i, c in enumerate(cue_list) if i < capacity]
    (out_dir / VTT_NAME).write_text(webvtt(cue_list))
    return [VTT_NAME, *(f"{FOLDER}/{name}" for name in sheets)]
