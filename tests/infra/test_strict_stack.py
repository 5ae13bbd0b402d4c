"""The local stack refuses what AWS refuses: signatures, roles, limits.

Each test attacks the emulator the way a client or a misconfigured deploy
would, and checks both the refusal and that nothing was stored or run.
"""
from __future__ import annotations

import io
import json
import time
import uuid
import zipfile

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.helpers import call, new_video, put_bytes, wait_for, wait_for_final

pytestmark = pytest.mark.attack  # hostile callers: counted in bench/results/reliability.json

BUCKET = "clipstream"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                  "Action": "sts:AssumeRole"}]}
STATES_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"},
                                                         "Action": "sts:AssumeRole"}]}


def _client(stack, service, key=None, secret=None):
    return boto3.client(service, endpoint_url=stack.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id=key or stack.env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=secret or stack.env["AWS_SECRET_ACCESS_KEY"],
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


def _error_code(resp: requests.Response) -> str:
    return resp.text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in resp.text else ""


def _exists(s3, key: str) -> bool:
    try:
        s3.head_object(Bucket=BUCKET, Key=key)
        return True
    except ClientError:
        return False


@pytest.fixture()
def video(client, sign_in, make_stream):
    """A creator's new video: the API's presigned upload for 64 declared bytes."""
    me = sign_in()
    from chalicelib import db
    stream = make_stream(db.fetch_one("SELECT * FROM users WHERE id = %s", (me["user"]["id"],)))
    status, created = call(client, "POST", f"/streams/{stream['id']}/videos", me,
                           {"filename": "a.mp4", "size_bytes": 64, "content_type": "video/mp4"})
    assert status == 201, created
    created["key"] = f"raw-uploads/{created['id']}.mp4"
    return created


# ---------------------------------------------------------------- signatures

def test_unsigned_requests_are_refused_everywhere(stack, s3):
    base = stack.env["AWS_ENDPOINT_URL"]
    s3.put_object(Bucket=BUCKET, Key="thumbnails/strict-probe.jpg", Body=b"jpeg")
    for method, url in (("GET", f"{base}/{BUCKET}/thumbnails/strict-probe.jpg"),
                        ("PUT", f"{base}/{BUCKET}/raw-uploads/{uuid.uuid4()}.mp4"),
                        ("GET", f"{base}/{BUCKET}?list-type=2"),
                        ("DELETE", f"{base}/{BUCKET}/thumbnails/strict-probe.jpg"),
                        ("GET", f"{base}/2015-03-31/functions/")):
        resp = requests.request(method, url, data=b"x" if method == "PUT" else None, timeout=10)
        assert resp.status_code == 403 and _error_code(resp) == "AccessDenied", (method, url, resp.text)
    assert s3.get_object(Bucket=BUCKET, Key="thumbnails/strict-probe.jpg")["Body"].read() == b"jpeg"


def test_a_browsers_cors_preflight_is_answered_from_the_bucket_rules_and_grants_nothing(stack, video, s3):
    """A page's presigned PUT (Content-Type and If-None-Match are non-simple) is preceded by an OPTIONS
    without credentials: S3 answers it from the bucket's CORS rules; it reads and writes nothing."""
    origin = "http://127.0.0.1:5000"
    preflight = requests.options(video["upload_url"], timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type,if-none-match"})
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
    assert "DELETE" not in preflight.headers["Access-Control-Allow-Methods"]
    s3.put_object(Bucket=BUCKET, Key="thumbnails/preflight-probe.jpg", Body=b"secret-bytes")
    base = stack.env["AWS_ENDPOINT_URL"]
    probe = requests.options(f"{base}/{BUCKET}/thumbnails/preflight-probe.jpg", timeout=10,
                             headers={"Origin": origin, "Access-Control-Request-Method": "GET"})
    assert b"secret-bytes" not in probe.content
    assert not _exists(s3, video["key"])
    # the request after the preflight is still checked: unsigned, it is refused
    resp = requests.put(f"{base}/{BUCKET}/{video['key']}", data=b"x" * 64, headers={"Origin": origin}, timeout=10)
    assert resp.status_code == 403 and not _exists(s3, video["key"])


def test_presigned_put_with_its_query_cut_off_stores_nothing(video, s3):
    headers = {**video["upload_headers"], "Content-Type": "video/mp4"}
    bare = video["upload_url"].split("?", 1)[0]
    resp = requests.put(bare, data=b"\0" * 64, headers=headers, timeout=10)
    assert resp.status_code == 403 and _error_code(resp) == "AccessDenied"
    assert not _exists(s3, video["key"])


@pytest.mark.parametrize("tamper", ["signature", "key", "expires", "other_secret", "unknown_key"])
def test_forged_presigned_urls_are_refused(stack, video, s3, tamper):
    headers = {**video["upload_headers"], "Content-Type": "video/mp4"}
    url = video["upload_url"]
    if tamper == "signature":
        url = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    elif tamper == "key":
        url = url.replace(video["id"], str(uuid.uuid4()))
    elif tamper == "expires":
        url = url.replace("X-Amz-Expires=900", "X-Amz-Expires=9000")
    else:
        key = "AKIAUNKNOWN0000000000" if tamper == "unknown_key" else stack.env["AWS_ACCESS_KEY_ID"]
        forger = _client(stack, "s3", key=key, secret="not-the-secret")
        url = forger.generate_presigned_url("put_object", Params={
            "Bucket": BUCKET, "Key": video["key"], "ContentType": "video/mp4", "ContentLength": 64,
            "IfNoneMatch": "*"}, ExpiresIn=600)
    resp = requests.put(url, data=b"\0" * 64, headers=headers, timeout=10)
    assert resp.status_code == 403, resp.text
    assert _error_code(resp) == ("InvalidAccessKeyId" if tamper == "unknown_key" else "SignatureDoesNotMatch")
    assert not _exists(s3, video["key"])


def test_an_expired_presigned_url_is_refused(stack, s3):
    s3.put_object(Bucket=BUCKET, Key="thumbnails/expiring.jpg", Body=b"jpeg")
    url = _client(stack, "s3").generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "thumbnails/expiring.jpg"}, ExpiresIn=1)
    assert requests.get(url, timeout=10).status_code == 200
    time.sleep(2.1)
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 403 and "expired" in resp.text


