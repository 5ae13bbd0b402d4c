"""S3-compatible storage: the client, the key layout of reference/001, presigning.

The same code talks to AWS S3, MinIO, LocalStack or the local emulator; only
the endpoint differs. Clients are created once per container and reused.
"""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from typing import Any, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws
from chalicelib.config import ALLOWED_EXTENSIONS, get_settings

logger = logging.getLogger(__name__)

RAW_PREFIX = "raw-uploads/"
PROCESSED_PREFIX = "processed-videos/"
THUMBNAIL_PREFIX = "thumbnails/"
TRANSCRIPT_PREFIX = "transcripts/"
EMBEDDING_PREFIX = "embeddings/"
CLIP_PREFIX = "clips/"
# Custom thumbnails as uploaded, before they are checked: never public (thumbnails/ may be),
# never served, and expired by a lifecycle rule if nobody confirms them.
THUMBNAIL_UPLOAD_PREFIX = "thumbnail-uploads/"
PREFIXES = (RAW_PREFIX, PROCESSED_PREFIX, THUMBNAIL_PREFIX, TRANSCRIPT_PREFIX,
            EMBEDDING_PREFIX, CLIP_PREFIX, THUMBNAIL_UPLOAD_PREFIX)


class StorageError(Exception):
    """A storage call failed; the subclasses say how."""


class StorageUnavailable(StorageError):
    """The object store cannot be reached, or answered "later" (5xx, throttling)."""


class ObjectMissing(StorageError):
    """No object under that key."""


class StorageDenied(StorageError):
    """Storage refused the call (the role's policy, a bad or expired signature)."""


# Key layout (reference/001).
def raw_key(video_id: str, ext: str) -> str:
    return f"{RAW_PREFIX}{video_id}.{ext}"


_RAW_KEY = re.compile(r"^%s([0-9a-f-]{36})\.(%s)$" % (re.escape(RAW_PREFIX), "|".join(ALLOWED_EXTENSIONS)))


def parse_raw_key(key: str) -> tuple[str, str] | None:
    """(video id, extension) of a key `raw_key` built; None for any other key."""
    match = _RAW_KEY.match(key)
    return (match.group(1), match.group(2)) if match else None


def processed_prefix(video_id: str) -> str:
    return f"{PROCESSED_PREFIX}{video_id}/"


def master_playlist_key(video_id: str) -> str:
    return f"{processed_prefix(video_id)}master.m3u8"


def rendition_playlist_key(video_id: str, quality: str) -> str:
    """One rendition's HLS media playlist ("720p" -> .../720p.m3u8)."""
    return f"{processed_prefix(video_id)}{quality}.m3u8"


def dash_manifest_key(video_id: str) -> str:
    """The DASH MPD over the same fMP4 segments as the HLS playlists (relative URIs)."""
    return f"{processed_prefix(video_id)}manifest.mpd"


def storyboard_key(video_id: str) -> str:
    """The WebVTT thumbnails track; its sprite sheets are under storyboard/ beside it."""
    return f"{processed_prefix(video_id)}storyboard.vtt"


def mp4_fallback_key(video_id: str, quality: str) -> str:
    """One rendition as a single fragmented MP4 (init + segments), for players without HLS."""
    return f"{processed_prefix(video_id)}{quality}.mp4"


def thumbnail_key(video_id: str, variant: str | None = None) -> str:
    suffix = f"_{variant}" if variant else ""
    return f"{THUMBNAIL_PREFIX}{video_id}{suffix}.jpg"


def custom_thumbnail_upload_key(video_id: str, upload_id: str) -> str:
    """Where a client PUTs a custom thumbnail; never served (it becomes `custom_thumbnail_key`)."""
    return f"{THUMBNAIL_UPLOAD_PREFIX}{video_id}/{upload_id}"


def custom_thumbnail_key(video_id: str, upload_id: str) -> str:
    """The re-encoded custom thumbnail (a new key per upload: a replaced one is never half-seen)."""
    return f"{THUMBNAIL_PREFIX}{video_id}_custom_{upload_id}.jpg"


def transcript_key(video_id: str) -> str:
    return f"{TRANSCRIPT_PREFIX}{video_id}.json"


def embedding_key(video_id: str) -> str:
    return f"{EMBEDDING_PREFIX}{video_id}.json"


