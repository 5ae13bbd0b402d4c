"""Clipstream: the table of contents of the API and of the processing pipeline.

Routes parse, call into chalicelib and return; pipeline entry points are one
line each. Modules that only the pipeline needs are imported inside its
handlers so API cold starts stay small.
"""
from __future__ import annotations

from typing import Any

from chalice import Chalice, ConvertToMiddleware, Response

from chalicelib.api import auth, captions, dash, health, hls, processing, relations, search, uploads, videos
from chalicelib.api import invites, streams
from chalicelib.api import files, openapi, social, storyboard, system
from chalicelib.api import thumbnails, web
from chalicelib.api import analytics, moderation
from chalicelib.api import moments, sync
from chalicelib.api import catalog, multipart
from chalicelib.api import webhooks
from chalicelib.api import console, metrics, ratelimit
from chalicelib import aws, observability
from chalicelib.api.http import chalice_error_to_contract, handles_errors, json_body, paging, parse_uuid
from chalicelib.auth.users import current_user
from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationError

app = Chalice(app_name="clipstream")
app.api.binary_types.extend(uploads.BINARY_TYPES)


# ---------------------------------------------------------------- middleware
# Chalice wraps them in the order they are registered here: the first is the outermost.
# An HTTP request passes contract_errors → route_role → lambda_middleware → rate_limits → route.

@app.middleware("http")
def contract_errors(event: Any, get_response: Any) -> Response:
    return chalice_error_to_contract(get_response(event))


@app.middleware("http")
def route_role(event: Any, get_response: Any) -> Response:
    """Locally, run the route as the role of the function that serves it in AWS (no-op in AWS)."""
    credentials = aws.route_credentials(event.context.get("resourcePath"))
    if credentials is None:
        return get_response(event)
    with aws.acting_as(credentials):
        return get_response(event)


# Log context (correlation ids, cold start) for every event: HTTP, S3, Step Functions, WebSocket.
app.register_middleware(ConvertToMiddleware(observability.lambda_middleware))


# Uploads started, a metric (the S3 trigger).
@app.middleware("s3")
def count_uploads(event: Any, get_response: Any) -> Any:
    return observability.uploads_started(get_response(event))


@app.middleware("http")
def rate_limits(event: Any, get_response: Any) -> Response:
    return ratelimit.refusal(event) or get_response(event)


# ---------------------------------------------------------------- system

@app.route("/", methods=["GET"])
@handles_errors
def root() -> Response:
    return _health()


@app.route("/health", methods=["GET"])
@handles_errors
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


@app.route("/streams/{stream_id}/glossary", methods=["GET"])
@handles_errors
def glossary_get(stream_id: str) -> dict:
    return streams.get_glossary(_user(), stream_id)


@app.route("/streams/{stream_id}/glossary", methods=["PUT"])
@handles_errors
def glossary_put(stream_id: str) -> dict:
    return streams.put_glossary(_user(), stream_id, json_body(app.current_request))


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
           content_types=["application/json", *uploads.BINARY_TYPES])
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
    return uploads.reissue(_user(), parse_uuid(video_id, "Video"), json_body(app.current_request, required=False))


@app.route("/videos/{video_id}/multipart", methods=["GET"])
@handles_errors
def multipart_status(video_id: str) -> dict:
    return multipart.status(_user(), parse_uuid(video_id, "Video"), _query())


@app.route("/videos/{video_id}/multipart/complete", methods=["POST"])
@handles_errors
def multipart_complete(video_id: str) -> dict:
    return multipart.complete(_user(), parse_uuid(video_id, "Video"), json_body(app.current_request))


@app.route("/videos/{video_id}/multipart", methods=["DELETE"])
@handles_errors
def multipart_abort(video_id: str) -> Response:
    multipart.abort(_user(), parse_uuid(video_id, "Video"), _query())
    return Response(status_code=204, body="")


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


@app.route("/api/videos/{video_id}/dash/manifest.mpd", methods=["GET"], cors=True)
@handles_errors
def dash_manifest(video_id: str) -> Response:
    vid, request = parse_uuid(video_id, "Video"), app.current_request
    body = dash.manifest(_optional_user(), vid, (request.query_params or {}).get("token"))
    return Response(body=body, headers=dash.MANIFEST_HEADERS)


