"""Structured logs and CloudWatch metrics: one powertools Logger, EMF metrics.

Every Lambda of the app (API routes, the upload trigger, the pipeline steps)
logs JSON lines through one powertools Logger (service "clipstream"); the
module loggers of chalicelib inherit its handler, so their lines carry the
same keys. Each line names the invocation (`function_request_id`) and a
`correlation_id`: the API Gateway request id for routes (what the client got
back as x-amzn-RequestId), the Step Functions execution name for pipeline
steps, so one grep follows an upload through every stage.

Metrics go to stdout in CloudWatch Embedded Metric Format (powertools
`single_metric`, flushed at once, so library code needs no handler
decorator); CloudWatch turns those lines into metrics in the namespace of
POWERTOOLS_METRICS_NAMESPACE. Powertools is imported on first use only:
API cold starts are benchmarked and most routes never log or emit.
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable

SERVICE = "clipstream"
_cold_start = True


@functools.lru_cache(maxsize=1)
def get_logger() -> Any:
    """The app's powertools Logger; chalicelib's module loggers write through it."""
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    log = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE)
    # Chalice gave the logger named after the app (the same name) a plain-text
    # handler of its own; drop it so every line on stdout is JSON.
    for handler in list(log.handlers):
        if handler is not log.registered_handler:
            log.removeHandler(handler)
    logging.getLogger("chalicelib")  # registered, so its children inherit the handler
    copy_config_to_registered_loggers(source_logger=log, include={"chalicelib"})
    return log


def correlation_id(event: Any, context: Any) -> str | None:
    """API Gateway's request id, else the execution a pipeline step runs in, else the invocation."""
    if isinstance(event, dict):
        request_id = (event.get("requestContext") or {}).get("requestId")
        if request_id:
            return str(request_id)
        if event.get("execution"):
            return str(event["execution"])
    return getattr(context, "aws_request_id", None)


def lambda_middleware(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Wrap a Lambda handler so its log lines carry the invocation's ids.

    Keys are set per thread (powertools' thread-safe keys): the local
    emulator runs concurrent invocations in one process, and in AWS one
    container runs one invocation at a time, so both see the right ids.
    """

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        global _cold_start
        log = get_logger()
        keys = {"correlation_id": correlation_id(event, context),
                "function_name": getattr(context, "function_name", None),
                "function_request_id": getattr(context, "aws_request_id", None),
                "cold_start": _cold_start}
        _cold_start = False
        log.thread_safe_append_keys(**keys)
        try:
            return handler(event, context)
        finally:
            log.thread_safe_remove_keys(keys.keys())

    return run


def _emit(name: str, unit: str, value: float, **dimensions: str) -> None:
    """One metric as one EMF line on stdout."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    # A missing namespace would make powertools raise: never fail a step for it.
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Clipstream"
    with single_metric(name=name, unit=MetricUnit[unit], value=value, namespace=namespace,
                       default_dimensions={"service": SERVICE}) as metric:
        for key, val in dimensions.items():
            metric.add_dimension(name=key, value=val)


def uploads_started(summary: dict) -> dict:
    """Count the executions the upload trigger started; the summary, unchanged."""
    started = len(summary.get("started") or [])
    if started:
        _emit("UploadsStarted", "Count", started)
    return summary


def stage_ended(stage: str, duration_s: float | None, failed: bool) -> None:
    """A stage attempt's duration and, when it failed, a failure count."""
    if duration_s is not None:
        _emit("StageDuration", "Seconds", round(float(duration_s), 3), stage=stage,
              outcome="failed" if failed else "succeeded")
    if failed:
        _emit("StageFailures", "Count", 1, stage=stage)


def video_failed(stage: str | None) -> None:
    """A video ended failed (after the state machine's retries)."""
    _emit("VideosFailed", "Count", 1, stage=stage or "unknown")