def clip_prefix(video_id: str) -> str:
    return f"{CLIP_PREFIX}{video_id}/"


def clip_key(video_id: str, moment_id: str) -> str:
    """A highlight moment cut as its own MP4."""
    return f"{clip_prefix(video_id)}{moment_id}.mp4"


def video_prefixes(video_id: str) -> list[str]:
    """Every key prefix under which objects of one video may live."""
    return [processed_prefix(video_id), clip_prefix(video_id),
            f"{THUMBNAIL_PREFIX}{video_id}", transcript_key(video_id),
            embedding_key(video_id), f"{RAW_PREFIX}{video_id}.", f"{THUMBNAIL_UPLOAD_PREFIX}{video_id}/"]


def s3_client() -> Any:
    """The S3 client this container (or, locally, this function's role) uses."""
    return aws.client("s3")


def presign_client() -> Any:
    """A client whose signatures name the endpoint clients can reach."""
    return aws.client("s3", public=True)


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def translate(exc: ClientError) -> Exception:
    """The domain error for a storage ClientError: missing, denied, unavailable, or the error itself."""
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    if _missing(exc):
        return ObjectMissing(error.get("Key") or error.get("Message") or code)
    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                "InvalidToken") or status == 403:
        return StorageDenied(f"{code}: {error.get('Message', '')}".strip())
    if status >= 500 or code in _UNAVAILABLE_CODES:
        return StorageUnavailable(f"{code}: {error.get('Message', '')}".strip())
    return exc


_UNAVAILABLE_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}


@contextmanager
def _errors() -> Iterator[None]:
    """Every storage call below answers in domain errors."""
    try:
        yield
    except ClientError as exc:
        raise translate(exc) from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(str(exc)) from exc


def presigned_get(key: str, expires_s: int | None = None, **params: Any) -> str:
    """A short-lived GET URL for one key."""
    s = get_settings()
    return presign_client().generate_presigned_url(
        "get_object", Params={"Bucket": s.bucket, "Key": key, **params},
        ExpiresIn=expires_s or s.presign_ttl_s)


def presigned_put(key: str, content_type: str, size_bytes: int, expires_s: int | None = None) -> str:
    """A short-lived PUT URL for exactly one key, content type and size, that never overwrites.

    Content-Length, Content-Type and `If-None-Match: *` are signed headers: storage
    refuses a body of another size or type, and a second PUT once the object exists.
    """
    s = get_settings()
    return presign_client().generate_presigned_url(
        "put_object", Params={"Bucket": s.bucket, "Key": key, "ContentType": content_type,
                              "ContentLength": size_bytes, "IfNoneMatch": "*"},
        ExpiresIn=expires_s or s.presign_ttl_s)


def presigned_put_headers(content_type: str) -> dict[str, str]:
    """The headers a client sends with `presigned_put` (Content-Length is the body's own)."""
    return {"Content-Type": content_type, "If-None-Match": "*"}


def presigned_post(key: str, content_type: str, size_bytes: int,
                   expires_s: int | None = None) -> dict[str, Any]:
    """A presigned POST whose policy fixes the key, the content type and the exact size."""
    s = get_settings()
    return presign_client().generate_presigned_post(
        Bucket=s.bucket, Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type},
                    ["content-length-range", size_bytes, size_bytes]],
        ExpiresIn=expires_s or s.presign_ttl_s)


def open_object(key: str) -> Any:
    """The object's streaming body (read it, iterate `iter_chunks`, close it); ObjectMissing if absent."""
    with _errors():
        return s3_client().get_object(Bucket=get_settings().bucket, Key=key)["Body"]


def get_object(key: str) -> dict:
    """GetObject's whole answer (Body, ETag, ContentType ...); ObjectMissing if absent."""
    with _errors():
        return s3_client().get_object(Bucket=get_settings().bucket, Key=key)


def read_bytes(key: str) -> bytes:
    """A small object's bytes; ObjectMissing if absent."""
    body = open_object(key)
    try:
        with _errors():
            return body.read()
    finally:
        body.close()


def read_text(key: str) -> str:
    return read_bytes(key).decode()


