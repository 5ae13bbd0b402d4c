"""Reading a media file's headers with ffmpeg, and refusing inputs we will not process."""
from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from chalicelib import failures
from chalicelib.media.errors import (InvalidMediaError, MediaError, MediaTimeoutError,
                                     TransientMediaError)
from chalicelib.media.ffmpeg import (FORMAT_REFUSED, UPLOADED_FILE, InputPolicy, last_error_line,
                                     run_ffmpeg)

logger = logging.getLogger(__name__)

# Limits for a gaming clip. Uploads are presigned with the same size cap.
MAX_BYTES = 2 * 1024**3
# Clips are short; a longer claim is a mistake or an attack on transcode time.
MAX_DURATION_S = 30 * 60.0
MIN_DURATION_S = 0.5
# 4K (DCI) is the largest frame we decode: more is a decompression bomb for a Lambda.
MAX_SIDE = 4096
MAX_PIXELS = 4096 * 2160
# Below this a "video" is a tracking pixel or a broken header, not a clip.
MIN_SIDE = 64

# Demuxers that read single still images (ffmpeg names them "<codec>_pipe" or "image2").
_IMAGE_FORMATS = ("image2",)
_STILL_CODECS = {"png", "mjpeg", "bmp", "webp", "tiff", "jpegxl", "jpeg2000", "qoi", "pam",
                 "ppm", "pgm", "pbm", "avif"}

_INPUT_RE = re.compile(r"^Input #0, (?P<format>.+?), from ")
_DURATION_RE = re.compile(
    r"^\s+Duration: (?:(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)|N/A)"
    r".*?bitrate: (?:(?P<kbps>\d+) kb/s|N/A)")
_STREAM_RE = re.compile(r"^\s+Stream #0:\d+\S*: (?P<kind>Video|Audio|Subtitle|Data|Attachment): "
                        r"(?P<codec>[\w-]+)(?P<rest>.*)$")
_SIZE_RE = re.compile(r"[ ,](\d{1,7})x(\d{1,7})(?=[ ,]|$)")
_FPS_RE = re.compile(r", (\d+(?:\.\d+)?)(k?) (fps|tbr)")
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_BAD_SIZE_RE = re.compile(r"Picture size (\d+)x(\d+) is invalid")

# What a refused file most likely is, from its first bytes (for the reason only: the
# refusal itself is FFmpeg's format whitelist).
_SNIFF = ((b"#EXTM3U", "an HLS playlist"), (b"ffconcat", "a concat list"),
          (b"file ", "a concat list"), (b"v=0", "an SDP session description"),
          (b"\x89PNG", "a still image"), (b"\xff\xd8\xff", "a still image"),
          (b"GIF8", "a still image"), (b"YUV4MPEG2", "a raw YUV4MPEG stream"),
          (b"RIFF", "a RIFF file that is not AVI"), (b"ID3", "an audio file"),
          (b"<?xml", "an XML document"))
_NOT_VIDEOS = {"an HLS playlist", "a concat list", "an SDP session description"}
ACCEPTED_CONTAINERS = "MP4/MOV, AVI, Matroska or WebM"


@dataclass(frozen=True)
class MediaInfo:
    """What the headers say about a media file (display orientation applied)."""

    duration_s: float | None
    width: int
    height: int
    fps: float | None
    video_codec: str | None
    audio_codec: str | None
    has_video: bool
    has_audio: bool
    size_bytes: int
    format_name: str
    bitrate: int | None

    def to_dict(self) -> dict:
        """JSON-able form."""
        return asdict(self)


