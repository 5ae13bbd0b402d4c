"""The chunked ladder: a long clip's HLS encoded as independent pieces that join seamlessly.

plan() cuts the clip on the ladder's keyframe grid (every hls.SEGMENT_S
seconds, in frames of the output rate), so every chunk starts where the
single-pass encode would start a segment anyway. encode_segments() encodes one
chunk of every rung from a seek into the source (a local file or the upload's
presigned URL: with the seek before -i, FFmpeg fetches only the container index
and the byte ranges of the frames it decodes) and muxes it with its share of
the whole-track AAC dedup encoded (fingerprint.audio_fingerprint), writing the
final HLS segments, numbered and timed on the whole clip's timeline; the stitch
then only writes playlists (hls.write_playlists, dash.write_mpd). The side
outputs (thumbnail candidates, storyboard) come from decoding the lowest rung,
the cheapest stream that holds every frame (side_outputs()).
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from chalicelib.media import hls, storyboard, thumbnails
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


def audio_name(bitrate: int) -> str:
    return f"audio_{bitrate}.m4a"


def audio_bitrates(ladder: list[hls.Rendition]) -> list[int]:
    return sorted({r.audio_bitrate for r in ladder})


def _source(src: str | Path) -> str:
    """The -i argument: a presigned http(s) URL as given, a local path made absolute."""
    src = str(src)
    return src if src.startswith(("http://", "https://")) else str(Path(src).resolve())


def side_outputs(lowest: Path, out_dir: Path, fps: Fraction, side: hls.SideOutputs, *,
                 timeout_s: float) -> list[float]:
    """Thumbnail candidates and storyboard sheets from the lowest rung (one fragmented MP4, decoded once)."""
    frame_idx = thumbnails.frame_indices(side.frame_times, fps) if side.frames else []
    sb = side.storyboard
    branches = (1 if frame_idx else 0) + (1 if sb else 0)
    if not branches:
        return []
    chains = [f"[0:v]split={branches}" + "".join(f"[s{i}]" for i in range(branches))]
    if frame_idx:
        chains.append(thumbnails.select_chain("s0", frame_idx, side.frame_size, "thumbs"))
    args = ["-y", "-i", str(lowest)]
    if sb:
        chains.append(storyboard.filter_chain(sb, fps, f"s{branches - 1}", "storyboard"))
        shutil.rmtree(out_dir / storyboard.FOLDER, ignore_errors=True)
        (out_dir / storyboard.FOLDER).mkdir()
    args += ["-filter_complex", ";".join(chains)]
    args += hls._side_output_args(side, frame_idx, has_audio=False)
    if sb:
        args += storyboard.output_args("storyboard")
    run_ffmpeg(args, timeout_s=timeout_s, cwd=out_dir, capture_stdout=False, inputs=CHUNK_PARTS)
    return thumbnails.frame_times(frame_idx, fps)


# ---------------------------------------------------------------- chunks that write final segments
# Each chunk muxes its video with the AAC frames of its own time range, taken from one
# whole-track encode (dedup's, made before the chunks start), into the final HLS
# segments, numbered and timed on the whole clip's timeline: the stitch then writes only
# playlists. A frame belongs to the chunk its first sample lies in, so no AAC frame is
# encoded twice or lost at a join, and the decoder runs through a join as through any
# other segment boundary.

READ_PAST_END_S = 1.0
AAC_FRAME = 1024
AAC_RATE = 48000
AAC_PRIMING = 1024   # FFmpeg's AAC encoder starts with one frame of priming (pts -1024)


def first_segment(chunk: Chunk, fps: Fraction) -> int:
    """The index of the chunk's first segment in the whole clip (chunks start on the grid)."""
    return round(chunk.start_frame / fps / hls.SEGMENT_S)


def first_audio_pts(seconds: Fraction) -> int:
    """The pts (1/48000) of the whole track's first AAC frame starting at or after `seconds`."""
    n = math.ceil((seconds * AAC_RATE + AAC_PRIMING) / AAC_FRAME)
    return n * AAC_FRAME - AAC_PRIMING