def test_header_signed_requests_with_a_wrong_secret_are_refused(stack):
    wrong = _client(stack, "s3", secret="wrong-secret")
    with pytest.raises(ClientError) as caught:
        wrong.put_object(Bucket=BUCKET, Key="thumbnails/never.jpg", Body=b"x")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as caught:
        _client(stack, "stepfunctions", secret="wrong-secret").list_state_machines()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize("attack", ["over_size", "under_size", "other_key", "other_type", "extra_field",
                                    "no_policy"])
def test_presigned_post_policies_are_enforced(video, s3, attack):
    post = video["upload"]
    fields = dict(post["fields"])
    body = b"\0" * 64
    if attack == "over_size":
        body = b"\0" * 65
    elif attack == "under_size":
        body = b"\0" * 63
    elif attack == "other_key":
        fields["key"] = f"processed-videos/{uuid.uuid4()}/master.m3u8"
    elif attack == "other_type":
        fields["Content-Type"] = "text/html"
    elif attack == "extra_field":
        fields["x-amz-meta-evil"] = "1"
    else:
        fields.pop("policy")
    resp = requests.post(post["url"], data=fields, files={"file": ("a.mp4", body, "video/mp4")}, timeout=10)
    expected = {"over_size": (400, "EntityTooLarge"), "under_size": (400, "EntityTooSmall"),
                "no_policy": (400, "InvalidArgument")}.get(attack, (403, "AccessDenied"))
    assert (resp.status_code, _error_code(resp)) == expected, resp.text
    assert not _exists(s3, video["key"]) and not _exists(s3, fields.get("key", video["key"]))


