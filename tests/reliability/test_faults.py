"""Faults: transient ones are retried and the video completes; permanent ones fail it with
a reason; an admin retry after the fix completes it without duplicates; a step killed at its
timeout runs again after its window; a delete that races a running step leaves nothing."""
from __future__ import annotations

import time

import pytest

from tests.helpers import call, wait_for, wait_for_fallbacks, wait_for_final
from tests.reliability.conftest import (DEDUP_FN, TRANSCODE_FN, kill, new_video, objects_of,
                                        put_bytes, wait_for_ffmpeg, workdir_tag)

pytestmark = pytest.mark.reliability


def _runs(video_id: str) -> list[tuple]:
    from chalicelib import db
    return [(r["stage"], r["status"], r["resumed"]) for r in db.fetch_all(
        "SELECT stage, status, resumed FROM stage_runs WHERE video_id = %s ORDER BY id", (video_id,))]


def _stage_errors(video_id: str, stage: str) -> list[str]:
    from chalicelib import db
    return [r["error"] for r in db.fetch_all(
        "SELECT error FROM stage_runs WHERE video_id = %s AND stage = %s AND status = 'failed' ORDER BY id",
        (video_id, stage))]


def _assert_stored_once(video_id: str, s3) -> None:
    """One transcript, one embedding, asset rows exactly the stored objects, one success per stage."""
    from chalicelib import db

    one = db.fetch_one
    assert one("SELECT count(*) AS n FROM transcripts WHERE video_id = %s", (video_id,))["n"] == 1
    assert one("SELECT count(*) AS n FROM video_embeddings WHERE video_id = %s", (video_id,))["n"] == 1
    segments = db.fetch_all("SELECT start_s FROM transcript_segments WHERE video_id = %s", (video_id,))
    assert len(segments) == len({s["start_s"] for s in segments})
    assets = [r["key"] for r in db.fetch_all("SELECT key FROM video_assets WHERE video_id = %s", (video_id,))]
    stored = set(objects_of(s3, video_id))
    assert len(assets) == len(set(assets)) and set(assets) <= stored
    fresh = [r for r in _runs(video_id) if r[1] == "succeeded" and not r[2]]
    assert sorted(r[0] for r in fresh) == ["dedup", "embed", "mp4_fallbacks", "transcode", "transcribe"], \
        _runs(video_id)


def test_lambda_service_errors_and_throttling_are_retried(crew, clips, figures, s3):
    from infra.local.emulator import DISPATCHER

    DISPATCHER.inject_fault(DEDUP_FN, ("service", "ServiceException", 500), times=2)
    DISPATCHER.inject_fault(TRANSCODE_FN, ("service", "TooManyRequestsException", 429), times=2)
    vid = crew(clips[0])
    row = wait_for_final(vid, 120)
    assert row["status"] == "complete", row["failure_reason"]
    assert DISPATCHER.pending_faults(DEDUP_FN) == DISPATCHER.pending_faults(TRANSCODE_FN) == 0
    _assert_stored_once(vid, s3)
    figures.fault("lambda ServiceException", 2, True)
    figures.fault("lambda TooManyRequestsException (throttling)", 2, True)


def test_fallbacks_failing_past_their_retries_are_recorded_and_the_video_stays_playable(client, crew, clips,
                                                                                       figures):
    """Every attempt of the Fallbacks state fails (Lambda service errors past its retries): the video,
    playable since Finalize, stays complete; RecordFallbacksFailed records the failure, so the MP4
    route answers 404 rather than "not ready" for good; the execution still succeeds."""
    from chalicelib import db
    from infra.local.emulator import DISPATCHER

    fallbacks_fn = "clipstream-local-pipeline_fallbacks"
    # More than the state's 1 + 4 attempts can use, each with the SDK's own retries.
    DISPATCHER.inject_fault(fallbacks_fn, ("service", "ServiceException", 500), times=40)
    try:
        vid = crew(clips[0])
        assert wait_for_final(vid, 120)["status"] == "complete"
        run = wait_for_fallbacks(vid, 180)
    finally:
        left = DISPATCHER.pending_faults(fallbacks_fn)
        DISPATCHER.clear_faults()
    assert run["status"] == "failed" and "ServiceException" in run["error"], run
    assert 0 < left < 40     # attempts were made, and they ran out before the faults did
    row = db.fetch_one("SELECT status, processing_index, bitrates FROM videos WHERE id = %s", (vid,))
    assert (row["status"], row["processing_index"]) == ("complete", 0)
    quality = f"{min(row['bitrates'])}p"
    resp = client.http.get(f"/api/videos/{vid}/stream/{quality}", headers=crew.me["headers"])
    assert resp.status_code == 404, resp.body
    assert client.http.get(f"/videos/{vid}/stream", headers=crew.me["headers"]).status_code == 200  # HLS plays
    execution = db.fetch_one("SELECT status FROM pipeline_executions WHERE video_id = %s", (vid,))
    assert execution["status"] == "succeeded", execution
    figures.fault("lambda ServiceException past the Fallbacks state's retries (after playable)", 40 - left, True)