def put_bytes(key: str, body: bytes, content_type: str, cache_control: str | None = None) -> None:
    """Store a small object in one PUT."""
    extra = {"CacheControl": cache_control} if cache_control else {}
    with _errors():
        s3_client().put_object(Bucket=get_settings().bucket, Key=key, Body=body,
                               ContentType=content_type, **extra)


def upload_file(path: str, key: str, content_type: str, cache_control: str | None = None) -> None:
    """Store a file (multipart above botocore's threshold)."""
    extra = {"ContentType": content_type, **({"CacheControl": cache_control} if cache_control else {})}
    with _errors():
        s3_client().upload_file(str(path), get_settings().bucket, key, ExtraArgs=extra)


def upload_stream(fileobj: Any, key: str, content_type: str, cache_control: str | None,
                  part_bytes: int, concurrency: int = 4) -> None:
    """Store a readable stream as a multipart upload of `part_bytes` parts (nothing on /tmp)."""
    from boto3.s3.transfer import TransferConfig
    config = TransferConfig(multipart_threshold=part_bytes, multipart_chunksize=part_bytes,
                            max_concurrency=concurrency)
    extra = {"ContentType": content_type, **({"CacheControl": cache_control} if cache_control else {})}
    with _errors():
        s3_client().upload_fileobj(fileobj, get_settings().bucket, key, Config=config, ExtraArgs=extra)


def delete(key: str) -> None:
    """Delete one object (absent is fine)."""
    with _errors():
        s3_client().delete_object(Bucket=get_settings().bucket, Key=key)


def head(key: str) -> dict | None:
    """The object's metadata, or None when it does not exist."""
    try:
        with _errors():
            return s3_client().head_object(Bucket=get_settings().bucket, Key=key)
    except ObjectMissing:
        return None


def check_bucket() -> None:
    """Raise StorageUnavailable unless the bucket answers."""
    try:
        with _errors():
            s3_client().head_bucket(Bucket=get_settings().bucket)
    except StorageError as exc:
        raise StorageUnavailable(str(exc)) from exc


def iter_objects(prefix: str) -> Iterator[dict]:
    """Every object under a prefix, page by page."""
    paginator = s3_client().get_paginator("list_objects_v2")
    with _errors():
        for page in paginator.paginate(Bucket=get_settings().bucket, Prefix=prefix):
            yield from page.get("Contents", [])


def delete_prefix(prefix: str) -> int:
    """Delete every object under a prefix; the number deleted. Safe to repeat."""
    bucket = get_settings().bucket
    batch: list[dict] = []
    deleted = 0
    for obj in iter_objects(prefix):
        batch.append({"Key": obj["Key"]})
        if len(batch) == 1000:
            deleted += _delete_batch(bucket, batch)
            batch = []
    if batch:
        deleted += _delete_batch(bucket, batch)
    return deleted


def _delete_batch(bucket: str, batch: list[dict]) -> int:
    """DeleteObjects answers 200 with per-key errors: any error is raised, not ignored."""
    with _errors():
        resp = s3_client().delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    errors = resp.get("Errors") or []
    if errors:
        first = errors[0]
        raise translate(ClientError({"Error": {"Code": first.get("Code", ""), "Message": first.get("Message", ""),
                                               "Key": first.get("Key")}}, "DeleteObjects"))
    return len(batch)


# Multipart uploads (resumable uploads of raw videos): the client sends the parts
# through presigned URLs; the API starts, inspects, completes and aborts.
def create_multipart(key: str, content_type: str) -> str:
    """Start a multipart upload for one key; its upload id."""
    with _errors():
        return s3_client().create_multipart_upload(Bucket=get_settings().bucket, Key=key,
                                                   ContentType=content_type)["UploadId"]


def presigned_upload_part(key: str, upload_id: str, part_number: int, size_bytes: int,
                          expires_s: int | None = None) -> str:
    """A short-lived UploadPart URL for one part whose Content-Length (signed) is exactly `size_bytes`."""
    s = get_settings()
    return presign_client().generate_presigned_url(
        "upload_part", Params={"Bucket": s.bucket, "Key": key, "UploadId": upload_id,
                               "PartNumber": part_number, "ContentLength": size_bytes},
        ExpiresIn=expires_s or s.presign_ttl_s)


class UploadMissing(StorageError):
    """No open multipart upload with that id (completed, aborted, or never started)."""


