"""Plain ordered SQL migrations, recorded in schema_migrations, safe to re-run."""
from __future__ import annotations

import logging
from pathlib import Path

from chalicelib import db

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same for every runner.
_LOCK_KEY = 0x436C6970  # "Clip"


def pending(applied: set[str]) -> list[Path]:
    """Migration files not yet applied, in order."""
    return [p for p in sorted(MIGRATIONS_DIR.glob("*.sql")) if p.stem not in applied]


def migrate() -> list[str]:
    """Apply every pending migration in one transaction; the versions applied.

    An advisory lock makes concurrent runners (two cold starts, two test
    workers) wait for each other instead of applying a file twice.
    """
    done: list[str] = []
    with db.transaction() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT version FROM schema_migrations")
        applied = {row["version"] for row in cur.fetchall()}
        for path in pending(applied):
            logger.info("applying migration %s", path.name)
            cur.execute(path.read_text())
            cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (path.stem,))
            done.append(path.stem)
    return done


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print("applied:", ", ".join(migrate()) or "nothing (up to date)")
