"""The clip-extraction state machine itself: valid ASL, deployed, and its failure paths."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.moments.conftest import FPS
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "stepfunctions" / "clips.asl.json"


def test_clips_definition_is_valid_asl_with_retries_everywhere():
    validator = ROOT / "tests" / "tools" / "node_modules" / ".bin" / "asl-validator"
    result = subprocess.run([str(validator), "--json-path", str(ASL)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    definition = json.loads(ASL.read_text())
    tasks = dict(definition["States"])
    tasks.update(definition["States"]["ExtractClips"]["ItemProcessor"]["States"])
    for name, state in tasks.items():
        if state["Type"] != "Task":
            continue
        assert state["TimeoutSeconds"] > 0, name
        assert "Lambda.ServiceException" in state["Retry"][0]["ErrorEquals"], name
        assert "TransientStepError" in state["Retry"][1]["ErrorEquals"], name
        if name != "MarkExtractionFailed":
            assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"], name


def test_every_placeholder_names_a_function_of_the_app(stack, sfn):
    import app as app_module
    from infra.local import deploy

    text = ASL.read_text()
    names = {f.name for f in app_module.app.pure_lambda_functions}
    for placeholder, function in deploy.CLIPS_ASL_FUNCTIONS.items():
        assert "${%s}" % placeholder in text and function in names
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    assert machines["clipstream-local-clips"] == stack.env["CLIPS_STATE_MACHINE_ARN"]


def _complete_video(make_user, make_stream, make_video, s3, clip: Path | None):
    """A video row marked processed, with (or without) its upload in the bucket."""
    from chalicelib import db

    user = make_user()
    video = make_video(make_stream(user), user)
    db.execute("UPDATE videos SET processing_index = 0, status = 'complete', fps = %s, duration_s = 30,"
               " audio_codec = 'aac' WHERE id = %s", (FPS, video["id"]))
    if clip:
        s3.put_object(Bucket="clipstream", Key=video["raw_key"], Body=clip.read_bytes())
    return str(video["id"])


def _run(sfn, stack, vid, name, **payload):
    from chalicelib.moments import store

    assert store.claim_run(vid, None, name)
    arn = sfn.start_execution(stateMachineArn=stack.env["CLIPS_STATE_MACHINE_ARN"], name=name,
                              input=json.dumps({"video_id": vid, "execution": name, **payload}))["executionArn"]
    return wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d, 120)


def test_a_failed_clip_does_not_stop_the_others(stack, sfn, s3, make_user, make_stream, make_video,
                                               highlight_clip):
    from chalicelib.moments import store

    vid = _complete_video(make_user, make_stream, make_video, s3, highlight_clip["path"])
    good, outside = store.replace_moments(vid, [
        {"start_time": 6.0, "end_time": 9.0, "title": "a", "score": 0.9, "reason": "test"},
        {"start_time": 29.0, "end_time": 29.9, "title": "b", "score": 0.5, "reason": "test"}])
    from chalicelib import db
    db.execute("UPDATE moments SET start_s = 40, end_s = 42 WHERE id = %s", (outside,))   # past the end
    done = _run(sfn, stack, vid, f"{vid}-t1", generate=False, moment_ids=[good, outside])
    assert done["status"] == "SUCCEEDED"
    assert store.moment(good)["clip_status"] == "ready"
    failed = store.moment(outside)
    assert failed["clip_status"] == "failed" and "no video between 40 s and 42 s" in failed["clip_error"]
    assert store.run_of(vid)["status"] == "complete"


def test_a_failed_analysis_is_recorded_on_the_run(stack, sfn, s3, make_user, make_stream, make_video):
    from chalicelib.moments import store

    vid = _complete_video(make_user, make_stream, make_video, s3, None)      # the upload is missing
    done = _run(sfn, stack, vid, f"{vid}-t2", generate=True, moment_ids=[])
    assert done["status"] == "FAILED"
    run = store.run_of(vid)
    assert run["status"] == "failed" and "could not be analysed" in run["error"]
    assert run["finished_at"] is not None
    # The run is no longer active: a new one may be claimed.
    assert store.claim_run(vid, None, f"{vid}-t3")
