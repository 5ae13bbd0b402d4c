"""The HLS ladder: planning renditions and transcoding them into fMP4 (CMAF) segments.

Output layout inside `out_dir` (storage layout, reference 001):

    360p.m3u8  480p.m3u8  720p.m3u8  1080p.m3u8  master.m3u8
    segments/360p_init.mp4  segments/360p_00000.m4s ...

Segments are fragmented MP4 so a DASH manifest can later point at the same files.
Only the rungs the source can fill are written (a 720p source has no 1080p.m3u8).
"""
from __future__ import annotations

import logging
import math
import re
import shutil
import threading
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

from chalicelib.media import storyboard, thumbnails
from chalicelib.media.errors import MediaError
from chalicelib.media.ffmpeg import run_ffmpeg, speech_wav_args
from chalicelib.media.probe import MediaInfo
from chalicelib.media.storyboard import StoryboardPlan

logger = logging.getLogger(__name__)

SEGMENT_S = 4
MAX_FPS = 60
DEFAULT_FPS = 30
DEFAULT_PRESET = "veryfast"
# A rung is produced when the source's short side reaches this share of it, at the
# source's own size then (never upscaled): a 1920x1072 capture still gets "1080p".
RUNG_TOLERANCE = 0.9
# (short side, video bit/s at <= 30 fps, audio bit/s). Gaming footage is high-motion,
# so these sit at the upper end of the usual ladders.
LADDER: tuple[tuple[int, int, int], ...] = (
    (360, 800_000, 96_000),
    (480, 1_400_000, 96_000),
    (720, 3_000_000, 128_000),
    (1080, 5_500_000, 160_000),
)
# More frames per second need more bits, though far from proportionally.
HIGH_FPS_FACTOR = 1.5
MIN_VIDEO_BITRATE = 300_000
MAXRATE_FACTOR = 1.1
BUFSIZE_FACTOR = 2.0
AUDIO_CODEC_TAG = "mp4a.40.2"  # ffmpeg's native encoder writes AAC-LC
# How often the output folder is looked at for finished segments (on_segment).
WATCH_INTERVAL_S = 0.25
_SEGMENT_RE = re.compile(r"^(?P<variant>.+)_(?P<index>\d{5})\.m4s$")


def init_segment_name(rung: str) -> str:
    """A rendition's fMP4 init segment, relative to the video's prefix (the layout above)."""
    return f"segments/{rung}_init.mp4"


def segment_name(rung: str, index: int) -> str:
    """A rendition's media segment `index` (from 0), relative to the video's prefix."""
    return f"segments/{rung}_{index:05d}.m4s"


@dataclass(frozen=True)
class Rendition:
    """One planned rung of the ladder."""

    name: str
    width: int
    height: int
    video_bitrate: int
    maxrate: int
    bufsize: int
    audio_bitrate: int


@dataclass(frozen=True)
class SideOutputs:
    """Extra files fed by the ladder's own decode, so nothing decodes the source again.

    `frames`: raw RGB24 frames of `frame_size` at (about) `frame_times`, for the
    thumbnail to be picked from. `speech_wav`: the first audio stream as the
    16 kHz mono WAV speech recognition reads (ignored when there is no audio).
    `storyboard`: the scrub-bar preview sheets (media/storyboard.py), written to
    out_dir/storyboard/ (storyboard.finish writes their WebVTT track afterwards).
    """

    frames: Path | None = None
    frame_times: tuple[float, ...] = ()
    frame_size: tuple[int, int] = (0, 0)
    speech_wav: Path | None = None
    storyboard: StoryboardPlan | None = None


