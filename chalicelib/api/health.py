"""GET / and GET /health: every part checked for real (FFmpeg, or in AWS the function that runs it)."""
from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from functools import lru_cache
from typing import Any

import psycopg2
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws, db, storage
from chalicelib.config import get_settings

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


def _ffmpeg_ok() -> bool:
    """FFmpeg runs here (local stack, media image), or else the function that runs it is ready.

    API functions in AWS carry no FFmpeg (it would not fit a zip function):
    there the honest answer is whether the transcode function can take work.
    """
    exe = _ffmpeg_path()
    if exe:
        return _ffmpeg_runs(exe)
    name = get_settings().transcode_function_name
    return bool(name) and _transcode_function_ready(name)


@lru_cache(maxsize=1)
def _ffmpeg_runs(exe: str) -> bool:
    try:
        return subprocess.run([exe, "-hide_banner", "-version"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# Load balancers and monitors call /health often: ask Lambda at most this often per container.
_FUNCTION_CHECK_TTL_S = 30.0
_function_checks: dict[str, tuple[float, bool]] = {}
_function_checks_lock = threading.Lock()


def _transcode_function_ready(name: str) -> bool:
    """Lambda's GetFunctionConfiguration says Active and Successful (cached briefly)."""
    now = time.monotonic()
    with _function_checks_lock:
        checked = _function_checks.get(name)
    if checked and now - checked[0] < _FUNCTION_CHECK_TTL_S:
        return checked[1]
    try:
        ok = function_ready(_lambda().get_function_configuration(FunctionName=name))
    except (BotoCoreError, ClientError):
        logger.warning("health: cannot read the configuration of %s", name, exc_info=True)
        ok = False
    with _function_checks_lock:
        _function_checks[name] = (now, ok)
    return ok


def function_ready(config: dict) -> bool:
    """A function takes invocations once created (State Active) and its last update succeeded."""
    return config.get("State") == "Active" and config.get("LastUpdateStatus") == "Successful"


def _lambda() -> Any:
    return aws.client("lambda", read_timeout=3)


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
