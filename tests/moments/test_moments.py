"""Highlights end to end: upload → pipeline → POST generate-moments → clip state machine → clips.

Runs the real stack: the emulator executes stepfunctions/clips.asl.json, whose
steps run FFmpeg on the stored upload; the transcript comes from the real
Whisper step of the processing pipeline.
"""
from __future__ import annotations

import json
import subprocess
import uuid

import numpy as np
import pytest
import requests

from chalicelib.media.ffmpeg import ffmpeg_exe
from chalicelib.moments import clips
from tests.moments.conftest import FPS, add_member
from tests.helpers import call, wait_for, wait_for_final


def overlap(a, b) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def wait_extraction(client, who, vid, timeout_s=180):
    def done():
        status, body = call(client, "GET", f"/videos/{vid}/clip-extraction-status", who)
        return body if body["status"] in ("complete", "failed") else None
    return wait_for(done, timeout_s, interval_s=0.5)


@pytest.fixture(scope="module")
def processed(highlight_clip, stack, google_key):
    """The clip uploaded by a creator of a stream (admin, creator, viewer), processed, moments generated."""
    from chalice.test import Client

    import app as app_module
    from tests.conftest import _sign_in_with

    with Client(app_module.app, stage_name="local") as client:
        admin, creator, viewer = (_sign_in_with(client, google_key) for _ in range(3))
        stream = call(client, "POST", "/streams", admin, {"name": "highlights"})[1]
        add_member(stream["id"], creator, "creator")
        add_member(stream["id"], viewer, "viewer")
        data = highlight_clip["path"].read_bytes()
        status, created = call(client, "POST", f"/streams/{stream['id']}/videos", creator, {
            "title": "highlights", "filename": "highlights.mp4", "size_bytes": len(data),
            "content_type": "video/mp4"})
        assert status == 201
        vid = created["id"]
        assert call(client, "POST", f"/videos/{vid}/generate-moments", creator)[0] == 409   # not processed yet
        requests.put(created["upload_url"], data=data, headers={**created["upload_headers"], "Content-Type": "video/mp4"}, timeout=60)
        row = wait_for_final(vid, 300)
        assert row["status"] == "complete", row["failure_reason"]
        status, started = call(client, "POST", f"/videos/{vid}/generate-moments", creator)
        assert status == 202 and started["status"] == "queued"
        again = call(client, "POST", f"/videos/{vid}/generate-moments", creator)
        extraction = wait_extraction(client, creator, vid)
    return {"vid": vid, "sid": stream["id"], "admin": admin, "creator": creator, "viewer": viewer,
            "started": started, "again": again, "extraction": extraction}


def test_moments_land_on_the_shouting_and_the_explosion(client, processed, highlight_clip):
    status, body = call(client, "GET", f"/videos/{processed['vid']}/moments", processed["viewer"])
    assert status == 200 and body["status"] == "complete"
    found = body["moments"]
    print(json.dumps(found, indent=1))
    spans = [(m["start_time"], m["end_time"]) for m in found]
    events = [highlight_clip[k] for k in ("excited", "boom", "calm")]
    # Every moment is on something that happened, and both highlights are found.
    assert all(any(overlap(s, e) > 0 for e in events) for s in spans), spans
    assert any(overlap(s, highlight_clip["excited"]) >= 2.0 for s in spans)
    assert any(overlap(s, highlight_clip["boom"]) >= 1.0 for s in spans)
    assert not any(overlap(s, highlight_clip["calm"]) > 0.5 for s in spans)
    assert all(set(m) >= {"id", "start_time", "end_time", "title", "score", "reason"} for m in found)
    speech = next(m for m in found if overlap((m["start_time"], m["end_time"]), highlight_clip["excited"]) >= 2)
    assert speech["features"]["kind"] == "speech" and "clutch" in speech["reason"]
    assert speech["title"].startswith("\u201c") and 0 < speech["score"] <= 1


def test_one_run_at_a_time(processed):
    status, body = processed["again"]
    assert status == 409 and body["error"] == "Moment generation already running"


def test_clips_have_the_moment_duration_within_a_frame_and_play(client, processed, highlight_clip, tmp_path):
    status, body = call(client, "GET", f"/videos/{processed['vid']}/clip-extraction-status", processed["viewer"])
    assert status == 200 and body["status"] == "complete" and body["ready"] == body["total"] >= 2
    moments = call(client, "GET", f"/videos/{processed['vid']}/moments", processed["viewer"])[1]["moments"]
    for m in moments:
        resp = client.http.get(f"/clips/{m['id']}/stream", headers=processed["viewer"]["headers"])
        assert resp.status_code == 302
        clip = tmp_path / f"{m['id']}.mp4"
        clip.write_bytes(requests.get(resp.headers["Location"], timeout=30).content)
        info = clips.measure(clip)
        expected = m["end_time"] - m["start_time"]
        assert abs(info.duration - expected) <= 1 / FPS + 1e-6, (info, expected)
        assert info.frames == round(expected * FPS)
        decoded = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clip), "-f", "null", "-"],
                                 capture_output=True, text=True, timeout=60)
        assert decoded.returncode == 0 and decoded.stderr == ""
        # Frame-accurate: the clip's first frame is the source's frame at start_time.
        first = _frame(clip, 0.0)
        same, next_one = _frame(highlight_clip["path"], m["start_time"]), \
            _frame(highlight_clip["path"], m["start_time"] + 1 / FPS)
        assert np.abs(first - same).mean() < 0.5 * np.abs(first - next_one).mean()


