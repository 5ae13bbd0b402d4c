"""Small helpers the tests share."""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable


def wait_for(predicate: Callable[[], Any], timeout_s: float = 60, interval_s: float = 0.2) -> Any:
    """Poll until predicate returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s (last value: {value!r})")


def video_row(video_id: str) -> dict | None:
    from chalicelib import db
    return db.fetch_one("SELECT * FROM videos WHERE id = %s", (video_id,))


def wait_for_final(video_id: str, timeout_s: float = 120) -> dict:
    """Wait until the video is complete, duplicate or failed; its row.

    A complete video's execution goes on after playable: its Fallbacks state stores the MP4s.
    For a video an execution finished (not one a test marked complete by hand, nor a deleted
    one), this also waits for that state's recorded outcome, so a test sees every object and
    stage run the execution makes.
    """
    def final():
        row = video_row(video_id)
        if not row or row["status"] not in ("complete", "duplicate", "failed"):
            return None
        if row["status"] == "complete" and row["deleted_at"] is None and _fallbacks_pending(video_id):
            return None
        return row
    return wait_for(final, timeout_s)


def _fallbacks_pending(video_id: str) -> bool:
    """A succeeded execution of the video has no recorded Fallbacks outcome yet."""
    from chalicelib import db
    from chalicelib.pipeline import progress

    return db.fetch_one(
        "SELECT EXISTS (SELECT 1 FROM pipeline_executions e WHERE e.video_id = %s AND e.status = 'succeeded'"
        " AND NOT EXISTS (SELECT 1 FROM stage_runs r WHERE r.video_id = e.video_id"
        "  AND r.execution_name = e.execution_name AND r.stage = %s)) AS pending",
        (video_id, progress.FALLBACKS_STAGE))["pending"]


def wait_for_fallbacks(video_id: str, timeout_s: float = 120) -> dict:
    """Wait until the Fallbacks state (after playable) recorded its outcome; that stage run."""
    from chalicelib import db
    from chalicelib.pipeline import progress

    return wait_for(lambda: db.fetch_one(
        "SELECT status, output, error FROM stage_runs WHERE video_id = %s AND stage = %s",
        (video_id, progress.FALLBACKS_STAGE)), timeout_s)


JSON = {"Content-Type": "application/json"}


def call(client, method, path, who=None, body=None):
    """(status, JSON body or None) of one request; who is a sign_in result or None."""
    kwargs = {"headers": {**JSON, **(who["headers"] if who else {})}}
    if body is not None:
        kwargs["body"] = body if isinstance(body, str) else json.dumps(body)
    resp = getattr(client.http, method.lower())(path, **kwargs)
    return resp.status_code, (json.loads(resp.body) if resp.body else None)


@contextmanager
def ffmpeg_peak_rss():
    """Samples the FFmpeg processes this test session starts (the emulator runs the dedup step
    in-process, so they are our children) every 10 ms; yields a dict whose "mb" is the peak RSS.
    Only FFmpeg started while the block runs counts, not earlier tests' encodes."""
    peak = {"mb": 0.0, "seen": 0}
    done = threading.Event()
    import psutil
    me = psutil.Process()

    def sample() -> None:
        seen: set[int] = set()
        while not done.is_set():
            for child in me.children(recursive=True):
                try:
                    if "ffmpeg" in child.name():
                        seen.add(child.pid)
                        peak["mb"] = max(peak["mb"], child.memory_info().rss / 2**20)
                except psutil.Error:
                    pass
            peak["seen"] = len(seen)
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


CONTENT_TYPES = {".mov": "video/quicktime", ".avi": "video/x-msvideo", ".mp4": "video/mp4"}


def new_video(client, me: dict, stream: dict, filename: str, size: int, title: str | None = None) -> dict:
    """The video row and its presigned upload (POST /streams/{id}/videos), nothing uploaded yet."""
    status, created = call(client, "POST", f"/streams/{stream['id']}/videos", me,
                           {"title": title or Path(filename).stem, "filename": filename,
                            "size_bytes": max(size, 1),
                            "content_type": CONTENT_TYPES.get(Path(filename).suffix, "video/mp4")})
    assert status == 201, created
    created["content_type"] = CONTENT_TYPES.get(Path(filename).suffix, "video/mp4")
    return created


def put_bytes(created: dict, data: bytes) -> None:
    """PUT the bytes to the presigned URL with the headers it was signed with."""
    import requests

    put = requests.put(created["upload_url"], data=data, timeout=60,
                       headers={**created["upload_headers"], "Content-Type": created["content_type"]})
    assert put.status_code == 200, put.text