@dataclass(frozen=True)
class HlsRendition:
    """One rendition as written, with bitrates measured from its segments."""

    name: str
    width: int
    height: int
    bandwidth: int
    avg_bandwidth: int
    codecs: str
    frame_rate: float
    playlist: str
    segment_durations: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class HlsResult:
    """What transcode_hls wrote: renditions, every file (relative to out_dir), duration.

    `frame_times`: the times of the raw frames written to SideOutputs.frames, in order.
    """

    renditions: list[HlsRendition]
    files: list[str]
    duration_s: float
    master: str = "master.m3u8"
    frame_times: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able form."""
        return asdict(self)


def plan_ladder(width: int, height: int, fps: float | None = None) -> list[Rendition]:
    """Renditions for a source of `width`x`height` (short side = "p"), never upscaled.

    Each rung of LADDER is produced when the short side is at least RUNG_TOLERANCE of it.
    A source too small for any rung gets one rendition at its own (even) size, named
    after the lowest rung ("360p") so the lowest playlist always exists.
    """
    short, long_ = min(width, height), max(width, height)
    if short <= 0:
        raise ValueError(f"bad dimensions {width}x{height}")
    factor = HIGH_FPS_FACTOR if fps and fps > 31 else 1.0
    rungs = [r for r in LADDER if short >= r[0] * RUNG_TOLERANCE] or [LADDER[0]]
    out = []
    for rung_short, video_bps, audio_bps in rungs:
        target = min(rung_short, short)
        # Even sizes for 4:2:0; rounding down where rounding up would upscale.
        out_short = _floor_even(target)
        out_long = min(_even(out_short * long_ / short), _floor_even(long_))
        # Bits scale with pixels when the rendition is smaller than its rung.
        area = min(1.0, (out_short * out_long) / (rung_short * rung_short * 16 / 9))
        bps = max(MIN_VIDEO_BITRATE, int(video_bps * factor * area))
        w, h = (out_long, out_short) if width >= height else (out_short, out_long)
        out.append(Rendition(name=f"{rung_short}p", width=w, height=h, video_bitrate=bps,
                             maxrate=int(bps * MAXRATE_FACTOR),
                             bufsize=int(bps * BUFSIZE_FACTOR), audio_bitrate=audio_bps))
    return out


def output_fps(fps: float | None) -> Fraction:
    """The constant frame rate we encode at: the source's, capped at MAX_FPS."""
    if not fps or fps <= 0 or math.isnan(fps):
        return Fraction(DEFAULT_FPS)
    for ntsc in (24, 30, 60):
        if abs(fps - ntsc * 1000 / 1001) < 0.01:
            return Fraction(ntsc * 1000, 1001)
    if fps > MAX_FPS:
        return Fraction(MAX_FPS)
    return Fraction(fps).limit_denominator(1000)


def transcode_hls(src_path: str | Path, out_dir: str | Path, info: MediaInfo, *,
                  timeout_s: float, segment_s: int = SEGMENT_S,
                  preset: str = DEFAULT_PRESET, side: SideOutputs | None = None,
                  on_segment: Callable[[str], None] | None = None) -> HlsResult:
    """Transcode every rendition in one ffmpeg process (decode once, split, encode N).

    `side` adds the thumbnail candidates and the speech WAV to the same process.
    `on_segment(rel_path)` is called (from a watcher thread) for each media segment
    as soon as it is complete, while ffmpeg still encodes the rest, so a caller can
    upload during the encode; the last segment of each rendition, the init segments
    and the playlists are only in the returned files.
    """
    out_dir = _prepare(out_dir)
    ladder = plan_ladder(info.width, info.height, info.fps)
    fps = output_fps(info.fps)
    n = len(ladder)
    frame_idx = thumbnails.frame_indices(side.frame_times, fps) if side and side.frames else []
    sb = side.storyboard if side else None
    branches = n + (1 if frame_idx else 0) + (1 if sb else 0)
    chains = [f"[0:v]fps={fps},format=yuv420p,split={branches}"
              + "".join(f"[s{i}]" for i in range(branches))]
    chains += _scale_chains(ladder)
    if frame_idx:
        chains.append(thumbnails.select_chain(f"s{n}", frame_idx, side.frame_size, "thumbs"))
    if sb:
        chains.append(storyboard.filter_chain(sb, fps, f"s{branches - 1}", "storyboard"))
        shutil.rmtree(out_dir / storyboard.FOLDER, ignore_errors=True)
        (out_dir / storyboard.FOLDER).mkdir()
    args = ["-y", "-i", str(Path(src_path).resolve()), "-filter_complex", ";".join(chains)]
    args += [arg for i in range(n) for arg in ("-map", f"[v{i}]")]
    if info.has_audio:
        args += [arg for _ in ladder for arg in ("-map", "0:a:0")]
    args += _video_codec_args(fps, segment_s, preset) + _video_rate_args(ladder)
    if info.has_audio:
        args += [arg for i, r in enumerate(ladder) for arg in (f"-b:a:{i}", str(r.audio_bitrate))]
        args += _audio_codec_args()
    # ffmpeg expands %v in the init file name only when there are several variants.
    args += _hls_args(segment_s, "%v" if n > 1 else ladder[0].name)
    args += ["-var_stream_map", _variant_streams(ladder, info.has_audio), "%v.m3u8"]
    args += _side_output_args(side, frame_idx, info.has_audio)
    if sb:
        args += storyboard.output_args("storyboard")
    watcher = _SegmentWatcher(out_dir / "segments", on_segment) if on_segment else None
    try:
        run_ffmpeg(args, timeout_s=timeout_s, cwd=out_dir, capture_stdout=False)
    finally:
        if watcher:
            watcher.stop()
    result = _finish(out_dir, ladder, fps, info.has_audio)
    if frame_idx:
        result = HlsResult(result.renditions, result.files, result.duration_s, result.master,
                           frame_times=thumbnails.frame_times(frame_idx, fps))
    return result


