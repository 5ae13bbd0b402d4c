"""Moving media between the bucket and a step's scratch space (Lambda's /tmp)."""
from __future__ import annotations

import hashlib
import logging
import mimetypes
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from chalicelib import db, storage
from chalicelib.config import get_settings
from chalicelib.pipeline.step import PermanentStepError

logger = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024
_UPLOAD_THREADS = 8
CONTENT_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".m4s": "video/iso.segment",
                 ".mp4": "video/mp4", ".ts": "video/mp2t", ".jpg": "image/jpeg",
                 ".json": "application/json", ".mpd": "application/dash+xml"}
# Playlists change when a video is reprocessed; segments never do.
CACHE_CONTROL = {".m3u8": "private, max-age=60", ".m4s": "private, max-age=31536000, immutable",
                 ".mp4": "private, max-age=31536000, immutable"}


@contextmanager
def workdir(video_id: str) -> Iterator[Path]:
    """A scratch folder under TMPDIR (/tmp in Lambda), removed afterwards whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=f"clip-{video_id[:8]}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def download(key: str, dest: Path) -> tuple[str, int]:
    """Stream an object to a file, hashing on the way; (sha256 hex, size). One pass, bounded memory."""
    s3 = storage.s3_client()
    try:
        obj = s3.get_object(Bucket=get_settings().bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        raise PermanentStepError(f"uploaded object {key} is missing") from None
    digest = hashlib.sha256()
    size = 0
    with open(dest, "wb") as out:
        for chunk in obj["Body"].iter_chunks(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def upload_file(path: Path, key: str) -> int:
    """Put one file under key with its content type and cache policy; its size."""
    extra = {"ContentType": content_type(path)}
    if path.suffix in CACHE_CONTROL:
        extra["CacheControl"] = CACHE_CONTROL[path.suffix]
    storage.s3_client().upload_file(str(path), get_settings().bucket, key, ExtraArgs=extra)
    return path.stat().st_size


def upload_tree(root: Path, files: list[str], prefix: str) -> list[tuple[str, int, str]]:
    """Upload files (relative to root) under prefix, in parallel; [(key, size, content type)]."""

    def put(rel: str) -> tuple[str, int, str]:
        path = root / rel
        return prefix + rel, upload_file(path, prefix + rel), content_type(path)

    with ThreadPoolExecutor(_UPLOAD_THREADS) as pool:
        return list(pool.map(put, files))


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
