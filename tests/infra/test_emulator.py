"""The emulator runs the deployed state machine, whose steps are the in-repo handlers."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers import wait_for, wait_for_final

ROOT = Path(__file__).resolve().parents[2]


def test_deploy_created_what_aws_gets(stack, s3, sfn):
    import boto3

    assert "clipstream" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    conf = s3.get_bucket_notification_configuration(Bucket="clipstream")
    [rule] = conf["LambdaFunctionConfigurations"]
    assert rule["LambdaFunctionArn"].endswith(":function:clipstream-local-on_upload")
    assert rule["Events"] == ["s3:ObjectCreated:*"]
    assert rule["Filter"]["Key"]["FilterRules"] == [{"Name": "Prefix", "Value": "raw-uploads/"}] or \
        rule["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "raw-uploads/"}]
    machines = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    assert "clipstream-local-pipeline" in machines
    lam = boto3.client("lambda", endpoint_url=stack.env["AWS_ENDPOINT_URL"])
    names = {f["FunctionName"]: f["Handler"] for f in lam.list_functions()["Functions"]}
    assert names["clipstream-local-pipeline_dedup"] == "app.pipeline_dedup"
    assert names["clipstream-local-on_upload"] == "app.on_upload"


def test_state_machine_definition_is_valid_asl():
    validator = ROOT / "tests" / "tools" / "node_modules" / ".bin" / "asl-validator"
    result = subprocess.run([str(validator), "--json-path", "stepfunctions/pipeline.asl.json"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_task_has_timeout_retry_and_catch():
    definition = json.loads((ROOT / "stepfunctions" / "pipeline.asl.json").read_text())
    lambda_errors = {"Lambda.ServiceException", "Lambda.AWSLambdaException",
                     "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}
    for name, state in definition["States"].items():
        if state["Type"] != "Task":
            continue
        assert state["TimeoutSeconds"] > 0, name
        assert lambda_errors <= set(state["Retry"][0]["ErrorEquals"]), name
        if name in ("Fallbacks", "RecordFallbacksFailed"):
            # After playable: a failure is recorded (RecordFallbacksFailed) and the execution succeeds.
            record = definition["States"]["RecordFallbacksFailed"]
            assert definition["States"]["Fallbacks"]["Catch"][0]["Next"] == "RecordFallbacksFailed"
            assert record["Parameters"]["Payload"]["side_stage"] == "mp4_fallbacks"
            for after in (record["Next"], record["Catch"][0]["Next"]):
                assert definition["States"][after]["Type"] == "Succeed", name
        elif name != "MarkFailed":
            handler = definition["States"][state["Catch"][0]["Next"]]
            assert handler == {"Type": "Pass", "Comment": handler["Comment"], "Result": handler["Result"],
                               "ResultPath": "$.failed_stage", "Next": "MarkFailed"}, name


def test_started_execution_runs_the_repo_handlers(stack, sfn, make_user, make_stream, make_video):
    user = make_user()
    video = make_video(make_stream(user), user)
    vid = str(video["id"])
    execution = sfn.start_execution(
        stateMachineArn=stack.env["STATE_MACHINE_ARN"], name=f"direct-{vid}",
        input=json.dumps({"video_id": vid, "bucket": "clipstream", "key": video["raw_key"],
                          "etag": "x", "execution": f"direct-{vid}"}))
    # No object was uploaded: Dedup fails, MarkFailed records why.
    row = wait_for_final(vid, 60)
    assert row["status"] == "failed"
    assert "missing" in row["failure_reason"]
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history
               if e["type"] == "TaskStateEntered"]
    assert entered == ["Dedup", "MarkFailed"]
    assert row["failed_stage"] == "dedup"
    status = wait_for(lambda: (s := sfn.describe_execution(
        executionArn=execution["executionArn"])["status"]) != "RUNNING" and s, 30)
    assert status == "FAILED"


def test_upload_event_runs_the_pipeline_to_complete(stack, s3, sfn, make_user, make_stream, make_video, clips):
    from chalicelib import db

    user = make_user()
    video = make_video(make_stream(user), user)
    vid = str(video["id"])
    s3.put_object(Bucket="clipstream", Key=video["raw_key"], Body=clips[0].read_bytes())
    row = wait_for_final(vid, 60)
    assert (row["processing_index"], row["status"]) == (0, "complete")
    stages = [r["stage"] for r in db.fetch_all(
        "SELECT stage FROM stage_runs WHERE video_id = %s ORDER BY id", (vid,))]
    # The ladder and the speech branch run at once: which of them records its start first varies;
    # the MP4 fallbacks come after playable.
    assert stages[0] == "dedup" and stages[-1] == "mp4_fallbacks"
    assert sorted(stages[1:-1]) == ["embed", "transcode", "transcribe"]
    assert stages.index("transcribe") < stages.index("embed")
    [execution] = db.fetch_all("SELECT * FROM pipeline_executions WHERE video_id = %s", (vid,))
    status = wait_for(lambda: (s := sfn.describe_execution(
        executionArn=execution["execution_arn"])["status"]) != "RUNNING" and s, 30)
    assert status == "SUCCEEDED"
