"""Test clips made with FFmpeg's synthetic sources (and espeak-ng speech), fast and small.

Every function writes the file it is given and returns its Path. Scenes are different
"unrelated" pictures; an audio bed (noise + random beeps + optional speech) stands in
for game sound, and can be shared by two clips at a time offset ("POV" clips).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import wave
from pathlib import Path

from chalicelib.media.ffmpeg import ffmpeg_exe

SCENES = {
    "testsrc2": "testsrc2=s={w}x{h}:r={fps}",
    "sierpinski": "sierpinski=s={w}x{h}:r={fps}:seed={seed}:jump=20",
    "smptebars": "smptebars=s={w}x{h}:r={fps}",
    "life": "life=s={w}x{h}:r={fps}:seed={seed}:mold=10:ratio=0.4:"
            "life_color=#00ff88:death_color=#aa0000:mold_color=#223344",
    "cellauto": "cellauto=s={w}x{h}:r={fps}:rule=30:seed={seed}:scroll=1",
    "gradients": "gradients=s={w}x{h}:r={fps}:speed=0.02:seed={seed}",
    "rgbtestsrc": "rgbtestsrc=s={w}x{h}:r={fps}",
    "noise": "color=c=gray:s={w}x{h}:r={fps},noise=alls=80:allf=t",
}

AUDIO_RATE = 44100
DEFAULT_SPEECH = "Enemy spotted on the left. Nice shot, that was a headshot from across the map."


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly, raising on failure (test helper: no timeout wrapper needed)."""
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args],
                   check=True, timeout=300)


