"""The fanned-out pipeline on the real stack: Transcribe -> Embed beside Transcode (a Parallel
state), dedup's speech WAV handed over, failures per branch, duplicates stopping before any
encode, and the serial shape still runnable for the bench."""
from __future__ import annotations

import json
import os

import pytest

from tests.helpers import wait_for, wait_for_final
from tests.media import clips as make
from tests.pipeline.test_media_pipeline import uploader  # noqa: F401 - the fixture

TRANSCRIBE_FN = "clipstream-local-pipeline_transcribe"


@pytest.fixture(scope="module")
def speech_clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("fanout-media")
    return make.make_clip(d / "talk.mp4", scene="testsrc2", duration=5.0, size=(640, 360),
                          speech="Push the objective now", seed=41)


def _history(sfn, video_id: str) -> list[dict]:
    from chalicelib import db
    row = db.fetch_one("SELECT execution_arn FROM pipeline_executions WHERE video_id = %s"
                       " ORDER BY started_at DESC LIMIT 1", (video_id,))
    return sfn.get_execution_history(executionArn=row["execution_arn"], maxResults=1000)["events"]


def _entered(events: list[dict]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def _runs(video_id: str) -> list[dict]:
    from chalicelib import db
    return db.fetch_all("SELECT stage, status, started_at, finished_at FROM stage_runs"
                        " WHERE video_id = %s AND NOT resumed ORDER BY id", (video_id,))


def test_speech_runs_beside_the_ladder_from_dedups_audio(uploader, speech_clip, sfn, s3, client):
    vid = uploader(speech_clip)
    row = wait_for_final(vid, 180)
    assert (row["status"], row["processing_index"]) == ("complete", 0), row["failure_reason"]
    events = _history(sfn, vid)
    entered = _entered(events)
    assert "Process" in entered and {"Ladder", "Speech", "Analysis", "Finalize"} <= set(entered)
    assert not {"Transcode", "Transcribe", "Embed"} & set(entered)   # the serial states stay unused
    # The branches overlap: transcription started before the transcode ended.
    runs = {r["stage"]: r for r in _runs(vid) if r["status"] == "succeeded"}
    assert runs["transcribe"]["started_at"] < runs["transcode"]["finished_at"]
    # Transcribe read dedup's WAV (it never downloaded the upload) and removed the hand-over.
    dedup_out = json.loads(next(e for e in events if e.get("stateExitedEventDetails", {}).get("name") == "Dedup")
                           ["stateExitedEventDetails"]["output"])
    assert dedup_out["speech_audio_key"] == f"processed-videos/{vid}/tmp/speech-16k.wav"
    assert dedup_out["has_audio"] is True
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="clipstream", Prefix=f"processed-videos/{vid}/")["Contents"]}
    assert dedup_out["speech_audio_key"] not in keys
    from chalicelib import db
    text = db.fetch_one("SELECT text FROM transcripts WHERE video_id = %s", (vid,))["text"].lower()
    assert "objective" in text
    # Finalize got one envelope: the branches' small results merged under "outputs".
    finalize_in = json.loads(next(e for e in events if e.get("stateEnteredEventDetails", {}).get("name") == "Finalize")
                             ["stateEnteredEventDetails"]["input"])
    outputs = finalize_in["outputs"]
    assert set(outputs) == {"ladder", "speech"} and set(outputs["speech"]) == {"transcript", "embeddings"}
    assert outputs["ladder"]["hls"]["master_key"] == f"processed-videos/{vid}/master.m3u8"
    assert outputs["speech"]["transcript"]["segments"] >= 1
    assert len(json.dumps(finalize_in)) < 8 * 1024
    status = client.http.get(f"/videos/{vid}/stream", headers=uploader.me["headers"]).status_code
    assert status == 200


