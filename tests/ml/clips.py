"""Game-like test audio with known speech placement: espeak-ng over noise, beeps, booms.

Everything is generated with a seeded RNG in numpy (deterministic), written as
16 kHz mono WAV, and optionally muxed into an MP4 with a tiny video track.
"""
from __future__ import annotations

import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chalicelib.media.ffmpeg import ffmpeg_exe

SR = 16000
LEAD_IN_S = 3.0
GAP_S = 1.5


@dataclass(frozen=True)
class SpeechClip:
    path: Path
    sentences: list[str]
    offsets: list[float]    # where each sentence's audio starts, seconds
    durations: list[float]  # how long espeak-ng's audio for it lasts


def speak(text: str, speed: int = 140) -> np.ndarray:
    """espeak-ng (voice en-us) speech as float32 samples at 16 kHz."""
    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is not installed (apt-get install -y espeak-ng)"
    wav = subprocess.run([espeak, "-v", "en-us", "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True, timeout=60).stdout
    pcm = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", "-", "-ac", "1", "-ar", str(SR),
                          "-f", "s16le", "-"], input=wav, capture_output=True, check=True,
                         timeout=60).stdout
    return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0


def game_noise(seconds: float, seed: int, level: float = 0.03) -> np.ndarray:
    """Pink-ish noise at RMS `level`, a beep every 1.6 s, an explosion every 4.3 s."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    white = rng.standard_normal(n).astype(np.float32)
    rumble = np.convolve(white, 0.03 * 0.97 ** np.arange(200), mode="same").astype(np.float32)
    bed = 0.5 * white / white.std() + rumble / rumble.std()
    bed *= level / np.sqrt(np.mean(bed ** 2))
    t = np.arange(n) / SR
    for k, start in enumerate(np.arange(0.7, seconds - 0.3, 1.6)):
        on = (t >= start) & (t < start + 0.15)
        bed[on] += 0.2 * np.sin(2 * np.pi * (880, 1320, 2000)[k % 3] * t[on])
    for start in np.arange(1.9, seconds - 1.0, 4.3):
        on = (t >= start) & (t < start + 0.9)
        burst = np.cumsum(rng.standard_normal(int(on.sum())))
        burst -= np.convolve(burst, np.ones(400) / 400, mode="same")
        bed[on] += 0.4 * burst / np.abs(burst).max() * np.exp(-(t[on] - start) * 5)
    return bed


def write_wav(path: Path, samples: np.ndarray) -> Path:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SR)
        out.writeframes(pcm.tobytes())
    return path


def to_mp4(wav: Path, out: Path) -> Path:
    """Mux the WAV as AAC under a small solid-colour H.264 track."""
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
                    "-i", "color=c=navy:s=160x90:r=10", "-i", str(wav), "-shortest",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "96k",
                    str(out)], check=True, timeout=120)
    return out


def speech_clip(out: Path, sentences: list[str], seed: int = 7) -> SpeechClip:
    """Noise for LEAD_IN_S, then each sentence followed by GAP_S of noise."""
    voices = [speak(s) for s in sentences]
    offsets, pos = [], LEAD_IN_S
    for v in voices:
        offsets.append(pos)
        pos += len(v) / SR + GAP_S
    bed = game_noise(pos + 1.0, seed)
    for start, v in zip(offsets, voices, strict=True):
        i = int(start * SR)
        bed[i:i + len(v)] += v
    wav = write_wav(out.with_suffix(".wav"), bed)
    path = to_mp4(wav, out) if out.suffix == ".mp4" else wav
    return SpeechClip(path, sentences, offsets, [len(v) / SR for v in voices])


def ffmpeg_silent_video(out: Path, seconds: float = 2.0) -> Path:
    """An H.264 MP4 with no audio stream."""
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
                    "-i", f"color=c=gray:s=160x90:r=10:d={seconds}", "-c:v", "libx264",
                    "-preset", "ultrafast", str(out)], check=True, timeout=60)
    return out
