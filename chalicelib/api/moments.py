"""Highlights of a video: generating moments, listing, refining, clip status and playback (reference/002).

Routes stay light: generating moments needs the media, so the route only
claims the video's run and starts the clip-extraction state machine, whose
first state (GenerateMoments, a Lambda of its own) analyses the sound and the
transcript; it answers 202 and clients follow GET /videos/{id}/clip-extraction-status.
Refining needs no media (the run kept the quiet stretches and keyframes), so it
is computed here and only the moment's clip is cut again by the machine.

Members read; the uploader (while a creator) and stream admins generate and refine.
"""
from __future__ import annotations

import json
import math
import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from chalice import Response

from chalicelib import aws, failures, storage
from chalicelib.api import videos
from chalicelib.api.http import iso, parse_uuid
from chalicelib.auth.users import is_platform_admin
from chalicelib.config import get_settings
from chalicelib.errors import ConflictError, NotFoundError, NotReadyError, UnavailableError, ValidationError
from chalicelib.moments import store
from chalicelib.moments.refine import refine as refine_bounds

CLIP_TTL_S = 3600
MAX_MOMENT_S = 60.0


def generate(user: dict, video_id: str) -> dict:
    """Start finding moments (and cutting their clips) for a processed video: 202."""
    video = videos.require_editor(user, video_id)
    if video["processing_index"] != 0 or video["status"] != "complete":
        raise ConflictError("Video not processed yet", processing_index=video["processing_index"])
    name = f"{video['id']}-moments-{uuid.uuid4().hex[:12]}"
    if not store.claim_run(str(video["id"]), str(user["id"]), name):
        raise ConflictError("Moment generation already running",
                            status=store.run_of(str(video["id"]))["status"])
    _start(str(video["id"]), name, generate=True, moment_ids=[])
    return {"video_id": str(video["id"]), "status": "queued", "execution": name,
            "status_url": f"/videos/{video['id']}/clip-extraction-status"}


def list_moments(user: dict, video_id: str) -> dict:
    """The video's moments in time order, with their clips' state."""
    video = videos.visible_video(user, video_id)
    run = store.run_of(str(video["id"]))
    return {"video_id": str(video["id"]), "status": run["status"] if run else "not_started",
            "moments": [moment_view(m) for m in store.moments_of(str(video["id"]))]}


def refine(user: dict, video_id: str, moment_id: str, body: dict) -> dict:
    """Move a moment's boundaries to speech/sound edges and keyframes; its clip is cut again."""
    video = videos.require_editor(user, video_id)
    vid = str(video["id"])
    moment = store.moment(parse_uuid(moment_id, "Moment"))
    if moment is None or str(moment["video_id"]) != vid:
        raise NotFoundError("Moment not found")
    run = store.run_of(vid)
    if run is None or run["status"] in store.ACTIVE or not run["analysis"]:
        raise ConflictError("Moment generation already running" if run and run["status"] in store.ACTIVE
                            else "Moments have not been analysed yet")
    start, end = _requested_bounds(body, moment, run["analysis"]["duration"])
    new_start, new_end, notes = refine_bounds(start, end, store.words_of(vid), run["analysis"],
                                              video["fps"])
    name = f"{vid}-refine-{uuid.uuid4().hex[:12]}"
    if not store.claim_run(vid, str(user["id"]), name, status="extracting", keep_analysis=True):
        raise ConflictError("Moment generation already running")
    updated = store.set_bounds(str(moment["id"]), new_start, new_end, notes)
    _start(vid, name, generate=False, moment_ids=[str(moment["id"])])
    return {"moment": moment_view(updated), "adjustments": notes,
            "previous": {"start_time": moment["start_s"], "end_time": moment["end_s"]},
            "status": "extracting"}


