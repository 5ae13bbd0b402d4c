"""Settings from the environment, read in one place.

Every other module asks `get_settings()`; nothing else reads os.environ for
product settings. In AWS the values come from the function's environment
(see .chalice/config.json and infra/); locally the stack sets them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

MAX_UPLOAD_BYTES = 2 * 1024**3
MAX_UPLOAD_LABEL = "2GB"
ALLOWED_EXTENSIONS = ("mp4", "avi", "mov")


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    app_name: str = "clipstream"
    database_url: str = ""
    bucket: str = "clipstream"
    region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    s3_endpoint_url: str | None = None
    # Address that browsers and curl use for presigned URLs when the storage
    # endpoint the Lambdas use is not reachable from outside (docker networks).
    s3_public_endpoint_url: str | None = None
    state_machine_arn: str | None = None
    google_client_ids: tuple[str, ...] = ()
    google_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    google_issuers: tuple[str, ...] = ("accounts.google.com", "https://accounts.google.com")
    jwt_secret: str = ""
    jwt_secret_arn: str | None = None
    jwt_ttl_s: int = 3600
    refresh_ttl_s: int = 30 * 24 * 3600
    admin_emails: tuple[str, ...] = ()
    minio_webhook_secret: str = ""
    public_base_url: str = "http://127.0.0.1:8000"
    presign_ttl_s: int = 900


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once from the environment."""
    env = os.environ
    return Settings(
        stage=env.get("STAGE", "local"),
        app_name=env.get("APP_NAME", "clipstream"),
        database_url=env.get("DATABASE_URL", ""),
        bucket=env.get("BUCKET_NAME", "clipstream"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        s3_endpoint_url=env.get("S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL") or None,
        s3_public_endpoint_url=env.get("S3_PUBLIC_ENDPOINT_URL") or None,
        state_machine_arn=env.get("STATE_MACHINE_ARN") or None,
        google_client_ids=_list(env.get("GOOGLE_CLIENT_IDS")),
        google_certs_url=env.get("GOOGLE_CERTS_URL", Settings.google_certs_url),
        jwt_secret=env.get("JWT_SECRET", ""),
        jwt_secret_arn=env.get("JWT_SECRET_ARN") or None,
        jwt_ttl_s=int(env.get("JWT_TTL_SECONDS", "3600")),
        refresh_ttl_s=int(env.get("REFRESH_TTL_SECONDS", str(30 * 24 * 3600))),
        admin_emails=tuple(e.lower() for e in _list(env.get("ADMIN_EMAILS"))),
        minio_webhook_secret=env.get("MINIO_WEBHOOK_SECRET", ""),
        public_base_url=env.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        presign_ttl_s=int(env.get("PRESIGN_TTL_SECONDS", "900")),
    )


def reset_settings() -> None:
    """Forget cached settings (tests and the local stack change the environment)."""
    get_settings.cache_clear()