def test_the_honest_presigned_post_is_stored(video, s3):
    post = video["upload"]
    resp = requests.post(post["url"], data=post["fields"], files={"file": ("a.mp4", b"\0" * 64, "video/mp4")},
                         timeout=10)
    assert resp.status_code in (200, 204), resp.text
    assert s3.head_object(Bucket=BUCKET, Key=video["key"])["ContentLength"] == 64


# ---------------------------------------------------------------- roles

def _role(iam, name: str, statements: list[dict], trust: dict = TRUST) -> str:
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    return arn


def _function(lam, name: str, handler: str, role: str, *, timeout: int = 10, tmp_mb: int = 512) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("placeholder.txt", "the emulator runs the in-repo handler")
    return lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler=handler,
                               Code={"ZipFile": buf.getvalue()}, Timeout=timeout,
                               EphemeralStorage={"Size": tmp_mb})["FunctionArn"]


@pytest.fixture(scope="module")
def test_functions(stack):
    """Test-only functions, each with a role of its own."""
    iam, lam = _client(stack, "iam"), _client(stack, "lambda")
    tag = uuid.uuid4().hex[:8]
    role = _role(iam, f"limits-{tag}", [{"Effect": "Allow", "Action": "s3:PutObject",
                                         "Resource": f"arn:aws:s3:::{BUCKET}/thumbnails/*"}])
    names = {}
    for short, handler, extra in (("echo", "echo", {}), ("sleep", "sleep", {"timeout": 1}),
                                  ("big", "big_output", {}), ("fill", "fill_tmp", {"tmp_mb": 512}),
                                  ("s3", "call_s3", {})):
        names[short] = f"limits-{short}-{tag}"
        _function(lam, names[short], f"tests.infra.limit_handlers.{handler}", role, **extra)
    return names


def test_a_function_can_only_do_what_its_role_allows(stack, s3, test_functions):
    lam = _client(stack, "lambda")
    allowed = lam.invoke(FunctionName=test_functions["s3"],
                         Payload=json.dumps({"key": "thumbnails/role-probe.txt"}))
    assert "FunctionError" not in allowed, allowed["Payload"].read()
    key = f"processed-videos/{uuid.uuid4()}/master.m3u8"
    refused = lam.invoke(FunctionName=test_functions["s3"], Payload=json.dumps({"key": key}))
    error = json.loads(refused["Payload"].read())
    assert refused.get("FunctionError") and error["errorType"] == "StorageDenied", error
    assert "AccessDenied" in error["errorMessage"]
    assert not _exists(s3, key)


def test_a_missing_grant_fails_the_pipeline_for_that_reason(stack, client, sign_in, make_stream, clips):
    """Take WriteThumbnails from the dedup function's role: the upload fails there, as in AWS."""
    from chalicelib import db
    iam = _client(stack, "iam")
    role = "clipstream-local-pipeline_dedup"
    original = iam.get_role_policy(RoleName=role, PolicyName="least-privilege")["PolicyDocument"]
    document = original if isinstance(original, dict) else json.loads(original)
    weakened = {**document, "Statement": [s for s in document["Statement"] if s["Sid"] != "WriteThumbnails"]}
    assert len(weakened["Statement"]) == len(document["Statement"]) - 1
    me = sign_in()
    stream = make_stream(db.fetch_one("SELECT * FROM users WHERE id = %s", (me["user"]["id"],)))
    data = clips[0].read_bytes()
    iam.put_role_policy(RoleName=role, PolicyName="least-privilege", PolicyDocument=json.dumps(weakened))
    try:
        created = new_video(client, me, stream, "g.mp4", len(data))
        put_bytes(created, data)
        row = wait_for_final(created["id"], 120)
    finally:
        iam.put_role_policy(RoleName=role, PolicyName="least-privilege", PolicyDocument=json.dumps(document))
    assert row["status"] == "failed"
    errors = " ".join(str(r["error"]) for r in db.fetch_all(
        "SELECT error FROM stage_runs WHERE video_id = %s AND error IS NOT NULL", (created["id"],)))
    assert "AccessDenied" in errors, (row, errors)


