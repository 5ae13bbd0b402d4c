"""POST /streams/{id}/videos with `source_url`: a video fetched from a URL by the ingest_url function.

The API only checks the URL (https, a host that resolves to public addresses
only: chalicelib.outbound), inserts the video row (processing_index 1, its size
unknown until fetched) and invokes `ingest_url` asynchronously; that function
fetches the source into the video's raw key, whose ObjectCreated event starts
the normal pipeline. No video bytes pass through the API.
"""
from __future__ import annotations

import json
import logging
import posixpath
from urllib.parse import unquote, urlsplit

from chalicelib import aws, db, outbound
from chalicelib.api import uploads
from chalicelib.config import ALLOWED_EXTENSIONS, MAX_UPLOAD_LABEL, get_settings
from chalicelib.errors import UnavailableError, ValidationError

logger = logging.getLogger(__name__)

_BAD = "Invalid source URL"
# The file a URL names decides nothing (dedup probes the bytes); it only names the raw key.
_TYPE_OF = {"mp4": "video/mp4", "mov": "video/quicktime", "avi": "video/x-msvideo"}
_UPLOAD_FIELDS = ("filename", "size_bytes", "content_type", "upload")


def function_name() -> str:
    s = get_settings()
    return f"{s.app_name}-{s.stage}-ingest_url"


def validate(body: dict) -> dict:
    """The ingest request's fields, checked (the URL resolved now; the fetch checks again); 400 otherwise."""
    given = [f for f in _UPLOAD_FIELDS if f in body]
    if given:
        raise ValidationError(_BAD, details=[f"source_url replaces {', '.join(given)}: send one or the other"])
    url = body.get("source_url")
    try:
        outbound.check_url(url)
    except outbound.OutboundRefused as exc:
        raise ValidationError(_BAD, details=[f"source_url: {exc.reason}"]) from None
    name = posixpath.basename(unquote(urlsplit(url).path))
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in ALLOWED_EXTENSIONS:
        ext, name = "mp4", ""
    try:
        filename = uploads.clean_filename(name) if name else f"source.{ext}"
    except ValidationError:
        filename = f"source.{ext}"
    title = body.get("title")
    if title is None:
        title = filename.rsplit(".", 1)[0].strip() or filename
    if not isinstance(title, str) or not title.strip():
        raise ValidationError(_BAD, details=["title must be a non-empty string"])
    if len(title) > uploads.MAX_TITLE:
        raise ValidationError(_BAD, details=[f"title must be at most {uploads.MAX_TITLE} characters"])
    return {"source_url": url, "filename": filename, "ext": ext, "content_type": _TYPE_OF[ext],
            "title": uploads._CONTROL.sub("", title).strip(), "size_bytes": 0}


def create(user: dict, stream_id: str, body: dict) -> dict:
    """A new video (processing_index 1) whose bytes the ingest_url function fetches (caller: a creator)."""
    fields = validate(body)
    video = uploads._insert(user, stream_id, fields)   # its size is recorded once fetched
    video_id = str(video["id"])
    try:
        _start(video_id, fields["source_url"])
    except UnavailableError:
        db.execute("DELETE FROM videos WHERE id = %s", (video_id,))   # nothing refers to it yet
        raise
    logger.info("video ingest started", extra={"video_id": video_id, "stream_id": stream_id})
    return {"id": video_id, "processing_index": video["processing_index"], "status": video["status"],
            "source_url": fields["source_url"], "max_size": MAX_UPLOAD_LABEL}


def _start(video_id: str, url: str) -> None:
    """Invoke ingest_url asynchronously (Lambda retries it; the function is safe to repeat)."""
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        aws.client("lambda").invoke(FunctionName=function_name(), InvocationType="Event",
                                    Payload=json.dumps({"video_id": video_id, "source_url": url}))
    except (BotoCoreError, ClientError) as exc:
        logger.warning("ingest_url unavailable: %s", exc)
        raise UnavailableError("Ingest unavailable, try again") from None