def transcode_hls_per_rendition(src_path: str | Path, out_dir: str | Path, info: MediaInfo,
                                *, timeout_s: float, segment_s: int = SEGMENT_S,
                                preset: str = DEFAULT_PRESET) -> HlsResult:
    """Same output as transcode_hls, one ffmpeg process per rendition (for benchmarks)."""
    out_dir = _prepare(out_dir)
    ladder = plan_ladder(info.width, info.height, info.fps)
    fps = output_fps(info.fps)
    for r in ladder:
        scale = f"scale={r.width}:{r.height}:flags=bicubic,setsar=1"
        args = ["-y", "-i", str(Path(src_path).resolve()), "-map", "0:v:0",
                "-vf", f"fps={fps},format=yuv420p,{scale}"]
        if info.has_audio:
            args += ["-map", "0:a:0", "-b:a", str(r.audio_bitrate), *_audio_codec_args()]
        args += _video_codec_args(fps, segment_s, preset)
        args += ["-b:v", str(r.video_bitrate), "-maxrate", str(r.maxrate),
                 "-bufsize", str(r.bufsize)]
        args += _hls_args(segment_s, r.name) + [f"{r.name}.m3u8"]
        run_ffmpeg(args, timeout_s=timeout_s, cwd=out_dir, capture_stdout=False)
    return _finish(out_dir, ladder, fps, info.has_audio)


