"""Media errors: each carries a short reason that is stored on the failed video, and the
public reason (chalicelib.failures) its viewers see."""
from __future__ import annotations

from chalicelib import failures


class MediaError(Exception):
    """FFmpeg or media processing failed; `reason` is short and human-readable (for logs/admins)."""

    public = failures.PROCESSING_FAILED

    def __init__(self, reason: str, public: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if public is not None:
            self.public = public


class InvalidMediaError(MediaError):
    """The input is not a usable video (empty, truncated, not a video, out of limits)."""

    public = failures.NOT_A_VIDEO


class MediaTimeoutError(MediaError):
    """FFmpeg ran past its wall-clock limit and was killed."""


class TransientMediaError(MediaError):
    """FFmpeg was killed by a signal we did not send (e.g. OOM killer): worth a retry."""
