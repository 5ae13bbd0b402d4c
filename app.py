"""Clipstream: the table of contents of the API and of the processing pipeline.

Routes parse, call into chalicelib and return; pipeline entry points are one
line each. Modules that only the pipeline needs are imported inside its
handlers so API cold starts stay small.
"""
from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from chalice import Chalice, ConvertToMiddleware, Response

from chalicelib.api import auth, health
from chalicelib.api.http import chalice_error_to_contract, handles_errors, json_body
from chalicelib.auth.users import current_user
from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationError

app = Chalice(app_name="clipstream")
logger = Logger(service="clipstream")
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context))


@app.middleware("http")
def contract_errors(event: Any, get_response: Any) -> Response:
    return chalice_error_to_contract(get_response(event))


# ---------------------------------------------------------------- system

@app.route("/", methods=["GET"])
def root() -> Response:
    return _health()


@app.route("/health", methods=["GET"])
def health_check() -> Response:
    return _health()


# ---------------------------------------------------------------- sign-in

@app.route("/auth/verify", methods=["POST"])
@handles_errors
def auth_verify() -> dict:
    return auth.verify(json_body(app.current_request))


@app.route("/auth/user", methods=["GET"])
@handles_errors
def auth_user() -> dict:
    return auth.me(_user())


@app.route("/auth/refresh", methods=["POST"])
@handles_errors
def auth_refresh() -> dict:
    return auth.refresh(json_body(app.current_request))


@app.route("/auth/logout", methods=["POST"])
@handles_errors
def auth_logout() -> dict:
    return auth.logout(json_body(app.current_request))


# ---------------------------------------------------------------- streams, members, invites
# (routes of the Stream Management section)


# ---------------------------------------------------------------- videos and processing


# ---------------------------------------------------------------- upload trigger

@app.on_s3_event(bucket=get_settings().bucket, events=["s3:ObjectCreated:*"],
                 prefix="raw-uploads/")
def on_upload(event: Any) -> dict:
    from chalicelib.pipeline import start
    return start.handle_event(event.to_dict())


@app.route("/webhooks/minio/upload-complete", methods=["POST"])
@handles_errors
def minio_upload_complete() -> dict:
    from chalicelib.pipeline import start
    request = app.current_request
    _require_webhook_secret(request.headers.get("authorization", ""))
    return start.handle_event(json_body(request))


# ---------------------------------------------------------------- pipeline steps

@app.lambda_function(name="pipeline_dedup")
def pipeline_dedup(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import dedup
    return dedup.run(event)


@app.lambda_function(name="pipeline_mark_duplicate")
def pipeline_mark_duplicate(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import finalize
    return finalize.mark_duplicate(event)


@app.lambda_function(name="pipeline_transcode")
def pipeline_transcode(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import transcode
    return transcode.run(event)


@app.lambda_function(name="pipeline_transcribe")
def pipeline_transcribe(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import transcribe
    return transcribe.run(event)


@app.lambda_function(name="pipeline_embed")
def pipeline_embed(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import embed
    return embed.run(event)


@app.lambda_function(name="pipeline_finalize")
def pipeline_finalize(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import finalize
    return finalize.finalize(event)


@app.lambda_function(name="pipeline_mark_failed")
def pipeline_mark_failed(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import finalize
    return finalize.mark_failed(event)


# ---------------------------------------------------------------- helpers

def _user() -> dict:
    return current_user(app.current_request)


def _health() -> Response:
    status, body = health.check()
    return Response(body=body, status_code=status, headers={"Cache-Control": "no-store"})


def _require_webhook_secret(authorization: str) -> None:
    import hmac
    secret = get_settings().minio_webhook_secret
    token = authorization.removeprefix("Bearer ").strip()
    if not secret or not hmac.compare_digest(token.encode(), secret.encode()):
        raise AuthenticationError("Invalid webhook secret")
