"""GET /openapi.json: an OpenAPI 3.0 document of every route the app serves.

Paths and methods come from `app.routes`, so a new route is documented the
moment it exists (a test holds us to that); the request and response schemas
of the main routes are added from OPERATIONS below. Routes without an entry
still get their path parameters, bearer security and the error responses.
Security, 401/403 and 429 follow each route's declaration in
chalicelib.api.routes (who may call it, its rate-limit group).
"""
from __future__ import annotations

import re
from typing import Any

from chalicelib import failures, glossary, webhooks
from chalicelib.api import routes
from chalicelib.config import MAX_UPLOAD_BYTES

TITLE = "Clipstream API"
VERSION = "1.0.0"


_PARAM = re.compile(r"{([^}]+)}")


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict, required: tuple[str, ...] = (), extra: bool = True) -> dict:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    if not extra:
        schema["additionalProperties"] = False
    return schema


def _arr(items: dict) -> dict:
    return {"type": "array", "items": items}


_S = {"type": "string"}
_UUID = {"type": "string", "format": "uuid"}
_TIME = {"type": "string", "format": "date-time"}
_INT = {"type": "integer"}
# A client's vector clock (chalicelib.sync.crdt bounds; counts above the server's are a 400 too;
# actor ids are 1 to 101 characters: propertyNames, which OpenAPI 3.0 tools may ignore).
_CLOCK = {"type": "object", "description": "Actor ids (1 to 101 characters) to counts", "maxProperties": 64,
          "propertyNames": {"minLength": 1, "maxLength": 101},
          "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_ROLE = {"type": "string", "enum": ["admin", "creator", "viewer"]}
# What a failed video tells its viewers (chalicelib/failures.py); the detail is
# failure_detail, present for platform admins only.
_FAILURE = {"type": "string", "enum": list(failures.PUBLIC_REASONS)}


def _nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


# Text: Postgres stores no NUL (U+0000), so no string of a request holds one; "nonblank" text has a
# character other than whitespace, "visible" text one other than whitespace and control characters
# (titles and tags lose their control characters and surrounding blanks).
_NO_NUL = r"^[^\x00]*$"
_NONBLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
_VISIBLE = r"^[^\x00]*[^\s\x00-\x1f\x7f][^\x00]*$"


def _text(max_length: int | None = None, *, pattern: str = _NO_NUL, min_length: int = 0) -> dict:
    schema: dict[str, Any] = {"type": "string", "pattern": pattern}
    if min_length:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


def _one_of_required(*names: str) -> list[dict]:
    """anyOf branches: at least one of names is present."""
    return [{"required": [name]} for name in names]


_TAG = _text(40, pattern=_VISIBLE)
_TAGS = {"type": "array", "maxItems": 20, "items": _TAG}
_TITLE = _text(200, pattern=_VISIBLE)
_NOTE = _nullable(_text(1000))
# chalicelib.api.invites bounds
_INVITE_FIELDS = {"role": {"type": "string", "enum": ["creator", "viewer"]},
                  "expires_in_hours": {"type": "number", "exclusiveMinimum": True, "minimum": 0,
                                       "maximum": 24 * 365 * 10},
                  "expires_at": _nullable(_TIME),
                  "usage_limit": _nullable({"type": "integer", "minimum": 1, "maximum": 1_000_000})}
# An upload's filename ends in .mp4, .avi or .mov (any case) and its content_type matches it.
_UPLOAD_KINDS = {"mp4": ["video/mp4"], "mov": ["video/quicktime", "video/mov"],
                 "avi": ["video/x-msvideo", "video/avi", "video/msvideo", "video/vnd.avi"]}


_WEBHOOK_EVENTS = webhooks.EVENT_TYPES
_WEBHOOK_DELIVERY_TEXT = (
    "Each event the endpoint asked for is sent as `POST <url>` with `Content-Type: application/json` and a"
    " WebhookEvent body (components/schemas/WebhookEvent), retried with exponential backoff for about 68 hours"
    " until a 2xx answer within 10 s (redirects are not followed). Every attempt carries:"
    " `Clipstream-Webhook-Id` (the event id, the same on every attempt and replay: ignore repeats);"
    " `Clipstream-Webhook-Timestamp` (the attempt's time, seconds since the epoch);"
    " `Clipstream-Webhook-Signature`: `v1=` + hex HMAC-SHA256 keyed with the endpoint's secret (the whole"
    " `whsec_...` string) of `{timestamp}.{raw body}`; several space-separated signatures may appear (accept"
    " one that matches). Verify the raw bytes in constant time and refuse timestamps more than 5 minutes"
    " from your clock (README, \"Signed webhooks\", has a verifier).")


SCHEMAS: dict[str, dict] = {
    "Error": _obj({"error": _S, "details": _arr(_S)}, ("error",)),
    "User": _obj({"id": _UUID, "email": _S, "name": _S, "avatar": _nullable(_S)}),
    # The Google ID token as id_token (or credential, as Google Identity Services names it).
    "AuthVerifyRequest": {**_obj({"id_token": _S, "credential": _S}),
                          "anyOf": [{"required": ["id_token"], "properties": {"id_token": {"minLength": 1}}},
                                    {"required": ["credential"], "properties": {"credential": {"minLength": 1}}}]},
    "AuthSession": _obj({"user": _ref("User"), "app_token": _S, "expires_at": _TIME,
                         "refresh_token": _S}, ("app_token", "expires_at")),
    "RefreshRequest": _obj({"refresh_token": {"type": "string", "minLength": 1}}, ("refresh_token",)),
    "StreamCreate": _obj({"name": _text(100, pattern=_NONBLANK),
                          "description": _nullable(_text(2000)),
                          "settings": {"type": "object", "description": "At most 16 KiB of JSON"}}, ("name",)),
    "StreamUpdate": {**_obj({"name": _text(100, pattern=_NONBLANK),
                             "description": _nullable(_text(2000)),
                             "settings": {"type": "object", "description": "At most 16 KiB of JSON; replaced whole"}}),
                     "anyOf": _one_of_required("name", "description", "settings")},
    "GlossaryUpdate": _obj({
        "terms": {**_arr({"oneOf": [_text(40, pattern=glossary.TERM_PATTERN),
                                    _obj({"term": _text(40, pattern=glossary.TERM_PATTERN),
                                          "variants": {**_arr(_text(40, pattern=glossary.TERM_PATTERN)), "maxItems": 8}},
                                         ("term",), extra=False)]}),
                  "maxItems": 200,
                  "description": "Spellings to keep; an object's variants are rewritten to its term in"
                                 " transcripts (compound and number forms are added: \"head shot\", \"dust two\")."
                                 " Terms are unique case-insensitively; a variant belongs to one term."},
        "include_default": {**_BOOL, "description": "Add the platform's gaming glossary (default true)"}},
        ("terms",), extra=False),
    "Glossary": _obj({"stream_id": _UUID,
                      "terms": _arr(_obj({"term": _S, "variants": _arr(_S)})),
                      "include_default": _BOOL, "default_terms": _arr(_S),
                      "limits": _obj({"terms": _INT, "term_chars": _INT, "variants_per_term": _INT}),
                      "updated_at": _nullable(_TIME)}),
    "Stream": _obj({"id": _UUID, "name": _S, "description": _S, "owner_id": _UUID,
                    "owner": _ref("User"), "settings": {"type": "object"}, "user_role": _ROLE,
                    "member_count": _INT, "created_at": _TIME}),
    "StreamList": _obj({"streams": _arr(_obj({"id": _UUID, "name": _S, "description": _S,
                                              "role": _ROLE, "member_count": _INT,
                                              "video_count": _INT, "created_at": _TIME})),
                        "page": _INT, "limit": _INT, "total": _INT}, ("streams",)),
    "Member": _obj({"user_id": _UUID, "name": _S, "email": _S, "avatar": _nullable(_S),
                    "role": _ROLE, "joined_at": _TIME}),
    "MemberUpdate": _obj({"role": _ROLE}, ("role",)),
    # expires_in_hours or expires_at (null: never), not both; expires_at must be in the future.
    "InviteCreate": {**_obj(_INVITE_FIELDS, ("role",)), "not": {"required": ["expires_in_hours", "expires_at"]}},
    "InviteUpdate": {**_obj(_INVITE_FIELDS), "not": {"required": ["expires_in_hours", "expires_at"]},
                     "anyOf": _one_of_required(*_INVITE_FIELDS)},
    "Invite": _obj({"code": _S, "role": _S, "expires_at": _nullable(_TIME),
                    "usage_limit": _nullable(_INT), "created_at": _TIME}),
    "UploadRequest": {**_obj({"filename": _text(255, pattern=_VISIBLE),
                              "title": _nullable({**_TITLE, "description": "Defaults to the filename"}),
                              "size_bytes": {"type": "integer", "minimum": 1, "maximum": MAX_UPLOAD_BYTES,
                                             "description": "Above the maximum, or over the uploader's"
                                                            " storage quota: 413"},
                              "content_type": _S,
                              "upload": {"type": "string", "enum": ["single", "multipart"], "default": "single",
                                         "description": "multipart: a resumable upload in parts (files above 8 MiB)"},
                              "part_size_bytes": {"type": "integer", "minimum": 5 * 1024**2, "maximum": 5 * 1024**3,
                                                  "description": "multipart only; default 16 MiB"}},
                             ("filename", "size_bytes", "content_type")),
                      # A multipart upload is for files above 8 MiB.
                      "not": {"required": ["upload"], "properties": {
                          "upload": {"enum": ["multipart"]}, "size_bytes": {"maximum": 8 * 1024**2}}},
                      "anyOf": [{"properties": {
                          "filename": {"pattern": "[.]" + "".join(f"[{c.lower()}{c.upper()}]" for c in ext) + "$"},
                          "content_type": {"enum": types}}} for ext, types in _UPLOAD_KINDS.items()]},
    # A video fetched from a URL by the ingest_url function instead of uploaded (README, "Ingest from a URL").
    "IngestRequest": _obj({"source_url": {"type": "string", "minLength": 1, "maxLength": 2048,
                                          "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^\\s]+$",
                                          "description": "https (http only where OUTBOUND_ALLOW_HTTP says so); "
                                                         "a host resolving to public addresses only, else 400"},
                           "title": _nullable({**_TITLE, "description": "Defaults to the URL's file name"})},
                          ("source_url",), extra=False),
    "UploadCreated": _obj({"id": _UUID, "processing_index": _INT, "upload_url": _S,
                           "status": _S, "source_url": _S,
                           "upload_method": {"type": "string", "enum": ["PUT", "MULTIPART"]},
                           "upload_headers": {"type": "object"},
                           "upload": _obj({"url": _S, "fields": {"type": "object"}}),
                           "upload_id": _S, "size_bytes": _INT, "part_size": _INT, "part_count": _INT,
                           "parts": _arr(_obj({"part_number": _INT, "size": _INT, "method": _S, "url": _S,
                                               "headers": {"type": "object"}})),
                           "received": _arr(_obj({"part_number": _INT, "size": _INT, "etag": _S})),
                           "expires_at": _TIME, "max_size": _S}, ("id", "processing_index")),
    "Catalog": _obj({"videos": _arr(_obj({
        "id": _UUID, "stream_id": _UUID, "title": _S, "description": _S, "duration": _nullable(_NUM),
        "processing_index": _INT, "status": _S, "category": _nullable(_S), "tags": _arr(_S),
        "featured": _BOOL, "uploaded_at": _TIME, "uploaded_by": _UUID, "thumbnail_url": _S})),
        "pagination": _obj({"page": _INT, "limit": _INT, "total": _INT, "totalPages": _INT},
                           ("page", "limit", "total", "totalPages"))}, ("videos", "pagination")),
    "MultipartComplete": _obj({
        "upload_id": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": "\\S"},
        "parts": {**_arr(_obj({"part_number": {"type": "integer", "minimum": 1, "maximum": 10_000},
                               "etag": {"type": "string", "minLength": 1}}, ("part_number", "etag"))),
                  "minItems": 1, "maxItems": 10_000,
                  "description": "every part of the upload once, in ascending part_number order"}},
        ("upload_id", "parts")),
    "UploadCompleted": _obj({"id": _UUID, "processing_index": _INT, "upload": _S, "size_bytes": _INT},
                            ("id", "processing_index")),
    "VideoSummary": _obj({"id": _UUID, "title": _S, "duration": _nullable(_NUM),
                          "processing_index": {"type": "integer", "minimum": -1, "maximum": 4},
                          "status": _S, "uploaded_at": _TIME, "uploaded_by": _UUID,
                          "thumbnail_url": _S},
                         ("id", "title", "processing_index", "uploaded_at", "uploaded_by",
                          "thumbnail_url")),
    "VideoList": _obj({"videos": _arr(_ref("VideoSummary")), "page": _INT, "limit": _INT,
                       "total": _INT}, ("videos",)),
    "Video": _obj({
        "id": _UUID, "stream_id": _UUID, "title": _S, "description": _S, "tags": _arr(_S),
        "status": {"type": "string",
                   "enum": ["queued", "running", "complete", "duplicate", "failed"]},
        "processing_index": _INT, "failure_reason": _nullable(_FAILURE),
        "failure_detail": _nullable(_S),
        "duplicate_of": _nullable(_UUID), "duration": _nullable(_NUM),
        "width": _nullable(_INT), "height": _nullable(_INT), "fps": _nullable(_NUM),
        "codecs": _obj({"video": _nullable(_S), "audio": _nullable(_S)}),
        "size": _INT, "bitrates": _arr(_INT), "filename": _S, "uploaded_by": _UUID,
        "uploaded_at": _TIME, "processed_at": _nullable(_TIME), "updated_at": _TIME,
        "thumbnail_url": _S, "total_likes": _INT, "liked": _BOOL},
        ("id", "stream_id", "title", "description", "tags", "status", "processing_index",
         "total_likes")),
    "VideoUpdate": {**_obj({"title": _TITLE,
                            "description": _nullable(_text(5000)),
                            "tags": _TAGS,
                            "category": _nullable(_text(50)),
                            "featured": _BOOL,
                            "vector_clock": _nullable(_CLOCK),
                            "version": _nullable({"type": "integer", "minimum": 1, "maximum": 2**31 - 1})},
                           extra=False),
                    "anyOf": _one_of_required("title", "description", "tags", "category", "featured")},
    "StreamUrls": _obj({"hls_url": _S, "dash_url": _nullable(_S), "bitrates": _arr(_INT)},
                       ("hls_url", "bitrates")),
    "LikeState": _obj({"liked": _BOOL, "total_likes": _INT}, ("liked", "total_likes")),
    # ShareRequest's maximum follows SHARE_MAX_TTL_SECONDS: see _share_request().
    "ShareLink": _obj({"id": _UUID, "code": _S, "share_url": _S, "expires_at": _TIME, "created_at": _TIME},
                      ("id", "share_url", "expires_at")),
    "ShareStats": _obj({"total_shares": _INT, "active_shares": _INT, "shares": _arr(_obj({
        "id": _UUID, "created_by": _UUID, "mine": _BOOL, "code": _nullable(_S), "share_url": _nullable(_S),
        "created_at": _TIME, "expires_at": _TIME, "revoked_at": _nullable(_TIME),
        "status": {"type": "string", "enum": ["active", "expired", "revoked", "creator_without_access"]}}))},
                       ("total_shares", "active_shares", "shares")),
    "SharedVideo": _obj({"id": _UUID, "title": _S, "description": _S, "duration": _nullable(_NUM),
                         "processing_index": _INT, "thumbnail_url": _nullable(_S),
                         "stream": _nullable(_obj({"hls_url": _S, "bitrates": _arr(_INT)})),
                         "expires_at": _TIME}, ("id", "title", "thumbnail_url", "stream")),
    "ThumbnailUploadRequest": _obj({"content_type": {"type": "string", "enum": ["image/jpeg", "image/png",
                                                                                  "image/webp"]},
                                     "size_bytes": {"type": "integer", "minimum": 1, "maximum": 5 * 1024 * 1024}},
                                    ("content_type", "size_bytes"), extra=False),
    "ThumbnailUpload": _obj({"upload_id": _UUID, "upload_url": _S, "upload_method": _S,
                             "upload_headers": {"type": "object", "additionalProperties": _S},
                             "expires_at": _TIME, "max_size": _S, "max_pixels": _INT, "max_side": _INT},
                            ("upload_id", "upload_url", "upload_headers")),
    "ThumbnailConfirm": _obj({"upload_id": _UUID}, ("upload_id",), extra=False),
    "ThumbnailSet": _obj({"id": _UUID, "custom_thumbnail": _BOOL, "width": _INT, "height": _INT,
                          "thumbnail_url": _S}, ("id", "custom_thumbnail", "thumbnail_url")),
    "PrefixUsage": _obj({"objects": _INT, "bytes": _INT, "human": _S}),
    "StorageUsage": _obj({"total_space": _S, "used_space": _S, "free_space": _S,
                          "video_count": _INT, "total_bytes": _INT, "used_bytes": _INT,
                          "free_bytes": _INT, "object_count": _INT,
                          "by_prefix": {"type": "object",
                                        "additionalProperties": _ref("PrefixUsage")}},
                         ("total_space", "used_space", "free_space", "video_count", "by_prefix")),
    "ProcessingStatus": _obj({"video_id": _UUID, "processing_index": _INT, "stage": _nullable(_S),
                              "status": _S, "failure_reason": _nullable(_FAILURE),
                              "failure_detail": _nullable(_S),
                              "history": _arr({"type": "object"})}),
    # video_ids (1 to 100), or video_id alone.
    "RetryRequest": {**_obj({"video_id": _nullable(_UUID),
                             "video_ids": _nullable({"type": "array", "minItems": 1, "maxItems": 100,
                                                     "items": _UUID})}),
                     "anyOf": [{"required": ["video_ids"], "properties": {"video_ids": {"type": "array"}}},
                               {"required": ["video_id"], "properties": {"video_id": {"type": "string"},
                                                                         "video_ids": {"enum": [None]}}}]},
    "Health": _obj({"status": _S, "database": _S, "storage": _S, "issues": _arr(_S)}),
    # moments, clips and sync
    "Moment": _obj({"id": _UUID, "video_id": _UUID, "start_time": _NUM, "end_time": _NUM,
                    "duration": _NUM, "title": _S, "score": _NUM, "reason": _S, "refined": _BOOL,
                    "features": {"type": "object"}, "clip_status": _S, "clip_url": _nullable(_S)},
                   ("id", "start_time", "end_time", "title", "score", "reason")),
    "MomentList": _obj({"video_id": _UUID, "status": _S, "moments": _arr(_ref("Moment"))},
                       ("video_id", "moments")),
    "MomentsStarted": _obj({"video_id": _UUID, "status": _S, "execution": _S, "status_url": _S},
                           ("video_id", "status")),
    "RefineRequest": _obj({"start_time": {"type": "number", "minimum": 0},
                           "end_time": {"type": "number", "minimum": 0}}, extra=False),
    "Refined": _obj({"moment": _ref("Moment"), "adjustments": _arr(_S), "previous": {"type": "object"},
                     "status": _S}, ("moment", "adjustments")),
    "ClipExtractionStatus": _obj({"video_id": _UUID, "status": _S, "error": _nullable(_S),
                                  "total": _INT, "pending": _INT, "extracting": _INT, "ready": _INT,
                                  "failed": _INT, "clips": _arr({"type": "object"})},
                                 ("video_id", "status", "total", "clips")),
    # value (tag / tags for the tag operations) is checked like the field in PUT /videos/{video_id}.
    "SyncOperation": {**_obj({"id": _nullable({"type": "string", "minLength": 1, "maxLength": 100}),
                              "type": {"type": "string", "enum": ["update_title", "update_description",
                                                                  "update_category", "update_featured",
                                                                  "add_tag", "remove_tag", "set_tags"]},
                              "value": {}, "tag": _TAG, "tags": _TAGS}, ("type",)),
                      "anyOf": [
                          {"properties": {"type": {"enum": ["update_title"]}, "value": _TITLE}, "required": ["value"]},
                          {"properties": {"type": {"enum": ["update_description"]}, "value": _nullable(_text(5000))},
                           "required": ["value"]},
                          {"properties": {"type": {"enum": ["update_category"]}, "value": _nullable(_text(50))},
                           "required": ["value"]},
                          {"properties": {"type": {"enum": ["update_featured"]}, "value": _BOOL},
                           "required": ["value"]},
                          {"properties": {"type": {"enum": ["add_tag", "remove_tag"]}}, "required": ["tag"]},
                          {"properties": {"type": {"enum": ["add_tag", "remove_tag"]}, "value": _TAG},
                           "required": ["value"], "not": {"required": ["tag"]}},
                          {"properties": {"type": {"enum": ["set_tags"]}}, "required": ["tags"]},
                          {"properties": {"type": {"enum": ["set_tags"]}, "value": _TAGS},
                           "required": ["value"], "not": {"required": ["tags"]}}]},
    "SyncRequest": _obj({"video_id": _UUID,
                         "client_vector_clock": _CLOCK,
                         "client_version": _nullable({"type": "integer", "minimum": 1, "maximum": 2**31 - 1}),
                         "device_id": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                         "operations": {"type": "array", "maxItems": 100, "items": _ref("SyncOperation")}},
                        ("video_id",), extra=False),
    "SyncResult": _obj({"video_id": _UUID, "actor": _S, "sync_type": _S, "action": _S, "applied": _INT,
                        "duplicates": _INT, "conflicts_resolved": _INT, "merged_video": _ref("Video"),
                        "server_vector_clock": {"type": "object"}, "server_version": _INT},
                       ("sync_type", "action", "merged_video", "conflicts_resolved",
                        "server_vector_clock", "server_version")),
    "SyncLog": _obj({"video_id": _UUID, "since": _nullable(_TIME), "operations": _arr({"type": "object"}),
                     "has_more": _BOOL, "server_vector_clock": {"type": "object"}, "server_version": _INT},
                    ("operations", "server_vector_clock", "server_version")),
    # analytics, moderation and rate limits
    "ViewReport": _obj({"watch_seconds": {"type": "number", "minimum": 0, "maximum": 86400}}, extra=False),
    "ViewRecorded": _obj({"video_id": _UUID, "counted": _BOOL, "watch_seconds": _NUM,
                          "window_start": _TIME}, ("video_id", "counted", "watch_seconds")),
    "AnalyticsDay": _obj({"date": {"type": "string", "format": "date"}, "views": _INT,
                          "unique_viewers": _INT, "watch_seconds": _NUM}),
    "VideoAnalytics": _obj({"video_id": _UUID, "days": _INT, "views": _INT, "unique_viewers": _INT,
                            "watch_seconds": _NUM, "average_watch_seconds": _NUM,
                            "average_completion": _nullable(_NUM), "duration": _nullable(_NUM),
                            "by_day": _arr({"$ref": "#/components/schemas/AnalyticsDay"})},
                           ("views", "unique_viewers", "watch_seconds", "by_day")),
    "ReportRequest": _obj({"reason": {"type": "string", "enum": ["spam", "harassment", "hate", "violence",
                                                                 "sexual", "copyright", "cheating", "other"]},
                           "details": _NOTE}, ("reason",), extra=False),
    "Report": _obj({"id": _UUID, "video_id": _UUID, "stream_id": _UUID, "video_title": _S,
                    # reporter_id/_email: left out for the stream admins (GET /streams/{id}/reports)
                    "video_hidden": _BOOL, "reporter_id": _UUID, "reporter_email": _S, "reason": _S,
                    "details": _S,
                    "status": {"type": "string", "enum": ["pending", "resolved", "dismissed"]},
                    "created_at": _TIME, "resolved_at": _nullable(_TIME), "resolved_by": _nullable(_UUID),
                    "resolution": _nullable(_S), "note": _S}, ("id", "video_id", "reason", "status")),
    "ReportList": _obj({"reports": _arr({"$ref": "#/components/schemas/Report"}), "status": _S,
                        "page": _INT, "limit": _INT, "total": _INT}, ("reports",)),
    "ResolveRequest": _obj({"note": _NOTE, "hide_video": _BOOL}, extra=False),
    "DismissRequest": _obj({"note": _NOTE}, extra=False),
    "HideRequest": _obj({"reason": _NOTE}, extra=False),
    "Visibility": _obj({"video_id": _UUID, "hidden": _BOOL, "hidden_at": _nullable(_TIME),
                        "hidden_by": _nullable(_UUID),
                        "level": _nullable({"type": "string", "enum": ["platform", "stream"]}),
                        "reason": _nullable(_S)}, ("video_id", "hidden")),
    "BanRequest": _obj({"user_id": _UUID, "reason": _NOTE}, ("user_id",),
                       extra=False),
    "Ban": _obj({"stream_id": _UUID, "user_id": _UUID, "reason": _S, "banned_by": _nullable(_UUID),
                 "created_at": _TIME}, ("stream_id", "user_id")),
    "AuditList": _obj({"entries": _arr(_obj({
        "id": _INT, "at": _TIME, "actor": _obj({"id": _nullable(_UUID), "email": _S}), "action": _S,
        "target": _obj({"type": _S, "id": _S}), "stream_id": _nullable(_UUID), "details": {"type": "object"}})),
        "page": _INT, "limit": _INT, "total": _INT}, ("entries",)),
    # Signed webhooks (chalicelib/webhooks.py, README "Signed webhooks").
    "WebhookCreate": _obj({
        "url": {"type": "string", "minLength": 1, "maxLength": 2048,
                "description": "https; no credentials; a host resolving to public addresses only"
                               " (checked now and at every attempt), else 400"},
        "events": {**_arr({"type": "string", "enum": list(_WEBHOOK_EVENTS)}), "minItems": 1,
                   "description": "the events this endpoint receives (repeats are ignored)"}},
        ("url", "events"), extra=False),
    "Webhook": _obj({"id": _UUID, "stream_id": _UUID, "url": _S,
                     "events": _arr({"type": "string", "enum": list(_WEBHOOK_EVENTS)}), "created_at": _TIME},
                    ("id", "stream_id", "url", "events", "created_at")),
    "WebhookCreated": _obj({"id": _UUID, "stream_id": _UUID, "url": _S,
                            "events": _arr({"type": "string", "enum": list(_WEBHOOK_EVENTS)}),
                            "created_at": _TIME,
                            "secret": {"type": "string", "pattern": "^whsec_",
                                       "description": "the HMAC key of the signatures: shown in this answer"
                                                      " only, never again"}},
                           ("id", "stream_id", "url", "events", "created_at", "secret")),
    "WebhookList": _obj({"webhooks": _arr(_ref("Webhook")), "page": _INT, "limit": _INT, "total": _INT},
                        ("webhooks", "page", "limit", "total")),
    "WebhookDelivery": _obj({
        "id": _UUID, "event_id": {**_UUID, "description": "Clipstream-Webhook-Id: the same on every attempt"
                                                          " and replay"},
        "event_type": {"type": "string", "enum": list(_WEBHOOK_EVENTS)},
        "status": {"type": "string", "enum": ["pending", "succeeded", "failed"]},
        "replay_of": _nullable(_UUID), "created_at": _TIME, "finished_at": _nullable(_TIME),
        "attempts": _arr(_obj({"at": _TIME,
                               "status_code": _nullable({**_INT, "description": "null: no HTTP answer"}),
                               "error": _nullable(_S), "duration_ms": _INT},
                              ("at", "status_code", "error", "duration_ms")))},
        ("id", "event_id", "event_type", "status", "replay_of", "created_at", "finished_at", "attempts")),
    "WebhookDeliveryList": _obj({"deliveries": _arr(_ref("WebhookDelivery")), "page": _INT, "limit": _INT,
                                 "total": _INT}, ("deliveries", "page", "limit", "total")),
    # The body of every delivery (not an API answer: what the receiver gets, signed).
    "WebhookEvent": _obj({
        "id": {**_UUID, "description": "the event id (also the Clipstream-Webhook-Id header)"},
        "type": {"type": "string", "enum": list(_WEBHOOK_EVENTS)}, "stream_id": _UUID, "created_at": _TIME,
        "data": {"type": "object", "description": (
            "video.*: video_id, stream_id, title, status (complete, failed, duplicate, deleted); video.ready:"
            " duration_s; video.failed: reason (public), failed_stage; video.duplicate: duplicate_of (null"
            " unless the original is in the same stream), similarity. clip.*: moment_id, video_id, stream_id,"
            " title, start_time, end_time, status (ready, failed); clip.ready: duration, clip_url;"
            " clip.failed: reason (public)")}},
        ("id", "type", "stream_id", "created_at", "data")),
}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_THUMBNAIL = {"description": "Redirect to a presigned GET of the thumbnail (processing or duplicate overlay"
                              " while not complete), whatever the Accept header; storage serves image/jpeg",
              "headers": {"Location": {"schema": _S}, "ETag": {"schema": _S}, "Cache-Control": {"schema": _S}}}
_REDIRECT = {"description": "Redirect to a short-lived presigned URL",
             "headers": {"Location": {"schema": _S}, "Cache-Control": {"schema": _S}}}
_NO_CONTENT = {"description": "Deleted"}
_PLAYLIST = {"description": "An HLS playlist",
             "content": {"application/vnd.apple.mpegurl": {"schema": {"type": "string"}}}}
_VTT = {"description": "WebVTT", "content": {"text/vtt": {"schema": {"type": "string"}}}}
_TOKEN = {"name": "token", "in": "query", "schema": {"type": "string"},
          "description": "Playback token"}
_UPLOAD_ID = {"name": "upload_id", "in": "query", "schema": {"type": "string"},
              "description": "the upload_id POST /streams/{stream_id}/videos returned"}
_PAGED = [{"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100_000}},
          {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                      "maximum": 100}}]
_DAYS = {"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 365}}
_REPORT_FILTERS = [{"name": "status", "in": "query",
                    "schema": {"type": "string", "enum": ["pending", "resolved", "dismissed", "all"]}},
                   {"name": "video_id", "in": "query", "schema": _UUID},
                   {"name": "reason", "in": "query", "schema": _text(100, min_length=1)}]
_AUDIT_FILTERS = [{"name": "action", "in": "query", "schema": _text(100, min_length=1)},
                  {"name": "actor_id", "in": "query", "schema": _UUID},
                  {"name": "target_id", "in": "query", "schema": _text(100, min_length=1)}]
_Q = {"name": "q", "in": "query", "required": True, "schema": _text(200, pattern=_NONBLANK)}

# (method, path) → summary, request body schema, success status and response.
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/"): {"summary": "Health check", "ok": ("200", _json(_ref("Health")))},
    ("GET", "/health"): {"summary": "Health check", "ok": ("200", _json(_ref("Health")))},
    ("POST", "/auth/verify"): {"also": ("401",), "summary": "Verify a Google ID token and sign in",
                               "body": _ref("AuthVerifyRequest"),
                               "ok": ("200", _json(_ref("AuthSession")))},
    ("GET", "/auth/user"): {"summary": "The current user",
                            "ok": ("200", _json(_ref("User")))},
    ("POST", "/auth/refresh"): {"also": ("401",), "summary": "Rotate a refresh token for a new app token",
                                "body": _ref("RefreshRequest"),
                                "ok": ("200", _json(_ref("AuthSession")))},
    ("POST", "/auth/logout"): {"also": ("401",), "summary": "Revoke a refresh token", "body": _ref("RefreshRequest")},
    ("GET", "/streams"): {"summary": "The caller's streams", "query": _PAGED,
                          "ok": ("200", _json(_ref("StreamList")))},
    ("POST", "/streams"): {"summary": "Create a stream", "body": _ref("StreamCreate"),
                           "ok": ("201", _json(_ref("Stream"), "Created"))},
    ("GET", "/streams/{stream_id}"): {"summary": "Stream details",
                                      "ok": ("200", _json(_ref("Stream")))},
    ("PUT", "/streams/{stream_id}"): {"summary": "Update a stream (admins)",
                                      "body": _ref("StreamUpdate"),
                                      "ok": ("200", _json(_ref("Stream")))},
    ("DELETE", "/streams/{stream_id}"): {"summary": "Delete a stream and its videos (admins)",
                                         "ok": ("204", _NO_CONTENT)},
    ("GET", "/streams/{stream_id}/members"): {"summary": "Stream members", "query": _PAGED},
    ("PUT", "/streams/{stream_id}/members/{user_id}"): {"also": ("409",), 
        "summary": "Change a member's role (admins)", "body": _ref("MemberUpdate"),
        "ok": ("200", _json(_ref("Member")))},
    ("DELETE", "/streams/{stream_id}/members/{user_id}"): {"summary": "Remove a member",
                                                           "ok": ("204", _NO_CONTENT)},
    ("GET", "/streams/{stream_id}/glossary"): {"summary": "The stream's game vocabulary for transcription",
                                               "ok": ("200", _json(_ref("Glossary")))},
    ("PUT", "/streams/{stream_id}/glossary"): {"summary": "Replace the stream's game vocabulary (admins)",
                                               "body": _ref("GlossaryUpdate"),
                                               "ok": ("200", _json(_ref("Glossary")))},
    ("GET", "/streams/{stream_id}/invites"): {"summary": "Active invites (admins)", "query": _PAGED},
    ("POST", "/streams/{stream_id}/invites"): {"summary": "Create an invite (admins)",
                                               "body": _ref("InviteCreate"),
                                               "ok": ("201", _json(_ref("Invite"), "Created"))},
    ("GET", "/streams/{stream_id}/invites/{code}"): {"summary": "Invite details (admins)",
                                                     "ok": ("200", _json(_ref("Invite")))},
    ("GET", "/invites/{code}"): {"summary": "Public invite information"},
    ("POST", "/invites/{code}/join"): {"summary": "Join a stream with an invite code",
                                       "optional_body": True},
    ("PUT", "/streams/{stream_id}/invites/{code}"): {"summary": "Update an invite (admins)",
                                                     "body": _ref("InviteUpdate")},
    ("DELETE", "/streams/{stream_id}/invites/{code}"): {"summary": "Revoke an invite (admins)",
                                                        "ok": ("204", _NO_CONTENT)},
    ("GET", "/videos"): {
        "summary": "The catalog: videos of every stream the caller is a member of, newest first, filtered",
        "query": _PAGED + [
            {"name": "category", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 50}},
            {"name": "tag", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 40}},
            {"name": "status", "in": "query",
             "schema": {"type": "string", "enum": ["ready", "complete", "processing", "failed", "duplicate"]}},
            {"name": "featured", "in": "query", "schema": {"type": "string", "enum": ["true", "false", "1", "0"]}},
            {"name": "search", "in": "query", "description": "in title or description (q: the same)",
             "schema": {"type": "string", "minLength": 1, "maxLength": 200}}],
        "ok": ("200", _json(_ref("Catalog")))},
    ("GET", "/streams/{stream_id}/videos"): {"summary": "A stream's videos, newest first",
                                             "query": _PAGED, "ok": ("200", _json(_ref("VideoList")))},
    ("POST", "/streams/{stream_id}/videos"): {
        "summary": "Create a video and get presigned upload URLs, or have it fetched from source_url (creators)",
        "body": {"oneOf": [_ref("UploadRequest"), _ref("IngestRequest")]}, "also": ("413", "503"),
        "ok": ("201", _json(_ref("UploadCreated"), "Created"))},
    ("GET", "/videos/{video_id}"): {"summary": "Video details", "ok": ("200", _json(_ref("Video")))},
    ("PUT", "/videos/{video_id}"): {"also": ("409",),
                                    "summary": "Edit title, description, tags (uploader or admin); with a stale"
                                               " vector_clock, a field someone else changed since is a 409",
                                    "body": _ref("VideoUpdate"), "ok": ("200", _json(_ref("Video")))},
    ("DELETE", "/videos/{video_id}"): {
        "summary": "Delete a video with all its files (uploader or admin); repeat to resume",
        "ok": ("204", _NO_CONTENT)},
    ("GET", "/videos/{video_id}/stream"): {"also": ("202",), "summary": "HLS and DASH URLs of a complete video",
                                           "ok": ("200", _json(_ref("StreamUrls")))},
    ("POST", "/videos/{video_id}/upload-url"): {"summary": "New presigned upload URLs (uploader)",
                                                "optional_body": True,
                                                "ok": ("200", _json(_ref("UploadCreated")))},
    ("GET", "/videos/{video_id}/multipart"): {
        "summary": "A resumable upload: the parts storage holds and fresh URLs for the rest (uploader)",
        "query": [_UPLOAD_ID], "ok": ("200", _json(_ref("UploadCreated")))},
    ("POST", "/videos/{video_id}/multipart/complete"): {
        "also": ("409",), "summary": "Assemble the uploaded parts (their ETags, in order); starts processing",
        "body": _ref("MultipartComplete"), "ok": ("200", _json(_ref("UploadCompleted")))},
    ("DELETE", "/videos/{video_id}/multipart"): {
        "also": ("409",), "summary": "Abort a resumable upload and free its parts (uploader)",
        "query": [{**_UPLOAD_ID, "required": True}], "ok": ("204", _NO_CONTENT)},
    ("GET", "/videos/{video_id}/processing"): {"summary": "Processing status",
                                               "ok": ("200", _json(_ref("ProcessingStatus")))},
    ("GET", "/videos/{video_id}/duplicates"): {"summary": "The original of a flagged duplicate"},
    ("GET", "/api/videos/{video_id}/hls/master.m3u8"): {"also": ("202",), 
        "summary": "HLS master playlist (token from GET /videos/{video_id}/stream)",
        "query": [_TOKEN], "ok": ("200", _PLAYLIST)},
    ("GET", "/api/videos/{video_id}/hls/{quality}/playlist.m3u8"): {"also": ("202",), 
        "summary": "HLS media playlist with presigned segment URLs",
        "query": [_TOKEN], "ok": ("200", _PLAYLIST)},
    ("GET", "/api/videos/{video_id}/dash/manifest.mpd"): {"also": ("202",),
        
        "summary": "DASH MPD over the HLS ladder's fMP4 segments, every URI presigned (token from GET /videos/{video_id}/stream)",
        "query": [_TOKEN], "ok": ("200", {"description": "A DASH MPD",
                                          "content": {"application/dash+xml": {"schema": {"type": "string"}}}})},
    ("GET", "/videos/{video_id}/captions.vtt"): {"also": ("202",),
        
        "summary": "Captions as one WebVTT file, from the transcript (bearer or playback token); 404 when nobody speaks",
        "query": [_TOKEN], "ok": ("200", _VTT)},
    ("GET", "/videos/{video_id}/storyboard.vtt"): {"also": ("202",),
        
        "summary": "Scrub-bar previews: WebVTT thumbnails track, each cue a presigned sprite sheet URL with #xywh=x,y,w,h"
                   " (bearer or playback token)",
        "query": [_TOKEN], "ok": ("200", _VTT)},
    ("GET", "/api/videos/{video_id}/captions.m3u8"): {"also": ("202",),
        
        "summary": "HLS subtitles playlist of segmented WebVTT (the master's SUBTITLES rendition)",
        "query": [_TOKEN], "ok": ("200", _PLAYLIST)},
    ("GET", "/api/videos/{video_id}/captions/{segment}"): {"also": ("202",),
        
        "summary": "One segmented WebVTT file (00000.vtt, 00001.vtt ...)",
        "query": [_TOKEN], "ok": ("200", _VTT)},
    ("GET", "/api/videos/{video_id}/stream/{quality}"): {"also": ("202",),
        "summary": "MP4 fallback of one rendition: redirect to a presigned URL (bearer or playback token);"
                   " 202 with retry_after_s while it is still being written just after the video became playable",
        "query": [_TOKEN], "ok": ("302", _REDIRECT)},
    ("GET", "/metrics"): {
        "summary": "Pipeline metrics in Prometheus text format (platform admins)",
        "ok": ("200", {"description": "Prometheus text exposition 0.0.4",
                       "content": {"text/plain": {"schema": {"type": "string"}}}})},
    ("GET", "/console"): {
        "summary": "Operators' console page (its data needs a platform admin's token)",
        "ok": ("200", {"description": "The console", "content": {"text/html": {"schema": {"type": "string"}}}})},
    ("GET", "/web"): {"summary": "Web page: your streams and a stream's clips (?stream=); sign in on the page",
                      "ok": ("200", {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}})},
    ("GET", "/web/upload"): {"summary": "Web page: upload a clip with progress, then its processing stages",
                             "ok": ("200", {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}})},
    ("GET", "/web/watch"): {"summary": "Web page: the player (?video=): quality menu, captions, scrub-bar previews,"
                                       " transcript, similar clips; MP4 fallback without MSE",
                            "ok": ("200", {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}})},
    ("GET", "/web/assets/{name}"): {"summary": "The pages' scripts and styles (hls.js and Swagger UI included)",
                                    "not_modified": True,
                                    "ok": ("200", {"description": "JavaScript or CSS", "content": {
                                        "text/javascript": {"schema": {"type": "string"}},
                                        "text/css": {"schema": {"type": "string"}}}})},
    ("GET", "/docs"): {"summary": "This API reference, rendered by Swagger UI (served by the API, no CDN)",
                       "ok": ("200", {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}})},
    ("GET", "/console/api/executions"): {
        "summary": "Recent pipeline executions with states, timings and errors (platform admins)",
        "query": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50}}]},
    ("GET", "/console/api/graph"): {"summary": "The pipeline state machine as a graph (platform admins)"},
    ("GET", "/videos/{video_id}/similar"): {"also": ("202",), "summary": "Similar clips (complete videos)"},
    ("GET", "/videos/{video_id}/trimmed"): {"also": ("202",), "summary": "Trimmed clips with timeline data"},
    ("GET", "/videos/{video_id}/pov"): {"also": ("202",), "summary": "Other points of view of the same moment (same game sound under other voice chats), each with the offset (s) at which it starts in this clip"},
    ("GET", "/videos/{video_id}/transcript"): {"also": ("202",), "summary": "Speech-to-text"},
    ("GET", "/videos/{video_id}/embeddings"): {"also": ("202",), "summary": "Video embeddings"},
    ("GET", "/videos/{video_id}/timeline"): {"also": ("202",), "summary": "Timeline view data"},
    ("GET", "/search"): {"summary": "Search videos by title and speech",
                         "query": [_Q, *_PAGED]},
    ("GET", "/search/suggestions"): {"summary": "Search suggestions",
                                     "query": [_Q]},
    ("POST", "/videos/{video_id}/like"): {"summary": "Like or unlike (toggle)",
                                          "ok": ("200", _json(_ref("LikeState")))},
    ("GET", "/videos/{video_id}/likes"): {"summary": "Like count and the caller's like",
                                          "ok": ("200", _json(_ref("LikeState")))},
    ("POST", "/videos/{video_id}/share"): {"summary": "Create a share link (default 7 days, at most"
                                                      " SHARE_MAX_TTL_SECONDS, 30 days by default)",
                                           "body": _ref("ShareRequest"), "optional_body": True,
                                           "ok": ("201", _json(_ref("ShareLink"), "Created"))},
    ("GET", "/videos/{video_id}/shares"): {"summary": "Share link counts, and the caller's links"
                                                      " (every link for stream admins)",
                                           "ok": ("200", _json(_ref("ShareStats")))},
    ("DELETE", "/videos/{video_id}/shares/{share_id}"): {
        "summary": "Revoke a share link (its creator or a stream admin); GET /share/{code} then answers 410",
        "ok": ("204", _NO_CONTENT)},
    ("GET", "/share/{code}"): {"summary": "Public view of a shared video",
                               "ok": ("200", _json(_ref("SharedVideo"))), "gone": True},
    ("GET", "/files/videos/{video_id}/thumbnail"): {
        "summary": "The thumbnail for the video's state (302 to storage; 304 when If-None-Match matches)",
        "ok": ("302", _THUMBNAIL), "not_modified": True},
    ("POST", "/videos/{video_id}/thumbnail"): {
        "summary": "Presigned PUT for a custom thumbnail: JPEG, PNG or WebP, at most 5 MB, 24 MP and 8192 px a side"
                   " (uploader or stream admin); send it with upload_headers, then PUT with the upload_id",
        "body": _ref("ThumbnailUploadRequest"), "ok": ("201", _json(_ref("ThumbnailUpload"), "Created"))},
    ("PUT", "/videos/{video_id}/thumbnail"): {
        "summary": "Check the uploaded image and make it the thumbnail, re-encoded to a plain JPEG; 400 with details"
                   " for anything that is not one clean image of the declared type (SVG, polyglot, decompression"
                   " bomb, too many pixels)",
        "also": ("503",), "body": _ref("ThumbnailConfirm"), "ok": ("200", _json(_ref("ThumbnailSet")))},
    ("DELETE", "/videos/{video_id}/thumbnail"): {
        "summary": "Remove the custom thumbnail: back to the representative frame", "ok": ("204", _NO_CONTENT)},
    ("GET", "/files/videos/{video_id}/stream"): {"summary": "Redirect to the best stored rendition",
                                                 "ok": ("302", _REDIRECT)},
    ("GET", "/system/storage"): {"summary": "Storage usage (platform admins)",
                                 "ok": ("200", _json(_ref("StorageUsage")))},
    ("GET", "/processing/queue"): {"summary": "Processing queue (platform admins)"},
    ("GET", "/processing/stats"): {"summary": "Processing statistics (platform admins)"},
    ("POST", "/admin/processing/retry"): {"also": ("404", "409"), "summary": "Retry failed videos (platform admins)",
                                          "body": _ref("RetryRequest")},
    ("GET", "/admin/duplicates"): {
        "summary": "Flagged duplicates (same stream) and matches across streams (platform admins only)",
        "query": [*_PAGED, {"name": "kind", "in": "query",
                            "schema": {"type": "string", "enum": ["duplicate", "cross_stream", "all"]}}]},
    # analytics, moderation and rate limits
    ("POST", "/videos/{video_id}/views"): {"also": ("409",), 
        "summary": "Record a view (once per viewer per 30 min) and watch time since the last report",
        "body": _ref("ViewReport"), "optional_body": True, "ok": ("200", _json(_ref("ViewRecorded")))},
    ("GET", "/videos/{video_id}/analytics"): {"summary": "Views, viewers, watch time (uploader, stream admins)",
                                              "query": [_DAYS], "ok": ("200", _json(_ref("VideoAnalytics")))},
    ("GET", "/streams/{stream_id}/analytics"): {"summary": "Stream totals, top videos, per day (creators, admins)",
                                                "query": [_DAYS]},
    ("GET", "/users/me/analytics"): {"summary": "The caller's uploads and watching", "query": [_DAYS]},
    ("POST", "/videos/{video_id}/report"): {"also": ("409",), "summary": "Report a video (one open report per member)",
                                            "body": _ref("ReportRequest"),
                                            "ok": ("201", _json(_ref("Report"), "Created"))},
    ("GET", "/admin/reports"): {"summary": "Moderation queue (platform admins)",
                                "query": [*_REPORT_FILTERS, {"name": "stream_id", "in": "query", "schema": _UUID},
                                          *_PAGED], "ok": ("200", _json(_ref("ReportList")))},
    ("GET", "/streams/{stream_id}/reports"): {"summary": "The stream's moderation queue (stream admins;"
                                                         " without reporter identity)",
                                              "query": [*_REPORT_FILTERS, *_PAGED],
                                              "ok": ("200", _json(_ref("ReportList")))},
    ("POST", "/admin/reports/{report_id}/resolve"): {
        "summary": "Resolve a report, optionally hiding the video (moderators;"
                   " not a stream admin's own video)", "body": _ref("ResolveRequest"),
        "optional_body": True, "ok": ("200", _json(_ref("Report")))},
    ("POST", "/admin/reports/{report_id}/dismiss"): {"summary": "Dismiss a report (moderators;"
                                                                " not a stream admin's own video)",
                                                     "body": _ref("DismissRequest"), "optional_body": True,
                                                     "ok": ("200", _json(_ref("Report")))},
    ("POST", "/admin/videos/{video_id}/hide"): {"summary": "Hide a video from all but stream admins (moderators)",
                                                "body": _ref("HideRequest"), "optional_body": True,
                                                "ok": ("200", _json(_ref("Visibility")))},
    ("POST", "/admin/videos/{video_id}/unhide"): {"summary": "Show a hidden video again (moderators;"
                                                              " a platform hide: platform admins)",
                                                  "optional_body": True, "ok": ("200", _json(_ref("Visibility")))},
    ("GET", "/streams/{stream_id}/bans"): {"summary": "Banned users (moderators)", "query": _PAGED},
    ("POST", "/streams/{stream_id}/bans"): {"summary": "Ban a user: membership ends, invites refuse them",
                                            "body": _ref("BanRequest"), "ok": ("201", _json(_ref("Ban"), "Created"))},
    ("DELETE", "/streams/{stream_id}/bans/{user_id}"): {"summary": "Lift a ban (moderators)",
                                                        "ok": ("204", _NO_CONTENT)},
    ("GET", "/admin/audit"): {"summary": "Audit log of admin actions (platform admins)",
                              "query": [*_AUDIT_FILTERS, {"name": "stream_id", "in": "query", "schema": _UUID},
                                        *_PAGED], "ok": ("200", _json(_ref("AuditList")))},
    ("GET", "/streams/{stream_id}/audit"): {"summary": "Audit log of the stream (stream admins)",
                                            "query": [*_AUDIT_FILTERS, *_PAGED],
                                            "ok": ("200", _json(_ref("AuditList")))},
    ("POST", "/videos/{video_id}/generate-moments"): {"also": ("409",), 
        "summary": "Find highlight moments and cut their clips (uploader or admin); 202, then poll the status",
        "ok": ("202", _json(_ref("MomentsStarted"), "Accepted"))},
    ("GET", "/videos/{video_id}/moments"): {"summary": "Highlight moments, in time order",
                                            "ok": ("200", _json(_ref("MomentList")))},
    ("POST", "/videos/{video_id}/moments/{moment_id}/refine"): {
        "summary": "Snap a moment to speech/sound edges and keyframes; its clip is cut again",
        "body": _ref("RefineRequest"), "optional_body": True, "ok": ("200", _json(_ref("Refined")))},
    ("GET", "/videos/{video_id}/clip-extraction-status"): {
        "summary": "Moment generation and clip extraction progress",
        "ok": ("200", _json(_ref("ClipExtractionStatus")))},
    ("GET", "/clips/{moment_id}/stream"): {"summary": "Redirect to the moment's clip (MP4)",
                                           "ok": ("302", _REDIRECT)},
    ("POST", "/sync"): {"also": ("404",), "summary": "Merge a device's edits (CRDT: LWW fields, OR-Set tags)",
                        "body": _ref("SyncRequest"), "ok": ("200", _json(_ref("SyncResult")))},
    ("GET", "/sync"): {"also": ("404",), "summary": "Operations after a time, with the server's vector clock",
                       "query": [{"name": "video_id", "in": "query", "required": True, "schema": _UUID},
                                 {"name": "since", "in": "query", "schema": _TIME},
                                 {"name": "limit", "in": "query",
                                  "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                       "ok": ("200", _json(_ref("SyncLog")))},
    ("POST", "/streams/{stream_id}/webhooks"): {
        "also": ("409",), "summary": "Register a webhook endpoint (stream admins); its secret is in this answer only",
        "description": _WEBHOOK_DELIVERY_TEXT, "body": _ref("WebhookCreate"),
        "ok": ("201", _json(_ref("WebhookCreated"), "Created"))},
    ("GET", "/streams/{stream_id}/webhooks"): {"summary": "The stream's webhook endpoints, oldest first (no secrets)",
                                               "query": _PAGED, "ok": ("200", _json(_ref("WebhookList")))},
    ("DELETE", "/streams/{stream_id}/webhooks/{webhook_id}"): {
        "summary": "Remove an endpoint; its pending deliveries stop at their next attempt", "ok": ("204", _NO_CONTENT)},
    ("GET", "/streams/{stream_id}/webhooks/{webhook_id}/deliveries"): {
        "summary": "The endpoint's deliveries, newest first, each with its attempts", "query": _PAGED,
        "ok": ("200", _json(_ref("WebhookDeliveryList")))},
    ("POST", "/streams/{stream_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/replay"): {
        "summary": "Send a delivery's event again (same event id and body, a fresh signature) as a new delivery",
        "optional_body": True, "ok": ("202", _json(_ref("WebhookDelivery"), "Accepted: the new delivery"))},
    ("GET", "/openapi.json"): {"summary": "This document",
                               "ok": ("200", _json({"type": "object"}))},
    ("POST", "/webhooks/minio/upload-complete"): {
        "summary": "MinIO bucket notification (bearer = webhook secret)",
        "body": {"type": "object"}},
}


def document(app: Any) -> dict:
    """The OpenAPI 3.0 document of every route of app."""
    paths: dict[str, dict] = {}
    for path, methods in sorted(app.routes.items()):
        for method, entry in sorted(methods.items()):
            paths.setdefault(path, {})[method.lower()] = operation(method, path, entry)
    return {
        "openapi": "3.0.3",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "Gaming clips: streams, uploads, processing, social features."
                                " No string of a request (JSON bodies at any depth, keys too, and query"
                                " values) may hold a NUL character (U+0000) or a lone surrogate: a 400."
                                " Query parameters an operation does not declare are ignored;"
                                " list pages are 1 to 100000 and limit 1 to 100 (more is a 400)."},
        "servers": [{"url": _server_url()}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"}},
            "schemas": {**SCHEMAS, "ShareRequest": _share_request()},
            "responses": {name: _json(_ref("Error"), text) for name, text in _ERRORS.items()},
        },
    }


# Extra statuses an operation declares with "also"; 202 is a NotReadyError (processing not done yet).
_ALSO = {"202": "NotReady", "401": "Unauthorized", "404": "NotFound", "409": "Conflict",
         "413": "TooLarge", "503": "Unavailable"}
_ERRORS = {"BadRequest": "Invalid request (details list every problem)",
           "NotReady": "Not ready yet (the video is still processing)",
           "Conflict": "Conflicts with the current state",
           "Unauthorized": "Authentication required", "Forbidden": "Access denied",
           "NotFound": "Not found", "Gone": "Expired", "Unavailable": "Try again shortly",
           "TooLarge": "Too large (over the size limit or the uploader's storage quota)",
           "TooManyRequests": "Rate limit reached (Retry-After header and retry_after say when to retry)"}


def operation(method: str, path: str, entry: Any) -> dict:
    """One operation: documented details from OPERATIONS, path params, security, errors."""
    spec = OPERATIONS.get((method, path), {})
    declared = routes.of(method, path)
    op: dict[str, Any] = {"operationId": entry.view_name,
                          "summary": spec.get("summary", entry.view_name.replace("_", " ")),
                          "tags": [_tag(path)], "x-access": routes.RULES[declared.rule]}
    params = [{"name": name, "in": "path", "required": True,
               "schema": _UUID if name.endswith("_id") else {"type": "string", "maxLength": 64}}
              for name in _PARAM.findall(path)]
    params += spec.get("query", [])
    if params:
        op["parameters"] = params
    if method in ("POST", "PUT", "PATCH"):
        op["requestBody"] = {"required": not spec.get("optional_body", False), "content": {
            "application/json": {"schema": spec.get("body", {"type": "object"})}}}
    status, ok = spec.get("ok", ("200", _json({"type": "object"})))
    responses: dict[str, Any] = {status: ok}
    if spec.get("not_modified"):
        responses["304"] = {"description": "Not modified (If-None-Match matched the ETag)"}
    if method in ("POST", "PUT", "PATCH") or spec.get("query"):
        responses["400"] = {"$ref": "#/components/responses/BadRequest"}
    if declared.rule in routes.NO_BEARER:
        op["security"] = []
    if declared.rule != routes.ANYONE:
        responses["401"] = {"$ref": "#/components/responses/Unauthorized"}
    if spec.get("description"):
        op["description"] = spec["description"]
    if declared.rule == routes.WEBHOOK:
        op["description"] = "Authorization: Bearer <MINIO_WEBHOOK_SECRET>"
    elif declared.rule != routes.ANYONE:
        responses["403"] = {"$ref": "#/components/responses/Forbidden"}
    if "{" in path:
        responses["404"] = {"$ref": "#/components/responses/NotFound"}
    if spec.get("gone"):
        responses["410"] = {"$ref": "#/components/responses/Gone"}
    for code in spec.get("also", ()):   # what the route answers besides the rule-derived errors
        responses.setdefault(code, {"$ref": f"#/components/responses/{_ALSO[code]}"})
    if declared.limit:
        responses["429"] = {"$ref": "#/components/responses/TooManyRequests"}
    op["responses"] = responses
    return op


def _tag(path: str) -> str:
    first = path.strip("/").split("/")[0] or "health"
    return {"files": "files", "share": "social", "admin": "admin", "processing": "admin",
            "webhooks": "uploads", "openapi.json": "system", "health": "system"}.get(first, first)


def _share_request() -> dict:
    from chalicelib.config import get_settings
    hours = get_settings().share_max_ttl_s // 3600       # social.max_share_hours, without its imports
    return _obj({"expires_in_hours": {"type": "integer", "minimum": 1, "maximum": hours}}, extra=False)


def _server_url() -> str:
    from chalicelib.config import get_settings
    return get_settings().public_base_url
