"""Settings from the environment, read in one place.

Every other module asks `get_settings()` for product settings (buckets, state
machines, the database, limits, secrets). In AWS the values come from the
function's environment (see .chalice/config.json and infra/); locally the
stack sets them.

A few variables tune a tool rather than the product, and the module that loads
the tool reads them itself, when it loads it, so a pipeline step that never
runs the tool never parses them:

- chalicelib.media.ffmpeg: FFMPEG_BINARY (which FFmpeg), FFMPEG_MAX_SECONDS
  (a bound on every run, below a short Lambda timeout);
- chalicelib.ml.transcribe: WHISPER_MODEL_PATH, WHISPER_THREADS (and it sets
  HF_HUB_OFFLINE so a model lookup never downloads);
- chalicelib.ml.embed: EMBED_MODEL_PATH, EMBED_THREADS;
- chalicelib.observability: POWERTOOLS_SERVICE_NAME and
  POWERTOOLS_METRICS_NAMESPACE, Powertools' own variables.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

MAX_UPLOAD_BYTES = 2 * 1024**3
MAX_UPLOAD_LABEL = "2GB"
ALLOWED_EXTENSIONS = ("mp4", "avi", "mov")

# Requests per window (seconds) per caller and route group (chalicelib.api.ratelimit).
# RATE_LIMITS overrides some or all: "read=600/60,auth=30/60"; a limit of 0 turns a group off.
DEFAULT_RATE_LIMITS: dict[str, tuple[int, int]] = {
    "auth": (30, 60),       # sign-in and refresh, per client address
    "read": (600, 60),      # every other GET
    "write": (120, 60),     # every other POST, PUT, DELETE
    "upload": (30, 60),     # new uploads and new upload URLs
    "search": (300, 60),    # search and type-ahead suggestions
    "views": (240, 60),     # players' view and watch-progress reports
    "report": (20, 3600),   # content reports
    "playback": (1200, 60),  # HLS playlists (players fetch one per rendition switch)
}


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    app_name: str = "clipstream"
    database_url: str = ""
    # In AWS: an RDS-format Secrets Manager secret (username, password, host, port,
    # dbname) read at cold start, and libpq parameters without credentials that
    # override its host/port/dbname (the RDS Proxy endpoint). DATABASE_URL wins.
    database_secret_arn: str | None = None
    database_params: str = ""
    bucket: str = "clipstream"
    region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    s3_endpoint_url: str | None = None
    # Address that browsers and curl use for presigned URLs when the storage
    # endpoint the Lambdas use is not reachable from outside (docker networks).
    s3_public_endpoint_url: str | None = None
    state_machine_arn: str | None = None
    clips_state_machine_arn: str | None = None    # highlights: moments and clip extraction
    webhooks_state_machine_arn: str | None = None  # signed webhook deliveries (chalicelib.webhooks)
    # The FFmpeg function whose readiness /health reports where FFmpeg is not installed (API functions).
    transcode_function_name: str | None = None
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
    # The local stack only: each API route group's role credentials (JSON), so a route runs as
    # the role that serves it in AWS. Unset in AWS, where each group is its own function.
    local_api_credentials: str = ""
    # Declared bytes of live videos one user may hold (0: no quota).
    user_storage_quota_bytes: int = 50 * 1024**3
    # The longest a share link can work (requests for longer are refused; older links are cut to it).
    share_max_ttl_s: int = 30 * 24 * 3600
    # "fanout": transcription runs beside the transcode, long clips encode in chunks
    # (stepfunctions/pipeline.asl.json); "serial": every stage after the other (bench baseline).
    pipeline_shape: str = "fanout"
    rate_limits: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    # The chunked ladder (fanout shape): clips at least this long encode as chunk_s-second
    # chunks in a Map state running chunk_concurrency at once (locally: the machine's cores;
    # in AWS the template sets it). Chosen by measurement (bench/chunked.py): 8 s chunks left
    # the 360p rung 2.9 % under the single pass's bitrate (x264's rate control restarts per
    # chunk), 16 s chunks 0.9 %.
    chunk_threshold_s: float = 30.0
    chunk_s: int = 16
    chunk_concurrency: int = 2
    # Requests to user-given URLs (chalicelib.outbound): http besides https, and hosts or
    # CIDR ranges that may be private anyway (a local test server; empty in AWS).
    outbound_allow_http: bool = False
    outbound_allow_hosts: tuple[str, ...] = ()
    # Live updates: the WebSocket API's management endpoint (https://{api}.execute-api.{region}
    # .amazonaws.com/{stage} in AWS, the local stack's own locally); unset: nothing is published.
    live_endpoint_url: str | None = None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once from the environment."""
    env = os.environ
    return Settings(
        stage=env.get("STAGE", "local"),
        app_name=env.get("APP_NAME", "clipstream"),
        database_url=env.get("DATABASE_URL", ""),
        database_secret_arn=env.get("DATABASE_SECRET_ARN") or None,
        database_params=env.get("DATABASE_PARAMS", ""),
        bucket=env.get("BUCKET_NAME", "clipstream"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        s3_endpoint_url=env.get("S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL") or None,
        s3_public_endpoint_url=env.get("S3_PUBLIC_ENDPOINT_URL") or None,
        state_machine_arn=env.get("STATE_MACHINE_ARN") or None,
        clips_state_machine_arn=env.get("CLIPS_STATE_MACHINE_ARN") or None,
        webhooks_state_machine_arn=env.get("WEBHOOKS_STATE_MACHINE_ARN") or None,
        transcode_function_name=env.get("TRANSCODE_FUNCTION_NAME") or None,
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
        local_api_credentials=env.get("LOCAL_API_CREDENTIALS", ""),
        user_storage_quota_bytes=int(env.get("USER_STORAGE_QUOTA_BYTES", str(50 * 1024**3))),
        share_max_ttl_s=parse_share_max_ttl(env.get("SHARE_MAX_TTL_SECONDS")),
        rate_limits=parse_rate_limits(env.get("RATE_LIMITS")),
        pipeline_shape=parse_pipeline_shape(env.get("PIPELINE_SHAPE")),
        chunk_threshold_s=float(env.get("CHUNK_THRESHOLD_SECONDS", str(Settings.chunk_threshold_s))),
        chunk_s=parse_chunk_seconds(env.get("CHUNK_SECONDS")),
        chunk_concurrency=int(env.get("CHUNK_CONCURRENCY") or os.cpu_count() or 1),
        outbound_allow_http=env.get("OUTBOUND_ALLOW_HTTP", "").lower() in ("1", "true", "yes"),
        outbound_allow_hosts=tuple(h.lower() for h in _list(env.get("OUTBOUND_ALLOW_HOSTS"))),
        live_endpoint_url=(env.get("LIVE_ENDPOINT_URL") or "").rstrip("/") or None,
    )


PIPELINE_SHAPES = ("fanout", "serial")


def parse_pipeline_shape(value: str | None) -> str:
    """PIPELINE_SHAPE: "fanout" (default) or "serial"; anything else is a deployment mistake."""
    shape = (value or "fanout").strip().lower()
    if shape not in PIPELINE_SHAPES:
        raise ValueError(f"PIPELINE_SHAPE must be one of {PIPELINE_SHAPES}, not {value!r}")
    return shape


def parse_chunk_seconds(value: str | None) -> int:
    """CHUNK_SECONDS: a positive multiple of the 4 s segment (chunks start on the keyframe grid)."""
    seconds = int(value or Settings.chunk_s)
    if seconds <= 0 or seconds % 4:
        raise ValueError(f"CHUNK_SECONDS must be a positive multiple of 4, not {value!r}")
    return seconds


def parse_rate_limits(value: str | None) -> dict[str, tuple[int, int]]:
    """DEFAULT_RATE_LIMITS with the groups named in "group=limit/seconds,..." replaced.

    A malformed value stops the process at start rather than silently
    leaving an API without limits.
    """
    limits = dict(DEFAULT_RATE_LIMITS)
    for item in _list(value):
        group, _, spec = item.partition("=")
        count, _, window = spec.partition("/")
        try:
            limit, seconds = int(count), int(window or 60)
        except ValueError:
            raise ValueError(f"RATE_LIMITS: {item!r} is not group=limit/seconds") from None
        if group.strip() not in DEFAULT_RATE_LIMITS or limit < 0 or seconds < 1:
            raise ValueError(f"RATE_LIMITS: {item!r} needs a known group, a limit of 0 or more and a window of 1 s or more")
        limits[group.strip()] = (limit, seconds)
    return limits


def parse_share_max_ttl(value: str | None) -> int:
    """SHARE_MAX_TTL_SECONDS: whole hours (share lifetimes are asked in hours), at least one.

    A malformed value stops the process at start rather than leaving links uncapped.
    """
    if value is None or not value.strip():
        return Settings.share_max_ttl_s
    try:
        seconds = int(value)
    except ValueError:
        raise ValueError(f"SHARE_MAX_TTL_SECONDS: {value!r} is not a number of seconds") from None
    if seconds < 3600 or seconds % 3600:
        raise ValueError(f"SHARE_MAX_TTL_SECONDS: {value!r} must be a whole number of hours (3600, 7200, ...)")
    return seconds


def reset_settings() -> None:
    """Forget cached settings (tests and the local stack change the environment)."""
    get_settings.cache_clear()