class PartsRejected(StorageError):
    """CompleteMultipartUpload refused the part list (a wrong ETag, order, or a too small part)."""


class AlreadyExists(StorageError):
    """The key already holds an object (If-None-Match: * failed)."""


def _multipart_errors(exc: ClientError) -> Exception:
    code = exc.response.get("Error", {}).get("Code", "")
    if code == "NoSuchUpload":
        return UploadMissing(code)
    if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML"):
        return PartsRejected(f"{code}: {exc.response.get('Error', {}).get('Message', '')}".strip())
    if code == "PreconditionFailed" or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 412:
        return AlreadyExists(code)
    return translate(exc)


@contextmanager
def _multipart() -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        raise _multipart_errors(exc) from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(str(exc)) from exc


def list_parts(key: str, upload_id: str) -> list[dict]:
    """The parts storage holds for an open upload: [{PartNumber, ETag, Size}], every page."""
    parts: list[dict] = []
    with _multipart():
        for page in s3_client().get_paginator("list_parts").paginate(
                Bucket=get_settings().bucket, Key=key, UploadId=upload_id):
            parts.extend(page.get("Parts", []))
    return parts


def complete_multipart(key: str, upload_id: str, parts: list[tuple[int, str]]) -> str:
    """Assemble the object from (part number, ETag) pairs, never over an existing object; its ETag."""
    with _multipart():
        resp = s3_client().complete_multipart_upload(
            Bucket=get_settings().bucket, Key=key, UploadId=upload_id, IfNoneMatch="*",
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})
    return str(resp.get("ETag", "")).strip('"')


def abort_multipart(key: str, upload_id: str) -> bool:
    """Abort an upload and free its parts; False when it was no longer open."""
    try:
        with _multipart():
            s3_client().abort_multipart_upload(Bucket=get_settings().bucket, Key=key, UploadId=upload_id)
    except UploadMissing:
        return False
    return True


def open_multipart_uploads(prefix: str) -> list[tuple[str, str]]:
    """(key, upload id) of every unfinished multipart upload under a prefix."""
    out: list[tuple[str, str]] = []
    with _errors():
        for page in s3_client().get_paginator("list_multipart_uploads").paginate(
                Bucket=get_settings().bucket, Prefix=prefix):
            out.extend((u["Key"], u["UploadId"]) for u in page.get("Uploads", []))
    return out


class StreamUpload:
    """Writes bytes as they arrive (a fetch's sink) into one multipart upload, never over an object.

    Parts of `part_bytes` are sent as they fill, so memory stays one part; nothing
    exists at the key until `complete()` (the ObjectCreated event fires then, once).
    Leaving the `with` block without completing aborts the upload: no parts stay stored.
    """

    def __init__(self, key: str, content_type: str, part_bytes: int = 8 * 1024 * 1024) -> None:
        self.key, self.content_type, self.part_bytes = key, content_type, part_bytes
        self.size = 0
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[tuple[int, str]] = []
        self._done = False

    def __enter__(self) -> "StreamUpload":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._done:
            self.abort()

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._buffer += chunk
        while len(self._buffer) >= self.part_bytes:
            self._send(bytes(self._buffer[:self.part_bytes]))
            del self._buffer[:self.part_bytes]

    def _send(self, data: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = create_multipart(self.key, self.content_type)
        number = len(self._parts) + 1
        with _multipart():
            resp = s3_client().upload_part(Bucket=get_settings().bucket, Key=self.key,
                                           UploadId=self._upload_id, PartNumber=number, Body=data)
        self._parts.append((number, str(resp["ETag"])))

    def complete(self) -> str:
        """Send the last part and assemble the object; its ETag (AlreadyExists if the key is taken)."""
        if self._buffer or not self._parts:
            self._send(bytes(self._buffer))
            self._buffer.clear()
        etag = complete_multipart(self.key, self._upload_id, self._parts)
        self._done = True
        return etag

    def abort(self) -> None:
        """Free what was sent (best effort: the bucket's lifecycle rule removes what this misses)."""
        self._done = True
        if self._upload_id is not None:
            try:
                abort_multipart(self.key, self._upload_id)
            except StorageError as exc:
                logger.warning("could not abort the upload of %s: %s", self.key, exc)
