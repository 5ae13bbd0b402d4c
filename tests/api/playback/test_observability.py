"""Structured JSON logs with request/execution ids and CloudWatch EMF metrics, as Lambdas print them."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import wait_for_final

ROOT = Path(__file__).resolve().parents[3]


def _json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def _emf(lines: list[dict], name: str) -> list[dict]:
    """EMF documents that carry metric `name`."""
    return [d for d in lines if "_aws" in d
            and any(m["Name"] == name for cw in d["_aws"]["CloudWatchMetrics"] for m in cw["Metrics"])]


@pytest.fixture()
def stdout_logs(stack, capsys):
    """What the app prints to stdout during one test: log lines (at INFO) and EMF documents.

    EMF is print()ed, which capsys sees; the log handler keeps the stream it
    was made with, so it writes to a buffer of ours meanwhile.
    """
    from chalicelib import observability

    buffer = io.StringIO()
    handler = observability.get_logger().registered_handler
    stream = handler.setStream(buffer)
    module_loggers = logging.getLogger("chalicelib")
    level = module_loggers.level
    module_loggers.setLevel(logging.INFO)
    read = 0

    def lines() -> list[dict]:
        nonlocal read
        text = buffer.getvalue()
        logged, read = text[read:], len(text)
        return _json_lines(logged) + _json_lines(capsys.readouterr().out)

    try:
        yield lines
    finally:
        handler.setStream(stream)
        module_loggers.setLevel(level)


def test_pipeline_run_emits_emf_metrics_and_logs_with_the_execution(stdout_logs, member, delivery_clips):
    from chalicelib import db

    vid = member["upload"](delivery_clips["small"], title="metrics")
    assert wait_for_final(vid, 180)["status"] == "complete"
    execution = db.fetch_one("SELECT execution_name FROM pipeline_executions WHERE video_id = %s",
                             (vid,))["execution_name"]
    lines = stdout_logs()

    namespace = os.environ["POWERTOOLS_METRICS_NAMESPACE"]
    uploads = _emf(lines, "UploadsStarted")
    assert uploads and uploads[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == namespace
    durations = {d["stage"]: d for d in _emf(lines, "StageDuration") if d.get("outcome") == "succeeded"}
    assert {"dedup", "transcode", "transcribe", "embed"} <= set(durations)
    transcode = durations["transcode"]
    assert transcode["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "stage", "outcome"]]
    assert transcode["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "StageDuration", "Unit": "Seconds"}]
    recorded = db.fetch_one("SELECT extract(epoch FROM finished_at - started_at)::float8 AS s FROM stage_runs"
                            " WHERE video_id = %s AND stage = 'transcode'", (vid,))["s"]
    assert transcode["StageDuration"] == [pytest.approx(recorded, abs=0.002)]

    # Module log lines of the steps are powertools JSON with the execution as correlation id.
    logs = [d for d in lines if "level" in d and d.get("correlation_id") == execution]
    transcoded = next(d for d in logs if d["message"] == "transcoded")
    assert transcoded["video_id"] == vid and transcoded["service"] == "clipstream"
    assert transcoded["function_name"].endswith("pipeline_transcode") and transcoded["function_request_id"]
    assert transcoded["name"] == "chalicelib.pipeline.transcode"


def test_failed_stage_emits_failure_metrics(stdout_logs, member, delivery_clips):
    vid = member["upload"](delivery_clips["not_video"], title="broken")
    assert wait_for_final(vid, 120)["status"] == "failed"
    lines = stdout_logs()
    failed = [d for d in _emf(lines, "StageFailures") if d["stage"] == "dedup"]
    assert failed and failed[0]["StageFailures"] == [1.0]
    assert [d for d in _emf(lines, "StageDuration") if d["stage"] == "dedup" and d["outcome"] == "failed"]
    assert [d for d in _emf(lines, "VideosFailed") if d["stage"] == "dedup"]


def test_api_log_lines_carry_the_request_id(stdout_logs, member, delivery_clips):
    client, me = member["client"], member["me"]
    ids = []
    for title in ("one", "two"):
        resp = client.http.post(f"/streams/{member['stream_id']}/videos", headers=me["headers"], body=json.dumps(
            {"title": title, "filename": "a.mp4", "size_bytes": 1000, "content_type": "video/mp4"}))
        assert resp.status_code == 201
        created = next(d for d in stdout_logs() if d.get("message") == "video created")
        assert created["video_id"] == json.loads(resp.body)["id"]
        assert created["correlation_id"] and created["correlation_id"] == created["function_request_id"]
        ids.append(created["correlation_id"])
    assert ids[0] != ids[1]


def test_correlation_id_is_the_api_gateway_request_or_the_execution():
    from chalicelib.observability import correlation_id

    context = SimpleNamespace(aws_request_id="lambda-req-1")
    assert correlation_id({"requestContext": {"requestId": "apigw-req-9"}}, context) == "apigw-req-9"
    assert correlation_id({"video_id": "v", "execution": "v-etag"}, context) == "v-etag"
    assert correlation_id({"Records": []}, context) == "lambda-req-1"


def test_a_step_handler_prints_only_json_to_stdout(stack, hd_video, failed_video):
    """As in Lambda: a fresh process runs the Finalize, Fallbacks and MarkFailed handlers; stdout is JSON lines."""
    script = """
import json, sys
from types import SimpleNamespace
import app
def ctx(name, rid):
    return SimpleNamespace(function_name="clipstream-local-" + name, aws_request_id=rid, memory_limit_in_mb=256,
                           invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:" + name,
                           function_version="$LATEST", get_remaining_time_in_millis=lambda: 60000)
done, failed = json.loads(sys.argv[1]), json.loads(sys.argv[2])
app.pipeline_finalize(done, ctx("pipeline_finalize", "req-finalize"))
app.pipeline_fallbacks(done, ctx("pipeline_fallbacks", "req-fallbacks"))
app.pipeline_mark_failed(failed, ctx("pipeline_mark_failed", "req-failed"))
"""
    done = {"video_id": hd_video["id"], "execution": hd_video["execution"]}
    failed = {"video_id": failed_video["id"], "execution": failed_video["execution"], "failed_stage": "dedup",
              "error": {"Error": "PermanentStepError", "Cause": "not a video"}}
    env = {**os.environ, **stack.env, "POWERTOOLS_LOG_LEVEL": "INFO"}
    run = subprocess.run([sys.executable, "-c", script, json.dumps(done), json.dumps(failed)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    raw = [ln for ln in run.stdout.splitlines() if ln.strip()]
    lines = _json_lines(run.stdout)
    assert len(lines) == len(raw), run.stdout            # nothing but JSON
    stored = next(d for d in lines if d.get("message") == "mp4 fallbacks stored")
    assert stored["correlation_id"] == hd_video["execution"]
    assert stored["function_request_id"] == "req-fallbacks" and stored["qualities"] == ["360p", "480p", "720p"]
    assert stored["level"] == "INFO" and stored["timestamp"]
    videos_failed = _emf(lines, "VideosFailed")
    assert len(videos_failed) == 1 and videos_failed[0]["stage"] == "dedup"
    assert videos_failed[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == stack.env["POWERTOOLS_METRICS_NAMESPACE"]