def extraction_status(user: dict, video_id: str) -> dict:
    """Where generating moments and cutting their clips stands."""
    video = videos.visible_video(user, video_id)
    run = store.run_of(str(video["id"]))
    moments = store.moments_of(str(video["id"]))
    # Viewers see a fixed public reason; the detail (FFmpeg's words, URLs) is the platform admins'.
    shown = (lambda e: e) if is_platform_admin(user) else (
        lambda e: failures.public_reason(None, failed=True) if e else None)
    counts = {s: sum(1 for m in moments if m["clip_status"] == s)
              for s in ("pending", "extracting", "ready", "failed")}
    return {
        "video_id": str(video["id"]), "status": run["status"] if run else "not_started",
        "error": shown(run["error"]) if run else None,
        "started_at": iso(run["started_at"]) if run else None,
        "finished_at": iso(run["finished_at"]) if run else None,
        "total": len(moments), **counts,
        "clips": [{"moment_id": str(m["id"]), "status": m["clip_status"],
                   "duration": m["clip_duration_s"], "error": shown(m["clip_error"]),
                   "stream_url": _stream_url(m)} for m in moments],
    }


def stream_clip(user: dict, moment_id: str) -> Response:
    """302 to a presigned URL of the moment's clip; 202 while it is being cut."""
    moment = store.moment(parse_uuid(moment_id, "Clip"))
    if moment is None:
        raise NotFoundError("Clip not found")
    videos.visible_video(user, str(moment["video_id"]))
    if moment["clip_status"] != "ready" or not moment["clip_key"]:
        if moment["clip_status"] == "failed":
            raise NotFoundError("Clip not available", clip_status="failed", reason=moment["clip_error"])
        raise NotReadyError("Clip not ready", clip_status=moment["clip_status"])
    url = storage.presigned_get(moment["clip_key"], CLIP_TTL_S, ResponseContentType="video/mp4")
    return Response(body="", status_code=302, headers={"Location": url, "Cache-Control": "no-store"})


def moment_view(m: dict) -> dict:
    return {"id": str(m["id"]), "video_id": str(m["video_id"]),
            "start_time": m["start_s"], "end_time": m["end_s"],
            "duration": round(m["end_s"] - m["start_s"], 4),
            "title": m["title"], "score": m["score"], "reason": m["reason"],
            "refined": m["refined"], "features": m["features"],
            "clip_status": m["clip_status"], "clip_url": _stream_url(m)}


def _stream_url(m: dict) -> str | None:
    if m["clip_status"] != "ready":
        return None
    return f"{get_settings().public_base_url}/clips/{m['id']}/stream"


def _requested_bounds(body: dict, moment: dict, duration: float) -> tuple[float, float]:
    """Rough new bounds from the body (both optional), checked; the moment's own otherwise."""
    problems = [f"unknown field: {k}" for k in sorted(body) if k not in ("start_time", "end_time")]
    start, end = body.get("start_time", moment["start_s"]), body.get("end_time", moment["end_s"])
    for name, value in (("start_time", start), ("end_time", end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"{name} must be a number of seconds")
    if not problems:
        if not 0 <= start < end <= duration + 1e-6:
            problems.append(f"start_time and end_time must satisfy 0 <= start_time < end_time <= {duration:g}")
        elif end - start > MAX_MOMENT_S:
            problems.append(f"a moment is at most {MAX_MOMENT_S:g} seconds long")
    if problems:
        raise ValidationError("Invalid moment bounds", details=problems)
    return float(start), float(end)


def _start(video_id: str, name: str, *, generate: bool, moment_ids: list[str]) -> None:
    """Start the clip-extraction machine for a claimed run; a refused start frees the claim."""
    machine = get_settings().clips_state_machine_arn
    payload: dict[str, Any] = {"video_id": video_id, "execution": name, "generate": generate,
                               "moment_ids": moment_ids}
    try:
        if not machine:
            raise UnavailableError("Clip extraction is not configured (CLIPS_STATE_MACHINE_ARN)")
        resp = aws.client("stepfunctions").start_execution(stateMachineArn=machine, name=name,
                                            input=json.dumps(payload))
    except (BotoCoreError, ClientError, UnavailableError) as exc:
        store.release_run(video_id, name, f"could not start: {exc}")
        store.fail_unfinished(video_id, moment_ids, "clip extraction could not be started")
        raise UnavailableError("Clip extraction could not be started; try again") from exc
    store.update_run(video_id, name, execution_arn=resp["executionArn"])