def test_storage_500s_are_retried(client, crew, clips, figures, s3):
    """One 500 is absorbed by the SDK's retry; a burst past it fails the attempt, and the state machine retries."""
    from infra.local.emulator import STORAGE_FAULTS

    for times, clip in ((1, clips[1]), (10, clips[2])):
        data = clip.read_bytes()
        created = new_video(client, crew.me, crew.stream, clip.name, len(data))
        served = STORAGE_FAULTS.served
        STORAGE_FAULTS.inject("GET", f"/raw-uploads/{created['id']}.", times=times)
        put_bytes(created, data)
        row = wait_for_final(created["id"], 120)
        assert row["status"] == "complete", row["failure_reason"]
        assert STORAGE_FAULTS.served - served == times
        errors = _stage_errors(created["id"], "dedup")
        if times == 1:
            assert errors == []                      # the SDK's own retry absorbed it
        else:                                        # more than the SDK retries: attempts failed
            assert errors and all("InternalError" in e for e in errors), errors
        _assert_stored_once(created["id"], s3)
        figures.fault(f"S3 500 InternalError x{times}", times, True)


def test_killed_ffmpeg_is_retried(crew, long_clip, figures, s3):
    from chalicelib import db, idempotency

    vid = crew(long_clip)
    pid = wait_for_ffmpeg(workdir_tag(vid), "-f hls")
    # While the step runs, its claim lasts as long as the Lambda may (the context's remaining time).
    claim = db.fetch_one("SELECT status, in_progress_expiry FROM idempotency_records WHERE id = %s",
                         (idempotency.record_id("transcode", vid, _etag(vid)),))
    assert claim["status"] == "INPROGRESS"
    assert 800 < claim["in_progress_expiry"] / 1000 - time.time() <= 900     # transcode's timeout is 900 s
    assert kill(pid)
    row = wait_for_final(vid, 240)
    assert row["status"] == "complete", row["failure_reason"]
    errors = _stage_errors(vid, "transcode")
    assert len(errors) == 1 and "SIGKILL" in errors[0], errors
    _assert_stored_once(vid, s3)
    figures.fault("FFmpeg killed (SIGKILL) mid-transcode", 1, True)


def test_postgres_restarted_mid_run(stack, crew, long_clip, figures, s3):
    from chalicelib import db

    vid = crew(long_clip)
    wait_for_ffmpeg(workdir_tag(vid), "-f hls")
    stack.postgres.stop(mode="fast")                 # every open connection is cut
    time.sleep(1.0)
    stack.postgres.start()
    db.close()                                       # this thread's connection died with the server
    row = wait_for_final(vid, 240)
    assert row["status"] == "complete", row["failure_reason"]
    _assert_stored_once(vid, s3)
    figures.fault("Postgres restarted mid-transcode", 1, True)


