"""What every state-machine step shares: the envelope, the stage record, error kinds.

The envelope is the state's JSON: ids and S3 keys only, never media
(Step Functions state is capped at 256 KB). Each step returns the envelope it
got plus its own small outputs.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import EndpointConnectionError

from chalicelib import db, storage
from chalicelib.pipeline import progress

logger = logging.getLogger(__name__)

Envelope = dict[str, Any]


class TransientStepError(Exception):
    """A failure worth retrying (the state machine's Retry names this type)."""


class PermanentStepError(Exception):
    """A failure no retry can fix (bad media, missing object): the video fails."""


_TRANSIENT = (db.DatabaseUnavailable, storage.StorageUnavailable,
              EndpointConnectionError, BotoConnectionError)


def transient_types() -> tuple[type[BaseException], ...]:
    """Exception types a step turns into TransientStepError."""
    try:
        from chalicelib.media.errors import TransientMediaError
    except ImportError:  # functions without the media package
        return _TRANSIENT
    return _TRANSIENT + (TransientMediaError,)


def stage_step(stage: str) -> Callable[[Callable[[Envelope], dict | None]], Callable[[Envelope], Envelope]]:
    """Wrap a step body: record the attempt, move the index, classify errors."""

    def decorate(body: Callable[[Envelope], dict | None]) -> Callable[[Envelope], Envelope]:
        @functools.wraps(body)
        def run(event: Envelope) -> Envelope:
            video_id = event["video_id"]
            if event.get("resume"):
                done = progress.succeeded_output(video_id, stage)
                if done is not None:
                    progress.record_resumed(video_id, stage, event.get("execution"), done)
                    return {**event, **done}
            run_id = progress.begin_stage(video_id, stage, event.get("execution"))
            try:
                out = body(event) or {}
            except transient_types() as exc:
                progress.end_stage(run_id, error=f"{type(exc).__name__}: {exc}")
                raise TransientStepError(f"{stage}: {exc}") from exc
            except Exception as exc:
                progress.end_stage(run_id, error=f"{type(exc).__name__}: {exc}")
                raise
            progress.end_stage(run_id, output=out)
            return {**event, **out}

        return run

    return decorate
