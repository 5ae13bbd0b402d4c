"""Clipstream: the table of contents of the API and of the processing pipeline.

Routes parse, call into chalicelib and return; pipeline entry points are one
line each. Modules that only the pipeline needs are imported inside its
handlers so API cold starts stay small.
"""
from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from chalice import Chalice, ConvertToMiddleware, Response

from chalicelib.api import auth, health, hls, processing, relations, search, uploads, videos
from chalicelib.api import invites, streams
from chalicelib.api import files, openapi, social, system
from chalicelib.api.http import chalice_error_to_contract, handles_errors, json_body, paging, parse_uuid
from chalicelib.auth.users import current_user, require_platform_admin
from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationError

app = Chalice(app_name="clipstream")
app.api.binary_types.extend(sorted({t for types in uploads.CONTENT_TYPES.values() for t in types}))
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

@app.route("/streams", methods=["GET"])
@handles_errors
def streams_list() -> dict:
    return streams.list_streams(_user(), *paging(app.current_request))


@app.route("/streams", methods=["POST"])
@handles_errors
def streams_create() -> Response:
    body = streams.create_stream(_user(), json_body(app.current_request))
    return Response(body=body, status_code=201)


@app.route("/streams/{stream_id}", methods=["GET"])
@handles_errors
def streams_get(stream_id: str) -> dict:
    return streams.get_stream(_user(), stream_id)


@app.route("/streams/{stream_id}", methods=["PUT"])
@handles_errors
def streams_update(stream_id: str) -> dict:
    return streams.update_stream(_user(), stream_id, json_body(app.current_request))


@app.route("/streams/{stream_id}", methods=["DELETE"])
@handles_errors
def streams_delete(stream_id: str) -> Response:
    streams.delete_stream(_user(), stream_id)
    return Response(status_code=204, body="")


@app.route("/streams/{stream_id}/members", methods=["GET"])
@handles_errors
def members_list(stream_id: str) -> dict:
    return streams.list_members(_user(), stream_id, *paging(app.current_request))


@app.route("/streams/{stream_id}/members/{user_id}", methods=["PUT"])
@handles_errors
def members_update(stream_id: str, user_id: str) -> dict:
    return streams.update_member(_user(), stream_id, user_id, json_body(app.current_request))


@app.route("/streams/{stream_id}/members/{user_id}", methods=["DELETE"])
@handles_errors
def members_remove(stream_id: str, user_id: str) -> Response:
    streams.remove_member(_user(), stream_id, user_id)
    return Response(status_code=204, body="")


@app.route("/streams/{stream_id}/invites", methods=["GET"])
@handles_errors
def invites_list(stream_id: str) -> dict:
    return invites.list_invites(_user(), stream_id, *paging(app.current_request))


@app.route("/streams/{stream_id}/invites", methods=["POST"])
@handles_errors
def invites_create(stream_id: str) -> Response:
    body = invites.create_invite(_user(), stream_id, json_body(app.current_request))
    return Response(body=body, status_code=201)


@app.route("/streams/{stream_id}/invites/{code}", methods=["GET"])
@handles_errors
def invites_get(stream_id: str, code: str) -> dict:
    return invites.get_invite(_user(), stream_id, code)


@app.route("/streams/{stream_id}/invites/{code}", methods=["PUT"])
@handles_errors
def invites_update(stream_id: str, code: str) -> dict:
    return invites.update_invite(_user(), stream_id, code, json_body(app.current_request))


@app.route("/streams/{stream_id}/invites/{code}", methods=["DELETE"])
@handles_errors
def invites_revoke(stream_id: str, code: str) -> Response:
    invites.revoke_invite(_user(), stream_id, code)
    return Response(status_code=204, body="")


@app.route("/invites/{code}", methods=["GET"])
@handles_errors
def invites_public(code: str) -> dict:
    return invites.public_invite(code)


@app.route("/invites/{code}/join", methods=["POST"])
@handles_errors
def invites_join(code: str) -> dict:
    return invites.join(_user(), code)


# ---------------------------------------------------------------- videos and processing

@app.route("/streams/{stream_id}/videos", methods=["POST"],
           content_types=["application/json", *sorted({t for ts in uploads.CONTENT_TYPES.values() for t in ts})])
