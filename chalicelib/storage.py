"""S3-compatible storage: the client, the key layout of reference/001, presigning.

The same code talks to AWS S3, MinIO, LocalStack or the local emulator; only
the endpoint differs. Clients are created once per container and reused.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.config import get_settings

logger = logging.getLogger(__name__)

RAW_PREFIX = "raw-uploads/"
PROCESSED_PREFIX = "processed-videos/"
THUMBNAIL_PREFIX = "thumbnails/"
TRANSCRIPT_PREFIX = "transcripts/"
EMBEDDING_PREFIX = "embeddings/"
CLIP_PREFIX = "clips/"
PREFIXES = (RAW_PREFIX, PROCESSED_PREFIX, THUMBNAIL_PREFIX, TRANSCRIPT_PREFIX,
            EMBEDDING_PREFIX, CLIP_PREFIX)


class StorageUnavailable(Exception):
    """The object store cannot be reached."""


# Key layout (reference/001).
def raw_key(video_id: str, ext: str) -> str:
    return f"{RAW_PREFIX}{video_id}.{ext}"


def processed_prefix(video_id: str) -> str:
    return f"{PROCESSED_PREFIX}{video_id}/"


def master_playlist_key(video_id: str) -> str:
    return f"{processed_prefix(video_id)}master.m3u8"


def mp4_fallback_key(video_id: str, quality: str) -> str:
    """One rendition as a single fragmented MP4 (init + segments), for players without HLS."""
    return f"{processed_prefix(video_id)}{quality}.mp4"


def thumbnail_key(video_id: str, variant: str | None = None) -> str:
    suffix = f"_{variant}" if variant else ""
    return f"{THUMBNAIL_PREFIX}{video_id}{suffix}.jpg"


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
            embedding_key(video_id), f"{RAW_PREFIX}{video_id}."]


def _client_config() -> Config:
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
    )


@lru_cache(maxsize=1)
def s3_client() -> Any:
    """The S3 client this container uses for its own reads and writes."""
    s = get_settings()
    return boto3.client("s3", region_name=s.region, endpoint_url=s.s3_endpoint_url,
                        config=_client_config())


@lru_cache(maxsize=1)
def presign_client() -> Any:
    """A client whose signatures name the endpoint clients can reach."""
    s = get_settings()
    if not s.s3_public_endpoint_url:
        return s3_client()
    return boto3.client("s3", region_name=s.region, endpoint_url=s.s3_public_endpoint_url,
                        config=_client_config())


def presigned_get(key: str, expires_s: int | None = None, **params: Any) -> str:
    """A short-lived GET URL for one key."""
    s = get_settings()
    return presign_client().generate_presigned_url(
        "get_object", Params={"Bucket": s.bucket, "Key": key, **params},
        ExpiresIn=expires_s or s.presign_ttl_s)


def presigned_put(key: str, content_type: str, expires_s: int | None = None) -> str:
    """A short-lived PUT URL for exactly one key and content type."""
    s = get_settings()
    return presign_client().generate_presigned_url(
        "put_object", Params={"Bucket": s.bucket, "Key": key, "ContentType": content_type},
        ExpiresIn=expires_s or s.presign_ttl_s)


def presigned_post(key: str, content_type: str, max_bytes: int,
                   expires_s: int | None = None) -> dict[str, Any]:
    """A presigned POST whose policy fixes the key and content type and caps the size."""
    s = get_settings()
    return presign_client().generate_presigned_post(
        Bucket=s.bucket, Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type},
                    ["content-length-range", 1, max_bytes]],
        ExpiresIn=expires_s or s.presign_ttl_s)


def head(key: str) -> dict | None:
    """The object's metadata, or None when it does not exist."""
    try:
        return s3_client().head_object(Bucket=get_settings().bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def check_bucket() -> None:
    """Raise StorageUnavailable unless the bucket answers."""
    try:
        s3_client().head_bucket(Bucket=get_settings().bucket)
    except (ClientError, BotoCoreError) as exc:
        raise StorageUnavailable(str(exc)) from exc


def iter_objects(prefix: str) -> Iterator[dict]:
    """Every object under a prefix, page by page."""
    paginator = s3_client().get_paginator("list_objects_v2")
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
            s3_client().delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            deleted += len(batch)
            batch = []
    if batch:
        s3_client().delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        deleted += len(batch)
    return deleted