@dataclass(frozen=True)
class ChunkSegments:
    """What a chunk wrote, small enough to travel in the state: numbering, durations, sizes."""

    first: int
    durations: list[float]
    sizes: dict[str, list[int]]
    codecs: dict[str, str]
    files: list[str]
    init_sizes: dict[str, int]

    def summary(self) -> dict:
        """The chunk's output in the state: a few hundred bytes (the init sizes only from chunk 0)."""
        out = {"first": self.first, "durations": self.durations, "sizes": self.sizes, "codecs": self.codecs}
        if self.first == 0:
            out["init"] = self.init_sizes
        return out


def _grid_keys(chunk: Chunk, fps: Fraction, duration_s: float) -> list[int]:
    """The grid frames (absolute) inside the chunk: where it starts its segments."""
    last = chunk.start_frame + (chunk.frames or 10**9)
    keys = []
    k = math.ceil(chunk.start_frame / fps / hls.SEGMENT_S)
    while grid_frame(k * hls.SEGMENT_S, fps) < last and len(keys) < 100_000:
        if not chunk.frames and k * hls.SEGMENT_S >= (duration_s or 0):
            break
        keys.append(grid_frame(k * hls.SEGMENT_S, fps))
        k += 1
    return keys


def encode_segments(src: str | Path, audio: dict[int, str | Path], out_dir: str | Path, info: MediaInfo,
                    chunk: Chunk, *, timeout_s: float, preset: str = hls.DEFAULT_PRESET) -> ChunkSegments:
    """Encode one chunk of every rung and write its final HLS segments (video + AAC) into out_dir.

    `audio`: the whole-track AAC per bitrate (dedup's hand-over, local files or presigned URLs);
    empty for a clip without sound. Files land as segments/{rung}_{NNNNN}.m4s with the
    whole clip's numbers and decode times, and segments/{rung}_init.mp4 (the same in
    every chunk: the stitch names chunk 0's).
    """
    out_dir = hls._prepare(out_dir)
    ladder = hls.plan_ladder(info.width, info.height, info.fps)
    fps = hls.output_fps(info.fps)
    n = len(ladder)
    start = Fraction(chunk.start_frame) / fps
    seek = max(0.0, float(start) - 1.0)
    keys = _grid_keys(chunk, fps, info.duration_s)
    first = first_segment(chunk, fps)
    # After fps the time base is 1/fps: a frame's pts is its frame number, kept (no
    # setpts), so the encoder sees the clip's own times and keys land on the grid.
    chains = [f"[0:v]fps={fps},trim=start_pts={chunk.start_frame}"
              f"{(':end_pts=' + str(chunk.start_frame + chunk.frames)) if chunk.frames else ''},"
              f"format=yuv420p,split={n}" + "".join(f"[s{i}]" for i in range(n))]
    chains += hls._scale_chains(ladder)
    args = ["-y", "-copyts", "-start_at_zero", "-ss", f"{seek:.6f}"]
    if chunk.frames:
        # Stop reading the upload a second past the chunk's last frame (B-frames arrive
        # late): without it the demuxer reads on past the trim, from a presigned URL tens
        # of MB that nothing decodes.
        end_s = float(Fraction(chunk.start_frame + chunk.frames) / fps)
        args += ["-t", f"{end_s - seek + READ_PAST_END_S:.6f}"]
    args += ["-i", _source(src)]
    has_audio = bool(audio) and info.has_audio
    audio_pts = first_audio_pts(start) if chunk.index else -AAC_PRIMING
    inputs = {}
    if has_audio:
        # Every AAC packet is a sync point: -ss lands on the frame at or before the given
        # time, -to stops before the first packet at or after it. A quarter frame past this
        # chunk's first frame and before the next chunk's keeps exactly the frames between.
        window = []
        if chunk.index:
            window += ["-ss", f"{(audio_pts + AAC_FRAME / 4) / AAC_RATE:.6f}"]
        if chunk.frames:
            end = first_audio_pts(Fraction(chunk.start_frame + chunk.frames) / fps)
            window += ["-to", f"{(end - AAC_FRAME / 4) / AAC_RATE:.6f}"]
        for bps in audio_bitrates(ladder):
            inputs[bps] = 1 + len(inputs)
            args += [*window, "-i", _source(audio[bps])]
    args += ["-filter_complex", ";".join(chains)]
    args += [arg for i in range(n) for arg in ("-map", f"[v{i}]")]
    for r in ladder if has_audio else []:
        args += ["-map", f"{inputs[r.audio_bitrate]}:a:0"]
    codec = hls._video_codec_args(fps, hls.SEGMENT_S, preset)
    codec[codec.index("-force_key_frames") + 1] = ",".join(
        f"{(k - 0.5) / float(fps):.6f}" if k else "0" for k in keys) or "0"
    args += codec + hls._video_rate_args(ladder)
    if has_audio:
        args += ["-c:a", "copy"]
    args += hls._hls_args(hls.SEGMENT_S, "%v" if n > 1 else ladder[0].name)
    args += ["-start_number", str(first), "-var_stream_map", hls._variant_streams(ladder, has_audio),
             "%v.m3u8"]
    # The AAC hand-over is read like the upload (both local, or both presigned URLs).
    run_ffmpeg(args, timeout_s=timeout_s, cwd=out_dir, capture_stdout=False,
               inputs=upload_policy(_source(src)))
    return _place_on_timeline(out_dir, ladder, fps, chunk, keys, first, audio_pts + AAC_PRIMING)


