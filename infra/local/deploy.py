"""Create in an AWS-compatible endpoint what AWS gets: roles, functions, bucket, state machine.

Every function gets the role the SAM template gives it (infra/aws/functions.py,
the same policy documents with the template's parameters filled in), each state
machine the role that may invoke only its own functions, and each API route
group the role of the function that serves it in AWS: the emulator runs every
call as that role, so a missing grant fails here as it does there.

Targets the embedded emulator by default, and real LocalStack + MinIO when
AWS_ENDPOINT_URL / S3_ENDPOINT_URL point there. The function table comes
from the Chalice app itself (its lambda functions and S3 event source) and
.chalice/config.json (memory, timeout, environment), so what runs locally is
what `chalice package` describes.
"""
from __future__ import annotations

import io
import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "stepfunctions" / "pipeline.asl.json"
from infra.aws.layers import RUNTIME  # noqa: E402 - the template's runtime, one definition
from infra.local.websocket import API_ID as LIVE_API_ID  # noqa: E402 - the local WebSocket API's id

# ${Placeholder} in the ASL -> Chalice function name.
ASL_FUNCTIONS = {
    "DedupFunctionArn": "pipeline_dedup",
    "MarkDuplicateFunctionArn": "pipeline_mark_duplicate",
    "TranscodeFunctionArn": "pipeline_transcode",
    "TranscodePlanFunctionArn": "pipeline_transcode_plan",
    "TranscodeChunkFunctionArn": "pipeline_transcode_chunk",
    "TranscodeStitchFunctionArn": "pipeline_transcode_stitch",
    "TranscribeFunctionArn": "pipeline_transcribe",
    "EmbedFunctionArn": "pipeline_embed",
    "FinalizeFunctionArn": "pipeline_finalize",
    "FallbacksFunctionArn": "pipeline_fallbacks",
    "MarkFailedFunctionArn": "pipeline_mark_failed",
}

# The WebSocket API's routes -> the function Chalice packages for each (whatever the handler's name).
WEBSOCKET_FUNCTIONS = {"$connect": "websocket_connect", "$default": "websocket_message",
                       "$disconnect": "websocket_disconnect"}

# The clip-extraction machine (highlights): ${Placeholder} -> Chalice function name.
CLIPS_ASL_PATH = ROOT / "stepfunctions" / "clips.asl.json"
CLIPS_ASL_FUNCTIONS = {
    "GenerateMomentsFunctionArn": "clips_generate_moments",
    "ExtractClipFunctionArn": "clips_extract_clip",
    "FinishExtractionFunctionArn": "clips_finish_extraction",
    "MarkExtractionFailedFunctionArn": "clips_mark_extraction_failed",
}

# Signed webhook deliveries: ${Placeholder} -> Chalice function name.
WEBHOOKS_ASL_PATH = ROOT / "stepfunctions" / "webhooks.asl.json"
WEBHOOKS_ASL_FUNCTIONS = {"DeliverFunctionArn": "webhook_deliver"}
# A local setting only (tests): the deliveries' first retry interval in seconds instead of the
# ASL's 60 (the backoff rate and attempts stay), so a retry is seen in seconds, not minutes.
RETRY_INTERVAL_ENV = "WEBHOOK_RETRY_INTERVAL_SECONDS"

# Browsers upload straight to the bucket with presigned PUT/POST.
BUCKET_CORS = {"CORSRules": [{
    "AllowedMethods": ["GET", "HEAD", "PUT", "POST"],
    "AllowedOrigins": ["*"],
    "AllowedHeaders": ["*"],
    "ExposeHeaders": ["ETag"],
    "MaxAgeSeconds": 3600,
}]}


@dataclass
class FunctionSpec:
    name: str            # Chalice's name, e.g. pipeline_dedup
    handler: str         # e.g. app.pipeline_dedup
    memory: int
    timeout: int
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class Deployment:
    stage: str
    bucket: str
    functions: dict[str, str]   # chalice name -> ARN
    state_machine_arn: str
    clips_state_machine_arn: str = ""
    webhooks_state_machine_arn: str = ""
    api_roles: dict[str, str] = field(default_factory=dict)   # route group -> role ARN


def full_name(app_name: str, stage: str, name: str) -> str:
    """The deployed function name, as Chalice names it."""
    return f"{app_name}-{stage}-{name}"


def _config() -> dict:
    return json.loads((ROOT / ".chalice" / "config.json").read_text())


def _lookup(cfg: dict, stage: str, name: str, key: str, default: Any) -> Any:
    st = cfg.get("stages", {}).get(stage, {})
    for scope in (st.get("lambda_functions", {}).get(name, {}), cfg.get("lambda_functions", {}).get(name, {}),
                  st, cfg):
        if key in scope:
            return scope[key]
    return default


