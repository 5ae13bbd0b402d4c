"""Small helpers the tests share."""
from __future__ import annotations

import json
import time
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
    """Wait until the video is complete, duplicate or failed; its row."""
    def final():
        row = video_row(video_id)
        return row if row and row["status"] in ("complete", "duplicate", "failed") else None
    return wait_for(final, timeout_s)


JSON = {"Content-Type": "application/json"}


def call(client, method, path, who=None, body=None):
    """(status, JSON body or None) of one request; who is a sign_in result or None."""
    kwargs = {"headers": {**JSON, **(who["headers"] if who else {})}}
    if body is not None:
        kwargs["body"] = body if isinstance(body, str) else json.dumps(body)
    resp = getattr(client.http, method.lower())(path, **kwargs)
    return resp.status_code, (json.loads(resp.body) if resp.body else None)