def parse_media_playlist(text: str) -> tuple[str | None, list[tuple[float, str]]]:
    """(init segment URI, [(duration, segment URI), ...]) of a media playlist."""
    init = None
    segments = []
    duration = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-MAP:"):
            m = re.search(r'URI="([^"]+)"', line)
            init = m.group(1) if m else None
        elif line.startswith("#EXTINF:"):
            duration = float(line[len("#EXTINF:"):].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            segments.append((duration, line))
            duration = None
    return init, segments


def _side_output_args(side: SideOutputs | None, frame_idx: list[int], has_audio: bool) -> list[str]:
    """Output options for the SideOutputs files (after the HLS output on the command line)."""
    args: list[str] = []
    if side and frame_idx:
        args += thumbnails.raw_output_args("thumbs", side.frames)
    if side and side.speech_wav and has_audio:
        args += ["-map", "0:a:0", *speech_wav_args(), str(Path(side.speech_wav).resolve())]
    return args


class _SegmentWatcher:
    """Reports each finished media segment while ffmpeg writes the rest.

    ffmpeg writes a rendition's segments one after the other, so segment k is
    complete once segment k+1 of the same rendition exists; the last one is
    left to the caller (it is complete when ffmpeg has exited).
    """

    def __init__(self, folder: Path, on_segment: Callable[[str], None]) -> None:
        self.folder = folder
        self.on_segment = on_segment
        self.reported: set[str] = set()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hls-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; raises what the callback raised, if anything."""
        self._stop.set()
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL_S):
            try:
                self._scan()
            except BaseException as exc:  # reported by stop(), in the caller's thread
                self.error = exc
                return

    def _scan(self) -> None:
        found: dict[str, tuple[str, int]] = {}
        latest: dict[str, int] = {}
        for entry in self.folder.iterdir():
            m = _SEGMENT_RE.match(entry.name)
            if m:
                found[entry.name] = (m["variant"], int(m["index"]))
                latest[m["variant"]] = max(latest.get(m["variant"], -1), int(m["index"]))
        for name in sorted(found):
            variant, index = found[name]
            rel = f"segments/{name}"
            if index < latest[variant] and rel not in self.reported:
                self.reported.add(rel)
                self.on_segment(rel)


def _scale_chains(ladder: list[Rendition]) -> list[str]:
    """Filter chains [s{i}] -> [v{i}]: each rung's picture from its branch of the split."""
    return [f"[s{i}]scale={r.width}:{r.height}:flags=bicubic,setsar=1[v{i}]" for i, r in enumerate(ladder)]


def _video_rate_args(ladder: list[Rendition]) -> list[str]:
    """Each rung's video bitrate, peak and buffer (output stream v:{i})."""
    return [arg for i, r in enumerate(ladder) for arg in (
        f"-b:v:{i}", str(r.video_bitrate), f"-maxrate:v:{i}", str(r.maxrate), f"-bufsize:v:{i}", str(r.bufsize))]


def _variant_streams(ladder: list[Rendition], has_audio: bool) -> str:
    """The HLS muxer's -var_stream_map: rung i is video stream i (and audio stream i), named."""
    return " ".join(f"v:{i}" + (f",a:{i}" if has_audio else "") + f",name:{r.name}"
                    for i, r in enumerate(ladder))


def _video_codec_args(fps: Fraction, segment_s: int, preset: str) -> list[str]:
    gop = max(1, round(fps * segment_s))
    # Fixed GOP, no scene-cut keyframes and forced keys at segment boundaries keep every
    # rendition's segments starting on the same frame, so players can switch anywhere.
    return ["-c:v", "libx264", "-preset", preset, "-profile:v", "high",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-force_key_frames", f"expr:gte(t,n_forced*{segment_s})",
            "-r", str(fps)]


def _audio_codec_args() -> list[str]:
    return ["-c:a", "aac", "-ac", "2", "-ar", "48000"]


def _hls_args(segment_s: int, name: str) -> list[str]:
    return ["-f", "hls", "-hls_time", str(segment_s), "-hls_playlist_type", "vod",
            "-hls_flags", "independent_segments", "-hls_segment_type", "fmp4",
            "-hls_fmp4_init_filename", init_segment_name(name),
            "-hls_segment_filename", f"segments/{name}_%05d.m4s"]   # segment_name, as FFmpeg's pattern


def _prepare(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    # A retried transcode must not leave the segments of an earlier attempt behind.
    shutil.rmtree(out_dir / "segments", ignore_errors=True)
    for playlist in out_dir.glob("*.m3u8"):
        playlist.unlink()
    (out_dir / "segments").mkdir(parents=True, exist_ok=True)
    return out_dir


def _finish(out_dir: Path, ladder: list[Rendition], fps: Fraction,
            has_audio: bool) -> HlsResult:
    """Point playlists at segments/, measure bitrates and write the master playlist."""
    renditions = []
    files = []
    duration = 0.0
    for r in ladder:
        playlist = out_dir / f"{r.name}.m3u8"
        if not playlist.exists():
            raise MediaError(f"ffmpeg wrote no {r.name} playlist")
        text = _fix_segment_uris(playlist.read_text())
        playlist.write_text(text)
        init, segments = parse_media_playlist(text)
        if not segments or init is None:
            raise MediaError(f"the {r.name} rendition has no segments")
        sizes = [(out_dir / uri).stat().st_size for _, uri in segments]
        total_s = sum(d for d, _ in segments)
        peak = max(size * 8 / max(d, 0.001) for size, (d, _) in zip(sizes, segments, strict=True))
        avg = sum(sizes) * 8 / max(total_s, 0.001)
        codecs = _avc_codec_tag(out_dir / init)
        if has_audio:
            codecs += "," + AUDIO_CODEC_TAG
        renditions.append(HlsRendition(
            name=r.name, width=r.width, height=r.height, bandwidth=math.ceil(peak),
            avg_bandwidth=math.ceil(avg), codecs=codecs, frame_rate=round(float(fps), 3),
            playlist=playlist.name, segment_durations=[d for d, _ in segments]))
        files += [playlist.name, init, *(uri for _, uri in segments)]
        duration = max(duration, total_s)
    (out_dir / "master.m3u8").write_text(_master_playlist(renditions))
    files.append("master.m3u8")
    return HlsResult(renditions=renditions, files=sorted(files), duration_s=round(duration, 3))


def write_playlists(out_dir: str | Path, ladder: list[Rendition], fps: Fraction, has_audio: bool,
                    durations: list[float], sizes: dict[str, list[int]],
                    codecs: dict[str, str]) -> HlsResult:
    """The media and master playlists for segments stored elsewhere, from their durations and sizes.

    What _finish measures from files on disk, given instead (the chunked ladder's chunks
    report them): same playlist text as FFmpeg's, same bandwidths. `files` lists the
    playlists and every segment and init segment they name.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    renditions, files = [], []
    target = max([1, *(round(d) for d in durations)])
    total_s = sum(durations)
    for r in ladder:
        seg = sizes.get(r.name) or []
        if not durations or len(seg) != len(durations):
            raise MediaError(f"the {r.name} rendition has {len(seg)} segment sizes for {len(durations)} segments")
        init = init_segment_name(r.name)
        uris = [segment_name(r.name, i) for i in range(len(durations))]
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:0",
                 "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS", f'#EXT-X-MAP:URI="{init}"']
        for d, uri in zip(durations, uris, strict=True):
            lines += [f"#EXTINF:{d:.6f},", uri]
        lines.append("#EXT-X-ENDLIST")
        playlist = f"{r.name}.m3u8"
        (out_dir / playlist).write_text("\n".join(lines) + "\n")
        peak = max(size * 8 / max(d, 0.001) for size, d in zip(seg, durations, strict=True))
        tag = codecs[r.name] + ("," + AUDIO_CODEC_TAG if has_audio else "")
        renditions.append(HlsRendition(
            name=r.name, width=r.width, height=r.height, bandwidth=math.ceil(peak),
            avg_bandwidth=math.ceil(sum(seg) * 8 / max(total_s, 0.001)), codecs=tag,
            frame_rate=round(float(fps), 3), playlist=playlist, segment_durations=list(durations)))
        files += [playlist, init, *uris]
    (out_dir / "master.m3u8").write_text(_master_playlist(renditions))
    files.append("master.m3u8")
    return HlsResult(renditions=renditions, files=sorted(files), duration_s=round(total_s, 3))


def _fix_segment_uris(text: str) -> str:
    # ffmpeg writes segment URIs relative to the segment directory, not the playlist.
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#") and not line.startswith("segments/"):
            line = "segments/" + line.rsplit("/", 1)[-1]
        lines.append(line)
    return "\n".join(lines) + "\n"


def _master_playlist(renditions: list[HlsRendition]) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for r in sorted(renditions, key=lambda r: r.bandwidth):
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={r.bandwidth},AVERAGE-BANDWIDTH={r.avg_bandwidth},"
            f"RESOLUTION={r.width}x{r.height},FRAME-RATE={r.frame_rate:.3f},"
            f'CODECS="{r.codecs}"')
        lines.append(r.playlist)
    return "\n".join(lines) + "\n"


def _avc_codec_tag(init_path: Path) -> str:
    """RFC 6381 tag (avc1.PPCCLL) from the avcC box of an fMP4 init segment."""
    data = init_path.read_bytes()
    at = data.find(b"avcC")
    if at < 0 or len(data) < at + 8:
        raise MediaError(f"no avcC box in {init_path.name}")
    profile, compat, level = data[at + 5], data[at + 6], data[at + 7]
    return f"avc1.{profile:02x}{compat:02x}{level:02x}"


def _even(value: float) -> int:
    return max(2, int(math.floor(value / 2 + 0.5)) * 2)


def _floor_even(value: float) -> int:
    return max(2, int(value) // 2 * 2)
