"""Postgres access fit for Lambda: one connection per container, reused.

A Lambda container runs one invocation at a time, so one connection per
thread is one per container in AWS; the local emulator runs handlers on
several threads, which then get a connection each. A connection is checked
before reuse (closed, or idle long enough that a proxy may have dropped it)
and transactions are explicit: `with transaction() as cur: ...`.

Credentials: DATABASE_URL locally; in AWS, DATABASE_SECRET_ARN names an
RDS-format secret (the one RDS and RDS Proxy manage) read once per container,
so the password never sits in the function's configuration.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from chalicelib.config import get_settings

logger = logging.getLogger(__name__)

# Past this idle time a cheap round trip proves the connection before use.
_PING_AFTER_IDLE_S = 30.0
_CONNECT_TIMEOUT_S = 5

_local = threading.local()

psycopg2.extras.register_uuid()


class DatabaseUnavailable(Exception):
    """Postgres cannot be reached."""


class DictCursor(psycopg2.extensions.cursor):
    """Rows as plain dicts keyed by column name.

    psycopg2.extras.RealDictCursor builds every row through a Python-level
    __setitem__ per column (its rows are OrderedDict subclasses): on a page of
    videos that was about a quarter of the API's time per request. dict(zip())
    builds the same mapping in C.
    """

    def _names(self) -> list[str]:
        return [column.name for column in self.description]

    def fetchone(self) -> dict | None:
        row = super().fetchone()
        return None if row is None else dict(zip(self._names(), row))

    def fetchmany(self, size: int | None = None) -> list[dict]:
        rows = super().fetchmany(self.arraysize if size is None else size)
        return self._dicts(rows)

    def fetchall(self) -> list[dict]:
        return self._dicts(super().fetchall())

    def __iter__(self) -> Iterator[dict]:
        row = self.fetchone()
        while row is not None:
            yield row
            row = self.fetchone()

    def _dicts(self, rows: list[tuple]) -> list[dict]:
        if not rows:
            return []
        names = self._names()
        return [dict(zip(names, row)) for row in rows]


def _connect() -> psycopg2.extensions.connection:
    global _refetch_secret
    settings = get_settings()
    from_secret = not settings.database_url and bool(settings.database_secret_arn)
    dsn = _secret_dsn(fresh=_refetch_secret) if from_secret else settings.database_url
    if not dsn:
        raise DatabaseUnavailable("neither DATABASE_URL nor DATABASE_SECRET_ARN is set")
    try:
        conn = psycopg2.connect(dsn, connect_timeout=_CONNECT_TIMEOUT_S, application_name=settings.app_name)
    except psycopg2.OperationalError as exc:
        # The secret may have been rotated since it was read: read it again next time.
        _refetch_secret = from_secret
        raise DatabaseUnavailable(str(exc).strip()) from exc
    _refetch_secret = False
    conn.autocommit = False
    return conn


# Set after a failed connect through the secret, so the next connect reads it again.
_refetch_secret = False
# The secret is read at cold start and kept for the container's life (or until a connect fails).
_SECRET_MAX_AGE_S = 24 * 3600


@lru_cache(maxsize=1)
def _secrets() -> Any:
    """Powertools' Secrets Manager provider (it caches values), on the configured endpoint."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from chalicelib import aws
    return SecretsProvider(boto3_client=aws.client("secretsmanager"))


def _secret_dsn(*, fresh: bool = False) -> str:
    """The DSN built from the RDS-format secret; DATABASE_PARAMS override its host, port and dbname."""
    from aws_lambda_powertools.utilities.parameters.exceptions import (GetParameterError,
                                                                       TransformParameterError)

    settings = get_settings()
    try:
        secret = _secrets().get(settings.database_secret_arn, transform="json",
                                max_age=_SECRET_MAX_AGE_S, force_fetch=fresh)
    except (GetParameterError, TransformParameterError) as exc:
        raise DatabaseUnavailable(f"cannot read the database secret: {exc}") from exc
    if not isinstance(secret, dict) or not secret.get("username") or not isinstance(secret.get("password"), str):
        raise DatabaseUnavailable("the database secret needs a JSON username and password (RDS format)")
    params = {k: str(secret[k]) for k in ("host", "port", "dbname") if secret.get(k)}
    try:
        params.update(psycopg2.extensions.parse_dsn(settings.database_params))
    except psycopg2.ProgrammingError as exc:
        raise DatabaseUnavailable(f"DATABASE_PARAMS is not a libpq parameter string: {exc}") from exc
    params.update(user=secret["username"], password=secret["password"])
    return psycopg2.extensions.make_dsn(**params)


def _alive(conn: psycopg2.extensions.connection) -> bool:
    if conn.closed:
        return False
    if time.monotonic() - getattr(_local, "used_at", 0.0) < _PING_AFTER_IDLE_S:
        return True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.rollback()
        return True
    except psycopg2.Error:
        return False


def connection() -> psycopg2.extensions.connection:
    """This thread's connection, opened or re-opened as needed."""
    conn = getattr(_local, "conn", None)
    if conn is None or not _alive(conn):
        if conn is not None and not conn.closed:
            conn.close()
        conn = _connect()
        _local.conn = conn
    _local.used_at = time.monotonic()
    return conn


def close() -> None:
    """Close this thread's connection (tests, shutdown)."""
    conn = getattr(_local, "conn", None)
    if conn is not None and not conn.closed:
        conn.close()
    _local.conn = None


@contextmanager
def transaction() -> Iterator[DictCursor]:
    """A cursor inside one transaction: committed on success, rolled back on error.

    A connection that broke mid-flight is dropped, so the next call reconnects.
    """
    conn = connection()
    try:
        with conn.cursor(cursor_factory=DictCursor) as cur:
            yield cur
        conn.commit()
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        close()
        raise DatabaseUnavailable(str(exc).strip()) from exc
    except BaseException:
        if not conn.closed:
            conn.rollback()
        raise
    finally:
        _local.used_at = time.monotonic()


@contextmanager
def _statement() -> Iterator[DictCursor]:
    """A cursor for one statement that is its own transaction: one round trip.

    In autocommit Postgres runs the statement as an implicit transaction, as
    atomic as BEGIN; statement; COMMIT, without the two extra round trips
    (each API request makes one or two of these calls, so they are most of
    its latency). Inside an open transaction of this connection it is an
    ordinary transaction() as before.
    """
    conn = connection()
    if conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        with transaction() as cur:
            yield cur
        return
    conn.autocommit = True
    try:
        with conn.cursor(cursor_factory=DictCursor) as cur:
            yield cur
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        close()
        raise DatabaseUnavailable(str(exc).strip()) from exc
    finally:
        if not conn.closed:
            conn.autocommit = False
        _local.used_at = time.monotonic()


def fetch_one(sql: str, params: Any = None) -> dict | None:
    """One row (or None) of a query in its own transaction."""
    with _statement() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def fetch_all(sql: str, params: Any = None) -> list[dict]:
    """All rows of a query in its own transaction."""
    with _statement() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def execute(sql: str, params: Any = None) -> int:
    """Run one statement in its own transaction; the affected row count."""
    with _statement() as cur:
        cur.execute(sql, params)
        return cur.rowcount
