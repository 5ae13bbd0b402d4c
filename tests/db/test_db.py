"""Migrations and connection handling fit for Lambda."""
from __future__ import annotations

import psycopg2
import psycopg2.errors
import pytest


def test_migrations_are_recorded_and_safe_to_rerun(stack):
    from chalicelib import db
    from chalicelib.db.migrate import MIGRATIONS_DIR, migrate

    assert migrate() == []
    versions = {r["version"] for r in db.fetch_all("SELECT version FROM schema_migrations")}
    assert versions == {p.stem for p in MIGRATIONS_DIR.glob("*.sql")}


def test_data_model_is_complete(stack):
    from chalicelib import db

    tables = {r["table_name"] for r in db.fetch_all(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert {"users", "refresh_tokens", "streams", "stream_members", "invites", "videos",
            "video_assets", "transcripts", "transcript_segments", "video_embeddings", "likes",
            "shares", "stage_runs", "pipeline_executions"} <= tables
    exts = {r["extname"] for r in db.fetch_all("SELECT extname FROM pg_extension")}
    assert {"vector", "pg_trgm"} <= exts
    cols = {r["column_name"] for r in db.fetch_all(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'videos'")}
    assert {"processing_index", "failure_reason", "status"} <= cols


def test_connection_is_reused_across_invocations(stack):
    from chalicelib import db

    first = db.connection()
    db.fetch_one("SELECT 1")
    assert db.connection() is first


def test_broken_connection_is_replaced(stack):
    from chalicelib import db

    conn = db.connection()
    pid = conn.get_backend_pid()
    admin = psycopg2.connect(stack.env["DATABASE_URL"])
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()
    # The first use after the kill fails cleanly and drops the connection ...
    with pytest.raises(db.DatabaseUnavailable):
        db.fetch_one("SELECT 1")
    # ... and the next one reconnects.
    assert db.fetch_one("SELECT 1 AS one")["one"] == 1
    assert db.connection().get_backend_pid() != pid


def test_transaction_rolls_back_on_error(stack, make_user):
    from chalicelib import db

    user = make_user()
    with pytest.raises(RuntimeError):
        with db.transaction() as cur:
            cur.execute("UPDATE users SET name = 'changed' WHERE id = %s", (user["id"],))
            raise RuntimeError("boom")
    assert db.fetch_one("SELECT name FROM users WHERE id = %s", (user["id"],))["name"] == "Test User"


def test_a_single_statement_is_one_round_trip_and_still_atomic(stack, make_user):
    """fetch_one/fetch_all/execute run in autocommit (no BEGIN/COMMIT round trips); a failing
    statement changes nothing."""
    from chalicelib import db

    user = make_user()
    # now() is the transaction's start: the statement's own time when no BEGIN went first
    assert db.fetch_one("SELECT now() = statement_timestamp() AS own")["own"]
    assert db.connection().autocommit is False
    with pytest.raises(psycopg2.errors.DivisionByZero):  # the second statement fails: the first is undone
        db.execute("UPDATE users SET name = 'half' WHERE id = %s; SELECT 1 / 0", (user["id"],))
    assert db.fetch_one("SELECT name FROM users WHERE id = %s", (user["id"],))["name"] == "Test User"