def test_a_failing_speech_branch_fails_the_video_and_stops_before_finalize(uploader, speech_clip, sfn):
    from chalicelib.pipeline.step import PermanentStepError
    from infra.local.emulator import DISPATCHER

    DISPATCHER.inject_fault(TRANSCRIBE_FN, PermanentStepError("whisper could not read the audio"), times=1)
    vid = uploader(speech_clip, title="speech fails")
    row = wait_for_final(vid, 180)
    assert DISPATCHER.pending_faults(TRANSCRIBE_FN) == 0
    assert (row["status"], row["failed_stage"], row["processing_index"]) == ("failed", "transcribe", 3)
    assert "whisper could not read the audio" in row["failure_reason"]
    entered = _entered(_history(sfn, vid))
    assert "SpeechMarkFailed" in entered and "Finalize" not in entered and "MarkFailed" not in entered
    from chalicelib import db
    # Closed in the transaction that failed the video: no reader sees a failed video under a running execution.
    assert db.fetch_one("SELECT status FROM pipeline_executions WHERE video_id = %s", (vid,))["status"] == "failed"
    # A stage that would start now (the ladder branch's late step) cannot reopen the video.
    from chalicelib.pipeline import progress
    execution = db.fetch_one("SELECT execution_name FROM pipeline_executions WHERE video_id = %s", (vid,))
    with pytest.raises(progress.ExecutionClosed):
        progress.begin_stage(vid, "transcode", execution["execution_name"])
    assert wait_for_final(vid, 5)["status"] == "failed"


def test_a_duplicate_stops_before_any_encode(uploader, speech_clip, sfn, s3):
    first = uploader(speech_clip, title="first")
    assert wait_for_final(first, 180)["status"] == "complete"
    copy = uploader(speech_clip, title="copy")
    row = wait_for_final(copy, 120)
    assert row["status"] == "duplicate" and str(row["duplicate_of"]) == first
    entered = _entered(_history(sfn, copy))
    assert "MarkDuplicate" in entered and not {"Process", "Ladder", "Speech", "Transcode"} & set(entered)
    listed = s3.list_objects_v2(Bucket="clipstream", Prefix=f"processed-videos/{copy}/")
    assert listed.get("KeyCount", 0) == 0   # no ladder, and no speech hand-over left behind
    assert [r["stage"] for r in _runs(copy)] == ["dedup"]


def test_the_serial_shape_still_runs_every_stage_in_a_row(uploader, speech_clip, sfn, tmp_path):
    from chalicelib.config import reset_settings

    clip = make.make_clip(tmp_path / "serial.mp4", scene="cellauto", duration=4.0, size=(640, 360),
                          speech="Rotate to the bomb site", seed=42)
    os.environ["PIPELINE_SHAPE"] = "serial"
    reset_settings()
    try:
        vid = uploader(clip, title="serial")
        from chalicelib import db
        wait_for(lambda: db.fetch_one("SELECT 1 FROM pipeline_executions WHERE video_id = %s"
                                      " AND execution_arn IS NOT NULL", (vid,)), 60)
    finally:
        os.environ.pop("PIPELINE_SHAPE")
        reset_settings()
    row = wait_for_final(vid, 180)
    assert row["status"] == "complete", row["failure_reason"]
    entered = _entered(_history(sfn, vid))
    assert [s for s in entered if s in ("Transcode", "Transcribe", "Embed", "Finalize")] == \
        ["Transcode", "Transcribe", "Embed", "Finalize"]
    assert "Process" not in entered
    runs = {r["stage"]: r for r in _runs(vid) if r["status"] == "succeeded"}
    assert runs["transcribe"]["started_at"] >= runs["transcode"]["finished_at"]


def test_an_unknown_pipeline_shape_is_refused_at_start():
    from chalicelib.config import parse_pipeline_shape

    assert parse_pipeline_shape(None) == "fanout" and parse_pipeline_shape(" Serial ") == "serial"
    with pytest.raises(ValueError, match="PIPELINE_SHAPE"):
        parse_pipeline_shape("parallel-please")


def test_the_first_failure_of_an_execution_stands(make_user, make_stream, make_video):
    """The speech branch fails first; the ladder's next step, refused because the execution
    closed, fails too: the video keeps the first stage and reason."""
    from chalicelib import db
    from chalicelib.pipeline import progress

    user = make_user()
    video = make_video(make_stream(user), user)
    vid = str(video["id"])
    assert progress.mark_failed(vid, "whisper could not read the audio", None, "transcribe") is True
    assert progress.mark_failed(vid, "ExecutionClosed: already ended", None, "transcode") is False
    row = db.fetch_one("SELECT status, failed_stage, processing_index, failure_reason FROM videos"
                       " WHERE id = %s", (vid,))
    assert (row["status"], row["failed_stage"], row["processing_index"]) == ("failed", "transcribe", 3)
    assert "whisper" in row["failure_reason"]
