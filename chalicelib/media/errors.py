"""Media errors: each carries a short reason that is stored on the failed video."""
from __future__ import annotations


class MediaError(Exception):
    """FFmpeg or media processing failed; `reason` is short and human-readable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidMediaError(MediaError):
    """The input is not a usable video (empty, truncated, not a video, out of limits)."""


class MediaTimeoutError(MediaError):
    """FFmpeg ran past its wall-clock limit and was killed."""


class TransientMediaError(MediaError):
    """FFmpeg was killed by a signal we did not send (e.g. OOM killer): worth a retry."""
