"""Running the bundled FFmpeg with a wall-clock limit and bounded output capture."""
from __future__ import annotations

import collections
import functools
import logging
import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO

from chalicelib.media.errors import MediaError, MediaTimeoutError, TransientMediaError

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 200
STDOUT_LIMIT_BYTES = 256 * 1024 * 1024
# What speech recognition reads (Whisper works on 16 kHz mono).
SPEECH_SAMPLE_RATE = 16000

# Lines FFmpeg prints at the end of every failure; the cause is on a line before them.
_GENERIC_ERROR_PREFIXES = (
    "Conversion failed",
    "Error opening input",
    "Error opening output file",
    "Error opening output files",
    "At least one output file must be specified",
)


_LOG_PREFIX_RE = re.compile(r"^(\[[^\]]*\]\s*)+")


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the FFmpeg binary (FFMPEG_BINARY overrides the imageio-ffmpeg one)."""
    override = os.environ.get("FFMPEG_BINARY")
    if override:
        return override
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.cache
def ffmpeg_version() -> str:
    """The first line of `ffmpeg -version`, e.g. 'ffmpeg version n9.0.2 ...'."""
    result = run_ffmpeg(["-version"], timeout_s=30)
    return result.stdout.decode("utf-8", "replace").splitlines()[0].strip()


def speech_wav_args() -> list[str]:
    """Output options for the 16 kHz mono 16-bit PCM WAV that speech recognition reads.

    One definition: the transcode step writes this file as a side output of its
    decode, and extract_audio writes the same when it has to decode on its own.
    """
    return ["-vn", "-sn", "-dn", "-ac", "1", "-ar", str(SPEECH_SAMPLE_RATE),
            "-c:a", "pcm_s16le", "-f", "wav"]


def max_seconds() -> float | None:
    """FFMPEG_MAX_SECONDS: an upper bound on every FFmpeg run (e.g. below a short Lambda timeout)."""
    value = os.environ.get("FFMPEG_MAX_SECONDS")
    return float(value) if value else None


def run_ffmpeg(args: list[str], timeout_s: float, cwd: str | Path | None = None, *,
               check: bool = True, capture_stdout: bool = True) -> subprocess.CompletedProcess:
    """Run ffmpeg with `args`; stdout as bytes, stderr as its last lines (str)."""
    timeout_s = min(timeout_s, max_seconds() or timeout_s)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", *args]
    logger.debug("ffmpeg %s", " ".join(args))
    # A new session makes the process group ours to kill: filters may fork helpers.
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    out = bytearray()
    overflow = threading.Event()
    readers = [threading.Thread(target=_drain_lines, args=(proc.stderr, tail), daemon=True)]
    if capture_stdout:
        readers.append(threading.Thread(target=_drain_bytes, args=(proc.stdout, out, overflow),
                                        daemon=True))
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        for reader in readers:
            reader.join(timeout=5)
        raise MediaTimeoutError(f"ffmpeg timed out after {timeout_s:g} s") from None
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    for reader in readers:
        reader.join(timeout=10)
    stderr = "\n".join(tail)
    if overflow.is_set():
        raise MediaError("ffmpeg produced more output than allowed")
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        raise TransientMediaError(f"ffmpeg was killed by {sig}")
    if check and proc.returncode != 0:
        raise MediaError(last_error_line(stderr) or f"ffmpeg exited with {proc.returncode}")
    return subprocess.CompletedProcess(cmd, proc.returncode, bytes(out), stderr)


def last_error_line(stderr: str) -> str:
    """The last stderr line that says something more specific than 'conversion failed'."""
    fallback = ""
    for line in reversed(stderr.splitlines()):
        # Drop "[component @ 0x...]" prefixes: addresses differ per run.
        line = _LOG_PREFIX_RE.sub("", line.strip())
        if not line or line.startswith("Exiting with exit code"):
            continue
        if not line.startswith(_GENERIC_ERROR_PREFIXES):
            return line[:300]
        fallback = fallback or line[:300]
    return fallback


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _drain_lines(stream: IO[bytes], tail: collections.deque[str]) -> None:
    for raw in iter(lambda: stream.readline(1 << 16), b""):
        # Progress lines end in \r; keep only the last state of each.
        tail.append(raw.decode("utf-8", "replace").rstrip().rsplit("\r", 1)[-1])
    stream.close()


def _drain_bytes(stream: IO[bytes], out: bytearray, overflow: threading.Event) -> None:
    for chunk in iter(lambda: stream.read(1 << 16), b""):
        if len(out) + len(chunk) > STDOUT_LIMIT_BYTES:
            overflow.set()
            continue  # keep reading so ffmpeg never blocks on a full pipe
        out += chunk
    stream.close()