@app.route("/videos/{video_id}/captions.vtt", methods=["GET"], cors=True)
@handles_errors
def video_captions(video_id: str) -> Response:
    vid, request = parse_uuid(video_id, "Video"), app.current_request
    body = captions.file(_optional_user(), vid, (request.query_params or {}).get("token"))
    return Response(body=body, headers=captions.VTT_HEADERS)


@app.route("/videos/{video_id}/storyboard.vtt", methods=["GET"], cors=True)
@handles_errors
def video_storyboard(video_id: str) -> Response:
    vid, request = parse_uuid(video_id, "Video"), app.current_request
    body = storyboard.track(_optional_user(), vid, (request.query_params or {}).get("token"))
    return Response(body=body, headers=storyboard.VTT_HEADERS)


@app.route("/api/videos/{video_id}/captions.m3u8", methods=["GET"], cors=True)
@handles_errors
def captions_playlist(video_id: str) -> Response:
    vid, request = parse_uuid(video_id, "Video"), app.current_request
    body = captions.hls_playlist(_optional_user(), vid, (request.query_params or {}).get("token"))
    return Response(body=body, headers=hls.PLAYLIST_HEADERS)


@app.route("/api/videos/{video_id}/captions/{segment}", methods=["GET"], cors=True)
@handles_errors
def captions_segment(video_id: str, segment: str) -> Response:
    vid, request = parse_uuid(video_id, "Video"), app.current_request
    body = captions.hls_segment(_optional_user(), vid, segment, (request.query_params or {}).get("token"))
    return Response(body=body, headers=captions.VTT_HEADERS)


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
    return processing.queue(_user())


@app.route("/processing/stats", methods=["GET"])
@handles_errors
def processing_stats() -> dict:
    return processing.stats(_user())


@app.route("/admin/processing/retry", methods=["POST"])
@handles_errors
def retry_processing() -> dict:
    return processing.retry(_user(), json_body(app.current_request))


@app.route("/admin/duplicates", methods=["GET"])
@handles_errors
def admin_duplicates() -> dict:
    kind = (app.current_request.query_params or {}).get("kind")
    return processing.duplicates(_user(), *paging(app.current_request), kind)


# ---------------------------------------------------------------- video details, social, files, shares, system

@app.route("/videos", methods=["GET"])
@handles_errors
def videos_catalog() -> dict:
    return catalog.list_catalog(_user(), _query(), *paging(app.current_request))


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


@app.route("/videos/{video_id}/shares/{share_id}", methods=["DELETE"])
@handles_errors
def videos_share_revoke(video_id: str, share_id: str) -> Response:
    social.revoke_share(_user(), parse_uuid(video_id, "Video"), share_id)
    return Response(status_code=204, body="")


@app.route("/share/{code}", methods=["GET"])
@handles_errors
def share_public(code: str) -> dict:
    return social.public_share(code)


@app.route("/files/videos/{video_id}/thumbnail", methods=["GET"])
@handles_errors
def files_thumbnail(video_id: str) -> Response:
    return files.thumbnail(_user(), parse_uuid(video_id, "Video"),
                           app.current_request.headers.get("if-none-match"))


@app.route("/videos/{video_id}/thumbnail", methods=["POST"])
@handles_errors
def thumbnail_upload(video_id: str) -> Response:
    body = thumbnails.request_upload(_user(), parse_uuid(video_id, "Video"), json_body(app.current_request))
    return Response(body=body, status_code=201)


@app.route("/videos/{video_id}/thumbnail", methods=["PUT"])
@handles_errors
def thumbnail_set(video_id: str) -> dict:
    return thumbnails.confirm(_user(), parse_uuid(video_id, "Video"), json_body(app.current_request))


@app.route("/videos/{video_id}/thumbnail", methods=["DELETE"])
@handles_errors
def thumbnail_remove(video_id: str) -> Response:
    thumbnails.remove(_user(), parse_uuid(video_id, "Video"))
    return Response(status_code=204, body="")


@app.route("/files/videos/{video_id}/stream", methods=["GET"])
@handles_errors
def files_stream(video_id: str) -> Response:
    return files.stream_redirect(_user(), parse_uuid(video_id, "Video"))


@app.route("/system/storage", methods=["GET"])
@handles_errors
def system_storage() -> dict:
    return system.usage(_user())


@app.route("/openapi.json", methods=["GET"])
@handles_errors
def openapi_document() -> Response:
    return Response(body=openapi.document(app), headers={"Cache-Control": "public, max-age=300"})


# ---------------------------------------------------------------- web pages
# (static HTML + JS from chalicelib/web; their data comes from the routes above)