def test_permanent_failure_then_retry_after_the_fix_duplicates_nothing(client, crew, clips, admin, figures, s3):
    """Storage refuses the step's writes (AccessDenied: no retry helps) until the cause is fixed."""
    from chalicelib import db
    from infra.local.emulator import STORAGE_FAULTS

    data = clips[3].read_bytes()
    created = new_video(client, crew.me, crew.stream, clips[3].name, len(data))
    vid = created["id"]
    STORAGE_FAULTS.inject("PUT", f"/processed-videos/{vid}/segments/", times=10_000, status=403, code="AccessDenied")
    put_bytes(created, data)
    row = wait_for_final(vid, 120)
    assert (row["status"], row["failed_stage"]) == ("failed", "transcode")
    assert "AccessDenied" in row["failure_reason"]
    status, body = call(client, "GET", f"/videos/{vid}/processing", crew.me)
    assert body["status"] == "failed" and body["failure_reason"] == "processing failed, we are on it"
    assert "AccessDenied" not in str(body) and "failure_detail" not in body

    STORAGE_FAULTS.clear()                           # the cause is fixed
    status, body = call(client, "POST", "/admin/processing/retry", admin, {"video_id": vid})
    assert status == 200 and body["retried"][0]["outcome"] == "started"
    row = wait_for_final(vid, 120)
    assert row["status"] == "complete", row["failure_reason"]
    _assert_stored_once(vid, s3)
    assert [r for r in _runs(vid) if r[0] == "dedup"] == [("dedup", "succeeded", False),
                                                          ("dedup", "succeeded", True)]
    assert len(db.fetch_all("SELECT 1 FROM pipeline_executions WHERE video_id = %s", (vid,))) == 2
    figures.fault("S3 AccessDenied (permanent) then admin retry", 1, True)


def _etag(vid: str) -> str:
    from chalicelib import db
    return db.fetch_one("SELECT etag FROM pipeline_executions WHERE video_id = %s ORDER BY started_at LIMIT 1",
                        (vid,))["etag"]


def _plant_claim(vid: str, stage: str, window_ms: int) -> None:
    """The INPROGRESS record a step leaves when Lambda kills it with `window_ms` of its budget left."""
    from chalicelib import idempotency

    idempotency.store_for(stage).save_inprogress(idempotency.step_key(vid, stage, _etag(vid)),
                                                 remaining_time_in_millis=window_ms)


def test_a_step_killed_at_its_timeout_runs_again_after_its_window(client, crew, clips, admin, figures, s3):
    from infra.local.emulator import DISPATCHER

    vids = []
    for clip in clips[4:6]:
        # The state machine gave up on transcode (its TimeoutSeconds) and failed the video ...
        DISPATCHER.inject_fault(TRANSCODE_FN, TimeoutError("Task timed out after 900.00 seconds"))
        vid = crew(clip)
        row = wait_for_final(vid, 120)
        assert row["status"] == "failed" and "timed out" in row["failure_reason"]
        vids.append(vid)
    passing, holding = vids
    # ... and the killed Lambda left its claim: one whose budget runs out in 3 s, one in 10 min.
    _plant_claim(passing, "transcode", 3_000)
    _plant_claim(holding, "transcode", 600_000)

    before = DISPATCHER.invocations[TRANSCODE_FN]
    for vid in vids:
        assert call(client, "POST", "/admin/processing/retry", admin, {"video_id": vid})[0] == 200
    row = wait_for_final(passing, 120)
    assert row["status"] == "complete", row["failure_reason"]
    _assert_stored_once(passing, s3)

    # The claim whose holder may still be running is respected: the step never runs twice at once.
    row = wait_for_final(holding, 120)
    assert row["status"] == "failed" and "in progress" in row["failure_reason"].lower(), row["failure_reason"]
    assert ("transcode", "succeeded", False) not in _runs(holding)
    assert not [k for k in objects_of(s3, holding) if k.startswith("processed-videos/")]
    # Refused attempts were retried by the state machine: more invocations than runs.
    assert DISPATCHER.invocations[TRANSCODE_FN] - before >= 3
    figures.fault("step killed at its timeout (claim left in progress)", 2, True)


def test_a_delete_during_a_running_step_leaves_no_objects(client, crew, long_clip, figures, s3):
    from infra.local.emulator import DISPATCHER

    vid = crew(long_clip)
    wait_for_ffmpeg(workdir_tag(vid), "-f hls")      # transcode is encoding; its uploads come next
    status, _ = call(client, "DELETE", f"/videos/{vid}", crew.me)
    assert status == 204
    wait_for(lambda: DISPATCHER.in_flight[TRANSCODE_FN] == 0, 180)
    time.sleep(0.5)
    assert objects_of(s3, vid) == []                 # the step swept what it wrote after the DELETE
    from tests.helpers import video_row
    assert video_row(vid) is None
    figures.fault("video deleted while its transcode ran", 1, True)