def probe(path: str | Path, timeout_s: float = 30, *,
          inputs: InputPolicy = UPLOADED_FILE) -> MediaInfo:
    """Read container and stream headers (no full decode); InvalidMediaError if unreadable.

    Only the accepted containers are opened (`inputs`): anything else is refused
    by name before FFmpeg reads past its first bytes.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0 and not _is_fifo(path):
        raise InvalidMediaError("the file is empty")
    result = run_ffmpeg(["-i", str(path)], timeout_s=timeout_s, check=False,
                        capture_stdout=False, inputs=inputs)
    if FORMAT_REFUSED in result.stderr:
        raise InvalidMediaError(f"not a video file: {_what_it_is(path)}, not "
                                f"{ACCEPTED_CONTAINERS}")
    try:
        info = parse_probe_output(result.stderr, size)
    except InvalidMediaError:
        # A playlist that FFmpeg's own checks refused before ours: say what it is.
        what = _what_it_is(path)
        if what in _NOT_VIDEOS:
            raise InvalidMediaError(f"not a video file: {what}, not {ACCEPTED_CONTAINERS}") from None
        raise
    if info.has_video and info.duration_s is None and not _is_image(info):
        # Streamed recordings (e.g. browser WebM) carry no duration: count it from packets.
        info = replace(info, duration_s=_packet_duration(path, timeout_s))
    return info


def parse_probe_output(stderr: str, size_bytes: int) -> MediaInfo:
    """Build MediaInfo from `ffmpeg -i` stderr."""
    lines = stderr.splitlines()
    fmt = None
    duration = None
    bitrate = None
    video: dict | None = None
    audio_codec = None
    current_video = False
    for line in lines:
        if fmt is None:
            m = _INPUT_RE.match(line)
            if m:
                fmt = m.group("format")
            continue
        m = _DURATION_RE.match(line)
        if m:
            if m.group("h") is not None:
                duration = int(m.group("h")) * 3600 + int(m.group("m")) * 60 + float(m.group("s"))
            if m.group("kbps"):
                bitrate = int(m.group("kbps")) * 1000
            continue
        m = _STREAM_RE.match(line)
        if m:
            current_video = False
            kind, codec, rest = m.group("kind", "codec", "rest")
            if kind == "Video" and video is None and "(attached pic)" not in rest:
                video = _parse_video(codec, rest)
                current_video = True
            elif kind == "Audio" and audio_codec is None:
                audio_codec = codec
            continue
        if current_video:
            rot = _ROTATION_RE.search(line)
            if rot and round(abs(float(rot.group(1)))) % 180 == 90:
                video["width"], video["height"] = video["height"], video["width"]
    if fmt is None:
        bad = _BAD_SIZE_RE.search(stderr)
        if bad:
            raise InvalidMediaError(f"video dimensions {bad.group(1)}x{bad.group(2)} are too large",
                                    failures.TOO_LARGE)
        cause = last_error_line(stderr) or "unknown format"
        raise InvalidMediaError(f"not a readable media file ({cause})")
    return MediaInfo(
        duration_s=duration,
        width=video["width"] if video else 0,
        height=video["height"] if video else 0,
        fps=video["fps"] if video else None,
        video_codec=video["codec"] if video else None,
        audio_codec=audio_codec,
        has_video=video is not None,
        has_audio=audio_codec is not None,
        size_bytes=size_bytes,
        format_name=fmt,
        bitrate=bitrate,
    )


def check_limits(info: MediaInfo, *, max_bytes: int = MAX_BYTES,
                 max_duration_s: float = MAX_DURATION_S, min_duration_s: float = MIN_DURATION_S,
                 max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS,
                 min_side: int = MIN_SIDE) -> None:
    """Raise InvalidMediaError with a clear reason when `info` is not a clip we process."""
    if info.size_bytes == 0:
        raise InvalidMediaError("the file is empty")
    if info.size_bytes > max_bytes:
        raise InvalidMediaError(
            f"the file is {info.size_bytes / 1024**2:.0f} MiB, over the "
            f"{max_bytes / 1024**2:.0f} MiB limit", failures.TOO_LARGE)
    if not info.has_video:
        what = "an audio file" if info.has_audio else "a media file without a video stream"
        raise InvalidMediaError(f"not a video: {what}")
    if _is_image(info):
        raise InvalidMediaError(f"not a video: a still image ({info.video_codec})")
    w, h = info.width, info.height
    if w <= 0 or h <= 0:
        raise InvalidMediaError("the video dimensions are unknown", failures.DAMAGED)
    if max(w, h) > max_side or w * h > max_pixels:
        raise InvalidMediaError(
            f"video dimensions {w}x{h} are too large (limit {max_side} px a side, "
            f"{max_pixels} pixels)", failures.TOO_LARGE)
    if min(w, h) < min_side:
        raise InvalidMediaError(f"video dimensions {w}x{h} are too small (at least {min_side} px)",
                                failures.TOO_SMALL)
    if info.duration_s is None:
        raise InvalidMediaError("the video duration is unknown", failures.DAMAGED)
    if info.duration_s > max_duration_s:
        raise InvalidMediaError(
            f"the video is {_hms(info.duration_s)} long, over the {_hms(max_duration_s)} limit",
            failures.TOO_LONG)
    if info.duration_s < min_duration_s:
        raise InvalidMediaError(f"the video is too short ({info.duration_s:.2f} s)", failures.TOO_SHORT)


def verify_decodable(path: str | Path, seconds: float = 1.0, timeout_s: float = 60, *,
                     duration_s: float | None = None) -> None:
    """Decode the first and the last `seconds` of video; InvalidMediaError if either fails."""
    if duration_s is None:
        duration_s = probe(path, timeout_s=timeout_s).duration_s or 0.0
    starts = [0.0]
    if duration_s > 2 * seconds:
        starts.append(max(0.0, duration_s - seconds - 0.5))
    for start in starts:
        where = "start" if start == 0 else "end"
        args = ["-v", "error"]
        if start:
            args += ["-ss", f"{start:.3f}"]
        args += ["-i", str(path), "-map", "0:v:0", "-t", f"{seconds + 0.5:.3f}",
                 "-vf", "scale=16:16,format=gray", "-f", "rawvideo", "pipe:1"]
        try:
            result = run_ffmpeg(args, timeout_s=timeout_s)
        except (MediaTimeoutError, TransientMediaError):
            raise
        except MediaError as exc:
            raise InvalidMediaError(
                f"the video cannot be decoded at the {where}: {exc.reason}", failures.DAMAGED) from exc
        frames = len(result.stdout) // 256
        if frames == 0:
            cause = last_error_line(result.stderr)
            raise InvalidMediaError(
                f"the video is truncated or corrupt: no frame decodes at the {where}"
                + (f" ({cause})" if cause else ""), failures.DAMAGED)
        if result.stderr.strip():
            logger.warning("decode errors at the %s of %s: %s", where, path,
                           last_error_line(result.stderr))


def _parse_video(codec: str, rest: str) -> dict:
    size = _SIZE_RE.search(rest)
    fps = None
    for m in _FPS_RE.finditer(rest):
        value = float(m.group(1)) * (1000 if m.group(2) else 1)
        # "fps" is the average rate; "tbr" is only a guess, used when fps is missing.
        if m.group(3) == "fps" or fps is None:
            fps = value
        if m.group(3) == "fps":
            break
    return {
        "codec": codec,
        "width": int(size.group(1)) if size else 0,
        "height": int(size.group(2)) if size else 0,
        "fps": fps if fps else None,
    }


def _packet_duration(path: Path, timeout_s: float) -> float | None:
    try:
        result = run_ffmpeg(["-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                             "-f", "null", "-progress", "pipe:1", "-"], timeout_s=timeout_s)
    except (MediaTimeoutError, TransientMediaError):
        raise
    except MediaError as exc:
        raise InvalidMediaError(f"the video cannot be read: {exc.reason}", failures.DAMAGED) from exc
    times = re.findall(rb"^out_time_us=(\d+)$", result.stdout, re.M)
    return int(times[-1]) / 1e6 if times else None


def _is_image(info: MediaInfo) -> bool:
    return (info.format_name in _IMAGE_FORMATS or info.format_name.endswith("_pipe")
            or (info.video_codec in _STILL_CODECS and not info.duration_s))


def _what_it_is(path: Path) -> str:
    if _is_fifo(path):
        return "a format we do not accept"
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        head = b""
    for magic, what in _SNIFF:
        if head.startswith(magic):
            return what
    return "a format we do not accept"


def _is_fifo(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