@handles_errors
def upload_video(stream_id: str) -> Response:
    request, sid = app.current_request, parse_uuid(stream_id, "Stream")
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type.startswith("video/"):
        body = uploads.create_direct(_user(), sid, request.query_params or {}, content_type,
                                     request.raw_body or b"")
    else:
        body = uploads.create(_user(), sid, json_body(request))
    return Response(body=body, status_code=201)


@app.route("/videos/{video_id}/upload-url", methods=["POST"])
@handles_errors
def reissue_upload_url(video_id: str) -> dict:
    return uploads.reissue(_user(), parse_uuid(video_id, "Video"))


@app.route("/videos/{video_id}/processing", methods=["GET"])
@handles_errors
def video_processing(video_id: str) -> dict:
    return processing.processing(_user(), parse_uuid(video_id, "Video"))


@app.route("/videos/{video_id}/stream", methods=["GET"])
@handles_errors
def video_stream(video_id: str) -> dict:
    return videos.stream_urls(_user(), parse_uuid(video_id, "Video"))


@app.route("/api/videos/{video_id}/hls/master.m3u8", methods=["GET"], cors=True)
@handles_errors
def hls_master(video_id: str) -> Response:
    vid, request = parse_uuid(video_id, "Video"), app.current_request
    body = hls.master(_optional_user(), vid, (request.query_params or {}).get("token"))
    return Response(body=body, headers=hls.PLAYLIST_HEADERS)


@app.route("/api/videos/{video_id}/hls/{quality}/playlist.m3u8", methods=["GET"], cors=True)
@handles_errors
def hls_playlist(video_id: str, quality: str) -> Response:
    vid, request = parse_uuid(video_id, "Video"), app.current_request
    body = hls.media_playlist(_optional_user(), vid, quality, (request.query_params or {}).get("token"))
    return Response(body=body, headers=hls.PLAYLIST_HEADERS)


@app.route("/videos/{video_id}/duplicates", methods=["GET"])
@handles_errors
def video_duplicates(video_id: str) -> dict:
    return relations.duplicates(_user(), parse_uuid(video_id, "Video"))


@app.route("/videos/{video_id}/similar", methods=["GET"])
@handles_errors
def video_similar(video_id: str) -> dict:
    return relations.similar(_user(), parse_uuid(video_id, "Video"))


@app.route("/videos/{video_id}/trimmed", methods=["GET"])
@handles_errors
def video_trimmed(video_id: str) -> dict:
    return relations.trimmed(_user(), parse_uuid(video_id, "Video"))


@app.route("/videos/{video_id}/timeline", methods=["GET"])
@handles_errors
def video_timeline(video_id: str) -> dict:
    return relations.timeline(_user(), parse_uuid(video_id, "Video"))


@app.route("/videos/{video_id}/pov", methods=["GET"])
@handles_errors
def video_pov(video_id: str) -> dict:
    return relations.pov(_user(), parse_uuid(video_id, "Video"))


@app.route("/videos/{video_id}/transcript", methods=["GET"])
@handles_errors
def video_transcript(video_id: str) -> dict:
    return relations.transcript(_user(), parse_uuid(video_id, "Video"))


@app.route("/videos/{video_id}/embeddings", methods=["GET"])
@handles_errors
def video_embeddings(video_id: str) -> dict:
    return relations.embeddings(_user(), parse_uuid(video_id, "Video"))


@app.route("/search", methods=["GET"])
@handles_errors
def search_videos() -> dict:
    request = app.current_request
    return search.search(_user(), request.query_params or {}, *paging(request))


@app.route("/search/suggestions", methods=["GET"])
@handles_errors
def search_suggestions() -> dict:
    return search.suggestions(_user(), app.current_request.query_params or {})


@app.route("/processing/queue", methods=["GET"])
@handles_errors
def processing_queue() -> dict:
    require_platform_admin(_user())
    return processing.queue()


@app.route("/processing/stats", methods=["GET"])
@handles_errors
def processing_stats() -> dict:
    require_platform_admin(_user())
    return processing.stats()


@app.route("/admin/processing/retry", methods=["POST"])
@handles_errors
def retry_processing() -> dict:
    require_platform_admin(_user())
    return processing.retry(json_body(app.current_request))


@app.route("/admin/duplicates", methods=["GET"])
@handles_errors
def admin_duplicates() -> dict:
    require_platform_admin(_user())
    return processing.duplicates(*paging(app.current_request))



# ---------------------------------------------------------------- video details, social, files, shares, system

