"""Moving media between the bucket and a step's scratch space (Lambda's /tmp)."""
from __future__ import annotations

import hashlib
import logging
import mimetypes
import shutil
import tempfile
import threading
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws, db, storage
from chalicelib.pipeline.step import PermanentStepError

logger = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024
_UPLOAD_THREADS = 8
CONTENT_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".m4s": "video/iso.segment",
                 ".mp4": "video/mp4", ".ts": "video/mp2t", ".jpg": "image/jpeg",
                 ".json": "application/json", ".mpd": "application/dash+xml", ".wav": "audio/wav",
                 ".vtt": "text/vtt"}
# Playlists change when a video is reprocessed; segments never do.
CACHE_CONTROL = {".m3u8": "private, max-age=60", ".m4s": "private, max-age=31536000, immutable",
                 ".mp4": "private, max-age=31536000, immutable"}


@contextmanager
def workdir(video_id: str) -> Iterator[Path]:
    """A scratch folder under TMPDIR (/tmp in Lambda), removed afterwards whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=f"clip-{video_id[:8]}-", dir=aws.scratch_dir()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def download(key: str, dest: Path) -> tuple[str, int]:
    """Stream an object to a file, hashing on the way; (sha256 hex, size). One pass, bounded memory."""
    try:
        body = storage.open_object(key)
    except storage.ObjectMissing:
        raise PermanentStepError(f"uploaded object {key} is missing") from None
    digest = hashlib.sha256()
    size = 0
    with open(dest, "wb") as out, body:
        for chunk in body.iter_chunks(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def speech_audio_key(video_id: str) -> str:
    """Where the transcode step leaves the 16 kHz speech WAV for the transcribe step.

    Not part of the storage layout (reference/001): a hand-over between two steps
    so the upload is decoded once. Transcribe deletes it after reading; it lives
    under the video's processed prefix so deleting the video removes a leftover too.
    """
    return f"{storage.processed_prefix(video_id)}tmp/speech-16k.wav"


def fetch_if_present(key: str, dest: Path) -> bool:
    """Download a small object to `dest` in one GET; False when it does not exist."""
    try:
        body = storage.open_object(key)
    except storage.ObjectMissing:
        return False
    with open(dest, "wb") as out, body:
        for chunk in body.iter_chunks(_CHUNK):
            out.write(chunk)
    return True


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def upload_file(path: Path, key: str) -> int:
    """Put one file under key with its content type and cache policy; its size."""
    storage.upload_file(str(path), key, content_type(path), CACHE_CONTROL.get(path.suffix))
    return path.stat().st_size


class Uploader:
    """Uploads files in a thread pool while the caller goes on (e.g. FFmpeg still encoding).

    `wait()` returns [(key, size, content type)] in submission order once all are
    stored. Leaving the `with` block on an error deletes what was already
    uploaded (best effort), so a failed step leaves no half a ladder behind.
    """

    def __init__(self, threads: int = _UPLOAD_THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="upload")
        self._jobs: list[tuple[str, Future]] = []
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    def __enter__(self) -> "Uploader":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._discard()
        self._pool.shutdown(wait=True)

    def submit(self, path: Path, key: str) -> None:
        """Start uploading `path` under `key` (thread-safe; a key already submitted is skipped)."""
        with self._lock:
            if key in self._keys:
                return
            self._keys.add(key)
            self._jobs.append((key, self._pool.submit(aws.in_context(self._put), path, key)))

    def wait(self) -> list[tuple[str, int, str]]:
        """Block until every submitted upload is stored; raise the first failure."""
        with self._lock:
            jobs = list(self._jobs)
        return [job.result() for _, job in jobs]

    @staticmethod
    def _put(path: Path, key: str) -> tuple[str, int, str]:
        return key, upload_file(path, key), content_type(path)

    def _discard(self) -> None:
        with self._lock:
            jobs = list(self._jobs)
        futures.wait([job for _, job in jobs])
        stored = [key for key, job in jobs if job.exception() is None]
        for key in stored:
            try:
                storage.delete(key)
            except (BotoCoreError, ClientError) as exc:  # must not hide the step's own error
                logger.warning("could not delete %s after a failed step: %s", key, exc)


def record_assets(video_id: str, assets: list[tuple[str, int, str]], kind_of, cur=None) -> None:
    """Remember every stored object of a video (deletion and storage stats rely on it).

    With `cur`, inside the caller's transaction; otherwise in one of its own.
    """
    if cur is None:
        with db.transaction() as own:
            record_assets(video_id, assets, kind_of, own)
        return
    for key, size, ctype in assets:
        cur.execute(
            "INSERT INTO video_assets (video_id, key, kind, size_bytes, content_type)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (video_id, key) DO UPDATE"
            " SET size_bytes = EXCLUDED.size_bytes, kind = EXCLUDED.kind, created_at = now()",
            (video_id, key, kind_of(key), size, ctype))


def ffmpeg_timeout(duration_s: float | None, factor: float, floor_s: float = 60,
                   ceiling_s: float = 840) -> float:
    """A wall-clock limit for FFmpeg work on a clip: proportional, bounded by the Lambda timeout."""
    return max(floor_s, min(ceiling_s, factor * (duration_s or 0)))
