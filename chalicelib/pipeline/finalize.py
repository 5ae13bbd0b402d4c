"""Final steps: complete (0), duplicate (-1), failed (reason recorded)."""
from __future__ import annotations

import json
import logging

from chalicelib.pipeline import progress
from chalicelib.pipeline.step import Envelope

logger = logging.getLogger(__name__)


def finalize(event: Envelope) -> Envelope:
    """processing_index 0 and the execution closed."""
    progress.complete(event["video_id"])
    progress.finish_execution(event["execution"], "succeeded")
    return event


def mark_duplicate(event: Envelope) -> Envelope:
    """processing_index -1, pointing at the original."""
    found = event["dedup"]
    progress.mark_duplicate(event["video_id"], found["original_id"], found["similarity"])
    progress.finish_execution(event["execution"], "duplicate")
    return event


def failure_reason(error: dict | None) -> str:
    """A readable reason from the Catch's {Error, Cause} (Cause may be a Lambda error JSON)."""
    if not error:
        return "processing failed"
    name = error.get("Error") or "Error"
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            cause = parsed["errorMessage"]
    except (ValueError, TypeError):
        pass
    return f"{name}: {cause}" if cause else name


def mark_failed(event: Envelope) -> Envelope:
    """Record the failure on the video; the machine then ends in its Fail state."""
    reason = failure_reason(event.get("error"))
    if not progress.mark_failed(event["video_id"], reason, event.get("execution"),
                                event.get("failed_stage")):
        logger.info("failed video is gone", extra={"video_id": event["video_id"]})
    if event.get("execution"):
        progress.finish_execution(event["execution"], "failed")
    return {**event, "failure_reason": reason}