def _place_on_timeline(out_dir: Path, ladder: list[hls.Rendition], fps: Fraction, chunk: Chunk,
                       keys: list[int], first: int, audio_offset: int) -> ChunkSegments:
    """Move the chunk's fragments to the clip's timeline; check the numbering; what was written."""
    from chalicelib.media import fmp4

    durations: list[float] | None = None
    sizes, codecs, files, inits = {}, {}, [], {}
    for r in ladder:
        playlist = out_dir / f"{r.name}.m3u8"
        if not playlist.exists():
            raise MediaError(f"ffmpeg wrote no {r.name} playlist")
        init, segments = hls.parse_media_playlist(playlist.read_text())
        names = [uri.rsplit("/", 1)[-1] for _, uri in segments]
        expected = [hls.segment_name(r.name, first + i).rsplit("/", 1)[-1] for i in range(len(names))]
        if not names or names != expected or (chunk.frames and len(names) != len(keys)):
            raise MediaError(f"chunk {chunk.index} of {r.name} wrote segments {names[:3]}..., "
                             f"expected {len(keys)} from {first}")
        init_path = out_dir / "segments" / init.rsplit("/", 1)[-1]
        offsets = {}
        for track, (handler, timescale) in fmp4.tracks(init_path.read_bytes()).items():
            if handler == "vide":
                ticks = Fraction(chunk.start_frame * timescale) / fps
                if ticks.denominator != 1:
                    raise MediaError(f"frame {chunk.start_frame} is not on the {timescale} Hz timescale")
                offsets[track] = int(ticks)
            elif handler == "soun":
                offsets[track] = audio_offset * timescale // AAC_RATE
            else:
                raise MediaError(f"unexpected {handler} track in a chunk")
        for name in names:
            fmp4.shift_fragments(out_dir / "segments" / name, offsets, first)
        got = [round(d, 6) for d, _ in segments]
        if durations is not None and got != durations:
            raise MediaError(f"chunk {chunk.index}: the rungs' segments differ in length")
        durations = got
        sizes[r.name] = [(out_dir / "segments" / name).stat().st_size for name in names]
        codecs[r.name] = hls._avc_codec_tag(init_path)
        inits[r.name] = init_path.stat().st_size
        files += [f"segments/{init_path.name}", *(f"segments/{name}" for name in names)]
    return ChunkSegments(first=first, durations=durations or [], sizes=sizes, codecs=codecs, files=files,
                         init_sizes=inits)
