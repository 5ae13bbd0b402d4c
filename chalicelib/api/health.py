"""GET / and GET /health: every part checked for real."""
from __future__ import annotations

import logging
import shutil
import subprocess
import time
from functools import lru_cache

import psycopg2

from chalicelib import db, storage

logger = logging.getLogger(__name__)

_STARTED = time.time()


def _humanize(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _database_ok() -> bool:
    try:
        row = db.fetch_one("SELECT 1 AS ok")
        return bool(row and row["ok"] == 1)
    except (db.DatabaseUnavailable, psycopg2.Error):
        logger.warning("health: database check failed", exc_info=True)
        return False


def _storage_ok() -> bool:
    try:
        storage.check_bucket()
        return True
    except storage.StorageUnavailable:
        logger.warning("health: storage check failed", exc_info=True)
        return False


@lru_cache(maxsize=1)
def _ffmpeg_path() -> str | None:
    try:
        import imageio_ffmpeg  # only the transcode function ships the binary
        return imageio_ffmpeg.get_ffmpeg_exe()
    except ImportError:
        return shutil.which("ffmpeg")


@lru_cache(maxsize=1)
def _ffmpeg_ok() -> bool:
    exe = _ffmpeg_path()
    if not exe:
        return False
    try:
        return subprocess.run([exe, "-hide_banner", "-version"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def check() -> tuple[int, dict]:
    """(status code, body) of the health check."""
    parts = {
        "database": ("connected", "database_connection_failed", _database_ok()),
        "storage": ("available", "storage_unavailable", _storage_ok()),
        "ffmpeg": ("ready", "ffmpeg_unavailable", _ffmpeg_ok()),
    }
    issues = [issue for _, issue, ok in parts.values() if not ok]
    if issues:
        body = {"status": "unhealthy", "issues": issues}
        for name, (good, _, ok) in parts.items():
            body[name] = good if ok else "unavailable"
        return 503, body
    body = {"status": "healthy"}
    body.update({name: good for name, (good, _, _) in parts.items()})
    body["uptime"] = _humanize(time.time() - _STARTED)
    return 200, body