app.api.binary_types.append(files.JPEG)


@app.route("/streams/{stream_id}/videos", methods=["GET"])
@handles_errors
def videos_list(stream_id: str) -> dict:
    return videos.list_videos(_user(), parse_uuid(stream_id, "Stream"), *paging(app.current_request))


@app.route("/videos/{video_id}", methods=["GET"])
@handles_errors
def videos_get(video_id: str) -> dict:
    return videos.get_video(_user(), parse_uuid(video_id, "Video"))


@app.route("/videos/{video_id}", methods=["PUT"])
@handles_errors
def videos_update(video_id: str) -> dict:
    return videos.update_video(_user(), parse_uuid(video_id, "Video"), json_body(app.current_request))


@app.route("/videos/{video_id}", methods=["DELETE"])
@handles_errors
def videos_delete(video_id: str) -> Response:
    videos.delete_video(_user(), parse_uuid(video_id, "Video"))
    return Response(status_code=204, body="")


@app.route("/videos/{video_id}/like", methods=["POST"])
@handles_errors
def videos_like(video_id: str) -> dict:
    return social.toggle_like(_user(), parse_uuid(video_id, "Video"))


@app.route("/videos/{video_id}/likes", methods=["GET"])
@handles_errors
def videos_likes(video_id: str) -> dict:
    return social.likes(_user(), parse_uuid(video_id, "Video"))


@app.route("/videos/{video_id}/share", methods=["POST"])
@handles_errors
def videos_share(video_id: str) -> Response:
    body = social.create_share(_user(), parse_uuid(video_id, "Video"),
                               json_body(app.current_request, required=False))
    return Response(body=body, status_code=201)


@app.route("/videos/{video_id}/shares", methods=["GET"])
@handles_errors
def videos_shares(video_id: str) -> dict:
    return social.share_stats(_user(), parse_uuid(video_id, "Video"))


@app.route("/share/{code}", methods=["GET"])
@handles_errors
def share_public(code: str) -> dict:
    return social.public_share(code)


@app.route("/files/videos/{video_id}/thumbnail", methods=["GET"])
@handles_errors
def files_thumbnail(video_id: str) -> Response:
    return files.thumbnail(_user(), parse_uuid(video_id, "Video"),
                           app.current_request.headers.get("if-none-match"))


@app.route("/files/videos/{video_id}/stream", methods=["GET"])
@handles_errors
def files_stream(video_id: str) -> Response:
    return files.stream_redirect(_user(), parse_uuid(video_id, "Video"))


@app.route("/system/storage", methods=["GET"])
@handles_errors
def system_storage() -> dict:
    require_platform_admin(_user())
    return system.usage()


@app.route("/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    return Response(body=openapi.document(app), headers={"Cache-Control": "public, max-age=300"})


# ---------------------------------------------------------------- moments, clips and sync
# (highlights from speech and audio, clip extraction, conflict-free metadata editing)


# ---------------------------------------------------------------- playback delivery, metrics and console


# ---------------------------------------------------------------- analytics, moderation and rate limits


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


@app.lambda_function(name="embed_query")
def embed_query(event: dict, context: Any) -> dict:
    from chalicelib.ml import embed
    return {"model": embed.MODEL_NAME, "vectors": embed.get_encoder().encode(event["texts"][:32]).tolist()}


@app.lambda_function(name="pipeline_finalize")
def pipeline_finalize(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import finalize
    return finalize.finalize(event)


@app.lambda_function(name="pipeline_mark_failed")
def pipeline_mark_failed(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import finalize
    return finalize.mark_failed(event)


# ---------------------------------------------------------------- clip extraction steps


# ---------------------------------------------------------------- helpers

def _user() -> dict:
    return current_user(app.current_request)


def _optional_user() -> dict | None:
    """The signed-in user when a bearer token is sent (players may use a playback token instead)."""
    return current_user(app.current_request) if app.current_request.headers.get("authorization") else None


def _health() -> Response:
    status, body = health.check()
    return Response(body=body, status_code=status, headers={"Cache-Control": "no-store"})


def _require_webhook_secret(authorization: str) -> None:
    import hmac
    secret = get_settings().minio_webhook_secret
    token = authorization.removeprefix("Bearer ").strip()
    if not secret or not hmac.compare_digest(token.encode(), secret.encode()):
        raise AuthenticationError("Invalid webhook secret")
