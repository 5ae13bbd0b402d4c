"""Postgres access fit for Lambda: one connection per container, reused.

A Lambda container runs one invocation at a time, so one connection per
thread is one per container in AWS; the local emulator runs handlers on
several threads, which then get a connection each. A connection is checked
before reuse (closed, or idle long enough that a proxy may have dropped it)
and transactions are explicit: `with transaction() as cur: ...`.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
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


def _connect() -> psycopg2.extensions.connection:
    dsn = get_settings().database_url
    if not dsn:
        raise DatabaseUnavailable("DATABASE_URL is not set")
    try:
        conn = psycopg2.connect(dsn, connect_timeout=_CONNECT_TIMEOUT_S,
                                application_name=get_settings().app_name)
    except psycopg2.OperationalError as exc:
        raise DatabaseUnavailable(str(exc).strip()) from exc
    conn.autocommit = False
    return conn


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
def transaction() -> Iterator[psycopg2.extras.RealDictCursor]:
    """A cursor inside one transaction: committed on success, rolled back on error.

    A connection that broke mid-flight is dropped, so the next call reconnects.
    """
    conn = connection()
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
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


def fetch_one(sql: str, params: Any = None) -> dict | None:
    """One row (or None) of a read-only query in its own transaction."""
    with transaction() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def fetch_all(sql: str, params: Any = None) -> list[dict]:
    """All rows of a read-only query in its own transaction."""
    with transaction() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def execute(sql: str, params: Any = None) -> int:
    """Run one statement in its own transaction; the affected row count."""
    with transaction() as cur:
        cur.execute(sql, params)
        return cur.rowcount