def test_a_state_machine_may_invoke_only_its_own_functions(stack, test_functions):
    iam, sfn = _client(stack, "iam"), _client(stack, "stepfunctions")
    echo_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{test_functions['echo']}"
    big_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{test_functions['big']}"
    role = _role(iam, f"machine-{uuid.uuid4().hex[:8]}", [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                                           "Resource": echo_arn}], STATES_TRUST)

    def run(function_arn: str) -> dict:
        definition = {"StartAt": "Call", "States": {"Call": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function_arn, "Payload.$": "$"}, "End": True}}}
        machine = sfn.create_state_machine(name=f"strict-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition),
                                           roleArn=role)["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine, name="run", input="{}")["executionArn"]
        return wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d, 30)

    assert run(echo_arn)["status"] == "SUCCEEDED"
    refused = run(big_arn)
    assert refused["status"] == "FAILED" and "AccessDenied" in refused.get("error", "") + refused.get("cause", "")


# ---------------------------------------------------------------- limits

def test_invoke_payload_limits(stack, test_functions):
    lam = _client(stack, "lambda")
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=test_functions["echo"], Payload=json.dumps({"x": "a" * (6 * 1024 * 1024)}))
    assert caught.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=test_functions["echo"], InvocationType="Event",
                   Payload=json.dumps({"x": "a" * (1024 * 1024 + 10)}))
    assert caught.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    ok = lam.invoke(FunctionName=test_functions["echo"], InvocationType="Event",
                    Payload=json.dumps({"x": "a" * (900 * 1024)}))
    assert ok["StatusCode"] == 202
    resp = lam.invoke(FunctionName=test_functions["big"], Payload=json.dumps({"bytes": 6 * 1024 * 1024 + 1}))
    assert resp.get("FunctionError") and json.loads(resp["Payload"].read())["errorType"] == \
        "Function.ResponseSizeTooLarge"


def test_a_function_past_its_timeout_ends_with_task_timed_out(stack, test_functions):
    lam = _client(stack, "lambda")
    started = time.monotonic()
    resp = lam.invoke(FunctionName=test_functions["sleep"], Payload=json.dumps({"seconds": 4}))
    error = json.loads(resp["Payload"].read())
    assert resp.get("FunctionError") and "Task timed out after 1.00 seconds" in error["errorMessage"]
    assert time.monotonic() - started < 3.5
    assert "FunctionError" not in lam.invoke(FunctionName=test_functions["sleep"],
                                             Payload=json.dumps({"seconds": 0.1}))


def test_tmp_is_the_configured_size(stack, test_functions):
    lam = _client(stack, "lambda")
    small = lam.invoke(FunctionName=test_functions["fill"], Payload=json.dumps({"mb": 8}))
    assert "FunctionError" not in small
    big = lam.invoke(FunctionName=test_functions["fill"], Payload=json.dumps({"mb": 520}))
    error = json.loads(big["Payload"].read())
    assert big.get("FunctionError") and "No space left on device" in error["errorMessage"], error


def test_a_state_over_256_kib_fails_the_execution(stack, test_functions):
    iam, sfn = _client(stack, "iam"), _client(stack, "stepfunctions")
    big_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{test_functions['big']}"
    role = _role(iam, f"machine-{uuid.uuid4().hex[:8]}", [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                                           "Resource": big_arn}], STATES_TRUST)
    definition = {"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": big_arn, "Payload.$": "$"}, "End": True}}}
    machine = sfn.create_state_machine(name=f"data-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition),
                                       roleArn=role)["stateMachineArn"]
    outcomes = {}
    for size in (200 * 1024, 300 * 1024):
        arn = sfn.start_execution(stateMachineArn=machine, name=f"size-{size}",
                                  input=json.dumps({"bytes": size}))["executionArn"]
        outcomes[size] = wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING"
                                  and d, 30)
    assert outcomes[200 * 1024]["status"] == "SUCCEEDED"
    assert outcomes[300 * 1024]["status"] == "FAILED"
    assert outcomes[300 * 1024].get("error") == "States.DataLimitExceeded"