def function_specs(stage: str) -> list[FunctionSpec]:
    """Every non-API Lambda of the Chalice app, with its stage configuration."""
    from app import app as chalice_app

    cfg = _config()
    env = {**cfg.get("environment_variables", {}),
           **cfg.get("stages", {}).get(stage, {}).get("environment_variables", {})}
    entries = [(f.name, f.handler_string) for f in chalice_app.pure_lambda_functions]
    entries += [(s.name, s.handler_string) for s in chalice_app.event_sources]
    entries += [(WEBSOCKET_FUNCTIONS[key], h.handler_string) for key, h in chalice_app.websocket_handlers.items()]
    return [FunctionSpec(name=n, handler=h,
                         memory=int(_lookup(cfg, stage, n, "lambda_memory_size", 128)),
                         timeout=int(_lookup(cfg, stage, n, "lambda_timeout", 60)),
                         environment={**env, **_lookup(cfg, stage, n, "environment_variables", {})})
            for n, h in entries]


def _code_zip() -> bytes:
    """A deployment zip of the app (the emulator runs the in-repo code; LocalStack runs this)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(ROOT / "app.py", "app.py")
        for path in (ROOT / "chalicelib").rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, str(path.relative_to(ROOT)))
    return buf.getvalue()


def resolve(value: Any, params: dict[str, str]) -> Any:
    """A CloudFormation value with Fn::Sub and Ref filled from `params` (as the stack would)."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"]
        for name, filled in params.items():
            text = text.replace("${%s}" % name, filled)
        if "${" in text:
            raise ValueError(f"unfilled parameter in {text}")
        return text
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return params[value["Ref"]]
    if isinstance(value, dict):
        return {k: resolve(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, params) for v in value]
    return value


def ensure_role(iam: Any, name: str, resource: dict, params: dict[str, str]) -> str:
    """Create or update a role from a template's AWS::IAM::Role resource; its ARN."""
    props = resolve(resource["Properties"], params)
    trust = json.dumps(props["AssumeRolePolicyDocument"])
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    wanted = {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies", [])}
    for old in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        if old not in wanted:
            iam.delete_role_policy(RoleName=name, PolicyName=old)
    for policy_name, document in wanted.items():
        iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
    return arn


def template_params(sts: Any, stage: str, bucket: str, region: str) -> dict[str, str]:
    """The template's parameters and pseudo parameters, as this account would fill them."""
    account = sts.get_caller_identity()["Account"]
    secret = f"arn:aws:secretsmanager:{region}:{account}:secret:clipstream-{stage}"
    return {"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": account,
            "MediaBucketName": bucket, "JwtSecretArn": f"{secret}-jwt", "DbSecretArn": f"{secret}-db",
            "WebsocketAPI": LIVE_API_ID}


def _ensure_function(lam: Any, spec: FunctionSpec, fname: str, role: str, code: bytes,
                     runtime_env: dict[str, str]) -> str:
    from infra.aws import functions as aws_functions
    env = {"Variables": {**spec.environment, **runtime_env}}
    tmp = {"Size": aws_functions.spec_for(spec.name).ephemeral_mb}
    try:
        return lam.create_function(
            FunctionName=fname, Runtime=RUNTIME, Role=role, Handler=spec.handler,
            Code={"ZipFile": code}, MemorySize=spec.memory, Timeout=spec.timeout,
            Environment=env, EphemeralStorage=tmp)["FunctionArn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceConflictException":
            raise
        lam.update_function_configuration(FunctionName=fname, Role=role, Handler=spec.handler,
                                          MemorySize=spec.memory, Timeout=spec.timeout,
                                          Environment=env, EphemeralStorage=tmp)
        lam.update_function_code(FunctionName=fname, ZipFile=code)
        return lam.get_function(FunctionName=fname)["Configuration"]["FunctionArn"]


def _ensure_bucket(s3: Any, lam: Any, bucket: str, region: str, on_upload_arn: str) -> None:
    try:
        kwargs = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=BUCKET_CORS)
    try:
        lam.add_permission(FunctionName=on_upload_arn, StatementId="s3-raw-uploads",
                           Action="lambda:InvokeFunction", Principal="s3.amazonaws.com",
                           SourceArn=f"arn:aws:s3:::{bucket}")
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceConflictException":
            raise
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{
            "Id": "raw-uploads-start-processing",
            "LambdaFunctionArn": on_upload_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "raw-uploads/"}]}},
        }]})


