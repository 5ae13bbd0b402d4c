"""What every state-machine step shares: the envelope, the stage record, error kinds.

The envelope is the state's JSON: ids and S3 keys only, never media
(Step Functions state is capped at 256 KB). Each step returns the envelope it
got plus its own small outputs.

Every step runs at most once per (video, stage, upload) at a time and once in
all (chalicelib.idempotency); a step that finds its video deleted removes
what it wrote, so a delete that raced a running step leaves nothing behind.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import EndpointConnectionError

from chalicelib import db, failures, storage
from chalicelib.pipeline import progress

logger = logging.getLogger(__name__)

Envelope = dict[str, Any]


class TransientStepError(Exception):
    """A failure worth retrying (the state machine's Retry names this type)."""


class PermanentStepError(Exception):
    """A failure no retry can fix (bad media, missing object): the video fails.

    The message is the detailed reason (logs, admins); `public` is what viewers see
    (one of chalicelib.failures.PUBLIC_REASONS).
    """

    def __init__(self, message: str, public: str = failures.PROCESSING_FAILED) -> None:
        super().__init__(message)
        self.public = public


_TRANSIENT = (db.DatabaseUnavailable, storage.StorageUnavailable,
              EndpointConnectionError, BotoConnectionError)
# Storage answers that say "later" (after botocore's own retries ran out).
_TRANSIENT_S3_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout",
                       "Throttling", "ThrottlingException", "RequestTimeTooSkewed"}


def transient_types() -> tuple[type[BaseException], ...]:
    """Exception types a step turns into TransientStepError."""
    try:
        from chalicelib.media.errors import TransientMediaError
    except ImportError:  # functions without the media package
        return _TRANSIENT
    return _TRANSIENT + (TransientMediaError,)


def is_transient(exc: BaseException) -> bool:
    """True for failures a later attempt may not meet: unreachable services, 5xx, throttling."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError, IdempotencyPersistenceLayerError)

    if isinstance(exc, transient_types() + (IdempotencyAlreadyInProgressError,
                                            IdempotencyPersistenceLayerError)):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or error.get("Code") in _TRANSIENT_S3_CODES
    return False


def video_deleted(video_id: str) -> bool:
    """The video is gone or being deleted (a DELETE marks it first)."""
    row = db.fetch_one("SELECT deleted_at FROM videos WHERE id = %s", (video_id,))
    return row is None or row["deleted_at"] is not None


def sweep_if_deleted(video_id: str, stage: str) -> bool:
    """Delete the objects of a video deleted while this step ran; True if it was.

    The DELETE marks the row before it lists the bucket, and this check runs
    after the step's last write: any object the DELETE did not see is removed
    here.
    """
    if not video_deleted(video_id):
        return False
    from chalicelib.video_deletion import delete_objects

    removed = delete_objects(video_id)
    logger.info("video deleted while its step ran; late objects removed",
                extra={"video_id": video_id, "stage": stage, "objects": removed})
    return True


def stage_step(stage: str, part: Callable[[Envelope], str] | None = None
               ) -> Callable[[Callable[[Envelope], dict | None]], Callable[..., Envelope]]:
    """Wrap a step body: resume, run once, record the attempt, classify errors, sweep after deletes.

    `part` names one of several items of the same stage (a Map's chunks): each
    runs once on its own, and a part returns only its own small output, not the
    envelope (a Map collects every item's output into one state).
    """

    def decorate(body: Callable[[Envelope], dict | None]) -> Callable[..., Envelope]:
        @functools.wraps(body)
        def run(event: Envelope, context: Any = None) -> Envelope:
            video_id = event["video_id"]
            once_as = f"{stage}:{part(event)}" if part else stage
            if event.get("resume") and not part:
                done = progress.succeeded_output(video_id, stage)
                if done is not None:
                    progress.record_resumed(video_id, stage, event.get("execution"), done)
                    return {**event, **done}
            from chalicelib import idempotency

            try:
                out = idempotency.once(once_as, context)(lambda: _attempt(stage, body, event))(
                    key=idempotency.step_key(video_id, once_as, event.get("etag")))
            except (TransientStepError, PermanentStepError, progress.VideoGone):
                raise
            except Exception as exc:
                if is_transient(exc):
                    raise TransientStepError(f"{stage}: {type(exc).__name__}: {exc}") from exc
                raise
            return (out or {}) if part else {**event, **(out or {})}

        return run

    return decorate


def _attempt(stage: str, body: Callable[[Envelope], dict | None], event: Envelope) -> dict:
    """One recorded attempt at the stage (runs inside the idempotency claim)."""
    video_id = event["video_id"]
    if video_deleted(video_id):
        raise progress.VideoGone(f"video {video_id} was deleted")
    run_id = progress.begin_stage(video_id, stage, event.get("execution"))
    try:
        out = body(event) or {}
    except Exception as exc:
        _close_failed(run_id, exc)
        if sweep_if_deleted(video_id, stage):
            raise progress.VideoGone(f"video {video_id} was deleted during {stage}") from exc
        if is_transient(exc):
            raise TransientStepError(f"{stage}: {exc}") from exc
        raise
    if sweep_if_deleted(video_id, stage):
        raise progress.VideoGone(f"video {video_id} was deleted during {stage}")
    progress.end_stage(run_id, output=out)
    return out


def _close_failed(run_id: int, exc: BaseException) -> None:
    """Record the failed attempt; with Postgres away the error itself still goes up."""
    public = getattr(exc, "public", None)  # PermanentStepError, or a MediaError that escaped
    try:
        progress.end_stage(run_id, error=f"{type(exc).__name__}: {exc}", public=public)
    except db.DatabaseUnavailable:
        logger.warning("could not record the failed attempt", extra={"stage_run": run_id})