def test_stream_and_status_access(client, processed, sign_in):
    vid, first = processed["vid"], processed["extraction"]["clips"][0]["moment_id"]
    outsider = sign_in()
    assert call(client, "GET", f"/videos/{vid}/moments", outsider)[0] == 403
    assert call(client, "GET", f"/videos/{vid}/clip-extraction-status", outsider)[0] == 403
    assert client.http.get(f"/clips/{first}/stream", headers=outsider["headers"]).status_code == 403
    assert call(client, "GET", f"/clips/{uuid.uuid4()}/stream", processed["viewer"]) == \
        (404, {"error": "Clip not found"})
    assert call(client, "GET", "/clips/nope/stream", processed["viewer"])[0] == 404
    assert call(client, "POST", f"/videos/{vid}/generate-moments", processed["viewer"]) == \
        (403, {"error": "Only the uploader or a stream admin can change this video"})
    assert call(client, "POST", f"/videos/{uuid.uuid4()}/generate-moments", processed["creator"])[0] == 404
    assert call(client, "GET", f"/clips/{first}/stream")[0] == 401


def test_refine_moves_rough_bounds_out_of_words_and_recuts_the_clip(client, processed, highlight_clip):
    vid, me = processed["vid"], processed["creator"]
    moments = call(client, "GET", f"/videos/{vid}/moments", me)[1]["moments"]
    speech = next(m for m in moments if m["features"]["kind"] == "speech")
    words = [w for s in call(client, "GET", f"/videos/{vid}/transcript", me)[1]["segments"] for w in s["words"]
             if highlight_clip["excited"][0] - 1 <= w["start"] <= highlight_clip["excited"][1] + 1]
    rough = {"start_time": words[0]["start"] + 0.05, "end_time": words[-1]["end"] - 0.05}
    status, body = call(client, "POST", f"/videos/{vid}/moments/{speech['id']}/refine", me, rough)
    assert status == 200, body
    refined = body["moment"]
    assert refined["start_time"] <= words[0]["start"] and refined["end_time"] >= words[-1]["end"]
    assert refined["refined"] is True and refined["clip_status"] == "pending"
    assert any("word" in note for note in body["adjustments"])
    assert abs(refined["start_time"] * FPS - round(refined["start_time"] * FPS)) < 5e-3
    extraction = wait_extraction(client, me, vid)
    assert extraction["status"] == "complete", extraction
    clip = next(c for c in extraction["clips"] if c["moment_id"] == speech["id"])
    assert clip["status"] == "ready"
    assert abs(clip["duration"] - (refined["end_time"] - refined["start_time"])) <= 1 / FPS + 1e-6
    # The other clips were not touched.
    assert extraction["ready"] == extraction["total"]


def test_refine_errors(client, processed):
    vid, me = processed["vid"], processed["creator"]
    mid = processed["extraction"]["clips"][0]["moment_id"]
    path = f"/videos/{vid}/moments/{mid}/refine"
    assert call(client, "POST", path, me, {"start_time": 5, "end_time": 4}) == (400, {
        "error": "Invalid moment bounds",
        "details": ["start_time and end_time must satisfy 0 <= start_time < end_time <= 30"]})
    assert call(client, "POST", path, me, {"start_time": "a"})[1]["details"] == \
        ["start_time must be a number of seconds"]
    assert call(client, "POST", path, me, {"start_time": 0, "end_time": 30, "x": 1})[0] == 400
    assert call(client, "POST", f"/videos/{vid}/moments/{uuid.uuid4()}/refine", me) == \
        (404, {"error": "Moment not found"})
    assert call(client, "POST", path, processed["viewer"])[0] == 403


def test_deleting_the_video_deletes_its_clips(client, processed, s3):
    vid = processed["vid"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="clipstream", Prefix=f"clips/{vid}/").get("Contents", [])]
    assert len(keys) >= 2
    assert call(client, "DELETE", f"/videos/{vid}", processed["admin"])[0] == 204
    assert s3.list_objects_v2(Bucket="clipstream", Prefix=f"clips/{vid}/").get("KeyCount") == 0
    from chalicelib import db
    assert db.fetch_one("SELECT count(*) AS n FROM moments WHERE video_id = %s", (vid,))["n"] == 0


def _frame(path, at: float) -> np.ndarray:
    """The frame shown at `at` seconds, as grey pixels (accurate seek: decode up to it)."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-ss", f"{at:.4f}", "-i", str(path), "-frames:v", "1",
                          "-vf", "format=gray", "-f", "rawvideo", "pipe:1"], capture_output=True, timeout=60,
                         check=True).stdout
    return np.frombuffer(out, np.uint8).astype(float)