def render_definition(arns: dict[str, str], path: Path = ASL_PATH,
                      placeholders: dict[str, str] = ASL_FUNCTIONS) -> str:
    """The ASL with its ${Placeholders} filled, as DefinitionSubstitutions does."""
    text = path.read_text()
    for placeholder, name in placeholders.items():
        text = text.replace("${%s}" % placeholder, arns[name])
    if "${" in text:
        raise ValueError("unfilled placeholder in the state machine definition")
    return text


def with_retry_interval(definition: str, seconds: int | None) -> str:
    """The definition with every Retry's IntervalSeconds set to `seconds` (None: unchanged)."""
    if not seconds:
        return definition
    machine = json.loads(definition)
    for state in machine["States"].values():
        for retrier in state.get("Retry", []):
            retrier["IntervalSeconds"] = int(seconds)
    return json.dumps(machine)


def _ensure_state_machine(sfn: Any, name: str, definition: str, role: str) -> str:
    for sm in sfn.list_state_machines()["stateMachines"]:
        if sm["name"] == name:
            sfn.update_state_machine(stateMachineArn=sm["stateMachineArn"],
                                     definition=definition, roleArn=role)
            return sm["stateMachineArn"]
    return sfn.create_state_machine(name=name, definition=definition, roleArn=role,
                                    type="STANDARD")["stateMachineArn"]


def deploy(*, stage: str, bucket: str, region: str, aws_endpoint: str | None,
           s3_endpoint: str | None, runtime_env: dict[str, str]) -> Deployment:
    """Create or update every resource; idempotent."""
    from infra.aws import functions as aws_functions
    from infra.aws import iam as aws_iam
    from infra.aws import routes

    session = boto3.session.Session(region_name=region)
    iam = session.client("iam", endpoint_url=aws_endpoint)
    lam = session.client("lambda", endpoint_url=aws_endpoint)
    sfn = session.client("stepfunctions", endpoint_url=aws_endpoint)
    s3 = session.client("s3", endpoint_url=s3_endpoint or aws_endpoint)

    app_name = _config()["app_name"]
    names = aws_iam.Names(app_name, stage)
    params = template_params(session.client("sts", endpoint_url=aws_endpoint), stage, bucket, region)
    code = _code_zip()
    arns = {}
    for spec in function_specs(stage):
        fname = full_name(app_name, stage, spec.name)
        role = ensure_role(iam, fname, aws_functions.function_role(spec.name, names), params)
        arns[spec.name] = _ensure_function(lam, spec, fname, role, code, runtime_env)
    api_roles = {group.name: ensure_role(iam, names.function(f"api_{group.name}"),
                                         aws_functions.api_role(group.name, names), params)
                 for group in routes.ROUTE_GROUPS}
    _ensure_bucket(s3, lam, bucket, region, arns["on_upload"])

    def states_role(stem: str, placeholders: dict[str, str]) -> str:
        machine = names.state_machine(stem)
        resource = aws_iam.states_role(machine, sorted(full_name(app_name, stage, f)
                                                       for f in placeholders.values()))
        return ensure_role(iam, f"{machine}-states", resource, params)

    sm_arn = _ensure_state_machine(sfn, f"{app_name}-{stage}-pipeline", render_definition(arns),
                                   states_role("pipeline", ASL_FUNCTIONS))
    # The trigger starts executions: it learns the machine's ARN once it exists.
    upload_spec = next(s for s in function_specs(stage) if s.name == "on_upload")
    lam.update_function_configuration(
        FunctionName=arns["on_upload"],
        Environment={"Variables": {**upload_spec.environment, **runtime_env,
                                   "STATE_MACHINE_ARN": sm_arn}})
    clips_arn = _ensure_state_machine(
        sfn, f"{app_name}-{stage}-clips",
        render_definition(arns, CLIPS_ASL_PATH, CLIPS_ASL_FUNCTIONS), states_role("clips", CLIPS_ASL_FUNCTIONS))
    webhooks_arn = _ensure_state_machine(
        sfn, f"{app_name}-{stage}-webhooks",
        with_retry_interval(render_definition(arns, WEBHOOKS_ASL_PATH, WEBHOOKS_ASL_FUNCTIONS),
                            int(runtime_env.get(RETRY_INTERVAL_ENV) or 0) or None),
        states_role("webhooks", WEBHOOKS_ASL_FUNCTIONS))
    return Deployment(stage=stage, bucket=bucket, functions=arns, state_machine_arn=sm_arn,
                      clips_state_machine_arn=clips_arn, webhooks_state_machine_arn=webhooks_arn,
                      api_roles=api_roles)