@app.route("/web", methods=["GET"])
@handles_errors
def web_streams() -> Response:
    return web.page("streams")


@app.route("/web/upload", methods=["GET"])
@handles_errors
def web_upload() -> Response:
    return web.page("upload")


@app.route("/web/watch", methods=["GET"])
@handles_errors
def web_watch() -> Response:
    return web.page("watch")


@app.route("/docs", methods=["GET"])
@handles_errors
def web_docs() -> Response:
    return web.page("docs")


@app.route("/web/assets/{name}", methods=["GET"])
@handles_errors
def web_asset(name: str) -> Response:
    return web.asset(name, app.current_request.headers.get("if-none-match"))


# ---------------------------------------------------------------- moments, clips and sync
# (highlights from speech and audio, clip extraction, conflict-free metadata editing)

@app.route("/videos/{video_id}/generate-moments", methods=["POST"])
@handles_errors
def moments_generate(video_id: str) -> Response:
    return Response(body=moments.generate(_user(), parse_uuid(video_id, "Video")), status_code=202)


@app.route("/videos/{video_id}/moments", methods=["GET"])
@handles_errors
def moments_list(video_id: str) -> dict:
    return moments.list_moments(_user(), parse_uuid(video_id, "Video"))


@app.route("/videos/{video_id}/moments/{moment_id}/refine", methods=["POST"])
@handles_errors
def moments_refine(video_id: str, moment_id: str) -> dict:
    return moments.refine(_user(), parse_uuid(video_id, "Video"), moment_id,
                          json_body(app.current_request, required=False))


@app.route("/videos/{video_id}/clip-extraction-status", methods=["GET"])
@handles_errors
def clip_extraction_status(video_id: str) -> dict:
    return moments.extraction_status(_user(), parse_uuid(video_id, "Video"))


@app.route("/clips/{moment_id}/stream", methods=["GET"])
@handles_errors
def clip_stream(moment_id: str) -> Response:
    return moments.stream_clip(_user(), moment_id)


@app.route("/sync", methods=["POST"])
@handles_errors
def sync_push() -> dict:
    return sync.post_sync(_user(), json_body(app.current_request))


@app.route("/sync", methods=["GET"])
@handles_errors
def sync_pull() -> dict:
    return sync.get_sync(_user(), app.current_request.query_params or {})


# ---------------------------------------------------------------- playback fallback, metrics and console

@app.route("/api/videos/{video_id}/stream/{quality}", methods=["GET"], cors=True)
@handles_errors
def mp4_fallback(video_id: str, quality: str) -> Response:
    vid, request = parse_uuid(video_id, "Video"), app.current_request
    url = hls.mp4_url(_optional_user(), vid, quality, (request.query_params or {}).get("token"))
    return Response(body="", status_code=302, headers={"Location": url, "Cache-Control": "no-store"})


@app.route("/metrics", methods=["GET"])
@handles_errors
def prometheus_metrics() -> Response:
    return Response(body=metrics.exposition(_user()),
                    headers={"Content-Type": metrics.CONTENT_TYPE, "Cache-Control": "no-store"})