def speech_wav(out: str | Path, text: str = DEFAULT_SPEECH, *, speed: int = 170) -> Path:
    """Speak `text` with espeak-ng into a WAV file."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install -y espeak-ng)")
    subprocess.run([espeak, "-s", str(speed), "-w", str(out), text], check=True, timeout=60)
    return Path(out)


def audio_bed(out: str | Path, duration: float, *, seed: int = 1,
              speech: str | None = None, speech_at: float = 1.0) -> Path:
    """Game-like audio: pink noise, beeps at random times and pitches, optional speech."""
    import numpy as np

    rate = AUDIO_RATE
    n = int(round(duration * rate))
    rng = np.random.default_rng(seed)
    # Pink noise: white noise shaped by 1/sqrt(f) in the frequency domain.
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n)
    signal = 0.08 * noise / (np.abs(noise).max() + 1e-9)
    t = rng.uniform(0.1, 0.6)
    while t < duration:
        freq = rng.choice([440, 523, 659, 784, 880, 1047, 1319])
        start, length = int(t * rate), int(rng.uniform(0.08, 0.3) * rate)
        tone = 0.35 * np.sin(2 * np.pi * freq * np.arange(length) / rate)
        signal[start:start + length] += tone[: max(0, n - start)]
        t += rng.uniform(0.25, 0.9)
    if speech:
        voice = _read_wav_mono(speech_wav(Path(out).with_suffix(".speech.wav"), speech), rate)
        start = int(speech_at * rate)
        voice = voice[: max(0, n - start)]
        signal[start:start + len(voice)] += 0.8 * voice / (np.abs(voice).max() + 1e-9)
    signal /= max(1.0, np.abs(signal).max() / 0.9)
    pcm = (signal * 32767).astype("<i2")
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.repeat(pcm, 2).tobytes())
    return Path(out)


def make_clip(out: str | Path, *, scene: str = "testsrc2", duration: float = 4.0,
              size: tuple[int, int] = (320, 180), fps: int = 30, audio: bool = True,
              speech: str | None = None, seed: int = 1, bed: str | Path | None = None,
              bed_offset: float = 0.0, vcodec: str = "libx264", acodec: str | None = None,
              extra: tuple[str, ...] = ()) -> Path:
    """A clip of `scene` with (optionally) an audio bed; container from the file suffix.

    `bed` reuses an existing audio bed starting `bed_offset` seconds in (POV clips).
    """
    w, h = size
    src = SCENES[scene].format(w=w, h=h, fps=fps, seed=seed)
    args = ["-f", "lavfi", "-i", src]
    if audio:
        if bed is None:
            bed = Path(out).with_suffix(".bed.wav")
            audio_bed(bed, duration + bed_offset, seed=seed, speech=speech)
        args += ["-ss", f"{bed_offset:.3f}", "-i", str(bed)]
    args += ["-t", f"{duration:.3f}", "-map", "0:v"] + (["-map", "1:a"] if audio else [])
    args += _video_args(vcodec) + ["-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", acodec or _default_acodec(out)]
    ffmpeg(*args, *extra, str(out))
    return Path(out)


def black_then_scene(out: str | Path, *, black_s: float = 3.0, scene: str = "testsrc2",
                     scene_s: float = 1.0, size: tuple[int, int] = (320, 180),
                     fps: int = 30) -> Path:
    """`black_s` seconds of black, then `scene_s` seconds of `scene` (no audio)."""
    w, h = size
    graph = (f"color=c=black:s={w}x{h}:r={fps}:d={black_s}[b];"
             f"{SCENES[scene].format(w=w, h=h, fps=fps, seed=1)},trim=duration={scene_s}[s];"
             f"[b][s]concat=n=2:v=1:a=0[v]")
    ffmpeg("-filter_complex", graph, "-map", "[v]", *_video_args("libx264"),
           "-pix_fmt", "yuv420p", str(out))
    return Path(out)


def reencode(src: str | Path, out: str | Path, *, size: tuple[int, int] | None = None,
             bitrate: str | None = None, vcodec: str = "libx264", fps: int | None = None,
             acodec: str | None = None, audio_bitrate: str = "96k") -> Path:
    """Re-encode `src` (other size, bitrate, codec or container by suffix)."""
    args = ["-i", str(src)]
    filters = []
    if size:
        filters.append(f"scale={size[0]}:{size[1]}")
    if fps:
        filters.append(f"fps={fps}")
    if filters:
        args += ["-vf", ",".join(filters)]
    args += _video_args(vcodec)
    if bitrate:
        args += ["-b:v", bitrate]
    args += ["-c:a", acodec or _default_acodec(out), "-b:a", audio_bitrate]
    ffmpeg(*args, str(out))
    return Path(out)


def trim(src: str | Path, out: str | Path, start: float, duration: float) -> Path:
    """Cut `duration` seconds from `start` (re-encoded, so the cut is frame exact)."""
    ffmpeg("-ss", f"{start:.3f}", "-i", str(src), "-t", f"{duration:.3f}",
           *_video_args("libx264"), "-c:a", _default_acodec(out), str(out))
    return Path(out)


def change_container(src: str | Path, out: str | Path) -> Path:
    """Copy the streams into another container (by suffix) without re-encoding."""
    ffmpeg("-i", str(src), "-map", "0", "-c", "copy", str(out))
    return Path(out)


def pov_clip(out: str | Path, bed: str | Path, offset: float, *, scene: str = "life",
             duration: float = 6.0, size: tuple[int, int] = (320, 180), seed: int = 7) -> Path:
    """Another player's view of the same moment: other picture, `bed` from `offset` s."""
    return make_clip(out, scene=scene, duration=duration, size=size, bed=bed,
                     bed_offset=offset, seed=seed)


# Bad inputs -----------------------------------------------------------------------------

def zero_bytes(out: str | Path) -> Path:
    """An empty file."""
    Path(out).write_bytes(b"")
    return Path(out)


def text_as_mp4(out: str | Path) -> Path:
    """A text file with an .mp4 name."""
    Path(out).write_text("this is not a video, just some text renamed to .mp4\n" * 20)
    return Path(out)


