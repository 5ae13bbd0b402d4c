"""The reasons a failed video shows its viewers: a small fixed set they can act on.

The detailed reason (exception text, FFmpeg's stderr line, hosts, paths, SQL)
stays in the logs, in `videos.failure_reason` / `stage_runs.error`, and in the
platform admins' views; everyone else sees one of these (README, "Failure reasons").
"""
from __future__ import annotations

NOT_A_VIDEO = "not a video file"
DAMAGED = "video file is damaged"
TOO_LONG = "video too long"
TOO_SHORT = "video too short"
TOO_LARGE = "video too large"
TOO_SMALL = "video too small"
PROCESSING_FAILED = "processing failed, we are on it"

# A video ingested from a URL (POST /streams/{id}/videos with source_url) whose fetch failed.
_SOURCE = "the source URL could not be fetched: "
SOURCE_REFUSED = _SOURCE + "it is not a public address"
SOURCE_REDIRECTS = _SOURCE + "too many redirects"
SOURCE_TIMEOUT = _SOURCE + "it took too long"
SOURCE_UNREACHABLE = _SOURCE + "the connection failed"
SOURCE_ERROR = _SOURCE + "the source answered with an error"
SOURCE_QUOTA = _SOURCE + "storage quota exceeded"

PUBLIC_REASONS = (NOT_A_VIDEO, DAMAGED, TOO_LONG, TOO_SHORT, TOO_LARGE, TOO_SMALL,
                  PROCESSING_FAILED, SOURCE_REFUSED, SOURCE_REDIRECTS, SOURCE_TIMEOUT,
                  SOURCE_UNREACHABLE, SOURCE_ERROR, SOURCE_QUOTA)


def public_reason(stored: str | None, failed: bool) -> str | None:
    """What a viewer sees: the stored public reason, else the generic one for a failure."""
    if stored in PUBLIC_REASONS:
        return stored
    return PROCESSING_FAILED if failed else None
