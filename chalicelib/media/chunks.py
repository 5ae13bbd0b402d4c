"""The chunked ladder: a long clip's HLS encoded as independent pieces, then joined.

plan() cuts the clip on the ladder's keyframe grid (every hls.SEGMENT_S
seconds, in frames of the output rate), so every chunk starts where the
single-pass encode would start a segment anyway. encode_video() encodes one
chunk's whole ladder, video only, from a seek into the source (a local file
or the upload's presigned URL: with the seek before -i, FFmpeg fetches only
the container index and the byte ranges of the frames it decodes);
encode_audio() encodes the audio once, whole (one AAC track per bitrate the
ladder uses), so audio has no join at all. stitch() concatenates each rung's
chunks and the audio with -c copy and lets FFmpeg's HLS muxer cut the same
segments, playlists and names the single pass writes; the side outputs
(thumbnail candidates, storyboard) come from decoding the lowest rung, the
cheapest stream that holds every frame.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from chalicelib.media import hls, storyboard
from chalicelib.media.errors import MediaError
from chalicelib.media.ffmpeg import CHUNK_PARTS, run_ffmpeg, upload_policy
from chalicelib.media.probe import MediaInfo


@dataclass(frozen=True)
class Chunk:
    """Frames [start_frame, start_frame + frames) of the output-rate timeline; frames 0 = to the end."""

    index: int
    start_frame: int
    frames: int

    def to_dict(self) -> dict:
        return {"index": self.index, "start_frame": self.start_frame, "frames": self.frames}

    @classmethod
    def from_dict(cls, d: dict) -> "Chunk":
        return cls(index=int(d["index"]), start_frame=int(d["start_frame"]), frames=int(d["frames"]))


def grid_frame(seconds: int, fps: Fraction) -> int:
    """The first frame at or after `seconds`: where -force_key_frames gte(t, n*SEGMENT_S) puts a key."""
    return math.ceil(seconds * fps)


def plan(duration_s: float, fps: Fraction, chunk_s: int) -> list[Chunk]:
    """Chunks of `chunk_s` seconds (a multiple of the segment length) covering `duration_s`.

    The last chunk runs to the end of the source (frames 0), and a tail shorter
    than one segment joins the chunk before it rather than making its own.
    """
    if chunk_s <= 0 or chunk_s % hls.SEGMENT_S:
        raise ValueError(f"chunk length {chunk_s} s is not a multiple of {hls.SEGMENT_S} s")
    starts = list(range(0, max(1, int(duration_s)), chunk_s))
    while len(starts) > 1 and duration_s - starts[-1] < hls.SEGMENT_S:
        starts.pop()
    frames = [grid_frame(s, fps) for s in starts]
    return [Chunk(index=i, start_frame=f,
                  frames=(frames[i + 1] - f) if i + 1 < len(frames) else 0)
            for i, f in enumerate(frames)]


def video_name(rendition: str, chunk: int) -> str:
    return f"{rendition}_c{chunk:05d}.mp4"


def audio_name(bitrate: int) -> str:
    return f"audio_{bitrate}.m4a"


def audio_bitrates(ladder: list[hls.Rendition]) -> list[int]:
    return sorted({r.audio_bitrate for r in ladder})


def _source(src: str | Path) -> str:
    """The -i argument: a presigned http(s) URL as given, a local path made absolute."""
    src = str(src)
    return src if src.startswith(("http://", "https://")) else str(Path(src).resolve())


def encode_video(src: str | Path, out_dir: str | Path, info: MediaInfo, chunk: Chunk, *,
                 timeout_s: float, preset: str = hls.DEFAULT_PRESET) -> list[str]:
    """Encode one chunk of every rung (video only) into out_dir; the file names written.

    The source is read from a second before the chunk (input seek), with its
    own timestamps kept (-copyts), so the fps filter numbers frames exactly as
    the single pass does and trim keeps precisely this chunk's frames. Keyframes
    fall on the same grid frames as in the single pass.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ladder = hls.plan_ladder(info.width, info.height, info.fps)
    fps = hls.output_fps(info.fps)
    start_s = chunk.start_frame / fps
    seek = max(0.0, float(start_s) - 1.0)
    # Keys where the single pass puts them: the grid frames inside this chunk (relative).
    last = chunk.start_frame + (chunk.frames or 10**9)
    keys = []
    k = math.ceil(chunk.start_frame / fps / hls.SEGMENT_S)
    while grid_frame(k * hls.SEGMENT_S, fps) < last and len(keys) < 100_000:
        rel = grid_frame(k * hls.SEGMENT_S, fps) - chunk.start_frame
        if rel >= 0:
            keys.append(rel)
        k += 1
        if not chunk.frames and k * hls.SEGMENT_S > (info.duration_s or 0) + hls.SEGMENT_S:
            break
    n = len(ladder)
    # After fps the time base is 1/fps: a frame's pts is its frame number.
    chains = [f"[0:v]fps={fps},trim=start_pts={chunk.start_frame}"
              f"{(':end_pts=' + str(chunk.start_frame + chunk.frames)) if chunk.frames else ''},"
              f"setpts=PTS-STARTPTS,format=yuv420p,split={n}" + "".join(f"[s{i}]" for i in range(n))]
    chains += [f"[s{i}]scale={r.width}:{r.height}:flags=bicubic,setsar=1[v{i}]"
               for i, r in enumerate(ladder)]
    args = ["-y", "-ss", f"{seek:.6f}", "-copyts", "-start_at_zero",
            "-i", _source(src), "-filter_complex", ";".join(chains)]
    force = ",".join(f"{(rel - 0.5) / float(fps):.6f}" if rel else "0" for rel in keys) or "0"
    names = []
    for i, r in enumerate(ladder):
        name = video_name(r.name, chunk.index)
        codec = hls._video_codec_args(fps, hls.SEGMENT_S, preset)
        codec[codec.index("-force_key_frames") + 1] = force
        args += ["-map", f"[v{i}]", *codec, "-b:v", str(r.video_bitrate),
                 "-maxrate", str(r.maxrate), "-bufsize", str(r.bufsize),
                 "-an", "-f", "mp4", name]
        names.append(name)
    run_ffmpeg(args, timeout_s=timeout_s, cwd=out_dir, capture_stdout=False, inputs=upload_policy(_source(src)))
    return names