def png_image(out: str | Path, size: tuple[int, int] = (320, 240)) -> Path:
    """A still PNG image (written as PNG whatever the suffix of `out`)."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={size[0]}x{size[1]}", "-frames:v", "1",
           "-f", "image2", "-c:v", "png", str(out))
    return Path(out)


def audio_only(out: str | Path, duration: float = 3.0) -> Path:
    """An audio-only file (AAC in .m4a/.mp4)."""
    ffmpeg("-f", "lavfi", "-i", f"sine=f=440:d={duration}", "-c:a", "aac", str(out))
    return Path(out)


def tiny_video(out: str | Path, size: tuple[int, int] = (1, 1)) -> Path:
    """A 1x1 video (raw video in Matroska: H.264 refuses odd sizes)."""
    ffmpeg("-f", "lavfi", "-i", f"color=c=red:s={size[0]}x{size[1]}:d=1", "-c:v", "rawvideo",
           str(out))
    return Path(out)


def huge_dimensions_y4m(out: str | Path, width: int = 16000, height: int = 16000) -> Path:
    """A Y4M header claiming a huge frame (no frame data follows)."""
    Path(out).write_bytes(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\nFRAME\n".encode())
    return Path(out)


def huge_dimensions_avi(out: str | Path, width: int = 16000, height: int = 16000) -> Path:
    """A small raw-video AVI whose headers (avih and the stream's BITMAPINFOHEADER) claim a huge frame."""
    import struct

    small = Path(out).with_suffix(".small.avi")
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64:d=1:r=5", "-c:v", "rawvideo",
           "-pix_fmt", "yuv420p", "-f", "avi", str(small))
    data = bytearray(small.read_bytes())
    small.unlink()
    avih, strf = data.find(b"avih"), data.find(b"strf")
    struct.pack_into("<II", data, avih + 8 + 32, width, height)
    struct.pack_into("<ii", data, strf + 8 + 4, width, height)
    Path(out).write_bytes(bytes(data))
    return Path(out)


def hls_playlist(out: str | Path, urls: list[str]) -> Path:
    """An HLS media playlist (text) whose segments are `urls`, whatever the suffix of `out`."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:4", "#EXT-X-MEDIA-SEQUENCE:0"]
    for url in urls:
        lines += ["#EXTINF:4.0,", url]
    Path(out).write_text("\n".join(lines + ["#EXT-X-ENDLIST", ""]))
    return Path(out)


def concat_list(out: str | Path, files: list[str]) -> Path:
    """An ffconcat script listing `files` (paths or URLs)."""
    Path(out).write_text("ffconcat version 1.0\n" + "".join(f"file '{f}'\n" for f in files))
    return Path(out)


def sdp_session(out: str | Path, port: int) -> Path:
    """An SDP description of an RTP/H.264 stream on 127.0.0.1:`port` (a live-network input)."""
    Path(out).write_text(
        "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=clip\nc=IN IP4 127.0.0.1\nt=0 0\n"
        f"m=video {port} RTP/AVP 96\na=rtpmap:96 H264/90000\n")
    return Path(out)


def ten_hour_claim(out: str | Path) -> Path:
    """A tiny MP4 whose last frame sits at 10 h, so the container claims a 10 h duration."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=1",
           "-vf", "setpts='if(eq(N,9),36000/TB,PTS)'", "-fps_mode", "vfr",
           *_video_args("libx264"), str(out))
    return Path(out)


def truncated(src: str | Path, out: str | Path, keep: float = 0.5) -> Path:
    """The first `keep` share of `src`'s bytes."""
    data = Path(src).read_bytes()
    Path(out).write_bytes(data[: int(len(data) * keep)])
    return Path(out)


def fifo(out: str | Path) -> Path:
    """A named pipe nobody writes to: reading it blocks forever."""
    os.mkfifo(out)
    return Path(out)


def _read_wav_mono(path: Path, rate: int):
    import numpy as np

    with wave.open(str(path), "rb") as wav:
        channels, width, src_rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        data = np.frombuffer(wav.readframes(wav.getnframes()), "<i2" if width == 2 else "u1")
    samples = data.reshape(-1, channels).mean(axis=1).astype(np.float64) / 32768
    if src_rate != rate:
        positions = np.arange(int(len(samples) * rate / src_rate)) * src_rate / rate
        samples = np.interp(positions, np.arange(len(samples)), samples)
    return samples


def _video_args(vcodec: str) -> list[str]:
    if vcodec == "libx264":
        return ["-c:v", "libx264", "-preset", "ultrafast"]
    if vcodec == "libvpx-vp9":
        return ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k"]
    if vcodec == "libvpx":
        return ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k"]
    return ["-c:v", vcodec]


def _default_acodec(out: str | Path) -> str:
    return "libopus" if Path(out).suffix in (".webm", ".mkv") else "aac"