@app.route("/console", methods=["GET"])
@handles_errors
def console_page() -> Response:
    return Response(body=console.page(),
                    headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"})


@app.route("/console/api/executions", methods=["GET"])
@handles_errors
def console_executions() -> dict:
    return console.executions(_user(), (app.current_request.query_params or {}).get("limit"))


@app.route("/console/api/graph", methods=["GET"])
@handles_errors
def console_graph() -> dict:
    return console.graph(_user())


# ---------------------------------------------------------------- analytics and moderation

@app.route("/videos/{video_id}/views", methods=["POST"])
@handles_errors
def videos_record_view(video_id: str) -> dict:
    return analytics.record_view(_user(), parse_uuid(video_id, "Video"),
                                 json_body(app.current_request, required=False))


@app.route("/videos/{video_id}/analytics", methods=["GET"])
@handles_errors
def videos_analytics(video_id: str) -> dict:
    return analytics.video_analytics(_user(), parse_uuid(video_id, "Video"), _query())


@app.route("/streams/{stream_id}/analytics", methods=["GET"])
@handles_errors
def streams_analytics(stream_id: str) -> dict:
    return analytics.stream_analytics(_user(), parse_uuid(stream_id, "Stream"), _query())


@app.route("/users/me/analytics", methods=["GET"])
@handles_errors
def users_me_analytics() -> dict:
    return analytics.user_analytics(_user(), _query())


@app.route("/videos/{video_id}/report", methods=["POST"])
@handles_errors
def videos_report(video_id: str) -> Response:
    body = moderation.report_video(_user(), parse_uuid(video_id, "Video"), json_body(app.current_request))
    return Response(body=body, status_code=201)


@app.route("/admin/reports", methods=["GET"])
@handles_errors
def admin_reports() -> dict:
    return moderation.list_reports(_user(), _query(), *paging(app.current_request))


@app.route("/streams/{stream_id}/reports", methods=["GET"])
@handles_errors
def streams_reports(stream_id: str) -> dict:
    return moderation.list_reports(_user(), _query(), *paging(app.current_request),
                                   stream_id=parse_uuid(stream_id, "Stream"))


@app.route("/admin/reports/{report_id}/resolve", methods=["POST"])
@handles_errors
def admin_reports_resolve(report_id: str) -> dict:
    return moderation.resolve_report(_user(), report_id, json_body(app.current_request, required=False))


@app.route("/admin/reports/{report_id}/dismiss", methods=["POST"])
@handles_errors
def admin_reports_dismiss(report_id: str) -> dict:
    return moderation.dismiss_report(_user(), report_id, json_body(app.current_request, required=False))


@app.route("/admin/videos/{video_id}/hide", methods=["POST"])
@handles_errors
def admin_videos_hide(video_id: str) -> dict:
    return moderation.hide_video(_user(), video_id, json_body(app.current_request, required=False))


@app.route("/admin/videos/{video_id}/unhide", methods=["POST"])
@handles_errors
def admin_videos_unhide(video_id: str) -> dict:
    return moderation.unhide_video(_user(), video_id)


@app.route("/streams/{stream_id}/bans", methods=["GET"])
@handles_errors
def streams_bans(stream_id: str) -> dict:
    return moderation.list_bans(_user(), stream_id, *paging(app.current_request))


@app.route("/streams/{stream_id}/bans", methods=["POST"])
@handles_errors
def streams_ban(stream_id: str) -> Response:
    body = moderation.ban_user(_user(), stream_id, json_body(app.current_request))
    return Response(body=body, status_code=201)


@app.route("/streams/{stream_id}/bans/{user_id}", methods=["DELETE"])
@handles_errors
def streams_unban(stream_id: str, user_id: str) -> Response:
    moderation.unban_user(_user(), stream_id, user_id)
    return Response(status_code=204, body="")


@app.route("/admin/audit", methods=["GET"])
@handles_errors
def admin_audit() -> dict:
    return moderation.list_audit(_user(), _query(), *paging(app.current_request))


@app.route("/streams/{stream_id}/audit", methods=["GET"])
@handles_errors
def streams_audit(stream_id: str) -> dict:
    return moderation.list_audit(_user(), _query(), *paging(app.current_request),
                                 stream_id=parse_uuid(stream_id, "Stream"))


def _query() -> dict:
    return app.current_request.query_params or {}


# ---------------------------------------------------------------- signed webhooks
# (chalicelib/webhooks.py: events, signing, delivery; chalicelib/api/webhooks.py: these routes)

@app.route("/streams/{stream_id}/webhooks", methods=["POST"])
@handles_errors
def webhooks_create(stream_id: str) -> Response:
    body = webhooks.create_endpoint(_user(), stream_id, json_body(app.current_request))
    return Response(body=body, status_code=201)


@app.route("/streams/{stream_id}/webhooks", methods=["GET"])
@handles_errors
def webhooks_list(stream_id: str) -> dict:
    return webhooks.list_endpoints(_user(), stream_id, *paging(app.current_request))


@app.route("/streams/{stream_id}/webhooks/{webhook_id}", methods=["DELETE"])
@handles_errors
def webhooks_delete(stream_id: str, webhook_id: str) -> Response:
    webhooks.delete_endpoint(_user(), stream_id, webhook_id)
    return Response(status_code=204, body="")


@app.route("/streams/{stream_id}/webhooks/{webhook_id}/deliveries", methods=["GET"])
@handles_errors
def webhooks_deliveries(stream_id: str, webhook_id: str) -> dict:
    return webhooks.list_deliveries(_user(), stream_id, webhook_id, *paging(app.current_request))


@app.route("/streams/{stream_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/replay", methods=["POST"])
@handles_errors
def webhooks_replay(stream_id: str, webhook_id: str, delivery_id: str) -> Response:
    body = webhooks.replay_delivery(_user(), stream_id, webhook_id, delivery_id)
    return Response(body=body, status_code=202)


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
    return observability.uploads_started(start.handle_event(json_body(request)))


# ---------------------------------------------------------------- pipeline steps

@app.lambda_function(name="pipeline_dedup")
def pipeline_dedup(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import dedup
    return dedup.run(event, context)


@app.lambda_function(name="pipeline_mark_duplicate")
def pipeline_mark_duplicate(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import finalize
    return finalize.mark_duplicate(event)


@app.lambda_function(name="pipeline_transcode")
def pipeline_transcode(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import transcode
    return transcode.run(event, context)


@app.lambda_function(name="pipeline_transcode_plan")
def pipeline_transcode_plan(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import transcode
    return transcode.plan(event)


@app.lambda_function(name="pipeline_transcode_chunk")
def pipeline_transcode_chunk(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import transcode
    return transcode.encode_part(event, context)


@app.lambda_function(name="pipeline_transcode_stitch")
def pipeline_transcode_stitch(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import transcode
    return transcode.stitch(event, context)


@app.lambda_function(name="pipeline_transcribe")
def pipeline_transcribe(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import transcribe
    return transcribe.run(event, context)


@app.lambda_function(name="pipeline_embed")
def pipeline_embed(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import embed
    return embed.run(event, context)


@app.lambda_function(name="embed_query")
def embed_query(event: dict, context: Any) -> dict:
    from chalicelib.ml import embed
    return {"model": embed.MODEL_NAME, "vectors": embed.get_encoder().encode(event["texts"][:32]).tolist()}


@app.lambda_function(name="thumbnail_custom")
def thumbnail_custom(event: dict, context: Any) -> dict:
    from chalicelib.media import custom_thumbnail
    return custom_thumbnail.convert(event)


@app.lambda_function(name="ingest_url")
def ingest_url(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import ingest
    return ingest.run(event)


@app.lambda_function(name="pipeline_finalize")
def pipeline_finalize(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import finalize
    return finalize.finalize(event)


@app.lambda_function(name="pipeline_fallbacks")
def pipeline_fallbacks(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import finalize
    return finalize.fallbacks(event)


@app.lambda_function(name="pipeline_mark_failed")
def pipeline_mark_failed(event: dict, context: Any) -> dict:
    from chalicelib.pipeline import finalize
    return finalize.mark_failed(event)


# ---------------------------------------------------------------- clip extraction steps
# (stepfunctions/clips.asl.json)

@app.lambda_function(name="clips_generate_moments")
def clips_generate_moments(event: dict, context: Any) -> dict:
    from chalicelib.moments import steps
    return steps.generate(event)


@app.lambda_function(name="clips_extract_clip")
def clips_extract_clip(event: dict, context: Any) -> dict:
    from chalicelib.moments import steps
    return steps.extract(event)


@app.lambda_function(name="clips_finish_extraction")
def clips_finish_extraction(event: dict, context: Any) -> dict:
    from chalicelib.moments import steps
    return steps.finish(event)


@app.lambda_function(name="clips_mark_extraction_failed")
def clips_mark_extraction_failed(event: dict, context: Any) -> dict:
    from chalicelib.moments import steps
    return steps.mark_failed(event)


# ---------------------------------------------------------------- live updates (WebSocket API)
# A signed-in client follows a stream or a video (chalicelib/live.py has the protocol).

app.experimental_feature_flags.update(["WEBSOCKETS"])


@app.on_ws_connect()
def live_connect(event: Any) -> dict:
    from chalicelib import live
    return live.connect(event.connection_id, event.to_dict().get("queryStringParameters"))


@app.on_ws_message()
def live_message(event: Any) -> None:
    from chalicelib import live
    live.receive(event.connection_id, event.to_dict().get("body"))


@app.on_ws_disconnect()
def live_disconnect(event: Any) -> None:
    from chalicelib import live
    live.disconnect(event.connection_id)
# ---------------------------------------------------------------- webhook delivery
# (stepfunctions/webhooks.asl.json: one execution per delivery, retried for ~68 h)

@app.lambda_function(name="webhook_deliver")
def webhook_deliver(event: dict, context: Any) -> dict:
    from chalicelib import webhooks as signed_webhooks
    return signed_webhooks.deliver(event)


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
