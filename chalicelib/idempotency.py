"""Exactly-once pipeline steps: powertools idempotency with its records in Postgres.

A step may be invoked twice for the same work: Step Functions retries a
Lambda.ServiceException that came after the function had started, a function
killed at its timeout leaves its work half done, a redrive reaches a stage
again. Powertools keeps one record per key: INPROGRESS while a step runs
(a second invocation is refused), COMPLETED with the step's output afterwards
(a second invocation gets the output without running). The INPROGRESS record
carries the end of the Lambda's time budget (the context's remaining time):
once it has passed, the holder was killed at its timeout and the step may run
again instead of being blocked until the record expires.

Postgres instead of DynamoDB, because the product already keeps its state
there (one store, one backup, joins with the stage history).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from aws_lambda_powertools.utilities.idempotency import (BasePersistenceLayer, IdempotencyConfig,
                                                          idempotent_function)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError, IdempotencyItemNotFoundError)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from chalicelib import db

logger = logging.getLogger(__name__)

# A COMPLETED step answers repeats for a day; retries after that find the
# stage history (stage_runs) instead.
COMPLETED_TTL_S = 24 * 3600
# A Postgres restart takes a second or two: a record write waits that long
# rather than leaving an INPROGRESS record behind that would block the retry.
_DB_PATIENCE_S = 15.0

_COLUMNS = "id, status, expiration, in_progress_expiry, data, validation"


def _patiently(action: Callable[[], Any]) -> Any:
    """Run a record operation, retrying while Postgres is unreachable (bounded)."""
    deadline = time.monotonic() + _DB_PATIENCE_S
    pause = 0.25
    while True:
        try:
            return action()
        except db.DatabaseUnavailable:
            if time.monotonic() + pause > deadline:
                raise
            logger.warning("idempotency store unreachable; retrying in %.2fs", pause)
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def _record(row: dict) -> DataRecord:
    return DataRecord(idempotency_key=row["id"], status=row["status"],
                      expiry_timestamp=row["expiration"],
                      in_progress_expiry_timestamp=row["in_progress_expiry"],
                      response_data=row["data"] or "", payload_hash=row["validation"] or "")


class PostgresPersistenceLayer(BasePersistenceLayer):
    """Powertools' persistence contract on the idempotency_records table."""

    def _get_record(self, idempotency_key: str) -> DataRecord:
        row = _patiently(lambda: db.fetch_one(
            f"SELECT {_COLUMNS} FROM idempotency_records WHERE id = %s", (idempotency_key,)))
        if row is None:
            raise IdempotencyItemNotFoundError
        return _record(row)

    def _put_record(self, data_record: DataRecord) -> None:
        """Insert, or take over a record that expired or whose holder ran out of time."""
        def put() -> dict | None:
            now_ms = int(time.time() * 1000)
            with db.transaction() as cur:
                cur.execute(
                    "INSERT INTO idempotency_records AS r (id, status, expiration, in_progress_expiry,"
                    " data, validation) VALUES (%s, %s, %s, %s, NULL, %s)"
                    " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,"
                    "   expiration = EXCLUDED.expiration, in_progress_expiry = EXCLUDED.in_progress_expiry,"
                    "   data = NULL, validation = EXCLUDED.validation, created_at = now()"
                    " WHERE r.expiration < %s"
                    "    OR (r.status = 'INPROGRESS' AND r.in_progress_expiry IS NOT NULL"
                    "        AND r.in_progress_expiry < %s)"
                    " RETURNING id",
                    (data_record.idempotency_key, data_record.status, data_record.expiry_timestamp,
                     data_record.in_progress_expiry_timestamp, data_record.payload_hash or None,
                     now_ms // 1000, now_ms))
                if cur.fetchone() is not None:
                    return None
                cur.execute(f"SELECT {_COLUMNS} FROM idempotency_records WHERE id = %s",
                            (data_record.idempotency_key,))
                return cur.fetchone()

        existing = _patiently(put)
        if existing is not None:
            raise IdempotencyItemAlreadyExistsError(
                f"Failed to put record for already existing idempotency key: {data_record.idempotency_key}",
                old_data_record=_record(existing))

    def _update_record(self, data_record: DataRecord) -> None:
        _patiently(lambda: db.execute(
            "UPDATE idempotency_records SET status = %s, expiration = %s, data = %s,"
            " validation = %s, in_progress_expiry = NULL WHERE id = %s",
            (data_record.status, data_record.expiry_timestamp, data_record.response_data,
             data_record.payload_hash or None, data_record.idempotency_key)))

    def _delete_record(self, data_record: DataRecord) -> None:
        _patiently(lambda: db.execute("DELETE FROM idempotency_records WHERE id = %s",
                                      (data_record.idempotency_key,)))


def step_key(video_id: str, stage: str, etag: str | None) -> dict:
    """The same for every attempt at one stage of one upload (retries add '#retryN' to the etag)."""
    return {"video_id": video_id, "stage": stage, "upload": (etag or "").split("#")[0]}


def _config(context: Any | None = None) -> IdempotencyConfig:
    config = IdempotencyConfig(expires_after_seconds=COMPLETED_TTL_S, raise_on_no_idempotency_key=True)
    if context is not None:
        config.register_lambda_context(context)
    return config


def key_prefix(stage: str) -> str:
    return f"clipstream.pipeline.{stage}"


def store_for(stage: str) -> PostgresPersistenceLayer:
    """The store configured as a step of `stage` uses it (operators and tests read records with it)."""
    store = PostgresPersistenceLayer()
    store.configure(_config(), key_prefix=key_prefix(stage))
    return store


def record_id(stage: str, video_id: str, etag: str | None) -> str:
    """The idempotency_records id of one stage of one upload (prefix#hash, as powertools makes it)."""
    return store_for(stage)._get_hashed_idempotency_key(step_key(video_id, stage, etag))


def once(stage: str, context: Any | None) -> Callable[[Callable[[], dict]], Callable[..., dict]]:
    """Wrap a step's work so it runs at most once at a time per step_key, and once in all.

    A fresh config and store per invocation: the local emulator runs several
    handlers on threads of one process, and both hold per-invocation state
    (the Lambda context, the key prefix).
    """
    config = _config(context)

    def decorate(work: Callable[[], dict]) -> Callable[..., dict]:
        @idempotent_function(data_keyword_argument="key", config=config,
                             persistence_store=PostgresPersistenceLayer(),
                             key_prefix=key_prefix(stage))
        def attempt(key: dict) -> dict:
            return work()

        return attempt

    return decorate