def encode_audio(src: str | Path, out_dir: str | Path, info: MediaInfo, *, timeout_s: float) -> list[str]:
    """The whole first audio stream, once per bitrate the ladder uses; the file names written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not info.has_audio:
        return []
    ladder = hls.plan_ladder(info.width, info.height, info.fps)
    args = ["-y", "-vn", "-i", _source(src)]
    names = []
    for bps in audio_bitrates(ladder):
        name = audio_name(bps)
        args += ["-map", "0:a:0", *hls._audio_codec_args(), "-b:a", str(bps), "-f", "mp4", name]
        names.append(name)
    run_ffmpeg(args, timeout_s=timeout_s, cwd=out_dir, capture_stdout=False, inputs=upload_policy(_source(src)))
    return names


def stitch(parts_dir: str | Path, out_dir: str | Path, info: MediaInfo, chunks: int, *,
           timeout_s: float, side: hls.SideOutputs | None = None) -> hls.HlsResult:
    """Join the chunks in parts_dir into the single pass's HLS layout in out_dir (no re-encode)."""
    parts_dir, out_dir = Path(parts_dir).resolve(), hls._prepare(out_dir)
    ladder = hls.plan_ladder(info.width, info.height, info.fps)
    fps = hls.output_fps(info.fps)
    n = len(ladder)
    args = ["-y"]
    for r in ladder:
        listing = parts_dir / f"{r.name}.concat"
        missing = [c for c in range(chunks) if not (parts_dir / video_name(r.name, c)).exists()]
        if missing:
            raise MediaError(f"chunks {missing} of {r.name} are missing")
        listing.write_text("ffconcat version 1.0\n" + "".join(
            f"file '{video_name(r.name, c)}'\n" for c in range(chunks)))
        args += ["-f", "concat", "-safe", "0", "-i", str(listing)]
    audio_inputs = {}
    if info.has_audio:
        for bps in audio_bitrates(ladder):
            audio_inputs[bps] = n + len(audio_inputs)
            args += ["-i", str(parts_dir / audio_name(bps))]
    streams = []
    for i, r in enumerate(ladder):
        args += ["-map", f"{i}:v:0"]
        streams.append(f"v:{i}" + (f",a:{i}" if info.has_audio else "") + f",name:{r.name}")
    for r in ladder if info.has_audio else []:
        args += ["-map", f"{audio_inputs[r.audio_bitrate]}:a:0"]
    args += ["-c", "copy"]
    args += hls._hls_args(hls.SEGMENT_S, "%v" if n > 1 else ladder[0].name)
    args += ["-var_stream_map", " ".join(streams), "%v.m3u8"]
    run_ffmpeg(args, timeout_s=timeout_s, cwd=out_dir, capture_stdout=False, inputs=CHUNK_PARTS)
    result = hls._finish(out_dir, ladder, fps, info.has_audio)
    if side:
        frame_times = _side_outputs(parts_dir / f"{ladder[0].name}.concat", out_dir, fps, side,
                                    timeout_s=timeout_s)
        result = hls.HlsResult(result.renditions, result.files, result.duration_s, result.master,
                               frame_times=frame_times)
    return result


def _side_outputs(listing: Path, out_dir: Path, fps: Fraction, side: hls.SideOutputs, *,
                  timeout_s: float) -> list[float]:
    """Thumbnail candidates and storyboard sheets from the lowest rung (decoded once)."""
    frame_idx = hls._frame_indices(side.frame_times, fps) if side.frames else []
    sb = side.storyboard
    branches = (1 if frame_idx else 0) + (1 if sb else 0)
    if not branches:
        return []
    chains = [f"[0:v]split={branches}" + "".join(f"[s{i}]" for i in range(branches))]
    if frame_idx:
        picks = "+".join(f"eq(n,{i})" for i in frame_idx)
        w, h = side.frame_size
        chains.append(f"[s0]select='{picks}',scale={w}:{h}:flags=area,format=rgb24[thumbs]")
    args = ["-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
    if sb:
        chains.append(storyboard.filter_chain(sb, fps, f"s{branches - 1}", "storyboard"))
        shutil.rmtree(out_dir / storyboard.FOLDER, ignore_errors=True)
        (out_dir / storyboard.FOLDER).mkdir()
    args += ["-filter_complex", ";".join(chains)]
    args += hls._side_output_args(side, frame_idx, has_audio=False)
    if sb:
        args += storyboard.output_args("storyboard")
    run_ffmpeg(args, timeout_s=timeout_s, cwd=out_dir, capture_stdout=False, inputs=CHUNK_PARTS)
    return [round(i / float(fps), 3) for i in frame_idx]
