"""The domain error hierarchy: one place, mapped to HTTP by chalicelib.api.http."""
from __future__ import annotations

from typing import Any


class ClipstreamError(Exception):
    """Base of every error the API turns into a JSON response."""

    status = 500
    message = "Internal server error"

    def __init__(self, message: str | None = None, *, details: list[str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.details:
            body["details"] = list(self.details)
        body.update(self.extra)
        return body


class ValidationError(ClipstreamError):
    status = 400
    message = "Invalid request"


class AuthenticationError(ClipstreamError):
    status = 401
    message = "Authentication required"


class ForbiddenError(ClipstreamError):
    status = 403
    message = "Access denied"


class NotFoundError(ClipstreamError):
    status = 404
    message = "Not found"


class ConflictError(ClipstreamError):
    status = 409
    message = "Conflict"


class GoneError(ClipstreamError):
    status = 410
    message = "Gone"


class PayloadTooLargeError(ClipstreamError):
    status = 413
    message = "Payload too large"


class NotReadyError(ClipstreamError):
    """Processing has not reached the state the route needs: 202 with a reason."""

    status = 202
    message = "Processing not complete"


class RateLimitedError(ClipstreamError):
    status = 429
    message = "Too many requests"


class UnavailableError(ClipstreamError):
    status = 503
    message = "Service unavailable"
